//! File mode against the emulator as AWS answers today: the examples become Ready when
//! accounts carry only `State` (AWS retired `Account.Status` on 2026-09-09), and an account's
//! notification goes out once across `apply -f` runs, which never have a status to remember
//! it by.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Dir, connector, find, status};
use partner_billing_operator::filemode::{self, Report};
use serde_json::{Value, json};

const ORG: &str = "/_emulator/services/organizations/";

/// Keys of `examples/payer.yaml` (the emulator maps any key it did not issue to 123456789012).
const DEMO_KEY: &str = "AKIADEMO000000000001";
const DEMO_SECRET: &str = "demo-only-not-a-real-secret-key";

async fn apply(emu: &common::Emulator, paths: &[PathBuf], namespace: &str) -> Report {
    let manifests = filemode::load(paths, namespace).unwrap_or_else(|p| panic!("{p:?}"));
    filemode::apply(manifests, connector(emu), Duration::from_secs(60)).await
}

/// Objects of `r` that are not Ready, with why.
fn not_ready(r: &Report) -> Vec<String> {
    r.objects
        .iter()
        .filter(|o| !o.ready)
        .map(|o| format!("{} {}: {} {}", o.kind, o.name, o.reason, o.message))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_become_ready_when_accounts_carry_only_state() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let cfg = emu.sdk_config(DEMO_KEY, DEMO_SECRET, None).await;
    emu.create_organization(&cfg, 0).await;
    emu.control(
        "POST",
        &format!("{ORG}settings"),
        Some(json!({"createDelaySeconds": 0.3})),
    );
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");

    let first = apply(emu, std::slice::from_ref(&examples), "default").await;
    // Every account the examples create is ACTIVE and managed; the invited one waits.
    for name in ["northwind-prod", "northwind-dev", "contoso"] {
        let o = find(&first, "LinkedAccount", name);
        assert!(o.ready, "{name}: {} {}", o.reason, o.message);
        assert_eq!(status(&first, "LinkedAccount", name)["state"], "ACTIVE");
    }
    assert_eq!(
        find(&first, "LinkedAccount", "fabrikam").reason,
        "InvitationPending"
    );

    // What AWS answers today, and so the emulator: State, and no Status at all.
    let orgs = aws_sdk_organizations::Client::new(&cfg);
    let listed = orgs.list_accounts().send().await.unwrap();
    assert!(listed.accounts().len() >= 4);
    for a in listed.accounts() {
        assert!(
            a.state().is_some() && a.status().is_none(),
            "account {:?} should carry State only: {a:?}",
            a.id()
        );
    }

    let handshakes = orgs
        .list_handshakes_for_organization()
        .send()
        .await
        .unwrap();
    let open = handshakes
        .handshakes()
        .iter()
        .find(|h| h.state().map(|s| s.as_str()) == Some("OPEN"))
        .and_then(|h| h.id())
        .expect("the invitation to fabrikam")
        .to_string();
    emu.control(
        "POST",
        &format!("{ORG}accept"),
        Some(json!({"handshakeId": open, "email": "owner-444455556666@example.com", "name": "fabrikam"})),
    );

    let second = apply(emu, std::slice::from_ref(&examples), "default").await;
    assert!(second.objects.len() >= 16, "{}", second.objects.len());
    let waiting = not_ready(&second);
    assert!(waiting.is_empty(), "not Ready: {waiting:#?}");
    assert_eq!(
        status(&second, "LinkedAccount", "fabrikam")["joinedMethod"],
        "INVITED"
    );
}

const NOTIFYING_PAYER: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: aws, namespace: mail}
stringData: {accessKeyId: AKIAPBOMAIL000000001, secretAccessKey: pbo-mail-test-secret}
---
apiVersion: partnerbilling.io/v1alpha1
kind: Payer
metadata: {name: acme, namespace: mail}
spec:
  accountId: "123456789012"
  credentials: {secretRef: {name: aws}}
  notifications:
    smtp: {host: 127.0.0.1, port: SMTP_PORT, tls: None, from: billing@partner.example}
"#;

fn mailed_account(name: &str) -> String {
    format!(
        "apiVersion: partnerbilling.io/v1alpha1\nkind: LinkedAccount\nmetadata: {{name: {name}, namespace: mail}}\nspec:\n  payerRef: {{name: acme}}\n  create: {{email: {name}@example.com, accountName: {name}}}\n  tags: {{team: a}}\n  notifications: {{recipients: [owner@{name}.example]}}\n"
    )
}

fn condition<'a>(s: &'a Value, kind: &str) -> &'a Value {
    s["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition in {s}"))
}

