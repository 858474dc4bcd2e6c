//! The `plan`/`apply` report of one object after a reconcile, built the same way for every
//! kind from its outcome (the kind may add to it with [`Kind::report`]).

use kube::ResourceExt;

use crate::api::conditions::{self, SYNCED};
use crate::error::Error;
use crate::reconcile::kind::Kind;
use crate::reconcile::management::{Managed, Management};
use crate::reconcile::report::ObjectReport;
use crate::reconcile::{KindOutcome, KindStatus, Verdict};

/// The report of `object` after a reconcile that produced `outcome`: for a plan, from the
/// verdict; after an apply, readiness from the stored conditions and the object itself.
pub fn object_report<K: Kind>(
    object: &K,
    outcome: &KindOutcome<K::Status>,
    planning: bool,
) -> ObjectReport {
    let mut r = ObjectReport {
        kind: K::kind(&()).to_string(),
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
        changes: outcome.changes.clone(),
        findings: Vec::new(),
        ready: false,
        synced: false,
        error: false,
        reason: String::new(),
        message: String::new(),
        object: (!planning)
            .then(|| serde_json::to_value(object).ok())
            .flatten(),
        management: Management::Manage,
        drift: Vec::new(),
    };
    verdict_into(&mut r, &outcome.result);
    if !planning {
        let conds = outcome.status.conditions();
        r.ready = conditions::is_ready(conds);
        r.synced = conditions::find(conds, SYNCED)
            .is_some_and(|c| c.status == crate::api::ConditionStatus::True);
    }
    object.report(outcome, planning, &mut r);
    r
}

/// As [`object_report`] for a reconcile through [`crate::reconcile::management`]: also how
/// the object was treated (Observe, Paused) and an Observe object's drift.
pub fn managed_report<K: Kind>(
    object: &K,
    managed: &Managed<K::Status>,
    planning: bool,
) -> ObjectReport {
    let mut r = object_report(object, &managed.outcome, planning);
    r.management = managed.management;
    r.drift = managed.drift.clone();
    r
}

fn verdict_into(r: &mut ObjectReport, result: &Result<Verdict, Error>) {
    match result {
        Ok(v) => {
            r.ready = v.ready;
            r.synced = true;
            r.reason = v.reason.clone();
            r.message = v.message.clone();
            if v.ready {
                r.findings.push(v.message.clone());
            }
        }
        Err(e @ Error::Waiting { .. }) => {
            r.synced = true;
            r.reason = e.reason().to_string();
            r.message = e.to_string();
            r.findings.push(format!("waits: {e}"));
        }
        Err(e) => {
            r.error = true;
            r.reason = e.reason().to_string();
            r.message = e.to_string();
        }
    }
}
