"""The chart's Grafana dashboards load in Grafana's schema: each is type-checked (strict, with
excess-property checks) against the `Dashboard` type of @grafana/schema, which Grafana
generates from its CUE dashboard kind. A deliberately broken copy must fail, so the check is
known to bite. The cost dashboard's queries use only series the operator exports.

Run: $TOOLS/venv/bin/python -m unittest test_grafana_schema.py  (from tests/tools; PBO_TOOLS_DIR set)
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "charts" / "partner-billing-operator" / "dashboards"
TOOLS = pathlib.Path(os.environ.get("PBO_TOOLS_DIR", pathlib.Path.home() / ".cache/partner-billing-operator/tools"))
GRAFANA = TOOLS / "grafana"


def typecheck(dashboard: dict) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".ts", dir=GRAFANA, delete=False) as f:
        f.write("import type { Dashboard } from '@grafana/schema';\n")
        f.write("const dashboard: Dashboard = " + json.dumps(dashboard, indent=1) + ";\n")
        f.write("export default dashboard;\n")
        path = f.name
    try:
        return subprocess.run(
            [str(GRAFANA / "node_modules" / ".bin" / "tsc"), "--noEmit", "--strict", "--skipLibCheck",
             "--moduleResolution", "bundler", "--module", "esnext", "--target", "es2020", path],
            capture_output=True, text=True, cwd=GRAFANA,
        )
    finally:
        os.unlink(path)


class GrafanaSchemaTest(unittest.TestCase):
    def test_every_dashboard_loads_in_grafanas_schema(self):
        files = sorted(DASHBOARDS.glob("*.json"))
        self.assertEqual([f.name for f in files], ["costs.json", "operator.json"])
        for f in files:
            out = typecheck(json.loads(f.read_text()))
            self.assertEqual(out.returncode, 0, f"{f.name}:\n{out.stdout}{out.stderr}")

    def test_the_check_rejects_a_broken_dashboard(self):
        d = json.loads((DASHBOARDS / "costs.json").read_text())
        d["schemaVersion"] = "39"  # a string where Grafana wants a number
        d["panels"][0]["gridPos"] = {"h": 8, "w": 12, "x": 0}  # y missing
        out = typecheck(d)
        self.assertNotEqual(out.returncode, 0)
        errors = out.stdout + out.stderr
        self.assertIn("Type 'string' is not assignable to type 'number'", errors)
        self.assertIn("Property 'y' is missing", errors)

    def test_cost_dashboard_has_the_panels_and_uses_exported_series(self):
        d = json.loads((DASHBOARDS / "costs.json").read_text())
        titles = " | ".join(p["title"] for p in d["panels"])
        for wanted in ("spend per month", "by service", "by account", "Month-over-month", "Margin by billing group"):
            self.assertIn(wanted.lower(), titles.lower())
        source = (ROOT / "src" / "payer" / "insights.rs").read_text()
        exported = {"partnerbilling_" + m for m in re.findall(r'"([a-z_]+)",\n\s+"[A-Z]', source)}
        self.assertIn("partnerbilling_billing_group_margin_usd", exported)
        used = {m for p in d["panels"] for t in p["targets"] for m in re.findall(r"partnerbilling_[a-z_]+", t["expr"])}
        self.assertTrue(used, "no queries")
        self.assertLessEqual(used, exported, f"series not exported by the operator: {used - exported}")


if __name__ == "__main__":
    unittest.main()
