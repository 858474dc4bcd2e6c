//! Payer: verify the credentials reach the management account and report the organization.
//!
//! A Payer only reads AWS: its plan never holds changes. What it decides is whether the
//! payer is usable (identity matches `spec.accountId`, the account manages an organization)
//! and what to report; it also reads the organization's costs when insights are on.
//! Deleting a Payer only releases it. The Payer goes through the engine's generic path like
//! every kind; what is its own (its conditions, the status part its field manager writes, its
//! report lines) is here and named in the kind list.

pub mod context;
pub mod grant_watch;
pub mod grants;
pub mod insights;
pub mod snapshot;
pub mod tenancy;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;
use tracing::info;

use crate::api::ConditionStatus;
use crate::api::conditions::{self, DesiredCondition, READY, SYNCED, merge_conditions};
use crate::api::payer::{Payer, PayerCosts, PayerSpec, PayerStatus};
use crate::aws::organizations::Account;
use crate::aws::{CallerIdentity, Organization, PayerCredentialsSource};
use crate::error::Error;
use crate::payer::insights::InsightsStore;
use crate::payer::snapshot::SnapshotCache;
use crate::reconcile::reasons;
use crate::reconcile::report::ObjectReport;
use crate::reconcile::run::Run;
use crate::reconcile::{Change, EventNote, KindOutcome, ReconcileContext, Verdict, object_key};
use crate::secrets::{SecretSource, SecretString};
use crate::time::older_than;

/// How often `lastSuccessfulSync` is refreshed when nothing else changed.
pub const SYNC_REFRESH_SECS: i64 = 3600;

/// What AWS says about the payer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayerObservation {
    pub identity: CallerIdentity,
    /// `None`: the account is not in an organization.
    pub organization: Option<Organization>,
    /// Read only when the account manages the organization.
    pub accounts: Option<Vec<Account>>,
}

/// The verdict of planning a Payer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum PayerVerdict {
    /// The credentials reach the management account.
    #[serde(rename_all = "camelCase")]
    Verified {
        caller_arn: String,
        organization_id: String,
        feature_set: String,
        accounts: usize,
    },
    /// The payer cannot be used as it stands.
    Rejected { reason: String, message: String },
}

/// The plan for a Payer: a verdict, and no AWS changes (a Payer only reads).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PayerPlan {
    pub verdict: PayerVerdict,
    pub changes: Vec<Change>,
}

/// Turn `spec.credentials` into something the connector can use; reads the Secret.
pub async fn resolve_credentials(
    payer: &Payer,
    secrets: &dyn SecretSource,
) -> Result<PayerCredentialsSource, Error> {
    let namespace = payer.namespace().unwrap_or_default();
    let creds = payer.spec.credentials.clone().unwrap_or_default();
    match (creds.secret_ref, creds.assume_role) {
        (Some(_), Some(_)) => Err(Error::terminal(
            reasons::INVALID_SPEC,
            "spec.credentials sets both secretRef and assumeRole; keep one",
        )),
        (Some(secret_ref), None) => {
            let data = secrets.get(&namespace, &secret_ref.name).await?.ok_or_else(|| {
                Error::terminal(
                    reasons::SECRET_NOT_FOUND,
                    format!(
                        "Secret {namespace}/{} named in spec.credentials.secretRef does not exist; create it with keys {} and {}",
                        secret_ref.name,
                        secret_ref.access_key_id_key(),
                        secret_ref.secret_access_key_key()
                    ),
                )
            })?;
            let get = |key: &str| -> Result<SecretString, Error> {
                data.get(key).filter(|v| !v.expose().is_empty()).cloned().ok_or_else(|| {
                    Error::terminal(
                        reasons::SECRET_KEY_MISSING,
                        format!(
                            "Secret {namespace}/{} has no key {key:?} (or it is empty); add it or set the key name in spec.credentials.secretRef",
                            secret_ref.name
                        ),
                    )
                })
            };
            let access_key_id = get(secret_ref.access_key_id_key())?
                .expose()
                .trim()
                .to_string();
            let secret_access_key =
                SecretString::new(get(secret_ref.secret_access_key_key())?.expose().trim());
            let session_token = match &secret_ref.session_token_key {
                Some(key) => Some(get(key)?),
                None => None,
            };
            Ok(PayerCredentialsSource::Static {
                access_key_id,
                secret_access_key,
                session_token,
            })
        }
        (None, Some(role)) => Ok(PayerCredentialsSource::AssumeRole {
            // Tenancy (issue 17): externalId or externalIdSecretRef.
            external_id: tenancy::external_id(&namespace, &role, secrets).await?,
            role_arn: role.role_arn,
            session_name: role
                .session_name
                .unwrap_or_else(|| "partner-billing-operator".to_string()),
        }),
        (None, None) => Ok(PayerCredentialsSource::DefaultChain),
    }
}

