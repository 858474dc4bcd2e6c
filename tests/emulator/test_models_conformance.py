"""Every emulator response the operator relies on, held to the INSTALLED botocore models.

The raw bodies (before botocore's parser drops unknown members) are walked against each
operation's output shape by ``model_conformance``: no unknown members, no member the model
documents as retired (Account.Status, retired 2026-09-09), every ``required`` member present,
types, enums, patterns and lengths as modeled. Error bodies are held to their error shapes.

Run: cd tests/emulator && $VENV/bin/python -m unittest test_models_conformance.py
"""

from __future__ import annotations

import datetime as dt
import json
import unittest

from botocore.exceptions import ClientError
from moto.organizations.models import FakeAccount, FakeOrganization

import model_conformance as mc
import test_billingconductor
import test_emulator
import test_organizations
import test_pipeline
import test_transfers

ORG = "/_emulator/services/organizations/"
BC = "/_emulator/services/billingconductor/"
SCP_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]})

# What the operator calls and the issue names; each must be seen answering successfully.
REQUIRED = {
    ("organizations", op)
    for op in (
        "ListAccounts", "DescribeAccount", "ListAccountsForParent", "DescribeOrganization", "ListRoots",
        "ListOrganizationalUnitsForParent", "ListPolicies", "DescribePolicy", "ListTargetsForPolicy",
        "ListTagsForResource", "ListCreateAccountStatus", "DescribeCreateAccountStatus",
        "ListHandshakesForOrganization", "DescribeHandshake",
    )
} | {
    ("billingconductor", op)
    for op in (
        "ListBillingGroups", "ListPricingPlans", "ListPricingRules", "ListPricingRulesAssociatedToPricingPlan",
        "ListCustomLineItems", "ListAccountAssociations", "ListBillingGroupCostReports",
        "ListResourcesAssociatedToCustomLineItem", "ListTagsForResource",
    )
}


def judged_as_of(services, today: dt.date | None = None) -> dt.date:
    """The date answers are judged as of: the real date (or ``today``), or the latest retirement
    date the installed models of ``services`` announce, whichever is later. So a member whose doc
    announces its retirement counts as retired even on a clock set before that date: the live
    checks cannot pass quietly on a wrong clock (Account.Status: "will be retired on September 9,
    2026")."""
    announced = [when for service in services for when, _doc in mc.retirements(service).values() if when is not None]
    return max([today or dt.date.today(), *announced])


def recorded_problems(rec: mc.Recorder) -> list[str]:
    return rec.problems(today=judged_as_of({service for service, _op, _status, _body in rec.responses}))


