//! The CurPipeline's delivery statement in the bucket policy: the one statement that lets
//! the delivering service principal (BCM Data Exports or legacy CUR) write for one payer
//! account, and its merge into a policy other people also edit (their statements are never
//! touched). Pure.

use serde_json::{Map, Value, json};

use crate::api::cur_pipeline::ExportKind;
use crate::error::Error;
use crate::reconcile::reasons;

/// Sid of the operator's statement for `kind` and payer account `payer`.
pub fn statement_sid(kind: ExportKind, payer: &str) -> String {
    match kind {
        ExportKind::DataExport => format!("PartnerBillingBcmDataExports{payer}"),
        ExportKind::LegacyCur => format!("PartnerBillingCurDelivery{payer}"),
    }
}

/// The bucket policy statement that lets exactly the delivering service principal write,
/// for exports of account `payer` only. Pure.
pub fn delivery_statement(kind: ExportKind, bucket: &str, payer: &str) -> Value {
    let (principal, actions, source_arn) = match kind {
        ExportKind::DataExport => (
            "bcm-data-exports.amazonaws.com",
            vec!["s3:PutObject", "s3:GetBucketPolicy"],
            format!("arn:aws:bcm-data-exports:us-east-1:{payer}:export/*"),
        ),
        ExportKind::LegacyCur => (
            "billingreports.amazonaws.com",
            vec!["s3:GetBucketAcl", "s3:GetBucketPolicy", "s3:PutObject"],
            format!("arn:aws:cur:us-east-1:{payer}:definition/*"),
        ),
    };
    json!({
        "Sid": statement_sid(kind, payer),
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": actions,
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {
            "ArnLike": {"aws:SourceArn": source_arn},
            "StringEquals": {"aws:SourceAccount": payer}
        }
    })
}

/// Compare policies the way IAM does: a one-element list equals its element, and the
/// order of list elements does not matter.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Array(items) if items.len() == 1 => normalize(&items[0]),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalize).collect();
            items.sort_by_key(|a| a.to_string());
            Value::Array(items)
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

/// `existing` as a JSON object, a new empty policy when there is none.
fn parse_policy(existing: Option<&str>) -> Result<Map<String, Value>, Error> {
    let policy: Value = match existing {
        Some(text) if !text.trim().is_empty() => serde_json::from_str(text).map_err(|e| {
            Error::terminal(
                reasons::BUCKET_POLICY_UNREADABLE,
                format!("the bucket policy is not valid JSON ({e}); fix it in S3 first"),
            )
        })?,
        _ => json!({"Version": "2012-10-17", "Statement": []}),
    };
    match policy {
        Value::Object(object) => Ok(object),
        _ => Err(Error::terminal(
            reasons::BUCKET_POLICY_UNREADABLE,
            "the bucket policy is not a JSON object; fix it in S3 first",
        )),
    }
}

/// `statements` with `statement` in place of the one of its Sid (duplicates of it dropped,
/// appended when missing), and whether that changed anything.
fn put_statement(statements: Vec<Value>, statement: &Value) -> (Vec<Value>, bool) {
    let sid = statement.get("Sid").cloned().unwrap_or(Value::Null);
    let mut found = false;
    let mut changed = false;
    let mut out = Vec::with_capacity(statements.len() + 1);
    for s in statements {
        if s.get("Sid") == Some(&sid) {
            if found {
                changed = true; // a duplicate of ours: drop it
                continue;
            }
            found = true;
            if normalize(&s) != normalize(statement) {
                changed = true;
                out.push(statement.clone());
                continue;
            }
        }
        out.push(s);
    }
    if !found {
        out.push(statement.clone());
        changed = true;
    }
    (out, changed)
}

