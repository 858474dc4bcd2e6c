//! LinkedAccount: create (never twice), invite (follow the handshake), or adopt an account;
//! then converge its OU, tags and SCPs; on deletion retain, remove or close it (within the
//! payer's closure budget, never the management account, never twice).
//!
//! This module owns the two entry points and the steps every LinkedAccount shares once its
//! account is found: observe (parents, policies, tags when due) -> a pure [`plan`]
//! -> execute (through [`PayerContext::write`] and [`Run::write`]) -> status. Its parts:
//! - [`create`]: the account of `spec.create` (natural keys, the payer's creation queue);
//! - [`invite`]: the invitation handshake of `spec.invite`;
//! - [`deletion`]: what `spec.deletionPolicy` does on the way out;
//! - [`notify`]: the at-most-once notices when an account joined or was closed.

pub mod create;
pub mod deletion;
pub mod invite;
pub mod located;
pub mod notify;

use crate::reconcile::catalog::Guarded;
use crate::reconcile::trigger::{Trigger, WakeUp, WakeUps};
use std::collections::BTreeSet;

use kube::ResourceExt;

use crate::api::common::{OWNER_TAG, owner_value, with_owner};
use crate::api::notifications::{NOTIFIED_TAG, NotificationEvent};
use crate::api::{LinkedAccount, LinkedAccountStatus};
use crate::aws::organizations::{Account, AccountState, Tags};
use crate::error::Error;
use crate::organizations::organizational_unit::resolve_parent;
use crate::organizations::{
    AttachmentPlan, attachment_plan, execute_attachments, managed_policy_names, resolve_policies,
};
use crate::payer::context::PayerContext;
use crate::payer::snapshot::OrgSnapshot;
use crate::reconcile::reasons::{
    ACCOUNT_CLOSED, ACCOUNT_NOT_ACTIVE, ACCOUNT_NOT_IN_ORGANIZATION, ACCOUNT_PENDING_ACTIVATION,
    ACCOUNT_SUSPENDED, ACTIVE, CLOSED, INVALID_SPEC, MANAGEMENT_ACCOUNT_PROTECTED,
    NOT_IN_ORGANIZATION, OWNED_ELSEWHERE,
};
use crate::reconcile::run::Run;
use crate::reconcile::tags::{TagRefresh, tag_changes, tag_check_due};
use crate::reconcile::{ChangeAction, KindOutcome, ReconcileContext, Verdict, change};

pub use deletion::recent_closures;
pub use invite::{InvitationStep, invitation_step};
use located::{CREATE_POLL, Located};
pub use notify::NOTIFIED;

/// Reconcile a LinkedAccount.
pub async fn reconcile(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    mut run: Run,
) -> KindOutcome<LinkedAccountStatus> {
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let (mut result, seen_tags) = match converge(obj, ctx, &mut run, &mut status).await {
        Ok((verdict, tags)) => (Ok(verdict), tags),
        Err(e) => (Err(e), None),
    };
    // The account joined: tell the listed recipients (never blocks Ready; only when the run
    // applies: `send` does nothing in plan mode or under Observe).
    let mut notified = None;
    if matches!(&result, Ok(v) if v.ready)
        && (obj.spec.create.is_some() || obj.spec.invite.is_some())
    {
        let event = NotificationEvent::Joined;
        let tags = seen_tags.as_ref();
        notified = notify::send(obj, ctx, &mut run, event, &mut status, tags).await;
    }
    if let (true, Ok(v)) = (notify::retry(&notified), &mut result) {
        let soon = notify::NOTIFY_RETRY;
        v.requeue = Some(v.requeue.map_or(soon, |r| r.min(soon)));
    }
    let extra: Vec<_> = notify::condition(&notified).into_iter().collect();
    account_cost(obj, ctx, &mut status);
    run.finish(&previous, status, result, &extra, obj.metadata.generation)
}

