//! `BillingTransfer`: an AWS Billing Transfer (Organizations responsibility transfer of type
//! BILLING) in which the Payer's management account manages and pays the consolidated bill of a
//! customer's whole organization, without owning it.
//!
//! The Payer (the bill-transfer account) invites the customer organization's management account
//! (the bill-source account) with InviteOrganizationToTransferResponsibility; the customer
//! accepts or declines; the transfer starts at 00:00:00 UTC on the first day of a month and ends
//! (TerminateResponsibilityTransfer) at 23:59:59 UTC on the last day of a month.
//! AWS references: API_InviteOrganizationToTransferResponsibility, API_ResponsibilityTransfer,
//! API_TerminateResponsibilityTransfer (Organizations API Reference) and the Billing user guide
//! pages orgs_transfer_billing-send-invitation / -respond-invitation / -stop-transfer.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::LocalRef;
use super::conditions::{Condition, conditions_schema};

/// Spec of a BillingTransfer.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "BillingTransfer",
    namespaced,
    status = "BillingTransferStatus",
    shortname = "bt",
    category = "partnerbilling",
    doc = "An AWS Billing Transfer: the Payer's management account manages and pays a customer organization's consolidated bill from a start month (Organizations responsibility transfer of type BILLING).",
    printcolumn(
        name = "Customer",
        type_ = "string",
        json_path = ".status.customerAccountId"
    ),
    printcolumn(name = "Transfer", type_ = "string", json_path = ".status.transferId"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Start", type_ = "string", json_path = ".status.start"),
    printcolumn(name = "End", type_ = "string", json_path = ".status.end"),
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
    validation = Rule::new("has(self.customer.accountId) != has(self.customer.email)").message("set exactly one of customer.accountId and customer.email"),
    validation = Rule::new("!has(oldSelf.end) || (has(self.end) && self.end == oldSelf.end)").message("end cannot change or be removed once set: AWS cannot undo or move a termination; make a new BillingTransfer for a new transfer")
)]
#[serde(rename_all = "camelCase")]
pub struct BillingTransferSpec {
    /// The Payer whose management account manages and pays the customer's bill (the
    /// bill-transfer account).
    pub payer_ref: LocalRef,
    /// The customer organization's management account (the bill-source account), by account
    /// id or by the e-mail address of its root user. Not the Payer's own organization.
    pub customer: TransferCustomer,
    /// When the transfer starts: 00:00:00 UTC on the first day of a month, e.g.
    /// `2027-01-01T00:00:00Z`. The customer must accept the invitation at least 24 hours
    /// before it, so the operator sends an invitation only while more than 24 hours are left.
    #[schemars(regex(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-01T00:00:00Z$"))]
    pub start: String,
    /// When the transfer ends: 23:59:59 UTC on the last day of a month, e.g.
    /// `2027-06-30T23:59:59Z`. Once the transfer is accepted the operator calls
    /// TerminateResponsibilityTransfer with this end, once. Leave out for a transfer without
    /// an end. Cannot change once set (AWS cannot undo a termination).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(28|29|30|31)T23:59:59Z$"))]
    pub end: Option<String>,
    /// Name of the transfer in AWS (1-128 printable ASCII characters). Defaults to the
    /// object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[\x20-\x7E]+$"))]
    pub transfer_name: Option<String>,
    /// Text the customer sees with the invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub notes: Option<String>,
    /// Billing Conductor's automatic transfer billing groups for this transfer
    /// (Get/UpdateBillingTransferPreference): when enabled, Billing Conductor creates a
    /// billing group, priced with the given plan, for each account that transfers its bill to
    /// the customer's organization (chained transfers). Set once the transfer is ACCEPTED;
    /// leave out to leave the preference as it is in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_billing_groups: Option<AutomaticBillingGroups>,
    /// What deleting this object does in AWS: `Retain` (default: nothing; an open invitation
    /// stays open and an accepted transfer goes on) or `Terminate`
    /// (TerminateResponsibilityTransfer: the transfer ends at 23:59:59 UTC on the last day of
    /// the current month, or at `end` if that is set and sooner; called once).
    #[serde(default)]
    pub deletion_policy: TransferDeletionPolicy,
    /// `Manage` (default): the operator makes AWS match this spec. `Observe`: the operator
    /// only reads the transfer, reports differences from this spec in the `Drifted` condition
    /// and never invites, updates the preference or terminates, also when this object is
    /// deleted (then only the finalizer is removed, whatever `deletionPolicy` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<crate::api::common::ManagementPolicy>,
}

