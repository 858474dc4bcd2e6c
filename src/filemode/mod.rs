//! File mode: `plan -f` and `apply -f` over a folder of manifests, without a cluster.
//!
//! Manifests are validated against the generated CRD schemas (as the API server would),
//! Secrets in the same files resolve credential references, and objects are reconciled in
//! dependency order by the same reconcilers the controller uses. Status lives in memory.

pub mod output;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde_json::Value;

use crate::api::Payer;
use crate::api::conditions::{self, READY, SYNCED};
use crate::aws::AwsConnect;
use crate::reconcile::{Change, ReconcileContext, payer};
use crate::schema_check;
use crate::secrets::{StaticSecrets, decode};

/// Kinds in the order they are reconciled (what later kinds refer to comes first).
pub const KIND_ORDER: &[&str] = &["Payer"];

/// Built-in kinds that may sit beside our manifests and are skipped without complaint.
const IGNORED_KINDS: &[&str] = &[
    "Namespace",
    "ConfigMap",
    "Kustomization",
    "Application",
    "ServiceAccount",
];

/// One problem with the input files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputProblem {
    pub source: String,
    pub message: String,
}

impl std::fmt::Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

/// The manifests read from the given paths.
#[derive(Default)]
pub struct Manifests {
    pub payers: Vec<Payer>,
    pub secrets: StaticSecrets,
    /// Documents skipped, as `source: kind/name`.
    pub skipped: Vec<String>,
}

impl Manifests {
    pub fn object_count(&self) -> usize {
        self.payers.len()
    }
}

/// Every manifest file under `paths` (files as given; folders recursively, sorted).
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputProblem> {
    let mut out = Vec::new();
    for p in paths {
        collect(p, &mut out, true)?;
    }
    Ok(out)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>, explicit: bool) -> Result<(), InputProblem> {
    let meta = std::fs::metadata(path).map_err(|e| InputProblem {
        source: path.display().to_string(),
        message: e.to_string(),
    })?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| InputProblem {
                source: path.display().to_string(),
                message: e.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, out, false)?;
        }
    } else if explicit || is_manifest(path) {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Read and validate every manifest. All problems are reported together.
pub fn load(paths: &[PathBuf], default_namespace: &str) -> Result<Manifests, Vec<InputProblem>> {
    let files = collect_files(paths).map_err(|p| vec![p])?;
    let mut docs = Vec::new();
    let mut problems = Vec::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(InputProblem {
                    source: file.display().to_string(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        match parse_documents(&text) {
            Ok(values) => {
                for (i, v) in values.into_iter().enumerate() {
                    docs.push((format!("{}#{}", file.display(), i + 1), v));
                }
            }
            Err(e) => problems.push(InputProblem {
                source: file.display().to_string(),
                message: e,
            }),
        }
    }
    let mut manifests = Manifests::default();
    for (source, doc) in docs {
        if let Err(p) = add_document(&mut manifests, &source, doc, default_namespace) {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        Ok(manifests)
    } else {
        Err(problems)
    }
}

/// Split multi-document YAML (or one JSON document) into values, dropping empty documents.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let values: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("not valid YAML: {e}"))?;
    Ok(values.into_iter().filter(|v| !v.is_null()).collect())
}

fn add_document(
    m: &mut Manifests,
    source: &str,
    mut doc: Value,
    default_namespace: &str,
) -> Result<(), InputProblem> {
    let problem = |message: String| InputProblem {
        source: source.to_string(),
        message,
    };
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind.is_empty() || api_version.is_empty() {
        return Err(problem("document has no apiVersion or kind".into()));
    }
    if name.is_empty() {
        return Err(problem(format!("{kind} has no metadata.name")));
    }
    if doc.pointer("/metadata/namespace").is_none()
        && let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert(
            "namespace".into(),
            Value::String(default_namespace.to_string()),
        );
    }
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(default_namespace)
        .to_string();
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => {
            let secret: Secret =
                serde_json::from_value(doc).map_err(|e| problem(format!("Secret {name}: {e}")))?;
            m.secrets.insert(&namespace, &name, decode(&secret));
            Ok(())
        }
        (crate::api::API_VERSION, "Payer") => {
            check_schema("Payer", &doc).map_err(&problem)?;
            let payer: Payer =
                serde_json::from_value(doc).map_err(|e| problem(format!("Payer {name}: {e}")))?;
            m.payers.push(payer);
            Ok(())
        }
        (v, k)
            if v.starts_with(crate::api::GROUP)
                || v.starts_with(&format!("{}/", crate::api::GROUP)) =>
        {
            Err(problem(format!(
                "{k} ({v}) is not a kind this version serves; known kinds: {}",
                KIND_ORDER.join(", ")
            )))
        }
        (_, k) if IGNORED_KINDS.contains(&k) || k.ends_with("List") => {
            m.skipped.push(format!("{source}: {k}/{name}"));
            Ok(())
        }
        (v, k) => Err(problem(format!("{k} ({v}) is not handled by file mode"))),
    }
}

fn check_schema(kind: &str, doc: &Value) -> Result<(), String> {
    let schema = crate::crdgen::schema_for(kind).ok_or_else(|| format!("no schema for {kind}"))?;
    let violations = schema_check::validate(&schema, doc, None);
    if violations.is_empty() {
        Ok(())
    } else {
        let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
        Err(format!("{kind} is invalid: {}", list.join("; ")))
    }
}

/// Per-object result of `plan` or `apply`.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// AWS changes (planned for `plan`, made for `apply`).
    pub changes: Vec<Change>,
    /// What was verified or found, one line each.
    pub findings: Vec<String>,
    pub ready: bool,
    pub synced: bool,
    pub reason: String,
    pub message: String,
    /// The object with its resulting status (`apply` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
}

