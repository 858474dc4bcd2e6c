//! Every manifest in `examples/` is valid against the generated CRD schemas (a broken example
//! fails the build), and so is the kustomize overlay once rendered.

use std::path::PathBuf;

use partner_billing_operator::api::{BillingGroup, CustomLineItem, LinkedAccount, Payer};
use partner_billing_operator::filemode;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_examples_load_and_validate() {
    let manifests = filemode::load(&[root().join("examples")], "default")
        .unwrap_or_else(|problems| panic!("examples/ is not valid: {problems:#?}"));
    assert!(manifests.of::<Payer>().len() == 1, "one Payer in examples/");
    assert!(!manifests.of::<LinkedAccount>().is_empty());
    assert!(!manifests.of::<BillingGroup>().is_empty());
    assert!(!manifests.of::<CustomLineItem>().is_empty());
    assert!(
        manifests.object_count() >= 16,
        "{}",
        manifests.object_count()
    );
}

#[test]
fn the_kustomize_overlay_renders_to_valid_objects() {
    let tools = std::env::var("PBO_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/partner-billing-operator/tools")
        });
    let kubectl = tools.join("bin/kubectl");
    assert!(
        kubectl.exists(),
        "{} is missing: run tests/tools/ensure-tools.sh (make test does)",
        kubectl.display()
    );
    let overlay = root().join("examples/gitops/overlays/production");
    let out = std::process::Command::new(&kubectl)
        .args(["kustomize", overlay.to_str().unwrap()])
        .output()
        .expect("kubectl kustomize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::env::temp_dir().join(format!("pbo-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rendered.yaml"), &out.stdout).unwrap();
    let manifests = filemode::load(std::slice::from_ref(&dir), "default");
    std::fs::remove_dir_all(&dir).ok();
    let manifests =
        manifests.unwrap_or_else(|p| panic!("the rendered overlay is not valid: {p:#?}"));
    assert_eq!(manifests.of::<Payer>().len(), 1);
    let payer = &manifests.of::<Payer>()[0];
    assert_eq!(payer.metadata.namespace.as_deref(), Some("partner-billing"));
    assert!(
        payer
            .spec
            .credentials
            .as_ref()
            .and_then(|c| c.assume_role.as_ref())
            .is_some()
    );
}

#[test]
fn a_kustomize_folder_named_directly_is_refused_with_advice() {
    let err = filemode::load(
        &[root().join("examples/gitops/overlays/production")],
        "default",
    )
    .err()
    .expect("refused");
    assert!(err[0].message.contains("kubectl kustomize"), "{err:?}");
}
