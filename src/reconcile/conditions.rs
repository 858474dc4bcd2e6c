//! The `Ready` and `Synced` conditions a reconcile result stands for, and the Event worth
//! recording when `Ready` changed.

use crate::api::conditions::{
    Condition, ConditionStatus, DesiredCondition, READY, SYNCED, merge_conditions,
};
use crate::error::Error;
use crate::reconcile::reasons::{
    CLOSING, CREATING, CREATION_QUEUED, DEPENDENCY_NOT_READY, INVITATION_PENDING, PENDING,
    RECONCILE_SUCCESS, WAITING,
};

use super::outcome::{EventNote, Verdict};

/// The `Ready` and `Synced` conditions for a reconcile result, merged into `existing`.
/// Retryable errors leave `Ready` as it was.
pub fn conditions_for(
    existing: &[Condition],
    result: &Result<Verdict, Error>,
    generation: Option<i64>,
    now: &str,
) -> Vec<Condition> {
    let desired: Vec<DesiredCondition> = match result {
        Ok(v) => vec![
            DesiredCondition::new(
                READY,
                if v.ready {
                    ConditionStatus::True
                } else {
                    ConditionStatus::False
                },
                v.reason.clone(),
                v.message.clone(),
            ),
            DesiredCondition::new(
                SYNCED,
                ConditionStatus::True,
                RECONCILE_SUCCESS,
                "AWS was read and the changes it needed were made",
            ),
        ],
        Err(Error::Waiting {
            reason, message, ..
        }) => vec![
            DesiredCondition::new(READY, ConditionStatus::False, *reason, message.clone()),
            DesiredCondition::new(SYNCED, ConditionStatus::True, WAITING, message.clone()),
        ],
        Err(err) if err.is_terminal() => vec![
            DesiredCondition::new(READY, ConditionStatus::False, err.reason(), err.to_string()),
            DesiredCondition::new(
                SYNCED,
                ConditionStatus::False,
                err.reason(),
                err.to_string(),
            ),
        ],
        Err(err) => {
            let mut d = vec![DesiredCondition::new(
                SYNCED,
                ConditionStatus::False,
                err.reason(),
                err.to_string(),
            )];
            if crate::api::conditions::find(existing, READY).is_none() {
                d.push(DesiredCondition::new(
                    READY,
                    ConditionStatus::Unknown,
                    PENDING,
                    "waiting for AWS to answer",
                ));
            }
            d
        }
    };
    merge_conditions(existing, &desired, generation, now)
}

/// An event when `Ready` changed between two condition lists.
pub fn ready_change_event(before: &[Condition], after: &[Condition]) -> Option<EventNote> {
    let b = crate::api::conditions::find(before, READY);
    let a = crate::api::conditions::find(after, READY)?;
    let changed = b.is_none_or(|b| b.status != a.status || b.reason != a.reason);
    if !changed || a.status == ConditionStatus::Unknown {
        return None;
    }
    Some(EventNote {
        warning: a.status == ConditionStatus::False && !is_progress_reason(&a.reason),
        reason: a.reason.clone(),
        note: a.message.clone(),
    })
}

fn is_progress_reason(reason: &str) -> bool {
    matches!(
        reason,
        CREATING | CREATION_QUEUED | INVITATION_PENDING | DEPENDENCY_NOT_READY | CLOSING
    )
}