/// The customer organization's management account.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TransferCustomer {
    /// 12-digit id of the customer organization's management account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Option<String>,
    /// E-mail address of the customer organization's management account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 6, max = 64),
        regex(pattern = r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
    )]
    pub email: Option<String>,
}

/// The automatic transfer billing group preference of a transfer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.enabled == (has(self.pricingPlanRef) || has(self.pricingPlan))").message("enabled needs exactly one of pricingPlanRef and pricingPlan; disabled takes neither (AWS requires a plan when enabled and refuses one when disabled)"),
    validation = Rule::new("!(has(self.pricingPlanRef) && has(self.pricingPlan))").message("set at most one of pricingPlanRef and pricingPlan")
)]
pub struct AutomaticBillingGroups {
    /// Whether Billing Conductor creates the billing groups automatically.
    pub enabled: bool,
    /// A PricingPlan object (same namespace) to price the groups with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_plan_ref: Option<LocalRef>,
    /// An AWS-managed pricing plan: `BasicPricingPlan` or `Passthrough`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_plan: Option<ManagedPricingPlan>,
}

/// AWS-managed pricing plans.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagedPricingPlan {
    BasicPricingPlan,
    Passthrough,
}

impl ManagedPricingPlan {
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedPricingPlan::BasicPricingPlan => "BasicPricingPlan",
            ManagedPricingPlan::Passthrough => "Passthrough",
        }
    }
}

/// What deleting a BillingTransfer does in AWS.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum TransferDeletionPolicy {
    /// Nothing: the invitation or transfer stays as it is in AWS, unmanaged.
    #[default]
    Retain,
    /// TerminateResponsibilityTransfer, ending at the end of the current month.
    Terminate,
}

/// The latest invitation sent for this object. A new one is sent only when the spec changes
/// or the `partnerbilling.io/reinvite` annotation gets a new value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferInvitation {
    /// Handshake id, e.g. `h-a1b2c3d4e5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_id: Option<String>,
    /// When the invitation was sent (RFC 3339).
    pub sent_at: String,
    /// The `metadata.generation` the invitation was sent for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The `partnerbilling.io/reinvite` annotation value the invitation was sent for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinvite: Option<String>,
}

/// The automatic transfer billing group preference as read from Billing Conductor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreferenceStatus {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_plan_arn: Option<String>,
}

/// What the operator found for this transfer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingTransferStatus {
    /// Conditions `Ready` (the transfer is ACCEPTED as specified) and `Synced`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// ARN of the transfer, e.g.
    /// `arn:aws:organizations::111111111111:transfer/o-abc1234567/billing/inbound/rt-a1b2c3d4`.
    /// A BillingGroup of type TRANSFER_BILLING names this object in
    /// `responsibilityTransferRef` and uses this ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_arn: Option<String>,
    /// Id of the transfer, `rt-...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// The transfer's status in AWS: REQUESTED (invitation sent, not answered), ACCEPTED,
    /// DECLINED (by the customer), CANCELED, EXPIRED (not accepted in time) or WITHDRAWN
    /// (terminated by either side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the transfer starts (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// When the transfer ends (RFC 3339), once terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// The customer organization's management account id, as AWS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_account_id: Option<String>,
    /// The latest invitation sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation: Option<TransferInvitation>,
    /// The automatic transfer billing group preference in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_billing_groups: Option<PreferenceStatus>,
    /// When TerminateResponsibilityTransfer was called (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_requested_at: Option<String>,
}

impl BillingTransfer {
    /// Value of the `partnerbilling.io/reinvite` annotation: change it to send a new
    /// invitation after one was declined, expired or withdrawn.
    pub fn reinvite_token(&self) -> Option<String> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::linked_account::REINVITE_ANNOTATION).cloned())
    }
}

/// Transfer states in which the invitation or transfer is over and a new invitation may be
/// sent (on spec change or a new reinvite annotation).
pub const ENDED_STATES: [&str; 4] = ["DECLINED", "CANCELED", "EXPIRED", "WITHDRAWN"];
/// The state in which the transfer is in effect (or will be, from its start).
pub const ACCEPTED: &str = "ACCEPTED";
/// The state of an invitation not answered yet.
pub const REQUESTED: &str = "REQUESTED";
