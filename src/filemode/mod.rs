//! File mode: `plan -f` and `apply -f` over a folder of manifests, without a cluster.
//!
//! Manifests are validated against the generated CRD schemas (as the API server would),
//! Secrets in the same files resolve credential references, and objects are reconciled in
//! dependency order by the same reconcilers the controller uses. Status lives in memory.

pub mod output;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde_json::Value;

use crate::api::conditions::{self, READY, SYNCED};
use crate::api::{
    BillingGroup, CurPipeline, CustomLineItem, LinkedAccount, OrganizationalUnit, Payer,
    PricingPlan, ServiceControlPolicy,
};
use crate::aws::AwsConnect;
use crate::billing::billing_group;
use crate::billing::custom_line_item;
use crate::billing::pricing_plan;
use crate::costs::cur_pipeline;
use crate::error::Error;
use crate::organizations::creations::Wake;
use crate::organizations::linked_account;
use crate::organizations::organizational_unit;
use crate::organizations::service_control_policy;
use crate::payer;
use crate::reconcile::run::Run;
use crate::reconcile::{Catalog, Change, KindOutcome, KindStatus, Mode, ReconcileContext, Verdict};
use crate::schema_check;
use crate::secrets::{StaticSecrets, decode};
use tokio::sync::broadcast::error::RecvError;

/// Kinds in the order they are reconciled (what later kinds refer to comes first).
pub const KIND_ORDER: &[&str] = &[
    "Payer",
    "ServiceControlPolicy",
    "OrganizationalUnit",
    "LinkedAccount",
    "PricingPlan",
    "BillingGroup",
    "CustomLineItem",
    "CurPipeline",
];

/// In `apply`, objects waiting at most this long for something in progress (an account
/// creation, a dependency created earlier in the same run) are looked at again until
/// `--wait` runs out; longer waits (an invitation, a closure budget) are reported as they are.
const IN_PROGRESS_MAX: Duration = Duration::from_secs(20);

/// In `apply`, the longest pause before an object in progress is looked at again (an
/// object waiting for another one of the same run sees it change within this).
const FILE_POLL: Duration = Duration::from_secs(2);

/// Most YAML documents one manifest file may hold.
pub const MAX_DOCUMENTS_PER_FILE: usize = 100_000;

/// How soon `apply` tries an object again after a transient AWS failure.
const RETRY_TRANSIENT: Duration = Duration::from_secs(1);

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
    pub service_control_policies: Vec<ServiceControlPolicy>,
    pub organizational_units: Vec<OrganizationalUnit>,
    pub linked_accounts: Vec<LinkedAccount>,
    pub pricing_plans: Vec<PricingPlan>,
    pub billing_groups: Vec<BillingGroup>,
    pub custom_line_items: Vec<CustomLineItem>,
    pub cur_pipelines: Vec<CurPipeline>,
    pub secrets: StaticSecrets,
    /// Documents skipped, as `source: kind/name`.
    pub skipped: Vec<String>,
}

