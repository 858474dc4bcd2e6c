//! The cluster the suite runs against and what every test needs from it: kubectl and helm,
//! the chart installed once, clients (admin, or a ServiceAccount's token), throw-away
//! namespaces, operator processes, and waits on conditions.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, Config, ResourceExt};
use serde_json::{Value, json};

/// The chart's release; its name is the chart's, so every object is called this.
pub const RELEASE: &str = "partner-billing-operator";
pub const RELEASE_NAMESPACE: &str = "pbo-e2e-system";
/// The operator's ServiceAccount (the release's full name).
pub const SERVICE_ACCOUNT: &str = RELEASE;
/// The two tenants of the RBAC test: a payer-admin is bound (by the chart) in the first only.
pub const TENANT_A: &str = "pbo-e2e-tenant-a";
pub const TENANT_B: &str = "pbo-e2e-tenant-b";
/// Users the chart binds: payer-admin in TENANT_A (`rbac.payerAdmins`) and platform-admin
/// cluster-wide (`rbac.platformAdmins`).
pub const PAYER_ADMIN: &str = "e2e-alice";
pub const PLATFORM_ADMIN: &str = "e2e-plato";
/// The PayerGrant the chart creates from its values.
pub const VALUES_GRANT: &str = "pbo-e2e-from-values";

/// The AWS keys of the tests' Payers (the emulator maps any key to this account).
pub const ACCESS_KEY: &str = "AKIAPBOE2E0000000001";
pub const SECRET_KEY: &str = "pbo-e2e-secret-not-real";
pub const PAYER_ACCOUNT: &str = "123456789012";

pub struct Cluster {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub helm: PathBuf,
    /// What tests/tools/ensure-tools.sh installed (helm, the venv with lupa).
    pub tools: PathBuf,
    pub root: PathBuf,
    /// A folder for this run's files (token kubeconfigs, values, operator logs).
    pub work: PathBuf,
    /// Seconds `helm install` took.
    pub helm_install: Duration,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// Held by the tests that read or change the stored CRDs' schemas (the tests run in
/// parallel; one of them installs a looser LinkedAccount CRD for a moment).
pub static CRD_SCHEMAS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster, with the chart installed (once per test binary). Fails the test when no
/// cluster is configured: the suite is never skipped silently.
pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(setup) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn setup() -> Result<Cluster, String> {
    let kubeconfig = std::env::var_os("PBO_E2E_KUBECONFIG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            format!(
                "PBO_E2E_KUBECONFIG is not set{}: `make cluster-test` starts a local \
                 kube-apiserver (tests/cluster/start.sh) and sets it; or point it at a \
                 throw-away cluster",
                if ci {
                    " (CI=true: the real-server suite must run)"
                } else {
                    ""
                }
            )
        })?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tools = match std::env::var_os("PBO_TOOLS_DIR").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(script_output(&root.join("tests/tools/ensure-tools.sh"))?),
    };
    // KUBECTL, else the local cluster's (KUBE_BIN, set by `make cluster-test` when it starts
    // one), else the tools folder's (a cluster of yours, `make e2e`: building the control
    // plane just for kubectl is minutes of Go), else the one ensure-kube.sh builds.
    let kubectl = match std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("KUBE_BIN").filter(|p| !p.is_empty()) {
            Some(bin) => PathBuf::from(bin).join("kubectl"),
            None if tools.join("bin/kubectl").is_file() => tools.join("bin/kubectl"),
            None => PathBuf::from(script_output(&root.join("tests/cluster/ensure-kube.sh"))?)
                .join("kubectl"),
        },
    };
    let helm = tools.join("bin/helm");
    // Operator logs and token kubeconfigs: beside the control plane's logs when the Makefile
    // says where (removed by its next run), else in the temp folder.
    let work = std::env::var_os("PBO_E2E_WORK_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("pbo-real-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mut c = Cluster {
        kubeconfig,
        kubectl,
        helm,
        tools,
        root,
        work,
        helm_install: Duration::ZERO,
    };
    c.install_chart()?;
    Ok(c)
}

