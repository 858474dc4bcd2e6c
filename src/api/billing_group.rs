//! `BillingGroup`: a Billing Conductor billing group (one per customer).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{LocalRef, tags_schema};
use super::conditions::{Condition, conditions_schema};

/// Spec of a BillingGroup.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "BillingGroup",
    namespaced,
    status = "BillingGroupStatus",
    shortname = "bg",
    category = "partnerbilling",
    doc = "A Billing Conductor billing group: a customer's accounts, priced with a PricingPlan, with AWS cost, billed (pro forma) cost and margin in status.",
    printcolumn(
        name = "Plan",
        type_ = "string",
        json_path = ".spec.pricingPlanRef.name"
    ),
    printcolumn(name = "Accounts", type_ = "integer", json_path = ".status.size"),
    printcolumn(
        name = "AWS Cost",
        type_ = "string",
        json_path = ".status.currentPeriod.awsCost"
    ),
    printcolumn(
        name = "Billed",
        type_ = "string",
        json_path = ".status.currentPeriod.proformaCost"
    ),
    printcolumn(
        name = "Margin",
        type_ = "string",
        json_path = ".status.currentPeriod.margin"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("has(self.primaryAccount) == has(oldSelf.primaryAccount) && (!has(self.primaryAccount) || self.primaryAccount == oldSelf.primaryAccount)").message("primaryAccount cannot change: AWS cannot change a billing group's primary account; create a new BillingGroup"),
    validation = Rule::new("(has(self.type) && self.type == 'TRANSFER_BILLING') ? (has(self.responsibilityTransferRef) && !has(self.primaryAccount) && (!has(self.accounts) || size(self.accounts) == 0) && !has(self.accountSelector)) : (has(self.primaryAccount) && !has(self.responsibilityTransferRef))").message("a STANDARD billing group needs primaryAccount (and no responsibilityTransferRef); a TRANSFER_BILLING group needs responsibilityTransferRef and takes no primaryAccount, accounts or accountSelector (its accounts are the customer organization's)"),
    validation = Rule::new("(has(self.type) ? self.type : 'STANDARD') == (has(oldSelf.type) ? oldSelf.type : 'STANDARD')").message("type cannot change: AWS cannot turn a billing group into another type; create a new BillingGroup"),
    validation = Rule::new("has(self.responsibilityTransferRef) == has(oldSelf.responsibilityTransferRef) && (!has(self.responsibilityTransferRef) || self.responsibilityTransferRef == oldSelf.responsibilityTransferRef)").message("responsibilityTransferRef cannot change: AWS does not let a billing group's responsibility transfer change; create a new BillingGroup")
)]
#[serde(rename_all = "camelCase")]
pub struct BillingGroupSpec {
    /// The Payer whose Billing Conductor holds the group.
    pub payer_ref: LocalRef,
    /// Name of the group in AWS (1-128 of letters, digits and `_+=.-@`). Defaults to the
    /// object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z0-9_+=.@-]+$"))]
    pub group_name: Option<String>,
    /// `STANDARD` (default: accounts of the payer's own organization, with a primary
    /// account) or `TRANSFER_BILLING` (the whole organization of a customer that transferred
    /// its billing to the payer, named by `responsibilityTransferRef`). Cannot change.
    #[serde(default, rename = "type")]
    pub type_: BillingGroupType,
    /// The account that receives the group's bill: a LinkedAccount name (same namespace) or
    /// a 12-digit account id. Required for a `STANDARD` group, not allowed for a
    /// `TRANSFER_BILLING` one. Cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub primary_account: Option<String>,
    /// The BillingTransfer (same namespace) whose accepted billing transfer the group bills:
    /// required for a `TRANSFER_BILLING` group, not allowed otherwise. The group is created
    /// once the transfer is `ACCEPTED`. Cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsibility_transfer_ref: Option<LocalRef>,
    /// Member accounts: LinkedAccount names and/or 12-digit account ids (`STANDARD` groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub accounts: Vec<String>,
    /// Member accounts chosen by label: every LinkedAccount in the namespace whose labels
    /// match (added to `accounts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_selector: Option<LabelSelector>,
    /// The plan the group is priced with: a PricingPlan (same namespace), or one of the plans
    /// AWS manages: `BasicPricingPlan` (public On-Demand prices) or `Passthrough` (the AWS
    /// invoice as it is; `TRANSFER_BILLING` groups only).
    pub pricing_plan_ref: PricingPlanRef,
    /// Whether new accounts of the organization join this group automatically (at most one
    /// group per payer).
    #[serde(default)]
    pub auto_associate: bool,
    /// Description shown in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "tags_schema")]
    pub tags: BTreeMap<String, String>,
    /// What deleting this object does in AWS: `Retain` (default: the group stays) or
    /// `Delete` (its custom line items, then the group, are deleted; its accounts fall back
    /// to the payer's default billing). A group that holds custom line items not managed by a
    /// CustomLineItem of this namespace is not deleted (`GroupHasForeignItems`) until they
    /// are gone. Deleting a billing group is never done unasked.
    #[serde(default)]
    pub deletion_policy: GroupDeletionPolicy,
    /// Take over a billing group of this name that already exists in AWS without the
    /// `partnerbilling.io/owner` tag, i.e. made outside the operator: the tag is added and
    /// the group is managed from then on. Without it such a group is refused
    /// (`AdoptionRequired`). A group tagged as another object's is always refused
    /// (`OwnedElsewhere`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// `Manage` (default): the operator makes AWS match this spec. `Observe`: the operator
    /// only reads AWS, reports differences from this spec in the `Drifted` condition and never
    /// writes, creates or deletes anything in AWS for this object, also when it is deleted
    /// (then only the finalizer is removed, whatever `deletionPolicy` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<crate::api::common::ManagementPolicy>,
}

