//! BillingTransfer: an AWS Billing Transfer from a customer organization to the Payer's
//! management account (Organizations responsibility transfer of type BILLING), and Billing
//! Conductor's automatic transfer billing groups preference of it.
//!
//! Reconcile: [`validate`] the spec before any call (pure: month boundaries, not the Payer's
//! own organization), [`observe`] the transfer (by the id in the status, else by natural key —
//! customer and start — among ListInboundResponsibilityTransfers, and only with this object's
//! owner tag: never on the name), [`plan`] (pure: follow it, report how it ended, or send an
//! invitation — a new one only on a spec change or a new `partnerbilling.io/reinvite` value, as
//! LinkedAccount invitations), execute through the `Run`, then, once ACCEPTED, the planned end
//! (TerminateResponsibilityTransfer, once) and the preference ([`plan_preference`], pure).
//! Cleanup: `Retain` releases; `Terminate` cancels an open invitation (CancelHandshake) or
//! ends an accepted transfer at the end of the month ([`plan_deletion`], pure), never twice.
//!
//! AWS facts (Billing User Guide, orgs_transfer_billing-send-invitation /
//! -respond-invitation / -stop-transfer): only the bill-transfer account invites; a transfer
//! starts at 00:00:00 UTC on the first day of a month; the invitation must be accepted 24
//! hours before the start; a withdrawn transfer ends at 23:59:59 UTC on the last day of a
//! month and cannot be undone. The Payer sees its transfers as inbound ("Inbound billing:
//! Billing transfers that allow you to manage and pay for another organization's consolidated
//! bill").

use std::time::Duration;

use k8s_openapi::jiff::civil::Date;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, ToSpan};
use kube::ResourceExt;

use crate::api::billing_transfer::{
    ACCEPTED, AutomaticBillingGroups, ENDED_STATES, PreferenceStatus, REQUESTED,
    TransferDeletionPolicy, TransferInvitation,
};
use crate::api::common::{OWNER_TAG, owner_value};
use crate::api::linked_account::REINVITE_ANNOTATION;
use crate::api::{BillingTransfer, BillingTransferStatus};
use crate::aws::organizations::{Tags, Transfer, TransferInvite, TransferParty};
use crate::aws::transfer_preference::TransferPreference;
use crate::billing::context::BillingContext;
use crate::error::Error;
use crate::payer::context::PayerContext;
use crate::reconcile::ownership::client_token;
use crate::reconcile::reasons::{
    DEPENDENCY_NOT_READY, INVALID_SPEC, INVALID_TRANSFER_DATE, PLANNED_ONLY, RELEASED, TERMINATED,
    TRANSFER_ACCEPTED, TRANSFER_CANCELED, TRANSFER_DECLINED, TRANSFER_EXPIRED,
    TRANSFER_INVITATION_SENT, TRANSFER_MISMATCH, TRANSFER_NOT_LISTED, TRANSFER_REFUSED,
    TRANSFER_REQUESTED, TRANSFER_WITHDRAWN,
};
use crate::reconcile::run::Run;
use crate::reconcile::{
    ChangeAction, DEPENDENCY_RETRY, KindOutcome, ReconcileContext, Verdict, change,
};

/// How often an open invitation is looked at.
const REQUESTED_POLL: Duration = Duration::from_secs(60);
/// How long after an invitation its transfer not being shown by AWS is taken for read lag
/// only; after that the condition asks a person to look.
const NOT_LISTED_GRACE: i64 = 15 * 60;
/// AWS: "Invites must be accepted 24 hours before the billing transfer start date".
const ACCEPT_BEFORE_START: i64 = 24 * 3600;

/// What the object asks AWS for, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TransferDesired {
    pub customer: TransferParty,
    /// Seconds since the epoch: 00:00:00 UTC on the first day of a month.
    pub start_epoch: i64,
    /// Seconds since the epoch: 23:59:59 UTC on the last day of a month.
    pub end_epoch: Option<i64>,
    pub name: String,
    pub notes: Option<String>,
    /// The owner tag value that marks the transfer as this object's.
    pub owner: String,
}

impl TransferDesired {
    fn customer_text(&self) -> String {
        match &self.customer {
            TransferParty::Account(id) => format!("account {id}"),
            TransferParty::Email(e) => format!("the management account of {e}"),
        }
    }

    /// Whether `t` is for this customer and start (the natural key).
    pub fn matches(&self, t: &Transfer) -> bool {
        let customer = match &self.customer {
            TransferParty::Account(id) => t.source_account_id.as_deref() == Some(id.as_str()),
            TransferParty::Email(e) => t
                .source_email
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(e)),
        };
        customer && epoch(t.start.as_deref()) == Some(self.start_epoch)
    }
}

fn epoch(t: Option<&str>) -> Option<i64> {
    t.and_then(|t| t.parse::<Timestamp>().ok())
        .map(|t| t.as_second())
}