impl Manifests {
    pub fn object_count(&self) -> usize {
        self.payers.len()
            + self.service_control_policies.len()
            + self.organizational_units.len()
            + self.linked_accounts.len()
            + self.pricing_plans.len()
            + self.billing_groups.len()
            + self.custom_line_items.len()
            + self.cur_pipelines.len()
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
        let kustomized = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .any(|k| path.join(k).exists());
        if kustomized {
            // A kustomize base or overlay is not plain manifests: skipped inside a folder,
            // refused when named.
            if explicit {
                return Err(InputProblem {
                    source: path.display().to_string(),
                    message: "is a kustomize folder; render it first: kubectl kustomize DIR > out.yaml and pass out.yaml".into(),
                });
            }
            return Ok(());
        }
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
    // The default budget stops at 1,024 documents per file; an organization exported as one
    // file can hold more. Other limits (depth, aliases) stay as they are.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = MAX_DOCUMENTS_PER_FILE;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    let values: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|e| format!("not valid YAML: {e}"))?;
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
        // Tenancy (issue 17): grants are the cluster's; file mode skips them.
        (crate::api::API_VERSION, "PayerGrant") => {
            m.skipped.push(format!("{source}: PayerGrant/{name}"));
            Ok(())
        }
        (crate::api::API_VERSION, k) if KIND_ORDER.contains(&k) => {
            check_schema(k, &doc).map_err(&problem)?;
            let parse_err = |e: serde_json::Error| problem(format!("{k} {name}: {e}"));
            match k {
                "Payer" => m
                    .payers
                    .push(serde_json::from_value(doc).map_err(parse_err)?),
                "ServiceControlPolicy" => m
                    .service_control_policies
                    .push(serde_json::from_value(doc).map_err(parse_err)?),
                "OrganizationalUnit" => m
                    .organizational_units
                    .push(serde_json::from_value(doc).map_err(parse_err)?),
                "PricingPlan" => m
                    .pricing_plans
                    .push(serde_json::from_value(doc).map_err(parse_err)?),
                "BillingGroup" => m
                    .billing_groups
                    .push(serde_json::from_value(doc).map_err(parse_err)?),
                "CustomLineItem" => m
                    .custom_line_items
                    .push(serde_json::from_value(doc).map_err(parse_err)?),
                "CurPipeline" => m
                    .cur_pipelines
                    .push(serde_json::from_value(doc).map_err(parse_err)?),
                _ => m
                    .linked_accounts
                    .push(serde_json::from_value(doc).map_err(parse_err)?),
            }
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
    let schema = crate::crdgen::schema_ref(kind).ok_or_else(|| format!("no schema for {kind}"))?;
    let violations = schema_check::validate(schema, doc, None);
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
    /// The object could not be planned or reconciled (a problem to fix, not a wait).
    pub error: bool,
    pub reason: String,
    pub message: String,
    /// The object with its resulting status (`apply` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
}

impl ObjectReport {
    /// An object that is not Ready fails `apply`.
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
    /// Objects with a problem (for `plan`).
    pub fn errors(&self) -> usize {
        self.objects.iter().filter(|o| o.error).count()
    }
    /// Objects not Ready (for `apply`).
    pub fn not_ready(&self) -> usize {
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

/// Exit status of `apply`: 0 when every object is Ready, 1 otherwise.
pub fn apply_exit_code(report: &Report) -> i32 {
    if report.not_ready() > 0 { 1 } else { 0 }
}

/// The manifests as a [`Catalog`], with statuses updated as objects are reconciled.
#[derive(Default)]
pub struct FileCatalog {
    payers: RwLock<HashMap<(String, String), Payer>>,
    scps: RwLock<HashMap<(String, String), ServiceControlPolicy>>,
    ous: RwLock<HashMap<(String, String), OrganizationalUnit>>,
    accounts: RwLock<HashMap<(String, String), LinkedAccount>>,
    plans: RwLock<HashMap<(String, String), PricingPlan>>,
    groups: RwLock<HashMap<(String, String), BillingGroup>>,
    items: RwLock<HashMap<(String, String), CustomLineItem>>,
    pipelines: RwLock<HashMap<(String, String), CurPipeline>>,
}

fn all_in<K: Clone>(m: &RwLock<HashMap<(String, String), K>>, ns: &str) -> Vec<K> {
    all_in_where(m, ns, &|_| true)
}

/// The objects of `ns` that `keep` accepts (the others are not copied).
fn all_in_where<K: Clone>(
    m: &RwLock<HashMap<(String, String), K>>,
    ns: &str,
    keep: &dyn Fn(&K) -> bool,
) -> Vec<K> {
    m.read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|((n, _), v)| n == ns && keep(v))
        .map(|(_, v)| v.clone())
        .collect()
}

fn key_of<K: ResourceExt>(o: &K) -> (String, String) {
    (o.namespace().unwrap_or_default(), o.name_any())
}

fn get<K: Clone>(m: &RwLock<HashMap<(String, String), K>>, ns: &str, name: &str) -> Option<K> {
    m.read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(ns.to_string(), name.to_string()))
        .cloned()
}

fn put<K: ResourceExt + Clone>(m: &RwLock<HashMap<(String, String), K>>, o: &K) {
    m.write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key_of(o), o.clone());
}

impl Catalog for FileCatalog {
    fn payer(&self, ns: &str, name: &str) -> Option<Payer> {
        get(&self.payers, ns, name)
    }
    fn all_payers(&self) -> Vec<Payer> {
        self.payers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
    fn service_control_policy(&self, ns: &str, name: &str) -> Option<ServiceControlPolicy> {
        get(&self.scps, ns, name)
    }
    fn service_control_policies(&self, ns: &str) -> Vec<ServiceControlPolicy> {
        all_in(&self.scps, ns)
    }
    fn organizational_unit(&self, ns: &str, name: &str) -> Option<OrganizationalUnit> {
        get(&self.ous, ns, name)
    }
    fn linked_accounts(&self, ns: &str) -> Vec<LinkedAccount> {
        all_in(&self.accounts, ns)
    }
    fn pricing_plan(&self, ns: &str, name: &str) -> Option<PricingPlan> {
        get(&self.plans, ns, name)
    }
    fn billing_groups(&self, ns: &str) -> Vec<BillingGroup> {
        all_in(&self.groups, ns)
    }
    fn custom_line_items(&self, ns: &str) -> Vec<CustomLineItem> {
        all_in(&self.items, ns)
    }
    fn linked_accounts_where(
        &self,
        ns: &str,
        keep: &dyn Fn(&LinkedAccount) -> bool,
    ) -> Vec<LinkedAccount> {
        all_in_where(&self.accounts, ns, keep)
    }
    fn billing_groups_where(
        &self,
        ns: &str,
        keep: &dyn Fn(&BillingGroup) -> bool,
    ) -> Vec<BillingGroup> {
        all_in_where(&self.groups, ns, keep)
    }
    fn billing_group(&self, ns: &str, name: &str) -> Option<BillingGroup> {
        get(&self.groups, ns, name)
    }
    fn linked_account(&self, ns: &str, name: &str) -> Option<LinkedAccount> {
        get(&self.accounts, ns, name)
    }
}

/// One object of any kind, in reconcile order.
#[derive(Clone)]
enum Obj {
    Payer(Box<Payer>),
    Scp(Box<ServiceControlPolicy>),
    Ou(Box<OrganizationalUnit>),
    Account(Box<LinkedAccount>),
    Plan(Box<PricingPlan>),
    Group(Box<BillingGroup>),
    Item(Box<CustomLineItem>),
    Pipeline(Box<CurPipeline>),
}

impl Obj {
    fn kind(&self) -> &'static str {
        match self {
            Obj::Payer(_) => "Payer",
            Obj::Scp(_) => "ServiceControlPolicy",
            Obj::Ou(_) => "OrganizationalUnit",
            Obj::Account(_) => "LinkedAccount",
            Obj::Plan(_) => "PricingPlan",
            Obj::Group(_) => "BillingGroup",
            Obj::Item(_) => "CustomLineItem",
            Obj::Pipeline(_) => "CurPipeline",
        }
    }
    fn key(&self) -> (String, String) {
        match self {
            Obj::Payer(o) => key_of(o.as_ref()),
            Obj::Scp(o) => key_of(o.as_ref()),
            Obj::Ou(o) => key_of(o.as_ref()),
            Obj::Account(o) => key_of(o.as_ref()),
            Obj::Plan(o) => key_of(o.as_ref()),
            Obj::Group(o) => key_of(o.as_ref()),
            Obj::Item(o) => key_of(o.as_ref()),
            Obj::Pipeline(o) => key_of(o.as_ref()),
        }
    }
    fn value(&self) -> Option<Value> {
        match self {
            Obj::Payer(o) => serde_json::to_value(o).ok(),
            Obj::Scp(o) => serde_json::to_value(o).ok(),
            Obj::Ou(o) => serde_json::to_value(o).ok(),
            Obj::Account(o) => serde_json::to_value(o).ok(),
            Obj::Plan(o) => serde_json::to_value(o).ok(),
            Obj::Group(o) => serde_json::to_value(o).ok(),
            Obj::Item(o) => serde_json::to_value(o).ok(),
            Obj::Pipeline(o) => serde_json::to_value(o).ok(),
        }
    }
}

/// Objects in dependency order: Payers, SCPs, OUs (parents before children), accounts.
fn ordered(m: Manifests) -> (Vec<Obj>, StaticSecrets) {
    let Manifests {
        mut payers,
        mut service_control_policies,
        organizational_units,
        mut linked_accounts,
        mut pricing_plans,
        mut billing_groups,
        mut custom_line_items,
        mut cur_pipelines,
        secrets,
        ..
    } = m;
    pricing_plans.sort_by_key(key_of);
    billing_groups.sort_by_key(key_of);
    // Items others apply to come first.
    custom_line_items.sort_by_key(|i| {
        (
            i.spec
                .percentage
                .as_ref()
                .is_some_and(|p| !p.applies_to.is_empty()),
            key_of(i),
        )
    });
    payers.sort_by_key(key_of);
    service_control_policies.sort_by_key(key_of);
    linked_accounts.sort_by_key(key_of);
    let depth_of = |ou: &OrganizationalUnit| {
        let mut depth = 0;
        let mut current = ou.spec.parent_ref.clone();
        let ns = ou.namespace().unwrap_or_default();
        while let Some(r) = current {
            depth += 1;
            if depth > 10 {
                break;
            }
            current = organizational_units
                .iter()
                .find(|o| o.namespace().unwrap_or_default() == ns && o.name_any() == r.name)
                .and_then(|o| o.spec.parent_ref.clone());
        }
        depth
    };
    let mut ous: Vec<(usize, OrganizationalUnit)> = organizational_units
        .iter()
        .map(|o| (depth_of(o), o.clone()))
        .collect();
    ous.sort_by_key(|(d, o)| (*d, key_of(o)));
    let mut out: Vec<Obj> = payers
        .into_iter()
        .map(|p| Obj::Payer(Box::new(p)))
        .collect();
    out.extend(
        service_control_policies
            .into_iter()
            .map(|p| Obj::Scp(Box::new(p))),
    );
    out.extend(ous.into_iter().map(|(_, o)| Obj::Ou(Box::new(o))));
    out.extend(
        linked_accounts
            .into_iter()
            .map(|a| Obj::Account(Box::new(a))),
    );
    out.extend(pricing_plans.into_iter().map(|p| Obj::Plan(Box::new(p))));
    out.extend(billing_groups.into_iter().map(|g| Obj::Group(Box::new(g))));
    out.extend(
        custom_line_items
            .into_iter()
            .map(|i| Obj::Item(Box::new(i))),
    );
    cur_pipelines.sort_by_key(key_of);
    out.extend(
        cur_pipelines
            .into_iter()
            .map(|p| Obj::Pipeline(Box::new(p))),
    );
    (out, secrets)
}

fn context(
    objects: &[Obj],
    secrets: StaticSecrets,
    connector: Arc<dyn AwsConnect>,
) -> (ReconcileContext, Arc<FileCatalog>) {
    let catalog = Arc::new(FileCatalog::default());
    for o in objects {
        match o {
            Obj::Payer(p) => put(&catalog.payers, p.as_ref()),
            Obj::Scp(p) => put(&catalog.scps, p.as_ref()),
            Obj::Ou(p) => put(&catalog.ous, p.as_ref()),
            Obj::Account(p) => put(&catalog.accounts, p.as_ref()),
            Obj::Plan(p) => put(&catalog.plans, p.as_ref()),
            Obj::Group(p) => put(&catalog.groups, p.as_ref()),
            Obj::Item(p) => put(&catalog.items, p.as_ref()),
            Obj::Pipeline(p) => put(&catalog.pipelines, p.as_ref()),
        }
    }
    // Tenancy (issue 17): file mode acts with the invoker's own identity; grants are not consulted.
    let ctx = ReconcileContext::new(connector, Arc::new(secrets))
        .with_catalog(catalog.clone())
        .with_grants(Arc::new(crate::payer::tenancy::Unrestricted));
    (ctx, catalog)
}

/// Observe AWS and report what would change. Writes nothing.
pub async fn plan(manifests: Manifests, connector: Arc<dyn AwsConnect>) -> Report {
    let (objects, secrets) = ordered(manifests);
    let (ctx, _) = context(&objects, secrets, connector);
    let now = crate::time::now_rfc3339();
    let mut report = Report::default();
    for o in objects {
        let r = match &o {
            Obj::Payer(p) => {
                let planned = match payer::observe(p, &ctx).await {
                    Ok(observed) => Ok(payer::plan(&p.spec, &observed)),
                    Err(e) => Err(e),
                };
                payer_report(p, &planned, None)
            }
            Obj::Scp(x) => kind_report(
                &o,
                &service_control_policy::reconcile(x, &ctx, Run::at(Mode::Plan, &now)).await,
                None,
                true,
            ),
            Obj::Ou(x) => kind_report(
                &o,
                &organizational_unit::reconcile(x, &ctx, Run::at(Mode::Plan, &now)).await,
                None,
                true,
            ),
            Obj::Account(x) => kind_report(
                &o,
                &linked_account::reconcile(x, &ctx, Run::at(Mode::Plan, &now)).await,
                None,
                true,
            ),
            Obj::Plan(x) => kind_report(
                &o,
                &pricing_plan::reconcile(x, &ctx, Run::at(Mode::Plan, &now)).await,
                None,
                true,
            ),
            Obj::Group(x) => kind_report(
                &o,
                &billing_group::reconcile(x, &ctx, Run::at(Mode::Plan, &now)).await,
                None,
                true,
            ),
            Obj::Item(x) => kind_report(
                &o,
                &custom_line_item::reconcile(x, &ctx, Run::at(Mode::Plan, &now)).await,
                None,
                true,
            ),
            Obj::Pipeline(x) => kind_report(
                &o,
                &cur_pipeline::reconcile(x, &ctx, Run::at(Mode::Plan, &now)).await,
                None,
                true,
            ),
        };
        report.objects.push(r);
    }
    report
}

/// Reconcile every object in dependency order, again while something it waits for is in
/// progress (at most `wait`), and report the resulting statuses.
pub async fn apply(manifests: Manifests, connector: Arc<dyn AwsConnect>, wait: Duration) -> Report {
    apply_with_insights(manifests, connector, wait, Arc::default()).await
}

/// As [`apply`], keeping what the reconcilers learn about costs in `insights` (for metrics).
pub async fn apply_with_insights(
    manifests: Manifests,
    connector: Arc<dyn AwsConnect>,
    wait: Duration,
    insights: Arc<crate::payer::insights::InsightsStore>,
) -> Report {
    let (mut objects, secrets) = ordered(manifests);
    let (ctx, catalog) = context(&objects, secrets, connector);
    let ctx = ctx.with_insights(insights);
    let started = Instant::now();
    let deadline = started + wait;
    let mut reports: Vec<Option<ObjectReport>> = vec![None; objects.len()];
    let mut changes: Vec<Vec<Change>> = vec![Vec::new(); objects.len()];
    let mut pending: Vec<bool> = vec![true; objects.len()];
    // When each object is looked at again (at most `FILE_POLL` after the last look), sooner
    // when an account creation it waits for ends (the payer's creation watcher says so).
    let mut due: Vec<Instant> = vec![started; objects.len()];
    let mut woken = ctx.creations.subscribe();
    loop {
        for i in 0..objects.len() {
            if !pending[i] || due[i] > Instant::now() {
                continue;
            }
            let now = crate::time::now_rfc3339();
            let (report, again) = apply_one(&mut objects[i], &ctx, &catalog, &now).await;
            changes[i].extend(report.changes.iter().cloned());
            let mut report = report;
            report.changes = changes[i].clone();
            reports[i] = Some(report);
            pending[i] = again.is_some();
            if let Some(d) = again {
                due[i] = Instant::now() + d.min(FILE_POLL);
            }
        }
        let Some(next) = (0..objects.len())
            .filter(|i| pending[*i])
            .map(|i| due[i])
            .min()
        else {
            break;
        };
        if next > deadline {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            w = woken.recv() => {
                let mut wake = |w: Result<Wake, RecvError>| match w {
                    Ok(w) => {
                        for (i, o) in objects.iter().enumerate() {
                            if matches!(o, Obj::Account(a) if a.name_any() == w.name && a.namespace().as_deref() == Some(w.namespace.as_str())) {
                                due[i] = Instant::now();
                            }
                        }
                    }
                    // Wake-ups were missed: look at every account now.
                    Err(_) => {
                        for (i, o) in objects.iter().enumerate() {
                            if matches!(o, Obj::Account(_)) {
                                due[i] = Instant::now();
                            }
                        }
                    }
                };
                wake(w);
                while let Ok(w) = woken.try_recv() {
                    wake(Ok(w));
                }
            }
        }
    }
    Report {
        objects: reports.into_iter().flatten().collect(),
    }
}

/// Run the deletion path of every object once it is deleted (what the controller does before
/// it removes its finalizer), in reverse dependency order, until each is released or `wait`
/// has passed. Each object's `deletionPolicy` decides what happens in AWS. The crash tests use
/// it; there is no subcommand for it (deleting is `kubectl delete`'s job).
pub async fn delete(
    manifests: Manifests,
    connector: Arc<dyn AwsConnect>,
    wait: Duration,
) -> Report {
    let (mut objects, secrets) = ordered(manifests);
    objects.reverse();
    let (ctx, catalog) = context(&objects, secrets, connector);
    let started = Instant::now();
    let mut reports: Vec<Option<ObjectReport>> = vec![None; objects.len()];
    let mut pending: Vec<bool> = objects
        .iter()
        .map(|o| !matches!(o, Obj::Payer(_)))
        .collect();
    loop {
        let mut next_poll: Option<Duration> = None;
        for i in 0..objects.len() {
            if !pending[i] {
                continue;
            }
            let now = crate::time::now_rfc3339();
            let (report, again) = delete_one(&mut objects[i], &ctx, &catalog, &now).await;
            reports[i] = Some(report);
            pending[i] = again.is_some();
            if let Some(d) = again {
                next_poll = Some(next_poll.map_or(d, |n: Duration| n.min(d)));
            }
        }
        let Some(poll) = next_poll else { break };
        if started.elapsed() + poll.min(Duration::from_secs(2)) > wait {
            break;
        }
        tokio::time::sleep(poll.min(Duration::from_secs(2))).await;
    }
    Report {
        objects: reports.into_iter().flatten().collect(),
    }
}

/// The kind of `_o`, for the failpoint names.
#[allow(dead_code)]
fn kind_of<K: kube::Resource<DynamicType = ()>>(_o: &K) -> String {
    K::kind(&()).to_string()
}

/// Run `$module`'s deletion path for `$x`; once released, the object leaves the catalog.
macro_rules! delete_kind {
    ($x:ident, $ctx:ident, $catalog:ident, $now:ident, $module:ident, $store:ident, $variant:ident) => {{
        let outcome = $module::cleanup($x, $ctx, Run::at(Mode::Apply, $now)).await;
        crate::before_status!(kind_of($x.as_ref()));
        $x.status = Some(outcome.status.clone());
        let again = in_progress(&outcome.result);
        if outcome.result.is_ok() && again.is_none() {
            $catalog
                .$store
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key_of($x.as_ref()));
        } else {
            put(&$catalog.$store, $x.as_ref());
        }
        (
            kind_report(&Obj::$variant($x.clone()), &outcome, Some(()), false),
            again,
        )
    }};
}

