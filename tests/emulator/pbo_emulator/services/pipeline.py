"""The Cost and Usage Report pipeline services moto lacks: BCM Data Exports (CUR 2.0), legacy
CUR report definitions, and Glue UpdateCrawler (moto has the rest of Glue and all of S3).

Semantics follow the AWS documentation:
- Data Exports: names unique per account (1-128 of ``[0-9A-Za-z-_]``, also in the model), the
  query must select from COST_AND_USAGE_REPORT, a BILLING_VIEW_ARN must belong to the caller,
  ARNs look like ``arn:aws:bcm-data-exports:us-east-1:<acct>:export/<name>-<id>``. An export is
  HEALTHY while its bucket exists and its policy lets ``bcm-data-exports.amazonaws.com`` write
  (aws:SourceAccount = the caller), otherwise UNHEALTHY with reason INSUFFICIENT_PERMISSION or
  BILL_OWNER_CHANGED... as AWS reports after a failed delivery.
- Legacy CUR: us-east-1 only; names unique (DuplicateReportNameException); the ATHENA artifact
  needs Parquet and OVERWRITE_REPORT and no other artifact; PutReportDefinition checks the
  bucket policy lets ``billingreports.amazonaws.com`` write ("Failed to verify customer bucket
  permission.").
- Glue UpdateCrawler: updates moto's crawler in place (EntityNotFoundException,
  CrawlerRunningException).

Test controls:
  POST /_emulator/services/bcm-data-exports/deliver {"arn"}: put one Parquet-named object
       under the export's data path (what AWS's first delivery does).
  POST /_emulator/services/cur/deliver {"name"}: the same for a report definition.
  POST /_emulator/services/glue/set-schedule {"name", "schedule", "region"?, "account"?}:
       change a crawler's schedule behind the operator's back (drift).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from moto.iam.models import get_account_id_from

from .. import paging
from . import EmulatedError, EmulatedService, register


def _validation(message: str) -> EmulatedError:
    return EmulatedError("ValidationException", message, 400)


def _not_found(message: str, arn: str = "") -> EmulatedError:
    # bcm-data-exports ResourceNotFoundException: Message, ResourceId, ResourceType are required.
    return EmulatedError("ResourceNotFoundException", message, 404, ResourceId=arn, ResourceType="export")


def _s3_backend(account: str):
    from moto.s3.models import s3_backends

    return s3_backends[account]["aws"]


def _bucket_allows(account: str, bucket: str, principal: str) -> tuple[bool, str]:
    """Whether ``bucket`` exists and its policy lets ``principal`` PutObject for ``account``."""
    try:
        b = _s3_backend(account).get_bucket(bucket)
    except Exception:  # moto raises MissingBucket
        return False, "BILL_OWNER_CHANGED"
    if not b.policy:
        return False, "INSUFFICIENT_PERMISSION"
    try:
        policy = json.loads(b.policy.decode() if isinstance(b.policy, bytes) else b.policy)
    except ValueError:
        return False, "INSUFFICIENT_PERMISSION"
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]

    def as_list(v: Any) -> list[Any]:
        return v if isinstance(v, list) else [v]

    for s in statements:
        if s.get("Effect") != "Allow":
            continue
        services = as_list((s.get("Principal") or {}).get("Service", []))
        if principal not in services:
            continue
        if "s3:PutObject" not in as_list(s.get("Action", [])):
            continue
        cond = s.get("Condition") or {}
        accounts = [
            a for op in cond.values() if isinstance(op, dict) for a in as_list(op.get("aws:SourceAccount", []))
        ]
        if accounts and account not in accounts:
            continue
        return True, ""
    return False, "INSUFFICIENT_PERMISSION"


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _deliver(account: str, bucket: str, key: str) -> str:
    _s3_backend(account).put_object(bucket, key, b"PAR1 emulated delivery PAR1")
    return f"s3://{bucket}/{key}"


class DataExports(EmulatedService):
    name = "bcm-data-exports"

    def reset(self) -> None:
        self.exports: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, list[dict[str, str]]] = {}

    def _account(self) -> str:
        return get_account_id_from(self.call.access_key or "")

    def _mine(self, arn: str) -> dict[str, Any]:
        e = self.exports.get(arn)
        if e is None or e["account"] != self._account():
            raise _not_found(f"Export {arn} not found", arn)
        return e

    def _check(self, export: dict[str, Any]) -> None:
        # The model's pattern is not anchored (Smithy semantics); the service enforces the whole name.
        if not re.fullmatch(r"[0-9A-Za-z\-_]{1,128}", export.get("Name", "")):
            raise _validation("Export name must be 1-128 characters of letters, digits, '-' and '_'")
        query = export.get("DataQuery", {})
        statement = query.get("QueryStatement", "")
        if not statement.strip().upper().startswith("SELECT") or "FROM COST_AND_USAGE_REPORT" not in statement.upper():
            raise _validation("QueryStatement must select from COST_AND_USAGE_REPORT")
        tables = query.get("TableConfigurations") or {}
        for table, props in tables.items():
            if table != "COST_AND_USAGE_REPORT":
                raise _validation(f"Unknown table {table}")
            granularity = props.get("TIME_GRANULARITY")
            if granularity not in (None, "HOURLY", "DAILY", "MONTHLY"):
                raise _validation(f"Invalid TIME_GRANULARITY {granularity}")
            view = props.get("BILLING_VIEW_ARN")
            if view is not None and not view.startswith(f"arn:aws:billing::{self._account()}:billingview/"):
                raise _validation(f"BILLING_VIEW_ARN {view} is not a billing view of this account")
        s3 = (export.get("DestinationConfigurations") or {}).get("S3Destination") or {}
        out = s3.get("S3OutputConfigurations") or {}
        if out.get("Format") == "PARQUET" and out.get("Compression") != "PARQUET":
            raise _validation("PARQUET format needs PARQUET compression")

    def _health(self, e: dict[str, Any]) -> dict[str, Any]:
        s3 = e["export"]["DestinationConfigurations"]["S3Destination"]
        ok, reason = _bucket_allows(e["account"], s3["S3Bucket"], "bcm-data-exports.amazonaws.com")
        # The model marks these timestamps date-time: ISO 8601 strings, not epoch numbers.
        status = {
            "StatusCode": "HEALTHY" if ok else "UNHEALTHY",
            "CreatedAt": _iso(e["created"]),
            "LastUpdatedAt": _iso(e["updated"]),
            "LastRefreshedAt": _iso(e["updated"]),
        }
        if not ok:
            status["StatusReason"] = reason
        return status

    def op_CreateExport(self, p: dict[str, Any]) -> dict[str, Any]:
        export = p["Export"]
        account = self._account()
        if any(e["account"] == account and e["export"]["Name"] == export["Name"] for e in self.exports.values()):
            raise _validation(f"An export named {export['Name']} already exists")
        self._check(export)
        arn = f"arn:aws:bcm-data-exports:us-east-1:{account}:export/{export['Name']}-{uuid.uuid4()}"
        now = time.time()
        stored = dict(export)
        stored["ExportArn"] = arn
        self.exports[arn] = {"account": account, "export": stored, "created": now, "updated": now}
        self.tags[arn] = list(p.get("ResourceTags") or [])
        return {"ExportArn": arn}

    def op_GetExport(self, p: dict[str, Any]) -> dict[str, Any]:
        e = self._mine(p["ExportArn"])
        return {"Export": e["export"], "ExportStatus": self._health(e)}

    def op_UpdateExport(self, p: dict[str, Any]) -> dict[str, Any]:
        e = self._mine(p["ExportArn"])
        export = dict(p["Export"])
        if export["Name"] != e["export"]["Name"]:
            raise _validation("The name of an export cannot change")
        self._check(export)
        export["ExportArn"] = p["ExportArn"]
        e["export"] = export
        e["updated"] = time.time()
        return {"ExportArn": p["ExportArn"]}

    def op_DeleteExport(self, p: dict[str, Any]) -> dict[str, Any]:
        self._mine(p["ExportArn"])
        del self.exports[p["ExportArn"]]
        self.tags.pop(p["ExportArn"], None)
        return {"ExportArn": p["ExportArn"]}

    def op_ListExports(self, p: dict[str, Any]) -> dict[str, Any]:
        account = self._account()
        mine = [(arn, e) for arn, e in sorted(self.exports.items()) if e["account"] == account]
        # bcm-data-exports ListExports MaxResults: 1-300 (paging.py; was 20 by default).
        out = paging.page(self.name, "ListExports", p, mine, "Exports")
        out["Exports"] = [
            {"ExportArn": arn, "ExportName": e["export"]["Name"], "ExportStatus": self._health(e)} for arn, e in out["Exports"]
        ]
        return out

    def op_ListTagsForResource(self, p: dict[str, Any]) -> dict[str, Any]:
        self._mine(p["ResourceArn"])
        return paging.page(self.name, "ListTagsForResource", p, list(self.tags.get(p["ResourceArn"], [])), "ResourceTags")

    def control_deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        e = self.exports.get(payload.get("arn", ""))
        if e is None:
            raise EmulatedError("NotFound", "no such export", 404)
        s3 = e["export"]["DestinationConfigurations"]["S3Destination"]
        period = time.strftime("%Y-%m")
        key = f"{s3['S3Prefix']}/{e['export']['Name']}/data/BILLING_PERIOD={period}/{e['export']['Name']}-00001.snappy.parquet"
        return {"delivered": _deliver(e["account"], s3["S3Bucket"], key)}

    def control_list(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"exports": [dict(e["export"], Tags=self.tags.get(arn, [])) for arn, e in self.exports.items()]}


class Cur(EmulatedService):
    name = "cur"

    def reset(self) -> None:
        self.reports: dict[tuple[str, str], dict[str, Any]] = {}
        self.tags: dict[tuple[str, str], list[dict[str, str]]] = {}

    def _account(self) -> str:
        return get_account_id_from(self.call.access_key or "")

    def before(self, call) -> None:
        if call.region and call.region != "us-east-1":
            raise _validation("Cost and Usage Report definitions are only available in us-east-1")

    def _check(self, d: dict[str, Any]) -> None:
        artifacts = d.get("AdditionalArtifacts") or []
        if "ATHENA" in artifacts:
            if len(artifacts) > 1:
                raise _validation("ATHENA cannot be combined with other artifacts")
            if d.get("Format") != "Parquet" or d.get("Compression") != "Parquet":
                raise _validation("ATHENA needs Parquet format and compression")
            if d.get("ReportVersioning") != "OVERWRITE_REPORT":
                raise _validation("ATHENA needs ReportVersioning OVERWRITE_REPORT")
        ok, _reason = _bucket_allows(self._account(), d["S3Bucket"], "billingreports.amazonaws.com")
        if not ok:
            raise _validation("Failed to verify customer bucket permission.")

    def op_PutReportDefinition(self, p: dict[str, Any]) -> dict[str, Any]:
        d = p["ReportDefinition"]
        key = (self._account(), d["ReportName"])
        if key in self.reports:
            raise EmulatedError("DuplicateReportNameException", f"A report named {d['ReportName']} already exists", 400)
        self._check(d)
        self.reports[key] = dict(d)
        self.tags[key] = list(p.get("Tags") or [])
        return {}

    def op_ModifyReportDefinition(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (self._account(), p["ReportName"])
        if key not in self.reports:
            raise _validation(f"Report {p['ReportName']} does not exist")
        d = p["ReportDefinition"]
        if d["ReportName"] != p["ReportName"]:
            raise _validation("The name of a report cannot change")
        self._check(d)
        self.reports[key] = dict(d)
        return {}

    def op_DeleteReportDefinition(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (self._account(), p["ReportName"])
        if self.reports.pop(key, None) is None:
            raise _validation(f"Report {p['ReportName']} does not exist")
        self.tags.pop(key, None)
        return {"ResponseMessage": "Report deleted"}

    # Report definitions carry tags since 2023 (botocore cur/2017-01-06: PutReportDefinition
    # Tags, TagResource / UntagResource / ListTagsForResource by ReportName, each raising
    # ResourceNotFoundException for an unknown report).
    def _report_key(self, name: str) -> tuple[str, str]:
        key = (self._account(), name)
        if key not in self.reports:
            raise EmulatedError("ResourceNotFoundException", f"Report {name} does not exist", 400)
        return key

    def op_ListTagsForResource(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": list(self.tags.get(self._report_key(p["ReportName"]), []))}

    def op_TagResource(self, p: dict[str, Any]) -> dict[str, Any]:
        key = self._report_key(p["ReportName"])
        tags = {t["Key"]: t["Value"] for t in self.tags.get(key, [])}
        tags.update({t["Key"]: t["Value"] for t in p.get("Tags") or []})
        self.tags[key] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return {}

    def op_UntagResource(self, p: dict[str, Any]) -> dict[str, Any]:
        key = self._report_key(p["ReportName"])
        drop = set(p.get("TagKeys") or [])
        self.tags[key] = [t for t in self.tags.get(key, []) if t["Key"] not in drop]
        return {}

    def op_DescribeReportDefinitions(self, p: dict[str, Any]) -> dict[str, Any]:
        account = self._account()
        mine = [d for (a, _), d in sorted(self.reports.items()) if a == account]
        # cur DescribeReportDefinitions MaxResults: 5-5.
        return paging.page(self.name, "DescribeReportDefinitions", p, mine, "ReportDefinitions")

    def control_deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        for (account, name), d in self.reports.items():
            if name == payload.get("name"):
                key = f"{d['S3Prefix']}/{name}/{name}/year={time.strftime('%Y')}/month={int(time.strftime('%m'))}/{name}-00001.snappy.parquet"
                return {"delivered": _deliver(account, d["S3Bucket"], key)}
        raise EmulatedError("NotFound", "no such report", 404)


class GlueExtra(EmulatedService):
    """Only UpdateCrawler; every other Glue operation goes to moto."""

    name = "glue"

    def _backend(self, account: str, region: str):
        from moto.glue.models import glue_backends

        return glue_backends[account][region]

    def op_UpdateCrawler(self, p: dict[str, Any]) -> dict[str, Any]:
        account = get_account_id_from(self.call.access_key or "")
        backend = self._backend(account, self.call.region or "us-east-1")
        crawler = backend.crawlers.get(p["Name"])
        if crawler is None:
            raise EmulatedError("EntityNotFoundException", f"Crawler entry with name {p['Name']} does not exist", 400)
        if crawler.status == "RUNNING":
            raise EmulatedError("CrawlerRunningException", f"Crawler {p['Name']} is running", 400)
        fields = {
            "Role": "role",
            "DatabaseName": "database_name",
            "Description": "description",
            "Targets": "targets",
            "Schedule": "schedule",
            "Classifiers": "classifiers",
            "TablePrefix": "table_prefix",
            "SchemaChangePolicy": "schema_change_policy",
            "RecrawlPolicy": "recrawl_policy",
            "LineageConfiguration": "lineage_configuration",
            "Configuration": "configuration",
            "CrawlerSecurityConfiguration": "crawler_security_configuration",
        }
        for member, attr in fields.items():
            if member in p:
                setattr(crawler, attr, p[member])
        crawler.version += 1
        from moto.core.utils import utcnow

        crawler.last_updated = utcnow()
        return {}

    def control_set_schedule(self, payload: dict[str, Any]) -> dict[str, Any]:
        backend = self._backend(payload.get("account", "123456789012"), payload.get("region", "us-east-1"))
        crawler = backend.crawlers.get(payload["name"])
        if crawler is None:
            raise EmulatedError("NotFound", "no such crawler", 404)
        crawler.schedule = payload["schedule"]
        return {"name": crawler.name, "schedule": crawler.schedule}


register(DataExports())
register(Cur())
register(GlueExtra())
