//! LinkedAccount notifications: the e-mail sent when an account joined or was closed, at most
//! once, and the `Notified` condition that reports it.
//!
//! What went out is recorded in the status and on the account itself, in the tag
//! `partnerbilling.io/notified`, which is read whenever the status does not know (file mode
//! starts without statuses; a status can be lost).
//!
//! At most once: the tag is marked `Event=sending@TIME` before the mail server is asked and
//! `Event=sent@TIME` once it accepted the message. A failure the mail server reports, or a
//! server that cannot be reached, takes the mark back so that the next attempt sends. If the
//! operator stops between marking and recording, the mark stays `sending`: the notice is not
//! sent again, and the condition `NotificationUncertain` says how to send it by hand. The one
//! window left for a second copy is a connection that breaks after the server took the
//! message but before its answer arrived.
//!
//! The marks are the notification's own ledger, written only when a notice is sent. Nothing is
//! sent and no mark is written unless the run applies (never in plan mode, under
//! `managementPolicy: Observe`, or in a planned deletion), and every mark goes through
//! [`Run::write`], the one AWS write path: a run that does not apply makes no call, and the
//! marks an apply writes are in its changes (`apply -f` lists them).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::{Timestamp, ToSpan};
use kube::ResourceExt;

use crate::api::conditions::{ConditionStatus, DesiredCondition};
use crate::api::notifications::{
    NOTIFIED_TAG, NotificationEvent, NotificationRecord, SmtpSettings,
};
use crate::api::{LinkedAccount, LinkedAccountStatus, Payer};
use crate::aws::organizations::{OrganizationsApi, Tags};
use crate::error::Error;
use crate::notify::{AccountFacts, Delivery, NotifiedTag, compose};
use crate::payer::context::payer_connection;
use crate::reconcile::reasons::{
    NO_SMTP_SETTINGS, NOTIFICATION_NOT_SENT, NOTIFICATION_PENDING, NOTIFICATION_UNCERTAIN,
    SECRET_KEY_MISSING, SECRET_NOT_FOUND, SENT,
};
use crate::reconcile::run::Run;
use crate::reconcile::{ChangeAction, ReconcileContext, change};
use crate::secrets::SecretString;

/// Condition type for notifications.
pub const NOTIFIED: &str = "Notified";
/// How soon a failed notification is tried again.
pub(super) const NOTIFY_RETRY: Duration = Duration::from_secs(60);
/// How long a closed account's object waits for its closure notification to go out.
const CLOSE_NOTIFY_PATIENCE_SECS: i64 = 24 * 3600;

/// What one notification attempt came to: `None` when nothing was to be sent, else a message
/// for the `Notified` condition or why it failed.
pub(super) type Notified = Option<Result<String, Error>>;

/// One notice to send.
struct Notice<'a> {
    event: NotificationEvent,
    recipients: &'a [String],
    account_id: String,
    now: Timestamp,
}

/// Send `event`'s notification unless the run does not apply (plan, Observe), it is not
/// wanted, the payer is unknown, or it already went out (see the module docs). `tags` are the
/// account's tags if this reconcile read them already.
pub(super) async fn send(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    run: &mut Run,
    event: NotificationEvent,
    status: &mut LinkedAccountStatus,
    tags: Option<&Tags>,
) -> Notified {
    if !run.applying() {
        return None;
    }
    let payer = ctx.catalog.get::<crate::api::Payer>(
        &obj.namespace().unwrap_or_default(),
        &obj.spec.payer_ref.name,
    )?;
    let wanted = obj.spec.notifications.as_ref().filter(|n| n.wants(event))?;
    let account_id = status.account_id.clone()?;
    if status
        .notifications
        .iter()
        .any(|r| r.event == event && r.account_id == account_id)
    {
        return None;
    }
    let notice = Notice {
        event,
        recipients: &wanted.recipients,
        account_id,
        now: run.time(),
    };
    Some(deliver(obj, ctx, run, &payer, &notice, status, tags).await)
}

/// The SMTP settings of `payer` and the login from their Secret, if any.
async fn smtp_settings(
    ctx: &ReconcileContext,
    payer: &Payer,
) -> Result<(SmtpSettings, Option<(String, SecretString)>), Error> {
    let namespace = payer.namespace().unwrap_or_default();
    let Some(settings) = payer.spec.notifications.as_ref().map(|n| n.smtp.clone()) else {
        return Err(Error::terminal(
            NO_SMTP_SETTINGS,
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
            SECRET_NOT_FOUND,
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
                SECRET_KEY_MISSING,
                format!(
                    "Secret {namespace}/{} needs keys {user_key:?} and {pass_key:?} for the SMTP login",
                    r.name
                ),
            ));
        }
    };
    Ok((settings, Some(login)))
}

/// The `partnerbilling.io/notified` tag of one account: what it says, and whether it can be
/// written (a closed account may refuse tags: its closure notice is then recorded in the
/// status only; the object is being deleted, and nothing else sends that notice).
struct Mark<'a> {
    orgs: Arc<dyn OrganizationsApi>,
    account_id: &'a str,
    event: NotificationEvent,
    tag: NotifiedTag,
    on_account: bool,
}

