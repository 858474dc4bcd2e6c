"""Give the emulator what `make demo` expects to find: an organization managed by the demo
account (123456789012, which the emulator assigns to any access key it did not issue) with a
few customer accounts.

Usage: seed_demo.py ENDPOINT_URL
"""

import sys
import urllib.request

import boto3


def main() -> None:
    endpoint = sys.argv[1]
    orgs = boto3.client(
        "organizations",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIADEMO000000000001",
        aws_secret_access_key="demo-only-not-a-real-secret-key",
    )
    try:
        org = orgs.describe_organization()["Organization"]
    except orgs.exceptions.AWSOrganizationsNotInUseException:
        org = orgs.create_organization(FeatureSet="ALL")["Organization"]
        for name in ("northwind", "contoso", "fabrikam"):
            orgs.create_account(AccountName=f"{name}-prod", Email=f"aws+{name}@example.com")
        # The emulator keeps creations IN_PROGRESS for a while; finish them now.
        done = urllib.request.Request(
            f"{endpoint}/_emulator/services/organizations/complete-creates", data=b"{}", method="POST"
        )
        urllib.request.urlopen(done).read()
    accounts = sum(len(p["Accounts"]) for p in orgs.get_paginator("list_accounts").paginate())
    print(f"emulator: organization {org['Id']} with {accounts} accounts is ready", file=sys.stderr)


if __name__ == "__main__":
    main()
