//! `CurPipeline`: the Cost and Usage Report pipeline of a payer (or of one billing group's
//! pro forma view): S3 bucket and delivery policy, the export, and the Glue database and
//! crawler Athena queries through.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{LocalRef, tags_schema};
use super::conditions::{Condition, conditions_schema};

/// Default crawler schedule: every day at 02:30 UTC, after the night's delivery.
pub const DEFAULT_SCHEDULE: &str = "cron(30 2 * * ? *)";

/// Spec of a CurPipeline.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerbilling.io",
    version = "v1alpha1",
    kind = "CurPipeline",
    namespaced,
    status = "CurPipelineStatus",
    shortname = "cur",
    category = "partnerbilling",
    doc = "The Cost and Usage Report pipeline of a payer: CUR 2.0 (BCM Data Exports) or legacy CUR delivered to S3, with a Glue database and crawler so Athena can query it. Optionally the pro forma view of one billing group.",
    printcolumn(name = "Kind", type_ = "string", json_path = ".spec.export.kind"),
    printcolumn(name = "Bucket", type_ = "string", json_path = ".status.bucket"),
    printcolumn(name = "Health", type_ = "string", json_path = ".status.exportHealth"),
    printcolumn(
        name = "Delivered",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Delivered\")].status"
    ),
    printcolumn(
        name = "Crawl",
        type_ = "string",
        json_path = ".status.lastCrawl.status"
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
pub struct CurPipelineSpec {
    /// The Payer whose bill is exported.
    pub payer_ref: LocalRef,
    /// The export (or legacy report definition).
    pub export: ExportSpec,
    /// Where AWS delivers the files.
    pub s3: S3Spec,
    /// The Glue database and crawler that make the files queryable in Athena. Leave out to
    /// manage only the delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glue: Option<GlueSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "tags_schema")]
    pub tags: BTreeMap<String, String>,
    /// What deleting this object does in AWS: `Retain` (default: nothing is deleted) or
    /// `Delete` (the export or report definition, the crawler and the Glue database are
    /// deleted; the bucket, its policy and the delivered data are always kept).
    #[serde(default)]
    pub deletion_policy: PipelineDeletionPolicy,
    /// Take over an export, report definition or Glue crawler of the names in this spec that
    /// already exists in AWS but was made outside the operator (an export or crawler whose
    /// description carries no operator marker, a report definition without the
    /// `partnerbilling.io/owner` tag): it is marked as this object's and managed from then on.
    /// Without it such an object is refused (`AdoptionRequired`). One marked as another
    /// object's is always refused (`OwnedElsewhere`). An existing Glue database is used as it
    /// is (several pipelines may share one) and is deleted only if this object created it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// `Manage` (default): the operator makes AWS match this spec. `Observe`: the operator
    /// only reads AWS, reports differences from this spec in the `Drifted` condition and never
    /// writes, creates or deletes anything in AWS for this object, also when it is deleted
    /// (then only the finalizer is removed, whatever `deletionPolicy` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<crate::api::common::ManagementPolicy>,
}

/// The export itself.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind == oldSelf.kind && self.name == oldSelf.name").message("export.kind and export.name cannot change: create a new CurPipeline (and delete this one) instead"))]
pub struct ExportSpec {
    /// `DataExport` (CUR 2.0 through BCM Data Exports, the default) or `LegacyCur`
    /// (a Cost and Usage Report definition). Cannot change.
    #[serde(default)]
    pub kind: ExportKind,
    /// Name of the export in AWS (1-128 of letters, digits, `-` and `_`). Cannot change.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[0-9A-Za-z_-]+$"))]
    pub name: String,
    /// Time granularity of the line items. Default `Daily`.
    #[serde(default)]
    pub time_granularity: TimeGranularity,
    /// Include resource ids (one line per resource; larger files). Default false.
    #[serde(default)]
    pub include_resource_ids: bool,
    /// Export this BillingGroup's pro forma view (what the customer is billed) instead of
    /// the payer's AWS costs. The group must be Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_group_ref: Option<LocalRef>,
}

/// How the export is made.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum ExportKind {
    #[default]
    DataExport,
    LegacyCur,
}

/// Line item granularity.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum TimeGranularity {
    Hourly,
    #[default]
    Daily,
    Monthly,
}

