#!/usr/bin/env python3
"""Generate the Argo CD health checks in examples/gitops/argocd/health/ from one template.

Every kind's script is the same Lua program: only its first comment lines (what Healthy,
Progressing and Degraded mean for that kind) and its set of waiting reasons (Ready=False with
one of them is Progressing, not Degraded) differ. Both are listed here per kind; the committed
.lua files are this script's output.

    python3 tests/tools/gen_argocd_health.py          # rewrite the scripts
    python3 tests/tools/gen_argocd_health.py --check  # exit 1 if a script differs (drift)

test_argocd_health.py runs the check too (make chart-test), as `make crd-check` does for crds/.
"""

from __future__ import annotations

import pathlib
import sys

HEALTH = pathlib.Path(__file__).resolve().parents[2] / "examples" / "gitops" / "argocd" / "health"

# The kinds, in the order of the kind list (src/kinds.rs).
KINDS = ["Payer", "ServiceControlPolicy", "OrganizationalUnit", "LinkedAccount", "PricingPlan",
         "BillingTransfer", "BillingGroup", "CustomLineItem", "CurPipeline"]

# What Healthy / Progressing / Degraded mean, after the first line (comment text, one entry a line).
MEANING = [
    "Healthy: Ready=True. Progressing: no status yet, an old observedGeneration, or a reason that",
    "is waiting for something (creation, invitation, dependency, closure). Degraded: Ready=False",
    "for any other reason (a terminal error: the message says what to fix).",
]
MEANING_OF = {
    "CurPipeline": [
        "Healthy: Ready=True (also while AWS has not delivered the first files yet: see the",
        "Delivered condition). Progressing: no status yet, an old observedGeneration, or a reason that",
        "is waiting for something (creation, invitation, dependency, closure). Degraded: Ready=False",
        "for any other reason (a terminal error: the message says what to fix).",
    ],
    "BillingTransfer": [
        "Healthy: Ready=True (the transfer is ACCEPTED, or terminated as the spec asks). Progressing:",
        "no status yet, an old observedGeneration, or a reason that waits for someone (the customer",
        "has not answered the invitation, a dependency). Degraded: Ready=False for any other reason:",
        "declined, expired, withdrawn or canceled (the message says how to send a new invitation), or",
        "a terminal error (the message says what to fix).",
    ],
}

# Reasons of Ready=False that wait for something (Progressing), in the order the script lists them.
WAITING = ["Creating", "CreationQueued", "InvitationPending", "DependencyNotReady", "Closing",
           "NotificationPending", "PlannedOnly", "Pending", "PayerNotFound"]
WAITING_OF = {
    # A transfer billing group waits for the customer to accept its transfer.
    "BillingGroup": WAITING + ["TransferNotAccepted"],
    "BillingTransfer": ["TransferRequested", "DependencyNotReady", "PlannedOnly", "Pending",
                        "PayerNotFound"],
}

# The Lua program every kind shares, after its own comment lines and waiting reasons.
BODY = """\
-- Suspended: paused (annotation partnerbilling.io/paused: "true", condition Paused=True): the
-- operator makes no AWS call for it. Under managementPolicy Observe: Healthy when observed
-- without drift; Degraded while Drifted=True, because the operator will never correct the
-- difference itself (fix the manifest or switch the object to Manage; the message lists it).
local progressing = {
@WAITING@
}
local hs = { status = "Progressing", message = "Waiting for the operator" }
local annotations = obj.metadata and obj.metadata.annotations
local paused_annotation = annotations ~= nil and annotations["partnerbilling.io/paused"] == "true"
local conditions = {}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    conditions[c.type] = c
  end
end
local paused = conditions["Paused"]
if paused_annotation or (paused ~= nil and paused.status == "True") then
  hs.status = "Suspended"
  if paused ~= nil and paused.status == "True" then
    hs.message = (paused.reason or "") .. ": " .. (paused.message or "")
  else
    hs.message = "Paused: the partnerbilling.io/paused annotation holds this object"
  end
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "The operator has not seen the latest spec yet"
  return hs
end
local c = conditions["Ready"]
if c == nil then
  return hs
end
local drifted = conditions["Drifted"]
if c.status == "True" and drifted ~= nil and drifted.status == "True" then
  hs.status = "Degraded"
  hs.message = (drifted.reason or "") .. ": " .. (drifted.message or "")
  return hs
end
if c.status == "True" then
  hs.status = "Healthy"
elseif c.status == "Unknown" or progressing[c.reason] then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = (c.reason or "") .. ": " .. (c.message or "")
return hs
"""

# Table lines are filled up to this many characters.
WIDTH = 100


def waiting_lines(reasons: list[str]) -> str:
    """`  A = true, B = true,` lines, each as full as WIDTH allows."""
    lines, line = [], " "
    for r in reasons:
        entry = f" {r} = true,"
        if len(line) + len(entry) > WIDTH and line.strip():
            lines.append(line)
            line = " "
        line += entry
    lines.append(line)
    return "\n".join(lines)


def render(kind: str) -> str:
    """The health check script of `kind`."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    for r in WAITING_OF.get(kind, WAITING):
        if not r.isidentifier():
            raise ValueError(f"{kind}: waiting reason {r!r} is not a Lua identifier")
    head = [f"Argo CD health check for partnerbilling.io/{kind}."] + MEANING_OF.get(kind, MEANING)
    comments = "".join(f"-- {line}\n" for line in head)
    return comments + BODY.replace("@WAITING@", waiting_lines(WAITING_OF.get(kind, WAITING)))


def drift(directory: pathlib.Path = HEALTH) -> list[str]:
    """What differs between `directory` and the generated scripts (empty when nothing)."""
    problems = []
    for kind in KINDS:
        path = directory / f"{kind}.lua"
        if not path.exists():
            problems.append(f"{path.name} is missing")
        elif path.read_text() != render(kind):
            problems.append(f"{path.name} differs from the generated script")
    extra = sorted(p.name for p in directory.glob("*.lua") if p.stem not in KINDS)
    problems += [f"{name} is no kind's script" for name in extra]
    return problems


def main(argv: list[str]) -> int:
    if argv not in ([], ["--check"]):
        print(f"usage: {sys.argv[0]} [--check]", file=sys.stderr)
        return 2
    if argv == ["--check"]:
        problems = drift()
        for p in problems:
            print(f"{HEALTH}: {p}", file=sys.stderr)
        if problems:
            print("run: python3 tests/tools/gen_argocd_health.py", file=sys.stderr)
        return 1 if problems else 0
    for kind in KINDS:
        (HEALTH / f"{kind}.lua").write_text(render(kind))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
