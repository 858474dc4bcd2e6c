"""Tests of the emulator's CUR pipeline services (BCM Data Exports, legacy CUR, Glue
UpdateCrawler) and of Cost Explorer seeding, through boto3 (real botocore serialization).

Run: cd tests/emulator && $VENV/bin/python -m unittest test_pipeline.py
"""

from __future__ import annotations

import json
import unittest
import urllib.request

from botocore.exceptions import ClientError

import test_emulator

ACCOUNT = "123456789012"


def delivery_policy(bucket: str, principal: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "Deliver", "Effect": "Allow", "Principal": {"Service": principal},
        "Action": ["s3:PutObject", "s3:GetBucketPolicy"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }]})


def export(name: str, bucket: str, view: str | None = None) -> dict:
    table = {"TIME_GRANULARITY": "DAILY", "INCLUDE_RESOURCES": "FALSE"}
    if view:
        table["BILLING_VIEW_ARN"] = view
    return {
        "Name": name,
        "DataQuery": {"QueryStatement": "SELECT line_item_unblended_cost FROM COST_AND_USAGE_REPORT",
                      "TableConfigurations": {"COST_AND_USAGE_REPORT": table}},
        "DestinationConfigurations": {"S3Destination": {
            "S3Bucket": bucket, "S3Prefix": "cur", "S3Region": "us-east-1",
            "S3OutputConfigurations": {"OutputType": "CUSTOM", "Format": "PARQUET",
                                       "Compression": "PARQUET", "Overwrite": "OVERWRITE_REPORT"}}},
        "RefreshCadence": {"Frequency": "SYNCHRONOUS"},
    }


