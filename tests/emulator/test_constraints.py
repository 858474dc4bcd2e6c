"""Constraints AWS enforces, as the current models and API reference state them.

- CloseAccount's rolling 30-day quota (organizations service-2.json, CloseAccount: "Within a
  rolling 30 day period you can close the higher of either 250 or 20% of the member accounts in
  your organization, up to a maximum of 1,000") -> ConstraintViolationException
  CLOSE_ACCOUNT_QUOTA_EXCEEDED.
- At most 50 tags per Organizations resource -> ConstraintViolationException
  MAX_TAG_LIMIT_EXCEEDED (the ConstraintViolationExceptionReason enum value).
- Billing Conductor takes only accounts of the payer's consolidated billing family
  (AssociateAccounts; CreateBillingGroup's AccountGrouping.LinkedAccountIds and
  PrimaryAccountId) -> ValidationException ILLEGAL_ACCOUNTS / ILLEGAL_PRIMARY_ACCOUNT.
- Finished handshakes are listed and described for 30 days, then deleted
  (ListHandshakesForOrganization, ListHandshakesForAccount, DescribeHandshake docs).

Run: cd tests/emulator && $VENV/bin/python -m unittest test_constraints.py
"""

from __future__ import annotations

import json
import re

import botocore.session
from botocore.exceptions import ClientError

import test_emulator
from pbo_emulator.services.organizations import close_quota

ORG = "/_emulator/services/organizations/"
BC = "/_emulator/services/billingconductor/"
DAY = 24 * 3600
SCP_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]})


def error(ctx) -> tuple[str, str | None]:
    resp = ctx.exception.response
    return resp["Error"]["Code"], resp.get("Reason")


def tags(n: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i:02d}", "Value": "v"} for i in range(n)]


class CloseAccountQuotaTest(test_emulator.EmulatorHarness):
    def setUp(self):
        super().setUp()
        self.orgs = self.client("organizations")
        self.orgs.create_organization(FeatureSet="ALL")
        self.master = self.orgs.describe_organization()["Organization"]["MasterAccountId"]
        self.control("POST", ORG + "settings", {"closeDelaySeconds": 1})

    def test_the_installed_model_states_the_formula(self):
        doc = botocore.session.get_session().get_service_model("organizations").operation_model("CloseAccount").documentation
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", doc))
        self.assertIn(
            "Within a rolling 30 day period you can close the higher of either 250 or 20% of the member accounts "
            "in your organization, up to a maximum of 1,000.",
            text,
        )
        self.assertEqual([close_quota(n) for n in (100, 2000, 6000)], [250, 400, 1000])
        self.assertEqual([close_quota(n) for n in (0, 1250, 1255, 5000, 5005)], [250, 250, 251, 1000, 1000])

    def test_quota_at_100_and_6000_members(self):
        self.control("POST", ORG + "bulk-accounts", {"count": 100})
        self.assertEqual(self.control("POST", ORG + "close-quota", {})["quota"], 250)
        self.control("POST", ORG + "bulk-accounts", {"count": 5900, "prefix": "more"})
        state = self.control("POST", ORG + "close-quota", {})
        self.assertEqual((state["members"], state["quota"]), (6000, 1000))

    def test_quota_at_2000_members_refuses_the_401st_closure_for_30_days(self):
        ids = self.control("POST", ORG + "bulk-accounts", {"count": 2000})["accountIds"]
        self.assertEqual(self.control("POST", ORG + "close-quota", {})["quota"], 400)
        for account_id in ids[:400]:
            self.orgs.close_account(AccountId=account_id)
        with self.assertRaises(ClientError) as ctx:
            self.orgs.close_account(AccountId=ids[400])
        self.assertEqual(error(ctx), ("ConstraintViolationException", "CLOSE_ACCOUNT_QUOTA_EXCEEDED"))
        self.control("POST", ORG + "advance", {"seconds": 29 * DAY})
        with self.assertRaises(ClientError):
            self.orgs.close_account(AccountId=ids[400])
        self.control("POST", ORG + "advance", {"seconds": 1 * DAY})
        self.orgs.close_account(AccountId=ids[400])  # the window rolled past the first closures
        self.assertEqual(self.orgs.describe_account(AccountId=ids[0])["Account"]["State"], "CLOSED")

    def test_a_fixed_quota_still_overrides_and_null_restores_the_formula(self):
        ids = self.control("POST", ORG + "bulk-accounts", {"count": 3})["accountIds"]
        self.control("POST", ORG + "settings", {"closeQuota": 1})
        self.orgs.close_account(AccountId=ids[0])
        with self.assertRaises(ClientError) as ctx:
            self.orgs.close_account(AccountId=ids[1])
        self.assertEqual(error(ctx), ("ConstraintViolationException", "CLOSE_ACCOUNT_QUOTA_EXCEEDED"))
        self.control("POST", ORG + "settings", {"closeQuota": None})
        self.orgs.close_account(AccountId=ids[1])

    def test_closed_accounts_leave_the_organization_after_90_days(self):
        ids = self.control("POST", ORG + "bulk-accounts", {"count": 2})["accountIds"]
        self.orgs.close_account(AccountId=ids[0])
        self.assertEqual(self.orgs.describe_account(AccountId=ids[0])["Account"]["State"], "PENDING_CLOSURE")
        self.control("POST", ORG + "advance", {"seconds": 2})
        self.assertEqual(self.orgs.describe_account(AccountId=ids[0])["Account"]["State"], "CLOSED")
        self.control("POST", ORG + "advance", {"seconds": 89 * DAY})
        self.assertIn(ids[0], [a["Id"] for a in self.orgs.list_accounts()["Accounts"]])
        self.control("POST", ORG + "advance", {"seconds": 1 * DAY})
        self.assertNotIn(ids[0], [a["Id"] for a in self.orgs.list_accounts()["Accounts"]])
        with self.assertRaises(ClientError) as ctx:
            self.orgs.describe_account(AccountId=ids[0])
        self.assertEqual(error(ctx)[0], "AccountNotFoundException")


