//! Observe-only and paused objects, for every kind and both front doors.
//!
//! The controller and file mode call [`reconcile`] and [`cleanup`] here instead of the kind's
//! own, so that an object's management is decided once, before its kind runs:
//!
//! - **Paused** (annotation `partnerbilling.io/paused: "true"`, any kind): the kind is not run
//!   at all, so no AWS call is made, not even a read. The stored status is kept; a `Paused`
//!   condition (True) and `Synced` (False, `Paused`) say why. Deleting a paused object only
//!   releases it: no AWS call, whatever `deletionPolicy` says. Removing the annotation resumes
//!   (the `Paused` condition goes away at the next reconcile).
//! - **Observe** (`spec.managementPolicy: Observe`): the kind runs in [`Mode::Observe`], which
//!   is plan mode for the kind (`run.applying()` is false): every AWS write is recorded by
//!   [`Run::write`] and not made, and the kind's other side effects (creation queue slots,
//!   request watchers, notification mails and their tag marks, snapshot edits) are skipped, as
//!   they are for `plan -f`. What it would have changed is the object's drift: the `Drifted`
//!   condition lists it (False when there is none), `Ready` is True with reason `Observed` once
//!   AWS was read and compared, `Synced` says the read succeeded; an object not comparable yet
//!   (a referenced account without its id) says why in `Ready`. Of the status the kind
//!   derived, only what was read from AWS is kept (ids, ARNs, states: what other objects find
//!   it by); a planned value never is. Deletion releases the object without any AWS call.
//! - **Manage** (default): the kind's reconcile and cleanup as they are; `Drifted` and `Paused`
//!   conditions left over from an earlier policy are removed.

use std::fmt::Write as _;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::common::{ManagementPolicy, PAUSED_ANNOTATION};
use crate::api::conditions::{
    Condition, ConditionStatus, DesiredCondition, READY, SYNCED, find, merge_conditions,
};

use super::context::ReconcileContext;
use super::kind::Kind;
pub use super::outcome::Management;
use super::outcome::{Change, ChangeAction, EventNote, KindOutcome, KindStatus, Mode, Verdict};
use super::reasons;
use super::run::Run;

/// Condition type: under `managementPolicy: Observe`, whether AWS differs from the spec.
pub const DRIFTED: &str = "Drifted";
/// Condition type: the object is paused (no AWS call at all).
pub const PAUSED: &str = "Paused";

/// At most this many differences are named in the `Drifted` message (the rest are counted).
const DRIFT_LISTED: usize = 20;

/// How `obj` is treated: paused (annotation) wins over its `spec.managementPolicy`. Read
/// through the kind's typed accessor ([`crate::api::common::HasManagementPolicy`]), so that
/// the engine names no kind and serializes nothing (Payer has no such field: it is managed).
pub fn management<K: Kind>(obj: &K) -> Management {
    if obj.paused() {
        return Management::Paused;
    }
    match obj.management_policy() {
        ManagementPolicy::Observe => Management::Observe,
        ManagementPolicy::Manage => Management::Manage,
    }
}

/// What a reconcile or cleanup through this module produced: the kind's outcome (for an
/// Observe object without changes: they are in `drift`), how the object was treated, and the
/// differences an Observe object has from AWS.
#[derive(Debug)]
pub struct Managed<S> {
    pub outcome: KindOutcome<S>,
    pub management: Management,
    pub drift: Vec<Change>,
}

/// Reconcile `obj` as its management says (see the module docs). `run` gives the mode and
/// the time; an Observe object is planned whatever the mode.
pub async fn reconcile<K: Kind>(obj: &K, ctx: &ReconcileContext, run: Run) -> Managed<K::Status> {
    let management = management(obj);
    let previous = obj.status().cloned().unwrap_or_default();
    let generation = obj.meta().generation;
    match management {
        Management::Paused => paused(&previous, generation, run.timestamp()),
        Management::Observe => {
            let now = run.timestamp().to_string();
            let planned = obj
                .reconcile(ctx, Run::new(Mode::Observe, run.time()))
                .await;
            observed(&previous, planned, generation, &now)
        }
        Management::Manage => {
            let mut outcome = obj.reconcile(ctx, run).await;
            forget(&mut outcome.status);
            Managed {
                outcome,
                management,
                drift: Vec::new(),
            }
        }
    }
}

