//! The custom resource types of `partnerbilling.io/v1alpha1` and what they share.

pub mod conditions;
pub mod payer;

pub use conditions::{Condition, ConditionStatus};
pub use payer::{Payer, PayerSpec, PayerStatus};

/// API group of every kind this operator serves.
pub const GROUP: &str = "partnerbilling.io";
/// API version of every kind this operator serves.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` value for manifests.
pub const API_VERSION: &str = "partnerbilling.io/v1alpha1";
/// Finalizer the operator puts on the objects it manages.
pub const FINALIZER: &str = "partnerbilling.io/finalizer";
