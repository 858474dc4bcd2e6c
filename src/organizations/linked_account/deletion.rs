//! Deletion of a LinkedAccount, per `spec.deletionPolicy`: release it (Retain), take the
//! account out of the organization (Remove), or close it (Close) within the payer's closure
//! budget. The management account is never removed or closed, an account is never closed
//! twice, and the closure is recorded in the payer's ledger before CloseAccount is called.
//!
//! Observe (which account, from the status, the spec's natural keys or the CreateAccount
//! request) -> a pure [`plan`] -> execute (cancel, remove or close through
//! [`PayerContext::write`]).

use std::time::Duration;

use k8s_openapi::jiff::{Timestamp, ToSpan};
use kube::ResourceExt;

use crate::api::linked_account::AccountDeletionPolicy;
use crate::api::payer::ClosureRecord;
use crate::api::{LinkedAccount, LinkedAccountStatus};
use crate::aws::organizations::{Account, AccountState, Handshake};
use crate::error::Error;
use crate::payer::context::PayerContext;
use crate::payer::snapshot::OrgSnapshot;
use crate::reconcile::reasons::{
    ACCOUNT_CLOSED, ACCOUNT_SUSPENDED, CLOSE_BUDGET_EXHAUSTED, CLOSE_QUOTA_EXCEEDED, CLOSED,
    CLOSING, CREATING, MANAGEMENT_ACCOUNT_PROTECTED, RELEASED, REMOVE_REFUSED, REMOVED,
};
use crate::reconcile::run::Run;
use crate::reconcile::{ChangeAction, ReconcileContext, Verdict, change};

use super::located::CREATE_POLL;

/// How often a deletion waiting on an account AWS suspended looks again.
const SUSPENDED_RECHECK: Duration = Duration::from_secs(900);
/// How often a closure waits for AWS to show PENDING_CLOSURE.
const CLOSING_POLL: Duration = Duration::from_secs(5);
/// How long a closure waits when the budget or AWS's quota is used up.
const CLOSE_QUOTA_RETRY: Duration = Duration::from_secs(3600);
/// Rolling window of the closure budget.
const CLOSE_WINDOW_SECS: i64 = 30 * 24 * 3600;

/// What the way out found in the organization.
#[derive(Clone, Debug, PartialEq)]
pub enum Departure {
    /// The account (none: it is not in the organization).
    Account(Option<Account>),
    /// The account never joined, and the invitation to it is still open.
    OpenInvitation(Handshake),
}

/// One step of a deletion.
#[derive(Clone, Debug, PartialEq)]
pub enum DeletionStep {
    /// Nothing to do in AWS.
    Release(Verdict),
    /// Withdraw the open invitation `id`.
    CancelInvitation(String),
    /// RemoveAccountFromOrganization.
    Remove(Account),
    /// CloseAccount, within the closure budget.
    Close(Account),
}

