//! Shared helpers for the emulator-backed tests.
//!
//! The emulator (`tests/emulator`) is started once per test binary on a free port, unless
//! `PBO_EMULATOR_URL` names one that is already running. It exits with the test process.
//! Tests that use it hold [`Emulator::lock`] so that resets and injected faults of one test
//! never reach another.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use serde_json::{Value, json};

pub struct Emulator {
    pub url: String,
    /// Port of the emulator's SMTP server (`/_emulator/mail` lists what it received).
    pub smtp_port: u16,
    host_port: String,
    _child: Option<Child>,
    lock: tokio::sync::Mutex<()>,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();

/// The emulator shared by this test binary.
pub fn emulator() -> &'static Emulator {
    EMULATOR.get_or_init(|| match std::env::var("PBO_EMULATOR_URL") {
        Ok(url) if !url.is_empty() => {
            let host_port = url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            let smtp_port = std::env::var("PBO_EMULATOR_SMTP_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let e = Emulator {
                url,
                smtp_port,
                host_port,
                _child: None,
                lock: Default::default(),
            };
            e.wait_healthy(Duration::from_secs(30));
            e
        }
        _ => start(),
    })
}

fn start() -> Emulator {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/emulator");
    let venv = Command::new("bash")
        .arg(root.join("ensure-venv.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/emulator/ensure-venv.sh");
    assert!(
        venv.status.success(),
        "could not create the emulator's virtualenv"
    );
    let venv = String::from_utf8(venv.stdout)
        .expect("venv path")
        .trim()
        .to_string();
    let free_port = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
    };
    let port = free_port();
    let smtp_port = free_port();
    let log = std::env::temp_dir().join(format!("pbo-emulator-{port}.log"));
    let child = Command::new(format!("{venv}/bin/python"))
        .args([
            "-m",
            "pbo_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["--smtp-port", &smtp_port.to_string()])
        .arg("--exit-with-parent")
        .env("PYTHONPATH", &root)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("emulator log file"))
        .spawn()
        .expect("start the emulator");
    let e = Emulator {
        url: format!("http://127.0.0.1:{port}"),
        smtp_port,
        host_port: format!("127.0.0.1:{port}"),
        _child: Some(child),
        lock: Default::default(),
    };
    if !e.try_wait_healthy(Duration::from_secs(60)) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "the emulator did not start; its log ({}):\n{text}",
            log.display()
        );
    }
    e
}

