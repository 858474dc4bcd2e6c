//! A LinkedAccount with `spec.create`: find its account by its natural keys, follow its
//! CreateAccount request, or take a creation slot and make the request — never twice.
//!
//! The account is found again by e-mail, and a request in flight by account name, whether an
//! earlier reconcile that crashed before writing status made them or not; the request id is
//! kept in the status as soon as it is known. Slots are the payer's (see
//! [`crate::organizations::creations`]): one creation decision at a time per payer, on fresh
//! data, at most [`MAX_CREATES_IN_FLIGHT`] requests in flight, oldest object first.
//!
//! Observe (the snapshot, the request's status) -> a pure [`plan`] -> execute (follow the
//! request, or take a slot ([`slot`] decides) and make it through [`PayerContext::write`]).

use std::time::Duration;

use kube::ResourceExt;
use tokio::sync::OwnedMutexGuard;

use crate::api::LinkedAccount;
use crate::api::LinkedAccountStatus;
use crate::api::common::{owner_value, with_owner};
use crate::api::linked_account::{BillingAccess, CreateAccount};
use crate::aws::organizations::{Account, CreateStatus, NewAccount};
use crate::error::Error;
use crate::organizations::creations::{
    Creations, MAX_CREATES_IN_FLIGHT, WatchParts, look, may_queue, queue_position,
};
use crate::payer::context::PayerContext;
use crate::payer::snapshot::{OrgSnapshot, SnapshotCache};
use crate::reconcile::reasons::{
    CREATE_FAILED, CREATING, CREATION_QUEUED, CREATION_REQUESTED, PLANNED_ONLY,
};
use crate::reconcile::run::Run;
use crate::reconcile::{ChangeAction, ReconcileContext, Verdict, change};

use super::located::{CREATE_POLL, Located};

/// How often a queued creation looks for a free slot.
const QUEUE_POLL: Duration = Duration::from_secs(15);

/// What is known of this object's CreateAccount request.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestSeen {
    /// The status records none (or AWS no longer knows the one it records).
    None,
    /// The payer's creation watcher follows it and wakes this object when it ends.
    Followed(String),
    /// DescribeCreateAccountStatus's answer about request `id`.
    Status { id: String, answer: CreateStatus },
}

/// What AWS holds for a LinkedAccount to create.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateObservation {
    /// The account with the spec's e-mail.
    pub by_email: Option<Account>,
    pub request: RequestSeen,
    /// The account a successful request created, once AWS lists it.
    pub created: Option<Account>,
    /// A request in flight for the spec's account name (a crash between CreateAccount and the
    /// status write leaves one that belongs to this object).
    pub in_flight: Option<String>,
}

/// Where a creation stands.
#[derive(Debug)]
pub enum CreateStep {
    /// The account exists.
    Found(Account),
    /// Request `id` is in progress: follow it.
    Creating(String),
    /// Not ready, nothing to do but wait.
    Wait(Verdict),
    /// No request: ask for the account (once a slot is free).
    Request,
}

/// Find the account, follow its request or ask for it.
pub(super) async fn locate(
    obj: &LinkedAccount,
    create: &CreateAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    status: &mut LinkedAccountStatus,
) -> Result<Located, Error> {
    let observed = observe(create, ctx, pc, status).await?;
    match plan(create, &observed)? {
        CreateStep::Found(a) => Ok(Located::Account(a)),
        CreateStep::Creating(id) => {
            let located = creating(pc, ctx, run, &id, &create.email, &obj.name_any());
            status.create_request_id = Some(id);
            Ok(located)
        }
        CreateStep::Wait(v) => Ok(Located::Pending(v)),
        CreateStep::Request => {
            status.create_request_id = None;
            request(obj, create, ctx, pc, run, status).await
        }
    }
}