/// Read what AWS says: identity, organization, and (for a management account) its accounts.
pub async fn observe(payer: &Payer, ctx: &ReconcileContext) -> Result<PayerObservation, Error> {
    let key = object_key(&payer.namespace().unwrap_or_default(), &payer.name_any());
    // Tenancy (issue 17): the operator's own identity only with a PayerGrant; no AWS call otherwise.
    tenancy::authorize(payer, ctx).await?;
    let credentials = resolve_credentials(payer, ctx.secrets.as_ref()).await?;
    let conn = ctx
        .connections
        .get_or_connect(&key, ctx.connector.as_ref(), &credentials, payer.region())
        .await?;
    let identity = conn.identity.caller_identity().await;
    let identity = match identity {
        Ok(identity) => identity,
        Err(err) => {
            if err.is_terminal() {
                ctx.connections.forget(&key);
            }
            return Err(err);
        }
    };
    if identity.account != payer.spec.account_id {
        // Do not touch Organizations with credentials of the wrong account.
        return Ok(PayerObservation {
            identity,
            organization: None,
            accounts: None,
        });
    }
    // The accounts come from the organization snapshot every object of this payer reads
    // (one listing per payer and pass), not from a listing of the Payer's own.
    let snapshots = ctx.shared::<SnapshotCache>();
    let organization = match snapshots.fresh(&key) {
        Some(s) => Some(s.organization.clone()),
        None => conn.organizations.describe_organization().await?,
    };
    let accounts = match &organization {
        Some(org) if org.management_account_id == identity.account => {
            let snapshot = snapshots.get_for(&key, &conn, org.clone()).await?;
            Some(snapshot.accounts.clone())
        }
        _ => None,
    };
    Ok(PayerObservation {
        identity,
        organization,
        accounts,
    })
}

/// Decide whether the payer is usable. Pure.
pub fn plan(spec: &PayerSpec, observed: &PayerObservation) -> PayerPlan {
    let verdict = if observed.identity.account != spec.account_id {
        PayerVerdict::Rejected {
            reason: reasons::ACCOUNT_MISMATCH.into(),
            message: format!(
                "the credentials belong to account {} ({}), but spec.accountId is {}; use credentials of the management account or correct spec.accountId",
                observed.identity.account, observed.identity.arn, spec.account_id
            ),
        }
    } else {
        match &observed.organization {
            None => PayerVerdict::Rejected {
                reason: reasons::NO_ORGANIZATION.into(),
                message: format!(
                    "account {} is not in an AWS organization; create one in that account (it becomes the management account) or point spec.accountId at the management account",
                    spec.account_id
                ),
            },
            Some(org) if org.management_account_id != spec.account_id => PayerVerdict::Rejected {
                reason: reasons::NOT_MANAGEMENT_ACCOUNT.into(),
                message: format!(
                    "account {} is a member of organization {}, whose management account is {}; a Payer must be the management account: set spec.accountId to {} and use its credentials",
                    spec.account_id, org.id, org.management_account_id, org.management_account_id
                ),
            },
            Some(org) => PayerVerdict::Verified {
                caller_arn: observed.identity.arn.clone(),
                organization_id: org.id.clone(),
                feature_set: org.feature_set.clone(),
                accounts: observed.accounts.as_ref().map_or(0, Vec::len),
            },
        }
    };
    PayerPlan {
        verdict,
        changes: Vec::new(),
    }
}

