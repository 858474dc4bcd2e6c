//! The contract between the engine and a kind, and the macro that writes it for every kind
//! of the one kind list ([`crate::kinds`]).
//!
//! A kind is its CRD type (in `api/`) plus a domain module with
//! `reconcile(obj, ctx, run)` and `cleanup(obj, ctx, run)`. Everything else the front doors
//! need is here, with defaults: whether deleting touches AWS, the order among objects of the
//! kind in file mode, what else triggers a reconcile, the part of the status the operator's
//! field manager writes, and the lines of the `plan`/`apply` report. The controller and file
//! mode loop over the list with a [`KindVisitor`]; they never name a kind.

use std::fmt::Debug;

use async_trait::async_trait;
use k8s_openapi::NamespaceResourceScope;
use kube::core::object::HasStatus;
use kube::{CustomResourceExt, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::common::HasManagementPolicy;

use super::context::ReconcileContext;
use super::outcome::{KindOutcome, KindStatus};
use super::report::ObjectReport;
use super::run::Run;
use super::trigger::Trigger;

/// A kind the operator reconciles (see the module docs).
#[async_trait]
pub trait Kind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + HasStatus<
        Status: KindStatus
                    + Serialize
                    + DeserializeOwned
                    + PartialEq
                    + Default
                    + Debug
                    + Send
                    + Sync
                    + 'static,
    > + CustomResourceExt
    + HasManagementPolicy
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Whether deleting an object may change AWS (its deletion policy decides). A kind the
    /// operator only reads (Payer) is released without a deletion step: file mode's delete
    /// skips it and the controller writes no status while removing its finalizer.
    const AWS_CLEANUP: bool = true;

    /// Observe, plan, execute (in apply mode) and derive the status.
    async fn reconcile(&self, ctx: &ReconcileContext, run: Run) -> KindOutcome<Self::Status>;

    /// The deletion step, before the finalizer goes.
    async fn cleanup(&self, ctx: &ReconcileContext, run: Run) -> KindOutcome<Self::Status>;

    /// Order the objects of this kind for file mode (what others refer to first). Default:
    /// by namespace and name.
    fn file_order(objects: &mut [Self]) {
        objects.sort_by_key(|o| (o.namespace().unwrap_or_default(), o.name_any()));
    }

    /// What else makes an object of this kind be reconciled: changes of another kind, or
    /// wake-ups from shared state. Default: nothing but its own changes.
    fn triggers() -> Vec<Trigger<Self>> {
        Vec::new()
    }

    /// The status as the operator's field manager writes it (a field another manager owns is
    /// left out). Default: all of it.
    fn owned_status(status: &Self::Status) -> Self::Status {
        status.clone()
    }

    /// Adjust the `plan`/`apply` report of this object (`self` holds the status as stored
    /// after the reconcile; the status a plan would write is `outcome.status`). Default: the
    /// generic report as is.
    fn report(
        &self,
        outcome: &KindOutcome<Self::Status>,
        planning: bool,
        report: &mut ObjectReport,
    ) {
        let _ = (outcome, planning, report);
    }
}

/// Something done once per kind of the list, with the kind as a type (the front doors'
/// registries, watches and dispatch are built this way).
pub trait KindVisitor {
    fn visit<K: Kind>(&mut self);
}

/// One optional setting of a kind in the kind list, as a [`Kind`] item.
#[doc(hidden)]
#[macro_export]
macro_rules! kind_setting {
    (aws_cleanup: $value:expr) => {
        const AWS_CLEANUP: bool = $value;
    };
    (file_order: $order:expr) => {
        fn file_order(objects: &mut [Self]) {
            ($order)(objects)
        }
    };
    (triggers: $triggers:expr) => {
        fn triggers() -> Vec<$crate::reconcile::trigger::Trigger<Self>> {
            ($triggers)()
        }
    };
    (owned_status: $owned:expr) => {
        fn owned_status(
            status: &<Self as kube::core::object::HasStatus>::Status,
        ) -> <Self as kube::core::object::HasStatus>::Status {
            ($owned)(status)
        }
    };
    (report: $report:expr) => {
        fn report(
            &self,
            outcome: &$crate::reconcile::KindOutcome<
                <Self as kube::core::object::HasStatus>::Status,
            >,
            planning: bool,
            report: &mut $crate::reconcile::report::ObjectReport,
        ) {
            ($report)(self, outcome, planning, report)
        }
    };
}

/// The kind list: one line per kind, `Type => module::path [setting: value, ...];` in
/// dependency order (what later kinds refer to first). Writes each kind's [`Kind`] and
/// [`KindStatus`] implementations, `NAMES` (the kinds in order) and `visit` (a
/// [`KindVisitor`] over the kinds in order).
#[macro_export]
macro_rules! kind_list {
    ($($kind:ident => $($module:ident)::+ $([$($setting:ident: $value:expr),* $(,)?])?;)*) => {
        $(
            #[async_trait::async_trait]
            impl $crate::reconcile::kind::Kind for $kind {
                async fn reconcile(
                    &self,
                    ctx: &$crate::reconcile::ReconcileContext,
                    run: $crate::reconcile::run::Run,
                ) -> $crate::reconcile::KindOutcome<<Self as kube::core::object::HasStatus>::Status> {
                    $crate::$($module)::+::reconcile(self, ctx, run).await
                }
                async fn cleanup(
                    &self,
                    ctx: &$crate::reconcile::ReconcileContext,
                    run: $crate::reconcile::run::Run,
                ) -> $crate::reconcile::KindOutcome<<Self as kube::core::object::HasStatus>::Status> {
                    $crate::$($module)::+::cleanup(self, ctx, run).await
                }
                $($($crate::kind_setting!($setting: $value);)*)?
            }

            impl $crate::reconcile::KindStatus for <$kind as kube::core::object::HasStatus>::Status {
                fn conditions(&self) -> &[$crate::api::Condition] {
                    &self.conditions
                }
                fn set_conditions(&mut self, conditions: Vec<$crate::api::Condition>) {
                    self.conditions = conditions;
                }
                fn set_observed_generation(&mut self, generation: Option<i64>) {
                    self.observed_generation = generation;
                }
            }
        )*

        /// Every kind, in dependency order.
        pub const NAMES: &[&str] = &[$(stringify!($kind)),*];

        /// Visit every kind, in dependency order.
        pub fn visit(visitor: &mut impl $crate::reconcile::kind::KindVisitor) {
            $(visitor.visit::<$kind>();)*
        }
    };
}
