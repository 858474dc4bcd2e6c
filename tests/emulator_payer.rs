//! Payer reconciles against the local AWS emulator, through the real AWS SDK over HTTP.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use partner_billing_operator::api::conditions::{self, READY, SYNCED};
use partner_billing_operator::api::{ConditionStatus, Payer, PayerGrant, PayerStatus};
use partner_billing_operator::aws::{AwsOptions, SdkConnector};
use partner_billing_operator::metrics::Metrics;
use partner_billing_operator::payer;
use partner_billing_operator::payer::tenancy::StaticGrants;
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
    grants: Option<Arc<StaticGrants>>,
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
        grants: None,
    }
}

/// A PayerGrant of `namespace` for `account` through `role`.
fn grant(name: &str, namespace: &str, account: &str, role: &str) -> PayerGrant {
    serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "PayerGrant",
        "metadata": {"name": name},
        "spec": {"namespaces": {"names": [namespace]}, "accountIds": [account], "roleArns": [role]}
    }))
    .expect("grant")
}

/// The harness with these grants (in memory), shared so that a test can change them.
fn granted(h: Harness, grants: &[PayerGrant]) -> Harness {
    let source = Arc::new(StaticGrants::new(grants.to_vec()));
    Harness {
        ctx: h
            .ctx
            .with_shared(Arc::new(partner_billing_operator::payer::tenancy::Grants(
                source.clone(),
            ))),
        grants: Some(source),
        ..h
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

    // Reads only, and ListAccounts was paginated. The accounts come from the payer's
    // organization snapshot (issue 20), which every object of the payer shares: its lists,
    // each read once.
    assert_eq!(emu.count("sts", "GetCallerIdentity"), 1);
    assert_eq!(emu.count("organizations", "DescribeOrganization"), 1);
    assert!(emu.count("organizations", "ListAccounts") >= 2);
    let snapshot_lists: u64 = [
        "ListRoots",
        "ListCreateAccountStatus",
        "ListAccountsForParent",
        "ListOrganizationalUnitsForParent",
        "ListPolicies",
        "ListTargetsForPolicy",
        "ListHandshakesForOrganization",
    ]
    .iter()
    .map(|op| emu.count("organizations", op))
    .sum();
    assert_eq!(
        emu.total_requests(),
        2 + emu.count("organizations", "ListAccounts") + snapshot_lists
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
    let h = granted(h, &[grant("billing-role", "billing", target, &role)]);
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
    // The organization snapshot read by the first reconcile is shared for a while; this one
    // reads the organization again.
    h.ctx
        .shared::<partner_billing_operator::payer::snapshot::SnapshotCache>()
        .expire_older_than(Duration::ZERO);
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

/// Tenancy (issue 17): a Payer of namespace `billing` that has the operator assume a role in
/// another account, or use its own identity, without a PayerGrant is refused with
/// `NotGranted` naming what is missing, and the emulator sees no call at all: no AssumeRole, no
/// GetCallerIdentity. A grant for another namespace does not help.
#[tokio::test]
async fn a_payer_without_a_grant_is_refused_and_makes_no_aws_call() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let target = "210987654321";
    let role = format!("arn:aws:iam::{target}:role/PartnerBillingOperator");
    let operator = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let in_target = emu.assume_role(&operator, &role).await;
    emu.create_organization(&in_target, 2).await;
    emu.control("DELETE", "/_emulator/requests", None);

    let h = harness(StaticSecrets::default(), Some((ACCESS_KEY, SECRET_KEY)));
    // Granted, but to namespace `other` only.
    let h = granted(h, &[grant("other-role", "other", target, &role)]);
    for (credentials, missing) in [
        (
            json!({"assumeRole": {"roleArn": role}}),
            "no PayerGrant covers namespace billing",
        ),
        (
            serde_json::Value::Null,
            "no PayerGrant covers namespace billing",
        ),
    ] {
        let p = payer(target, credentials);
        let out = payer::reconcile(&p, &h.ctx, Run::at(Mode::Apply, NOW)).await;
        let (status, reason, message) = condition(&out, READY);
        assert_eq!(
            (status, reason.as_str()),
            (ConditionStatus::False, "NotGranted")
        );
        assert!(
            message.contains(missing) && message.contains(target),
            "{message}"
        );
        assert!(out.result.as_ref().expect_err("refused").is_terminal());
        assert!(
            out.events
                .iter()
                .any(|e| e.warning && e.reason == "NotGranted")
        );
    }
    assert_eq!(emu.total_requests(), 0, "a refused Payer calls nothing");
    assert_eq!(h.grants.as_ref().map(|g| g.refusals().len()), Some(2));
    assert_eq!(
        h.metrics.aws_call_count("sts", "AssumeRole", "success")
            + h.metrics
                .aws_call_count("sts", "GetCallerIdentity", "success"),
        0
    );
}

/// A grant removed while a Payer uses it: the next reconcile is refused, with no further
/// AWS call, and the cached connection (its assumed-role session) is dropped; a grant given
/// back lets it go on.
#[tokio::test]
async fn removing_the_grant_stops_the_payer_at_its_next_reconcile() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let target = "210987654321";
    let role = format!("arn:aws:iam::{target}:role/PartnerBillingOperator");
    let operator = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let in_target = emu.assume_role(&operator, &role).await;
    emu.create_organization(&in_target, 1).await;
    emu.control("DELETE", "/_emulator/requests", None);

    let h = harness(StaticSecrets::default(), Some((ACCESS_KEY, SECRET_KEY)));
    let h = granted(h, &[grant("billing-role", "billing", target, &role)]);
    let grants = h.grants.clone().expect("grants");
    let p = payer(target, json!({"assumeRole": {"roleArn": role}}));
    let first = payer::reconcile(&p, &h.ctx, Run::at(Mode::Apply, NOW)).await;
    assert_eq!(condition(&first, READY).1, "Verified", "{:?}", first.status);
    assert_eq!(h.ctx.connections.len(), 1);
    let calls = emu.total_requests();
    assert!(calls > 0);

    grants.set_grants(Vec::new());
    let mut again = p.clone();
    again.status = Some(first.status.clone());
    let refused =
        payer::reconcile(&again, &h.ctx, Run::at(Mode::Apply, "2026-11-24T12:05:00Z")).await;
    let (status, reason, _) = condition(&refused, READY);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, "NotGranted")
    );
    assert!(
        refused
            .events
            .iter()
            .any(|e| e.warning && e.reason == "NotGranted")
    );
    assert_eq!(
        emu.total_requests(),
        calls,
        "no call after the grant is gone"
    );
    assert_eq!(
        h.ctx.connections.len(),
        0,
        "the assumed-role session is dropped"
    );

    grants.set_grants(vec![grant("billing-role", "billing", target, &role)]);
    again.status = Some(refused.status.clone());
    let back = payer::reconcile(&again, &h.ctx, Run::at(Mode::Apply, "2026-11-24T12:10:00Z")).await;
    assert_eq!(condition(&back, READY).1, "Verified", "{:?}", back.status);
}

