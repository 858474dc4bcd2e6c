//! `crds/` must be exactly what `partner-billing-operator crd` prints.
//! Regenerate with `make crds`.

use std::collections::BTreeSet;
use std::path::Path;

use partner_billing_operator::crdgen;

#[test]
fn committed_crds_match_the_generated_ones() {
    check_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"));
}

#[test]
fn the_charts_crds_match_the_generated_ones() {
    check_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/partner-billing-operator/crds"));
}

fn check_dir(dir: &Path) {
    let dir = dir.to_path_buf();
    let mut expected = BTreeSet::new();
    for crd in crdgen::all() {
        let name = crdgen::file_name(&crd);
        let want = crdgen::to_yaml(&crd).expect("render CRD");
        let path = dir.join(&name);
        let have = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is missing ({e}); run `make crds`", path.display()));
        assert!(
            have == want,
            "{} differs from what `partner-billing-operator crd` prints; run `make crds`",
            path.display()
        );
        expected.insert(name);
    }
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("read crds/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let stale: Vec<_> = present.difference(&expected).collect();
    assert!(
        stale.is_empty(),
        "crds/ holds files no CRD generates: {stale:?}; run `make crds`"
    );
}

/// The kinds platform administrators write for the whole cluster: cluster-scoped, and
/// without a status (the operator only reads them).
const CLUSTER_KINDS: &[&str] = &["PayerGrant"];

#[test]
fn every_crd_is_namespaced_in_our_group_and_documented() {
    for crd in crdgen::all() {
        assert_eq!(crd.spec.group, "partnerbilling.io");
        let cluster_kind = CLUSTER_KINDS.contains(&crd.spec.names.kind.as_str());
        assert_eq!(
            crd.spec.scope,
            if cluster_kind {
                "Cluster"
            } else {
                "Namespaced"
            }
        );
        assert!(
            crd.spec
                .names
                .categories
                .as_ref()
                .is_some_and(|c| c.contains(&"partnerbilling".to_string()))
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert_eq!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            !cluster_kind
        );
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema");
        let spec = &schema.properties.as_ref().expect("properties")["spec"];
        let props = spec.properties.as_ref().expect("spec properties");
        for (field, s) in props {
            assert!(
                s.description.as_deref().is_some_and(|d| !d.is_empty()),
                "{}: spec.{field} has no description",
                crd.spec.names.kind
            );
        }
    }
}
