"""What `make demo` does to the emulator besides running the operator.

  seed_demo.py seed URL                 an organization managed by the demo account
                                        (123456789012, which the emulator assigns to any
                                        access key it did not issue)
  seed_demo.py accept-invitations URL   the invited accounts' owners accept
  seed_demo.py usage URL                usage of the demo accounts this month and last month,
                                        from which Billing Conductor computes costs
"""

import datetime as dt

import json
import sys
import urllib.request

import boto3


def orgs_client(endpoint: str):
    return boto3.client(
        "organizations",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIADEMO000000000001",
        aws_secret_access_key="demo-only-not-a-real-secret-key",
    )


def control(endpoint: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"{endpoint}/_emulator/{path}", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def seed(endpoint: str) -> None:
    orgs = orgs_client(endpoint)
    try:
        org = orgs.describe_organization()["Organization"]
    except orgs.exceptions.AWSOrganizationsNotInUseException:
        org = orgs.create_organization(FeatureSet="ALL")["Organization"]
    # Account creations stay IN_PROGRESS this long, as in AWS (where it takes minutes).
    control(endpoint, "services/organizations/settings", {"createDelaySeconds": 2})
    print(f"emulator: organization {org['Id']} is ready", file=sys.stderr)


def accept_invitations(endpoint: str) -> None:
    orgs = orgs_client(endpoint)
    for page in orgs.get_paginator("list_handshakes_for_organization").paginate():
        for hs in page["Handshakes"]:
            if hs["State"] == "OPEN":
                target = next(p["Id"] for p in hs["Parties"] if p["Type"] != "ORGANIZATION")
                control(
                    endpoint,
                    "services/organizations/accept",
                    {"handshakeId": hs["Id"], "email": f"owner-{target}@example.com", "name": f"account-{target}"},
                )
                print(f"emulator: the owner of {target} accepted invitation {hs['Id']}", file=sys.stderr)


# Monthly On-Demand usage per account name: (service, usage type, operation, USD). AWS cost is
# what the payer really pays (Savings Plans and RIs make it lower than On-Demand).
USAGE = {
    "northwind-prod": [
        ("AmazonEC2", "BoxUsage:m5.large", "RunInstances", 100.0),
        ("AmazonEC2", "BoxUsage:t3.micro", "RunInstances", 50.0),
        ("AmazonS3", "TimedStorage-ByteHrs", "StandardStorage", 200.0),
    ],
    "northwind-dev": [("AmazonEC2", "BoxUsage:t3.small", "RunInstances", 40.0)],
    "contoso": [("AmazonEC2", "BoxUsage:c6i.xlarge", "RunInstances", 300.0), ("AmazonS3", "TimedStorage-ByteHrs", "StandardStorage", 50.0)],
    "account-444455556666": [("AmazonRDS", "InstanceUsage:db.r6g.large", "CreateDBInstance:0016", 120.0)],
}


def usage(endpoint: str) -> None:
    orgs = orgs_client(endpoint)
    ids = {}
    for page in orgs.get_paginator("list_accounts").paginate():
        for a in page["Accounts"]:
            ids[a["Name"]] = a["Id"]
    today = dt.date.today()
    current = f"{today.year:04d}-{today.month:02d}"
    last = today.replace(day=1) - dt.timedelta(days=1)
    previous = f"{last.year:04d}-{last.month:02d}"
    for period, scale in ((previous, 0.8), (current, 1.0)):
        rows = []
        for name, lines in USAGE.items():
            if name not in ids:
                continue
            for service, usage_type, operation, cost in lines:
                rows.append({
                    "accountId": ids[name], "service": service, "usageType": usage_type, "operation": operation,
                    "onDemandCost": cost * scale, "awsCost": round(cost * scale * 0.93, 2),
                })
        control(endpoint, "services/billingconductor/usage", {"period": period, "rows": rows})
    print(f"emulator: usage seeded for {len(ids)} accounts in {previous} and {current}", file=sys.stderr)
    cost_explorer(endpoint, ids, today)


# Cost Explorer names the services the long way.
CE_SERVICE = {
    "AmazonEC2": "Amazon Elastic Compute Cloud - Compute",
    "AmazonS3": "Amazon Simple Storage Service",
    "AmazonRDS": "Amazon Relational Database Service",
}


def cost_explorer(endpoint: str, ids: dict, today: dt.date) -> None:
    """Seed GetCostAndUsage (monthly, by linked account and service) for the last 3 months
    through moto's static results: what the payer's insights read."""
    months = []
    first = today.replace(day=1)
    for _ in range(3):
        months.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    months.reverse()
    results = []
    for i, start in enumerate(months):
        scale = (0.7, 0.8, 1.0)[i]
        groups = [{"Keys": ["123456789012", "AWS CloudTrail"], "Metrics": {"UnblendedCost": {"Amount": "1.25", "Unit": "USD"}}}]
        for name, lines in USAGE.items():
            if name not in ids:
                continue
            per_service: dict[str, float] = {}
            for service, _usage_type, _operation, cost in lines:
                per_service[CE_SERVICE[service]] = per_service.get(CE_SERVICE[service], 0.0) + round(cost * scale * 0.93, 2)
            for service, amount in per_service.items():
                groups.append({"Keys": [ids[name], service], "Metrics": {"UnblendedCost": {"Amount": f"{amount:.2f}", "Unit": "USD"}}})
        end = (start + dt.timedelta(days=32)).replace(day=1)
        results.append({"TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()}, "Total": {}, "Groups": groups, "Estimated": i == 2})
    req = urllib.request.Request(endpoint + "/moto-api/static/ce/cost-and-usage-results",
                                 data=json.dumps({"results": [{"ResultsByTime": results, "DimensionValueAttributes": []}]}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        resp.read()
    print(f"emulator: Cost Explorer seeded for {len(ids)} accounts over {len(months)} months", file=sys.stderr)


if __name__ == "__main__":
    {"seed": seed, "accept-invitations": accept_invitations, "usage": usage}[sys.argv[1]](sys.argv[2])
