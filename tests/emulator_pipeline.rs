//! CurPipeline and cost insights against the emulator (moto S3/Glue/Cost Explorer plus the
//! project's Data Exports, CUR and Glue UpdateCrawler), through the real AWS SDK and file mode.

mod common;

use common::{Dir, connector, find, status};

use std::sync::Arc;
use std::time::Duration;

use partner_billing_operator::filemode::{self, Report};
use partner_billing_operator::metrics::Metrics;
use partner_billing_operator::payer::insights::{InsightsStore, months_back};
use serde_json::{Value, json};

const ACCESS_KEY: &str = "AKIAPBOPIPE000000001";
const SECRET_KEY: &str = "pbo-pipeline-test-secret";
const PAYER_ID: &str = "123456789012";

const WRITES: &[(&str, &str)] = &[
    ("s3", "CreateBucket"),
    ("s3", "PutBucketPolicy"),
    ("s3", "PutBucketTagging"),
    ("bcm-data-exports", "CreateExport"),
    ("bcm-data-exports", "UpdateExport"),
    ("bcm-data-exports", "DeleteExport"),
    ("cur", "PutReportDefinition"),
    ("cur", "ModifyReportDefinition"),
    ("glue", "CreateDatabase"),
    ("glue", "CreateCrawler"),
    ("glue", "UpdateCrawler"),
];

fn payer(insights: &str) -> String {
    format!(
        "{}{insights}",
        common::payer_yaml("billing", ACCESS_KEY, SECRET_KEY)
    )
}

fn pipeline(name: &str, extra_export: &str, s3: &str, glue: bool) -> String {
    let glue = if glue {
        "  glue:\n    database: acme_cur\n    name: acme-cur-crawler\n    roleArn: arn:aws:iam::123456789012:role/GlueCrawler\n"
    } else {
        ""
    };
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: CurPipeline\nmetadata: {{name: {name}, namespace: billing}}\nspec:\n  payerRef: {{name: acme}}\n  export:\n    name: {name}\n{extra_export}  s3:\n{s3}{glue}"
    )
}

/// The emulator, held for this test alone (its state reset), with an organization of the
/// payer and `members` member accounts; the payer's SDK config.
async fn organization(
    members: usize,
) -> (
    &'static common::Emulator,
    tokio::sync::MutexGuard<'static, ()>,
    aws_config::SdkConfig,
) {
    let emu = common::emulator();
    let guard = emu.lock().await;
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    emu.create_organization(&cfg, members).await;
    (emu, guard, cfg)
}

/// A scratch folder holding the payer (insights off) and its credentials.
fn payer_dir() -> Dir {
    let dir = Dir::new();
    dir.write("payer.yaml", &payer(""));
    dir
}

/// The `spec.s3` of a pipeline whose bucket the operator creates.
fn created_bucket(bucket: &str) -> String {
    format!("    bucket: {bucket}\n    create: true\n")
}

async fn apply_with(emu: &common::Emulator, dir: &Dir, insights: Arc<InsightsStore>) -> Report {
    let manifests =
        filemode::load(std::slice::from_ref(&dir.0), "billing").unwrap_or_else(|p| panic!("{p:?}"));
    filemode::apply_with_insights(manifests, connector(emu), Duration::from_secs(20), insights)
        .await
}

async fn apply(emu: &common::Emulator, dir: &Dir) -> Report {
    apply_with(emu, dir, Arc::default()).await
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no condition {type_} in {status}"))
}

