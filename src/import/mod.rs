//! `import --payer FILE -o DIR`: manifests for an organization and Billing Conductor setup
//! that exist already, read through the Payer's credentials ([`read`]), turned into
//! manifests ([`build`]: every object `managementPolicy: Observe`, accounts as `adopt`,
//! Billing Conductor objects with `adopt: true`, `deletionPolicy: Retain`), named after their
//! AWS names ([`names`]) and written one file per kind. Applying the folder right away makes
//! no AWS write; a person then switches objects to `Manage` one at a time.

pub mod build;
pub mod names;
pub mod read;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::aws::AwsConnect;

/// The files written, in the order the kinds are reconciled.
pub const FILES: &[(&str, &str)] = &[
    ("ServiceControlPolicy", "service-control-policies.yaml"),
    ("OrganizationalUnit", "organizational-units.yaml"),
    ("LinkedAccount", "linked-accounts.yaml"),
    ("PricingPlan", "pricing-plans.yaml"),
    ("BillingGroup", "billing-groups.yaml"),
    ("CustomLineItem", "custom-line-items.yaml"),
];

/// What an import wrote and what it has to say.
#[derive(Clone, Debug, Default)]
pub struct Imported {
    /// Objects written, by kind (in [`FILES`] order).
    pub counts: Vec<(String, usize)>,
    pub files: Vec<PathBuf>,
    /// Collisions, objects left out, what needs a review before `Manage`.
    pub notes: Vec<String>,
}

/// Import the organization of the one Payer in `payer_paths` (with its credentials Secret)
/// into `out`. Refuses to overwrite files there.
pub async fn import(
    payer_paths: &[PathBuf],
    namespace: &str,
    out: &Path,
    connector: Arc<dyn AwsConnect>,
) -> Result<Imported, String> {
    let mut manifests = crate::filemode::load(payer_paths, namespace).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("the payer file is not valid:\n  {}", lines.join("\n  "))
    })?;
    let payers = manifests.take::<crate::api::Payer>();
    let [payer] = payers.as_slice() else {
        return Err(format!(
            "the payer file must hold exactly one Payer (it holds {})",
            payers.len()
        ));
    };
    for (_, file) in FILES {
        if out.join(file).exists() {
            return Err(format!(
                "{} exists; import writes a new folder (remove it or choose another -o)",
                out.join(file).display()
            ));
        }
    }
    let found = read::read(payer, manifests.secrets, connector, Timestamp::now())
        .await
        .map_err(|e| format!("cannot read AWS with the Payer's credentials: {e}"))?;
    let target = build::Target {
        namespace: &payer.namespace().unwrap_or_default(),
        payer: &payer.name_any(),
    };
    let built = build::build(&found, &target);
    write(out, &built, &found.org.organization.id).map(|(counts, files)| Imported {
        counts,
        files,
        notes: built.notes,
    })
}

type Written = (Vec<(String, usize)>, Vec<PathBuf>);

fn write(out: &Path, built: &build::Built, organization: &str) -> Result<Written, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut counts = Vec::new();
    let mut files = Vec::new();
    for (kind, file) in FILES {
        let docs: Vec<&build::Doc> = built.docs.iter().filter(|d| d.kind == *kind).collect();
        counts.push((kind.to_string(), docs.len()));
        if docs.is_empty() {
            continue;
        }
        let mut text = format!(
            "# {kind} objects imported from organization {organization} by `partner-billing-operator import`.\n# managementPolicy: Observe: the operator only reads AWS for them; switch one to Manage to let it write.\n"
        );
        for d in docs {
            text.push_str("---\n");
            for c in &d.comments {
                text.push_str(&format!("# {c}\n"));
            }
            let yaml = serde_saphyr::to_string(&d.value)
                .map_err(|e| format!("{kind} {}: cannot write YAML: {e}", d.name))?;
            text.push_str(&yaml);
        }
        let path = out.join(file);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push(path);
    }
    Ok((counts, files))
}
