//! `Payer`: the connection to one AWS Organizations management account.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::conditions::{Condition, conditions_schema};

/// Spec of a Payer.
// Several printer columns share `type_`, which clippy mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "Payer",
    namespaced,
    status = "PayerStatus",
    shortname = "pyr",
    category = "partnerbilling",
    doc = "A Payer is the connection to one AWS Organizations management account (the account that pays the bill). Other partnerbilling objects in the same namespace refer to it by name.",
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.accountId"),
    printcolumn(
        name = "Organization",
        type_ = "string",
        json_path = ".status.organizationId"
    ),
    printcolumn(
        name = "Accounts",
        type_ = "integer",
        json_path = ".status.memberAccounts"
    ),
    printcolumn(
        name = "MTD Cost",
        type_ = "string",
        json_path = ".status.costs.monthToDate"
    ),
    printcolumn(
        name = "MoM %",
        type_ = "string",
        json_path = ".status.costs.monthOverMonthPercent"
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
pub struct PayerSpec {
    /// The 12-digit id of the AWS account that is the management account of the organization.
    /// The operator checks that its credentials really belong to this account.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: String,

    /// How the operator authenticates to this account. Set at most one of `secretRef` and
    /// `assumeRole`; leave both out to use the operator's own identity (IRSA, EKS Pod
    /// Identity, or the environment). The operator's identity, directly or through
    /// `assumeRole`, is used only when a PayerGrant covers this namespace, account and role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<PayerCredentials>,

    /// AWS region for regional calls. Organizations, Billing Conductor and Cost Explorer are
    /// always called in us-east-1. Defaults to us-east-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"))]
    pub region: Option<String>,

    /// At most this many member accounts are closed (LinkedAccounts deleted with
    /// `deletionPolicy: Close`) within any rolling 30 days. Further closures wait, with a
    /// condition, until the window allows them. Default 10, well inside the AWS quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_closures_per30_days: Option<u32>,

    /// E-mail notifications sent for this payer's accounts (joined, closed): the SMTP server
    /// to send them through. Recipients are set on each LinkedAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<super::notifications::PayerNotifications>,

    /// Cost insights: the organization's cost by account and service, read from Cost
    /// Explorer into this Payer's and its LinkedAccounts' status and into Prometheus metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights: Option<InsightsSpec>,
}

/// Default of `spec.insights.refreshInterval`.
pub const DEFAULT_REFRESH_INTERVAL: &str = "6h";
/// Default of `spec.insights.monthsOfHistory`.
pub const DEFAULT_MONTHS_OF_HISTORY: u32 = 3;

/// How costs are read from Cost Explorer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(r#"!has(self.refreshInterval) || self.refreshInterval.matches(r'^(([6-9][0-9]|[1-9][0-9]{2,4})m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d)$')"#).message("insights.refreshInterval must be a duration of at least 1 hour in minutes, hours or days, such as 90m, 6h or 1d"))]
pub struct InsightsSpec {
    /// Read costs at all. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// How often costs are read again, as a duration in minutes, hours or days (`90m`,
    /// `6h`, `1d`; at least 1 hour). Default `6h`. Cost Explorer charges USD 0.01 per
    /// request: the status states what the setting costs per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 6))]
    pub refresh_interval: Option<String>,
    /// Months read, the current one included (2 to 13). Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 13))]
    pub months_of_history: Option<u32>,
}

impl InsightsSpec {
    /// The refresh interval in seconds (`None` if it cannot be read, which the schema prevents).
    pub fn refresh_interval_secs(&self) -> Option<i64> {
        let text = self
            .refresh_interval
            .as_deref()
            .unwrap_or(DEFAULT_REFRESH_INTERVAL);
        let (n, unit) = text.split_at(text.len().checked_sub(1)?);
        let n: i64 = n.parse().ok()?;
        let secs = match unit {
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => return None,
        };
        (secs >= 3600).then_some(secs)
    }

    pub fn months_of_history(&self) -> u32 {
        self.months_of_history
            .unwrap_or(DEFAULT_MONTHS_OF_HISTORY)
            .clamp(2, 13)
    }
}

/// The organization's costs, read from Cost Explorer (unblended cost).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayerCosts {
    /// When Cost Explorer was last read (RFC 3339).
    pub refreshed_at: String,
    pub currency: String,
    /// The current month, `YYYY-MM`.
    pub month: String,
    /// Cost of the current month so far.
    pub month_to_date: String,
    /// Cost of the whole previous month.
    pub previous_month: String,
    /// Month-to-date cost against the whole previous month, in percent (two decimals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month_over_month_percent: Option<String>,
    /// The services that cost most this month, with their share of the month-to-date cost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_services: Vec<ServiceCost>,
    /// Total per month, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<MonthCost>,
    /// GetCostAndUsage requests the last refresh made (one per page).
    pub requests_per_refresh: u32,
    /// Requests a month at the configured refresh interval (30 days).
    pub requests_per_month: u32,
    /// What those requests cost a month, in USD (USD 0.01 each).
    pub estimated_monthly_cost_usd: String,
}

