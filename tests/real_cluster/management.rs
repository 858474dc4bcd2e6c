//! `managementPolicy: Observe` and the `partnerbilling.io/paused` annotation through the
//! controller on the real API server, against the AWS emulator: Observe objects get `Drifted`
//! (and Argo CD's Degraded) while the emulator counts no write, also when they are deleted
//! (a LinkedAccount with `deletionPolicy: Close`, a BillingGroup with `Delete`); paused
//! objects get `Paused` (Argo CD's Suspended) and the emulator counts no request at all, also
//! when one is deleted; removing the annotation resumes.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::fixtures;
use super::harness::{
    Cluster, Operator, OperatorOptions, RELEASE_NAMESPACE, SERVICE_ACCOUNT, api, cluster,
    condition, delete_and_wait_for_uid, emulated_organization, settled, wait_for,
};

const PAUSED: &str = partner_billing_operator::api::common::PAUSED_ANNOTATION;

/// Operations that only read: every other request the emulator counts is a write.
fn is_read(service: &str, operation: &str) -> bool {
    service == "sts"
        || ["List", "Describe", "Get", "Head"]
            .iter()
            .any(|p| operation.starts_with(p))
}

/// The write requests the emulator counted since its counts were cleared.
fn writes(emu: &crate::common::Emulator) -> Vec<(String, String, u64)> {
    let v = emu.control("GET", "/_emulator/requests", None);
    v["counts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["service"].as_str().unwrap_or_default().to_string(),
                c["operation"].as_str().unwrap_or_default().to_string(),
                c["count"].as_u64().unwrap_or(0),
            )
        })
        .filter(|(s, o, n)| *n > 0 && !is_read(s, o))
        .collect()
}

