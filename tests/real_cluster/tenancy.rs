//! Tenancy by RBAC, decided by the real server through impersonation (the suite's admin may
//! impersonate): the chart's payer-admin manages partnerbilling objects in its namespace only,
//! a viewer only reads, platform-admin manages every namespace, the aggregated built-in roles
//! carry the same rights, and the operator's own ServiceAccount has what it needs and no more.
//! Grants (issue 17): a payer-admin's Payer that would have the operator assume a role is
//! refused (`NotGranted`, no AWS call) until a platform-admin's PayerGrant covers it; a grant
//! for one namespace does not cover another; payer-admin cannot write grants; removing the
//! grant stops the Payer; the external id read from a Secret shows nowhere.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use super::fixtures;
use serde_json::{Value, json};

use super::harness::{
    ACCESS_KEY, Cluster, Operator, OperatorOptions, PAYER_ADMIN, PLATFORM_ADMIN, RELEASE,
    RELEASE_NAMESPACE, SECRET_KEY, SERVICE_ACCOUNT, TENANT_A, TENANT_B, VALUES_GRANT, cluster,
    condition, eventually, wait_for,
};

const VIEWER: &str = "e2e-vera";
const VIEW: &str = "e2e-victor";
const EDIT: &str = "e2e-edna";

/// Clients that impersonate one user each (the suite's admin may impersonate).
#[derive(Default)]
struct Users(HashMap<String, Client>);

impl Users {
    async fn client(&mut self, c: &Cluster, user: &str) -> Client {
        if let Some(client) = self.0.get(user) {
            return client.clone();
        }
        let kc = Kubeconfig::read_from(&c.kubeconfig).expect("kubeconfig");
        let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("config");
        config.auth_info.impersonate = Some(user.to_string());
        let client = Client::try_from(config).expect("client");
        self.0.insert(user.to_string(), client.clone());
        client
    }

