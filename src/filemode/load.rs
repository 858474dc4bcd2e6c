//! Reading manifests: files and folders, multi-document YAML, each document checked against
//! its kind's generated CRD schema (as the API server would) and parsed into the kind the
//! kind list names; Secrets resolve credential references; a few built-in kinds are skipped.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use crate::reconcile::catalog::Catalog;
use crate::reconcile::kind::{Kind, KindVisitor};
use crate::schema_check;
use crate::secrets::{StaticSecrets, decode};

/// Most YAML documents one manifest file may hold.
pub const MAX_DOCUMENTS_PER_FILE: usize = 100_000;

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

/// The manifests read from the given paths: the objects of every kind (in file order), the
/// Secrets, and what was skipped.
#[derive(Default)]
pub struct Manifests {
    objects: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    count: usize,
    pub secrets: StaticSecrets,
    /// Documents skipped, as `source: kind/name`.
    pub skipped: Vec<String>,
}

impl Manifests {
    /// Objects of every kind.
    pub fn object_count(&self) -> usize {
        self.count
    }

    /// The objects of kind `K`, in the order they were read.
    pub fn of<K: Kind>(&self) -> &[K] {
        self.objects
            .get(&TypeId::of::<K>())
            .and_then(|v| v.downcast_ref::<Vec<K>>())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Take the objects of kind `K` out, in the order they were read.
    pub fn take<K: Kind>(&mut self) -> Vec<K> {
        let taken = self
            .objects
            .remove(&TypeId::of::<K>())
            .and_then(|v| v.downcast::<Vec<K>>().ok())
            .map(|v| *v)
            .unwrap_or_default();
        self.count -= taken.len();
        taken
    }

    /// Add an object of kind `K`.
    pub fn push<K: Kind>(&mut self, object: K) {
        self.objects
            .entry(TypeId::of::<K>())
            .or_insert_with(|| Box::new(Vec::<K>::new()))
            .downcast_mut::<Vec<K>>()
            .expect("objects are keyed by their kind's type")
            .push(object);
        self.count += 1;
    }

    /// Every object, as the reconcilers' catalog.
    pub fn catalog(&self) -> Catalog {
        let mut fill = Fill {
            manifests: self,
            catalog: Catalog::new(),
        };
        crate::kinds::visit(&mut fill);
        fill.catalog
    }
}

struct Fill<'a> {
    manifests: &'a Manifests,
    catalog: Catalog,
}

