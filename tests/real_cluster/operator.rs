//! The Helm chart on the real server, and the operator binary running out of cluster with a
//! token of the chart's ServiceAccount (every permission from the chart's RBAC) against the
//! AWS emulator: every kind's lifecycle through the server.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::fixtures;
use super::harness::{
    Cluster, Operator, OperatorOptions, RELEASE, RELEASE_NAMESPACE, SERVICE_ACCOUNT, api, cluster,
    condition, delete_and_wait, delete_and_wait_for_uid, emulated_organization, eventually,
    settled, wait_for,
};

const FINALIZER: &str = partner_billing_operator::api::FINALIZER;
const FIELD_MANAGER: &str = partner_billing_operator::controller::FIELD_MANAGER;

/// The value of column `column` in the row of `name` of a `kubectl get` table.
fn cell(table: &str, name: &str, column: &str) -> Option<String> {
    let mut lines = table.lines();
    let header = lines.next()?;
    let start = header.find(column)?;
    let row = lines.find(|l| l.split_whitespace().next() == Some(name))?;
    let rest = row.get(start..)?;
    Some(
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    )
}

fn chart_objects_accepted(c: &Cluster) {
    let status = c.helm(&[
        "status",
        RELEASE,
        "--namespace",
        RELEASE_NAMESPACE,
        "-o",
        "json",
    ]);
    assert!(status.ok, "helm status: {}", status.stderr);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).expect("helm status");
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    // Every object of the release is on the server (no kubelet: the pods never run).
    let manifest = c.helm(&["get", "manifest", RELEASE, "--namespace", RELEASE_NAMESPACE]);
    assert!(manifest.ok, "{}", manifest.stderr);
    let mut kinds = Vec::new();
    for doc in manifest.stdout.split("\n---") {
        let get = |key: &str| {
            doc.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().trim_matches('"').to_string())
        };
        let (Some(kind), Some(name)) = (get("kind: "), get("  name: ")) else {
            continue;
        };
        let ns = get("  namespace: ");
        let mut args = vec!["get".to_string(), kind.clone(), name.clone()];
        if let Some(ns) = ns {
            args.extend(["--namespace".into(), ns]);
        }
        let r = c.kubectl(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            r.ok,
            "{kind} {name} of the release is missing: {}",
            r.stderr
        );
        kinds.push(kind);
    }
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} in the release: {kinds:?}"
        );
    }
    // Two replicas: the Deployment runs with leader election, probes /readyz and /healthz.
    let deployment: serde_json::Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "deployment",
        RELEASE,
        "--namespace",
        RELEASE_NAMESPACE,
        "-o",
        "json",
    ]))
    .expect("deployment json");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["args"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "--leader-election")),
        "{container}"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
}

