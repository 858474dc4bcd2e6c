//! Payer reconciles against the local AWS emulator, through the real AWS SDK over HTTP.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use partner_billing_operator::api::conditions::{self, READY, SYNCED};
use partner_billing_operator::api::{ConditionStatus, Payer, PayerStatus};
use partner_billing_operator::aws::{AwsOptions, SdkConnector};
use partner_billing_operator::metrics::Metrics;
use partner_billing_operator::payer;
use partner_billing_operator::reconcile::ReconcileContext;
use partner_billing_operator::reconcile::run::Run;
use partner_billing_operator::reconcile::{KindOutcome, Mode};
use partner_billing_operator::secrets::{SecretData, SecretString, StaticSecrets};
use serde_json::json;

/// moto maps access keys it has not issued to this account.
const DEFAULT_ACCOUNT: &str = "123456789012";
const ACCESS_KEY: &str = "AKIAPBOTEST000000001";
const SECRET_KEY: &str = "pbo-test-secret-3f9c1d7e5a2b4c6d8e0f1a2b3c4d5e6f";
const NOW: &str = "2026-11-24T12:00:00Z";

fn payer(account_id: &str, credentials: serde_json::Value) -> Payer {
    serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1",
        "kind": "Payer",
        "metadata": {"name": "acme", "namespace": "billing", "generation": 1},
        "spec": {"accountId": account_id, "credentials": credentials}
    }))
    .expect("payer")
}

fn secret_ref() -> serde_json::Value {
    json!({"secretRef": {"name": "acme-aws"}})
}

fn secrets(entries: &[(&str, &str)]) -> StaticSecrets {
    let mut data = SecretData::new();
    for (k, v) in entries {
        data.insert(k.to_string(), SecretString::new(*v));
    }
    let mut s = StaticSecrets::default();
    s.insert("billing", "acme-aws", data);
    s
}

fn good_secrets() -> StaticSecrets {
    secrets(&[("accessKeyId", ACCESS_KEY), ("secretAccessKey", SECRET_KEY)])
}

struct Harness {
    ctx: ReconcileContext,
    metrics: Arc<Metrics>,
}

fn harness(secrets: StaticSecrets, operator: Option<(&str, &str)>) -> Harness {
    let metrics = Metrics::shared();
    let options = AwsOptions {
        endpoint_url: Some(common::emulator().url.clone()),
        max_attempts: 5,
        initial_backoff: Duration::from_millis(5),
        operator_credentials: operator.map(|(id, key)| {
            SharedCredentialsProvider::new(Credentials::new(id, key, None, None, "operator"))
        }),
    };
    let connector = Arc::new(SdkConnector::new(options, metrics.clone()));
    Harness {
        ctx: ReconcileContext::new(connector, Arc::new(secrets)),
        metrics,
    }
}

fn condition(outcome: &KindOutcome<PayerStatus>, kind: &str) -> (ConditionStatus, String, String) {
    let c = conditions::find(&outcome.status.conditions, kind).expect("condition present");
    (c.status, c.reason.clone(), c.message.clone())
}

