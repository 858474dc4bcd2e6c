//! AWS Organizations: the organization and its accounts, OUs and SCPs — the seam every
//! Organizations kind calls through ([`OrganizationsApi`]), and its SDK implementation.
//!
//! Writes are idempotent: an AWS error code that means the operation had already happened
//! (attaching a policy that is attached, deleting what is gone, ...) is success inside the
//! implementation, so callers never match on "already done" codes. Each write method lists
//! the codes it absorbs, with what the AWS API reference says they mean.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationError;
use aws_sdk_organizations::types;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::error::Error;
use crate::reconcile::reasons::{AWS_BAD_RESPONSE, INVALID_SPEC};

/// The organization as DescribeOrganization reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub arn: String,
    pub feature_set: String,
    pub management_account_id: String,
}

/// One account of the organization, as ListAccounts reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `Account.State` (AWS retired `Account.Status` on 2026-09-09; it is never read).
    pub state: AccountState,
    /// CREATED | INVITED
    pub joined_method: String,
}

/// Where an account is in its life, as `Account.State` says.
///
/// botocore's organizations model, shape Account, member State: "Each state represents a
/// specific phase in the account lifecycle ... For more information about account states and
/// their implications, see Monitor the state of your Amazon Web Services accounts in the
/// Organizations User Guide". That page: PENDING_ACTIVATION "the account is unusable because
/// the account sign-up process was initiated but never completed"; SUSPENDED "the account is
/// unusable because AWS has restricted access. The account holder can still view billing
/// information and contact AWS Support, who can explain why the account is suspended". AWS's
/// announcement of the field ("AWS Organizations now provides account state information for
/// member accounts"): "'SUSPENDED' for AWS-enforced suspension, 'PENDING_CLOSURE' for
/// in-process closure requests, and 'CLOSED' for accounts in their 90-day reinstatement
/// window". So SUSPENDED is not a closure (only the retired `Status` said SUSPENDED after one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountState {
    /// Created, not usable yet: AWS is still activating it.
    PendingActivation,
    Active,
    /// AWS restricted the account (an AWS-enforced suspension, not a closure); AWS Support
    /// can say why.
    Suspended,
    /// CloseAccount was called; AWS is closing it.
    PendingClosure,
    /// Closed: in the 90 days in which AWS Support can reinstate it; then it leaves the
    /// organization.
    Closed,
    /// A state this build does not know, or none (empty) when AWS sent no `State`.
    Other(String),
}

impl AccountState {
    /// The state named as AWS names it.
    pub fn parse(s: &str) -> Self {
        match s {
            "PENDING_ACTIVATION" => Self::PendingActivation,
            "ACTIVE" => Self::Active,
            "SUSPENDED" => Self::Suspended,
            "PENDING_CLOSURE" => Self::PendingClosure,
            "CLOSED" => Self::Closed,
            other => Self::Other(other.to_string()),
        }
    }

    /// The name AWS uses (empty when AWS sent no `State`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::PendingActivation => "PENDING_ACTIVATION",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::PendingClosure => "PENDING_CLOSURE",
            Self::Closed => "CLOSED",
            Self::Other(s) => s,
        }
    }

    pub fn is_active(&self) -> bool {
        *self == Self::Active
    }

    /// PENDING_CLOSURE or CLOSED: closed, or being closed. (SUSPENDED is not: AWS restricted
    /// the account; nobody closed it.)
    pub fn is_closed_or_closing(&self) -> bool {
        matches!(self, Self::PendingClosure | Self::Closed)
    }
}

impl std::fmt::Display for AccountState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Other(s) if s.is_empty() => f.write_str("in no state AWS reported"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The organization's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    pub id: String,
    pub arn: String,
    /// Whether the SERVICE_CONTROL_POLICY type is enabled on it.
    pub scp_enabled: bool,
}

/// An organizational unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgUnit {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub parent_id: String,
}

/// A service control policy, as ListPolicies reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySummary {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub description: String,
    pub aws_managed: bool,
}

/// A CreateAccount request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateStatus {
    pub request_id: String,
    pub account_name: String,
    /// IN_PROGRESS | SUCCEEDED | FAILED
    pub state: String,
    pub account_id: Option<String>,
    pub failure_reason: Option<String>,
}

/// What CreateAccount is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub email: String,
    pub account_name: String,
    pub role_name: Option<String>,
    pub iam_user_access_to_billing: Option<bool>,
    pub tags: Tags,
}

