//! What one reconcile produces, whichever kind and front door: the changes it made (or would
//! make), the Events worth recording, the verdict, and the status the kind derives.

use std::time::Duration;

use serde::Serialize;

use crate::api::conditions::Condition;
use crate::error::Error;

/// What kind of change a planned step makes in AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Create,
    Update,
    Delete,
}

/// One change the operator would make in AWS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub action: ChangeAction,
    /// What is changed, e.g. `billinggroup/acme`.
    pub target: String,
    /// Human-readable detail, e.g. `accounts +2 -1`.
    pub detail: String,
}

/// A change record.
pub fn change(
    action: ChangeAction,
    target: impl Into<String>,
    detail: impl Into<String>,
) -> Change {
    Change {
        action,
        target: target.into(),
        detail: detail.into(),
    }
}

/// A notable thing that happened to an object, for a Kubernetes Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Whether a reconcile may write to AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Observe and plan only (`plan -f`).
    Plan,
    /// Observe, plan and execute.
    Apply,
    /// Observe and plan only, for an object under `managementPolicy: Observe` (see
    /// [`super::management`]): as `Plan`, but the status the kind derived is handed back.
    Observe,
}

/// How the operator treats one object (see [`super::management`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub enum Management {
    /// Make AWS match the spec.
    #[default]
    Manage,
    /// Read AWS and report drift; never write.
    Observe,
    /// No AWS call at all.
    Paused,
}

impl Management {
    pub fn is_manage(&self) -> bool {
        *self == Management::Manage
    }
}

/// Where an object stands after a reconcile that did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// Look again after this long (something is in progress), instead of the resync period.
    pub requeue: Option<Duration>,
}

impl Verdict {
    pub fn ready(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ready: true,
            reason: reason.into(),
            message: message.into(),
            requeue: None,
        }
    }

    /// Not ready yet, but progressing: look again after `after`.
    pub fn progressing(reason: &str, message: impl Into<String>, after: Duration) -> Self {
        Self {
            ready: false,
            reason: reason.into(),
            message: message.into(),
            requeue: Some(after),
        }
    }

    /// Not ready, and nothing will change until something outside does.
    pub fn blocked(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ready: false,
            reason: reason.into(),
            message: message.into(),
            requeue: None,
        }
    }
}

/// Everything one reconcile of an object produced.
#[derive(Debug)]
pub struct KindOutcome<S> {
    pub result: Result<Verdict, Error>,
    pub status: S,
    /// Changes made (Apply) or that would be made (Plan).
    pub changes: Vec<Change>,
    pub events: Vec<EventNote>,
}

impl<S: PartialEq> KindOutcome<S> {
    pub fn status_changed(&self, previous: Option<&S>) -> bool {
        previous != Some(&self.status)
    }
}

/// What every status of a reconciled kind has: conditions and the generation they describe.
/// The kind list ([`crate::kinds`]) implements it for every kind's status.
pub trait KindStatus: Clone {
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, conditions: Vec<Condition>);
    fn set_observed_generation(&mut self, generation: Option<i64>);
}

/// Key of a namespaced object: `namespace/name`.
pub fn object_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// How long a dependency (a Payer, an OU, an SCP not created yet) is waited for before the
/// object is looked at again.
pub const DEPENDENCY_RETRY: Duration = Duration::from_secs(15);
