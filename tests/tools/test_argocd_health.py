"""The Argo CD health checks, run in a real Lua interpreter (lupa) against sample objects.

Run: $TOOLS/venv/bin/python -m unittest test_argocd_health.py  (from tests/tools)
"""

from __future__ import annotations

import pathlib
import tempfile
import unittest

from lupa import LuaRuntime

import gen_argocd_health

HEALTH = pathlib.Path(__file__).resolve().parents[2] / "examples" / "gitops" / "argocd" / "health"
KINDS = ["Payer", "LinkedAccount", "OrganizationalUnit", "ServiceControlPolicy", "PricingPlan", "BillingGroup", "CustomLineItem", "CurPipeline", "BillingTransfer"]


def check(kind: str, obj: dict) -> dict:
    lua = LuaRuntime(unpack_returned_tuples=True)
    to_lua = lua.eval(
        """
        function(py, convert)
          local function conv(v)
            if python.builtins.isinstance(v, python.builtins.dict) then
              local t = {}
              for k in python.iter(v) do t[k] = conv(v[k]) end
              return t
            elseif python.builtins.isinstance(v, python.builtins.list) then
              local t = {}
              local i = 1
              for x in python.iter(v) do t[i] = conv(x); i = i + 1 end
              return t
            else
              return v
            end
          end
          return conv(py)
        end
        """
    )
    script = (HEALTH / f"{kind}.lua").read_text()
    fn = lua.eval("function(obj) " + script + " end")
    result = fn(to_lua(obj, None))
    return {"status": result["status"], "message": result["message"]}


def obj(conditions=None, generation=1, observed=1):
    o = {"metadata": {"name": "x", "generation": generation}}
    if conditions is not None:
        o["status"] = {"observedGeneration": observed, "conditions": conditions}
    return o


def ready(status, reason, message="m"):
    return [{"type": "Ready", "status": status, "reason": reason, "message": message},
            {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "message": ""}]


