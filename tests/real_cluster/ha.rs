//! Two operator processes with `--leader-election` on the real server: one leads and
//! reconciles, the other stands by and is still ready (what a rolling update waits for), and
//! killing the leader hands over within the lease.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::await_condition;
use serde_json::json;

use super::fixtures;
use super::harness::{
    Operator, OperatorOptions, RELEASE_NAMESPACE, SERVICE_ACCOUNT, api, cluster,
    delete_and_wait_for_uid, emulated_organization, eventually, poll, settled, wait_for,
};

fn holder(lease: Option<&Lease>) -> Option<String> {
    lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())
}

#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn one_of_two_replicas_leads_the_other_is_ready_and_takes_over_when_it_dies() {
    let c = cluster();
    let (emu, _guard, _) = emulated_organization(0).await;

    let admin = c.admin().await;
    let ns = c.namespace("pbo-e2e-ha").await;
    for o in [
        fixtures::secret(&ns, "acme-aws"),
        fixtures::payer(&ns, "acme", "acme-aws"),
    ] {
        let r = c.kubectl_stdin(&["create", "-f", "-"], &o.to_string());
        assert!(r.ok, "{}", r.stderr);
    }
    let kubeconfig = c.token_kubeconfig(RELEASE_NAMESPACE, SERVICE_ACCOUNT);
    let lease_name = format!("pbo-e2e-ha-{}", ns.rsplit('-').next().unwrap_or("x"));
    let start = |name: &str| {
        Operator::start(
            c,
            OperatorOptions {
                name,
                kubeconfig: &kubeconfig,
                emulator_url: &emu.url,
                namespaces: &[&ns],
                lease: Some(&lease_name),
            },
        )
    };
    let mut replicas = vec![start("replica-a"), start("replica-b")];

    // One holds the Lease.
    let leases: Api<Lease> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let held = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(leases.clone(), &lease_name, |l: Option<&Lease>| {
            holder(l).is_some()
        }),
    )
    .await
    .expect("a replica took the lease within 30s")
    .expect("watch the lease");
    let leader_name = holder(held.as_ref()).expect("holder");
    let leader_at = replicas
        .iter()
        .position(|r| r.name == leader_name)
        .unwrap_or_else(|| panic!("the lease names {leader_name}, not one of ours"));
    let mut leader = replicas.remove(leader_at);
    let standby = replicas.pop().expect("the other replica");

    // Both are ready: the standby too, with the reason it does not reconcile.
    for r in [&leader, &standby] {
        let body = poll(
            &format!("{} ready", r.name),
            Duration::from_secs(30),
            || match r.get("/readyz") {
                Some((200, body)) => Some(body),
                _ => None,
            },
        )
        .await;
        assert_eq!(r.get("/healthz").map(|(code, _)| code), Some(200));
        // The exact role (src/controller/health.rs: "ready: {role}..."): "standby, waiting
        // for the leader lease" contains "leader", so `contains` could not tell them apart.
        let prefix = if r.name == leader_name {
            "ready: leader"
        } else {
            "ready: standby"
        };
        assert!(body.starts_with(prefix), "{}: {body}", r.name);
    }

    // Only the leader reconciles.
    wait_for(
        &admin,
        &ns,
        "Payer",
        "acme",
        "Ready",
        Duration::from_secs(60),
        |x| x.is_some_and(|x| settled(x, "True")),
    )
    .await;
    assert!(leader.reconciles("Payer") >= 1, "{}", leader.log_text());
    assert_eq!(
        standby.reconciles("Payer"),
        0,
        "the standby reconciled:\n{}",
        standby.log_text()
    );
    assert!(!standby.log_text().contains("starting controller"));

    // The leader dies without a word (SIGKILL): the standby takes over once the lease runs out.
    let lease_seconds = held
        .as_ref()
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.lease_duration_seconds)
        .expect("lease duration");
    let killed = Instant::now();
    leader.kill();
    let standby_name = standby.name.clone();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(leases.clone(), &lease_name, move |l: Option<&Lease>| {
            holder(l).as_deref() == Some(standby_name.as_str())
        }),
    )
    .await
    .expect("the standby took the lease within 60s")
    .expect("watch the lease");
    let handover = killed.elapsed();
    eprintln!(
        "leader killed; {} took over after {:.1} s (lease {lease_seconds} s)",
        standby.name,
        handover.as_secs_f64()
    );
    // It waits for the lease to run out (never earlier), and takes it at a try (every 2 s,
    // src/controller/leader.rs) after that: up to two tries late on a slow, shared machine
    // (a try that starts just before the lease runs out, and a slow one), plus 3 s of slack
    // for the processes and the watch.
    let lease = Duration::from_secs(u64::try_from(lease_seconds).expect("positive"));
    let retry = Duration::from_secs(2);
    assert!(
        handover >= lease - Duration::from_secs(3)
            && handover <= lease + 2 * retry + Duration::from_secs(3),
        "handover after {handover:?}, lease {lease:?}"
    );

    // The new leader reconciles: a spec change is observed.
    api(&admin, &ns, "Payer")
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"maxClosuresPer30Days": 5}})),
        )
        .await
        .expect("change the payer");
    wait_for(
        &admin,
        &ns,
        "Payer",
        "acme",
        "Ready for generation 2",
        Duration::from_secs(60),
        |x| x.is_some_and(|x| x.metadata.generation == Some(2) && settled(x, "True")),
    )
    .await;
    assert!(standby.reconciles("Payer") >= 1);
    let body = eventually("new leader says so", Duration::from_secs(10), || async {
        standby
            .get("/readyz")
            .filter(|(code, body)| *code == 200 && body.starts_with("ready: leader"))
    })
    .await;
    assert!(body.1.starts_with("ready: leader"), "{}", body.1);

    // Clean up while it runs (the finalizer needs it), then stop it.
    delete_and_wait_for_uid(&admin, &ns, "Payer", "acme", "deleted").await;
    let mut standby = standby;
    let status = standby.terminate(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    c.delete_namespace(&ns).await;
}