/// An invitation (an INVITE handshake).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub id: String,
    /// REQUESTED | OPEN | CANCELED | ACCEPTED | DECLINED | EXPIRED
    pub state: String,
    /// The invited account id or e-mail.
    pub target: String,
    /// RFC 3339.
    pub requested_at: Option<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
}

impl Handshake {
    pub fn is_open(&self) -> bool {
        matches!(self.state.as_str(), "OPEN" | "REQUESTED")
    }
}

/// A billing transfer (an Organizations responsibility transfer of type BILLING) as the
/// bill-transfer account (the Payer, which invited) sees it: ListInboundResponsibilityTransfers
/// / DescribeResponsibilityTransfer. In AWS's words the Payer is the transfer's `Target`
/// ("Account that manages the specified responsibilities for another organization") and the
/// customer's management account its `Source`.
/// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_ResponsibilityTransfer.html>
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// `rt-...`
    pub id: String,
    pub arn: String,
    pub name: String,
    /// REQUESTED | ACCEPTED | DECLINED | CANCELED | EXPIRED | WITHDRAWN
    pub status: String,
    /// The customer organization's management account.
    pub source_account_id: Option<String>,
    pub source_email: Option<String>,
    /// RFC 3339.
    pub start: Option<String>,
    /// RFC 3339.
    pub end: Option<String>,
    /// The handshake of the invitation (`h-...`).
    pub handshake_id: Option<String>,
}

/// Who is invited to transfer billing responsibility: the customer organization's
/// management account, by id or e-mail (HandshakeParty Type ACCOUNT or EMAIL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferParty {
    Account(String),
    Email(String),
}

/// What InviteOrganizationToTransferResponsibility is asked for (Type BILLING).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferInvite {
    pub customer: TransferParty,
    /// Seconds since the epoch (00:00:00 UTC on the first day of a month).
    pub start_epoch: i64,
    pub name: String,
    pub notes: Option<String>,
    pub tags: Tags,
}

/// The answer to an invitation: the handshake and, when AWS names it among the handshake's
/// resources (type RESPONSIBILITY_TRANSFER), the transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferInvitationSent {
    pub handshake_id: String,
    pub transfer_id: Option<String>,
}

/// Tags of an AWS resource.
pub type Tags = BTreeMap<String, String>;

