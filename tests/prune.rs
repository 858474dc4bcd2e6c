//! `plan -f DIR --prune` against the emulator: a LinkedAccount (deletionPolicy Close), a
//! BillingGroup and a BillingTransfer removed from the folder are listed with what their
//! deletion would do, while the emulator counts zero write calls; a changed plan name is
//! listed as a replacement.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Dir, connector};
use partner_billing_operator::filemode::{self, prune};
use serde_json::json;

const ORG: &str = "/_emulator/services/organizations/";
const KEY: &str = "AKIAPBOPRUNE00000001";
const SECRET: &str = "pbo-prune-test-secret";

const KEPT: &str = r#"
apiVersion: partnerbilling.io/v1alpha1
kind: LinkedAccount
metadata: {name: kept, namespace: prune}
spec:
  payerRef: {name: acme}
  create: {email: kept@example.com, accountName: kept}
---
apiVersion: partnerbilling.io/v1alpha1
kind: PricingPlan
metadata: {name: standard, namespace: prune}
spec:
  payerRef: {name: acme}
  rules:
    - {name: global-markup, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}
---
apiVersion: partnerbilling.io/v1alpha1
kind: BillingGroup
metadata: {name: kept, namespace: prune}
spec:
  payerRef: {name: acme}
  primaryAccount: kept
  pricingPlanRef: {name: standard}
"#;

const LEAVING: &str = r#"
apiVersion: partnerbilling.io/v1alpha1
kind: LinkedAccount
metadata: {name: leaving, namespace: prune}
spec:
  payerRef: {name: acme}
  create: {email: leaving@example.com, accountName: leaving}
  deletionPolicy: Close
---
apiVersion: partnerbilling.io/v1alpha1
kind: BillingGroup
metadata: {name: leaving, namespace: prune}
spec:
  payerRef: {name: acme}
  primaryAccount: leaving
  pricingPlanRef: {name: standard}
  deletionPolicy: Delete
"#;