class TagLimitTest(test_emulator.EmulatorHarness):
    def setUp(self):
        super().setUp()
        self.orgs = self.client("organizations")
        self.orgs.create_organization(FeatureSet="ALL")
        self.root = self.orgs.list_roots()["Roots"][0]["Id"]
        self.orgs.enable_policy_type(RootId=self.root, PolicyType="SERVICE_CONTROL_POLICY")

    def assert_too_many(self, call, **kwargs):
        with self.assertRaises(ClientError) as ctx:
            call(**kwargs)
        self.assertEqual(error(ctx), ("ConstraintViolationException", "MAX_TAG_LIMIT_EXCEEDED"))

    def test_the_51st_tag_is_refused(self):
        account = self.control("POST", ORG + "bulk-accounts", {"count": 1})["accountIds"][0]
        self.orgs.tag_resource(ResourceId=account, Tags=tags(30))
        self.orgs.tag_resource(ResourceId=account, Tags=tags(20, "j"))  # 50 in all
        self.orgs.tag_resource(ResourceId=account, Tags=[{"Key": "k00", "Value": "changed"}])  # a key it has: still 50
        self.assert_too_many(self.orgs.tag_resource, ResourceId=account, Tags=[{"Key": "fifty-one", "Value": "v"}])
        pages = self.orgs.get_paginator("list_tags_for_resource").paginate(ResourceId=account)
        self.assertEqual(sum(len(p["Tags"]) for p in pages), 50)  # the refused request changed nothing
        self.orgs.untag_resource(ResourceId=account, TagKeys=["k00"])
        self.orgs.tag_resource(ResourceId=account, Tags=[{"Key": "fifty", "Value": "v"}])

    def test_creating_with_51_tags_is_refused(self):
        self.assert_too_many(self.orgs.create_account, AccountName="a", Email="a@example.com", Tags=tags(51))
        self.assert_too_many(self.orgs.create_organizational_unit, ParentId=self.root, Name="ou", Tags=tags(51))
        self.assert_too_many(self.orgs.create_policy, Name="p", Description="", Type="SERVICE_CONTROL_POLICY", Content=SCP_DOC, Tags=tags(51))
        self.assert_too_many(self.orgs.invite_account_to_organization, Target={"Id": "444455556666", "Type": "ACCOUNT"}, Tags=tags(51))
        ou = self.orgs.create_organizational_unit(ParentId=self.root, Name="ou", Tags=tags(50))["OrganizationalUnit"]["Id"]
        self.assert_too_many(self.orgs.tag_resource, ResourceId=ou, Tags=[{"Key": "x", "Value": "v"}])
        self.assertEqual(self.orgs.list_accounts()["Accounts"][0]["Id"], self.orgs.describe_organization()["Organization"]["MasterAccountId"])

    def test_duplicate_keys_in_one_request_are_refused(self):
        with self.assertRaises(ClientError) as ctx:
            self.orgs.create_organizational_unit(ParentId=self.root, Name="ou", Tags=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}])
        self.assertEqual(error(ctx), ("InvalidInputException", "DUPLICATE_TAG_KEY"))


