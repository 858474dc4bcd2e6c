//! CurPipeline: bucket (created only when asked), one delivery statement merged into the
//! bucket policy (other statements are never touched), the export (BCM Data Exports) or
//! legacy report definition, and the Glue database and crawler. Each is found again by its
//! natural key (bucket, export or report name, database and crawler name); exports, databases
//! and crawlers carry an ownership marker in their description, report definitions (which
//! have no description) the owner tag, so a pipeline never adopts or deletes another
//! pipeline's objects, and takes over one made outside the operator only with `spec.adopt`.
//!
//! A reconcile runs in three steps: `observe` reads what AWS holds under the spec's names
//! (and stops as soon as an object turns out not to be this pipeline's), the pure [`plan`]
//! turns the [`Observation`] into the [`Step`]s to take, and `execute` carries them out
//! through [`Run::write`]; [`settle`] and [`verdict`] then derive the status from what was
//! done. Deletion follows the same shape ([`plan_release`]); the bucket, its policy and its
//! data are never deleted.

use std::sync::Arc;

use k8s_openapi::jiff::{Timestamp, ToSpan};
use kube::ResourceExt;

use crate::api::common::{OWNER_TAG, owner_value, with_owner};
use crate::api::conditions::{ConditionStatus, DesiredCondition};
use crate::api::cur_pipeline::{CrawlStatus, ExportKind, PipelineDeletionPolicy};
use crate::api::{CurPipeline, CurPipelineSpec, CurPipelineStatus};
use crate::aws::organizations::Tags;
use crate::aws::pipeline::{
    CrawlerDef, CrawlerInfo, ExportDef, ExportInfo, GlueDatabase, PipelineApi, ReportDef,
};
use crate::error::Error;
use crate::payer::context::payer_connection;
use crate::reconcile::ownership::{Claim, Claimant, claim};
use crate::reconcile::reasons;
use crate::reconcile::run::Run;
use crate::reconcile::{
    Change, ChangeAction, DEPENDENCY_RETRY, KindOutcome, ReconcileContext, Verdict, change,
};

use super::bucket_policy::merge_policy;
use super::desired::{
    Desired, DesiredExport, carries_marker, claim_marked, describe_crawler_drift,
    describe_export_drift, desired, owner_marker,
};

/// Condition type: AWS has delivered files.
pub const DELIVERED: &str = "Delivered";
/// AWS may take this long for the first delivery.
pub const FIRST_DELIVERY_SECS: i64 = 24 * 3600;

/// Whose objects this pipeline may manage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// The owner tag value (`namespace/curpipeline/name`), for report definitions.
    pub owner: String,
    /// The description marker, for exports, crawlers and databases.
    pub marker: String,
    /// `spec.adopt`: take over objects made outside the operator.
    pub adopt: bool,
}

/// What AWS holds under the spec's names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// The export of the spec's name (Data Exports pipelines).
    pub export: Option<ExportInfo>,
    /// The report definition of the spec's name (legacy CUR pipelines).
    pub report: Option<ReportDef>,
    /// The report definition's tags: read only when it exists and the status does not show
    /// it as this pipeline's yet.
    pub report_tags: Option<Tags>,
    pub crawler: Option<CrawlerInfo>,
    pub bucket_exists: bool,
    /// The bucket policy document (read only when the bucket exists).
    pub policy: Option<String>,
    /// Whether the Glue database exists (read only with `spec.glue`).
    pub database_exists: bool,
}

/// One AWS write, in the order the plan makes them.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    CreateBucket,
    /// Put the merged policy; `replaces` an existing one (else the bucket had none).
    PutBucketPolicy {
        document: String,
        replaces: bool,
    },
    CreateExport(ExportDef),
    UpdateExport {
        arn: String,
        def: ExportDef,
        drift: String,
    },
    PutReport(ReportDef),
    /// Add the owner tag to a report definition made outside the operator (`spec.adopt`).
    AdoptReport {
        name: String,
    },
    ModifyReport(ReportDef),
    CreateDatabase(GlueDatabase),
    CreateCrawler(CrawlerDef),
    UpdateCrawler {
        def: CrawlerDef,
        drift: String,
    },
}

/// The part of the pipeline a step belongs to; the status of a part is settled once every
/// step up to its end was carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Bucket,
    Export,
    Database,
    Crawler,
}

impl Step {
    pub fn part(&self) -> Part {
        match self {
            Step::CreateBucket | Step::PutBucketPolicy { .. } => Part::Bucket,
            Step::CreateExport(_)
            | Step::UpdateExport { .. }
            | Step::PutReport(_)
            | Step::AdoptReport { .. }
            | Step::ModifyReport(_) => Part::Export,
            Step::CreateDatabase(_) => Part::Database,
            Step::CreateCrawler(_) | Step::UpdateCrawler { .. } => Part::Crawler,
        }
    }