fn load(paths: &[PathBuf]) -> filemode::Manifests {
    common::load(paths, "prune")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_objects_are_listed_with_their_deletion_and_nothing_is_written() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let cfg = emu.sdk_config(KEY, SECRET, None).await;
    emu.create_organization(&cfg, 0).await;
    emu.control(
        "POST",
        &format!("{ORG}settings"),
        Some(json!({"createDelaySeconds": 0.3})),
    );
    let before = Dir::new();
    before.write("payer.yaml", &common::payer_yaml("prune", KEY, SECRET));
    before.write("kept.yaml", KEPT);
    before.write("leaving.yaml", LEAVING);
    let applied = filemode::apply(
        load(std::slice::from_ref(&before.0)),
        connector(emu),
        Duration::from_secs(60),
    )
    .await;
    let not_ready: Vec<_> = applied.objects.iter().filter(|o| !o.ready).collect();
    assert!(not_ready.is_empty(), "{not_ready:#?}");

    // The pull request removes leaving.yaml.
    let after = Dir::new();
    after.write("payer.yaml", &common::payer_yaml("prune", KEY, SECRET));
    after.write("kept.yaml", KEPT);
    emu.control("DELETE", "/_emulator/requests", None);

    let (report, preview) = prune::plan_with_prune(
        load(std::slice::from_ref(&after.0)),
        Some(load(std::slice::from_ref(&before.0))),
        connector(emu),
    )
    .await;
    assert!(preview.problems.is_empty(), "{:?}", preview.problems);
    let orphan = |kind: &str| {
        preview
            .orphans
            .iter()
            .find(|o| o.kind == kind && o.name == "leaving")
            .unwrap_or_else(|| panic!("no {kind} leaving in {:#?}", preview.orphans))
    };
    let account = orphan("LinkedAccount");
    assert_eq!(
        (account.action.as_str(), account.policy.as_str()),
        ("close", "Close")
    );
    assert_eq!(account.policy_source, "previous-manifest");
    assert!(
        account.aws_name.contains("leaving@example.com"),
        "{account:?}"
    );
    let group = orphan("BillingGroup");
    assert_eq!(
        (group.action.as_str(), group.policy.as_str()),
        ("delete", "Delete")
    );
    assert_eq!(preview.orphans.len(), 2, "{:#?}", preview.orphans);
    assert!(
        preview.replacements.is_empty(),
        "{:#?}",
        preview.replacements
    );
    assert_eq!(prune::exit_code(&report, &preview), prune::EXIT_REVIEW);
    let v: serde_json::Value = serde_json::from_str(&prune::json(&report, &preview)).unwrap();
    assert_eq!(v["summary"]["requiresReview"], true);
    assert_eq!(v["prune"]["orphans"].as_array().unwrap().len(), 2);
    let text = prune::text(&preview);
    assert!(
        text.contains("! close LinkedAccount prune/leaving"),
        "{text}"
    );
    assert!(
        text.contains("! delete BillingGroup prune/leaving"),
        "{text}"
    );

    // The command line: exit status 3 and summary.requiresReview for a PR check.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_partner-billing-operator"))
        .args(["plan", "--prune", "-o", "json", "-n", "prune", "-f"])
        .arg(&after.0)
        .arg("--previous")
        .arg(&before.0)
        .env("AWS_ENDPOINT_URL", &emu.url)
        .output()
        .expect("run the binary");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["summary"]["requiresReview"], true, "{v}");
    assert_eq!(
        v["prune"]["orphans"].as_array().map(Vec::len),
        Some(2),
        "{v}"
    );

    // Without the folder before the change the policy is not known: the worst case is shown.
    let (report, preview) =
        prune::plan_with_prune(load(std::slice::from_ref(&after.0)), None, connector(emu)).await;
    let account = preview
        .orphans
        .iter()
        .find(|o| o.kind == "LinkedAccount")
        .expect("the account");
    assert_eq!(account.action, "close");
    assert_eq!(account.policy_source, "assumed-worst-case");
    assert!(account.effect.contains("default is Retain"), "{account:?}");
    assert_eq!(prune::exit_code(&report, &preview), prune::EXIT_REVIEW);
    assert_eq!(
        common::written_operations(emu),
        Vec::<String>::new(),
        "--prune writes nothing"
    );
    assert!(emu.total_requests() > 0, "the preview read AWS");
    println!(
        "two plan --prune runs over 2 accounts, 1 plan, 2 groups: {} AWS calls, 0 writes",
        emu.total_requests()
    );

    // A renamed pricing plan: the plan carrying the owner tag is no longer the one named.
    after.write(
        "kept.yaml",
        &KEPT.replace("  rules:\n", "  planName: standard-v2\n  rules:\n"),
    );
    before.remove("leaving.yaml");
    let (_, preview) =
        prune::plan_with_prune(load(std::slice::from_ref(&after.0)), None, connector(emu)).await;
    let r = preview
        .replacements
        .iter()
        .find(|r| r.kind == "PricingPlan" && r.name == "standard")
        .unwrap_or_else(|| panic!("no replacement in {:#?}", preview.replacements));
    assert!(r.detail.contains("standard-v2"), "{r:?}");
    assert_eq!(
        common::written_operations(emu),
        Vec::<String>::new(),
        "--prune writes nothing"
    );
}

/// Objects that depend on objects new in the same change show what they will do once those
/// exist (the examples on an empty organization), and planning writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_of_new_objects_plan_their_changes() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let cfg = emu
        .sdk_config(
            "AKIADEMO000000000001",
            "demo-only-not-a-real-secret-key",
            None,
        )
        .await;
    emu.create_organization(&cfg, 0).await;
    emu.control("DELETE", "/_emulator/requests", None);
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let manifests = filemode::load(std::slice::from_ref(&examples), "default").unwrap();
    let report = filemode::plan(manifests, connector(emu)).await;
    let changes = |kind: &str, name: &str| -> Vec<String> {
        let o = common::find(&report, kind, name);
        assert!(!o.error, "{kind} {name}: {} {}", o.reason, o.message);
        o.changes
            .iter()
            .map(|c| format!("{} {}", c.target, c.detail))
            .collect()
    };
    let has = |kind: &str, name: &str, text: &str| {
        let c = changes(kind, name);
        assert!(c.iter().any(|c| c.contains(text)), "{kind} {name}: {c:#?}");
    };
    // An OU in a new OU, attaching a new SCP.
    has(
        "OrganizationalUnit",
        "customers-eu",
        "under (planned: OU Customers)",
    );
    has(
        "OrganizationalUnit",
        "customers-eu",
        "SCP attachment eu-regions-only",
    );
    // A new account in a new OU.
    has("LinkedAccount", "northwind-prod", "once created: move from");
    has(
        "LinkedAccount",
        "northwind-prod",
        "(planned: OU Customers-EU)",
    );
    // A group whose plan and primary account are new; items of a new group.
    has(
        "BillingGroup",
        "northwind",
        "primary (planned: account northwind-prod)",
    );
    has(
        "CustomLineItem",
        "northwind-support",
        "custom line item northwind-support fee",
    );
    has(
        "CurPipeline",
        "northwind-proforma",
        "data-export/northwind-proforma",
    );
    let quiet: Vec<String> = report
        .objects
        .iter()
        .filter(|o| o.kind != "Payer" && o.changes.is_empty())
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect();
    assert!(quiet.is_empty(), "objects without changes: {quiet:?}");
    assert_eq!(
        common::written_operations(emu),
        Vec::<String>::new(),
        "plan writes nothing"
    );
}