impl ObjectReport {
    /// An object that is not Ready (or could not be reconciled) fails the command.
    pub fn failed(&self) -> bool {
        !self.ready || !self.synced
    }
}

/// Reports for all objects.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub objects: Vec<ObjectReport>,
}

impl Report {
    pub fn changes(&self) -> usize {
        self.objects.iter().map(|o| o.changes.len()).sum()
    }
    pub fn errors(&self) -> usize {
        self.objects.iter().filter(|o| o.failed()).count()
    }
}

/// Exit status of `plan`: 0 no changes, 2 changes pending, 1 error (as `terraform plan -detailed-exitcode`).
pub fn plan_exit_code(report: &Report) -> i32 {
    if report.errors() > 0 {
        1
    } else if report.changes() > 0 {
        2
    } else {
        0
    }
}

/// Exit status of `apply`: 0 when every object reconciled, 1 otherwise.
pub fn apply_exit_code(report: &Report) -> i32 {
    if report.errors() > 0 { 1 } else { 0 }
}

fn context(manifests: Manifests, connector: Arc<dyn AwsConnect>) -> (Vec<Payer>, ReconcileContext) {
    let Manifests {
        payers, secrets, ..
    } = manifests;
    (payers, ReconcileContext::new(connector, Arc::new(secrets)))
}

/// Observe AWS and report what would change. Writes nothing.
pub async fn plan(manifests: Manifests, connector: Arc<dyn AwsConnect>) -> Report {
    let (payers, ctx) = context(manifests, connector);
    let mut report = Report::default();
    for p in ordered(payers) {
        let planned = match payer::observe(&p, &ctx).await {
            Ok(observed) => Ok(payer::plan(&p.spec, &observed)),
            Err(e) => Err(e),
        };
        report.objects.push(payer_report(&p, &planned, None));
    }
    report
}

/// Reconcile every object once, in dependency order, and report the resulting status.
pub async fn apply(manifests: Manifests, connector: Arc<dyn AwsConnect>) -> Report {
    let (payers, ctx) = context(manifests, connector);
    let now = crate::time::now_rfc3339();
    let mut report = Report::default();
    for mut p in ordered(payers) {
        let outcome = payer::reconcile(&p, &ctx, &now).await;
        p.status = Some(outcome.status);
        let object = serde_json::to_value(&p).ok();
        report.objects.push(payer_report(&p, &outcome.plan, object));
    }
    report
}

fn ordered(mut payers: Vec<Payer>) -> Vec<Payer> {
    payers.sort_by_key(|p| (p.namespace().unwrap_or_default(), p.name_any()));
    payers
}

fn payer_report(
    p: &Payer,
    planned: &Result<payer::PayerPlan, crate::error::Error>,
    object: Option<Value>,
) -> ObjectReport {
    let mut r = ObjectReport {
        kind: "Payer".into(),
        namespace: p.namespace().unwrap_or_default(),
        name: p.name_any(),
        changes: Vec::new(),
        findings: Vec::new(),
        ready: false,
        synced: false,
        reason: String::new(),
        message: String::new(),
        object,
    };
    match planned {
        Ok(plan) => {
            r.synced = true;
            r.changes = plan.changes.clone();
            match &plan.verdict {
                payer::PayerVerdict::Verified {
                    caller_arn,
                    organization_id,
                    feature_set,
                    accounts,
                } => {
                    r.ready = true;
                    r.reason = "Verified".into();
                    r.findings.push(format!(
                        "identity {caller_arn} is in account {}",
                        p.spec.account_id
                    ));
                    r.findings.push(format!(
                        "management account of organization {organization_id} ({feature_set}) with {accounts} accounts"
                    ));
                }
                payer::PayerVerdict::Rejected { reason, message } => {
                    r.reason = reason.clone();
                    r.message = message.clone();
                }
            }
        }
        Err(e) => {
            r.reason = e.reason().into();
            r.message = e.to_string();
        }
    }
    if let Some(status) = &p.status {
        r.ready = conditions::is_ready(&status.conditions);
        r.synced = conditions::find(&status.conditions, SYNCED)
            .is_some_and(|c| c.status == crate::api::ConditionStatus::True);
        if let Some(ready) = conditions::find(&status.conditions, READY) {
            r.reason = ready.reason.clone();
            r.message = ready.message.clone();
        }
    }
    r
}

/// Count of objects per kind, for summaries.
pub fn kinds(report: &Report) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for o in &report.objects {
        *m.entry(o.kind.clone()).or_insert(0) += 1;
    }
    m
}
