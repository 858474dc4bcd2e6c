//! An object's result as `plan` and `apply` report it: its changes, findings, readiness and
//! the verdict's reason (file mode builds it the same way for every kind; a kind may add to
//! it with `Kind::report`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::outcome::{Change, Management};

/// Per-object result of `plan` or `apply`.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// AWS changes (planned for `plan`, made for `apply`).
    pub changes: Vec<Change>,
    /// What was verified or found, one line each.
    pub findings: Vec<String>,
    pub ready: bool,
    pub synced: bool,
    /// The object could not be planned or reconciled (a problem to fix, not a wait).
    pub error: bool,
    pub reason: String,
    pub message: String,
    /// The object with its resulting status (`apply` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// `Observe` or `Paused` when the operator writes nothing to AWS for this object (absent:
    /// `Manage`).
    #[serde(skip_serializing_if = "Management::is_manage")]
    pub management: Management,
    /// Under `Observe`: how AWS differs from the spec (what `Manage` would change; never
    /// written, and not counted as changes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Change>,
}

impl ObjectReport {
    /// An object that is not Ready fails `apply` (a paused one does not: it was asked to
    /// wait).
    pub fn failed(&self) -> bool {
        self.management != Management::Paused && (!self.ready || !self.synced)
    }
}

/// Reports for all objects.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub objects: Vec<ObjectReport>,
}

impl Report {
    pub fn changes(&self) -> usize {
        self.objects.iter().map(|o| o.changes.len()).sum()
    }
    /// Differences of Observe objects from their spec (reported, never written).
    pub fn drift(&self) -> usize {
        self.objects.iter().map(|o| o.drift.len()).sum()
    }
    /// Objects paused by their annotation.
    pub fn paused(&self) -> usize {
        self.objects
            .iter()
            .filter(|o| o.management == Management::Paused)
            .count()
    }
    /// Objects with a problem (for `plan`).
    pub fn errors(&self) -> usize {
        self.objects.iter().filter(|o| o.error).count()
    }
    /// Objects not Ready (for `apply`).
    pub fn not_ready(&self) -> usize {
        self.objects.iter().filter(|o| o.failed()).count()
    }
    /// Count of objects per kind, for summaries.
    pub fn kinds(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for o in &self.objects {
            *m.entry(o.kind.clone()).or_insert(0) += 1;
        }
        m
    }
}
