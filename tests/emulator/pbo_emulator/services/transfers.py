"""AWS Billing Transfer: Organizations responsibility transfers (type BILLING) and Billing
Conductor's automatic transfer billing groups preference. moto 5.2.5 knows neither.

This service answers calls of two AWS services. It is not registered under a botocore service
name but claims the calls it answers (``claims``, consulted by ``services.route``):

- organizations InviteOrganizationToTransferResponsibility, ListInboundResponsibilityTransfers,
  ListOutboundResponsibilityTransfers, DescribeResponsibilityTransfer,
  TerminateResponsibilityTransfer; and CancelHandshake / DescribeHandshake of a transfer's
  handshake, ListTagsForResource / TagResource / UntagResource of a transfer (``rt-...``);
- billingconductor GetBillingTransferPreference, UpdateBillingTransferPreference.

Every request is validated against botocore's model first (the app does that); botocore 1.44.8
has all of these operations (organizations 2016-11-28, billingconductor 2021-07-30).

AWS facts, and where they come from:

- The inviter is the bill-transfer account; it sees the transfer as *inbound* ("Inbound billing:
  Billing transfers that allow you to manage and pay for another organization's consolidated
  bill"), the customer as *outbound*: Billing User Guide, orgs_transfer_billing-send-invitation
  (https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/orgs_transfer_billing-send-invitation.html);
  the ARN pattern ``transfer/o-.../billing/(inbound|outbound)/rt-...`` (ResponsibilityTransferArn).
- "If an invitation is accepted, the start date is 00:00:00 UTC on the first day of the month";
  "Invites must be accepted 24 hours before the billing transfer start date": same page. A start
  elsewhere is refused with InvalidInputException START_DATE_NOT_BEGINNING_OF_MONTH /
  START_DATE_NOT_BEGINNING_OF_DAY, one less than 24 hours ahead with START_DATE_TOO_EARLY
  (InvalidInputExceptionReason enum). The invitation expires 24 hours before the start, or after
  the 15 days of every Organizations invitation if that is sooner.
- "If a transfer is withdrawn, the end date is 23:59:59 UTC on the last day of the month
  specified in the withdrawal"; "Withdrawal cannot be undone"; "Either account involved in a
  transfer can withdraw the transfer at any time": orgs_transfer_billing-stop-transfer. An end
  elsewhere: END_DATE_NOT_END_OF_MONTH; in the past: END_DATE_TOO_EARLY. Terminating a withdrawn
  transfer: ResponsibilityTransferAlreadyInStatusException; one not accepted:
  InvalidResponsibilityTransferTransitionException (the model's errors of
  TerminateResponsibilityTransfer). The status becomes WITHDRAWN, with its EndTimestamp.
- An organization has one billing transfer at a time (HandshakeConstraintViolationException
  RESPONSIBILITY_TRANSFER_ALREADY_EXISTS); inviting oneself: SOURCE_AND_TARGET_CANNOT_MATCH; an
  open invitation to the same target: DuplicateHandshakeException ("A handshake with the same
  action and target already exists"); Target type ORGANIZATION: InvalidInputException
  INVALID_PARTY_TYPE_TARGET (HandshakeParty.Type doc: "Valid input values for the Target
  parameter are ACCOUNT and EMAIL only").
- Transfers are taggable (TaggableResourceId takes ``rt-...``); 50 tags at most.
- UpdateBillingTransferPreference: "PricingPlanArn ... is required when Enabled is true, and must
  be omitted when Enabled is false" (AutoTransferBillingGroupCreationPreference); ClientToken
  makes a retry complete "without performing any further actions"; the preference "is disabled
  by default"; LastModifiedTime "is empty if the preference has never been set".

Not emulated: transfer handshakes are not listed by ListHandshakesForOrganization /
ListHandshakesForAccount (the operator reads transfers, not their handshakes); chained
transfers; the billing groups AWS would create automatically.

Test controls (``POST /_emulator/services/transfers/<name>``), the customer's side: ``accept``,
``decline``, ``expire``, ``withdraw`` (``{"transferId"}`` or ``{"handshakeId"}``; ``accept``
takes ``accountId`` for a transfer sent to an e-mail address), ``stats``; and ``settings``
(``{"readLagSeconds": N}``): a transfer is not shown by ListInbound/ListOutboundResponsibilityTransfers
nor DescribeResponsibilityTransfer until N seconds after its invitation: a read that lags
behind a write, which a client of a distributed AWS API must expect (the operator must never
send a second invitation because of it). This is a test setting, not a claim about AWS: no AWS
page found gives a figure for these reads; 0 (the default) shows a transfer at once. The
invitation's handshake is answered at once (DescribeHandshake).
"""

