//! Planner time per object, in the optimised (`bench`) profile: the pure planning steps a
//! resync runs for each object — the SCP attachment plan and tag comparison per
//! LinkedAccount, membership and rival-group check per BillingGroup — over a snapshot of
//! 5,000 accounts and 500 groups. A small harness of its own (`harness = false`, no
//! statistics crate, to keep the dependencies lean): a warm-up run, then `SAMPLES` timed
//! runs; it prints the median and the fastest per object. Run with `make bench` or
//! `cargo bench --bench planner`.

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::time::Instant;

use partner_billing_operator::api::{BillingGroup, LinkedAccount};
use partner_billing_operator::aws::organizations::{
    Account, AccountState, Organization, PolicySummary, Root, Tags,
};
use partner_billing_operator::billing::billing_group::{membership, wanted_members};
use partner_billing_operator::billing::snapshot::BillingSnapshot;
use partner_billing_operator::organizations::attachment_plan;
use partner_billing_operator::payer::snapshot::OrgSnapshot;
use partner_billing_operator::reconcile::tags::tag_changes;

const SAMPLES: usize = 15;

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs this too, without it: then
/// every step runs once, as a check, and no figure is printed (a debug build's time is not
/// the figure).
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Median and fastest of `SAMPLES` runs of `run` (after one warm-up), in nanoseconds per
/// object (`objects` per run).
fn measure(objects: usize, mut run: impl FnMut() -> usize) -> (f64, f64) {
    black_box(run());
    if !benchmarking() {
        return (0.0, 0.0);
    }
    let mut per_object: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let started = Instant::now();
            black_box(run());
            started.elapsed().as_nanos() as f64 / objects as f64
        })
        .collect();
    per_object.sort_by(f64::total_cmp);
    (per_object[SAMPLES / 2], per_object[0])
}

/// The organization of the benchmark: `ids` under the root, five SCPs attached to every
/// first, second, ... fifth account.
fn org_snapshot(ids: &[String]) -> OrgSnapshot {
    OrgSnapshot {
        organization: Organization {
            id: "o-bench".into(),
            arn: "arn:aws:organizations::123456789012:organization/o-bench".into(),
            feature_set: "ALL".into(),
            management_account_id: "123456789012".into(),
        },
        root: Root {
            id: "r-abcd".into(),
            arn: "arn:root".into(),
            scp_enabled: true,
        },
        accounts: ids
            .iter()
            .map(|id| Account {
                id: id.clone(),
                email: format!("{id}@example.com"),
                name: id.clone(),
                state: AccountState::Active,
                joined_method: "CREATED".into(),
            })
            .collect(),
        ous: Vec::new(),
        parent_of: ids
            .iter()
            .map(|id| (id.clone(), "r-abcd".to_string()))
            .collect(),
        policies: (0..5)
            .map(|p| PolicySummary {
                id: format!("p-{p}"),
                arn: format!("arn:p-{p}"),
                name: format!("scp-{p}"),
                description: String::new(),
                aws_managed: false,
            })
            .collect(),
        targets: (0..5)
            .map(|p| {
                (
                    format!("p-{p}"),
                    ids.iter().step_by(p + 1).cloned().collect(),
                )
            })
            .collect::<HashMap<_, _>>(),
        creates_in_progress: Vec::new(),
        invitations: Vec::new(),
        index: Default::default(),
    }
}

/// ARN of billing group `g`.
fn group_arn(g: usize) -> String {
    format!("arn:aws:billingconductor::123456789012:billinggroup/{g:010}")
}

/// The Billing Conductor snapshot: every account associated with one of `groups` groups.
fn billing_snapshot(ids: &[String], groups: usize) -> BillingSnapshot {
    BillingSnapshot {
        current_period: "2026-11".into(),
        previous_period: "2026-10".into(),
        rules: Vec::new(),
        plans: Vec::new(),
        plan_rules: HashMap::new(),
        groups: Vec::new(),
        group_of: ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), group_arn(i % groups)))
            .collect(),
        items: Vec::new(),
        costs: HashMap::new(),
        index: Default::default(),
    }
}

