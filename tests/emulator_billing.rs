//! PricingPlan, BillingGroup and CustomLineItem against the emulator's Billing Conductor,
//! through the real AWS SDK and file mode: the worked pricing example end to end, rule
//! replacement, membership by selector and by batches, conflicts, billing periods, crash
//! safety.

mod common;

use common::{Dir, connector, find, status};

use std::sync::Arc;
use std::time::Duration;

use partner_billing_operator::filemode::{self, Report};
use serde_json::json;

const ACCESS_KEY: &str = "AKIAPBOBILL000000001";
const SECRET_KEY: &str = "pbo-billing-test-secret";
const BC: &str = "/_emulator/services/billingconductor/";

async fn apply(emu: &common::Emulator, dir: &Dir) -> Report {
    let manifests = common::load(std::slice::from_ref(&dir.0), "billing");
    filemode::apply(manifests, connector(emu), Duration::from_secs(20)).await
}

/// The emulator, held for this test alone (its state reset), with an organization of the
/// payer and `members` member accounts, and their ids (sorted).
async fn organization(members: usize) -> common::HeldOrganization {
    common::organization_with_members(ACCESS_KEY, SECRET_KEY, members).await
}

fn current_period() -> String {
    partner_billing_operator::time::billing_period(&partner_billing_operator::time::now_rfc3339())
}

fn plan_yaml(name: &str, rules: &str) -> String {
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: PricingPlan\nmetadata: {{name: {name}, namespace: billing, uid: uid-{name}}}\nspec:\n  payerRef: {{name: acme}}\n  rules:\n{rules}"
    )
}

fn group_yaml(name: &str, primary: &str, extra: &str) -> String {
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: BillingGroup\nmetadata: {{name: {name}, namespace: billing, uid: uid-{name}}}\nspec:\n  payerRef: {{name: acme}}\n  primaryAccount: \"{primary}\"\n  pricingPlanRef: {{name: plan}}\n{extra}"
    )
}

const GLOBAL_10: &str =
    "    - {name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}\n";

/// A scratch folder holding the payer and its credentials.
fn payer_dir() -> Dir {
    let dir = Dir::new();
    dir.write(
        "payer.yaml",
        &common::payer_yaml("billing", ACCESS_KEY, SECRET_KEY),
    );
    dir
}

/// The ARN an object's status reports.
fn arn_of(r: &Report, kind: &str, name: &str) -> String {
    status(r, kind, name)["arn"].as_str().unwrap().to_string()
}

#[track_caller]
fn assert_ready(r: &Report, kind: &str, name: &str) {
    assert!(find(r, kind, name).ready, "{:?}", find(r, kind, name));
}

/// None of these Billing Conductor operations was called since the counts were cleared.
#[track_caller]
fn assert_not_called(emu: &common::Emulator, ops: &[&str]) {
    for op in ops {
        assert_eq!(emu.count("billingconductor", op), 0, "{op}");
    }
}

fn bc_stats(emu: &common::Emulator) -> serde_json::Value {
    emu.control("POST", &format!("{BC}stats"), Some(json!({})))
}

const WORKED_RULES: &str = "    - {name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}
    - {name: s3, scope: SERVICE, type: DISCOUNT, service: AmazonS3, modifierPercentage: 5}
    - {name: m5, scope: SKU, type: DISCOUNT, service: AmazonEC2, usageType: 'BoxUsage:m5.large', operation: RunInstances, modifierPercentage: 20}
";

