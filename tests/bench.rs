//! `make bench`: figures, not timed tests (ignored by `cargo test`; `make bench` runs them).
//!
//! 1. Steady state: for N LinkedAccounts (adopted) and M BillingGroups on one payer, converge
//!    once, then reconcile every object again as a fresh process holding the converged
//!    statuses (as the controller does after a restart or at resync), and count the AWS calls
//!    in the emulator, next to what a one-describe-per-object design would make.
//! 2. Creation slots: 100 accounts created while the emulator holds each creation
//!    IN_PROGRESS for a fixed time; the share of the 5 creation slots kept busy.
//!
//! One test here is not a benchmark and runs with `cargo test`:
//! `a_plan_reads_every_list_once_per_payer` fails when a plan reads a page of a list twice.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use partner_billing_operator::filemode::{self, Report};
use serde_json::{Value, json};

const KEY: &str = "AKIAPBOBENCH00000001";
const SECRET: &str = "pbo-bench-secret";

/// The objects, 500 to a file (a YAML file is parsed with a budget of 250,000 nodes, which
/// 5,000 objects with their statuses exceed).
fn write_docs(dir: &std::path::Path, docs: &[Value]) {
    for f in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    for (i, chunk) in docs.chunks(500).enumerate() {
        let text: String = chunk
            .iter()
            .map(|d| format!("---\n{}\n", serde_json::to_string(d).unwrap()))
            .collect();
        std::fs::write(dir.join(format!("objects-{i:03}.yaml")), text).unwrap();
    }
}

async fn apply_dir(emu: &common::Emulator, dir: &std::path::Path) -> Report {
    let m = filemode::load(&[dir.to_path_buf()], "bench")
        .unwrap_or_else(|p| panic!("{:?}", &p[..p.len().min(3)]));
    filemode::apply(m, common::connector(emu), Duration::from_secs(900)).await
}

fn calls(emu: &common::Emulator) -> (u64, BTreeMap<String, u64>) {
    let v = emu.control("GET", "/_emulator/requests", None);
    let mut by_op = BTreeMap::new();
    for c in v["counts"].as_array().unwrap() {
        by_op.insert(
            format!(
                "{}:{}",
                c["service"].as_str().unwrap(),
                c["operation"].as_str().unwrap()
            ),
            c["count"].as_u64().unwrap(),
        );
    }
    (v["total"].as_u64().unwrap(), by_op)
}