class HealthTest(unittest.TestCase):
    def test_every_kind_has_a_check(self):
        self.assertEqual(sorted(p.stem for p in HEALTH.glob("*.lua")), sorted(KINDS))

    def test_the_scripts_are_the_generated_ones(self):
        # Drift check (as crd-check for crds/): regenerate with gen_argocd_health.py.
        self.assertEqual(sorted(gen_argocd_health.KINDS), sorted(KINDS))
        self.assertEqual(gen_argocd_health.drift(), [],
                         "run: python3 tests/tools/gen_argocd_health.py")

    def test_the_drift_check_sees_an_edited_missing_or_extra_script(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = pathlib.Path(tmp)
            for kind in KINDS:
                (d / f"{kind}.lua").write_text(gen_argocd_health.render(kind))
            self.assertEqual(gen_argocd_health.drift(d), [])
            (d / "Payer.lua").write_text((d / "Payer.lua").read_text().replace("Closing = true, ", ""))
            (d / "CurPipeline.lua").unlink()
            (d / "Other.lua").write_text("return {}")
            self.assertEqual(gen_argocd_health.drift(d), [
                "Payer.lua differs from the generated script",
                "CurPipeline.lua is missing",
                "Other.lua is no kind's script",
            ])

    def test_ready_is_healthy(self):
        for kind in KINDS:
            h = check(kind, obj(ready("True", "Available", "all good")))
            self.assertEqual(h["status"], "Healthy", kind)
            self.assertIn("all good", h["message"])

    def test_waiting_is_progressing(self):
        for reason in ["InvitationPending", "Creating", "CreationQueued", "DependencyNotReady", "Closing"]:
            self.assertEqual(check("LinkedAccount", obj(ready("False", reason)))["status"], "Progressing", reason)
        self.assertEqual(check("Payer", obj(None))["status"], "Progressing")
        self.assertEqual(check("Payer", obj(ready("Unknown", "Pending")))["status"], "Progressing")
        self.assertEqual(check("BillingGroup", obj(ready("True", "Available"), generation=3, observed=2))["status"], "Progressing")

    def test_terminal_errors_are_degraded(self):
        for kind, reason in [("Payer", "AccountMismatch"), ("LinkedAccount", "CreateFailed"),
                             ("ServiceControlPolicy", "DocumentTooLong"), ("CustomLineItem", "PeriodClosed"),
                             ("BillingGroup", "AccountConflict")]:
            h = check(kind, obj(ready("False", reason, "what to fix")))
            self.assertEqual(h["status"], "Degraded", kind)
            self.assertIn("what to fix", h["message"])

    def test_billing_transfer_states(self):
        self.assertEqual(check("BillingTransfer", obj(ready("False", "TransferRequested")))["status"], "Progressing")
        self.assertEqual(check("BillingTransfer", obj(ready("True", "TransferAccepted")))["status"], "Healthy")
        for reason in ["TransferDeclined", "TransferExpired", "TransferWithdrawn", "InvalidTransferDate", "TransferRefused"]:
            h = check("BillingTransfer", obj(ready("False", reason, "send another")))
            self.assertEqual(h["status"], "Degraded", reason)
            self.assertIn("send another", h["message"])


    def test_paused_is_suspended(self):
        paused = {"type": "Paused", "status": "True", "reason": "Paused", "message": "no AWS call"}
        for kind in KINDS:
            # The condition, even with a spec the operator has not looked at (paused objects
            # keep their observedGeneration).
            h = check(kind, obj(ready("True", "Available") + [paused], generation=4, observed=2))
            self.assertEqual(h["status"], "Suspended", kind)
            self.assertIn("no AWS call", h["message"])
            # The annotation alone, before the operator saw it.
            o = obj(ready("False", "AccessDenied"))
            o["metadata"]["annotations"] = {"partnerbilling.io/paused": "true"}
            self.assertEqual(check(kind, o)["status"], "Suspended", kind)
            o["metadata"]["annotations"] = {"partnerbilling.io/paused": "false"}
            self.assertEqual(check(kind, o)["status"], "Degraded", kind)
        resumed = dict(paused, status="False")
        self.assertEqual(check("Payer", obj(ready("True", "Verified") + [resumed]))["status"], "Healthy")

    def test_observe_is_healthy_without_drift_and_degraded_with_it(self):
        observed = [{"type": "Ready", "status": "True", "reason": "Observed", "message": "AWS was read"},
                    {"type": "Synced", "status": "True", "reason": "Observed", "message": ""}]
        no_drift = {"type": "Drifted", "status": "False", "reason": "NoDrift", "message": "AWS matches the spec"}
        drift = {"type": "Drifted", "status": "True", "reason": "Drifted", "message": "would update tags of 111111111111"}
        for kind in KINDS:
            self.assertEqual(check(kind, obj(observed + [no_drift]))["status"], "Healthy", kind)
            h = check(kind, obj(observed + [drift]))
            self.assertEqual(h["status"], "Degraded", kind)
            self.assertIn("would update tags", h["message"])
            # Switched to Manage: the old Drifted is not trusted before the operator saw it.
            self.assertEqual(check(kind, obj(observed + [drift], generation=2, observed=1))["status"], "Progressing", kind)
        # An Observe object that could not be read is Degraded or Progressing as usual.
        self.assertEqual(check("LinkedAccount", obj(ready("False", "DependencyNotReady") + [drift]))["status"], "Progressing")


    def test_billing_conductor_2026_reasons(self):
        # A transfer billing group waits for the customer to accept its transfer.
        self.assertEqual(check("BillingGroup", obj(ready("False", "TransferNotAccepted")))["status"], "Progressing")
        for kind, reason in [("BillingGroup", "PlanNotAllowed"), ("BillingGroup", "GroupTypeMismatch"),
                             ("CustomLineItem", "QuotaExceeded")]:
            h = check(kind, obj(ready("False", reason, "what to fix")))
            self.assertEqual(h["status"], "Degraded", reason)
            self.assertIn("what to fix", h["message"])

if __name__ == "__main__":
    unittest.main()