    /// What `kubectl auth can-i --as user` asks: a SelfSubjectAccessReview made as `user`.
    /// `resource` is `plural[/subresource]`, with `.group` for other groups than
    /// partnerbilling.io and core (`leases.coordination.k8s.io`).
    async fn can(
        &mut self,
        c: &Cluster,
        user: &str,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
    ) -> bool {
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, s)) => (r, Some(s.to_string())),
            None => (resource, None),
        };
        let (resource, group) = match resource.split_once('.') {
            Some((r, g)) => (r, g),
            None if resource == "secrets" => (resource, ""),
            None => (resource, "partnerbilling.io"),
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.to_string()),
                    resource: Some(resource.to_string()),
                    subresource,
                    verb: Some(verb.to_string()),
                    namespace: ns.map(str::to_string),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client(c, user).await);
        api.create(&PostParams::default(), &review)
            .await
            .expect("SelfSubjectAccessReview")
            .status
            .is_some_and(|s| s.allowed)
    }

    /// Wait until `user` may do it (an aggregated role is filled in by a controller).
    async fn until_allowed(
        &mut self,
        c: &Cluster,
        user: &str,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.can(c, user, verb, resource, ns).await {
            assert!(
                Instant::now() < deadline,
                "{user} still may not {verb} {resource} after 30s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn expect(
        &mut self,
        c: &Cluster,
        user: &str,
        verb: &str,
        resource: &str,
        ns: Option<&str>,
        allowed: bool,
    ) {
        assert_eq!(
            self.can(c, user, verb, resource, ns).await,
            allowed,
            "{user} {verb} {resource} in {}: expected {}",
            ns.unwrap_or("all namespaces"),
            if allowed { "allowed" } else { "denied" }
        );
    }
}

/// Really create a Payer in `ns` as `user` (server-side dry run: admission and RBAC decide,
/// nothing is stored). `Ok` or the server's refusal.
fn create_payer(c: &Cluster, user: &str, ns: &str) -> Result<(), String> {
    let payer = fixtures::payer(ns, "tenant-payer", "acme-aws");
    let r = c.kubectl_stdin(
        &["create", "--dry-run=server", "--as", user, "-f", "-"],
        &payer.to_string(),
    );
    if r.ok { Ok(()) } else { Err(r.stderr) }
}

#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn roles_separate_tenants() {
    let c = cluster();
    let (a, b) = (Some(TENANT_A), Some(TENANT_B));
    let mut u = Users::default();
    // Bindings a platform team would make: the chart's viewer, the built-in view and edit.
    for (name, role, user) in [
        (
            "e2e-viewer",
            format!("clusterrole/{RELEASE}-viewer"),
            VIEWER,
        ),
        ("e2e-view", "clusterrole/view".to_string(), VIEW),
        ("e2e-edit", "clusterrole/edit".to_string(), EDIT),
    ] {
        let role = role.trim_start_matches("clusterrole/");
        let r = c.kubectl(&[
            "create",
            "rolebinding",
            name,
            "--namespace",
            TENANT_A,
            "--clusterrole",
            role,
            "--user",
            user,
        ]);
        assert!(
            r.ok || r.stderr.contains("already exists"),
            "bind {role}: {}",
            r.stderr
        );
    }

    // payer-admin (bound by the chart in tenant A): everything there, nothing in tenant B.
    for resource in [
        "payers",
        "linkedaccounts",
        "organizationalunits",
        "servicecontrolpolicies",
        "pricingplans",
        "billinggroups",
        "customlineitems",
        "curpipelines",
    ] {
        for verb in [
            "get", "list", "watch", "create", "update", "patch", "delete",
        ] {
            u.expect(c, PAYER_ADMIN, verb, resource, a, true).await;
            u.expect(c, PAYER_ADMIN, verb, resource, b, false).await;
        }
        // Status belongs to the operator; reading it is fine.
        u.expect(
            c,
            PAYER_ADMIN,
            "patch",
            &format!("{resource}/status"),
            a,
            false,
        )
        .await;
        u.expect(
            c,
            PAYER_ADMIN,
            "get",
            &format!("{resource}/status"),
            a,
            true,
        )
        .await;
    }
    u.expect(c, PAYER_ADMIN, "list", "payers", None, false)
        .await;
    u.expect(c, PAYER_ADMIN, "get", "secrets", a, false).await;
    // Secrets its Payers name: created, never read back, never in another namespace.
    u.expect(c, PAYER_ADMIN, "create", "secrets", a, true).await;
    u.expect(c, PAYER_ADMIN, "create", "secrets", b, false)
        .await;
    for verb in ["list", "watch", "update", "patch", "delete"] {
        u.expect(c, PAYER_ADMIN, verb, "secrets", a, false).await;
    }
    // PayerGrants are platform-admin's alone.
    for verb in [
        "get",
        "list",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ] {
        u.expect(c, PAYER_ADMIN, verb, "payergrants", None, false)
            .await;
        u.expect(c, EDIT, verb, "payergrants", None, false).await;
        u.expect(c, PLATFORM_ADMIN, verb, "payergrants", None, true)
            .await;
    }
    create_payer(c, PAYER_ADMIN, TENANT_A).expect("payer-admin creates in its namespace");
    let refused = create_payer(c, PAYER_ADMIN, TENANT_B).expect_err("payer-admin in tenant B");
    assert!(
        refused.contains("is forbidden")
            && refused.contains(&format!(
                "User \"{PAYER_ADMIN}\" cannot create resource \"payers\""
            )),
        "{refused}"
    );

    // viewer: reads, never writes.
    for verb in ["get", "list", "watch"] {
        u.expect(c, VIEWER, verb, "linkedaccounts", a, true).await;
        u.expect(c, VIEWER, verb, "billinggroups/status", a, true)
            .await;
        u.expect(c, VIEWER, verb, "linkedaccounts", b, false).await;
    }
    for verb in ["create", "update", "patch", "delete", "deletecollection"] {
        u.expect(c, VIEWER, verb, "linkedaccounts", a, false).await;
        u.expect(c, VIEWER, verb, "payers", a, false).await;
    }
    let refused = create_payer(c, VIEWER, TENANT_A).expect_err("viewer creates");
    assert!(refused.contains("is forbidden"), "{refused}");

    // platform-admin (a ClusterRoleBinding by the chart): every namespace.
    for ns in [a, b, None] {
        for verb in ["create", "delete", "deletecollection", "list"] {
            u.expect(c, PLATFORM_ADMIN, verb, "linkedaccounts", ns, true)
                .await;
        }
    }
    u.expect(c, PLATFORM_ADMIN, "patch", "payers/status", a, false)
        .await;
    create_payer(c, PLATFORM_ADMIN, TENANT_A).expect("platform-admin in tenant A");
    create_payer(c, PLATFORM_ADMIN, TENANT_B).expect("platform-admin in tenant B");

    // The chart aggregates viewer into view and payer-admin into edit and admin
    // (kube-controller-manager's clusterrole-aggregation controller fills them in).
    u.until_allowed(c, VIEW, "list", "linkedaccounts", a).await;
    u.expect(c, VIEW, "create", "linkedaccounts", a, false)
        .await;
    u.until_allowed(c, EDIT, "create", "linkedaccounts", a)
        .await;
    u.expect(c, EDIT, "create", "linkedaccounts", b, false)
        .await;

    // The operator's ServiceAccount: manages objects (finalizers, status) but creates none,
    // reads Secrets but cannot list them, holds its Lease only in its own namespace.
    let sa = format!("system:serviceaccount:{RELEASE_NAMESPACE}:{SERVICE_ACCOUNT}");
    for ns in [a, b, None] {
        u.expect(c, &sa, "list", "linkedaccounts", ns, true).await;
        u.expect(c, &sa, "watch", "linkedaccounts", ns, true).await;
        u.expect(c, &sa, "patch", "linkedaccounts", ns, true).await;
        u.expect(c, &sa, "patch", "linkedaccounts/status", ns, true)
            .await;
        u.expect(c, &sa, "create", "linkedaccounts", ns, false)
            .await;
        u.expect(c, &sa, "delete", "linkedaccounts", ns, false)
            .await;
        u.expect(c, &sa, "get", "secrets", ns, true).await;
        u.expect(c, &sa, "list", "secrets", ns, false).await;
        u.expect(c, &sa, "watch", "secrets", ns, false).await;
        u.expect(c, &sa, "create", "events.events.k8s.io", ns, true)
            .await;
    }
    // Grants and namespace labels: read, never written.
    for verb in ["list", "watch"] {
        u.expect(c, &sa, verb, "payergrants", None, true).await;
        u.expect(c, &sa, verb, "namespaces.", None, true).await;
    }
    for verb in ["create", "update", "patch", "delete"] {
        u.expect(c, &sa, verb, "payergrants", None, false).await;
        u.expect(c, &sa, verb, "namespaces.", None, false).await;
    }
    for verb in ["get", "create", "update"] {
        u.expect(
            c,
            &sa,
            verb,
            "leases.coordination.k8s.io",
            Some(RELEASE_NAMESPACE),
            true,
        )
        .await;
        u.expect(c, &sa, verb, "leases.coordination.k8s.io", a, false)
            .await;
    }
}

