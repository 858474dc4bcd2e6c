//! `LinkedAccount`: a member account of a payer's organization.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{LocalRef, OWNER_TAG, organizations_tags_schema_with};
use super::conditions::{Condition, conditions_schema};

/// Spec of a LinkedAccount.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "LinkedAccount",
    namespaced,
    status = "LinkedAccountStatus",
    shortname = "la",
    category = "partnerbilling",
    doc = "A member (linked) account of a Payer's organization: created, invited, or adopted.",
    printcolumn(name = "Account", type_ = "string", json_path = ".status.accountId"),
    printcolumn(name = "Email", type_ = "string", json_path = ".status.email"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Joined", type_ = "string", json_path = ".status.joinedMethod"),
    printcolumn(
        name = "MTD Cost",
        type_ = "string",
        json_path = ".status.cost.monthToDate"
    ),
    printcolumn(
        name = "MoM %",
        type_ = "string",
        json_path = ".status.cost.monthOverMonthPercent"
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
    validation = Rule::new("[has(self.create), has(self.invite), has(self.adopt)].filter(x, x).size() == 1").message("set exactly one of create, invite and adopt"),
    validation = Rule::new("!(has(self.parentRef) && has(self.parentId))").message("set at most one of parentRef and parentId"),
    validation = Rule::new("has(self.create) == has(oldSelf.create) && has(self.invite) == has(oldSelf.invite) && has(self.adopt) == has(oldSelf.adopt)").message("the way in (create, invite or adopt) cannot change; make a new LinkedAccount"),
    validation = Rule::new("!has(self.create) || !has(oldSelf.create) || self.create == oldSelf.create").message("create cannot change once the account was requested")
)]
#[serde(rename_all = "camelCase")]
pub struct LinkedAccountSpec {
    /// The Payer whose organization the account belongs to.
    pub payer_ref: LocalRef,
    /// Create a new account in the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<CreateAccount>,
    /// Invite an existing standalone account; it joins when its owner accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<InviteAccount>,
    /// Manage an account that is already in the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<AdoptAccount>,
    /// The OrganizationalUnit (same namespace) the account belongs in. Leave out, with
    /// `parentId`, for the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_ref: Option<LocalRef>,
    /// Id of the root or OU the account belongs in, for OUs not managed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$"))]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "account_tags_schema")]
    pub tags: BTreeMap<String, String>,
    /// Names of ServiceControlPolicy objects (same namespace) to attach to the account. AWS
    /// allows 5 per target, FullAWSAccess included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub service_control_policies: Vec<String>,
    /// What happens in AWS when this object is deleted: `Retain` (default: nothing),
    /// `Remove` (RemoveAccountFromOrganization: the account becomes standalone) or `Close`
    /// (CloseAccount, within the Payer's closure budget). The management account is never
    /// removed or closed.
    #[serde(default)]
    pub deletion_policy: AccountDeletionPolicy,
    /// E-mail the listed recipients when the account joins or is closed (through the SMTP
    /// server set on the Payer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<super::notifications::AccountNotifications>,
    /// `Manage` (default): the operator makes AWS match this spec. `Observe`: the operator
    /// only reads AWS, reports differences from this spec in the `Drifted` condition and never
    /// writes, creates or deletes anything in AWS for this object, also when it is deleted
    /// (then only the finalizer is removed, whatever `deletionPolicy` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<crate::api::common::ManagementPolicy>,
}

/// Schema of a LinkedAccount's tags: 48 at most, since the operator writes two tags of its
/// own on the account (owner and notifications sent) and AWS Organizations allows 50.
fn account_tags_schema(_: &mut schemars::generate::SchemaGenerator) -> schemars::Schema {
    organizations_tags_schema_with(
        &[OWNER_TAG, super::notifications::NOTIFIED_TAG],
        "two of its own: partnerbilling.io/owner and partnerbilling.io/notified (which e-mail notifications went out)",
    )
}