fn script_output(script: &Path) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed", script.display()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What a command printed and whether it succeeded.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Cluster {
    fn install_chart(&mut self) -> Result<(), String> {
        for ns in [RELEASE_NAMESPACE, TENANT_A, TENANT_B] {
            let r = self.kubectl_stdin(
                &["apply", "-f", "-"],
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                    .to_string(),
            );
            if !r.ok {
                return Err(format!("create namespace {ns}: {}", r.stderr));
            }
        }
        let values = self.work.join("values.yaml");
        let text = json!({
            "replicas": 2,
            "rbac": {
                "payerAdmins": [{
                    "namespace": TENANT_A,
                    "subjects": [{"kind": "User", "name": PAYER_ADMIN, "apiGroup": "rbac.authorization.k8s.io"}]
                }],
                "platformAdmins": [{"kind": "User", "name": PLATFORM_ADMIN, "apiGroup": "rbac.authorization.k8s.io"}]
            },
            // A grant from values (the tenancy test checks it is on the server); it covers a
            // namespace no test uses.
            "grants": [{
                "name": VALUES_GRANT,
                "namespaces": {"names": ["pbo-e2e-nobody"]},
                "accountIds": ["111111111111"],
                "roleArns": ["arn:aws:iam::111111111111:role/PartnerBillingOperator"]
            }]
        });
        std::fs::write(&values, text.to_string()).map_err(|e| e.to_string())?;
        let chart = self.root.join("charts/partner-billing-operator");
        let started = Instant::now();
        let out = Command::new(&self.helm)
            .args(["upgrade", "--install", RELEASE])
            .arg(&chart)
            .args(["--namespace", RELEASE_NAMESPACE, "--values"])
            .arg(&values)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", self.work.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.work.join("helm/config"))
            .env("HELM_DATA_HOME", self.work.join("helm/data"))
            .output()
            .map_err(|e| format!("{}: {e}", self.helm.display()))?;
        let r = Run::from(out);
        if !r.ok {
            return Err(format!(
                "helm install of the chart failed:\n{}{}",
                r.stdout, r.stderr
            ));
        }
        self.helm_install = started.elapsed();
        let mut wait = vec![
            "wait".to_string(),
            "--for".into(),
            "condition=established".into(),
            "--timeout".into(),
            "60s".into(),
        ];
        wait.extend(
            partner_billing_operator::crdgen::all()
                .iter()
                .map(|c| format!("crd/{}", c.metadata.name.clone().unwrap_or_default())),
        );
        let r = self.kubectl(&wait.iter().map(String::as_str).collect::<Vec<_>>());
        if !r.ok {
            return Err(format!("CRDs from the chart not established: {}", r.stderr));
        }
        Ok(())
    }

    pub fn helm(&self, args: &[&str]) -> Run {
        let out = Command::new(&self.helm)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", self.work.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.work.join("helm/config"))
            .env("HELM_DATA_HOME", self.work.join("helm/data"))
            .output()
            .expect("run helm");
        Run::from(out)
    }

    /// kubectl as the cluster's admin.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_stdin(args, "")
    }

    /// kubectl as the cluster's admin, `stdin` on its standard input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.kubectl_with(&self.kubeconfig, args, stdin)
    }

    /// kubectl with another kubeconfig.
    pub fn kubectl_with(&self, kubeconfig: &Path, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.kubectl.display()));
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).expect("kubectl stdin");
        }
        Run::from(child.wait_with_output().expect("kubectl output"))
    }

    /// kubectl that must succeed; its standard output.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let r = self.kubectl(args);
        assert!(r.ok, "kubectl {}: {}", args.join(" "), r.stderr);
        r.stdout
    }

    /// The object `namespace/name` of `kind` as the server returns it (`kubectl get -o json`).
    pub fn get_json(&self, kind: &str, namespace: &str, name: &str) -> Value {
        let plural = resource(kind).plural;
        let text = self.kubectl_ok(&["get", &plural, name, "-n", namespace, "-o", "json"]);
        serde_json::from_str(&text).expect("kubectl get -o json")
    }

    /// The project's Argo CD health check of `kind` (examples/gitops/argocd/health, run in a
    /// real Lua by tests/tools/argocd_health.py) on `obj`: (status, message).
    pub fn argocd_health(&self, kind: &str, obj: &Value) -> (String, String) {
        let mut child = Command::new(self.tools.join("venv/bin/python"))
            .arg(self.root.join("tests/tools/argocd_health.py"))
            .arg(kind)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tests/tools/argocd_health.py");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(obj.to_string().as_bytes())
            .expect("write the object");
        let r = Run::from(child.wait_with_output().expect("argocd_health.py"));
        assert!(r.ok, "argocd_health.py {kind}: {}", r.stderr);
        let h: Value = serde_json::from_str(&r.stdout).expect("health json");
        (
            h["status"].as_str().unwrap_or_default().to_string(),
            h["message"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// A client with the admin identity of the kubeconfig.
    pub async fn admin(&self) -> Client {
        client_for(&self.kubeconfig).await
    }

    /// A kubeconfig that authenticates with a fresh TokenRequest token of `namespace/sa`
    /// (`kubectl create token`), and nothing else: every permission comes from RBAC.
    pub fn token_kubeconfig(&self, namespace: &str, sa: &str) -> PathBuf {
        let token = self
            .kubectl_ok(&[
                "create",
                "token",
                sa,
                "--namespace",
                namespace,
                "--duration",
                "2h",
            ])
            .trim()
            .to_string();
        assert!(!token.is_empty(), "no token for {namespace}/{sa}");
        let admin = Kubeconfig::read_from(&self.kubeconfig).expect("read the kubeconfig");
        let context_name = admin.current_context.clone().unwrap_or_default();
        let cluster_name = admin
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
            .expect("current context");
        let cluster = admin
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .and_then(|c| c.cluster.clone())
            .expect("cluster of the current context");
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": sa, "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": sa}}],
            "current-context": "c",
        });
        let path = self
            .work
            .join(format!("{namespace}-{sa}-{}.kubeconfig", fastrand::u32(..)));
        // It holds a bearer token: owner-only, created so (never readable in between).
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(config.to_string().as_bytes()))
            .expect("write the token kubeconfig");
        path
    }

    /// The kube-apiserver audit log (ServiceAccounts' requests at level Metadata) when the
    /// cluster is the one tests/cluster/start.sh made: `AUDIT_LOG` in the cluster.env beside
    /// its kubeconfig. None for a cluster of yours.
    pub fn audit_log(&self) -> Option<PathBuf> {
        let env = std::fs::read_to_string(self.kubeconfig.parent()?.join("cluster.env")).ok()?;
        env.lines()
            .find_map(|l| l.strip_prefix("AUDIT_LOG="))
            .map(|p| PathBuf::from(p.trim()))
    }

    /// A fresh namespace `<prefix>-<random>`.
    pub async fn namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{:06x}", fastrand::u32(..0xff_ffff));
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.admin().await);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace"),
        )
        .await
        .expect("create namespace");
        name
    }

    /// Delete a namespace (its objects must have lost their finalizers already).
    pub async fn delete_namespace(&self, name: &str) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.admin().await);
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete namespace");
    }
}

