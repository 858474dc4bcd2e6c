//! `managementPolicy: Observe` and the `partnerbilling.io/paused` annotation against the
//! emulator, through file mode (`plan -f`, `apply -f` and the deletion path the controller
//! runs before it removes its finalizer): an Observe object reports its drift and the
//! emulator counts no write call, also when the object is deleted with `deletionPolicy:
//! Close` / `Delete`; a paused object makes no AWS call at all.

mod common;

use common::{Dir, connector, find, status};

use std::time::Duration;

use partner_billing_operator::filemode::{self, Report};
use partner_billing_operator::reconcile::management::Management;
use serde_json::Value;

const ACCESS_KEY: &str = "AKIAPBOOBSERVE000001";
const SECRET_KEY: &str = "pbo-observe-test-secret";
const NS: &str = "billing";

/// The Secret and Payer manifests of these tests.
fn payer() -> String {
    common::payer_yaml(NS, ACCESS_KEY, SECRET_KEY)
}

/// The write requests the emulator received since its counts were cleared.
fn writes(emu: &common::Emulator) -> Vec<(String, String, u64)> {
    common::listed_writes(emu)
        .into_iter()
        .filter(|(_, _, n)| *n > 0)
        .collect()
}

fn clear_counts(emu: &common::Emulator) {
    emu.control("DELETE", "/_emulator/requests", None);
}

fn manifests(dir: &Dir) -> filemode::Manifests {
    common::load(std::slice::from_ref(&dir.0), NS)
}

async fn apply(emu: &common::Emulator, dir: &Dir) -> Report {
    filemode::apply(manifests(dir), connector(emu), Duration::from_secs(20)).await
}

async fn plan(emu: &common::Emulator, dir: &Dir) -> Report {
    filemode::plan(manifests(dir), connector(emu)).await
}

async fn delete(emu: &common::Emulator, dir: &Dir) -> Report {
    filemode::delete(manifests(dir), connector(emu), Duration::from_secs(20)).await
}

/// An organization of the payer with `members` member accounts; their ids, sorted.
async fn members(emu: &common::Emulator, members: usize) -> Vec<String> {
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    emu.create_organization(&cfg, members).await;
    common::member_ids(&cfg).await
}

/// Whether account `id` is still ACTIVE in the organization.
async fn active(emu: &common::Emulator, id: &str) -> bool {
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let orgs = aws_sdk_organizations::Client::new(&cfg);
    let a = orgs.describe_account().account_id(id).send().await.unwrap();
    a.account().and_then(|a| a.state()).map(|s| s.as_str()) == Some("ACTIVE")
}

/// Billing group names in the emulator's Billing Conductor.
async fn group_names(emu: &common::Emulator) -> Vec<String> {
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let bc = aws_sdk_billingconductor::Client::new(&cfg);
    let out = bc.list_billing_groups().send().await.unwrap();
    let mut names: Vec<String> = out
        .billing_groups()
        .iter()
        .filter_map(|g| g.name().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn plan_yaml(policy: &str) -> String {
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: PricingPlan\nmetadata: {{name: plan, namespace: billing, uid: uid-plan}}\nspec:\n  payerRef: {{name: acme}}\n{policy}  rules:\n    - {{name: global, scope: GLOBAL, type: MARKUP, modifierPercentage: 10}}\n"
    )
}

fn group_yaml(name: &str, primary: &str, description: &str, policy: &str) -> String {
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: BillingGroup\nmetadata: {{name: {name}, namespace: billing, uid: uid-{name}}}\nspec:\n  payerRef: {{name: acme}}\n  primaryAccount: \"{primary}\"\n  pricingPlanRef: {{name: plan}}\n  description: {description}\n  deletionPolicy: Delete\n{policy}"
    )
}

fn account_yaml(id: &str, team: &str, policy: &str, annotations: &str) -> String {
    named_account_yaml("member", id, team, policy, annotations)
}

