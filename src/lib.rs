//! partner-billing-operator: AWS partner billing (Organizations, Billing Conductor, Cost and
//! Usage Reports) as Kubernetes custom resources.
//!
//! Layout: [`api`] holds the resource types; [`aws`] the narrow seams to AWS services;
//! [`payer`], [`organizations`], [`billing`] and [`costs`] the kinds' observe -> plan ->
//! execute logic by domain; [`reconcile`] the kind-agnostic engine; [`kinds`] the one list of
//! kinds, which the [`controller`] (watching a cluster), [`filemode`] (`plan`/`apply -f`) and
//! [`crdgen`] loop over.
// Functions stay under 100 lines (clippy counts code lines): a longer one is split into named
// steps.
#![warn(clippy::too_many_lines)]

/// A named failpoint right after an AWS write returned (`after:<service>:<Operation>`), so
/// the crash tests can stop the process there. Compiled to nothing without the `failpoints`
/// feature.
#[macro_export]
macro_rules! after_write {
    ($op:literal) => {
        fail::fail_point!(concat!("after:", $op))
    };
}

/// A named failpoint right before a status is written (`before-status:<Kind>`). Compiled to
/// nothing without the `failpoints` feature.
#[macro_export]
macro_rules! before_status {
    ($kind:expr) => {
        fail::fail_point!(&format!("before-status:{}", $kind))
    };
}

pub mod api;
pub mod aws;
pub mod backoff;
pub mod billing;
pub mod cli;
pub mod controller;
pub mod costs;
pub mod crdgen;
pub mod error;
pub mod filemode;
pub mod iam;
pub mod import;
pub mod kinds;
pub mod logging;
pub mod metrics;
pub mod money;
pub mod notify;
pub mod organizations;
pub mod payer;
pub mod reconcile;
pub mod schema_check;
pub mod secrets;
pub mod time;
