//! Pieces several kinds share: references to objects in the same namespace, AWS tags.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Tag key the operator puts on every AWS object it creates, naming the object that owns it
/// (`<namespace>/<kind>/<name>`). A same-named object owned by another resource is refused
/// (`OwnedElsewhere`); one without it is taken over only when the resource asks for it
/// (LinkedAccount `adopt`, `spec.adopt` on the billing and pipeline kinds).
pub const OWNER_TAG: &str = "partnerbilling.io/owner";

/// A reference to another object in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Name of the object, in the same namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// What to do in AWS when the object is deleted, for OUs and policies.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum DeleteOrRetain {
    /// Delete it in AWS (refused, with a condition, while it is still in use).
    #[default]
    Delete,
    /// Leave it in AWS; only stop managing it.
    Retain,
}

/// Annotation that pauses an object: with the value `"true"` the operator makes no AWS call
/// at all for it (not even reads) and sets a `Paused` condition. Deleting a paused object only
/// removes the finalizer and leaves AWS untouched. Removing the annotation (or any other
/// value) resumes normal reconciliation.
pub const PAUSED_ANNOTATION: &str = "partnerbilling.io/paused";

/// Value of [`PAUSED_ANNOTATION`] that pauses an object.
pub const PAUSED_VALUE: &str = "true";

/// Whether the operator may change AWS for this object: `Manage` (default, also when unset)
/// makes AWS match the spec; `Observe` only reads AWS, reports the differences from the spec in
/// the `Drifted` condition and never writes, creates or deletes anything in AWS for this
/// object, also when the object is deleted (then only the finalizer is removed, whatever
/// `deletionPolicy` says).
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum ManagementPolicy {
    /// Default: the operator makes AWS match the spec (creates, updates, and on deletion does
    /// what `deletionPolicy` says).
    #[default]
    Manage,
    /// The operator only reads AWS and compares it with the spec: the differences are
    /// reported in the `Drifted` condition and nothing is ever written, created or deleted in
    /// AWS, also when the object is deleted (deleting it only removes the finalizer, whatever
    /// `deletionPolicy` says).
    Observe,
}

impl ManagementPolicy {
    /// Whether this policy forbids every AWS write.
    pub fn is_observe(self) -> bool {
        self == ManagementPolicy::Observe
    }
}

/// Whether a spec's optional management policy forbids every AWS write (unset means `Manage`).
pub fn observe_only(policy: &Option<ManagementPolicy>) -> bool {
    policy.is_some_and(ManagementPolicy::is_observe)
}

/// Whether an object's annotations pause it ([`PAUSED_ANNOTATION`] set to `"true"`).
pub fn is_paused(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations
        .and_then(|a| a.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v == PAUSED_VALUE)
}

/// How an object is to be managed, read from its typed fields (no serialization): its
/// `spec.managementPolicy` and the pause annotation. Every kind of the kind list implements
/// it (the engine requires it), so a new kind cannot be left out; a kind without the field
/// (Payer) is managed.
pub trait HasManagementPolicy: kube::Resource {
    /// `spec.managementPolicy` (`Manage` when unset, or when the kind has no such field).
    fn management_policy(&self) -> ManagementPolicy;

    /// Whether the annotation [`PAUSED_ANNOTATION`] pauses the object.
    fn paused(&self) -> bool {
        is_paused(self.meta().annotations.as_ref())
    }
}

/// [`HasManagementPolicy`] for kinds whose spec has `management_policy:
/// Option<ManagementPolicy>`.
macro_rules! spec_management_policy {
    ($($kind:ty),* $(,)?) => {
        $(
            impl $crate::api::common::HasManagementPolicy for $kind {
                fn management_policy(&self) -> $crate::api::common::ManagementPolicy {
                    self.spec.management_policy.unwrap_or_default()
                }
            }
        )*
    };
}
pub(crate) use spec_management_policy;

/// Schema of AWS tags: at most 50, keys 1-128 characters, values 0-256 characters.
pub fn tags_schema(_: &mut schemars::generate::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "AWS tags of the object (at most 50; keys 1-128 characters, values up to 256). The tags in AWS are made equal to these, plus the partnerbilling.io/owner tag; tags changed outside the operator are put back at the next tag check.",
        "maxProperties": 50,
        "additionalProperties": {"type": "string", "maxLength": 256},
        "x-kubernetes-validations": [{
            "rule": "self.all(k, size(k) >= 1 && size(k) <= 128 && !k.startsWith('aws:') && k != 'partnerbilling.io/owner')",
            "message": "tag keys must be 1-128 characters, must not start with aws: and must not be partnerbilling.io/owner"
        }]
    })
}

/// AWS allows at most this many tags on one Organizations resource (account, OU, policy),
/// the operator's own tags included.
pub const ORGANIZATIONS_TAG_LIMIT: usize = 50;

/// Schema of the tags of an OU or a service control policy: 49 at most, since the operator
/// adds its owner tag and AWS Organizations allows 50.
pub fn organizations_tags_schema(_: &mut schemars::generate::SchemaGenerator) -> schemars::Schema {
    organizations_tags_schema_with(&[OWNER_TAG], "its owner tag partnerbilling.io/owner")
}

/// Schema of the tags of an Organizations resource on which the operator writes the tags
/// `reserved` (described for users as `what`): at most [`ORGANIZATIONS_TAG_LIMIT`] minus
/// those, so that the user's tags and the operator's always fit in AWS; the reserved keys
/// themselves are refused.
pub fn organizations_tags_schema_with(reserved: &[&str], what: &str) -> schemars::Schema {
    let max = ORGANIZATIONS_TAG_LIMIT - reserved.len();
    let keys: Vec<String> = reserved.iter().map(|k| format!("'{k}'")).collect();
    let names = reserved.join(" or ");
    schemars::json_schema!({
        "type": "object",
        "description": format!(
            "AWS tags of the object: at most {max}, because AWS Organizations allows {ORGANIZATIONS_TAG_LIMIT} tags per resource and the operator adds {what}. Keys 1-128 characters, values up to 256. The tags in AWS are made equal to these plus the operator's; tags changed outside the operator are put back at the next tag check."
        ),
        "maxProperties": max,
        "additionalProperties": {"type": "string", "maxLength": 256},
        "x-kubernetes-validations": [{
            "rule": format!(
                "self.all(k, size(k) >= 1 && size(k) <= 128 && !k.startsWith('aws:') && !(k in [{}]))",
                keys.join(", ")
            ),
            "message": format!(
                "tag keys must be 1-128 characters, must not start with aws: and must not be {names} (the operator's own)"
            )
        }]
    })
}

/// Owner tag value for an object.
pub fn owner_value(namespace: &str, kind: &str, name: &str) -> String {
    format!("{namespace}/{}/{name}", kind.to_ascii_lowercase())
}

/// Tags to apply: the user's plus the owner tag.
pub fn with_owner(tags: &BTreeMap<String, String>, owner: &str) -> BTreeMap<String, String> {
    let mut all = tags.clone();
    all.insert(OWNER_TAG.to_string(), owner.to_string());
    all
}