/// Deletion of a LinkedAccount, per `spec.deletionPolicy` (see [`deletion`]).
pub async fn cleanup(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    mut run: Run,
) -> KindOutcome<LinkedAccountStatus> {
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut result = deletion::delete(obj, ctx, &mut run, &mut status).await;
    let mut notified = None;
    if matches!(&result, Ok(v) if v.reason == CLOSED) {
        let event = NotificationEvent::Closed;
        notified = notify::send(obj, ctx, &mut run, event, &mut status, None).await;
        let requested = status.deletion_requested_at.as_deref();
        match notify::closure_notice(&notified, requested, run.time()) {
            Some(notify::ClosureNotice::Wait(e)) => result = Err(e),
            Some(notify::ClosureNotice::GiveUp(reason, note)) => run.event(true, reason, note),
            None => {}
        }
    }
    let extra: Vec<_> = notify::condition(&notified).into_iter().collect();
    run.finish_cleanup(
        &previous,
        status,
        result,
        &extra,
        obj.metadata.generation,
        |reason| reason == MANAGEMENT_ACCOUNT_PROTECTED,
    )
}

/// The account's cost from the payer's last Cost Explorer read (kept as it was when there
/// is no newer read; dropped when the payer's insights are off).
fn account_cost(obj: &LinkedAccount, ctx: &ReconcileContext, status: &mut LinkedAccountStatus) {
    let namespace = obj.namespace().unwrap_or_default();
    let payer = ctx
        .catalog
        .get::<crate::api::Payer>(&namespace, &obj.spec.payer_ref.name);
    let enabled = payer
        .as_ref()
        .and_then(|p| p.spec.insights.as_ref())
        .is_some_and(|i| i.enabled);
    if !enabled {
        if payer.is_some() {
            status.cost = None;
        }
        return;
    }
    let key = crate::reconcile::object_key(&namespace, &obj.spec.payer_ref.name);
    if let (Some(read), Some(id)) = (
        ctx.shared::<crate::payer::insights::InsightsStore>()
            .read(&key),
        status.account_id.as_deref(),
    ) && status
        .cost
        .as_ref()
        .is_none_or(|c| c.as_of != read.refreshed_at)
    {
        status.cost = Some(read.summary.account(id, &read.refreshed_at));
    }
}

/// Find (or make progress towards) the account, then converge its place, tags and SCPs.
/// Also returns the account's tags when they were read (the notification reads its mark there).
async fn converge(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut LinkedAccountStatus,
) -> Result<(Verdict, Option<Tags>), Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let mut pc = PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await?;
    let account = match locate(obj, ctx, &mut pc, run, status).await? {
        Located::Account(a) => a,
        Located::Pending(v) => return Ok((v, None)),
    };
    let account = activated(ctx, &mut pc, run, account).await?;
    record_account(status, &account);
    if let Some(verdict) = not_active(&account) {
        return Ok((verdict, None));
    }
    let mut observed = observe(obj, ctx, &pc, run, status, account).await?;
    let owner = owner_value(&namespace, "LinkedAccount", &obj.name_any());
    let desired_tags = with_owner(&obj.spec.tags, &owner);
    let mut plan = plan(&observed, &desired_tags, &owner, &pc.snapshot)?;
    if observed.tags.is_none() && plan.writes() {
        // The tags were not due (or the audit is off): the ownership mark is still checked
        // before anything is written to the account.
        observed.tags = Some(
            pc.conn
                .organizations
                .list_tags(&observed.account.id)
                .await?,
        );
        plan = self::plan(&observed, &desired_tags, &owner, &pc.snapshot)?;
    }
    execute(ctx, &mut pc, run, &observed, &plan, status).await?;
    let verdict = Verdict::ready(
        ACTIVE,
        format!(
            "account {} ({}) is ACTIVE in {}",
            observed.account.id, observed.account.email, observed.desired_parent
        ),
    );
    Ok((verdict, observed.tags))
}