#[tokio::test]
async fn the_worked_example_bills_325_then_367_50_with_two_fees() {
    let (emu, _guard, ids) = organization(1).await;
    let customer = &ids[0];
    emu.control("POST", &format!("{BC}usage"), Some(json!({"period": current_period(), "rows": [
        {"accountId": customer, "service": "AmazonEC2", "usageType": "BoxUsage:m5.large", "operation": "RunInstances", "onDemandCost": 100, "awsCost": 100},
        {"accountId": customer, "service": "AmazonEC2", "usageType": "BoxUsage:t3.micro", "operation": "RunInstances", "onDemandCost": 50, "awsCost": 50},
        {"accountId": customer, "service": "AmazonS3", "usageType": "TimedStorage-ByteHrs", "operation": "StandardStorage", "onDemandCost": 200, "awsCost": 200}
    ]})));
    let dir = payer_dir();
    dir.write("plan.yaml", &plan_yaml("plan", WORKED_RULES));
    dir.write("group.yaml", &group_yaml("customer", customer, ""));
    let r = apply(emu, &dir).await;
    assert_ready(&r, "BillingGroup", "customer");
    let s = status(&r, "BillingGroup", "customer");
    assert_eq!(s["currentPeriod"]["proformaCost"], "325.00", "{s}");
    assert_eq!(s["currentPeriod"]["awsCost"], "350.00");
    assert_eq!(s["currentPeriod"]["margin"], "-25.00");
    assert_eq!(status(&r, "PricingPlan", "plan")["size"], 3);

    dir.write(
        "fees.yaml",
        "apiVersion: partnerbilling.io/v1alpha1\nkind: CustomLineItem\nmetadata: {name: flat-fee, namespace: billing, uid: uid-flat}\nspec:\n  billingGroupRef: {name: customer}\n  description: Support\n  type: FEE\n  flat: {amount: 10}\n---\napiVersion: partnerbilling.io/v1alpha1\nkind: CustomLineItem\nmetadata: {name: pct-fee, namespace: billing, uid: uid-pct}\nspec:\n  billingGroupRef: {name: customer}\n  description: Management\n  type: FEE\n  percentage: {percent: 10}\n",
    );
    let r = apply(emu, &dir).await;
    for item in ["flat-fee", "pct-fee"] {
        assert_ready(&r, "CustomLineItem", item);
    }
    // The group is reconciled before its items in one run; the next run reads the new cost.
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    // Steady state: Billing Conductor is only listed, once per payer, whatever the number of
    // objects (1 plan, 1 group, 2 items here).
    let counts = emu.control("GET", "/_emulator/requests", None);
    let bc: Vec<(String, u64)> = counts["counts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["service"] == "billingconductor")
        .map(|c| {
            (
                c["operation"].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    // Plus one tag audit per object: file mode starts without the statuses that remember the
    // last audit (the controller keeps them, and audits every 6 hours).
    assert!(
        bc.iter().all(|(op, n)| op.starts_with("List")
            && (*n == 1
                || op == "ListBillingGroupCostReports" && *n == 2
                || op == "ListTagsForResource" && *n == 4)),
        "{bc:?}"
    );
    assert_eq!(
        status(&r, "BillingGroup", "customer")["currentPeriod"]["proformaCost"],
        "367.50"
    );
    assert!(
        r.objects.iter().all(|o| o.changes.is_empty()),
        "steady state: {:?}",
        r.objects.iter().map(|o| &o.changes).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn replacing_a_rule_keeps_the_plan_size_and_leaves_no_orphans() {
    let (emu, _guard, ids) = organization(1).await;
    let dir = payer_dir();
    dir.write("plan.yaml", &plan_yaml("plan", "    - {name: svc, scope: SERVICE, type: DISCOUNT, service: AmazonS3, modifierPercentage: 5}\n    - {name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}\n"));
    dir.write("group.yaml", &group_yaml("g", &ids[0], ""));
    let r = apply(emu, &dir).await;
    assert!(find(&r, "PricingPlan", "plan").ready);
    let before = status(&r, "PricingPlan", "plan")["ruleArns"]["svc"].clone();
    emu.control("DELETE", "/_emulator/requests", None);

    // The service cannot be updated in AWS: the rule is replaced.
    dir.write("plan.yaml", &plan_yaml("plan", "    - {name: svc, scope: SERVICE, type: DISCOUNT, service: AmazonEC2, modifierPercentage: 5}\n    - {name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 12}\n"));
    let r = apply(emu, &dir).await;
    let plan = find(&r, "PricingPlan", "plan");
    assert!(plan.ready, "{plan:?}");
    let after = status(&r, "PricingPlan", "plan")["ruleArns"]["svc"].clone();
    assert_ne!(before, after, "a new rule");
    let stats = bc_stats(emu);
    assert_eq!(stats["rules"], 2, "no orphan rule: {stats}");
    assert_eq!(emu.count("billingconductor", "CreatePricingRule"), 1);
    assert_eq!(emu.count("billingconductor", "DeletePricingRule"), 1);
    assert_eq!(
        emu.count("billingconductor", "UpdatePricingRule"),
        1,
        "the percentage is updated in place"
    );
    // Created and associated before the old one was disassociated and deleted.
    let counts = emu.control("GET", "/_emulator/requests", None);
    let ops: Vec<&str> = counts["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["operation"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"AssociatePricingRules") && ops.contains(&"DisassociatePricingRules"),
        "{ops:?}"
    );
    let r = apply(emu, &dir).await;
    assert_eq!(status(&r, "PricingPlan", "plan")["size"], 2);
    assert!(find(&r, "PricingPlan", "plan").changes.is_empty());
}

#[tokio::test]
async fn membership_by_selector_follows_labels_conflicts_are_stable_and_65_accounts_take_3_calls() {
    // 3 accounts for the selector groups, 65 more (members of the organization: AWS refuses
    // others) for the big one.
    let (emu, _guard, ids) = organization(68).await;
    let dir = payer_dir();
    dir.write("plan.yaml", &plan_yaml("plan", GLOBAL_10));
    let la = |name: &str, id: &str, family: &str| {
        format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: LinkedAccount\nmetadata: {{name: {name}, namespace: billing, labels: {{family: {family}}}}}\nspec:\n  payerRef: {{name: acme}}\n  adopt: {{accountId: \"{id}\"}}\n"
        )
    };
    dir.write("a.yaml", &la("a", &ids[0], "blue"));
    dir.write("b.yaml", &la("b", &ids[1], "blue"));
    dir.write("c.yaml", &la("c", &ids[2], "green"));
    dir.write(
        "blue.yaml",
        &group_yaml(
            "blue",
            "a",
            "  accountSelector: {matchLabels: {family: blue}}\n",
        ),
    );
    let r = apply(emu, &dir).await;
    assert_ready(&r, "BillingGroup", "blue");
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(status(&r, "BillingGroup", "blue")["members"], json!(want));

    // Relabel: b leaves, c joins.
    dir.write("b.yaml", &la("b", &ids[1], "green"));
    dir.write("c.yaml", &la("c", &ids[2], "blue"));
    let r = apply(emu, &dir).await;
    let mut want = vec![ids[0].clone(), ids[2].clone()];
    want.sort();
    assert_eq!(status(&r, "BillingGroup", "blue")["members"], json!(want));

    // A second group wants c too: reported on both, never moved.
    dir.write(
        "green.yaml",
        &group_yaml("green", "b", &format!("  accounts: [\"{}\"]\n", ids[2])),
    );
    let r = apply(emu, &dir).await;
    let green = find(&r, "BillingGroup", "green");
    assert!(!green.ready);
    assert_eq!(green.reason, "AccountConflict");
    assert!(green.message.contains("blue"), "{}", green.message);
    assert!(
        status(&r, "BillingGroup", "blue")["conflicts"][&ids[2]]
            .as_str()
            .unwrap()
            .contains("green")
    );
    emu.control("DELETE", "/_emulator/requests", None);
    for _ in 0..2 {
        apply(emu, &dir).await;
    }
    assert_eq!(
        emu.count("billingconductor", "AssociateAccounts"),
        0,
        "stable: nothing moves"
    );
    assert_eq!(emu.count("billingconductor", "DisassociateAccounts"), 0);

    // 65 accounts: the create call carries 30, then 30 and 5.
    let many: Vec<String> = ids[3..].to_vec();
    assert_eq!(many.len(), 65);
    dir.remove("green.yaml");
    dir.write(
        "big.yaml",
        &group_yaml(
            "big",
            &many[0],
            &format!(
                "  accounts: {}\n",
                serde_json::to_string(&many[1..]).unwrap()
            ),
        ),
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let before = bc_stats(emu)["accountCallSizes"].as_array().unwrap().len();
    let r = apply(emu, &dir).await;
    assert_ready(&r, "BillingGroup", "big");
    assert_eq!(status(&r, "BillingGroup", "big")["size"], 65);
    let sizes = bc_stats(emu)["accountCallSizes"].clone();
    assert_eq!(sizes.as_array().unwrap()[before..], [json!(30), json!(5)]);
    assert_eq!(
        emu.count("billingconductor", "CreateBillingGroup")
            + emu.count("billingconductor", "AssociateAccounts"),
        3
    );
}

#[tokio::test]
async fn custom_line_items_only_in_open_periods() {
    let (emu, _guard, ids) = organization(1).await;
    let current = current_period();
    let previous = partner_billing_operator::time::previous_period(&current);
    let closed = partner_billing_operator::time::previous_period(&previous);
    let dir = payer_dir();
    dir.write("plan.yaml", &plan_yaml("plan", GLOBAL_10));
    dir.write("group.yaml", &group_yaml("g", &ids[0], ""));
    let item = |name: &str, start: &str| {
        format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: CustomLineItem\nmetadata: {{name: {name}, namespace: billing}}\nspec:\n  billingGroupRef: {{name: g}}\n  description: fee\n  type: FEE\n  flat: {{amount: 5}}\n  billingPeriod: {{start: \"{start}\"}}\n"
        )
    };
    dir.write("now.yaml", &item("now", &current));
    dir.write("last.yaml", &item("last", &previous));
    dir.write("old.yaml", &item("old", &closed));
    let r = apply(emu, &dir).await;
    assert_ready(&r, "CustomLineItem", "now");
    assert_ready(&r, "CustomLineItem", "last");
    let old = find(&r, "CustomLineItem", "old");
    assert!(!old.ready);
    assert_eq!(old.reason, "PeriodClosed");
    assert!(
        old.message.contains(&closed) && old.message.contains(&previous),
        "{}",
        old.message
    );
    assert_eq!(
        emu.count("billingconductor", "CreateCustomLineItem"),
        2,
        "the closed one was never sent"
    );
}

#[tokio::test]
async fn a_crash_after_create_billing_group_leaves_one_group() {
    use partner_billing_operator::api::BillingGroup;
    use partner_billing_operator::billing::billing_group;
    use partner_billing_operator::reconcile::run::Run;
    use partner_billing_operator::reconcile::{Mode, ReconcileContext};
    let (emu, _guard, ids) = organization(1).await;
    let dir = payer_dir();
    dir.write("plan.yaml", &plan_yaml("plan", GLOBAL_10));
    let r = apply(emu, &dir).await;
    assert!(find(&r, "PricingPlan", "plan").ready);
    dir.write("group.yaml", &group_yaml("g", &ids[0], ""));
    // One reconcile creates the group; its status is lost (the process dies before writing it).
    let manifests = filemode::load(std::slice::from_ref(&dir.0), "billing").unwrap();
    let group = manifests.of::<BillingGroup>()[0].clone();
    let catalog = Arc::new(manifests.catalog());
    let ctx = || {
        ReconcileContext::new(
            connector(emu),
            Arc::new(partner_billing_operator::secrets::StaticSecrets::default()),
        )
        .with_catalog(catalog.clone())
    };
    // Credentials come from the manifests' Secret.
    let first =
        billing_group::reconcile(&group, &with_secret(ctx(), &dir), Run::now(Mode::Apply)).await;
    assert!(first.result.is_ok(), "{:?}", first.result);
    assert_eq!(emu.count("billingconductor", "CreateBillingGroup"), 1);
    // Restart: a new process, no status, no caches.
    let again =
        billing_group::reconcile(&group, &with_secret(ctx(), &dir), Run::now(Mode::Apply)).await;
    assert!(
        again.result.as_ref().is_ok_and(|v| v.ready),
        "{:?}",
        again.result
    );
    assert_eq!(emu.count("billingconductor", "CreateBillingGroup"), 1);
    let stats = bc_stats(emu);
    assert_eq!(stats["groups"], 1);
}

async fn bc_client(emu: &common::Emulator) -> aws_sdk_billingconductor::Client {
    aws_sdk_billingconductor::Client::new(&emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await)
}

/// Tags of a Billing Conductor object, read straight from the emulator.
async fn tags_of(emu: &common::Emulator, arn: &str) -> std::collections::HashMap<String, String> {
    bc_client(emu)
        .await
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default()
}

/// The object carries no owner tag.
async fn assert_unowned(emu: &common::Emulator, arn: &str) {
    assert!(
        !tags_of(emu, arn)
            .await
            .contains_key("partnerbilling.io/owner"),
        "{arn}"
    );
}

/// A billing group made outside the operator, with its primary account as only member.
async fn hand_group(
    bc: &aws_sdk_billingconductor::Client,
    name: &str,
    primary: &str,
    plan_arn: &str,
) -> String {
    bc.create_billing_group()
        .name(name)
        .primary_account_id(primary)
        .account_grouping(
            aws_sdk_billingconductor::types::AccountGrouping::builder()
                .linked_account_ids(primary)
                .build(),
        )
        .computation_preference(
            aws_sdk_billingconductor::types::ComputationPreference::builder()
                .pricing_plan_arn(plan_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

/// A flat fee of 1 made outside the operator, described "by hand".
async fn hand_item(bc: &aws_sdk_billingconductor::Client, name: &str, group_arn: &str) -> String {
    bc.create_custom_line_item()
        .name(name)
        .description("by hand")
        .billing_group_arn(group_arn)
        .charge_details(
            aws_sdk_billingconductor::types::CustomLineItemChargeDetails::builder()
                .r#type(aws_sdk_billingconductor::types::CustomLineItemType::Fee)
                .flat(
                    aws_sdk_billingconductor::types::CustomLineItemFlatChargeDetails::builder()
                        .charge_value(1.0)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

/// A pricing plan made outside the operator, with no rules.
async fn hand_plan(bc: &aws_sdk_billingconductor::Client, name: &str) -> String {
    bc.create_pricing_plan()
        .name(name)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

#[tokio::test]
async fn plans_whose_names_extend_each_other_keep_their_own_rules() {
    let (emu, _guard, _) = organization(0).await;
    let dir = payer_dir();
    // `std.gold`'s rule is named std.gold.global.<hash>: the shape of a rule `gold.global`
    // of plan `std`.
    dir.write("std.yaml", &plan_yaml("std", GLOBAL_10));
    dir.write(
        "gold.yaml",
        &plan_yaml(
            "std.gold",
            "    - {name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 5}\n    - {name: s3, scope: SERVICE, type: DISCOUNT, service: AmazonS3, modifierPercentage: 2}\n",
        ),
    );
    let r = apply(emu, &dir).await;
    for plan in ["std", "std.gold"] {
        assert_ready(&r, "PricingPlan", plan);
    }
    // Again, twice: each plan keeps its own rules, nothing is retired.
    for _ in 0..2 {
        let r = apply(emu, &dir).await;
        for plan in ["std", "std.gold"] {
            let o = find(&r, "PricingPlan", plan);
            assert!(o.ready, "{o:?}");
            assert!(o.changes.is_empty(), "{plan}: {:?}", o.changes);
        }
        assert_eq!(status(&r, "PricingPlan", "std")["size"], 1);
        assert_eq!(status(&r, "PricingPlan", "std.gold")["size"], 2);
    }
    assert_eq!(emu.count("billingconductor", "DeletePricingRule"), 0);
    assert_eq!(emu.count("billingconductor", "DisassociatePricingRules"), 0);
    let stats = bc_stats(emu);
    assert_eq!(stats["rules"], 3, "{stats}");
    // A second `plan` reports no change.
    let manifests = filemode::load(std::slice::from_ref(&dir.0), "billing").unwrap();
    let p = filemode::plan(manifests, connector(emu)).await;
    assert_eq!(p.errors(), 0, "{p:#?}");
    assert_eq!(p.changes(), 0, "{p:#?}");

    // Dropping std.gold's s3 rule retires exactly that one.
    dir.write(
        "gold.yaml",
        &plan_yaml(
            "std.gold",
            "    - {name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 5}\n",
        ),
    );
    let r = apply(emu, &dir).await;
    assert!(find(&r, "PricingPlan", "std.gold").ready);
    assert_eq!(emu.count("billingconductor", "DeletePricingRule"), 1);
    assert_eq!(status(&r, "PricingPlan", "std")["size"], 1);
    assert_eq!(status(&r, "PricingPlan", "std.gold")["size"], 1);
}

#[tokio::test]
async fn plan_size_is_what_aws_reports_as_associated() {
    let (emu, _guard, _) = organization(0).await;
    let dir = payer_dir();
    dir.write("plan.yaml", &plan_yaml("plan", WORKED_RULES));
    let r = apply(emu, &dir).await;
    assert!(find(&r, "PricingPlan", "plan").ready);
    assert_eq!(status(&r, "PricingPlan", "plan")["size"], 3);
    // Someone associates a rule of their own with the plan: AWS now counts 4, and the
    // operator leaves that rule alone.
    let bc = bc_client(emu).await;
    let extra = bc
        .create_pricing_rule()
        .name("by-hand")
        .scope(aws_sdk_billingconductor::types::PricingRuleScope::Service)
        .service("AmazonRDS")
        .r#type(aws_sdk_billingconductor::types::PricingRuleType::Discount)
        .modifier_percentage(1.0)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let plan_arn = arn_of(&r, "PricingPlan", "plan");
    bc.associate_pricing_rules()
        .arn(&plan_arn)
        .pricing_rule_arns(&extra)
        .send()
        .await
        .unwrap();
    let r = apply(emu, &dir).await;
    let o = find(&r, "PricingPlan", "plan");
    assert!(o.ready, "{o:?}");
    assert!(o.changes.is_empty(), "{:?}", o.changes);
    assert_eq!(status(&r, "PricingPlan", "plan")["size"], 4);
    assert!(o.message.contains("4 rule(s)"), "{}", o.message);
    // After a change the size is read again from AWS: one rule fewer.
    dir.write(
        "plan.yaml",
        &plan_yaml(
            "plan",
            "    - {name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}\n    - {name: s3, scope: SERVICE, type: DISCOUNT, service: AmazonS3, modifierPercentage: 5}\n",
        ),
    );
    let r = apply(emu, &dir).await;
    assert!(find(&r, "PricingPlan", "plan").ready);
    assert_eq!(status(&r, "PricingPlan", "plan")["size"], 3);
}

#[tokio::test]
async fn objects_owned_elsewhere_are_refused_and_unowned_ones_need_adopt() {
    let (emu, _guard, ids) = organization(3).await;
    let dir = payer_dir();
    dir.write("plan.yaml", &plan_yaml("plan", GLOBAL_10));
    dir.write("g.yaml", &group_yaml("g", &ids[0], ""));
    let r = apply(emu, &dir).await;
    assert!(find(&r, "BillingGroup", "g").ready);
    let g_arn = arn_of(&r, "BillingGroup", "g");

    // A second BillingGroup object naming the same AWS group is refused, and the group
    // keeps its owner and description.
    dir.write(
        "h.yaml",
        &group_yaml(
            "h",
            &ids[0],
            "  groupName: g\n  description: taken over\n  adopt: true\n",
        ),
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    let h = find(&r, "BillingGroup", "h");
    assert!(!h.ready);
    assert_eq!(h.reason, "OwnedElsewhere", "{h:?}");
    assert!(
        h.message.contains("billing/billinggroup/g"),
        "{}",
        h.message
    );
    assert!(find(&r, "BillingGroup", "g").ready);
    assert_not_called(emu, &["UpdateBillingGroup", "TagResource", "UntagResource"]);
    assert_eq!(
        tags_of(emu, &g_arn).await["partnerbilling.io/owner"],
        "billing/billinggroup/g"
    );
    dir.remove("h.yaml");

    // A group made outside the operator (no owner tag) is refused until spec.adopt.
    let bc = bc_client(emu).await;
    let plan_arn = arn_of(&r, "PricingPlan", "plan");
    let hand = hand_group(&bc, "by-hand", &ids[1], &plan_arn).await;
    dir.write(
        "hand.yaml",
        &group_yaml(
            "by-hand",
            &ids[1],
            &format!("  accounts: [\"{}\"]\n", ids[2]),
        ),
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    let o = find(&r, "BillingGroup", "by-hand");
    assert_eq!(o.reason, "AdoptionRequired", "{o:?}");
    assert!(o.message.contains("spec.adopt: true"), "{}", o.message);
    assert_not_called(
        emu,
        &["AssociateAccounts", "UpdateBillingGroup", "TagResource"],
    );
    // A custom line item on it waits rather than use a group its object refuses.
    dir.write(
        "fee.yaml",
        "apiVersion: partnerbilling.io/v1alpha1\nkind: CustomLineItem\nmetadata: {name: fee, namespace: billing}\nspec:\n  billingGroupRef: {name: by-hand}\n  description: fee\n  type: FEE\n  flat: {amount: 5}\n",
    );
    let r = apply(emu, &dir).await;
    let fee = find(&r, "CustomLineItem", "fee");
    assert_eq!(fee.reason, "DependencyNotReady", "{fee:?}");
    assert_eq!(emu.count("billingconductor", "CreateCustomLineItem"), 0);

    dir.write(
        "hand.yaml",
        &group_yaml(
            "by-hand",
            &ids[1],
            &format!("  accounts: [\"{}\"]\n  adopt: true\n", ids[2]),
        ),
    );
    let r = apply(emu, &dir).await;
    let o = find(&r, "BillingGroup", "by-hand");
    assert!(o.ready, "{o:?}");
    assert_eq!(status(&r, "BillingGroup", "by-hand")["arn"], hand.as_str());
    assert_eq!(status(&r, "BillingGroup", "by-hand")["size"], 2);
    assert_eq!(
        tags_of(emu, &hand).await["partnerbilling.io/owner"],
        "billing/billinggroup/by-hand"
    );
    assert!(find(&r, "CustomLineItem", "fee").ready);

    // A custom line item and a pricing plan made outside the operator: the same.
    let item = hand_item(&bc, "hand-item", &g_arn).await;
    hand_plan(&bc, "hand-plan").await;
    dir.write(
        "hand-item.yaml",
        "apiVersion: partnerbilling.io/v1alpha1\nkind: CustomLineItem\nmetadata: {name: hand-item, namespace: billing}\nspec:\n  billingGroupRef: {name: g}\n  description: now managed\n  type: FEE\n  flat: {amount: 1}\n",
    );
    dir.write(
        "hand-plan.yaml",
        &plan_yaml(
            "hand-plan",
            "    - {name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 1}\n",
        ),
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    assert_eq!(
        find(&r, "CustomLineItem", "hand-item").reason,
        "AdoptionRequired"
    );
    assert_eq!(
        find(&r, "PricingPlan", "hand-plan").reason,
        "AdoptionRequired"
    );
    assert_not_called(
        emu,
        &[
            "UpdateCustomLineItem",
            "CreatePricingRule",
            "AssociatePricingRules",
            "UpdatePricingPlan",
        ],
    );
    assert_unowned(emu, &item).await;
}

fn with_secret(
    ctx: partner_billing_operator::reconcile::ReconcileContext,
    dir: &Dir,
) -> partner_billing_operator::reconcile::ReconcileContext {
    let manifests = filemode::load(std::slice::from_ref(&dir.0), "billing").unwrap();
    let mut ctx = ctx;
    ctx.secrets = Arc::new(manifests.secrets);
    ctx
}

#[tokio::test]
async fn adopting_writes_nothing_when_the_object_is_refused_for_another_reason() {
    let (emu, _guard, ids) = organization(2).await;
    let dir = payer_dir();
    dir.write("plan.yaml", &plan_yaml("plan", GLOBAL_10));
    let r = apply(emu, &dir).await;
    assert!(find(&r, "PricingPlan", "plan").ready);
    let plan_arn = arn_of(&r, "PricingPlan", "plan");
    let bc = bc_client(emu).await;

    // A plan made by hand, and a rule of the name its entry wants that another object owns:
    // with spec.adopt the plan is refused (OwnedElsewhere) before it is tagged.
    let hand_plan = hand_plan(&bc, "hand-plan").await;
    let entry: partner_billing_operator::api::pricing_plan::PricingRule = serde_json::from_value(
        json!({"name": "global", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 10}),
    )
    .unwrap();
    bc.create_pricing_rule()
        .name(partner_billing_operator::billing::pricing_plan::rule_aws_name("hand-plan", &entry))
        .scope(aws_sdk_billingconductor::types::PricingRuleScope::Global)
        .r#type(aws_sdk_billingconductor::types::PricingRuleType::Markup)
        .modifier_percentage(10.0)
        .tags("partnerbilling.io/owner", "billing/pricingplan/other")
        .send()
        .await
        .unwrap();
    dir.write(
        "hand-plan.yaml",
        &(plan_yaml(
            "hand-plan",
            "    - {name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}\n",
        ) + "  adopt: true\n"),
    );

    // A group made by hand whose primary account is not the one the spec names: with
    // spec.adopt it is refused (PrimaryAccountMismatch) before it is tagged.
    let hand_group = hand_group(&bc, "hand-group", &ids[0], &plan_arn).await;
    dir.write(
        "hand-group.yaml",
        &group_yaml("hand-group", &ids[1], "  adopt: true\n"),
    );

    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    let p = find(&r, "PricingPlan", "hand-plan");
    assert_eq!(p.reason, "OwnedElsewhere", "{p:?}");
    let g = find(&r, "BillingGroup", "hand-group");
    assert_eq!(g.reason, "PrimaryAccountMismatch", "{g:?}");
    assert_not_called(
        emu,
        &[
            "TagResource",
            "UntagResource",
            "UpdatePricingPlan",
            "CreatePricingRule",
            "AssociatePricingRules",
            "UpdateBillingGroup",
            "AssociateAccounts",
        ],
    );
    for arn in [&hand_plan, &hand_group] {
        assert_unowned(emu, arn).await;
    }
}

#[tokio::test]
async fn deleting_a_group_deletes_only_its_own_items_and_refuses_while_others_remain() {
    let (emu, _guard, ids) = organization(1).await;
    let dir = payer_dir();
    dir.write("plan.yaml", &plan_yaml("plan", GLOBAL_10));
    dir.write(
        "group.yaml",
        &group_yaml("g", &ids[0], "  deletionPolicy: Delete\n"),
    );
    dir.write(
        "fee.yaml",
        "apiVersion: partnerbilling.io/v1alpha1\nkind: CustomLineItem\nmetadata: {name: fee, namespace: billing}\nspec:\n  billingGroupRef: {name: g}\n  description: fee\n  type: FEE\n  flat: {amount: 5}\n",
    );
    let r = apply(emu, &dir).await;
    assert!(find(&r, "CustomLineItem", "fee").ready);
    let g_arn = arn_of(&r, "BillingGroup", "g");
    let fee_arn = arn_of(&r, "CustomLineItem", "fee");
    let bc = bc_client(emu).await;
    let hand = hand_item(&bc, "hand-item", &g_arn).await;

    // Only the group is deleted (its CustomLineItem object stays): the item it owns would go
    // with it, but the one made by hand refuses the deletion, and nothing is deleted.
    let group_only = || {
        filemode::load(
            &[dir.0.join("payer.yaml"), dir.0.join("group.yaml")],
            "billing",
        )
        .unwrap_or_else(|p| panic!("{p:?}"))
    };
    emu.control("DELETE", "/_emulator/requests", None);
    let d = filemode::delete(group_only(), connector(emu), Duration::from_secs(1)).await;
    let g = find(&d, "BillingGroup", "g");
    assert_eq!(g.reason, "GroupHasForeignItems", "{g:?}");
    assert!(g.message.contains("hand-item"), "{}", g.message);
    assert!(!g.message.contains("fee"), "{}", g.message);
    assert_not_called(emu, &["DeleteCustomLineItem", "DeleteBillingGroup"]);

    // Once the hand-made item is gone, the group goes, with the item it owns.
    bc.delete_custom_line_item()
        .arn(&hand)
        .send()
        .await
        .unwrap();
    let d = filemode::delete(group_only(), connector(emu), Duration::from_secs(20)).await;
    let g = find(&d, "BillingGroup", "g");
    assert_eq!(g.reason, "Deleted", "{g:?}");
    let left = bc
        .list_custom_line_items()
        .send()
        .await
        .unwrap()
        .custom_line_items
        .unwrap_or_default();
    assert!(
        left.iter().all(|i| i.arn() != Some(fee_arn.as_str())),
        "{left:?}"
    );
    assert!(
        bc.list_billing_groups()
            .send()
            .await
            .unwrap()
            .billing_groups()
            .iter()
            .all(|x| x.arn() != Some(g_arn.as_str()))
    );
}

#[tokio::test]
async fn an_adopted_plans_hand_made_rules_are_tagged_and_retired_with_their_entry() {
    let (emu, _guard, _) = organization(1).await;
    let bc = bc_client(emu).await;
    let entry = |name: &str| -> partner_billing_operator::api::pricing_plan::PricingRule {
        serde_json::from_value(
            json!({"name": name, "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 10}),
        )
        .unwrap()
    };
    let hand_plan = hand_plan(&bc, "hand-plan").await;
    let hand_rule = bc
        .create_pricing_rule()
        .name(
            partner_billing_operator::billing::pricing_plan::rule_aws_name(
                "hand-plan",
                &entry("a"),
            ),
        )
        .scope(aws_sdk_billingconductor::types::PricingRuleScope::Global)
        .r#type(aws_sdk_billingconductor::types::PricingRuleType::Markup)
        .modifier_percentage(10.0)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    bc.associate_pricing_rules()
        .arn(&hand_plan)
        .pricing_rule_arns(&hand_rule)
        .send()
        .await
        .unwrap();
    let rules = |entries: &[&str]| {
        entries
            .iter()
            .map(|e| {
                format!(
                    "    - {{name: {e}, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}}\n"
                )
            })
            .collect::<String>()
    };
    let dir = payer_dir();
    dir.write(
        "plan.yaml",
        &(plan_yaml("hand-plan", &rules(&["a", "b"])) + "  adopt: true\n"),
    );
    let r = apply(emu, &dir).await;
    let p = find(&r, "PricingPlan", "hand-plan");
    assert!(p.ready, "{p:?}");
    assert_eq!(
        status(&r, "PricingPlan", "hand-plan")["arn"],
        hand_plan.as_str()
    );
    assert_eq!(status(&r, "PricingPlan", "hand-plan")["size"], 2);
    for arn in [&hand_plan, &hand_rule] {
        assert_eq!(
            tags_of(emu, arn).await["partnerbilling.io/owner"],
            "billing/pricingplan/hand-plan",
            "{arn}"
        );
    }

    // Its entry dropped, the hand-made rule is retired like the plan's own.
    dir.write(
        "plan.yaml",
        &(plan_yaml("hand-plan", &rules(&["b"])) + "  adopt: true\n"),
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let r = apply(emu, &dir).await;
    assert!(find(&r, "PricingPlan", "hand-plan").ready);
    assert_eq!(status(&r, "PricingPlan", "hand-plan")["size"], 1);
    assert_eq!(emu.count("billingconductor", "DeletePricingRule"), 1);
    let left = bc
        .list_pricing_rules()
        .send()
        .await
        .unwrap()
        .pricing_rules
        .unwrap_or_default();
    assert!(
        left.iter().all(|x| x.arn() != Some(hand_rule.as_str())),
        "{left:?}"
    );
}
