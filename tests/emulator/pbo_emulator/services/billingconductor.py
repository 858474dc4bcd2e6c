"""AWS Billing Conductor, which moto lacks: pricing rules and plans, billing groups, custom
line items, tags, and cost reports computed from a seeded usage table.

Quotas and semantics follow the AWS documentation: at most 30 accounts per associate call (the
model says so too), an account in at most one billing group, at most one auto-associate
group, 500 rules per plan, names unique per payer, ClientToken idempotency (the same token
on the same operation returns the same ARN), custom line items only in the current or the
previous billing period.

Pro forma cost of a billing group for a period: each usage row of its accounts is priced at
its On-Demand cost changed by the most specific rule of the group's plan (SKU, then SERVICE,
then BILLING_ENTITY, then GLOBAL); MARKUP p multiplies by (1 + p/100), DISCOUNT by
(1 - p/100), TIERING changes nothing here. Custom line items are added: flat FEE +v, CREDIT -v;
a percentage item is p% of what it is associated with (other items), or of the group's
pro forma total before custom line items. Margin = pro forma - AWS cost; margin percentage =
margin / pro forma x 100 (0 when pro forma is 0).

The linked accounts of a payer are the accounts of the organization it manages (moto's
Organizations backend): AssociateAccounts and CreateBillingGroup accept only those (AWS API
reference, AssociateAccounts: "The account IDs must be a part of the consolidated billing
family during the current month"; AccountGrouping.LinkedAccountIds: "Account IDs must be a part
of the consolidated billing family"). ListAccountAssociations lists them all, with the group
of each associated one. Errors carry the members and reasons the model gives their shapes
(ConflictException ResourceId/ResourceType, ServiceLimitExceededException LimitCode/ServiceCode,
ValidationException Reason from ValidationExceptionReason). Lists page per ``paging.py``.

The Passthrough plan prices each usage row at what AWS charged for it (the AWS invoice passed
through); BasicPricingPlan at its On-Demand cost.

Custom line items of 2025-12 (What's New "AWS Billing Conductor ... itemized custom line items"
and the model's CreateCustomLineItemInput): ComputationRule ITEMIZED | CONSOLIDATED,
ChargeDetails.LineItemFilters (at most one, LineItemFiltersList max 1) with Attribute
LINE_ITEM_TYPE (Values: [SAVINGS_PLAN_NEGATION], or a line item type in AttributeValues) or
SERVICE (AttributeValues: one service code, AttributeValueList max 1), MatchOption EQUAL |
NOT_EQUAL, PresentationDetails.Service. Per
billing group at most 10 items with a filter and 5 ITEMIZED items (Billing Conductor quotas);
more is a ServiceLimitExceededException. UpdateCustomLineItem changes the filter
(UpdateCustomLineItemChargeDetails.LineItemFilters; an empty list removes it), never the
computation rule or presentation (UpdateCustomLineItemInput has neither).

GetBillingGroupCostReport (model: "the Amazon Web Services cost and charged amount (pro forma
cost) by Amazon Web Services service for a specific billing group"; BillingPeriodRange of up to
12 months, ExclusiveEndBillingPeriod after the start; GroupBy PRODUCT_NAME and/or
BILLING_PERIOD): one result per group-by key with Attributes [{Key, Value}] (PRODUCT_NAME: the
usage row's ``productName``, else its ``service``; BILLING_PERIOD: "Nov 2023" as the model's
example writes it). Usage is priced per row as above; a custom line item counts under its
PresentationDetails.Service when it has one, else under the product name "CustomLineItems"
(the emulator's choice: no AWS text says how they are grouped).

Test controls (``POST /_emulator/services/billingconductor/<name>``): ``usage``
(``{"period": "2026-11", "rows": [{"accountId", "service", "billingEntity", "usageType",
"operation", "onDemandCost", "awsCost"}]}``; appends), ``settings`` (``{"today": "2026-11-24"}``
fixes the current billing period), ``stats``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any

from moto.iam.models import get_account_id_from
from moto.organizations.models import organizations_backends

from .. import paging
from . import EmulatedError, EmulatedService, register

ACCOUNTS_PER_CALL = 30
RULES_PER_PLAN = 500
# Billing Conductor quotas per billing group (2025-12): custom line items with a line-item
# filter, and ITEMIZED custom line items.
FILTERED_ITEMS_PER_GROUP = 10
ITEMIZED_ITEMS_PER_GROUP = 5
# What a custom line item without PresentationDetails is grouped under in the cost report.
CUSTOM_LINE_ITEMS_PRODUCT = "CustomLineItems"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
SPECIFICITY = {"SKU": 0, "SERVICE": 1, "BILLING_ENTITY": 2, "GLOBAL": 3}
# AWS-managed pricing plans (no owner account in the ARN; pattern of PricingPlanFullArn in the
# model: "arn:aws(-cn)?:billingconductor::(aws|[0-9]{12}):pricingplan/(BasicPricingPlan|Passthrough|...)").
BASIC_PLAN = "arn:aws:billingconductor::aws:pricingplan/BasicPricingPlan"
PASSTHROUGH_PLAN = "arn:aws:billingconductor::aws:pricingplan/Passthrough"
MANAGED_PLANS = (BASIC_PLAN, PASSTHROUGH_PLAN)


def _kind(arn: str) -> str:
    """The resource type of a Billing Conductor ARN: billinggroup, pricingplan, ..."""
    return arn.split(":")[-1].split("/", 1)[0] if arn.startswith("arn:") else "unknown"


def _not_found(what: str, arn: str = "") -> EmulatedError:
    # ResourceNotFoundException: Message, ResourceId, ResourceType are required members.
    return EmulatedError("ResourceNotFoundException", f"{what} was not found", 404, ResourceId=arn, ResourceType=_kind(arn))


def _conflict(message: str, reason: str, arn: str = "") -> EmulatedError:
    # ConflictException: Message, ResourceId, ResourceType required; Reason from ConflictExceptionReason.
    return EmulatedError("ConflictException", message, 409, ResourceId=arn, ResourceType=_kind(arn), Reason=reason)


def _validation(message: str, reason: str) -> EmulatedError:
    # ValidationException Reason: one of ValidationExceptionReason in the model.
    return EmulatedError("ValidationException", message, 400, Reason=reason)


def _limit(message: str, limit_code: str, arn: str = "") -> EmulatedError:
    # ServiceLimitExceededException (HTTP 402): Message, LimitCode, ServiceCode required.
    return EmulatedError(
        "ServiceLimitExceededException", message, 402,
        LimitCode=limit_code, ServiceCode="billingconductor", ResourceId=arn, ResourceType=_kind(arn),
    )


def _money(v: float) -> str:
    return f"{v:.2f}"


class BillingConductor(EmulatedService):
    name = "billingconductor"

    def reset(self) -> None:
        self.rules: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.tokens: dict[tuple[str, str, str], str] = {}
        self.usage: list[dict[str, Any]] = []
        self.today: dt.date | None = None
        self.calls_by_size: list[int] = []

    # -- helpers -------------------------------------------------------------------------
    def payer(self) -> str:
        # Once per request: moto's lookup is slow, and lists ask for every object.
        if getattr(self, "_payer_of", None) is not self.call:
            self._payer_of = self.call
            self._payer = get_account_id_from(self.call.access_key or "")
        return self._payer

    def _mine(self, table: dict[str, dict[str, Any]], arn: str, what: str) -> dict[str, Any]:
        obj = table.get(arn)
        if obj is None or obj["payer"] != self.payer():
            raise _not_found(f"{what} {arn}", arn)
        return obj

    def _plan_usable(self, arn: str) -> None:
        """A plan a billing group may use: one of the payer's, or an AWS-managed one."""
        if arn not in MANAGED_PLANS:
            self._mine(self.plans, arn, "pricing plan")

    def _family(self) -> set[str]:
        """The payer's consolidated billing family: the accounts of the organization it
        manages (the payer alone when it manages none)."""
        payer = self.payer()
        backend = organizations_backends[payer]["aws"]
        if backend.org is None or backend.org.master_account_id != payer:
            return {payer}
        return {a.id for a in backend.accounts}

    def _account_details(self) -> dict[str, Any]:
        payer = self.payer()
        backend = organizations_backends[payer]["aws"]
        if backend.org is None or backend.org.master_account_id != payer:
            return {}
        return {a.id: a for a in backend.accounts}

    def _check_family(self, accounts: list[str], primary: str | None) -> None:
        family = self._family()
        if primary and primary not in family:
            raise _validation(
                f"The primary account {primary} is not part of the consolidated billing family of {self.payer()}",
                "ILLEGAL_PRIMARY_ACCOUNT",
            )
        strangers = [a for a in accounts if a not in family]
        if strangers:
            raise _validation(
                f"Accounts {', '.join(strangers)} are not part of the consolidated billing family of {self.payer()}",
                "ILLEGAL_ACCOUNTS",
            )

    def _idempotent(self, op: str, params: dict[str, Any]) -> str | None:
        token = params.get("ClientToken")
        if token:
            return self.tokens.get((self.payer(), op, token))
        return None

    def _remember(self, op: str, params: dict[str, Any], arn: str) -> None:
        if params.get("ClientToken"):
            self.tokens[(self.payer(), op, params["ClientToken"])] = arn

    def _unique_name(self, table: dict[str, dict[str, Any]], name: str, what: str) -> None:
        clash = next((o for o in table.values() if o["Name"] == name and o["payer"] == self.payer()), None)
        if clash is not None:
            raise _conflict(f"A {what} named {name} already exists", "RESOURCE_NAME_CONFLICT", clash["Arn"])

    def _arn(self, kind: str) -> str:
        return f"arn:aws:billingconductor::{self.payer()}:{kind}/{secrets.token_hex(5)}"

    def _set_tags(self, arn: str, tags: dict[str, str] | None) -> None:
        if tags:
            self.tags.setdefault(arn, {}).update(tags)

    def _period(self) -> str:
        today = self.today or dt.datetime.now(dt.timezone.utc).date()
        return f"{today.year:04d}-{today.month:02d}"

    def _previous(self) -> str:
        today = self.today or dt.datetime.now(dt.timezone.utc).date()
        first = today.replace(day=1) - dt.timedelta(days=1)
        return f"{first.year:04d}-{first.month:02d}"

    def _page(self, items: list[Any], key: str, params: dict[str, Any]) -> dict[str, Any]:
        return paging.page(self.name, self.call.operation, params, items, key)

    # -- pricing rules -------------------------------------------------------------------
    def op_CreatePricingRule(self, params: dict[str, Any]) -> dict[str, Any]:
        if arn := self._idempotent("CreatePricingRule", params):
            return {"Arn": arn}
        scope, kind = params["Scope"], params["Type"]
        if kind == "TIERING" and scope not in ("GLOBAL", "SERVICE"):
            raise _validation("TIERING rules are allowed only with GLOBAL or SERVICE scope", "ILLEGAL_SCOPE")
        if scope in ("SERVICE", "SKU") and not params.get("Service"):
            raise _validation(f"A {scope} rule needs Service", "ILLEGAL_SERVICE")
        if scope == "SKU" and not params.get("UsageType"):
            raise _validation("A SKU rule needs UsageType", "ILLEGAL_USAGE_TYPE")
        if scope == "BILLING_ENTITY" and not params.get("BillingEntity"):
            raise _validation("A BILLING_ENTITY rule needs BillingEntity", "ILLEGAL_BILLING_ENTITY")
        if kind != "TIERING" and params.get("ModifierPercentage") is None:
            raise _validation("ModifierPercentage is required for MARKUP and DISCOUNT rules", "ILLEGAL_MODIFIER_PERCENTAGE")
        self._unique_name(self.rules, params["Name"], "pricing rule")
        arn = self._arn("pricingrule")
        now = time.time()
        self.rules[arn] = {
            "payer": self.payer(),
            "Arn": arn,
            "Name": params["Name"],
            "Description": params.get("Description", ""),
            "Scope": scope,
            "Type": kind,
            "ModifierPercentage": float(params.get("ModifierPercentage") or 0),
            "Service": params.get("Service"),
            "BillingEntity": params.get("BillingEntity"),
            "UsageType": params.get("UsageType"),
            "Operation": params.get("Operation"),
            "Tiering": params.get("Tiering"),
            "CreationTime": int(now),
            "LastModifiedTime": int(now),
        }
        self._set_tags(arn, params.get("Tags"))
        self._remember("CreatePricingRule", params, arn)
        return {"Arn": arn}

    def _public_rule(self, r: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in r.items() if k != "payer" and v is not None}
        out["AssociatedPricingPlanCount"] = sum(1 for p in self.plans.values() if r["Arn"] in p["rules"])
        return out

    def op_ListPricingRules(self, params: dict[str, Any]) -> dict[str, Any]:
        # ListPricingRulesFilter has one member, Arns (a list); it was read as "Arn" and ignored.
        arns = (params.get("Filters") or {}).get("Arns")
        items = [
            self._public_rule(r)
            for r in self.rules.values()
            if r["payer"] == self.payer() and (not arns or r["Arn"] in arns)
        ]
        out = self._page(items, "PricingRules", params)
        out["BillingPeriod"] = params.get("BillingPeriod") or self._period()
        return out

    def op_UpdatePricingRule(self, params: dict[str, Any]) -> dict[str, Any]:
        r = self._mine(self.rules, params["Arn"], "pricing rule")
        for key in ("Name", "Description", "Type", "ModifierPercentage", "Tiering"):
            if params.get(key) is not None:
                r[key] = float(params[key]) if key == "ModifierPercentage" else params[key]
        r["LastModifiedTime"] = int(time.time())
        out = self._public_rule(r)
        out.pop("CreationTime", None)  # UpdatePricingRuleOutput has no CreationTime
        return out

    def op_DeletePricingRule(self, params: dict[str, Any]) -> dict[str, Any]:
        r = self._mine(self.rules, params["Arn"], "pricing rule")
        if any(r["Arn"] in p["rules"] for p in self.plans.values()):
            raise _conflict(
                "The pricing rule is associated with a pricing plan", "PRICING_RULE_ATTACHED_TO_PRICING_PLAN_DELETE_CONFLICT", r["Arn"]
            )
        del self.rules[r["Arn"]]
        return {"Arn": r["Arn"]}

    # -- pricing plans -------------------------------------------------------------------
    def op_CreatePricingPlan(self, params: dict[str, Any]) -> dict[str, Any]:
        if arn := self._idempotent("CreatePricingPlan", params):
            return {"Arn": arn}
        self._unique_name(self.plans, params["Name"], "pricing plan")
        rules = list(params.get("PricingRuleArns") or [])
        for r in rules:
            self._mine(self.rules, r, "pricing rule")
        arn = self._arn("pricingplan")
        now = int(time.time())
        self.plans[arn] = {
            "payer": self.payer(),
            "Arn": arn,
            "Name": params["Name"],
            "Description": params.get("Description", ""),
            "rules": rules,
            "CreationTime": now,
            "LastModifiedTime": now,
        }
        self._set_tags(arn, params.get("Tags"))
        self._remember("CreatePricingPlan", params, arn)
        return {"Arn": arn}

    def _public_plan(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "Arn": p["Arn"],
            "Name": p["Name"],
            "Description": p["Description"],
            "Size": len(p["rules"]),
            "CreationTime": p["CreationTime"],
            "LastModifiedTime": p["LastModifiedTime"],
        }

    def op_ListPricingPlans(self, params: dict[str, Any]) -> dict[str, Any]:
        arns = (params.get("Filters") or {}).get("Arns")
        items = [
            self._public_plan(p)
            for p in self.plans.values()
            if p["payer"] == self.payer() and (not arns or p["Arn"] in arns)
        ]
        out = self._page(items, "PricingPlans", params)
        out["BillingPeriod"] = params.get("BillingPeriod") or self._period()
        return out

    def op_UpdatePricingPlan(self, params: dict[str, Any]) -> dict[str, Any]:
        p = self._mine(self.plans, params["Arn"], "pricing plan")
        for key in ("Name", "Description"):
            if params.get(key) is not None:
                p[key] = params[key]
        p["LastModifiedTime"] = int(time.time())
        out = self._public_plan(p)
        out.pop("CreationTime")
        return out

    def op_DeletePricingPlan(self, params: dict[str, Any]) -> dict[str, Any]:
        p = self._mine(self.plans, params["Arn"], "pricing plan")
        if any(g["PricingPlanArn"] == p["Arn"] for g in self.groups.values()):
            raise _conflict(
                "The pricing plan is used by a billing group", "PRICING_PLAN_ATTACHED_TO_BILLING_GROUP_DELETE_CONFLICT", p["Arn"]
            )
        del self.plans[p["Arn"]]
        return {"Arn": p["Arn"]}

    def op_AssociatePricingRules(self, params: dict[str, Any]) -> dict[str, Any]:
        p = self._mine(self.plans, params["Arn"], "pricing plan")
        arns = params["PricingRuleArns"]
        for a in arns:
            self._mine(self.rules, a, "pricing rule")
        new = [a for a in arns if a not in p["rules"]]
        if len(p["rules"]) + len(new) > RULES_PER_PLAN:
            raise _limit("A pricing plan holds at most 500 rules", "PRICING_RULES_PER_PRICING_PLAN", p["Arn"])
        p["rules"].extend(new)
        return {"Arn": p["Arn"]}

    def op_DisassociatePricingRules(self, params: dict[str, Any]) -> dict[str, Any]:
        p = self._mine(self.plans, params["Arn"], "pricing plan")
        p["rules"] = [a for a in p["rules"] if a not in params["PricingRuleArns"]]
        return {"Arn": p["Arn"]}

    def op_ListPricingRulesAssociatedToPricingPlan(self, params: dict[str, Any]) -> dict[str, Any]:
        p = self._mine(self.plans, params["PricingPlanArn"], "pricing plan")
        out = self._page(list(p["rules"]), "PricingRuleArns", params)
        out["PricingPlanArn"] = p["Arn"]
        out["BillingPeriod"] = params.get("BillingPeriod") or self._period()
        return out

    # -- billing groups ------------------------------------------------------------------
    def _group_of(self, account: str) -> dict[str, Any] | None:
        return next((g for g in self.groups.values() if account in g["accounts"]), None)

    def op_CreateBillingGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        if arn := self._idempotent("CreateBillingGroup", params):
            return {"Arn": arn}
        self._unique_name(self.groups, params["Name"], "billing group")
        grouping = params["AccountGrouping"]
        accounts = list(grouping.get("LinkedAccountIds") or [])
        primary = params.get("PrimaryAccountId")
        transfer = grouping.get("ResponsibilityTransferArn")
        plan_arn = params["ComputationPreference"]["PricingPlanArn"]
        self._plan_usable(plan_arn)
        if plan_arn == PASSTHROUGH_PLAN and not transfer:
            # The Passthrough plan is for billing transfer groups only (AWS What's New 2026-04).
            raise _validation("The Passthrough pricing plan is allowed only on billing transfer groups", "ILLEGAL_BILLING_GROUP_PRICING_PLAN")
        if primary and primary not in accounts:
            accounts.insert(0, primary)
        if len(accounts) > ACCOUNTS_PER_CALL:
            raise _validation("At most 30 accounts per call", "TOO_MANY_ACCOUNTS_IN_REQUEST")
        if not transfer:
            # A transfer billing group's accounts come from the other organization.
            self._check_family(accounts, primary)
        elif primary:
            # AccountGrouping.ResponsibilityTransferArn: "When specified, the PrimaryAccountId
            # is no longer required"; a transfer group has none of its own.
            raise _validation("A billing transfer group takes no PrimaryAccountId", "ILLEGAL_BILLING_GROUP_TYPE")
        elif any(g.get("ResponsibilityTransferArn") == transfer and g["payer"] == self.payer() for g in self.groups.values()):
            # One billing transfer group per transfer (per bill-source account).
            raise _validation(f"A billing group already exists for transfer {transfer}", "BILLING_GROUP_ALREADY_EXIST_IN_CURRENT_BILLING_PERIOD")
        for a in accounts:
            if self._group_of(a):
                raise _validation(f"Account {a} already belongs to a billing group", "ACCOUNTS_ALREADY_ASSOCIATED")
        auto = bool(grouping.get("AutoAssociate"))
        if auto and any(g["AutoAssociate"] and g["payer"] == self.payer() for g in self.groups.values()):
            raise _validation("Only one billing group may auto-associate accounts", "TOO_MANY_AUTO_ASSOCIATE_BILLING_GROUPS")
        arn = f"arn:aws:billingconductor::{self.payer()}:billinggroup/{secrets.randbelow(10**12):012d}"
        now = int(time.time())
        self.groups[arn] = {
            "payer": self.payer(),
            "Arn": arn,
            "Name": params["Name"],
            "Description": params.get("Description", ""),
            "PrimaryAccountId": primary,
            "PricingPlanArn": plan_arn,
            "accounts": accounts,
            "AutoAssociate": auto,
            "ResponsibilityTransferArn": transfer,
            "CreationTime": now,
            "LastModifiedTime": now,
        }
        self._set_tags(arn, params.get("Tags"))
        self._remember("CreateBillingGroup", params, arn)
        return {"Arn": arn}

    def _public_group(self, g: dict[str, Any]) -> dict[str, Any]:
        grouping: dict[str, Any] = {"AutoAssociate": g["AutoAssociate"]}
        if g.get("ResponsibilityTransferArn"):
            grouping["ResponsibilityTransferArn"] = g["ResponsibilityTransferArn"]
        out = {
            "Arn": g["Arn"],
            "Name": g["Name"],
            "Description": g["Description"],
            "PrimaryAccountId": g["PrimaryAccountId"],
            "ComputationPreference": {"PricingPlanArn": g["PricingPlanArn"]},
            "Size": len(g["accounts"]),
            "CreationTime": g["CreationTime"],
            "LastModifiedTime": g["LastModifiedTime"],
            "Status": "ACTIVE" if g.get("ResponsibilityTransferArn") or g["PrimaryAccountId"] in g["accounts"] else "PRIMARY_ACCOUNT_MISSING",
            "AccountGrouping": grouping,
            # BillingGroupType enum: STANDARD | TRANSFER_BILLING (a group made from a
            # responsibility transfer: AccountGrouping.ResponsibilityTransferArn).
            "BillingGroupType": "TRANSFER_BILLING" if g.get("ResponsibilityTransferArn") else "STANDARD",
        }
        return {k: v for k, v in out.items() if v is not None}

    def op_ListBillingGroups(self, params: dict[str, Any]) -> dict[str, Any]:
        f = params.get("Filters") or {}
        items = [
            public
            for public in (self._public_group(g) for g in self.groups.values() if g["payer"] == self.payer())
            if _group_matches(public, f)
        ]
        return self._page(items, "BillingGroups", params)

    def op_UpdateBillingGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        g = self._mine(self.groups, params["Arn"], "billing group")
        if params.get("Name"):
            g["Name"] = params["Name"]
        if params.get("Description") is not None:
            g["Description"] = params["Description"]
        if params.get("ComputationPreference"):
            plan = params["ComputationPreference"]["PricingPlanArn"]
            self._plan_usable(plan)
            if plan == PASSTHROUGH_PLAN and not g.get("ResponsibilityTransferArn"):
                raise _validation("The Passthrough pricing plan is allowed only on billing transfer groups", "ILLEGAL_BILLING_GROUP_PRICING_PLAN")
            g["PricingPlanArn"] = plan
        new_transfer = (params.get("AccountGrouping") or {}).get("ResponsibilityTransferArn")
        if new_transfer and new_transfer != g.get("ResponsibilityTransferArn"):
            # UpdateBillingGroupAccountGrouping.ResponsibilityTransferArn: "Modifications to the
            # ResponsibilityTransferArn are not permitted for existing billing groups."
            raise _validation("The responsibility transfer of a billing group cannot change", "ILLEGAL_BILLING_GROUP_TYPE")
        if params.get("AccountGrouping") and "AutoAssociate" in params["AccountGrouping"]:
            auto = bool(params["AccountGrouping"]["AutoAssociate"])
            if auto and any(o["AutoAssociate"] and o is not g and o["payer"] == g["payer"] for o in self.groups.values()):
                raise _validation("Only one billing group may auto-associate accounts", "TOO_MANY_AUTO_ASSOCIATE_BILLING_GROUPS")
            g["AutoAssociate"] = auto
        g["LastModifiedTime"] = int(time.time())
        out = self._public_group(g)
        out["PricingPlanArn"] = g["PricingPlanArn"]
        # UpdateBillingGroupOutput: AccountGrouping is UpdateBillingGroupAccountGrouping (no
        # ResponsibilityTransferArn); no ComputationPreference, CreationTime, BillingGroupType.
        out["AccountGrouping"] = {"AutoAssociate": g["AutoAssociate"]}
        for k in ("ComputationPreference", "CreationTime", "BillingGroupType"):
            out.pop(k, None)
        return out

    def op_DeleteBillingGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        g = self._mine(self.groups, params["Arn"], "billing group")
        if any(i["BillingGroupArn"] == g["Arn"] for i in self.items.values()):
            # No ConflictExceptionReason fits; the closest ValidationExceptionReason is used.
            raise _validation("The billing group still has custom line items", "CUSTOM_LINE_ITEM_ASSOCIATION_EXISTS")
        del self.groups[g["Arn"]]
        return {"Arn": g["Arn"]}

    def op_AssociateAccounts(self, params: dict[str, Any]) -> dict[str, Any]:
        g = self._mine(self.groups, params["Arn"], "billing group")
        ids = params["AccountIds"]
        self.calls_by_size.append(len(ids))
        if not g.get("ResponsibilityTransferArn"):
            self._check_family(ids, None)
        for a in ids:
            other = self._group_of(a)
            if other is not None and other is not g:
                raise _validation(f"Account {a} already belongs to billing group {other['Arn']}", "ACCOUNTS_ALREADY_ASSOCIATED")
        g["accounts"].extend(a for a in ids if a not in g["accounts"])
        return {"Arn": g["Arn"]}

    def op_DisassociateAccounts(self, params: dict[str, Any]) -> dict[str, Any]:
        g = self._mine(self.groups, params["Arn"], "billing group")
        self.calls_by_size.append(len(params["AccountIds"]))
        if g["PrimaryAccountId"] in params["AccountIds"]:
            raise _validation("The primary account cannot leave its billing group", "PRIMARY_CANNOT_DISASSOCIATE")
        g["accounts"] = [a for a in g["accounts"] if a not in params["AccountIds"]]
        return {"Arn": g["Arn"]}

    def op_ListAccountAssociations(self, params: dict[str, Any]) -> dict[str, Any]:
        """The payer's linked accounts, with the billing group of each associated one. Model
        doc: "list linked accounts that are linked to the payer account ... The response will
        optionally include the billing group that's associated with the linked account";
        Filters.Association: MONITORED (in a group), UNMONITORED (in none), or a group ARN;
        Filters.AccountId / AccountIds."""
        filters = params.get("Filters") or {}
        association = filters.get("Association")
        wanted = set(filters.get("AccountIds") or []) | ({filters["AccountId"]} if filters.get("AccountId") else set())
        group_of = {a: g for g in self.groups.values() if g["payer"] == self.payer() for a in g["accounts"]}
        details = self._account_details()
        ids = sorted(self._family() | set(group_of))
        items = []
        for a in ids:
            g = group_of.get(a)
            if wanted and a not in wanted:
                continue
            if association == "MONITORED" and g is None:
                continue
            if association == "UNMONITORED" and g is not None:
                continue
            if association and association.startswith("arn:") and (g is None or g["Arn"] != association):
                continue
            item: dict[str, Any] = {"AccountId": a}
            if g is not None:
                item["BillingGroupArn"] = g["Arn"]
            if a in details:
                item["AccountName"] = details[a].name
                item["AccountEmail"] = details[a].email
            items.append(item)
        return self._page(items, "LinkedAccounts", params)

    # -- custom line items ---------------------------------------------------------------
    def _check_period(self, start: str, end: str | None, action: str) -> None:
        previous = self._previous()
        if (end and end <= previous) or start < previous:
            closed = start if start < previous else end
            raise _validation(
                f"Cannot {action} a custom line item in billing period {closed}: only {previous} and {self._period()} are open",
                "INVALID_BILLING_PERIOD_FOR_OPERATION",
            )

    def op_CreateCustomLineItem(self, params: dict[str, Any]) -> dict[str, Any]:
        if arn := self._idempotent("CreateCustomLineItem", params):
            return {"Arn": arn}
        group = self._mine(self.groups, params["BillingGroupArn"], "billing group")
        rng = params.get("BillingPeriodRange") or {"InclusiveStartBillingPeriod": self._period()}
        self._check_period(rng["InclusiveStartBillingPeriod"], rng.get("ExclusiveEndBillingPeriod"), "create")
        charge = params["ChargeDetails"]
        if ("Flat" in charge) == ("Percentage" in charge):
            raise _validation("Set exactly one of Flat and Percentage", "ILLEGAL_CHARGE_DETAILS")
        _check_filters(charge.get("LineItemFilters") or [])
        self._unique_name(self.items, params["Name"], "custom line item")
        self._check_item_quotas(group["Arn"], params.get("ComputationRule") == "ITEMIZED", bool(charge.get("LineItemFilters")))
        arn = self._arn("customlineitem")
        now = int(time.time())
        self.items[arn] = {
            "payer": self.payer(),
            "Arn": arn,
            "Name": params["Name"],
            "Description": params["Description"],
            "BillingGroupArn": group["Arn"],
            "ChargeDetails": charge,
            "AccountId": params.get("AccountId") or group["PrimaryAccountId"],
            "ComputationRule": params.get("ComputationRule", "CONSOLIDATED"),
            "PresentationDetails": params.get("PresentationDetails"),
            "range": rng,
            "CreationTime": now,
            "LastModifiedTime": now,
        }
        self._set_tags(arn, params.get("Tags"))
        self._remember("CreateCustomLineItem", params, arn)
        return {"Arn": arn}

    def _check_item_quotas(self, group_arn: str, itemized: bool, filtered: bool, this: str = "") -> None:
        """The per-group quotas of custom line items (10 filtered, 5 ITEMIZED), over the
        group's items of the current period, item ``this`` aside."""
        period = self._period()
        mine = [i for a, i in self.items.items() if a != this and i["BillingGroupArn"] == group_arn and self._applies(i, period)]
        if itemized and sum(1 for i in mine if i["ComputationRule"] == "ITEMIZED") >= ITEMIZED_ITEMS_PER_GROUP:
            raise _limit(
                f"A billing group holds at most {ITEMIZED_ITEMS_PER_GROUP} ITEMIZED custom line items",
                "ITEMIZED_CUSTOM_LINE_ITEMS_PER_BILLING_GROUP", group_arn,
            )
        if filtered and sum(1 for i in mine if i["ChargeDetails"].get("LineItemFilters")) >= FILTERED_ITEMS_PER_GROUP:
            raise _limit(
                f"A billing group holds at most {FILTERED_ITEMS_PER_GROUP} custom line items with a line-item filter",
                "FILTERED_CUSTOM_LINE_ITEMS_PER_BILLING_GROUP", group_arn,
            )

    def _applies(self, item: dict[str, Any], period: str) -> bool:
        rng = item["range"]
        end = rng.get("ExclusiveEndBillingPeriod")
        return rng["InclusiveStartBillingPeriod"] <= period and (not end or period < end)

    def _public_item(self, i: dict[str, Any]) -> dict[str, Any]:
        charge = dict(i["ChargeDetails"])
        if "Percentage" in charge:
            charge["Percentage"] = {"PercentageValue": charge["Percentage"]["PercentageValue"]}
        return {
            "Arn": i["Arn"],
            "Name": i["Name"],
            "Description": i["Description"],
            "ChargeDetails": charge,
            "CurrencyCode": "USD",
            "BillingGroupArn": i["BillingGroupArn"],
            "CreationTime": i["CreationTime"],
            "LastModifiedTime": i["LastModifiedTime"],
            "AssociationSize": len(i["ChargeDetails"].get("Percentage", {}).get("AssociatedValues") or []),
            # A transfer billing group has no primary account to default to.
            **({"AccountId": i["AccountId"]} if i["AccountId"] else {}),
            "ComputationRule": i["ComputationRule"],
            **({"PresentationDetails": i["PresentationDetails"]} if i.get("PresentationDetails") else {}),
        }

    def op_ListResourcesAssociatedToCustomLineItem(self, params: dict[str, Any]) -> dict[str, Any]:
        """The resources a percentage item is computed over (its AssociatedValues: CHILD), or the
        percentage items computed over this one (PARENT). Output elements: Arn, Relationship
        (CustomLineItemRelationship PARENT | CHILD), EndBillingPeriod."""
        i = self._mine(self.items, params["Arn"], "custom line item")
        period = params.get("BillingPeriod") or self._period()
        wanted = (params.get("Filters") or {}).get("Relationship")
        out_items: list[dict[str, Any]] = []
        children = i["ChargeDetails"].get("Percentage", {}).get("AssociatedValues") or []
        for arn in children:
            out_items.append({"Arn": arn, "Relationship": "CHILD"})
        for other in self.items.values():
            if other["payer"] == i["payer"] and i["Arn"] in (other["ChargeDetails"].get("Percentage", {}).get("AssociatedValues") or []):
                out_items.append({"Arn": other["Arn"], "Relationship": "PARENT"})
        for item in out_items:
            end = self.items.get(item["Arn"], {}).get("range", {}).get("ExclusiveEndBillingPeriod")
            if end:
                item["EndBillingPeriod"] = end
        out_items = [x for x in out_items if not wanted or x["Relationship"] == wanted]
        del period  # associations do not change by period in the emulator
        out = self._page(out_items, "AssociatedResources", params)
        out["Arn"] = i["Arn"]
        return out

    def op_ListCustomLineItems(self, params: dict[str, Any]) -> dict[str, Any]:
        period = params.get("BillingPeriod") or self._period()
        filters = params.get("Filters") or {}
        items = [
            self._public_item(i)
            for i in self.items.values()
            if i["payer"] == self.payer()
            and self._applies(i, period)
            and (not filters.get("Arns") or i["Arn"] in filters["Arns"])
            and (not filters.get("BillingGroups") or i["BillingGroupArn"] in filters["BillingGroups"])
            and (not filters.get("Names") or i["Name"] in filters["Names"])
            and (not filters.get("AccountIds") or i["AccountId"] in filters["AccountIds"])
        ]
        return self._page(items, "CustomLineItems", params)

    def op_UpdateCustomLineItem(self, params: dict[str, Any]) -> dict[str, Any]:
        i = self._mine(self.items, params["Arn"], "custom line item")
        rng = params.get("BillingPeriodRange") or {"InclusiveStartBillingPeriod": self._period()}
        self._check_period(rng["InclusiveStartBillingPeriod"], rng.get("ExclusiveEndBillingPeriod"), "change")
        if params.get("Name"):
            i["Name"] = params["Name"]
        if params.get("Description"):
            i["Description"] = params["Description"]
        charge = params.get("ChargeDetails") or {}
        if "Flat" in charge and "Flat" in i["ChargeDetails"]:
            i["ChargeDetails"]["Flat"] = charge["Flat"]
        if "Percentage" in charge and "Percentage" in i["ChargeDetails"]:
            i["ChargeDetails"]["Percentage"]["PercentageValue"] = charge["Percentage"]["PercentageValue"]
        if "LineItemFilters" in charge:
            filters = charge["LineItemFilters"] or []
            _check_filters(filters)
            if filters and not i["ChargeDetails"].get("LineItemFilters"):
                self._check_item_quotas(i["BillingGroupArn"], False, True, this=i["Arn"])
            if filters:
                i["ChargeDetails"]["LineItemFilters"] = filters
            else:
                i["ChargeDetails"].pop("LineItemFilters", None)
        i["LastModifiedTime"] = int(time.time())
        out = self._public_item(i)
        return {k: out[k] for k in ("Arn", "BillingGroupArn", "Name", "Description", "ChargeDetails", "LastModifiedTime", "AssociationSize")}

    def op_DeleteCustomLineItem(self, params: dict[str, Any]) -> dict[str, Any]:
        i = self._mine(self.items, params["Arn"], "custom line item")
        rng = i["range"]
        end = rng.get("ExclusiveEndBillingPeriod")
        if end and end <= self._previous():
            raise _validation(
                f"The custom line item ended in a closed billing period ({end})", "INVALID_BILLING_PERIOD_FOR_OPERATION"
            )
        del self.items[i["Arn"]]
        return {"Arn": i["Arn"]}

    # -- tags ----------------------------------------------------------------------------
    def _known(self, arn: str) -> None:
        for table in (self.rules, self.plans, self.groups, self.items):
            if arn in table and table[arn]["payer"] == self.payer():
                return
        raise _not_found(f"resource {arn}")

    def op_ListTagsForResource(self, params: dict[str, Any]) -> dict[str, Any]:
        self._known(params["ResourceArn"])
        tags = dict(self.tags.get(params["ResourceArn"], {}))
        # ListTagsForResourceResponse.Tags is a TagMap of 1 to 200 entries: no tags, no member.
        return {"Tags": tags} if tags else {}

    def op_TagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        self._known(params["ResourceArn"])
        self._set_tags(params["ResourceArn"], params["Tags"])
        return {}

    def op_UntagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        self._known(params["ResourceArn"])
        keys = params.get("TagKeys") or []
        if isinstance(keys, str):
            keys = [keys]
        for k in keys:
            self.tags.get(params["ResourceArn"], {}).pop(k, None)
        return {}

    # -- cost reports --------------------------------------------------------------------
    def _rule_for(self, plan: dict[str, Any], row: dict[str, Any]) -> dict[str, Any] | None:
        best = None
        for arn in plan["rules"]:
            r = self.rules.get(arn)
            if r is None or r["Type"] == "TIERING":
                continue
            scope = r["Scope"]
            matches = (
                scope == "GLOBAL"
                or (scope == "SERVICE" and r["Service"] == row.get("service"))
                or (scope == "BILLING_ENTITY" and r["BillingEntity"] == row.get("billingEntity", "AWS"))
                or (
                    scope == "SKU"
                    and r["Service"] == row.get("service")
                    and r["UsageType"] == row.get("usageType")
                    and (not r.get("Operation") or r["Operation"] == row.get("operation"))
                )
            )
            if matches and (best is None or SPECIFICITY[scope] < SPECIFICITY[best["Scope"]]):
                best = r
        return best

    def _row_costs(self, g: dict[str, Any], row: dict[str, Any]) -> tuple[float, float]:
        """(AWS cost, pro forma cost) of one usage row of group ``g``."""
        on_demand = float(row["onDemandCost"])
        aws = float(row.get("awsCost", on_demand))
        if g["PricingPlanArn"] == PASSTHROUGH_PLAN:
            return aws, aws
        plan = self.plans.get(g["PricingPlanArn"], {"rules": []})
        rule = self._rule_for(plan, row)
        factor = 1.0
        if rule is not None and rule["Type"] == "MARKUP":
            factor = 1 + rule["ModifierPercentage"] / 100
        elif rule is not None and rule["Type"] == "DISCOUNT":
            factor = 1 - rule["ModifierPercentage"] / 100
        return aws, on_demand * factor

    def _group_rows(self, g: dict[str, Any], period: str) -> list[dict[str, Any]]:
        """The usage rows of group ``g`` in ``period``: its accounts' (a transfer group's
        accounts are the rows seeded with its ``billingGroup`` name or ARN)."""
        return [
            row for row in self.usage
            if row["period"] == period
            and (row["accountId"] in g["accounts"] or row.get("billingGroup") in (g["Name"], g["Arn"]))
        ]

    def _costs(self, g: dict[str, Any], period: str) -> tuple[float, float]:
        aws, proforma, items = self._costs_by_product(g, period)
        return sum(aws.values()), sum(proforma.values()) + sum(items.values())

    def _costs_by_product(
        self, g: dict[str, Any], period: str
    ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        """AWS cost and pro forma cost of the usage by product name, and the custom line
        items' values by the product name they show under."""
        aws: dict[str, float] = {}
        proforma: dict[str, float] = {}
        for row in self._group_rows(g, period):
            product = row.get("productName") or row["service"]
            a, p = self._row_costs(g, row)
            aws[product] = aws.get(product, 0.0) + a
            proforma[product] = proforma.get(product, 0.0) + p
        values = self._item_values(g, period, sum(proforma.values()))
        items: dict[str, float] = {}
        for arn, v in values.items():
            shown = (self.items[arn].get("PresentationDetails") or {}).get("Service") or CUSTOM_LINE_ITEMS_PRODUCT
            items[shown] = items.get(shown, 0.0) + v
        return aws, proforma, items

    def _item_values(self, g: dict[str, Any], period: str, proforma: float) -> dict[str, float]:
        """What each custom line item of ``g`` adds in ``period`` (credits negative)."""
        items = [i for i in self.items.values() if i["BillingGroupArn"] == g["Arn"] and self._applies(i, period)]
        values: dict[str, float] = {}
        for i in items:
            c = i["ChargeDetails"]
            if "Flat" in c:
                v = float(c["Flat"]["ChargeValue"])
                values[i["Arn"]] = v if c["Type"] == "FEE" else -v
        base = proforma
        for i in items:
            c = i["ChargeDetails"]
            if "Percentage" in c:
                associated = c["Percentage"].get("AssociatedValues") or []
                of = sum(values.get(a, 0.0) for a in associated) if associated else base
                v = of * float(c["Percentage"]["PercentageValue"]) / 100
                values[i["Arn"]] = v if c["Type"] == "FEE" else -v
        return values

    def op_ListBillingGroupCostReports(self, params: dict[str, Any]) -> dict[str, Any]:
        period = params.get("BillingPeriod") or self._period()
        arns = (params.get("Filters") or {}).get("BillingGroupArns")
        reports = []
        payer = self.payer()
        groups = [g for g in self.groups.values() if g["payer"] == payer and (not arns or g["Arn"] in arns)]
        # Cost only the page asked for.
        page = self._page(groups, "BillingGroupCostReports", params)
        for g in page["BillingGroupCostReports"]:
            aws, proforma = self._costs(g, period)
            margin = proforma - aws
            reports.append(
                {
                    "Arn": g["Arn"],
                    "AWSCost": _money(aws),
                    "ProformaCost": _money(proforma),
                    "Margin": _money(margin),
                    "MarginPercentage": _money(margin / proforma * 100 if proforma else 0.0),
                    "Currency": "USD",
                }
            )
        page["BillingGroupCostReports"] = reports
        return page

    def op_GetBillingGroupCostReport(self, params: dict[str, Any]) -> dict[str, Any]:
        g = self._mine(self.groups, params["Arn"], "billing group")
        rng = params.get("BillingPeriodRange") or {
            "InclusiveStartBillingPeriod": self._period(),
            "ExclusiveEndBillingPeriod": _next_period(self._period()),
        }
        periods = _periods(rng["InclusiveStartBillingPeriod"], rng["ExclusiveEndBillingPeriod"])
        if not periods or len(periods) > 12:
            # BillingPeriodRange: "The time range can be up to 12 months."
            raise _validation("BillingPeriodRange must span 1 to 12 billing periods", "ILLEGAL_BILLING_PERIOD_RANGE")
        group_by = params.get("GroupBy") or []
        totals: dict[tuple[str, str], list[float]] = {}
        for period in periods:
            aws, proforma, items = self._costs_by_product(g, period)
            for product in sorted(set(aws) | set(proforma) | set(items)):
                key = (
                    product if "PRODUCT_NAME" in group_by else "",
                    period if "BILLING_PERIOD" in group_by else "",
                )
                t = totals.setdefault(key, [0.0, 0.0])
                t[0] += aws.get(product, 0.0)
                t[1] += proforma.get(product, 0.0) + items.get(product, 0.0)
        results = []
        for (product, period), (aws_cost, proforma_cost) in sorted(totals.items()):
            attributes = []
            if product:
                attributes.append({"Key": "PRODUCT_NAME", "Value": product})
            if period:
                year, month = period.split("-")
                attributes.append({"Key": "BILLING_PERIOD", "Value": f"{MONTHS[int(month) - 1]} {year}"})
            margin = proforma_cost - aws_cost
            result = {
                "Arn": g["Arn"],
                "AWSCost": _money(aws_cost),
                "ProformaCost": _money(proforma_cost),
                "Margin": _money(margin),
                "MarginPercentage": _money(margin / proforma_cost * 100 if proforma_cost else 0.0),
                "Currency": "USD",
            }
            if attributes:
                result["Attributes"] = attributes
            results.append(result)
        return self._page(results, "BillingGroupCostReportResults", params)

    # -- test controls -------------------------------------------------------------------
    def control_usage(self, payload: dict[str, Any]) -> dict[str, Any]:
        for row in payload.get("rows", []):
            self.usage.append({"period": payload.get("period") or self._period(), **row})
        return {"rows": len(self.usage)}

    def control_settings(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("today"):
            self.today = dt.date.fromisoformat(payload["today"])
        return {"currentPeriod": self._period(), "previousPeriod": self._previous()}

    def control_stats(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "rules": len(self.rules),
            "plans": len(self.plans),
            "groups": len(self.groups),
            "customLineItems": len(self.items),
            "accountCallSizes": list(self.calls_by_size),
        }


def _check_filters(filters: list[dict[str, Any]]) -> None:
    """LineItemFilters of a custom line item: one value, either in Values (LineItemFilterValue:
    SAVINGS_PLAN_NEGATION, "Currently, you can only exclude Savings Plans discounts", a line
    item type) or in AttributeValues (AttributeValue ``[a-zA-Z0-9]+``: a line item type or a
    service code); the model bounds both lists to one entry (API reference, LineItemFilter).
    A SERVICE filter has no Values member that fits it."""
    for f in filters:
        values, attribute_values = f.get("Values") or [], f.get("AttributeValues") or []
        if bool(values) == bool(attribute_values):
            raise _validation("A line item filter takes one value, in Values or AttributeValues", "ILLEGAL_LINE_ITEM_FILTER")
        if f["Attribute"] == "SERVICE" and values:
            raise _validation("A SERVICE filter takes its service in AttributeValues", "ILLEGAL_LINE_ITEM_FILTER")


def _next_period(period: str) -> str:
    year, month = (int(x) for x in period.split("-"))
    return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"


def _periods(start: str, end: str) -> list[str]:
    """The billing periods from ``start`` (inclusive) to ``end`` (exclusive), at most 13."""
    out: list[str] = []
    norm = lambda p: "%04d-%02d" % tuple(int(x) for x in p.split("-"))  # noqa: E731 (BillingPeriod allows "2026-1")
    period, end = norm(start), norm(end)
    while period < end and len(out) <= 12:
        out.append(period)
        period = _next_period(period)
    return out


def _group_matches(g: dict[str, Any], f: dict[str, Any]) -> bool:
    """ListBillingGroupsFilter: Arns, PricingPlan, Statuses, AutoAssociate, PrimaryAccountIds,
    BillingGroupTypes, Names (StringSearch, SearchOption STARTS_WITH), ResponsibilityTransferArns."""
    grouping = g.get("AccountGrouping") or {}
    checks = [
        not f.get("Arns") or g["Arn"] in f["Arns"],
        not f.get("PricingPlan") or g["ComputationPreference"]["PricingPlanArn"] == f["PricingPlan"],
        not f.get("Statuses") or g["Status"] in f["Statuses"],
        f.get("AutoAssociate") is None or bool(grouping.get("AutoAssociate")) == f["AutoAssociate"],
        not f.get("PrimaryAccountIds") or g.get("PrimaryAccountId") in f["PrimaryAccountIds"],
        not f.get("BillingGroupTypes") or g["BillingGroupType"] in f["BillingGroupTypes"],
        not f.get("Names") or any(g["Name"].startswith(n.get("SearchValue", "")) for n in f["Names"]),
        not f.get("ResponsibilityTransferArns") or grouping.get("ResponsibilityTransferArn") in f["ResponsibilityTransferArns"],
    ]
    return all(checks)


register(BillingConductor())