/// One service's cost this month.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCost {
    pub service: String,
    pub month_to_date: String,
    /// Share of the organization's month-to-date cost, in percent.
    pub share_percent: String,
}

/// The organization's cost in one month.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthCost {
    /// `YYYY-MM`.
    pub month: String,
    pub total: String,
}

/// Where the credentials for a payer come from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.secretRef) && has(self.assumeRole))").message("set at most one of credentials.secretRef and credentials.assumeRole"))]
pub struct PayerCredentials {
    /// A Secret in the Payer's namespace holding an access key id and a secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretCredentials>,

    /// An IAM role in the management account that the operator assumes with its own identity
    /// (only when a PayerGrant allows this role for this namespace and account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<AssumeRole>,
}

/// A Secret in the same namespace with static access keys.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretCredentials {
    /// Name of the Secret, in the Payer's own namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key in the Secret that holds the access key id. Defaults to `accessKeyId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub access_key_id_key: Option<String>,
    /// Key in the Secret that holds the secret access key. Defaults to `secretAccessKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_access_key_key: Option<String>,
    /// Key in the Secret that holds a session token, if the keys are temporary. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub session_token_key: Option<String>,
}

impl SecretCredentials {
    pub fn access_key_id_key(&self) -> &str {
        self.access_key_id_key.as_deref().unwrap_or("accessKeyId")
    }
    pub fn secret_access_key_key(&self) -> &str {
        self.secret_access_key_key
            .as_deref()
            .unwrap_or("secretAccessKey")
    }
}

/// An IAM role to assume.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.externalId) && has(self.externalIdSecretRef))").message("set at most one of assumeRole.externalId and assumeRole.externalIdSecretRef"))]
pub struct AssumeRole {
    /// ARN of the role, e.g. `arn:aws:iam::123456789012:role/PartnerBillingOperator`.
    #[schemars(
        length(min = 20, max = 2048),
        regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
    )]
    pub role_arn: String,
    /// External id the role's trust policy requires, if any, written in the Payer itself:
    /// anyone who can read this Payer (its namespace's viewers and editors, GitOps
    /// repositories, backups) can read it. Prefer `externalIdSecretRef`. Set at most one of
    /// the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), regex(pattern = r"^[\w+=,.@:/-]*$"))]
    pub external_id: Option<String>,
    /// External id the role's trust policy requires, read from a Secret in the Payer's
    /// namespace. The value never appears in the Payer's status, in Events or in the
    /// operator's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_secret_ref: Option<SecretKeyRef>,
    /// Session name shown in CloudTrail. Defaults to `partner-billing-operator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 64), regex(pattern = r"^[\w+=,.@-]*$"))]
    pub session_name: Option<String>,
}

/// One key of a Secret in the Payer's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the Payer's own namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key in the Secret that holds the value. Defaults to `externalId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
}

impl SecretKeyRef {
    /// The key, or `externalId`.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or("externalId")
    }
}

/// What the operator found for this payer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayerStatus {
    /// Conditions `Ready` (the account is reachable and is the management account) and
    /// `Synced` (the last reconcile succeeded).
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// ARN of the identity the operator acts as in this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_arn: Option<String>,
    /// Id of the organization, e.g. `o-a1b2c3d4e5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Feature set of the organization: `ALL` or `CONSOLIDATED_BILLING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_set: Option<String>,
    /// Number of accounts in the organization, the management account included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_accounts: Option<i64>,
    /// When the payer was last verified successfully (RFC 3339). Refreshed at least hourly
    /// while nothing else changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_sync: Option<String>,
    /// Account closures requested in the last 30 days, oldest first; the closure budget is
    /// counted from this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closures: Vec<ClosureRecord>,
    /// Cost insights (with `spec.insights.enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub costs: Option<PayerCosts>,
}

/// One CloseAccount call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClosureRecord {
    pub account_id: String,
    /// When CloseAccount was called (RFC 3339).
    pub requested_at: String,
    /// The LinkedAccount that asked for it.
    pub linked_account: String,
}

/// Default of `spec.maxClosuresPer30Days`.
pub const DEFAULT_MAX_CLOSURES_PER_30_DAYS: u32 = 10;

impl Payer {
    /// The closure budget over a rolling 30 days.
    pub fn max_closures_per_30_days(&self) -> u32 {
        self.spec
            .max_closures_per30_days
            .unwrap_or(DEFAULT_MAX_CLOSURES_PER_30_DAYS)
    }

    /// Region for regional AWS calls.
    pub fn region(&self) -> &str {
        self.spec.region.as_deref().unwrap_or("us-east-1")
    }
}
