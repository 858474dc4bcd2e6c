//! The Payer schema rejects bad input before any reconcile: checked here with kube's CEL
//! evaluator and the structural checks the API server applies.

use partner_billing_operator::{crdgen, schema_check};
use serde_json::{Value, json};

fn payer(spec: Value) -> Value {
    json!({
        "apiVersion": "partnerbilling.io/v1alpha1",
        "kind": "Payer",
        "metadata": {"name": "acme", "namespace": "billing"},
        "spec": spec
    })
}

fn violations(spec: Value) -> Vec<String> {
    let schema = crdgen::schema_for("Payer").expect("Payer schema");
    schema_check::validate(&schema, &payer(spec), None)
        .into_iter()
        .map(|v| v.to_string())
        .collect()
}

#[test]
fn a_minimal_payer_is_valid() {
    assert_eq!(
        violations(json!({"accountId": "111122223333"})),
        Vec::<String>::new()
    );
}

#[test]
fn each_credential_source_alone_is_valid() {
    let secret =
        json!({"accountId": "111122223333", "credentials": {"secretRef": {"name": "aws"}}});
    assert_eq!(violations(secret), Vec::<String>::new());
    let role = json!({"accountId": "111122223333", "region": "eu-west-1", "credentials": {"assumeRole": {
        "roleArn": "arn:aws:iam::111122223333:role/PartnerBilling", "externalId": "x-1"}}});
    assert_eq!(violations(role), Vec::<String>::new());
}

#[test]
fn a_bad_account_id_is_rejected() {
    for bad in ["12345", "1111222233334", "11112222333a", ""] {
        let v = violations(json!({"accountId": bad}));
        assert_eq!(v.len(), 1, "{bad:?}: {v:?}");
        assert!(v[0].starts_with("spec.accountId:"), "{v:?}");
    }
}

#[test]
fn a_missing_account_id_is_rejected() {
    let v = violations(json!({}));
    assert_eq!(v, ["spec.accountId: is required"]);
}

#[test]
fn two_credential_sources_at_once_are_rejected_by_the_cel_rule() {
    let v = violations(json!({"accountId": "111122223333", "credentials": {
        "secretRef": {"name": "aws"},
        "assumeRole": {"roleArn": "arn:aws:iam::111122223333:role/PartnerBilling"}}}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("set at most one of credentials.secretRef and credentials.assumeRole"),
        "{v:?}"
    );
}

#[test]
fn a_bad_role_arn_and_region_are_rejected() {
    let v = violations(json!({"accountId": "111122223333", "region": "Mars",
        "credentials": {"assumeRole": {"roleArn": "arn:aws:iam::111122223333:user/Bob"}}}));
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v.iter().any(|m| m.starts_with("spec.region:")), "{v:?}");
    assert!(
        v.iter()
            .any(|m| m.starts_with("spec.credentials.assumeRole.roleArn:")),
        "{v:?}"
    );
}

#[test]
fn unknown_fields_are_reported() {
    let v = violations(json!({"accountId": "111122223333", "acountId": "x"}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].starts_with("spec.acountId:"), "{v:?}");
}

/// A pattern the checker cannot compile would be skipped silently here while the API server
/// enforces it; keep every pattern compilable by the `regex` crate.
#[test]
fn every_schema_pattern_compiles() {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(p)) = map.get("pattern")
                    && let Err(e) = regex::Regex::new(p)
                {
                    out.push(format!("{path}: {p}: {e}"));
                }
                for (k, child) in map {
                    walk(child, &format!("{path}.{k}"), out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, path, out)),
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for crd in crdgen::all() {
        let schema = crdgen::schema_for(&crd.spec.names.kind).expect("schema");
        walk(&schema, &crd.spec.names.kind, &mut bad);
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