/// A BillingTransfer removed from the folder is listed with what its deletion would do in
/// AWS (its transfer found by ListInboundResponsibilityTransfers and the owner tag, as the
/// kind finds it), in the same JSON shape as the other kinds, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_billing_transfer_is_listed_with_what_its_deletion_does() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let cfg = emu.sdk_config(KEY, SECRET, None).await;
    emu.create_organization(&cfg, 0).await;
    let start = {
        use k8s_openapi::jiff::{Timestamp, ToSpan, tz::TimeZone};
        let today = Timestamp::now().to_zoned(TimeZone::UTC).date();
        format!(
            "{}T00:00:00Z",
            today.first_of_month().checked_add(2.months()).unwrap()
        )
    };
    let manifest = format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: BillingTransfer\nmetadata: {{name: globex, namespace: prune}}\nspec:\n  payerRef: {{name: acme}}\n  customer: {{accountId: '222222222222'}}\n  start: '{start}'\n"
    );
    let before = Dir::new();
    before.write("payer.yaml", &common::payer_yaml("prune", KEY, SECRET));
    before.write("transfer.yaml", &manifest);
    let applied = filemode::apply(
        load(std::slice::from_ref(&before.0)),
        connector(emu),
        Duration::from_secs(1),
    )
    .await;
    let sent = applied
        .objects
        .iter()
        .find(|o| o.kind == "BillingTransfer")
        .expect("the transfer's report");
    assert_eq!(sent.reason, "TransferRequested", "{sent:?}");

    let after = Dir::new();
    after.write("payer.yaml", &common::payer_yaml("prune", KEY, SECRET));
    emu.control("DELETE", "/_emulator/requests", None);
    // Without the folder before the change: Terminate (the most destructive) is assumed, and
    // the open invitation would be canceled.
    let (report, preview) =
        prune::plan_with_prune(load(std::slice::from_ref(&after.0)), None, connector(emu)).await;
    assert!(preview.problems.is_empty(), "{:?}", preview.problems);
    let orphan = preview
        .orphans
        .iter()
        .find(|o| o.kind == "BillingTransfer")
        .unwrap_or_else(|| panic!("no BillingTransfer in {:#?}", preview.orphans));
    assert_eq!(
        (orphan.name.as_str(), orphan.action.as_str()),
        ("globex", "cancel")
    );
    assert_eq!(orphan.policy, "Terminate");
    assert_eq!(orphan.policy_source, "assumed-worst-case");
    assert!(orphan.aws_id.starts_with("rt-"), "{orphan:?}");
    assert!(
        preview.notes.iter().all(|n| !n.contains("BillingTransfer")),
        "{:?}",
        preview.notes
    );
    assert_eq!(prune::exit_code(&report, &preview), prune::EXIT_REVIEW);
    let v: serde_json::Value = serde_json::from_str(&prune::json(&report, &preview)).unwrap();
    let listed = &v["prune"]["orphans"][0];
    for field in [
        "kind",
        "namespace",
        "name",
        "awsId",
        "awsName",
        "action",
        "policy",
        "policySource",
        "effect",
    ] {
        assert!(listed[field].is_string(), "{field} in {listed}");
    }
    assert!(
        prune::text(&preview).contains("! cancel BillingTransfer prune/globex"),
        "{}",
        prune::text(&preview)
    );
    // With the folder before the change: the kind's default, Retain.
    let (report, preview) = prune::plan_with_prune(
        load(std::slice::from_ref(&after.0)),
        Some(load(std::slice::from_ref(&before.0))),
        connector(emu),
    )
    .await;
    let orphan = &preview.orphans[0];
    assert_eq!(
        (orphan.action.as_str(), orphan.policy.as_str()),
        ("retain", "Retain")
    );
    assert!(!preview.requires_review(), "{preview:?}");
    assert_ne!(prune::exit_code(&report, &preview), prune::EXIT_REVIEW);
    assert_eq!(
        common::written_operations(emu),
        Vec::<String>::new(),
        "--prune writes nothing"
    );
}