/// The deletion step of `obj` as its management says: a paused or Observe object is
/// released without any AWS call (its status and AWS stay as they are).
pub async fn cleanup<K: Kind>(obj: &K, ctx: &ReconcileContext, run: Run) -> Managed<K::Status> {
    let management = management(obj);
    if management.is_manage() {
        return Managed {
            outcome: obj.cleanup(ctx, run).await,
            management,
            drift: Vec::new(),
        };
    }
    let why = match management {
        Management::Paused => format!("it is paused ({PAUSED_ANNOTATION}: \"true\")"),
        _ => "its managementPolicy is Observe".to_string(),
    };
    let message = format!(
        "released without any AWS call because {why}: whatever deletionPolicy says, nothing was closed, removed, deleted, detached or untagged in AWS"
    );
    Managed {
        outcome: KindOutcome {
            result: Ok(Verdict::ready(reasons::RELEASED_UNTOUCHED, message.clone())),
            status: obj.status().cloned().unwrap_or_default(),
            changes: Vec::new(),
            events: vec![EventNote {
                warning: false,
                reason: reasons::RELEASED_UNTOUCHED.into(),
                note: message,
            }],
        },
        management,
        drift: Vec::new(),
    }
}

/// A paused object: the stored status with `Paused` True and `Synced` False; no AWS call.
fn paused<S: KindStatus>(previous: &S, generation: Option<i64>, now: &str) -> Managed<S> {
    let message = format!(
        "the annotation {PAUSED_ANNOTATION}: \"true\" pauses this object: the operator makes no AWS call for it (not even reads) and deleting it leaves AWS untouched; remove the annotation to resume"
    );
    let desired = [
        DesiredCondition::new(
            PAUSED,
            ConditionStatus::True,
            reasons::PAUSED,
            message.clone(),
        ),
        DesiredCondition::new(
            SYNCED,
            ConditionStatus::False,
            reasons::PAUSED,
            message.clone(),
        ),
    ];
    let mut status = previous.clone();
    status.set_conditions(merge_conditions(
        previous.conditions(),
        &desired,
        generation,
        now,
    ));
    let newly =
        find(previous.conditions(), PAUSED).is_none_or(|c| c.status != ConditionStatus::True);
    let events = newly
        .then(|| EventNote {
            warning: false,
            reason: reasons::PAUSED.into(),
            note: message.clone(),
        })
        .into_iter()
        .collect();
    Managed {
        outcome: KindOutcome {
            result: Ok(Verdict::blocked(reasons::PAUSED, message)),
            status,
            changes: Vec::new(),
            events,
        },
        management: Management::Paused,
        drift: Vec::new(),
    }
}

/// An Observe object after its kind planned: the planned changes become its drift, the
/// stored status gets `Ready`/`Synced`/`Drifted` (errors as for any reconcile).
fn observed<S: KindStatus + Serialize + DeserializeOwned>(
    previous: &S,
    planned: KindOutcome<S>,
    generation: Option<i64>,
    now: &str,
) -> Managed<S> {
    let drift = planned.changes;
    let result = match planned.result {
        // Read, and either in the state the spec asks for or with differences to report.
        Ok(v) if v.ready || !drift.is_empty() => {
            Ok(Verdict::ready(reasons::OBSERVED, observed_message(&drift)))
        }
        // Read, but not comparable yet (a referenced account without its id, an invitation
        // still open, an account still activating): said as the kind says it.
        Ok(v) => Ok(Verdict {
            message: format!(
                "managementPolicy is Observe (nothing is written): {}",
                v.message
            ),
            ..v
        }),
        // A wait keeps its retry; an error is reported as for any reconcile.
        Err(e) => Err(e),
    };
    let existing: Vec<Condition> = without(previous.conditions(), PAUSED);
    let conditions = match &result {
        Ok(v) if v.ready => {
            merge_conditions(&existing, &observe_conditions(v, &drift), generation, now)
        }
        Ok(v) => merge_conditions(&existing, &not_comparable(v), generation, now),
        Err(_) => super::conditions_for(&existing, &result, generation, now),
    };
    let mut status = match &result {
        Ok(_) => read_from_aws(previous, &planned.status),
        Err(_) => previous.clone(),
    };
    status.set_conditions(conditions);
    status.set_observed_generation(generation);
    let events = drift_event(previous.conditions(), status.conditions())
        .into_iter()
        .collect();
    Managed {
        outcome: KindOutcome {
            result,
            status,
            changes: Vec::new(),
            events,
        },
        management: Management::Observe,
        drift,
    }
}

