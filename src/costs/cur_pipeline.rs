//! CurPipeline: bucket (created only when asked), one delivery statement merged into the
//! bucket policy (other statements are never touched), the export (BCM Data Exports) or
//! legacy report definition, and the Glue database and crawler. Each is found again by its
//! natural key (bucket, export or report name, database and crawler name); exports, databases
//! and crawlers carry an ownership marker in their description, report definitions (which
//! have no description) the owner tag, so a pipeline never adopts or deletes another
//! pipeline's objects, and takes over one made outside the operator only with `spec.adopt`.

use kube::ResourceExt;
use serde_json::{Value, json};

use crate::api::common::{OWNER_TAG, owner_value, with_owner};
use crate::api::conditions::{ConditionStatus, DesiredCondition};
use crate::api::cur_pipeline::{CrawlStatus, ExportKind, PipelineDeletionPolicy};
use crate::api::{CurPipeline, CurPipelineStatus};
use crate::aws::pipeline::{CrawlerDef, ExportDef, GlueDatabase, ReportDef};
use crate::error::Error;
use crate::time::older_than;

use crate::payer::context::payer_connection;
use crate::reconcile::ownership::{Claim, Claimant, claim};
use crate::reconcile::run::Run;
use crate::reconcile::{ChangeAction, KindOutcome, Mode, ReconcileContext, Verdict};
use crate::reconcile::{DEPENDENCY_RETRY, change};

/// Condition type: AWS has delivered files.
pub const DELIVERED: &str = "Delivered";
/// AWS may take this long for the first delivery.
pub const FIRST_DELIVERY_SECS: i64 = 24 * 3600;
/// Files the crawler skips (the manifests and metadata AWS writes next to the data).
pub const EXCLUSIONS: [&str; 6] = ["**.json", "**.yml", "**.sql", "**.csv", "**.gz", "**.zip"];

/// Columns of the CUR 2.0 table the export selects.
const COLUMNS: &[&str] = &[
    "bill_bill_type",
    "bill_billing_entity",
    "bill_billing_period_end_date",
    "bill_billing_period_start_date",
    "bill_invoice_id",
    "bill_invoicing_entity",
    "bill_payer_account_id",
    "bill_payer_account_name",
    "cost_category",
    "discount",
    "identity_line_item_id",
    "identity_time_interval",
    "line_item_blended_cost",
    "line_item_currency_code",
    "line_item_legal_entity",
    "line_item_line_item_description",
    "line_item_line_item_type",
    "line_item_net_unblended_cost",
    "line_item_operation",
    "line_item_product_code",
    "line_item_unblended_cost",
    "line_item_unblended_rate",
    "line_item_usage_account_id",
    "line_item_usage_account_name",
    "line_item_usage_amount",
    "line_item_usage_end_date",
    "line_item_usage_start_date",
    "line_item_usage_type",
    "pricing_public_on_demand_cost",
    "pricing_term",
    "pricing_unit",
    "product",
    "product_region_code",
    "product_servicecode",
    "resource_tags",
];

/// The CUR 2.0 query: the columns above, plus `line_item_resource_id` with resource ids.
pub fn query(include_resources: bool) -> String {
    let mut columns: Vec<&str> = COLUMNS.to_vec();
    if include_resources {
        columns.push("line_item_resource_id");
        columns.sort_unstable();
    }
    format!("SELECT {} FROM COST_AND_USAGE_REPORT", columns.join(", "))
}

/// The marker in descriptions that says which object manages an AWS object.
pub fn owner_marker(namespace: &str, name: &str) -> String {
    format!(
        "Managed by partner-billing-operator ({})",
        owner_value(namespace, "CurPipeline", name)
    )
}

/// Whether `description` carries this pipeline's `marker` (alone, or within text someone
/// added; the marker ends with `)`, so another pipeline's name that extends this one's does
/// not match). Pure.
pub fn carries_marker(description: &str, marker: &str) -> bool {
    description.contains(marker)
}

