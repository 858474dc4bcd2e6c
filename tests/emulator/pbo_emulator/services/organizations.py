"""AWS Organizations: what moto lacks or gets wrong, layered over moto's own backend.

moto keeps the organization, accounts, OUs and policies; this layer takes over:

- CreateAccount / DescribeCreateAccountStatus / ListCreateAccountStatus: a request stays
  IN_PROGRESS for ``createDelaySeconds``; at most 5 are in progress per organization; a duplicate
  e-mail ends FAILED with EMAIL_ALREADY_EXISTS and an address in the reserved ``.invalid``
  top-level domain with INVALID_EMAIL. The account appears in moto (ListAccounts) when the
  request succeeds. With ``activationDelaySeconds`` (default 0) a created account reports
  Account.State PENDING_ACTIVATION for that long before it is ACTIVE (``ACCOUNT_STATES``).
- CloseAccount: Account.State PENDING_CLOSURE for ``closeDelaySeconds``, then CLOSED; 90 days
  later the account leaves the organization. The management account is refused; closures are
  limited per rolling 30 days by the quota the CloseAccount doc gives (``close_quota``) unless
  ``closeQuota`` fixes a figure.
- Invitations: InviteAccountToOrganization, DescribeHandshake, ListHandshakesForOrganization,
  ListHandshakesForAccount, CancelHandshake, and test controls to accept, decline or expire a
  handshake. Finished handshakes are deleted 30 days after they ended.
- ``suspend`` puts an account in Account.State SUSPENDED, as AWS does when it restricts an
  account (``ACCOUNT_STATES``); ``reinstate`` makes it ACTIVE again.
- Account.Status is retired: no response carries it (``RETIRED_MEMBERS``, ``after``).
- Every list operation pages as AWS does (``paging.py``; moto's own list answers are re-paged
  by the app).
- Checks moto skips, made before the request reaches moto: SCP documents (JSON, statements,
  5,120 characters), duplicate attachments, at most 5 and at least 1 SCP per target, policies
  still attached, removing the management account, at most 50 tags per resource.

Test controls (``POST /_emulator/services/organizations/<name>``): ``settings``
(``createDelaySeconds``, ``closeDelaySeconds``, ``activationDelaySeconds``, ``closeQuota``: a
fixed figure, or null for AWS's formula), ``complete-creates``, ``suspend`` / ``reinstate``
(``{"accountId": ...}``), ``accept`` / ``decline`` / ``expire``
(``{"handshakeId": ..., "email": ..., "name": ...}``), ``advance`` (``{"seconds": N}`` moves
this service's clock), ``bulk-accounts``, ``stats``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

from moto.iam.models import get_account_id_from
from moto.organizations import utils as moto_org_utils
from moto.organizations.models import FakeAccount, FakePolicy, organizations_backends

from .. import models
from .. import paging
from . import EmulatedError, EmulatedService, register

MAX_CREATES_IN_FLIGHT = 5
SCP_MAX_CHARS = 5120
SCPS_PER_TARGET = 5
DAY = 24 * 3600
HANDSHAKE_TTL = 15 * DAY
CLOSE_WINDOW = 30 * DAY
# organizations service-2.json, ListHandshakesForOrganization / ListHandshakesForAccount: "You can
# view CANCELED, ACCEPTED, DECLINED, or EXPIRED handshakes in API responses for 30 days before
# they are deleted"; shape Handshake: "Handshakes that are CANCELED, ACCEPTED, DECLINED, or
# EXPIRED show up in lists for only 30 days after entering that state After that they are deleted."
HANDSHAKE_RETENTION = 30 * DAY
HANDSHAKE_OPEN = ("OPEN", "REQUESTED")
# CloseAccount doc: "Resources remaining within the account after closing will be automatically
# deleted after 90 days ... After the permanent termination of the account after the 90-day
# waiting period, Organizations logs ... AccountDepartedOrganization event with
# departureMethod:CLEANED"; AWS Knowledge Center "organizations-suspended-console": after 90 days
# "the closed member account is permanently removed from your organization".
CLOSED_RETENTION = 90 * DAY
# At most 50 tags per Organizations resource: Organizations User Guide, "Quotas and service
# limits for AWS Organizations" (orgs_reference_limits). The model's Tags docs (TagResource,
# CreateAccount, CreateOrganizationalUnit, CreatePolicy): "if you exceed the maximum allowed
# number of tags for a resource, then the entire request fails". The refusal is
# ConstraintViolationException Reason MAX_TAG_LIMIT_EXCEEDED (the ConstraintViolationExceptionReason
# enum; the exception's doc text names it TAG_LIMIT_EXCEEDED).
MAX_TAGS = 50
SCP = "SERVICE_CONTROL_POLICY"

# Account.State. botocore's organizations service-2.json, shape Account, member State: "Each state
# represents a specific phase in the account lifecycle ... For more information about account
# states and their implications, see Monitor the state of your Amazon Web Services accounts in
# the Organizations User Guide" (orgs_manage_accounts_account_state). That page:
# - PENDING_ACTIVATION: "the account is unusable because the account sign-up process was
#   initiated but never completed ... After completing these steps, the account transitions to
#   the ACTIVE state" (``activationDelaySeconds`` holds a created account there);
# - SUSPENDED: "the account is unusable because AWS has restricted access. The account holder can
#   still view billing information and contact AWS Support, who can explain why the account is
#   suspended" (the ``suspend`` control). AWS's announcement of the field ("AWS Organizations now
#   provides account state information for member accounts"): "'SUSPENDED' for AWS-enforced
#   suspension, 'PENDING_CLOSURE' for in-process closure requests, and 'CLOSED' for accounts in
#   their 90-day reinstatement window".
ACCOUNT_STATES = ("PENDING_ACTIVATION", "ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "CLOSED")

# Members AWS no longer returns, by shape name. botocore's organizations service-2.json,
# shape Account, member Status: "The Status parameter in the Account object will be retired on
# September 9, 2026 ... (DescribeAccount, ListAccounts, ListAccountsForParent) ... use the State
# parameter instead". That date has passed: no response of this emulator carries Account.Status,
# whether our layer built it or moto did (moto's FakeAccount.describe emits both).
RETIRED_MEMBERS: dict[str, frozenset[str]] = {"Account": frozenset({"Status"})}


# Policy ids and ARNs as the model writes them. organizations PolicyArn pattern:
# "arn:aws:organizations::\d{12}:policy/o-[a-z0-9]{10,32}/[0-9a-z_]+/p-[0-9a-z]{10,32}" for a
# customer policy and "arn:aws:organizations::aws:policy/[0-9a-z_]+/p-[0-9a-zA-Z_]{10,128}" for an
# AWS-managed one (FullAWSAccess: arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess).
# moto 5.2.5 makes 8-character ids (p-xxxxxxxx) and puts AWS-managed policies under the
# organization's ARN; both break the pattern. moto reads utils.POLICY_ID_SIZE / POLICY_ID_REGEX
# when it makes and checks ids, so both are set here.
moto_org_utils.POLICY_ID_SIZE = 12
moto_org_utils.POLICY_ID_REGEX = (
    rf"{moto_org_utils.DEFAULT_SCP_POLICY_ID}|{moto_org_utils.DEFAULT_RCP_POLICY_ID}|p-[a-z0-9]{{12}}"
)
_moto_policy_arn = FakePolicy.arn


def _policy_arn(policy) -> str:
    arn = _moto_policy_arn.fget(policy)
    if getattr(policy, "aws_managed", False):
        partition, kind = arn.split(":")[1], arn.split("/")[-2]
        return f"arn:{partition}:organizations::aws:policy/{kind}/{policy.id}"
    return arn


FakePolicy.arn = property(_policy_arn)


def close_quota(members: int) -> int:
    """How many member accounts may be closed in a rolling 30 days. organizations
    service-2.json, CloseAccount: "Within a rolling 30 day period you can close the higher of
    either 250 or 20% of the member accounts in your organization, up to a maximum of 1,000."
    (Older text: "only 10% of member accounts, between 10 and 1000".)"""
    return min(1000, max(250, members * 20 // 100))


def public_account(account) -> dict[str, Any]:
    """An Account as AWS returns it today: moto's description without the retired members."""
    out = account.describe()
    for name in RETIRED_MEMBERS["Account"]:
        out.pop(name, None)
    return out