#[tokio::test]
async fn a_correct_payer_becomes_ready_with_its_organization() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let config = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    // 24 members + the management account: more than one ListAccounts page (moto pages by 20).
    let org_id = emu.create_organization(&config, 24).await;
    emu.control("DELETE", "/_emulator/requests", None);

    let h = harness(good_secrets(), None);
    let out = payer::reconcile(
        &payer(DEFAULT_ACCOUNT, secret_ref()),
        &h.ctx,
        Run::at(Mode::Apply, NOW),
    )
    .await;

    assert_eq!(
        condition(&out, READY).0,
        ConditionStatus::True,
        "{:?}",
        out.status
    );
    assert_eq!(condition(&out, READY).1, "Verified");
    assert_eq!(condition(&out, SYNCED).0, ConditionStatus::True);
    assert_eq!(out.status.organization_id.as_deref(), Some(org_id.as_str()));
    assert_eq!(out.status.feature_set.as_deref(), Some("ALL"));
    assert_eq!(out.status.member_accounts, Some(25));
    assert_eq!(out.status.observed_generation, Some(1));
    assert_eq!(out.status.last_successful_sync.as_deref(), Some(NOW));
    assert!(
        out.status
            .caller_arn
            .as_deref()
            .is_some_and(|a| a.contains(DEFAULT_ACCOUNT)),
        "{:?}",
        out.status.caller_arn
    );
    assert!(out.status_changed(None));
    let event = out.events.first().cloned().expect("a Ready event");
    assert!(!event.warning);

    // Reads only, and ListAccounts was paginated.
    assert_eq!(emu.count("sts", "GetCallerIdentity"), 1);
    assert_eq!(emu.count("organizations", "DescribeOrganization"), 1);
    assert!(emu.count("organizations", "ListAccounts") >= 2);
    assert_eq!(
        emu.total_requests(),
        2 + emu.count("organizations", "ListAccounts")
    );
    assert_eq!(
        h.metrics
            .aws_call_count("sts", "GetCallerIdentity", "success"),
        1
    );
}

#[tokio::test]
async fn a_wrong_account_id_is_not_ready_and_names_both_accounts() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let config = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    emu.create_organization(&config, 1).await;

    let h = harness(good_secrets(), None);
    let out = payer::reconcile(
        &payer("111122223333", secret_ref()),
        &h.ctx,
        Run::at(Mode::Apply, NOW),
    )
    .await;

    let (status, reason, message) = condition(&out, READY);
    assert_eq!(status, ConditionStatus::False);
    assert_eq!(reason, "AccountMismatch");
    assert!(
        message.contains("111122223333") && message.contains(DEFAULT_ACCOUNT),
        "{message}"
    );
    assert!(out.status.organization_id.is_none());
    assert!(out.events.first().is_some_and(|e| e.warning));
}

#[tokio::test]
async fn an_account_without_an_organization_is_not_ready() {
    let emu = common::emulator();
    let _guard = emu.lock().await;

    let h = harness(good_secrets(), None);
    let out = payer::reconcile(
        &payer(DEFAULT_ACCOUNT, secret_ref()),
        &h.ctx,
        Run::at(Mode::Apply, NOW),
    )
    .await;

    let (status, reason, message) = condition(&out, READY);
    assert_eq!(status, ConditionStatus::False);
    assert_eq!(reason, "NoOrganization");
    assert!(message.contains(DEFAULT_ACCOUNT), "{message}");
    // A terminal finding, not a failed sync: the controller will not retry it hot.
    assert_eq!(condition(&out, SYNCED).0, ConditionStatus::True);
}

#[tokio::test]
async fn an_assumed_role_reaches_the_management_account() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let target = "210987654321";
    let role = format!("arn:aws:iam::{target}:role/PartnerBillingOperator");
    let operator = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let in_target = emu.assume_role(&operator, &role).await;
    let org_id = emu.create_organization(&in_target, 2).await;
    emu.control("DELETE", "/_emulator/requests", None);

    let h = harness(StaticSecrets::default(), Some((ACCESS_KEY, SECRET_KEY)));
    let p = payer(
        target,
        json!({"assumeRole": {"roleArn": role, "externalId": "partner-42"}}),
    );
    let out = payer::reconcile(&p, &h.ctx, Run::at(Mode::Apply, NOW)).await;

    assert_eq!(
        condition(&out, READY).0,
        ConditionStatus::True,
        "{:?}",
        out.status
    );
    assert_eq!(out.status.organization_id.as_deref(), Some(org_id.as_str()));
    assert_eq!(out.status.member_accounts, Some(3));
    assert!(
        out.status
            .caller_arn
            .as_deref()
            .is_some_and(|a| a.contains(target) && a.contains("assumed-role")),
        "{:?}",
        out.status.caller_arn
    );
    assert_eq!(emu.count("sts", "AssumeRole"), 1);
}