/// The Organizations calls the operator makes.
#[async_trait]
pub trait OrganizationsApi: Send + Sync {
    /// `Ok(None)` when the account is not in an organization.
    async fn describe_organization(&self) -> Result<Option<Organization>, Error>;
    /// Every account of the organization (all pages of ListAccounts).
    async fn list_accounts(&self) -> Result<Vec<Account>, Error>;
    /// One account of the organization; `Ok(None)` when it is not in it.
    async fn describe_account(&self, account_id: &str) -> Result<Option<Account>, Error>;
    async fn list_roots(&self) -> Result<Vec<Root>, Error>;
    /// The OUs directly under `parent_id` (all pages).
    async fn list_ous_for_parent(&self, parent_id: &str) -> Result<Vec<OrgUnit>, Error>;
    /// Ids of the accounts directly under `parent_id` (all pages).
    async fn list_account_ids_for_parent(&self, parent_id: &str) -> Result<Vec<String>, Error>;
    /// Every service control policy (all pages).
    async fn list_scps(&self) -> Result<Vec<PolicySummary>, Error>;
    /// Ids of the roots, OUs and accounts `policy_id` is attached to (all pages).
    async fn list_targets_for_policy(&self, policy_id: &str) -> Result<Vec<String>, Error>;
    /// The policy document as stored.
    async fn describe_policy_content(&self, policy_id: &str) -> Result<String, Error>;
    async fn create_scp(
        &self,
        name: &str,
        description: &str,
        content: &str,
        tags: &Tags,
    ) -> Result<PolicySummary, Error>;
    async fn update_scp(
        &self,
        policy_id: &str,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<(), Error>;
    /// Delete a policy. Already done: `PolicyNotFoundException` ("We can't find a policy with
    /// the PolicyId that you specified": it is deleted already) is success.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_DeletePolicy.html>
    async fn delete_policy(&self, policy_id: &str) -> Result<(), Error>;
    /// Attach a policy to a root, OU or account. Already done:
    /// `DuplicatePolicyAttachmentException` ("The selected policy is already attached to the
    /// specified target") is success.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_AttachPolicy.html>
    async fn attach_policy(&self, policy_id: &str, target_id: &str) -> Result<(), Error>;
    /// Detach a policy from a root, OU or account. Already done: `PolicyNotAttachedException`
    /// ("The policy isn't attached to the specified target in the specified root") is success.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_DetachPolicy.html>
    async fn detach_policy(&self, policy_id: &str, target_id: &str) -> Result<(), Error>;
    /// Enable the SERVICE_CONTROL_POLICY type in a root. Already done:
    /// `PolicyTypeAlreadyEnabledException` ("The specified policy type is already enabled in
    /// the specified root") is success.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_EnablePolicyType.html>
    async fn enable_scp_type(&self, root_id: &str) -> Result<(), Error>;
    /// Create an OU. `DuplicateOrganizationalUnitException` stays an error: an OU of that name
    /// exists, but it is not known to be the caller's (the caller looks again).
    async fn create_ou(&self, parent_id: &str, name: &str, tags: &Tags) -> Result<OrgUnit, Error>;
    async fn rename_ou(&self, ou_id: &str, name: &str) -> Result<(), Error>;
    /// Delete an (empty) OU. Already done: `OrganizationalUnitNotFoundException` ("We can't
    /// find an OU with the OrganizationalUnitId that you specified": it is deleted already) is
    /// success.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_DeleteOrganizationalUnit.html>
    async fn delete_ou(&self, ou_id: &str) -> Result<(), Error>;
    async fn create_account(&self, request: &NewAccount) -> Result<CreateStatus, Error>;
    async fn describe_create_account_status(&self, request_id: &str)
    -> Result<CreateStatus, Error>;
    /// CreateAccount requests still IN_PROGRESS (all pages).
    async fn list_creates_in_progress(&self) -> Result<Vec<CreateStatus>, Error>;
    async fn invite_account(
        &self,
        account_id: &str,
        notes: Option<&str>,
    ) -> Result<Handshake, Error>;
    /// Every INVITE handshake of the organization (all pages; AWS keeps finished ones 30 days).
    async fn list_invitations(&self) -> Result<Vec<Handshake>, Error>;
    /// Cancel an invitation. Already done: `InvalidHandshakeTransitionException` ("You can't
    /// perform the operation on the handshake in its current state. For example, you can't
    /// cancel a handshake that was already accepted") is success: the handshake is no longer
    /// open — canceled, declined or expired already, or accepted, which the next read of the
    /// organization shows as a member account.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_CancelHandshake.html>
    async fn cancel_handshake(&self, handshake_id: &str) -> Result<(), Error>;
    async fn move_account(&self, account_id: &str, from: &str, to: &str) -> Result<(), Error>;
    async fn list_tags(&self, resource_id: &str) -> Result<Tags, Error>;
    async fn tag_resource(&self, resource_id: &str, tags: &Tags) -> Result<(), Error>;
    async fn untag_resource(&self, resource_id: &str, keys: &[String]) -> Result<(), Error>;
    /// Close a member account. Already done: `AccountAlreadyClosedException` ("You attempted
    /// to close an account that is already closed") is success.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_CloseAccount.html>
    async fn close_account(&self, account_id: &str) -> Result<(), Error>;
    /// Remove a member account from the organization. Already done: `AccountNotFoundException`
    /// ("We can't find an Amazon Web Services account with the AccountId that you specified,
    /// or the account whose credentials you used to make this request isn't a member of an
    /// organization": the account has left the organization already) is success.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_RemoveAccountFromOrganization.html>
    async fn remove_account(&self, account_id: &str) -> Result<(), Error>;
    /// Invite a customer organization's management account to transfer its billing to this
    /// (management) account: InviteOrganizationToTransferResponsibility, Type BILLING, with
    /// the tags (the owner tag among them) on the transfer. Not idempotent: the caller looks
    /// for its transfer (natural key and owner tag) before inviting.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_InviteOrganizationToTransferResponsibility.html>
    async fn invite_transfer(
        &self,
        invite: &TransferInvite,
    ) -> Result<TransferInvitationSent, Error>;
    /// Every billing transfer in which this account manages another organization's bill
    /// (ListInboundResponsibilityTransfers, Type BILLING, all pages). "Inbound billing:
    /// Billing transfers that allow you to manage and pay for another organization's
    /// consolidated bill" (Billing User Guide, orgs_transfer_billing-send-invitation).
    async fn list_inbound_transfers(&self) -> Result<Vec<Transfer>, Error>;
    /// One transfer; `Ok(None)` on ResponsibilityTransferNotFoundException.
    async fn describe_transfer(&self, transfer_id: &str) -> Result<Option<Transfer>, Error>;
    /// End a transfer at `end_epoch` (23:59:59 UTC on the last day of a month):
    /// TerminateResponsibilityTransfer. Already done: `ResponsibilityTransferAlreadyInStatusException`
    /// ("The responsibility transfer is already in the status that you specified": it was
    /// terminated already) and `ResponsibilityTransferNotFoundException` (it is gone) are
    /// success.
    /// <https://docs.aws.amazon.com/organizations/latest/APIReference/API_TerminateResponsibilityTransfer.html>
    async fn terminate_transfer(&self, transfer_id: &str, end_epoch: i64) -> Result<(), Error>;
}

/// Page size of every Organizations list call: MaxResults is 1-20 for each of them in the
/// service model (ListAccounts, ListAccountsForParent, ListRoots,
/// ListOrganizationalUnitsForParent, ListPolicies, ListTargetsForPolicy,
/// ListCreateAccountStatus, ListHandshakesForOrganization; ListTagsForResource takes none).
/// Every list follows NextToken to the last page (the SDK paginators).
pub const PAGE_SIZE: i32 = 20;

fn err<E>(op: &str) -> impl FnOnce(SdkError<E, HttpResponse>) -> Error + '_
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    move |e| super::classify::classify("organizations", op, e)
}