def _constraint(message: str, reason: str) -> EmulatedError:
    return EmulatedError("ConstraintViolationException", message, 400, Reason=reason)


class Organizations(EmulatedService):
    name = "organizations"

    def reset(self) -> None:
        self.create_delay = 1.0
        self.close_delay = 1.0
        self.activation_delay = 0.0
        self.activating: dict[str, tuple[str, float]] = {}  # account -> (management account, active at)
        self.close_quota: int | None = None  # None: close_quota(members), AWS's formula
        self.clock_offset = 0.0
        self.requests: dict[str, dict[str, Any]] = {}
        self.handshakes: dict[str, dict[str, Any]] = {}
        self.closures: list[tuple[str, float]] = []
        self.pending_closure: dict[str, tuple[str, float]] = {}
        self.closed: dict[str, tuple[str, float]] = {}  # account -> (management account, closed at)
        self.max_in_flight = 0

    # -- helpers -------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.clock_offset

    def _backend_of(self, access_key: str | None):
        return organizations_backends[get_account_id_from(access_key or "")]["aws"]

    def _org_backend(self, access_key: str | None):
        backend = self._backend_of(access_key)
        if backend.org is None:
            raise EmulatedError(
                "AWSOrganizationsNotInUseException",
                "Your account is not a member of an organization.",
            )
        return backend

    @staticmethod
    def _account(backend, account_id: str):
        return next((a for a in backend.accounts if a.id == account_id), None)

    @staticmethod
    def _target(backend, target_id: str):
        return next((o for o in backend.ou if o.id == target_id), None) or next(
            (a for a in backend.accounts if a.id == target_id), None
        )

    def _in_flight(self, master: str) -> list[dict[str, Any]]:
        return [r for r in self.requests.values() if r["master"] == master and r["State"] == "IN_PROGRESS"]

    def after(self, call, output: dict[str, Any]) -> dict[str, Any]:
        """Drop retired members (Account.Status) from every output, moto's included."""
        model = models.service_model(self.name)
        if model is not None and call.operation in model.operation_names:
            models.strip_members(model.operation_model(call.operation).output_shape, output, RETIRED_MEMBERS)
        return output

    # -- time-based state, and checks moto skips ---------------------------------------------
    def before(self, call) -> None:
        self._advance()
        op = call.operation
        params = call.params
        if op in ("CreateAccount", "CreateOrganizationalUnit", "CreatePolicy", "InviteAccountToOrganization", "TagResource"):
            self._check_tags(call)
        if op in ("CreatePolicy", "UpdatePolicy") and params.get("Content") is not None:
            if op == "UpdatePolicy" or params.get("Type", SCP) == SCP:
                validate_scp(params["Content"])
        elif op == "AttachPolicy":
            self._check_attach(call)
        elif op == "DetachPolicy":
            self._check_detach(call)
        elif op == "DeletePolicy":
            backend = self._backend_of(call.access_key)
            policy = next((p for p in backend.policies if p.id == params.get("PolicyId")), None)
            if policy is not None and policy.attachments:
                raise EmulatedError("PolicyInUseException", "The policy is attached to one or more entities.")
        elif op == "RemoveAccountFromOrganization":
            backend = self._backend_of(call.access_key)
            if backend.org is not None and params.get("AccountId") == backend.org.master_account_id:
                raise _constraint(
                    "The management account cannot be removed from its organization.",
                    "ACCOUNT_CANNOT_LEAVE_ORGANIZATION",
                )
            # Leaving the organization ends the account's policy attachments (moto keeps them).
            self._detach_all(backend, self._account(backend, params.get("AccountId", "")))
        elif op == "DeleteOrganizationalUnit":
            backend = self._backend_of(call.access_key)
            ou_id = params.get("OrganizationalUnitId", "")
            ou = next((o for o in backend.ou if o.id == ou_id), None)
            empty = not any(a.parent_id == ou_id for a in backend.accounts) and not any(
                o.parent_id == ou_id for o in backend.ou
            )
            if ou is not None and empty:
                # So does deleting an OU (moto keeps them, and then refuses DeletePolicy).
                self._detach_all(backend, ou)

    def _check_tags(self, call) -> None:
        tags = call.params.get("Tags") or []
        if not isinstance(tags, list):
            return
        keys = [t.get("Key") for t in tags if isinstance(t, dict)]
        if len(set(keys)) != len(keys):
            # InvalidInputException doc: "DUPLICATE_TAG_KEY: Tag keys must be unique among the
            # tags attached to the same entity."
            raise EmulatedError(
                "InvalidInputException", "Tag keys must be unique among the tags attached to the same entity.", Reason="DUPLICATE_TAG_KEY"
            )
        existing: set[str] = set()
        if call.operation == "TagResource":
            backend = self._backend_of(call.access_key)
            try:
                resource = backend._get_resource_for_tagging(call.params.get("ResourceId", ""))
            except Exception:  # noqa: BLE001 - moto answers for a resource it doesn't know
                return
            existing = set(resource.tags)
        total = len(existing | set(keys))
        if total > MAX_TAGS:
            raise _constraint(
                f"The resource would have {total} tags; at most {MAX_TAGS} are allowed.", "MAX_TAG_LIMIT_EXCEEDED"
            )

    def _members(self, backend) -> int:
        return sum(1 for a in backend.accounts if a.id != backend.org.master_account_id)

    def effective_close_quota(self, backend) -> int:
        return self.close_quota if self.close_quota is not None else close_quota(self._members(backend))

    def _advance(self) -> None:
        now = self.now()
        for req in self.requests.values():
            if req["State"] == "IN_PROGRESS" and now >= req["due"]:
                self._complete(req)
        for account_id, (master, closed_at) in list(self.closed.items()):
            if now >= closed_at + CLOSED_RETENTION:
                backend = organizations_backends[master]["aws"]
                account = self._account(backend, account_id)
                if account is not None:
                    self._detach_all(backend, account)
                    backend.accounts.remove(account)
                organizations_backends.master_accounts.pop(account_id, None)
                del self.closed[account_id]
        for account_id, (master, due) in list(self.pending_closure.items()):
            if now >= due:
                account = self._account(organizations_backends[master]["aws"], account_id)
                if account is not None:
                    # Account.State after a finished closure is CLOSED: AWS's announcement of
                    # the State field ("AWS Organizations now provides account state information
                    # for member accounts") gives 'CLOSED for accounts in their 90-day
                    # reinstatement window' and 'SUSPENDED for AWS-enforced suspension'.
                    # moto's internal .status (the retired field) is kept for moto's own checks.
                    account.status = "SUSPENDED"
                    account.state = "CLOSED"
                    self.closed[account_id] = (master, due)
                del self.pending_closure[account_id]
        for account_id, (master, due) in list(self.activating.items()):
            if now >= due:
                account = self._account(organizations_backends[master]["aws"], account_id)
                if account is not None and account.state == "PENDING_ACTIVATION":
                    account.state = "ACTIVE"
                del self.activating[account_id]
        for hid, hs in list(self.handshakes.items()):
            if hs["State"] in HANDSHAKE_OPEN and now >= hs["ExpirationTimestamp"]:
                hs["State"] = "EXPIRED"
                hs["ended"] = hs["ExpirationTimestamp"]
            if hs.get("ended") is not None and now >= hs["ended"] + HANDSHAKE_RETENTION:
                del self.handshakes[hid]

    def _complete(self, req: dict[str, Any]) -> None:
        backend = organizations_backends[req["master"]]["aws"]
        email = req["Email"].lower()
        req["CompletedTimestamp"] = self.now()
        if any(a.email.lower() == email for a in backend.accounts):
            req["State"], req["FailureReason"] = "FAILED", "EMAIL_ALREADY_EXISTS"
            return
        if email.endswith(".invalid"):
            req["State"], req["FailureReason"] = "FAILED", "INVALID_EMAIL"
            return
        kwargs = {"AccountName": req["AccountName"], "Email": req["Email"], "Tags": req.get("Tags", [])}
        if req.get("RoleName"):
            kwargs["RoleName"] = req["RoleName"]
        out = backend.create_account(**kwargs)
        req["State"] = "SUCCEEDED"
        req["AccountId"] = out["CreateAccountStatus"]["AccountId"]
        if self.activation_delay > 0:
            account = self._account(backend, req["AccountId"])
            account.state = "PENDING_ACTIVATION"
            self.activating[account.id] = (req["master"], req["CompletedTimestamp"] + self.activation_delay)

    @staticmethod
    def _detach_all(backend, target) -> None:
        if target is None:
            return
        for policy in list(target.attached_policies):
            if target in policy.attachments:
                policy.attachments.remove(target)
        target.attached_policies.clear()

    def _check_attach(self, call) -> None:
        backend = self._backend_of(call.access_key)
        policy = next((p for p in backend.policies if p.id == call.params.get("PolicyId")), None)
        target = self._target(backend, call.params.get("TargetId", ""))
        if policy is None or target is None:
            return
        if policy in target.attached_policies:
            raise EmulatedError(
                "DuplicatePolicyAttachmentException", "The selected policy is already attached to the specified target."
            )
        same_type = [p for p in target.attached_policies if p.type == policy.type]
        if len(same_type) >= SCPS_PER_TARGET:
            raise _constraint(
                f"The target already has {len(same_type)} policies of type {policy.type} attached (the most allowed).",
                "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
            )

    def _check_detach(self, call) -> None:
        backend = self._backend_of(call.access_key)
        policy = next((p for p in backend.policies if p.id == call.params.get("PolicyId")), None)
        target = self._target(backend, call.params.get("TargetId", ""))
        if policy is None or target is None:
            return
        if policy not in target.attached_policies:
            raise EmulatedError("PolicyNotAttachedException", "The policy isn't attached to the specified target.")
        same_type = [p for p in target.attached_policies if p.type == policy.type]
        if len(same_type) <= 1:
            raise _constraint(
                "A target must keep at least one policy of this type attached.",
                "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
            )

    # -- account creation ------------------------------------------------------------------
    def op_CreateAccount(self, params: dict[str, Any]) -> dict[str, Any]:
        backend = self._org_backend(self.call.access_key)
        master = backend.org.master_account_id
        if len(self._in_flight(master)) >= MAX_CREATES_IN_FLIGHT:
            raise _constraint(
                "You have reached the limit of 5 account creations in progress.",
                "ACCOUNT_CREATION_RATE_LIMIT_EXCEEDED",
            )
        req = {
            "Id": "car-" + secrets.token_hex(16),
            "AccountName": params["AccountName"],
            "Email": params["Email"],
            "RoleName": params.get("RoleName"),
            "Tags": params.get("Tags", []),
            "State": "IN_PROGRESS",
            "RequestedTimestamp": self.now(),
            "due": self.now() + self.create_delay,
            "master": master,
        }
        self.requests[req["Id"]] = req
        self.max_in_flight = max(self.max_in_flight, len(self._in_flight(master)))
        return {"CreateAccountStatus": _public_request(req)}

    def op_DescribeCreateAccountStatus(self, params: dict[str, Any]) -> dict[str, Any]:
        backend = self._org_backend(self.call.access_key)
        req = self.requests.get(params["CreateAccountRequestId"])
        if req is None or req["master"] != backend.org.master_account_id:
            raise EmulatedError(
                "CreateAccountStatusNotFoundException", "We can't find a create account request with the CreateAccountRequestId that you specified."
            )
        return {"CreateAccountStatus": _public_request(req)}

    # -- listing accounts ------------------------------------------------------------------
    # moto describes every account for every page (quadratic at thousands of accounts);
    # these describe only the page asked for, in the same order and pages.
    def op_ListAccounts(self, params: dict[str, Any]) -> dict[str, Any]:
        backend = self._org_backend(self.call.access_key)
        return self._account_page(list(backend.accounts), params)

    def op_ListAccountsForParent(self, params: dict[str, Any]) -> dict[str, Any]:
        backend = self._org_backend(self.call.access_key)
        parent = params["ParentId"]
        if not any(o.id == parent for o in backend.ou):
            raise EmulatedError("ParentNotFoundException", "You specified a parent that doesn't exist.")
        return self._account_page([a for a in backend.accounts if a.parent_id == parent], params)

    def _account_page(self, accounts: list, params: dict[str, Any]) -> dict[str, Any]:
        out = paging.page(self.name, self.call.operation, params, accounts, "Accounts")
        out["Accounts"] = [public_account(a) for a in out["Accounts"]]
        return out

    def op_ListCreateAccountStatus(self, params: dict[str, Any]) -> dict[str, Any]:
        backend = self._org_backend(self.call.access_key)
        states = params.get("States") or ["IN_PROGRESS", "SUCCEEDED", "FAILED"]
        items = [
            _public_request(r)
            for r in self.requests.values()
            if r["master"] == backend.org.master_account_id and r["State"] in states
        ]
        return paging.page(self.name, self.call.operation, params, items, "CreateAccountStatuses")

    # -- closing -------------------------------------------------------------------------
    def op_CloseAccount(self, params: dict[str, Any]) -> dict[str, Any]:
        backend = self._org_backend(self.call.access_key)
        account_id = params["AccountId"]
        master = backend.org.master_account_id
        if account_id == master:
            raise _constraint("The management account can't be closed with CloseAccount.", "CANNOT_CLOSE_MANAGEMENT_ACCOUNT")
        account = self._account(backend, account_id)
        if account is None:
            raise EmulatedError("AccountNotFoundException", "You specified an account that doesn't exist.")
        if account.state in ("PENDING_CLOSURE", "CLOSED"):
            raise EmulatedError("AccountAlreadyClosedException", "You attempted to close an account that is already closed.")
        now = self.now()
        recent = [t for m, t in self.closures if m == master and now - t < CLOSE_WINDOW]
        if len(recent) >= self.effective_close_quota(backend):
            raise _constraint(
                f"{len(recent)} accounts were closed in the last 30 days, the most allowed.", "CLOSE_ACCOUNT_QUOTA_EXCEEDED"
            )
        account.status = "PENDING_CLOSURE"
        account.state = "PENDING_CLOSURE"
        self.closures.append((master, now))
        self.pending_closure[account_id] = (master, now + self.close_delay)
        return {}

    # -- invitations ---------------------------------------------------------------------
    def op_InviteAccountToOrganization(self, params: dict[str, Any]) -> dict[str, Any]:
        backend = self._org_backend(self.call.access_key)
        target = params["Target"]
        target_id = target["Id"]
        if target["Type"] == "ACCOUNT" and self._account(backend, target_id) is not None:
            raise EmulatedError(
                "HandshakeConstraintViolationException",
                "The account is already a member of this organization.",
                Reason="ALREADY_IN_AN_ORGANIZATION",
            )
        for hs in self.handshakes.values():
            if hs["master"] == backend.org.master_account_id and hs["target"] == target_id and hs["State"] in HANDSHAKE_OPEN:
                raise EmulatedError("DuplicateHandshakeException", "A handshake with the same action and target already exists.")
        hid = "h-" + secrets.token_hex(8)
        now = self.now()
        org = backend.org
        resources = [
            {"Type": "ORGANIZATION", "Value": org.id},
            {"Type": target["Type"], "Value": target_id},
        ]
        if params.get("Notes"):
            resources.append({"Type": "NOTES", "Value": params["Notes"]})
        hs = {
            "Id": hid,
            "Arn": f"arn:aws:organizations::{org.master_account_id}:handshake/{org.id}/invite/{hid}",
            "Parties": [{"Id": org.id, "Type": "ORGANIZATION"}, {"Id": target_id, "Type": target["Type"]}],
            "State": "OPEN",
            "RequestedTimestamp": now,
            "ExpirationTimestamp": now + HANDSHAKE_TTL,
            "Action": "INVITE",
            "Resources": resources,
            "master": org.master_account_id,
            "target": target_id,
            "target_type": target["Type"],
        }
        self.handshakes[hid] = hs
        return {"Handshake": _public_handshake(hs)}

    def _handshake(self, hid: str) -> dict[str, Any]:
        hs = self.handshakes.get(hid)
        if hs is None:
            raise EmulatedError("HandshakeNotFoundException", "We can't find a handshake with the HandshakeId that you specified.")
        return hs

    def op_DescribeHandshake(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Handshake": _public_handshake(self._handshake(params["HandshakeId"]))}

    def op_ListHandshakesForOrganization(self, params: dict[str, Any]) -> dict[str, Any]:
        backend = self._org_backend(self.call.access_key)
        action = (params.get("Filter") or {}).get("ActionType")
        items = [
            _public_handshake(h)
            for h in self.handshakes.values()
            if h["master"] == backend.org.master_account_id and (action is None or h["Action"] == action)
        ]
        return paging.page(self.name, self.call.operation, params, items, "Handshakes")

    def op_ListHandshakesForAccount(self, params: dict[str, Any]) -> dict[str, Any]:
        """The handshakes the calling account received ("Lists the recent handshakes that you
        have received"), finished ones for 30 days."""
        me = get_account_id_from(self.call.access_key or "")
        action = (params.get("Filter") or {}).get("ActionType")
        items = [
            _public_handshake(h)
            for h in self.handshakes.values()
            if h["target"] == me and (action is None or h["Action"] == action)
        ]
        return paging.page(self.name, self.call.operation, params, items, "Handshakes")

    def op_CancelHandshake(self, params: dict[str, Any]) -> dict[str, Any]:
        hs = self._handshake(params["HandshakeId"])
        if hs["State"] not in HANDSHAKE_OPEN:
            raise EmulatedError(
                "InvalidHandshakeTransitionException", f"You can't cancel a handshake that is {hs['State']}."
            )
        self._finish(hs, "CANCELED")
        return {"Handshake": _public_handshake(hs)}

    def _finish(self, hs: dict[str, Any], state: str) -> None:
        hs["State"] = state
        hs["ended"] = self.now()

    # -- test controls -------------------------------------------------------------------
    def control_settings(self, payload: dict[str, Any]) -> dict[str, Any]:
        if "createDelaySeconds" in payload:
            self.create_delay = float(payload["createDelaySeconds"])
        if "closeDelaySeconds" in payload:
            self.close_delay = float(payload["closeDelaySeconds"])
        if "activationDelaySeconds" in payload:
            self.activation_delay = float(payload["activationDelaySeconds"])
        if "closeQuota" in payload:
            value = payload["closeQuota"]
            self.close_quota = None if value is None else int(value)
        return {
            "createDelaySeconds": self.create_delay,
            "closeDelaySeconds": self.close_delay,
            "activationDelaySeconds": self.activation_delay,
            "closeQuota": self.close_quota,
        }

    def control_complete_creates(self, payload: dict[str, Any]) -> dict[str, Any]:
        done = 0
        for req in self.requests.values():
            if req["State"] == "IN_PROGRESS":
                self._complete(req)
                done += 1
        return {"completed": done}

    def control_close_quota(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The CloseAccount quota now in force for ``managementAccountId``'s organization, and
        the closures counted against it."""
        backend = organizations_backends[payload.get("managementAccountId", "123456789012")]["aws"]
        if backend.org is None:
            raise EmulatedError("AWSOrganizationsNotInUseException", "Your account is not a member of an organization.")
        now = self.now()
        master = backend.org.master_account_id
        return {
            "members": self._members(backend),
            "quota": self.effective_close_quota(backend),
            "closedInWindow": sum(1 for m, t in self.closures if m == master and now - t < CLOSE_WINDOW),
        }

    def _member(self, payload: dict[str, Any]):
        backend = organizations_backends[payload.get("managementAccountId", "123456789012")]["aws"]
        account = self._account(backend, payload.get("accountId", "")) if backend.org is not None else None
        if account is None or account.id == backend.org.master_account_id:
            raise EmulatedError("AccountNotFoundException", "You specified an account that doesn't exist.")
        return account

    def control_suspend(self, payload: dict[str, Any]) -> dict[str, Any]:
        """AWS restricts the account: Account.State SUSPENDED (``ACCOUNT_STATES``)."""
        self._advance()
        account = self._member(payload)
        if account.state != "ACTIVE":
            raise EmulatedError("InvalidInputException", f"The account is {account.state}, not ACTIVE.")
        account.status = "SUSPENDED"  # moto's internal copy of the retired field
        account.state = "SUSPENDED"
        return {"accountId": account.id, "state": account.state}

    def control_reinstate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """AWS lifts a suspension: SUSPENDED becomes ACTIVE again."""
        self._advance()
        account = self._member(payload)
        if account.state != "SUSPENDED":
            raise EmulatedError("InvalidInputException", f"The account is {account.state}, not SUSPENDED.")
        account.status = "ACTIVE"
        account.state = "ACTIVE"
        return {"accountId": account.id, "state": account.state}

    def control_advance(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.clock_offset += float(payload.get("seconds", 0))
        self._advance()
        return {"clockOffsetSeconds": self.clock_offset}

    def control_bulk_accounts(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Add ``count`` ACTIVE accounts to the organization of ``managementAccountId`` at once
        (for benchmarks: no CreateAccount requests, no delay)."""
        backend = organizations_backends[payload.get("managementAccountId", "123456789012")]["aws"]
        prefix = payload.get("prefix", "bulk")
        ids = []
        for i in range(int(payload["count"])):
            out = backend.create_account(AccountName=f"{prefix}-{i:05d}", Email=f"{prefix}-{i:05d}@example.com", Tags=[])
            ids.append(out["CreateAccountStatus"]["AccountId"])
        return {"accountIds": ids}

    def control_stats(self, payload: dict[str, Any]) -> dict[str, Any]:
        by_state: dict[str, int] = {}
        for r in self.requests.values():
            by_state[r["State"]] = by_state.get(r["State"], 0) + 1
        return {
            "maxCreatesInFlight": self.max_in_flight,
            "createRequests": len(self.requests),
            "createRequestsByState": by_state,
            "handshakes": {h["Id"]: h["State"] for h in self.handshakes.values()},
            "closures": len(self.closures),
            # [requested, finished] of every creation, for slot-utilisation figures.
            "timeline": sorted([r["RequestedTimestamp"], r["due"]] for r in self.requests.values()),
        }

    def _respond(self, payload: dict[str, Any], state: str) -> dict[str, Any]:
        hs = self._handshake(payload.get("handshakeId", ""))
        if hs["State"] not in HANDSHAKE_OPEN:
            raise EmulatedError("InvalidHandshakeTransitionException", f"The handshake is {hs['State']}.")
        self._finish(hs, state)
        return {"Handshake": _public_handshake(hs)}

    def control_accept(self, payload: dict[str, Any]) -> dict[str, Any]:
        hs = self._handshake(payload.get("handshakeId", ""))
        out = self._respond(payload, "ACCEPTED")
        backend = organizations_backends[hs["master"]]["aws"]
        account_id = hs["target"] if hs["target_type"] == "ACCOUNT" else f"{secrets.randbelow(10**12):012d}"
        email = payload.get("email") or (hs["target"] if hs["target_type"] == "EMAIL" else f"owner-{account_id}@example.com")
        account = FakeAccount(backend.org, AccountName=payload.get("name") or f"invited-{account_id}", Email=email)
        account.id = account_id
        account.joined_method = "INVITED"
        backend.accounts.append(account)
        for policy in backend.policies:
            if policy.aws_managed and policy.type == SCP:
                backend.attach_policy(PolicyId=policy.id, TargetId=account.id)
        organizations_backends.master_accounts[account.id] = (hs["master"], backend.partition)
        out["AccountId"] = account_id
        return out

    def control_decline(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._respond(payload, "DECLINED")

    def control_expire(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._respond(payload, "EXPIRED")


def validate_scp(content: str) -> None:
    """Reject what AWS rejects for an SCP document."""
    if len(content) > SCP_MAX_CHARS:
        raise _constraint(
            f"The policy document has {len(content)} characters; the most allowed is {SCP_MAX_CHARS}.",
            "POLICY_CONTENT_LIMIT_EXCEEDED",
        )
    try:
        doc = json.loads(content)
    except ValueError as exc:
        raise EmulatedError("MalformedPolicyDocumentException", f"The policy is not valid JSON: {exc}") from exc
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise EmulatedError("MalformedPolicyDocumentException", "The policy must have a Statement.")
    if isinstance(doc, dict) and "Version" in doc and doc["Version"] not in ("2012-10-17", "2008-10-17"):
        raise EmulatedError("MalformedPolicyDocumentException", f"Unsupported policy Version {doc['Version']!r}.")
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") not in ("Allow", "Deny"):
            raise EmulatedError("MalformedPolicyDocumentException", "Each statement needs Effect Allow or Deny.")
        if "Action" not in st and "NotAction" not in st:
            raise EmulatedError("MalformedPolicyDocumentException", "Each statement needs Action or NotAction.")


def _public_request(req: dict[str, Any]) -> dict[str, Any]:
    keys = ("Id", "AccountName", "State", "RequestedTimestamp", "CompletedTimestamp", "AccountId", "FailureReason")
    return {k: req[k] for k in keys if req.get(k) is not None}


def _public_handshake(hs: dict[str, Any]) -> dict[str, Any]:
    keys = ("Id", "Arn", "Parties", "State", "RequestedTimestamp", "ExpirationTimestamp", "Action", "Resources")
    return {k: hs[k] for k in keys}


register(Organizations())