/// Find the account, or make progress towards it (create, invite).
async fn locate(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    status: &mut LinkedAccountStatus,
) -> Result<Located, Error> {
    if let Some(id) = &status.account_id {
        return match pc.snapshot.account(id) {
            Some(a) => Ok(Located::Account(a.clone())),
            None => Err(Error::terminal(
                ACCOUNT_NOT_IN_ORGANIZATION,
                format!(
                    "account {id} is no longer in organization {}",
                    pc.snapshot.organization.id
                ),
            )),
        };
    }
    if let Some(c) = &obj.spec.create {
        return create::locate(obj, c, ctx, pc, run, status).await;
    }
    if let Some(i) = &obj.spec.invite {
        return invite::locate(obj, i, ctx, pc, run, status).await;
    }
    if let Some(adopt) = &obj.spec.adopt {
        let found = match (&adopt.account_id, &adopt.email) {
            (Some(id), _) => pc.snapshot.account(id),
            (None, Some(email)) => pc.snapshot.account_by_email(email),
            (None, None) => None,
        };
        return match found {
            Some(a) => Ok(Located::Account(a.clone())),
            None => Err(Error::terminal(
                NOT_IN_ORGANIZATION,
                format!(
                    "no account {} in organization {}; use spec.invite for an account outside it",
                    adopt
                        .account_id
                        .clone()
                        .or(adopt.email.clone())
                        .unwrap_or_default(),
                    pc.snapshot.organization.id
                ),
            )),
        };
    }
    Err(Error::terminal(
        INVALID_SPEC,
        "set exactly one of spec.create, spec.invite and spec.adopt",
    ))
}

/// An account created a moment ago is still PENDING_ACTIVATION: only this account is read
/// again (not when only planning).
async fn activated(
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &Run,
    account: Account,
) -> Result<Account, Error> {
    if account.state != AccountState::PendingActivation || !run.applying() {
        return Ok(account);
    }
    match pc.conn.organizations.describe_account(&account.id).await? {
        Some(fresh) => {
            let seen = fresh.clone();
            pc.record(ctx, move |s| s.add_account(&seen));
            Ok(fresh)
        }
        None => Ok(account),
    }
}

/// What stops an account that is not ACTIVE from being managed (its `State`; AWS no longer
/// sends `Status`). Pure.
pub fn not_active(account: &Account) -> Option<Verdict> {
    match &account.state {
        AccountState::Active => None,
        AccountState::PendingActivation => Some(Verdict::progressing(
            ACCOUNT_PENDING_ACTIVATION,
            format!(
                "account {} is PENDING_ACTIVATION: AWS is still activating it; it is managed once it is ACTIVE",
                account.id
            ),
            CREATE_POLL,
        )),
        AccountState::Suspended => Some(Verdict::blocked(
            ACCOUNT_SUSPENDED,
            format!(
                "account {} is SUSPENDED: AWS restricted access to it (this is not a closure); contact AWS Support to learn why and to lift it. Nothing is changed on it meanwhile",
                account.id
            ),
        )),
        state if state.is_closed_or_closing() => Some(Verdict::blocked(
            ACCOUNT_CLOSED,
            format!(
                "account {} is {state}: it is closed or being closed, and nothing is changed on it (only AWS Support can reopen it, within 90 days)",
                account.id
            ),
        )),
        state => Some(Verdict::blocked(
            ACCOUNT_NOT_ACTIVE,
            format!("account {} is {state}, not ACTIVE", account.id),
        )),
    }
}

fn record_account(status: &mut LinkedAccountStatus, account: &Account) {
    status.account_id = Some(account.id.clone());
    status.email = Some(account.email.clone());
    status.name = Some(account.name.clone());
    status.state = Some(account.state.as_str().to_string()).filter(|s| !s.is_empty());
    if !account.joined_method.is_empty() {
        status.joined_method = Some(account.joined_method.clone());
    }
    status.create_request_id = None;
}

/// What AWS holds for an ACTIVE account this object manages, and what the spec asks of it in
/// the organization's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountObservation {
    pub account: Account,
    /// Its parent (root or OU id), if the snapshot knows it.
    pub current_parent: Option<String>,
    /// The parent the spec asks for.
    pub desired_parent: String,
    /// (AWS name, policy id) of the SCPs the spec asks for.
    pub desired_policies: Vec<(String, String)>,
    /// AWS names of the SCPs the operator manages for this payer.
    pub managed_policies: BTreeSet<String>,
    /// Its tags, when they were due for a comparison and read.
    pub tags: Option<Tags>,
}