/// Status fields that only ever hold what was read from AWS (never a planned value): the
/// identity of the AWS object and its state. Other kinds' objects find theirs through these
/// (a BillingGroup its LinkedAccounts' `accountId`, a LinkedAccount its OU's `ouId`).
const READ_FROM_AWS: &[&str] = &[
    "accountId",
    "email",
    "name",
    "state",
    "stateReason",
    "joinedMethod",
    "ouId",
    "policyId",
    "arn",
    "transferArn",
    "transferId",
];

/// The stored status with the fields of [`READ_FROM_AWS`] as the Observe run found them (an
/// AWS object not found clears them); every other field as stored. A planned status also holds
/// values that would only be true once written (a parent, attachments): they are not kept.
fn read_from_aws<S: Serialize + DeserializeOwned + Clone>(previous: &S, planned: &S) -> S {
    let (Ok(Value::Object(mut merged)), Ok(Value::Object(read))) = (
        serde_json::to_value(previous),
        serde_json::to_value(planned),
    ) else {
        return previous.clone();
    };
    for key in READ_FROM_AWS {
        match read.get(*key) {
            Some(v) if !v.is_null() => merged.insert((*key).to_string(), v.clone()),
            _ => merged.remove(*key),
        };
    }
    serde_json::from_value(Value::Object(merged)).unwrap_or_else(|_| previous.clone())
}

fn observe_conditions(v: &Verdict, drift: &[Change]) -> Vec<DesiredCondition> {
    let drifted = if drift.is_empty() {
        DesiredCondition::new(
            DRIFTED,
            ConditionStatus::False,
            reasons::NO_DRIFT,
            "AWS matches the spec",
        )
    } else {
        DesiredCondition::new(
            DRIFTED,
            ConditionStatus::True,
            reasons::DRIFTED,
            drift_message(drift),
        )
    };
    vec![
        DesiredCondition::new(
            READY,
            ConditionStatus::True,
            v.reason.clone(),
            v.message.clone(),
        ),
        observed_synced(),
        drifted,
    ]
}

/// `Synced` True: AWS was read and nothing was written.
fn observed_synced() -> DesiredCondition {
    DesiredCondition::new(
        SYNCED,
        ConditionStatus::True,
        reasons::OBSERVED,
        "AWS was read; nothing was written (managementPolicy Observe)",
    )
}

/// `Ready` False as the kind said, `Synced` True: AWS was read. `Drifted` is left as it was.
fn not_comparable(v: &Verdict) -> Vec<DesiredCondition> {
    vec![
        DesiredCondition::new(
            READY,
            ConditionStatus::False,
            v.reason.clone(),
            v.message.clone(),
        ),
        observed_synced(),
    ]
}

fn observed_message(drift: &[Change]) -> String {
    let state = if drift.is_empty() {
        "AWS matches the spec".to_string()
    } else {
        format!(
            "{} difference(s) from the spec, listed in Drifted",
            drift.len()
        )
    };
    format!("managementPolicy is Observe: AWS was read and nothing is written; {state}")
}