/// The external id can come from a Secret of the Payer's namespace; it reaches STS and never
/// the status or the event.
#[tokio::test]
async fn the_external_id_can_come_from_a_secret() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let target = "210987654321";
    let role = format!("arn:aws:iam::{target}:role/PartnerBillingOperator");
    let operator = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let in_target = emu.assume_role(&operator, &role).await;
    emu.create_organization(&in_target, 1).await;
    emu.control("DELETE", "/_emulator/requests", None);

    let external_id = "ext-id-9f2c71d0-never-shown";
    let mut s = StaticSecrets::default();
    s.insert(
        "billing",
        "role-external-id",
        [("externalId".to_string(), SecretString::new(external_id))].into(),
    );
    let h = harness(s, Some((ACCESS_KEY, SECRET_KEY)));
    let h = granted(h, &[grant("billing-role", "billing", target, &role)]);
    let p = payer(
        target,
        json!({"assumeRole": {"roleArn": role, "externalIdSecretRef": {"name": "role-external-id"}}}),
    );
    let out = payer::reconcile(&p, &h.ctx, Run::at(Mode::Apply, NOW)).await;
    assert_eq!(condition(&out, READY).1, "Verified", "{:?}", out.status);
    assert_eq!(emu.count("sts", "AssumeRole"), 1);
    let shown = format!("{:?} {:?} {:?}", out.status, out.events, out.result);
    assert!(!shown.contains(external_id), "{shown}");

    // Without its Secret: a clear condition naming Secret and key, and no call.
    let h = granted(
        harness(StaticSecrets::default(), Some((ACCESS_KEY, SECRET_KEY))),
        &[grant("billing-role", "billing", target, &role)],
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let out = payer::reconcile(&p, &h.ctx, Run::at(Mode::Apply, NOW)).await;
    let (_, reason, message) = condition(&out, READY);
    assert_eq!(reason, "SecretNotFound");
    assert!(
        message.contains("billing/role-external-id") && message.contains("externalId"),
        "{message}"
    );
    assert_eq!(emu.total_requests(), 0);
}