#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn the_chart_installs_and_its_rbac_is_enough_for_every_kinds_lifecycle() {
    let c = cluster();
    eprintln!("helm install took {:?}", c.helm_install);
    chart_objects_accepted(c);

    // One member account to adopt.
    let (emu, _guard, aws) = emulated_organization(1).await;

    let admin = c.admin().await;
    let ns = c.namespace("pbo-e2e-life").await;
    let suffix = ns.rsplit('-').next().unwrap_or("x").to_string();
    let objects = fixtures::all(&ns, &suffix);
    let orphan = fixtures::payer_of(&ns, "orphan", "111122223333", "no-such-secret");
    for o in std::iter::once(&fixtures::secret(&ns, "acme-aws"))
        .chain(&objects)
        .chain([&orphan])
    {
        let r = c.kubectl_stdin(&["create", "-f", "-"], &o.to_string());
        assert!(r.ok, "create {}: {}", fixtures::name(o), r.stderr);
    }

    // The operator, with nothing but a token of the chart's ServiceAccount.
    let kubeconfig = c.token_kubeconfig(RELEASE_NAMESPACE, SERVICE_ACCOUNT);
    let lease = format!("pbo-e2e-life-{suffix}");
    let mut op = Operator::start(
        c,
        OperatorOptions {
            name: "lifecycle",
            kubeconfig: &kubeconfig,
            emulator_url: &emu.url,
            namespaces: &[&ns],
            lease: Some(&lease),
        },
    );
    let forbidden = |op: &Operator, when: &str| {
        let lines = op.forbidden();
        assert!(
            lines.is_empty(),
            "the chart's RBAC refused the operator something ({when}):\n{}",
            lines.join("\n")
        );
        let lines = op.api_errors();
        assert!(
            lines.is_empty(),
            "reconciles failed on Kubernetes API errors ({when}):\n{}",
            lines.join("\n")
        );
    };

    // Every object becomes Ready and Synced for its generation, with our finalizer.
    for o in &objects {
        let (kind, name) = (fixtures::kind(o), fixtures::name(o));
        let found = wait_for(
            &admin,
            &ns,
            kind,
            name,
            "Ready",
            Duration::from_secs(120),
            |x| x.is_some_and(|x| settled(x, "True")),
        )
        .await
        .expect("object");
        assert!(
            found.finalizers().iter().any(|f| f == FINALIZER),
            "{kind} {name} has no finalizer: {:?}",
            found.finalizers()
        );
        // The status was written by server-side apply to the status subresource, as the
        // operator's field manager (what lets another manager own other status fields).
        let managed = found.metadata.managed_fields.as_deref().unwrap_or_default();
        assert!(
            managed.iter().any(|m| {
                m.manager.as_deref() == Some(FIELD_MANAGER)
                    && m.operation.as_deref() == Some("Apply")
                    && m.subresource.as_deref() == Some("status")
            }),
            "{kind} {name}: no Apply of status by {FIELD_MANAGER} in managedFields: {:?}",
            managed
                .iter()
                .map(|m| (&m.manager, &m.operation, &m.subresource))
                .collect::<Vec<_>>()
        );
        // A BillingGroup reports its cost this period, margin included, as the emulator's
        // ListBillingGroupCostReports computes it (margin = pro forma - AWS cost). A group
        // created in a pass has no report in that pass's snapshot: the next (resync 30 s) has.
        if kind == "BillingGroup" {
            let found = wait_for(
                &admin,
                &ns,
                kind,
                name,
                "status.currentPeriod",
                Duration::from_secs(90),
                |x| x.is_some_and(|x| x.data["status"]["currentPeriod"].is_object()),
            )
            .await
            .expect("billing group");
            let report = &found.data["status"]["currentPeriod"];
            let amount = |field: &str| -> f64 {
                report[field]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("{kind} {name}: status.currentPeriod.{field} in {report}")
                    })
            };
            let (aws_cost, proforma, margin) =
                (amount("awsCost"), amount("proformaCost"), amount("margin"));
            assert!(
                (proforma - aws_cost - margin).abs() < 0.006,
                "{kind} {name}: margin is not pro forma - AWS cost: {report}"
            );
            amount("marginPercentage");
            assert_eq!(report["currency"], "USD", "{report}");
        }
    }
    forbidden(&op, "reconciling");

    // A Payer whose Secret does not exist: Ready=False with a reason that says so.
    let orphan = wait_for(
        &admin,
        &ns,
        "Payer",
        "orphan",
        "reported",
        Duration::from_secs(60),
        |x| {
            x.is_some_and(|x| {
                condition(x, "Ready").is_some_and(|c| {
                    c["status"] == "False"
                        && c["observedGeneration"].as_i64() == x.metadata.generation
                })
            })
        },
    )
    .await
    .expect("orphan");
    let ready = condition(&orphan, "Ready").expect("Ready");
    assert_eq!(ready["reason"], "SecretNotFound", "{ready}");
    assert!(
        ready["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-secret")),
        "{ready}"
    );

    // Argo CD's view of the same statuses: the project's health checks (Lua), run on the
    // objects as the server returns them, say Healthy for every Ready object and Degraded
    // for the Payer without its Secret (SecretNotFound is no reason to wait).
    for o in &objects {
        let (kind, name) = (fixtures::kind(o), fixtures::name(o));
        let (health, message) = c.argocd_health(kind, &c.get_json(kind, &ns, name));
        assert_eq!(
            health, "Healthy",
            "Argo CD health of {kind} {name}: {message}"
        );
    }
    let (health, message) = c.argocd_health("Payer", &c.get_json("Payer", &ns, "orphan"));
    assert_eq!(
        health, "Degraded",
        "Argo CD health of the orphan Payer: {message}"
    );
    assert!(message.starts_with("SecretNotFound: "), "{message}");

    // The printer columns show what the operator wrote.
    for crd in partner_billing_operator::crdgen::all() {
        let table = c.kubectl_ok(&["get", &crd.spec.names.plural, "-n", &ns]);
        for o in objects
            .iter()
            .filter(|o| fixtures::kind(o) == crd.spec.names.kind)
        {
            assert_eq!(
                cell(&table, fixtures::name(o), "READY").as_deref(),
                Some("True"),
                "{table}"
            );
        }
    }
    let accounts = c.kubectl_ok(&["get", "linkedaccounts", "-n", &ns]);
    let created_id = cell(&accounts, "created", "ACCOUNT").expect("ACCOUNT column");
    assert!(
        created_id.len() == 12 && created_id.chars().all(|ch| ch.is_ascii_digit()),
        "{accounts}"
    );
    let adopted_id = cell(&accounts, "adopted", "ACCOUNT").expect("ACCOUNT column");
    // The adopted account is found by its e-mail.
    assert_eq!(
        cell(&accounts, "adopted", "EMAIL").as_deref(),
        Some(fixtures::ADOPTED_EMAIL),
        "{accounts}"
    );
    assert_eq!(
        cell(&accounts, "adopted", "STATE").as_deref(),
        Some("ACTIVE"),
        "{accounts}"
    );
    assert_eq!(
        cell(
            &c.kubectl_ok(&["get", "payers", "-n", &ns]),
            "orphan",
            "READY"
        )
        .as_deref(),
        Some("False")
    );

    // Events: one at least about every object, and a Warning about the orphan's Secret.
    let events: Api<Event> = Api::namespaced(admin.clone(), &ns);
    let listed = eventually("events recorded", Duration::from_secs(30), || async {
        let listed = events.list(&ListParams::default()).await.ok()?;
        objects
            .iter()
            .chain([&fixtures::payer(&ns, "orphan", "")])
            .all(|o| {
                listed.items.iter().any(|e| {
                    e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some(fixtures::kind(o))
                            && r.name.as_deref() == Some(fixtures::name(o))
                    })
                })
            })
            .then_some(listed)
    })
    .await;
    assert!(
        listed.items.iter().any(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("orphan")
                && e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some("SecretNotFound")
        }),
        "no Warning event for the orphan Payer"
    );
    assert!(
        listed
            .items
            .iter()
            .all(|e| { e.reporting_controller.as_deref() == Some("partner-billing-operator") })
    );

    // A spec change: the next status is computed for the new generation.
    let plans = api(&admin, &ns, "PricingPlan");
    plans
        .patch(
            "standard",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"description": "Public prices plus 10%, reviewed"}})),
        )
        .await
        .expect("change the plan");
    let changed = wait_for(
        &admin,
        &ns,
        "PricingPlan",
        "standard",
        "Ready for generation 2",
        Duration::from_secs(60),
        |x| x.is_some_and(|x| x.metadata.generation == Some(2) && settled(x, "True")),
    )
    .await
    .expect("plan");
    assert_eq!(changed.metadata.generation, Some(2));

    // The operator is ready (it leads) and holds the Lease the chart lets it write.
    let (code, body) = op.get("/readyz").expect("/readyz answers");
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("ready: leader"), "{body}");
    let leases: Api<Lease> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let held = leases.get(&lease).await.expect("lease");
    assert_eq!(
        held.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("lifecycle")
    );

    // Deletion, dependents first: every finalizer is released.
    for o in objects
        .iter()
        .rev()
        .chain([&fixtures::payer(&ns, "orphan", "")])
    {
        let (kind, name) = (fixtures::kind(o), fixtures::name(o));
        delete_and_wait_for_uid(&admin, &ns, kind, name, "deleted (finalizer released)").await;
    }
    forbidden(&op, "deleting");
    // The adopted account is retained (the default); the created one was removed.
    let orgs = aws_sdk_organizations::Client::new(&aws);
    let members: Vec<String> = orgs
        .list_accounts()
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flat_map(|page| page.expect("ListAccounts").accounts.unwrap_or_default())
        .filter_map(|a| a.id)
        .collect();
    assert!(
        members.contains(&adopted_id),
        "the retained account {adopted_id} left the organization: {members:?}"
    );
    assert!(
        !members.contains(&created_id),
        "the account {created_id} (deletionPolicy Remove) is still a member: {members:?}"
    );

    // SIGTERM (what a pod gets): a clean exit that hands the Lease over.
    let status = op.terminate(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}\n{}",
        op.log_text()
    );
    let released = leases.get(&lease).await.expect("lease");
    assert_eq!(
        released.spec.and_then(|s| s.holder_identity),
        None,
        "the lease was not released"
    );
    c.delete_namespace(&ns).await;

    // The other side of the 403 scan: what the token did, from the server's audit log,
    // against what the chart grants.
    rbac_used_versus_granted(c, &admin, &kubeconfig).await;
}

