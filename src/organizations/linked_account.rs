//! LinkedAccount: create (never twice), invite (follow the handshake), or adopt an account;
//! then converge its OU, tags and SCPs; on deletion retain, remove or close it (within the
//! payer's closure budget, never the management account, never twice).

use std::time::Duration;

use kube::ResourceExt;

use crate::api::Payer;
use crate::api::common::{OWNER_TAG, owner_value, with_owner};
use crate::api::conditions::{ConditionStatus, DesiredCondition};
use crate::api::linked_account::{
    AccountDeletionPolicy, BillingAccess, InvitationStatus, REINVITE_ANNOTATION,
};
use crate::api::notifications::{
    NOTIFIED_TAG, NotificationEvent, NotificationRecord, SmtpSettings,
};
use crate::api::payer::ClosureRecord;
use crate::api::{LinkedAccount, LinkedAccountStatus};
use crate::aws::organizations::{Account, AccountState, Handshake, NewAccount, Tags};
use crate::error::Error;
use crate::notify::{AccountFacts, Delivery, NotifiedTag, compose};
use crate::secrets::SecretString;
use crate::time::older_than;

use crate::organizations::creations::{creation_queue, may_queue, queue_key};
use crate::organizations::organizational_unit::resolve_parent;
use crate::organizations::{
    attachment_plan, execute_attachments, managed_policy_names, resolve_policies,
};
use crate::payer::context::{PayerContext, payer_connection};
use crate::reconcile::change;
use crate::reconcile::run::Run;
use crate::reconcile::tags::{TagApi, converge_tags, tag_check_due};
use crate::reconcile::{ChangeAction, EventNote, KindOutcome, Mode, ReconcileContext, Verdict};

/// AWS runs at most this many CreateAccount requests per organization at once.
pub const MAX_CREATES_IN_FLIGHT: usize = 5;
/// How often an account creation in progress is polled.
const CREATE_POLL: Duration = Duration::from_secs(10);
/// How often a deletion waiting on an account AWS suspended looks again.
const SUSPENDED_RECHECK: Duration = Duration::from_secs(900);
/// How often a queued creation looks for a free slot.
const QUEUE_POLL: Duration = Duration::from_secs(15);
/// How often an open invitation is looked at.
const INVITE_POLL: Duration = Duration::from_secs(30);
/// Rolling window of the closure budget.
const CLOSE_WINDOW_SECS: i64 = 30 * 24 * 3600;

/// How soon a failed notification is tried again.
const NOTIFY_RETRY: Duration = Duration::from_secs(60);
/// How long a closed account's object waits for its closure notification to go out.
const CLOSE_NOTIFY_PATIENCE_SECS: i64 = 24 * 3600;
/// Condition type for notifications.
pub const NOTIFIED: &str = "Notified";

/// Condition reason when an earlier attempt to send a notice was cut off.
pub const NOTIFICATION_UNCERTAIN: &str = "NotificationUncertain";

/// Send `event`'s notification unless it is not wanted or already went out: `None` when
/// nothing was to be sent, else what happened (a message for the `Notified` condition).
///
/// What went out is recorded in the status and on the account itself, in the tag
/// `partnerbilling.io/notified`, which is read whenever the status does not know (file mode
/// starts without statuses; a status can be lost). `tags` are the account's tags if this
/// reconcile read them already.
///
/// At most once: the tag is marked `Event=sending@TIME` before the mail server is asked and
/// `Event=sent@TIME` once it accepted the message. A failure the mail server reports, or a
/// server that cannot be reached, takes the mark back so that the next attempt sends. If the
/// operator stops between marking and recording, the mark stays `sending`: the notice is not
/// sent again, and the condition `NotificationUncertain` says how to send it by hand. The one
/// window left for a second copy is a connection that breaks after the server took the
/// message but before its answer arrived.
async fn notify(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    payer: &Payer,
    event: NotificationEvent,
    status: &mut LinkedAccountStatus,
    tags: Option<&Tags>,
    now: &str,
) -> Option<Result<String, Error>> {
    let wanted = obj.spec.notifications.as_ref().filter(|n| n.wants(event))?;
    let account_id = status.account_id.clone()?;
    if status
        .notifications
        .iter()
        .any(|r| r.event == event && r.account_id == account_id)
    {
        return None;
    }
    Some(
        deliver(
            obj,
            ctx,
            payer,
            event,
            &wanted.recipients,
            &account_id,
            status,
            tags,
            now,
        )
        .await,
    )
}

/// The SMTP settings of `payer` and the login from their Secret, if any.
async fn smtp_settings(
    ctx: &ReconcileContext,
    payer: &Payer,
) -> Result<(SmtpSettings, Option<(String, SecretString)>), Error> {
    let namespace = payer.namespace().unwrap_or_default();
    let Some(settings) = payer.spec.notifications.as_ref().map(|n| n.smtp.clone()) else {
        return Err(Error::terminal(
            "NoSmtpSettings",
            format!(
                "Payer {namespace}/{} has no spec.notifications.smtp; set it so notifications can be sent",
                payer.name_any()
            ),
        ));
    };
    let Some(r) = &settings.credentials_secret_ref else {
        return Ok((settings, None));
    };
    let data = ctx.secrets.get(&namespace, &r.name).await?.ok_or_else(|| {
        Error::terminal(
            "SecretNotFound",
            format!(
                "Secret {namespace}/{} for the SMTP login does not exist",
                r.name
            ),
        )
    })?;
    let user_key = r.username_key.as_deref().unwrap_or("username");
    let pass_key = r.password_key.as_deref().unwrap_or("password");
    let login = match (data.get(user_key), data.get(pass_key)) {
        (Some(u), Some(p)) => (u.expose().to_string(), p.clone()),
        _ => {
            return Err(Error::terminal(
                "SecretKeyMissing",
                format!(
                    "Secret {namespace}/{} needs keys {user_key:?} and {pass_key:?} for the SMTP login",
                    r.name
                ),
            ));
        }
    };
    Ok((settings, Some(login)))
}

/// The notified tag holding `tag`, to write.
fn notified_tag(tag: &NotifiedTag) -> Tags {
    [(NOTIFIED_TAG.to_string(), tag.render())].into()
}