async fn steady_state(accounts: usize, groups: usize) {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let cfg = emu.sdk_config(KEY, SECRET, None).await;
    emu.create_organization(&cfg, 0).await;
    let ids: Vec<String> = serde_json::from_value(
        emu.control(
            "POST",
            "/_emulator/services/organizations/bulk-accounts",
            Some(json!({"count": accounts})),
        )["accountIds"]
            .clone(),
    )
    .unwrap();

    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws", "namespace": "bench"},
               "stringData": {"accessKeyId": KEY, "secretAccessKey": SECRET}}),
        json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer", "metadata": {"name": "acme", "namespace": "bench"},
               "spec": {"accountId": "123456789012", "credentials": {"secretRef": {"name": "aws"}}}}),
        json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "PricingPlan", "metadata": {"name": "plan", "namespace": "bench"},
               "spec": {"payerRef": {"name": "acme"}, "rules": [{"name": "markup", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 10}]}}),
    ];
    for (i, id) in ids.iter().enumerate() {
        docs.push(json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
            "metadata": {"name": format!("a{i:05}"), "namespace": "bench", "uid": format!("uid-a{i}")},
            "spec": {"payerRef": {"name": "acme"}, "adopt": {"accountId": id}}}));
    }
    for (g, primary) in ids.iter().take(groups).enumerate() {
        docs.push(json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "BillingGroup",
            "metadata": {"name": format!("g{g:04}"), "namespace": "bench", "uid": format!("uid-g{g}")},
            "spec": {"payerRef": {"name": "acme"}, "primaryAccount": primary, "pricingPlanRef": {"name": "plan"}}}));
    }
    let dir = std::env::temp_dir().join(format!("pbo-bench-{}-{accounts}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_docs(&dir, &docs);

    let started = Instant::now();
    let first = apply_dir(emu, &dir).await;
    let converge = started.elapsed();
    let not_ready = first.objects.iter().filter(|o| !o.ready).count();
    assert_eq!(
        not_ready,
        0,
        "{:?}",
        first.objects.iter().find(|o| !o.ready)
    );

    // The converged objects, with their statuses, as the controller's cache would hold them.
    let mut converged = vec![docs[0].clone()];
    converged.extend(first.objects.iter().filter_map(|o| o.object.clone()));
    write_docs(&dir, &converged);
    emu.control("DELETE", "/_emulator/requests", None);
    let started = Instant::now();
    let second = apply_dir(emu, &dir).await;
    let resync = started.elapsed();
    std::fs::remove_dir_all(&dir).ok();
    assert!(second.objects.iter().all(|o| o.ready));
    let (total, by_op) = calls(emu);
    let writes: u64 = by_op
        .iter()
        .filter(|(op, _)| {
            let op = op.split(':').nth(1).unwrap();
            !(op.starts_with("List") || op.starts_with("Describe") || op.starts_with("Get"))
        })
        .map(|(_, n)| n)
        .sum();
    // One describe per object: DescribeAccount, ListParentsForChild, ListPoliciesForTarget and
    // ListTagsForResource per account; GetBillingGroup-like reads, ListAccountAssociations and a
    // cost report per group.
    let naive = 4 * accounts as u64 + 3 * groups as u64;
    let objects = accounts + groups + 2;
    // The target of issue 20: one listing of the organization's accounts (the management
    // account included) and one of the billing groups, at AWS's page sizes, plus a small
    // constant per payer.
    let formula = (accounts as u64 + 1).div_ceil(20) + (groups as u64).div_ceil(100);
    println!(
        "bench steady-state: {accounts} LinkedAccounts + {groups} BillingGroups ({objects} objects): \
         converge {:.1} s; one resync {:.1} s with {total} AWS calls ({writes} writes), \
         {:.2} x the formula ceil({}/20) + ceil({groups}/100) = {formula} (+ a small constant per payer); \
         a one-describe-per-object design would make {naive} (computed: 4 per account, 3 per group; {:.1} x more)",
        converge.as_secs_f64(),
        resync.as_secs_f64(),
        total as f64 / formula as f64,
        accounts + 1,
        naive as f64 / total.max(1) as f64
    );
    println!("bench steady-state calls by operation: {by_op:?}");
    assert_eq!(writes, 0, "no write calls in steady state: {by_op:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with make bench"]
async fn bench_steady_state_1000_accounts_500_groups() {
    steady_state(1000, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with make bench"]
async fn bench_steady_state_5000_accounts_500_groups() {
    steady_state(5000, 500).await;
}

/// Share of the 5 creation slots kept busy while `count` accounts are created, each held
/// IN_PROGRESS for `hold` seconds by the emulator.
async fn creation_slots(count: usize, hold: f64) {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let cfg = emu.sdk_config(KEY, SECRET, None).await;
    emu.create_organization(&cfg, 0).await;
    emu.control(
        "POST",
        "/_emulator/services/organizations/settings",
        Some(json!({"createDelaySeconds": hold})),
    );
    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws", "namespace": "bench"},
               "stringData": {"accessKeyId": KEY, "secretAccessKey": SECRET}}),
        json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer", "metadata": {"name": "acme", "namespace": "bench"},
               "spec": {"accountId": "123456789012", "credentials": {"secretRef": {"name": "aws"}}}}),
    ];
    for i in 0..count {
        docs.push(json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
            "metadata": {"name": format!("n{i:04}"), "namespace": "bench", "uid": format!("uid-n{i}")},
            "spec": {"payerRef": {"name": "acme"}, "create": {"email": format!("n{i:04}@example.com"), "accountName": format!("n{i:04}")}}}));
    }
    let dir = std::env::temp_dir().join(format!("pbo-bench-slots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_docs(&dir, &docs);
    let started = Instant::now();
    let report = apply_dir(emu, &dir).await;
    let took = started.elapsed();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        report.objects.iter().all(|o| o.ready),
        "all accounts created"
    );
    let stats = emu.control(
        "POST",
        "/_emulator/services/organizations/stats",
        Some(json!({})),
    );
    let timeline: Vec<(f64, f64)> = stats["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(timeline.len(), count, "one CreateAccount per account");
    let first = timeline.iter().map(|t| t.0).fold(f64::MAX, f64::min);
    let last = timeline.iter().map(|t| t.1).fold(f64::MIN, f64::max);
    let busy: f64 = timeline.iter().map(|(a, b)| b - a).sum();
    let utilisation = busy / (5.0 * (last - first));
    let lists = emu.count("organizations", "ListCreateAccountStatus");
    let describes = emu.count("organizations", "DescribeCreateAccountStatus");
    println!(
        "bench creation-slots: {count} accounts, each IN_PROGRESS for {hold} s: the 5 slots were busy {:.1} % of the {:.1} s from the first request to the last completion (ideal {:.1} s); apply took {:.1} s; max in flight {}; {lists} ListCreateAccountStatus and {describes} DescribeCreateAccountStatus calls ({:.1} per account)",
        100.0 * utilisation,
        last - first,
        count as f64 * hold / 5.0,
        took.as_secs_f64(),
        stats["maxCreatesInFlight"],
        (lists + describes) as f64 / count as f64
    );
    assert!(stats["maxCreatesInFlight"].as_u64() <= Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with make bench"]
async fn bench_creation_slots_100_accounts() {
    creation_slots(100, 5.0).await;
}

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

/// LinkedAccount `i` of the watch-cache bench as a real API server serves it after `kubectl
/// apply` (client-side, as Argo CD does by default) and the operator's status writes: the
/// last-applied copy of the applied manifest in an annotation, and managedFields of two
/// managers (kubectl's Update of metadata and spec, the operator's Apply of the status
/// subresource) beside a converged status.
fn served_linked_account(i: usize) -> Value {
    let id = format!("{:012}", 100000000000u64 + i as u64);
    let name = format!("a{i:05}");
    let customer = format!("c{}", i % 500);
    let applied = json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
        "metadata": {"annotations": {}, "labels": {"customer": customer}, "name": name, "namespace": "bench"},
        "spec": {"adopt": {"accountId": id}, "payerRef": {"name": "acme"}, "tags": {"customer": customer, "env": "prod"}}});
    let condition_fields = json!({"k:{\"type\":\"Ready\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {},
        "f:observedGeneration": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
        "k:{\"type\":\"Synced\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {},
        "f:observedGeneration": {}, "f:reason": {}, "f:status": {}, "f:type": {}}});
    json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
        "metadata": {"name": name, "namespace": "bench", "uid": format!("5f0c2b7e-0000-4000-8000-{i:012}"),
            "resourceVersion": format!("{}", 100000 + i), "generation": 1,
            "creationTimestamp": "2026-11-24T11:59:00Z",
            "labels": {"customer": customer},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{applied}\n")},
            "finalizers": ["partnerbilling.io/cleanup"],
            "managedFields": [
                {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "partnerbilling.io/v1alpha1",
                 "time": "2026-11-24T11:59:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                                             "f:labels": {".": {}, "f:customer": {}}},
                              "f:spec": {".": {}, "f:adopt": {".": {}, "f:accountId": {}}, "f:payerRef": {".": {}, "f:name": {}},
                                         "f:tags": {".": {}, "f:customer": {}, "f:env": {}}}}},
                {"manager": "partner-billing-operator", "operation": "Update", "apiVersion": "partnerbilling.io/v1alpha1",
                 "time": "2026-11-24T11:59:01Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"partnerbilling.io/cleanup\"": {}}}}},
                {"manager": "partner-billing-operator", "operation": "Apply", "apiVersion": "partnerbilling.io/v1alpha1",
                 "time": "2026-11-24T12:00:00Z", "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:accountId": {}, "f:conditions": condition_fields, "f:email": {},
                     "f:joinedMethod": {}, "f:name": {}, "f:observedGeneration": {}, "f:parentId": {},
                     "f:state": {}, "f:tagsCheckedAt": {}}}}]},
        "spec": {"payerRef": {"name": "acme"}, "adopt": {"accountId": id},
            "tags": {"customer": customer, "env": "prod"}},
        "status": {"observedGeneration": 1, "accountId": id,
            "email": format!("{name}@example.com"), "name": name, "state": "ACTIVE",
            "joinedMethod": "CREATED", "parentId": "r-abcd", "tagsCheckedAt": "2026-11-24T12:00:00Z",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Active", "message": format!("account {id} ({name}@example.com) is ACTIVE in r-abcd"), "lastTransitionTime": "2026-11-24T12:00:00Z", "observedGeneration": 1},
                {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "message": "AWS was read and the changes it needed were made", "lastTransitionTime": "2026-11-24T12:00:00Z", "observedGeneration": 1}]}})
}