/// Read what the plan needs: the spec's parent and policies resolved against the snapshot and
/// the catalog, and the account's tags when they are due for a comparison (one call).
async fn observe(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    pc: &PayerContext,
    run: &Run,
    status: &LinkedAccountStatus,
    account: Account,
) -> Result<AccountObservation, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let desired_parent = match (&obj.spec.parent_ref, &obj.spec.parent_id) {
        (Some(r), _) => resolve_parent(&namespace, Some(r), &pc.snapshot, ctx)?,
        (None, Some(id)) if pc.snapshot.is_parent(id) => id.clone(),
        (None, Some(id)) => {
            return Err(Error::terminal(
                INVALID_SPEC,
                format!(
                    "spec.parentId {id} is neither the root nor an OU of organization {}",
                    pc.snapshot.organization.id
                ),
            ));
        }
        (None, None) => pc.snapshot.root.id.clone(),
    };
    let policies = &obj.spec.service_control_policies;
    let desired_policies = resolve_policies(&namespace, policies, &pc.snapshot, ctx)?;
    let previously = &status.attached_policies;
    let managed_policies = managed_policy_names(&namespace, &obj.spec.payer_ref, previously, ctx);
    let spec_changed = status.observed_generation != obj.metadata.generation;
    let checked_at = status.tags_checked_at.as_deref();
    let uid = obj.uid().unwrap_or_default();
    let checked_at = checked_at.and_then(|t| t.parse().ok());
    let refresh = ctx.shared::<TagRefresh>();
    let tags = if refresh.audit(tag_check_due(spec_changed, checked_at, run.time(), &uid)) {
        Some(pc.conn.organizations.list_tags(&account.id).await?)
    } else {
        None
    };
    Ok(AccountObservation {
        current_parent: pc.snapshot.parent_of.get(&account.id).cloned(),
        account,
        desired_parent,
        desired_policies,
        managed_policies,
        tags,
    })
}

/// Tags to set and tag keys to remove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagPlan {
    pub set: Tags,
    pub remove: Vec<String>,
}

/// What to change on an ACTIVE account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountPlan {
    /// Move it out of this parent (into the desired one).
    pub move_from: Option<String>,
    /// Converge its tags (only when they were read).
    pub tags: Option<TagPlan>,
    pub attachments: AttachmentPlan,
}

impl AccountPlan {
    /// Whether carrying the plan out writes to the account (moves it, tags it, attaches or
    /// detaches SCPs).
    pub fn writes(&self) -> bool {
        self.move_from.is_some()
            || self
                .tags
                .as_ref()
                .is_some_and(|t| !t.set.is_empty() || !t.remove.is_empty())
            || !self.attachments.attach.is_empty()
            || !self.attachments.detach.is_empty()
    }
}

/// What to change on the account: its parent, its tags (`desired_tags` carry the owner tag
/// `owner`; the record of notifications sent stays as it is) and its SCPs. Refuses an account
/// another object owns, and more SCPs than AWS allows, before anything is changed. Pure.
pub fn plan(
    observed: &AccountObservation,
    desired_tags: &Tags,
    owner: &str,
    snapshot: &OrgSnapshot,
) -> Result<AccountPlan, Error> {
    let id = &observed.account.id;
    let tags = match &observed.tags {
        None => None,
        Some(current) => {
            if let Some(other) = current.get(OWNER_TAG).filter(|o| *o != owner) {
                return Err(Error::terminal(
                    OWNED_ELSEWHERE,
                    format!("account {id} is already managed by {other}"),
                ));
            }
            let mut desired = desired_tags.clone();
            if let Some(sent) = current.get(NOTIFIED_TAG) {
                desired.insert(NOTIFIED_TAG.to_string(), sent.clone());
            }
            let (set, remove) = tag_changes(&desired, current);
            Some(TagPlan { set, remove })
        }
    };
    let attachments = attachment_plan(
        id,
        &observed.desired_policies,
        &observed.managed_policies,
        snapshot,
    )?;
    Ok(AccountPlan {
        move_from: observed
            .current_parent
            .clone()
            .filter(|c| *c != observed.desired_parent),
        tags,
        attachments,
    })
}

