#!/usr/bin/env bash
# Starts a real, kubelet-less Kubernetes control plane on loopback for tests:
# etcd, kube-apiserver and (unless PBO_KUBE_CONTROLLER_MANAGER=0) kube-controller-manager with
# the namespace, garbage-collector, service-account and ClusterRole-aggregation controllers.
#
#   tests/cluster/start.sh DIR     DIR holds the data, certificates, logs and pid files
#   tests/cluster/stop.sh DIR      stops what start.sh started
#
# Writes DIR/kubeconfig (an admin identity: client certificate in group system:masters) and
# DIR/cluster.env (KUBECONFIG, KUBE_SERVER, KUBE_BIN, ports, AUDIT_LOG) and returns once /readyz is
# ok and the default namespace exists. DIR/audit.log records, at level Metadata, the requests of
# ServiceAccounts only (group system:serviceaccounts): what the operator's token actually did. Binaries come from ensure-kube.sh, or from $KUBE_BIN when it is set.
# Settings: PBO_KUBE_START_TIMEOUT (seconds, default 120), PBO_KUBE_CONTROLLER_MANAGER (1 or 0).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
dir=$(cd "$1" && pwd)
timeout=${PBO_KUBE_START_TIMEOUT:-120}
with_kcm=${PBO_KUBE_CONTROLLER_MANAGER:-1}

log() { echo "start: $*" >&2; }
die() { log "error: $*"; exit 1; }

for name in etcd kube-apiserver kube-controller-manager; do
  if [[ -f $dir/$name.pid ]] && [[ -d /proc/$(<"$dir/$name.pid") ]] &&
    tr '\0' ' ' <"/proc/$(<"$dir/$name.pid")/cmdline" 2>/dev/null | grep -qF "$dir/"; then
    die "$name already runs for $dir (pid $(<"$dir/$name.pid")); run stop.sh $dir first"
  fi
done

bin=${KUBE_BIN:-$("$here/ensure-kube.sh")}
for b in etcd kube-apiserver kubectl; do [[ -x $bin/$b ]] || die "$bin/$b is missing"; done
t0=$(date +%s%3N)
elapsed() { local ms=$(($(date +%s%3N) - t0)); printf "%d.%03d s" $((ms / 1000)) $((ms % 1000)); }

# Free TCP ports on 127.0.0.1, taken below the kernel's ephemeral range (outgoing connections
# take their local ports from that range, and a port held by one cannot be bound even though
# nothing listens on it) and used by no socket in any state now. Another process can still take
# one before etcd or kube-apiserver binds it: the launch below retries on "address already in use".
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { eph_lo=32768; eph_hi=60999; }
if ((eph_lo > 12000)); then port_lo=10000 port_n=$((eph_lo - 10000)); else port_lo=$((eph_hi + 1)) port_n=$((65000 - eph_hi)); fi
picked=" "
etcd_port='' peer_port='' api_port=''
free_port() { # VAR: sets VAR to a free port
  local p
  for _ in $(seq 500); do
    p=$((port_lo + (RANDOM * 32768 + RANDOM) % port_n))
    [[ $picked == *" $p "* ]] && continue
    if ! ss -Htan "( sport = :$p )" 2>/dev/null | grep -q .; then
      picked+="$p "
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  die "no free port found"
}

# If anything below fails, stop what was started.
started=0
trap 'rc=$?; if ((rc != 0 && started == 1)); then PBO_KUBE_STOP_GRACE=3 "$here/stop.sh" "$dir" >&2 || true; fi' EXIT

# ---- certificates: one CA signs the serving certificate and the admin client certificate ----
pki=$dir/pki
mkdir -p "$pki"
cat >"$pki/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:10.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
CNF
if [[ ! -f $pki/ca.crt ]]; then
  ossl() { openssl "$@" 2>>"$pki/openssl.log" || die "openssl $1 failed (see $pki/openssl.log)"; }
  ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -config "$pki/openssl.cnf" -extensions ca \
    -subj "/CN=pbo-test-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt"
  cert() { # name subject extensions
    ossl req -new -newkey rsa:2048 -nodes -config "$pki/openssl.cnf" -subj "$2" \
      -keyout "$pki/$1.key" -out "$pki/$1.csr"
    ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 3650 -extfile "$pki/openssl.cnf" -extensions "$3" -out "$pki/$1.crt"
    rm -f "$pki/$1.csr"
  }
  cert apiserver "/CN=kube-apiserver" server
  cert admin "/O=system:masters/CN=pbo-admin" client
  # ServiceAccount token signing key (TokenRequest, the serviceaccount-token controller).
  ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
  ossl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
fi

server=
get() { # path -> HTTP status; body in $dir/.probe
  curl -s -o "$dir/.probe" -w '%{http_code}' --max-time 5 --cacert "$pki/ca.crt" \
    --cert "$pki/admin.crt" --key "$pki/admin.key" "$server$1" 2>/dev/null || true
}
running() { # pid: alive and not a zombie (start.sh is the parent and does not reap)
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z ]]
}
# NAME: succeeds while NAME runs; when it has exited, shows the end of its log and fails.
alive() {
  running "$(<"$dir/$1.pid")" && return 0
  log "$1 exited; last lines of $dir/$1.log:"
  tail -n 20 "$dir/$1.log" | cut -c1-400 >&2
  return 1
}
port_clash() { grep -q 'address already in use' "$dir/$1.log"; }
deadline=$((SECONDS + timeout))