/// Read what the snapshot does not hold: the status of the request the status records
/// (unless the account is found by e-mail, or the payer's watcher follows the request).
async fn observe(
    create: &CreateAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    status: &LinkedAccountStatus,
) -> Result<CreateObservation, Error> {
    let mut observed = CreateObservation {
        by_email: pc.snapshot.account_by_email(&create.email).cloned(),
        request: RequestSeen::None,
        created: None,
        in_flight: request_in_flight(&pc.snapshot, &create.account_name),
    };
    let Some(request_id) = status.create_request_id.clone() else {
        return Ok(observed);
    };
    if observed.by_email.is_some() {
        return Ok(observed);
    }
    // The watcher may have started following it for the queue, not knowing whose it was.
    if ctx.shared::<Creations>().follows(&pc.key, &request_id) {
        observed.request = RequestSeen::Followed(request_id);
        return Ok(observed);
    }
    observed.request = match pc
        .conn
        .organizations
        .describe_create_account_status(&request_id)
        .await
    {
        Ok(answer) => {
            if let (Some(id), "SUCCEEDED") = (answer.account_id.as_deref(), answer.state.as_str()) {
                observed.created = pc.account_joined(ctx, id).await?;
            }
            RequestSeen::Status {
                id: request_id,
                answer,
            }
        }
        Err(e) if e.aws_code() == Some("CreateAccountStatusNotFoundException") => RequestSeen::None,
        Err(e) => return Err(e),
    };
    Ok(observed)
}

/// Where the creation stands. Natural key first: an account with the spec's e-mail is this
/// object's account, whether an earlier reconcile that crashed before writing status created
/// it or not; likewise a request in flight for the account name. Pure.
pub fn plan(create: &CreateAccount, observed: &CreateObservation) -> Result<CreateStep, Error> {
    if let Some(a) = &observed.by_email {
        return Ok(CreateStep::Found(a.clone()));
    }
    match &observed.request {
        RequestSeen::Followed(id) => return Ok(CreateStep::Creating(id.clone())),
        RequestSeen::Status { id, answer: s } if s.state == "IN_PROGRESS" => {
            return Ok(CreateStep::Creating(id.clone()));
        }
        RequestSeen::Status { answer: s, .. } if s.state == "SUCCEEDED" => {
            if let Some(a) = &observed.created {
                return Ok(CreateStep::Found(a.clone()));
            }
            return Ok(CreateStep::Wait(Verdict::progressing(
                CREATING,
                format!(
                    "account {} was created; waiting for it to be listed",
                    s.account_id.clone().unwrap_or_default()
                ),
                CREATE_POLL,
            )));
        }
        RequestSeen::Status { answer: s, .. } => {
            return Err(creation_failed(&create.email, s.failure_reason.as_deref()));
        }
        RequestSeen::None => {}
    }
    Ok(match &observed.in_flight {
        Some(id) => CreateStep::Creating(id.clone()),
        None => CreateStep::Request,
    })
}

/// The CreateAccount request in flight for `account_name`, if any. Pure.
fn request_in_flight(snapshot: &OrgSnapshot, account_name: &str) -> Option<String> {
    snapshot
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
    run: &Run,
    request_id: &str,
    email: &str,
    owner: &str,
) -> Located {
    if run.applying() {
        follow_request(pc, ctx, request_id, Some(owner));
    }
    Located::Pending(Verdict::progressing(
        CREATING,
        format!("CreateAccount request {request_id} for {email} is in progress"),
        CREATE_POLL,
    ))
}

/// Where this object stands in the payer's creation queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueuePlace {
    /// Requests in flight in the organization.
    pub in_flight: usize,
    /// Objects ahead of this one.
    pub position: usize,
}

fn queued(payer: &str, place: QueuePlace) -> Verdict {
    Verdict::progressing(
        CREATION_QUEUED,
        format!(
            "{} account creation(s) in progress for Payer {payer} (AWS allows {MAX_CREATES_IN_FLIGHT}); this account is number {} in the queue",
            place.in_flight,
            place.position + 1
        ),
        QUEUE_POLL,
    )
}

/// What a creation slot decision found on fresh data.
#[derive(Debug)]
pub enum SlotStep {
    /// The account was listed meanwhile.
    Found(Account),
    /// A request for it is in flight meanwhile: follow it.
    Creating(String),
    /// No slot free: wait in the queue.
    Queued(QueuePlace),
    /// A slot is free: CreateAccount.
    Create(QueuePlace),
}