/// The emulator, held for this test alone (its state reset), with an organization of the
/// payer and `members` member accounts; the payer's SDK config.
pub async fn emulated_organization(
    members: usize,
) -> (
    &'static crate::common::Emulator,
    tokio::sync::MutexGuard<'static, ()>,
    aws_config::SdkConfig,
) {
    let emu = crate::common::emulator();
    let guard = emu.lock().await;
    let aws = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    emu.create_organization(&aws, members).await;
    (emu, guard, aws)
}

/// Delete `kind/name` and wait until it is gone (its finalizer released).
pub async fn delete_and_wait(admin: &kube::Client, ns: &str, kind: &str, name: &str) {
    api(admin, ns, kind)
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(
        admin,
        ns,
        kind,
        name,
        "deleted",
        Duration::from_secs(60),
        |x| x.is_none(),
    )
    .await;
}

/// Delete `kind/name` and wait until that object (by UID) is gone, its finalizer released: one
/// made again under the same name does not count. `what` names the wait in its timeout.
pub async fn delete_and_wait_for_uid(
    admin: &kube::Client,
    ns: &str,
    kind: &str,
    name: &str,
    what: &str,
) {
    let objects = api(admin, ns, kind);
    let uid = objects.get(name).await.expect("object").uid().expect("uid");
    objects
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(admin, ns, kind, name, what, Duration::from_secs(60), |x| {
        x.is_none_or(|x| x.uid().as_deref() != Some(uid.as_str()))
    })
    .await;
}

pub async fn client_for(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// The ApiResource of a partnerbilling.io kind.
pub fn resource(kind: &str) -> ApiResource {
    let crd = partner_billing_operator::crdgen::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    let gvk = kube::api::GroupVersionKind::gvk(
        &crd.spec.group,
        &crd.spec.versions[0].name,
        &crd.spec.names.kind,
    );
    ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural)
}

pub fn api(client: &Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &resource(kind))
}

/// The condition `type_` of an object's status.
pub fn condition<'a>(obj: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// `Ready` and `Synced` are `status`, both computed for the object's current generation.
pub fn settled(obj: &DynamicObject, status: &str) -> bool {
    let generation = obj.metadata.generation;
    ["Ready", "Synced"].iter().all(|t| {
        condition(obj, t).is_some_and(|c| {
            c["status"] == status && c["observedGeneration"].as_i64() == generation
        })
    })
}

/// Wait (on a watch) until `cond` holds for `namespace/name` of `kind`; panics after
/// `within`, showing the object as it was then.
pub async fn wait_for(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    what: &str,
    within: Duration,
    cond: impl Fn(Option<&DynamicObject>) -> bool,
) -> Option<DynamicObject> {
    let api = api(client, namespace, kind);
    match tokio::time::timeout(within, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(obj)) => obj,
        Ok(Err(e)) => panic!("watching {kind} {namespace}/{name}: {e}"),
        Err(_) => {
            let now = api.get_opt(name).await.ok().flatten();
            panic!(
                "{kind} {namespace}/{name}: not {what} within {within:?}; now: {}",
                now.map(|o| serde_json::to_string_pretty(&o).unwrap_or_default())
                    .unwrap_or_else(|| "absent".into())
            )
        }
    }
}

