//! The Cost and Usage Report pipeline's AWS side: the S3 bucket and its policy, the export
//! (BCM Data Exports, CUR 2.0) or legacy CUR report definition, and the Glue database and
//! crawler Athena reads through. Exports and report definitions live in us-east-1; the
//! bucket, database and crawler live in the bucket's region.
//!
//! Every write of [`PipelineApi`] is idempotent: an AWS answer that says the work is already
//! done (the object already there, or already gone) is success here, so a reconcile that runs
//! again after a crash never fails on its own earlier write, and callers match no AWS error
//! codes. Each method says which codes it absorbs and what the AWS API reference says of
//! them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_config::{Region, SdkConfig};

use super::classify::{error_code, on};
use super::interceptor::CallMetrics;
use super::organizations::Tags;
use crate::error::Error;
use crate::reconcile::reasons;

/// A CUR 2.0 export as the operator wants it (and as it reads it back).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExportDef {
    pub name: String,
    pub description: String,
    pub query: String,
    /// `HOURLY`, `DAILY` or `MONTHLY`.
    pub granularity: String,
    pub include_resources: bool,
    pub billing_view_arn: Option<String>,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    /// `CUSTOM`, `PARQUET`, `PARQUET`, `OVERWRITE_REPORT` when the operator writes it.
    pub output_type: String,
    pub format: String,
    pub compression: String,
    pub overwrite: String,
}

/// An export found in AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportInfo {
    pub arn: String,
    pub def: ExportDef,
    /// `HEALTHY` or `UNHEALTHY`.
    pub health: Option<String>,
    pub health_reason: Option<String>,
}

/// A legacy CUR report definition.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReportDef {
    pub name: String,
    /// `HOURLY`, `DAILY` or `MONTHLY`.
    pub time_unit: String,
    pub format: String,
    pub compression: String,
    pub include_resources: bool,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub artifacts: Vec<String>,
    pub refresh_closed_reports: bool,
    pub versioning: String,
    pub billing_view_arn: Option<String>,
}

/// A Glue database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlueDatabase {
    pub name: String,
    pub description: String,
}

/// A Glue crawler as the operator wants it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CrawlerDef {
    pub name: String,
    pub role: String,
    pub database: String,
    pub description: String,
    pub path: String,
    pub exclusions: Vec<String>,
    pub schedule: String,
    pub update_behavior: String,
    pub delete_behavior: String,
}

/// The last run of a crawler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastCrawl {
    /// `SUCCEEDED`, `CANCELLED` or `FAILED`.
    pub status: String,
    pub error_message: Option<String>,
    /// RFC 3339.
    pub started_at: Option<String>,
}

/// A crawler found in AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrawlerInfo {
    pub def: CrawlerDef,
    /// `READY`, `RUNNING` or `STOPPING`.
    pub state: String,
    pub last_crawl: Option<LastCrawl>,
}

/// The calls the CurPipeline reconciler makes (see the module docs on idempotency). Callers
/// find every object by its name before they write, so an absorbed "already done" answer is
/// only met after a crash between a write and the status, or in a race with another writer.
#[async_trait]
pub trait PipelineApi: Send + Sync {
    /// `Ok(false)` when the bucket does not exist; an error when it exists but is not ours
    /// (HeadBucket answers 403: `BucketNotOwned`).
    async fn bucket_exists(&self, region: &str, bucket: &str) -> Result<bool, Error>;
    /// Create the bucket in `region` and tag it. `BucketAlreadyOwnedByYou` is success: the
    /// S3 API reference says S3 answers it when "the bucket you tried to create already
    /// exists, and you own it" (in us-east-1 S3 answers 200 OK instead, also success).
    /// `BucketAlreadyExists` (the name is taken by another account) stays an error.
    async fn create_bucket(&self, region: &str, bucket: &str, tags: &Tags) -> Result<(), Error>;
    /// The bucket policy document, `None` when the bucket has none (`NoSuchBucketPolicy`).
    async fn bucket_policy(&self, region: &str, bucket: &str) -> Result<Option<String>, Error>;
    /// Replace the whole bucket policy with `policy` (PutBucketPolicy); idempotent as it is:
    /// putting the same document twice leaves the same policy.
    async fn put_bucket_policy(
        &self,
        region: &str,
        bucket: &str,
        policy: &str,
    ) -> Result<(), Error>;
    /// Whether any object exists under `prefix` (one ListObjectsV2 with MaxKeys 1).
    async fn has_objects(&self, region: &str, bucket: &str, prefix: &str) -> Result<bool, Error>;