from __future__ import annotations

import calendar
import datetime as dt
import secrets
import time
from typing import Any

from moto.iam.models import get_account_id_from
from moto.organizations.models import organizations_backends

from .. import paging
from . import EmulatedError, EmulatedService, register

DAY = 24 * 3600
HANDSHAKE_TTL = 15 * DAY
MAX_TAGS = 50
LIVE = ("REQUESTED", "ACCEPTED")
ORG_OPS = frozenset(
    {
        "InviteOrganizationToTransferResponsibility",
        "ListInboundResponsibilityTransfers",
        "ListOutboundResponsibilityTransfers",
        "DescribeResponsibilityTransfer",
        "TerminateResponsibilityTransfer",
    }
)
HANDSHAKE_OPS = frozenset({"CancelHandshake", "DescribeHandshake"})
TAG_OPS = frozenset({"ListTagsForResource", "TagResource", "UntagResource"})
PREFERENCE_OPS = frozenset({"GetBillingTransferPreference", "UpdateBillingTransferPreference"})
# Billing Conductor's AWS-managed plans (PricingPlanArn pattern: BasicPricingPlan|Passthrough).
MANAGED_PLANS = ("BasicPricingPlan", "Passthrough")


def _invalid(message: str, reason: str) -> EmulatedError:
    return EmulatedError("InvalidInputException", message, Reason=reason)


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def end_of_month(t: float) -> float:
    d = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    last = calendar.monthrange(d.year, d.month)[1]
    return dt.datetime(d.year, d.month, last, 23, 59, 59, tzinfo=dt.timezone.utc).timestamp()


def _public(t: dict[str, Any]) -> dict[str, Any]:
    keys = ("Arn", "Name", "Id", "Type", "Status", "Source", "Target", "StartTimestamp", "EndTimestamp", "ActiveHandshakeId")
    return {k: t[k] for k in keys if t.get(k) is not None}


