//! A Secret's values never reach logs (captured at TRACE, the SDK's own logs included),
//! conditions, events, or the output of `plan` and `apply`.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use partner_billing_operator::aws::{AwsOptions, SdkConnector};
use partner_billing_operator::filemode::{self, output};
use partner_billing_operator::logging::{self, LogFormat};
use partner_billing_operator::metrics::Metrics;

const ACCESS_KEY: &str = "AKIAPBOREDACT0000001";
const SECRET_KEY: &str = "redact-me-7Hq2vX9pL4mN8bR1tY6wZ3kJ5sD0fG";
const SESSION_TOKEN: &str = "redact-me-too-FQoGZXIvYXdzEJr";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn manifests(dir: &std::path::Path, account: &str) {
    std::fs::write(
        dir.join("payer.yaml"),
        format!(
            r#"apiVersion: v1
kind: Secret
metadata:
  name: acme-aws
  namespace: billing
stringData:
  accessKeyId: {ACCESS_KEY}
  secretAccessKey: {SECRET_KEY}
  sessionToken: {SESSION_TOKEN}
---
apiVersion: partnerbilling.io/v1alpha1
kind: Payer
metadata:
  name: acme
  namespace: billing
spec:
  accountId: "{account}"
  credentials:
    secretRef:
      name: acme-aws
      sessionTokenKey: sessionToken
"#
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn secret_values_never_appear_in_logs_status_or_output() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let config = emu
        .sdk_config(ACCESS_KEY, SECRET_KEY, Some(SESSION_TOKEN))
        .await;
    emu.create_organization(&config, 1).await;

    let capture = Capture::default();
    let subscriber = logging::subscriber(
        LogFormat::Json,
        tracing_subscriber::EnvFilter::new("trace"),
        capture.clone(),
    );
    let _log = tracing::subscriber::set_default(subscriber);

    let connector = Arc::new(SdkConnector::new(
        AwsOptions {
            endpoint_url: Some(emu.url.clone()),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            operator_credentials: None,
        },
        Metrics::shared(),
    ));
    let mut printed = String::new();
    // A payer that becomes Ready, one with the wrong account, and one hitting a throttled
    // (failing) call: success and error paths both log.
    for (account, throttle) in [
        ("123456789012", false),
        ("999999999999", false),
        ("123456789012", true),
    ] {
        let dir = tempdir();
        manifests(&dir, account);
        if throttle {
            emu.throttle("organizations", "ListAccounts", 10);
        }
        let loaded = filemode::load(std::slice::from_ref(&dir), "default").expect("manifests load");
        let plan = filemode::plan(loaded, connector.clone()).await;
        printed.push_str(&output::plan_text(&plan));
        printed.push_str(&output::json(&plan));
        let loaded = filemode::load(std::slice::from_ref(&dir), "default").expect("manifests load");
        let applied = filemode::apply(loaded, connector.clone(), Duration::from_secs(5)).await;
        printed.push_str(&output::apply_text(&applied));
        printed.push_str(&output::json(&applied));
        printed.push_str(&output::yaml(&applied));
        std::fs::remove_dir_all(&dir).ok();
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The capture really holds the SDK's request logs and the outcome; otherwise this test
    // would pass vacuously.
    assert!(
        logs.contains("GetCallerIdentity"),
        "SDK trace logs were not captured"
    );
    assert!(
        logs.lines().count() > 50,
        "too few log lines captured: {}",
        logs.lines().count()
    );
    assert!(
        printed.contains("AccountMismatch") && printed.contains("AwsThrottled"),
        "{printed}"
    );
    for secret in [SECRET_KEY, SESSION_TOKEN] {
        assert!(!logs.contains(secret), "a secret value appears in the logs");
        assert!(
            !printed.contains(secret),
            "a secret value appears in plan/apply output"
        );
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pbo-redact-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const EXTERNAL_ID: &str = "redact-ext-id-4b7e9c21d0";

/// Tenancy (issue 17): the external id read from a Secret (`externalIdSecretRef`) never
/// appears in the logs (TRACE, the SDK's own included: it travels in the AssumeRole request),
/// in conditions, events or in `plan`/`apply` output.
#[tokio::test]
async fn an_external_id_from_a_secret_never_appears_in_logs_status_or_output() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let target = "210987654321";
    let role = format!("arn:aws:iam::{target}:role/PartnerBillingOperator");
    let operator = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let in_target = emu.assume_role(&operator, &role).await;
    emu.create_organization(&in_target, 1).await;
    emu.control("DELETE", "/_emulator/requests", None);

    let capture = Capture::default();
    let subscriber = logging::subscriber(
        LogFormat::Json,
        tracing_subscriber::EnvFilter::new("trace"),
        capture.clone(),
    );
    let _log = tracing::subscriber::set_default(subscriber);
    let connector = Arc::new(SdkConnector::new(
        AwsOptions {
            endpoint_url: Some(emu.url.clone()),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            operator_credentials: Some(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        ACCESS_KEY, SECRET_KEY, None, None, "operator",
                    ),
                ),
            ),
        },
        Metrics::shared(),
    ));
    let dir = tempdir();
    std::fs::write(
        dir.join("payer.yaml"),
        format!(
            r#"apiVersion: v1
kind: Secret
metadata:
  name: role-external-id
  namespace: billing
stringData:
  externalId: {EXTERNAL_ID}
---
apiVersion: partnerbilling.io/v1alpha1
kind: Payer
metadata:
  name: acme
  namespace: billing
spec:
  accountId: "{target}"
  credentials:
    assumeRole:
      roleArn: {role}
      externalIdSecretRef:
        name: role-external-id
"#
        ),
    )
    .unwrap();
    let mut printed = String::new();
    let loaded = filemode::load(std::slice::from_ref(&dir), "default").expect("manifests load");
    let plan = filemode::plan(loaded, connector.clone()).await;
    printed.push_str(&output::plan_text(&plan));
    printed.push_str(&output::json(&plan));
    let loaded = filemode::load(std::slice::from_ref(&dir), "default").expect("manifests load");
    let applied = filemode::apply(loaded, connector.clone(), Duration::from_secs(5)).await;
    printed.push_str(&output::apply_text(&applied));
    printed.push_str(&output::json(&applied));
    printed.push_str(&output::yaml(&applied));
    std::fs::remove_dir_all(&dir).ok();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("AssumeRole"),
        "SDK trace logs were not captured"
    );
    assert!(printed.contains("Verified"), "{printed}");
    assert_eq!(
        emu.count("sts", "AssumeRole"),
        2,
        "plan and apply each assumed the role"
    );
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(EXTERNAL_ID)).collect();
    assert!(
        leaks.is_empty(),
        "the external id appears in the logs: {leaks:#?}"
    );
    assert!(
        !printed.contains(EXTERNAL_ID),
        "the external id appears in plan/apply output"
    );
}
