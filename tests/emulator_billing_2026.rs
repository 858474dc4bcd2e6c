//! Billing Conductor of 2025-26 against the emulator, through the real AWS SDK and file mode:
//! a TRANSFER_BILLING group priced with `Passthrough` for an accepted BillingTransfer, the
//! `Passthrough` plan refused on a standard group before any call, ITEMIZED and SERVICE-filtered
//! custom line items (the sixth ITEMIZED item of a group refused before any call), and each
//! group's cost by service in status and Prometheus, to the cent.

mod common;

use common::{Dir, connector, find, status};

use std::sync::Arc;
use std::time::Duration;

use partner_billing_operator::filemode::{self, Report};
use partner_billing_operator::metrics::Metrics;
use partner_billing_operator::payer::insights::InsightsStore;
use serde_json::{Value, json};

const ACCESS_KEY: &str = "AKIAPBOBC2026000001";
const SECRET_KEY: &str = "pbo-bc2026-test-secret";
const BC: &str = "/_emulator/services/billingconductor/";

fn payer(insights: &str) -> String {
    format!(
        "{}{insights}",
        common::payer_yaml("billing", ACCESS_KEY, SECRET_KEY)
    )
}

async fn apply(emu: &common::Emulator, dir: &Dir, insights: Arc<InsightsStore>) -> Report {
    let manifests = common::load(std::slice::from_ref(&dir.0), "billing");
    filemode::apply_with_insights(manifests, connector(emu), Duration::from_secs(20), insights)
        .await
}

/// The emulator, held for this test alone, with the payer's organization of `members`
/// member accounts (their ids, sorted).
async fn organization(members: usize) -> common::HeldOrganization {
    common::organization_with_members(ACCESS_KEY, SECRET_KEY, members).await
}

fn periods() -> (String, String) {
    let now = partner_billing_operator::time::now_rfc3339();
    let current = partner_billing_operator::time::billing_period(&now);
    let previous = partner_billing_operator::time::previous_period(&current);
    (current, previous)
}

/// A folder with the payer (insights on, every 6 hours), the plan `plan` and the group
/// `customer` (primary account `primary`) priced by it.
fn customer_with_insights(primary: &str) -> Dir {
    let dir = Dir::new();
    dir.write(
        "payer.yaml",
        &payer("  insights: {enabled: true, refreshInterval: 6h}\n"),
    );
    dir.write("plan.yaml", PLAN);
    dir.write(
        "group.yaml",
        &group_yaml(
            "customer",
            &format!("  primaryAccount: \"{primary}\"\n  pricingPlanRef: {{name: plan}}\n"),
        ),
    );
    dir
}

fn group_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: BillingGroup\nmetadata: {{name: {name}, namespace: billing, uid: uid-{name}}}\nspec:\n  payerRef: {{name: acme}}\n{spec}"
    )
}

fn item_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: CustomLineItem\nmetadata: {{name: {name}, namespace: billing, uid: uid-{name}}}\nspec:\n  billingGroupRef: {{name: customer}}\n  description: {name}\n  type: FEE\n{spec}"
    )
}

const PLAN: &str = "apiVersion: partnerbilling.io/v1alpha1\nkind: PricingPlan\nmetadata: {name: plan, namespace: billing, uid: uid-plan}\nspec:\n  payerRef: {name: acme}\n  rules:\n    - {name: markup, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}\n";

fn groups(emu: &common::Emulator) -> Vec<Value> {
    let out = emu.control("POST", &format!("{BC}stats"), Some(json!({})));
    vec![out["groups"].clone()]
}

