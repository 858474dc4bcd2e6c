"""Pages as AWS pages them, for every list operation the operator calls.

Per operation: each page holds at most the model's MaxResults maximum (read here straight from
the installed botocore model, independently of the emulator's paging.py); without MaxResults
the page is that maximum (neither model documents a default); paging through yields every item
exactly once, also with a small MaxResults; MaxResults above the maximum is refused with the
service's validation error; a NextToken is opaque and bound to its operation.

Run: cd tests/emulator && $VENV/bin/python -m unittest test_paging.py
"""

from __future__ import annotations

import json

import botocore.session
from botocore.exceptions import ClientError

import test_emulator
from pbo_emulator import paging

ORG = "/_emulator/services/organizations/"
BC = "/_emulator/services/billingconductor/"
SCP_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]})
_session = botocore.session.get_session()


def model_max(service: str, operation: str) -> int | None:
    """MaxResults' maximum in the installed model, or None when the input has no MaxResults."""
    shape = _session.get_service_model(service).operation_model(operation).input_shape
    member = shape.members.get("MaxResults")
    return None if member is None else int(member.metadata["max"])


class PagingHarness(test_emulator.EmulatorHarness):
    def pages(self, client, operation: str, key: str, **kwargs) -> list[list]:
        method = getattr(client, _snake(operation))
        out, token, tokens = [], None, []
        while True:
            args = dict(kwargs)
            if token:
                args["NextToken"] = token
            resp = method(**args)
            out.append(resp.get(key, []))
            token = resp.get("NextToken")
            if not token:
                return out
            tokens.append(token)
            self.assertFalse(token.isdigit(), f"{operation}: NextToken {token!r} is not opaque")
            self.assertLess(len(out), 1000, f"{operation}: endless paging")

    def assert_paged(self, client, operation: str, key: str, ident, expected: set, **kwargs):
        service = client.meta.service_model.service_name
        largest = model_max(service, operation)
        if largest is None:
            largest = paging.NO_LIMIT_MEMBER[(service, operation)]
        pages = self.pages(client, operation, key, **kwargs)
        sizes = [len(p) for p in pages]
        self.assertTrue(all(s <= largest for s in sizes), f"{operation}: pages {sizes} exceed {largest}")
        seen = [ident(item) for page in pages for item in page]
        self.assertEqual(len(seen), len(set(seen)), f"{operation}: an item came twice")
        self.assertEqual(set(seen), expected, f"{operation}: items missing or extra")
        if len(expected) > largest:
            self.assertEqual(sizes[0], largest, f"{operation}: without MaxResults the page is the model's maximum")
            self.assertGreater(len(pages), 1)
        small = self.pages(client, operation, key, MaxResults=7, **kwargs) if model_max(service, operation) else None
        if small is not None:
            self.assertTrue(all(len(p) <= 7 for p in small), f"{operation}: MaxResults=7 gave {[len(p) for p in small]}")
            again = [ident(item) for page in small for item in page]
            self.assertEqual(sorted(again), sorted(seen), f"{operation}: MaxResults=7 pages differ")
            with self.assertRaises(ClientError) as ctx:
                getattr(client, _snake(operation))(MaxResults=largest + 1, **kwargs)
            return ctx.exception.response, pages
        return None, pages


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class OrganizationsPagingTest(PagingHarness):
    def test_every_list_operation_pages_at_most_20_and_yields_each_item_once(self):
        o = self.client("organizations")
        o.create_organization(FeatureSet="ALL")
        master = o.describe_organization()["Organization"]["MasterAccountId"]
        root = o.list_roots()["Roots"][0]["Id"]
        o.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
        ids = self.control("POST", ORG + "bulk-accounts", {"count": 45})["accountIds"]
        ous = [o.create_organizational_unit(ParentId=root, Name=f"ou-{i:02d}")["OrganizationalUnit"]["Id"] for i in range(25)]
        for account_id in ids[:25]:
            o.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=ous[0])
        policies = [
            o.create_policy(Name=f"p{i:02d}", Description="", Type="SERVICE_CONTROL_POLICY", Content=SCP_DOC)["Policy"]["PolicySummary"]["Id"]
            for i in range(25)
        ]
        for target in ids[:3] + ous[:22]:
            o.attach_policy(PolicyId=policies[0], TargetId=target)
        o.tag_resource(ResourceId=ids[0], Tags=[{"Key": f"k{i:02d}", "Value": "v"} for i in range(45)])
        self.control("POST", ORG + "settings", {"createDelaySeconds": 60})
        requests = []
        for batch in range(5):
            requests += [o.create_account(AccountName=f"n{batch}{i}", Email=f"n{batch}{i}@example.com")["CreateAccountStatus"]["Id"] for i in range(5)]
            self.control("POST", ORG + "complete-creates", {})
        handshakes = [
            o.invite_account_to_organization(Target={"Id": f"{900000000000 + i}", "Type": "ACCOUNT"})["Handshake"]["Id"] for i in range(25)
        ]
        accounts = {a for a in ids} | {master} | {a["Id"] for a in _all(o, "list_accounts", "Accounts")}

        err, _ = self.assert_paged(o, "ListAccounts", "Accounts", lambda a: a["Id"], accounts)
        self.assertEqual((err["Error"]["Code"], err.get("Reason")), ("InvalidInputException", "MAX_VALUE_EXCEEDED"))
        self.assert_paged(o, "ListAccountsForParent", "Accounts", lambda a: a["Id"], set(ids[:25]), ParentId=ous[0])
        self.assert_paged(o, "ListRoots", "Roots", lambda r: r["Id"], {root})
        self.assert_paged(o, "ListOrganizationalUnitsForParent", "OrganizationalUnits", lambda u: u["Id"], set(ous), ParentId=root)
        self.assert_paged(o, "ListPolicies", "Policies", lambda p: p["Id"], set(policies) | {"p-FullAWSAccess"}, Filter="SERVICE_CONTROL_POLICY")
        self.assert_paged(o, "ListTargetsForPolicy", "Targets", lambda t: t["TargetId"], set(ids[:3] + ous[:22]), PolicyId=policies[0])
        self.assert_paged(o, "ListTagsForResource", "Tags", lambda t: t["Key"], {f"k{i:02d}" for i in range(45)}, ResourceId=ids[0])
        self.assert_paged(o, "ListCreateAccountStatus", "CreateAccountStatuses", lambda r: r["Id"], set(requests))
        self.assert_paged(o, "ListHandshakesForOrganization", "Handshakes", lambda h: h["Id"], set(handshakes))
        children = set(ids[25:]) | {master} | {a for a in accounts if a not in ids and a != master}
        self.assert_paged(o, "ListChildren", "Children", lambda c: c["Id"], children, ParentId=root, ChildType="ACCOUNT")
        self.assert_paged(o, "ListChildren", "Children", lambda c: c["Id"], set(ous), ParentId=root, ChildType="ORGANIZATIONAL_UNIT")
        self.assert_paged(o, "ListParents", "Parents", lambda p: p["Id"], {ous[0]}, ChildId=ids[0])

    def test_next_token_is_bound_to_its_operation(self):
        o = self.client("organizations")
        o.create_organization(FeatureSet="ALL")
        self.control("POST", ORG + "bulk-accounts", {"count": 25})
        token = o.list_accounts()["NextToken"]
        root = o.list_roots()["Roots"][0]["Id"]
        # ListAccounts' token handed to ListAccountsForParent, and a token never handed out.
        for call, bad, kwargs in ((o.list_accounts_for_parent, token, {"ParentId": root}), (o.list_accounts, "not-a-token", {})):
            with self.assertRaises(ClientError) as ctx:
                call(NextToken=bad, **kwargs)
            resp = ctx.exception.response
            self.assertEqual((resp["Error"]["Code"], resp.get("Reason")), ("InvalidInputException", "INVALID_NEXT_TOKEN"))


