"""An organization and Billing Conductor setup made by hand (no operator, no owner tags), for
the README's import-then-adopt walkthrough: `partner-billing-operator import` turns it into
manifests.

  seed_existing.py URL

Uses the demo keys of examples/payer.yaml (the emulator maps them to 123456789012).
"""

import json
import sys
import urllib.request

import boto3

KEYS = dict(
    region_name="us-east-1",
    aws_access_key_id="AKIADEMO000000000001",
    aws_secret_access_key="demo-only-not-a-real-secret-key",
)


def control(endpoint: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"{endpoint}/_emulator/{path}", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def organization(endpoint: str) -> dict:
    orgs = boto3.client("organizations", endpoint_url=endpoint, **KEYS)
    orgs.create_organization(FeatureSet="ALL")
    root = orgs.list_roots()["Roots"][0]["Id"]
    customers = orgs.create_organizational_unit(ParentId=root, Name="Customers")["OrganizationalUnit"]["Id"]
    eu = orgs.create_organizational_unit(ParentId=customers, Name="Customers-EU")["OrganizationalUnit"]["Id"]
    ids = {}
    for name, parent in [("northwind-prod", eu), ("northwind-dev", eu), ("contoso", customers)]:
        orgs.create_account(AccountName=name, Email=f"aws+{name}@example.com")
        control(endpoint, "services/organizations/complete-creates", {})
        account = next(a for a in orgs.list_accounts()["Accounts"] if a["Name"] == name)
        ids[name] = account["Id"]
        orgs.move_account(AccountId=account["Id"], SourceParentId=root, DestinationParentId=parent)
    orgs.tag_resource(ResourceId=ids["northwind-prod"], Tags=[{"Key": "customer", "Value": "northwind"}])
    orgs.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
    document = {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyLeave", "Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}]}
    policy = orgs.create_policy(
        Name="deny-leaving-organization", Description="Member accounts cannot leave the organization",
        Content=json.dumps(document), Type="SERVICE_CONTROL_POLICY")["Policy"]["PolicySummary"]["Id"]
    orgs.attach_policy(PolicyId=policy, TargetId=customers)
    return ids


def billing(endpoint: str, ids: dict) -> None:
    bc = boto3.client("billingconductor", endpoint_url=endpoint, **KEYS)
    rule = bc.create_pricing_rule(Name="standard-markup", Scope="GLOBAL", Type="MARKUP", ModifierPercentage=10)["Arn"]
    plan = bc.create_pricing_plan(Name="standard", Description="Public prices plus 10%", PricingRuleArns=[rule])["Arn"]
    group = bc.create_billing_group(
        Name="northwind", Description="Northwind Traders", PrimaryAccountId=ids["northwind-prod"],
        AccountGrouping={"LinkedAccountIds": [ids["northwind-prod"], ids["northwind-dev"]]},
        ComputationPreference={"PricingPlanArn": plan})["Arn"]
    bc.create_custom_line_item(
        Name="northwind-support", Description="Support plan", BillingGroupArn=group,
        ChargeDetails={"Type": "FEE", "Flat": {"ChargeValue": 10.0}})


if __name__ == "__main__":
    url = sys.argv[1]
    billing(url, organization(url))
    print("emulator: an organization made by hand (2 OUs, 1 SCP, 3 accounts, 1 plan, 1 group, 1 item)", file=sys.stderr)