#[tokio::test]
async fn a_transfer_billing_group_with_passthrough_follows_its_accepted_transfer() {
    let (emu, _guard, _ids) = organization(0).await;
    let (current, _) = periods();
    let dir = Dir::new();
    dir.write("payer.yaml", &payer(""));
    // Two months ahead: at least 24 hours away on any day of this month.
    let start = {
        let (y, m) = current.split_once('-').unwrap();
        let (y, m): (i32, u32) = (y.parse().unwrap(), m.parse().unwrap());
        let (y, m) = if m >= 11 { (y + 1, m - 10) } else { (y, m + 2) };
        format!("{y:04}-{m:02}-01T00:00:00Z")
    };
    dir.write(
        "transfer.yaml",
        &format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: BillingTransfer\nmetadata: {{name: globex, namespace: billing, uid: uid-globex}}\nspec:\n  payerRef: {{name: acme}}\n  customer: {{accountId: \"777788889999\"}}\n  start: \"{start}\"\n"
        ),
    );
    dir.write(
        "group.yaml",
        &group_yaml(
            "globex",
            "  type: TRANSFER_BILLING\n  responsibilityTransferRef: {name: globex}\n  pricingPlanRef: {name: Passthrough}\n  description: Globex, billed as AWS bills it\n",
        ),
    );
    let store = Arc::new(InsightsStore::default());
    let r = apply(emu, &dir, store.clone()).await;
    let waiting = find(&r, "BillingGroup", "globex");
    assert!(!waiting.ready, "{waiting:?}");
    assert_eq!(waiting.reason, "TransferNotAccepted", "{waiting:?}");
    assert_eq!(emu.count("billingconductor", "CreateBillingGroup"), 0);

    let transfer_id = status(&r, "BillingTransfer", "globex")["transferId"]
        .as_str()
        .unwrap()
        .to_string();
    emu.control(
        "POST",
        "/_emulator/services/transfers/accept",
        Some(json!({"transferId": transfer_id})),
    );
    // A fresh run (file mode keeps no status): the transfer is found again, ACCEPTED.
    let r = apply(emu, &dir, store.clone()).await;
    let group = find(&r, "BillingGroup", "globex");
    assert!(group.ready, "{group:?}");
    let transfer_arn = status(&r, "BillingTransfer", "globex")["transferArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        status(&r, "BillingGroup", "globex")["responsibilityTransferArn"],
        transfer_arn.as_str()
    );
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let bc = aws_sdk_billingconductor::Client::new(&cfg);
    let listed = bc.list_billing_groups().send().await.unwrap();
    let [g] = listed.billing_groups() else {
        panic!("one group: {listed:?}");
    };
    assert_eq!(
        g.billing_group_type().map(|t| t.as_str()),
        Some("TRANSFER_BILLING")
    );
    assert_eq!(
        g.account_grouping()
            .and_then(|a| a.responsibility_transfer_arn()),
        Some(transfer_arn.as_str())
    );
    assert_eq!(
        g.computation_preference().map(|c| c.pricing_plan_arn()),
        Some("arn:aws:billingconductor::aws:pricingplan/Passthrough")
    );
    assert_eq!(g.primary_account_id(), None);

    // Converged: a third run writes nothing.
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir, store).await;
    assert!(find(&r, "BillingGroup", "globex").ready);
    for op in [
        "CreateBillingGroup",
        "UpdateBillingGroup",
        "AssociateAccounts",
    ] {
        assert_eq!(emu.count("billingconductor", op), 0, "{op}");
    }
    assert_eq!(groups(emu), vec![json!(1)]);
}

#[tokio::test]
async fn passthrough_on_a_standard_group_is_refused_before_any_call() {
    let (emu, _guard, ids) = organization(1).await;
    let dir = Dir::new();
    dir.write("payer.yaml", &payer(""));
    dir.write(
        "group.yaml",
        &group_yaml(
            "customer",
            &format!(
                "  primaryAccount: \"{}\"\n  pricingPlanRef: {{name: Passthrough}}\n",
                ids[0]
            ),
        ),
    );
    let r = apply(emu, &dir, Arc::default()).await;
    let refused = find(&r, "BillingGroup", "customer");
    assert!(!refused.ready);
    assert_eq!(refused.reason, "PlanNotAllowed", "{refused:?}");
    assert!(refused.message.contains("TRANSFER_BILLING"), "{refused:?}");
    for op in ["ListBillingGroups", "CreateBillingGroup"] {
        assert_eq!(emu.count("billingconductor", op), 0, "{op}");
    }
    // BasicPricingPlan is fine on a standard group.
    dir.write(
        "group.yaml",
        &group_yaml(
            "customer",
            &format!(
                "  primaryAccount: \"{}\"\n  pricingPlanRef: {{name: BasicPricingPlan}}\n",
                ids[0]
            ),
        ),
    );
    let r = apply(emu, &dir, Arc::default()).await;
    assert!(find(&r, "BillingGroup", "customer").ready);
}