/// The output of a write, or `None` when AWS answered with one of the `done` error codes: the
/// operation had already happened (see the trait methods). Other errors go through `or`.
fn unless_done<T, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    done: &[&str],
    or: impl FnOnce(SdkError<E, HttpResponse>) -> Error,
) -> Result<Option<T>, Error>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if super::classify::error_code(&e).is_some_and(|c| done.contains(&c.as_str())) => {
            Ok(None)
        }
        Err(e) => Err(or(e)),
    }
}

fn s(v: Option<&str>) -> String {
    v.unwrap_or_default().to_string()
}

fn rfc3339(t: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
}

fn sdk_tags(tags: &Tags) -> Result<Vec<types::Tag>, Error> {
    tags.iter()
        .map(|(k, v)| {
            types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| Error::terminal(INVALID_SPEC, format!("tag {k}: {e}")))
        })
        .collect()
}

fn create_status(c: &types::CreateAccountStatus) -> CreateStatus {
    CreateStatus {
        request_id: s(c.id()),
        account_name: s(c.account_name()),
        state: c
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        account_id: c.account_id().map(str::to_string),
        failure_reason: c.failure_reason().map(|r| r.as_str().to_string()),
    }
}

fn handshake(h: &types::Handshake) -> Handshake {
    let target = h
        .parties()
        .iter()
        .find(|p| !matches!(p.r#type(), types::HandshakePartyType::Organization))
        .map(|p| p.id().to_string())
        .unwrap_or_default();
    Handshake {
        id: s(h.id()),
        state: h
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        target,
        requested_at: rfc3339(h.requested_timestamp()),
        expires_at: rfc3339(h.expiration_timestamp()),
    }
}

fn transfer(t: &types::ResponsibilityTransfer) -> Transfer {
    Transfer {
        id: s(t.id()),
        arn: s(t.arn()),
        name: s(t.name()),
        status: t
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        source_account_id: t
            .source()
            .and_then(|p| p.management_account_id())
            .map(str::to_string),
        source_email: t
            .source()
            .and_then(|p| p.management_account_email())
            .map(str::to_string),
        start: rfc3339(t.start_timestamp()),
        end: rfc3339(t.end_timestamp()),
        handshake_id: t.active_handshake_id().map(str::to_string),
    }
}

fn transfer_party(party: &TransferParty) -> Result<types::HandshakeParty, Error> {
    let (id, kind) = match party {
        TransferParty::Account(id) => (id, types::HandshakePartyType::Account),
        TransferParty::Email(email) => (email, types::HandshakePartyType::Email),
    };
    types::HandshakeParty::builder()
        .id(id)
        .r#type(kind)
        .build()
        .map_err(|e| Error::terminal(INVALID_SPEC, e))
}

/// The transfer an invitation handshake names (resource type RESPONSIBILITY_TRANSFER, at any
/// depth of the handshake's resources).
fn transfer_of(resources: &[types::HandshakeResource]) -> Option<String> {
    resources.iter().find_map(|r| {
        if matches!(
            r.r#type(),
            Some(types::HandshakeResourceType::ResponsibilityTransfer)
        ) {
            r.value().map(str::to_string)
        } else {
            transfer_of(r.resources())
        }
    })
}

fn policy_summary(p: &types::PolicySummary) -> PolicySummary {
    PolicySummary {
        id: s(p.id()),
        arn: s(p.arn()),
        name: s(p.name()),
        description: s(p.description()),
        aws_managed: p.aws_managed(),
    }
}

fn account(a: &types::Account) -> Account {
    Account {
        id: s(a.id()),
        email: s(a.email()),
        name: s(a.name()),
        state: AccountState::parse(a.state().map(|s| s.as_str()).unwrap_or_default()),
        joined_method: a
            .joined_method()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
    }
}

#[async_trait]
impl OrganizationsApi for aws_sdk_organizations::Client {
    async fn describe_organization(&self) -> Result<Option<Organization>, Error> {
        match self.describe_organization().send().await {
            Ok(out) => Ok(out.organization().map(|o| Organization {
                id: s(o.id()),
                arn: s(o.arn()),
                feature_set: o
                    .feature_set()
                    .map(|f| f.as_str().to_string())
                    .unwrap_or_default(),
                management_account_id: s(o.master_account_id()),
            })),
            Err(e) => match e.as_service_error() {
                Some(DescribeOrganizationError::AwsOrganizationsNotInUseException(_)) => Ok(None),
                _ => Err(err("DescribeOrganization")(e)),
            },
        }
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, Error> {
        let mut pages = self
            .list_accounts()
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut accounts = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(err("ListAccounts"))?;
            accounts.extend(page.accounts().iter().map(account));
        }
        Ok(accounts)
    }

    async fn describe_account(&self, account_id: &str) -> Result<Option<Account>, Error> {
        match self.describe_account().account_id(account_id).send().await {
            Ok(out) => Ok(out.account().map(account)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_account_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(err("DescribeAccount")(e)),
        }
    }

    async fn list_roots(&self) -> Result<Vec<Root>, Error> {
        let mut pages = self
            .list_roots()
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut roots = Vec::new();
        while let Some(page) = pages.next().await {
            for r in page.map_err(err("ListRoots"))?.roots() {
                roots.push(Root {
                    id: s(r.id()),
                    arn: s(r.arn()),
                    scp_enabled: r.policy_types().iter().any(|t| {
                        matches!(t.r#type(), Some(types::PolicyType::ServiceControlPolicy))
                            && matches!(t.status(), Some(types::PolicyTypeStatus::Enabled))
                    }),
                });
            }
        }
        Ok(roots)
    }

    async fn list_ous_for_parent(&self, parent_id: &str) -> Result<Vec<OrgUnit>, Error> {
        let mut pages = self
            .list_organizational_units_for_parent()
            .parent_id(parent_id)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut ous = Vec::new();
        while let Some(page) = pages.next().await {
            for o in page
                .map_err(err("ListOrganizationalUnitsForParent"))?
                .organizational_units()
            {
                ous.push(OrgUnit {
                    id: s(o.id()),
                    arn: s(o.arn()),
                    name: s(o.name()),
                    parent_id: parent_id.to_string(),
                });
            }
        }
        Ok(ous)
    }

    async fn list_account_ids_for_parent(&self, parent_id: &str) -> Result<Vec<String>, Error> {
        let mut pages = self
            .list_accounts_for_parent()
            .parent_id(parent_id)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            for a in page.map_err(err("ListAccountsForParent"))?.accounts() {
                ids.push(s(a.id()));
            }
        }
        Ok(ids)
    }

    async fn list_scps(&self) -> Result<Vec<PolicySummary>, Error> {
        let mut pages = self
            .list_policies()
            .filter(types::PolicyType::ServiceControlPolicy)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(
                page.map_err(err("ListPolicies"))?
                    .policies()
                    .iter()
                    .map(policy_summary),
            );
        }
        Ok(out)
    }

    async fn list_targets_for_policy(&self, policy_id: &str) -> Result<Vec<String>, Error> {
        let mut pages = self
            .list_targets_for_policy()
            .policy_id(policy_id)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(
                page.map_err(err("ListTargetsForPolicy"))?
                    .targets()
                    .iter()
                    .map(|t| s(t.target_id())),
            );
        }
        Ok(out)
    }

    async fn describe_policy_content(&self, policy_id: &str) -> Result<String, Error> {
        let out = self
            .describe_policy()
            .policy_id(policy_id)
            .send()
            .await
            .map_err(err("DescribePolicy"))?;
        Ok(s(out.policy().and_then(|p| p.content())))
    }

    async fn create_scp(
        &self,
        name: &str,
        description: &str,
        content: &str,
        tags: &Tags,
    ) -> Result<PolicySummary, Error> {
        let out = self
            .create_policy()
            .name(name)
            .description(description)
            .content(content)
            .r#type(types::PolicyType::ServiceControlPolicy)
            .set_tags(Some(sdk_tags(tags)?))
            .send()
            .await
            .map_err(err("CreatePolicy"))?;
        crate::after_write!("organizations:CreatePolicy");
        out.policy()
            .and_then(|p| p.policy_summary())
            .map(policy_summary)
            .ok_or_else(|| Error::retryable(AWS_BAD_RESPONSE, "CreatePolicy returned no policy"))
    }

    async fn update_scp(
        &self,
        policy_id: &str,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<(), Error> {
        self.update_policy()
            .policy_id(policy_id)
            .name(name)
            .description(description)
            .content(content)
            .send()
            .await
            .map_err(err("UpdatePolicy"))?;
        crate::after_write!("organizations:UpdatePolicy");
        Ok(())
    }

    async fn delete_policy(&self, policy_id: &str) -> Result<(), Error> {
        let sent = self.delete_policy().policy_id(policy_id).send().await;
        if unless_done(sent, &["PolicyNotFoundException"], err("DeletePolicy"))?.is_some() {
            crate::after_write!("organizations:DeletePolicy");
        }
        Ok(())
    }

    async fn attach_policy(&self, policy_id: &str, target_id: &str) -> Result<(), Error> {
        let sent = self
            .attach_policy()
            .policy_id(policy_id)
            .target_id(target_id)
            .send()
            .await;
        let done = ["DuplicatePolicyAttachmentException"];
        if unless_done(sent, &done, err("AttachPolicy"))?.is_some() {
            crate::after_write!("organizations:AttachPolicy");
        }
        Ok(())
    }

    async fn detach_policy(&self, policy_id: &str, target_id: &str) -> Result<(), Error> {
        let sent = self
            .detach_policy()
            .policy_id(policy_id)
            .target_id(target_id)
            .send()
            .await;
        if unless_done(sent, &["PolicyNotAttachedException"], err("DetachPolicy"))?.is_some() {
            crate::after_write!("organizations:DetachPolicy");
        }
        Ok(())
    }

    async fn enable_scp_type(&self, root_id: &str) -> Result<(), Error> {
        let sent = self
            .enable_policy_type()
            .root_id(root_id)
            .policy_type(types::PolicyType::ServiceControlPolicy)
            .send()
            .await;
        let done = ["PolicyTypeAlreadyEnabledException"];
        if unless_done(sent, &done, err("EnablePolicyType"))?.is_some() {
            crate::after_write!("organizations:EnablePolicyType");
        }
        Ok(())
    }

    async fn create_ou(&self, parent_id: &str, name: &str, tags: &Tags) -> Result<OrgUnit, Error> {
        let out = self
            .create_organizational_unit()
            .parent_id(parent_id)
            .name(name)
            .set_tags(Some(sdk_tags(tags)?))
            .send()
            .await
            .map_err(err("CreateOrganizationalUnit"))?;
        crate::after_write!("organizations:CreateOrganizationalUnit");
        let ou = out.organizational_unit().ok_or_else(|| {
            Error::retryable(AWS_BAD_RESPONSE, "CreateOrganizationalUnit returned no OU")
        })?;
        Ok(OrgUnit {
            id: s(ou.id()),
            arn: s(ou.arn()),
            name: s(ou.name()),
            parent_id: parent_id.to_string(),
        })
    }

    async fn rename_ou(&self, ou_id: &str, name: &str) -> Result<(), Error> {
        self.update_organizational_unit()
            .organizational_unit_id(ou_id)
            .name(name)
            .send()
            .await
            .map_err(err("UpdateOrganizationalUnit"))?;
        crate::after_write!("organizations:UpdateOrganizationalUnit");
        Ok(())
    }

    async fn delete_ou(&self, ou_id: &str) -> Result<(), Error> {
        let sent = self
            .delete_organizational_unit()
            .organizational_unit_id(ou_id)
            .send()
            .await;
        let done = ["OrganizationalUnitNotFoundException"];
        if unless_done(sent, &done, err("DeleteOrganizationalUnit"))?.is_some() {
            crate::after_write!("organizations:DeleteOrganizationalUnit");
        }
        Ok(())
    }

    async fn create_account(&self, request: &NewAccount) -> Result<CreateStatus, Error> {
        let mut call = self
            .create_account()
            .email(&request.email)
            .account_name(&request.account_name)
            .set_role_name(request.role_name.clone())
            .set_tags(Some(sdk_tags(&request.tags)?));
        if let Some(allow) = request.iam_user_access_to_billing {
            call = call.iam_user_access_to_billing(if allow {
                types::IamUserAccessToBilling::Allow
            } else {
                types::IamUserAccessToBilling::Deny
            });
        }
        let out = call.send().await.map_err(err("CreateAccount"))?;
        crate::after_write!("organizations:CreateAccount");
        out.create_account_status()
            .map(create_status)
            .ok_or_else(|| Error::retryable(AWS_BAD_RESPONSE, "CreateAccount returned no status"))
    }

    async fn describe_create_account_status(
        &self,
        request_id: &str,
    ) -> Result<CreateStatus, Error> {
        let out = self
            .describe_create_account_status()
            .create_account_request_id(request_id)
            .send()
            .await
            .map_err(err("DescribeCreateAccountStatus"))?;
        out.create_account_status()
            .map(create_status)
            .ok_or_else(|| {
                Error::retryable(
                    AWS_BAD_RESPONSE,
                    "DescribeCreateAccountStatus returned no status",
                )
            })
    }

    async fn list_creates_in_progress(&self) -> Result<Vec<CreateStatus>, Error> {
        let mut pages = self
            .list_create_account_status()
            .states(types::CreateAccountState::InProgress)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(
                page.map_err(err("ListCreateAccountStatus"))?
                    .create_account_statuses()
                    .iter()
                    .map(create_status),
            );
        }
        Ok(out)
    }

    async fn invite_account(
        &self,
        account_id: &str,
        notes: Option<&str>,
    ) -> Result<Handshake, Error> {
        let target = types::HandshakeParty::builder()
            .id(account_id)
            .r#type(types::HandshakePartyType::Account)
            .build()
            .map_err(|e| Error::terminal(INVALID_SPEC, e))?;
        let out = self
            .invite_account_to_organization()
            .target(target)
            .set_notes(notes.map(str::to_string))
            .send()
            .await
            .map_err(err("InviteAccountToOrganization"))?;
        crate::after_write!("organizations:InviteAccountToOrganization");
        out.handshake().map(handshake).ok_or_else(|| {
            Error::retryable(
                AWS_BAD_RESPONSE,
                "InviteAccountToOrganization returned no handshake",
            )
        })
    }

    async fn list_invitations(&self) -> Result<Vec<Handshake>, Error> {
        let filter = types::HandshakeFilter::builder()
            .action_type(types::ActionType::InviteAccountToOrganization)
            .build();
        let mut pages = self
            .list_handshakes_for_organization()
            .filter(filter)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(
                page.map_err(err("ListHandshakesForOrganization"))?
                    .handshakes()
                    .iter()
                    .map(handshake),
            );
        }
        Ok(out)
    }

    async fn cancel_handshake(&self, handshake_id: &str) -> Result<(), Error> {
        let sent = self
            .cancel_handshake()
            .handshake_id(handshake_id)
            .send()
            .await;
        let done = ["InvalidHandshakeTransitionException"];
        if unless_done(sent, &done, err("CancelHandshake"))?.is_some() {
            crate::after_write!("organizations:CancelHandshake");
        }
        Ok(())
    }

    async fn move_account(&self, account_id: &str, from: &str, to: &str) -> Result<(), Error> {
        self.move_account()
            .account_id(account_id)
            .source_parent_id(from)
            .destination_parent_id(to)
            .send()
            .await
            .map_err(err("MoveAccount"))?;
        crate::after_write!("organizations:MoveAccount");
        Ok(())
    }

    async fn list_tags(&self, resource_id: &str) -> Result<Tags, Error> {
        let mut pages = self
            .list_tags_for_resource()
            .resource_id(resource_id)
            .into_paginator()
            .send();
        let mut out = Tags::new();
        while let Some(page) = pages.next().await {
            for t in page.map_err(err("ListTagsForResource"))?.tags() {
                out.insert(t.key().to_string(), t.value().to_string());
            }
        }
        Ok(out)
    }

    async fn tag_resource(&self, resource_id: &str, tags: &Tags) -> Result<(), Error> {
        self.tag_resource()
            .resource_id(resource_id)
            .set_tags(Some(sdk_tags(tags)?))
            .send()
            .await
            .map_err(err("TagResource"))?;
        crate::after_write!("organizations:TagResource");
        Ok(())
    }

    async fn untag_resource(&self, resource_id: &str, keys: &[String]) -> Result<(), Error> {
        self.untag_resource()
            .resource_id(resource_id)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(err("UntagResource"))?;
        crate::after_write!("organizations:UntagResource");
        Ok(())
    }

    async fn close_account(&self, account_id: &str) -> Result<(), Error> {
        let sent = self.close_account().account_id(account_id).send().await;
        let done = ["AccountAlreadyClosedException"];
        if unless_done(sent, &done, err("CloseAccount"))?.is_some() {
            crate::after_write!("organizations:CloseAccount");
        }
        Ok(())
    }

    async fn remove_account(&self, account_id: &str) -> Result<(), Error> {
        let sent = self
            .remove_account_from_organization()
            .account_id(account_id)
            .send()
            .await;
        let done = ["AccountNotFoundException"];
        if unless_done(sent, &done, err("RemoveAccountFromOrganization"))?.is_some() {
            crate::after_write!("organizations:RemoveAccountFromOrganization");
        }
        Ok(())
    }

    async fn invite_transfer(
        &self,
        invite: &TransferInvite,
    ) -> Result<TransferInvitationSent, Error> {
        let out = self
            .invite_organization_to_transfer_responsibility()
            .r#type(types::ResponsibilityTransferType::Billing)
            .target(transfer_party(&invite.customer)?)
            .start_timestamp(aws_smithy_types::DateTime::from_secs(invite.start_epoch))
            .source_name(&invite.name)
            .set_notes(invite.notes.clone())
            .set_tags(Some(sdk_tags(&invite.tags)?))
            .send()
            .await
            .map_err(err("InviteOrganizationToTransferResponsibility"))?;
        crate::after_write!("organizations:InviteOrganizationToTransferResponsibility");
        let h = out.handshake().ok_or_else(|| {
            Error::retryable(
                AWS_BAD_RESPONSE,
                "InviteOrganizationToTransferResponsibility returned no handshake",
            )
        })?;
        Ok(TransferInvitationSent {
            handshake_id: s(h.id()),
            transfer_id: transfer_of(h.resources()),
        })
    }

    async fn list_inbound_transfers(&self) -> Result<Vec<Transfer>, Error> {
        // The SDK has no paginator for it: follow NextToken by hand ("always check the
        // NextToken response parameter value, even if you receive an empty result set").
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .list_inbound_responsibility_transfers()
                .r#type(types::ResponsibilityTransferType::Billing)
                .max_results(PAGE_SIZE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(err("ListInboundResponsibilityTransfers"))?;
            out.extend(page.responsibility_transfers().iter().map(transfer));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn describe_transfer(&self, transfer_id: &str) -> Result<Option<Transfer>, Error> {
        let sent = self
            .describe_responsibility_transfer()
            .id(transfer_id)
            .send()
            .await;
        let done = ["ResponsibilityTransferNotFoundException"];
        Ok(
            unless_done(sent, &done, err("DescribeResponsibilityTransfer"))?
                .and_then(|out| out.responsibility_transfer().map(transfer)),
        )
    }

    async fn terminate_transfer(&self, transfer_id: &str, end_epoch: i64) -> Result<(), Error> {
        let sent = self
            .terminate_responsibility_transfer()
            .id(transfer_id)
            .end_timestamp(aws_smithy_types::DateTime::from_secs(end_epoch))
            .send()
            .await;
        let done = [
            "ResponsibilityTransferAlreadyInStatusException",
            "ResponsibilityTransferNotFoundException",
        ];
        if unless_done(sent, &done, err("TerminateResponsibilityTransfer"))?.is_some() {
            crate::after_write!("organizations:TerminateResponsibilityTransfer");
        }
        Ok(())
    }
}
