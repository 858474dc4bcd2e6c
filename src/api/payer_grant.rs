//! `PayerGrant`: which namespaces may have the operator act with its own AWS identity, in which
//! AWS accounts and through which roles. Cluster-scoped, written by platform administrators.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Spec of a PayerGrant.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "PayerGrant",
    shortname = "pgrant",
    category = "partnerbilling",
    doc = "A PayerGrant lets the Payers of some namespaces use the operator's own AWS identity (IRSA, EKS Pod Identity or the environment), directly or to assume a role, for some AWS accounts. A Payer without credentials or with assumeRole is refused (Ready=False, reason NotGranted) unless a PayerGrant covers its namespace, its account and its role. Payers with keys in a Secret of their own namespace need no grant. Only platform administrators should be allowed to write PayerGrants.",
    printcolumn(
        name = "Namespaces",
        type_ = "string",
        json_path = ".spec.namespaces.names"
    ),
    printcolumn(name = "Accounts", type_ = "string", json_path = ".spec.accountIds"),
    printcolumn(name = "Roles", type_ = "string", json_path = ".spec.roleArns"),
    printcolumn(
        name = "Operator Identity",
        type_ = "boolean",
        json_path = ".spec.allowOperatorIdentity"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PayerGrantSpec {
    /// The namespaces whose Payers this grant covers: by name, by label, or both (a namespace
    /// matching either is covered).
    pub namespaces: GrantNamespaces,

    /// The AWS accounts (a Payer's `spec.accountId`) the covered Payers may connect to:
    /// 12-digit ids, or `*` for any account.
    #[schemars(
        length(min = 1, max = 1000),
        inner(regex(pattern = r"^([0-9]{12}|\*)$"))
    )]
    pub account_ids: Vec<String>,

    /// The IAM roles the covered Payers may have the operator assume
    /// (`spec.credentials.assumeRole.roleArn`): exact ARNs, or patterns where `*` stands for
    /// any run of characters, e.g. `arn:aws:iam::*:role/PartnerBilling`. A pattern is matched
    /// against the whole ARN text, path included. The role must in any case be in the Payer's
    /// own account (`spec.accountId`). Empty: no role may be assumed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1000),
        inner(
            length(min = 1, max = 2048),
            regex(pattern = r"^(\*|arn:[a-z*-]+:iam::[0-9*]+:role/[\w+=,.@/*-]+)$")
        )
    )]
    pub role_arns: Vec<String>,

    /// Whether the covered Payers may use the operator's own identity itself, without
    /// assuming a role (a Payer without `spec.credentials`). Default false.
    #[serde(default)]
    pub allow_operator_identity: bool,
}

/// Namespaces, by name and by label.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.names) && size(self.names) > 0) || has(self.selector)").message("namespaces needs names or a selector"))]
pub struct GrantNamespaces {
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1000),
        inner(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )
    )]
    pub names: Vec<String>,

    /// Namespaces by label (`matchLabels`, `matchExpressions`); `{}` selects every namespace.
    /// Whoever can create or label namespaces can bring a namespace under a selector: name
    /// the namespaces instead when tenants can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}
