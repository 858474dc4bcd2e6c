//! The real-server suite: a real kube-apiserver (`make cluster-test` starts one on loopback
//! with tests/cluster/start.sh and stops it afterwards) and the local AWS emulator behind the
//! operator. It covers what only the server decides: CRDs established, printer columns,
//! `kubectl explain`, schema and CEL rejections of the bad-input corpus, the Helm chart
//! installed, the operator running out of cluster with the chart's ServiceAccount and RBAC
//! only, every kind's lifecycle (conditions, Events, finalizers), leader election between two
//! processes, and tenancy by RBAC through impersonation.
//!
//!     make cluster-test                                   local control plane
//!     PBO_E2E_KUBECONFIG=$HOME/.kube/config make cluster-test   a throw-away cluster of yours
//!
//! The tests are `#[ignore]`d so that `cargo test --all-targets` (which has no cluster) does
//! not run them; `make cluster-test` runs them with `--ignored`, and without
//! `PBO_E2E_KUBECONFIG` every one of them fails instead of skipping.

#[path = "../common/mod.rs"]
mod common;

mod crds;
mod fixtures;
mod ha;
mod harness;
mod management;
mod operator;
mod robustness;
mod tenancy;
