//! The CustomResourceDefinitions, generated from the Rust types of the kind list. `crds/` is
//! written from here and a test fails when the committed files drift.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::reconcile::kind::{Kind, KindVisitor};

/// Every CRD this operator serves, in dependency order (the kind list's).
pub fn all() -> Vec<CustomResourceDefinition> {
    struct Crds(Vec<CustomResourceDefinition>);
    impl KindVisitor for Crds {
        fn visit<K: Kind>(&mut self) {
            self.0.push(K::crd());
        }
    }
    let mut crds = Crds(Vec::new());
    crate::kinds::visit(&mut crds);
    // Not a reconciled kind: cluster-scoped configuration the Payers' grant check reads.
    crds.0
        .push(<crate::api::PayerGrant as kube::CustomResourceExt>::crd());
    crds.0
}

/// File name of a CRD under `crds/`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default())
}

/// One CRD as YAML, with a leading document marker.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::SerializeError> {
    let body = serde_saphyr::to_string(crd)?;
    Ok(format!("---\n{body}"))
}

/// The openAPIV3Schema of the CRD for `kind`, as JSON.
pub fn schema_for(kind: &str) -> Option<serde_json::Value> {
    schema_ref(kind).cloned()
}

/// As [`schema_for`], generated once per process (file mode checks every document with it).
pub fn schema_ref(kind: &str) -> Option<&'static serde_json::Value> {
    static SCHEMAS: std::sync::OnceLock<std::collections::HashMap<String, serde_json::Value>> =
        std::sync::OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            all()
                .into_iter()
                .filter_map(|c| {
                    let schema = c
                        .spec
                        .versions
                        .first()
                        .and_then(|v| v.schema.as_ref())
                        .and_then(|s| s.open_api_v3_schema.as_ref())
                        .and_then(|s| serde_json::to_value(s).ok())?;
                    Some((c.spec.names.kind.clone(), schema))
                })
                .collect()
        })
        .get(kind)
}

/// The full multi-document YAML that `partner-billing-operator crd` prints.
pub fn all_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for crd in all() {
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}

/// Write every CRD to `dir/<name>.yaml`, creating the folder if needed.
pub fn write_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for crd in all() {
        let path = dir.join(file_name(&crd));
        let yaml = to_yaml(&crd).map_err(|e| e.to_string())?;
        std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
