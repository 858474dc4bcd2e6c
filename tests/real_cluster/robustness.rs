//! What the operator survives on a real server: an object stored under an older, looser
//! schema that today's types cannot read, and being SIGKILLed in the middle of an account
//! creation.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::fixtures;
use super::harness::{
    CRD_SCHEMAS, Cluster, Operator, OperatorOptions, RELEASE_NAMESPACE, SERVICE_ACCOUNT, api,
    cluster, condition, delete_and_wait, emulated_organization, eventually, settled, wait_for,
};

const LINKED_ACCOUNTS: &str = "linkedaccounts.partnerbilling.io";
const ORG: &str = "/_emulator/services/organizations/";

fn linked_account(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

fn create(c: &Cluster, o: &Value) {
    let r = c.kubectl_stdin(&["create", "-f", "-"], &o.to_string());
    assert!(r.ok, "create {}: {}", fixtures::name(o), r.stderr);
}

/// A CRD as read from the server, made fit to `kubectl replace` (no resourceVersion: the
/// replace is unconditional).
fn replaceable(mut crd: Value) -> Value {
    let meta = crd["metadata"].as_object_mut().expect("metadata");
    for k in [
        "resourceVersion",
        "managedFields",
        "uid",
        "creationTimestamp",
        "generation",
    ] {
        meta.remove(k);
    }
    crd.as_object_mut().expect("crd").remove("status");
    crd
}

/// An older LinkedAccount CRD let `spec.tags` be anything; an object stored then with tags
/// as a list stays stored after today's CRD is back (the server does not revalidate stored
/// objects). The operator reports that object with a Warning Event and reconciles the other
/// LinkedAccounts of the namespace to Ready.
#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn an_object_stored_under_a_looser_crd_gets_a_warning_and_the_others_still_reconcile() {
    let c = cluster();
    let (emu, _guard, _) = emulated_organization(1).await;

    let admin = c.admin().await;
    let ns = c.namespace("pbo-e2e-loose").await;
    let suffix = ns.rsplit('-').next().unwrap_or("x").to_string();
    let acme = json!({"name": "acme"});
    let adopted = linked_account(
        &ns,
        "adopted",
        json!({"payerRef": acme, "adopt": {"email": fixtures::ADOPTED_EMAIL}}),
    );
    let created = linked_account(
        &ns,
        "created",
        json!({
            "payerRef": acme,
            "create": {"email": format!("aws+loose-{suffix}@example.com"), "accountName": format!("loose-{suffix}")},
            "tags": {"customer": "e2e"}
        }),
    );
    let broken_spec = json!({
        "payerRef": acme,
        "adopt": {"email": "nobody@example.com"},
        "tags": ["customer", "e2e"]
    });
    let broken = linked_account(&ns, "broken", broken_spec.clone());
    for o in [
        fixtures::secret(&ns, "acme-aws"),
        fixtures::payer(&ns, "acme", "acme-aws"),
        adopted,
        created,
    ] {
        create(c, &o);
    }

    {
        let _schemas = CRD_SCHEMAS.lock().await;
        let today: Value =
            serde_json::from_str(&c.kubectl_ok(&["get", "crd", LINKED_ACCOUNTS, "-o", "json"]))
                .expect("crd json");
        // Today's CRD refuses the object.
        let r = c.kubectl_stdin(
            &["create", "--dry-run=server", "-f", "-"],
            &broken.to_string(),
        );
        assert!(!r.ok, "today's CRD accepts tags as a list");
        assert!(r.stderr.contains("spec.tags"), "{}", r.stderr);

        // The looser CRD: tags may be anything.
        let mut loose = replaceable(today.clone());
        let versions = loose["spec"]["versions"].as_array_mut().expect("versions");
        assert_eq!(versions.len(), 1, "one version expected");
        versions[0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["tags"] = json!({
            "description": "AWS tags (an older, looser schema)",
            "x-kubernetes-preserve-unknown-fields": true
        });
        let r = c.kubectl_stdin(&["replace", "-f", "-"], &loose.to_string());
        assert!(r.ok, "replace with the loose CRD: {}", r.stderr);
        // The server switches to the new schema shortly after the update.
        eventually(
            "the object stored under the loose CRD",
            Duration::from_secs(30),
            || async {
                c.kubectl_stdin(&["create", "-f", "-"], &broken.to_string())
                    .ok
                    .then_some(())
            },
        )
        .await;

        // Today's CRD again, exactly as the chart installed it.
        let r = c.kubectl_stdin(&["replace", "-f", "-"], &replaceable(today).to_string());
        assert!(r.ok, "restore the CRD: {}", r.stderr);
        let probe = linked_account(&ns, "probe", broken_spec.clone());
        eventually(
            "today's CRD in force again",
            Duration::from_secs(30),
            || async {
                let r = c.kubectl_stdin(
                    &["create", "--dry-run=server", "-f", "-"],
                    &probe.to_string(),
                );
                (!r.ok && r.stderr.contains("spec.tags")).then_some(())
            },
        )
        .await;
    }
    // Not revalidated: the stored object still has its list.
    let stored = c.get_json("LinkedAccount", &ns, "broken");
    assert_eq!(
        stored["spec"]["tags"],
        json!(["customer", "e2e"]),
        "{stored}"
    );

    let kubeconfig = c.token_kubeconfig(RELEASE_NAMESPACE, SERVICE_ACCOUNT);
    let mut op = Operator::start(
        c,
        OperatorOptions {
            name: "loose",
            kubeconfig: &kubeconfig,
            emulator_url: &emu.url,
            namespaces: &[&ns],
            lease: None,
        },
    );

    // The others reconcile to Ready.
    for (kind, name) in [
        ("Payer", "acme"),
        ("LinkedAccount", "adopted"),
        ("LinkedAccount", "created"),
    ] {
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
    // The unreadable one: a Warning Event that says why, and nothing written on it.
    let events: Api<Event> = Api::namespaced(admin.clone(), &ns);
    let warning = eventually(
        "a Warning event about the unreadable LinkedAccount",
        Duration::from_secs(60),
        || async {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("LinkedAccount")
                            && r.name.as_deref() == Some("broken")
                    }) && e.type_.as_deref() == Some("Warning")
                })
        },
    )
    .await;
    let note = warning.note.clone().unwrap_or_default();
    eprintln!(
        "the event about the unreadable object: {:?}: {note}",
        warning.reason
    );
    assert_eq!(warning.reason.as_deref(), Some("InvalidObject"), "{note}");
    assert!(
        note.contains("cannot read this LinkedAccount") && note.contains("sequence"),
        "{note}"
    );
    let uid = stored["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(
        warning.regarding.as_ref().and_then(|r| r.uid.as_deref()),
        Some(uid)
    );
    let broken_now = api(&admin, &ns, "LinkedAccount")
        .get("broken")
        .await
        .expect("broken");
    assert!(broken_now.finalizers().is_empty(), "{broken_now:?}");
    assert!(
        broken_now.data.get("status").is_none_or(Value::is_null),
        "{broken_now:?}"
    );
    assert!(
        op.api_errors().is_empty(),
        "reconciles failed on Kubernetes API errors:\n{}",
        op.api_errors().join("\n")
    );

    // The unreadable object goes without the operator (it holds no finalizer); the others
    // release theirs.
    delete_and_wait(&admin, &ns, "LinkedAccount", "broken").await;
    for (kind, name) in [
        ("LinkedAccount", "created"),
        ("LinkedAccount", "adopted"),
        ("Payer", "acme"),
    ] {
        delete_and_wait(&admin, &ns, kind, name).await;
    }
    op.terminate(Duration::from_secs(30));
    c.delete_namespace(&ns).await;
}