    /// The change this step makes, as the front doors report it. Pure.
    pub fn change(&self, want: &Desired) -> Change {
        match self {
            Step::CreateBucket => change(
                ChangeAction::Create,
                format!("s3-bucket/{}", want.bucket),
                format!("in {}", want.region),
            ),
            Step::PutBucketPolicy { replaces, .. } => change(
                if *replaces {
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
            ),
            Step::CreateExport(def) => change(
                ChangeAction::Create,
                format!("data-export/{}", def.name),
                format!("CUR 2.0 to s3://{}/{}", def.bucket, def.prefix),
            ),
            Step::UpdateExport { def, drift, .. } => change(
                ChangeAction::Update,
                format!("data-export/{}", def.name),
                drift.clone(),
            ),
            Step::PutReport(def) => change(
                ChangeAction::Create,
                format!("cur-report/{}", def.name),
                format!("legacy CUR to s3://{}/{}", def.bucket, def.prefix),
            ),
            Step::AdoptReport { name } => change(
                ChangeAction::Update,
                format!("cur-report/{name}"),
                format!("adopt: add the {OWNER_TAG} tag"),
            ),
            Step::ModifyReport(def) => change(
                ChangeAction::Update,
                format!("cur-report/{}", def.name),
                "report definition differs from the spec",
            ),
            Step::CreateDatabase(db) => change(
                ChangeAction::Create,
                format!("glue-database/{}", db.name),
                format!("in {}", want.region),
            ),
            Step::CreateCrawler(def) => change(
                ChangeAction::Create,
                format!("glue-crawler/{}", def.name),
                format!("{} on {}", def.schedule, def.path),
            ),
            Step::UpdateCrawler { def, drift } => change(
                ChangeAction::Update,
                format!("glue-crawler/{}", def.name),
                drift.clone(),
            ),
        }
    }
}

/// Check that the export or report definition found under the spec's name is this
/// pipeline's to manage (see [`claim_marked`] and [`claim`]); `Ok(true)` when a report
/// definition made outside the operator is adopted now. Pure.
pub fn claim_export(want: &Desired, seen: &Observation, who: &Ownership) -> Result<bool, Error> {
    match &want.export {
        DesiredExport::DataExport(def) => {
            if let Some(found) = &seen.export {
                claim_marked(
                    &found.def.description,
                    &who.marker,
                    who.adopt,
                    &format!("export {}", def.name),
                    "spec.export.name",
                )?;
            }
            Ok(false)
        }
        // A report definition has no description: its owner tag says whose it is.
        DesiredExport::LegacyCur(def) => match &seen.report_tags {
            Some(tags) => {
                let claimant = Claimant {
                    owner: &who.owner,
                    adopt: who.adopt,
                    name_field: "spec.export.name",
                };
                let what = format!("report definition {}", def.name);
                Ok(claim(tags, &claimant, &what)? == Claim::Adopt)
            }
            None => Ok(false),
        },
    }
}

/// Check that the crawler found under the spec's name is this pipeline's to manage. Pure.
pub fn claim_crawler(want: &Desired, seen: &Observation, who: &Ownership) -> Result<(), Error> {
    match (&want.crawler, &seen.crawler) {
        (Some(crawler), Some(found)) => claim_marked(
            &found.def.description,
            &who.marker,
            who.adopt,
            &format!("crawler {}", crawler.name),
            "spec.glue.name",
        ),
        _ => Ok(()),
    }
}

/// A missing bucket is created only with `spec.s3.create`. Pure.
pub fn require_bucket(want: &Desired, exists: bool) -> Result<(), Error> {
    if exists || want.create_bucket {
        return Ok(());
    }
    Err(Error::terminal(
        reasons::BUCKET_NOT_FOUND,
        format!(
            "S3 bucket {} does not exist in {}; create it, or set spec.s3.create: true to let the operator create it",
            want.bucket, want.region
        ),
    ))
}

/// The steps for the export or report definition.
fn export_steps(want: &Desired, seen: &Observation, adopt_report: bool) -> Vec<Step> {
    match &want.export {
        DesiredExport::DataExport(def) => match &seen.export {
            None => vec![Step::CreateExport(def.clone())],
            Some(found) if &found.def != def => vec![Step::UpdateExport {
                arn: found.arn.clone(),
                def: def.clone(),
                drift: describe_export_drift(&found.def, def),
            }],
            Some(_) => Vec::new(),
        },
        DesiredExport::LegacyCur(def) => match &seen.report {
            None => vec![Step::PutReport(def.clone())],
            Some(found) => {
                let mut steps = Vec::new();
                if adopt_report {
                    steps.push(Step::AdoptReport {
                        name: def.name.clone(),
                    });
                }
                if found != def {
                    steps.push(Step::ModifyReport(def.clone()));
                }
                steps
            }
        },
    }
}

/// The steps for the Glue database and crawler. An existing database is used as it is:
/// several pipelines may share one (each with its own crawler).
fn glue_steps(want: &Desired, seen: &Observation) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(db) = &want.database
        && !seen.database_exists
    {
        steps.push(Step::CreateDatabase(db.clone()));
    }
    match (&want.crawler, &seen.crawler) {
        (Some(crawler), None) => steps.push(Step::CreateCrawler(crawler.clone())),
        (Some(crawler), Some(found)) if &found.def != crawler => steps.push(Step::UpdateCrawler {
            def: crawler.clone(),
            drift: describe_crawler_drift(&found.def, crawler),
        }),
        _ => {}
    }
    steps
}