/// The `Drifted` message: what the operator would do under `Manage`, one difference each.
pub fn drift_message(drift: &[Change]) -> String {
    let mut out = format!(
        "{} difference(s) from the spec that managementPolicy Manage would correct (nothing is written under Observe): ",
        drift.len()
    );
    let listed: Vec<String> = drift.iter().take(DRIFT_LISTED).map(describe).collect();
    out.push_str(&listed.join("; "));
    if drift.len() > DRIFT_LISTED {
        let _ = write!(out, "; and {} more", drift.len() - DRIFT_LISTED);
    }
    out
}

/// One difference as the operator would act on it, e.g. `would create billing group acme
/// (primary 111111111111)`.
pub fn describe(c: &Change) -> String {
    let verb = match c.action {
        ChangeAction::Create => "would create",
        ChangeAction::Update => "would update",
        ChangeAction::Delete => "would delete",
    };
    if c.detail.is_empty() {
        format!("{verb} {}", c.target)
    } else {
        format!("{verb} {} ({})", c.target, c.detail)
    }
}

/// A Warning Event when `Drifted` became True or its list changed.
fn drift_event(before: &[Condition], after: &[Condition]) -> Option<EventNote> {
    let a = find(after, DRIFTED).filter(|a| a.status == ConditionStatus::True)?;
    let same =
        find(before, DRIFTED).is_some_and(|b| b.status == a.status && b.message == a.message);
    (!same).then(|| EventNote {
        warning: true,
        reason: reasons::DRIFTED.into(),
        note: a.message.clone(),
    })
}

fn without(conditions: &[Condition], type_: &str) -> Vec<Condition> {
    conditions
        .iter()
        .filter(|c| c.type_ != type_)
        .cloned()
        .collect()
}