async fn delete_one(
    o: &mut Obj,
    ctx: &ReconcileContext,
    catalog: &FileCatalog,
    now: &str,
) -> (ObjectReport, Option<Duration>) {
    match o {
        Obj::Payer(_) => unreachable!("a Payer has no deletion path"),
        Obj::Scp(x) => delete_kind!(x, ctx, catalog, now, service_control_policy, scps, Scp),
        Obj::Ou(x) => delete_kind!(x, ctx, catalog, now, organizational_unit, ous, Ou),
        Obj::Account(x) => delete_kind!(x, ctx, catalog, now, linked_account, accounts, Account),
        Obj::Plan(x) => delete_kind!(x, ctx, catalog, now, pricing_plan, plans, Plan),
        Obj::Group(x) => delete_kind!(x, ctx, catalog, now, billing_group, groups, Group),
        Obj::Item(x) => delete_kind!(x, ctx, catalog, now, custom_line_item, items, Item),
        Obj::Pipeline(x) => delete_kind!(x, ctx, catalog, now, cur_pipeline, pipelines, Pipeline),
    }
}

/// Reconcile `$x` with `$module`, store its new status in the catalog's `$store`, report it,
/// and say whether to look again.
macro_rules! apply_kind {
    ($x:ident, $ctx:ident, $catalog:ident, $now:ident, $module:ident, $store:ident, $variant:ident) => {{
        let outcome = $module::reconcile($x, $ctx, Run::at(Mode::Apply, $now)).await;
        crate::before_status!(kind_of($x.as_ref()));
        $x.status = Some(outcome.status.clone());
        put(&$catalog.$store, $x.as_ref());
        let again = in_progress(&outcome.result);
        (
            kind_report(&Obj::$variant($x.clone()), &outcome, Some(()), false),
            again,
        )
    }};
}

