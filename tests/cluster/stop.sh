#!/usr/bin/env bash
# Stops what tests/cluster/start.sh DIR started (kube-controller-manager, kube-apiserver, etcd,
# in that order): SIGTERM, then SIGKILL after PBO_KUBE_STOP_GRACE seconds (default 10).
# Leaves DIR (data, logs, certificates) in place; a process that is already gone is fine.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
[[ -d $1 ]] || { echo "stop: no such folder $1" >&2; exit 0; }
dir=$(cd "$1" && pwd)
grace=${PBO_KUBE_STOP_GRACE:-10}

running() { # pid: alive and not a zombie
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z ]]
}

for name in kube-controller-manager kube-apiserver etcd; do
  pidfile=$dir/$name.pid
  [[ -f $pidfile ]] || continue
  pid=$(<"$pidfile")
  # Only signal the process if it is still ours: its command line names DIR (guards against a
  # reused pid).
  if [[ $pid =~ ^[0-9]+$ ]] && running "$pid" &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      echo "stop: $name (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stop: $name (pid $pid) stopped" >&2
  fi
  rm -f "$pidfile"
done
