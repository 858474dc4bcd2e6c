//! File mode: `plan -f` and `apply -f` over a folder of manifests, without a cluster.
//!
//! Manifests are validated against the generated CRD schemas (as the API server would),
//! Secrets in the same files resolve credential references, and objects are reconciled in
//! dependency order by the same reconcilers the controller uses, kind by kind as the kind
//! list ([`crate::kinds`]) orders them. Status lives in memory.
//!
//! [`load`] reads the manifests; [`objects`] holds them, of any kind, and dispatches to the
//! kind's reconciler; [`run`] plans, applies (again while something is in progress) and
//! deletes; [`output`] renders the report and the exit status; [`prune`] previews what a
//! GitOps prune of the objects missing from the folder would do in AWS (`plan --prune`).

pub mod load;
pub mod objects;
pub mod output;
pub mod planned;
pub mod policies;
pub mod prune;
pub mod report;
pub mod run;

pub use crate::reconcile::report::{ObjectReport, Report};
pub use load::{
    InputProblem, MAX_DOCUMENTS_PER_FILE, Manifests, collect_files, load, parse_documents,
};
pub use output::{apply_exit_code, plan_exit_code};
pub use run::{RunOptions, apply, apply_with, apply_with_insights, delete, plan, plan_with};

/// Kinds in the order they are reconciled (what later kinds refer to comes first).
pub const KIND_ORDER: &[&str] = crate::kinds::NAMES;
