#!/usr/bin/env bash
# End-to-end check of the real control plane: start.sh in a temporary folder, then
#   kubectl get ns; kubectl apply --server-side -f CRD_DIR; kubectl get crd;
#   a ServiceAccount and `kubectl create token` (TokenRequest), used to authenticate;
#   namespace deletion (needs kube-controller-manager); stop.sh.
#
#   tests/cluster/smoke.sh [CRD_DIR]     CRD_DIR defaults to the repository's crds/
#
# Exits non-zero when any step fails, after running the others.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
crds=${1:-$here/../../crds}
dir=$(mktemp -d "${TMPDIR:-/tmp}/pbo-kube-smoke.XXXXXX")
trap '"$here/stop.sh" "$dir"; rm -rf "$dir"' EXIT

passed=0 failed=0
step() { # description command...
  local what=$1
  shift
  echo "--- $what" >&2
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $what" >&2; fi
}

"$here/start.sh" "$dir" || exit 1
# shellcheck disable=SC1091
source "$dir/cluster.env"
k() { "$KUBE_BIN/kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }
as_token() { # token kubectl-args...: no kubeconfig, only the bearer token
  local token=$1
  shift
  "$KUBE_BIN/kubectl" --kubeconfig /dev/null --server "$KUBE_SERVER" \
    --certificate-authority "$dir/pki/ca.crt" --token "$token" "$@"
}

step "kubectl version" k version
step "kubectl get ns" k get ns
step "kubectl apply --server-side -f $crds" k apply --server-side -f "$crds"
step "CRDs established" k wait --for condition=established --timeout 60s crd --all
step "kubectl get crd" k get crd
make_sa() { k create namespace smoke && k -n smoke create serviceaccount operator; }
step "create namespace and ServiceAccount" make_sa
token=$(k -n smoke create token operator --duration 10m)
step "kubectl create token" test -n "$token"
whoami_is_sa() { as_token "$token" auth whoami | tee /dev/stderr | grep -q 'system:serviceaccount:smoke:operator'; }
step "the token authenticates as the ServiceAccount" whoami_is_sa
forbidden() {
  local out
  out=$(as_token "$token" -n smoke get configmaps 2>&1)
  echo "$out" >&2
  [[ $out == *"(Forbidden)"* ]]
}
step "RBAC denies the ServiceAccount what it was not granted" forbidden
if [[ -f $dir/kube-controller-manager.pid ]]; then
  step "namespace deletion (kube-controller-manager)" k delete namespace smoke --timeout 60s
fi

echo "smoke: $passed passed, $failed failed"
((failed == 0))