    /// The export named `name` (ListExports, then GetExport; an export deleted in between,
    /// `ResourceNotFoundException`, is `None`).
    async fn find_export(&self, name: &str) -> Result<Option<ExportInfo>, Error>;
    /// Create the export; its ARN. Nothing is absorbed: the Data Exports API has no "already
    /// exists" code (CreateExport answers a taken name with `ValidationException`, the code
    /// of every invalid input), so callers look the name up with [`Self::find_export`] first.
    async fn create_export(&self, def: &ExportDef, tags: &Tags) -> Result<String, Error>;
    /// Replace the export's definition (UpdateExport); idempotent as it is.
    async fn update_export(&self, arn: &str, def: &ExportDef) -> Result<(), Error>;
    /// Delete the export. `ResourceNotFoundException` is success: the Data Exports API
    /// reference answers it when "the specified Amazon Resource Name (ARN) in the request
    /// doesn't exist" (already deleted).
    async fn delete_export(&self, arn: &str) -> Result<(), Error>;

    /// The report definition named `name` (DescribeReportDefinitions, every page).
    async fn find_report(&self, name: &str) -> Result<Option<ReportDef>, Error>;
    /// The tags of report definition `name` (ListTagsForResource by report name; the
    /// definition has no description to carry an ownership marker).
    async fn report_tags(&self, name: &str) -> Result<Tags, Error>;
    /// Add `tags` to report definition `name` (TagResource), when a pipeline adopts it;
    /// idempotent as it is (the same tags twice).
    async fn tag_report(&self, name: &str, tags: &Tags) -> Result<(), Error>;
    /// Create the report definition. `DuplicateReportNameException` is success: the CUR API
    /// reference answers it when "a report with the specified name already exists in the
    /// account", and callers have found no definition of this name (or refused another
    /// owner's) before they create, so it is this pipeline's own, written before a crash.
    async fn put_report(&self, def: &ReportDef, tags: &Tags) -> Result<(), Error>;
    /// Replace the report definition (ModifyReportDefinition); idempotent as it is.
    async fn modify_report(&self, def: &ReportDef) -> Result<(), Error>;
    /// Delete the report definition. Nothing is absorbed: the CUR API reference lists only
    /// `InternalErrorException` and `ValidationException` for DeleteReportDefinition, no code
    /// that means "already gone", so callers look the name up with [`Self::find_report`]
    /// first.
    async fn delete_report(&self, name: &str) -> Result<(), Error>;

    /// The Glue database `name`, `None` when Glue answers `EntityNotFoundException`.
    async fn database(&self, region: &str, name: &str) -> Result<Option<GlueDatabase>, Error>;
    /// Create the Glue database. `AlreadyExistsException` is success: the Glue API reference
    /// answers it when "a resource to be created or added already exists" (an existing
    /// database is used as it is; several pipelines may share one).
    async fn create_database(
        &self,
        region: &str,
        db: &GlueDatabase,
        tags: &Tags,
    ) -> Result<(), Error>;
    /// Delete the Glue database and its tables. `EntityNotFoundException` is success: the
    /// Glue API reference answers it when "a specified entity does not exist" (already gone).
    async fn delete_database(&self, region: &str, name: &str) -> Result<(), Error>;
    /// The crawler `name`, `None` when Glue answers `EntityNotFoundException`.
    async fn crawler(&self, region: &str, name: &str) -> Result<Option<CrawlerInfo>, Error>;
    /// Create the crawler. `AlreadyExistsException` is success ("a resource to be created
    /// or added already exists"): callers read the crawler first and check its marker, so it
    /// is this pipeline's own, created before a crash; the next reconcile corrects any drift.
    async fn create_crawler(
        &self,
        region: &str,
        def: &CrawlerDef,
        tags: &Tags,
    ) -> Result<(), Error>;
    /// Replace the crawler's settings (UpdateCrawler); idempotent as it is.
    async fn update_crawler(&self, region: &str, def: &CrawlerDef) -> Result<(), Error>;
    /// Delete the crawler. `EntityNotFoundException` is success: the Glue API reference
    /// answers it when "a specified entity does not exist" (already gone).
    async fn delete_crawler(&self, region: &str, name: &str) -> Result<(), Error>;
}