/// Decide about a slot from fresh data. Pure.
pub fn slot(create: &CreateAccount, snapshot: &OrgSnapshot, position: usize) -> SlotStep {
    if let Some(a) = snapshot.account_by_email(&create.email) {
        return SlotStep::Found(a.clone());
    }
    if let Some(id) = request_in_flight(snapshot, &create.account_name) {
        return SlotStep::Creating(id);
    }
    let place = QueuePlace {
        in_flight: snapshot.creates_in_progress.len(),
        position,
    };
    if place.in_flight + place.position >= MAX_CREATES_IN_FLIGHT {
        SlotStep::Queued(place)
    } else {
        SlotStep::Create(place)
    }
}

/// Take the payer's creation turn and decide on fresh data: the payer's creation watcher keeps
/// the snapshot's requests in flight current while it runs, else they are listed again. The
/// turn is held until the request is made.
async fn take_slot(
    obj: &LinkedAccount,
    create: &CreateAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
) -> Result<(OwnedMutexGuard<()>, SlotStep), Error> {
    let turn = ctx
        .locks
        .get(&format!("{}#create", pc.key))
        .lock_owned()
        .await;
    if ctx.shared::<Creations>().watching(&pc.key) {
        pc.snapshot = ctx.shared::<SnapshotCache>().get(&pc.key, &pc.conn).await?;
    } else {
        refresh_requests(pc, ctx).await?;
    }
    let position = queue_position(
        obj,
        &ctx.catalog.list_where::<crate::api::LinkedAccount>(
            &obj.namespace().unwrap_or_default(),
            |o: &crate::api::LinkedAccount| may_queue(o, &obj.spec.payer_ref.name),
        ),
        &ctx.shared::<Creations>().requested(&pc.key),
    );
    Ok((turn, slot(create, &pc.snapshot, position)))
}

/// Ask for the account: in apply mode once a slot is free (plan mode takes no slot and only
/// records the CreateAccount it would make).
async fn request(
    obj: &LinkedAccount,
    create: &CreateAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
    status: &mut LinkedAccountStatus,
) -> Result<Located, Error> {
    let me = obj.name_any();
    let (_turn, place) = if run.applying() {
        match take_slot(obj, create, ctx, pc).await? {
            (turn, SlotStep::Create(place)) => (Some(turn), place),
            (_, SlotStep::Found(a)) => return Ok(Located::Account(a)),
            (_, SlotStep::Creating(id)) => {
                let located = creating(pc, ctx, run, &id, &create.email, &me);
                status.create_request_id = Some(id);
                return Ok(located);
            }
            (_, SlotStep::Queued(place)) => {
                // Requests in flight (this operator's or not) are watched, so the queue
                // moves on the moment one of them ends.
                for r in &pc.snapshot.creates_in_progress {
                    follow_request(pc, ctx, &r.request_id, None);
                }
                return Ok(Located::Pending(queued(&pc.key, place)));
            }
        }
    } else {
        (None, QueuePlace::default())
    };
    let created = match create_account(obj, create, ctx, pc, run).await {
        Err(e) if e.aws_reason() == Some("ACCOUNT_CREATION_RATE_LIMIT_EXCEEDED") => {
            return Ok(Located::Pending(queued(&pc.key, place)));
        }
        other => other?,
    };
    let Some(created) = created else {
        return Ok(Located::Pending(Verdict::blocked(
            PLANNED_ONLY,
            "the account would be created",
        )));
    };
    status.create_request_id = Some(created.request_id.clone());
    run.event(
        false,
        CREATION_REQUESTED,
        format!(
            "CreateAccount request {} for {}",
            created.request_id, create.email
        ),
    );
    Ok(creating(
        pc,
        ctx,
        run,
        &created.request_id,
        &create.email,
        &me,
    ))
}

