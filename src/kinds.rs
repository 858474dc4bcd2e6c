//! The one list of kinds. Each line names a kind's CRD type and its domain module (with its
//! `reconcile` and `cleanup`), plus what it does differently from the defaults of
//! [`crate::reconcile::kind::Kind`]. CRD generation, the controller's watches, triggers and first
//! sync, file mode's parsing, order and dispatch, and the catalog all follow this list.
//!
//! Adding a kind: its API type (`api/`), its domain module, one line here, its IAM family
//! entry (`iam.rs`), then `make crds`.

use futures::StreamExt;
use kube::{Resource, ResourceExt};
use tokio::sync::broadcast::error::RecvError;

// Every CRD type, so that a new kind needs no import here, only its line.
use crate::api::*;
use crate::organizations::creations::Creations;
use crate::reconcile::ReconcileContext;
use crate::reconcile::catalog::Guarded;
use crate::reconcile::trigger::{Trigger, WakeUp, WakeUps};

crate::kind_list! {
    Payer => payer [aws_cleanup: false, owned_status: crate::payer::owned_status, report: crate::payer::report, triggers: crate::payer::grant_watch::payer_triggers];
    ServiceControlPolicy => organizations::service_control_policy;
    OrganizationalUnit => organizations::organizational_unit [file_order: parents_first];
    LinkedAccount => organizations::linked_account [triggers: linked_account_triggers];
    PricingPlan => billing::pricing_plan;
    BillingGroup => billing::billing_group [triggers: billing_group_triggers];
    CustomLineItem => billing::custom_line_item [file_order: applied_to_first];
    CurPipeline => costs::cur_pipeline;
}

// What the lines above name. These belong next to their kinds in the domain folders; they
// live here until those files move over to the kind list.

/// OrganizationalUnits parents first (then by namespace and name).
fn parents_first(ous: &mut [OrganizationalUnit]) {
    let depth_of = |ou: &OrganizationalUnit| {
        let mut depth = 0;
        let mut current = ou.spec.parent_ref.clone();
        let ns = ou.namespace().unwrap_or_default();
        while let Some(r) = current {
            depth += 1;
            if depth > 10 {
                break;
            }
            current = ous
                .iter()
                .find(|o| o.namespace().unwrap_or_default() == ns && o.name_any() == r.name)
                .and_then(|o| o.spec.parent_ref.clone());
        }
        depth
    };
    let depths: Vec<usize> = ous.iter().map(depth_of).collect();
    let mut keyed: Vec<(usize, OrganizationalUnit)> =
        depths.into_iter().zip(ous.iter().cloned()).collect();
    keyed.sort_by_key(|(d, o)| (*d, o.namespace().unwrap_or_default(), o.name_any()));
    for (slot, (_, ou)) in ous.iter_mut().zip(keyed) {
        *slot = ou;
    }
}

/// CustomLineItems that others apply to first (then by namespace and name).
fn applied_to_first(items: &mut [CustomLineItem]) {
    items.sort_by_key(|i| {
        (
            i.spec
                .percentage
                .as_ref()
                .is_some_and(|p| !p.applies_to.is_empty()),
            i.namespace().unwrap_or_default(),
            i.name_any(),
        )
    });
}

/// LinkedAccounts take their cost from the payer's Cost Explorer read as soon as it lands,
/// and an account whose creation ended (and the next ones in the creation queue) is
/// reconciled as soon as the payer's creation watcher sees it end.
fn linked_account_triggers() -> Vec<Trigger<LinkedAccount>> {
    vec![
        Trigger::on::<Payer>(payer_costs_fingerprint, |payer, account| {
            account
                .0
                .as_ref()
                .is_ok_and(|a| a.spec.payer_ref.name == payer.name_any())
        }),
        Trigger::wake_ups(account_wake_ups),
    ]
}

/// Billing groups follow LinkedAccount label and account-id changes at once (selectors).
fn billing_group_triggers() -> Vec<Trigger<BillingGroup>> {
    vec![Trigger::on::<LinkedAccount>(
        linked_account_fingerprint,
        |_, _| true,
    )]
}

/// What of a Payer its LinkedAccounts follow: when its costs were read.
fn payer_costs_fingerprint(p: &Guarded<Payer>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.0.as_ref()
        .ok()
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.costs.as_ref())
        .map(|c| c.refreshed_at.clone())
        .hash(&mut h);
    Some(h.finish())
}

/// What of a LinkedAccount BillingGroups follow: its labels (selectors) and its account id.
fn linked_account_fingerprint(a: &Guarded<LinkedAccount>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    a.meta().labels.hash(&mut h);
    a.0.as_ref()
        .ok()
        .and_then(|a| a.status.as_ref())
        .and_then(|s| s.account_id.clone())
        .hash(&mut h);
    a.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// The LinkedAccounts the creation watchers wake.
fn account_wake_ups(ctx: &ReconcileContext) -> WakeUps {
    creation_wake_ups(&ctx.shared::<Creations>())
}

/// The wake-ups of the creation watchers; missed ones (the channel overflowed) are reported
/// as such.
fn creation_wake_ups(creations: &Creations) -> WakeUps {
    futures::stream::unfold(creations.subscribe(), |mut rx| async move {
        match rx.recv().await {
            Ok(w) => Some((
                WakeUp::Object {
                    namespace: w.namespace,
                    name: w.name,
                },
                rx,
            )),
            Err(RecvError::Lagged(_)) => Some((WakeUp::Missed, rx)),
            Err(RecvError::Closed) => None,
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::kind::{Kind, KindVisitor};
    use crate::reconcile::trigger::in_scope;
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
