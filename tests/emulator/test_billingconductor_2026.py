"""The emulator's Billing Conductor of 2025-26, through boto3 (real botocore serialization):
billing transfer groups and AWS-managed plans, ITEMIZED and filtered custom line items with
their per-group quotas, GetBillingGroupCostReport by service.

Run: cd tests/emulator && $VENV/bin/python -m unittest test_billingconductor_2026.py
"""

from __future__ import annotations

import unittest

from botocore.exceptions import ClientError

import test_emulator
from test_billingconductor import BC, BillingConductorTest, error

PASSTHROUGH = "arn:aws:billingconductor::aws:pricingplan/Passthrough"
BASIC = "arn:aws:billingconductor::aws:pricingplan/BasicPricingPlan"
TRANSFER = "arn:aws:organizations::123456789012:transfer/o-abcdefghij/billing/inbound/rt-12345678"


class BillingConductor2026Test(test_emulator.EmulatorHarness):
    # The helpers of the older tests, not their tests.
    member = BillingConductorTest.member
    rule = BillingConductorTest.rule

    def setUp(self):
        super().setUp()
        self.bc = self.client("billingconductor")
        self.control("POST", BC + "settings", {"today": "2026-11-24"})
        # The payer's consolidated billing family: its organization, with these two members.
        self.orgs = self.client("organizations")
        self.orgs.create_organization(FeatureSet="ALL")
        for account_id in ("111111111111", "222222222222"):
            self.member(account_id)

    def group(self, name="customer", plan=BASIC, **extra):
        if "AccountGrouping" not in extra:
            extra = {"PrimaryAccountId": "111111111111", "AccountGrouping": {"LinkedAccountIds": ["111111111111"]}, **extra}
        return self.bc.create_billing_group(Name=name, ComputationPreference={"PricingPlanArn": plan}, **extra)["Arn"]

    def item(self, group, name, rule="CONSOLIDATED", filters=None, **extra):
        charge = {"Type": "FEE", "Percentage": {"PercentageValue": 1}}
        if filters is not None:
            charge["LineItemFilters"] = filters
        return self.bc.create_custom_line_item(
            Name=name, Description="d", BillingGroupArn=group, ChargeDetails=charge, ComputationRule=rule, **extra
        )["Arn"]

    def test_a_transfer_group_takes_passthrough_and_a_standard_group_does_not(self):
        with self.assertRaises(ClientError) as ctx:
            self.group(plan=PASSTHROUGH)
        self.assertEqual(error(ctx), ("ValidationException", "ILLEGAL_BILLING_GROUP_PRICING_PLAN"))
        arn = self.group("transfer", plan=PASSTHROUGH, AccountGrouping={"ResponsibilityTransferArn": TRANSFER})
        listed = self.bc.list_billing_groups(Filters={"BillingGroupTypes": ["TRANSFER_BILLING"]})["BillingGroups"]
        self.assertEqual([(g["Arn"], g["BillingGroupType"], g["AccountGrouping"]["ResponsibilityTransferArn"]) for g in listed], [(arn, "TRANSFER_BILLING", TRANSFER)])
        self.assertEqual(self.bc.list_billing_groups(Filters={"BillingGroupTypes": ["STANDARD"]})["BillingGroups"], [])
        # One group per transfer; the transfer of a group cannot change.
        with self.assertRaises(ClientError) as ctx:
            self.group("again", plan=PASSTHROUGH, AccountGrouping={"ResponsibilityTransferArn": TRANSFER})
        self.assertEqual(error(ctx)[0], "ValidationException")
        with self.assertRaises(ClientError) as ctx:
            self.bc.update_billing_group(Arn=arn, AccountGrouping={"ResponsibilityTransferArn": TRANSFER.replace("rt-12345678", "rt-87654321")})
        self.assertEqual(error(ctx), ("ValidationException", "ILLEGAL_BILLING_GROUP_TYPE"))
        # Passthrough bills what AWS charged.
        self.control("POST", BC + "usage", {"period": "2026-11", "rows": [
            {"billingGroup": "transfer", "accountId": "999999999999", "service": "AmazonEC2", "onDemandCost": 120, "awsCost": 100.25},
        ]})
        report = self.bc.list_billing_group_cost_reports(BillingPeriod="2026-11")["BillingGroupCostReports"][0]
        self.assertEqual((report["AWSCost"], report["ProformaCost"], report["Margin"]), ("100.25", "100.25", "0.00"))

    def test_itemized_and_filtered_items_have_per_group_quotas(self):
        group = self.group()
        service = [{"Attribute": "SERVICE", "MatchOption": "EQUAL", "AttributeValues": ["AmazonEC2"]}]
        for i in range(5):
            self.item(group, f"itemized-{i}", "ITEMIZED", service, PresentationDetails={"Service": "AmazonEC2"})
        with self.assertRaises(ClientError) as ctx:
            self.item(group, "itemized-5", "ITEMIZED")
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ServiceLimitExceededException")
        for i in range(5):
            self.item(group, f"filtered-{i}", filters=service)
        with self.assertRaises(ClientError) as ctx:
            self.item(group, "filtered-10", filters=service)
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ServiceLimitExceededException")
        # Another group has quotas of its own.
        self.item(self.group("other", PrimaryAccountId="222222222222", AccountGrouping={"LinkedAccountIds": ["222222222222"]}), "itemized-x", "ITEMIZED")
        listed = {i["Name"]: i for i in self.bc.list_custom_line_items()["CustomLineItems"]}
        self.assertEqual(listed["itemized-0"]["ComputationRule"], "ITEMIZED")
        self.assertEqual(listed["itemized-0"]["PresentationDetails"], {"Service": "AmazonEC2"})
        self.assertEqual(listed["itemized-0"]["ChargeDetails"]["LineItemFilters"], service)

    def test_filters_are_checked_and_changed_by_update(self):
        group = self.group()
        with self.assertRaises(ClientError) as ctx:
            self.item(group, "bad", filters=[{"Attribute": "SERVICE", "MatchOption": "EQUAL", "Values": ["SAVINGS_PLAN_NEGATION"]}])
        self.assertEqual(error(ctx), ("ValidationException", "ILLEGAL_LINE_ITEM_FILTER"))
        with self.assertRaises(ClientError) as ctx:
            self.item(group, "bad", filters=[{"Attribute": "LINE_ITEM_TYPE", "MatchOption": "EQUAL"}])
        self.assertEqual(error(ctx), ("ValidationException", "ILLEGAL_LINE_ITEM_FILTER"))
        arn = self.item(group, "sp", filters=[{"Attribute": "LINE_ITEM_TYPE", "MatchOption": "NOT_EQUAL", "Values": ["SAVINGS_PLAN_NEGATION"]}])
        s3 = [{"Attribute": "SERVICE", "MatchOption": "NOT_EQUAL", "AttributeValues": ["AmazonS3"]}]
        self.bc.update_custom_line_item(Arn=arn, ChargeDetails={"LineItemFilters": s3})
        listed = self.bc.list_custom_line_items()["CustomLineItems"][0]
        self.assertEqual(listed["ChargeDetails"]["LineItemFilters"], s3)
        self.bc.update_custom_line_item(Arn=arn, ChargeDetails={"LineItemFilters": []})
        self.assertNotIn("LineItemFilters", self.bc.list_custom_line_items()["CustomLineItems"][0]["ChargeDetails"])

    def test_cost_report_by_product_name_to_the_cent(self):
        rule = self.rule("markup", "GLOBAL", "MARKUP", 10)
        plan = self.bc.create_pricing_plan(Name="plan", PricingRuleArns=[rule])["Arn"]
        group = self.group(plan=plan)
        self.control("POST", BC + "usage", {"period": "2026-11", "rows": [
            {"accountId": "111111111111", "service": "AmazonEC2", "onDemandCost": 100.10, "awsCost": 90.05},
            {"accountId": "111111111111", "service": "AmazonEC2", "onDemandCost": 0.01, "awsCost": 0.01},
            {"accountId": "111111111111", "service": "AmazonS3", "onDemandCost": 33.33, "awsCost": 33.33},
        ]})
        self.control("POST", BC + "usage", {"period": "2026-10", "rows": [
            {"accountId": "111111111111", "service": "AmazonS3", "onDemandCost": 10, "awsCost": 10},
        ]})
        self.bc.create_custom_line_item(
            Name="support", Description="d", BillingGroupArn=group,
            ChargeDetails={"Type": "FEE", "Flat": {"ChargeValue": 5}}, PresentationDetails={"Service": "AmazonS3"},
        )
        out = self.bc.get_billing_group_cost_report(
            Arn=group, GroupBy=["PRODUCT_NAME"],
            BillingPeriodRange={"InclusiveStartBillingPeriod": "2026-11", "ExclusiveEndBillingPeriod": "2026-12"},
        )["BillingGroupCostReportResults"]
        by = {r["Attributes"][0]["Value"]: (r["AWSCost"], r["ProformaCost"], r["Margin"]) for r in out}
        self.assertEqual(by, {"AmazonEC2": ("90.06", "110.12", "20.06"), "AmazonS3": ("33.33", "41.66", "8.33")})
        both = self.bc.get_billing_group_cost_report(
            Arn=group, GroupBy=["PRODUCT_NAME", "BILLING_PERIOD"],
            BillingPeriodRange={"InclusiveStartBillingPeriod": "2026-10", "ExclusiveEndBillingPeriod": "2026-12"},
        )["BillingGroupCostReportResults"]
        october = [r for r in both if {"Key": "BILLING_PERIOD", "Value": "Oct 2026"} in r["Attributes"]]
        self.assertEqual([(r["Attributes"][0]["Value"], r["ProformaCost"]) for r in october], [("AmazonS3", "11.00")])
        with self.assertRaises(ClientError) as ctx:
            self.bc.get_billing_group_cost_report(
                Arn=group, BillingPeriodRange={"InclusiveStartBillingPeriod": "2025-01", "ExclusiveEndBillingPeriod": "2026-12"},
            )
        self.assertEqual(error(ctx), ("ValidationException", "ILLEGAL_BILLING_PERIOD_RANGE"))

if __name__ == "__main__":
    unittest.main()