fn writes(emu: &common::Emulator) -> Vec<(String, u64)> {
    WRITES
        .iter()
        .map(|(s, o)| (format!("{s}:{o}"), emu.count(s, o)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn s3(emu: &common::Emulator) -> aws_sdk_s3::Client {
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&cfg)
            .force_path_style(true)
            .build(),
    )
}

async fn policy(emu: &common::Emulator, bucket: &str) -> Value {
    let text = s3(emu)
        .await
        .get_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_pipeline_converges_from_nothing_and_a_second_apply_writes_nothing() {
    let (emu, _guard, cfg) = organization(0).await;
    let dir = payer_dir();
    dir.write(
        "cur.yaml",
        &pipeline("acme-cur", "", &created_bucket("acme-cur-reports"), true),
    );
    let first = apply(emu, &dir).await;
    let p = find(&first, "CurPipeline", "acme-cur");
    assert!(p.ready, "{p:#?}");
    let st = status(&first, "CurPipeline", "acme-cur");
    assert_eq!(
        condition(st, "Delivered")["reason"],
        "AwaitingFirstDelivery"
    );
    assert_eq!(st["exportHealth"], "HEALTHY");
    assert_eq!(st["dataPath"], "s3://acme-cur-reports/cur/acme-cur/data/");
    assert_eq!(
        writes(emu),
        vec![
            ("s3:CreateBucket".to_string(), 1),
            ("s3:PutBucketPolicy".to_string(), 1),
            ("s3:PutBucketTagging".to_string(), 1),
            ("bcm-data-exports:CreateExport".to_string(), 1),
            ("glue:CreateDatabase".to_string(), 1),
            ("glue:CreateCrawler".to_string(), 1),
        ]
    );
    // The policy lets exactly the Data Exports principal write, for this payer only.
    let pol = policy(emu, "acme-cur-reports").await;
    let statements = pol["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(s["Principal"]["Service"], "bcm-data-exports.amazonaws.com");
    assert_eq!(
        s["Condition"]["ArnLike"]["aws:SourceArn"],
        "arn:aws:bcm-data-exports:us-east-1:123456789012:export/*"
    );
    assert_eq!(
        s["Condition"]["StringEquals"]["aws:SourceAccount"],
        PAYER_ID
    );
    // The crawler targets the export's path with the usual exclusions and policy.
    let glue = aws_sdk_glue::Client::new(&cfg);
    let crawler = glue
        .get_crawler()
        .name("acme-cur-crawler")
        .send()
        .await
        .unwrap()
        .crawler
        .unwrap();
    let target = &crawler.targets.unwrap().s3_targets.unwrap()[0];
    assert_eq!(
        target.path.as_deref(),
        Some("s3://acme-cur-reports/cur/acme-cur/data/")
    );
    assert_eq!(target.exclusions.as_ref().unwrap().len(), 6);
    assert_eq!(
        crawler.schedule.unwrap().schedule_expression.as_deref(),
        Some("cron(30 2 * * ? *)")
    );

    emu.control("DELETE", "/_emulator/requests", None);
    let second = apply(emu, &dir).await;
    assert!(
        find(&second, "CurPipeline", "acme-cur").ready,
        "{:#?}",
        find(&second, "CurPipeline", "acme-cur")
    );
    assert_eq!(writes(emu), vec![], "a converged pipeline makes no writes");

    // AWS delivers: the condition says so.
    let arn = st["exportArn"].as_str().unwrap().to_string();
    emu.control(
        "POST",
        "/_emulator/services/bcm-data-exports/deliver",
        Some(json!({"arn": arn})),
    );
    let third = apply(emu, &dir).await;
    let st = status(&third, "CurPipeline", "acme-cur");
    assert_eq!(condition(st, "Delivered")["status"], "True");
}

#[tokio::test]
async fn an_unrelated_bucket_policy_statement_is_kept() {
    let (emu, _guard, _) = organization(0).await;
    let client = s3(emu).await;
    client
        .create_bucket()
        .bucket("shared-bucket")
        .send()
        .await
        .unwrap();
    let audit = json!({"Sid": "AuditorsRead", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared-bucket/*"});
    client
        .put_bucket_policy()
        .bucket("shared-bucket")
        .policy(json!({"Version": "2012-10-17", "Statement": [audit.clone()]}).to_string())
        .send()
        .await
        .unwrap();
    emu.control("DELETE", "/_emulator/requests", None);
    let dir = payer_dir();
    dir.write(
        "cur.yaml",
        &pipeline("shared", "", "    bucket: shared-bucket\n", false),
    );
    let r = apply(emu, &dir).await;
    assert!(find(&r, "CurPipeline", "shared").ready, "{r:#?}");
    assert_eq!(emu.count("s3", "CreateBucket"), 0);
    let pol = policy(emu, "shared-bucket").await;
    let statements = pol["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{pol}");
    assert_eq!(statements[0], audit, "the unrelated statement is untouched");
    assert_eq!(
        statements[1]["Sid"],
        "PartnerBillingBcmDataExports123456789012"
    );

    // Without create: true a missing bucket is a clear terminal condition, and nothing is made.
    let dir2 = payer_dir();
    dir2.write(
        "cur.yaml",
        &pipeline("nobucket", "", "    bucket: not-there\n", false),
    );
    let r = apply(emu, &dir2).await;
    let p = find(&r, "CurPipeline", "nobucket");
    assert!(!p.ready);
    assert_eq!(p.reason, "BucketNotFound");
    assert!(p.message.contains("spec.s3.create: true"), "{}", p.message);
    assert_eq!(emu.count("s3", "CreateBucket"), 0);
}

#[tokio::test]
async fn crawler_drift_is_corrected() {
    let (emu, _guard, cfg) = organization(0).await;
    let dir = payer_dir();
    dir.write(
        "cur.yaml",
        &pipeline("drift", "", &created_bucket("drift-bucket"), true),
    );
    assert!(find(&apply(emu, &dir).await, "CurPipeline", "drift").ready);
    emu.control(
        "POST",
        "/_emulator/services/glue/set-schedule",
        Some(json!({"name": "acme-cur-crawler", "schedule": "cron(0 12 * * ? *)"})),
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    assert!(find(&r, "CurPipeline", "drift").ready);
    assert_eq!(writes(emu), vec![("glue:UpdateCrawler".to_string(), 1)]);
    let glue = aws_sdk_glue::Client::new(&cfg);
    let crawler = glue
        .get_crawler()
        .name("acme-cur-crawler")
        .send()
        .await
        .unwrap()
        .crawler
        .unwrap();
    assert_eq!(
        crawler.schedule.unwrap().schedule_expression.as_deref(),
        Some("cron(30 2 * * ? *)")
    );
}

#[tokio::test]
async fn an_edited_description_that_keeps_the_marker_is_corrected_not_refused() {
    let (emu, _guard, cfg) = organization(0).await;
    let dir = payer_dir();
    dir.write(
        "cur.yaml",
        &pipeline("edited", "", &created_bucket("edited-bucket"), true),
    );
    assert!(find(&apply(emu, &dir).await, "CurPipeline", "edited").ready);
    let glue = aws_sdk_glue::Client::new(&cfg);
    let description = || async {
        glue.get_crawler()
            .name("acme-cur-crawler")
            .send()
            .await
            .unwrap()
            .crawler
            .unwrap()
            .description
            .unwrap_or_default()
    };
    let marker = description().await;
    glue.update_crawler()
        .name("acme-cur-crawler")
        .description(format!("CUR crawler of the finance team. {marker}"))
        .send()
        .await
        .unwrap();
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    let o = find(&r, "CurPipeline", "edited");
    assert!(o.ready, "{o:?}");
    assert_eq!(writes(emu), vec![("glue:UpdateCrawler".to_string(), 1)]);
    assert_eq!(description().await, marker);
}

#[tokio::test]
async fn a_billing_group_export_uses_its_primary_accounts_billing_view_and_legacy_cur_works() {
    let (emu, _guard, cfg) = organization(1).await;
    let orgs = aws_sdk_organizations::Client::new(&cfg);
    let member = orgs
        .list_accounts()
        .send()
        .await
        .unwrap()
        .accounts
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.id)
        .find(|id| id != PAYER_ID)
        .unwrap();
    let dir = payer_dir();
    dir.write(
        "billing.yaml",
        &format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: PricingPlan\nmetadata: {{name: plan, namespace: billing}}\nspec:\n  payerRef: {{name: acme}}\n  rules:\n    - {{name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}}\n---\napiVersion: partnerbilling.io/v1alpha1\nkind: BillingGroup\nmetadata: {{name: customer, namespace: billing}}\nspec:\n  payerRef: {{name: acme}}\n  primaryAccount: \"{member}\"\n  pricingPlanRef: {{name: plan}}\n"
        ),
    );
    dir.write(
        "cur.yaml",
        &pipeline(
            "customer-cur",
            "    billingGroupRef: {name: customer}\n",
            &created_bucket("customer-cur"),
            false,
        ),
    );
    dir.write(
        "legacy.yaml",
        &pipeline(
            "legacy-cur",
            "    kind: LegacyCur\n    timeGranularity: Hourly\n",
            &created_bucket("legacy-cur"),
            false,
        ),
    );
    let metrics = Metrics::shared();
    let r = apply_with(emu, &dir, metrics.insights.clone()).await;
    assert!(find(&r, "BillingGroup", "customer").ready, "{r:#?}");
    // The group's AWS cost, pro forma cost and margin are exposed for Prometheus.
    let exposed = metrics.encode();
    for family in [
        "billing_group_aws_cost_usd",
        "billing_group_proforma_cost_usd",
        "billing_group_margin_usd",
    ] {
        let needle = format!(
            "partnerbilling_{family}{{billing_group=\"billing/customer\",payer=\"billing/acme\",period=\""
        );
        assert!(exposed.contains(&needle), "missing {needle} in\n{exposed}");
    }
    assert!(find(&r, "CurPipeline", "customer-cur").ready, "{r:#?}");
    let view = format!("arn:aws:billing::{PAYER_ID}:billingview/billing-group-{member}");
    assert_eq!(
        status(&r, "CurPipeline", "customer-cur")["billingViewArn"],
        view
    );
    let exports = emu.control(
        "POST",
        "/_emulator/services/bcm-data-exports/list",
        Some(json!({})),
    );
    let export = &exports["exports"][0];
    assert_eq!(
        export["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]["BILLING_VIEW_ARN"],
        view
    );
    // Legacy CUR: the report definition with the Athena artifact, and the CUR principal.
    assert!(find(&r, "CurPipeline", "legacy-cur").ready, "{r:#?}");
    assert_eq!(emu.count("cur", "PutReportDefinition"), 1);
    let pol = policy(emu, "legacy-cur").await;
    assert_eq!(
        pol["Statement"][0]["Principal"]["Service"],
        "billingreports.amazonaws.com"
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let again = apply(emu, &dir).await;
    assert!(find(&again, "CurPipeline", "legacy-cur").ready);
    assert_eq!(writes(emu), vec![], "second apply writes nothing");
}

#[tokio::test]
async fn a_crawler_made_outside_the_operator_is_taken_over_only_with_adopt() {
    let (emu, _guard, cfg) = organization(0).await;
    let glue = aws_sdk_glue::Client::new(&cfg);
    glue.create_crawler()
        .name("acme-cur-crawler")
        .role("arn:aws:iam::123456789012:role/Someone")
        .database_name("theirs")
        .description("the data team's crawler")
        .targets(
            aws_sdk_glue::types::CrawlerTargets::builder()
                .s3_targets(
                    aws_sdk_glue::types::S3Target::builder()
                        .path("s3://elsewhere/data/")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let dir = payer_dir();
    let bucket = &created_bucket("adopt-bucket");
    dir.write("cur.yaml", &pipeline("adopt", "", bucket, true));
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    let p = find(&r, "CurPipeline", "adopt");
    assert!(!p.ready);
    assert_eq!(p.reason, "AdoptionRequired", "{p:#?}");
    assert!(
        p.message.contains("crawler acme-cur-crawler") && p.message.contains("spec.adopt: true"),
        "{}",
        p.message
    );
    assert_eq!(writes(emu), vec![], "refused before anything was written");

    // With spec.adopt the crawler is taken over: marked as this pipeline's and corrected.
    dir.write(
        "cur.yaml",
        &pipeline("adopt", "", &format!("{bucket}  adopt: true\n"), true),
    );
    let r = apply(emu, &dir).await;
    assert!(find(&r, "CurPipeline", "adopt").ready, "{r:#?}");
    let crawler = glue
        .get_crawler()
        .name("acme-cur-crawler")
        .send()
        .await
        .unwrap()
        .crawler
        .unwrap();
    assert_eq!(
        crawler.description.as_deref(),
        Some("Managed by partner-billing-operator (billing/curpipeline/adopt)")
    );
    assert_eq!(crawler.database_name.as_deref(), Some("acme_cur"));
    // Another pipeline naming the same crawler is refused, adopt or not.
    dir.write(
        "other.yaml",
        &pipeline(
            "other",
            "",
            "    bucket: other-bucket\n    create: true\n  adopt: true\n",
            true,
        ),
    );
    let r = apply(emu, &dir).await;
    let o = find(&r, "CurPipeline", "other");
    assert_eq!(o.reason, "OwnedElsewhere", "{o:#?}");
    assert!(
        o.message.contains("billing/curpipeline/adopt"),
        "{}",
        o.message
    );
    assert!(find(&r, "CurPipeline", "adopt").ready);
}

fn legacy(name: &str, export: &str, extra: &str) -> String {
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: CurPipeline\nmetadata: {{name: {name}, namespace: billing}}\nspec:\n  payerRef: {{name: acme}}\n  export: {{kind: LegacyCur, name: {export}}}\n  s3: {{bucket: legacy-shared, create: true}}\n  deletionPolicy: Delete\n{extra}"
    )
}

async fn report_owner(emu: &common::Emulator, name: &str) -> Option<String> {
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    aws_sdk_costandusagereport::Client::new(&cfg)
        .list_tags_for_resource()
        .report_name(name)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .find(|t| t.key() == "partnerbilling.io/owner")
        .map(|t| t.value().to_string())
}

#[tokio::test]
async fn a_report_definition_owned_elsewhere_is_refused_and_never_deleted() {
    let (emu, _guard, cfg) = organization(0).await;
    let dir = payer_dir();
    dir.write("a.yaml", &legacy("a", "shared-legacy", ""));
    let r = apply(emu, &dir).await;
    assert!(find(&r, "CurPipeline", "a").ready, "{r:#?}");
    assert_eq!(
        report_owner(emu, "shared-legacy").await.as_deref(),
        Some("billing/curpipeline/a")
    );

    // A second pipeline with the same report name is refused, naming the owner.
    dir.write("b.yaml", &legacy("b", "shared-legacy", "  adopt: true\n"));
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    let b = find(&r, "CurPipeline", "b");
    assert_eq!(b.reason, "OwnedElsewhere", "{b:#?}");
    assert!(b.message.contains("billing/curpipeline/a"), "{}", b.message);
    assert_eq!(emu.count("cur", "ModifyReportDefinition"), 0);
    assert!(find(&r, "CurPipeline", "a").ready);

    // Deleting b leaves a's report definition alone.
    let manifests = filemode::load(&[dir.0.join("b.yaml"), dir.0.join("payer.yaml")], "billing")
        .unwrap_or_else(|p| panic!("{p:?}"));
    let d = filemode::delete(manifests, connector(emu), Duration::from_secs(20)).await;
    assert!(find(&d, "CurPipeline", "b").ready, "{d:#?}");
    assert_eq!(emu.count("cur", "DeleteReportDefinition"), 0);
    dir.remove("b.yaml");

    // One made outside the operator (no owner tag) needs spec.adopt, and is then tagged.
    let cur = aws_sdk_costandusagereport::Client::new(&cfg);
    use aws_sdk_costandusagereport::types as t;
    cur.put_report_definition()
        .report_definition(
            t::ReportDefinition::builder()
                .report_name("by-hand")
                .time_unit(t::TimeUnit::Daily)
                .format(t::ReportFormat::Parquet)
                .compression(t::CompressionFormat::Parquet)
                .set_additional_schema_elements(Some(vec![]))
                .s3_bucket("legacy-shared")
                .s3_prefix("cur")
                .s3_region(t::AwsRegion::UsStandard)
                .additional_artifacts(t::AdditionalArtifact::Athena)
                .report_versioning(t::ReportVersioning::OverwriteReport)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    dir.write("hand.yaml", &legacy("hand", "by-hand", ""));
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    let h = find(&r, "CurPipeline", "hand");
    assert_eq!(h.reason, "AdoptionRequired", "{h:#?}");
    assert_eq!(emu.count("cur", "ModifyReportDefinition"), 0);
    assert_eq!(report_owner(emu, "by-hand").await, None);
    dir.write("hand.yaml", &legacy("hand", "by-hand", "  adopt: true\n"));
    let r = apply(emu, &dir).await;
    assert!(find(&r, "CurPipeline", "hand").ready, "{r:#?}");
    assert_eq!(
        report_owner(emu, "by-hand").await.as_deref(),
        Some("billing/curpipeline/hand")
    );
}

/// Cost Explorer results for `months` (oldest first): three accounts, three services.
fn seeded_costs(months: &[String], members: &[String]) -> Value {
    let month_rows = |i: usize| -> Vec<(String, &str, &str)> {
        // Month i: amounts chosen so that floats would drift (x.1 + x.2 ...).
        let scale = (i + 1) as u32;
        vec![
            (PAYER_ID.to_string(), "AWS CloudTrail", "0.1"),
            (
                members[0].clone(),
                "Amazon Elastic Compute Cloud - Compute",
                if scale == 3 { "1200.2" } else { "1000.1" },
            ),
            (members[0].clone(), "Amazon Simple Storage Service", "100.2"),
            (
                members[1].clone(),
                "Amazon Elastic Compute Cloud - Compute",
                if scale == 3 { "300.3" } else { "250.05" },
            ),
            (
                members[1].clone(),
                "Amazon Relational Database Service",
                "399.3500000001",
            ),
        ]
    };
    let results: Vec<Value> = months
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let groups: Vec<Value> = month_rows(i)
                .into_iter()
                .map(|(a, s, v)| json!({"Keys": [a, s], "Metrics": {"UnblendedCost": {"Amount": v, "Unit": "USD"}}}))
                .collect();
            json!({"TimePeriod": {"Start": format!("{m}-01"), "End": "x"}, "Total": {}, "Groups": groups, "Estimated": i + 1 == months.len()})
        })
        .collect();
    json!({"results": [{"ResultsByTime": results, "DimensionValueAttributes": []}]})
}

#[tokio::test]
async fn insights_match_the_seeded_numbers_exactly_and_reach_accounts_and_metrics() {
    let (emu, _guard, cfg) = organization(2).await;
    let members = common::member_ids(&cfg).await;
    let now = partner_billing_operator::time::now_rfc3339();
    let months = months_back(now.parse().unwrap(), 3);
    emu.control(
        "POST",
        "/moto-api/static/ce/cost-and-usage-results",
        Some(seeded_costs(&months, &members)),
    );
    let dir = Dir::new();
    dir.write(
        "payer.yaml",
        &payer("  insights: {enabled: true, refreshInterval: 6h, monthsOfHistory: 3}\n"),
    );
    dir.write(
        "accounts.yaml",
        &format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: LinkedAccount\nmetadata: {{name: first, namespace: billing}}\nspec:\n  payerRef: {{name: acme}}\n  adopt: {{accountId: \"{}\"}}\n---\napiVersion: partnerbilling.io/v1alpha1\nkind: LinkedAccount\nmetadata: {{name: second, namespace: billing}}\nspec:\n  payerRef: {{name: acme}}\n  adopt: {{accountId: \"{}\"}}\n",
            members[0], members[1]
        ),
    );
    let metrics = Metrics::shared();
    let r = apply_with(emu, &dir, metrics.insights.clone()).await;
    let costs = &status(&r, "Payer", "acme")["costs"];
    // Current month: 0.1 + 1200.2 + 100.2 + 300.3 + 399.3500000001 = 2000.1500000001.
    assert_eq!(costs["monthToDate"], "2000.15");
    // Previous month: 0.1 + 1000.1 + 100.2 + 250.05 + 399.3500000001 = 1749.8000000001.
    assert_eq!(costs["previousMonth"], "1749.80");
    // (2000.1500000001 - 1749.8000000001) / 1749.8000000001 = 14.3073...%
    assert_eq!(costs["monthOverMonthPercent"], "14.31");
    assert_eq!(
        costs["months"],
        json!([
            {"month": months[0], "total": "1749.80"},
            {"month": months[1], "total": "1749.80"},
            {"month": months[2], "total": "2000.15"}
        ])
    );
    let top = &costs["topServices"];
    assert_eq!(top[0]["service"], "Amazon Elastic Compute Cloud - Compute");
    assert_eq!(top[0]["monthToDate"], "1500.50");
    assert_eq!(top[0]["sharePercent"], "75.02");
    assert_eq!(top[1]["service"], "Amazon Relational Database Service");
    assert_eq!(top[1]["monthToDate"], "399.35");
    assert_eq!(costs["requestsPerRefresh"], 1);
    assert_eq!(costs["requestsPerMonth"], 120);
    assert_eq!(costs["estimatedMonthlyCostUsd"], "1.20");
    assert_eq!(
        condition(status(&r, "Payer", "acme"), "Insights")["status"],
        "True"
    );
    // The demo's text output shows them.
    let text = partner_billing_operator::filemode::output::apply_text(&r);
    assert!(
        text.contains("cost by service: Amazon Elastic Compute Cloud - Compute 1500.50 (75.02%)"),
        "{text}"
    );
    assert!(text.contains("(+14.31% month over month)"), "{text}");

    let first = &status(&r, "LinkedAccount", "first")["cost"];
    assert_eq!(first["monthToDate"], "1300.40");
    assert_eq!(first["previousMonth"], "1100.30");
    assert_eq!(first["monthOverMonthPercent"], "18.19");
    let second = &status(&r, "LinkedAccount", "second")["cost"];
    assert_eq!(second["monthToDate"], "699.65");
    assert_eq!(second["previousMonth"], "649.40");
    assert_eq!(emu.count("ce", "GetCostAndUsage"), 1);

    let exposed = metrics.encode();
    let month = &months[2];
    for needle in [
        format!(
            "partnerbilling_cost_usd{{payer=\"billing/acme\",payer_account=\"{PAYER_ID}\",month=\"{month}\"}} 2000.1500000001"
        ),
        format!(
            "partnerbilling_account_cost_usd{{payer=\"billing/acme\",payer_account=\"{PAYER_ID}\",month=\"{month}\",account=\"{}\"}} 1300.4",
            members[0]
        ),
        format!(
            "partnerbilling_service_cost_usd{{payer=\"billing/acme\",payer_account=\"{PAYER_ID}\",month=\"{month}\",service=\"Amazon Simple Storage Service\"}} 100.2"
        ),
        "partnerbilling_cost_refresh_age_seconds{payer=\"billing/acme\"".to_string(),
        "partnerbilling_cost_month_over_month_percent{payer=\"billing/acme\"".to_string(),
    ] {
        assert!(exposed.contains(&needle), "missing {needle} in\n{exposed}");
    }
}

#[tokio::test]
async fn the_refresh_interval_bounds_cost_explorer_calls() {
    use partner_billing_operator::payer;
    use partner_billing_operator::reconcile::run::Run;
    use partner_billing_operator::reconcile::{Mode, ReconcileContext};
    let (emu, _guard, _) = organization(0).await;
    let manifests = {
        let dir = Dir::new();
        dir.write(
            "payer.yaml",
            &payer("  insights: {enabled: true, refreshInterval: 6h}\n"),
        );
        filemode::load(std::slice::from_ref(&dir.0), "billing").unwrap()
    };
    let mut p = manifests.of::<partner_billing_operator::api::Payer>()[0].clone();
    let secrets = manifests.secrets;
    let ctx = ReconcileContext::new(connector(emu), Arc::new(secrets));
    // A day of reconciles every 30 minutes: one read at the start, then one per 6 hours.
    let mut reads = Vec::new();
    for half_hours in 0..48 {
        let now = format!(
            "2026-11-24T{:02}:{:02}:00Z",
            half_hours / 2,
            (half_hours % 2) * 30
        );
        let before = emu.count("ce", "GetCostAndUsage");
        let outcome = payer::reconcile(&p, &ctx, Run::at(Mode::Apply, &now)).await;
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
        p.status = Some(outcome.status);
        if emu.count("ce", "GetCostAndUsage") > before {
            reads.push(now);
        }
    }
    assert_eq!(
        reads,
        [
            "2026-11-24T00:00:00Z",
            "2026-11-24T06:00:00Z",
            "2026-11-24T12:00:00Z",
            "2026-11-24T18:00:00Z"
        ]
    );
    // Turned off: the costs go, and no more calls.
    p.spec.insights = None;
    let outcome = payer::reconcile(&p, &ctx, Run::at(Mode::Apply, "2026-11-25T06:00:00Z")).await;
    assert!(outcome.status.costs.is_none());
    assert_eq!(emu.count("ce", "GetCostAndUsage"), 4);
}
