"""Tests of the emulator's Billing Transfer layer (services/transfers.py), through boto3.

Run: cd tests/emulator && $VENV/bin/python -m unittest test_transfers.py
"""

from __future__ import annotations

import datetime as dt
import unittest

from botocore.exceptions import ClientError

import test_emulator

CTL = "/_emulator/services/transfers/"
CUSTOMER = "222222222222"


def error(ctx) -> tuple[str, str | None]:
    resp = ctx.exception.response
    return resp["Error"]["Code"], resp.get("Reason")


def first_of_month(months_ahead: int) -> dt.datetime:
    today = dt.datetime.now(dt.timezone.utc)
    month = today.month - 1 + months_ahead
    return dt.datetime(today.year + month // 12, month % 12 + 1, 1, tzinfo=dt.timezone.utc)


class TransfersTest(test_emulator.EmulatorHarness):
    def setUp(self):
        super().setUp()
        self.orgs = self.client("organizations")
        self.orgs.create_organization(FeatureSet="ALL")
        self.bc = self.client("billingconductor")
        self.start = first_of_month(2)

    def invite(self, target=CUSTOMER, kind="ACCOUNT", start=None, tags=None):
        return self.orgs.invite_organization_to_transfer_responsibility(
            Type="BILLING",
            Target={"Id": target, "Type": kind},
            StartTimestamp=start or self.start,
            SourceName="globex",
            Tags=tags or [{"Key": "partnerbilling.io/owner", "Value": "billing/billingtransfer/globex"}],
        )["Handshake"]

    def transfers(self):
        return self.orgs.list_inbound_responsibility_transfers(Type="BILLING")["ResponsibilityTransfers"]

    def test_invite_lists_an_inbound_requested_transfer_with_its_tags(self):
        hs = self.invite()
        self.assertEqual(hs["State"], "REQUESTED")
        self.assertEqual(hs["Action"], "TRANSFER_RESPONSIBILITY")
        tid = next(r["Value"] for r in hs["Resources"] if r["Type"] == "RESPONSIBILITY_TRANSFER")
        [t] = self.transfers()
        self.assertEqual((t["Id"], t["Status"], t["Source"]["ManagementAccountId"]), (tid, "REQUESTED", CUSTOMER))
        self.assertIn("/billing/inbound/", t["Arn"])
        self.assertEqual(t["StartTimestamp"], self.start)
        self.assertEqual(t["ActiveHandshakeId"], hs["Id"])
        tags = self.orgs.list_tags_for_resource(ResourceId=tid)["Tags"]
        self.assertEqual(tags, [{"Key": "partnerbilling.io/owner", "Value": "billing/billingtransfer/globex"}])
        # ListTagsForResource of anything else still reaches moto.
        root = self.orgs.list_roots()["Roots"][0]["Id"]
        self.assertEqual(self.orgs.list_tags_for_resource(ResourceId=root)["Tags"], [])

    def test_start_must_be_the_first_of_a_month_and_24_hours_away(self):
        for start, reason in [
            (self.start + dt.timedelta(days=14), "START_DATE_NOT_BEGINNING_OF_MONTH"),
            (self.start + dt.timedelta(hours=1), "START_DATE_NOT_BEGINNING_OF_DAY"),
            (first_of_month(0), "START_DATE_TOO_EARLY"),
        ]:
            with self.assertRaises(ClientError) as ctx:
                self.invite(start=start)
            self.assertEqual(error(ctx), ("InvalidInputException", reason), start)
        self.assertEqual(self.transfers(), [])

    def test_own_organization_duplicate_and_existing_transfer_are_refused(self):
        master = self.orgs.describe_organization()["Organization"]["MasterAccountId"]
        with self.assertRaises(ClientError) as ctx:
            self.invite(target=master)
        self.assertEqual(error(ctx), ("HandshakeConstraintViolationException", "SOURCE_AND_TARGET_CANNOT_MATCH"))
        self.invite()
        with self.assertRaises(ClientError) as ctx:
            self.invite()
        self.assertEqual(error(ctx)[0], "DuplicateHandshakeException")
        self.control("POST", CTL + "accept", {"transferId": self.transfers()[0]["Id"]})
        with self.assertRaises(ClientError) as ctx:
            self.invite()
        self.assertEqual(error(ctx), ("HandshakeConstraintViolationException", "RESPONSIBILITY_TRANSFER_ALREADY_EXISTS"))

    def test_customer_controls_and_terminate(self):
        hs = self.invite()
        tid = self.transfers()[0]["Id"]
        with self.assertRaises(ClientError) as ctx:
            self.orgs.terminate_responsibility_transfer(Id=tid)
        self.assertEqual(error(ctx)[0], "InvalidResponsibilityTransferTransitionException")
        self.control("POST", CTL + "accept", {"handshakeId": hs["Id"]})
        self.assertEqual(self.orgs.describe_responsibility_transfer(Id=tid)["ResponsibilityTransfer"]["Status"], "ACCEPTED")
        with self.assertRaises(ClientError) as ctx:
            self.orgs.terminate_responsibility_transfer(Id=tid, EndTimestamp=self.start + dt.timedelta(days=3))
        self.assertEqual(error(ctx), ("InvalidInputException", "END_DATE_NOT_END_OF_MONTH"))
        end = first_of_month(3) - dt.timedelta(seconds=1)
        t = self.orgs.terminate_responsibility_transfer(Id=tid, EndTimestamp=end)["ResponsibilityTransfer"]
        self.assertEqual((t["Status"], t["EndTimestamp"]), ("WITHDRAWN", end))
        with self.assertRaises(ClientError) as ctx:
            self.orgs.terminate_responsibility_transfer(Id=tid, EndTimestamp=end)
        self.assertEqual(error(ctx)[0], "ResponsibilityTransferAlreadyInStatusException")

    def test_decline_expire_withdraw_and_cancel(self):
        self.invite()
        tid = self.transfers()[0]["Id"]
        self.control("POST", CTL + "decline", {"transferId": tid})
        self.assertEqual(self.transfers()[0]["Status"], "DECLINED")
        hs = self.invite(target="ops@globex.example", kind="EMAIL")
        second = next(t for t in self.transfers() if t["Id"] != tid)
        self.assertEqual(second["Source"], {"ManagementAccountEmail": "ops@globex.example"})
        self.orgs.cancel_handshake(HandshakeId=hs["Id"])
        self.assertEqual(self.orgs.describe_responsibility_transfer(Id=second["Id"])["ResponsibilityTransfer"]["Status"], "CANCELED")
        hs = self.invite(target="333333333333")
        third = next(t for t in self.transfers() if t["ActiveHandshakeId"] == hs["Id"])
        self.control("POST", CTL + "expire", {"transferId": third["Id"]})
        self.assertEqual(self.orgs.describe_responsibility_transfer(Id=third["Id"])["ResponsibilityTransfer"]["Status"], "EXPIRED")
        self.invite(target="444444444444")
        fourth = next(t for t in self.transfers() if t["Source"].get("ManagementAccountId") == "444444444444")
        self.control("POST", CTL + "accept", {"transferId": fourth["Id"]})
        out = self.control("POST", CTL + "withdraw", {"transferId": fourth["Id"]})
        self.assertEqual(out["ResponsibilityTransfer"]["Status"], "WITHDRAWN")

    def test_read_lag_hides_a_new_transfer_from_list_and_describe_but_not_its_handshake(self):
        self.assertEqual(self.control("POST", CTL + "settings", {"readLagSeconds": 600}), {"readLagSeconds": 600.0})
        hs = self.invite()
        tid = next(r["Value"] for r in hs["Resources"] if r["Type"] == "RESPONSIBILITY_TRANSFER")
        self.assertEqual(self.transfers(), [])
        with self.assertRaises(ClientError) as ctx:
            self.orgs.describe_responsibility_transfer(Id=tid)
        self.assertEqual(error(ctx)[0], "ResponsibilityTransferNotFoundException")
        self.assertEqual(self.orgs.describe_handshake(HandshakeId=hs["Id"])["Handshake"]["State"], "REQUESTED")
        # The write itself happened: a second invitation to the customer is refused.
        with self.assertRaises(ClientError) as ctx:
            self.invite()
        self.assertEqual(error(ctx)[0], "DuplicateHandshakeException")
        self.control("POST", CTL + "settings", {"readLagSeconds": 0})
        self.assertEqual([t["Id"] for t in self.transfers()], [tid])
        self.assertEqual(self.orgs.describe_responsibility_transfer(Id=tid)["ResponsibilityTransfer"]["Status"], "REQUESTED")

    def test_preference_defaults_off_needs_a_plan_when_on_and_is_idempotent(self):
        self.invite()
        arn = self.transfers()[0]["Arn"]
        got = self.bc.get_billing_transfer_preference(ResponsibilityTransferArn=arn)
        self.assertEqual(got["AutoBillingTransferBillingGroupCreation"], {"Enabled": False})
        self.assertNotIn("LastModifiedTime", got)
        with self.assertRaises(ClientError) as ctx:
            self.bc.update_billing_transfer_preference(
                ResponsibilityTransferArn=arn, AutoBillingTransferBillingGroupCreation={"Enabled": True}
            )
        self.assertEqual(error(ctx)[0], "ValidationException")
        with self.assertRaises(ClientError) as ctx:
            self.bc.update_billing_transfer_preference(
                ResponsibilityTransferArn=arn,
                AutoBillingTransferBillingGroupCreation={"Enabled": True, "PricingPlanArn": "abcdefghij"},
            )
        self.assertEqual(error(ctx)[0], "ResourceNotFoundException")
        plan = self.bc.create_pricing_plan(Name="std")["Arn"]
        for _ in range(2):
            out = self.bc.update_billing_transfer_preference(
                ResponsibilityTransferArn=arn,
                AutoBillingTransferBillingGroupCreation={"Enabled": True, "PricingPlanArn": plan},
                ClientToken="tok-1",
            )
        self.assertEqual(out["AutoBillingTransferBillingGroupCreation"], {"Enabled": True, "PricingPlanArn": plan})
        got = self.bc.get_billing_transfer_preference(ResponsibilityTransferArn=arn)
        self.assertEqual(got["AutoBillingTransferBillingGroupCreation"]["PricingPlanArn"], plan)
        self.assertIn("LastModifiedTime", got)
        self.bc.update_billing_transfer_preference(
            ResponsibilityTransferArn=arn, AutoBillingTransferBillingGroupCreation={"Enabled": True, "PricingPlanArn": "Passthrough"}
        )
        missing = arn.replace(arn.rsplit("/", 1)[1], "rt-000000000000")
        with self.assertRaises(ClientError) as ctx:
            self.bc.get_billing_transfer_preference(ResponsibilityTransferArn=missing)
        self.assertEqual(error(ctx)[0], "ResourceNotFoundException")


if __name__ == "__main__":
    unittest.main()
