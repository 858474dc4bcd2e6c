//! The IAM policies cover every AWS operation the code calls, and the committed copies in
//! the chart are what `partner-billing-operator iam` writes.

use std::collections::BTreeSet;
use std::path::PathBuf;

use partner_billing_operator::iam;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Operations named in `err("X")` / `classify("service", "X", ...)` calls of a source file.
fn operations(file: &str, prefix: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(file)).expect("source");
    let mut ops = BTreeSet::new();
    for piece in text.split("err(\"").skip(1) {
        if let Some(op) = piece.split('"').next() {
            ops.insert(format!("{prefix}:{op}"));
        }
    }
    ops
}

/// Operations named in `on("service", "X")` calls: `service:X`, renamed where IAM
/// authorizes the operation under another action.
fn classified_operations(file: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(file)).expect("source");
    let mut ops = BTreeSet::new();
    let call = regex::Regex::new(r#"\bon\(\s*"([a-z0-9-]+)",\s*"([A-Za-z0-9]+)""#).unwrap();
    for c in call.captures_iter(&text) {
        let (service, op) = (&c[1], &c[2]);
        let name = format!("{service}:{op}");
        let name = iam::AUTHORIZED_AS
            .iter()
            .find(|(o, _)| *o == name)
            .map(|(_, a)| a.to_string())
            .unwrap_or(name);
        ops.insert(name);
    }
    ops
}

#[test]
fn every_called_operation_is_allowed_by_a_family_policy() {
    let allowed: BTreeSet<String> = iam::FAMILIES
        .iter()
        .flat_map(|f| f.actions.iter().map(|a| a.to_string()))
        .collect();
    let mut called = operations("src/aws/organizations.rs", "organizations");
    called.extend(operations("src/aws/billing.rs", "billingconductor"));
    called.extend(classified_operations("src/aws/costs.rs"));
    called.extend(classified_operations("src/aws/pipeline.rs"));
    called.extend(classified_operations("src/aws/transfer_preference.rs"));
    assert!(
        called.contains("glue:UpdateCrawler") && called.contains("s3:ListBucket"),
        "{called:?}"
    );
    called.extend(iam::IMPLIED.iter().map(|(a, _)| a.to_string()));
    called.insert("sts:GetCallerIdentity".into());
    assert!(called.len() > 40, "{called:?}");
    let missing: Vec<_> = called.difference(&allowed).collect();
    assert!(missing.is_empty(), "not in any IAM policy: {missing:?}");
    let unused: Vec<_> = allowed.difference(&called).collect();
    assert!(
        unused.is_empty(),
        "allowed but never called (not least privilege): {unused:?}"
    );
}

#[test]
fn the_charts_policies_are_the_generated_ones() {
    let dir = root().join("charts/partner-billing-operator/iam");
    for f in iam::FAMILIES {
        let path = dir.join(iam::file_name(f));
        let have = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run make crds", path.display()));
        assert_eq!(
            have,
            iam::to_json(f),
            "{} is out of date: run make crds",
            path.display()
        );
    }
}
