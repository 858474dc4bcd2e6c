//! A fault storm: a realistic organization of more than 200 objects across every kind is
//! applied while the emulator throttles 30% of AWS calls and fails 5% with 5xx. Everything
//! converges, nothing is duplicated, no object ends terminal, retries stay bounded, and the
//! planted secret never shows in logs or output.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use partner_billing_operator::aws::{AwsOptions, SdkConnector};
use partner_billing_operator::filemode::{self, output};
use partner_billing_operator::logging::{self, LogFormat};
use partner_billing_operator::metrics::Metrics;
use serde_json::json;

const SECRET: &str = "storm-secret-Xq93LmZpR7vT2wYb";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// 1 Payer, 6 SCPs, 12 OUs, 120 LinkedAccounts, 12 PricingPlans, 40 BillingGroups,
/// 20 CustomLineItems = 211 objects.
fn organization() -> String {
    let mut docs = vec![format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: aws, namespace: storm}}\nstringData: {{accessKeyId: AKIAPBOSTORM00000001, secretAccessKey: {SECRET}}}\n---\napiVersion: partnerbilling.io/v1alpha1\nkind: Payer\nmetadata: {{name: acme, namespace: storm}}\nspec: {{accountId: \"123456789012\", credentials: {{secretRef: {{name: aws}}}}}}\n"
    )];
    for i in 0..6 {
        docs.push(format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: ServiceControlPolicy\nmetadata: {{name: scp-{i}, namespace: storm}}\nspec:\n  payerRef: {{name: acme}}\n  document: {{Version: '2012-10-17', Statement: [{{Effect: Deny, Action: 'svc{i}:*', Resource: '*'}}]}}\n"
        ));
    }
    for i in 0..12 {
        let parent = if i >= 4 {
            format!("\n  parentRef: {{name: ou-{}}}", i % 4)
        } else {
            String::new()
        };
        docs.push(format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: OrganizationalUnit\nmetadata: {{name: ou-{i}, namespace: storm}}\nspec:\n  payerRef: {{name: acme}}\n  name: OU-{i}{parent}\n  serviceControlPolicies: [scp-{}]\n",
            i % 6
        ));
    }
    for i in 0..120 {
        docs.push(format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: LinkedAccount\nmetadata: {{name: acct-{i:03}, namespace: storm, labels: {{customer: c{:02}}}}}\nspec:\n  payerRef: {{name: acme}}\n  create: {{email: 'acct-{i:03}@example.com', accountName: acct-{i:03}}}\n  parentRef: {{name: ou-{}}}\n  tags: {{customer: c{:02}}}\n",
            i % 40,
            i % 12,
            i % 40
        ));
    }
    for i in 0..12 {
        docs.push(format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: PricingPlan\nmetadata: {{name: plan-{i}, namespace: storm}}\nspec:\n  payerRef: {{name: acme}}\n  rules:\n    - {{name: markup, scope: GLOBAL, type: MARKUP, modifierPercentage: {}}}\n    - {{name: s3, scope: SERVICE, type: DISCOUNT, service: AmazonS3, modifierPercentage: 5}}\n",
            5 + i
        ));
    }
    for c in 0..40 {
        docs.push(format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: BillingGroup\nmetadata: {{name: customer-{c:02}, namespace: storm}}\nspec:\n  payerRef: {{name: acme}}\n  primaryAccount: acct-{c:03}\n  accountSelector: {{matchLabels: {{customer: c{c:02}}}}}\n  pricingPlanRef: {{name: plan-{}}}\n",
            c % 12
        ));
    }
    for c in 0..20 {
        docs.push(format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: CustomLineItem\nmetadata: {{name: fee-{c:02}, namespace: storm}}\nspec:\n  billingGroupRef: {{name: customer-{c:02}}}\n  description: Support fee\n  type: FEE\n  flat: {{amount: {}}}\n",
            10 + c
        ));
    }
    docs.join("---\n")
}