/// The status to write after a reconcile that produced `outcome`. Pure: `now` is passed in.
///
/// `lastSuccessfulSync` moves when something else changed or when it is older than
/// [`SYNC_REFRESH_SECS`], so a steady payer does not cause a status write per resync.
pub fn desired_status(
    current: Option<&PayerStatus>,
    generation: Option<i64>,
    outcome: &Result<PayerPlan, Error>,
    now: Timestamp,
) -> PayerStatus {
    let now = now.to_string();
    let previous = current.cloned().unwrap_or_default();
    let mut next = previous.clone();
    next.observed_generation = generation;
    let desired = match outcome {
        Ok(plan) => verdict_conditions(&plan.verdict, &mut next),
        Err(err) => error_conditions(err, &previous),
    };
    next.conditions = merge_conditions(&previous.conditions, &desired, generation, &now);
    let verified = matches!(
        outcome,
        Ok(PayerPlan {
            verdict: PayerVerdict::Verified { .. },
            ..
        })
    );
    if verified {
        let stale = previous
            .last_successful_sync
            .as_deref()
            .is_none_or(|t| older_than(t, &now, SYNC_REFRESH_SECS));
        if stale || status_changed(Some(&previous), &next) {
            next.last_successful_sync = Some(now);
        }
    }
    next
}

/// The conditions of a planned verdict; records what was verified in `next`.
fn verdict_conditions(verdict: &PayerVerdict, next: &mut PayerStatus) -> Vec<DesiredCondition> {
    let (ready, reason, message) = match verdict {
        PayerVerdict::Verified {
            caller_arn,
            organization_id,
            feature_set,
            accounts,
        } => {
            next.caller_arn = Some(caller_arn.clone());
            next.organization_id = Some(organization_id.clone());
            next.feature_set = Some(feature_set.clone());
            next.member_accounts = Some(i64::try_from(*accounts).unwrap_or(i64::MAX));
            (
                ConditionStatus::True,
                reasons::VERIFIED.to_string(),
                management_message(organization_id, feature_set, *accounts),
            )
        }
        PayerVerdict::Rejected { reason, message } => {
            next.organization_id = None;
            next.feature_set = None;
            next.member_accounts = None;
            (ConditionStatus::False, reason.clone(), message.clone())
        }
    };
    vec![
        DesiredCondition::new(READY, ready, reason, message),
        DesiredCondition::new(
            SYNCED,
            ConditionStatus::True,
            reasons::RECONCILE_SUCCESS,
            "AWS was read; nothing in AWS needs to change",
        ),
    ]
}

/// The conditions of a failed reconcile: terminal errors set `Ready` False; a passing
/// failure says nothing new about readiness and keeps `Ready` as it was.
fn error_conditions(err: &Error, previous: &PayerStatus) -> Vec<DesiredCondition> {
    if err.is_terminal() {
        return vec![
            DesiredCondition::new(READY, ConditionStatus::False, err.reason(), err.to_string()),
            DesiredCondition::new(
                SYNCED,
                ConditionStatus::False,
                err.reason(),
                err.to_string(),
            ),
        ];
    }
    let mut d = vec![DesiredCondition::new(
        SYNCED,
        ConditionStatus::False,
        err.reason(),
        err.to_string(),
    )];
    if conditions::find(&previous.conditions, READY).is_none() {
        d.push(DesiredCondition::new(
            READY,
            ConditionStatus::Unknown,
            reasons::PENDING,
            "waiting for AWS to answer",
        ));
    }
    d
}

/// What a verified payer's `Ready` condition says.
fn management_message(organization_id: &str, feature_set: &str, accounts: usize) -> String {
    format!(
        "management account of organization {organization_id} ({feature_set}) with {accounts} accounts"
    )
}

/// Whether `next` differs from `previous` in anything but timestamps.
pub fn status_changed(previous: Option<&PayerStatus>, next: &PayerStatus) -> bool {
    fn strip(s: &PayerStatus) -> PayerStatus {
        let mut s = s.clone();
        s.last_successful_sync = None;
        for c in &mut s.conditions {
            c.last_transition_time.clear();
        }
        s
    }
    match previous {
        None => true,
        Some(p) => strip(p) != strip(next),
    }
}