/// Poll `probe` every 100 ms until it returns `Some`; panics after `within` with `what`.
pub async fn poll<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    eventually(what, within, || std::future::ready(probe())).await
}

/// As [`poll`], for a probe that awaits (an API call).
pub async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Fut,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not {what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A plain HTTP GET on 127.0.0.1: (status, body), or `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// One `partner-billing-operator run` process, out of cluster.
pub struct Operator {
    pub name: String,
    pub port: u16,
    pub log: PathBuf,
    child: Option<Child>,
}

pub struct OperatorOptions<'a> {
    pub name: &'a str,
    pub kubeconfig: &'a Path,
    pub emulator_url: &'a str,
    pub namespaces: &'a [&'a str],
    /// `--leader-election` with this Lease name (in RELEASE_NAMESPACE).
    pub lease: Option<&'a str>,
}

impl Operator {
    pub fn start(c: &Cluster, o: OperatorOptions<'_>) -> Self {
        Self::start_with_env(c, o, &[])
    }

    /// As [`Self::start`], with more environment variables (set last: they win), e.g. an AWS
    /// identity of the operator's own (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) or `PBO_LOG`.
    pub fn start_with_env(c: &Cluster, o: OperatorOptions<'_>, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = c.work.join(format!("operator-{}.log", o.name));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_partner-billing-operator"));
        cmd.arg("run")
            .arg(format!("--metrics-addr=127.0.0.1:{port}"))
            .arg("--resync-seconds=30");
        for ns in o.namespaces {
            cmd.arg(format!("--namespace={ns}"));
        }
        if let Some(lease) = o.lease {
            cmd.args(["--leader-election", "--lease-name", lease]);
        }
        let child = cmd
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", o.kubeconfig)
            .env("POD_NAME", o.name)
            .env("POD_NAMESPACE", RELEASE_NAMESPACE)
            .env("AWS_ENDPOINT_URL", o.emulator_url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env(
                "PBO_LOG",
                std::env::var("PBO_E2E_OPERATOR_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            .env("PBO_LOG_FORMAT", "text")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("operator log"))
            .stderr(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log)
                    .expect("operator log"),
            )
            .spawn()
            .expect("start the operator");
        Operator {
            name: o.name.to_string(),
            port,
            log,
            child: Some(child),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines of the log that show the API server refusing the operator something. kube's
    /// error for a 403 prints "ApiError: <message>: Forbidden (Status { .., code: 403, .. })",
    /// the message itself "... is forbidden: User ...": match those forms, not a bare "403"
    /// (timestamps and account ids contain it).
    pub fn forbidden(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| {
                let lower = l.to_lowercase();
                lower.contains("forbidden")
                    || l.contains("code: 403")
                    || lower.contains("could not record event")
            })
            .map(str::to_string)
            .collect()
    }

    /// Lines of the log where a reconcile failed on a Kubernetes API error (none is expected
    /// on a healthy cluster: such errors wait for the slow re-check).
    pub fn api_errors(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("KubernetesApiError"))
            .map(str::to_string)
            .collect()
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    /// `partnerbilling_reconciles_total` of `kind` from /metrics (0 when absent).
    pub fn reconciles(&self, kind: &str) -> u64 {
        let Some((200, text)) = self.get("/metrics") else {
            return 0;
        };
        let label = format!("kind=\"{kind}\"");
        text.lines()
            .filter(|l| l.starts_with("partnerbilling_reconciles_total") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// SIGKILL: the process dies without releasing anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// SIGTERM (what the kubelet sends), then wait for it to exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `jti` claim of the bearer token in a kubeconfig `token_kubeconfig` wrote: what the
/// audit log shows as `user.extra["authentication.kubernetes.io/credential-id"]` (`JTI=...`),
/// so that one process's requests can be told from others with the same ServiceAccount.
pub fn token_jti(kubeconfig: &Path) -> String {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(kubeconfig).expect("read the kubeconfig"))
            .expect("token kubeconfig json");
    let token = config["users"][0]["user"]["token"]
        .as_str()
        .expect("a token in the kubeconfig");
    let payload = token.split('.').nth(1).expect("a JWT");
    // base64url without padding
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut bytes = Vec::new();
    for ch in payload.bytes() {
        let v = match ch {
            b'A'..=b'Z' => ch - b'A',
            b'a'..=b'z' => ch - b'a' + 26,
            b'0'..=b'9' => ch - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            bytes.push((bits >> n) as u8);
        }
    }
    let claims: Value = serde_json::from_slice(&bytes).expect("JWT claims json");
    claims["jti"].as_str().expect("a jti claim").to_string()
}