#[tokio::test]
async fn three_throttles_are_retried_through_and_the_payer_becomes_ready() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let config = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    emu.create_organization(&config, 1).await;
    emu.control("DELETE", "/_emulator/requests", None);
    emu.throttle("organizations", "DescribeOrganization", 3);

    let h = harness(good_secrets(), None);
    let out = payer::reconcile(
        &payer(DEFAULT_ACCOUNT, secret_ref()),
        &h.ctx,
        Run::at(Mode::Apply, NOW),
    )
    .await;

    assert_eq!(
        condition(&out, READY).0,
        ConditionStatus::True,
        "{:?}",
        out.status
    );
    assert_eq!(out.status.member_accounts, Some(2));
    let outcomes = emu.outcomes("organizations", "DescribeOrganization");
    assert!(
        outcomes.contains(&("injected_throttle".to_string(), 3)),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&("ok".to_string(), 1)), "{outcomes:?}");
    assert_eq!(
        h.metrics
            .aws_call_count("organizations", "DescribeOrganization", "throttled"),
        3
    );
    assert_eq!(
        h.metrics
            .aws_call_count("organizations", "DescribeOrganization", "success"),
        1
    );
}

#[tokio::test]
async fn throttling_beyond_the_retries_is_retryable_and_keeps_ready() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let config = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    emu.create_organization(&config, 0).await;
    let h = harness(good_secrets(), None);
    let p = payer(DEFAULT_ACCOUNT, secret_ref());
    let first = payer::reconcile(&p, &h.ctx, Run::at(Mode::Apply, NOW)).await;
    assert_eq!(condition(&first, READY).0, ConditionStatus::True);

    emu.throttle("organizations", "ListAccounts", 50);
    let mut again = p.clone();
    again.status = Some(first.status.clone());
    let out = payer::reconcile(&again, &h.ctx, Run::at(Mode::Apply, "2026-11-24T12:05:00Z")).await;

    let err = out.result.as_ref().expect_err("throttled");
    assert!(!err.is_terminal(), "{err:?}");
    assert_eq!(err.reason(), "AwsThrottled");
    assert_eq!(
        condition(&out, READY).0,
        ConditionStatus::True,
        "a transient error keeps Ready"
    );
    let (synced, reason, _) = condition(&out, SYNCED);
    assert_eq!(synced, ConditionStatus::False);
    assert_eq!(reason, "AwsThrottled");
    // The SDK gave up after its configured attempts instead of looping.
    assert_eq!(emu.count("organizations", "ListAccounts"), 5 + 1);
}

#[tokio::test]
async fn a_missing_secret_gives_a_clear_condition_and_calls_no_aws() {
    let emu = common::emulator();
    let _guard = emu.lock().await;

    let h = harness(StaticSecrets::default(), None);
    let out = payer::reconcile(
        &payer(DEFAULT_ACCOUNT, secret_ref()),
        &h.ctx,
        Run::at(Mode::Apply, NOW),
    )
    .await;

    let (status, reason, message) = condition(&out, READY);
    assert_eq!(status, ConditionStatus::False);
    assert_eq!(reason, "SecretNotFound");
    assert!(message.contains("billing/acme-aws"), "{message}");
    assert!(
        message.contains("accessKeyId") && message.contains("secretAccessKey"),
        "{message}"
    );
    assert!(out.result.as_ref().expect_err("terminal").is_terminal());
    assert_eq!(emu.total_requests(), 0);
}

#[tokio::test]
async fn a_missing_key_in_the_secret_names_the_key() {
    let emu = common::emulator();
    let _guard = emu.lock().await;

    let h = harness(secrets(&[("accessKeyId", ACCESS_KEY)]), None);
    let out = payer::reconcile(
        &payer(DEFAULT_ACCOUNT, secret_ref()),
        &h.ctx,
        Run::at(Mode::Apply, NOW),
    )
    .await;

    let (status, reason, message) = condition(&out, READY);
    assert_eq!(status, ConditionStatus::False);
    assert_eq!(reason, "SecretKeyMissing");
    assert!(message.contains("\"secretAccessKey\""), "{message}");
    assert_eq!(emu.total_requests(), 0);
}