class RetirementInTheModelTest(unittest.TestCase):
    """The checker itself: it reads retirement from the installed model and flags it."""

    def test_the_installed_model_retires_account_status_on_2026_09_09(self):
        when, doc = mc.retirements("organizations")[("Account", "Status")]
        self.assertEqual(when, dt.date(2026, 9, 9))
        self.assertIn("will be retired on September 9, 2026", doc)
        # Before the date Status is still a modeled member; from the date on it is retired.
        self.assertNotIn(("Account", "Status"), mc.retired("organizations", dt.date(2026, 9, 8)))
        self.assertIn(("Account", "Status"), mc.retired("organizations", dt.date(2026, 9, 9)))

    def test_live_answers_are_judged_as_of_the_announced_retirement_even_on_an_early_clock(self):
        early = dt.date(2026, 1, 1)
        self.assertEqual(judged_as_of(["organizations"], today=early), dt.date(2026, 9, 9))
        self.assertEqual(judged_as_of(["organizations"], today=dt.date(2027, 3, 1)), dt.date(2027, 3, 1))
        self.assertGreaterEqual(judged_as_of(["organizations"]), dt.date(2026, 9, 9))
        body = {"Account": {"Id": "123456789012", "Email": "a@example.com", "Name": "a", "Status": "ACTIVE", "State": "ACTIVE"}}
        # On the early clock alone Status would pass; judged as of the announced date it is flagged.
        self.assertEqual(mc.check_output("organizations", "DescribeAccount", body, early), [])
        problems = mc.check_output("organizations", "DescribeAccount", body, judged_as_of(["organizations"], today=early))
        self.assertTrue(any("Account.Status: retired member" in p for p in problems), problems)
        # And so are the recorded live answers.
        rec = mc.Recorder()
        rec.responses.append(("organizations", "DescribeAccount", 200, json.dumps(body).encode()))
        self.assertTrue(any("retired member" in p for p in recorded_problems(rec)))

    def test_a_response_with_status_is_flagged(self):
        # What the emulator sent before Account.Status was stripped (moto emits Status and State).
        body = {"Accounts": [{"Id": "123456789012", "Arn": "arn:aws:organizations::123456789012:account/o-abcdefghij/123456789012",
                              "Email": "a@example.com", "Name": "a", "Status": "ACTIVE", "State": "ACTIVE",
                              "JoinedMethod": "CREATED", "JoinedTimestamp": 1.0}]}
        for op in ("ListAccounts", "ListAccountsForParent"):
            problems = mc.check_output("organizations", op, body, judged_as_of(["organizations"]))
            self.assertEqual(len(problems), 1, problems)
            self.assertIn("Accounts[0].Status: retired member of Account", problems[0])
        problems = mc.check_output("organizations", "DescribeAccount", {"Account": body["Accounts"][0]}, judged_as_of(["organizations"]))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("Account.Status: retired member", problems[0])
        # Without Status the same answer is clean.
        del body["Accounts"][0]["Status"]
        self.assertEqual(mc.check_output("organizations", "ListAccounts", body, judged_as_of(["organizations"])), [])

    def test_moto_alone_would_fail(self):
        # moto 5.2.5's own account description still carries Status: our layer must strip it.
        org = FakeOrganization("123456789012", region_name="us-east-1", feature_set="ALL")
        described = FakeAccount(org, AccountName="a", Email="a@example.com").describe()
        self.assertIn("Status", described)
        problems = mc.check_output("organizations", "DescribeAccount", {"Account": described}, judged_as_of(["organizations"]))
        self.assertTrue(any("retired member" in p for p in problems), problems)

    def test_unknown_and_missing_required_members_are_flagged(self):
        problems = mc.check_output(
            "billingconductor",
            "ListCustomLineItems",
            {"CustomLineItems": [{"Arn": "arn:aws:billingconductor::123456789012:customlineitem/abcdefghij",
                                  "ChargeDetails": {"Flat": {"ChargeValue": 1.0}},
                                  "PresentationDetails": {}, "Colour": "red"}]},
        )
        self.assertIn("ListCustomLineItems.CustomLineItems[0].ChargeDetails.Type: missing, but ListCustomLineItemChargeDetails marks it required", problems)
        self.assertIn("ListCustomLineItems.CustomLineItems[0].PresentationDetails.Service: missing, but PresentationObject marks it required", problems)
        self.assertTrue(any(p.startswith("ListCustomLineItems.CustomLineItems[0].Colour: unknown member") for p in problems), problems)
        problems = mc.check_output("billingconductor", "ListBillingGroups", {"BillingGroups": [{"BillingGroupType": "SPECIAL"}]})
        self.assertTrue(any("'SPECIAL' is not in BillingGroupType" in p for p in problems), problems)
        problems = mc.check_error("billingconductor", {"__type": "ConflictException", "Message": "m", "Reason": "NOT_A_REASON"})
        self.assertEqual(len(problems), 3, problems)  # ResourceId, ResourceType missing; Reason outside the enum