/// An Event worth recording when `Ready` changed between two statuses.
pub fn ready_event(previous: Option<&PayerStatus>, next: &PayerStatus) -> Option<EventNote> {
    let before = previous
        .map(|p| p.conditions.as_slice())
        .unwrap_or_default();
    crate::reconcile::ready_change_event(before, &next.conditions)
}

/// Condition type of the cost insights.
pub const INSIGHTS: &str = "Insights";

/// Read Cost Explorer when insights are enabled and a read is due; keep the last costs when
/// a read fails (condition `Insights` False), drop them when insights are turned off.
async fn insights_step(
    payer: &Payer,
    ctx: &ReconcileContext,
    plan: &Result<PayerPlan, Error>,
    status: &mut PayerStatus,
    run: &Run,
) {
    let key = object_key(&payer.namespace().unwrap_or_default(), &payer.name_any());
    let spec = payer.spec.insights.clone().unwrap_or_default();
    let insights = ctx.shared::<InsightsStore>();
    if !spec.enabled {
        status.costs = None;
        status.conditions.retain(|c| c.type_ != INSIGHTS);
        insights.forget(&key);
        return;
    }
    if !matches!(
        plan,
        Ok(PayerPlan {
            verdict: PayerVerdict::Verified { .. },
            ..
        })
    ) {
        return;
    }
    let now = run.timestamp();
    let in_memory = insights.has_read(&key);
    let last_attempt = insights.last_attempt(&key);
    if !crate::payer::insights::refresh_due(
        &spec,
        status.costs.as_ref(),
        in_memory,
        last_attempt.as_deref(),
        now,
    ) {
        return;
    }
    let Some(conn) = ctx.connections.get(&key) else {
        return;
    };
    let read = insights
        .refresh(
            &key,
            &payer.spec.account_id,
            &spec,
            conn.costs.as_ref(),
            now,
        )
        .await;
    let desired = insights_condition(read, status, run.time());
    status.conditions = merge_conditions(
        &status.conditions,
        &[desired],
        payer.metadata.generation,
        now,
    );
}

/// The `Insights` condition after a Cost Explorer read; a successful read's costs go into
/// `status`.
fn insights_condition(
    read: Result<PayerCosts, Error>,
    status: &mut PayerStatus,
    now: Timestamp,
) -> DesiredCondition {
    match read {
        Ok(costs) => {
            let message = format!(
                "Cost Explorer read at {now}: month to date {} {}, {} request(s) per read, about {} requests (USD {}) a month at this interval",
                costs.month_to_date,
                costs.currency,
                costs.requests_per_refresh,
                costs.requests_per_month,
                costs.estimated_monthly_cost_usd
            );
            status.costs = Some(costs);
            DesiredCondition::new(
                INSIGHTS,
                ConditionStatus::True,
                reasons::COSTS_READ,
                message,
            )
        }
        Err(err) => DesiredCondition::new(
            INSIGHTS,
            ConditionStatus::False,
            err.reason(),
            format!(
                "reading Cost Explorer failed (the last costs are kept; next try in {} minutes at the earliest): {err}",
                crate::payer::insights::RETRY_AFTER_FAILURE_SECS / 60
            ),
        ),
    }
}

/// Check the claim, observe and plan (apply). A plan observes and plans only: it neither
/// checks which Payer claims the account nor reads costs.
async fn verify(payer: &Payer, ctx: &ReconcileContext, run: &Run) -> Result<PayerPlan, Error> {
    // Tenancy (issue 17): refused first (NotGranted, no AWS call); a refused Payer claims no
    // account.
    tenancy::authorize(payer, ctx).await?;
    if run.applying()
        && let Some(err) = tenancy::claimed_elsewhere(
            payer,
            &tenancy::claimants(ctx, &payer.spec.account_id).await?,
        )
    {
        return Err(err);
    }
    observe(payer, ctx)
        .await
        .map(|observed| plan(&payer.spec, &observed))
}

