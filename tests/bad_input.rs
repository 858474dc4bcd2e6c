//! The bad-input corpus (`tests/bad-input`): every file is rejected, with the message its
//! header promises — by the schema (structural checks and CEL, as the API server would) or,
//! where the schema cannot judge, as a condition from the reconciler before any AWS call.

use std::path::PathBuf;

use partner_billing_operator::api::ServiceControlPolicy;
use partner_billing_operator::organizations::service_control_policy::minify;
use partner_billing_operator::{crdgen, filemode, schema_check};
use serde_json::Value;

#[test]
fn every_bad_input_is_rejected_with_its_message() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} cases", files.len());
    let mut kinds = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let header = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                .map(str::to_string)
        };
        let docs = filemode::parse_documents(&text).unwrap();
        let new = docs.last().unwrap().clone();
        let kind = new["kind"].as_str().unwrap().to_string();
        kinds.insert(kind.clone());
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if let Some(expect) = header("expect") {
            let schema = crdgen::schema_for(&kind).unwrap();
            let old: Option<&Value> = (docs.len() == 2).then(|| &docs[0]);
            if let Some(old) = old {
                let v = schema_check::validate(&schema, old, None);
                assert!(
                    v.is_empty(),
                    "{name}: the stored object itself is invalid: {v:?}"
                );
            }
            let messages: Vec<String> = schema_check::validate(&schema, &new, old)
                .into_iter()
                .map(|v| v.to_string())
                .collect();
            if !messages.iter().any(|m| m.contains(&expect)) {
                failures.push(format!("{name}: expected {expect:?}, got {messages:?}"));
            }
        } else if let Some(expect) = header("expect-condition") {
            let schema = crdgen::schema_for(&kind).unwrap();
            let v = schema_check::validate(&schema, &new, None);
            assert!(v.is_empty(), "{name}: meant to pass the schema: {v:?}");
            let scp: ServiceControlPolicy = serde_json::from_value(new).unwrap();
            let seen = match minify(&scp.spec.document) {
                Ok(_) => "accepted".to_string(),
                Err(e) => format!("{}: {e}", e.reason()),
            };
            if !seen.contains(&expect) {
                failures.push(format!(
                    "{name}: expected condition {expect:?}, got {seen:?}"
                ));
            }
        } else {
            failures.push(format!("{name}: no expect header"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for kind in crdgen::all().iter().map(|c| c.spec.names.kind.clone()) {
        assert!(kinds.contains(&kind), "no bad input for {kind}");
    }
}
