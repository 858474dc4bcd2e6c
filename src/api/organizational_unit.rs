//! `OrganizationalUnit`: an OU in a payer's organization.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DeleteOrRetain, LocalRef, organizations_tags_schema};
use super::conditions::{Condition, conditions_schema};

/// Spec of an OrganizationalUnit.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "OrganizationalUnit",
    namespaced,
    status = "OrganizationalUnitStatus",
    shortname = "ou",
    category = "partnerbilling",
    doc = "An organizational unit in the organization of a Payer, under the root or under another OrganizationalUnit.",
    printcolumn(name = "Name", type_ = "string", json_path = ".spec.name"),
    printcolumn(name = "OU", type_ = "string", json_path = ".status.ouId"),
    printcolumn(name = "Parent", type_ = "string", json_path = ".status.parentId"),
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
#[x_kube(validation = Rule::new("has(self.parentRef) == has(oldSelf.parentRef) && (!has(self.parentRef) || self.parentRef.name == oldSelf.parentRef.name)").message("parentRef cannot change: AWS cannot move an OU; create a new OrganizationalUnit instead"))]
#[serde(rename_all = "camelCase")]
pub struct OrganizationalUnitSpec {
    /// The Payer whose organization holds the OU.
    pub payer_ref: LocalRef,
    /// Name of the OU in AWS (1-128 characters). Changing it renames the OU.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// The parent OrganizationalUnit; leave out for the root. Cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_ref: Option<LocalRef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "organizations_tags_schema")]
    pub tags: BTreeMap<String, String>,
    /// Names of ServiceControlPolicy objects (same namespace) to attach to the OU. AWS allows
    /// 5 per target, FullAWSAccess included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub service_control_policies: Vec<String>,
    /// What happens in AWS when this object is deleted: `Delete` (default; refused while the
    /// OU still holds accounts or OUs) or `Retain`.
    #[serde(default)]
    pub deletion_policy: DeleteOrRetain,
    /// `Manage` (default): the operator makes AWS match this spec. `Observe`: the operator
    /// only reads AWS, reports differences from this spec in the `Drifted` condition and never
    /// writes, creates or deletes anything in AWS for this object, also when it is deleted
    /// (then only the finalizer is removed, whatever `deletionPolicy` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<crate::api::common::ManagementPolicy>,
}

/// What the operator found for this OU.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationalUnitStatus {
    /// Conditions `Ready` (the OU exists as specified) and `Synced`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Id of the OU, e.g. `ou-ab12-cd34ef56`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ou_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Id of the parent (root or OU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Names of the operator's SCPs attached to the OU (from spec.serviceControlPolicies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached_policies: Vec<String>,
    /// When the tags in AWS were last compared with the spec (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_checked_at: Option<String>,
}