#[tokio::test]
async fn itemized_and_service_filtered_items_converge_and_the_sixth_itemized_is_refused() {
    let (emu, _guard, ids) = organization(1).await;
    let dir = Dir::new();
    dir.write("payer.yaml", &payer(""));
    dir.write("plan.yaml", PLAN);
    dir.write(
        "group.yaml",
        &group_yaml(
            "customer",
            &format!(
                "  primaryAccount: \"{}\"\n  pricingPlanRef: {{name: plan}}\n",
                ids[0]
            ),
        ),
    );
    for i in 1..=6 {
        dir.write(
            &format!("itemized-{i}.yaml"),
            &item_yaml(
                &format!("itemized-{i}"),
                "  percentage: {percent: 1}\n  computationRule: ITEMIZED\n",
            ),
        );
    }
    dir.write(
        "ec2-only.yaml",
        &item_yaml(
            "ec2-only",
            "  percentage: {percent: 3}\n  lineItemFilter: {attribute: SERVICE, matchOption: EQUAL, value: AmazonEC2}\n  presentationService: AmazonEC2\n",
        ),
    );
    let r = apply(emu, &dir, Arc::default()).await;
    for i in 1..=5 {
        assert!(
            find(&r, "CustomLineItem", &format!("itemized-{i}")).ready,
            "{:?}",
            find(&r, "CustomLineItem", &format!("itemized-{i}"))
        );
    }
    let sixth = find(&r, "CustomLineItem", "itemized-6");
    assert!(!sixth.ready);
    assert_eq!(sixth.reason, "QuotaExceeded", "{sixth:?}");
    assert!(sixth.message.contains("5 ITEMIZED"), "{sixth:?}");
    assert!(find(&r, "CustomLineItem", "ec2-only").ready);
    // Five ITEMIZED items and the filtered one were created; the sixth never reached AWS.
    assert_eq!(emu.count("billingconductor", "CreateCustomLineItem"), 6);

    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let bc = aws_sdk_billingconductor::Client::new(&cfg);
    let item = |name: &'static str| {
        let bc = bc.clone();
        async move {
            bc.list_custom_line_items()
                .filters(
                    aws_sdk_billingconductor::types::ListCustomLineItemsFilter::builder()
                        .names(name)
                        .build(),
                )
                .send()
                .await
                .unwrap()
                .custom_line_items()[0]
                .clone()
        }
    };
    let itemized = item("itemized-1").await;
    assert_eq!(
        itemized.computation_rule().map(|r| r.as_str()),
        Some("ITEMIZED")
    );
    let ec2 = item("ec2-only").await;
    let filter = &ec2.charge_details().unwrap().line_item_filters()[0];
    assert_eq!(
        (
            filter.attribute().as_str(),
            filter.match_option().as_str(),
            filter.attribute_values()
        ),
        ("SERVICE", "EQUAL", &["AmazonEC2".to_string()][..])
    );
    assert_eq!(
        ec2.presentation_details().map(|p| p.service()),
        Some("AmazonEC2")
    );

    // The filter changes in place (UpdateCustomLineItem); nothing else is written again.
    dir.write(
        "ec2-only.yaml",
        &item_yaml(
            "ec2-only",
            "  percentage: {percent: 3}\n  lineItemFilter: {attribute: SERVICE, matchOption: NOT_EQUAL, value: AmazonS3}\n  presentationService: AmazonEC2\n",
        ),
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir, Arc::default()).await;
    assert!(find(&r, "CustomLineItem", "ec2-only").ready);
    assert_eq!(
        find(&r, "CustomLineItem", "itemized-6").reason,
        "QuotaExceeded"
    );
    assert_eq!(emu.count("billingconductor", "UpdateCustomLineItem"), 1);
    assert_eq!(emu.count("billingconductor", "CreateCustomLineItem"), 0);
    let ec2 = item("ec2-only").await;
    let filter = &ec2.charge_details().unwrap().line_item_filters()[0];
    assert_eq!(
        (filter.match_option().as_str(), filter.attribute_values()),
        ("NOT_EQUAL", &["AmazonS3".to_string()][..])
    );
}