fn object(kind: &str, ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "partnerbilling.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

/// The payer's member accounts (sorted).
async fn member_ids(aws: &aws_config::SdkConfig) -> Vec<String> {
    let orgs = aws_sdk_organizations::Client::new(aws);
    let listed = orgs.list_accounts().send().await.expect("ListAccounts");
    let mut ids: Vec<String> = listed
        .accounts()
        .iter()
        .filter_map(|a| a.id().map(str::to_string))
        .filter(|id| id != super::harness::PAYER_ACCOUNT)
        .collect();
    ids.sort();
    ids
}

async fn account_active(aws: &aws_config::SdkConfig, id: &str) -> bool {
    let orgs = aws_sdk_organizations::Client::new(aws);
    let a = orgs
        .describe_account()
        .account_id(id)
        .send()
        .await
        .expect("DescribeAccount");
    a.account().and_then(|a| a.state()).map(|s| s.as_str()) == Some("ACTIVE")
}

async fn group_names(aws: &aws_config::SdkConfig) -> Vec<String> {
    let bc = aws_sdk_billingconductor::Client::new(aws);
    let out = bc
        .list_billing_groups()
        .send()
        .await
        .expect("ListBillingGroups");
    out.billing_groups()
        .iter()
        .filter_map(|g| g.name().map(str::to_string))
        .collect()
}

fn operator(c: &Cluster, name: &str, emu: &crate::common::Emulator, ns: &str) -> Operator {
    let kubeconfig = c.token_kubeconfig(RELEASE_NAMESPACE, SERVICE_ACCOUNT);
    Operator::start(
        c,
        OperatorOptions {
            name,
            kubeconfig: &kubeconfig,
            emulator_url: &emu.url,
            namespaces: &[ns],
            lease: None,
        },
    )
}

async fn patch(admin: &kube::Client, ns: &str, kind: &str, name: &str, body: Value) {
    api(admin, ns, kind)
        .patch(name, &PatchParams::default(), &Patch::Merge(body))
        .await
        .unwrap_or_else(|e| panic!("patch {kind} {name}: {e}"));
}

/// Wait until condition `type_` of `kind/name` has `status`, for the object's generation.
async fn wait_condition(
    admin: &kube::Client,
    ns: &str,
    kind: &str,
    name: &str,
    type_: &str,
    status: &str,
) -> kube::api::DynamicObject {
    wait_for(
        admin,
        ns,
        kind,
        name,
        &format!("{type_}={status}"),
        Duration::from_secs(90),
        |x| {
            x.is_some_and(|x| {
                condition(x, type_).is_some_and(|c| {
                    c["status"] == status
                        && c["observedGeneration"].as_i64() == x.metadata.generation
                })
            })
        },
    )
    .await
    .expect("object")
}

#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn observe_and_paused_objects_through_the_controller() {
    let c = cluster();
    let (emu, _guard, aws) = emulated_organization(3).await;
    let ids = member_ids(&aws).await;
    let admin = c.admin().await;
    let ns = c.namespace("pbo-e2e-observe").await;
    let acme = json!({"name": "acme"});
    let objects = [
        fixtures::secret(&ns, "acme-aws"),
        fixtures::payer(&ns, "acme", "acme-aws"),
        object(
            "PricingPlan",
            &ns,
            "standard",
            json!({"payerRef": acme, "rules": [{"name": "global", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 10}]}),
        ),
        object(
            "BillingGroup",
            &ns,
            "observed-group",
            json!({"payerRef": acme, "primaryAccount": ids[0], "pricingPlanRef": {"name": "standard"}, "description": "first", "deletionPolicy": "Delete"}),
        ),
        object(
            "LinkedAccount",
            &ns,
            "observed-account",
            json!({"payerRef": acme, "adopt": {"accountId": ids[1]}, "tags": {"team": "a"}, "deletionPolicy": "Close"}),
        ),
        object(
            "LinkedAccount",
            &ns,
            "paused-account",
            json!({"payerRef": acme, "adopt": {"accountId": ids[2]}, "tags": {"team": "a"}, "deletionPolicy": "Close"}),
        ),
    ];
    for o in &objects {
        let r = c.kubectl_stdin(&["create", "-f", "-"], &o.to_string());
        assert!(r.ok, "create {}: {}", fixtures::name(o), r.stderr);
    }

    // Managed first: everything exists in AWS as specified.
    let mut op = operator(c, "observe-manage", emu, &ns);
    for o in &objects[1..] {
        let (kind, name) = (fixtures::kind(o), fixtures::name(o));
        wait_for(
            &admin,
            &ns,
            kind,
            name,
            "Ready",
            Duration::from_secs(120),
            |x| x.is_some_and(|x| settled(x, "True")),
        )
        .await;
    }
    op.terminate(Duration::from_secs(30));

    // Observe, with specs AWS no longer matches; counted from here, under a new operator.
    patch(
        &admin,
        &ns,
        "BillingGroup",
        "observed-group",
        json!({"spec": {"managementPolicy": "Observe", "description": "second"}}),
    )
    .await;
    patch(
        &admin,
        &ns,
        "LinkedAccount",
        "observed-account",
        json!({"spec": {"managementPolicy": "Observe", "tags": {"team": "b"}}}),
    )
    .await;
    emu.control("DELETE", "/_emulator/requests", None);
    let op = operator(c, "observe", emu, &ns);
    for (kind, name, needle) in [
        (
            "BillingGroup",
            "observed-group",
            "would update billing group observed-group",
        ),
        ("LinkedAccount", "observed-account", "would update tags of"),
    ] {
        let found = wait_condition(&admin, &ns, kind, name, "Drifted", "True").await;
        let drifted = condition(&found, "Drifted").expect("Drifted");
        assert!(
            drifted["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle)),
            "{kind} {name}: {drifted}"
        );
        assert!(
            settled(&found, "True"),
            "{kind} {name}: {:?}",
            found.data["status"]
        );
        assert_eq!(
            condition(&found, "Ready").expect("Ready")["reason"],
            "Observed"
        );
        let (health, message) = c.argocd_health(kind, &c.get_json(kind, &ns, name));
        assert_eq!(
            health, "Degraded",
            "Argo CD health of {kind} {name}: {message}"
        );
        assert!(message.starts_with("Drifted: "), "{message}");
    }
    // The unchanged plan, still managed, stays Healthy and makes no write either.
    let (health, _) = c.argocd_health("PricingPlan", &c.get_json("PricingPlan", &ns, "standard"));
    assert_eq!(health, "Healthy");
    assert_eq!(writes(emu), vec![], "Observe objects: no write call");

    // Deleting them (Close, Delete) releases them without a write: the account stays open and
    // the group stays in AWS.
    delete_and_wait_for_uid(&admin, &ns, "LinkedAccount", "observed-account", "released").await;
    delete_and_wait_for_uid(&admin, &ns, "BillingGroup", "observed-group", "released").await;
    assert_eq!(writes(emu), vec![], "Observe deletion: no write call");
    assert_eq!(emu.count("organizations", "CloseAccount"), 0);
    assert!(
        account_active(&aws, &ids[1]).await,
        "the Observe account was closed"
    );
    assert!(
        group_names(&aws)
            .await
            .contains(&"observed-group".to_string()),
        "the Observe group was deleted"
    );
    drop(op);

    // Paused: every remaining object (the Payer too), one with a spec change. Not one AWS
    // request from here on, also when the paused account (Close) is deleted.
    for (kind, name) in [
        ("Payer", "acme"),
        ("PricingPlan", "standard"),
        ("LinkedAccount", "paused-account"),
    ] {
        patch(
            &admin,
            &ns,
            kind,
            name,
            json!({"metadata": {"annotations": {PAUSED: "true"}}}),
        )
        .await;
    }
    patch(
        &admin,
        &ns,
        "LinkedAccount",
        "paused-account",
        json!({"spec": {"tags": {"team": "b"}}}),
    )
    .await;
    emu.control("DELETE", "/_emulator/requests", None);
    let op = operator(c, "paused", emu, &ns);
    for (kind, name) in [
        ("Payer", "acme"),
        ("PricingPlan", "standard"),
        ("LinkedAccount", "paused-account"),
    ] {
        let found = wait_condition(&admin, &ns, kind, name, "Paused", "True").await;
        assert_eq!(
            condition(&found, "Synced").expect("Synced")["reason"],
            "Paused"
        );
        let (health, message) = c.argocd_health(kind, &c.get_json(kind, &ns, name));
        assert_eq!(
            health, "Suspended",
            "Argo CD health of {kind} {name}: {message}"
        );
    }
    // A second look at each (a resync) changes nothing either.
    super::harness::poll(
        "every object reconciled twice",
        Duration::from_secs(60),
        || {
            ["Payer", "PricingPlan", "LinkedAccount"]
                .iter()
                .all(|k| op.reconciles(k) >= 2)
                .then_some(())
        },
    )
    .await;
    delete_and_wait_for_uid(&admin, &ns, "LinkedAccount", "paused-account", "released").await;
    assert_eq!(
        emu.total_requests(),
        0,
        "paused: no AWS request at all: {}",
        emu.control("GET", "/_emulator/requests", None)
    );
    assert!(
        account_active(&aws, &ids[2]).await,
        "the paused account was closed"
    );

    // Resumed: the annotation goes, the Paused condition too, and the objects are Ready.
    for (kind, name) in [("Payer", "acme"), ("PricingPlan", "standard")] {
        patch(
            &admin,
            &ns,
            kind,
            name,
            json!({"metadata": {"annotations": {PAUSED: null}}}),
        )
        .await;
    }
    for (kind, name) in [("Payer", "acme"), ("PricingPlan", "standard")] {
        let found = wait_for(
            &admin,
            &ns,
            kind,
            name,
            "resumed",
            Duration::from_secs(90),
            |x| x.is_some_and(|x| condition(x, "Paused").is_none() && settled(x, "True")),
        )
        .await
        .expect("object");
        assert_eq!(
            condition(&found, "Synced").expect("Synced")["status"],
            "True"
        );
    }
    assert!(emu.total_requests() > 0, "resumed objects read AWS again");
    drop(op);
    c.delete_namespace(&ns).await;
}