class Transfers(EmulatedService):
    name = "transfers"

    def reset(self) -> None:
        self.transfers: dict[str, dict[str, Any]] = {}
        self.handshakes: dict[str, dict[str, Any]] = {}
        self.preferences: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.read_lag = 0.0

    def now(self) -> float:
        return time.time()

    # -- routing -------------------------------------------------------------------------
    def claims(self, call) -> bool:
        op = call.operation
        if call.service == "billingconductor":
            return op in PREFERENCE_OPS
        if call.service != "organizations":
            return False
        if op in ORG_OPS:
            return True
        if op in HANDSHAKE_OPS:
            return call.params.get("HandshakeId") in self.handshakes
        if op in TAG_OPS:
            return str(call.params.get("ResourceId", "")).startswith("rt-")
        return False

    def _me(self) -> str:
        return get_account_id_from(self.call.access_key or "")

    def _shown(self, t: dict[str, Any]) -> bool:
        """Whether a read shows transfer ``t`` yet (see ``settings``: readLagSeconds)."""
        return self.now() >= t["created"] + self.read_lag

    def _transfer(self, tid: str) -> dict[str, Any]:
        t = self.transfers.get(tid)
        me = self._me()
        if t is None or not self._shown(t) or me not in (t["master"], t["Source"].get("ManagementAccountId")):
            raise EmulatedError("ResponsibilityTransferNotFoundException", "We can't find a transfer that you specified.")
        return t

    # -- organizations ---------------------------------------------------------------------
    def _check_start(self, start: float) -> None:
        d = dt.datetime.fromtimestamp(start, dt.timezone.utc)
        if (d.hour, d.minute, d.second, d.microsecond) != (0, 0, 0, 0):
            raise _invalid("The start date must be at 00:00:00 UTC.", "START_DATE_NOT_BEGINNING_OF_DAY")
        if d.day != 1:
            raise _invalid("The start date must be the first day of a month.", "START_DATE_NOT_BEGINNING_OF_MONTH")
        if start - self.now() < DAY:
            raise _invalid("The invitation must be accepted at least 24 hours before the start date.", "START_DATE_TOO_EARLY")

    def _check_target(self, backend, target: dict[str, Any]) -> None:
        if target["Type"] not in ("ACCOUNT", "EMAIL"):
            raise _invalid("Valid input values for the Target parameter are ACCOUNT and EMAIL only.", "INVALID_PARTY_TYPE_TARGET")
        org = backend.org
        master = next((a for a in backend.accounts if a.id == org.master_account_id), None)
        mine = target["Id"] in (org.master_account_id, getattr(master, "email", None))
        if mine:
            raise EmulatedError(
                "HandshakeConstraintViolationException",
                "The source and target of a transfer cannot be the same.",
                Reason="SOURCE_AND_TARGET_CANNOT_MATCH",
            )
        if target["Type"] == "ACCOUNT" and any(a.id == target["Id"] for a in backend.accounts):
            raise EmulatedError(
                "HandshakeConstraintViolationException",
                "The target account is not the management account of another organization.",
                Reason="TARGET_ACCOUNT_VALIDATION_FAILURE",
            )
        for t in self.transfers.values():
            if t["Status"] not in LIVE or t["target_id"] != target["Id"]:
                continue
            if t["Status"] == "REQUESTED" and t["master"] == org.master_account_id:
                raise EmulatedError("DuplicateHandshakeException", "A handshake with the same action and target already exists.")
            raise EmulatedError(
                "HandshakeConstraintViolationException",
                "The organization already has a billing transfer.",
                Reason="RESPONSIBILITY_TRANSFER_ALREADY_EXISTS",
            )

    def _check_tags(self, tags: list[dict[str, str]]) -> None:
        keys = [t["Key"] for t in tags]
        if len(set(keys)) != len(keys):
            raise _invalid("Tag keys must be unique among the tags attached to the same entity.", "DUPLICATE_TAG_KEY")
        if len(keys) > MAX_TAGS:
            raise EmulatedError(
                "ConstraintViolationException", f"At most {MAX_TAGS} tags are allowed.", Reason="MAX_TAG_LIMIT_EXCEEDED"
            )

    def op_InviteOrganizationToTransferResponsibility(self, params: dict[str, Any]) -> dict[str, Any]:
        backend = organizations_backends[self._me()]["aws"]
        if backend.org is None or backend.org.master_account_id != self._me():
            raise EmulatedError("AccessDeniedException", "You can only call this operation from the management account.")
        target = params["Target"]
        self._check_target(backend, target)
        start = _epoch(params["StartTimestamp"])
        self._check_start(start)
        tags = params.get("Tags") or []
        self._check_tags(tags)
        now = self.now()
        org = backend.org
        tid = "rt-" + secrets.token_hex(6)
        hid = "h-" + secrets.token_hex(6)
        source = {"ManagementAccountId": target["Id"]} if target["Type"] == "ACCOUNT" else {"ManagementAccountEmail": target["Id"]}
        t = {
            "Arn": f"arn:aws:organizations::{org.master_account_id}:transfer/{org.id}/billing/inbound/{tid}",
            "Name": params["SourceName"],
            "Id": tid,
            "Type": "BILLING",
            "Status": "REQUESTED",
            "Source": source,
            "Target": {"ManagementAccountId": org.master_account_id},
            "StartTimestamp": start,
            "ActiveHandshakeId": hid,
            "master": org.master_account_id,
            "target_id": target["Id"],
            "tags": {x["Key"]: x["Value"] for x in tags},
            "created": now,
        }
        hs = {
            "Id": hid,
            "Arn": f"arn:aws:organizations::{org.master_account_id}:handshake/{org.id}/transfer_responsibility/{hid}",
            "Parties": [{"Id": org.id, "Type": "ORGANIZATION"}, {"Id": target["Id"], "Type": target["Type"]}],
            "State": "REQUESTED",
            "RequestedTimestamp": now,
            "ExpirationTimestamp": min(now + HANDSHAKE_TTL, start - DAY),
            "Action": "TRANSFER_RESPONSIBILITY",
            "Resources": [
                {"Type": "RESPONSIBILITY_TRANSFER", "Value": tid},
                {"Type": "TRANSFER_START_TIMESTAMP", "Value": str(int(start))},
                {"Type": "TRANSFER_TYPE", "Value": "BILLING"},
            ],
            "transfer": tid,
        }
        if params.get("Notes"):
            hs["Resources"].append({"Type": "NOTES", "Value": params["Notes"]})
        self.transfers[tid] = t
        self.handshakes[hid] = hs
        return {"Handshake": self._public_handshake(hs)}

    def _public_handshake(self, hs: dict[str, Any]) -> dict[str, Any]:
        self._expire()
        keys = ("Id", "Arn", "Parties", "State", "RequestedTimestamp", "ExpirationTimestamp", "Action", "Resources")
        return {k: hs[k] for k in keys}

    def _expire(self) -> None:
        now = self.now()
        for hs in self.handshakes.values():
            if hs["State"] == "REQUESTED" and hs["ExpirationTimestamp"] <= now:
                self._end(hs, "EXPIRED")

    def _end(self, hs: dict[str, Any], state: str) -> None:
        hs["State"] = state
        self.transfers[hs["transfer"]]["Status"] = state

    def op_ListInboundResponsibilityTransfers(self, params: dict[str, Any]) -> dict[str, Any]:
        self._expire()
        me = self._me()
        items = [_public(t) for t in self.transfers.values() if t["master"] == me and self._shown(t)]
        return paging.page("organizations", self.call.operation, params, items, "ResponsibilityTransfers")

    def op_ListOutboundResponsibilityTransfers(self, params: dict[str, Any]) -> dict[str, Any]:
        self._expire()
        me = self._me()
        items = [_public(t) for t in self.transfers.values() if t["Source"].get("ManagementAccountId") == me and self._shown(t)]
        return paging.page("organizations", self.call.operation, params, items, "ResponsibilityTransfers")

    def op_DescribeResponsibilityTransfer(self, params: dict[str, Any]) -> dict[str, Any]:
        self._expire()
        return {"ResponsibilityTransfer": _public(self._transfer(params["Id"]))}

    def op_TerminateResponsibilityTransfer(self, params: dict[str, Any]) -> dict[str, Any]:
        self._expire()
        t = self._transfer(params["Id"])
        if t["Status"] == "WITHDRAWN":
            raise EmulatedError("ResponsibilityTransferAlreadyInStatusException", "The responsibility transfer is already in the status that you specified.")
        if t["Status"] != "ACCEPTED":
            raise EmulatedError(
                "InvalidResponsibilityTransferTransitionException",
                f"The responsibility transfer can't transition from {t['Status']}.",
            )
        now = self.now()
        end = _epoch(params["EndTimestamp"]) if params.get("EndTimestamp") is not None else end_of_month(now)
        if end != end_of_month(end):
            raise _invalid("The end date must be 23:59:59 UTC on the last day of a month.", "END_DATE_NOT_END_OF_MONTH")
        if end < now:
            raise _invalid("The end date is in the past.", "END_DATE_TOO_EARLY")
        t["Status"] = "WITHDRAWN"
        t["EndTimestamp"] = end
        return {"ResponsibilityTransfer": _public(t)}

    def op_CancelHandshake(self, params: dict[str, Any]) -> dict[str, Any]:
        self._expire()
        hs = self.handshakes[params["HandshakeId"]]
        if hs["State"] != "REQUESTED":
            raise EmulatedError("InvalidHandshakeTransitionException", f"You can't cancel a handshake that is {hs['State']}.")
        self._end(hs, "CANCELED")
        return {"Handshake": self._public_handshake(hs)}

    def op_DescribeHandshake(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Handshake": self._public_handshake(self.handshakes[params["HandshakeId"]])}

    def _tagged(self, params: dict[str, Any]) -> dict[str, Any]:
        t = self.transfers.get(params["ResourceId"])
        if t is None or t["master"] != self._me():
            raise EmulatedError("TargetNotFoundException", "We can't find a root, OU, account, or policy with the TargetId that you specified.")
        return t

    def op_ListTagsForResource(self, params: dict[str, Any]) -> dict[str, Any]:
        t = self._tagged(params)
        items = [{"Key": k, "Value": v} for k, v in sorted(t["tags"].items())]
        return paging.page("organizations", self.call.operation, params, items, "Tags")

    def op_TagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        t = self._tagged(params)
        self._check_tags(params["Tags"])
        tags = dict(t["tags"], **{x["Key"]: x["Value"] for x in params["Tags"]})
        self._check_tags([{"Key": k, "Value": v} for k, v in tags.items()])
        t["tags"] = tags
        return {}

    def op_UntagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        t = self._tagged(params)
        for k in params["TagKeys"]:
            t["tags"].pop(k, None)
        return {}

    # -- billingconductor ------------------------------------------------------------------
    def _by_arn(self, arn: str) -> dict[str, Any]:
        t = next((t for t in self.transfers.values() if t["Arn"] == arn), None)
        if t is None or self._me() not in (t["master"], t["Source"].get("ManagementAccountId")):
            raise EmulatedError(
                "ResourceNotFoundException", f"billing transfer {arn} was not found", 404, ResourceId=arn, ResourceType="responsibilitytransfer"
            )
        return t

    def _preference(self, t: dict[str, Any]) -> dict[str, Any]:
        p = self.preferences.get(t["Arn"]) or {"Enabled": False}
        out = {"ResponsibilityTransferArn": t["Arn"], "AutoBillingTransferBillingGroupCreation": {"Enabled": p["Enabled"]}}
        if p.get("PricingPlanArn"):
            out["AutoBillingTransferBillingGroupCreation"]["PricingPlanArn"] = p["PricingPlanArn"]
        if p.get("LastModifiedTime") is not None:
            out["LastModifiedTime"] = p["LastModifiedTime"]
        return out

    def op_GetBillingTransferPreference(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._preference(self._by_arn(params["ResponsibilityTransferArn"]))

    def _check_plan(self, arn: str) -> None:
        if arn.rsplit("/", 1)[-1] in MANAGED_PLANS:
            return
        from . import REGISTRY

        plans = getattr(REGISTRY.get("billingconductor"), "plans", {})
        plan = plans.get(arn)
        if plan is None or plan.get("payer") != self._me():
            raise EmulatedError("ResourceNotFoundException", f"pricing plan {arn} was not found", 404, ResourceId=arn, ResourceType="pricingplan")

    def op_UpdateBillingTransferPreference(self, params: dict[str, Any]) -> dict[str, Any]:
        token = self.call.headers.get("x-amzn-client-token") or params.get("ClientToken")
        if token and token in self.tokens:
            return self.tokens[token]
        t = self._by_arn(params["ResponsibilityTransferArn"])
        wanted = params["AutoBillingTransferBillingGroupCreation"]
        enabled = bool(wanted.get("Enabled"))
        plan = wanted.get("PricingPlanArn")
        if enabled != bool(plan):
            raise EmulatedError(
                "ValidationException",
                "PricingPlanArn is required when Enabled is true, and must be omitted when Enabled is false.",
                Reason="FIELD_VALIDATION_FAILED",
                Fields=[{"Name": "PricingPlanArn", "Message": "required when Enabled is true, omitted when false"}],
            )
        if plan:
            self._check_plan(plan)
        self.preferences[t["Arn"]] = {"Enabled": enabled, "PricingPlanArn": plan, "LastModifiedTime": int(self.now())}
        out = self._preference(t)
        if token:
            self.tokens[token] = out
        return out

    # -- test controls: the customer's side --------------------------------------------------
    def _find(self, payload: dict[str, Any]) -> dict[str, Any]:
        tid = payload.get("transferId")
        if tid is None and payload.get("handshakeId") in self.handshakes:
            tid = self.handshakes[payload["handshakeId"]]["transfer"]
        if tid not in self.transfers:
            raise EmulatedError("ResponsibilityTransferNotFoundException", f"no transfer {tid}", 404)
        self._expire()
        return self.transfers[tid]

    def _answer(self, payload: dict[str, Any], state: str) -> dict[str, Any]:
        t = self._find(payload)
        if t["Status"] != "REQUESTED":
            raise EmulatedError("InvalidHandshakeTransitionException", f"The transfer is {t['Status']}.")
        self._end(self.handshakes[t["ActiveHandshakeId"]], state)
        return {"ResponsibilityTransfer": _public(t)}

    def control_accept(self, payload: dict[str, Any]) -> dict[str, Any]:
        t = self._find(payload)
        if "ManagementAccountId" not in t["Source"]:
            t["Source"]["ManagementAccountId"] = payload.get("accountId") or f"{secrets.randbelow(10**12):012d}"
        return self._answer(payload, "ACCEPTED")

    def control_decline(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._answer(payload, "DECLINED")

    def control_expire(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._answer(payload, "EXPIRED")

    def control_withdraw(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The customer withdraws an accepted transfer: it ends at the end of this month."""
        t = self._find(payload)
        if t["Status"] != "ACCEPTED":
            raise EmulatedError("InvalidResponsibilityTransferTransitionException", f"The transfer is {t['Status']}.")
        t["Status"] = "WITHDRAWN"
        t["EndTimestamp"] = end_of_month(self.now())
        return {"ResponsibilityTransfer": _public(t)}

    def control_settings(self, payload: dict[str, Any]) -> dict[str, Any]:
        if "readLagSeconds" in payload:
            self.read_lag = float(payload["readLagSeconds"])
        return {"readLagSeconds": self.read_lag}

    def control_stats(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "transfers": {
                tid: {"status": t["Status"], "end": t.get("EndTimestamp"), "tags": t["tags"]} for tid, t in self.transfers.items()
            },
            "preferences": {arn: p for arn, p in self.preferences.items()},
        }


TRANSFERS = register(Transfers())