/// Check an export or crawler found by name against the marker in its description: this
/// pipeline's marker is fine (also within an edited description, which the drift correction
/// then rewrites to the marker); another pipeline's is refused (`OwnedElsewhere`); none (made
/// outside the operator) is refused (`AdoptionRequired`) unless `adopt`, and then the
/// description is rewritten to this pipeline's marker by the drift correction. Pure.
pub fn claim_marked(
    description: &str,
    marker: &str,
    adopt: bool,
    what: &str,
    field: &str,
) -> Result<(), Error> {
    if carries_marker(description, marker) {
        return Ok(());
    }
    if description.contains("Managed by partner-billing-operator (") {
        return Err(Error::terminal(
            "OwnedElsewhere",
            format!(
                "{what} is managed by another CurPipeline ({description}); choose another {field}"
            ),
        ));
    }
    if adopt {
        return Ok(());
    }
    Err(Error::terminal(
        "AdoptionRequired",
        format!(
            "{what} already exists in AWS and was made outside this operator (its description carries no operator marker); set spec.adopt: true to manage it from now on, or choose another {field}"
        ),
    ))
}

/// The export as one of the two kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DesiredExport {
    DataExport(ExportDef),
    LegacyCur(ReportDef),
}

/// Everything a pipeline wants in AWS. Pure.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub bucket: String,
    pub region: String,
    /// Key prefix the data lands under (for the delivery check).
    pub data_prefix: String,
    /// `s3://bucket/<data_prefix>`, the crawler's target.
    pub data_path: String,
    pub statement: Value,
    pub export: DesiredExport,
    pub database: Option<GlueDatabase>,
    pub crawler: Option<CrawlerDef>,
}

/// What `obj` wants for payer account `payer`, exporting `billing_view` if given. Pure.
pub fn desired(obj: &CurPipeline, payer: &str, billing_view: Option<String>) -> Desired {
    let spec = &obj.spec;
    let marker = owner_marker(&obj.namespace().unwrap_or_default(), &obj.name_any());
    let bucket = spec.s3.bucket.clone();
    let prefix = spec.s3.prefix().to_string();
    let region = spec.s3.region().to_string();
    let name = spec.export.name.clone();
    let (export, data_prefix) = match spec.export.kind {
        ExportKind::DataExport => (
            DesiredExport::DataExport(ExportDef {
                name: name.clone(),
                description: marker.clone(),
                query: query(spec.export.include_resource_ids),
                granularity: spec.export.time_granularity.aws().to_string(),
                include_resources: spec.export.include_resource_ids,
                billing_view_arn: billing_view,
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                region: region.clone(),
                output_type: "CUSTOM".into(),
                format: "PARQUET".into(),
                compression: "PARQUET".into(),
                overwrite: "OVERWRITE_REPORT".into(),
            }),
            format!("{prefix}/{name}/data/"),
        ),
        ExportKind::LegacyCur => (
            DesiredExport::LegacyCur(ReportDef {
                name: name.clone(),
                time_unit: spec.export.time_granularity.aws().to_string(),
                format: "Parquet".into(),
                compression: "Parquet".into(),
                include_resources: spec.export.include_resource_ids,
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                region: region.clone(),
                artifacts: vec!["ATHENA".into()],
                refresh_closed_reports: true,
                versioning: "OVERWRITE_REPORT".into(),
                billing_view_arn: billing_view,
            }),
            format!("{prefix}/{name}/{name}/"),
        ),
    };
    let data_path = format!("s3://{bucket}/{data_prefix}");
    let statement = delivery_statement(spec.export.kind, &bucket, payer);
    let (database, crawler) = match &spec.glue {
        Some(glue) => (
            Some(GlueDatabase {
                name: glue.database.clone(),
                description: marker.clone(),
            }),
            Some(CrawlerDef {
                name: glue.name.clone(),
                role: glue.role_arn.clone(),
                database: glue.database.clone(),
                description: marker,
                path: data_path.clone(),
                exclusions: EXCLUSIONS.iter().map(|s| s.to_string()).collect(),
                schedule: glue.schedule().to_string(),
                update_behavior: "UPDATE_IN_DATABASE".into(),
                delete_behavior: "DELETE_FROM_DATABASE".into(),
            }),
        ),
        None => (None, None),
    };
    Desired {
        bucket,
        region,
        data_prefix,
        data_path,
        statement,
        export,
        database,
        crawler,
    }
}

/// Sid of the operator's statement for `kind` and payer account `payer`.
pub fn statement_sid(kind: ExportKind, payer: &str) -> String {
    match kind {
        ExportKind::DataExport => format!("PartnerBillingBcmDataExports{payer}"),
        ExportKind::LegacyCur => format!("PartnerBillingCurDelivery{payer}"),
    }
}