/// Deletion of a LinkedAccount (see the module docs).
pub(super) async fn delete(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut LinkedAccountStatus,
) -> Result<Verdict, Error> {
    let policy = obj.spec.deletion_policy;
    if policy == AccountDeletionPolicy::Retain {
        return Ok(Verdict::ready(
            RELEASED,
            "deletionPolicy Retain: the account stays in the organization, unmanaged",
        ));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let mut pc = match PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await {
        Ok(pc) => pc,
        Err(Error::Waiting { .. }) => {
            return Ok(Verdict::ready(
                RELEASED,
                "the Payer is gone; nothing in AWS was changed",
            ));
        }
        Err(e) => return Err(e),
    };
    let departure = observe(obj, ctx, &mut pc, status).await?;
    let management = pc.snapshot.organization.management_account_id.clone();
    match plan(policy, &departure, &management)? {
        DeletionStep::Release(v) => Ok(v),
        DeletionStep::CancelInvitation(id) => cancel_invitation(ctx, &mut pc, run, &id).await,
        DeletionStep::Remove(account) => remove(ctx, &mut pc, run, &account, status).await,
        DeletionStep::Close(account) => close(obj, ctx, &mut pc, run, &account, status).await,
    }
}

/// Which account leaves: the status's, else the one the spec names (never created or invited
/// on the way out). A creation still in progress is waited for.
async fn observe(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    status: &LinkedAccountStatus,
) -> Result<Departure, Error> {
    let snapshot = pc.snapshot.clone();
    if let Some(id) = &status.account_id {
        return Ok(Departure::Account(snapshot.account(id).cloned()));
    }
    let account = match (&obj.spec.create, &obj.spec.invite, &obj.spec.adopt) {
        (Some(c), _, _) => match (
            snapshot.account_by_email(&c.email),
            &status.create_request_id,
        ) {
            (None, Some(request_id)) => {
                created(ctx, pc, request_id, obj.spec.deletion_policy).await?
            }
            (found, _) => found.cloned(),
        },
        (_, Some(i), _) => {
            if let Some(h) = snapshot
                .latest_invitation(&i.account_id)
                .filter(|h| h.is_open())
            {
                return Ok(Departure::OpenInvitation(h.clone()));
            }
            snapshot.account(&i.account_id).cloned()
        }
        (_, _, Some(a)) => match (&a.account_id, &a.email) {
            (Some(id), _) => snapshot.account(id).cloned(),
            (None, Some(e)) => snapshot.account_by_email(e).cloned(),
            _ => None,
        },
        _ => None,
    };
    Ok(Departure::Account(account))
}

/// The account CreateAccount request `request_id` made, if it succeeded; waits while it is in
/// progress.
async fn created(
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    request_id: &str,
    policy: AccountDeletionPolicy,
) -> Result<Option<Account>, Error> {
    match pc
        .conn
        .organizations
        .describe_create_account_status(request_id)
        .await
    {
        Ok(s) if s.state == "IN_PROGRESS" => Err(Error::waiting(
            CREATING,
            format!(
                "waiting for CreateAccount request {request_id} to finish before the account can be {}",
                verb(policy)
            ),
            CREATE_POLL,
        )),
        Ok(s) if s.state == "SUCCEEDED" => match s.account_id.as_deref() {
            Some(id) => pc.account_joined(ctx, id).await,
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

fn verb(policy: AccountDeletionPolicy) -> &'static str {
    match policy {
        AccountDeletionPolicy::Close => "closed",
        AccountDeletionPolicy::Remove => "removed",
        AccountDeletionPolicy::Retain => "released",
    }
}

/// What to do on the way out under `policy` (not Retain, handled before anything is read).
/// Pure.
pub fn plan(
    policy: AccountDeletionPolicy,
    departure: &Departure,
    management_account_id: &str,
) -> Result<DeletionStep, Error> {
    let account = match departure {
        Departure::OpenInvitation(h) => return Ok(DeletionStep::CancelInvitation(h.id.clone())),
        Departure::Account(None) => {
            return Ok(DeletionStep::Release(Verdict::ready(
                RELEASED,
                "the account is not in the organization; nothing to do",
            )));
        }
        Departure::Account(Some(a)) => a,
    };
    if account.id == management_account_id {
        return Ok(DeletionStep::Release(Verdict::ready(
            MANAGEMENT_ACCOUNT_PROTECTED,
            format!(
                "account {} is the management account: it is never removed or closed; released without changes",
                account.id
            ),
        )));
    }
    match policy {
        AccountDeletionPolicy::Retain => Ok(DeletionStep::Release(Verdict::ready(
            RELEASED,
            "deletionPolicy Retain: the account stays in the organization, unmanaged",
        ))),
        // RemoveAccountFromOrganization needs an account that can stand alone; a closed one
        // cannot, and leaves the organization by itself 90 days after its closure
        // (CloseAccount doc: "After the permanent termination of the account after the
        // 90-day waiting period ... departureMethod:CLEANED"). So it is not called.
        AccountDeletionPolicy::Remove if account.state.is_closed_or_closing() => {
            Err(Error::terminal(
                ACCOUNT_CLOSED,
                format!(
                    "account {} is {}: it is closed or being closed, so deletionPolicy Remove cannot take it out of the organization (RemoveAccountFromOrganization is not called; AWS drops a closed account from the organization 90 days after its closure). Set deletionPolicy Retain or Close to release this object",
                    account.id, account.state
                ),
            ))
        }
        AccountDeletionPolicy::Remove => Ok(DeletionStep::Remove(account.clone())),
        AccountDeletionPolicy::Close => Ok(DeletionStep::Close(account.clone())),
    }
}

/// The account never joined: withdraw the invitation, nothing else.
async fn cancel_invitation(
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    id: &str,
) -> Result<Verdict, Error> {
    pc.write(
        ctx,
        run,
        change(ChangeAction::Delete, format!("invitation {id}"), "cancel"),
        |c| async move { c.organizations.cancel_handshake(id).await },
        |_| {
            let id = id.to_string();
            move |s: &mut OrgSnapshot| s.set_invitation_state(&id, "CANCELED")
        },
    )
    .await?;
    Ok(Verdict::ready(
        RELEASED,
        format!("the open invitation {id} was canceled"),
    ))
}

/// RemoveAccountFromOrganization (an account already gone counts as removed).
async fn remove(
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    account: &Account,
    status: &mut LinkedAccountStatus,
) -> Result<Verdict, Error> {
    let id = &account.id;
    let removed = pc
        .write(
            ctx,
            run,
            change(
                ChangeAction::Delete,
                format!("account {id}"),
                "RemoveAccountFromOrganization",
            ),
            |c| async move { c.organizations.remove_account(id).await },
            |_| {
                let id = id.clone();
                move |s: &mut OrgSnapshot| s.remove_account(&id)
            },
        )
        .await;
    match removed {
        Err(e) if e.aws_code() == Some("ConstraintViolationException") => {
            return Err(Error::terminal(
                REMOVE_REFUSED,
                format!(
                    "AWS refused to remove account {id} ({}): it must stand alone first (payment method, phone, support plan; new accounts wait several days). Fix that, or set deletionPolicy Retain",
                    e.aws_reason().unwrap_or("constraint")
                ),
            ));
        }
        other => other?,
    };
    status.deletion_requested_at = Some(run.timestamp().to_string());
    Ok(Verdict::ready(
        REMOVED,
        format!("account {id} left the organization"),
    ))
}

/// Closures of the last 30 days, as of `now`. Unreadable times count as old. Pure.
pub fn recent_closures(records: &[ClosureRecord], now: Timestamp) -> Vec<&ClosureRecord> {
    records
        .iter()
        .filter(|r| {
            r.requested_at
                .parse::<Timestamp>()
                .ok()
                .and_then(|t| t.checked_add(CLOSE_WINDOW_SECS.seconds()).ok())
                .is_some_and(|limit| limit >= now)
        })
        .collect()
}

/// What stops CloseAccount before the budget is looked at: a closed account is done, a
/// suspended one is waited on, and one CloseAccount was already called for (`requested`) is
/// never closed twice. Pure.
pub fn close_precheck(account: &Account, requested: bool) -> Result<Option<Verdict>, Error> {
    if account.state.is_closed_or_closing() {
        return Ok(Some(Verdict::ready(
            CLOSED,
            format!("account {} is {}", account.id, account.state),
        )));
    }
    if account.state == AccountState::Suspended {
        // Not closed: AWS suspended it. The CloseAccount doc speaks only of member accounts and
        // of PENDING_CLOSURE then the (retired) status SUSPENDED after a closure; it does not
        // say a suspended account can be closed, so it is not tried.
        return Err(Error::waiting(
            ACCOUNT_SUSPENDED,
            format!(
                "account {} is SUSPENDED by AWS (not closed): CloseAccount is not called on it. Contact AWS Support about the suspension; once it is ACTIVE again it is closed. Or set deletionPolicy Retain to release this object",
                account.id
            ),
            SUSPENDED_RECHECK,
        ));
    }
    if requested {
        // CloseAccount was called already: never twice. Wait for AWS to show it.
        return Err(closing(&account.id));
    }
    Ok(None)
}

fn closing(account_id: &str) -> Error {
    Error::waiting(
        CLOSING,
        format!("CloseAccount was called for {account_id}; waiting for PENDING_CLOSURE"),
        CLOSING_POLL,
    )
}

/// Whether the closure of `account_id` fits the payer's budget (`budget` closures in 30 days;
/// `recent` as [`recent_closures`] returns them): `Ok(true)` when it must be recorded in the
/// ledger first, `Ok(false)` when it is recorded already. Pure.
pub fn closure_budget(
    recent: &[&ClosureRecord],
    account_id: &str,
    budget: usize,
    payer: &str,
    now: Timestamp,
) -> Result<bool, Error> {
    if recent.iter().any(|r| r.account_id == account_id) {
        return Ok(false);
    }
    if recent.len() >= budget {
        let next = recent
            .iter()
            .map(|r| r.requested_at.clone())
            .min()
            .unwrap_or_else(|| now.to_string());
        return Err(Error::waiting(
            CLOSE_BUDGET_EXHAUSTED,
            format!(
                "{} of {budget} account closures allowed in 30 days for Payer {payer} are used (the oldest, {next}, leaves the window 30 days later); raise spec.maxClosuresPer30Days on the Payer or wait",
                recent.len(),
            ),
            CLOSE_QUOTA_RETRY,
        ));
    }
    Ok(true)
}

/// Close the account: within the budget, one closure per payer at a time, recorded in the
/// ledger before CloseAccount, and never twice (`status.deletionRequestedAt`).
async fn close(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    account: &Account,
    status: &mut LinkedAccountStatus,
) -> Result<Verdict, Error> {
    if let Some(done) = close_precheck(account, status.deletion_requested_at.is_some())? {
        return Ok(done);
    }
    let gate = ctx.locks.get(&format!("{}#close", pc.key));
    let _one_at_a_time = gate.lock().await;
    let records = ctx.ledger.closures(&pc.payer).await?;
    let recent = recent_closures(&records, run.time());
    let budget = pc.payer.max_closures_per_30_days() as usize;
    if closure_budget(&recent, &account.id, budget, &pc.key, run.time())? {
        let record = ClosureRecord {
            account_id: account.id.clone(),
            requested_at: run.timestamp().to_string(),
            linked_account: obj.name_any(),
        };
        ctx.ledger.record(&pc.payer, record).await?;
    }
    if let Some(refused) = close_account(run, pc, &account.id).await? {
        return Ok(refused);
    }
    status.deletion_requested_at = Some(run.timestamp().to_string());
    pc.refresh(ctx).await?;
    match pc.snapshot.account(&account.id) {
        Some(a) if !a.state.is_closed_or_closing() => Err(closing(&account.id)),
        Some(a) => Ok(Verdict::ready(
            CLOSED,
            format!("account {} is {}", a.id, a.state),
        )),
        None => Ok(Verdict::ready(
            CLOSED,
            format!("account {} is closed", account.id),
        )),
    }
}

/// CloseAccount (an account closed already counts as closed). `Some` when AWS refuses to
/// close the management account.
async fn close_account(
    run: &mut Run,
    pc: &PayerContext,
    account_id: &str,
) -> Result<Option<Verdict>, Error> {
    let orgs = pc.conn.organizations.clone();
    let closed = run
        .write(
            change(
                ChangeAction::Delete,
                format!("account {account_id}"),
                "CloseAccount",
            ),
            || async move { orgs.close_account(account_id).await },
        )
        .await;
    match closed {
        Err(e)
            if matches!(
                e.aws_reason(),
                Some("CLOSE_ACCOUNT_QUOTA_EXCEEDED" | "CLOSE_ACCOUNT_REQUESTS_LIMIT_EXCEEDED")
            ) =>
        {
            Err(Error::waiting(
                CLOSE_QUOTA_EXCEEDED,
                format!(
                    "AWS refused to close more accounts now ({}); trying again in an hour",
                    e.aws_reason().unwrap_or_default()
                ),
                CLOSE_QUOTA_RETRY,
            ))
        }
        Err(e) if e.aws_reason() == Some("CANNOT_CLOSE_MANAGEMENT_ACCOUNT") => {
            Ok(Some(Verdict::ready(
                MANAGEMENT_ACCOUNT_PROTECTED,
                "AWS refused to close the management account; released without changes",
            )))
        }
        other => other.map(|_| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, state: &str) -> Account {
        Account {
            id: id.into(),
            email: "a@example.com".into(),
            name: "a".into(),
            state: AccountState::parse(state),
            joined_method: "CREATED".into(),
        }
    }

    #[test]
    fn closure_budget_counts_a_rolling_30_days() {
        let r = |at: &str| ClosureRecord {
            account_id: "1".into(),
            requested_at: at.into(),
            linked_account: "x".into(),
        };
        let records = vec![
            r("2026-10-01T00:00:00Z"),
            r("2026-11-01T00:00:00Z"),
            r("2026-11-20T00:00:00Z"),
        ];
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        assert_eq!(
            recent_closures(&records, at("2026-11-24T00:00:00Z")).len(),
            2
        );
        assert_eq!(
            recent_closures(&records, at("2026-12-25T00:00:00Z")).len(),
            0
        );
    }

    #[test]
    fn the_management_account_is_never_removed_or_closed_and_a_closed_one_never_removed() {
        let mgmt = Departure::Account(Some(account("111111111111", "ACTIVE")));
        for policy in [AccountDeletionPolicy::Remove, AccountDeletionPolicy::Close] {
            let DeletionStep::Release(v) = plan(policy, &mgmt, "111111111111").unwrap() else {
                panic!("{policy:?}")
            };
            assert_eq!(v.reason, MANAGEMENT_ACCOUNT_PROTECTED);
        }
        let closed = Departure::Account(Some(account("222222222222", "PENDING_CLOSURE")));
        let err = plan(AccountDeletionPolicy::Remove, &closed, "111111111111").unwrap_err();
        assert_eq!(err.reason(), ACCOUNT_CLOSED);
        assert!(matches!(
            plan(AccountDeletionPolicy::Close, &closed, "111111111111"),
            Ok(DeletionStep::Close(_))
        ));
        assert_eq!(
            close_precheck(&account("2", "CLOSED"), false)
                .unwrap()
                .unwrap()
                .reason,
            CLOSED
        );
        assert_eq!(
            close_precheck(&account("2", "ACTIVE"), true)
                .unwrap_err()
                .reason(),
            CLOSING
        );
        assert!(
            close_precheck(&account("2", "ACTIVE"), false)
                .unwrap()
                .is_none()
        );
    }
}
