//! `ServiceControlPolicy`: an SCP in a payer's organization.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DeleteOrRetain, LocalRef, organizations_tags_schema};
use super::conditions::{Condition, conditions_schema};

/// Spec of a ServiceControlPolicy.
// Several printer columns share `type_`, which clippy mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "ServiceControlPolicy",
    namespaced,
    status = "ServiceControlPolicyStatus",
    shortname = "scp",
    category = "partnerbilling",
    doc = "A service control policy (SCP) in the organization of a Payer. LinkedAccounts and OrganizationalUnits attach it by name.",
    printcolumn(name = "Policy", type_ = "string", json_path = ".status.policyId"),
    printcolumn(
        name = "Length",
        type_ = "integer",
        json_path = ".status.documentLength"
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
#[serde(rename_all = "camelCase")]
pub struct ServiceControlPolicySpec {
    /// The Payer whose organization holds the policy.
    pub payer_ref: LocalRef,
    /// Name of the policy in AWS. Defaults to the object's name. The policy is found again by
    /// this name (or by its id in the status); changing it renames the policy in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub policy_name: Option<String>,
    /// Description shown in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub description: Option<String>,
    /// The policy document, as a YAML or JSON object (`Version`, `Statement`). Minified, it
    /// must be at most 5,120 characters.
    #[schemars(schema_with = "document_schema")]
    pub document: serde_json::Value,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "organizations_tags_schema")]
    pub tags: BTreeMap<String, String>,
    /// What happens in AWS when this object is deleted: `Delete` (default; waits until the
    /// policy is attached nowhere) or `Retain`.
    #[serde(default)]
    pub deletion_policy: DeleteOrRetain,
    /// `Manage` (default): the operator makes AWS match this spec. `Observe`: the operator
    /// only reads AWS, reports differences from this spec in the `Drifted` condition and never
    /// writes, creates or deletes anything in AWS for this object, also when it is deleted
    /// (then only the finalizer is removed, whatever `deletionPolicy` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<crate::api::common::ManagementPolicy>,
}

fn document_schema(_: &mut schemars::generate::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "The policy document, as a YAML or JSON object (Version, Statement). Minified, it must be at most 5,120 characters.",
        "x-kubernetes-preserve-unknown-fields": true,
        // `required`, not a CEL `has(self.Statement)`: an object that only preserves unknown
        // fields declares no properties, so the API server's CEL compiler rejects any rule that
        // names one ("undefined field 'Statement'"), and the whole CRD with it.
        "required": ["Statement"]
    })
}

/// What the operator found for this policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceControlPolicyStatus {
    /// Conditions `Ready` (the policy exists in AWS as specified) and `Synced`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Id of the policy, e.g. `p-a1b2c3d4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Characters of the minified document (AWS allows 5,120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_length: Option<i64>,
    /// Ids of the roots, OUs and accounts the policy is attached to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached_targets: Vec<String>,
}

impl ServiceControlPolicy {
    /// Name of the policy in AWS.
    pub fn policy_name(&self) -> String {
        self.spec
            .policy_name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(self))
    }
}
