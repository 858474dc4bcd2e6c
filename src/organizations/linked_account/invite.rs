//! A LinkedAccount with `spec.invite`: follow the invitation handshake until the account
//! joins; send an invitation only for a new spec or reinvite annotation, never again by itself
//! after one was declined or expired (the status remembers the outcome after AWS forgets it).
//!
//! Observe (the snapshot's newest invitation to the account) -> the pure [`invitation_step`]
//! -> execute (wait, take the joined account, or send through [`PayerContext::write`]).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::LinkedAccount;
use crate::api::LinkedAccountStatus;
use crate::api::linked_account::{InvitationStatus, InviteAccount, REINVITE_ANNOTATION};
use crate::aws::organizations::Handshake;
use crate::error::Error;
use crate::payer::context::PayerContext;
use crate::payer::snapshot::OrgSnapshot;
use crate::reconcile::reasons::{
    ACCOUNT_LEFT_ORGANIZATION, CONFLICT, INVITATION_CANCELED, INVITATION_DECLINED,
    INVITATION_EXPIRED, INVITATION_PENDING, INVITATION_REFUSED, INVITATION_SENT, PLANNED_ONLY,
};
use crate::reconcile::run::Run;
use crate::reconcile::{ChangeAction, ReconcileContext, Verdict, change};

use super::located::{CREATE_POLL, Located};

/// How often an open invitation is looked at.
const INVITE_POLL: Duration = Duration::from_secs(30);

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
    now: Timestamp,
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
        "ACCEPTED" => ACCOUNT_LEFT_ORGANIZATION,
        "DECLINED" => INVITATION_DECLINED,
        "EXPIRED" => INVITATION_EXPIRED,
        _ => INVITATION_CANCELED,
    };
    if record.generation != generation || record.reinvite != reinvite {
        return InvitationStep::Send;
    }
    let mut record = record;
    record.ended_at = record.ended_at.or_else(|| Some(now.to_string()));
    InvitationStep::Ended { record, reason }
}

/// What the `Ready` condition says about an invitation that ended. Pure.
pub fn ended_message(
    record: &InvitationStatus,
    reason: &str,
    account_id: &str,
    forgotten: bool,
) -> String {
    let what = if reason == ACCOUNT_LEFT_ORGANIZATION {
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

/// Find the invited account, or follow the invitation to it.
pub(super) async fn locate(
    obj: &LinkedAccount,
    invite: &InviteAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    status: &mut LinkedAccountStatus,
) -> Result<Located, Error> {
    if let Some(a) = pc.snapshot.account(&invite.account_id) {
        return Ok(Located::Account(a.clone()));
    }
    let latest = pc.snapshot.latest_invitation(&invite.account_id).cloned();
    let step = invitation_step(
        status.invitation.as_ref(),
        latest.as_ref(),
        obj.metadata.generation,
        obj.reinvite_token(),
        run.time(),
    );
    match step {
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
            Ok(Located::Pending(Verdict::progressing(
                INVITATION_PENDING,
                message,
                INVITE_POLL,
            )))
        }
        InvitationStep::Accepted(record) => {
            status.invitation = Some(record);
            if let Some(a) = pc.account_joined(ctx, &invite.account_id).await? {
                return Ok(Located::Account(a));
            }
            Ok(Located::Pending(Verdict::progressing(
                INVITATION_PENDING,
                "the invitation was accepted; waiting for the account to be listed",
                CREATE_POLL,
            )))
        }
        InvitationStep::Ended { record, reason } => {
            let message = ended_message(&record, reason, &invite.account_id, latest.is_none());
            status.invitation = Some(record);
            Ok(Located::Pending(Verdict::blocked(reason, message)))
        }
        InvitationStep::Send => send(obj, invite, ctx, pc, run, status).await,
    }
}

/// InviteAccountToOrganization; the invitation id goes to the status at once.
async fn send(
    obj: &LinkedAccount,
    invite: &InviteAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    status: &mut LinkedAccountStatus,
) -> Result<Located, Error> {
    let (account_id, notes) = (&invite.account_id, invite.notes.as_deref());
    let sent = pc
        .write(
            ctx,
            run,
            change(
                ChangeAction::Create,
                format!("invitation to account {account_id}"),
                "InviteAccountToOrganization",
            ),
            |c| async move { c.organizations.invite_account(account_id, notes).await },
            |sent| {
                let handshake = sent.clone();
                move |s: &mut OrgSnapshot| s.add_invitation(&handshake)
            },
        )
        .await;
    let sent = match sent {
        Err(e) if e.aws_code() == Some("DuplicateHandshakeException") => {
            pc.invalidate(ctx);
            return Err(Error::retryable(
                CONFLICT,
                "an invitation to this account is already open; looking again",
            ));
        }
        Err(e) if e.aws_code() == Some("HandshakeConstraintViolationException") => {
            return Err(Error::terminal(
                INVITATION_REFUSED,
                format!("AWS refused to invite account {account_id}: {e}"),
            ));
        }
        other => other?,
    };
    let Some(sent) = sent else {
        return Ok(Located::Pending(Verdict::blocked(
            PLANNED_ONLY,
            "an invitation would be sent",
        )));
    };
    run.event(
        false,
        INVITATION_SENT,
        format!("invitation {} sent to account {account_id}", sent.id),
    );
    status.invitation = Some(InvitationStatus {
        id: sent.id.clone(),
        state: sent.state.clone(),
        expires_at: sent.expires_at.clone(),
        generation: obj.metadata.generation,
        reinvite: obj.reinvite_token(),
        ended_at: None,
    });
    Ok(Located::Pending(Verdict::progressing(
        INVITATION_PENDING,
        format!(
            "invitation {} sent to account {account_id}; the account joins when its owner accepts",
            sent.id
        ),
        INVITE_POLL,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn a_declined_invitation_stays_declined_after_aws_forgets_it() {
        // Seen declined: remembered with when it was seen.
        let step = invitation_step(
            Some(&recorded("h-1", "OPEN")),
            Some(&handshake("h-1", "DECLINED")),
            Some(1),
            None,
            at(NOW),
        );
        let InvitationStep::Ended { record, reason } = step else {
            panic!("{step:?}")
        };
        assert_eq!(reason, "InvitationDeclined");
        assert_eq!(record.ended_at.as_deref(), Some(NOW));
        // 30 days later AWS lists nothing: still declined, not sent again, same end time.
        let later = at("2026-12-30T10:00:00Z");
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
        let step = invitation_step(Some(&recorded("h-1", "OPEN")), None, Some(1), None, at(NOW));
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
            invitation_step(None, None, Some(1), None, at(NOW)),
            InvitationStep::Send
        );
        // Listed but not recorded (status lost, or file mode): taken as sent for this spec.
        let open = invitation_step(
            None,
            Some(&handshake("h-2", "OPEN")),
            Some(1),
            None,
            at(NOW),
        );
        assert!(matches!(open, InvitationStep::Open(r) if r.generation == Some(1)));
        let expired = invitation_step(
            None,
            Some(&handshake("h-2", "EXPIRED")),
            Some(1),
            None,
            at(NOW),
        );
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
            at(NOW),
        );
        assert!(matches!(accepted, InvitationStep::Accepted(_)));
        // Accepted once, the account gone since, and AWS no longer lists it: not by itself.
        let left = invitation_step(
            Some(&recorded("h-2", "ACCEPTED")),
            None,
            Some(1),
            None,
            at(NOW),
        );
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
}