/// A new account.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateAccount {
    /// E-mail address of the new account's root user; unique across AWS.
    #[schemars(
        length(min = 6, max = 64),
        regex(pattern = r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
    )]
    pub email: String,
    /// Name of the account (1-50 printable ASCII characters).
    #[schemars(length(min = 1, max = 50), regex(pattern = r"^[\x20-\x7E]+$"))]
    pub account_name: String,
    /// Role AWS creates in the new account that the management account can assume.
    /// Defaults to `OrganizationAccountAccessRole`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[\w+=,.@-]{1,64}$"))]
    pub role_name: Option<String>,
    /// Whether IAM users and roles in the account may see its billing (`Allow` or `Deny`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_user_access_to_billing: Option<BillingAccess>,
}

/// IAM access to billing information.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillingAccess {
    Allow,
    Deny,
}

/// An invitation to an existing account.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InviteAccount {
    /// The 12-digit id of the account to invite.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: String,
    /// Text the account's owner sees with the invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub notes: Option<String>,
}

/// An account already in the organization, found by id or e-mail.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.accountId) != has(self.email)").message("set exactly one of adopt.accountId and adopt.email"))]
pub struct AdoptAccount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 6, max = 64),
        regex(pattern = r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
    )]
    pub email: Option<String>,
}

/// What deleting a LinkedAccount does in AWS.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum AccountDeletionPolicy {
    /// Nothing: the account stays in the organization, unmanaged.
    #[default]
    Retain,
    /// RemoveAccountFromOrganization: the account leaves and becomes standalone.
    Remove,
    /// CloseAccount: the account is closed (AWS Support can reopen it within 90 days).
    Close,
}

/// The latest invitation (InviteAccountToOrganization handshake) and how it ended. A new one
/// is sent only when the spec changes or the `partnerbilling.io/reinvite` annotation gets a
/// new value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationStatus {
    /// Handshake id, e.g. `h-a1b2c3d4e5`.
    pub id: String,
    /// OPEN, ACCEPTED, DECLINED, EXPIRED or CANCELED.
    pub state: String,
    /// When the invitation expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The `metadata.generation` the invitation was sent for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The `partnerbilling.io/reinvite` annotation value the invitation was sent for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinvite: Option<String>,
    /// When the operator saw the invitation end without the account joining (RFC 3339).
    /// AWS lists finished invitations for 30 days only; this record is what keeps a declined
    /// or expired invitation from being sent again by itself afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
}

/// What the operator found for this account.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkedAccountStatus {
    /// Conditions `Ready` (the account is a member as specified) and `Synced`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The account's `State` in AWS Organizations: PENDING_ACTIVATION (sign-up not finished,
    /// not usable yet), ACTIVE, SUSPENDED (AWS restricted the account; AWS Support can say
    /// why), PENDING_CLOSURE (being closed) or CLOSED (closed; AWS Support can reopen it within
    /// 90 days). Only an ACTIVE account is managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// CREATED or INVITED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_method: Option<String>,
    /// The CreateAccount request (`car-...`) while the account is being created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_request_id: Option<String>,
    /// The invitation, while one is open or after it ended without the account joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation: Option<InvitationStatus>,
    /// Id of the root or OU the account is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Names of the operator's SCPs attached to the account (from spec.serviceControlPolicies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached_policies: Vec<String>,
    /// When the tags in AWS were last compared with the spec (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_checked_at: Option<String>,
    /// When CloseAccount or RemoveAccountFromOrganization was called (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_requested_at: Option<String>,
    /// Notifications delivered to the mail server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<super::notifications::NotificationRecord>,
    /// The account's cost (with the Payer's `spec.insights.enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<AccountCost>,
}

/// One account's unblended cost, from the payer's last Cost Explorer read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountCost {
    /// The current month, `YYYY-MM`.
    pub month: String,
    pub month_to_date: String,
    pub previous_month: String,
    /// Month-to-date cost against the whole previous month, in percent (two decimals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month_over_month_percent: Option<String>,
    pub currency: String,
    /// When the payer's costs were read (RFC 3339).
    pub as_of: String,
}

impl LinkedAccount {
    /// Value of the `partnerbilling.io/reinvite` annotation: change it to send a new
    /// invitation after one was declined or expired.
    pub fn reinvite_token(&self) -> Option<String> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REINVITE_ANNOTATION).cloned())
    }
}

/// Annotation whose change sends a new invitation.
pub const REINVITE_ANNOTATION: &str = "partnerbilling.io/reinvite";