impl<'a> Mark<'a> {
    /// Whether `e`, met while writing the mark, means "status only" rather than a failure.
    fn status_only(&self, e: &Error) -> bool {
        self.event == NotificationEvent::Closed && e.is_terminal()
    }

    /// The mark as `tags` (read by this reconcile) holds it, else as AWS does.
    async fn read(
        orgs: Arc<dyn OrganizationsApi>,
        notice: &'a Notice<'_>,
        tags: Option<&Tags>,
    ) -> Result<Mark<'a>, Error> {
        let mut mark = Mark {
            orgs,
            account_id: &notice.account_id,
            event: notice.event,
            tag: NotifiedTag::default(),
            on_account: true,
        };
        let read = match tags {
            Some(t) => Ok(t.clone()),
            None => mark.orgs.list_tags(mark.account_id).await,
        };
        match read {
            Ok(t) => {
                mark.tag =
                    NotifiedTag::parse(t.get(NOTIFIED_TAG).map(String::as_str).unwrap_or_default())
            }
            Err(e) if mark.status_only(&e) => mark.on_account = false,
            Err(e) => return Err(e),
        }
        Ok(mark)
    }

    fn rendered(&self) -> Tags {
        [(NOTIFIED_TAG.to_string(), self.tag.render())].into()
    }

    /// Write the mark as it is now through `run` (`what` says what it records).
    async fn write(&self, run: &mut Run, what: &str) -> Result<(), Error> {
        let target = format!("tag {NOTIFIED_TAG} of {}", self.account_id);
        let detail = format!("{} {what}", self.event.name());
        let tags = self.rendered();
        run.write(change(ChangeAction::Update, target, detail), || {
            self.orgs.tag_resource(self.account_id, &tags)
        })
        .await
        .map(|_| ())
    }

    /// Mark the notice as being sent (before the mail server is asked).
    async fn sending(&mut self, run: &mut Run, now: Timestamp) -> Result<(), Error> {
        if !self.on_account {
            return Ok(());
        }
        self.tag
            .set(self.event, &Delivery::Sending(now.to_string()));
        match self.write(run, "sending").await {
            Ok(()) => Ok(()),
            Err(e) if self.status_only(&e) => {
                self.on_account = false;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Mark the notice as sent. A failure only leaves it "sending", which never sends it
    /// again either (the status records it as sent).
    async fn sent(&mut self, run: &mut Run, now: Timestamp) {
        if !self.on_account {
            return;
        }
        self.tag.set(self.event, &Delivery::Sent(now.to_string()));
        if let Err(e) = self.write(run, "sent").await {
            tracing::warn!(account = self.account_id, error = %e, "the notification went out, but tag {NOTIFIED_TAG} could not be updated");
        }
    }

    /// Not delivered: take the mark back so that the next attempt sends.
    async fn take_back(&mut self, run: &mut Run) {
        if !self.on_account {
            return;
        }
        self.tag.remove(self.event);
        let undone = if self.tag.is_empty() {
            let what = change(
                ChangeAction::Update,
                format!("tag {NOTIFIED_TAG} of {}", self.account_id),
                format!("remove ({} not sent)", self.event.name()),
            );
            let keys = [NOTIFIED_TAG.to_string()];
            run.write(what, || self.orgs.untag_resource(self.account_id, &keys))
                .await
                .map(|_| ())
        } else {
            self.write(run, "not sent").await
        };
        if let Err(e) = undone {
            tracing::warn!(account = self.account_id, error = %e, "tag {NOTIFIED_TAG} still marks a notification as being sent; it will not be sent again");
        }
    }
}

/// What the mark says about sending `event`. Pure.
fn already(
    mark: &NotifiedTag,
    event: NotificationEvent,
    account_id: &str,
) -> Option<Result<String, Error>> {
    match mark.get(event)? {
        Delivery::Sent(at) => Some(Ok(at)),
        Delivery::Sending(at) => Some(Err(Error::terminal(
            NOTIFICATION_UNCERTAIN,
            format!(
                "sending the {name} notification began at {at} and was cut off before the mail server's answer was recorded: it may not have arrived, and it is not sent again so that nobody gets it twice. To send it, remove \"{name}=...\" from tag {NOTIFIED_TAG} of account {account_id} (or the whole tag)",
                name = event.name(),
            ),
        ))),
    }
}

/// Send one notice, at most once (see the module docs).
async fn deliver(
    obj: &LinkedAccount,
    ctx: &ReconcileContext,
    run: &mut Run,
    payer: &Payer,
    notice: &Notice<'_>,
    status: &mut LinkedAccountStatus,
    tags: Option<&Tags>,
) -> Result<String, Error> {
    let (settings, login) = smtp_settings(ctx, payer).await?;
    let (_, _, conn) = payer_connection(
        &obj.namespace().unwrap_or_default(),
        &obj.spec.payer_ref,
        ctx,
    )
    .await?;
    let mut mark = Mark::read(conn.organizations.clone(), notice, tags).await?;
    let record = |status: &mut LinkedAccountStatus, at: &str| {
        status.notifications.push(NotificationRecord {
            event: notice.event,
            account_id: notice.account_id.clone(),
            sent_at: at.to_string(),
            recipients: notice.recipients.to_vec(),
        });
    };
    match already(&mark.tag, notice.event, &notice.account_id) {
        Some(Ok(at)) => {
            record(status, &at);
            return Ok(format!(
                "the notification went out at {at} (recorded in tag {NOTIFIED_TAG} of account {})",
                notice.account_id
            ));
        }
        Some(Err(uncertain)) => return Err(uncertain),
        None => {}
    }
    mark.sending(run, notice.now).await?;
    let mail = compose(
        notice.event,
        &settings.from,
        notice.recipients,
        &facts(payer, &notice.account_id, status),
    );
    match ctx.mailer.send(&settings, login, &mail).await {
        Ok(()) => {
            record(status, &notice.now.to_string());
            mark.sent(run, notice.now).await;
            Ok("the notification was handed to the mail server".into())
        }
        Err(send_failed) => {
            mark.take_back(run).await;
            Err(send_failed)
        }
    }
}

/// What the notice says about the account.
fn facts(payer: &Payer, account_id: &str, status: &LinkedAccountStatus) -> AccountFacts {
    AccountFacts {
        account_id: account_id.to_string(),
        name: status.name.clone().unwrap_or_default(),
        email: status.email.clone().unwrap_or_default(),
        organization_id: payer
            .status
            .as_ref()
            .and_then(|s| s.organization_id.clone())
            .unwrap_or_else(|| "of the payer".into()),
        joined_method: status.joined_method.clone().unwrap_or_default(),
    }
}

/// The `Notified` condition after a notification attempt (none when there was none). Pure.
pub(super) fn condition(notified: &Notified) -> Option<DesiredCondition> {
    match notified.as_ref()? {
        Ok(message) => Some(DesiredCondition::new(
            NOTIFIED,
            ConditionStatus::True,
            SENT,
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

/// Whether a failed notification is tried again soon (an uncertain one never is). Pure.
pub(super) fn retry(notified: &Notified) -> bool {
    matches!(notified, Some(Err(e)) if e.reason() != NOTIFICATION_UNCERTAIN)
}

/// What a closure notice that failed means for the object's release.
#[derive(Debug)]
pub(super) enum ClosureNotice {
    /// Keep the object (and its finalizer) until the notice goes out.
    Wait(Error),
    /// Release it without the notice (a warning Event: reason, note).
    GiveUp(&'static str, String),
}

/// Decide about a failed closure notice: wait for it while it may still go out (it failed for
/// a reason that passes, and the closure was asked for less than 24 hours ago), else give up.
/// An uncertain notice is never tried again, so waiting for it would be in vain. Pure.
pub(super) fn closure_notice(
    notified: &Notified,
    deletion_requested_at: Option<&str>,
    now: Timestamp,
) -> Option<ClosureNotice> {
    let Some(Err(e)) = notified else {
        return None;
    };
    let patient = retry(notified)
        && deletion_requested_at
            .and_then(|t| t.parse::<Timestamp>().ok())
            .and_then(|t| t.checked_add(CLOSE_NOTIFY_PATIENCE_SECS.seconds()).ok())
            .is_some_and(|limit| limit >= now);
    Some(if patient {
        ClosureNotice::Wait(Error::waiting(
            NOTIFICATION_PENDING,
            format!(
                "the account is closed; the closure notification failed ({e}) and is tried again"
            ),
            NOTIFY_RETRY,
        ))
    } else {
        ClosureNotice::GiveUp(
            NOTIFICATION_NOT_SENT,
            format!(
                "the closure notification could not be sent for 24 hours ({e}); released without it"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn a_failed_closure_notice_is_waited_for_a_day_and_an_uncertain_one_never() {
        let failed: Notified = Some(Err(Error::retryable("SmtpFailed", "refused")));
        let asked = Some("2026-11-24T10:00:00Z");
        assert!(matches!(
            closure_notice(&failed, asked, at("2026-11-25T10:00:00Z")),
            Some(ClosureNotice::Wait(_))
        ));
        assert!(matches!(
            closure_notice(&failed, asked, at("2026-11-25T10:00:01Z")),
            Some(ClosureNotice::GiveUp(NOTIFICATION_NOT_SENT, _))
        ));
        assert!(matches!(
            closure_notice(&failed, Some("garbage"), at("2026-11-24T10:00:00Z")),
            Some(ClosureNotice::GiveUp(..))
        ));
        let uncertain: Notified = Some(Err(Error::terminal(NOTIFICATION_UNCERTAIN, "cut off")));
        assert!(matches!(
            closure_notice(&uncertain, asked, at("2026-11-24T10:00:00Z")),
            Some(ClosureNotice::GiveUp(..))
        ));
        assert!(
            closure_notice(&Some(Ok("sent".into())), asked, at("2026-11-24T10:00:00Z")).is_none()
        );
        assert!(closure_notice(&None, asked, at("2026-11-24T10:00:00Z")).is_none());
    }
}