/// What to write for the pipeline, in order: the bucket, the delivery statement, the export
/// or report definition, the Glue database and crawler. Refuses objects that are not this
/// pipeline's, a missing bucket it may not create and a policy it cannot read. Pure.
pub fn plan(want: &Desired, seen: &Observation, who: &Ownership) -> Result<Vec<Step>, Error> {
    let adopt_report = claim_export(want, seen, who)?;
    claim_crawler(want, seen, who)?;
    require_bucket(want, seen.bucket_exists)?;
    let mut steps = Vec::new();
    if !seen.bucket_exists {
        steps.push(Step::CreateBucket);
    }
    if let Some(document) = merge_policy(seen.policy.as_deref(), &want.statement)? {
        steps.push(Step::PutBucketPolicy {
            document,
            replaces: seen.policy.is_some(),
        });
    }
    steps.extend(export_steps(want, seen, adopt_report));
    steps.extend(glue_steps(want, seen));
    Ok(steps)
}

/// What carrying out a plan did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Done {
    /// How many steps were carried out (all of them unless a write failed).
    pub completed: usize,
    /// Whether the writes were made (apply mode) rather than only planned.
    pub applied: bool,
    /// The ARN of the export created now.
    pub export_arn: Option<String>,
}

impl Done {
    /// Whether every step of `part` and the parts before it was carried out.
    fn finished(&self, steps: &[Step], part: Part) -> bool {
        steps
            .get(self.completed..)
            .unwrap_or_default()
            .iter()
            .all(|s| s.part() > part)
    }

    /// Whether the bucket is there to read from (it existed, or was created now).
    pub fn bucket_ready(&self, seen: &Observation, steps: &[Step]) -> bool {
        seen.bucket_exists
            || (self.applied
                && steps
                    .iter()
                    .take(self.completed)
                    .any(|s| *s == Step::CreateBucket))
    }
}

/// The export fields of the status after the export part.
fn settle_export(status: &mut CurPipelineStatus, want: &Desired, seen: &Observation, done: &Done) {
    match &want.export {
        DesiredExport::DataExport(_) => match &seen.export {
            None => {
                if let Some(arn) = &done.export_arn {
                    status.export_arn = Some(arn.clone());
                    status.export_health = Some("HEALTHY".into());
                    status.export_health_reason = None;
                }
            }
            Some(found) => {
                status.export_arn = Some(found.arn.clone());
                status.export_health = found.health.clone();
                status.export_health_reason = found.health_reason.clone();
            }
        },
        DesiredExport::LegacyCur(def) => match &seen.report {
            None => {
                if done.applied {
                    status.export_arn = Some(def.name.clone());
                    status.export_health = Some("HEALTHY".into());
                }
            }
            Some(_) => {
                status.export_arn = Some(def.name.clone());
                status.export_health = Some("HEALTHY".into());
                status.export_health_reason = None;
            }
        },
    }
}

/// The crawler fields of the status after the crawler part.
fn settle_crawler(status: &mut CurPipelineStatus, want: &Desired, seen: &Observation, done: &Done) {
    match (&want.crawler, &seen.crawler) {
        (None, _) => {
            status.crawler_state = None;
            status.last_crawl = None;
        }
        (Some(_), None) => {
            if done.applied {
                status.crawler_state = Some("READY".into());
            }
        }
        (Some(_), Some(found)) => {
            status.crawler_state = Some(found.state.clone());
            status.last_crawl = found.last_crawl.clone().map(|c| CrawlStatus {
                status: c.status,
                started_at: c.started_at,
                error_message: c.error_message,
            });
        }
    }
}

/// The status after carrying out `steps` as far as `done` says: each part (export, Glue
/// database, crawler) is settled once every step up to its end was carried out, so a failed
/// write leaves the later parts as they were. `now` starts the wait for the first delivery.
/// Pure.
pub fn settle(
    status: &mut CurPipelineStatus,
    want: &Desired,
    seen: &Observation,
    steps: &[Step],
    done: &Done,
    now: Timestamp,
) {
    if !done.finished(steps, Part::Export) {
        return;
    }
    settle_export(status, want, seen, done);
    if done.applied && status.export_since.is_none() {
        status.export_since = Some(now.to_string());
    }
    if !done.finished(steps, Part::Database) {
        return;
    }
    status.glue_database = want.database.as_ref().map(|db| db.name.clone());
    if done.finished(steps, Part::Crawler) {
        settle_crawler(status, want, seen, done);
    }
}

/// Whether the first delivery is overdue: more than [`FIRST_DELIVERY_SECS`] after `since`
/// (an unreadable time counts as overdue). Pure.
pub fn first_delivery_overdue(since: Option<Timestamp>, now: Timestamp) -> bool {
    since
        .and_then(|since| since.checked_add(FIRST_DELIVERY_SECS.seconds()).ok())
        .is_none_or(|limit| limit < now)
}

/// The `Delivered` condition: files under `data_path`, or the wait for the first delivery
/// since `since` (RFC 3339, for the message). Pure.
pub fn delivered_condition(
    has_files: bool,
    overdue: bool,
    since: &str,
    data_path: &str,
) -> DesiredCondition {
    if has_files {
        DesiredCondition::new(
            DELIVERED,
            ConditionStatus::True,
            reasons::DELIVERED,
            format!("AWS has delivered files to {data_path}"),
        )
    } else if !overdue {
        DesiredCondition::new(
            DELIVERED,
            ConditionStatus::False,
            reasons::AWAITING_FIRST_DELIVERY,
            format!(
                "the export is in place since {since}; AWS delivers the first files within 24 hours, nothing is wrong"
            ),
        )
    } else {
        DesiredCondition::new(
            DELIVERED,
            ConditionStatus::False,
            reasons::NOT_DELIVERED,
            format!(
                "no files under {data_path} more than 24 hours after {since}; check the export's health and the bucket policy"
            ),
        )
    }
}