/// Reconcile one object, store its new status, and say whether (and when) to look again.
async fn apply_one(
    o: &mut Obj,
    ctx: &ReconcileContext,
    catalog: &FileCatalog,
    now: &str,
) -> (ObjectReport, Option<Duration>) {
    match o {
        Obj::Payer(p) => {
            let outcome = payer::reconcile(p, ctx, Run::at(Mode::Apply, now)).await;
            crate::before_status!("Payer");
            p.status = Some(outcome.status);
            put(&catalog.payers, p);
            let object = serde_json::to_value(&*p).ok();
            let again = match &outcome.plan {
                Err(e) if !e.is_terminal() => Some(RETRY_TRANSIENT),
                _ => None,
            };
            (payer_report(p, &outcome.plan, object), again)
        }
        Obj::Scp(x) => apply_kind!(x, ctx, catalog, now, service_control_policy, scps, Scp),
        Obj::Ou(x) => apply_kind!(x, ctx, catalog, now, organizational_unit, ous, Ou),
        Obj::Account(x) => apply_kind!(x, ctx, catalog, now, linked_account, accounts, Account),
        Obj::Plan(x) => apply_kind!(x, ctx, catalog, now, pricing_plan, plans, Plan),
        Obj::Group(x) => apply_kind!(x, ctx, catalog, now, billing_group, groups, Group),
        Obj::Item(x) => apply_kind!(x, ctx, catalog, now, custom_line_item, items, Item),
        Obj::Pipeline(x) => apply_kind!(x, ctx, catalog, now, cur_pipeline, pipelines, Pipeline),
    }
}