/// Carry out `plan`: move, converge the tags, attach and detach SCPs; the status follows each
/// step as it is done.
async fn execute(
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    observed: &AccountObservation,
    plan: &AccountPlan,
    status: &mut LinkedAccountStatus,
) -> Result<(), Error> {
    let (id, to) = (&observed.account.id, &observed.desired_parent);
    if let Some(from) = &plan.move_from {
        pc.write(
            ctx,
            run,
            change(
                ChangeAction::Update,
                format!("account {id}"),
                format!("move from {from} to {to}"),
            ),
            |c| async move { c.organizations.move_account(id, from, to).await },
            |_| {
                let (id, to) = (id.clone(), to.clone());
                move |s: &mut OrgSnapshot| s.set_parent(&id, &to)
            },
        )
        .await?;
    }
    status.parent_id = Some(to.clone());
    if let Some(tags) = &plan.tags {
        write_tags(pc, run, id, tags).await?;
        status.tags_checked_at = Some(run.timestamp().to_string());
    }
    attach_policies(ctx, pc, run, id, &plan.attachments).await?;
    status.attached_policies = plan.attachments.result.clone();
    Ok(())
}

/// Set and remove the account's tags (the snapshot holds no tags: nothing to record there).
async fn write_tags(
    pc: &PayerContext,
    run: &mut Run,
    id: &str,
    tags: &TagPlan,
) -> Result<(), Error> {
    let orgs = &pc.conn.organizations;
    if !tags.set.is_empty() {
        let keys: Vec<&str> = tags.set.keys().map(String::as_str).collect();
        let what = change(
            ChangeAction::Update,
            format!("tags of {id}"),
            format!("set {}", keys.join(", ")),
        );
        run.write(what, || orgs.tag_resource(id, &tags.set)).await?;
    }
    if !tags.remove.is_empty() {
        let what = change(
            ChangeAction::Update,
            format!("tags of {id}"),
            format!("remove {}", tags.remove.join(", ")),
        );
        run.write(what, || orgs.untag_resource(id, &tags.remove))
            .await?;
    }
    Ok(())
}

/// Attach and detach SCPs through the Organizations helper shared with the OUs.
async fn attach_policies(
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    id: &str,
    plan: &AttachmentPlan,
) -> Result<(), Error> {
    execute_attachments(pc, ctx, id, plan, run).await
}

/// LinkedAccounts take their cost from the payer's Cost Explorer read as soon as it lands,
/// and an account whose creation ended (and the next ones in the creation queue) is
/// reconciled as soon as the payer's creation watcher sees it end.
pub fn triggers() -> Vec<Trigger<LinkedAccount>> {
    vec![
        Trigger::on::<crate::api::Payer>(payer_costs_fingerprint, |payer, account| {
            account
                .0
                .as_ref()
                .is_ok_and(|a| a.spec.payer_ref.name == payer.name_any())
        }),
        Trigger::wake_ups(account_wake_ups),
    ]
}

/// What of a Payer its LinkedAccounts follow: when its costs were read.
fn payer_costs_fingerprint(p: &Guarded<crate::api::Payer>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.0.as_ref()
        .ok()
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.costs.as_ref())
        .map(|c| c.refreshed_at.clone())
        .hash(&mut h);
    Some(h.finish())
}

/// The LinkedAccounts the creation watchers wake.
fn account_wake_ups(ctx: &ReconcileContext) -> WakeUps {
    creation_wake_ups(&ctx.shared::<crate::organizations::creations::Creations>())
}