/// The type of a billing group.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingGroupType {
    /// Accounts of the payer's own organization, billed to a primary account.
    #[default]
    Standard,
    /// A customer organization whose billing was transferred to the payer.
    TransferBilling,
}

impl BillingGroupType {
    /// The `BillingGroupType` value of the Billing Conductor API.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingGroupType::Standard => "STANDARD",
            BillingGroupType::TransferBilling => "TRANSFER_BILLING",
        }
    }
}

/// The AWS-managed pricing plans a billing group may name in `pricingPlanRef.name`.
pub const AWS_MANAGED_PLANS: [&str; 2] = ["BasicPricingPlan", "Passthrough"];

/// A pricing plan: a PricingPlan object or an AWS-managed plan.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct PricingPlanRef {
    /// Name of a PricingPlan in the same namespace, or `BasicPricingPlan` or `Passthrough`
    /// for a plan AWS manages.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?|BasicPricingPlan|Passthrough)$")
    )]
    pub name: String,
}

impl PricingPlanRef {
    /// The AWS-managed plan named, if any.
    pub fn aws_managed(&self) -> Option<&str> {
        AWS_MANAGED_PLANS.iter().find(|p| **p == self.name).copied()
    }
}

/// What deleting a BillingGroup object does in AWS.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum GroupDeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// Cost of the group in one billing period, as ListBillingGroupCostReports reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostReport {
    /// `YYYY-MM`.
    pub billing_period: String,
    /// What AWS charges the payer for the group's accounts.
    pub aws_cost: String,
    /// What the customer is billed (pro forma cost).
    pub proforma_cost: String,
    /// Billed minus AWS cost; can be negative.
    pub margin: String,
    pub margin_percentage: String,
    pub currency: String,
}

/// What the operator found for this group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingGroupStatus {
    /// Conditions `Ready` (the group exists as specified, all members associated) and `Synced`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the tags in AWS were last compared with the spec (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_checked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// AWS status: ACTIVE, PRIMARY_ACCOUNT_MISSING or PENDING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    /// Number of accounts in the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Account ids in the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Accounts this group wants that another billing group holds (`account: group`); they
    /// are left where they are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conflicts: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period: Option<CostReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_period: Option<CostReport>,
    /// Change of the pro forma cost from the previous to the current period, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proforma_change_percent: Option<String>,
    /// The ARN of the responsibility transfer a `TRANSFER_BILLING` group bills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsibility_transfer_arn: Option<String>,
    /// AWS cost and pro forma cost by service (GetBillingGroupCostReport grouped by product
    /// name), read once per insights refresh interval of the Payer when its insights are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_by_service: Option<CostByService>,
}

/// A billing group's cost by service in the current and the previous period.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostByService {
    /// When AWS was last read (RFC 3339).
    pub refreshed_at: String,
    /// The current period (`YYYY-MM`).
    pub current_period: String,
    /// The services with the highest pro forma cost in the current period (at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub current: Vec<ServiceCost>,
    /// The previous period (`YYYY-MM`).
    pub previous_period: String,
    /// The services with the highest pro forma cost in the previous period (at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<ServiceCost>,
}

/// One service's cost in one period.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCost {
    /// The product name AWS reports (for example `Amazon Simple Storage Service`).
    pub service: String,
    /// What AWS charges for it.
    pub aws_cost: String,
    /// What the customer is billed for it (pro forma cost).
    pub proforma_cost: String,
    /// Billed minus AWS cost; can be negative.
    pub margin: String,
}

impl BillingGroup {
    /// Name of the group in AWS.
    pub fn group_name(&self) -> String {
        self.spec
            .group_name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(self))
    }
}
