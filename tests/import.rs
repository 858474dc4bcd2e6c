//! `import --payer FILE -o DIR` against the emulator: an organization made by hand (3 OUs,
//! 2 SCPs, 25 accounts, 2 pricing plans with rules, 3 billing groups, 2 custom line items)
//! becomes manifests that validate against the CRDs, whose `apply -f` makes zero AWS writes
//! and whose `plan` reports no changes (the only drift an Observe object shows is the owner
//! tag it does not carry yet, plus the rules of a plan not named as the operator names them,
//! which the import says).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_billingconductor as bc;
use aws_sdk_organizations as orgs;
use common::{Dir, connector};
use partner_billing_operator::filemode;
use partner_billing_operator::{crdgen, import, schema_check};
use serde_json::json;

const KEY: &str = "AKIAPBOIMPORT0000001";
const SECRET: &str = "pbo-import-test-secret";

/// OUs Customers, Customers/EU and Internal; SCPs "Deny Leave" (on Customers) and eu-only
/// (on one account); accounts in each OU; tags on an account and an OU.
async fn seed_organization(o: &orgs::Client) -> Vec<String> {
    let root = o.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let ou = |parent: String, name: &'static str| async move {
        o.create_organizational_unit()
            .parent_id(parent)
            .name(name)
            .send()
            .await
            .unwrap()
            .organizational_unit
            .unwrap()
            .id
            .unwrap()
    };
    let customers = ou(root.clone(), "Customers").await;
    let eu = ou(customers.clone(), "EU").await;
    let internal = ou(root.clone(), "Internal").await;
    let mut accounts: Vec<(String, String)> = Vec::new();
    let mut pages = o.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        for a in page.unwrap().accounts() {
            accounts.push((a.name().unwrap().to_string(), a.id().unwrap().to_string()));
        }
    }
    let mut ids: Vec<String> = accounts
        .iter()
        .filter(|(n, _)| n.starts_with("customer-"))
        .map(|(_, id)| id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 25);
    for (i, target) in [(0, &customers), (1, &eu), (2, &eu), (3, &internal)] {
        o.move_account()
            .account_id(&ids[i])
            .source_parent_id(&root)
            .destination_parent_id(target)
            .send()
            .await
            .unwrap();
    }
    o.tag_resource()
        .resource_id(&ids[0])
        .tags(
            orgs::types::Tag::builder()
                .key("customer")
                .value("northwind")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    o.tag_resource()
        .resource_id(&eu)
        .tags(
            orgs::types::Tag::builder()
                .key("data-residency")
                .value("eu")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    o.enable_policy_type()
        .root_id(&root)
        .policy_type(orgs::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let doc = |sid: &str, action: &str| {
        json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Deny", "Action": action, "Resource": "*"}]}).to_string()
    };
    for (name, target, d) in [
        (
            "Deny Leave",
            &customers,
            doc("DenyLeave", "organizations:LeaveOrganization"),
        ),
        ("eu-only", &ids[4], doc("DenyIam", "iam:CreateUser")),
    ] {
        let id = o
            .create_policy()
            .name(name)
            .description(format!("{name} by hand"))
            .content(d)
            .r#type(orgs::types::PolicyType::ServiceControlPolicy)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap()
            .policy_summary
            .unwrap()
            .id
            .unwrap();
        o.attach_policy()
            .policy_id(id)
            .target_id(target)
            .send()
            .await
            .unwrap();
    }
    ids
}

async fn rule(
    b: &bc::Client,
    name: &str,
    scope: bc::types::PricingRuleScope,
    pct: f64,
    service: Option<&str>,
) -> String {
    b.create_pricing_rule()
        .name(name)
        .scope(scope)
        .r#type(bc::types::PricingRuleType::Markup)
        .modifier_percentage(pct)
        .set_service(service.map(str::to_string))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

/// Plans gold (rules named by hand) and silver (its rule named as the operator names rules);
/// groups acme, ACME (the same Kubernetes name) and contoso; a flat fee and a credit.
async fn seed_billing(b: &bc::Client, ids: &[String]) {
    let silver_entry: partner_billing_operator::api::pricing_plan::PricingRule =
        serde_json::from_value(
            json!({"name": "markup", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 5}),
        )
        .unwrap();
    let silver_rule_name =
        partner_billing_operator::billing::pricing_plan::rule_aws_name("silver", &silver_entry);
    let gold_rules = vec![
        rule(
            b,
            "gold-markup",
            bc::types::PricingRuleScope::Global,
            10.0,
            None,
        )
        .await,
        rule(
            b,
            "gold-s3",
            bc::types::PricingRuleScope::Service,
            3.0,
            Some("AmazonS3"),
        )
        .await,
    ];
    let silver_rules = vec![
        rule(
            b,
            &silver_rule_name,
            bc::types::PricingRuleScope::Global,
            5.0,
            None,
        )
        .await,
    ];
    let mut plans = Vec::new();
    for (name, rules) in [("gold", gold_rules), ("silver", silver_rules)] {
        let arn = b
            .create_pricing_plan()
            .name(name)
            .description(format!("{name} prices"))
            .set_pricing_rule_arns(Some(rules))
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        plans.push(arn);
    }
    let mut groups = Vec::new();
    for (i, (name, plan)) in [
        ("acme", &plans[0]),
        ("ACME", &plans[1]),
        ("contoso", &plans[0]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut members = vec![ids[10 + i].clone()];
        if i == 0 {
            members.push(ids[20].clone());
        }
        let arn = b
            .create_billing_group()
            .name(name)
            .description(format!("{name} group"))
            .primary_account_id(&ids[10 + i])
            .account_grouping(
                bc::types::AccountGrouping::builder()
                    .set_linked_account_ids(Some(members))
                    .build(),
            )
            .computation_preference(
                bc::types::ComputationPreference::builder()
                    .pricing_plan_arn(plan)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        groups.push(arn);
    }
    let flat = bc::types::CustomLineItemChargeDetails::builder()
        .r#type(bc::types::CustomLineItemType::Fee)
        .flat(
            bc::types::CustomLineItemFlatChargeDetails::builder()
                .charge_value(49.5)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let credit = bc::types::CustomLineItemChargeDetails::builder()
        .r#type(bc::types::CustomLineItemType::Credit)
        .percentage(
            bc::types::CustomLineItemPercentageChargeDetails::builder()
                .percentage_value(5.0)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    for (name, group, details) in [
        ("support-fee", &groups[0], flat),
        ("migration-credit", &groups[2], credit),
    ] {
        b.create_custom_line_item()
            .name(name)
            .description(format!("{name} by hand"))
            .billing_group_arn(group)
            .charge_details(details)
            .send()
            .await
            .unwrap();
    }
}

fn load(paths: &[PathBuf]) -> filemode::Manifests {
    common::load(paths, "imported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_organization_applies_without_writes_and_plans_no_changes() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let cfg = emu.sdk_config(KEY, SECRET, None).await;
    emu.create_organization(&cfg, 25).await;
    let ids = seed_organization(&orgs::Client::new(&cfg)).await;
    seed_billing(&bc::Client::new(&cfg), &ids).await;

    let payer = Dir::new();
    payer.write("payer.yaml", &common::payer_yaml("imported", KEY, SECRET));
    let out = Dir::new();
    emu.control("DELETE", "/_emulator/requests", None);
    let done = import::import(
        std::slice::from_ref(&payer.0),
        "default",
        &out.0,
        connector(emu),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        common::written_operations(emu),
        Vec::<String>::new(),
        "import only reads"
    );
    println!(
        "import of 3 OUs, 2 SCPs, 25 accounts, 2 plans, 3 groups, 2 items: {} AWS calls, 0 writes",
        emu.total_requests()
    );
    let counts: Vec<(&str, usize)> = done.counts.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    assert_eq!(
        counts,
        [
            ("ServiceControlPolicy", 2),
            ("OrganizationalUnit", 3),
            ("LinkedAccount", 25),
            ("PricingPlan", 2),
            ("BillingGroup", 3),
            ("CustomLineItem", 2)
        ]
    );
    let collision = done
        .notes
        .iter()
        .find(|n| n.starts_with("name collision: BillingGroup"));
    assert!(collision.is_some(), "{:#?}", done.notes);
    assert!(
        done.notes
            .iter()
            .any(|n| n.contains("PricingPlan gold") && n.contains("gold-markup")),
        "{:#?}",
        done.notes
    );

    // The command writes the same files (the names are deterministic).
    let again = Dir::new();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_partner-billing-operator"))
        .args(["import", "--payer"])
        .arg(&payer.0)
        .arg("-o")
        .arg(&again.0)
        .env("AWS_ENDPOINT_URL", &emu.url)
        .output()
        .expect("run the binary");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("LinkedAccount: 25")
            && stdout.contains("note: name collision: BillingGroup"),
        "{stdout}"
    );
    for file in &done.files {
        let name = file.file_name().unwrap();
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            std::fs::read_to_string(again.0.join(name)).unwrap(),
            "{name:?}"
        );
    }

    // Every document validates against its CRD's schema and CEL rules.
    let mut documents = 0;
    for file in &done.files {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in filemode::parse_documents(&text).unwrap() {
            let kind = doc["kind"].as_str().unwrap().to_string();
            assert_eq!(doc["spec"]["managementPolicy"], "Observe", "{doc}");
            let schema = crdgen::schema_for(&kind).expect("a CRD");
            let v = schema_check::validate(&schema, &doc, None);
            assert!(v.is_empty(), "{kind}: {v:?}\n{doc}");
            documents += 1;
        }
    }
    assert_eq!(documents, 37);
    let accounts = std::fs::read_to_string(out.0.join("linked-accounts.yaml")).unwrap();
    assert!(
        accounts.contains(&format!("accountId: '{}'", ids[0]))
            || accounts.contains(&format!("accountId: \"{}\"", ids[0])),
        "{accounts}"
    );
    assert!(accounts.contains("customer: northwind"), "{accounts}");
    let groups = std::fs::read_to_string(out.0.join("billing-groups.yaml")).unwrap();
    assert!(
        groups.contains("# name collision: BillingGroup"),
        "{groups}"
    );
    let scps = std::fs::read_to_string(out.0.join("service-control-policies.yaml")).unwrap();
    assert!(
        scps.contains("organizations:LeaveOrganization") && scps.contains("policyName: Deny Leave"),
        "{scps}"
    );

    // apply -f right away: zero writes, every object observed.
    let paths = [payer.0.clone(), out.0.clone()];
    emu.control("DELETE", "/_emulator/requests", None);
    let applied = filemode::apply(load(&paths), connector(emu), Duration::from_secs(30)).await;
    assert_eq!(
        common::written_operations(emu),
        Vec::<String>::new(),
        "apply of an import writes nothing"
    );
    let not_ready: Vec<String> = applied
        .objects
        .iter()
        .filter(|o| !o.ready)
        .map(|o| format!("{} {}: {} {}", o.kind, o.name, o.reason, o.message))
        .collect();
    assert!(not_ready.is_empty(), "{not_ready:#?}");
    assert_eq!(applied.objects.len(), 38);

    // plan: no changes; drift only where the object lacks the owner tag, and gold's rules.
    let planned = filemode::plan(load(&paths), connector(emu)).await;
    assert_eq!(planned.changes(), 0);
    assert_eq!(planned.errors(), 0);
    assert_eq!(filemode::plan_exit_code(&planned), 0);
    // The owner tag an Observe object does not carry yet is its only drift ("set 1": the
    // owner tag is the one tag to add when the user tags were imported as they are), except
    // for gold, whose rules are not named as the operator names them (the import said so).
    let mut unexpected = Vec::new();
    for o in &planned.objects {
        for d in &o.drift {
            let owner_tag = d.detail.contains("partnerbilling.io/owner")
                || (d.target.starts_with("tags of") && d.detail == "set 1, remove 0");
            let gold_rules = o.kind == "PricingPlan" && o.name == "gold";
            if !owner_tag && !gold_rules {
                unexpected.push(format!("{} {}: {d:?}", o.kind, o.name));
            }
        }
    }
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert_eq!(
        common::written_operations(emu),
        Vec::<String>::new(),
        "plan writes nothing"
    );
}