/// The bucket policy statement that lets exactly the delivering service principal write,
/// for exports of account `payer` only. Pure.
pub fn delivery_statement(kind: ExportKind, bucket: &str, payer: &str) -> Value {
    let (principal, actions, source_arn) = match kind {
        ExportKind::DataExport => (
            "bcm-data-exports.amazonaws.com",
            vec!["s3:PutObject", "s3:GetBucketPolicy"],
            format!("arn:aws:bcm-data-exports:us-east-1:{payer}:export/*"),
        ),
        ExportKind::LegacyCur => (
            "billingreports.amazonaws.com",
            vec!["s3:GetBucketAcl", "s3:GetBucketPolicy", "s3:PutObject"],
            format!("arn:aws:cur:us-east-1:{payer}:definition/*"),
        ),
    };
    json!({
        "Sid": statement_sid(kind, payer),
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": actions,
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {
            "ArnLike": {"aws:SourceArn": source_arn},
            "StringEquals": {"aws:SourceAccount": payer}
        }
    })
}

/// Compare policies the way IAM does: a one-element list equals its element, and the
/// order of list elements does not matter.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Array(items) if items.len() == 1 => normalize(&items[0]),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalize).collect();
            items.sort_by_key(|a| a.to_string());
            Value::Array(items)
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

/// The bucket policy with the operator's statement in place, or `None` when `existing`
/// already has it. Other statements are kept as they are. Pure.
pub fn merge_policy(existing: Option<&str>, statement: &Value) -> Result<Option<String>, Error> {
    let sid = statement.get("Sid").cloned().unwrap_or(Value::Null);
    let mut policy: Value = match existing {
        Some(text) if !text.trim().is_empty() => serde_json::from_str(text).map_err(|e| {
            Error::terminal(
                "BucketPolicyUnreadable",
                format!("the bucket policy is not valid JSON ({e}); fix it in S3 first"),
            )
        })?,
        _ => json!({"Version": "2012-10-17", "Statement": []}),
    };
    let Some(object) = policy.as_object_mut() else {
        return Err(Error::terminal(
            "BucketPolicyUnreadable",
            "the bucket policy is not a JSON object; fix it in S3 first",
        ));
    };
    let statements = match object.remove("Statement") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(one) => vec![one],
    };
    let mut found = false;
    let mut changed = false;
    let mut out = Vec::with_capacity(statements.len() + 1);
    for s in statements {
        if s.get("Sid") == Some(&sid) {
            if found {
                changed = true; // a duplicate of ours: drop it
                continue;
            }
            found = true;
            if normalize(&s) != normalize(statement) {
                changed = true;
                out.push(statement.clone());
                continue;
            }
        }
        out.push(s);
    }
    if !found {
        out.push(statement.clone());
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    object
        .entry("Version")
        .or_insert_with(|| Value::String("2012-10-17".into()));
    object.insert("Statement".into(), Value::Array(out));
    Ok(Some(policy.to_string()))
}

