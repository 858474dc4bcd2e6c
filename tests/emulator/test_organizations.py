"""Tests of the emulator's Organizations layer (what moto lacks), through boto3.

Run: cd tests/emulator && $VENV/bin/python -m unittest test_organizations.py
"""

from __future__ import annotations

import json
import unittest

from botocore.exceptions import ClientError

import test_emulator

ORG = "/_emulator/services/organizations/"


def error(ctx) -> tuple[str, str | None]:
    resp = ctx.exception.response
    return resp["Error"]["Code"], resp.get("Reason")


class OrganizationsTest(test_emulator.EmulatorHarness):
    def setUp(self):
        super().setUp()
        self.orgs = self.client("organizations")
        self.orgs.create_organization(FeatureSet="ALL")
        self.master = self.orgs.describe_organization()["Organization"]["MasterAccountId"]
        self.control("POST", ORG + "settings", {"createDelaySeconds": 60, "closeDelaySeconds": 60})

    def accounts(self):
        pages = self.orgs.get_paginator("list_accounts").paginate()
        return [a for p in pages for a in p["Accounts"]]

    def test_create_account_stays_in_progress_then_appears(self):
        req = self.orgs.create_account(AccountName="a", Email="a@example.com")["CreateAccountStatus"]
        self.assertEqual(req["State"], "IN_PROGRESS")
        self.assertTrue(req["Id"].startswith("car-"))
        self.assertEqual(len(self.accounts()), 1)
        in_flight = self.orgs.list_create_account_status(States=["IN_PROGRESS"])["CreateAccountStatuses"]
        self.assertEqual([r["Id"] for r in in_flight], [req["Id"]])
        self.control("POST", ORG + "complete-creates", {})
        done = self.orgs.describe_create_account_status(CreateAccountRequestId=req["Id"])["CreateAccountStatus"]
        self.assertEqual(done["State"], "SUCCEEDED")
        self.assertIn(done["AccountId"], [a["Id"] for a in self.accounts()])

    def test_delay_elapses_with_the_clock(self):
        req = self.orgs.create_account(AccountName="a", Email="a@example.com")["CreateAccountStatus"]
        self.control("POST", ORG + "advance", {"seconds": 61})
        state = self.orgs.describe_create_account_status(CreateAccountRequestId=req["Id"])["CreateAccountStatus"]
        self.assertEqual(state["State"], "SUCCEEDED")

    def test_at_most_five_in_flight(self):
        for i in range(5):
            self.orgs.create_account(AccountName=f"a{i}", Email=f"a{i}@example.com")
        with self.assertRaises(ClientError) as ctx:
            self.orgs.create_account(AccountName="a5", Email="a5@example.com")
        self.assertEqual(error(ctx), ("ConstraintViolationException", "ACCOUNT_CREATION_RATE_LIMIT_EXCEEDED"))
        self.assertEqual(self.control("POST", ORG + "stats", {})["maxCreatesInFlight"], 5)

    def test_duplicate_and_invalid_emails_fail(self):
        first = self.orgs.create_account(AccountName="a", Email="dup@example.com")["CreateAccountStatus"]
        self.control("POST", ORG + "complete-creates", {})
        dup = self.orgs.create_account(AccountName="b", Email="DUP@example.com")["CreateAccountStatus"]
        bad = self.orgs.create_account(AccountName="c", Email="c@example.invalid")["CreateAccountStatus"]
        self.control("POST", ORG + "complete-creates", {})
        states = {
            r["Id"]: (r["State"], r.get("FailureReason"))
            for r in self.orgs.list_create_account_status()["CreateAccountStatuses"]
        }
        self.assertEqual(states[first["Id"]], ("SUCCEEDED", None))
        self.assertEqual(states[dup["Id"]], ("FAILED", "EMAIL_ALREADY_EXISTS"))
        self.assertEqual(states[bad["Id"]], ("FAILED", "INVALID_EMAIL"))
        with self.assertRaises(ClientError) as ctx:
            self.orgs.create_account(AccountName="d", Email="not-an-email")
        self.assertEqual(error(ctx)[0], "InvalidInputException")

    def test_close_account_pending_then_suspended_and_quota(self):
        self.control("POST", ORG + "settings", {"closeQuota": 1})
        ids = []
        for i in range(2):
            self.orgs.create_account(AccountName=f"a{i}", Email=f"a{i}@example.com")
        self.control("POST", ORG + "complete-creates", {})
        ids = [a["Id"] for a in self.accounts() if a["Id"] != self.master]
        self.orgs.close_account(AccountId=ids[0])
        self.assertEqual(self.orgs.describe_account(AccountId=ids[0])["Account"]["State"], "PENDING_CLOSURE")
        with self.assertRaises(ClientError) as ctx:
            self.orgs.close_account(AccountId=ids[0])
        self.assertEqual(error(ctx)[0], "AccountAlreadyClosedException")
        with self.assertRaises(ClientError) as ctx:
            self.orgs.close_account(AccountId=ids[1])
        self.assertEqual(error(ctx), ("ConstraintViolationException", "CLOSE_ACCOUNT_QUOTA_EXCEEDED"))
        self.control("POST", ORG + "advance", {"seconds": 61})
        # State CLOSED during the 90-day reinstatement window (Status, which said SUSPENDED, is retired).
        closed = self.orgs.describe_account(AccountId=ids[0])["Account"]
        self.assertEqual(closed["State"], "CLOSED")
        self.assertNotIn("Status", closed)

    def test_created_account_is_pending_activation_for_the_activation_delay(self):
        # Account.State PENDING_ACTIVATION ("Monitor the state of your AWS accounts", which the
        # model's Account.State doc points to) until activationDelaySeconds pass; 0 (the default)
        # makes created accounts ACTIVE at once.
        self.assertEqual(self.control("POST", ORG + "settings", {})["activationDelaySeconds"], 0)
        self.control("POST", ORG + "settings", {"activationDelaySeconds": 30})
        req = self.orgs.create_account(AccountName="a", Email="a@example.com")["CreateAccountStatus"]
        self.control("POST", ORG + "complete-creates", {})
        account_id = self.orgs.describe_create_account_status(CreateAccountRequestId=req["Id"])["CreateAccountStatus"]["AccountId"]
        self.assertEqual(self.orgs.describe_account(AccountId=account_id)["Account"]["State"], "PENDING_ACTIVATION")
        listed = {a["Id"]: a["State"] for a in self.accounts()}
        self.assertEqual(listed[account_id], "PENDING_ACTIVATION")
        self.control("POST", ORG + "advance", {"seconds": 29})
        self.assertEqual(self.orgs.describe_account(AccountId=account_id)["Account"]["State"], "PENDING_ACTIVATION")
        self.control("POST", ORG + "advance", {"seconds": 2})
        self.assertEqual(self.orgs.describe_account(AccountId=account_id)["Account"]["State"], "ACTIVE")
        self.control("POST", ORG + "settings", {"activationDelaySeconds": 0})
        req = self.orgs.create_account(AccountName="b", Email="b@example.com")["CreateAccountStatus"]
        self.control("POST", ORG + "complete-creates", {})
        other = self.orgs.describe_create_account_status(CreateAccountRequestId=req["Id"])["CreateAccountStatus"]["AccountId"]
        self.assertEqual(self.orgs.describe_account(AccountId=other)["Account"]["State"], "ACTIVE")

    def test_suspend_and_reinstate(self):
        # SUSPENDED: AWS restricted the account (not a closure); reinstate makes it ACTIVE again.
        self.orgs.create_account(AccountName="a", Email="a@example.com")
        self.control("POST", ORG + "complete-creates", {})
        account_id = next(a["Id"] for a in self.accounts() if a["Id"] != self.master)
        out = self.control("POST", ORG + "suspend", {"accountId": account_id, "managementAccountId": self.master})
        self.assertEqual(out["state"], "SUSPENDED")
        account = self.orgs.describe_account(AccountId=account_id)["Account"]
        self.assertEqual(account["State"], "SUSPENDED")
        self.assertNotIn("Status", account)
        self.control("POST", ORG + "reinstate", {"accountId": account_id, "managementAccountId": self.master})
        self.assertEqual(self.orgs.describe_account(AccountId=account_id)["Account"]["State"], "ACTIVE")

    def test_no_response_carries_the_retired_account_status(self):
        # botocore organizations model, Account.Status: retired on September 9, 2026.
        self.orgs.create_account(AccountName="a", Email="a@example.com")
        self.control("POST", ORG + "complete-creates", {})
        root = self.orgs.list_roots()["Roots"][0]["Id"]
        ou = self.orgs.create_organizational_unit(ParentId=root, Name="ou")["OrganizationalUnit"]["Id"]
        member = next(a["Id"] for a in self.accounts() if a["Id"] != self.master)
        self.orgs.move_account(AccountId=member, SourceParentId=root, DestinationParentId=ou)
        seen = list(self.accounts())
        seen += self.orgs.list_accounts_for_parent(ParentId=ou)["Accounts"]
        seen += self.orgs.list_accounts_for_parent(ParentId=root)["Accounts"]
        seen += [self.orgs.describe_account(AccountId=a["Id"])["Account"] for a in self.accounts()]
        self.assertEqual(len(seen), 6)
        for account in seen:
            self.assertNotIn("Status", account)
            self.assertEqual(account["State"], "ACTIVE")

    def test_management_account_cannot_be_closed_or_removed(self):
        with self.assertRaises(ClientError) as ctx:
            self.orgs.close_account(AccountId=self.master)
        self.assertEqual(error(ctx), ("ConstraintViolationException", "CANNOT_CLOSE_MANAGEMENT_ACCOUNT"))
        with self.assertRaises(ClientError) as ctx:
            self.orgs.remove_account_from_organization(AccountId=self.master)
        self.assertEqual(error(ctx)[0], "ConstraintViolationException")

    def test_invite_accept_decline_expire_cancel(self):
        hs = self.orgs.invite_account_to_organization(Target={"Id": "444455556666", "Type": "ACCOUNT"}, Notes="hi")[
            "Handshake"
        ]
        self.assertEqual(hs["State"], "OPEN")
        with self.assertRaises(ClientError) as ctx:
            self.orgs.invite_account_to_organization(Target={"Id": "444455556666", "Type": "ACCOUNT"})
        self.assertEqual(error(ctx)[0], "DuplicateHandshakeException")
        self.control("POST", ORG + "accept", {"handshakeId": hs["Id"], "email": "owner@example.com"})
        joined = self.orgs.describe_account(AccountId="444455556666")["Account"]
        self.assertEqual(joined["JoinedMethod"], "INVITED")
        self.assertEqual(joined["Email"], "owner@example.com")
        self.assertEqual(self.orgs.describe_handshake(HandshakeId=hs["Id"])["Handshake"]["State"], "ACCEPTED")

        declined = self.orgs.invite_account_to_organization(Target={"Id": "777788889999", "Type": "ACCOUNT"})["Handshake"]
        self.control("POST", ORG + "decline", {"handshakeId": declined["Id"]})
        expired = self.orgs.invite_account_to_organization(Target={"Id": "a@b.example", "Type": "EMAIL"})["Handshake"]
        self.control("POST", ORG + "advance", {"seconds": 16 * 24 * 3600})
        canceled = self.orgs.invite_account_to_organization(Target={"Id": "111100001111", "Type": "ACCOUNT"})["Handshake"]
        self.orgs.cancel_handshake(HandshakeId=canceled["Id"])
        states = {h["Id"]: h["State"] for h in self.orgs.list_handshakes_for_organization()["Handshakes"]}
        self.assertEqual(states[declined["Id"]], "DECLINED")
        self.assertEqual(states[expired["Id"]], "EXPIRED")
        self.assertEqual(states[canceled["Id"]], "CANCELED")

    def test_scp_validation_and_attachment_rules(self):
        root = self.orgs.list_roots()["Roots"][0]["Id"]
        self.orgs.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
        with self.assertRaises(ClientError) as ctx:
            self.orgs.create_policy(Name="bad", Description="", Type="SERVICE_CONTROL_POLICY", Content="{not json")
        self.assertEqual(error(ctx)[0], "MalformedPolicyDocumentException")
        too_long = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "x:" + "a" * 5200, "Resource": "*"}]})
        with self.assertRaises(ClientError) as ctx:
            self.orgs.create_policy(Name="long", Description="", Type="SERVICE_CONTROL_POLICY", Content=too_long)
        self.assertEqual(error(ctx), ("ConstraintViolationException", "POLICY_CONTENT_LIMIT_EXCEEDED"))
        doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]})
        ids = [
            self.orgs.create_policy(Name=f"p{i}", Description="", Type="SERVICE_CONTROL_POLICY", Content=doc)["Policy"][
                "PolicySummary"
            ]["Id"]
            for i in range(5)
        ]
        self.orgs.attach_policy(PolicyId=ids[0], TargetId=self.master)
        with self.assertRaises(ClientError) as ctx:
            self.orgs.attach_policy(PolicyId=ids[0], TargetId=self.master)
        self.assertEqual(error(ctx)[0], "DuplicatePolicyAttachmentException")
        # FullAWSAccess + 4 more = 5: the fifth custom one is over the limit.
        for pid in ids[1:4]:
            self.orgs.attach_policy(PolicyId=pid, TargetId=self.master)
        with self.assertRaises(ClientError) as ctx:
            self.orgs.attach_policy(PolicyId=ids[4], TargetId=self.master)
        self.assertEqual(error(ctx), ("ConstraintViolationException", "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"))
        with self.assertRaises(ClientError) as ctx:
            self.orgs.delete_policy(PolicyId=ids[0])
        self.assertEqual(error(ctx)[0], "PolicyInUseException")
        ou = self.orgs.create_organizational_unit(ParentId=root, Name="solo")["OrganizationalUnit"]["Id"]
        self.orgs.attach_policy(PolicyId=ids[4], TargetId=ou)
        self.orgs.detach_policy(PolicyId=ids[4], TargetId=ou)
        with self.assertRaises(ClientError) as ctx:
            self.orgs.detach_policy(PolicyId=ids[4], TargetId=ou)
        self.assertEqual(error(ctx)[0], "PolicyNotAttachedException")
        remaining = self.orgs.list_policies_for_target(TargetId=ou, Filter="SERVICE_CONTROL_POLICY")["Policies"]
        self.assertEqual(len(remaining), 1)
        with self.assertRaises(ClientError) as ctx:
            self.orgs.detach_policy(PolicyId=remaining[0]["Id"], TargetId=ou)
        self.assertEqual(error(ctx), ("ConstraintViolationException", "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"))


if __name__ == "__main__":
    unittest.main()