impl Emulator {
    /// Exclusive use of the emulator, reset to a clean state.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let guard = self.lock.lock().await;
        self.control("POST", "/_emulator/reset", None);
        guard
    }

    fn try_wait_healthy(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.try_control("GET", "/_emulator/health", None).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn wait_healthy(&self, within: Duration) {
        assert!(
            self.try_wait_healthy(within),
            "no emulator answers at {}",
            self.url
        );
    }

    /// Call the control API; panics on anything but 200.
    pub fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_control(method, path, body) {
            Ok((200..=299, v)) => v,
            Ok((status, v)) => panic!("{method} {path}: HTTP {status}: {v}"),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    fn try_control(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(&self.host_port).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.host_port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).map_err(|e| e.to_string())?;
        let (head, payload) = raw.split_once("\r\n\r\n").ok_or("malformed response")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("no status")?;
        let value = serde_json::from_str(payload).unwrap_or(Value::String(payload.to_string()));
        Ok((status, value))
    }

    /// Throttle the next `count` calls of `service`/`operation`.
    pub fn throttle(&self, service: &str, operation: &str, count: u32) {
        self.control(
            "POST",
            "/_emulator/faults",
            Some(json!({"kind": "throttle", "service": service, "operation": operation, "count": count})),
        );
    }

    /// How many requests of `service`/`operation` ended with `outcome`
    /// (`ok`, `throttle`, `server_error`, ... as the emulator records them).
    pub fn outcomes(&self, service: &str, operation: &str) -> Vec<(String, u64)> {
        let v = self.control("GET", "/_emulator/requests", None);
        v["outcomes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["service"] == service && o["operation"] == operation)
            .map(|o| {
                (
                    o["outcome"].as_str().unwrap_or("").to_string(),
                    o["count"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Requests of `service`/`operation` received since the last reset.
    pub fn count(&self, service: &str, operation: &str) -> u64 {
        let v = self.control("GET", "/_emulator/requests", None);
        v["counts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["service"] == service && o["operation"] == operation)
            .map(|o| o["count"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Messages the SMTP server received since the last reset: (to, full text).
    pub fn mail(&self) -> Vec<(Vec<String>, String)> {
        let v = self.control("GET", "/_emulator/mail", None);
        v["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let to = m["to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                (to, m["data"].as_str().unwrap_or_default().to_string())
            })
            .collect()
    }

    pub fn total_requests(&self) -> u64 {
        self.control("GET", "/_emulator/requests", None)["total"]
            .as_u64()
            .unwrap_or(0)
    }

    /// An SDK config for these keys, pointed at the emulator.
    pub async fn sdk_config(
        &self,
        access_key_id: &str,
        secret: &str,
        session_token: Option<&str>,
    ) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .credentials_provider(Credentials::new(
                access_key_id,
                secret,
                session_token.map(str::to_string),
                None,
                "test",
            ))
            .load()
            .await
    }

    /// Create an organization whose management account is the caller of `config`, with
    /// `members` more accounts. Returns the organization id.
    pub async fn create_organization(&self, config: &SdkConfig, members: usize) -> String {
        let orgs = aws_sdk_organizations::Client::new(config);
        let org = orgs
            .create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .expect("CreateOrganization");
        for i in 0..members {
            orgs.create_account()
                .account_name(format!("customer-{i}"))
                .email(format!("customer-{i}@example.com"))
                .send()
                .await
                .expect("CreateAccount");
            // The emulator keeps creations IN_PROGRESS for a while (at most 5 at once);
            // finish this one now.
            self.control(
                "POST",
                "/_emulator/services/organizations/complete-creates",
                Some(json!({})),
            );
        }
        org.organization
            .and_then(|o| o.id)
            .expect("organization id")
    }

    /// Temporary credentials for `role_arn`, assumed with `config`.
    pub async fn assume_role(&self, config: &SdkConfig, role_arn: &str) -> SdkConfig {
        let sts = aws_sdk_sts::Client::new(config);
        let out = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name("test")
            .send()
            .await
            .expect("AssumeRole");
        let c = out.credentials.expect("credentials");
        self.sdk_config(
            &c.access_key_id,
            &c.secret_access_key,
            Some(&c.session_token),
        )
        .await
    }
}

/// The operator's SDK connector pointed at `emu`, with quick retries.
pub fn connector(emu: &Emulator) -> std::sync::Arc<partner_billing_operator::aws::SdkConnector> {
    std::sync::Arc::new(partner_billing_operator::aws::SdkConnector::new(
        partner_billing_operator::aws::AwsOptions {
            endpoint_url: Some(emu.url.clone()),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            operator_credentials: None,
        },
        partner_billing_operator::metrics::Metrics::shared(),
    ))
}

/// A folder of manifests for file mode, removed when dropped.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "pbo-test-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    pub fn write(&self, file: &str, yaml: &str) {
        std::fs::write(self.0.join(file), yaml).unwrap();
    }
    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.0.join(file)).ok();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// The report of one object in an `apply`/`plan` report.
pub fn find<'a>(
    r: &'a partner_billing_operator::filemode::Report,
    kind: &str,
    name: &str,
) -> &'a partner_billing_operator::filemode::ObjectReport {
    r.objects
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:#?}", r.objects))
}

/// The status an `apply` report holds for one object.
pub fn status<'a>(
    r: &'a partner_billing_operator::filemode::Report,
    kind: &str,
    name: &str,
) -> &'a Value {
    &find(r, kind, name).object.as_ref().expect("object")["status"]
}

/// The account id of the payer in the emulator's organization.
pub const PAYER_ACCOUNT: &str = "123456789012";

/// Manifests of a Secret `aws` with these keys and a Payer `acme` (account
/// [`PAYER_ACCOUNT`]) that uses it, in namespace `ns`; ends with a newline, so lines of the
/// payer's spec may follow.
pub fn payer_yaml(ns: &str, access_key: &str, secret_key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: aws, namespace: {ns}}}\nstringData: {{accessKeyId: {access_key}, secretAccessKey: {secret_key}}}\n---\napiVersion: partnerbilling.io/v1alpha1\nkind: Payer\nmetadata: {{name: acme, namespace: {ns}}}\nspec:\n  accountId: \"{PAYER_ACCOUNT}\"\n  credentials: {{secretRef: {{name: aws}}}}\n"
    )
}

/// The Payer `acme` (account [`PAYER_ACCOUNT`], credentials in Secret `aws`) with this
/// metadata; the fields of `extra` are added to its spec.
pub fn payer_object(metadata: Value, extra: Value) -> partner_billing_operator::api::Payer {
    let mut spec =
        json!({"accountId": PAYER_ACCOUNT, "credentials": {"secretRef": {"name": "aws"}}});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer",
        "metadata": metadata, "spec": spec
    }))
    .unwrap()
}