/// Send one notice for `account_id`, at most once (see [`notify`]).
#[allow(clippy::too_many_arguments)]
async fn deliver(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    payer: &Payer,
    event: NotificationEvent,
    recipients: &[String],
    account_id: &str,
    status: &mut LinkedAccountStatus,
    tags: Option<&Tags>,
    now: &str,
) -> Result<String, Error> {
    let (settings, login) = smtp_settings(ctx, payer).await?;
    let (_, _, conn) = payer_connection(
        &obj.namespace().unwrap_or_default(),
        &obj.spec.payer_ref,
        ctx,
    )
    .await?;
    let orgs = conn.organizations.as_ref();
    // A closed account may refuse tags: its closure notice is then recorded in the status
    // only (the object is being deleted; nothing else sends that notice).
    let status_only = |e: &Error| event == NotificationEvent::Closed && e.is_terminal();
    let read = match tags {
        Some(t) => Ok(t.clone()),
        None => orgs.list_tags(account_id).await,
    };
    let (mut tag, mut on_account) = match read {
        Ok(t) => (
            NotifiedTag::parse(t.get(NOTIFIED_TAG).map(String::as_str).unwrap_or_default()),
            true,
        ),
        Err(e) if status_only(&e) => (NotifiedTag::default(), false),
        Err(e) => return Err(e),
    };
    let record = |status: &mut LinkedAccountStatus, at: &str| {
        status.notifications.push(NotificationRecord {
            event,
            account_id: account_id.to_string(),
            sent_at: at.to_string(),
            recipients: recipients.to_vec(),
        });
    };
    match tag.get(event) {
        Some(Delivery::Sent(at)) => {
            record(status, &at);
            return Ok(format!(
                "the notification went out at {at} (recorded in tag {NOTIFIED_TAG} of account {account_id})"
            ));
        }
        Some(Delivery::Sending(at)) => {
            return Err(Error::terminal(
                NOTIFICATION_UNCERTAIN,
                format!(
                    "sending the {name} notification began at {at} and was cut off before the mail server's answer was recorded: it may not have arrived, and it is not sent again so that nobody gets it twice. To send it, remove \"{name}=...\" from tag {NOTIFIED_TAG} of account {account_id} (or the whole tag)",
                    name = event.name(),
                ),
            ));
        }
        None => {}
    }
    if on_account {
        tag.set(event, &Delivery::Sending(now.to_string()));
        match orgs.tag_resource(account_id, &notified_tag(&tag)).await {
            Ok(()) => {}
            Err(e) if status_only(&e) => on_account = false,
            Err(e) => return Err(e),
        }
    }
    let facts = AccountFacts {
        account_id: account_id.to_string(),
        name: status.name.clone().unwrap_or_default(),
        email: status.email.clone().unwrap_or_default(),
        organization_id: payer
            .status
            .as_ref()
            .and_then(|s| s.organization_id.clone())
            .unwrap_or_else(|| "of the payer".into()),
        joined_method: status.joined_method.clone().unwrap_or_default(),
    };
    let mail = compose(event, &settings.from, recipients, &facts);
    match ctx.mailer.send(&settings, login, &mail).await {
        Ok(()) => {
            record(status, now);
            if on_account {
                tag.set(event, &Delivery::Sent(now.to_string()));
                if let Err(e) = orgs.tag_resource(account_id, &notified_tag(&tag)).await {
                    // Sent, and recorded in the status; the tag keeps saying "sending", which
                    // never sends it again either.
                    tracing::warn!(account = account_id, error = %e, "the notification went out, but tag {NOTIFIED_TAG} could not be updated");
                }
            }
            Ok("the notification was handed to the mail server".into())
        }
        Err(send_failed) => {
            if on_account {
                // Not delivered: take the mark back so that the next attempt sends.
                tag.remove(event);
                let undone = if tag.is_empty() {
                    orgs.untag_resource(account_id, &[NOTIFIED_TAG.to_string()])
                        .await
                } else {
                    orgs.tag_resource(account_id, &notified_tag(&tag)).await
                };
                if let Err(e) = undone {
                    tracing::warn!(account = account_id, error = %e, "tag {NOTIFIED_TAG} still marks a notification as being sent; it will not be sent again");
                }
            }
            Err(send_failed)
        }
    }
}

/// The `Notified` condition after a notification attempt (none when there was none).
fn notified_condition(notified: &Option<Result<String, Error>>) -> Option<DesiredCondition> {
    match notified.as_ref()? {
        Ok(message) => Some(DesiredCondition::new(
            NOTIFIED,
            ConditionStatus::True,
            "Sent",
            message.clone(),
        )),
        Err(e) if e.reason() == NOTIFICATION_UNCERTAIN => Some(DesiredCondition::new(
            NOTIFIED,
            ConditionStatus::False,
            NOTIFICATION_UNCERTAIN,
            e.to_string(),
        )),
        Err(e) => Some(DesiredCondition::new(
            NOTIFIED,
            ConditionStatus::False,
            e.reason(),
            format!("{e}; retrying every {} seconds", NOTIFY_RETRY.as_secs()),
        )),
    }
}

/// Whether a failed notification is tried again soon (an uncertain one never is).
fn retry_notification(notified: &Option<Result<String, Error>>) -> bool {
    matches!(notified, Some(Err(e)) if e.reason() != NOTIFICATION_UNCERTAIN)
}

/// Where the account search ended.
enum Located {
    Account(Account),
    Pending(Verdict),
}

/// Reconcile a LinkedAccount.
/// The account's cost from the payer's last Cost Explorer read (kept as it was when there
/// is no newer read; dropped when the payer's insights are off).
fn account_cost(obj: &LinkedAccount, ctx: &ReconcileContext, status: &mut LinkedAccountStatus) {
    let namespace = obj.namespace().unwrap_or_default();
    let payer = ctx.catalog.payer(&namespace, &obj.spec.payer_ref.name);
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
    if let (Some(read), Some(id)) = (ctx.insights.read(&key), status.account_id.as_deref())
        && status
            .cost
            .as_ref()
            .is_none_or(|c| c.as_of != read.refreshed_at)
    {
        status.cost = Some(read.summary.account(id, &read.refreshed_at));
    }
}