/// CreateAccount, tagged with the owner; the request is recorded in the snapshot at once.
async fn create_account(
    obj: &LinkedAccount,
    create: &CreateAccount,
    ctx: &ReconcileContext,
    pc: &mut PayerContext,
    run: &mut Run,
) -> Result<Option<CreateStatus>, Error> {
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
    let request = &request;
    pc.write(
        ctx,
        run,
        change(
            ChangeAction::Create,
            format!("account {}", create.account_name),
            format!("CreateAccount with e-mail {}", create.email),
        ),
        |c| async move { c.organizations.create_account(request).await },
        |created| {
            let created = created.clone();
            move |s: &mut OrgSnapshot| s.add_create(&created)
        },
    )
    .await
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
        CREATE_FAILED,
        format!("creating the account failed: {reason}: {advice}"),
    )
}

/// Bring the CreateAccount requests of `pc`'s snapshot up to date (one
/// ListCreateAccountStatus): a request that finished since is looked up, and its account
/// recorded, so an account is never missing between "no longer in progress" and "listed".
pub async fn refresh_requests(pc: &mut PayerContext, ctx: &ReconcileContext) -> Result<(), Error> {
    let known: Vec<String> = pc
        .snapshot
        .creates_in_progress
        .iter()
        .map(|c| c.request_id.clone())
        .collect();
    let snapshot = pc.snapshot.clone();
    let seen = look(pc.conn.organizations.as_ref(), &known, |id| {
        snapshot.account(id).is_some()
    })
    .await?;
    let write = seen.write();
    pc.record(ctx, move |s| write(s));
    Ok(())
}

/// Have the creation watcher of `pc`'s payer follow `request_id` (made for the LinkedAccount
/// `owner`, if known): it wakes the owner and the next queued accounts when it ends.
pub fn follow_request(
    pc: &PayerContext,
    ctx: &ReconcileContext,
    request_id: &str,
    owner: Option<&str>,
) {
    ctx.shared::<Creations>().follow(
        || WatchParts {
            payer_key: pc.key.clone(),
            conn: pc.conn.clone(),
            snapshots: ctx.shared::<SnapshotCache>(),
            locks: ctx.locks.clone(),
            catalog: ctx.catalog.clone(),
        },
        &pc.key,
        request_id,
        owner,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_failures_say_what_to_do() {
        let e = creation_failed("a@example.com", Some("EMAIL_ALREADY_EXISTS"));
        assert_eq!(e.reason(), "CreateFailed");
        assert!(e.is_terminal());
        assert!(e.to_string().contains("spec.invite"));
    }

    fn create() -> CreateAccount {
        serde_json::from_value(serde_json::json!({"email": "a@example.com", "accountName": "a"}))
            .unwrap()
    }

    fn status(request_id: &str, state: &str) -> RequestSeen {
        RequestSeen::Status {
            id: request_id.into(),
            answer: CreateStatus {
                request_id: request_id.into(),
                account_name: "a".into(),
                state: state.into(),
                account_id: None,
                failure_reason: None,
            },
        }
    }

    #[test]
    fn a_request_is_followed_and_a_second_one_never_made() {
        let seen = |request, in_flight: Option<&str>| CreateObservation {
            by_email: None,
            request,
            created: None,
            in_flight: in_flight.map(str::to_string),
        };
        // In progress, as the status says or as the snapshot shows for the account name.
        let step = plan(&create(), &seen(status("car-1", "IN_PROGRESS"), None));
        assert!(matches!(step, Ok(CreateStep::Creating(id)) if id == "car-1"));
        let step = plan(&create(), &seen(RequestSeen::None, Some("car-2")));
        assert!(matches!(step, Ok(CreateStep::Creating(id)) if id == "car-2"));
        // Done but not listed yet: wait, do not ask again.
        let step = plan(&create(), &seen(status("car-1", "SUCCEEDED"), None));
        assert!(matches!(step, Ok(CreateStep::Wait(v)) if v.reason == CREATING));
        let step = plan(&create(), &seen(status("car-1", "FAILED"), None));
        assert_eq!(step.unwrap_err().reason(), CREATE_FAILED);
        assert!(matches!(
            plan(&create(), &seen(RequestSeen::None, None)),
            Ok(CreateStep::Request)
        ));
    }
}