/// SDK clients for the pipeline; regional clients are made on first use per region.
pub struct SdkPipeline {
    regional: SdkConfig,
    partition: aws_smithy_runtime::client::retries::RetryPartition,
    metrics: CallMetrics,
    path_style: bool,
    exports: aws_sdk_bcmdataexports::Client,
    cur: aws_sdk_costandusagereport::Client,
    clients: Mutex<HashMap<String, (aws_sdk_s3::Client, aws_sdk_glue::Client)>>,
}

impl SdkPipeline {
    pub fn new(
        regional: &SdkConfig,
        global: &SdkConfig,
        partition: aws_smithy_runtime::client::retries::RetryPartition,
        metrics: CallMetrics,
        path_style: bool,
    ) -> Self {
        let exports = aws_sdk_bcmdataexports::Client::from_conf(
            aws_sdk_bcmdataexports::config::Builder::from(global)
                .retry_partition(partition.clone())
                .interceptor(metrics.clone())
                .build(),
        );
        let cur = aws_sdk_costandusagereport::Client::from_conf(
            aws_sdk_costandusagereport::config::Builder::from(global)
                .retry_partition(partition.clone())
                .interceptor(metrics.clone())
                .build(),
        );
        Self {
            regional: regional.clone(),
            partition,
            metrics,
            path_style,
            exports,
            cur,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn clients(&self, region: &str) -> (aws_sdk_s3::Client, aws_sdk_glue::Client) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let config = self
                    .regional
                    .to_builder()
                    .region(Region::new(region.to_string()))
                    .build();
                let s3 = aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(&config)
                        .force_path_style(self.path_style)
                        .retry_partition(self.partition.clone())
                        .interceptor(self.metrics.clone())
                        .build(),
                );
                let glue = aws_sdk_glue::Client::from_conf(
                    aws_sdk_glue::config::Builder::from(&config)
                        .retry_partition(self.partition.clone())
                        .interceptor(self.metrics.clone())
                        .build(),
                );
                (s3, glue)
            })
            .clone()
    }
}

fn build_err(e: impl std::fmt::Display) -> Error {
    Error::terminal(reasons::INVALID_SPEC, e)
}

/// `tags` as one SDK's tag type, each made by `tag` from its key and value.
fn sdk_tags<T, E: std::fmt::Display>(
    tags: &Tags,
    tag: impl Fn(&str, &str) -> Result<T, E>,
) -> Result<Vec<T>, Error> {
    tags.iter()
        .map(|(k, v)| tag(k, v).map_err(build_err))
        .collect()
}

fn cur_tags(tags: &Tags) -> Result<Vec<aws_sdk_costandusagereport::types::Tag>, Error> {
    sdk_tags(tags, |k, v| {
        aws_sdk_costandusagereport::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
    })
}

fn to_rfc3339(t: &aws_smithy_types::DateTime) -> Option<String> {
    t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()
}

const CUR_TABLE: &str = "COST_AND_USAGE_REPORT";

/// Largest page of ListExports (`MaxResults` 1-300 in the model). DescribeReportDefinitions
/// is left at its only allowed page size (5).
const EXPORTS_PAGE: i32 = 300;