/// The LinkedAccounts of a group's members.
fn account_objects(ids: &[String]) -> Vec<LinkedAccount> {
    ids.iter()
        .take(20)
        .enumerate()
        .map(|(i, id)| {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
                "metadata": {"name": format!("a{i:05}"), "namespace": "bench", "labels": {"customer": format!("c{}", i % 7)}},
                "spec": {"payerRef": {"name": "acme"}, "adopt": {"accountId": id}},
                "status": {"accountId": id}
            }))
            .expect("a LinkedAccount")
        })
        .collect()
}

/// Another group, for the rival check.
fn rival(ids: &[String]) -> BillingGroup {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "BillingGroup",
        "metadata": {"name": "rival", "namespace": "bench"},
        "spec": {"payerRef": {"name": "acme"}, "primaryAccount": ids[1], "pricingPlanRef": {"name": "plan"},
                 "accounts": ["a00003", ids[4]], "accountSelector": {"matchLabels": {"customer": "c9"}}}
    }))
    .expect("a BillingGroup")
}

/// Per LinkedAccount: the SCP attachment plan and the tag comparison (median, fastest).
fn measure_accounts(ids: &[String], org: &OrgSnapshot) -> (f64, f64) {
    let desired = vec![
        ("scp-0".to_string(), "p-0".to_string()),
        ("scp-1".to_string(), "p-1".to_string()),
    ];
    let managed: BTreeSet<String> = (0..5).map(|p| format!("scp-{p}")).collect();
    let tags: Tags = [
        ("customer", "c1"),
        ("env", "prod"),
        ("partnerbilling.io/owner", "bench/LinkedAccount/a"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    measure(ids.len(), || {
        let mut attach = 0usize;
        for id in ids {
            let plan = attachment_plan(id, &desired, &managed, org).expect("a plan");
            attach += plan.attach.len();
            let (set, remove) = tag_changes(&tags, &tags);
            assert!(set.is_empty() && remove.is_empty());
        }
        attach
    })
}

/// Per BillingGroup: membership over the associations and the rival check (median,
/// fastest).
fn measure_groups(ids: &[String], groups: usize) -> (f64, f64) {
    let billing = billing_snapshot(ids, groups);
    let account_objects = account_objects(ids);
    let rival = rival(ids);
    let mut held = 0usize;
    let figures = measure(groups, || {
        let mut rivals = 0usize;
        for g in 0..groups {
            let wanted: BTreeSet<String> = ids.iter().skip(g).step_by(groups).cloned().collect();
            let plan = membership(Some(&group_arn(g)), &ids[g], &wanted, &billing);
            held += plan.held_elsewhere.len() + plan.associate.len();
            let members: Vec<String> = wanted.into_iter().collect();
            rivals += wanted_members(&rival, &members, &account_objects).len();
        }
        rivals
    });
    assert_eq!(held, 0, "the snapshot already holds every wanted account");
    figures
}

fn main() {
    let (accounts, groups) = (5_000usize, 500usize);
    let ids: Vec<String> = (0..accounts)
        .map(|i| format!("{:012}", 100000000000u64 + i as u64))
        .collect();
    let (account_median, account_min) = measure_accounts(&ids, &org_snapshot(&ids));
    let (group_median, group_min) = measure_groups(&ids, groups);
    if !benchmarking() {
        println!("planner benchmark: checked once (run `cargo bench --bench planner` for figures)");
        return;
    }
    println!(
        "bench planner: per LinkedAccount (SCP attachment plan + tag comparison over a 5,000-account snapshot) median {:.1} us, fastest {:.1} us; per BillingGroup (membership over 5,000 associations + rival check) median {:.1} us, fastest {:.1} us; optimised build, {SAMPLES} samples",
        account_median / 1000.0,
        account_min / 1000.0,
        group_median / 1000.0,
        group_min / 1000.0
    );
}
