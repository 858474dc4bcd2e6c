#!/usr/bin/env bash
# Create (or reuse) the emulator's virtualenv and print its path.
# The venv lives outside the clone so CI and later runs reuse it; it is rebuilt when
# requirements.txt changes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${PBO_EMULATOR_VENV:-$HOME/.cache/partner-billing-operator/emulator-venv}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "emulator: creating virtualenv in $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