/// Fill a watch cache (kube's reflector store) with `n` served LinkedAccounts, parsed one at a
/// time from their JSON as a watch delivers them; through the controller's own cache step
/// (`for_cache`: managedFields and the last-applied copy dropped) when `strip`. Returns the
/// store, the resident memory it added and the time it took.
async fn fill_watch_cache(
    n: usize,
    strip: bool,
) -> (
    kube::runtime::reflector::Store<
        kube::core::DeserializeGuard<partner_billing_operator::api::LinkedAccount>,
    >,
    u64,
    Duration,
) {
    use futures::StreamExt;
    use kube::core::DeserializeGuard;
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    use partner_billing_operator::api::LinkedAccount;
    use partner_billing_operator::controller::watches::for_cache;
    let before = rss();
    let started = Instant::now();
    let (reader, writer) = reflector::store::<DeserializeGuard<LinkedAccount>>();
    let objects = (0..n).map(|i| {
        let text = serde_json::to_vec(&served_linked_account(i)).unwrap();
        let g: DeserializeGuard<LinkedAccount> = serde_json::from_slice(&text).unwrap();
        assert!(g.0.is_ok());
        Ok(watcher::Event::InitApply(g))
    });
    let events = futures::stream::iter(
        std::iter::once(Ok(watcher::Event::Init))
            .chain(objects)
            .chain(std::iter::once(Ok(watcher::Event::InitDone))),
    );
    if strip {
        for_cache(events)
            .reflect(writer)
            .for_each(|_| async {})
            .await;
    } else {
        events.reflect(writer).for_each(|_| async {}).await;
    }
    let took = started.elapsed();
    assert_eq!(reader.state().len(), n);
    (reader, rss().saturating_sub(before), took)
}