/// The account the tenants' Payers reach through a role (not the operator's own account).
const FOREIGN_ACCOUNT: &str = "210987654321";
const EXTERNAL_ID: &str = "e2e-ext-id-7c41f09b2d";

fn role_arn() -> String {
    format!("arn:aws:iam::{FOREIGN_ACCOUNT}:role/PartnerBillingOperator")
}

/// A Payer of FOREIGN_ACCOUNT that has the operator assume `role_arn()`, the external id read
/// from Secret `secret`.
fn foreign_payer(ns: &str, name: &str, secret: &str) -> Value {
    json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"accountId": FOREIGN_ACCOUNT, "credentials": {"assumeRole": {
            "roleArn": role_arn(), "externalIdSecretRef": {"name": secret}}}}
    })
}

fn grant(name: &str, ns: &str) -> Value {
    json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "PayerGrant",
        "metadata": {"name": name},
        "spec": {"namespaces": {"names": [ns]}, "accountIds": [FOREIGN_ACCOUNT], "roleArns": [role_arn()]}
    })
}

/// `kubectl <args> -f -` as `user` (impersonated); the result.
fn as_user(c: &Cluster, user: &str, args: &[&str], obj: &Value) -> super::harness::Run {
    let mut all = args.to_vec();
    all.extend(["--as", user, "-f", "-"]);
    c.kubectl_stdin(&all, &obj.to_string())
}

fn ready(obj: Option<&kube::api::DynamicObject>, status: &str, reason: &str) -> bool {
    obj.and_then(|o| condition(o, "Ready"))
        .is_some_and(|c| c["status"] == status && c["reason"] == reason)
}

/// Events (events.k8s.io) of `ns` as JSON text.
fn events_json(c: &Cluster, ns: &str) -> String {
    c.kubectl_ok(&["get", "events.events.k8s.io", "-n", ns, "-o", "json"])
}

fn metric(op: &Operator, name: &str, label: &str) -> f64 {
    op.get("/metrics")
        .map(|(_, text)| {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains(label))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0)
}

