//! Valid objects of every kind, wired together the way a partner would write them: a Payer
//! with its Secret, an SCP attached to an OU, one account created into the OU and one
//! adopted, a pricing plan, a billing group of both accounts, a fee on the group, and a CUR
//! pipeline. Each is a JSON object ready for the API server. Deleting them in reverse order
//! leaves AWS as it was, except for the adopted account (retained, the default).

use serde_json::{Value, json};

use super::harness::{ACCESS_KEY, PAYER_ACCOUNT, SECRET_KEY};

/// The e-mail of the account `create_organization(.., 1)` leaves in the emulator, to adopt.
pub const ADOPTED_EMAIL: &str = "customer-0@example.com";

fn object(kind: &str, ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "partnerbilling.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

pub fn secret(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY},
    })
}

pub fn payer(ns: &str, name: &str, secret: &str) -> Value {
    payer_of(ns, name, PAYER_ACCOUNT, secret)
}

/// A Payer of another management account (one account is claimed by one Payer).
pub fn payer_of(ns: &str, name: &str, account: &str, secret: &str) -> Value {
    object(
        "Payer",
        ns,
        name,
        json!({"accountId": account, "credentials": {"secretRef": {"name": secret}}}),
    )
}

/// Every partnerbilling.io object of the lifecycle, in the order they depend on each other
/// (the Payer `acme` first). Names are kind-prefixed so that events are easy to attribute.
pub fn all(ns: &str, suffix: &str) -> Vec<Value> {
    let acme = json!({"name": "acme"});
    vec![
        payer(ns, "acme", "acme-aws"),
        object(
            "ServiceControlPolicy",
            ns,
            "deny-leave",
            json!({
                "payerRef": acme,
                "description": "Members cannot leave",
                "document": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}]
                }
            }),
        ),
        object(
            "OrganizationalUnit",
            ns,
            "customers",
            json!({"payerRef": acme, "name": format!("Customers-{suffix}"), "serviceControlPolicies": ["deny-leave"]}),
        ),
        object(
            "LinkedAccount",
            ns,
            "created",
            json!({
                "payerRef": acme,
                "create": {"email": format!("aws+e2e-{suffix}@example.com"), "accountName": format!("e2e-{suffix}")},
                "parentRef": {"name": "customers"},
                "tags": {"customer": "e2e"},
                // Leaves the organization when deleted, so that its OU empties and can go.
                "deletionPolicy": "Remove"
            }),
        ),
        object(
            "LinkedAccount",
            ns,
            "adopted",
            json!({"payerRef": acme, "adopt": {"email": ADOPTED_EMAIL}}),
        ),
        object(
            "PricingPlan",
            ns,
            "standard",
            json!({
                "payerRef": acme,
                "description": "Public prices plus 10%",
                "rules": [{"name": "global-markup", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 10}]
            }),
        ),
        object(
            "BillingGroup",
            ns,
            "northwind",
            json!({
                "payerRef": acme,
                "primaryAccount": "created",
                "accounts": ["adopted"],
                "pricingPlanRef": {"name": "standard"},
                "description": "Northwind",
                // Deleted in AWS with the object, so that its pricing plan is no longer in use.
                "deletionPolicy": "Delete"
            }),
        ),
        object(
            "CustomLineItem",
            ns,
            "support-fee",
            json!({"billingGroupRef": {"name": "northwind"}, "description": "Partner support", "type": "FEE", "flat": {"amount": 10}}),
        ),
        object(
            "CurPipeline",
            ns,
            "acme-cur",
            json!({
                "payerRef": acme,
                "export": {"kind": "DataExport", "name": format!("e2e-cur-{suffix}"), "timeGranularity": "Daily"},
                "s3": {"bucket": format!("pbo-e2e-cur-{suffix}"), "region": "us-east-1", "create": true}
            }),
        ),
    ]
}

/// A BillingTransfer (not in [`all`]: it stays `TransferRequested` until a customer answers,
/// so the suites that wait for every object to be Ready leave it out).
pub fn billing_transfer(ns: &str) -> Value {
    object(
        "BillingTransfer",
        ns,
        "globex",
        json!({
            "payerRef": {"name": "acme"},
            "customer": {"accountId": "777788889999"},
            "start": "2027-03-01T00:00:00Z"
        }),
    )
}

pub fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

pub fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}