class PipelineTest(test_emulator.EmulatorHarness):
    def setUp(self):
        super().setUp()
        self.s3 = self.client("s3")
        self.exports = self.client("bcm-data-exports")
        self.cur = self.client("cur")
        self.glue = self.client("glue")

    def test_export_health_follows_the_bucket_policy_and_delivery_lands_in_s3(self):
        self.s3.create_bucket(Bucket="cur-bucket")
        arn = self.exports.create_export(Export=export("main", "cur-bucket"))["ExportArn"]
        self.assertTrue(arn.startswith(f"arn:aws:bcm-data-exports:us-east-1:{ACCOUNT}:export/main-"))
        status = self.exports.get_export(ExportArn=arn)["ExportStatus"]
        self.assertEqual((status["StatusCode"], status["StatusReason"]), ("UNHEALTHY", "INSUFFICIENT_PERMISSION"))
        self.s3.put_bucket_policy(Bucket="cur-bucket", Policy=delivery_policy("cur-bucket", "bcm-data-exports.amazonaws.com"))
        self.assertEqual(self.exports.get_export(ExportArn=arn)["ExportStatus"]["StatusCode"], "HEALTHY")
        listed = self.exports.list_exports()["Exports"]
        self.assertEqual([e["ExportName"] for e in listed], ["main"])
        with self.assertRaises(ClientError) as dup:
            self.exports.create_export(Export=export("main", "cur-bucket"))
        self.assertEqual(dup.exception.response["Error"]["Code"], "ValidationException")
        self.control("POST", "/_emulator/services/bcm-data-exports/deliver", {"arn": arn})
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="cur-bucket", Prefix="cur/main/data/")["Contents"]]
        self.assertEqual(len(keys), 1)
        self.exports.delete_export(ExportArn=arn)
        with self.assertRaises(ClientError) as gone:
            self.exports.get_export(ExportArn=arn)
        self.assertEqual(gone.exception.response["Error"]["Code"], "ResourceNotFoundException")

    def test_export_rejects_foreign_billing_views_and_bad_queries(self):
        self.s3.create_bucket(Bucket="bucket-two")
        with self.assertRaises(ClientError) as view:
            self.exports.create_export(Export=export("x", "bucket-two", "arn:aws:billing::999999999999:billingview/billing-group-1"))
        self.assertIn("not a billing view of this account", view.exception.response["Error"]["Message"])
        ok = export("y", "bucket-two", f"arn:aws:billing::{ACCOUNT}:billingview/billing-group-111111111111")
        self.exports.create_export(Export=ok)
        bad = export("z", "bucket-two")
        bad["DataQuery"]["QueryStatement"] = "DROP TABLE x"
        with self.assertRaises(ClientError):
            self.exports.create_export(Export=bad)
        with self.assertRaises(ClientError) as model:
            self.exports.create_export(Export=export("has space", "bucket-two"))
        self.assertEqual(model.exception.response["Error"]["Code"], "ValidationException")

    def test_legacy_cur_checks_bucket_permission_and_athena_rules(self):
        self.s3.create_bucket(Bucket="legacy")
        definition = {
            "ReportName": "legacy", "TimeUnit": "DAILY", "Format": "Parquet", "Compression": "Parquet",
            "AdditionalSchemaElements": ["RESOURCES"], "S3Bucket": "legacy", "S3Prefix": "cur",
            "S3Region": "us-east-1", "AdditionalArtifacts": ["ATHENA"], "RefreshClosedReports": True,
            "ReportVersioning": "OVERWRITE_REPORT",
        }
        with self.assertRaises(ClientError) as perm:
            self.cur.put_report_definition(ReportDefinition=definition)
        self.assertIn("Failed to verify customer bucket permission", perm.exception.response["Error"]["Message"])
        self.s3.put_bucket_policy(Bucket="legacy", Policy=delivery_policy("legacy", "billingreports.amazonaws.com"))
        self.cur.put_report_definition(ReportDefinition=definition)
        with self.assertRaises(ClientError) as dup:
            self.cur.put_report_definition(ReportDefinition=definition)
        self.assertEqual(dup.exception.response["Error"]["Code"], "DuplicateReportNameException")
        athena_csv = dict(definition, Format="textORcsv", Compression="GZIP")
        with self.assertRaises(ClientError):
            self.cur.modify_report_definition(ReportName="legacy", ReportDefinition=athena_csv)
        self.assertEqual(self.cur.describe_report_definitions()["ReportDefinitions"][0]["TimeUnit"], "DAILY")
        self.cur.modify_report_definition(ReportName="legacy", ReportDefinition=dict(definition, TimeUnit="HOURLY"))
        self.assertEqual(self.cur.describe_report_definitions()["ReportDefinitions"][0]["TimeUnit"], "HOURLY")
        self.cur.delete_report_definition(ReportName="legacy")
        self.assertEqual(self.cur.describe_report_definitions()["ReportDefinitions"], [])

    def test_glue_update_crawler_and_schedule_drift_control(self):
        self.glue.create_database(DatabaseInput={"Name": "cur_db"})
        self.glue.create_crawler(Name="c", Role="arn:aws:iam::123456789012:role/Glue", DatabaseName="cur_db",
                                 Targets={"S3Targets": [{"Path": "s3://b/cur/"}]}, Schedule="cron(30 2 * * ? *)")
        self.control("POST", "/_emulator/services/glue/set-schedule", {"name": "c", "schedule": "cron(0 5 * * ? *)"})
        self.assertEqual(self.glue.get_crawler(Name="c")["Crawler"]["Schedule"]["ScheduleExpression"], "cron(0 5 * * ? *)")
        self.glue.update_crawler(Name="c", Schedule="cron(30 2 * * ? *)", Description="managed")
        crawler = self.glue.get_crawler(Name="c")["Crawler"]
        self.assertEqual((crawler["Schedule"]["ScheduleExpression"], crawler["Description"]), ("cron(30 2 * * ? *)", "managed"))
        with self.assertRaises(ClientError) as missing:
            self.glue.update_crawler(Name="nope", Schedule="cron(30 2 * * ? *)")
        self.assertEqual(missing.exception.response["Error"]["Code"], "EntityNotFoundException")

    def test_cost_explorer_returns_seeded_results(self):
        result = {"ResultsByTime": [{"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-25"}, "Total": {},
                                     "Groups": [{"Keys": ["111111111111", "Amazon EC2"],
                                                 "Metrics": {"UnblendedCost": {"Amount": "12.34", "Unit": "USD"}}}],
                                     "Estimated": True}], "DimensionValueAttributes": []}
        req = urllib.request.Request(self.url + "/moto-api/static/ce/cost-and-usage-results",
                                     data=json.dumps({"results": [result]}).encode(), method="POST")
        with urllib.request.urlopen(req) as resp:
            self.assertEqual(resp.status, 201)
        ce = self.client("ce")
        out = ce.get_cost_and_usage(TimePeriod={"Start": "2026-11-01", "End": "2026-11-25"}, Granularity="MONTHLY",
                                    Metrics=["UnblendedCost"],
                                    GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}])
        self.assertEqual(out["ResultsByTime"][0]["Groups"][0]["Metrics"]["UnblendedCost"]["Amount"], "12.34")


if __name__ == "__main__":
    unittest.main()
