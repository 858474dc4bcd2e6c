//! The one list of kinds. Each line names a kind's CRD type and its domain module (with its
//! `reconcile` and `cleanup`), plus what it does differently from the defaults of
//! [`crate::reconcile::kind::Kind`]. CRD generation, the controller's watches, triggers and first
//! sync, file mode's parsing, order and dispatch, and the catalog all follow this list.
//!
//! Adding a kind: its API type (`api/`), its domain module, one line here, its IAM family
//! entry (`iam.rs`), then `make crds`.

// Every CRD type, so that a new kind needs no import here, only its line.
use crate::api::*;

crate::kind_list! {
    Payer => payer [aws_cleanup: false, owned_status: crate::payer::owned_status, report: crate::payer::report, triggers: crate::payer::grant_watch::payer_triggers];
    ServiceControlPolicy => organizations::service_control_policy;
    OrganizationalUnit => organizations::organizational_unit [file_order: crate::organizations::organizational_unit::parents_first];
    LinkedAccount => organizations::linked_account [triggers: crate::organizations::linked_account::triggers];
    PricingPlan => billing::pricing_plan;
    BillingTransfer => organizations::billing_transfer;
    BillingGroup => billing::billing_group [triggers: crate::billing::billing_group::triggers];
    CustomLineItem => billing::custom_line_item [file_order: crate::billing::custom_line_item::applied_to_first];
    CurPipeline => costs::cur_pipeline;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::organizations::creations::Creations;
    use crate::organizations::linked_account::creation_wake_ups;
    use crate::reconcile::catalog::Guarded;
    use crate::reconcile::kind::{Kind, KindVisitor};
    use crate::reconcile::trigger::in_scope;
    use futures::StreamExt;
    use kube::runtime::reflector;

    #[test]
    fn the_names_are_the_kinds() {
        struct Names(Vec<String>);
        impl KindVisitor for Names {
            fn visit<K: Kind>(&mut self) {
                self.0.push(K::kind(&()).to_string());
            }
        }
        let mut names = Names(Vec::new());
        visit(&mut names);
        assert_eq!(names.0, NAMES);
    }

    /// Every kind's typed management accessor agrees with its serialized spec: an example
    /// object of each kind (examples/) with `spec.managementPolicy: Observe` is observed
    /// exactly when the kind's CRD has that field, and with `Manage` or without the field it
    /// is managed; the pause annotation wins over both.
    #[test]
    fn every_kind_reads_its_management_policy_as_its_crd_says() {
        use crate::api::common::{ManagementPolicy, PAUSED_ANNOTATION};
        use crate::reconcile::management::{Management, management};

        fn examples() -> Vec<serde_json::Value> {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
            let mut files = Vec::new();
            let mut dirs = vec![root];
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        dirs.push(path);
                    } else if path.extension().is_some_and(|e| e == "yaml") {
                        files.push(path);
                    }
                }
            }
            files
                .iter()
                .flat_map(|f| {
                    let text = std::fs::read_to_string(f).unwrap();
                    serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap()
                })
                .filter(|v| !v.is_null())
                .collect()
        }

        struct Agree(Vec<serde_json::Value>, Vec<String>);
        impl KindVisitor for Agree {
            fn visit<K: Kind>(&mut self) {
                let kind = K::kind(&()).to_string();
                let crd = serde_json::to_value(K::crd()).unwrap();
                let has_field = !crd
                    .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/managementPolicy")
                    .unwrap_or(&serde_json::Value::Null)
                    .is_null();
                let example = self
                    .0
                    .iter()
                    .find(|v| v["kind"] == kind.as_str())
                    .unwrap_or_else(|| panic!("no {kind} in examples/"))
                    .clone();
                let with = |policy: Option<&str>, paused: bool| -> K {
                    let mut v = example.clone();
                    let spec = v["spec"].as_object_mut().unwrap();
                    spec.remove("managementPolicy");
                    if let Some(p) = policy {
                        spec.insert("managementPolicy".into(), p.into());
                    }
                    if paused {
                        v["metadata"]["annotations"] =
                            serde_json::json!({PAUSED_ANNOTATION: "true"});
                    }
                    serde_json::from_value(v).unwrap()
                };
                let observed = with(Some("Observe"), false);
                // What the serialized form says (how the engine used to read it).
                let serialized = serde_json::to_value(&observed).unwrap();
                let kept = serialized.pointer("/spec/managementPolicy")
                    == Some(&serde_json::Value::from("Observe"));
                assert_eq!(kept, has_field, "{kind}: the CRD and the type disagree");
                let (want, policy) = if has_field {
                    (Management::Observe, ManagementPolicy::Observe)
                } else {
                    (Management::Manage, ManagementPolicy::Manage)
                };
                assert_eq!(observed.management_policy(), policy, "{kind}");
                assert_eq!(management(&observed), want, "{kind}");
                assert_eq!(management(&with(None, false)), Management::Manage, "{kind}");
                if has_field {
                    let manage = with(Some("Manage"), false);
                    assert_eq!(management(&manage), Management::Manage, "{kind}");
                }
                assert_eq!(
                    management(&with(Some("Observe"), true)),
                    Management::Paused,
                    "{kind}"
                );
                self.1.push(kind);
            }
        }
        let mut agree = Agree(examples(), Vec::new());
        visit(&mut agree);
        assert_eq!(agree.1, NAMES);
    }

    fn woken_accounts(
        creations: &Creations,
        scope: Option<String>,
    ) -> impl futures::Stream<Item = reflector::ObjectRef<Guarded<LinkedAccount>>> + Send + 'static
    {
        in_scope::<LinkedAccount>(creation_wake_ups(creations), scope)
    }

    #[tokio::test]
    async fn creation_wake_ups_reach_the_account_controller_of_their_namespace() {
        let creations = crate::organizations::creations::Creations::default();
        let mine = woken_accounts(&creations, Some("billing".into()));
        let all = woken_accounts(&creations, None);
        creations.wake("other", "x");
        creations.wake("billing", "a-01");
        drop(creations);
        let mine: Vec<_> = mine.collect().await;
        let all: Vec<_> = all.collect().await;
        assert_eq!(
            mine,
            vec![reflector::ObjectRef::new("a-01").within("billing")]
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], reflector::ObjectRef::new("x").within("other"));
    }
}