/// Manifests of `paths` as file mode loads them for namespace `ns`; panics on a problem.
pub fn load(paths: &[PathBuf], ns: &str) -> partner_billing_operator::filemode::Manifests {
    partner_billing_operator::filemode::load(paths, ns).unwrap_or_else(|p| panic!("{p:?}"))
}

/// Operations that only read (STS, List/Describe/Get/Head): every other request the
/// emulator counts is a write.
pub fn is_read(service: &str, operation: &str) -> bool {
    service == "sts"
        || ["List", "Describe", "Get", "Head"]
            .iter()
            .any(|p| operation.starts_with(p))
}

/// The write requests the emulator lists since its counts were cleared: (service,
/// operation, count), as listed (a count may be 0).
pub fn listed_writes(emu: &Emulator) -> Vec<(String, String, u64)> {
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
        .filter(|(s, o, _)| !is_read(s, o))
        .collect()
}

/// Secrets of the operator: Secret `aws` in `ns` with these keys.
pub fn static_secrets(
    ns: &str,
    access_key: &str,
    secret_key: &str,
) -> partner_billing_operator::secrets::StaticSecrets {
    use partner_billing_operator::secrets::{SecretData, SecretString, StaticSecrets};
    let mut data = SecretData::new();
    data.insert("accessKeyId".into(), SecretString::new(access_key));
    data.insert("secretAccessKey".into(), SecretString::new(secret_key));
    let mut secrets = StaticSecrets::default();
    secrets.insert(ns, "aws", data);
    secrets
}

/// A new operator over `emu` and `catalog`, with the secrets of [`static_secrets`]: new
/// connections, and snapshot caches that keep nothing (every reconcile reads AWS).
pub fn operator_context(
    emu: &Emulator,
    catalog: std::sync::Arc<partner_billing_operator::reconcile::catalog::Catalog>,
    ns: &str,
    access_key: &str,
    secret_key: &str,
) -> partner_billing_operator::reconcile::ReconcileContext {
    use partner_billing_operator::billing::snapshot::BillingSnapshot;
    use partner_billing_operator::payer::snapshot::{SharedReads, SnapshotCache};
    use std::sync::Arc;
    partner_billing_operator::reconcile::ReconcileContext::new(
        connector(emu),
        Arc::new(static_secrets(ns, access_key, secret_key)),
    )
    .with_catalog(catalog)
    .with_shared(Arc::new(SnapshotCache::new(Duration::from_millis(0))))
    .with_shared(Arc::new(SharedReads::<BillingSnapshot>::new(
        Duration::from_millis(0),
    )))
}

/// Calls since the counters were zeroed that change AWS (not List/Describe/Get/Head, not
/// STS), as `service:Operation`.
pub fn written_operations(emu: &Emulator) -> Vec<String> {
    listed_writes(emu)
        .into_iter()
        .map(|(service, op, _)| format!("{service}:{op}"))
        .collect()
}

/// The ids of the accounts of the organization `config` reads, the payer's
/// ([`PAYER_ACCOUNT`]) left out, sorted.
pub async fn member_ids(config: &SdkConfig) -> Vec<String> {
    let orgs = aws_sdk_organizations::Client::new(config);
    let mut pages = orgs.list_accounts().into_paginator().send();
    let mut ids = Vec::new();
    while let Some(page) = pages.next().await {
        ids.extend(
            page.unwrap()
                .accounts
                .unwrap_or_default()
                .into_iter()
                .filter_map(|a| a.id)
                .filter(|id| id != PAYER_ACCOUNT),
        );
    }
    ids.sort();
    ids
}

/// The emulator, the hold on it, and the ids of the member accounts (sorted).
pub type HeldOrganization = (
    &'static Emulator,
    tokio::sync::MutexGuard<'static, ()>,
    Vec<String>,
);

/// The emulator, held for this test alone (its state reset), with an organization of the
/// payer (these keys) and `members` member accounts, and their ids (sorted).
pub async fn organization_with_members(
    access_key: &str,
    secret_key: &str,
    members: usize,
) -> HeldOrganization {
    let emu = emulator();
    let guard = emu.lock().await;
    let cfg = emu.sdk_config(access_key, secret_key, None).await;
    emu.create_organization(&cfg, members).await;
    (emu, guard, member_ids(&cfg).await)
}