fn utc_date(seconds: i64) -> Option<Date> {
    Timestamp::from_second(seconds)
        .ok()
        .map(|t| t.to_zoned(TimeZone::UTC).date())
}

fn at(date: Date, h: i8, m: i8, s: i8) -> Option<i64> {
    date.at(h, m, s, 0)
        .to_zoned(TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

fn rfc3339(seconds: i64) -> String {
    Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// 23:59:59 UTC on the last day of the month of `seconds`.
pub fn end_of_month(seconds: i64) -> Option<i64> {
    utc_date(seconds).and_then(|d| at(d.last_of_month(), 23, 59, 59))
}

/// The earliest start an invitation sent at `now` can ask for: the first first-of-month more
/// than 24 hours ahead.
pub fn earliest_start(now: i64) -> Option<i64> {
    let first = utc_date(now)?.first_of_month();
    let mut next = first.checked_add(1.month()).ok()?;
    if at(next, 0, 0, 0)? - now <= ACCEPT_BEFORE_START {
        next = next.checked_add(1.month()).ok()?;
    }
    at(next, 0, 0, 0)
}

fn parse_start(start: &str) -> Result<i64, Error> {
    let bad = || {
        Error::terminal(
            INVALID_TRANSFER_DATE,
            format!(
                "spec.start {start} is not 00:00:00 UTC on the first day of a month; AWS starts billing transfers only then: write it as YYYY-MM-01T00:00:00Z"
            ),
        )
    };
    let seconds = epoch(Some(start)).ok_or_else(bad)?;
    let date = utc_date(seconds).ok_or_else(bad)?;
    if at(date.first_of_month(), 0, 0, 0) != Some(seconds) {
        return Err(bad());
    }
    Ok(seconds)
}

fn parse_end(end: &str, start: i64) -> Result<i64, Error> {
    let bad = |why: &str| Error::terminal(INVALID_TRANSFER_DATE, format!("spec.end {end} {why}"));
    let seconds = epoch(Some(end)).ok_or_else(|| bad("is not an RFC 3339 time"))?;
    if end_of_month(seconds) != Some(seconds) {
        let fix = end_of_month(seconds).map(rfc3339).unwrap_or_default();
        return Err(bad(&format!(
            "is not 23:59:59 UTC on the last day of a month; AWS ends billing transfers only then (that month ends at {fix})"
        )));
    }
    if seconds <= start {
        return Err(bad("is not after spec.start"));
    }
    Ok(seconds)
}

/// Check the spec before any call and turn it into what AWS is asked for. `payer_account`
/// is the Payer's management account; `member` says whether an account id is in the Payer's
/// organization. Pure.
pub fn validate(
    obj: &BillingTransfer,
    namespace: &str,
    payer_account: &str,
    member: impl Fn(&str) -> bool,
) -> Result<TransferDesired, Error> {
    let spec = &obj.spec;
    let customer = match (&spec.customer.account_id, &spec.customer.email) {
        (Some(id), None) => TransferParty::Account(id.clone()),
        (None, Some(e)) => TransferParty::Email(e.clone()),
        _ => {
            return Err(Error::terminal(
                INVALID_SPEC,
                "set exactly one of spec.customer.accountId and spec.customer.email",
            ));
        }
    };
    if let TransferParty::Account(id) = &customer {
        if id == payer_account {
            return Err(Error::terminal(
                INVALID_SPEC,
                format!(
                    "spec.customer.accountId {id} is the Payer's own management account; a billing transfer comes from another organization's management account"
                ),
            ));
        }
        if member(id) {
            return Err(Error::terminal(
                INVALID_SPEC,
                format!(
                    "spec.customer.accountId {id} is a member of the Payer's own organization; a billing transfer comes from the management account of another organization"
                ),
            ));
        }
    }
    let start_epoch = parse_start(&spec.start)?;
    let end_epoch = spec
        .end
        .as_deref()
        .map(|e| parse_end(e, start_epoch))
        .transpose()?;
    Ok(TransferDesired {
        customer,
        start_epoch,
        end_epoch,
        name: spec.transfer_name.clone().unwrap_or_else(|| obj.name_any()),
        notes: spec.notes.clone(),
        owner: owner_value(namespace, "BillingTransfer", &obj.name_any()),
    })
}

/// What to do about the transfer.
#[derive(Clone, Debug, PartialEq)]
pub enum TransferStep {
    /// The transfer is REQUESTED or ACCEPTED (or ended as the spec's own end planned): follow it.
    Follow(Transfer),
    /// It ended without being asked again: nothing is sent until the spec or the reinvite
    /// annotation changes.
    Ended {
        transfer: Transfer,
        reason: &'static str,
    },
    /// Send an invitation: the first one, or one asked for again.
    Send,
    /// An invitation was sent for this spec (handshake `handshake`, at `sent_at`) but AWS does
    /// not show its transfer yet (an eventually consistent read): wait for it, never send
    /// another.
    Await { handshake: String, sent_at: String },
}

/// The condition reason of a transfer state that ended.
pub fn ended_reason(state: &str) -> &'static str {
    match state {
        "DECLINED" => TRANSFER_DECLINED,
        "EXPIRED" => TRANSFER_EXPIRED,
        "WITHDRAWN" => TRANSFER_WITHDRAWN,
        _ => TRANSFER_CANCELED,
    }
}

/// Decide about the transfer from the one `found` in AWS (this object's), what the status
/// remembers of the last invitation (`recorded`), the object's `generation` and reinvite
/// annotation value, at `now` (seconds). A transfer found for another customer or start is
/// refused (AWS cannot change either); an ended one is invited again only when the spec or
/// the annotation changed since it was sent (without a record — status lost — it is taken as
/// sent for the current spec, so nothing is sent by itself); a new invitation only while the
/// customer still has 24 hours to accept before the start. When the record says an invitation
/// was sent for the current spec and AWS shows no transfer of it (none found, or only an
/// ended one of an earlier invitation), the invitation's transfer is awaited
/// ([`TransferStep::Await`]): a read that lags behind the invitation never sends a second one.
/// Pure.
pub fn plan(
    desired: &TransferDesired,
    found: Option<&Transfer>,
    recorded: Option<&TransferInvitation>,
    generation: Option<i64>,
    reinvite: Option<String>,
    now: i64,
) -> Result<TransferStep, Error> {
    let live = |t: &Transfer| !ENDED_STATES.contains(&t.status.as_str());
    // The invitation the status records, when it was sent for the current spec.
    let sent_for_this_spec = recorded
        .filter(|r| r.generation == generation && r.reinvite == reinvite)
        .and_then(|r| Some((r.handshake_id.clone()?, r.sent_at.clone())));
    let awaiting =
        |(handshake, sent_at): (String, String)| TransferStep::Await { handshake, sent_at };
    let step = match found {
        Some(t) if live(t) && !desired.matches(t) => {
            return Err(Error::terminal(
                TRANSFER_MISMATCH,
                format!(
                    "transfer {} is from account {} starting {}, but the spec asks for {} starting {}; AWS cannot change a transfer's customer or start: set deletionPolicy Terminate and delete this object, then create a new BillingTransfer",
                    t.id,
                    t.source_account_id.as_deref().unwrap_or("?"),
                    t.start.as_deref().unwrap_or("?"),
                    desired.customer_text(),
                    rfc3339(desired.start_epoch)
                ),
            ));
        }
        Some(t) if live(t) => return Ok(TransferStep::Follow(t.clone())),
        // Ended by the spec's own end: nothing more to ask.
        Some(t) if t.status == "WITHDRAWN" && desired.end_epoch.is_some() && desired.matches(t) => {
            return Ok(TransferStep::Follow(t.clone()));
        }
        // An ended transfer of an earlier spec (another customer or start): the spec changed.
        Some(t) if !desired.matches(t) => TransferStep::Send,
        Some(t) => {
            // An ended transfer of an earlier invitation, while the one sent for this spec is
            // not shown yet.
            if let Some(sent) = sent_for_this_spec.clone()
                && t.handshake_id.as_ref().is_some_and(|h| *h != sent.0)
            {
                return Ok(awaiting(sent));
            }
            let asked_again =
                recorded.is_some_and(|r| r.generation != generation || r.reinvite != reinvite);
            if !asked_again {
                return Ok(TransferStep::Ended {
                    transfer: t.clone(),
                    reason: ended_reason(&t.status),
                });
            }
            TransferStep::Send
        }
        None => match sent_for_this_spec {
            Some(sent) => return Ok(awaiting(sent)),
            None => TransferStep::Send,
        },
    };
    if desired.start_epoch - now < ACCEPT_BEFORE_START {
        let earliest = earliest_start(now).map(rfc3339).unwrap_or_default();
        return Err(Error::terminal(
            INVALID_TRANSFER_DATE,
            format!(
                "spec.start {} is less than 24 hours away: AWS needs the customer to accept at least 24 hours before the start; the earliest start an invitation sent now can ask for is {earliest}",
                rfc3339(desired.start_epoch)
            ),
        ));
    }
    Ok(step)
}

/// The preference the spec asks for, resolved (`plan_arn`: the PricingPlan's ARN or the
/// AWS-managed plan's name), against what Billing Conductor holds; `None` when they agree.
/// Plans are compared by their last ARN segment (AWS may answer an AWS-managed plan by name
/// or by full ARN). Pure.
pub fn plan_preference(
    wanted: &AutomaticBillingGroups,
    plan_arn: Option<String>,
    current: &TransferPreference,
) -> Option<TransferPreference> {
    let desired = TransferPreference {
        enabled: wanted.enabled,
        pricing_plan_arn: if wanted.enabled { plan_arn } else { None },
    };
    let key = |a: &Option<String>| {
        a.as_deref()
            .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
    };
    let same = desired.enabled == current.enabled
        && key(&desired.pricing_plan_arn) == key(&current.pricing_plan_arn);
    (!same).then_some(desired)
}

/// Reconcile a BillingTransfer.
pub async fn reconcile(
    obj: &BillingTransfer,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<BillingTransferStatus> {
    run.reconcile(
        obj.status.as_ref(),
        obj.metadata.generation,
        async |run, status| apply(obj, ctx, run, status).await,
    )
    .await
}

async fn apply(
    obj: &BillingTransfer,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut BillingTransferStatus,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let mut pc = PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await?;
    let desired = validate(obj, &namespace, &pc.payer.spec.account_id, |id| {
        pc.snapshot.account(id).is_some()
    })?;
    let found = observe(&pc, status.transfer_id.as_deref(), &desired.owner, |t| {
        desired.matches(t)
    })
    .await?;
    let step = plan(
        &desired,
        found.as_ref(),
        status.invitation.as_ref(),
        obj.metadata.generation,
        obj.reinvite_token(),
        run.time().as_second(),
    )?;
    let transfer = match step {
        TransferStep::Follow(t) => t,
        TransferStep::Ended { transfer, reason } => {
            record(status, &transfer);
            return Ok(Verdict::blocked(reason, ended_message(&transfer)));
        }
        TransferStep::Await { handshake, sent_at } => {
            return Err(not_listed(
                &handshake,
                &sent_at,
                &desired,
                run.time().as_second(),
            ));
        }
        TransferStep::Send => match send(obj, &mut pc, run, &desired, status).await? {
            Some(t) => t,
            None => {
                return Ok(Verdict::blocked(
                    PLANNED_ONLY,
                    format!(
                        "a billing transfer invitation would be sent to {}",
                        desired.customer_text()
                    ),
                ));
            }
        },
    };
    record(status, &transfer);
    // The invitation record follows the spec while the transfer is live, so that only a
    // change after it ended sends another one.
    if let Some(inv) = status.invitation.as_mut() {
        inv.generation = obj.metadata.generation;
        inv.reinvite = obj.reinvite_token();
    }
    follow(obj, ctx, &mut pc, run, &desired, transfer, status).await
}

/// The transfer of this object: by the status's id, else among the inbound transfers that
/// pass `key` (the natural key, when the spec is valid; any, on deletion) only one carrying
/// this object's owner tag `owner` (one ListTagsForResource per candidate). A live one
/// (REQUESTED, ACCEPTED) wins over ended ones.
async fn observe(
    pc: &PayerContext,
    known_id: Option<&str>,
    owner: &str,
    key: impl Fn(&Transfer) -> bool,
) -> Result<Option<Transfer>, Error> {
    let orgs = &pc.conn.organizations;
    if let Some(id) = known_id
        && let Some(t) = orgs.describe_transfer(id).await?
    {
        return Ok(Some(t));
    }
    let mut candidates: Vec<Transfer> = orgs
        .list_inbound_transfers()
        .await?
        .into_iter()
        .filter(|t| key(t))
        .collect();
    candidates.sort_by_key(|t| ENDED_STATES.contains(&t.status.as_str()));
    for t in candidates {
        let tags = orgs.list_tags(&t.id).await?;
        if tags.get(OWNER_TAG).map(String::as_str) == Some(owner) {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

fn record(status: &mut BillingTransferStatus, t: &Transfer) {
    status.transfer_id = Some(t.id.clone());
    status.transfer_arn = Some(t.arn.clone()).filter(|a| !a.is_empty());
    status.state = Some(t.status.clone());
    status.start = t.start.clone();
    status.end = t.end.clone();
    status.customer_account_id = t.source_account_id.clone();
}

fn ended_message(t: &Transfer) -> String {
    format!(
        "billing transfer {} was {}; it is not sent again by itself: change the spec or set the annotation {REINVITE_ANNOTATION} to a new value to send another invitation",
        t.id,
        t.status.to_ascii_lowercase()
    )
}

/// The condition while the invitation `handshake` sent for this spec at `sent_at` has no
/// transfer AWS shows: retried, never sent again; after [`NOT_LISTED_GRACE`] it says what a
/// person can do. Pure.
pub fn not_listed(handshake: &str, sent_at: &str, desired: &TransferDesired, now: i64) -> Error {
    let since = epoch(Some(sent_at)).map(|t| now - t).unwrap_or(0);
    let advice = if since > NOT_LISTED_GRACE {
        format!(
            "; still not shown {} minutes later: look for the invitation in the Billing console (Inbound billing); if it is gone, set the annotation {REINVITE_ANNOTATION} to a new value to send another",
            since / 60
        )
    } else {
        String::new()
    };
    Error::waiting(
        TRANSFER_NOT_LISTED,
        format!(
            "billing transfer invitation {handshake} was sent to {} at {sent_at} for this spec, but AWS does not show its transfer yet (its reads are eventually consistent); it is not sent again, waiting for the transfer{advice}",
            desired.customer_text()
        ),
        REQUESTED_POLL,
    )
}

/// InviteOrganizationToTransferResponsibility (the owner tag on the transfer), then the
/// transfer it made; the invitation record (and the transfer id AWS names in the handshake)
/// goes to the status at once, so that the next reconcile awaits this invitation's transfer
/// rather than sending another.
///
/// Crash safety: the AWS API reference of InviteOrganizationToTransferResponsibility lists no
/// ClientToken or other idempotency parameter (request: Type, Target, Notes, StartTimestamp,
/// SourceName, Tags; the SDK's input has none either), so a repeat cannot be deduplicated by
/// AWS by token. What covers the window between the call and the status write is (1) the
/// next reconcile's lookup by natural key and owner tag (the tags are set by the call
/// itself), and (2) AWS refusing a second open invitation to the same customer:
/// DuplicateHandshakeException, "A handshake with the same action and target already exists"
/// (errors of InviteOrganizationToTransferResponsibility), which [`transfer_error`] turns into
/// a wait for the first invitation's transfer to be shown, never into a new attempt.
async fn send(
    obj: &BillingTransfer,
    pc: &mut PayerContext,
    run: &mut Run,
    desired: &TransferDesired,
    status: &mut BillingTransferStatus,
) -> Result<Option<Transfer>, Error> {
    let invite = TransferInvite {
        customer: desired.customer.clone(),
        start_epoch: desired.start_epoch,
        name: desired.name.clone(),
        notes: desired.notes.clone(),
        tags: Tags::from([(OWNER_TAG.to_string(), desired.owner.clone())]),
    };
    let orgs = pc.conn.organizations.clone();
    let sent = run
        .write(
            change(
                ChangeAction::Create,
                format!("billing transfer invitation to {}", desired.customer_text()),
                format!(
                    "InviteOrganizationToTransferResponsibility from {}",
                    rfc3339(desired.start_epoch)
                ),
            ),
            || orgs.invite_transfer(&invite),
        )
        .await
        .map_err(|e| transfer_error(e, "invite"))?;
    let Some(sent) = sent else {
        return Ok(None);
    };
    run.event(
        false,
        TRANSFER_INVITATION_SENT,
        format!(
            "billing transfer invitation {} sent to {}",
            sent.handshake_id,
            desired.customer_text()
        ),
    );
    status.invitation = Some(TransferInvitation {
        handshake_id: Some(sent.handshake_id.clone()),
        sent_at: run.timestamp().to_string(),
        generation: obj.metadata.generation,
        reinvite: obj.reinvite_token(),
    });
    // The transfer of this invitation, not an earlier one: the next reconcile describes it by
    // id (none named: it looks by natural key and owner tag, and waits).
    status.transfer_id = sent.transfer_id.clone();
    status.transfer_arn = None;
    status.state = None;
    let made = match &sent.transfer_id {
        Some(id) => orgs.describe_transfer(id).await?,
        None => None,
    };
    let made = match made {
        Some(t) => Some(t),
        None => orgs
            .list_inbound_transfers()
            .await?
            .into_iter()
            .find(|t| t.handshake_id.as_deref() == Some(sent.handshake_id.as_str())),
    };
    made.map(Some).ok_or_else(|| {
        not_listed(
            &sent.handshake_id,
            run.timestamp(),
            desired,
            run.time().as_second(),
        )
    })
}

/// AWS's transfer-specific refusals as conditions a user can act on: dates, quotas,
/// prerequisites and existing transfers are terminal; a transfer process in flight, a
/// deletion in progress and the handshake rate are retried.
pub fn transfer_error(e: Error, what: &str) -> Error {
    let Some(code) = e.aws_code().map(str::to_string) else {
        return e;
    };
    let reason = e.aws_reason().unwrap_or_default().to_string();
    if code == "DuplicateHandshakeException" {
        // "A handshake with the same action and target already exists": an open invitation
        // to this customer, most likely this object's own whose transfer AWS does not show
        // yet (a crash between the invitation and the status write). Waited for: the next
        // reconcile finds the transfer by natural key and owner tag; nothing is sent twice.
        return Error::waiting(
            TRANSFER_NOT_LISTED,
            format!(
                "an invitation to this customer is already open (it is not sent again); waiting for AWS to show its transfer: {e}"
            ),
            REQUESTED_POLL,
        );
    }
    let hint = match reason.as_str() {
        "ACTIVE_RESPONSIBILITY_TRANSFER_PROCESS"
        | "TRANSFER_RESPONSIBILITY_TARGET_DELETION_IN_PROGRESS"
        | "TRANSFER_RESPONSIBILITY_SOURCE_DELETION_IN_PROGRESS"
        | "HANDSHAKE_RATE_LIMIT_EXCEEDED" => {
            return Error::retryable(
                TRANSFER_REFUSED,
                format!("AWS asks to try again later: {e}"),
            );
        }
        r if r.starts_with("START_DATE_") || r.starts_with("END_DATE_") || r.ends_with("_DATE") => {
            return Error::terminal(
                INVALID_TRANSFER_DATE,
                format!("AWS refused the transfer's dates: {e}"),
            );
        }
        "RESPONSIBILITY_TRANSFER_ALREADY_EXISTS" => {
            "the customer's organization already has a billing transfer (possibly to another partner); it must end before a new one"
        }
        "SOURCE_AND_TARGET_CANNOT_MATCH" => "the customer is the Payer's own organization",
        r if r.starts_with("RESPONSIBILITY_TRANSFER_MAX_") => {
            "a billing transfer quota is reached (Organizations quotas); end unused transfers or ask AWS for more"
        }
        "PAST_DUE_INVOICE"
        | "UNUSED_PREPAYMENT_BALANCE"
        | "UNMET_BILLING_PREREQUISITE"
        | "UNSUPPORTED_PRICING"
        | "PAYMENT_INSTRUMENT_REQUIRED" => {
            "the customer's or the Payer's billing does not meet AWS's prerequisites for a transfer (see the reason)"
        }
        "MANAGEMENT_ACCOUNT_EMAIL_NOT_VERIFIED"
        | "LEGACY_PERMISSIONS_STILL_IN_USE"
        | "TARGET_ACCOUNT_VALIDATION_FAILURE"
        | "ACCOUNT_NOT_ACTIVE_FOR_TRANSFER_RESPONSIBILITY"
        | "ORGANIZATION_FROM_DIFFERENT_SELLER_OF_RECORD" => {
            "an account of the transfer does not meet AWS's prerequisites (see the reason)"
        }
        _ if code == "InvalidResponsibilityTransferTransitionException" => {
            "the transfer is not in a state that allows this"
        }
        _ => return e,
    };
    Error::terminal(
        TRANSFER_REFUSED,
        format!("AWS refused to {what} the billing transfer: {hint}: {e}"),
    )
}

/// Whether this object already asked AWS to end its transfer at `end` (a Describe that lags
/// behind the TerminateResponsibilityTransfer must not make the destructive call again). Pure.
fn termination_requested(status: &BillingTransferStatus, end: i64) -> bool {
    status.termination_requested_at.is_some()
        && status.end.as_deref() == Some(rfc3339(end).as_str())
}

/// Once the transfer is found: wait while REQUESTED; once ACCEPTED, end it at the spec's end
/// (once) and converge the preference.
async fn follow(
    obj: &BillingTransfer,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    desired: &TransferDesired,
    transfer: Transfer,
    status: &mut BillingTransferStatus,
) -> Result<Verdict, Error> {
    if transfer.status == REQUESTED {
        let deadline = rfc3339(desired.start_epoch - ACCEPT_BEFORE_START);
        return Ok(Verdict::progressing(
            TRANSFER_REQUESTED,
            format!(
                "billing transfer {} to {} is waiting for the customer to accept (by {deadline}, 24 hours before the start)",
                transfer.id,
                desired.customer_text()
            ),
            REQUESTED_POLL,
        ));
    }
    if transfer.status == "WITHDRAWN" {
        return Ok(Verdict::ready(
            TRANSFER_WITHDRAWN,
            format!(
                "billing transfer {} from {} is terminated as the spec asks; it runs until {}",
                transfer.id,
                desired.customer_text(),
                transfer.end.as_deref().unwrap_or("its end")
            ),
        ));
    }
    if transfer.status == ACCEPTED
        && let (Some(end), None) = (desired.end_epoch, transfer.end.as_ref())
        && !termination_requested(status, end)
    {
        terminate(pc, run, &transfer, end, status).await?;
    }
    if transfer.status == ACCEPTED
        && let Some(wanted) = &obj.spec.automatic_billing_groups
    {
        converge_preference(obj, ctx, pc, run, &transfer, wanted, status).await?;
    }
    let until = status
        .end
        .as_deref()
        .map(|e| format!(" until {e}"))
        .unwrap_or_default();
    Ok(Verdict::ready(
        TRANSFER_ACCEPTED,
        format!(
            "billing transfer {} from {} is accepted, from {}{until}",
            transfer.id,
            desired.customer_text(),
            rfc3339(desired.start_epoch)
        ),
    ))
}

/// TerminateResponsibilityTransfer at `end`; the end goes to the status (AWS's answer is
/// re-read on the next reconcile).
async fn terminate(
    pc: &PayerContext,
    run: &mut Run,
    transfer: &Transfer,
    end: i64,
    status: &mut BillingTransferStatus,
) -> Result<(), Error> {
    let orgs = pc.conn.organizations.clone();
    let done = run
        .write(
            change(
                ChangeAction::Update,
                format!("billing transfer {}", transfer.id),
                format!("TerminateResponsibilityTransfer ending {}", rfc3339(end)),
            ),
            || orgs.terminate_transfer(&transfer.id, end),
        )
        .await
        .map_err(|e| transfer_error(e, "terminate"))?;
    if done.is_some() {
        status.end = Some(rfc3339(end));
        status.termination_requested_at = Some(run.timestamp().to_string());
        run.event(
            false,
            TERMINATED,
            format!("billing transfer {} ends at {}", transfer.id, rfc3339(end)),
        );
    }
    Ok(())
}

/// The ARN (or AWS-managed plan name) the preference names: a PricingPlan's ARN from its
/// status, else (status not stored: file mode, a crash) from the payer's Billing Conductor
/// snapshot by the plan's name, as BillingGroup finds its plan. Waits for a PricingPlan not
/// created yet.
async fn preference_plan(
    obj: &BillingTransfer,
    ctx: &ReconcileContext,
    wanted: &AutomaticBillingGroups,
    now: Timestamp,
) -> Result<Option<String>, Error> {
    if let Some(managed) = wanted.pricing_plan {
        return Ok(Some(managed.as_str().to_string()));
    }
    let Some(plan_ref) = &wanted.pricing_plan_ref else {
        return Ok(None);
    };
    let namespace = obj.namespace().unwrap_or_default();
    let waiting = |what: &str| {
        Error::waiting(
            DEPENDENCY_NOT_READY,
            format!("PricingPlan {namespace}/{} {what}", plan_ref.name),
            DEPENDENCY_RETRY,
        )
    };
    let plan = ctx
        .catalog
        .get::<crate::api::PricingPlan>(&namespace, &plan_ref.name)
        .ok_or_else(|| waiting("does not exist"))?;
    if let Some(arn) = plan.status.as_ref().and_then(|s| s.arn.clone()) {
        return Ok(Some(arn));
    }
    let bc = BillingContext::resolve(&namespace, &obj.spec.payer_ref, ctx, now).await?;
    bc.snapshot
        .plan_named(&plan.plan_name())
        .map(|p| Some(p.arn.clone()))
        .ok_or_else(|| waiting("is not created in AWS yet"))
}

/// Read the preference, and set it when it differs from the spec (idempotent: nothing is
/// written when they agree; the ClientToken is derived from the object and the value).
async fn converge_preference(
    obj: &BillingTransfer,
    ctx: &ReconcileContext,
    pc: &PayerContext,
    run: &mut Run,
    transfer: &Transfer,
    wanted: &AutomaticBillingGroups,
    status: &mut BillingTransferStatus,
) -> Result<(), Error> {
    let plan_arn = preference_plan(obj, ctx, wanted, run.time()).await?;
    let api = pc.conn.transfer_preference.clone();
    let current = api.get_transfer_preference(&transfer.arn).await?;
    let mut now = current.clone();
    if let Some(update) = plan_preference(wanted, plan_arn, &current) {
        // The token covers the SDK's own retries of this one call: the transfer, what AWS held
        // and this reconcile's time are in it, so a later change back to an earlier value (or
        // another transfer asking for the same value, in file mode without a UID) is never
        // taken by AWS for a repeat of an earlier request. A crash after the call is covered
        // by the read above: the next reconcile finds the preference already set.
        let token = client_token(
            &obj.uid().unwrap_or_default(),
            &format!(
                "preference:{}:{}:{}:{}:{}:{}",
                transfer.arn,
                current.enabled,
                current.pricing_plan_arn.as_deref().unwrap_or(""),
                update.enabled,
                update.pricing_plan_arn.as_deref().unwrap_or(""),
                run.timestamp()
            ),
        );
        let what = change(
            ChangeAction::Update,
            format!("billing transfer {} preference", transfer.id),
            format!(
                "automatic billing groups {}{}",
                if update.enabled {
                    "enabled"
                } else {
                    "disabled"
                },
                update
                    .pricing_plan_arn
                    .as_deref()
                    .map(|p| format!(" with {p}"))
                    .unwrap_or_default()
            ),
        );
        if run
            .write(what, || {
                api.update_transfer_preference(&transfer.arn, &update, &token)
            })
            .await?
            .is_some()
        {
            now = update;
        }
    }
    status.automatic_billing_groups = Some(PreferenceStatus {
        enabled: now.enabled,
        pricing_plan_arn: now.pricing_plan_arn,
    });
    Ok(())
}

/// What deleting the object does in AWS.
#[derive(Clone, Debug, PartialEq)]
pub enum TransferDeletion {
    /// Nothing: released as the verdict says.
    Release(Verdict),
    /// Cancel the open invitation (its handshake).
    Cancel { transfer: String, handshake: String },
    /// End the accepted transfer at this time.
    Terminate { transfer: String, end: i64 },
}

/// What deleting does with `policy`, for the transfer `found` (this object's) at `now`. An
/// accepted transfer ends at the end of the current month (of its start month, if it has not
/// started); one that already has an end, or ended, is never terminated again. Pure.
pub fn plan_deletion(
    policy: TransferDeletionPolicy,
    found: Option<&Transfer>,
    now: i64,
) -> TransferDeletion {
    let Some(t) = found else {
        return TransferDeletion::Release(Verdict::ready(
            RELEASED,
            "no billing transfer of this object in AWS",
        ));
    };
    if policy == TransferDeletionPolicy::Retain {
        return TransferDeletion::Release(Verdict::ready(
            RELEASED,
            format!(
                "billing transfer {} ({}) left in AWS (deletionPolicy Retain)",
                t.id, t.status
            ),
        ));
    }
    match (t.status.as_str(), &t.handshake_id, &t.end) {
        (REQUESTED, Some(h), _) => TransferDeletion::Cancel {
            transfer: t.id.clone(),
            handshake: h.clone(),
        },
        (ACCEPTED, _, None) => {
            let from = epoch(t.start.as_deref()).unwrap_or(now).max(now);
            match end_of_month(from) {
                Some(end) => TransferDeletion::Terminate {
                    transfer: t.id.clone(),
                    end,
                },
                None => TransferDeletion::Release(Verdict::ready(RELEASED, "no end of month")),
            }
        }
        _ => TransferDeletion::Release(Verdict::ready(
            RELEASED,
            format!(
                "billing transfer {} is {}{}; nothing more to end",
                t.id,
                t.status,
                t.end
                    .as_deref()
                    .map(|e| format!(", ending {e}"))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// The handshake of an invitation the status records whose transfer was never seen (no
/// transfer state recorded since it was sent): on deletion with `Terminate`, when AWS shows no
/// transfer of the object, it is canceled by this id. Pure.
pub fn unlisted_invitation(status: &BillingTransferStatus) -> Option<String> {
    let inv = status.invitation.as_ref()?;
    if status.state.is_some() {
        return None;
    }
    inv.handshake_id.clone()
}

/// Deletion: `Retain` releases; `Terminate` cancels an open invitation or ends an accepted
/// transfer at the end of the month.
pub async fn cleanup(
    obj: &BillingTransfer,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<BillingTransferStatus> {
    run.cleanup(
        obj.status.as_ref(),
        obj.metadata.generation,
        |_| false,
        async |run, status| delete(obj, ctx, run, status).await,
    )
    .await
}

async fn delete(
    obj: &BillingTransfer,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut BillingTransferStatus,
) -> Result<Verdict, Error> {
    if obj.spec.deletion_policy == TransferDeletionPolicy::Retain {
        return Ok(Verdict::ready(
            RELEASED,
            "billing transfer left in AWS (deletionPolicy Retain)",
        ));
    }
    // The spec is not validated: an object whose spec is (or became) invalid must still be
    // deletable. The transfer is found from the status (its id) and AWS (the owner tag, which
    // names the object, not its spec); an invitation the status records but AWS does not show
    // yet is canceled by its handshake.
    let namespace = obj.namespace().unwrap_or_default();
    let pc = PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await?;
    let owner = owner_value(&namespace, "BillingTransfer", &obj.name_any());
    let found = observe(&pc, status.transfer_id.as_deref(), &owner, |_| true).await?;
    let orgs = pc.conn.organizations.clone();
    let step = match (&found, unlisted_invitation(status)) {
        (None, Some(handshake)) => TransferDeletion::Cancel {
            transfer: format!("invitation {handshake}"),
            handshake,
        },
        _ => plan_deletion(
            obj.spec.deletion_policy,
            found.as_ref(),
            run.time().as_second(),
        ),
    };
    match step {
        TransferDeletion::Release(v) => Ok(v),
        TransferDeletion::Cancel {
            transfer,
            handshake,
        } => {
            let what = change(
                ChangeAction::Delete,
                format!("billing transfer {transfer}"),
                format!("CancelHandshake {handshake} (the open invitation)"),
            );
            let canceled = run.write(what, || orgs.cancel_handshake(&handshake)).await;
            match canceled {
                // The handshake AWS no longer knows (finished ones are kept 30 days): nothing
                // is open any more.
                Err(e) if e.aws_code() == Some("HandshakeNotFoundException") => {
                    return Ok(Verdict::ready(
                        RELEASED,
                        format!("the invitation {handshake} is no longer in AWS"),
                    ));
                }
                other => {
                    other?;
                }
            }
            Ok(Verdict::ready(
                TRANSFER_CANCELED,
                format!("the invitation of billing transfer {transfer} is canceled"),
            ))
        }
        TransferDeletion::Terminate { transfer, end } => {
            let what = change(
                ChangeAction::Delete,
                format!("billing transfer {transfer}"),
                format!("TerminateResponsibilityTransfer ending {}", rfc3339(end)),
            );
            run.write(what, || orgs.terminate_transfer(&transfer, end))
                .await
                .map_err(|e| transfer_error(e, "terminate"))?;
            status.end = Some(rfc3339(end));
            status.termination_requested_at = Some(run.timestamp().to_string());
            Ok(Verdict::ready(
                TERMINATED,
                format!("billing transfer {transfer} ends at {}", rfc3339(end)),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
