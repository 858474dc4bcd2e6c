//! Crash safety at every write. The operator has a named failpoint right after every AWS
//! write (`after:<service>:<Operation>`) and right before every status write
//! (`before-status:<Kind>`) — built with `--features failpoints`. For each failpoint, the
//! scenario that reaches it is run once with the process "dying" there (a panic, which
//! loses every status and cache, as a crash does); then a fresh reconciler runs the same
//! manifests and the emulator must hold exactly the expected objects: no duplicates, no
//! orphans, every object Ready (the invited account: its one invitation open).
//!
//! The test reads the failpoints from the source, fails if an AWS write operation of the IAM
//! policies has none, and fails if a failpoint is reached by no scenario.

#![cfg(feature = "failpoints")]

mod common;

use common::{Dir, connector};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use partner_billing_operator::filemode::{self, Report};
use serde_json::{Value, json};

const ACCESS_KEY: &str = "AKIAPBOCRASH00000001";
const SECRET_KEY: &str = "pbo-crash-test-secret";
const INVITEE: &str = "444400000009";
const WAIT: Duration = Duration::from_secs(60);
/// The management account of the customer organization whose billing transfers to acme.
const CUSTOMER_ORG: &str = "777788889999";

/// The first day of the month after next, 00:00:00 UTC: a transfer start AWS accepts now.
fn transfer_start() -> String {
    use k8s_openapi::jiff::{Timestamp, ToSpan, tz::TimeZone};
    let today = Timestamp::now().to_zoned(TimeZone::UTC).date();
    let d = today.first_of_month().checked_add(2.months()).unwrap();
    format!("{d}T00:00:00Z")
}

/// The customer accepts every open billing transfer invitation (emulator control).
fn customer_accepts(emu: &common::Emulator) {
    let stats = emu.control(
        "POST",
        "/_emulator/services/transfers/stats",
        Some(json!({})),
    );
    for (id, t) in stats["transfers"].as_object().into_iter().flatten() {
        if t["status"] == "REQUESTED" {
            emu.control(
                "POST",
                "/_emulator/services/transfers/accept",
                Some(json!({"transferId": id})),
            );
        }
    }
}

