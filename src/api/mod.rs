//! The custom resource types of `partnerbilling.io/v1alpha1` and what they share.

pub mod billing_group;
pub mod billing_transfer;
pub mod common;
pub mod conditions;
pub mod cur_pipeline;
pub mod custom_line_item;
pub mod linked_account;
pub mod notifications;
pub mod organizational_unit;
pub mod payer;
pub mod payer_grant;
pub mod pricing_plan;
pub mod service_control_policy;

pub use billing_group::{BillingGroup, BillingGroupSpec, BillingGroupStatus};
pub use billing_transfer::{BillingTransfer, BillingTransferSpec, BillingTransferStatus};
pub use common::LocalRef;
pub use conditions::{Condition, ConditionStatus};
pub use cur_pipeline::{CurPipeline, CurPipelineSpec, CurPipelineStatus};
pub use custom_line_item::{CustomLineItem, CustomLineItemSpec, CustomLineItemStatus};
pub use linked_account::{LinkedAccount, LinkedAccountSpec, LinkedAccountStatus};
pub use organizational_unit::{
    OrganizationalUnit, OrganizationalUnitSpec, OrganizationalUnitStatus,
};
pub use payer::{Payer, PayerSpec, PayerStatus};
pub use payer_grant::{PayerGrant, PayerGrantSpec};
pub use pricing_plan::{PricingPlan, PricingPlanSpec, PricingPlanStatus};
pub use service_control_policy::{
    ServiceControlPolicy, ServiceControlPolicySpec, ServiceControlPolicyStatus,
};

common::spec_management_policy!(
    ServiceControlPolicy,
    OrganizationalUnit,
    LinkedAccount,
    PricingPlan,
    BillingTransfer,
    BillingGroup,
    CustomLineItem,
    CurPipeline,
);

/// A Payer is only read and its spec has no `managementPolicy`: it is managed (pausing it
/// still holds it).
impl common::HasManagementPolicy for Payer {
    fn management_policy(&self) -> common::ManagementPolicy {
        common::ManagementPolicy::Manage
    }
}

/// API group of every kind this operator serves.
pub const GROUP: &str = "partnerbilling.io";
/// API version of every kind this operator serves.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` value for manifests.
pub const API_VERSION: &str = "partnerbilling.io/v1alpha1";
/// Finalizer the operator puts on the objects it manages.
pub const FINALIZER: &str = "partnerbilling.io/finalizer";