/// Reconcile a CurPipeline.
pub async fn reconcile(
    obj: &CurPipeline,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<CurPipelineStatus> {
    let mode = run.mode();
    let now = run.timestamp().to_string();
    let now = now.as_str();
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut changes = Vec::new();
    let mut delivered = None;
    let result = apply(
        obj,
        ctx,
        mode,
        now,
        &mut status,
        &mut changes,
        &mut delivered,
    )
    .await;
    let extra: Vec<DesiredCondition> = delivered.into_iter().collect();
    crate::reconcile::finish(
        &previous,
        status,
        result,
        &extra,
        obj.metadata.generation,
        mode,
        now,
        changes,
        Vec::new(),
    )
}

/// The billing view of the group `obj` exports, if any: the pro forma view of the group's
/// primary account. Waits while the group or its primary account is not known yet.
fn billing_view(
    obj: &CurPipeline,
    ctx: &ReconcileContext,
    payer: &str,
) -> Result<Option<String>, Error> {
    let Some(group_ref) = &obj.spec.export.billing_group_ref else {
        return Ok(None);
    };
    let namespace = obj.namespace().unwrap_or_default();
    let group = ctx
        .catalog
        .billing_group(&namespace, &group_ref.name)
        .ok_or_else(|| {
            Error::waiting(
                "DependencyNotReady",
                format!("BillingGroup {namespace}/{} does not exist", group_ref.name),
                DEPENDENCY_RETRY,
            )
        })?;
    if group.status.as_ref().and_then(|s| s.arn.as_ref()).is_none() {
        return Err(Error::waiting(
            "DependencyNotReady",
            format!(
                "BillingGroup {namespace}/{} is not created in AWS yet",
                group_ref.name
            ),
            DEPENDENCY_RETRY,
        ));
    }
    let account = crate::billing::billing_group::resolve_account(
        &group.spec.primary_account,
        &ctx.catalog
            .linked_account(&namespace, &group.spec.primary_account)
            .into_iter()
            .collect::<Vec<_>>(),
    )
    .map_err(|m| {
        Error::waiting(
            "DependencyNotReady",
            format!(
                "the primary account of BillingGroup {namespace}/{}: {m}",
                group_ref.name
            ),
            DEPENDENCY_RETRY,
        )
    })?;
    Ok(Some(format!(
        "arn:aws:billing::{payer}:billingview/billing-group-{account}"
    )))
}

#[allow(clippy::too_many_arguments)]
async fn apply(
    obj: &CurPipeline,
    ctx: &ReconcileContext,
    mode: Mode,
    now: &str,
    status: &mut CurPipelineStatus,
    changes: &mut Vec<crate::reconcile::Change>,
    delivered: &mut Option<DesiredCondition>,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let plan_only = mode == Mode::Plan;
    let (_key, payer, conn) = payer_connection(&namespace, &obj.spec.payer_ref, ctx).await?;
    let account = payer.spec.account_id.clone();
    let view = billing_view(obj, ctx, &account)?;
    let want = desired(obj, &account, view.clone());
    let api = conn.pipeline.clone();
    let owner = owner_value(&namespace, "CurPipeline", &obj.name_any());
    let tags = with_owner(&obj.spec.tags, &owner);
    let marker = owner_marker(&namespace, &obj.name_any());
    status.bucket = Some(want.bucket.clone());
    status.data_path = Some(want.data_path.clone());
    status.billing_view_arn = view;

    // What exists under the spec's names, checked before anything is written: an export,
    // report definition or crawler another pipeline owns (or, without spec.adopt, one made
    // outside the operator) stops the pipeline here.
    let found_export = match &want.export {
        DesiredExport::DataExport(def) => {
            let found = api.find_export(&def.name).await?;
            if let Some(f) = &found {
                claim_marked(
                    &f.def.description,
                    &marker,
                    obj.spec.adopt,
                    &format!("export {}", def.name),
                    "spec.export.name",
                )?;
            }
            found
        }
        DesiredExport::LegacyCur(_) => None,
    };
    // A report definition has no description: its owner tag says whose it is. It is read
    // when the status does not show the definition as this pipeline's yet.
    let mut adopt_report = false;
    let found_report = match &want.export {
        DesiredExport::LegacyCur(def) => {
            let found = api.find_report(&def.name).await?;
            if found.is_some() && status.export_arn.as_deref() != Some(def.name.as_str()) {
                let current = api.report_tags(&def.name).await?;
                let claimant = Claimant {
                    owner: &owner,
                    adopt: obj.spec.adopt,
                    name_field: "spec.export.name",
                };
                adopt_report = claim(
                    &current,
                    &claimant,
                    &format!("report definition {}", def.name),
                )? == Claim::Adopt;
            }
            found
        }
        DesiredExport::DataExport(_) => None,
    };
    let found_crawler = match &want.crawler {
        Some(crawler) => {
            let found = api.crawler(&want.region, &crawler.name).await?;
            if let Some(f) = &found {
                claim_marked(
                    &f.def.description,
                    &marker,
                    obj.spec.adopt,
                    &format!("crawler {}", crawler.name),
                    "spec.glue.name",
                )?;
            }
            found
        }
        None => None,
    };

    // The bucket.
    let mut bucket_ready = api.bucket_exists(&want.region, &want.bucket).await?;
    if !bucket_ready {
        if !obj.spec.s3.create {
            return Err(Error::terminal(
                "BucketNotFound",
                format!(
                    "S3 bucket {} does not exist in {}; create it, or set spec.s3.create: true to let the operator create it",
                    want.bucket, want.region
                ),
            ));
        }
        changes.push(change(
            ChangeAction::Create,
            format!("s3-bucket/{}", want.bucket),
            format!("in {}", want.region),
        ));
        if !plan_only {
            api.create_bucket(&want.region, &want.bucket, &tags).await?;
            bucket_ready = true;
        }
    }

    // The delivery statement in the bucket policy.
    let existing_policy = if bucket_ready {
        api.bucket_policy(&want.region, &want.bucket).await?
    } else {
        None
    };
    if let Some(policy) = merge_policy(existing_policy.as_deref(), &want.statement)? {
        changes.push(change(
            if existing_policy.is_some() {
                ChangeAction::Update
            } else {
                ChangeAction::Create
            },
            format!("s3-bucket-policy/{}", want.bucket),
            format!(
                "statement {} for {}",
                want.statement["Sid"].as_str().unwrap_or_default(),
                want.statement["Principal"]["Service"]
                    .as_str()
                    .unwrap_or_default()
            ),
        ));
        if !plan_only {
            api.put_bucket_policy(&want.region, &want.bucket, &policy)
                .await?;
        }
    }

    // The export or report definition.
    match &want.export {
        DesiredExport::DataExport(def) => match found_export {
            None => {
                changes.push(change(
                    ChangeAction::Create,
                    format!("data-export/{}", def.name),
                    format!("CUR 2.0 to s3://{}/{}", def.bucket, def.prefix),
                ));
                if !plan_only {
                    let arn = api.create_export(def, &tags).await?;
                    status.export_arn = Some(arn);
                    status.export_health = Some("HEALTHY".into());
                    status.export_health_reason = None;
                }
            }
            Some(found) => {
                if &found.def != def {
                    changes.push(change(
                        ChangeAction::Update,
                        format!("data-export/{}", def.name),
                        describe_export_drift(&found.def, def),
                    ));
                    if !plan_only {
                        api.update_export(&found.arn, def).await?;
                    }
                }
                status.export_arn = Some(found.arn.clone());
                status.export_health = found.health.clone();
                status.export_health_reason = found.health_reason.clone();
            }
        },
        DesiredExport::LegacyCur(def) => match found_report {
            None => {
                changes.push(change(
                    ChangeAction::Create,
                    format!("cur-report/{}", def.name),
                    format!("legacy CUR to s3://{}/{}", def.bucket, def.prefix),
                ));
                if !plan_only {
                    api.put_report(def, &tags).await?;
                    status.export_arn = Some(def.name.clone());
                    status.export_health = Some("HEALTHY".into());
                }
            }
            Some(found) => {
                if adopt_report {
                    changes.push(change(
                        ChangeAction::Update,
                        format!("cur-report/{}", def.name),
                        format!("adopt: add the {OWNER_TAG} tag"),
                    ));
                    if !plan_only {
                        api.tag_report(&def.name, &tags).await?;
                    }
                }
                if &found != def {
                    changes.push(change(
                        ChangeAction::Update,
                        format!("cur-report/{}", def.name),
                        "report definition differs from the spec",
                    ));
                    if !plan_only {
                        api.modify_report(def).await?;
                    }
                }
                status.export_arn = Some(def.name.clone());
                status.export_health = Some("HEALTHY".into());
                status.export_health_reason = None;
            }
        },
    }
    if !plan_only && status.export_since.is_none() {
        status.export_since = Some(now.to_string());
    }

    // Glue.
    if let Some(db) = &want.database {
        // An existing database is used as it is: several pipelines may share one (each with
        // its own crawler).
        if api.database(&want.region, &db.name).await?.is_none() {
            changes.push(change(
                ChangeAction::Create,
                format!("glue-database/{}", db.name),
                format!("in {}", want.region),
            ));
            if !plan_only {
                api.create_database(&want.region, db, &tags).await?;
            }
        }
        status.glue_database = Some(db.name.clone());
    } else {
        status.glue_database = None;
    }
    if let Some(crawler) = &want.crawler {
        match found_crawler {
            None => {
                changes.push(change(
                    ChangeAction::Create,
                    format!("glue-crawler/{}", crawler.name),
                    format!("{} on {}", crawler.schedule, crawler.path),
                ));
                if !plan_only {
                    api.create_crawler(&want.region, crawler, &tags).await?;
                    status.crawler_state = Some("READY".into());
                }
            }
            Some(found) => {
                if &found.def != crawler {
                    changes.push(change(
                        ChangeAction::Update,
                        format!("glue-crawler/{}", crawler.name),
                        describe_crawler_drift(&found.def, crawler),
                    ));
                    if !plan_only {
                        api.update_crawler(&want.region, crawler).await?;
                    }
                }
                status.crawler_state = Some(found.state.clone());
                status.last_crawl = found.last_crawl.map(|c| CrawlStatus {
                    status: c.status,
                    started_at: c.started_at,
                    error_message: c.error_message,
                });
            }
        }
    } else {
        status.crawler_state = None;
        status.last_crawl = None;
    }

    if plan_only && !changes.is_empty() {
        return Ok(Verdict::blocked(
            "PlannedOnly",
            format!("{} change(s) would be made", changes.len()),
        ));
    }

    // Delivery: AWS writes the first files within a day of the export's creation.
    let has_files = if bucket_ready {
        api.has_objects(&want.region, &want.bucket, &want.data_prefix)
            .await?
    } else {
        false
    };
    let since = status
        .export_since
        .clone()
        .unwrap_or_else(|| now.to_string());
    *delivered = Some(if has_files {
        DesiredCondition::new(
            DELIVERED,
            ConditionStatus::True,
            "Delivered",
            format!("AWS has delivered files to {}", want.data_path),
        )
    } else if !older_than(&since, now, FIRST_DELIVERY_SECS) {
        DesiredCondition::new(
            DELIVERED,
            ConditionStatus::False,
            "AwaitingFirstDelivery",
            format!(
                "the export is in place since {since}; AWS delivers the first files within 24 hours, nothing is wrong"
            ),
        )
    } else {
        DesiredCondition::new(
            DELIVERED,
            ConditionStatus::False,
            "NotDelivered",
            format!(
                "no files under {} more than 24 hours after {since}; check the export's health and the bucket policy",
                want.data_path
            ),
        )
    });
    if status.export_health.as_deref() == Some("UNHEALTHY") {
        return Ok(Verdict::blocked(
            "ExportUnhealthy",
            format!(
                "AWS reports the export as UNHEALTHY ({}); check the bucket policy and the bucket's region",
                status
                    .export_health_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ),
        ));
    }
    if let Some(crawl) = &status.last_crawl
        && crawl.status == "FAILED"
    {
        return Ok(Verdict::blocked(
            "CrawlFailed",
            format!(
                "the last crawl failed: {}",
                crawl.error_message.as_deref().unwrap_or("no message")
            ),
        ));
    }
    Ok(Verdict::ready(
        "PipelineReady",
        format!(
            "{} delivers to {}{}",
            match obj.spec.export.kind {
                ExportKind::DataExport => "CUR 2.0 export",
                ExportKind::LegacyCur => "legacy CUR",
            },
            want.data_path,
            want.crawler
                .as_ref()
                .map(|c| format!(", crawled by {} into Glue database {}", c.name, c.database))
                .unwrap_or_default()
        ),
    ))
}

fn describe_export_drift(have: &ExportDef, want: &ExportDef) -> String {
    let mut what = Vec::new();
    if have.query != want.query {
        what.push("query");
    }
    if have.granularity != want.granularity || have.include_resources != want.include_resources {
        what.push("table configuration");
    }
    if have.billing_view_arn != want.billing_view_arn {
        what.push("billing view");
    }
    if have.bucket != want.bucket || have.prefix != want.prefix || have.region != want.region {
        what.push("destination");
    }
    if (
        &have.output_type,
        &have.format,
        &have.compression,
        &have.overwrite,
    ) != (
        &want.output_type,
        &want.format,
        &want.compression,
        &want.overwrite,
    ) {
        what.push("output format");
    }
    if have.description != want.description {
        what.push("description");
    }
    what.join(", ")
}

fn describe_crawler_drift(have: &CrawlerDef, want: &CrawlerDef) -> String {
    let mut what = Vec::new();
    if have.schedule != want.schedule {
        what.push(format!(
            "schedule {:?} -> {:?}",
            have.schedule, want.schedule
        ));
    }
    if have.path != want.path || have.exclusions != want.exclusions {
        what.push("S3 target".into());
    }
    if have.role != want.role {
        what.push("role".into());
    }
    if have.database != want.database {
        what.push("database".into());
    }
    if (&have.update_behavior, &have.delete_behavior)
        != (&want.update_behavior, &want.delete_behavior)
    {
        what.push("schema change policy".into());
    }
    if have.description != want.description {
        what.push("description".into());
    }
    what.join(", ")
}

/// Delete a CurPipeline object: with `deletionPolicy: Delete` the export (or report
/// definition), the crawler and the database go, when they carry this pipeline's marker;
/// the bucket, its policy and its data always stay. A report definition goes when its
/// owner tag names this pipeline.
pub async fn cleanup(
    obj: &CurPipeline,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<CurPipelineStatus> {
    let now = run.timestamp().to_string();
    let now = now.as_str();
    let previous = obj.status.clone().unwrap_or_default();
    let status = previous.clone();
    let mut changes = Vec::new();
    let result = delete(obj, ctx, &mut changes).await;
    crate::reconcile::finish_cleanup(
        &previous,
        status,
        result,
        &[],
        obj.metadata.generation,
        now,
        changes,
        Vec::new(),
        |_| false,
    )
}

async fn delete(
    obj: &CurPipeline,
    ctx: &ReconcileContext,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    if obj.spec.deletion_policy == PipelineDeletionPolicy::Retain {
        return Ok(Verdict::ready(
            "Retained",
            "deletionPolicy Retain: the export, crawler and database stay in AWS",
        ));
    }
    let namespace = obj.namespace().unwrap_or_default();
    if ctx
        .catalog
        .payer(&namespace, &obj.spec.payer_ref.name)
        .is_none()
    {
        return Ok(Verdict::ready(
            "PayerGone",
            "the Payer no longer exists; nothing in AWS was deleted",
        ));
    }
    let (_key, _payer, conn) = payer_connection(&namespace, &obj.spec.payer_ref, ctx).await?;
    let api = conn.pipeline.clone();
    let marker = owner_marker(&namespace, &obj.name_any());
    let region = obj.spec.s3.region().to_string();
    let name = obj.spec.export.name.clone();
    match obj.spec.export.kind {
        ExportKind::DataExport => {
            if let Some(found) = api.find_export(&name).await?
                && carries_marker(&found.def.description, &marker)
            {
                changes.push(change(
                    ChangeAction::Delete,
                    format!("data-export/{name}"),
                    "",
                ));
                api.delete_export(&found.arn).await?;
            }
        }
        ExportKind::LegacyCur => {
            let claimed =
                obj.status.as_ref().and_then(|s| s.export_arn.as_deref()) == Some(name.as_str());
            if api.find_report(&name).await?.is_some()
                && (claimed
                    || api.report_tags(&name).await?.get(OWNER_TAG)
                        == Some(&owner_value(&namespace, "CurPipeline", &obj.name_any())))
            {
                changes.push(change(
                    ChangeAction::Delete,
                    format!("cur-report/{name}"),
                    "",
                ));
                api.delete_report(&name).await?;
            }
        }
    }
    if let Some(glue) = &obj.spec.glue {
        if let Some(found) = api.crawler(&region, &glue.name).await?
            && carries_marker(&found.def.description, &marker)
        {
            changes.push(change(
                ChangeAction::Delete,
                format!("glue-crawler/{}", glue.name),
                "",
            ));
            api.delete_crawler(&region, &glue.name).await?;
        }
        if let Some(found) = api.database(&region, &glue.database).await?
            && carries_marker(&found.description, &marker)
        {
            changes.push(change(
                ChangeAction::Delete,
                format!("glue-database/{}", glue.database),
                "its tables go with it; the data in S3 stays",
            ));
            api.delete_database(&region, &glue.database).await?;
        }
    }
    let deleted: Vec<&str> = changes.iter().map(|c| c.target.as_str()).collect();
    Ok(Verdict::ready(
        "Deleted",
        if deleted.is_empty() {
            "nothing of this pipeline's was in AWS (objects of its names that others own are left alone); the bucket and its data are kept".to_string()
        } else {
            format!(
                "deleted {}; the bucket and its data are kept",
                deleted.join(", ")
            )
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_other_statements_and_is_idempotent() {
        let ours = delivery_statement(ExportKind::DataExport, "cur-bucket", "111111111111");
        let other = json!({"Sid": "AuditRead", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::cur-bucket/*"});
        let existing = json!({"Version": "2012-10-17", "Statement": [other.clone()]}).to_string();
        let merged = merge_policy(Some(&existing), &ours)
            .unwrap()
            .expect("a change");
        let v: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(v["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(v["Statement"][0], other);
        assert_eq!(v["Statement"][1], ours);
        assert_eq!(
            merge_policy(Some(&merged), &ours).unwrap(),
            None,
            "second run: no change"
        );
        // AWS may hand the statement back with one-element lists collapsed and reordered.
        let mut reordered = ours.clone();
        reordered["Action"] = json!(["s3:GetBucketPolicy", "s3:PutObject"]);
        reordered["Condition"]["StringEquals"]["aws:SourceAccount"] = json!(["111111111111"]);
        let aws = json!({"Version": "2012-10-17", "Statement": [other, reordered]}).to_string();
        assert_eq!(merge_policy(Some(&aws), &ours).unwrap(), None);
    }

    #[test]
    fn merge_replaces_a_changed_statement_and_starts_an_empty_policy() {
        let ours = delivery_statement(ExportKind::LegacyCur, "b-1", "111111111111");
        let created = merge_policy(None, &ours).unwrap().unwrap();
        let v: Value = serde_json::from_str(&created).unwrap();
        assert_eq!(v["Version"], "2012-10-17");
        assert_eq!(v["Statement"], json!([ours.clone()]));
        let mut tampered = ours.clone();
        tampered["Principal"]["Service"] = json!("evil.amazonaws.com");
        let single = json!({"Version": "2012-10-17", "Statement": tampered}).to_string();
        let fixed: Value =
            serde_json::from_str(&merge_policy(Some(&single), &ours).unwrap().unwrap()).unwrap();
        assert_eq!(fixed["Statement"], json!([ours]));
        assert_eq!(
            merge_policy(Some("{not json"), &json!({"Sid": "x"}))
                .unwrap_err()
                .reason(),
            "BucketPolicyUnreadable"
        );
    }

    #[test]
    fn statement_scopes_the_principal_to_the_payer() {
        let s = delivery_statement(ExportKind::DataExport, "b-1", "111111111111");
        assert_eq!(s["Principal"]["Service"], "bcm-data-exports.amazonaws.com");
        assert_eq!(
            s["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:bcm-data-exports:us-east-1:111111111111:export/*"
        );
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:SourceAccount"],
            "111111111111"
        );
        let l = delivery_statement(ExportKind::LegacyCur, "b-1", "111111111111");
        assert_eq!(l["Principal"]["Service"], "billingreports.amazonaws.com");
        assert_eq!(
            l["Action"],
            json!(["s3:GetBucketAcl", "s3:GetBucketPolicy", "s3:PutObject"])
        );
    }

    #[test]
    fn exports_and_crawlers_are_claimed_by_their_marker() {
        let ours = owner_marker("acme", "main");
        assert!(claim_marked(&ours, &ours, false, "export x", "spec.export.name").is_ok());
        let e = claim_marked(
            &owner_marker("acme", "other"),
            &ours,
            true,
            "export x",
            "spec.export.name",
        )
        .unwrap_err();
        assert_eq!(e.reason(), "OwnedElsewhere");
        assert!(e.to_string().contains("acme/curpipeline/other"), "{e}");
        let e =
            claim_marked("made by hand", &ours, false, "crawler c", "spec.glue.name").unwrap_err();
        assert_eq!(e.reason(), "AdoptionRequired");
        assert!(
            e.to_string().contains("spec.adopt: true") && e.to_string().contains("spec.glue.name"),
            "{e}"
        );
        assert!(claim_marked("", &ours, true, "crawler c", "spec.glue.name").is_ok());
        // An edited description that keeps this pipeline's marker is still ours.
        let edited = format!("billing exports; {ours}");
        assert!(claim_marked(&edited, &ours, false, "crawler c", "spec.glue.name").is_ok());
        let e = claim_marked(
            &owner_marker("acme", "main2"),
            &ours,
            false,
            "crawler c",
            "spec.glue.name",
        )
        .unwrap_err();
        assert_eq!(e.reason(), "OwnedElsewhere");
    }

    fn pipeline(yaml: &str) -> CurPipeline {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn desired_objects_follow_the_spec() {
        let p = pipeline(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: CurPipeline\nmetadata: {name: main, namespace: acme}\nspec:\n  payerRef: {name: payer}\n  export: {name: acme-cur, includeResourceIds: true}\n  s3: {bucket: acme-cur, region: eu-west-1}\n  glue: {database: acme_cur, name: acme-cur, roleArn: 'arn:aws:iam::111111111111:role/Crawler'}\n",
        );
        let d = desired(&p, "111111111111", None);
        assert_eq!(d.data_path, "s3://acme-cur/cur/acme-cur/data/");
        let DesiredExport::DataExport(e) = &d.export else {
            panic!("data export")
        };
        assert_eq!(e.granularity, "DAILY");
        assert!(e.query.contains("line_item_resource_id"));
        assert_eq!(
            e.description,
            "Managed by partner-billing-operator (acme/curpipeline/main)"
        );
        let c = d.crawler.unwrap();
        assert_eq!(c.schedule, "cron(30 2 * * ? *)");
        assert_eq!(c.path, d.data_path);
        assert_eq!(c.exclusions.len(), 6);
        assert!(!query(false).contains("line_item_resource_id"));
    }
}
