//! `PricingPlan`: a Billing Conductor pricing plan and its pricing rules.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{LocalRef, tags_schema};
use super::conditions::{Condition, conditions_schema};

/// Spec of a PricingPlan.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "PricingPlan",
    namespaced,
    status = "PricingPlanStatus",
    shortname = "pp",
    category = "partnerbilling",
    doc = "A Billing Conductor pricing plan: markups, discounts and free tier rules that turn AWS public prices into what a customer is billed.",
    printcolumn(name = "Rules", type_ = "integer", json_path = ".status.size"),
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
#[serde(rename_all = "camelCase")]
pub struct PricingPlanSpec {
    /// The Payer whose Billing Conductor holds the plan.
    pub payer_ref: LocalRef,
    /// Name of the plan in AWS (1-128 of letters, digits and `_+=.-@`). Defaults to the
    /// object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z0-9_+=.@-]+$"))]
    pub plan_name: Option<String>,
    /// Description shown in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// The rules of the plan (at most 500). The most specific matching rule prices each line
    /// item: SKU, then SERVICE, then BILLING_ENTITY, then GLOBAL.
    #[serde(default)]
    #[schemars(schema_with = "rules_schema")]
    pub rules: Vec<PricingRule>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "tags_schema")]
    pub tags: BTreeMap<String, String>,
    /// Take over a pricing plan of this name (and pricing rules of the names this object
    /// gives its rules) that already exists in AWS without the `partnerbilling.io/owner`
    /// tag, i.e. made outside the operator: the tag is added and the plan is managed from
    /// then on (its other rules stay associated). Without it such a plan is refused
    /// (`AdoptionRequired`). A plan or rule tagged as another object's is always refused
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

/// One pricing rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'TIERING' || self.scope == 'GLOBAL' || self.scope == 'SERVICE'").message("TIERING rules are allowed only with scope GLOBAL or SERVICE"),
    validation = Rule::new("(self.scope != 'SERVICE' && self.scope != 'SKU') || has(self.service)").message("scope SERVICE and SKU need service"),
    validation = Rule::new("self.scope != 'SKU' || has(self.usageType)").message("scope SKU needs usageType"),
    validation = Rule::new("self.scope != 'BILLING_ENTITY' || has(self.billingEntity)").message("scope BILLING_ENTITY needs billingEntity"),
    validation = Rule::new("self.type == 'TIERING' || has(self.modifierPercentage)").message("MARKUP and DISCOUNT rules need modifierPercentage"),
    validation = Rule::new("self.type != 'TIERING' || has(self.freeTier)").message("TIERING rules need freeTier")
)]
pub struct PricingRule {
    /// Name of the rule, unique in the plan (letters, digits and `_+=.-@`).
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-zA-Z0-9_+=.@-]+$"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// What the rule applies to. Cannot be updated in AWS: changing it replaces the rule.
    pub scope: RuleScope,
    /// What it does.
    #[serde(rename = "type")]
    pub type_: RuleType,
    /// Percentage of the On-Demand rate to add (MARKUP) or take off (DISCOUNT), 0 or more,
    /// at most two decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Two decimals by a CEL rule, not `multipleOf: 0.01`: the API server checks a whole number
    // against the factor converted to an integer (0) and rejects every whole percentage.
    #[schemars(
        range(min = 0.0, max = 1000000.0),
        extend("x-kubernetes-validations" = [{
            "rule": "double(self) == double(int(double(self) * 100.0 + 0.5)) / 100.0",
            "message": "modifierPercentage takes at most two decimals"
        }])
    )]
    pub modifier_percentage: Option<f64>,
    /// Service code, e.g. `AmazonEC2` (SERVICE and SKU). Changing it replaces the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z0-9]+$"))]
    pub service: Option<String>,
    /// `AWS`, `AWS Marketplace` or `AISPL` (BILLING_ENTITY). Changing it replaces the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_entity: Option<BillingEntity>,
    /// Usage type, e.g. `BoxUsage:m5.large` (SKU). Changing it replaces the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^\S+$"))]
    pub usage_type: Option<String>,
    /// Operation, e.g. `RunInstances` (SKU). Changing it replaces the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^\S+$"))]
    pub operation: Option<String>,
    /// Whether the AWS free tier applies (TIERING).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_tier: Option<bool>,
}

fn rules_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<PricingRule>>();
    schema.insert("maxItems".into(), 500.into());
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["name"]),
    );
    schema
}

/// What a rule applies to.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleScope {
    Global,
    Service,
    BillingEntity,
    Sku,
}

/// What a rule does.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleType {
    Markup,
    Discount,
    Tiering,
}

/// Who sells what a BILLING_ENTITY rule prices.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BillingEntity {
    #[serde(rename = "AWS")]
    Aws,
    #[serde(rename = "AWS Marketplace")]
    AwsMarketplace,
    #[serde(rename = "AISPL")]
    Aispl,
}

impl BillingEntity {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingEntity::Aws => "AWS",
            BillingEntity::AwsMarketplace => "AWS Marketplace",
            BillingEntity::Aispl => "AISPL",
        }
    }
}

impl RuleScope {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleScope::Global => "GLOBAL",
            RuleScope::Service => "SERVICE",
            RuleScope::BillingEntity => "BILLING_ENTITY",
            RuleScope::Sku => "SKU",
        }
    }
}

impl RuleType {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleType::Markup => "MARKUP",
            RuleType::Discount => "DISCOUNT",
            RuleType::Tiering => "TIERING",
        }
    }
}

/// What the operator found for this plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricingPlanStatus {
    /// Conditions `Ready` (the plan and its rules exist as specified) and `Synced`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the tags in AWS were last compared with the spec (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_checked_at: Option<String>,
    /// ARN of the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// ARN of each rule, by rule name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rule_arns: BTreeMap<String, String>,
    /// Number of pricing rules associated with the plan, as AWS reports it (rules
    /// associated outside this object included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

impl PricingPlan {
    /// Name of the plan in AWS.
    pub fn plan_name(&self) -> String {
        self.spec
            .plan_name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(self))
    }
}