#[async_trait]
impl PipelineApi for SdkPipeline {
    async fn bucket_exists(&self, region: &str, bucket: &str) -> Result<bool, Error> {
        let (s3, _) = self.clients(region);
        match s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(true),
            Err(e) => match error_code(&e).as_deref() {
                Some("NotFound") | Some("NoSuchBucket") | Some("404") => Ok(false),
                Some("Forbidden") | Some("403") => Err(Error::terminal(
                    reasons::BUCKET_NOT_OWNED,
                    format!(
                        "S3 bucket {bucket} exists but this payer cannot reach it (it belongs to another account, or the IAM policy lacks s3:ListBucket); choose another spec.s3.bucket"
                    ),
                )),
                _ => Err(on("s3", "HeadBucket").err()(e)),
            },
        }
    }

    async fn create_bucket(&self, region: &str, bucket: &str, tags: &Tags) -> Result<(), Error> {
        let (s3, _) = self.clients(region);
        let mut call = s3.create_bucket().bucket(bucket);
        if region != "us-east-1" {
            call = call.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        on("s3", "CreateBucket").absent(call.send().await, &["BucketAlreadyOwnedByYou"])?;
        crate::after_write!("s3:CreateBucket");
        if !tags.is_empty() {
            let mut tagging = aws_sdk_s3::types::Tagging::builder();
            for t in sdk_tags(tags, |k, v| {
                aws_sdk_s3::types::Tag::builder().key(k).value(v).build()
            })? {
                tagging = tagging.tag_set(t);
            }
            s3.put_bucket_tagging()
                .bucket(bucket)
                .tagging(tagging.build().map_err(build_err)?)
                .send()
                .await
                .map_err(on("s3", "PutBucketTagging").err())?;
            crate::after_write!("s3:PutBucketTagging");
        }
        Ok(())
    }

    async fn bucket_policy(&self, region: &str, bucket: &str) -> Result<Option<String>, Error> {
        let (s3, _) = self.clients(region);
        let out = on("s3", "GetBucketPolicy").absent(
            s3.get_bucket_policy().bucket(bucket).send().await,
            &["NoSuchBucketPolicy"],
        )?;
        Ok(out.and_then(|o| o.policy().map(str::to_string)))
    }

    async fn put_bucket_policy(
        &self,
        region: &str,
        bucket: &str,
        policy: &str,
    ) -> Result<(), Error> {
        let (s3, _) = self.clients(region);
        s3.put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .map_err(on("s3", "PutBucketPolicy").err())?;
        crate::after_write!("s3:PutBucketPolicy");
        Ok(())
    }

    async fn has_objects(&self, region: &str, bucket: &str, prefix: &str) -> Result<bool, Error> {
        let (s3, _) = self.clients(region);
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(on("s3", "ListObjectsV2").err())?;
        Ok(out.key_count().unwrap_or(0) > 0 || !out.contents().is_empty())
    }

    async fn find_export(&self, name: &str) -> Result<Option<ExportInfo>, Error> {
        let mut pages = self
            .exports
            .list_exports()
            .into_paginator()
            .page_size(EXPORTS_PAGE)
            .send();
        let mut arn = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(on("bcm-data-exports", "ListExports").err())?;
            if let Some(found) = page.exports().iter().find(|e| e.export_name() == name) {
                arn = Some(found.export_arn().to_string());
                break;
            }
        }
        let Some(arn) = arn else { return Ok(None) };
        let Some(out) = on("bcm-data-exports", "GetExport").absent(
            self.exports.get_export().export_arn(&arn).send().await,
            &["ResourceNotFoundException"],
        )?
        else {
            return Ok(None);
        };
        let Some(export) = out.export() else {
            return Ok(None);
        };
        let mut def = ExportDef {
            name: export.name().to_string(),
            description: export.description().unwrap_or_default().to_string(),
            ..Default::default()
        };
        if let Some(q) = export.data_query() {
            def.query = q.query_statement().to_string();
            if let Some(t) = q.table_configurations().and_then(|t| t.get(CUR_TABLE)) {
                def.granularity = t.get("TIME_GRANULARITY").cloned().unwrap_or_default();
                def.include_resources =
                    t.get("INCLUDE_RESOURCES").map(String::as_str) == Some("TRUE");
                def.billing_view_arn = t.get("BILLING_VIEW_ARN").cloned();
            }
        }
        if let Some(d) = export
            .destination_configurations()
            .and_then(|d| d.s3_destination())
        {
            def.bucket = d.s3_bucket().to_string();
            def.prefix = d.s3_prefix().to_string();
            def.region = d.s3_region().to_string();
            if let Some(o) = d.s3_output_configurations() {
                def.output_type = o.output_type().as_str().to_string();
                def.format = o.format().as_str().to_string();
                def.compression = o.compression().as_str().to_string();
                def.overwrite = o.overwrite().as_str().to_string();
            }
        }
        Ok(Some(ExportInfo {
            arn,
            def,
            health: out
                .export_status()
                .and_then(|s| s.status_code())
                .map(|c| c.as_str().to_string()),
            health_reason: out
                .export_status()
                .and_then(|s| s.status_reason())
                .map(|r| r.as_str().to_string()),
        }))
    }

    async fn create_export(&self, def: &ExportDef, tags: &Tags) -> Result<String, Error> {
        let mut call = self.exports.create_export().export(export_of(def)?);
        for t in sdk_tags(tags, |k, v| {
            aws_sdk_bcmdataexports::types::ResourceTag::builder()
                .key(k)
                .value(v)
                .build()
        })? {
            call = call.resource_tags(t);
        }
        let out = call
            .send()
            .await
            .map_err(on("bcm-data-exports", "CreateExport").err())?;
        crate::after_write!("bcm-data-exports:CreateExport");
        Ok(out.export_arn().unwrap_or_default().to_string())
    }

    async fn update_export(&self, arn: &str, def: &ExportDef) -> Result<(), Error> {
        self.exports
            .update_export()
            .export_arn(arn)
            .export(export_of(def)?)
            .send()
            .await
            .map_err(on("bcm-data-exports", "UpdateExport").err())?;
        crate::after_write!("bcm-data-exports:UpdateExport");
        Ok(())
    }

    async fn delete_export(&self, arn: &str) -> Result<(), Error> {
        on("bcm-data-exports", "DeleteExport").absent(
            self.exports.delete_export().export_arn(arn).send().await,
            &["ResourceNotFoundException"],
        )?;
        crate::after_write!("bcm-data-exports:DeleteExport");
        Ok(())
    }

    async fn find_report(&self, name: &str) -> Result<Option<ReportDef>, Error> {
        let mut pages = self
            .cur
            .describe_report_definitions()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(on("cur", "DescribeReportDefinitions").err())?;
            if let Some(r) = page
                .report_definitions()
                .iter()
                .find(|r| r.report_name() == name)
            {
                return Ok(Some(ReportDef {
                    name: r.report_name().to_string(),
                    time_unit: r.time_unit().as_str().to_string(),
                    format: r.format().as_str().to_string(),
                    compression: r.compression().as_str().to_string(),
                    include_resources: r
                        .additional_schema_elements()
                        .iter()
                        .any(|e| e.as_str() == "RESOURCES"),
                    bucket: r.s3_bucket().to_string(),
                    prefix: r.s3_prefix().to_string(),
                    region: r.s3_region().as_str().to_string(),
                    artifacts: r
                        .additional_artifacts()
                        .iter()
                        .map(|a| a.as_str().to_string())
                        .collect(),
                    refresh_closed_reports: r.refresh_closed_reports().unwrap_or(false),
                    versioning: r
                        .report_versioning()
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default(),
                    billing_view_arn: r.billing_view_arn().map(str::to_string),
                }));
            }
        }
        Ok(None)
    }

    async fn report_tags(&self, name: &str) -> Result<Tags, Error> {
        let out = self
            .cur
            .list_tags_for_resource()
            .report_name(name)
            .send()
            .await
            .map_err(on("cur", "ListTagsForResource").err())?;
        Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn tag_report(&self, name: &str, tags: &Tags) -> Result<(), Error> {
        let mut call = self.cur.tag_resource().report_name(name);
        for t in cur_tags(tags)? {
            call = call.tags(t);
        }
        call.send().await.map_err(on("cur", "TagResource").err())?;
        // No failpoint: this only adopts, and a crash right after it leaves the owner tag,
        // which the next run reads as this pipeline's (nothing else to recover).
        Ok(())
    }

    async fn put_report(&self, def: &ReportDef, tags: &Tags) -> Result<(), Error> {
        let mut call = self
            .cur
            .put_report_definition()
            .report_definition(report_of(def)?);
        for t in cur_tags(tags)? {
            call = call.tags(t);
        }
        // Written before a crash, found again: the same definition.
        on("cur", "PutReportDefinition")
            .absent(call.send().await, &["DuplicateReportNameException"])?;
        crate::after_write!("cur:PutReportDefinition");
        Ok(())
    }

    async fn modify_report(&self, def: &ReportDef) -> Result<(), Error> {
        self.cur
            .modify_report_definition()
            .report_name(&def.name)
            .report_definition(report_of(def)?)
            .send()
            .await
            .map_err(on("cur", "ModifyReportDefinition").err())?;
        crate::after_write!("cur:ModifyReportDefinition");
        Ok(())
    }

    async fn delete_report(&self, name: &str) -> Result<(), Error> {
        self.cur
            .delete_report_definition()
            .report_name(name)
            .send()
            .await
            .map_err(on("cur", "DeleteReportDefinition").err())?;
        crate::after_write!("cur:DeleteReportDefinition");
        Ok(())
    }

    async fn database(&self, region: &str, name: &str) -> Result<Option<GlueDatabase>, Error> {
        let (_, glue) = self.clients(region);
        let out = on("glue", "GetDatabase").absent(
            glue.get_database().name(name).send().await,
            &["EntityNotFoundException"],
        )?;
        Ok(out.and_then(|o| {
            o.database().map(|d| GlueDatabase {
                name: d.name().to_string(),
                description: d.description().unwrap_or_default().to_string(),
            })
        }))
    }

    async fn create_database(
        &self,
        region: &str,
        db: &GlueDatabase,
        tags: &Tags,
    ) -> Result<(), Error> {
        let (_, glue) = self.clients(region);
        let input = aws_sdk_glue::types::DatabaseInput::builder()
            .name(&db.name)
            .description(&db.description)
            .build()
            .map_err(build_err)?;
        let mut call = glue.create_database().database_input(input);
        for (k, v) in tags {
            call = call.tags(k, v);
        }
        on("glue", "CreateDatabase").absent(call.send().await, &["AlreadyExistsException"])?;
        crate::after_write!("glue:CreateDatabase");
        Ok(())
    }

    async fn delete_database(&self, region: &str, name: &str) -> Result<(), Error> {
        let (_, glue) = self.clients(region);
        on("glue", "DeleteDatabase").absent(
            glue.delete_database().name(name).send().await,
            &["EntityNotFoundException"],
        )?;
        crate::after_write!("glue:DeleteDatabase");
        Ok(())
    }

    async fn crawler(&self, region: &str, name: &str) -> Result<Option<CrawlerInfo>, Error> {
        let (_, glue) = self.clients(region);
        let Some(out) = on("glue", "GetCrawler").absent(
            glue.get_crawler().name(name).send().await,
            &["EntityNotFoundException"],
        )?
        else {
            return Ok(None);
        };
        let Some(c) = out.crawler() else {
            return Ok(None);
        };
        let target = c.targets().and_then(|t| t.s3_targets().first());
        let policy = c.schema_change_policy();
        Ok(Some(CrawlerInfo {
            def: CrawlerDef {
                name: c.name().unwrap_or_default().to_string(),
                role: c.role().unwrap_or_default().to_string(),
                database: c.database_name().unwrap_or_default().to_string(),
                description: c.description().unwrap_or_default().to_string(),
                path: target
                    .and_then(|t| t.path())
                    .unwrap_or_default()
                    .to_string(),
                exclusions: target.map(|t| t.exclusions().to_vec()).unwrap_or_default(),
                schedule: c
                    .schedule()
                    .and_then(|s| s.schedule_expression())
                    .unwrap_or_default()
                    .to_string(),
                update_behavior: policy
                    .and_then(|p| p.update_behavior())
                    .map(|b| b.as_str().to_string())
                    .unwrap_or_default(),
                delete_behavior: policy
                    .and_then(|p| p.delete_behavior())
                    .map(|b| b.as_str().to_string())
                    .unwrap_or_default(),
            },
            state: c
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            last_crawl: c.last_crawl().map(|l| LastCrawl {
                status: l
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                error_message: l.error_message().map(str::to_string),
                started_at: l.start_time().and_then(to_rfc3339),
            }),
        }))
    }

    async fn create_crawler(
        &self,
        region: &str,
        def: &CrawlerDef,
        tags: &Tags,
    ) -> Result<(), Error> {
        let (_, glue) = self.clients(region);
        let mut call = glue
            .create_crawler()
            .name(&def.name)
            .role(&def.role)
            .database_name(&def.database)
            .description(&def.description)
            .targets(crawler_targets(def))
            .schedule(&def.schedule)
            .schema_change_policy(schema_change_policy(def));
        for (k, v) in tags {
            call = call.tags(k, v);
        }
        on("glue", "CreateCrawler").absent(call.send().await, &["AlreadyExistsException"])?;
        crate::after_write!("glue:CreateCrawler");
        Ok(())
    }

    async fn update_crawler(&self, region: &str, def: &CrawlerDef) -> Result<(), Error> {
        let (_, glue) = self.clients(region);
        glue.update_crawler()
            .name(&def.name)
            .role(&def.role)
            .database_name(&def.database)
            .description(&def.description)
            .targets(crawler_targets(def))
            .schedule(&def.schedule)
            .schema_change_policy(schema_change_policy(def))
            .send()
            .await
            .map_err(on("glue", "UpdateCrawler").err())?;
        crate::after_write!("glue:UpdateCrawler");
        Ok(())
    }

    async fn delete_crawler(&self, region: &str, name: &str) -> Result<(), Error> {
        let (_, glue) = self.clients(region);
        on("glue", "DeleteCrawler").absent(
            glue.delete_crawler().name(name).send().await,
            &["EntityNotFoundException"],
        )?;
        crate::after_write!("glue:DeleteCrawler");
        Ok(())
    }
}