/// SIGKILL while CreateAccount is IN_PROGRESS (the emulator holds it), after the request id
/// was written to the status: a fresh process follows that request to the end and never
/// sends a second CreateAccount.
#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn an_operator_killed_during_an_account_creation_finishes_it_after_a_restart() {
    let c = cluster();
    let (emu, _guard, aws) = emulated_organization(0).await;
    emu.control("DELETE", "/_emulator/requests", None);
    // Long enough to kill and restart within it on two slow cores.
    emu.control(
        "POST",
        &format!("{ORG}settings"),
        Some(json!({"createDelaySeconds": 8})),
    );

    let admin = c.admin().await;
    let ns = c.namespace("pbo-e2e-kill").await;
    let suffix = ns.rsplit('-').next().unwrap_or("x").to_string();
    let email = format!("aws+kill-{suffix}@example.com");
    for o in [
        fixtures::secret(&ns, "acme-aws"),
        fixtures::payer(&ns, "acme", "acme-aws"),
        linked_account(
            &ns,
            "created",
            json!({
                "payerRef": {"name": "acme"},
                "create": {"email": email, "accountName": format!("kill-{suffix}")},
                "deletionPolicy": "Retain"
            }),
        ),
    ] {
        create(c, &o);
    }
    let kubeconfig = c.token_kubeconfig(RELEASE_NAMESPACE, SERVICE_ACCOUNT);
    let start = |name: &str| {
        Operator::start(
            c,
            OperatorOptions {
                name,
                kubeconfig: &kubeconfig,
                emulator_url: &emu.url,
                namespaces: &[&ns],
                lease: None,
            },
        )
    };

    let mut first = start("kill-first");
    let creating = wait_for(
        &admin,
        &ns,
        "LinkedAccount",
        "created",
        "creating, with its request id",
        Duration::from_secs(60),
        |x| x.is_some_and(|x| x.data["status"]["createRequestId"].is_string()),
    )
    .await
    .expect("object");
    let request_id = creating.data["status"]["createRequestId"]
        .as_str()
        .expect("request id")
        .to_string();
    first.kill();
    // Argo CD waits on it: Progressing (Creating), not Degraded.
    let (health, message) = c.argocd_health(
        "LinkedAccount",
        &serde_json::to_value(&creating).expect("json"),
    );
    assert_eq!(health, "Progressing", "{message}");
    assert_eq!(emu.count("organizations", "CreateAccount"), 1);
    let ready = condition(&creating, "Ready").cloned().unwrap_or_default();
    eprintln!("killed with {request_id} in flight; Ready was {ready}");
    // Still in flight when the first process died: the restart has something to finish.
    let orgs = aws_sdk_organizations::Client::new(&aws);
    let in_flight = orgs
        .describe_create_account_status()
        .create_account_request_id(&request_id)
        .send()
        .await
        .expect("DescribeCreateAccountStatus")
        .create_account_status
        .and_then(|s| s.state)
        .expect("state");
    assert_eq!(in_flight.as_str(), "IN_PROGRESS");

    let mut second = start("kill-second");
    let done = wait_for(
        &admin,
        &ns,
        "LinkedAccount",
        "created",
        "Ready after the restart",
        Duration::from_secs(120),
        |x| x.is_some_and(|x| settled(x, "True")),
    )
    .await
    .expect("object");
    assert_eq!(
        emu.count("organizations", "CreateAccount"),
        1,
        "a second CreateAccount after the restart"
    );
    let with_email: Vec<String> = orgs
        .list_accounts()
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flat_map(|page| page.expect("ListAccounts").accounts.unwrap_or_default())
        .filter(|a| a.email.as_deref() == Some(email.as_str()))
        .filter_map(|a| a.id)
        .collect();
    assert_eq!(with_email.len(), 1, "accounts with {email}: {with_email:?}");
    assert_eq!(
        done.data["status"]["accountId"].as_str(),
        Some(with_email[0].as_str()),
        "{:?}",
        done.data["status"]
    );
    // Retained: the finalizer goes without touching the account.
    delete_and_wait(&admin, &ns, "LinkedAccount", "created").await;
    delete_and_wait(&admin, &ns, "Payer", "acme").await;
    second.terminate(Duration::from_secs(30));
    c.delete_namespace(&ns).await;
}