#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn grants_decide_which_namespace_may_use_the_operators_identity() {
    let c = cluster();
    let admin = c.admin().await;
    let (a, b) = (TENANT_A, TENANT_B);
    let suffix = format!("{:06x}", fastrand::u32(..0xff_ffff));
    let (payer_a, payer_b) = (format!("foreign-{suffix}"), format!("foreign-b-{suffix}"));
    let (secret, grant_name) = (
        format!("ext-id-{suffix}"),
        format!("pbo-e2e-tenant-a-{suffix}"),
    );

    // The grant from the chart's values is on the server, as the chart made it.
    let from_values = c.kubectl_ok(&["get", "payergrant", VALUES_GRANT, "-o", "json"]);
    assert!(
        from_values.contains("\"app.kubernetes.io/managed-by\": \"Helm\""),
        "{from_values}"
    );

    // The emulator: the operator's own identity (any key maps to account 123456789012) may
    // assume the role in FOREIGN_ACCOUNT, whose organization is ready.
    let emu = crate::common::emulator();
    let _guard = emu.lock().await;
    let own = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let foreign = emu.assume_role(&own, &role_arn()).await;
    emu.create_organization(&foreign, 1).await;

    // The operator, with the chart's ServiceAccount token and an AWS identity of its own.
    let kubeconfig = c.token_kubeconfig(RELEASE_NAMESPACE, SERVICE_ACCOUNT);
    let op = Operator::start_with_env(
        c,
        OperatorOptions {
            name: &format!("tenancy-{suffix}"),
            kubeconfig: &kubeconfig,
            emulator_url: &emu.url,
            namespaces: &[a, b],
            lease: None,
        },
        &[
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            (
                "PBO_LOG",
                "debug,kube=info,tower=info,hyper=info,hyper_util=info,h2=info,rustls=info",
            ),
        ],
    );
    emu.control("DELETE", "/_emulator/requests", None);

    // 1. payer-admin of A: the external id in a Secret (it may create one), and a Payer that
    //    has the operator assume a role in another account. No grant: refused, no AWS call.
    let secret_obj = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret, "namespace": a},
        "stringData": {"externalId": EXTERNAL_ID},
    });
    let r = as_user(c, PAYER_ADMIN, &["create"], &secret_obj);
    assert!(
        r.ok,
        "payer-admin creates the Secret its Payer needs: {}",
        r.stderr
    );
    let r = as_user(
        c,
        PAYER_ADMIN,
        &["create"],
        &foreign_payer(a, &payer_a, &secret),
    );
    assert!(r.ok, "payer-admin creates the Payer: {}", r.stderr);
    let refused = wait_for(
        &admin,
        a,
        "Payer",
        &payer_a,
        "NotGranted",
        Duration::from_secs(60),
        |x| ready(x, "False", "NotGranted"),
    )
    .await
    .expect("payer");
    let message = condition(&refused, "Ready").expect("Ready")["message"].to_string();
    assert!(
        message.contains(&format!("no PayerGrant covers namespace {a}"))
            && message.contains(FOREIGN_ACCOUNT),
        "{message}"
    );
    assert_eq!(emu.total_requests(), 0, "a refused Payer makes no AWS call");
    eventually(
        "a NotGranted Warning Event",
        Duration::from_secs(30),
        || async {
            let ev = events_json(c, a);
            (ev.contains("\"NotGranted\"") && ev.contains(&payer_a)).then_some(())
        },
    )
    .await;
    eventually("the refusal metric", Duration::from_secs(30), || async {
        (metric(
            &op,
            "partnerbilling_grant_refusals_total",
            &format!("namespace=\"{a}\""),
        ) >= 1.0)
            .then_some(())
    })
    .await;

    // 2. payer-admin cannot write grants: not create, not edit, not delete.
    let r = as_user(c, PAYER_ADMIN, &["create"], &grant(&grant_name, a));
    assert!(
        !r.ok && r.stderr.contains("forbidden"),
        "payer-admin created a grant: {}",
        r.stderr
    );
    let r = as_user(c, PLATFORM_ADMIN, &["create"], &grant(&grant_name, a));
    assert!(r.ok, "platform-admin creates the grant: {}", r.stderr);
    let r = c.kubectl(&[
        "patch",
        "payergrant",
        &grant_name,
        "--as",
        PAYER_ADMIN,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"accountIds":["*"]}}"#,
    ]);
    assert!(
        !r.ok && r.stderr.contains("forbidden"),
        "payer-admin edited a grant: {}",
        r.stderr
    );
    let r = c.kubectl(&["delete", "payergrant", &grant_name, "--as", PAYER_ADMIN]);
    assert!(
        !r.ok && r.stderr.contains("forbidden"),
        "payer-admin deleted a grant: {}",
        r.stderr
    );

    // 3. With the grant the same Payer works, at once (the grant's change re-checks it; the
    //    terminal re-check is 15 minutes away).
    wait_for(
        &admin,
        a,
        "Payer",
        &payer_a,
        "Verified",
        Duration::from_secs(60),
        |x| ready(x, "True", "Verified"),
    )
    .await;
    assert!(emu.count("sts", "AssumeRole") >= 1);
    eventually("a GrantApplied Event", Duration::from_secs(30), || async {
        let ev = events_json(c, "default");
        (ev.contains("\"GrantApplied\"") && ev.contains(&grant_name)).then_some(())
    })
    .await;

    // 4. The grant of A does not cover B: the same Payer there is refused (NotGranted, before
    //    the one-Payer-per-account claim is even looked at).
    let mut secret_b = secret_obj.clone();
    secret_b["metadata"]["namespace"] = json!(b);
    for o in [secret_b, foreign_payer(b, &payer_b, &secret)] {
        let r = c.kubectl_stdin(&["create", "-f", "-"], &o.to_string());
        assert!(r.ok, "{}", r.stderr);
    }
    let refused_b = wait_for(
        &admin,
        b,
        "Payer",
        &payer_b,
        "NotGranted",
        Duration::from_secs(60),
        |x| ready(x, "False", "NotGranted"),
    )
    .await
    .expect("payer");
    let message = condition(&refused_b, "Ready").expect("Ready")["message"].to_string();
    assert!(
        message.contains(&format!("no PayerGrant covers namespace {b}")),
        "{message}"
    );

    // 5. Removing the grant stops A's Payer at its next reconcile (at once: the deletion
    //    re-checks it), and later reconciles make no AWS call either.
    let r = c.kubectl(&["delete", "payergrant", &grant_name, "--as", PLATFORM_ADMIN]);
    assert!(r.ok, "{}", r.stderr);
    wait_for(
        &admin,
        a,
        "Payer",
        &payer_a,
        "NotGranted again",
        Duration::from_secs(60),
        |x| ready(x, "False", "NotGranted"),
    )
    .await;
    let calls = emu.total_requests();
    let reconciles = op.reconciles("Payer");
    let r = c.kubectl(&[
        "annotate",
        "payer",
        &payer_a,
        "-n",
        a,
        &format!("e2e/poke={suffix}"),
    ]);
    assert!(r.ok, "{}", r.stderr);
    eventually(
        "another reconcile of the Payer",
        Duration::from_secs(30),
        || async { (op.reconciles("Payer") > reconciles).then_some(()) },
    )
    .await;
    assert_eq!(
        emu.total_requests(),
        calls,
        "no AWS call after the grant was removed"
    );
    eventually("a GrantDeleted Event", Duration::from_secs(30), || async {
        let ev = events_json(c, "default");
        (ev.contains("\"GrantDeleted\"") && ev.contains(&grant_name)).then_some(())
    })
    .await;

    // 6. The external id from the Secret is nowhere: not in the operator's (debug) log, not in
    //    Events, not in the Payers as stored.
    let log = op.log_text();
    assert!(log.contains(&payer_a), "the log is about this test's Payer");
    assert!(
        !log.contains(EXTERNAL_ID),
        "the external id is in the operator's log"
    );
    for ns in [a, b, "default"] {
        assert!(
            !events_json(c, ns).contains(EXTERNAL_ID),
            "the external id is in an Event of {ns}"
        );
    }
    for (ns, name) in [(a, &payer_a), (b, &payer_b)] {
        let stored = c.kubectl_ok(&["get", "payer", name, "-n", ns, "-o", "json"]);
        assert!(
            !stored.contains(EXTERNAL_ID),
            "the external id is in Payer {ns}/{name}"
        );
    }
    assert!(op.forbidden().is_empty(), "{:?}", op.forbidden());

    for (ns, name) in [(a, &payer_a), (b, &payer_b)] {
        super::harness::delete_and_wait(&admin, ns, "Payer", name).await;
        c.kubectl_ok(&["delete", "secret", &secret, "-n", ns]);
    }
}