/// The verdict of a converged pipeline: blocked while AWS reports the export unhealthy or
/// the last crawl failed, else ready. Pure.
pub fn verdict(kind: ExportKind, want: &Desired, status: &CurPipelineStatus) -> Verdict {
    if status.export_health.as_deref() == Some("UNHEALTHY") {
        return Verdict::blocked(
            reasons::EXPORT_UNHEALTHY,
            format!(
                "AWS reports the export as UNHEALTHY ({}); check the bucket policy and the bucket's region",
                status
                    .export_health_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ),
        );
    }
    if let Some(crawl) = &status.last_crawl
        && crawl.status == "FAILED"
    {
        return Verdict::blocked(
            reasons::CRAWL_FAILED,
            format!(
                "the last crawl failed: {}",
                crawl.error_message.as_deref().unwrap_or("no message")
            ),
        );
    }
    Verdict::ready(
        reasons::PIPELINE_READY,
        format!(
            "{} delivers to {}{}",
            match kind {
                ExportKind::DataExport => "CUR 2.0 export",
                ExportKind::LegacyCur => "legacy CUR",
            },
            want.data_path,
            want.crawler
                .as_ref()
                .map(|c| format!(", crawled by {} into Glue database {}", c.name, c.database))
                .unwrap_or_default()
        ),
    )
}

/// What one reconcile works with: the payer's pipeline API, what the spec wants, and whose
/// objects it may manage.
struct Target {
    api: Arc<dyn PipelineApi>,
    want: Desired,
    who: Ownership,
    /// The tags every object made gets (the spec's and the owner tag).
    tags: Tags,
    billing_view: Option<String>,
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
    let not_ready =
        |message: String| Error::waiting(reasons::DEPENDENCY_NOT_READY, message, DEPENDENCY_RETRY);
    let group = ctx
        .catalog
        .get::<crate::api::BillingGroup>(&namespace, &group_ref.name)
        .ok_or_else(|| {
            not_ready(format!(
                "BillingGroup {namespace}/{} does not exist",
                group_ref.name
            ))
        })?;
    if group.status.as_ref().and_then(|s| s.arn.as_ref()).is_none() {
        return Err(not_ready(format!(
            "BillingGroup {namespace}/{} is not created in AWS yet",
            group_ref.name
        )));
    }
    // The pro forma view is named after the primary account; a TRANSFER_BILLING group has
    // none (its billing view is not modelled here).
    let Some(primary) = group.spec.primary_account.as_deref() else {
        return Err(Error::terminal(
            reasons::INVALID_SPEC,
            format!(
                "BillingGroup {namespace}/{} is a TRANSFER_BILLING group without a primary account; export.billingGroupRef takes a STANDARD group",
                group_ref.name
            ),
        ));
    };
    let account = crate::billing::billing_group::resolve_account(
        primary,
        &ctx.catalog
            .get::<crate::api::LinkedAccount>(&namespace, primary)
            .into_iter()
            .collect::<Vec<_>>(),
    )
    .map_err(|m| {
        not_ready(format!(
            "the primary account of BillingGroup {namespace}/{}: {m}",
            group_ref.name
        ))
    })?;
    Ok(Some(format!(
        "arn:aws:billing::{payer}:billingview/billing-group-{account}"
    )))
}

/// The payer's connection and what `obj` wants of it.
async fn resolve(obj: &CurPipeline, ctx: &ReconcileContext) -> Result<Target, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let (_key, payer, conn) = payer_connection(&namespace, &obj.spec.payer_ref, ctx).await?;
    let account = payer.spec.account_id.clone();
    let billing_view = billing_view(obj, ctx, &account)?;
    let owner = owner_value(&namespace, "CurPipeline", &obj.name_any());
    Ok(Target {
        api: conn.pipeline.clone(),
        want: desired(obj, &account, billing_view.clone()),
        tags: with_owner(&obj.spec.tags, &owner),
        who: Ownership {
            marker: owner_marker(&namespace, &obj.name_any()),
            owner,
            adopt: obj.spec.adopt,
        },
        billing_view,
    })
}

/// Read the export or report definition of the spec's name. A report definition's tags are
/// read when the status (`claimed_as`, the report name it holds) does not show it as this
/// pipeline's yet.
async fn observe_export(
    t: &Target,
    claimed_as: Option<&str>,
    seen: &mut Observation,
) -> Result<(), Error> {
    match &t.want.export {
        DesiredExport::DataExport(def) => {
            seen.export = t.api.find_export(&def.name).await?;
        }
        DesiredExport::LegacyCur(def) => {
            seen.report = t.api.find_report(&def.name).await?;
            if seen.report.is_some() && claimed_as != Some(def.name.as_str()) {
                seen.report_tags = Some(t.api.report_tags(&def.name).await?);
            }
        }
    }
    Ok(())
}