/// Observe, plan, (nothing to) execute, and derive the status. Used by both front doors.
///
/// A Payer only reads AWS, so its outcome is built here rather than by `Run::finish`: its
/// conditions say "nothing in AWS needs to change", and `lastSuccessfulSync` and the cost
/// insights are its own. In plan mode `status` is the status an apply would write (the
/// report names the verified identity from it); front doors never store it.
pub async fn reconcile(
    payer: &Payer,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<PayerStatus> {
    let planned = verify(payer, ctx, &run).await;
    let current = payer.status.as_ref();
    let mut status = desired_status(current, payer.metadata.generation, &planned, run.time());
    if run.applying() && planned.is_ok() {
        insights_step(payer, ctx, &planned, &mut status, &run).await;
    }
    let events = if run.applying() {
        ready_event(current, &status).into_iter().collect()
    } else {
        Vec::new()
    };
    let (result, changes) = match planned {
        Ok(PayerPlan { verdict, changes }) => (Ok(verdict_of(&verdict)), changes),
        Err(err) => (Err(err), Vec::new()),
    };
    KindOutcome {
        result,
        status,
        changes,
        events,
    }
}

/// The engine's verdict for a planned one: verified is Ready, rejected waits for a change.
fn verdict_of(verdict: &PayerVerdict) -> Verdict {
    match verdict {
        PayerVerdict::Verified {
            organization_id,
            feature_set,
            accounts,
            ..
        } => Verdict::ready(
            reasons::VERIFIED,
            management_message(organization_id, feature_set, *accounts),
        ),
        PayerVerdict::Rejected { reason, message } => Verdict::blocked(reason, message.clone()),
    }
}

/// Deleting a Payer releases it: the operator stops managing the account and changes nothing
/// in AWS (no status is written; the kind has no AWS cleanup).
pub async fn cleanup(payer: &Payer, ctx: &ReconcileContext, _run: Run) -> KindOutcome<PayerStatus> {
    let key = object_key(&payer.namespace().unwrap_or_default(), &payer.name_any());
    ctx.connections.forget(&key);
    info!(payer = %payer.name_any(), namespace = ?payer.namespace(), "payer released; nothing in AWS is changed");
    let note =
        "Payer deleted: the operator stopped managing this account; nothing in AWS was changed";
    KindOutcome {
        result: Ok(Verdict::ready(reasons::RELEASED, note)),
        status: payer.status.clone().unwrap_or_default(),
        changes: Vec::new(),
        events: vec![EventNote {
            warning: false,
            reason: reasons::RELEASED.into(),
            note: note.into(),
        }],
    }
}

/// The status as the operator's field manager writes it: the closure log belongs to the
/// LinkedAccount reconciler (its own field manager).
pub fn owned_status(status: &PayerStatus) -> PayerStatus {
    let mut status = status.clone();
    status.closures.clear();
    status
}

/// The Payer's lines in the `plan`/`apply` report: the verified identity and organization,
/// the costs, and readiness as the stored conditions say. A payer that is not Ready is an
/// error (it cannot be used).
pub fn report(
    payer: &Payer,
    outcome: &KindOutcome<PayerStatus>,
    _planning: bool,
    r: &mut ObjectReport,
) {
    r.findings.clear();
    (r.ready, r.synced, r.error) = (false, false, false);
    (r.reason, r.message) = (String::new(), String::new());
    match &outcome.result {
        Ok(v) if v.ready => {
            (r.ready, r.synced, r.reason) = (true, true, v.reason.clone());
            if let Some(arn) = &outcome.status.caller_arn {
                r.findings.push(format!(
                    "identity {arn} is in account {}",
                    payer.spec.account_id
                ));
            }
            r.findings.push(v.message.clone());
        }
        Ok(v) => (r.synced, r.reason, r.message) = (true, v.reason.clone(), v.message.clone()),
        Err(e) => (r.reason, r.message) = (e.reason().into(), e.to_string()),
    }
    if let Some(status) = &payer.status {
        r.findings
            .extend(status.costs.iter().flat_map(cost_findings));
        r.ready = conditions::is_ready(&status.conditions);
        r.synced = conditions::find(&status.conditions, SYNCED)
            .is_some_and(|c| c.status == ConditionStatus::True);
        if let Some(ready) = conditions::find(&status.conditions, READY) {
            r.reason = ready.reason.clone();
            r.message = ready.message.clone();
        }
    }
    r.error = !r.ready || !r.synced;
}

/// The organization's costs as lines for the report: month over month, then by service.
fn cost_findings(c: &PayerCosts) -> Vec<String> {
    let trend = c
        .month_over_month_percent
        .as_deref()
        .map(|p| {
            if p.starts_with('-') {
                format!("{p}%")
            } else {
                format!("+{p}%")
            }
        })
        .unwrap_or_else(|| "no previous cost to compare".into());
    let mut lines = vec![format!(
        "cost {}: month to date {} {}, previous month {} ({trend} month over month)",
        c.month, c.month_to_date, c.currency, c.previous_month,
    )];
    lines.push(format!(
        "cost by month: {}",
        c.months
            .iter()
            .map(|m| format!("{} {}", m.month, m.total))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for s in &c.top_services {
        lines.push(format!(
            "cost by service: {} {} ({}%)",
            s.service, s.month_to_date, s.share_percent
        ));
    }
    lines.push(format!(
        "Cost Explorer: {} request(s) per read, about {} a month (USD {})",
        c.requests_per_refresh, c.requests_per_month, c.estimated_monthly_cost_usd
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(t: &str) -> Timestamp {
        t.parse().expect("RFC 3339")
    }

    fn spec(account: &str) -> PayerSpec {
        PayerSpec {
            account_id: account.into(),
            credentials: None,
            region: None,
            max_closures_per30_days: None,
            notifications: None,
            insights: None,
        }
    }

    fn observed(caller: &str, org_mgmt: Option<&str>, accounts: usize) -> PayerObservation {
        PayerObservation {
            identity: CallerIdentity {
                account: caller.into(),
                arn: format!("arn:aws:iam::{caller}:user/ops"),
            },
            organization: org_mgmt.map(|m| Organization {
                id: "o-abc1234567".into(),
                arn: "arn:aws:organizations::111111111111:organization/o-abc1234567".into(),
                feature_set: "ALL".into(),
                management_account_id: m.into(),
            }),
            accounts: Some(
                (0..accounts)
                    .map(|i| Account {
                        id: format!("{i:012}"),
                        email: format!("a{i}@example.com"),
                        name: format!("a{i}"),
                        state: crate::aws::organizations::AccountState::Active,
                        joined_method: "CREATED".into(),
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn one_account_is_claimed_by_the_oldest_payer_only() {
        let p = |ns: &str, name: &str, created: &str| -> Payer {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
                "spec": {"accountId": "111111111111"}
            }))
            .unwrap()
        };
        let all = vec![
            p("b", "second", "2026-11-24T11:00:00Z"),
            p("a", "first", "2026-11-24T10:00:00Z"),
        ];
        assert!(tenancy::claimed_elsewhere(&all[1], &all).is_none());
        let err = tenancy::claimed_elsewhere(&all[0], &all).expect("refused");
        assert_eq!(err.reason(), "AccountClaimed");
        assert!(err.to_string().contains("a/first"));
    }

    #[test]
    fn verified_when_caller_is_management_account() {
        let p = plan(
            &spec("111111111111"),
            &observed("111111111111", Some("111111111111"), 3),
        );
        assert!(p.changes.is_empty());
        assert_eq!(
            p.verdict,
            PayerVerdict::Verified {
                caller_arn: "arn:aws:iam::111111111111:user/ops".into(),
                organization_id: "o-abc1234567".into(),
                feature_set: "ALL".into(),
                accounts: 3
            }
        );
    }

    #[test]
    fn wrong_account_names_both_ids() {
        let p = plan(&spec("111111111111"), &observed("222222222222", None, 0));
        match p.verdict {
            PayerVerdict::Rejected { reason, message } => {
                assert_eq!(reason, "AccountMismatch");
                assert!(message.contains("222222222222") && message.contains("111111111111"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn member_account_is_not_a_payer() {
        let p = plan(
            &spec("111111111111"),
            &observed("111111111111", Some("999999999999"), 0),
        );
        assert!(
            matches!(p.verdict, PayerVerdict::Rejected { ref reason, .. } if reason == "NotManagementAccount")
        );
    }

    #[test]
    fn no_organization() {
        let p = plan(&spec("111111111111"), &observed("111111111111", None, 0));
        assert!(
            matches!(p.verdict, PayerVerdict::Rejected { ref reason, .. } if reason == "NoOrganization")
        );
    }

    fn verified(accounts: usize) -> Result<PayerPlan, Error> {
        Ok(plan(
            &spec("111111111111"),
            &observed("111111111111", Some("111111111111"), accounts),
        ))
    }

    #[test]
    fn status_for_verified_payer() {
        let s = desired_status(None, Some(4), &verified(3), ts("2026-11-24T10:00:00Z"));
        assert_eq!(s.member_accounts, Some(3));
        assert_eq!(s.organization_id.as_deref(), Some("o-abc1234567"));
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(
            s.last_successful_sync.as_deref(),
            Some("2026-11-24T10:00:00Z")
        );
        let ready = conditions::find(&s.conditions, READY).unwrap();
        assert_eq!(
            (
                ready.status,
                ready.reason.as_str(),
                ready.observed_generation
            ),
            (ConditionStatus::True, "Verified", Some(4))
        );
        assert!(conditions::find(&s.conditions, SYNCED).is_some());
    }

    #[test]
    fn steady_state_does_not_rewrite_status_until_refresh_is_due() {
        let first = desired_status(None, Some(1), &verified(3), ts("2026-11-24T10:00:00Z"));
        let again = desired_status(
            Some(&first),
            Some(1),
            &verified(3),
            ts("2026-11-24T10:05:00Z"),
        );
        assert_eq!(first, again, "nothing changed, so nothing to patch");
        let later = desired_status(
            Some(&first),
            Some(1),
            &verified(3),
            ts("2026-11-24T11:00:01Z"),
        );
        assert_ne!(first, later);
        assert_eq!(
            later.last_successful_sync.as_deref(),
            Some("2026-11-24T11:00:01Z")
        );
        assert!(
            !status_changed(Some(&first), &later),
            "only a timestamp moved"
        );
        let grown = desired_status(
            Some(&first),
            Some(1),
            &verified(4),
            ts("2026-11-24T10:06:00Z"),
        );
        assert_eq!(
            grown.last_successful_sync.as_deref(),
            Some("2026-11-24T10:06:00Z")
        );
        assert!(status_changed(Some(&first), &grown));
    }

    #[test]
    fn terminal_error_sets_ready_false_with_its_reason() {
        let err = Err(Error::terminal(
            "SecretNotFound",
            "Secret ns/x does not exist",
        ));
        let s = desired_status(None, Some(1), &err, ts("2026-11-24T10:00:00Z"));
        let ready = conditions::find(&s.conditions, READY).unwrap();
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::False, "SecretNotFound")
        );
        let synced = conditions::find(&s.conditions, SYNCED).unwrap();
        assert_eq!(synced.status, ConditionStatus::False);
        assert!(s.last_successful_sync.is_none());
    }

    #[test]
    fn retryable_error_keeps_ready_and_marks_unsynced() {
        let ok = desired_status(None, Some(1), &verified(2), ts("2026-11-24T10:00:00Z"));
        let err = Err(Error::retryable(
            "AwsThrottled",
            "organizations:ListAccounts was throttled",
        ));
        let s = desired_status(Some(&ok), Some(1), &err, ts("2026-11-24T10:01:00Z"));
        assert!(conditions::is_ready(&s.conditions));
        let synced = conditions::find(&s.conditions, SYNCED).unwrap();
        assert_eq!(
            (synced.status, synced.reason.as_str()),
            (ConditionStatus::False, "AwsThrottled")
        );
        assert_eq!(s.member_accounts, Some(2));
    }

    #[test]
    fn events_only_on_ready_changes() {
        let ok = desired_status(None, Some(1), &verified(2), ts("2026-11-24T10:00:00Z"));
        let ev = ready_event(None, &ok).unwrap();
        assert!(!ev.warning);
        assert_eq!(ev.reason, "Verified");
        assert_eq!(ready_event(Some(&ok), &ok), None);
        let bad = desired_status(
            Some(&ok),
            Some(2),
            &Err(Error::terminal("AccessDenied", "denied")),
            ts("2026-11-24T10:01:00Z"),
        );
        let ev = ready_event(Some(&ok), &bad).unwrap();
        assert!(ev.warning);
        assert_eq!(ev.reason, "AccessDenied");
    }
}
