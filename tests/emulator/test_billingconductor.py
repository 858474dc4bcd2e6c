"""Tests of the emulator's Billing Conductor, through boto3 (real botocore serialization).

Run: cd tests/emulator && $VENV/bin/python -m unittest test_billingconductor.py
"""

from __future__ import annotations

import unittest

from botocore.exceptions import ClientError

import test_emulator

BC = "/_emulator/services/billingconductor/"
ORG = "/_emulator/services/organizations/"


def error(ctx) -> tuple[str, str | None]:
    resp = ctx.exception.response
    return resp["Error"]["Code"], resp.get("Reason")


class BillingConductorTest(test_emulator.EmulatorHarness):
    def setUp(self):
        super().setUp()
        self.bc = self.client("billingconductor")
        self.control("POST", BC + "settings", {"today": "2026-11-24"})
        # The payer's consolidated billing family: its organization, with these two members.
        self.orgs = self.client("organizations")
        self.orgs.create_organization(FeatureSet="ALL")
        for account_id in ("111111111111", "222222222222"):
            self.member(account_id)

    def member(self, account_id):
        """Make ``account_id`` a member of the payer's organization (invited, then accepted)."""
        hs = self.orgs.invite_account_to_organization(Target={"Id": account_id, "Type": "ACCOUNT"})["Handshake"]
        self.control("POST", ORG + "accept", {"handshakeId": hs["Id"]})

    def rule(self, name, scope, kind, pct, **extra):
        return self.bc.create_pricing_rule(Name=name, Scope=scope, Type=kind, ModifierPercentage=pct, **extra)["Arn"]

    def test_worked_example_prices_325_then_367_50(self):
        rules = [
            self.rule("global-markup", "GLOBAL", "MARKUP", 10),
            self.rule("s3-discount", "SERVICE", "DISCOUNT", 5, Service="AmazonS3"),
            self.rule("m5-discount", "SKU", "DISCOUNT", 20, Service="AmazonEC2", UsageType="BoxUsage:m5.large", Operation="RunInstances"),
        ]
        plan = self.bc.create_pricing_plan(Name="customer-plan", PricingRuleArns=rules)["Arn"]
        group = self.bc.create_billing_group(
            Name="customer", PrimaryAccountId="111111111111",
            AccountGrouping={"LinkedAccountIds": ["111111111111"]},
            ComputationPreference={"PricingPlanArn": plan},
        )["Arn"]
        self.control("POST", BC + "usage", {"period": "2026-11", "rows": [
            {"accountId": "111111111111", "service": "AmazonEC2", "usageType": "BoxUsage:m5.large", "operation": "RunInstances", "onDemandCost": 100},
            {"accountId": "111111111111", "service": "AmazonEC2", "usageType": "BoxUsage:t3.micro", "operation": "RunInstances", "onDemandCost": 50},
            {"accountId": "111111111111", "service": "AmazonS3", "usageType": "TimedStorage-ByteHrs", "operation": "StandardStorage", "onDemandCost": 200},
        ]})
        report = self.bc.list_billing_group_cost_reports(BillingPeriod="2026-11")["BillingGroupCostReports"][0]
        self.assertEqual(report["ProformaCost"], "325.00")
        self.assertEqual(report["AWSCost"], "350.00")
        self.assertEqual(report["Margin"], "-25.00")
        self.bc.create_custom_line_item(
            Name="support-fee", Description="Support", BillingGroupArn=group,
            ChargeDetails={"Type": "FEE", "Flat": {"ChargeValue": 10}},
            BillingPeriodRange={"InclusiveStartBillingPeriod": "2026-11"},
        )
        self.bc.create_custom_line_item(
            Name="management-fee", Description="Management", BillingGroupArn=group,
            ChargeDetails={"Type": "FEE", "Percentage": {"PercentageValue": 10}},
            BillingPeriodRange={"InclusiveStartBillingPeriod": "2026-11"},
        )
        report = self.bc.list_billing_group_cost_reports(BillingPeriod="2026-11")["BillingGroupCostReports"][0]
        self.assertEqual(report["ProformaCost"], "367.50")

    def test_quotas_and_idempotency(self):
        plan = self.bc.create_pricing_plan(Name="p", ClientToken="tok-1")["Arn"]
        self.assertEqual(self.bc.create_pricing_plan(Name="p", ClientToken="tok-1")["Arn"], plan)
        with self.assertRaises(ClientError) as ctx:
            self.bc.create_pricing_plan(Name="p", ClientToken="tok-2")
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ConflictException")
        g1 = self.bc.create_billing_group(
            Name="g1", PrimaryAccountId="111111111111",
            AccountGrouping={"LinkedAccountIds": ["111111111111"], "AutoAssociate": True},
            ComputationPreference={"PricingPlanArn": plan},
        )["Arn"]
        with self.assertRaises(ClientError) as ctx:
            self.bc.create_billing_group(
                Name="g2", PrimaryAccountId="222222222222",
                AccountGrouping={"LinkedAccountIds": ["222222222222"], "AutoAssociate": True},
                ComputationPreference={"PricingPlanArn": plan},
            )
        self.assertEqual(error(ctx), ("ValidationException", "TOO_MANY_AUTO_ASSOCIATE_BILLING_GROUPS"))
        with self.assertRaises(ClientError) as ctx:
            self.bc.associate_accounts(Arn=g1, AccountIds=[f"{i:012d}" for i in range(31)])
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ValidationException")
        g2 = self.bc.create_billing_group(
            Name="g2", PrimaryAccountId="222222222222",
            AccountGrouping={"LinkedAccountIds": ["222222222222"]},
            ComputationPreference={"PricingPlanArn": plan},
        )["Arn"]
        with self.assertRaises(ClientError) as ctx:
            self.bc.associate_accounts(Arn=g2, AccountIds=["111111111111"])
        self.assertEqual(error(ctx), ("ValidationException", "ACCOUNTS_ALREADY_ASSOCIATED"))

    def test_closed_periods_are_refused(self):
        plan = self.bc.create_pricing_plan(Name="p")["Arn"]
        group = self.bc.create_billing_group(
            Name="g", PrimaryAccountId="111111111111",
            AccountGrouping={"LinkedAccountIds": ["111111111111"]},
            ComputationPreference={"PricingPlanArn": plan},
        )["Arn"]
        for period in ("2026-10", "2026-11"):
            self.bc.create_custom_line_item(
                Name=f"fee-{period}", Description="fee", BillingGroupArn=group,
                ChargeDetails={"Type": "FEE", "Flat": {"ChargeValue": 1}},
                BillingPeriodRange={"InclusiveStartBillingPeriod": period},
            )
        with self.assertRaises(ClientError) as ctx:
            self.bc.create_custom_line_item(
                Name="old", Description="fee", BillingGroupArn=group,
                ChargeDetails={"Type": "FEE", "Flat": {"ChargeValue": 1}},
                BillingPeriodRange={"InclusiveStartBillingPeriod": "2026-09"},
            )
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ValidationException")

    def test_list_filters_as_modeled(self):
        r1 = self.rule("r1", "GLOBAL", "MARKUP", 1)
        self.rule("r2", "GLOBAL", "MARKUP", 2)
        # ListPricingRulesFilter.Arns (a list)
        self.assertEqual([r["Arn"] for r in self.bc.list_pricing_rules(Filters={"Arns": [r1]})["PricingRules"]], [r1])
        plan = self.bc.create_pricing_plan(Name="p")["Arn"]
        basic = "arn:aws:billingconductor::aws:pricingplan/BasicPricingPlan"
        g1 = self.bc.create_billing_group(
            Name="alpha-1", PrimaryAccountId="111111111111", AccountGrouping={"LinkedAccountIds": ["111111111111"], "AutoAssociate": True},
            ComputationPreference={"PricingPlanArn": plan},
        )["Arn"]
        g2 = self.bc.create_billing_group(
            Name="beta-2", PrimaryAccountId="222222222222", AccountGrouping={"LinkedAccountIds": ["222222222222"]},
            ComputationPreference={"PricingPlanArn": basic},
        )["Arn"]

        def groups(**filters):
            return [g["Arn"] for g in self.bc.list_billing_groups(Filters=filters)["BillingGroups"]]

        self.assertEqual(groups(Names=[{"SearchOption": "STARTS_WITH", "SearchValue": "alp"}]), [g1])
        self.assertEqual(groups(PricingPlan=basic), [g2])
        self.assertEqual(groups(AutoAssociate=True), [g1])
        self.assertEqual(groups(PrimaryAccountIds=["222222222222"]), [g2])
        self.assertEqual(sorted(groups(Statuses=["ACTIVE"], BillingGroupTypes=["STANDARD"])), sorted([g1, g2]))
        self.assertEqual(groups(BillingGroupTypes=["TRANSFER_BILLING"]), [])
        # The Passthrough plan is for billing transfer groups only.
        with self.assertRaises(ClientError) as ctx:
            self.bc.update_billing_group(Arn=g2, ComputationPreference={"PricingPlanArn": "arn:aws:billingconductor::aws:pricingplan/Passthrough"})
        self.assertEqual(error(ctx), ("ValidationException", "ILLEGAL_BILLING_GROUP_PRICING_PLAN"))
        a = self.bc.create_custom_line_item(Name="a", Description="a", BillingGroupArn=g1, ChargeDetails={"Type": "FEE", "Flat": {"ChargeValue": 1}})["Arn"]
        b = self.bc.create_custom_line_item(Name="b", Description="b", BillingGroupArn=g2, ChargeDetails={"Type": "FEE", "Percentage": {"PercentageValue": 1, "AssociatedValues": [a]}})["Arn"]
        items = lambda **f: [i["Arn"] for i in self.bc.list_custom_line_items(Filters=f)["CustomLineItems"]]  # noqa: E731
        self.assertEqual(items(Names=["b"]), [b])
        self.assertEqual(items(AccountIds=["111111111111"]), [a])
        related = lambda arn: [(r["Arn"], r["Relationship"]) for r in self.bc.list_resources_associated_to_custom_line_item(Arn=arn)["AssociatedResources"]]  # noqa: E731
        self.assertEqual(related(b), [(a, "CHILD")])
        self.assertEqual(related(a), [(b, "PARENT")])
        # Every linked account is listed; the monitored ones with their group.
        linked = {x["AccountId"]: x.get("BillingGroupArn") for x in self.bc.list_account_associations()["LinkedAccounts"]}
        self.assertEqual(linked, {"123456789012": None, "111111111111": g1, "222222222222": g2})


if __name__ == "__main__":
    unittest.main()