/// The wake-ups of the creation watchers; missed ones (the channel overflowed) are reported
/// as such.
pub fn creation_wake_ups(creations: &crate::organizations::creations::Creations) -> WakeUps {
    futures::StreamExt::boxed(futures::stream::unfold(
        creations.subscribe(),
        |mut rx| async move {
            match rx.recv().await {
                Ok(w) => Some((
                    WakeUp::Object {
                        namespace: w.namespace,
                        name: w.name,
                    },
                    rx,
                )),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    Some((WakeUp::Missed, rx))
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account_in(state: &str) -> Account {
        Account {
            id: "111122223333".into(),
            email: "a@example.com".into(),
            name: "a".into(),
            state: AccountState::parse(state),
            joined_method: "CREATED".into(),
        }
    }

    #[test]
    fn only_an_active_account_is_managed_and_a_pending_one_is_waited_for() {
        assert!(not_active(&account_in("ACTIVE")).is_none());
        let pending = not_active(&account_in("PENDING_ACTIVATION")).unwrap();
        assert_eq!(pending.reason, "AccountPendingActivation");
        assert!(!pending.ready && pending.requeue.is_some());
        let suspended = not_active(&account_in("SUSPENDED")).unwrap();
        assert_eq!(suspended.reason, "AccountSuspended");
        assert!(
            suspended.message.contains("AWS Support"),
            "{}",
            suspended.message
        );
        assert!(!suspended.message.contains("closed or being closed"));
        assert!(!AccountState::Suspended.is_closed_or_closing());
        for closed in ["PENDING_CLOSURE", "CLOSED"] {
            let v = not_active(&account_in(closed)).unwrap();
            assert_eq!(v.reason, "AccountClosed", "{closed}");
            assert!(v.message.contains(closed), "{}", v.message);
        }
        // No State at all (AWS always sends it since Status was retired): not managed.
        let v = not_active(&account_in("")).unwrap();
        assert_eq!(v.reason, "AccountNotActive");
        assert!(v.message.contains("no state"), "{}", v.message);
    }

    fn observed(tags: Option<Tags>) -> AccountObservation {
        AccountObservation {
            account: account_in("ACTIVE"),
            current_parent: Some("r-root".into()),
            desired_parent: "ou-1".into(),
            desired_policies: Vec::new(),
            managed_policies: BTreeSet::new(),
            tags,
        }
    }

    fn snapshot() -> OrgSnapshot {
        use crate::aws::organizations::{Organization, Root};
        OrgSnapshot {
            organization: Organization {
                id: "o-1".into(),
                arn: String::new(),
                feature_set: "ALL".into(),
                management_account_id: "999999999999".into(),
            },
            root: Root {
                id: "r-root".into(),
                arn: String::new(),
                scp_enabled: true,
            },
            accounts: Vec::new(),
            ous: Vec::new(),
            parent_of: Default::default(),
            policies: Vec::new(),
            targets: Default::default(),
            creates_in_progress: Vec::new(),
            invitations: Vec::new(),
            index: Default::default(),
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_plan_moves_keeps_the_notified_mark_and_refuses_a_foreign_owner() {
        let desired = tags(&[(OWNER_TAG, "ns/LinkedAccount/a"), ("team", "a")]);
        let owner = "ns/LinkedAccount/a";
        // Tags not due: only the move.
        let p = plan(&observed(None), &desired, owner, &snapshot()).unwrap();
        assert_eq!(p.move_from.as_deref(), Some("r-root"));
        assert_eq!(p.tags, None);
        // Due: the mark of notifications sent stays; extras go.
        let current = tags(&[(NOTIFIED_TAG, "Joined=sent@x"), ("old", "1")]);
        let p = plan(&observed(Some(current)), &desired, owner, &snapshot()).unwrap();
        let t = p.tags.unwrap();
        assert_eq!(t.set, desired);
        assert_eq!(t.remove, ["old"]);
        // Another object's account: refused before anything is changed.
        let foreign = tags(&[(OWNER_TAG, "ns/LinkedAccount/b")]);
        let err = plan(&observed(Some(foreign)), &desired, owner, &snapshot()).unwrap_err();
        assert_eq!(err.reason(), OWNED_ELSEWHERE);
    }
}