/// Read what AWS holds for the pipeline. The objects under the spec's names come first, and
/// an object that is not this pipeline's (or a missing bucket it may not create, or a policy
/// it cannot read) stops the reading there: [`plan`] refuses it anyway, and nothing more is
/// asked of AWS for a pipeline that cannot proceed.
async fn observe(t: &Target, status: &CurPipelineStatus) -> Result<Observation, Error> {
    let mut seen = Observation::default();
    observe_export(t, status.export_arn.as_deref(), &mut seen).await?;
    claim_export(&t.want, &seen, &t.who)?;
    if let Some(crawler) = &t.want.crawler {
        seen.crawler = t.api.crawler(&t.want.region, &crawler.name).await?;
        claim_crawler(&t.want, &seen, &t.who)?;
    }
    seen.bucket_exists = t.api.bucket_exists(&t.want.region, &t.want.bucket).await?;
    require_bucket(&t.want, seen.bucket_exists)?;
    if seen.bucket_exists {
        seen.policy = t.api.bucket_policy(&t.want.region, &t.want.bucket).await?;
        merge_policy(seen.policy.as_deref(), &t.want.statement)?;
    }
    if let Some(db) = &t.want.database {
        seen.database_exists = t.api.database(&t.want.region, &db.name).await?.is_some();
    }
    Ok(seen)
}

/// Carry out one step through [`Run::write`]; the ARN of an export created now.
async fn carry_out(t: &Target, step: &Step, run: &mut Run) -> Result<Option<String>, Error> {
    let (api, want, tags) = (&t.api, &t.want, &t.tags);
    let (region, bucket) = (want.region.as_str(), want.bucket.as_str());
    let change = step.change(want);
    let created_arn = match step {
        Step::CreateBucket => {
            run.write(change, || api.create_bucket(region, bucket, tags))
                .await?;
            None
        }
        Step::PutBucketPolicy { document, .. } => {
            run.write(change, || api.put_bucket_policy(region, bucket, document))
                .await?;
            None
        }
        Step::CreateExport(def) => run.write(change, || api.create_export(def, tags)).await?,
        Step::UpdateExport { arn, def, .. } => {
            run.write(change, || api.update_export(arn, def)).await?;
            None
        }
        Step::PutReport(def) => {
            run.write(change, || api.put_report(def, tags)).await?;
            None
        }
        Step::AdoptReport { name } => {
            run.write(change, || api.tag_report(name, tags)).await?;
            None
        }
        Step::ModifyReport(def) => {
            run.write(change, || api.modify_report(def)).await?;
            None
        }
        Step::CreateDatabase(db) => {
            run.write(change, || api.create_database(region, db, tags))
                .await?;
            None
        }
        Step::CreateCrawler(def) => {
            run.write(change, || api.create_crawler(region, def, tags))
                .await?;
            None
        }
        Step::UpdateCrawler { def, .. } => {
            run.write(change, || api.update_crawler(region, def))
                .await?;
            None
        }
    };
    Ok(created_arn)
}