/// One RBAC grant of the operator's ServiceAccount: (namespace of a RoleBinding, or None for
/// cluster-wide), apiGroup, resource (with `/subresource`), verb, resourceNames.
struct Grant {
    namespace: Option<String>,
    group: String,
    resource: String,
    verb: String,
    names: Vec<String>,
    role: String,
}

impl Grant {
    fn covers(&self, u: &Used) -> bool {
        let any = |g: &str, x: &str| g == "*" || g == x;
        self.namespace
            .as_ref()
            .is_none_or(|ns| u.namespace.as_ref() == Some(ns))
            && any(&self.group, &u.group)
            && (any(&self.resource, &u.resource)
                || self
                    .resource
                    .strip_prefix("*/")
                    .is_some_and(|sub| u.resource.split_once('/').is_some_and(|(_, s)| s == sub)))
            && any(&self.verb, &u.verb)
            && (self.names.is_empty() || u.name.as_ref().is_some_and(|n| self.names.contains(n)))
    }
}

/// One request of the token, from the audit log.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Used {
    group: String,
    resource: String,
    verb: String,
    namespace: Option<String>,
    name: Option<String>,
    code: i64,
}

/// Every (apiGroup, resource[/subresource], verb) the lifecycle's operator used (its token's
/// requests in the audit log start.sh configures) must be granted by the chart's roles bound
/// to the ServiceAccount, and was not refused; grants never used are printed (not a failure:
/// some serve paths this run does not take). Needs the local cluster's audit log; against a
/// cluster of yours it says it cannot check.
async fn rbac_used_versus_granted(c: &Cluster, admin: &kube::Client, kubeconfig: &std::path::Path) {
    use k8s_openapi::api::rbac::v1::{
        ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding,
    };
    let Some(audit) = c.audit_log() else {
        eprintln!(
            "RBAC used-versus-granted: NOT CHECKED (no audit log: not the cluster tests/cluster/start.sh made)"
        );
        return;
    };
    let user = format!("system:serviceaccount:{RELEASE_NAMESPACE}:{SERVICE_ACCOUNT}");
    let credential = format!("JTI={}", super::harness::token_jti(kubeconfig));

    // The requests, from audit.log and its rotated files (audit-<time>.log).
    let dir = audit.parent().expect("audit log folder");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read the audit log folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit") && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    let mut used = std::collections::BTreeSet::new();
    let mut requests = 0usize;
    let mut non_resource = std::collections::BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read the audit log");
        for line in text.lines() {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if e["user"]["username"] != user.as_str()
                || !e["user"]["extra"]["authentication.kubernetes.io/credential-id"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == credential.as_str()))
            {
                continue;
            }
            requests += 1;
            let o = &e["objectRef"];
            if o.is_null() {
                non_resource.insert(format!(
                    "{} {}",
                    e["verb"].as_str().unwrap_or_default(),
                    e["requestURI"]
                        .as_str()
                        .unwrap_or_default()
                        .split('?')
                        .next()
                        .unwrap_or_default()
                ));
                continue;
            }
            let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
            let mut resource = s(&o["resource"]).unwrap_or_default();
            if let Some(sub) = s(&o["subresource"]) {
                resource = format!("{resource}/{sub}");
            }
            used.insert(Used {
                group: s(&o["apiGroup"]).unwrap_or_default(),
                resource,
                verb: s(&e["verb"]).unwrap_or_default(),
                namespace: s(&o["namespace"]),
                name: s(&o["name"]),
                code: e["responseStatus"]["code"].as_i64().unwrap_or(0),
            });
        }
    }
    assert!(
        requests > 0 && !used.is_empty(),
        "the audit log ({}) has no request of {user} with {credential}: the RBAC check would pass on nothing",
        audit.display()
    );

    // The grants: every ClusterRoleBinding and RoleBinding naming the ServiceAccount.
    let is_sa = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        subjects.iter().flatten().any(|s| {
            s.kind == "ServiceAccount"
                && s.name == SERVICE_ACCOUNT
                && s.namespace.as_deref() == Some(RELEASE_NAMESPACE)
        })
    };
    let mut grants = Vec::new();
    let mut add = |rules: Vec<PolicyRule>, namespace: Option<String>, role: String| {
        for r in rules {
            for g in r.api_groups.clone().unwrap_or_default() {
                for res in r.resources.clone().unwrap_or_default() {
                    for v in &r.verbs {
                        grants.push(Grant {
                            namespace: namespace.clone(),
                            group: g.clone(),
                            resource: res.clone(),
                            verb: v.clone(),
                            names: r.resource_names.clone().unwrap_or_default(),
                            role: role.clone(),
                        });
                    }
                }
            }
        }
    };
    let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    for b in crbs
        .list(&ListParams::default())
        .await
        .expect("list ClusterRoleBindings")
    {
        if is_sa(&b.subjects) {
            let role = cluster_roles
                .get(&b.role_ref.name)
                .await
                .expect("ClusterRole");
            add(
                role.rules.unwrap_or_default(),
                None,
                format!("ClusterRole {}", b.role_ref.name),
            );
        }
    }
    let rbs: Api<RoleBinding> = Api::all(admin.clone());
    for b in rbs
        .list(&ListParams::default())
        .await
        .expect("list RoleBindings")
    {
        if !is_sa(&b.subjects) {
            continue;
        }
        let ns = b.namespace().unwrap_or_default();
        let rules = if b.role_ref.kind == "ClusterRole" {
            cluster_roles
                .get(&b.role_ref.name)
                .await
                .expect("ClusterRole")
                .rules
        } else {
            let roles: Api<Role> = Api::namespaced(admin.clone(), &ns);
            roles.get(&b.role_ref.name).await.expect("Role").rules
        };
        add(
            rules.unwrap_or_default(),
            Some(ns.clone()),
            format!("{} {ns}/{}", b.role_ref.kind, b.role_ref.name),
        );
    }
    assert!(
        !grants.is_empty(),
        "no RoleBinding or ClusterRoleBinding names {user}"
    );

    let triple = |g: &str, r: &str, v: &str| {
        format!("({}, {r}, {v})", if g.is_empty() { "\"\"" } else { g })
    };
    let mut summary: std::collections::BTreeMap<String, (usize, std::collections::BTreeSet<i64>)> =
        Default::default();
    let mut ungranted = Vec::new();
    let mut refused = Vec::new();
    for u in &used {
        let key = triple(&u.group, &u.resource, &u.verb);
        let entry = summary.entry(key.clone()).or_default();
        entry.0 += 1;
        entry.1.insert(u.code);
        if u.code == 403 {
            refused.push(format!("{key} in {:?} name {:?}", u.namespace, u.name));
        }
        if !grants.iter().any(|g| g.covers(u)) {
            ungranted.push(format!(
                "{key} in {:?} name {:?} (HTTP {})",
                u.namespace, u.name, u.code
            ));
        }
    }
    eprintln!(
        "RBAC used in this run by {user} ({requests} audited requests; (apiGroup, resource, verb): distinct (namespace, name, code), HTTP codes):"
    );
    for (k, (n, codes)) in &summary {
        eprintln!("  {k}: {n}, {codes:?}");
    }
    eprintln!("  non-resource requests: {non_resource:?}");
    let unused: std::collections::BTreeSet<String> = grants
        .iter()
        .filter(|g| !used.iter().any(|u| g.covers(u)))
        .map(|g| {
            format!(
                "{}{}{} [{}]",
                triple(&g.group, &g.resource, &g.verb),
                g.namespace
                    .as_ref()
                    .map(|ns| format!(" in {ns}"))
                    .unwrap_or_default(),
                if g.names.is_empty() {
                    String::new()
                } else {
                    format!(" names {:?}", g.names)
                },
                g.role
            )
        })
        .collect();
    eprintln!("RBAC granted but not used in this run ({}):", unused.len());
    for u in &unused {
        eprintln!("  {u}");
    }
    assert!(
        refused.is_empty(),
        "the server refused (403) the operator's token:\n{}",
        refused.join("\n")
    );
    assert!(
        ungranted.is_empty(),
        "the operator used what the chart's roles do not grant:\n{}",
        ungranted.join("\n")
    );
}

