//! Tenancy by RBAC, decided by the real server through impersonation (the suite's admin may
//! impersonate): the chart's payer-admin manages partnerbilling objects in its namespace only,
//! a viewer only reads, platform-admin manages every namespace, the aggregated built-in roles
//! carry the same rights, and the operator's own ServiceAccount has what it needs and no more.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use super::fixtures;
use super::harness::{
    Cluster, PAYER_ADMIN, PLATFORM_ADMIN, RELEASE, RELEASE_NAMESPACE, SERVICE_ACCOUNT, TENANT_A,
    TENANT_B, cluster,
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
        u.expect(c, &sa, "create", "events.events.k8s.io", ns, true)
            .await;
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
