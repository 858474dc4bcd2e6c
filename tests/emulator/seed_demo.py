"""What `make demo` does to the emulator besides running the operator.

  seed_demo.py seed URL                 an organization managed by the demo account
                                        (123456789012, which the emulator assigns to any
                                        access key it did not issue)
  seed_demo.py accept-invitations URL   the invited accounts' owners accept
"""

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


if __name__ == "__main__":
    {"seed": seed, "accept-invitations": accept_invitations}[sys.argv[1]](sys.argv[2])