/// Carry out `steps` in order, stopping at the first failed write.
async fn execute(t: &Target, steps: &[Step], run: &mut Run) -> (Done, Result<(), Error>) {
    let mut done = Done {
        applied: run.applying(),
        ..Done::default()
    };
    for step in steps {
        match carry_out(t, step, run).await {
            Ok(arn) => {
                if arn.is_some() {
                    done.export_arn = arn;
                }
                done.completed += 1;
            }
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

/// Reconcile a CurPipeline.
pub async fn reconcile(
    obj: &CurPipeline,
    ctx: &ReconcileContext,
    mut run: Run,
) -> KindOutcome<CurPipelineStatus> {
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut delivered = None;
    let result = converge(obj, ctx, &mut run, &mut status, &mut delivered).await;
    let extra: Vec<DesiredCondition> = delivered.into_iter().collect();
    run.finish(&previous, status, result, &extra, obj.metadata.generation)
}

/// Observe, plan, execute, and derive the status and the `Delivered` condition.
async fn converge(
    obj: &CurPipeline,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut CurPipelineStatus,
    delivered: &mut Option<DesiredCondition>,
) -> Result<Verdict, Error> {
    let t = resolve(obj, ctx).await?;
    status.bucket = Some(t.want.bucket.clone());
    status.data_path = Some(t.want.data_path.clone());
    status.billing_view_arn = t.billing_view.clone();
    let seen = observe(&t, status).await?;
    let steps = plan(&t.want, &seen, &t.who)?;
    let (done, written) = execute(&t, &steps, run).await;
    settle(status, &t.want, &seen, &steps, &done, run.time());
    written?;
    if !run.applying() && !run.changes().is_empty() {
        return Ok(Verdict::blocked(
            reasons::PLANNED_ONLY,
            format!("{} change(s) would be made", run.changes().len()),
        ));
    }
    // Delivery: AWS writes the first files within a day of the export's creation.
    let has_files = done.bucket_ready(&seen, &steps)
        && t.api
            .has_objects(&t.want.region, &t.want.bucket, &t.want.data_prefix)
            .await?;
    let since = status
        .export_since
        .clone()
        .unwrap_or_else(|| run.timestamp().to_string());
    let overdue = first_delivery_overdue(since.parse().ok(), run.time());
    *delivered = Some(delivered_condition(
        has_files,
        overdue,
        &since,
        &t.want.data_path,
    ));
    Ok(verdict(obj.spec.export.kind, &t.want, status))
}

/// What deleting a pipeline finds in AWS under the spec's names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Remains {
    pub export: Option<ExportInfo>,
    pub report_exists: bool,
    /// The report definition's tags: read only when it exists and the status does not show
    /// it as this pipeline's.
    pub report_tags: Option<Tags>,
    pub crawler: Option<CrawlerInfo>,
    pub database: Option<GlueDatabase>,
}

/// One deletion, in the order they are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    Export { name: String, arn: String },
    Report { name: String },
    Crawler { name: String },
    Database { name: String },
}

impl Removal {
    /// The change this deletion makes. Pure.
    pub fn change(&self) -> Change {
        match self {
            Removal::Export { name, .. } => {
                change(ChangeAction::Delete, format!("data-export/{name}"), "")
            }
            Removal::Report { name } => {
                change(ChangeAction::Delete, format!("cur-report/{name}"), "")
            }
            Removal::Crawler { name } => {
                change(ChangeAction::Delete, format!("glue-crawler/{name}"), "")
            }
            Removal::Database { name } => change(
                ChangeAction::Delete,
                format!("glue-database/{name}"),
                "its tables go with it; the data in S3 stays",
            ),
        }
    }
}

/// Read what a deletion may remove (`claimed`: the status shows the report definition as
/// this pipeline's).
async fn observe_remains(
    obj: &CurPipeline,
    api: &dyn PipelineApi,
    claimed: bool,
) -> Result<Remains, Error> {
    let mut seen = Remains::default();
    let name = &obj.spec.export.name;
    match obj.spec.export.kind {
        ExportKind::DataExport => seen.export = api.find_export(name).await?,
        ExportKind::LegacyCur => {
            seen.report_exists = api.find_report(name).await?.is_some();
            if seen.report_exists && !claimed {
                seen.report_tags = Some(api.report_tags(name).await?);
            }
        }
    }
    if let Some(glue) = &obj.spec.glue {
        let region = obj.spec.s3.region();
        seen.crawler = api.crawler(region, &glue.name).await?;
        seen.database = api.database(region, &glue.database).await?;
    }
    Ok(seen)
}

/// What a deletion removes: the export (or report definition), the crawler and the
/// database of `spec`'s names, each only when it is this pipeline's (its marker, or for a
/// report definition the status — `claimed` — or its owner tag). The bucket, its policy and
/// its data are never deleted. Pure.
pub fn plan_release(
    spec: &CurPipelineSpec,
    seen: &Remains,
    who: &Ownership,
    claimed: bool,
) -> Vec<Removal> {
    let mut out = Vec::new();
    let name = &spec.export.name;
    if let Some(found) = &seen.export
        && carries_marker(&found.def.description, &who.marker)
    {
        out.push(Removal::Export {
            name: name.clone(),
            arn: found.arn.clone(),
        });
    }
    let tagged = |tags: &Tags| tags.get(OWNER_TAG) == Some(&who.owner);
    if seen.report_exists && (claimed || seen.report_tags.as_ref().is_some_and(tagged)) {
        out.push(Removal::Report { name: name.clone() });
    }
    let Some(glue) = &spec.glue else {
        return out;
    };
    if let Some(found) = &seen.crawler
        && carries_marker(&found.def.description, &who.marker)
    {
        out.push(Removal::Crawler {
            name: glue.name.clone(),
        });
    }
    if let Some(found) = &seen.database
        && carries_marker(&found.description, &who.marker)
    {
        out.push(Removal::Database {
            name: glue.database.clone(),
        });
    }
    out
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
    run.cleanup(
        obj.status.as_ref(),
        obj.metadata.generation,
        |_| false,
        async |run, _| release(obj, ctx, run).await,
    )
    .await
}

/// Carry out one deletion through [`Run::write`].
async fn remove(
    api: &dyn PipelineApi,
    region: &str,
    removal: &Removal,
    run: &mut Run,
) -> Result<(), Error> {
    let change = removal.change();
    match removal {
        Removal::Export { arn, .. } => run.write(change, || api.delete_export(arn)).await?,
        Removal::Report { name } => run.write(change, || api.delete_report(name)).await?,
        Removal::Crawler { name } => {
            run.write(change, || api.delete_crawler(region, name))
                .await?
        }
        Removal::Database { name } => {
            run.write(change, || api.delete_database(region, name))
                .await?
        }
    };
    Ok(())
}

/// The deletion (see [`cleanup`]).
async fn release(
    obj: &CurPipeline,
    ctx: &ReconcileContext,
    run: &mut Run,
) -> Result<Verdict, Error> {
    if obj.spec.deletion_policy == PipelineDeletionPolicy::Retain {
        return Ok(Verdict::ready(
            reasons::RETAINED,
            "deletionPolicy Retain: the export, crawler and database stay in AWS",
        ));
    }
    let namespace = obj.namespace().unwrap_or_default();
    if ctx
        .catalog
        .get::<crate::api::Payer>(&namespace, &obj.spec.payer_ref.name)
        .is_none()
    {
        return Ok(Verdict::ready(
            reasons::PAYER_GONE,
            "the Payer no longer exists; nothing in AWS was deleted",
        ));
    }
    let (_key, _payer, conn) = payer_connection(&namespace, &obj.spec.payer_ref, ctx).await?;
    let api = conn.pipeline.as_ref();
    let who = Ownership {
        owner: owner_value(&namespace, "CurPipeline", &obj.name_any()),
        marker: owner_marker(&namespace, &obj.name_any()),
        adopt: obj.spec.adopt,
    };
    let claimed = obj.status.as_ref().and_then(|s| s.export_arn.as_deref())
        == Some(obj.spec.export.name.as_str());
    let seen = observe_remains(obj, api, claimed).await?;
    let removals = plan_release(&obj.spec, &seen, &who, claimed);
    for removal in &removals {
        remove(api, obj.spec.s3.region(), removal, run).await?;
    }
    Ok(released(&removals))
}

/// The verdict of a finished deletion. Pure.
pub fn released(removals: &[Removal]) -> Verdict {
    let deleted: Vec<String> = removals.iter().map(|r| r.change().target).collect();
    Verdict::ready(
        reasons::DELETED,
        if deleted.is_empty() {
            "nothing of this pipeline's was in AWS (objects of its names that others own are left alone); the bucket and its data are kept".to_string()
        } else {
            format!(
                "deleted {}; the bucket and its data are kept",
                deleted.join(", ")
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::pipeline::LastCrawl;

    fn pipeline(yaml_spec: &str) -> CurPipeline {
        serde_saphyr::from_str(&format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: CurPipeline\nmetadata: {{name: main, namespace: acme}}\nspec:\n  payerRef: {{name: payer}}\n{yaml_spec}"
        ))
        .unwrap()
    }

    fn with_glue() -> CurPipeline {
        pipeline(
            "  export: {name: acme-cur}\n  s3: {bucket: acme-cur, create: true}\n  glue: {database: acme_cur, name: acme-crawler, roleArn: 'arn:aws:iam::111111111111:role/Crawler'}\n  deletionPolicy: Delete\n",
        )
    }

    fn who() -> Ownership {
        Ownership {
            owner: owner_value("acme", "CurPipeline", "main"),
            marker: owner_marker("acme", "main"),
            adopt: false,
        }
    }

    fn export_def(want: &Desired) -> ExportDef {
        match &want.export {
            DesiredExport::DataExport(def) => def.clone(),
            DesiredExport::LegacyCur(_) => panic!("a data export"),
        }
    }

    /// What AWS holds once `want` is in place.
    fn converged(want: &Desired) -> Observation {
        Observation {
            export: Some(ExportInfo {
                arn: "arn:aws:bcm-data-exports:us-east-1:111111111111:export/acme-cur".into(),
                def: export_def(want),
                health: Some("HEALTHY".into()),
                health_reason: None,
            }),
            crawler: want.crawler.clone().map(|def| CrawlerInfo {
                def,
                state: "READY".into(),
                last_crawl: None,
            }),
            bucket_exists: true,
            policy: merge_policy(None, &want.statement).unwrap(),
            database_exists: true,
            ..Observation::default()
        }
    }

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn from_nothing_every_object_is_made_in_order() {
        let want = desired(&with_glue(), "111111111111", None);
        let steps = plan(&want, &Observation::default(), &who()).unwrap();
        let targets: Vec<String> = steps.iter().map(|s| s.change(&want).target).collect();
        assert_eq!(
            targets,
            [
                "s3-bucket/acme-cur",
                "s3-bucket-policy/acme-cur",
                "data-export/acme-cur",
                "glue-database/acme_cur",
                "glue-crawler/acme-crawler",
            ]
        );
        assert_eq!(steps[1].change(&want).action, ChangeAction::Create);
        let parts: Vec<Part> = steps.iter().map(Step::part).collect();
        assert!(parts.is_sorted(), "{parts:?}");
    }

    #[test]
    fn a_converged_pipeline_plans_nothing_and_drift_is_one_update() {
        let want = desired(&with_glue(), "111111111111", None);
        let mut seen = converged(&want);
        assert_eq!(plan(&want, &seen, &who()).unwrap(), []);
        if let Some(c) = seen.crawler.as_mut() {
            c.def.schedule = "cron(0 12 * * ? *)".into();
        }
        let steps = plan(&want, &seen, &who()).unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].change(&want).detail,
            "schedule \"cron(0 12 * * ? *)\" -> \"cron(30 2 * * ? *)\""
        );
    }

    #[test]
    fn foreign_objects_and_a_missing_bucket_are_refused() {
        let want = desired(&with_glue(), "111111111111", None);
        let mut seen = converged(&want);
        if let Some(c) = seen.crawler.as_mut() {
            c.def.description = "the data team's crawler".into();
        }
        assert_eq!(
            plan(&want, &seen, &who()).unwrap_err().reason(),
            "AdoptionRequired"
        );
        let adopting = Ownership {
            adopt: true,
            ..who()
        };
        assert_eq!(plan(&want, &seen, &adopting).unwrap().len(), 1);
        let mut own = desired(&with_glue(), "111111111111", None);
        own.create_bucket = false;
        let e = plan(&own, &Observation::default(), &who()).unwrap_err();
        assert_eq!(e.reason(), "BucketNotFound");
        assert!(e.to_string().contains("spec.s3.create: true"), "{e}");
    }

    #[test]
    fn a_legacy_report_without_owner_tag_is_adopted_with_adopt() {
        let p = pipeline("  export: {kind: LegacyCur, name: legacy}\n  s3: {bucket: b-1}\n");
        let want = desired(&p, "111111111111", None);
        let DesiredExport::LegacyCur(def) = &want.export else {
            panic!("legacy")
        };
        let seen = Observation {
            report: Some(def.clone()),
            report_tags: Some(Tags::new()),
            bucket_exists: true,
            policy: merge_policy(None, &want.statement).unwrap(),
            ..Observation::default()
        };
        assert_eq!(
            plan(&want, &seen, &who()).unwrap_err().reason(),
            "AdoptionRequired"
        );
        let adopting = Ownership {
            adopt: true,
            ..who()
        };
        let steps = plan(&want, &seen, &adopting).unwrap();
        assert_eq!(
            steps,
            [Step::AdoptReport {
                name: "legacy".into()
            }]
        );
        assert_eq!(
            steps[0].change(&want).detail,
            "adopt: add the partnerbilling.io/owner tag"
        );
    }

    #[test]
    fn a_failed_write_leaves_the_later_parts_of_the_status_alone() {
        let want = desired(&with_glue(), "111111111111", None);
        let seen = Observation::default();
        let steps = plan(&want, &seen, &who()).unwrap();
        let now = at("2026-12-01T10:00:00Z");
        // CreateDatabase (step 3) failed: the export is settled, Glue is not.
        let done = Done {
            completed: 3,
            applied: true,
            export_arn: Some("arn:export".into()),
        };
        let mut status = CurPipelineStatus::default();
        settle(&mut status, &want, &seen, &steps, &done, now);
        assert_eq!(status.export_arn.as_deref(), Some("arn:export"));
        assert_eq!(status.export_since.as_deref(), Some("2026-12-01T10:00:00Z"));
        assert_eq!(status.glue_database, None);
        // The bucket policy failed: nothing is settled.
        let mut status = CurPipelineStatus::default();
        let done = Done {
            completed: 1,
            ..done
        };
        settle(&mut status, &want, &seen, &steps, &done, now);
        assert_eq!(status, CurPipelineStatus::default());
        // All done: the crawler is READY.
        let done = Done {
            completed: steps.len(),
            ..done
        };
        settle(&mut status, &want, &seen, &steps, &done, now);
        assert_eq!(status.crawler_state.as_deref(), Some("READY"));
        assert_eq!(status.glue_database.as_deref(), Some("acme_cur"));
        assert!(done.bucket_ready(&seen, &steps));
    }

    #[test]
    fn a_failed_crawl_or_an_unhealthy_export_blocks() {
        let want = desired(&with_glue(), "111111111111", None);
        let mut seen = converged(&want);
        if let Some(c) = seen.crawler.as_mut() {
            c.last_crawl = Some(LastCrawl {
                status: "FAILED".into(),
                error_message: Some("access denied".into()),
                started_at: None,
            });
        }
        let done = Done {
            applied: true,
            ..Done::default()
        };
        let mut status = CurPipelineStatus::default();
        settle(
            &mut status,
            &want,
            &seen,
            &[],
            &done,
            at("2026-12-01T10:00:00Z"),
        );
        let v = verdict(ExportKind::DataExport, &want, &status);
        assert_eq!(
            (v.reason.as_str(), v.message.as_str()),
            ("CrawlFailed", "the last crawl failed: access denied")
        );
        status.export_health = Some("UNHEALTHY".into());
        assert_eq!(
            verdict(ExportKind::DataExport, &want, &status).reason,
            "ExportUnhealthy"
        );
    }

    #[test]
    fn the_first_delivery_is_awaited_for_a_day() {
        let since = at("2026-12-01T10:00:00Z");
        assert!(!first_delivery_overdue(
            Some(since),
            at("2026-12-02T10:00:00Z")
        ));
        assert!(first_delivery_overdue(
            Some(since),
            at("2026-12-02T10:00:01Z")
        ));
        assert!(first_delivery_overdue(None, since), "unreadable: overdue");
        let c = delivered_condition(false, false, "2026-12-01T10:00:00Z", "s3://b/p/");
        assert_eq!(c.reason, "AwaitingFirstDelivery");
        let c = delivered_condition(false, true, "2026-12-01T10:00:00Z", "s3://b/p/");
        assert_eq!(c.reason, "NotDelivered");
        let c = delivered_condition(true, true, "2026-12-01T10:00:00Z", "s3://b/p/");
        assert_eq!(c.status, ConditionStatus::True);
    }

    #[test]
    fn a_release_removes_only_what_carries_this_pipelines_marker() {
        let p = with_glue();
        let want = desired(&p, "111111111111", None);
        let seen = converged(&want);
        let mut remains = Remains {
            export: seen.export.clone(),
            crawler: seen.crawler.clone(),
            database: want.database.clone(),
            ..Remains::default()
        };
        let removals = plan_release(&p.spec, &remains, &who(), false);
        let v = released(&removals);
        assert_eq!(
            v.message,
            "deleted data-export/acme-cur, glue-crawler/acme-crawler, glue-database/acme_cur; the bucket and its data are kept"
        );
        if let Some(db) = remains.database.as_mut() {
            db.description = owner_marker("acme", "other");
        }
        remains.export = None;
        remains.crawler = None;
        assert_eq!(plan_release(&p.spec, &remains, &who(), false), []);
        assert!(
            released(&[])
                .message
                .starts_with("nothing of this pipeline's")
        );
    }

    #[test]
    fn a_report_definition_is_released_when_claimed_or_tagged() {
        let p = pipeline(
            "  export: {kind: LegacyCur, name: legacy}\n  s3: {bucket: b-1}\n  deletionPolicy: Delete\n",
        );
        let mut remains = Remains {
            report_exists: true,
            report_tags: Some(Tags::new()),
            ..Remains::default()
        };
        assert_eq!(plan_release(&p.spec, &remains, &who(), false), []);
        let report = [Removal::Report {
            name: "legacy".into(),
        }];
        assert_eq!(plan_release(&p.spec, &remains, &who(), true), report);
        remains.report_tags = Some(with_owner(&Tags::new(), &who().owner));
        assert_eq!(plan_release(&p.spec, &remains, &who(), false), report);
    }
}