/// The controller's watch cache (kube's reflector store, as the controller runs it) holding
/// 10,000 LinkedAccounts with converged statuses, as a real API server serves them (managedFields
/// of two managers, the last-applied annotation): once through the controller's cache step
/// (what `run` holds), then as served (what it held before that step). The stripped cache is
/// filled first and kept, so that the second is not filled into memory the first freed.
#[tokio::test]
#[ignore = "benchmark: run with make bench"]
async fn bench_controller_cache_10000_objects() {
    use kube::ResourceExt;
    let n = 10_000;
    let served = serde_json::to_vec(&served_linked_account(0)).unwrap().len();
    let (stripped, stripped_rss, stripped_took) = fill_watch_cache(n, true).await;
    let (raw, raw_rss, raw_took) = fill_watch_cache(n, false).await;
    let one = stripped.state()[0].clone();
    assert!(
        one.managed_fields().is_empty()
            && !one
                .annotations()
                .contains_key("kubectl.kubernetes.io/last-applied-configuration")
    );
    assert!(!raw.state()[0].managed_fields().is_empty());
    println!(
        "bench controller-cache: one cached LinkedAccount's inline size (before its strings, maps and lists): {} bytes, of which metadata {} bytes",
        std::mem::size_of::<
            kube::core::DeserializeGuard<partner_billing_operator::api::LinkedAccount>,
        >(),
        std::mem::size_of::<kube::api::ObjectMeta>()
    );
    for (label, added, took) in [
        (
            "as served (managedFields, last-applied annotation)",
            raw_rss,
            raw_took,
        ),
        (
            "through the controller's cache step (both dropped)",
            stripped_rss,
            stripped_took,
        ),
    ] {
        println!(
            "bench controller-cache: {n} LinkedAccounts ({served} bytes of JSON each) in the watch cache {label}: {:.1} MiB resident more ({:.2} KiB per object); parsed and filled in {:.0} ms",
            added as f64 / 1048576.0,
            added as f64 / 1024.0 / n as f64,
            took.as_secs_f64() * 1000.0
        );
    }
}