/// The organization: every kind, every object with a deletion policy that deletes.
/// `v2` changes something in each object (document, name, parent, tags, rules, amounts...).
fn manifests(v2: bool) -> String {
    let (action, scp_tags) = if v2 {
        ("svcb:*", "{team: b}")
    } else {
        ("svca:*", "{team: a, old: x}")
    };
    let (ou_name, ou_scps) = if v2 {
        ("Production", "[]")
    } else {
        ("Prod", "[deny]")
    };
    let (ops_parent, ops_scps, acct_tags) = if v2 {
        ("", "[]", "{env: production}")
    } else {
        (
            "\n  parentRef: {name: prod}",
            "[deny]",
            "{env: prod, old: x}",
        )
    };
    let (plan_desc, rules) = if v2 {
        (
            "v2",
            "    - {name: markup, scope: GLOBAL, type: MARKUP, modifierPercentage: 12}\n    - {name: ec2, scope: SERVICE, type: DISCOUNT, service: AmazonEC2, modifierPercentage: 3}\n",
        )
    } else {
        (
            "v1",
            "    - {name: markup, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}\n    - {name: s3, scope: SERVICE, type: DISCOUNT, service: AmazonS3, modifierPercentage: 5}\n",
        )
    };
    let (group_desc, group_tags, group_accounts) = if v2 {
        ("v2", "{team: b}", "\n  accounts: [dev]")
    } else {
        ("v1", "{team: a, old: x}", "\n  accounts: [ops]")
    };
    let fee = if v2 { 25 } else { 10 };
    // A changed policyName renames the SCP (found again by its owner tag: file mode starts
    // without statuses).
    let policy_name = if v2 { "deny-v2" } else { "deny" };
    // The billing transfer: accepted by the customer in `prepare` (Change, Delete); v2 adds
    // the automatic billing groups preference; deleting it terminates it.
    let transfer_start = transfer_start();
    let preference = if v2 {
        "\n  automaticBillingGroups: {enabled: true, pricingPlanRef: {name: std}}"
    } else {
        ""
    };
    let (granularity, schedule) = if v2 {
        ("Daily", "cron(0 4 * * ? *)")
    } else {
        ("Hourly", "cron(30 2 * * ? *)")
    };
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: aws, namespace: crash}}
stringData: {{accessKeyId: {ACCESS_KEY}, secretAccessKey: {SECRET_KEY}}}
---
apiVersion: partnerbilling.io/v1alpha1
kind: Payer
metadata: {{name: acme, namespace: crash}}
spec: {{accountId: "123456789012", credentials: {{secretRef: {{name: aws}}}}}}
---
apiVersion: partnerbilling.io/v1alpha1
kind: ServiceControlPolicy
metadata: {{name: deny, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  policyName: {policy_name}
  document: {{Version: '2012-10-17', Statement: [{{Effect: Deny, Action: '{action}', Resource: '*'}}]}}
  tags: {scp_tags}
  deletionPolicy: Delete
---
apiVersion: partnerbilling.io/v1alpha1
kind: OrganizationalUnit
metadata: {{name: prod, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  name: {ou_name}
  serviceControlPolicies: {ou_scps}
  deletionPolicy: Delete
---
apiVersion: partnerbilling.io/v1alpha1
kind: LinkedAccount
metadata: {{name: web, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  create: {{email: web@example.com, accountName: web}}
  tags: {acct_tags}
  deletionPolicy: Close
---
apiVersion: partnerbilling.io/v1alpha1
kind: LinkedAccount
metadata: {{name: ops, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  create: {{email: ops@example.com, accountName: ops}}{ops_parent}
  serviceControlPolicies: {ops_scps}
  deletionPolicy: Remove
---
apiVersion: partnerbilling.io/v1alpha1
kind: LinkedAccount
metadata: {{name: dev, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  create: {{email: dev@example.com, accountName: dev}}
  deletionPolicy: Remove
---
apiVersion: partnerbilling.io/v1alpha1
kind: LinkedAccount
metadata: {{name: ext, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  invite: {{accountId: "{INVITEE}"}}
  deletionPolicy: Remove
---
apiVersion: partnerbilling.io/v1alpha1
kind: PricingPlan
metadata: {{name: std, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  description: {plan_desc}
  rules:
{rules}---
apiVersion: partnerbilling.io/v1alpha1
kind: BillingGroup
metadata: {{name: c1, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  primaryAccount: web{group_accounts}
  pricingPlanRef: {{name: std}}
  description: {group_desc}
  tags: {group_tags}
  deletionPolicy: Delete
---
apiVersion: partnerbilling.io/v1alpha1
kind: CustomLineItem
metadata: {{name: fee, namespace: crash}}
spec:
  billingGroupRef: {{name: c1}}
  description: Support fee
  type: FEE
  flat: {{amount: {fee}}}
---
apiVersion: partnerbilling.io/v1alpha1
kind: CurPipeline
metadata: {{name: cur, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  export: {{name: acme-cur, timeGranularity: {granularity}}}
  s3: {{bucket: acme-cur, create: true, region: us-east-1}}
  glue: {{database: acme_cur, name: acme-cur-crawler, schedule: '{schedule}', roleArn: 'arn:aws:iam::123456789012:role/GlueCrawler'}}
  tags: {{team: a}}
  deletionPolicy: Delete
---
apiVersion: partnerbilling.io/v1alpha1
kind: CurPipeline
metadata: {{name: legacy, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  export: {{kind: LegacyCur, name: acme-legacy, timeGranularity: {granularity}}}
  s3: {{bucket: acme-legacy-cur, create: true, region: us-east-1}}
  deletionPolicy: Delete
---
apiVersion: partnerbilling.io/v1alpha1
kind: BillingTransfer
metadata: {{name: globex, namespace: crash}}
spec:
  payerRef: {{name: acme}}
  customer: {{accountId: "{CUSTOMER_ORG}"}}
  start: "{transfer_start}"{preference}
  deletionPolicy: Terminate
"#
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    /// Everything created from nothing.
    Create,
    /// From the created state, every object changed.
    Change,
    /// From the created state, every object deleted.
    Delete,
}

const SCENARIOS: [Scenario; 3] = [Scenario::Create, Scenario::Change, Scenario::Delete];

/// Every failpoint in the source: `after_write!("svc:Op")` and the status writes of each kind.
fn failpoints() -> BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws");
    let mut out = BTreeSet::new();
    for f in std::fs::read_dir(root).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        for part in text.split("after_write!(\"").skip(1) {
            out.insert(format!("after:{}", &part[..part.find('"').unwrap()]));
        }
    }
    for kind in partner_billing_operator::filemode::KIND_ORDER {
        out.insert(format!("before-status:{kind}"));
    }
    out
}

async fn run(emu: &common::Emulator, dir: &std::path::Path, delete: bool) -> Report {
    let manifests =
        filemode::load(&[dir.to_path_buf()], "crash").unwrap_or_else(|p| panic!("{p:?}"));
    if delete {
        filemode::delete(manifests, connector(emu), WAIT).await
    } else {
        filemode::apply(manifests, connector(emu), WAIT).await
    }
}

/// A fresh organization; for Change and Delete, converged to the v1 manifests first.
async fn prepare(emu: &common::Emulator, scenario: Scenario) -> Dir {
    emu.control("POST", "/_emulator/reset", None);
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    emu.create_organization(&cfg, 0).await;
    emu.control(
        "POST",
        "/_emulator/services/organizations/settings",
        Some(json!({"createDelaySeconds": 0.2, "closeDelaySeconds": 60})),
    );
    let dir = Dir::new();
    dir.write("org.yaml", &manifests(false));
    if scenario != Scenario::Create {
        let report = run(emu, &dir.0, false).await;
        check_ready(&report, false);
        customer_accepts(emu);
        if scenario == Scenario::Change {
            dir.write("org.yaml", &manifests(true));
        }
    }
    dir
}

/// The scenario's own run (what a failpoint may stop).
async fn step(
    emu: &'static common::Emulator,
    dir: &Dir,
    scenario: Scenario,
) -> Result<Report, String> {
    let path = dir.0.clone();
    let delete = scenario == Scenario::Delete;
    let task = tokio::spawn(async move { run(emu, &path, delete).await });
    task.await.map_err(|e| {
        let p = e.into_panic();
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn check_ready(report: &Report, deleted: bool) {
    let wrong: Vec<String> = report
        .objects
        .iter()
        .filter(|o| {
            let invited = o.kind == "LinkedAccount" && o.name.ends_with("ext");
            // The billing transfer waits for the customer until `prepare` accepts it (the
            // inventory checks its exact state per scenario).
            let transfer = o.kind == "BillingTransfer";
            if invited && !deleted {
                o.reason != "InvitationPending"
            } else if transfer && !deleted {
                !o.ready && o.reason != "TransferRequested"
            } else {
                !o.ready
            }
        })
        .map(|o| format!("{} {}: {} {}", o.kind, o.name, o.reason, o.message))
        .collect();
    let all: Vec<String> = report
        .objects
        .iter()
        .map(|o| format!("{} {}: {} {}", o.kind, o.name, o.reason, o.message))
        .collect();
    assert!(
        wrong.is_empty(),
        "not as expected: {wrong:#?}\nall: {all:#?}"
    );
}

/// What AWS holds, counted in the emulator.
async fn inventory(emu: &common::Emulator) -> BTreeMap<&'static str, Value> {
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let orgs = aws_sdk_organizations::Client::new(&cfg);
    let mut out = BTreeMap::new();
    let accounts = orgs.list_accounts().send().await.unwrap();
    let mut states: Vec<String> = accounts
        .accounts()
        .iter()
        .map(|a| {
            format!(
                "{}={}",
                a.email().unwrap_or_default(),
                a.state().map(|s| s.as_str()).unwrap_or_default()
            )
        })
        .collect();
    states.sort();
    out.insert("accounts", json!(states));
    let policies = orgs
        .list_policies()
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = policies
        .policies()
        .iter()
        .map(|p| p.name().unwrap_or_default().to_string())
        .collect();
    names.sort();
    out.insert("policies", json!(names));
    let root = orgs.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let ous = orgs
        .list_organizational_units_for_parent()
        .parent_id(&root)
        .send()
        .await
        .unwrap();
    let names: Vec<String> = ous
        .organizational_units()
        .iter()
        .map(|o| o.name().unwrap_or_default().to_string())
        .collect();
    out.insert("ous", json!(names));
    let stats = emu.control(
        "POST",
        "/_emulator/services/organizations/stats",
        Some(json!({})),
    );
    out.insert("createRequests", stats["createRequests"].clone());
    let mut handshakes: Vec<String> = stats["handshakes"]
        .as_object()
        .map(|h| {
            h.values()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    handshakes.sort();
    out.insert("handshakes", json!(handshakes));
    out.insert("closures", stats["closures"].clone());
    let bc = emu.control(
        "POST",
        "/_emulator/services/billingconductor/stats",
        Some(json!({})),
    );
    for k in ["plans", "rules", "groups", "customLineItems"] {
        out.insert(k, bc[k].clone());
    }
    let exports = aws_sdk_bcmdataexports::Client::new(&cfg)
        .list_exports()
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = exports
        .exports()
        .iter()
        .map(|e| e.export_name().to_string())
        .collect();
    names.sort();
    out.insert("exports", json!(names));
    let reports = aws_sdk_costandusagereport::Client::new(&cfg)
        .describe_report_definitions()
        .send()
        .await
        .unwrap();
    let reports: Vec<String> = reports
        .report_definitions()
        .iter()
        .map(|r| format!("{}:{}", r.report_name(), r.time_unit().as_str()))
        .collect();
    out.insert("reports", json!(reports));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&cfg)
            .force_path_style(true)
            .build(),
    );
    let mut buckets: Vec<String> = s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .map(|b| b.name().unwrap_or_default().to_string())
        .collect();
    buckets.sort();
    out.insert("buckets", json!(buckets));
    let glue = aws_sdk_glue::Client::new(&cfg);
    let crawlers: Vec<String> = glue
        .list_crawlers()
        .send()
        .await
        .unwrap()
        .crawler_names()
        .to_vec();
    out.insert("crawlers", json!(crawlers));
    let dbs: Vec<String> = glue
        .get_databases()
        .send()
        .await
        .unwrap()
        .database_list()
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    out.insert("databases", json!(dbs));
    let transfers = emu.control(
        "POST",
        "/_emulator/services/transfers/stats",
        Some(json!({})),
    );
    let mut states: Vec<String> = transfers["transfers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, t)| t["status"].as_str().unwrap_or("").to_string())
        .collect();
    states.sort();
    out.insert("transfers", json!(states));
    let enabled = transfers["preferences"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, p)| p["Enabled"] == true)
        .count();
    out.insert("transferPreferences", json!(enabled));
    out
}

/// What each scenario must leave in AWS (checked on the runs without a crash; the crashed
/// runs must then leave exactly the same).
fn expect(scenario: Scenario, found: &BTreeMap<&'static str, Value>) {
    let mgmt = found["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            !a.as_str().unwrap().starts_with("dev@")
                && !a.as_str().unwrap().starts_with("ops@")
                && !a.as_str().unwrap().starts_with("web@")
        })
        .count();
    assert_eq!(
        mgmt, 1,
        "only the management account besides ours: {found:?}"
    );
    let want: Value = match scenario {
        Scenario::Create | Scenario::Change => json!({
            "createRequests": 3, "handshakes": ["OPEN"], "closures": 0,
            "plans": 1, "rules": 2, "groups": 1, "customLineItems": 1,
            "exports": ["acme-cur"], "crawlers": ["acme-cur-crawler"], "databases": ["acme_cur"],
            "buckets": ["acme-cur", "acme-legacy-cur"],
        }),
        Scenario::Delete => json!({
            "createRequests": 3, "handshakes": ["CANCELED"], "closures": 1,
            "plans": 0, "rules": 0, "groups": 0, "customLineItems": 0,
            "exports": [], "crawlers": [], "databases": [], "reports": [],
            "buckets": ["acme-cur", "acme-legacy-cur"], "ous": [],
        }),
    };
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&found[k.as_str()], v, "{scenario:?}: {k} in {found:?}");
    }
    // One billing transfer, whatever the scenario: invited (Create), accepted with its
    // preference (Change), terminated (Delete).
    let (transfers, preferences) = match scenario {
        Scenario::Create => (json!(["REQUESTED"]), json!(0)),
        Scenario::Change => (json!(["ACCEPTED"]), json!(1)),
        Scenario::Delete => (json!(["WITHDRAWN"]), json!(0)),
    };
    assert_eq!(found["transfers"], transfers, "{scenario:?}: {found:?}");
    assert_eq!(found["transferPreferences"], preferences, "{scenario:?}");
    let (ous, policies, reports): (Value, Value, Value) = match scenario {
        Scenario::Create => (
            json!(["Prod"]),
            json!(["FullAWSAccess", "deny"]),
            json!(["acme-legacy:HOURLY"]),
        ),
        Scenario::Change => (
            json!(["Production"]),
            json!(["FullAWSAccess", "deny-v2"]),
            json!(["acme-legacy:DAILY"]),
        ),
        Scenario::Delete => (json!([]), json!(["FullAWSAccess"]), json!([])),
    };
    assert_eq!(found["ous"], ous, "{scenario:?}");
    assert_eq!(found["policies"], policies, "{scenario:?}");
    assert_eq!(found["reports"], reports, "{scenario:?}");
}

/// Which failpoints each scenario reaches (callbacks count the hits).
async fn discover(
    emu: &'static common::Emulator,
    names: &BTreeSet<String>,
) -> (
    BTreeMap<String, Scenario>,
    BTreeMap<Scenario, BTreeMap<&'static str, Value>>,
) {
    let mut reached = BTreeMap::new();
    let mut expected = BTreeMap::new();
    for scenario in SCENARIOS {
        let dir = prepare(emu, scenario).await;
        let hits: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        for n in names {
            let (hits, n2) = (hits.clone(), n.clone());
            fail::cfg_callback(n, move || {
                hits.lock().unwrap().insert(n2.clone());
            })
            .unwrap();
        }
        let report = step(emu, &dir, scenario)
            .await
            .expect("no crash configured");
        for n in names {
            fail::remove(n);
        }
        check_ready(&report, scenario == Scenario::Delete);
        let found = inventory(emu).await;
        expect(scenario, &found);
        expected.insert(scenario, found);
        for n in hits.lock().unwrap().iter() {
            reached.entry(n.clone()).or_insert(scenario);
        }
    }
    (reached, expected)
}

#[tokio::test]
async fn a_crash_at_any_write_leaves_no_duplicate_and_no_orphan() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let names = failpoints();

    // Every AWS write of the IAM policies has a failpoint (actions that are only permissions
    // for another call, such as tagging on create, are not calls of their own).
    let writes = [
        "Create",
        "Update",
        "Delete",
        "Put",
        "Tag",
        "Untag",
        "Attach",
        "Detach",
        "Associate",
        "Disassociate",
        "Move",
        "Invite",
        "Cancel",
        "Close",
        "Remove",
        "Enable",
        "Modify",
        "Terminate",
    ];
    let mut missing = Vec::new();
    for family in partner_billing_operator::iam::FAMILIES {
        for action in family.actions {
            let (svc, op) = action.split_once(':').unwrap();
            let implied = partner_billing_operator::iam::IMPLIED
                .iter()
                .any(|(a, _)| a == action);
            if implied || !writes.iter().any(|w| op.starts_with(w)) {
                continue;
            }
            if !names.contains(&format!("after:{svc}:{op}")) {
                missing.push(action.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "AWS writes without a failpoint: {missing:?}"
    );

    let (reached, expected) = discover(emu, &names).await;
    let unreached: Vec<&String> = names.iter().filter(|n| !reached.contains_key(*n)).collect();
    assert!(
        unreached.is_empty(),
        "failpoints no scenario reaches: {unreached:?}"
    );

    let mut covered = Vec::new();
    for (name, scenario) in &reached {
        let dir = prepare(emu, *scenario).await;
        fail::cfg(name, "1*panic").unwrap();
        let crashed = step(emu, &dir, *scenario).await;
        fail::remove(name);
        match crashed {
            // The fail crate panics with "failpoint <name> panic".
            Err(message) => assert!(
                message.contains(name.as_str()),
                "{name}: the run died elsewhere: {message}"
            ),
            Ok(_) => panic!("{name}: the {scenario:?} run did not reach the failpoint"),
        }
        // A fresh reconciler, all statuses lost.
        let report = step(emu, &dir, *scenario)
            .await
            .unwrap_or_else(|m| panic!("{name}: the run after the crash died: {m}"));
        check_ready(&report, *scenario == Scenario::Delete);
        let found = inventory(emu).await;
        assert_eq!(
            found, expected[scenario],
            "{name} ({scenario:?}): AWS differs from a run without a crash"
        );
        covered.push(format!("{name} ({scenario:?})"));
    }
    eprintln!(
        "crash points covered ({}):\n  {}",
        covered.len(),
        covered.join("\n  ")
    );
}

/// The Billing Conductor writes of 2025-26, each stopped by a crash: a TRANSFER_BILLING group
/// (Passthrough) created for an accepted BillingTransfer, an ITEMIZED SERVICE-filtered custom
/// line item on it created, then its filter changed. After each crash a fresh reconciler
/// leaves exactly one group (of the transfer) and one item (with the filter of the manifests).
#[tokio::test]
async fn billing_2026_writes_stopped_by_a_crash_leave_no_duplicate() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let manifests = |service: &str| {
        format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: aws, namespace: crash}}
stringData: {{accessKeyId: {ACCESS_KEY}, secretAccessKey: {SECRET_KEY}}}
---
apiVersion: partnerbilling.io/v1alpha1
kind: Payer
metadata: {{name: acme, namespace: crash}}
spec: {{accountId: "123456789012", credentials: {{secretRef: {{name: aws}}}}}}
---
apiVersion: partnerbilling.io/v1alpha1
kind: BillingTransfer
metadata: {{name: globex, namespace: crash, uid: uid-globex}}
spec:
  payerRef: {{name: acme}}
  customer: {{accountId: "777788889999"}}
  start: "{start}"
---
apiVersion: partnerbilling.io/v1alpha1
kind: BillingGroup
metadata: {{name: globex, namespace: crash, uid: uid-group}}
spec:
  payerRef: {{name: acme}}
  type: TRANSFER_BILLING
  responsibilityTransferRef: {{name: globex}}
  pricingPlanRef: {{name: Passthrough}}
---
apiVersion: partnerbilling.io/v1alpha1
kind: CustomLineItem
metadata: {{name: support, namespace: crash, uid: uid-item}}
spec:
  billingGroupRef: {{name: globex}}
  description: Support, on the services used
  type: FEE
  percentage: {{percent: 4}}
  computationRule: ITEMIZED
  lineItemFilter: {{attribute: SERVICE, matchOption: EQUAL, value: {service}}}
"#,
            start = first_of_month_after_next()
        )
    };
    let cases = [
        ("after:billingconductor:CreateBillingGroup", false),
        ("after:billingconductor:CreateCustomLineItem", false),
        ("after:billingconductor:UpdateCustomLineItem", true),
        ("before-status:BillingGroup", false),
        ("before-status:CustomLineItem", true),
    ];
    for (point, change) in cases {
        emu.control("POST", "/_emulator/reset", None);
        let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
        emu.create_organization(&cfg, 0).await;
        let dir = Dir::new();
        dir.write("bc.yaml", &manifests("AmazonEC2"));
        // The customer accepts the invitation the first run sends (the group waits for it:
        // not for long).
        let loaded = filemode::load(std::slice::from_ref(&dir.0), "crash")
            .unwrap_or_else(|p| panic!("{p:?}"));
        let first = filemode::apply(loaded, connector(emu), Duration::from_secs(2)).await;
        let transfer = first
            .objects
            .iter()
            .find(|o| o.kind == "BillingTransfer")
            .and_then(|o| o.object.as_ref())
            .and_then(|o| o["status"]["transferId"].as_str())
            .unwrap_or_else(|| panic!("{point}: no transfer id"))
            .to_string();
        emu.control(
            "POST",
            "/_emulator/services/transfers/accept",
            Some(json!({"transferId": transfer})),
        );
        if change {
            let converged = run(emu, &dir.0, false).await;
            assert!(
                converged.objects.iter().all(|o| o.ready),
                "{point}: {:?}",
                converged.objects
            );
            dir.write("bc.yaml", &manifests("AmazonS3"));
        }
        fail::cfg(point, "1*panic").unwrap();
        let path = dir.0.clone();
        let crashed = tokio::spawn(async move { run(emu, &path, false).await }).await;
        fail::remove(point);
        let message = match crashed {
            Err(e) => {
                let p = e.into_panic();
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            }
            Ok(_) => panic!("{point}: the run did not reach the failpoint"),
        };
        assert!(
            message.contains(point),
            "{point}: died elsewhere: {message}"
        );
        let after = run(emu, &dir.0, false).await;
        assert!(
            after.objects.iter().all(|o| o.ready),
            "{point}: {:?}",
            after.objects
        );
        let bc = aws_sdk_billingconductor::Client::new(&cfg);
        let groups = bc.list_billing_groups().send().await.unwrap();
        let types: Vec<&str> = groups
            .billing_groups()
            .iter()
            .map(|g| g.billing_group_type().map_or("", |t| t.as_str()))
            .collect();
        assert_eq!(types, ["TRANSFER_BILLING"], "{point}");
        let items = bc.list_custom_line_items().send().await.unwrap();
        let filters: Vec<Vec<String>> = items
            .custom_line_items()
            .iter()
            .map(|i| {
                i.charge_details()
                    .map(|c| c.line_item_filters())
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|f| f.attribute_values().to_vec())
                    .collect()
            })
            .collect();
        let want = if change { "AmazonS3" } else { "AmazonEC2" };
        assert_eq!(filters, vec![vec![want.to_string()]], "{point}");
    }
}

/// 00:00 UTC on the first day of the month after next (RFC 3339): a valid transfer start on
/// any day of this month.
fn first_of_month_after_next() -> String {
    let now = partner_billing_operator::time::now_rfc3339();
    let period = partner_billing_operator::time::billing_period(&now);
    let (y, m) = period.split_once('-').unwrap();
    let (y, m): (i32, u32) = (y.parse().unwrap(), m.parse().unwrap());
    let (y, m) = if m >= 11 { (y + 1, m - 10) } else { (y, m + 2) };
    format!("{y:04}-{m:02}-01T00:00:00Z")
}