class BillingFamilyTest(test_emulator.EmulatorHarness):
    def setUp(self):
        super().setUp()
        self.orgs = self.client("organizations")
        self.orgs.create_organization(FeatureSet="ALL")
        self.members = self.control("POST", ORG + "bulk-accounts", {"count": 2})["accountIds"]
        self.bc = self.client("billingconductor")
        self.plan = self.bc.create_pricing_plan(Name="plan")["Arn"]

    def group(self, name, primary, linked):
        return self.bc.create_billing_group(
            Name=name, PrimaryAccountId=primary, AccountGrouping={"LinkedAccountIds": linked},
            ComputationPreference={"PricingPlanArn": self.plan},
        )["Arn"]

    def test_only_members_of_the_payers_organization_are_accepted(self):
        stranger = "999988887777"
        with self.assertRaises(ClientError) as ctx:
            self.group("g0", stranger, [stranger])
        self.assertEqual(error(ctx), ("ValidationException", "ILLEGAL_PRIMARY_ACCOUNT"))
        with self.assertRaises(ClientError) as ctx:
            self.group("g0", self.members[0], [self.members[0], stranger])
        self.assertEqual(error(ctx), ("ValidationException", "ILLEGAL_ACCOUNTS"))
        group = self.group("g1", self.members[0], [self.members[0]])
        with self.assertRaises(ClientError) as ctx:
            self.bc.associate_accounts(Arn=group, AccountIds=[self.members[1], stranger])
        self.assertEqual(error(ctx), ("ValidationException", "ILLEGAL_ACCOUNTS"))
        self.assertEqual(
            [a["AccountId"] for a in self.bc.list_account_associations(Filters={"Association": group})["LinkedAccounts"]], [self.members[0]]
        )
        self.bc.associate_accounts(Arn=group, AccountIds=[self.members[1]])
        # An account that joins the organization later is accepted then.
        hs = self.orgs.invite_account_to_organization(Target={"Id": stranger, "Type": "ACCOUNT"})["Handshake"]
        self.control("POST", ORG + "accept", {"handshakeId": hs["Id"]})
        self.bc.associate_accounts(Arn=group, AccountIds=[stranger])
        linked = self.bc.list_account_associations()["LinkedAccounts"]
        self.assertEqual({a["AccountId"] for a in linked if a.get("BillingGroupArn") == group}, {*self.members, stranger})
        unmonitored = self.bc.list_account_associations(Filters={"Association": "UNMONITORED"})["LinkedAccounts"]
        self.assertEqual([a["AccountId"] for a in unmonitored], [self.orgs.describe_organization()["Organization"]["MasterAccountId"]])


class HandshakeRetentionTest(test_emulator.EmulatorHarness):
    def setUp(self):
        super().setUp()
        self.orgs = self.client("organizations")
        self.orgs.create_organization(FeatureSet="ALL")

    def listed(self):
        return {h["Id"]: h["State"] for h in self.orgs.list_handshakes_for_organization()["Handshakes"]}

    def test_finished_handshakes_are_gone_30_days_after_they_ended(self):
        invite = self.orgs.invite_account_to_organization
        declined = invite(Target={"Id": "111122223333", "Type": "ACCOUNT"})["Handshake"]["Id"]
        expiring = invite(Target={"Id": "222233334444", "Type": "ACCOUNT"})["Handshake"]["Id"]
        self.control("POST", ORG + "decline", {"handshakeId": declined})
        self.control("POST", ORG + "advance", {"seconds": 29 * DAY})
        self.assertEqual(self.listed(), {declined: "DECLINED", expiring: "EXPIRED"})  # expired at day 15
        self.assertEqual(self.orgs.describe_handshake(HandshakeId=declined)["Handshake"]["State"], "DECLINED")
        self.control("POST", ORG + "advance", {"seconds": 1 * DAY})
        self.assertEqual(self.listed(), {expiring: "EXPIRED"})
        with self.assertRaises(ClientError) as ctx:
            self.orgs.describe_handshake(HandshakeId=declined)
        self.assertEqual(error(ctx)[0], "HandshakeNotFoundException")
        self.control("POST", ORG + "advance", {"seconds": 15 * DAY})  # 30 days after it expired
        self.assertEqual(self.listed(), {})
        with self.assertRaises(ClientError):
            self.orgs.describe_handshake(HandshakeId=expiring)

    def test_the_invited_account_lists_what_it_received(self):
        hs = self.orgs.invite_account_to_organization(Target={"Id": "111122223333", "Type": "ACCOUNT"})["Handshake"]["Id"]
        creds = self.client("sts").assume_role(RoleArn="arn:aws:iam::111122223333:role/invitee", RoleSessionName="invitee")["Credentials"]
        import boto3

        invitee = boto3.client(
            "organizations", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
        )
        self.assertEqual([h["Id"] for h in invitee.list_handshakes_for_account()["Handshakes"]], [hs])
        self.orgs.cancel_handshake(HandshakeId=hs)
        self.control("POST", ORG + "advance", {"seconds": 30 * DAY})
        self.assertEqual(invitee.list_handshakes_for_account()["Handshakes"], [])