#[tokio::test]
async fn cost_by_service_matches_the_seeded_usage_to_the_cent() {
    let (emu, _guard, ids) = organization(1).await;
    let (current, previous) = periods();
    let customer = &ids[0];
    emu.control(
        "POST",
        &format!("{BC}usage"),
        Some(json!({"period": current, "rows": [
            {"accountId": customer, "service": "AmazonEC2", "onDemandCost": 100.10, "awsCost": 90.05},
            {"accountId": customer, "service": "AmazonEC2", "onDemandCost": 0.01, "awsCost": 0.01},
            {"accountId": customer, "service": "AmazonS3", "onDemandCost": 33.33, "awsCost": 33.33},
            {"accountId": customer, "service": "AWSLambda", "onDemandCost": 0.07, "awsCost": 0.07}
        ]})),
    );
    emu.control(
        "POST",
        &format!("{BC}usage"),
        Some(json!({"period": previous, "rows": [
            {"accountId": customer, "service": "AmazonS3", "onDemandCost": 10.00, "awsCost": 9.99}
        ]})),
    );
    let dir = customer_with_insights(customer);
    let metrics = Metrics::shared();
    let r = apply(emu, &dir, metrics.insights.clone()).await;
    assert!(find(&r, "BillingGroup", "customer").ready);
    let by = &status(&r, "BillingGroup", "customer")["costByService"];
    assert_eq!(by["currentPeriod"], current.as_str());
    // GLOBAL markup 10% on On-Demand: EC2 (100.10 + 0.01) x 1.1 = 110.121 -> 110.12.
    assert_eq!(
        by["current"],
        json!([
            {"service": "AmazonEC2", "awsCost": "90.06", "proformaCost": "110.12", "margin": "20.06"},
            {"service": "AmazonS3", "awsCost": "33.33", "proformaCost": "36.66", "margin": "3.33"},
            {"service": "AWSLambda", "awsCost": "0.07", "proformaCost": "0.08", "margin": "0.01"}
        ])
    );
    assert_eq!(
        by["previous"],
        json!([{"service": "AmazonS3", "awsCost": "9.99", "proformaCost": "11.00", "margin": "1.01"}])
    );
    // One read per period, each for this group alone.
    assert_eq!(
        emu.count("billingconductor", "GetBillingGroupCostReport"),
        2
    );
    let exposed = metrics.encode();
    for needle in [
        format!(
            "partnerbilling_billing_group_service_proforma_cost_usd{{billing_group=\"billing/customer\",payer=\"billing/acme\",period=\"{current}\",service=\"AmazonEC2\"}} 110.12"
        ),
        format!(
            "partnerbilling_billing_group_service_aws_cost_usd{{billing_group=\"billing/customer\",payer=\"billing/acme\",period=\"{previous}\",service=\"AmazonS3\"}} 9.99"
        ),
    ] {
        assert!(exposed.contains(&needle), "{needle} not in\n{exposed}");
    }
}

#[test]
fn the_examples_load_with_a_transfer_group_and_an_itemized_filtered_item() {
    use partner_billing_operator::api::billing_group::BillingGroupType;
    use partner_billing_operator::api::{BillingGroup, CustomLineItem};
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let manifests = filemode::load(
        &[
            root.clone(),
            root.join("billing-transfer/billing-transfer.yaml"),
            root.join("billing-transfer/transfer-billing-group.yaml"),
        ],
        "default",
    )
    .unwrap_or_else(|problems| panic!("the examples are not valid: {problems:#?}"));
    let groups = manifests.of::<BillingGroup>();
    let globex = groups
        .iter()
        .find(|g| g.spec.type_ == BillingGroupType::TransferBilling)
        .expect("the transfer billing group example");
    assert_eq!(
        globex.spec.pricing_plan_ref.aws_managed(),
        Some("Passthrough")
    );
    assert_eq!(
        globex
            .spec
            .responsibility_transfer_ref
            .as_ref()
            .unwrap()
            .name,
        "globex"
    );
    let items = manifests.of::<CustomLineItem>();
    assert!(items.iter().any(|i| i.spec.line_item_filter.is_some()
        && i.spec.computation_rule
            == Some(partner_billing_operator::api::custom_line_item::ComputationRule::Itemized)));
}

#[tokio::test]
async fn a_failed_cost_by_service_read_keeps_the_group_ready_and_is_not_retried_at_once() {
    let (emu, _guard, ids) = organization(1).await;
    let (current, _) = periods();
    emu.control(
        "POST",
        &format!("{BC}usage"),
        Some(json!({"period": current, "rows": [
            {"accountId": ids[0], "service": "AmazonEC2", "onDemandCost": 10, "awsCost": 10}
        ]})),
    );
    let dir = customer_with_insights(&ids[0]);
    emu.control(
        "POST",
        "/_emulator/faults",
        Some(json!({"kind": "server_error", "service": "billingconductor", "operation": "GetBillingGroupCostReport"})),
    );
    let store = Arc::new(InsightsStore::default());
    let r = apply(emu, &dir, store.clone()).await;
    assert!(find(&r, "BillingGroup", "customer").ready);
    assert!(
        status(&r, "BillingGroup", "customer")
            .get("costByService")
            .is_none()
    );
    let tried = emu.count("billingconductor", "GetBillingGroupCostReport");
    assert!(tried >= 1);
    // AWS answers again, but the failure is 15 minutes old at the earliest: no new read.
    emu.control("DELETE", "/_emulator/faults", None);
    let r = apply(emu, &dir, store).await;
    assert!(find(&r, "BillingGroup", "customer").ready);
    assert_eq!(
        emu.count("billingconductor", "GetBillingGroupCostReport"),
        tried
    );
    // Another process (no failure remembered) reads it.
    let r = apply(emu, &dir, Arc::default()).await;
    assert_eq!(
        status(&r, "BillingGroup", "customer")["costByService"]["current"][0]["proformaCost"],
        "11.00"
    );
}
