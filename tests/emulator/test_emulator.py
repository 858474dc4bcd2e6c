"""Tests of the emulator layer itself, through boto3 (real botocore serialization).

Run: PYTHONPATH=tests/emulator $VENV/bin/python -m unittest tests/emulator/test_emulator.py
"""

from __future__ import annotations

import json
import threading
import unittest
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.serving import WSGIRequestHandler, make_server

from pbo_emulator.app import EmulatorApp
from pbo_emulator.services import REGISTRY, EmulatedError, EmulatedService


class ToyBillingConductor(EmulatedService):
    """A minimal emulated service used to prove the registry path (rest-json routing)."""

    name = "billingconductor"

    def reset(self) -> None:
        self.groups: list[dict] = []

    def op_ListBillingGroups(self, params):
        return {"BillingGroups": self.groups}

    def op_GetBillingGroupCostReport(self, params):
        raise EmulatedError("ResourceNotFoundException", f"no group {params['Arn']}", 404)

    def control_add(self, payload):
        self.groups.append({"Name": payload["name"]})
        return {"groups": len(self.groups)}


class QuietHandler(WSGIRequestHandler):
    def log(self, type, message, *args):  # noqa: A002 - werkzeug's signature
        pass


class EmulatorHarness(unittest.TestCase):
    """A running emulator on a free port, reset before each test (no tests of its own)."""

    @classmethod
    def setUpClass(cls):
        cls.app = EmulatorApp()
        cls.server = make_server("127.0.0.1", 0, cls.app, threaded=True, request_handler=QuietHandler)
        cls.url = f"http://127.0.0.1:{cls.server.server_port}"
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def setUp(self):
        self.control("POST", "/_emulator/reset")

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())

    def client(self, service, validate=True, retries=0):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="AKIAEXAMPLEKEY000001",
            aws_secret_access_key="not-a-real-secret",
            config=Config(parameter_validation=validate, retries={"total_max_attempts": retries + 1, "mode": "standard"}),
        )