/// The bucket policy with the operator's statement in place, or `None` when `existing`
/// already has it. Other statements are kept as they are. Pure.
pub fn merge_policy(existing: Option<&str>, statement: &Value) -> Result<Option<String>, Error> {
    let mut object = parse_policy(existing)?;
    let statements = match object.remove("Statement") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(one) => vec![one],
    };
    let (statements, changed) = put_statement(statements, statement);
    if !changed {
        return Ok(None);
    }
    object
        .entry("Version")
        .or_insert_with(|| Value::String("2012-10-17".into()));
    object.insert("Statement".into(), Value::Array(statements));
    Ok(Some(Value::Object(object).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_other_statements_and_is_idempotent() {
        let ours = delivery_statement(ExportKind::DataExport, "cur-bucket", "111111111111");
        let other = json!({"Sid": "AuditRead", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::cur-bucket/*"});
        let existing = json!({"Version": "2012-10-17", "Statement": [other.clone()]}).to_string();
        let merged = merge_policy(Some(&existing), &ours)
            .unwrap()
            .expect("a change");
        let v: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(v["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(v["Statement"][0], other);
        assert_eq!(v["Statement"][1], ours);
        assert_eq!(
            merge_policy(Some(&merged), &ours).unwrap(),
            None,
            "second run: no change"
        );
        // AWS may hand the statement back with one-element lists collapsed and reordered.
        let mut reordered = ours.clone();
        reordered["Action"] = json!(["s3:GetBucketPolicy", "s3:PutObject"]);
        reordered["Condition"]["StringEquals"]["aws:SourceAccount"] = json!(["111111111111"]);
        let aws = json!({"Version": "2012-10-17", "Statement": [other, reordered]}).to_string();
        assert_eq!(merge_policy(Some(&aws), &ours).unwrap(), None);
    }

    #[test]
    fn merge_replaces_a_changed_statement_and_starts_an_empty_policy() {
        let ours = delivery_statement(ExportKind::LegacyCur, "b-1", "111111111111");
        let created = merge_policy(None, &ours).unwrap().unwrap();
        let v: Value = serde_json::from_str(&created).unwrap();
        assert_eq!(v["Version"], "2012-10-17");
        assert_eq!(v["Statement"], json!([ours.clone()]));
        let mut tampered = ours.clone();
        tampered["Principal"]["Service"] = json!("evil.amazonaws.com");
        let single = json!({"Version": "2012-10-17", "Statement": tampered}).to_string();
        let fixed: Value =
            serde_json::from_str(&merge_policy(Some(&single), &ours).unwrap().unwrap()).unwrap();
        assert_eq!(fixed["Statement"], json!([ours]));
        assert_eq!(
            merge_policy(Some("{not json"), &json!({"Sid": "x"}))
                .unwrap_err()
                .reason(),
            "BucketPolicyUnreadable"
        );
        assert_eq!(
            merge_policy(Some("[1]"), &json!({"Sid": "x"}))
                .unwrap_err()
                .reason(),
            "BucketPolicyUnreadable"
        );
    }

    #[test]
    fn duplicates_of_our_statement_are_dropped() {
        let ours = delivery_statement(ExportKind::DataExport, "b-1", "111111111111");
        let twice = json!({"Statement": [ours.clone(), ours.clone()]}).to_string();
        let fixed: Value =
            serde_json::from_str(&merge_policy(Some(&twice), &ours).unwrap().unwrap()).unwrap();
        assert_eq!(fixed["Statement"], json!([ours]));
        assert_eq!(fixed["Version"], "2012-10-17");
    }

    #[test]
    fn statement_scopes_the_principal_to_the_payer() {
        let s = delivery_statement(ExportKind::DataExport, "b-1", "111111111111");
        assert_eq!(s["Principal"]["Service"], "bcm-data-exports.amazonaws.com");
        assert_eq!(
            s["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:bcm-data-exports:us-east-1:111111111111:export/*"
        );
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:SourceAccount"],
            "111111111111"
        );
        let l = delivery_statement(ExportKind::LegacyCur, "b-1", "111111111111");
        assert_eq!(l["Principal"]["Service"], "billingreports.amazonaws.com");
        assert_eq!(
            l["Action"],
            json!(["s3:GetBucketAcl", "s3:GetBucketPolicy", "s3:PutObject"])
        );
    }
}
