//! `CustomLineItem`: a fee or credit on a billing group's bill.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{LocalRef, tags_schema};
use super::conditions::{Condition, conditions_schema};

/// Spec of a CustomLineItem.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "CustomLineItem",
    namespaced,
    status = "CustomLineItemStatus",
    shortname = "cli",
    category = "partnerbilling",
    doc = "A custom line item on a BillingGroup's bill: a flat or percentage fee or credit, for a range of billing periods.",
    printcolumn(
        name = "Group",
        type_ = "string",
        json_path = ".spec.billingGroupRef.name"
    ),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Period", type_ = "string", json_path = ".status.billingPeriod"),
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
    validation = Rule::new("has(self.flat) != has(self.percentage)").message("set exactly one of flat and percentage"),
    validation = Rule::new("self.billingGroupRef == oldSelf.billingGroupRef && self.type == oldSelf.type && has(self.flat) == has(oldSelf.flat)").message("billingGroupRef, type and flat-or-percentage cannot change: AWS cannot update them; create a new CustomLineItem"),
    validation = Rule::new("has(self.accountId) == has(oldSelf.accountId) && (!has(self.accountId) || self.accountId == oldSelf.accountId)").message("accountId cannot change"),
    validation = Rule::new("has(self.billingPeriod.start) == has(oldSelf.billingPeriod.start) && (!has(self.billingPeriod.start) || self.billingPeriod.start == oldSelf.billingPeriod.start)").message("billingPeriod.start cannot change"),
    validation = Rule::new("!has(self.billingPeriod.end) || !has(self.billingPeriod.start) || self.billingPeriod.end > self.billingPeriod.start").message("billingPeriod.end must come after billingPeriod.start"),
    validation = Rule::new("!(has(self.lineItemFilter) && has(self.excludeSavingsPlanNegation) && self.excludeSavingsPlanNegation)").message("set at most one of lineItemFilter and excludeSavingsPlanNegation (AWS takes one line-item filter per item)"),
    validation = Rule::new("(has(self.computationRule) ? self.computationRule : 'CONSOLIDATED') == (has(oldSelf.computationRule) ? oldSelf.computationRule : 'CONSOLIDATED')").message("computationRule cannot change: UpdateCustomLineItem cannot change it; create a new CustomLineItem"),
    validation = Rule::new("has(self.presentationService) == has(oldSelf.presentationService) && (!has(self.presentationService) || self.presentationService == oldSelf.presentationService)").message("presentationService cannot change: UpdateCustomLineItem cannot change it; create a new CustomLineItem")
)]
#[serde(rename_all = "camelCase")]
pub struct CustomLineItemSpec {
    /// The BillingGroup (same namespace) whose bill carries the item. Cannot change.
    pub billing_group_ref: LocalRef,
    /// Name of the item in AWS (1-128 of letters, digits and `_+=.-@`). Defaults to the
    /// object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z0-9_+=.@-]+$"))]
    pub item_name: Option<String>,
    /// Description shown on the bill (required, 1-255 characters).
    #[schemars(length(min = 1, max = 255))]
    pub description: String,
    /// `FEE` or `CREDIT`. Cannot change.
    #[serde(rename = "type")]
    pub type_: ChargeType,
    /// A fixed amount in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat: Option<FlatCharge>,
    /// A percentage of the group's charges (or of other custom line items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<PercentageCharge>,
    /// The billing periods the item applies to. Only the current and the previous period
    /// are open: an item cannot be created or changed in an older one.
    #[serde(default)]
    pub billing_period: BillingPeriodRange,
    /// The account the item is charged to. Defaults to the group's primary account. Cannot
    /// change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Option<String>,
    /// `CONSOLIDATED` (default: one line on the bill) or `ITEMIZED` (the charge spread over
    /// the line items it applies to; at most 5 ITEMIZED items per billing group). Cannot
    /// change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computation_rule: Option<ComputationRule>,
    /// Leave Savings Plan negation line items out of what a percentage item applies to (the
    /// one line-item filter AWS offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_savings_plan_negation: Option<bool>,
    /// Which of the group's line items a percentage item applies to: those whose
    /// `LINE_ITEM_TYPE` or `SERVICE` is (`EQUAL`) or is not (`NOT_EQUAL`) the value. At most 10
    /// filtered items per billing group. Can change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_item_filter: Option<LineItemFilter>,
    /// Show the item's charges under this service on the bill (1-128 letters and digits,
    /// for example `AmazonEC2`). Cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z0-9]+$"))]
    pub presentation_service: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "tags_schema")]
    pub tags: BTreeMap<String, String>,
    /// Take over a custom line item of this name that already exists in AWS without the
    /// `partnerbilling.io/owner` tag, i.e. made outside the operator: the tag is added and
    /// the item is managed from then on. Without it such an item is refused
    /// (`AdoptionRequired`). An item tagged as another object's is always refused
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