class EmulatorTest(EmulatorHarness):
    def test_passes_through_to_moto_and_counts(self):
        ident = self.client("sts").get_caller_identity()
        self.assertEqual(ident["Account"], "123456789012")
        orgs = self.client("organizations")
        orgs.create_organization(FeatureSet="ALL")
        self.assertEqual(len(orgs.list_accounts()["Accounts"]), 1)
        counts = self.control("GET", "/_emulator/requests")
        by_op = {(c["service"], c["operation"]): c["count"] for c in counts["counts"]}
        self.assertEqual(by_op[("sts", "GetCallerIdentity")], 1)
        self.assertEqual(by_op[("organizations", "ListAccounts")], 1)
        self.assertEqual(counts["total"], 3)

    def test_throttle_uses_service_error_code_and_expires(self):
        self.control("POST", "/_emulator/faults", {"kind": "throttle", "service": "organizations", "count": 2})
        orgs = self.client("organizations")
        for _ in range(2):
            with self.assertRaises(ClientError) as err:
                orgs.list_roots()
            self.assertEqual(err.exception.response["Error"]["Code"], "TooManyRequestsException")
        with self.assertRaises(ClientError) as err:
            orgs.list_roots()  # fault exhausted: moto answers (no organization yet)
        self.assertNotEqual(err.exception.response["Error"]["Code"], "TooManyRequestsException")
        faults = self.control("GET", "/_emulator/faults")["faults"]
        self.assertEqual(faults[0]["hits"], 2)

    def test_throttle_on_query_protocol(self):
        self.control("POST", "/_emulator/faults", {"kind": "throttle", "service": "sts", "operation": "GetCallerIdentity", "count": 1})
        with self.assertRaises(ClientError) as err:
            self.client("sts").get_caller_identity()
        self.assertEqual(err.exception.response["Error"]["Code"], "Throttling")
        self.assertEqual(self.client("sts").get_caller_identity()["Account"], "123456789012")

    def test_server_error_is_5xx(self):
        self.control("POST", "/_emulator/faults", {"kind": "server_error", "service": "organizations", "count": 1})
        with self.assertRaises(ClientError) as err:
            self.client("organizations").describe_organization()
        self.assertGreaterEqual(err.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)

    def test_latency(self):
        import time

        self.control("POST", "/_emulator/faults", {"kind": "latency", "latencyMs": 300, "count": 1})
        start = time.monotonic()
        self.client("sts").get_caller_identity()
        self.assertGreaterEqual(time.monotonic() - start, 0.3)

    def test_validation_against_botocore_model(self):
        orgs = self.client("organizations", validate=False)
        orgs.create_organization(FeatureSet="ALL")
        with self.assertRaises(ClientError) as err:
            orgs.create_account(Email="a@b", AccountName="x")
        self.assertIn("length greater than or equal to 6", err.exception.response["Error"]["Message"])
        with self.assertRaises(ClientError) as err:
            orgs.list_accounts(MaxResults=21)
        self.assertIn("less than or equal to 20", err.exception.response["Error"]["Message"])

    def test_unknown_service_gets_json_error_not_html(self):
        real = REGISTRY.pop("billingconductor", None)
        try:
            with self.assertRaises(ClientError) as err:
                self.client("billingconductor").list_billing_groups()
            self.assertEqual(err.exception.response["Error"]["Code"], "NotImplemented")
            self.assertEqual(err.exception.response["ResponseMetadata"]["HTTPStatusCode"], 501)
        finally:
            if real is not None:  # later test modules need the real service back
                REGISTRY["billingconductor"] = real

    def test_registered_service_rest_json_routing_and_controls(self):
        real = REGISTRY.get("billingconductor")
        REGISTRY["billingconductor"] = ToyBillingConductor()
        try:
            client = self.client("billingconductor")
            self.assertEqual(client.list_billing_groups()["BillingGroups"], [])
            self.assertEqual(self.control("POST", "/_emulator/services/billingconductor/add", {"name": "acme"}), {"groups": 1})
            self.assertEqual(client.list_billing_groups()["BillingGroups"][0]["Name"], "acme")
            with self.assertRaises(ClientError) as err:
                client.get_billing_group_cost_report(Arn="arn:aws:billingconductor::123456789012:billinggroup/abcdefghij")
            self.assertEqual(err.exception.response["Error"]["Code"], "ResourceNotFoundException")
            counts = self.control("GET", "/_emulator/requests")
            ops = {c["operation"] for c in counts["counts"] if c["service"] == "billingconductor"}
            self.assertEqual(ops, {"ListBillingGroups", "GetBillingGroupCostReport"})
        finally:
            REGISTRY.pop("billingconductor", None)
            if real is not None:
                REGISTRY["billingconductor"] = real

    def test_reset_clears_moto_state(self):
        orgs = self.client("organizations")
        orgs.create_organization(FeatureSet="ALL")
        self.control("POST", "/_emulator/reset")
        with self.assertRaises(ClientError) as err:
            orgs.describe_organization()
        self.assertEqual(err.exception.response["Error"]["Code"], "AWSOrganizationsNotInUseException")


if __name__ == "__main__":
    unittest.main()


class SmtpTest(unittest.TestCase):
    def test_smtp_server_keeps_mail_for_the_control_api(self):
        import smtplib
        import socket

        app = EmulatorApp()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app.start_smtp("127.0.0.1", port)
        try:
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                smtp.sendmail("from@example.com", ["to@example.com"], "Subject: hi\r\n\r\nhello")
            status, body = app._control({"REQUEST_METHOD": "GET"}, "/_emulator/mail")
            self.assertEqual(status, 200)
            self.assertEqual(body["messages"][0]["to"], ["to@example.com"])
            self.assertIn("hello", body["messages"][0]["data"])
            app.reset()
            self.assertEqual(app._control({"REQUEST_METHOD": "GET"}, "/_emulator/mail")[1]["messages"], [])
        finally:
            app.smtp.stop()