fn named_account_yaml(name: &str, id: &str, team: &str, policy: &str, annotations: &str) -> String {
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: LinkedAccount\nmetadata: {{name: {name}, namespace: billing, uid: uid-{name}{annotations}}}\nspec:\n  payerRef: {{name: acme}}\n  adopt: {{accountId: \"{id}\"}}\n  tags: {{team: {team}}}\n  deletionPolicy: Close\n{policy}"
    )
}

/// A folder with the payer, the plan `plan`, the group `kept` (primary account `primary`)
/// and, when given, the adopted account `member`.
fn managed(primary: &str, member: Option<&str>) -> Dir {
    let dir = Dir::new();
    dir.write("payer.yaml", &payer());
    dir.write("plan.yaml", &plan_yaml(""));
    dir.write("group.yaml", &group_yaml("kept", primary, "first", ""));
    if let Some(id) = member {
        dir.write("account.yaml", &account_yaml(id, "a", "", ""));
    }
    dir
}

const OBSERVE: &str = "  managementPolicy: Observe\n";
const PAUSED: &str = ", annotations: {partnerbilling.io/paused: \"true\"}";

/// The condition `type_` of an object's status in an `apply` report.
fn condition<'a>(r: &'a Report, kind: &str, name: &str, type_: &str) -> &'a Value {
    status(r, kind, name)["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("{kind} {name} has no {type_}: {}", status(r, kind, name)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_objects_report_drift_and_never_write_even_when_deleted() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let ids = members(emu, 3).await;
    // Managed first: the plan, a group and an adopted account exist in AWS as specified.
    let dir = managed(&ids[0], Some(&ids[1]));
    let r = apply(emu, &dir).await;
    for (kind, name) in [
        ("PricingPlan", "plan"),
        ("BillingGroup", "kept"),
        ("LinkedAccount", "member"),
    ] {
        assert!(find(&r, kind, name).ready, "{:?}", find(&r, kind, name));
    }

    // Now Observe, with specs that differ from AWS, and a group that does not exist.
    dir.write("plan.yaml", &plan_yaml(OBSERVE));
    dir.write(
        "group.yaml",
        &group_yaml("kept", &ids[0], "second", OBSERVE),
    );
    // A group that does not exist, of an account known only through an Observe LinkedAccount
    // (never managed: found by its id, not adopted, not tagged).
    dir.write(
        "absent.yaml",
        &group_yaml("absent", "third", "new", OBSERVE),
    );
    dir.write(
        "third.yaml",
        &named_account_yaml("third", &ids[2], "c", OBSERVE, ""),
    );
    dir.write("account.yaml", &account_yaml(&ids[1], "b", OBSERVE, ""));
    clear_counts(emu);

    let p = plan(emu, &dir).await;
    let kept = find(&p, "BillingGroup", "kept");
    assert_eq!(kept.management, Management::Observe);
    assert!(kept.changes.is_empty(), "{:?}", kept.changes);
    assert!(
        kept.drift.iter().any(|c| c.target == "billing group kept"
            && c.action == partner_billing_operator::reconcile::ChangeAction::Update
            && c.detail.contains("description")),
        "{:?}",
        kept.drift
    );
    // The group finds its account through what the Observe LinkedAccount read (its id).
    let absent = find(&p, "BillingGroup", "absent");
    assert_eq!(absent.management, Management::Observe);
    assert!(
        absent.drift.iter().any(|c| c.action
            == partner_billing_operator::reconcile::ChangeAction::Create
            && c.detail == format!("primary {}", ids[2])),
        "{absent:?}"
    );
    let member = find(&p, "LinkedAccount", "member");
    assert!(
        member
            .drift
            .iter()
            .any(|c| format!("{c:?}").contains("team")),
        "{:?}",
        member.drift
    );
    assert_eq!(p.changes(), 0, "Observe drift is not a change");
    assert_eq!(filemode::plan_exit_code(&p), 0);
    let text = filemode::output::plan_text(&p);
    assert!(text.contains("nothing will be written"), "{text}");
    assert!(text.contains("! drift: would update tags of"), "{text}");

    let r = apply(emu, &dir).await;
    // What Observe read from AWS is in status (other objects find the account through it);
    // nothing planned is.
    assert_eq!(status(&r, "LinkedAccount", "third")["accountId"], ids[2]);
    assert_eq!(status(&r, "LinkedAccount", "third")["state"], "ACTIVE");
    assert!(
        status(&r, "LinkedAccount", "third")
            .get("parentId")
            .is_none()
    );
    assert!(status(&r, "BillingGroup", "absent").get("arn").is_none());
    for (kind, name) in [
        ("BillingGroup", "kept"),
        ("BillingGroup", "absent"),
        ("LinkedAccount", "member"),
        ("LinkedAccount", "third"),
    ] {
        let o = find(&r, kind, name);
        assert!(o.ready && !o.failed(), "{kind} {name}: {o:?}");
        assert_eq!(o.reason, "Observed");
        let drifted = condition(&r, kind, name, "Drifted");
        assert_eq!(drifted["status"], "True", "{kind} {name}: {drifted}");
        assert_eq!(condition(&r, kind, name, "Ready")["reason"], "Observed");
        assert_eq!(condition(&r, kind, name, "Synced")["status"], "True");
    }
    let message = condition(&r, "BillingGroup", "absent", "Drifted")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(&format!(
            "would create billing group absent (primary {})",
            ids[2]
        )),
        "{message}"
    );
    // The unchanged plan under Observe: no drift.
    assert_eq!(
        condition(&r, "PricingPlan", "plan", "Drifted")["status"],
        "False"
    );
    assert_eq!(filemode::apply_exit_code(&r), 0);
    assert_eq!(writes(emu), vec![], "Observe: no write call");
    assert_eq!(group_names(emu).await, vec!["kept".to_string()]);

    // Deleting them (the account's deletionPolicy is Close, the groups' Delete) releases
    // them without any AWS call.
    clear_counts(emu);
    let d = delete(emu, &dir).await;
    for (kind, name) in [
        ("BillingGroup", "kept"),
        ("BillingGroup", "absent"),
        ("LinkedAccount", "member"),
        ("LinkedAccount", "third"),
        ("PricingPlan", "plan"),
    ] {
        let o = find(&d, kind, name);
        assert_eq!(o.reason, "ReleasedUntouched", "{kind} {name}: {o:?}");
    }
    assert_eq!(writes(emu), vec![], "Observe deletion: no write call");
    assert_eq!(emu.count("organizations", "CloseAccount"), 0);
    assert!(active(emu, &ids[1]).await, "the account was not closed");
    assert!(active(emu, &ids[2]).await, "the account was not closed");
    assert_eq!(group_names(emu).await, vec!["kept".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_objects_make_no_aws_call_and_resume_when_unpaused() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let ids = members(emu, 2).await;
    let dir = managed(&ids[0], Some(&ids[1]));
    let r = apply(emu, &dir).await;
    assert!(find(&r, "LinkedAccount", "member").ready);

    // Every object paused (the Payer too), with specs that differ from AWS.
    let paused_payer = payer().replace(
        "metadata: {name: acme, namespace: billing}",
        "metadata: {name: acme, namespace: billing, annotations: {partnerbilling.io/paused: \"true\"}}",
    );
    dir.write("payer.yaml", &paused_payer);
    dir.write(
        "plan.yaml",
        &plan_yaml("").replace("uid: uid-plan", &format!("uid: uid-plan{PAUSED}")),
    );
    dir.write(
        "group.yaml",
        &group_yaml("kept", &ids[0], "second", "")
            .replace("uid: uid-kept", &format!("uid: uid-kept{PAUSED}")),
    );
    dir.write("account.yaml", &account_yaml(&ids[1], "b", "", PAUSED));
    clear_counts(emu);
    let p = plan(emu, &dir).await;
    let r = apply(emu, &dir).await;
    let d = delete(emu, &dir).await;
    assert_eq!(
        emu.total_requests(),
        0,
        "paused: no AWS call at all: {:?}",
        emu.control("GET", "/_emulator/requests", None)
    );
    for (kind, name) in [
        ("Payer", "acme"),
        ("PricingPlan", "plan"),
        ("BillingGroup", "kept"),
        ("LinkedAccount", "member"),
    ] {
        assert_eq!(find(&p, kind, name).management, Management::Paused);
        assert!(find(&p, kind, name).changes.is_empty());
        let o = find(&r, kind, name);
        assert_eq!(o.reason, "Paused", "{kind} {name}: {o:?}");
        assert!(!o.failed(), "a paused object does not fail apply");
        let paused = condition(&r, kind, name, "Paused");
        assert_eq!(paused["status"], "True");
        assert_eq!(condition(&r, kind, name, "Synced")["status"], "False");
    }
    assert_eq!(filemode::apply_exit_code(&r), 0);
    assert!(filemode::output::plan_text(&p).contains("paused: no AWS call"));
    // Deleting a paused account with deletionPolicy Close leaves it open.
    assert_eq!(
        find(&d, "LinkedAccount", "member").reason,
        "ReleasedUntouched"
    );
    assert!(active(emu, &ids[1]).await);
    assert_eq!(group_names(emu).await, vec!["kept".to_string()]);

    // Unpaused: the operator acts again (the group's description and the account's tags).
    dir.write("payer.yaml", &payer());
    dir.write("plan.yaml", &plan_yaml(""));
    dir.write("group.yaml", &group_yaml("kept", &ids[0], "second", ""));
    dir.write("account.yaml", &account_yaml(&ids[1], "b", "", ""));
    let r = apply(emu, &dir).await;
    let group = find(&r, "BillingGroup", "kept");
    assert!(group.ready, "{group:?}");
    assert_eq!(group.management, Management::Manage);
    assert!(!group.changes.is_empty(), "resumed: the description is set");
    assert!(
        writes(emu)
            .iter()
            .any(|(_, op, _)| op == "UpdateBillingGroup")
    );
}

const EVERY_KIND_OBSERVED: &str = r#"
apiVersion: partnerbilling.io/v1alpha1
kind: ServiceControlPolicy
metadata: {name: deny-leave, namespace: billing, uid: uid-scp}
spec:
  payerRef: {name: acme}
  managementPolicy: Observe
  description: Members cannot leave
  document:
    Version: "2012-10-17"
    Statement: [{Effect: Deny, Action: "organizations:LeaveOrganization", Resource: "*"}]
---
apiVersion: partnerbilling.io/v1alpha1
kind: OrganizationalUnit
metadata: {name: customers, namespace: billing, uid: uid-ou}
spec:
  payerRef: {name: acme}
  managementPolicy: Observe
  name: Customers
---
apiVersion: partnerbilling.io/v1alpha1
kind: LinkedAccount
metadata: {name: new-account, namespace: billing, uid: uid-new}
spec:
  payerRef: {name: acme}
  managementPolicy: Observe
  create: {email: new@example.com, accountName: new}
---
apiVersion: partnerbilling.io/v1alpha1
kind: CustomLineItem
metadata: {name: fee, namespace: billing, uid: uid-fee}
spec:
  billingGroupRef: {name: kept}
  managementPolicy: Observe
  description: Support
  type: FEE
  flat: {amount: 10}
---
apiVersion: partnerbilling.io/v1alpha1
kind: CurPipeline
metadata: {name: cur, namespace: billing, uid: uid-cur}
spec:
  payerRef: {name: acme}
  managementPolicy: Observe
  export: {kind: DataExport, name: observed-cur, timeGranularity: Daily}
  s3: {bucket: pbo-observed-cur, region: us-east-1, create: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_under_observe_creates_nothing_and_reports_what_it_would_create() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let ids = members(emu, 1).await;
    let dir = managed(&ids[0], None);
    let r = apply(emu, &dir).await;
    assert!(find(&r, "BillingGroup", "kept").ready);
    dir.write("observed.yaml", EVERY_KIND_OBSERVED);
    clear_counts(emu);
    let r = apply(emu, &dir).await;
    for (kind, name, would) in [
        ("ServiceControlPolicy", "deny-leave", "would create"),
        ("OrganizationalUnit", "customers", "would create"),
        ("LinkedAccount", "new-account", "would create"),
        ("CustomLineItem", "fee", "would create"),
        ("CurPipeline", "cur", "would create"),
    ] {
        let o = find(&r, kind, name);
        assert_eq!(o.management, Management::Observe);
        assert!(o.ready, "{kind} {name}: {o:?}");
        assert!(o.changes.is_empty(), "{kind} {name}: {:?}", o.changes);
        let drifted = condition(&r, kind, name, "Drifted");
        assert_eq!(drifted["status"], "True", "{kind} {name}: {drifted}");
        assert!(
            drifted["message"]
                .as_str()
                .is_some_and(|m| m.contains(would)),
            "{kind} {name}: {drifted}"
        );
    }
    assert_eq!(writes(emu), vec![], "Observe: no write call");
    assert_eq!(emu.count("organizations", "CreateAccount"), 0);
    clear_counts(emu);
    let d = delete(emu, &dir).await;
    for name in ["deny-leave", "customers", "new-account", "fee", "cur"] {
        let o = d.objects.iter().find(|o| o.name == name).expect("deleted");
        assert_eq!(o.reason, "ReleasedUntouched", "{o:?}");
    }
    // The managed plan and group of this folder were deleted as their policies say; the
    // Observe objects added nothing to that.
    assert!(
        writes(emu)
            .iter()
            .all(|(service, _, _)| service == "billingconductor"),
        "{:?}",
        writes(emu)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observe_account_is_never_mailed_about_nor_marked() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    members(emu, 0).await;
    emu.control(
        "POST",
        "/_emulator/services/organizations/settings",
        Some(serde_json::json!({"createDelaySeconds": 0.3})),
    );
    let dir = Dir::new();
    dir.write("payer.yaml", &payer());
    let account = |extra: &str| {
        format!(
            "apiVersion: partnerbilling.io/v1alpha1\nkind: LinkedAccount\nmetadata: {{name: mailed, namespace: billing, uid: uid-mailed}}\nspec:\n  payerRef: {{name: acme}}\n  create: {{email: mailed@example.com, accountName: mailed}}\n{extra}"
        )
    };
    // Created while managed, with no one to tell.
    dir.write("account.yaml", &account(""));
    let r = apply(emu, &dir).await;
    assert!(find(&r, "LinkedAccount", "mailed").ready, "{r:?}");
    // Now Observe, with recipients and a mail server: a managed account would be announced
    // (mail, and the partnerbilling.io/notified tag on the account); an observed one is not.
    let smtp = format!(
        "  notifications:\n    smtp: {{host: 127.0.0.1, port: {}, tls: \"None\", from: billing@partner.example}}\n",
        emu.smtp_port
    );
    dir.write("payer.yaml", &format!("{}\n{smtp}", payer().trim_end()));
    dir.write(
        "account.yaml",
        &account(&format!(
            "{OBSERVE}  notifications: {{recipients: [owner@northwind.example]}}\n"
        )),
    );
    clear_counts(emu);
    let r = apply(emu, &dir).await;
    let o = find(&r, "LinkedAccount", "mailed");
    assert_eq!(o.reason, "Observed", "{o:?}");
    assert_eq!(writes(emu), vec![], "Observe: no tag mark");
    assert_eq!(emu.mail().len(), 0, "Observe: no mail");
    // The same account managed again is announced: the check above could fail.
    dir.write(
        "account.yaml",
        &account("  notifications: {recipients: [owner@northwind.example]}\n"),
    );
    let r = apply(emu, &dir).await;
    assert!(find(&r, "LinkedAccount", "mailed").ready);
    assert_eq!(emu.mail().len(), 1, "managed: announced once");
}