/// When to look again at an object whose work is still in progress, or that met a
/// transient failure (throttling, 5xx: tried again while `--wait` lasts).
fn in_progress(result: &Result<Verdict, Error>) -> Option<Duration> {
    let after = match result {
        Ok(v) => v.requeue?,
        Err(Error::Waiting { retry_after, .. }) => *retry_after,
        Err(e) if !e.is_terminal() => RETRY_TRANSIENT,
        Err(_) => return None,
    };
    (after <= IN_PROGRESS_MAX).then_some(after)
}

fn kind_report<S: serde::Serialize + KindStatus>(
    o: &Obj,
    outcome: &KindOutcome<S>,
    with_object: Option<()>,
    planning: bool,
) -> ObjectReport {
    let (namespace, name) = o.key();
    let mut r = ObjectReport {
        kind: o.kind().to_string(),
        namespace,
        name,
        changes: outcome.changes.clone(),
        findings: Vec::new(),
        ready: false,
        synced: false,
        error: false,
        reason: String::new(),
        message: String::new(),
        object: with_object.and_then(|_| o.value()),
    };
    match &outcome.result {
        Ok(v) => {
            r.ready = v.ready;
            r.synced = true;
            r.reason = v.reason.clone();
            r.message = v.message.clone();
            if v.ready {
                r.findings.push(v.message.clone());
            }
        }
        Err(e @ Error::Waiting { .. }) => {
            r.synced = true;
            r.reason = e.reason().to_string();
            r.message = e.to_string();
            r.findings.push(format!("waits: {e}"));
        }
        Err(e) => {
            r.error = true;
            r.reason = e.reason().to_string();
            r.message = e.to_string();
        }
    }
    if !planning {
        let conds = outcome.status.conditions();
        r.ready = conditions::is_ready(conds);
        r.synced = conditions::find(conds, SYNCED)
            .is_some_and(|c| c.status == crate::api::ConditionStatus::True);
    }
    r
}