impl TimeGranularity {
    /// As AWS writes it.
    pub fn aws(self) -> &'static str {
        match self {
            TimeGranularity::Hourly => "HOURLY",
            TimeGranularity::Daily => "DAILY",
            TimeGranularity::Monthly => "MONTHLY",
        }
    }
}

/// The S3 destination.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(r#"self.bucket.matches(r'^[a-z0-9][a-z0-9.-]*[a-z0-9]$') && !self.bucket.contains('..') && !self.bucket.startsWith('xn--') && !self.bucket.endsWith('-s3alias') && !self.bucket.matches(r'^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')"#).message("s3.bucket must be a valid S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit; no '..', not shaped like an IP address, no xn-- prefix or -s3alias suffix"))]
pub struct S3Spec {
    /// Bucket name (3-63 of lowercase letters, digits, `.` and `-`, starting and ending
    /// with a letter or digit).
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// Key prefix for the files, without leading or trailing `/`. Default `cur`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 512),
        regex(pattern = r"^[0-9A-Za-z!_.*'()-]+(/[0-9A-Za-z!_.*'()-]+)*$")
    )]
    pub prefix: Option<String>,
    /// Region of the bucket; the Glue database and crawler are made there too. Default
    /// us-east-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"))]
    pub region: Option<String>,
    /// Whether the operator creates the bucket when it does not exist. Default false: the
    /// bucket must exist (the operator only adds its delivery statement to the policy).
    #[serde(default)]
    pub create: bool,
}

impl S3Spec {
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("cur")
    }
    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or("us-east-1")
    }
}

/// The Glue side.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(r#"!has(self.schedule) || self.schedule.matches(r'^cron\([0-9,*/-]+ [0-9,*/-]+ (\? [0-9A-Za-z,*/-]+ [0-9A-Za-z,*/#L-]+|[0-9,*/LW-]+ [0-9A-Za-z,*/-]+ \?) [0-9,*/-]+\)$')"#).message("glue.schedule must be a Glue cron expression such as cron(30 2 * * ? *): cron( minutes hours day-of-month month day-of-week year ), with exactly one of day-of-month and day-of-week set to ?"))]
pub struct GlueSpec {
    /// Glue database (1-255 of lowercase letters, digits and `_`; Athena's rules).
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[a-z0-9_]+$"))]
    pub database: String,
    /// Name of the crawler.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[0-9A-Za-z_.-]+$"))]
    pub name: String,
    /// When the crawler runs, as a Glue cron expression such as `cron(30 2 * * ? *)` (six
    /// fields; one of day-of-month and day-of-week must be `?`). Default every day 02:30 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub schedule: Option<String>,
    /// IAM role the crawler runs as (needs s3:GetObject on the bucket and the Glue service
    /// role policy).
    #[schemars(
        length(min = 20, max = 2048),
        regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
    )]
    pub role_arn: String,
}

impl GlueSpec {
    pub fn schedule(&self) -> &str {
        self.schedule.as_deref().unwrap_or(DEFAULT_SCHEDULE)
    }
}

/// What deleting a CurPipeline object does in AWS.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum PipelineDeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// The last run of the crawler.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrawlStatus {
    /// `SUCCEEDED`, `CANCELLED` or `FAILED`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// What the operator found for this pipeline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurPipelineStatus {
    /// Conditions `Ready` (bucket, policy, export and Glue objects are as specified),
    /// `Synced`, and `Delivered` (AWS has delivered files; False with reason
    /// `AwaitingFirstDelivery` for up to a day after creation, which is normal).
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// ARN of the export (`DataExport`) or the report definition's name (`LegacyCur`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_arn: Option<String>,
    /// `HEALTHY` or `UNHEALTHY` as BCM Data Exports reports it (`LegacyCur`: the report
    /// definition exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_health: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_health_reason: Option<String>,
    /// The billing view exported (pro forma view of a billing group), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_view_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Where the data lands and the crawler looks: `s3://bucket/prefix/...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glue_database: Option<String>,
    /// `READY`, `RUNNING` or `STOPPING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crawler_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_crawl: Option<CrawlStatus>,
    /// When the operator first found the export in place (RFC 3339): the day AWS may take
    /// for the first delivery is counted from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_since: Option<String>,
}