# ---- etcd ----
mkdir -p "$dir/etcd"
chmod 700 "$dir/etcd"
# shellcheck disable=SC2034 # read by the EXIT trap
started=1
for attempt in 1 2 3 4 5; do
  free_port etcd_port
  free_port peer_port
  nohup "$bin/etcd" --name pbo --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "pbo=http://127.0.0.1:$peer_port" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn \
    >"$dir/etcd.log" 2>&1 </dev/null &
  echo $! >"$dir/etcd.pid"
  log "etcd pid $(<"$dir/etcd.pid") on 127.0.0.1:$etcd_port"
  until curl -sf --max-time 2 "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q '"health":"true"'; do
    if ! alive etcd; then
      if port_clash etcd && ((attempt < 5)); then log "port taken meanwhile; trying other ports"; continue 2; fi
      die "etcd did not start"
    fi
    ((SECONDS < deadline)) || die "etcd not healthy after ${timeout}s (log: $dir/etcd.log)"
    sleep 0.1
  done
  break
done

# ---- kube-apiserver ----
# Audit: ServiceAccounts' requests at Metadata (who, verb, resource, namespace, name, response
# code; no bodies), nothing else; no RequestReceived stage. Rotated at 20 MB, 3 kept.
cat >"$dir/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
POLICY
for attempt in 1 2 3 4 5; do
  free_port api_port
  server=https://127.0.0.1:$api_port
  nohup "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --cert-dir "$dir/apiserver-certs" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --endpoint-reconciler-type none \
    --profiling=false \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    --audit-log-maxsize 20 --audit-log-maxbackup 3 \
    >"$dir/kube-apiserver.log" 2>&1 </dev/null &
  echo $! >"$dir/kube-apiserver.pid"
  log "kube-apiserver pid $(<"$dir/kube-apiserver.pid") on $server"
  # Ready, and the bootstrap controller has made the default namespace.
  until [[ $(get /readyz) == 200 && $(get /api/v1/namespaces/default) == 200 ]]; do
    if ! alive kube-apiserver; then
      if port_clash kube-apiserver && ((attempt < 5)); then log "port taken meanwhile; trying another"; continue 2; fi
      die "kube-apiserver did not start"
    fi
    alive etcd || die "etcd stopped"
    if ((SECONDS >= deadline)); then
      get '/readyz?verbose' >/dev/null
      grep -v '\] ok$' "$dir/.probe" >&2 || true
      die "kube-apiserver not ready after ${timeout}s (log: $dir/kube-apiserver.log)"
    fi
    sleep 0.2
  done
  break
done
rm -f "$dir/.probe"
log "kube-apiserver ready after $(elapsed)"

b64() { base64 -w0 <"$1"; }
umask_old=$(umask)
umask 077
cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: pbo-test
  cluster:
    server: $server
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: pbo-admin
  user:
    client-certificate-data: $(b64 "$pki/admin.crt")
    client-key-data: $(b64 "$pki/admin.key")
contexts:
- name: pbo-test
  context:
    cluster: pbo-test
    user: pbo-admin
current-context: pbo-test
KC
umask "$umask_old"

cat >"$dir/cluster.env" <<ENV
KUBECONFIG=$dir/kubeconfig
KUBE_SERVER=$server
KUBE_BIN=$bin
KUBE_API_PORT=$api_port
ETCD_PORT=$etcd_port
AUDIT_LOG=$dir/audit.log
ENV

# ---- kube-controller-manager (namespace deletion, owner-reference GC, ServiceAccount tokens,
# aggregated ClusterRoles) ----
if [[ $with_kcm == 1 && -x $bin/kube-controller-manager ]]; then
  nohup "$bin/kube-controller-manager" \
    --kubeconfig "$dir/kubeconfig" \
    --authentication-kubeconfig "$dir/kubeconfig" --authorization-kubeconfig "$dir/kubeconfig" \
    --controllers namespace,garbagecollector,serviceaccount-token,serviceaccount,clusterrole-aggregation \
    --use-service-account-credentials=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --leader-elect=false --secure-port 0 \
    >"$dir/kube-controller-manager.log" 2>&1 </dev/null &
  echo $! >"$dir/kube-controller-manager.pid"
  log "kube-controller-manager pid $(<"$dir/kube-controller-manager.pid")"
  # Its serviceaccount controller creates 'default' in each namespace: a sign that it works.
  until [[ $(get /api/v1/namespaces/default/serviceaccounts/default) == 200 ]]; do
    alive kube-controller-manager || die "kube-controller-manager did not start"
    ((SECONDS < deadline)) || die "kube-controller-manager made no default ServiceAccount in ${timeout}s (log: $dir/kube-controller-manager.log)"
    sleep 0.2
  done
  rm -f "$dir/.probe"
  log "kube-controller-manager working"
fi

log "ready after $(elapsed): KUBECONFIG=$dir/kubeconfig"
