"""The Helm chart: lint, render with several value sets, validate built-in kinds offline,
check RBAC, reject bad values, ship the same CRDs as crds/.

Run: $TOOLS/venv/bin/python -m unittest test_chart.py  (from tests/tools; PBO_TOOLS_DIR set)
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import tempfile
import unittest

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "partner-billing-operator"
TOOLS = pathlib.Path(os.environ.get("PBO_TOOLS_DIR", pathlib.Path.home() / ".cache/partner-billing-operator/tools"))
HELM = str(TOOLS / "bin" / "helm")
VALIDATE = str(TOOLS / "venv" / "bin" / "kubernetes-validate")

VALUE_SETS = {
    "defaults": [],
    "ha-scoped": ["--set", "replicas=2", "--set", "watchNamespaces={acme,contoso}", "--set", "rbac.secretNamespaces={acme,contoso}"],
    "observability": ["--set", "metrics.serviceMonitor.enabled=true", "--set", "grafanaDashboard.enabled=true",
                      "--set", "networkPolicy.enabled=true", "--set", "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/pbo"],
    "tenants": ["-f", "-"],
    "no-rbac": ["--set", "rbac.create=false", "--set", "podDisruptionBudget.enabled=false", "--set", "metrics.service.enabled=false"],
}
TENANTS = {
    "rbac": {
        "payerAdmins": [{"namespace": "acme", "subjects": [{"kind": "Group", "name": "acme-admins", "apiGroup": "rbac.authorization.k8s.io"}]}],
        "platformAdmins": [{"kind": "Group", "name": "partner-platform", "apiGroup": "rbac.authorization.k8s.io"}],
    },
    "grants": [
        {"name": "acme", "namespaces": {"names": ["acme"]}, "accountIds": ["210987654321"],
         "roleArns": ["arn:aws:iam::210987654321:role/PartnerBillingOperator"]},
        {"name": "all-payers", "namespaces": {"selector": {"matchLabels": {"partnerbilling.io/tenant": "internal"}}},
         "accountIds": ["*"], "roleArns": ["arn:aws:iam::*:role/PartnerBillingOperator"], "allowOperatorIdentity": True},
    ],
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


def crd_schema(kind: str) -> dict:
    for f in (ROOT / "crds").glob("*.yaml"):
        crd = yaml.safe_load(f.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    raise AssertionError(f"no CRD for {kind}")


def rules_for(role: dict, group: str, resource: str) -> list[dict]:
    return [r for r in role["rules"] if group in r.get("apiGroups", []) and resource in r.get("resources", [])]


def helm(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([HELM, *args], input=stdin, capture_output=True, text=True)


def render(name: str) -> list[dict]:
    stdin = yaml.safe_dump(TENANTS) if name == "tenants" else None
    out = helm("template", "pbo", str(CHART), "--namespace", "partner-billing", *VALUE_SETS[name], stdin=stdin)
    if out.returncode != 0:
        raise AssertionError(f"helm template ({name}) failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


class ChartTest(unittest.TestCase):
    def test_lint(self):
        out = helm("lint", str(CHART), "--strict")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_renders_and_built_in_kinds_validate_offline(self):
        for name in VALUE_SETS:
            docs = render(name)
            builtin = [d for d in docs if not d["apiVersion"].startswith(("monitoring.coreos.com", "partnerbilling.io"))]
            # Our own kinds (PayerGrants from values) against the generated CRD's schema.
            for d in docs:
                if d["apiVersion"].startswith("partnerbilling.io"):
                    jsonschema.validate(d, crd_schema(d["kind"]))
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                yaml.safe_dump_all(builtin, f)
            out = subprocess.run([VALIDATE, "--strict", "--quiet", "-k", "1.33.0", f.name], capture_output=True, text=True)
            os.unlink(f.name)
            self.assertEqual(out.returncode, 0, f"{name}: {out.stdout}{out.stderr}")

    def test_deployment_is_locked_down_and_probed(self):
        docs = render("ha-scoped")
        dep = next(d for d in docs if d["kind"] == "Deployment")
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        self.assertEqual(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertEqual(c["securityContext"]["capabilities"]["drop"], ["ALL"])
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertIn("limits", c["resources"])
        self.assertIn("--leader-election", c["args"])
        self.assertIn("--namespace=acme", c["args"])
        # One replica elects too: the old and new pods of a rolling update overlap.
        single = next(d for d in render("defaults") if d["kind"] == "Deployment")
        self.assertIn("--leader-election", single["spec"]["template"]["spec"]["containers"][0]["args"])

    def test_rbac(self):
        docs = render("tenants")
        roles = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("ClusterRole", "Role")}
        operator = roles["pbo-partner-billing-operator"]
        for rule in operator["rules"]:
            self.assertNotIn("*", rule["verbs"], rule)
            self.assertNotIn("*", rule.get("resources", []), rule)
            self.assertNotIn("*", rule.get("apiGroups", []), rule)
        viewer = roles["pbo-partner-billing-operator-viewer"]
        for rule in viewer["rules"]:
            self.assertLessEqual(set(rule["verbs"]), {"get", "list", "watch"}, rule)
        # payer-admin is granted per namespace only: RoleBindings, never a ClusterRoleBinding.
        bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
        payer_admin = [b for b in bindings if b["roleRef"]["name"].endswith("-payer-admin")]
        self.assertTrue(payer_admin)
        for b in payer_admin:
            self.assertEqual(b["kind"], "RoleBinding")
            self.assertEqual(b["metadata"]["namespace"], "acme")
        platform = [b for b in bindings if b["roleRef"]["name"].endswith("-platform-admin")]
        self.assertEqual([b["kind"] for b in platform], ["ClusterRoleBinding"])
        # Secrets: cluster-wide by default, per namespace when listed.
        self.assertTrue(any("secrets" in r.get("resources", []) for r in operator["rules"]))
        scoped = render("ha-scoped")
        scoped_roles = [d for d in scoped if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "pbo-partner-billing-operator"]
        self.assertFalse(any("secrets" in r.get("resources", []) for r in scoped_roles[0]["rules"]))
        secret_roles = [d for d in scoped if d["kind"] == "Role" and d["metadata"]["name"].endswith("-secrets")]
        self.assertEqual(sorted(r["metadata"]["namespace"] for r in secret_roles), ["acme", "contoso"])

    def test_grants_from_values(self):
        grants = {d["metadata"]["name"]: d for d in render("tenants") if d["kind"] == "PayerGrant"}
        self.assertEqual(sorted(grants), ["acme", "all-payers"])
        self.assertEqual(grants["acme"]["spec"], {
            "namespaces": {"names": ["acme"]}, "accountIds": ["210987654321"],
            "roleArns": ["arn:aws:iam::210987654321:role/PartnerBillingOperator"], "allowOperatorIdentity": False})
        self.assertTrue(grants["all-payers"]["spec"]["allowOperatorIdentity"])
        self.assertNotIn("namespace", grants["acme"]["metadata"], "PayerGrants are cluster-scoped")
        # Default: no grant at all (deny).
        self.assertFalse([d for d in render("defaults") if d["kind"] == "PayerGrant"])

    def test_tenancy_rbac(self):
        roles = {d["metadata"]["name"]: d for d in render("tenants") if d["kind"] in ("ClusterRole", "Role")}
        operator = roles["pbo-partner-billing-operator"]
        payer_admin = roles["pbo-partner-billing-operator-payer-admin"]
        platform = roles["pbo-partner-billing-operator-platform-admin"]
        viewer = roles["pbo-partner-billing-operator-viewer"]
        # Only platform-admin writes grants.
        self.assertFalse(rules_for(payer_admin, "partnerbilling.io", "payergrants"), "payer-admin must not touch grants")
        self.assertTrue(any(WRITE_VERBS & set(r["verbs"]) for r in rules_for(platform, "partnerbilling.io", "payergrants")))
        for role in (operator, viewer):
            for r in rules_for(role, "partnerbilling.io", "payergrants"):
                self.assertFalse(WRITE_VERBS & set(r["verbs"]), (role["metadata"]["name"], r))
        self.assertEqual({v for r in rules_for(operator, "partnerbilling.io", "payergrants") for v in r["verbs"]}, {"list", "watch"})
        # The operator reads namespace labels, and nothing else of namespaces.
        self.assertEqual({v for r in rules_for(operator, "", "namespaces") for v in r["verbs"]}, {"list", "watch"})
        # payer-admin creates Secrets (keys, external ids) but cannot read, list or change them.
        self.assertEqual({v for r in rules_for(payer_admin, "", "secrets") for v in r["verbs"]}, {"create"})
        # The operator gets Secrets by name; it never lists or watches them.
        self.assertEqual({v for r in rules_for(operator, "", "secrets") for v in r["verbs"]}, {"get"})

    def test_bad_values_fail_at_install_time(self):
        for bad in (["--set", "replicas=0"], ["--set", "logFormat=xml"], ["--set", "aws.region=Mars"], ["--set", "typo=1"],
                    ["--set-json", 'grants=[{"name":"x","namespaces":{"names":["acme"]},"accountIds":["2109*"]}]'],
                    ["--set-json", 'grants=[{"name":"x","namespaces":{},"accountIds":["*"]}]'],
                    ["--set-json", 'grants=[{"name":"x","namespaces":{"names":["acme"]},"accountIds":["*"],"roleArns":["arn:aws:iam::1:user/u"]}]']):
            out = helm("template", "pbo", str(CHART), *bad)
            self.assertNotEqual(out.returncode, 0, bad)

    def test_operator_rbac_covers_every_crd(self):
        plurals, with_status = set(), set()
        for f in (ROOT / "crds").glob("*.yaml"):
            crd = yaml.safe_load(f.read_text())
            plurals.add(crd["spec"]["names"]["plural"])
            if crd["spec"]["versions"][0].get("subresources", {}).get("status") is not None:
                with_status.add(crd["spec"]["names"]["plural"])
        roles = {d["metadata"]["name"]: d for d in render("defaults") if d["kind"] == "ClusterRole"}
        for name in ("pbo-partner-billing-operator", "pbo-partner-billing-operator-viewer"):
            ours = [r for r in roles[name]["rules"] if "partnerbilling.io" in r.get("apiGroups", [])]
            resources = {res for r in ours for res in r.get("resources", [])}
            self.assertEqual({p for p in resources if "/" not in p}, plurals, name)
        operator = [r for r in roles["pbo-partner-billing-operator"]["rules"] if "partnerbilling.io" in r.get("apiGroups", [])]
        status = {res for r in operator for res in r.get("resources", []) if res.endswith("/status")}
        self.assertEqual(status, {p + "/status" for p in with_status})

    def test_chart_crds_are_the_generated_ones(self):
        top = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
        chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
        self.assertEqual(top, chart, "charts/partner-billing-operator/crds differs from crds/: run make crds")

    def test_dashboard_is_a_grafana_dashboard(self):
        d = json.loads((CHART / "dashboards" / "operator.json").read_text())
        self.assertIn("schemaVersion", d)
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        for p in d["panels"]:
            self.assertIn(p["type"], ("timeseries", "stat"))
            self.assertTrue(p["targets"][0]["expr"].count("partnerbilling_"), p)
            self.assertEqual(set(p["gridPos"]), {"h", "w", "x", "y"})
        cm = next(x for x in render("observability") if x["kind"] == "ConfigMap")
        self.assertEqual(json.loads(cm["data"]["partner-billing-operator.json"]), d)
        costs = json.loads((CHART / "dashboards" / "costs.json").read_text())
        self.assertEqual(json.loads(cm["data"]["partner-billing-operator-costs.json"]), costs)


if __name__ == "__main__":
    unittest.main()
