#!/usr/bin/env bash
# Start the AWS emulator in the background on 127.0.0.1:PORT and wait until it answers.
# Usage: tests/emulator/start.sh PORT PIDFILE [LOGFILE]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${1:?port}"
pidfile="${2:?pidfile}"
logfile="${3:-/dev/null}"
venv="$("$here/ensure-venv.sh")"
if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  kill "$(cat "$pidfile")" 2>/dev/null || true
  sleep 0.5
fi
PYTHONPATH="$here" nohup "$venv/bin/python" -m pbo_emulator --host 127.0.0.1 --port "$port" >"$logfile" 2>&1 &
echo $! > "$pidfile"
for _ in $(seq 1 150); do
  if "$venv/bin/python" - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_emulator/health", timeout=1).read()
PY
    echo "emulator: listening on http://127.0.0.1:$port (pid $(cat "$pidfile"))" >&2
    exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "emulator: failed to start; log follows" >&2
    cat "$logfile" >&2 || true
    exit 1
  fi
  sleep 0.2
done
echo "emulator: did not answer within 30s" >&2
exit 1
