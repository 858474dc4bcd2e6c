//! The kind-agnostic engine: observe -> plan -> execute, shared by the controller and by
//! file mode.
//!
//! Each kind's module (under `payer/`, `organizations/`, `billing/`, `costs/`) has an
//! `observe` (reads AWS through the [`crate::aws`] traits), a pure `plan` (no AWS, no
//! Kubernetes, no clock), an `execute` that carries the plan out through [`run::Run`], and a
//! pure status function. The engine owns what every kind shares:
//!
//! - [`kind`]: the [`kind::Kind`] trait the one kind list ([`crate::kinds`]) implements, which
//!   drives CRD generation, the controller's watches, file mode and the catalog;
//! - [`management`]: paused objects (no AWS call) and `managementPolicy: Observe` (planned,
//!   never written; the plan is the `Drifted` condition), decided before the kind runs;
//! - [`run`]: the accumulator of one reconcile (mode, time, changes, events, finish);
//! - [`outcome`] and [`conditions`]: what a reconcile produces and the conditions it means;
//! - [`context`]: what every reconciler needs ([`ReconcileContext`]), with the [`catalog`]
//!   of objects over reflector stores and the state shared by type ([`shared`]);
//! - [`trigger`]: what else makes an object be looked at again (another kind's changes,
//!   wake-ups);
//! - [`report`]: an object's result as `plan`/`apply` report it;
//! - [`reasons`], [`tags`], [`ownership`]: condition reasons, tag convergence, Billing
//!   Conductor ownership.
//!
//! Front doors differ only in how they resolve references, read Secrets and store status.

pub mod catalog;
pub mod conditions;
pub mod context;
pub mod kind;
pub mod management;
pub mod outcome;
pub mod ownership;
pub mod reasons;
pub mod report;
pub mod run;
pub mod shared;
pub mod tags;
pub mod trigger;

pub use catalog::Catalog;
pub use conditions::{conditions_for, ready_change_event};
pub use context::{
    ClosureLedger, ConnectionCache, MemoryLedger, PayerLocks, ReconcileContext, payer_key,
};
pub use outcome::{
    Change, ChangeAction, DEPENDENCY_RETRY, EventNote, KindOutcome, KindStatus, Mode, Verdict,
    change, object_key,
};