async fn account_tags(cfg: &aws_config::SdkConfig, id: &str) -> Vec<(String, String)> {
    let orgs = aws_sdk_organizations::Client::new(cfg);
    orgs.list_tags_for_resource()
        .resource_id(id)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_notice_goes_out_once_across_apply_runs() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let cfg = emu
        .sdk_config("AKIAPBOMAIL000000001", "pbo-mail-test-secret", None)
        .await;
    emu.create_organization(&cfg, 0).await;
    emu.control(
        "POST",
        &format!("{ORG}settings"),
        Some(json!({"createDelaySeconds": 0.3})),
    );
    let dir = Dir::new();
    dir.write(
        "payer.yaml",
        &NOTIFYING_PAYER.replace("SMTP_PORT", &emu.smtp_port.to_string()),
    );
    dir.write("northwind.yaml", &mailed_account("northwind"));

    let first = apply(emu, std::slice::from_ref(&dir.0), "mail").await;
    assert!(not_ready(&first).is_empty(), "{:#?}", not_ready(&first));
    let s = status(&first, "LinkedAccount", "northwind");
    assert_eq!(condition(s, "Notified")["status"], "True");
    let id = s["accountId"].as_str().unwrap().to_string();
    assert_eq!(emu.mail().len(), 1);
    // Recorded on the account, where the next run (or a controller) finds it; the user's tag
    // and the owner tag are there too.
    let tags = account_tags(&cfg, &id).await;
    let notified = tags
        .iter()
        .find(|(k, _)| k == "partnerbilling.io/notified")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no notified tag in {tags:?}"));
    assert!(notified.starts_with("Joined=sent@"), "{notified}");
    assert!(
        tags.iter().any(|(k, v)| k == "team" && v == "a"),
        "{tags:?}"
    );

    // Runs two and three start without any status: nothing is sent again, and the tag is kept
    // by the tag convergence (it is not one of the spec's tags).
    for run in 2..=3 {
        let again = apply(emu, std::slice::from_ref(&dir.0), "mail").await;
        assert!(not_ready(&again).is_empty(), "{:#?}", not_ready(&again));
        let s = status(&again, "LinkedAccount", "northwind");
        let c = condition(s, "Notified");
        assert_eq!(c["status"], "True", "run {run}: {c}");
        assert!(
            c["message"].as_str().unwrap().contains("went out at"),
            "run {run}: {c}"
        );
        assert_eq!(s["notifications"][0]["event"], "Joined", "run {run}: {s}");
        assert_eq!(emu.mail().len(), 1, "run {run}");
        let tags = account_tags(&cfg, &id).await;
        assert!(
            tags.iter()
                .any(|(k, v)| k == "partnerbilling.io/notified" && *v == notified),
            "run {run}: {tags:?}"
        );
    }

    // An attempt that was cut off between marking the tag and the mail server's answer (the
    // process died there): never sent a second time; the condition says how to send it.
    dir.write("contoso.yaml", &mailed_account("contoso"));
    let r = apply(emu, std::slice::from_ref(&dir.0), "mail").await;
    let contoso = status(&r, "LinkedAccount", "contoso")["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(emu.mail().len(), 2);
    let orgs = aws_sdk_organizations::Client::new(&cfg);
    orgs.tag_resource()
        .resource_id(&contoso)
        .tags(
            aws_sdk_organizations::types::Tag::builder()
                .key("partnerbilling.io/notified")
                .value("Joined=sending@2026-11-24T10:00:00Z")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let r = apply(emu, std::slice::from_ref(&dir.0), "mail").await;
    let s = status(&r, "LinkedAccount", "contoso");
    let c = condition(s, "Notified");
    assert_eq!(c["status"], "False", "{c}");
    assert_eq!(c["reason"], "NotificationUncertain", "{c}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("partnerbilling.io/notified"),
        "{c}"
    );
    assert!(find(&r, "LinkedAccount", "contoso").ready);
    assert_eq!(emu.mail().len(), 2);
}

/// Tenancy (issue 17): PayerGrants are the cluster's; file mode (the invoker's own AWS
/// identity) skips them instead of refusing the folder, and does not consult grants.
#[test]
fn file_mode_skips_payer_grants() {
    let dir = Dir::new();
    dir.write(
        "grant.yaml",
        "apiVersion: partnerbilling.io/v1alpha1\nkind: PayerGrant\nmetadata: {name: acme}\nspec:\n  namespaces: {names: [acme]}\n  accountIds: ['210987654321']\n---\napiVersion: partnerbilling.io/v1alpha1\nkind: Payer\nmetadata: {name: acme, namespace: acme}\nspec: {accountId: '210987654321', credentials: {assumeRole: {roleArn: 'arn:aws:iam::210987654321:role/R'}}}\n",
    );
    let m = filemode::load(std::slice::from_ref(&dir.0), "default").expect("loads");
    assert_eq!(m.of::<partner_billing_operator::api::Payer>().len(), 1);
    assert!(
        m.skipped.iter().any(|s| s.ends_with("PayerGrant/acme")),
        "{:?}",
        m.skipped
    );
}