impl KindVisitor for Fill<'_> {
    fn visit<K: Kind>(&mut self) {
        for o in self.manifests.of::<K>() {
            self.catalog.put(o.clone());
        }
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

fn problem_at(path: &Path, message: impl ToString) -> InputProblem {
    InputProblem {
        source: path.display().to_string(),
        message: message.to_string(),
    }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>, explicit: bool) -> Result<(), InputProblem> {
    let meta = std::fs::metadata(path).map_err(|e| problem_at(path, e))?;
    if meta.is_dir() {
        let kustomized = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .any(|k| path.join(k).exists());
        if kustomized {
            // A kustomize base or overlay is not plain manifests: skipped inside a folder,
            // refused when named.
            if explicit {
                return Err(problem_at(
                    path,
                    "is a kustomize folder; render it first: kubectl kustomize DIR > out.yaml and pass out.yaml",
                ));
            }
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| problem_at(path, e))?
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
                problems.push(problem_at(file, e));
                continue;
            }
        };
        match parse_documents(&text) {
            Ok(values) => {
                for (i, v) in values.into_iter().enumerate() {
                    docs.push((format!("{}#{}", file.display(), i + 1), v));
                }
            }
            Err(e) => problems.push(problem_at(file, e)),
        }
    }
    let parsers = Parsers::of_every_kind();
    let mut manifests = Manifests::default();
    for (source, doc) in docs {
        if let Err(p) = add_document(&mut manifests, &parsers, &source, doc, default_namespace) {
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

/// Parses a document into its kind and adds it to the manifests.
type Parse = fn(&mut Manifests, Value) -> Result<(), serde_json::Error>;

/// The parser of every kind of the kind list, by kind name.
struct Parsers(Vec<(String, Parse)>);

impl Parsers {
    fn of_every_kind() -> Self {
        let mut parsers = Parsers(Vec::new());
        crate::kinds::visit(&mut parsers);
        parsers
    }

    fn get(&self, kind: &str) -> Option<Parse> {
        self.0.iter().find(|(k, _)| k == kind).map(|(_, p)| *p)
    }
}

impl KindVisitor for Parsers {
    fn visit<K: Kind>(&mut self) {
        self.0.push((K::kind(&()).into_owned(), parse_into::<K>));
    }
}

fn parse_into<K: Kind>(m: &mut Manifests, doc: Value) -> Result<(), serde_json::Error> {
    m.push(serde_json::from_value::<K>(doc)?);
    Ok(())
}

/// What identifies a document: `apiVersion`, `kind`, `metadata.name` and the namespace it
/// goes to (`default_namespace` is filled in when it names none).
struct Header {
    api_version: String,
    kind: String,
    name: String,
    namespace: String,
}

fn header(doc: &mut Value, default_namespace: &str) -> Result<Header, String> {
    let text = |doc: &Value, pointer: &str| {
        doc.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind, name) = (
        text(doc, "/apiVersion"),
        text(doc, "/kind"),
        text(doc, "/metadata/name"),
    );
    if kind.is_empty() || api_version.is_empty() {
        return Err("document has no apiVersion or kind".into());
    }
    if name.is_empty() {
        return Err(format!("{kind} has no metadata.name"));
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
    Ok(Header {
        api_version,
        kind,
        name,
        namespace,
    })
}

fn add_document(
    m: &mut Manifests,
    parsers: &Parsers,
    source: &str,
    mut doc: Value,
    default_namespace: &str,
) -> Result<(), InputProblem> {
    let problem = |message: String| InputProblem {
        source: source.to_string(),
        message,
    };
    let Header {
        api_version,
        kind,
        name,
        namespace,
    } = header(&mut doc, default_namespace).map_err(problem)?;
    if api_version == crate::api::API_VERSION
        && let Some(parse) = parsers.get(&kind)
    {
        check_schema(&kind, &doc).map_err(problem)?;
        return parse(m, doc).map_err(|e| problem(format!("{kind} {name}: {e}")));
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => {
            let secret: Secret =
                serde_json::from_value(doc).map_err(|e| problem(format!("Secret {name}: {e}")))?;
            m.secrets.insert(&namespace, &name, decode(&secret));
            Ok(())
        }
        // Tenancy (issue 17): grants are the cluster's; file mode acts with the invoker's own
        // identity and skips them.
        (crate::api::API_VERSION, "PayerGrant") => {
            m.skipped.push(format!("{source}: PayerGrant/{name}"));
            Ok(())
        }
        (v, k)
            if v.starts_with(crate::api::GROUP)
                || v.starts_with(&format!("{}/", crate::api::GROUP)) =>
        {
            Err(problem(format!(
                "{k} ({v}) is not a kind this version serves; known kinds: {}",
                crate::kinds::NAMES.join(", ")
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
    // The CEL rules of every kind, compiled once per process (compiling them again for every
    // document was most of the CPU file mode spent before it read AWS).
    static COMPILED: std::sync::OnceLock<
        std::collections::HashMap<&'static str, schema_check::CompiledSchema>,
    > = std::sync::OnceLock::new();
    let schema = crate::crdgen::schema_ref(kind).ok_or_else(|| format!("no schema for {kind}"))?;
    let compiled = COMPILED
        .get_or_init(|| {
            crate::kinds::NAMES
                .iter()
                .filter_map(|k| Some((*k, schema_check::compile(crate::crdgen::schema_ref(k)?))))
                .collect()
        })
        .get(kind);
    let violations = match compiled {
        Some(compiled) => schema_check::validate_compiled(schema, compiled, doc),
        None => schema_check::validate(schema, doc, None),
    };
    if violations.is_empty() {
        Ok(())
    } else {
        let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
        Err(format!("{kind} is invalid: {}", list.join("; ")))
    }
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
