//! partner-billing-operator: AWS partner billing (Organizations, Billing Conductor, Cost and
//! Usage Reports) as Kubernetes custom resources.
//!
//! Layout: [`api`] holds the resource types; [`aws`] the narrow seams to AWS services;
//! [`reconcile`] the observe -> plan -> execute logic per kind, shared by the [`controller`]
//! (watching a cluster) and [`filemode`] (`plan`/`apply -f`).

pub mod api;
pub mod aws;
pub mod backoff;
pub mod cli;
pub mod controller;
pub mod crdgen;
pub mod error;
pub mod filemode;
pub mod iam;
pub mod logging;
pub mod metrics;
pub mod money;
pub mod notify;
pub mod reconcile;
pub mod schema_check;
pub mod secrets;
pub mod time;