#[tokio::test]
async fn a_fault_storm_converges_without_duplicates_or_terminal_errors() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let cfg = emu.sdk_config("AKIAPBOSTORM00000001", SECRET, None).await;
    emu.create_organization(&cfg, 0).await;
    emu.control(
        "POST",
        "/_emulator/services/organizations/settings",
        Some(json!({"createDelaySeconds": 0.2})),
    );
    emu.control("DELETE", "/_emulator/requests", None);
    emu.control(
        "POST",
        "/_emulator/faults",
        Some(json!({"kind": "throttle", "probability": 0.3})),
    );
    emu.control(
        "POST",
        "/_emulator/faults",
        Some(json!({"kind": "server_error", "probability": 0.05})),
    );

    let dir = std::env::temp_dir().join(format!("pbo-storm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("org.yaml"), organization()).unwrap();
    let manifests = filemode::load(std::slice::from_ref(&dir), "storm").expect("manifests");
    let total = manifests.object_count();
    assert!(total >= 200, "{total}");

    let capture = Capture::default();
    let _log = tracing::subscriber::set_default(logging::subscriber(
        LogFormat::Json,
        tracing_subscriber::EnvFilter::new("debug"),
        capture.clone(),
    ));
    let metrics = Metrics::shared();
    let connector = Arc::new(SdkConnector::new(
        AwsOptions {
            endpoint_url: Some(emu.url.clone()),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(2),
            operator_credentials: None,
        },
        metrics.clone(),
    ));
    let started = std::time::Instant::now();
    let report = filemode::apply(manifests, connector, Duration::from_secs(420)).await;
    let took = started.elapsed();
    let printed = output::apply_text(&report) + &output::json(&report);
    std::fs::remove_dir_all(&dir).ok();

    // Everything converged; nothing terminal.
    let not_ready: Vec<String> = report
        .objects
        .iter()
        .filter(|o| !o.ready)
        .map(|o| format!("{} {}: {} {}", o.kind, o.name, o.reason, o.message))
        .collect();
    assert!(
        not_ready.is_empty(),
        "{} not ready: {not_ready:#?}",
        not_ready.len()
    );

    // Nothing duplicated: exactly the objects asked for exist in AWS.
    emu.control("DELETE", "/_emulator/faults", None);
    let orgs = aws_sdk_organizations::Client::new(&cfg);
    let mut accounts = Vec::new();
    let mut pages = orgs.list_accounts().into_paginator().send();
    while let Some(p) = pages.next().await {
        accounts.extend(p.unwrap().accounts.unwrap_or_default());
    }
    assert_eq!(
        accounts.len(),
        121,
        "120 accounts and the management account"
    );
    let stats = emu.control(
        "POST",
        "/_emulator/services/organizations/stats",
        Some(json!({})),
    );
    assert_eq!(stats["createRequestsByState"]["SUCCEEDED"], 120, "{stats}");
    let bc = emu.control(
        "POST",
        "/_emulator/services/billingconductor/stats",
        Some(json!({})),
    );
    assert_eq!(
        (
            bc["plans"].as_u64(),
            bc["rules"].as_u64(),
            bc["groups"].as_u64(),
            bc["customLineItems"].as_u64()
        ),
        (Some(12), Some(24), Some(40), Some(20)),
        "{bc}"
    );
    let policies = orgs
        .list_policies()
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap()
        .policies
        .unwrap_or_default();
    assert_eq!(policies.len(), 7, "6 SCPs and FullAWSAccess");

    // Retries stay bounded: report them.
    let requests = emu.control("GET", "/_emulator/requests", None);
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    for o in requests["outcomes"].as_array().unwrap() {
        *by_outcome
            .entry(o["outcome"].as_str().unwrap().to_string())
            .or_default() += o["count"].as_u64().unwrap();
    }
    let ok = by_outcome.get("ok").copied().unwrap_or(0);
    let injected = by_outcome.get("injected_throttle").copied().unwrap_or(0)
        + by_outcome
            .get("injected_server_error")
            .copied()
            .unwrap_or(0);
    eprintln!(
        "fault storm: {total} objects ready in {:.1} s; {} AWS requests: {by_outcome:?}; injected faults per successful call {:.2}",
        took.as_secs_f64(),
        requests["total"],
        injected as f64 / ok.max(1) as f64
    );
    assert!(injected > 0, "faults were injected");
    assert!(
        injected < ok,
        "retries bounded: {injected} injected faults for {ok} successful calls"
    );

    // The planted secret never shows.
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty());
    assert!(!logs.contains(SECRET), "secret in logs");
    assert!(!printed.contains(SECRET), "secret in output");
}