fn crawler_targets(def: &CrawlerDef) -> aws_sdk_glue::types::CrawlerTargets {
    aws_sdk_glue::types::CrawlerTargets::builder()
        .s3_targets(
            aws_sdk_glue::types::S3Target::builder()
                .path(&def.path)
                .set_exclusions(Some(def.exclusions.clone()))
                .build(),
        )
        .build()
}

fn schema_change_policy(def: &CrawlerDef) -> aws_sdk_glue::types::SchemaChangePolicy {
    aws_sdk_glue::types::SchemaChangePolicy::builder()
        .update_behavior(aws_sdk_glue::types::UpdateBehavior::from(
            def.update_behavior.as_str(),
        ))
        .delete_behavior(aws_sdk_glue::types::DeleteBehavior::from(
            def.delete_behavior.as_str(),
        ))
        .build()
}

fn export_of(def: &ExportDef) -> Result<aws_sdk_bcmdataexports::types::Export, Error> {
    use aws_sdk_bcmdataexports::types as t;
    let mut table: HashMap<String, String> = BTreeMap::from([
        ("TIME_GRANULARITY".to_string(), def.granularity.clone()),
        (
            "INCLUDE_RESOURCES".to_string(),
            if def.include_resources {
                "TRUE"
            } else {
                "FALSE"
            }
            .to_string(),
        ),
        (
            "INCLUDE_SPLIT_COST_ALLOCATION_DATA".to_string(),
            "FALSE".to_string(),
        ),
        (
            "INCLUDE_MANUAL_DISCOUNT_COMPATIBILITY".to_string(),
            "FALSE".to_string(),
        ),
    ])
    .into_iter()
    .collect();
    if let Some(view) = &def.billing_view_arn {
        table.insert("BILLING_VIEW_ARN".to_string(), view.clone());
    }
    let query = t::DataQuery::builder()
        .query_statement(&def.query)
        .table_configurations(CUR_TABLE, table)
        .build()
        .map_err(build_err)?;
    let destination = t::DestinationConfigurations::builder()
        .s3_destination(
            t::S3Destination::builder()
                .s3_bucket(&def.bucket)
                .s3_prefix(&def.prefix)
                .s3_region(&def.region)
                .s3_output_configurations(
                    t::S3OutputConfigurations::builder()
                        .output_type(t::S3OutputType::from(def.output_type.as_str()))
                        .format(t::FormatOption::from(def.format.as_str()))
                        .compression(t::CompressionOption::from(def.compression.as_str()))
                        .overwrite(t::OverwriteOption::from(def.overwrite.as_str()))
                        .build()
                        .map_err(build_err)?,
                )
                .build()
                .map_err(build_err)?,
        )
        .build();
    t::Export::builder()
        .name(&def.name)
        .description(&def.description)
        .data_query(query)
        .destination_configurations(destination)
        .refresh_cadence(
            t::RefreshCadence::builder()
                .frequency(t::FrequencyOption::Synchronous)
                .build()
                .map_err(build_err)?,
        )
        .build()
        .map_err(build_err)
}

fn report_of(
    def: &ReportDef,
) -> Result<aws_sdk_costandusagereport::types::ReportDefinition, Error> {
    use aws_sdk_costandusagereport::types as t;
    let mut b = t::ReportDefinition::builder()
        .report_name(&def.name)
        .time_unit(t::TimeUnit::from(def.time_unit.as_str()))
        .format(t::ReportFormat::from(def.format.as_str()))
        .compression(t::CompressionFormat::from(def.compression.as_str()))
        .s3_bucket(&def.bucket)
        .s3_prefix(&def.prefix)
        .s3_region(t::AwsRegion::from(def.region.as_str()))
        .refresh_closed_reports(def.refresh_closed_reports)
        .report_versioning(t::ReportVersioning::from(def.versioning.as_str()))
        .set_billing_view_arn(def.billing_view_arn.clone());
    // Required by the model even when empty.
    b = b.set_additional_schema_elements(Some(if def.include_resources {
        vec![t::SchemaElement::Resources]
    } else {
        Vec::new()
    }));
    for a in &def.artifacts {
        b = b.additional_artifacts(t::AdditionalArtifact::from(a.as_str()));
    }
    b.build().map_err(build_err)
}