pub async fn reconcile(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<LinkedAccountStatus> {
    let mode = run.mode();
    let now = run.timestamp().to_string();
    let now = now.as_str();
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut changes = Vec::new();
    let mut events = Vec::new();
    let mut seen_tags = None;
    let mut result = apply(
        obj,
        ctx,
        mode,
        now,
        &mut status,
        &mut seen_tags,
        &mut changes,
        &mut events,
    )
    .await;
    // The account joined: tell the listed recipients (never blocks Ready).
    let mut notified = None;
    if mode == Mode::Apply
        && matches!(&result, Ok(v) if v.ready)
        && (obj.spec.create.is_some() || obj.spec.invite.is_some())
        && let Some(payer) = ctx.catalog.payer(
            &obj.namespace().unwrap_or_default(),
            &obj.spec.payer_ref.name,
        )
    {
        notified = notify(
            obj,
            ctx,
            &payer,
            NotificationEvent::Joined,
            &mut status,
            seen_tags.as_ref(),
            now,
        )
        .await;
    }
    if let (true, Ok(v)) = (retry_notification(&notified), &mut result) {
        v.requeue = Some(v.requeue.map_or(NOTIFY_RETRY, |r| r.min(NOTIFY_RETRY)));
    }
    let extra: Vec<DesiredCondition> = notified_condition(&notified).into_iter().collect();
    account_cost(obj, ctx, &mut status);
    crate::reconcile::finish(
        &previous,
        status,
        result,
        &extra,
        obj.metadata.generation,
        mode,
        now,
        changes,
        events,
    )
}

/// Converge the account; `seen_tags` gets its tags in AWS when they were read.
#[allow(clippy::too_many_arguments)]
async fn apply(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    mode: Mode,
    now: &str,
    status: &mut LinkedAccountStatus,
    seen_tags: &mut Option<Tags>,
    changes: &mut Vec<crate::reconcile::Change>,
    events: &mut Vec<EventNote>,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let plan_only = mode == Mode::Plan;
    let mut pc = PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await?;
    let account = match locate(obj, ctx, &mut pc, plan_only, now, status, changes, events).await? {
        Located::Account(a) => a,
        Located::Pending(v) => return Ok(v),
    };
    let account = match account.state {
        // Created a moment ago: AWS is still activating it. Only this account is read again.
        AccountState::PendingActivation if !plan_only => {
            match pc.conn.organizations.describe_account(&account.id).await? {
                Some(fresh) => {
                    let seen = fresh.clone();
                    pc.record(ctx, move |s| s.add_account(&seen));
                    fresh
                }
                None => account,
            }
        }
        _ => account,
    };
    record_account(status, &account);
    if let Some(verdict) = not_active(&account) {
        return Ok(verdict);
    }

    // OU placement.
    let desired_parent = match (&obj.spec.parent_ref, &obj.spec.parent_id) {
        (Some(r), _) => resolve_parent(&namespace, Some(r), &pc.snapshot, ctx)?,
        (None, Some(id)) if pc.snapshot.is_parent(id) => id.clone(),
        (None, Some(id)) => {
            return Err(Error::terminal(
                "InvalidSpec",
                format!(
                    "spec.parentId {id} is neither the root nor an OU of organization {}",
                    pc.snapshot.organization.id
                ),
            ));
        }
        (None, None) => pc.snapshot.root.id.clone(),
    };
    let desired_policies = resolve_policies(
        &namespace,
        &obj.spec.service_control_policies,
        &pc.snapshot,
        ctx,
    )?;
    let current_parent = pc.snapshot.parent_of.get(&account.id).cloned();
    if let Some(current) = &current_parent
        && *current != desired_parent
    {
        changes.push(change(
            ChangeAction::Update,
            format!("account {}", account.id),
            format!("move from {current} to {desired_parent}"),
        ));
        if !plan_only {
            pc.conn
                .organizations
                .move_account(&account.id, current, &desired_parent)
                .await?;
            let (id, to) = (account.id.clone(), desired_parent.clone());
            pc.record(ctx, move |s| s.set_parent(&id, &to));
        }
    }
    status.parent_id = Some(desired_parent.clone());

    // Tags.
    let owner = owner_value(&namespace, "LinkedAccount", &obj.name_any());
    let spec_changed = status.observed_generation != obj.metadata.generation;
    // Typed times for tag_check_due (mechanical edit; parse status strings at the edge).
    let mut tag_run = Run::at(mode, now);
    if tag_check_due(
        spec_changed,
        status
            .tags_checked_at
            .as_deref()
            .and_then(|t| t.parse().ok()),
        tag_run.time(),
        &obj.uid().unwrap_or_default(),
    ) {
        let current = pc.conn.organizations.list_tags(&account.id).await?;
        if let Some(other) = current.get(OWNER_TAG).filter(|o| **o != owner) {
            return Err(Error::terminal(
                "OwnedElsewhere",
                format!("account {} is already managed by {other}", account.id),
            ));
        }
        // The record of notifications sent stays as it is.
        let mut desired = with_owner(&obj.spec.tags, &owner);
        if let Some(sent) = current.get(NOTIFIED_TAG) {
            desired.insert(NOTIFIED_TAG.to_string(), sent.clone());
        }
        // Mechanical edit until this step writes through the reconcile's Run: a Run of its
        // own, whose changes join the list (also when a write fails half-way).
        let converged = converge_tags(
            TagApi::Organizations(pc.conn.organizations.as_ref()),
            &account.id,
            &desired,
            &current,
            &mut tag_run,
        )
        .await;
        changes.extend(tag_run.changes().iter().cloned());
        converged?;
        *seen_tags = Some(current);
        if !plan_only {
            status.tags_checked_at = Some(now.to_string());
        }
    }

    // SCPs.
    let attachments = attachment_plan(
        &account.id,
        &desired_policies,
        &managed_policy_names(
            &namespace,
            &obj.spec.payer_ref,
            &status.attached_policies,
            ctx,
        ),
        &pc.snapshot,
    )?;
    // Mechanical edit until this step writes through the reconcile's Run (as above).
    let mut scp_run = Run::at(mode, now);
    let executed = execute_attachments(&mut pc, ctx, &account.id, &attachments, &mut scp_run).await;
    changes.extend(scp_run.changes().iter().cloned());
    executed?;
    status.attached_policies = attachments.result;

    Ok(Verdict::ready(
        "Active",
        format!(
            "account {} ({}) is ACTIVE in {desired_parent}",
            account.id, account.email
        ),
    ))
}

/// What stops an account that is not ACTIVE from being managed (its `State`; AWS no longer
/// sends `Status`). Pure.
pub fn not_active(account: &Account) -> Option<Verdict> {
    match &account.state {
        AccountState::Active => None,
        AccountState::PendingActivation => Some(Verdict::progressing(
            "AccountPendingActivation",
            format!(
                "account {} is PENDING_ACTIVATION: AWS is still activating it; it is managed once it is ACTIVE",
                account.id
            ),
            CREATE_POLL,
        )),
        AccountState::Suspended => Some(Verdict::blocked(
            "AccountSuspended",
            format!(
                "account {} is SUSPENDED: AWS restricted access to it (this is not a closure); contact AWS Support to learn why and to lift it. Nothing is changed on it meanwhile",
                account.id
            ),
        )),
        state if state.is_closed_or_closing() => Some(Verdict::blocked(
            "AccountClosed",
            format!(
                "account {} is {state}: it is closed or being closed, and nothing is changed on it (only AWS Support can reopen it, within 90 days)",
                account.id
            ),
        )),
        state => Some(Verdict::blocked(
            "AccountNotActive",
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

/// Find the account, or make progress towards it (create, invite).
#[allow(clippy::too_many_arguments)]
async fn locate(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    plan_only: bool,
    now: &str,
    status: &mut LinkedAccountStatus,
    changes: &mut Vec<crate::reconcile::Change>,
    events: &mut Vec<EventNote>,
) -> Result<Located, Error> {
    if let Some(id) = &status.account_id {
        return match pc.snapshot.account(id) {
            Some(a) => Ok(Located::Account(a.clone())),
            None => Err(Error::terminal(
                "AccountNotInOrganization",
                format!(
                    "account {id} is no longer in organization {}",
                    pc.snapshot.organization.id
                ),
            )),
        };
    }
    if let Some(create) = &obj.spec.create {
        return locate_created(obj, create, ctx, pc, plan_only, status, changes, events).await;
    }
    if let Some(invite) = &obj.spec.invite {
        if let Some(a) = pc.snapshot.account(&invite.account_id) {
            return Ok(Located::Account(a.clone()));
        }
        return invite_progress(
            obj, invite, ctx, pc, plan_only, now, status, changes, events,
        )
        .await;
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
                "NotInOrganization",
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
        "InvalidSpec",
        "set exactly one of spec.create, spec.invite and spec.adopt",
    ))
}

#[allow(clippy::too_many_arguments)]
async fn locate_created(
    obj: &LinkedAccount,
    create: &crate::api::linked_account::CreateAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    plan_only: bool,
    status: &mut LinkedAccountStatus,
    changes: &mut Vec<crate::reconcile::Change>,
    events: &mut Vec<EventNote>,
) -> Result<Located, Error> {
    // Natural key first: an account with this e-mail is this object's account, whether it
    // was created by an earlier reconcile that crashed before writing status or not.
    if let Some(a) = pc.snapshot.account_by_email(&create.email) {
        return Ok(Located::Account(a.clone()));
    }
    let me = obj.name_any();
    if let Some(request_id) = status.create_request_id.clone() {
        // The payer's creation watcher follows it and wakes this object when it ends (it
        // may have started following it for the queue, not knowing whose it was).
        if ctx.creations.follows(&pc.key, &request_id) {
            return Ok(creating(
                pc,
                ctx,
                &request_id,
                &create.email,
                &me,
                plan_only,
            ));
        }
        match pc
            .conn
            .organizations
            .describe_create_account_status(&request_id)
            .await
        {
            Ok(s) if s.state == "IN_PROGRESS" => {
                return Ok(creating(
                    pc,
                    ctx,
                    &request_id,
                    &create.email,
                    &me,
                    plan_only,
                ));
            }
            Ok(s) if s.state == "SUCCEEDED" => {
                let found = match s.account_id.as_deref() {
                    Some(id) => pc.account_joined(ctx, id).await?,
                    None => None,
                };
                return match found {
                    Some(a) => Ok(Located::Account(a.clone())),
                    None => Ok(Located::Pending(Verdict::progressing(
                        "Creating",
                        format!(
                            "account {} was created; waiting for it to be listed",
                            s.account_id.unwrap_or_default()
                        ),
                        CREATE_POLL,
                    ))),
                };
            }
            Ok(s) => return Err(creation_failed(&create.email, s.failure_reason.as_deref())),
            Err(e) if e.aws_code() == Some("CreateAccountStatusNotFoundException") => {
                status.create_request_id = None;
            }
            Err(e) => return Err(e),
        }
    }
    // A request in flight for this account name (a crash between CreateAccount and the
    // status write) is ours: follow it instead of creating a second account.
    if let Some(request_id) = request_in_flight(pc, &create.account_name) {
        let located = creating(pc, ctx, &request_id, &create.email, &me, plan_only);
        status.create_request_id = Some(request_id);
        return Ok(located);
    }
    if plan_only {
        changes.push(change(
            ChangeAction::Create,
            format!("account {}", create.account_name),
            format!("CreateAccount with e-mail {}", create.email),
        ));
        return Ok(Located::Pending(Verdict::blocked(
            "PlannedOnly",
            "the account would be created",
        )));
    }

    // One creation decision at a time per payer, on fresh data: the payer's creation
    // watcher keeps the snapshot's requests in flight current while it runs, else they are
    // listed again.
    let gate = ctx.locks.get(&format!("{}#create", pc.key));
    let _slot = gate.lock().await;
    if ctx.creations.watching(&pc.key) {
        pc.snapshot = ctx.snapshots.get(&pc.key, &pc.conn).await?;
    } else {
        pc.refresh_creates(ctx).await?;
    }
    if let Some(a) = pc.snapshot.account_by_email(&create.email) {
        return Ok(Located::Account(a.clone()));
    }
    if let Some(request_id) = request_in_flight(pc, &create.account_name) {
        let located = creating(pc, ctx, &request_id, &create.email, &me, false);
        status.create_request_id = Some(request_id);
        return Ok(located);
    }
    let in_flight = pc.snapshot.creates_in_progress.len();
    let position = queue_position(
        obj,
        &ctx.catalog
            .linked_accounts_where(&obj.namespace().unwrap_or_default(), &|o| {
                may_queue(o, &obj.spec.payer_ref.name)
            }),
        &ctx.creations.requested(&pc.key),
    );
    if in_flight + position >= MAX_CREATES_IN_FLIGHT {
        // Requests in flight (this operator's or not) are watched, so the queue moves on
        // the moment one of them ends.
        for r in &pc.snapshot.creates_in_progress {
            pc.follow_create(ctx, &r.request_id, None);
        }
        return Ok(Located::Pending(queued(&pc.key, in_flight, position)));
    }
    let request = NewAccount {
        email: create.email.clone(),
        account_name: create.account_name.clone(),
        role_name: create.role_name.clone(),
        iam_user_access_to_billing: create
            .iam_user_access_to_billing
            .map(|b| b == BillingAccess::Allow),
        tags: with_owner(
            &obj.spec.tags,
            &owner_value(
                &obj.namespace().unwrap_or_default(),
                "LinkedAccount",
                &obj.name_any(),
            ),
        ),
    };
    changes.push(change(
        ChangeAction::Create,
        format!("account {}", create.account_name),
        format!("CreateAccount with e-mail {}", create.email),
    ));
    let created = match pc.conn.organizations.create_account(&request).await {
        Err(e) if e.aws_reason() == Some("ACCOUNT_CREATION_RATE_LIMIT_EXCEEDED") => {
            return Ok(Located::Pending(queued(&pc.key, in_flight, position)));
        }
        other => other?,
    };
    let request = created.clone();
    pc.record(ctx, move |s| s.add_create(&request));
    status.create_request_id = Some(created.request_id.clone());
    events.push(EventNote {
        warning: false,
        reason: "CreationRequested".into(),
        note: format!(
            "CreateAccount request {} for {}",
            created.request_id, create.email
        ),
    });
    Ok(creating(
        pc,
        ctx,
        &created.request_id,
        &create.email,
        &me,
        false,
    ))
}

/// The CreateAccount request in flight for `account_name`, if any (a crash between
/// CreateAccount and the status write leaves one that belongs to this object).
fn request_in_flight(pc: &PayerContext, account_name: &str) -> Option<String> {
    pc.snapshot
        .creates_in_progress
        .iter()
        .find(|r| r.account_name == account_name)
        .map(|r| r.request_id.clone())
}

/// `request_id` (for `email`) is in progress: the payer's creation watcher follows it for
/// `owner` (not when only planning) and wakes it when it ends.
fn creating(
    pc: &PayerContext,
    ctx: &ReconcileContext,
    request_id: &str,
    email: &str,
    owner: &str,
    plan_only: bool,
) -> Located {
    if !plan_only {
        pc.follow_create(ctx, request_id, Some(owner));
    }
    Located::Pending(Verdict::progressing(
        "Creating",
        format!("CreateAccount request {request_id} for {email} is in progress"),
        CREATE_POLL,
    ))
}

fn queued(payer: &str, in_flight: usize, position: usize) -> Verdict {
    Verdict::progressing(
        "CreationQueued",
        format!(
            "{in_flight} account creation(s) in progress for Payer {payer} (AWS allows {MAX_CREATES_IN_FLIGHT}); this account is number {} in the queue",
            position + 1
        ),
        QUEUE_POLL,
    )
}

/// How many LinkedAccounts of the same payer wait to be created ahead of `obj`: oldest
/// first, then by name; those in `requested` have a request in flight already. Pure.
pub fn queue_position(
    obj: &LinkedAccount,
    all: &[LinkedAccount],
    requested: &std::collections::BTreeSet<String>,
) -> usize {
    let mine = queue_key(obj);
    creation_queue(all, &obj.spec.payer_ref.name, requested)
        .into_iter()
        .filter(|o| o.name_any() != obj.name_any() && queue_key(o) < mine)
        .count()
}

fn creation_failed(email: &str, reason: Option<&str>) -> Error {
    let reason = reason.unwrap_or("UNKNOWN");
    let advice = match reason {
        "EMAIL_ALREADY_EXISTS" => format!("an AWS account with e-mail {email} already exists outside this organization; invite it with spec.invite instead"),
        "INVALID_EMAIL" => format!("AWS does not accept the e-mail address {email}; use another one"),
        "ACCOUNT_LIMIT_EXCEEDED" => "the organization has as many accounts as its quota allows; ask AWS Support for a higher quota".to_string(),
        "CONCURRENT_ACCOUNT_MODIFICATION" | "INTERNAL_FAILURE" => "AWS failed to create the account; delete and re-create this LinkedAccount to try again".to_string(),
        other => format!("AWS refused to create the account ({other})"),
    };
    Error::terminal(
        "CreateFailed",
        format!("creating the account failed: {reason}: {advice}"),
    )
}

/// What to do about a LinkedAccount's invitation.
#[derive(Clone, Debug, PartialEq)]
pub enum InvitationStep {
    /// The invitation is open: wait for the account's owner.
    Open(InvitationStatus),
    /// The invitation was accepted: the account joins.
    Accepted(InvitationStatus),
    /// It ended without the account joining (declined, expired, canceled; or accepted by an
    /// account that has left since): nothing is sent until the spec or the reinvite
    /// annotation changes.
    Ended {
        record: InvitationStatus,
        reason: &'static str,
    },
    /// Send an invitation: the first one, or one asked for again.
    Send,
}

/// Decide about the invitation from what the status remembers (`recorded`) and the newest
/// invitation to the account AWS lists (`listed`), for the object's `generation` and
/// `reinvite` annotation value. AWS lists finished invitations for 30 days only: when it no
/// longer lists one, the outcome remembered in the status stands, so an invitation that was
/// declined or expired is never sent again by itself. Pure.
pub fn invitation_step(
    recorded: Option<&InvitationStatus>,
    listed: Option<&Handshake>,
    generation: Option<i64>,
    reinvite: Option<String>,
    now: &str,
) -> InvitationStep {
    let record = match (listed, recorded) {
        (Some(h), _) => {
            // The status's record of this handshake, if it is the same one (else it was sent
            // for the current spec by a run whose status was lost, or outside the operator).
            let known = recorded.filter(|r| r.id == h.id);
            InvitationStatus {
                id: h.id.clone(),
                state: h.state.clone(),
                expires_at: h.expires_at.clone(),
                generation: known.and_then(|r| r.generation).or(generation),
                reinvite: known.map_or(reinvite.clone(), |r| r.reinvite.clone()),
                ended_at: known.and_then(|r| r.ended_at.clone()),
            }
        }
        (None, None) => return InvitationStep::Send,
        (None, Some(r)) => {
            let mut r = r.clone();
            if matches!(r.state.as_str(), "OPEN" | "REQUESTED") {
                // It ended while nobody looked, long enough ago that AWS forgot it: an
                // invitation nobody answers expires.
                r.state = "EXPIRED".into();
            }
            r
        }
    };
    let reason = match record.state.as_str() {
        "OPEN" | "REQUESTED" => return InvitationStep::Open(record),
        "ACCEPTED" if listed.is_some() => return InvitationStep::Accepted(record),
        "ACCEPTED" => "AccountLeftOrganization",
        "DECLINED" => "InvitationDeclined",
        "EXPIRED" => "InvitationExpired",
        _ => "InvitationCanceled",
    };
    if record.generation != generation || record.reinvite != reinvite {
        return InvitationStep::Send;
    }
    let mut record = record;
    record.ended_at = record.ended_at.or_else(|| Some(now.to_string()));
    InvitationStep::Ended { record, reason }
}

/// What the `Ready` condition says about an invitation that ended. Pure.
fn ended_message(
    record: &InvitationStatus,
    reason: &str,
    account_id: &str,
    forgotten: bool,
) -> String {
    let what = if reason == "AccountLeftOrganization" {
        format!("was accepted, but account {account_id} is no longer in the organization")
    } else {
        format!(
            "to account {account_id} was {}",
            record.state.to_ascii_lowercase()
        )
    };
    let since = record
        .ended_at
        .as_deref()
        .map(|t| format!(" (seen at {t})"))
        .unwrap_or_default();
    let forgotten = if forgotten {
        "; AWS no longer lists it (finished invitations are listed for 30 days) and status.invitation remembers the outcome"
    } else {
        ""
    };
    format!(
        "invitation {} {what}{since}{forgotten}; it is not sent again by itself: change the spec or set the annotation {REINVITE_ANNOTATION} to a new value to send another",
        record.id
    )
}

#[allow(clippy::too_many_arguments)]
async fn invite_progress(
    obj: &LinkedAccount,
    invite: &crate::api::linked_account::InviteAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    plan_only: bool,
    now: &str,
    status: &mut LinkedAccountStatus,
    changes: &mut Vec<crate::reconcile::Change>,
    events: &mut Vec<EventNote>,
) -> Result<Located, Error> {
    let reinvite = obj.reinvite_token();
    let generation = obj.metadata.generation;
    let latest = pc.snapshot.latest_invitation(&invite.account_id).cloned();
    match invitation_step(
        status.invitation.as_ref(),
        latest.as_ref(),
        generation,
        reinvite.clone(),
        now,
    ) {
        InvitationStep::Open(record) => {
            let message = format!(
                "invitation {} to account {} is open until {}; the account joins when its owner accepts",
                record.id,
                invite.account_id,
                record
                    .expires_at
                    .clone()
                    .unwrap_or_else(|| "it expires".into())
            );
            status.invitation = Some(record);
            return Ok(Located::Pending(Verdict::progressing(
                "InvitationPending",
                message,
                INVITE_POLL,
            )));
        }
        InvitationStep::Accepted(record) => {
            status.invitation = Some(record);
            if let Some(a) = pc.account_joined(ctx, &invite.account_id).await? {
                return Ok(Located::Account(a.clone()));
            }
            return Ok(Located::Pending(Verdict::progressing(
                "InvitationPending",
                "the invitation was accepted; waiting for the account to be listed",
                CREATE_POLL,
            )));
        }
        InvitationStep::Ended { record, reason } => {
            let message = ended_message(&record, reason, &invite.account_id, latest.is_none());
            status.invitation = Some(record);
            return Ok(Located::Pending(Verdict::blocked(reason, message)));
        }
        InvitationStep::Send => {}
    }
    changes.push(change(
        ChangeAction::Create,
        format!("invitation to account {}", invite.account_id),
        "InviteAccountToOrganization",
    ));
    if plan_only {
        return Ok(Located::Pending(Verdict::blocked(
            "PlannedOnly",
            "an invitation would be sent",
        )));
    }
    let sent = match pc
        .conn
        .organizations
        .invite_account(&invite.account_id, invite.notes.as_deref())
        .await
    {
        Err(e) if e.aws_code() == Some("DuplicateHandshakeException") => {
            pc.invalidate(ctx);
            return Err(Error::retryable(
                "Conflict",
                "an invitation to this account is already open; looking again",
            ));
        }
        Err(e) if e.aws_code() == Some("HandshakeConstraintViolationException") => {
            return Err(Error::terminal(
                "InvitationRefused",
                format!("AWS refused to invite account {}: {e}", invite.account_id),
            ));
        }
        other => other?,
    };
    let handshake = sent.clone();
    pc.record(ctx, move |s| s.add_invitation(&handshake));
    events.push(EventNote {
        warning: false,
        reason: "InvitationSent".into(),
        note: format!(
            "invitation {} sent to account {}",
            sent.id, invite.account_id
        ),
    });
    status.invitation = Some(InvitationStatus {
        id: sent.id.clone(),
        state: sent.state.clone(),
        expires_at: sent.expires_at.clone(),
        generation,
        reinvite,
        ended_at: None,
    });
    Ok(Located::Pending(Verdict::progressing(
        "InvitationPending",
        format!(
            "invitation {} sent to account {}; the account joins when its owner accepts",
            sent.id, invite.account_id
        ),
        INVITE_POLL,
    )))
}

/// Closures of the last 30 days, as of `now`. Pure.
pub fn recent_closures<'a>(records: &'a [ClosureRecord], now: &str) -> Vec<&'a ClosureRecord> {
    records
        .iter()
        .filter(|r| !older_than(&r.requested_at, now, CLOSE_WINDOW_SECS))
        .collect()
}

/// Deletion of a LinkedAccount, per `spec.deletionPolicy`.
pub async fn cleanup(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<LinkedAccountStatus> {
    let now = run.timestamp().to_string();
    let now = now.as_str();
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut changes = Vec::new();
    let mut events = Vec::new();
    let mut result = delete(obj, ctx, now, &mut status, &mut changes, &mut events).await;
    let mut notified = None;
    if matches!(&result, Ok(v) if v.reason == "Closed")
        && let Some(payer) = ctx.catalog.payer(
            &obj.namespace().unwrap_or_default(),
            &obj.spec.payer_ref.name,
        )
    {
        notified = notify(
            obj,
            ctx,
            &payer,
            NotificationEvent::Closed,
            &mut status,
            None,
            now,
        )
        .await;
        if let Some(Err(e)) = &notified {
            // An uncertain notice is never tried again: waiting for it would be in vain.
            let patient = retry_notification(&notified)
                && status
                    .deletion_requested_at
                    .as_deref()
                    .is_some_and(|t| !older_than(t, now, CLOSE_NOTIFY_PATIENCE_SECS));
            if patient {
                // Keep the object (and its finalizer) until the notice goes out.
                result = Err(Error::waiting(
                    "NotificationPending",
                    format!(
                        "the account is closed; the closure notification failed ({e}) and is tried again"
                    ),
                    NOTIFY_RETRY,
                ));
            } else {
                events.push(EventNote {
                    warning: true,
                    reason: "NotificationNotSent".into(),
                    note: format!("the closure notification could not be sent for 24 hours ({e}); released without it"),
                });
            }
        }
    }
    let extra: Vec<DesiredCondition> = notified_condition(&notified).into_iter().collect();
    crate::reconcile::finish_cleanup(
        &previous,
        status,
        result,
        &extra,
        obj.metadata.generation,
        now,
        changes,
        events,
        |reason| reason == "ManagementAccountProtected",
    )
}

async fn delete(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    now: &str,
    status: &mut LinkedAccountStatus,
    changes: &mut Vec<crate::reconcile::Change>,
    _events: &mut [EventNote],
) -> Result<Verdict, Error> {
    let policy = obj.spec.deletion_policy;
    if policy == AccountDeletionPolicy::Retain {
        return Ok(Verdict::ready(
            "Released",
            "deletionPolicy Retain: the account stays in the organization, unmanaged",
        ));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let mut pc = match PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await {
        Ok(pc) => pc,
        Err(Error::Waiting { .. }) => {
            return Ok(Verdict::ready(
                "Released",
                "the Payer is gone; nothing in AWS was changed",
            ));
        }
        Err(e) => return Err(e),
    };
    // Which account? Never create or invite on the way out.
    let account = match &status.account_id {
        Some(id) => pc.snapshot.account(id).cloned(),
        None => match (&obj.spec.create, &obj.spec.invite, &obj.spec.adopt) {
            (Some(c), _, _) => {
                let found = pc.snapshot.account_by_email(&c.email).cloned();
                if found.is_none()
                    && let Some(req) = &status.create_request_id
                {
                    match pc
                        .conn
                        .organizations
                        .describe_create_account_status(req)
                        .await
                    {
                        Ok(s) if s.state == "IN_PROGRESS" => {
                            return Err(Error::waiting(
                                "Creating",
                                format!(
                                    "waiting for CreateAccount request {req} to finish before the account can be {}",
                                    verb(policy)
                                ),
                                CREATE_POLL,
                            ));
                        }
                        Ok(s) if s.state == "SUCCEEDED" => match s.account_id.as_deref() {
                            Some(id) => pc.account_joined(ctx, id).await?,
                            None => None,
                        },
                        _ => None,
                    }
                } else {
                    found
                }
            }
            (_, Some(i), _) => {
                let open = pc
                    .snapshot
                    .latest_invitation(&i.account_id)
                    .filter(|h| h.is_open())
                    .cloned();
                if let Some(h) = open {
                    // The account never joined: withdraw the invitation, nothing else.
                    changes.push(change(
                        ChangeAction::Delete,
                        format!("invitation {}", h.id),
                        "cancel",
                    ));
                    match pc.conn.organizations.cancel_handshake(&h.id).await {
                        Err(e) if e.aws_code() == Some("InvalidHandshakeTransitionException") => {}
                        other => other?,
                    }
                    let id = h.id.clone();
                    pc.record(ctx, move |s| s.set_invitation_state(&id, "CANCELED"));
                    return Ok(Verdict::ready(
                        "Released",
                        format!("the open invitation {} was canceled", h.id),
                    ));
                }
                pc.snapshot.account(&i.account_id).cloned()
            }
            (_, _, Some(a)) => match (&a.account_id, &a.email) {
                (Some(id), _) => pc.snapshot.account(id).cloned(),
                (None, Some(e)) => pc.snapshot.account_by_email(e).cloned(),
                _ => None,
            },
            _ => None,
        },
    };
    let Some(account) = account else {
        return Ok(Verdict::ready(
            "Released",
            "the account is not in the organization; nothing to do",
        ));
    };
    if account.id == pc.snapshot.organization.management_account_id {
        return Ok(Verdict::ready(
            "ManagementAccountProtected",
            format!(
                "account {} is the management account: it is never removed or closed; released without changes",
                account.id
            ),
        ));
    }
    match policy {
        AccountDeletionPolicy::Retain => unreachable!("handled above"),
        AccountDeletionPolicy::Remove if account.state.is_closed_or_closing() => {
            // RemoveAccountFromOrganization needs an account that can stand alone; a closed one
            // cannot, and leaves the organization by itself 90 days after its closure
            // (CloseAccount doc: "After the permanent termination of the account after the
            // 90-day waiting period ... departureMethod:CLEANED"). So it is not called.
            Err(Error::terminal(
                "AccountClosed",
                format!(
                    "account {} is {}: it is closed or being closed, so deletionPolicy Remove cannot take it out of the organization (RemoveAccountFromOrganization is not called; AWS drops a closed account from the organization 90 days after its closure). Set deletionPolicy Retain or Close to release this object",
                    account.id, account.state
                ),
            ))
        }
        AccountDeletionPolicy::Remove => {
            changes.push(change(
                ChangeAction::Delete,
                format!("account {}", account.id),
                "RemoveAccountFromOrganization",
            ));
            match pc.conn.organizations.remove_account(&account.id).await {
                Err(e) if e.aws_code() == Some("AccountNotFoundException") => {}
                Err(e) if e.aws_code() == Some("ConstraintViolationException") => {
                    return Err(Error::terminal(
                        "RemoveRefused",
                        format!(
                            "AWS refused to remove account {} ({}): it must stand alone first (payment method, phone, support plan; new accounts wait several days). Fix that, or set deletionPolicy Retain",
                            account.id,
                            e.aws_reason().unwrap_or("constraint")
                        ),
                    ));
                }
                other => other?,
            }
            status.deletion_requested_at = Some(now.to_string());
            let id = account.id.clone();
            pc.record(ctx, move |s| s.remove_account(&id));
            Ok(Verdict::ready(
                "Removed",
                format!("account {} left the organization", account.id),
            ))
        }
        AccountDeletionPolicy::Close => {
            close(obj, ctx, &mut pc, &account, now, status, changes).await
        }
    }
}

fn verb(policy: AccountDeletionPolicy) -> &'static str {
    match policy {
        AccountDeletionPolicy::Close => "closed",
        AccountDeletionPolicy::Remove => "removed",
        AccountDeletionPolicy::Retain => "released",
    }
}

async fn close(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    account: &Account,
    now: &str,
    status: &mut LinkedAccountStatus,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    if account.state.is_closed_or_closing() {
        return Ok(Verdict::ready(
            "Closed",
            format!("account {} is {}", account.id, account.state),
        ));
    }
    if account.state == AccountState::Suspended {
        // Not closed: AWS suspended it. The CloseAccount doc speaks only of member accounts and
        // of PENDING_CLOSURE then the (retired) status SUSPENDED after a closure; it does not
        // say a suspended account can be closed, so it is not tried.
        return Err(Error::waiting(
            "AccountSuspended",
            format!(
                "account {} is SUSPENDED by AWS (not closed): CloseAccount is not called on it. Contact AWS Support about the suspension; once it is ACTIVE again it is closed. Or set deletionPolicy Retain to release this object",
                account.id
            ),
            SUSPENDED_RECHECK,
        ));
    }
    if status.deletion_requested_at.is_some() {
        // CloseAccount was called already: never twice. Wait for AWS to show it.
        return Err(Error::waiting(
            "Closing",
            format!(
                "CloseAccount was called for {}; waiting for PENDING_CLOSURE",
                account.id
            ),
            Duration::from_secs(5),
        ));
    }
    let gate = ctx.locks.get(&format!("{}#close", pc.key));
    let _one_at_a_time = gate.lock().await;
    let records = ctx.ledger.closures(&pc.payer).await?;
    let recent = recent_closures(&records, now);
    let already_recorded = recent.iter().any(|r| r.account_id == account.id);
    let budget = pc.payer.max_closures_per_30_days() as usize;
    if !already_recorded && recent.len() >= budget {
        let next = recent
            .iter()
            .map(|r| r.requested_at.as_str())
            .min()
            .unwrap_or(now);
        return Err(Error::waiting(
            "CloseBudgetExhausted",
            format!(
                "{} of {budget} account closures allowed in 30 days for Payer {} are used (the oldest, {next}, leaves the window 30 days later); raise spec.maxClosuresPer30Days on the Payer or wait",
                recent.len(),
                pc.key
            ),
            Duration::from_secs(3600),
        ));
    }
    if !already_recorded {
        ctx.ledger
            .record(
                &pc.payer,
                ClosureRecord {
                    account_id: account.id.clone(),
                    requested_at: now.to_string(),
                    linked_account: obj.name_any(),
                },
            )
            .await?;
    }
    changes.push(change(
        ChangeAction::Delete,
        format!("account {}", account.id),
        "CloseAccount",
    ));
    match pc.conn.organizations.close_account(&account.id).await {
        Err(e) if e.aws_code() == Some("AccountAlreadyClosedException") => {}
        Err(e)
            if matches!(
                e.aws_reason(),
                Some("CLOSE_ACCOUNT_QUOTA_EXCEEDED" | "CLOSE_ACCOUNT_REQUESTS_LIMIT_EXCEEDED")
            ) =>
        {
            return Err(Error::waiting(
                "CloseQuotaExceeded",
                format!(
                    "AWS refused to close more accounts now ({}); trying again in an hour",
                    e.aws_reason().unwrap_or_default()
                ),
                Duration::from_secs(3600),
            ));
        }
        Err(e) if e.aws_reason() == Some("CANNOT_CLOSE_MANAGEMENT_ACCOUNT") => {
            return Ok(Verdict::ready(
                "ManagementAccountProtected",
                "AWS refused to close the management account; released without changes",
            ));
        }
        other => other?,
    }
    status.deletion_requested_at = Some(now.to_string());
    pc.refresh(ctx).await?;
    match pc.snapshot.account(&account.id) {
        Some(a) if !a.state.is_closed_or_closing() => Err(Error::waiting(
            "Closing",
            format!(
                "CloseAccount was called for {}; waiting for PENDING_CLOSURE",
                account.id
            ),
            Duration::from_secs(5),
        )),
        Some(a) => Ok(Verdict::ready(
            "Closed",
            format!("account {} is {}", a.id, a.state),
        )),
        None => Ok(Verdict::ready(
            "Closed",
            format!("account {} is closed", account.id),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn la(name: &str, created: &str, status: Option<serde_json::Value>) -> LinkedAccount {
        let mut v = json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
            "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            "spec": {"payerRef": {"name": "p"}, "create": {"email": format!("{name}@example.com"), "accountName": name}}
        });
        if let Some(s) = status {
            v["status"] = s;
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn queue_is_oldest_first_then_by_name_and_skips_started_ones() {
        let all = vec![
            la("c", "2026-11-24T10:00:02Z", None),
            la("a", "2026-11-24T10:00:01Z", None),
            la("b", "2026-11-24T10:00:01Z", None),
            la(
                "started",
                "2026-11-24T09:00:00Z",
                Some(json!({"createRequestId": "car-1"})),
            ),
            la(
                "done",
                "2026-11-24T09:00:00Z",
                Some(json!({"accountId": "111122223333"})),
            ),
        ];
        let none = Default::default();
        assert_eq!(queue_position(&all[1], &all, &none), 0);
        assert_eq!(queue_position(&all[2], &all, &none), 1);
        assert_eq!(queue_position(&all[0], &all, &none), 2);
        // "a" asked for its account a moment ago; its status does not say so yet.
        let requested = ["a".to_string()].into_iter().collect();
        assert_eq!(queue_position(&all[2], &all, &requested), 0);
        assert_eq!(queue_position(&all[0], &all, &requested), 1);
        let queue: Vec<String> = creation_queue(&all, "p", &requested)
            .into_iter()
            .map(|o| o.name_any())
            .collect();
        assert_eq!(queue, ["b", "c"]);
        assert!(creation_queue(&all, "other", &none).is_empty());
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
        assert_eq!(recent_closures(&records, "2026-11-24T00:00:00Z").len(), 2);
        assert_eq!(recent_closures(&records, "2026-12-25T00:00:00Z").len(), 0);
    }

    fn handshake(id: &str, state: &str) -> Handshake {
        Handshake {
            id: id.into(),
            state: state.into(),
            target: "444455556666".into(),
            requested_at: Some("2026-10-01T00:00:00Z".into()),
            expires_at: Some("2026-10-16T00:00:00Z".into()),
        }
    }

    fn recorded(id: &str, state: &str) -> InvitationStatus {
        InvitationStatus {
            id: id.into(),
            state: state.into(),
            expires_at: Some("2026-10-16T00:00:00Z".into()),
            generation: Some(1),
            reinvite: None,
            ended_at: None,
        }
    }

    const NOW: &str = "2026-11-24T10:00:00Z";

    #[test]
    fn a_declined_invitation_stays_declined_after_aws_forgets_it() {
        // Seen declined: remembered with when it was seen.
        let step = invitation_step(
            Some(&recorded("h-1", "OPEN")),
            Some(&handshake("h-1", "DECLINED")),
            Some(1),
            None,
            NOW,
        );
        let InvitationStep::Ended { record, reason } = step else {
            panic!("{step:?}")
        };
        assert_eq!(reason, "InvitationDeclined");
        assert_eq!(record.ended_at.as_deref(), Some(NOW));
        // 30 days later AWS lists nothing: still declined, not sent again, same end time.
        let later = "2026-12-30T10:00:00Z";
        let step = invitation_step(Some(&record), None, Some(1), None, later);
        assert_eq!(
            step,
            InvitationStep::Ended {
                record: record.clone(),
                reason: "InvitationDeclined"
            }
        );
        // A changed spec or a new annotation value sends another.
        assert_eq!(
            invitation_step(Some(&record), None, Some(2), None, later),
            InvitationStep::Send
        );
        assert_eq!(
            invitation_step(Some(&record), None, Some(1), Some("1".into()), later),
            InvitationStep::Send
        );
    }

    #[test]
    fn an_open_invitation_aws_forgot_counts_as_expired() {
        let step = invitation_step(Some(&recorded("h-1", "OPEN")), None, Some(1), None, NOW);
        let InvitationStep::Ended { record, reason } = step else {
            panic!("{step:?}")
        };
        assert_eq!(
            (reason, record.state.as_str()),
            ("InvitationExpired", "EXPIRED")
        );
        let message = ended_message(&record, reason, "444455556666", true);
        assert!(message.contains("no longer lists it"), "{message}");
        assert!(message.contains(REINVITE_ANNOTATION), "{message}");
    }

    #[test]
    fn invitations_found_without_a_status_are_not_sent_again() {
        // Nothing recorded, nothing listed: the first invitation.
        assert_eq!(
            invitation_step(None, None, Some(1), None, NOW),
            InvitationStep::Send
        );
        // Listed but not recorded (status lost, or file mode): taken as sent for this spec.
        let open = invitation_step(None, Some(&handshake("h-2", "OPEN")), Some(1), None, NOW);
        assert!(matches!(open, InvitationStep::Open(r) if r.generation == Some(1)));
        let expired = invitation_step(None, Some(&handshake("h-2", "EXPIRED")), Some(1), None, NOW);
        assert!(
            matches!(
                &expired,
                InvitationStep::Ended {
                    reason: "InvitationExpired",
                    ..
                }
            ),
            "{expired:?}"
        );
        let accepted = invitation_step(
            None,
            Some(&handshake("h-2", "ACCEPTED")),
            Some(1),
            None,
            NOW,
        );
        assert!(matches!(accepted, InvitationStep::Accepted(_)));
        // Accepted once, the account gone since, and AWS no longer lists it: not by itself.
        let left = invitation_step(Some(&recorded("h-2", "ACCEPTED")), None, Some(1), None, NOW);
        assert!(
            matches!(
                &left,
                InvitationStep::Ended {
                    reason: "AccountLeftOrganization",
                    ..
                }
            ),
            "{left:?}"
        );
    }

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

    #[test]
    fn creation_failures_say_what_to_do() {
        let e = creation_failed("a@example.com", Some("EMAIL_ALREADY_EXISTS"));
        assert_eq!(e.reason(), "CreateFailed");
        assert!(e.is_terminal());
        assert!(e.to_string().contains("spec.invite"));
    }
}