/// The organization's costs as lines for the report: month over month, then by service.
fn cost_findings(c: &crate::api::payer::PayerCosts) -> Vec<String> {
    let mut lines = vec![format!(
        "cost {}: month to date {} {}, previous month {} ({} month over month)",
        c.month,
        c.month_to_date,
        c.currency,
        c.previous_month,
        c.month_over_month_percent
            .as_deref()
            .map(|p| if p.starts_with('-') {
                format!("{p}%")
            } else {
                format!("+{p}%")
            })
            .unwrap_or_else(|| "no previous cost to compare".into())
    )];
    lines.push(format!(
        "cost by month: {}",
        c.months
            .iter()
            .map(|m| format!("{} {}", m.month, m.total))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for s in &c.top_services {
        lines.push(format!(
            "cost by service: {} {} ({}%)",
            s.service, s.month_to_date, s.share_percent
        ));
    }
    lines.push(format!(
        "Cost Explorer: {} request(s) per read, about {} a month (USD {})",
        c.requests_per_refresh, c.requests_per_month, c.estimated_monthly_cost_usd
    ));
    lines
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
        error: false,
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
    if let Some(costs) = p.status.as_ref().and_then(|s| s.costs.as_ref()) {
        r.findings.extend(cost_findings(costs));
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
    r.error = !r.ready || !r.synced;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_may_hold_more_than_a_thousand_documents() {
        let text: String = (0..1500)
            .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n"))
            .collect();
        assert_eq!(parse_documents(&text).expect("parses").len(), 1500);
    }
}