class BillingConductorPagingTest(PagingHarness):
    def test_every_list_operation_pages_at_most_100_and_yields_each_item_once(self):
        self.control("POST", BC + "settings", {"today": "2026-11-24"})
        o = self.client("organizations")
        o.create_organization(FeatureSet="ALL")
        master = o.describe_organization()["Organization"]["MasterAccountId"]
        members = self.control("POST", ORG + "bulk-accounts", {"count": 110})["accountIds"]
        b = self.client("billingconductor")
        rules = [b.create_pricing_rule(Name=f"r{i:03d}", Scope="GLOBAL", Type="MARKUP", ModifierPercentage=1)["Arn"] for i in range(105)]
        plans = [b.create_pricing_plan(Name=f"p{i:03d}")["Arn"] for i in range(105)]
        for i in range(0, 105, 30):
            b.associate_pricing_rules(Arn=plans[0], PricingRuleArns=rules[i : i + 30])
        groups = [
            b.create_billing_group(Name=f"g{i:03d}", PrimaryAccountId=members[i], AccountGrouping={"LinkedAccountIds": [members[i]]},
                                   ComputationPreference={"PricingPlanArn": plans[0]})["Arn"]
            for i in range(105)
        ]
        flat = [
            b.create_custom_line_item(Name=f"f{i:03d}", Description="fee", BillingGroupArn=groups[0],
                                      ChargeDetails={"Type": "FEE", "Flat": {"ChargeValue": 1}},
                                      BillingPeriodRange={"InclusiveStartBillingPeriod": "2026-11"})["Arn"]
            for i in range(55)
        ]
        pct = [
            b.create_custom_line_item(Name=f"c{i:03d}", Description="fee", BillingGroupArn=groups[0],
                                      ChargeDetails={"Type": "FEE", "Percentage": {"PercentageValue": 1, "AssociatedValues": [flat[0]]}},
                                      BillingPeriodRange={"InclusiveStartBillingPeriod": "2026-11"})["Arn"]
            for i in range(101)
        ]

        err, _ = self.assert_paged(b, "ListBillingGroups", "BillingGroups", lambda g: g["Arn"], set(groups))
        self.assertEqual((err["Error"]["Code"], err.get("Reason")), ("ValidationException", "FIELD_VALIDATION_FAILED"))
        self.assert_paged(b, "ListPricingRules", "PricingRules", lambda r: r["Arn"], set(rules))
        self.assert_paged(b, "ListPricingPlans", "PricingPlans", lambda p: p["Arn"], set(plans))
        self.assert_paged(b, "ListPricingRulesAssociatedToPricingPlan", "PricingRuleArns", lambda a: a, set(rules), PricingPlanArn=plans[0])
        self.assert_paged(b, "ListCustomLineItems", "CustomLineItems", lambda i: i["Arn"], set(flat) | set(pct), BillingPeriod="2026-11")
        self.assert_paged(b, "ListAccountAssociations", "LinkedAccounts", lambda a: a["AccountId"], set(members) | {master})
        self.assert_paged(b, "ListBillingGroupCostReports", "BillingGroupCostReports", lambda r: r["Arn"], set(groups), BillingPeriod="2026-11")
        self.assert_paged(b, "ListResourcesAssociatedToCustomLineItem", "AssociatedResources", lambda r: r["Arn"], set(pct), Arn=flat[0])
        token = b.list_pricing_rules()["NextToken"]
        with self.assertRaises(ClientError) as ctx:
            b.list_pricing_plans(NextToken=token)
        resp = ctx.exception.response
        self.assertEqual((resp["Error"]["Code"], resp.get("Reason")), ("ValidationException", "FIELD_VALIDATION_FAILED"))


def _all(client, method: str, key: str) -> list:
    return [item for page in client.get_paginator(method).paginate() for item in page[key]]