class EmulatorConformanceTest(test_emulator.EmulatorHarness):
    """A world with some of everything, built and read through boto3; every raw answer checked."""

    def setUp(self):
        super().setUp()
        self.rec = mc.Recorder()
        self.orgs = self.rec.attach(self.client("organizations"))
        self.bc = self.rec.attach(self.client("billingconductor"))
        self.control("POST", BC + "settings", {"today": "2026-11-24"})

    def expect_error(self, call, *args, **kwargs):
        with self.assertRaises(ClientError) as ctx:
            call(*args, **kwargs)
        return ctx.exception.response["Error"]["Code"]

    def build_organization(self):
        o = self.orgs
        o.create_organization(FeatureSet="ALL")
        o.describe_organization()
        root = o.list_roots()["Roots"][0]["Id"]
        o.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
        self.control("POST", ORG + "settings", {"createDelaySeconds": 60, "closeDelaySeconds": 60})
        reqs = [o.create_account(AccountName=f"a{i}", Email=f"a{i}@example.com", Tags=[{"Key": "k", "Value": "v"}])["CreateAccountStatus"] for i in range(3)]
        failed = o.create_account(AccountName="bad", Email="bad@example.invalid")["CreateAccountStatus"]
        self.control("POST", ORG + "complete-creates", {})
        pending = o.create_account(AccountName="later", Email="later@example.com")["CreateAccountStatus"]
        for r in (reqs[0], failed, pending):
            o.describe_create_account_status(CreateAccountRequestId=r["Id"])
        o.list_create_account_status()
        o.list_create_account_status(States=["IN_PROGRESS"])
        ids = [a["Id"] for a in o.list_accounts()["Accounts"]]
        members = [i for i in ids if i != o.describe_organization()["Organization"]["MasterAccountId"]]
        ou = o.create_organizational_unit(ParentId=root, Name="customers", Tags=[{"Key": "owner", "Value": "pbo"}])["OrganizationalUnit"]["Id"]
        o.update_organizational_unit(OrganizationalUnitId=ou, Name="customers-1")
        o.list_organizational_units_for_parent(ParentId=root)
        o.describe_organizational_unit(OrganizationalUnitId=ou)
        o.move_account(AccountId=members[0], SourceParentId=root, DestinationParentId=ou)
        o.list_accounts_for_parent(ParentId=ou)
        o.list_accounts_for_parent(ParentId=root)
        o.list_parents(ChildId=members[0])
        o.list_children(ParentId=root, ChildType="ACCOUNT")
        policy = o.create_policy(Name="deny-delete", Description="d", Type="SERVICE_CONTROL_POLICY", Content=SCP_DOC,
                                 Tags=[{"Key": "owner", "Value": "pbo"}])["Policy"]["PolicySummary"]["Id"]
        o.update_policy(PolicyId=policy, Description="d2")
        o.attach_policy(PolicyId=policy, TargetId=ou)
        o.list_policies(Filter="SERVICE_CONTROL_POLICY")
        o.describe_policy(PolicyId=policy)
        o.list_targets_for_policy(PolicyId=policy)
        o.list_policies_for_target(TargetId=ou, Filter="SERVICE_CONTROL_POLICY")
        o.tag_resource(ResourceId=members[1], Tags=[{"Key": "team", "Value": "x"}])
        for resource in (members[1], ou, policy, root):
            o.list_tags_for_resource(ResourceId=resource)
        o.untag_resource(ResourceId=members[1], TagKeys=["team"])
        for account_id in ids:
            o.describe_account(AccountId=account_id)
        o.close_account(AccountId=members[2])
        o.describe_account(AccountId=members[2])  # PENDING_CLOSURE
        self.control("POST", ORG + "advance", {"seconds": 61})
        o.describe_account(AccountId=members[2])  # CLOSED
        open_hs = o.invite_account_to_organization(Target={"Id": "444455556666", "Type": "ACCOUNT"}, Notes="welcome")["Handshake"]
        declined = o.invite_account_to_organization(Target={"Id": "777788889999", "Type": "ACCOUNT"})["Handshake"]
        canceled = o.invite_account_to_organization(Target={"Id": "x@example.com", "Type": "EMAIL"})["Handshake"]
        self.control("POST", ORG + "decline", {"handshakeId": declined["Id"]})
        o.cancel_handshake(HandshakeId=canceled["Id"])
        for hs in (open_hs, declined, canceled):
            o.describe_handshake(HandshakeId=hs["Id"])
        o.list_handshakes_for_organization()
        o.list_handshakes_for_organization(Filter={"ActionType": "INVITE"})
        o.list_accounts()
        # Errors are checked against their shapes too.
        self.expect_error(o.close_account, AccountId=members[2])
        self.expect_error(o.describe_account, AccountId="000000000000")
        self.expect_error(o.list_accounts, MaxResults=21)
        self.expect_error(o.list_accounts, NextToken="not-a-token")
        self.expect_error(o.describe_handshake, HandshakeId="h-0000000000000000")
        return members

    def build_billing(self, members):
        b = self.bc
        rules = [
            b.create_pricing_rule(Name="global", Scope="GLOBAL", Type="MARKUP", ModifierPercentage=10)["Arn"],
            b.create_pricing_rule(Name="s3", Scope="SERVICE", Type="DISCOUNT", ModifierPercentage=5, Service="AmazonS3")["Arn"],
            b.create_pricing_rule(Name="entity", Scope="BILLING_ENTITY", Type="MARKUP", ModifierPercentage=1, BillingEntity="AWS Marketplace")["Arn"],
            b.create_pricing_rule(Name="sku", Scope="SKU", Type="DISCOUNT", ModifierPercentage=20, Service="AmazonEC2",
                                  UsageType="BoxUsage:m5.large", Operation="RunInstances")["Arn"],
            b.create_pricing_rule(Name="tiering", Scope="GLOBAL", Type="TIERING", Tiering={"FreeTier": {"Activated": True}})["Arn"],
        ]
        b.update_pricing_rule(Arn=rules[0], Description="ten percent")
        plan = b.create_pricing_plan(Name="plan", Description="p", PricingRuleArns=rules[:2], Tags={"owner": "pbo"})["Arn"]
        b.associate_pricing_rules(Arn=plan, PricingRuleArns=rules[2:])
        b.disassociate_pricing_rules(Arn=plan, PricingRuleArns=[rules[4]])
        b.update_pricing_plan(Arn=plan, Description="p2")
        group = b.create_billing_group(
            Name="customer", PrimaryAccountId=members[0], AccountGrouping={"LinkedAccountIds": [members[0]]},
            ComputationPreference={"PricingPlanArn": plan}, Description="g", Tags={"owner": "pbo"},
        )["Arn"]
        basic = b.create_billing_group(
            Name="basic", PrimaryAccountId=members[1], AccountGrouping={"LinkedAccountIds": [members[1]], "AutoAssociate": True},
            ComputationPreference={"PricingPlanArn": "arn:aws:billingconductor::aws:pricingplan/BasicPricingPlan"},
        )["Arn"]
        b.update_billing_group(Arn=group, Description="g2")
        b.associate_accounts(Arn=basic, AccountIds=[members[2]])
        b.disassociate_accounts(Arn=basic, AccountIds=[members[2]])
        flat = b.create_custom_line_item(
            Name="fee", Description="Support", BillingGroupArn=group,
            ChargeDetails={"Type": "FEE", "Flat": {"ChargeValue": 10}},
            BillingPeriodRange={"InclusiveStartBillingPeriod": "2026-11"}, Tags={"owner": "pbo"},
        )["Arn"]
        pct = b.create_custom_line_item(
            Name="mgmt", Description="Management", BillingGroupArn=group,
            ChargeDetails={"Type": "FEE", "Percentage": {"PercentageValue": 10, "AssociatedValues": [flat]},
                           "LineItemFilters": [{"Attribute": "LINE_ITEM_TYPE", "MatchOption": "NOT_EQUAL", "AttributeValues": ["SavingsPlanCoveredUsage"]}]},
            BillingPeriodRange={"InclusiveStartBillingPeriod": "2026-11"}, ComputationRule="ITEMIZED",
            PresentationDetails={"Service": "AWSSupport"},
        )["Arn"]
        b.update_custom_line_item(Arn=flat, Description="Support plan", ChargeDetails={"Flat": {"ChargeValue": 12}})
        self.control("POST", BC + "usage", {"period": "2026-11", "rows": [
            {"accountId": members[0], "service": "AmazonEC2", "usageType": "BoxUsage:m5.large", "operation": "RunInstances", "onDemandCost": 100},
        ]})
        b.list_billing_groups()
        b.list_billing_groups(Filters={"Arns": [group]})
        b.list_pricing_plans()
        b.list_pricing_rules()
        b.list_pricing_rules_associated_to_pricing_plan(PricingPlanArn=plan)
        b.list_custom_line_items(BillingPeriod="2026-11")
        b.list_account_associations()
        b.list_account_associations(Filters={"Association": "MONITORED"})
        b.list_account_associations(Filters={"Association": "UNMONITORED"})
        b.list_billing_group_cost_reports(BillingPeriod="2026-11")
        b.list_resources_associated_to_custom_line_item(Arn=pct)
        b.list_resources_associated_to_custom_line_item(Arn=flat)
        for arn in (group, plan, rules[0], flat):
            b.list_tags_for_resource(ResourceArn=arn)
        b.tag_resource(ResourceArn=group, Tags={"team": "x"})
        b.untag_resource(ResourceArn=group, TagKeys=["team"])
        # Errors, against their shapes.
        self.expect_error(b.associate_accounts, Arn=group, AccountIds=["999999999999"])
        self.expect_error(b.associate_accounts, Arn=group, AccountIds=[members[1]])
        self.expect_error(b.create_pricing_plan, Name="plan")
        self.expect_error(b.list_billing_groups, MaxResults=101)
        self.expect_error(b.delete_pricing_rule, Arn=rules[0])
        self.expect_error(b.delete_pricing_plan, Arn=plan)
        self.expect_error(b.list_tags_for_resource, ResourceArn="arn:aws:billingconductor::123456789012:billinggroup/000000000000")
        b.delete_custom_line_item(Arn=pct)
        b.delete_custom_line_item(Arn=flat)
        b.delete_billing_group(Arn=basic)
        b.delete_pricing_rule(Arn=rules[4])

    def test_every_answer_matches_the_installed_models(self):
        members = self.build_organization()
        self.build_billing(members)
        missing = REQUIRED - self.rec.operations()
        self.assertEqual(missing, set(), "operations not exercised")
        problems = recorded_problems(self.rec)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


class _Conforming:
    """Runs another module's tests with every JSON answer recorded, then checks them all."""

    def client(self, service, validate=True, retries=0):
        client = super().client(service, validate=validate, retries=retries)
        if client.meta.service_model.protocol in ("json", "rest-json"):
            if not hasattr(self, "rec"):
                self.rec = mc.Recorder()
            self.rec.attach(client)
        return client

    def tearDown(self):
        problems = recorded_problems(self.rec) if hasattr(self, "rec") else []
        super().tearDown()
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


class OrganizationsTestsConform(_Conforming, test_organizations.OrganizationsTest):
    pass


class BillingConductorTestsConform(_Conforming, test_billingconductor.BillingConductorTest):
    pass


class PipelineTestsConform(_Conforming, test_pipeline.PipelineTest):
    """The CUR pipeline services the operator calls: BCM Data Exports and legacy CUR (our
    layer), Glue and Cost Explorer (moto)."""


class TransfersTestsConform(_Conforming, test_transfers.TransfersTest):
    """Billing Transfer: Organizations responsibility transfers and Billing Conductor's
    transfer preference (our layer)."""


if __name__ == "__main__":
    unittest.main()