/// A fee adds to the bill, a credit takes off.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChargeType {
    Fee,
    Credit,
}

impl ChargeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeType::Fee => "FEE",
            ChargeType::Credit => "CREDIT",
        }
    }
}

/// How the item shows on the bill.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComputationRule {
    Consolidated,
    Itemized,
}

impl ComputationRule {
    pub fn as_str(self) -> &'static str {
        match self {
            ComputationRule::Consolidated => "CONSOLIDATED",
            ComputationRule::Itemized => "ITEMIZED",
        }
    }
}

/// A line-item filter: which line items a percentage item applies to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.attribute == 'LINE_ITEM_TYPE' || self.value != 'SAVINGS_PLAN_NEGATION'").message("SAVINGS_PLAN_NEGATION is a line item type: use it with attribute LINE_ITEM_TYPE"))]
pub struct LineItemFilter {
    /// `LINE_ITEM_TYPE` or `SERVICE`.
    pub attribute: FilterAttribute,
    /// `EQUAL` (only matching line items) or `NOT_EQUAL` (all but those).
    pub match_option: MatchOption,
    /// For `LINE_ITEM_TYPE`: `SAVINGS_PLAN_NEGATION` (Savings Plans discounts) or a line item
    /// type such as `SavingsPlanCoveredUsage`; for `SERVICE`: a service code such as
    /// `AmazonEC2` (letters and digits).
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^(SAVINGS_PLAN_NEGATION|[a-zA-Z0-9]+)$")
    )]
    pub value: String,
}

/// What a line-item filter looks at.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FilterAttribute {
    LineItemType,
    Service,
}

impl FilterAttribute {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterAttribute::LineItemType => "LINE_ITEM_TYPE",
            FilterAttribute::Service => "SERVICE",
        }
    }
}

/// Whether a filter keeps or leaves out what matches.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MatchOption {
    Equal,
    NotEqual,
}

impl MatchOption {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOption::Equal => "EQUAL",
            MatchOption::NotEqual => "NOT_EQUAL",
        }
    }
}

/// A fixed amount.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlatCharge {
    /// Amount in USD, 0 to 1,000,000.
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub amount: f64,
}

/// A percentage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PercentageCharge {
    /// Percent, 0 to 10,000.
    #[schemars(range(min = 0.0, max = 10000.0))]
    pub percent: f64,
    /// Names of other CustomLineItems (same group) the percentage applies to. Default: the
    /// group's total charges. Cannot change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub applies_to: Vec<String>,
}

/// A range of billing periods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BillingPeriodRange {
    /// First period, `YYYY-MM`: the current or the previous one when the item is created.
    /// Leave out to start in the period the item is created in (recorded in
    /// `status.startPeriod`). Cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$"))]
    pub start: Option<String>,
    /// First period no longer covered, `YYYY-MM`; leave out for a recurring item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$"))]
    pub end: Option<String>,
}

/// What the operator found for this item.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomLineItemStatus {
    /// Conditions `Ready` (the item exists as specified) and `Synced`.
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
    /// The billing period the item was last reconciled in (`YYYY-MM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_period: Option<String>,
    /// The first period of the item in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
}

impl CustomLineItem {
    /// Name of the item in AWS.
    pub fn item_name(&self) -> String {
        self.spec
            .item_name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(self))
    }
}
