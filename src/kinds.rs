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
