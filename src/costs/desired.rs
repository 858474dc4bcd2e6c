//! What a CurPipeline wants in AWS, computed from its spec alone: the export (BCM Data
//! Exports, CUR 2.0) or legacy report definition, the bucket and its delivery statement, the
//! Glue database and crawler; the ownership marker its objects carry in their descriptions;
//! and the drift between an object found in AWS and the wanted one, in words. Pure.

use kube::ResourceExt;
use serde_json::Value;

use crate::api::CurPipeline;
use crate::api::common::owner_value;
use crate::api::cur_pipeline::ExportKind;
use crate::aws::pipeline::{CrawlerDef, ExportDef, GlueDatabase, ReportDef};
use crate::error::Error;
use crate::reconcile::reasons;

use super::bucket_policy::delivery_statement;

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

/// How every ownership marker begins.
const MARKER_PREFIX: &str = "Managed by partner-billing-operator (";

/// The marker in descriptions that says which object manages an AWS object.
pub fn owner_marker(namespace: &str, name: &str) -> String {
    format!(
        "{MARKER_PREFIX}{})",
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
    if description.contains(MARKER_PREFIX) {
        return Err(Error::terminal(
            reasons::OWNED_ELSEWHERE,
            format!(
                "{what} is managed by another CurPipeline ({description}); choose another {field}"
            ),
        ));
    }
    if adopt {
        return Ok(());
    }
    Err(Error::terminal(
        reasons::ADOPTION_REQUIRED,
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
    /// Whether the operator may create the bucket (`spec.s3.create`).
    pub create_bucket: bool,
    /// Key prefix the data lands under (for the delivery check).
    pub data_prefix: String,
    /// `s3://bucket/<data_prefix>`, the crawler's target.
    pub data_path: String,
    pub statement: Value,
    pub export: DesiredExport,
    pub database: Option<GlueDatabase>,
    pub crawler: Option<CrawlerDef>,
}

/// The export (or report definition) `obj` wants, and the key prefix its data lands under.
fn desired_export(
    obj: &CurPipeline,
    marker: &str,
    billing_view: Option<String>,
) -> (DesiredExport, String) {
    let spec = &obj.spec;
    let bucket = spec.s3.bucket.clone();
    let prefix = spec.s3.prefix().to_string();
    let region = spec.s3.region().to_string();
    let name = spec.export.name.clone();
    match spec.export.kind {
        ExportKind::DataExport => (
            DesiredExport::DataExport(ExportDef {
                name: name.clone(),
                description: marker.to_string(),
                query: query(spec.export.include_resource_ids),
                granularity: spec.export.time_granularity.aws().to_string(),
                include_resources: spec.export.include_resource_ids,
                billing_view_arn: billing_view,
                bucket,
                prefix: prefix.clone(),
                region,
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
                bucket,
                prefix: prefix.clone(),
                region,
                artifacts: vec!["ATHENA".into()],
                refresh_closed_reports: true,
                versioning: "OVERWRITE_REPORT".into(),
                billing_view_arn: billing_view,
            }),
            format!("{prefix}/{name}/{name}/"),
        ),
    }
}

/// The Glue database and crawler `obj` wants (none without `spec.glue`).
fn desired_glue(
    obj: &CurPipeline,
    marker: &str,
    data_path: &str,
) -> (Option<GlueDatabase>, Option<CrawlerDef>) {
    let Some(glue) = &obj.spec.glue else {
        return (None, None);
    };
    (
        Some(GlueDatabase {
            name: glue.database.clone(),
            description: marker.to_string(),
        }),
        Some(CrawlerDef {
            name: glue.name.clone(),
            role: glue.role_arn.clone(),
            database: glue.database.clone(),
            description: marker.to_string(),
            path: data_path.to_string(),
            exclusions: EXCLUSIONS.iter().map(|s| s.to_string()).collect(),
            schedule: glue.schedule().to_string(),
            update_behavior: "UPDATE_IN_DATABASE".into(),
            delete_behavior: "DELETE_FROM_DATABASE".into(),
        }),
    )
}

/// What `obj` wants for payer account `payer`, exporting `billing_view` if given. Pure.
pub fn desired(obj: &CurPipeline, payer: &str, billing_view: Option<String>) -> Desired {
    let spec = &obj.spec;
    let marker = owner_marker(&obj.namespace().unwrap_or_default(), &obj.name_any());
    let bucket = spec.s3.bucket.clone();
    let (export, data_prefix) = desired_export(obj, &marker, billing_view);
    let data_path = format!("s3://{bucket}/{data_prefix}");
    let (database, crawler) = desired_glue(obj, &marker, &data_path);
    Desired {
        statement: delivery_statement(spec.export.kind, &bucket, payer),
        region: spec.s3.region().to_string(),
        create_bucket: spec.s3.create,
        bucket,
        data_prefix,
        data_path,
        export,
        database,
        crawler,
    }
}

/// What differs between the export found in AWS and the wanted one, in words.
pub fn describe_export_drift(have: &ExportDef, want: &ExportDef) -> String {
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

/// What differs between the crawler found in AWS and the wanted one, in words.
pub fn describe_crawler_drift(have: &CrawlerDef, want: &CrawlerDef) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!d.create_bucket);
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

    #[test]
    fn a_legacy_report_lands_under_its_name_twice() {
        let p = pipeline(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: CurPipeline\nmetadata: {name: main, namespace: acme}\nspec:\n  payerRef: {name: payer}\n  export: {kind: LegacyCur, name: legacy}\n  s3: {bucket: b-1, create: true}\n",
        );
        let d = desired(&p, "111111111111", Some("arn:view".into()));
        assert_eq!(d.data_prefix, "cur/legacy/legacy/");
        assert!(d.create_bucket);
        assert_eq!(d.database, None);
        let DesiredExport::LegacyCur(r) = &d.export else {
            panic!("legacy report")
        };
        assert_eq!(r.billing_view_arn.as_deref(), Some("arn:view"));
        assert_eq!(r.artifacts, ["ATHENA"]);
    }
}