/// The check above is not vacuous: the same operator, bound to the chart's rules without
/// the Events grant, still reconciles, and its log shows what the server refused.
#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn a_permission_the_chart_would_lack_shows_up_in_the_log() {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let c = cluster();
    let (emu, _guard, _) = emulated_organization(0).await;

    let admin = c.admin().await;
    let ns = c.namespace("pbo-e2e-limited").await;
    let name = format!("{ns}-operator");
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let mut role = roles.get(RELEASE).await.expect("the chart's ClusterRole");
    let rules = role.rules.take().unwrap_or_default();
    let kept: Vec<_> = rules
        .into_iter()
        .filter(|r| {
            !r.api_groups
                .as_ref()
                .is_some_and(|g| g.iter().any(|g| g == "events.k8s.io"))
        })
        .collect();
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name}, "rules": kept,
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "limited", "namespace": ns}],
    });
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "limited", "namespace": ns}});
    for o in [
        sa,
        role,
        binding,
        fixtures::secret(&ns, "acme-aws"),
        fixtures::payer(&ns, "acme", "acme-aws"),
    ] {
        let r = c.kubectl_stdin(&["create", "-f", "-"], &o.to_string());
        assert!(r.ok, "{}", r.stderr);
    }
    let kubeconfig = c.token_kubeconfig(&ns, "limited");
    let mut op = Operator::start(
        c,
        OperatorOptions {
            name: "limited",
            kubeconfig: &kubeconfig,
            emulator_url: &emu.url,
            namespaces: &[&ns],
            lease: None,
        },
    );
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
    let refused = eventually("the refusal logged", Duration::from_secs(10), || async {
        let lines = op.forbidden();
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert!(
        refused
            .iter()
            .any(|l| l.contains("events") && l.to_lowercase().contains("forbidden")),
        "{refused:?}"
    );

    // Let the finalizer go while the operator runs, then stop it and clean up.
    delete_and_wait(&admin, &ns, "Payer", "acme").await;
    op.terminate(Duration::from_secs(30));
    for kind in ["clusterrolebinding", "clusterrole"] {
        c.kubectl_ok(&["delete", kind, &name]);
    }
    c.delete_namespace(&ns).await;
}