/// A managed object keeps no `Drifted` or `Paused` condition from an earlier policy.
fn forget<S: KindStatus>(status: &mut S) {
    let stale = |c: &Condition| c.type_ == DRIFTED || c.type_ == PAUSED;
    if status.conditions().iter().any(stale) {
        let kept = status
            .conditions()
            .iter()
            .filter(|c| !stale(c))
            .cloned()
            .collect();
        status.set_conditions(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LinkedAccount;
    use crate::api::linked_account::LinkedAccountStatus;

    fn account(extra_spec: serde_json::Value, annotations: serde_json::Value) -> LinkedAccount {
        let mut spec = serde_json::json!({
            "payerRef": {"name": "p"},
            "adopt": {"accountId": "111111111111"},
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra_spec.as_object().unwrap().clone());
        serde_json::from_value(serde_json::json!({
            "apiVersion": "partnerbilling.io/v1alpha1",
            "kind": "LinkedAccount",
            "metadata": {"name": "a", "namespace": "ns", "generation": 3, "annotations": annotations},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn management_reads_the_policy_and_the_pause_annotation() {
        let none = serde_json::json!({});
        assert_eq!(
            management(&account(none.clone(), none.clone())),
            Management::Manage
        );
        let observe = serde_json::json!({"managementPolicy": "Observe"});
        assert_eq!(
            management(&account(observe.clone(), none.clone())),
            Management::Observe
        );
        let paused = serde_json::json!({PAUSED_ANNOTATION: "true"});
        assert_eq!(management(&account(observe, paused)), Management::Paused);
        let not_paused = serde_json::json!({PAUSED_ANNOTATION: "false"});
        let manage = serde_json::json!({"managementPolicy": "Manage"});
        assert_eq!(management(&account(manage, not_paused)), Management::Manage);
    }

    fn change(action: ChangeAction, target: &str) -> Change {
        Change {
            action,
            target: target.into(),
            detail: "x".into(),
        }
    }

    #[test]
    fn observed_turns_planned_changes_into_drift_and_conditions() {
        let planned = KindOutcome {
            result: Ok(Verdict::blocked(reasons::PLANNED_ONLY, "1 change(s)")),
            status: LinkedAccountStatus::default(),
            changes: vec![change(ChangeAction::Update, "account 111111111111")],
            events: Vec::new(),
        };
        let m = observed(&LinkedAccountStatus::default(), planned, Some(3), "t1");
        assert_eq!(m.management, Management::Observe);
        assert!(m.outcome.changes.is_empty());
        assert_eq!(m.drift.len(), 1);
        let conds = m.outcome.status.conditions();
        let drifted = find(conds, DRIFTED).unwrap();
        assert_eq!(drifted.status, ConditionStatus::True);
        assert!(
            drifted
                .message
                .contains("would update account 111111111111 (x)"),
            "{}",
            drifted.message
        );
        assert_eq!(find(conds, READY).unwrap().reason, reasons::OBSERVED);
        assert_eq!(find(conds, SYNCED).unwrap().status, ConditionStatus::True);
        assert_eq!(m.outcome.events.len(), 1);
        assert!(m.outcome.events[0].warning);
        // The same drift again: no new Event; no drift: Drifted False.
        let again = KindOutcome {
            result: Ok(Verdict::ready("Active", "ok")),
            status: LinkedAccountStatus::default(),
            changes: vec![change(ChangeAction::Update, "account 111111111111")],
            events: Vec::new(),
        };
        let m2 = observed(&m.outcome.status, again, Some(3), "t2");
        assert!(m2.outcome.events.is_empty());
        let clean = KindOutcome {
            result: Ok(Verdict::ready("Active", "ok")),
            status: LinkedAccountStatus::default(),
            changes: Vec::new(),
            events: Vec::new(),
        };
        let m3 = observed(&m2.outcome.status, clean, Some(3), "t3");
        let drifted = find(m3.outcome.status.conditions(), DRIFTED).unwrap();
        assert_eq!(drifted.status, ConditionStatus::False);
        assert_eq!(drifted.last_transition_time, "t3");
    }

    #[test]
    fn observe_keeps_what_was_read_from_aws_and_not_what_was_planned() {
        let previous: LinkedAccountStatus = serde_json::from_value(serde_json::json!({
            "accountId": "111111111111", "state": "ACTIVE", "parentId": "ou-stored",
            "email": "old@example.com"
        }))
        .unwrap();
        let planned: LinkedAccountStatus = serde_json::from_value(serde_json::json!({
            "accountId": "111111111111", "state": "SUSPENDED", "parentId": "ou-desired"
        }))
        .unwrap();
        let kept = serde_json::to_value(read_from_aws(&previous, &planned)).unwrap();
        assert_eq!(kept["state"], "SUSPENDED");
        assert_eq!(kept["parentId"], "ou-stored");
        assert!(kept.get("email").is_none(), "{kept}");
    }

    #[test]
    fn drift_message_lists_at_most_twenty() {
        let many: Vec<Change> = (0..25)
            .map(|i| change(ChangeAction::Create, &format!("thing {i}")))
            .collect();
        let m = drift_message(&many);
        assert!(m.starts_with("25 difference(s)"), "{m}");
        assert!(m.contains("would create thing 19 (x)"), "{m}");
        assert!(!m.contains("thing 20 "), "{m}");
        assert!(m.ends_with("; and 5 more"), "{m}");
    }

    #[test]
    fn paused_keeps_the_status_and_says_so_then_manage_forgets_it() {
        let m = paused(&LinkedAccountStatus::default(), Some(2), "t1");
        assert_eq!(m.management, Management::Paused);
        let conds = m.outcome.status.conditions();
        assert_eq!(find(conds, PAUSED).unwrap().status, ConditionStatus::True);
        assert_eq!(find(conds, SYNCED).unwrap().status, ConditionStatus::False);
        assert!(find(conds, READY).is_none());
        assert_eq!(m.outcome.events.len(), 1);
        let again = paused(&m.outcome.status, Some(2), "t2");
        assert!(again.outcome.events.is_empty());
        let mut status = again.outcome.status;
        forget(&mut status);
        assert!(find(status.conditions(), PAUSED).is_none());
    }
}