/// A converged organization for the listing and tag tests: 45 members (three pages of
/// ListAccounts with the management account) in the root and in two OUs, an SCP, a pricing
/// plan and three billing groups, applied once. Returns the folder of manifests, the
/// documents and the member account ids.
async fn converged_organization(emu: &common::Emulator) -> (common::Dir, Vec<Value>, Vec<String>) {
    let cfg = emu.sdk_config(KEY, SECRET, None).await;
    emu.create_organization(&cfg, 0).await;
    // 45 members and the management account: three pages of ListAccounts.
    let ids: Vec<String> = serde_json::from_value(
        emu.control(
            "POST",
            "/_emulator/services/organizations/bulk-accounts",
            Some(json!({"count": 45})),
        )["accountIds"]
            .clone(),
    )
    .unwrap();
    let la = "partnerbilling.io/v1alpha1";
    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws", "namespace": "lists"},
               "stringData": {"accessKeyId": KEY, "secretAccessKey": SECRET}}),
        json!({"apiVersion": la, "kind": "Payer", "metadata": {"name": "acme", "namespace": "lists"},
               "spec": {"accountId": "123456789012", "credentials": {"secretRef": {"name": "aws"}}}}),
        json!({"apiVersion": la, "kind": "ServiceControlPolicy", "metadata": {"name": "deny-leave", "namespace": "lists"},
               "spec": {"payerRef": {"name": "acme"}, "document": {"Version": "2012-10-17",
                 "Statement": [{"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}]}}}),
        json!({"apiVersion": la, "kind": "OrganizationalUnit", "metadata": {"name": "customers", "namespace": "lists"},
               "spec": {"payerRef": {"name": "acme"}, "name": "Customers", "serviceControlPolicies": ["deny-leave"]}}),
        json!({"apiVersion": la, "kind": "OrganizationalUnit", "metadata": {"name": "customers-eu", "namespace": "lists"},
               "spec": {"payerRef": {"name": "acme"}, "name": "Customers-EU", "parentRef": {"name": "customers"}}}),
        json!({"apiVersion": la, "kind": "PricingPlan", "metadata": {"name": "plan", "namespace": "lists"},
               "spec": {"payerRef": {"name": "acme"}, "rules": [{"name": "markup", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 10}]}}),
    ];
    for (i, id) in ids.iter().enumerate() {
        let parent = match i % 3 {
            0 => json!({"parentRef": {"name": "customers"}}),
            1 => json!({"parentRef": {"name": "customers-eu"}}),
            _ => json!({}),
        };
        let mut spec = json!({"payerRef": {"name": "acme"}, "adopt": {"accountId": id}});
        spec.as_object_mut()
            .unwrap()
            .extend(parent.as_object().unwrap().clone());
        docs.push(json!({"apiVersion": la, "kind": "LinkedAccount",
            "metadata": {"name": format!("a{i:03}"), "namespace": "lists", "uid": format!("uid-l{i}")},
            "spec": spec}));
    }
    for (g, primary) in ids.iter().take(3).enumerate() {
        docs.push(json!({"apiVersion": la, "kind": "BillingGroup",
            "metadata": {"name": format!("g{g}"), "namespace": "lists", "uid": format!("uid-lg{g}")},
            "spec": {"payerRef": {"name": "acme"}, "primaryAccount": primary, "pricingPlanRef": {"name": "plan"}}}));
    }
    let dir = common::Dir::new();
    write_docs(&dir.0, &docs);
    let first = apply_dir(emu, &dir.0).await;
    assert!(
        first.objects.iter().all(|o| o.ready),
        "{:?}",
        first.objects.iter().find(|o| !o.ready)
    );

    (dir, docs, ids)
}

/// Every list read once per payer and pass (issue 20): `plan` over a converged organization
/// (one Payer with its accounts in the root and in two OUs, SCPs, a pricing plan and billing
/// groups) sends no `List*` request twice with the same URI and body, i.e. no page of any list
/// (accounts, accounts and OUs per parent, policies and their targets, billing groups, plans,
/// rules, associations...) is read again, the Payer's own view of the organization included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_reads_every_list_once_per_payer() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let (dir, _, _) = converged_organization(emu).await;
    let log =
        std::sync::Arc::new(partner_billing_operator::aws::interceptor::RequestLog::default());
    let connector = std::sync::Arc::new(
        std::sync::Arc::into_inner(common::connector(emu))
            .expect("a fresh connector")
            .with_request_log(log.clone()),
    );
    let m =
        filemode::load(std::slice::from_ref(&dir.0), "lists").unwrap_or_else(|p| panic!("{p:?}"));
    let report = filemode::plan(m, connector).await;
    assert!(
        report.objects.iter().all(|o| o.changes.is_empty()),
        "a converged plan changes nothing: {:?}",
        report.objects.iter().find(|o| !o.changes.is_empty())
    );
    let requests = log.requests();
    let mut by_op = BTreeMap::<String, usize>::new();
    for r in &requests {
        *by_op
            .entry(format!("{}:{}", r.service, r.operation))
            .or_default() += 1;
    }
    println!("plan over 45 accounts, 2 OUs, 3 billing groups: AWS calls by operation: {by_op:?}");
    let repeated = log.repeated_listings();
    assert!(
        repeated.is_empty(),
        "pages of a list read more than once in one plan: {repeated:#?}"
    );
    // The listings are there (the log sees them), each page of accounts once: 46 accounts
    // are three pages of 20.
    assert_eq!(
        by_op.get("organizations:ListAccounts"),
        Some(&3),
        "{by_op:?}"
    );
    assert_eq!(
        by_op.get("organizations:DescribeOrganization"),
        Some(&1),
        "{by_op:?}"
    );
}

/// `plan --refresh-tags=false` (issue 20, item 2): over converged accounts no tag is read; an
/// account the plan would move still has its ownership mark read first, and one another
/// object owns is refused before anything is planned for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_tag_refresh_only_accounts_about_to_be_written_have_their_tags_read() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let (dir, mut docs, ids) = converged_organization(emu).await;
    let options = filemode::RunOptions {
        refresh_tags: false,
    };
    // A plan, and the accounts whose tags it read (OUs and SCPs read theirs: not counted).
    let plan = |dir: std::path::PathBuf| async move {
        let log =
            std::sync::Arc::new(partner_billing_operator::aws::interceptor::RequestLog::default());
        let connector = std::sync::Arc::new(
            std::sync::Arc::into_inner(common::connector(emu))
                .expect("a fresh connector")
                .with_request_log(log.clone()),
        );
        let m = filemode::load(&[dir], "lists").unwrap_or_else(|p| panic!("{p:?}"));
        let report = filemode::plan_with(m, connector, options).await;
        let read: Vec<String> = log
            .requests()
            .into_iter()
            .filter(|r| r.service == "organizations" && r.operation == "ListTagsForResource")
            .filter_map(|r| {
                let body = r.request.split_once(' ')?.1.to_string();
                let v: Value = serde_json::from_str(&body).ok()?;
                let id = v["ResourceId"].as_str()?.to_string();
                id.chars().all(|c| c.is_ascii_digit()).then_some(id)
            })
            .collect();
        (report, read)
    };
    let (quiet, read) = plan(dir.0.clone()).await;
    assert!(quiet.objects.iter().all(|o| o.changes.is_empty()));
    assert_eq!(read, Vec::<String>::new(), "no account's tags are read");

    // a002 (in the root) is to move into an OU; a005 (in the root too) as well, but another
    // object has put its owner tag on that account.
    let cfg = emu.sdk_config(KEY, SECRET, None).await;
    aws_sdk_organizations::Client::new(&cfg)
        .tag_resource()
        .resource_id(&ids[5])
        .tags(
            aws_sdk_organizations::types::Tag::builder()
                .key("partnerbilling.io/owner")
                .value("elsewhere/linkedaccount/a005")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("TagResource");
    for name in ["a002", "a005"] {
        let doc = docs
            .iter_mut()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap();
        doc["spec"]["parentRef"] = json!({"name": "customers"});
    }
    write_docs(&dir.0, &docs);
    let (moved, mut read) = plan(dir.0.clone()).await;
    read.sort();
    let mut expected = vec![ids[2].clone(), ids[5].clone()];
    expected.sort();
    assert_eq!(read, expected, "only the two accounts about to be written");
    let report = |name: &str| {
        moved
            .objects
            .iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("{name} in the report"))
            .clone()
    };
    let a002 = report("a002");
    assert!(
        a002.changes.iter().any(|c| c.detail.contains("move from")),
        "{a002:?}"
    );
    let refused = report("a005");
    assert!(refused.changes.is_empty(), "{refused:?}");
    assert_eq!(refused.reason, "OwnedElsewhere", "{refused:?}");
}
