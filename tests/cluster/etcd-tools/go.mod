// Builds the etcd server (package main at the root of go.etcd.io/etcd/server/v3) for
// tests/cluster/start.sh. A module of its own, so etcd's dependency versions do not change the
// Kubernetes build in ../kube-tools.
module partner-billing-operator/tests/cluster/etcd-tools

go 1.26.0

require go.etcd.io/etcd/server/v3 v3.6.16
