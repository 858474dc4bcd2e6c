//! The Organizations kinds in the controller: one generic reconcile (finalizer, status
//! server-side apply when changed, events, requeue by outcome), the watch caches as the
//! reconcilers' catalog, and the Payer status as the closure ledger.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::warn;

use super::{Context, FIELD_MANAGER, publish_for, sync_key};
use crate::api::payer::ClosureRecord;
use crate::api::{
    FINALIZER, LinkedAccount, LinkedAccountStatus, OrganizationalUnit, OrganizationalUnitStatus,
    Payer, ServiceControlPolicy, ServiceControlPolicyStatus,
};
use crate::billing::billing_group;
use crate::billing::custom_line_item;
use crate::billing::pricing_plan;
use crate::costs::cur_pipeline;
use crate::error::Error;
use crate::organizations::linked_account;
use crate::organizations::organizational_unit;
use crate::organizations::service_control_policy;
use crate::reconcile::run::Run;
use crate::reconcile::{Catalog, ClosureLedger, KindOutcome, Mode, ReconcileContext};

/// Field manager of the Payer's closure log (written by LinkedAccount deletions).
pub const CLOSURES_FIELD_MANAGER: &str = "partner-billing-operator-closures";

/// A kind reconciled by the generic controller.
#[async_trait]
pub trait ManagedKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    type Status: Serialize + PartialEq + Clone + Send + Sync;
    const KIND: &'static str;
    fn current_status(&self) -> Option<&Self::Status>;
    async fn apply(&self, ctx: &ReconcileContext, now: &str) -> KindOutcome<Self::Status>;
    async fn cleanup(&self, ctx: &ReconcileContext, now: &str) -> KindOutcome<Self::Status>;
}

#[async_trait]
impl ManagedKind for ServiceControlPolicy {
    type Status = ServiceControlPolicyStatus;
    const KIND: &'static str = "ServiceControlPolicy";
    fn current_status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    async fn apply(&self, ctx: &ReconcileContext, now: &str) -> KindOutcome<Self::Status> {
        service_control_policy::reconcile(self, ctx, Run::at(Mode::Apply, now)).await
    }
    async fn cleanup(&self, ctx: &ReconcileContext, now: &str) -> KindOutcome<Self::Status> {
        service_control_policy::cleanup(self, ctx, Run::at(Mode::Apply, now)).await
    }
}

#[async_trait]
impl ManagedKind for OrganizationalUnit {
    type Status = OrganizationalUnitStatus;
    const KIND: &'static str = "OrganizationalUnit";
    fn current_status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    async fn apply(&self, ctx: &ReconcileContext, now: &str) -> KindOutcome<Self::Status> {
        organizational_unit::reconcile(self, ctx, Run::at(Mode::Apply, now)).await
    }
    async fn cleanup(&self, ctx: &ReconcileContext, now: &str) -> KindOutcome<Self::Status> {
        organizational_unit::cleanup(self, ctx, Run::at(Mode::Apply, now)).await
    }
}

#[async_trait]
impl ManagedKind for LinkedAccount {
    type Status = LinkedAccountStatus;
    const KIND: &'static str = "LinkedAccount";
    fn current_status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    async fn apply(&self, ctx: &ReconcileContext, now: &str) -> KindOutcome<Self::Status> {
        linked_account::reconcile(self, ctx, Run::at(Mode::Apply, now)).await
    }
    async fn cleanup(&self, ctx: &ReconcileContext, now: &str) -> KindOutcome<Self::Status> {
        linked_account::cleanup(self, ctx, Run::at(Mode::Apply, now)).await
    }
}

macro_rules! managed_kind {
    ($kind:ty, $status:ty, $name:literal, $module:ident) => {
        #[async_trait]
        impl ManagedKind for $kind {
            type Status = $status;
            const KIND: &'static str = $name;
            fn current_status(&self) -> Option<&Self::Status> {
                self.status.as_ref()
            }
            async fn apply(&self, ctx: &ReconcileContext, now: &str) -> KindOutcome<Self::Status> {
                $module::reconcile(self, ctx, Run::at(Mode::Apply, now)).await
            }
            async fn cleanup(
                &self,
                ctx: &ReconcileContext,
                now: &str,
            ) -> KindOutcome<Self::Status> {
                $module::cleanup(self, ctx, Run::at(Mode::Apply, now)).await
            }
        }
    };
}

managed_kind!(
    crate::api::PricingPlan,
    crate::api::PricingPlanStatus,
    "PricingPlan",
    pricing_plan
);
managed_kind!(
    crate::api::BillingGroup,
    crate::api::BillingGroupStatus,
    "BillingGroup",
    billing_group
);
managed_kind!(
    crate::api::CustomLineItem,
    crate::api::CustomLineItemStatus,
    "CustomLineItem",
    custom_line_item
);
managed_kind!(
    crate::api::CurPipeline,
    crate::api::CurPipelineStatus,
    "CurPipeline",
    cur_pipeline
);

/// Reconcile one object of kind `K`: finalizer first, then apply or cleanup.
pub async fn reconcile_kind<K: ManagedKind>(
    obj: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconcile_started(K::KIND);
    let namespace = obj.namespace().unwrap_or_default();
    let key = sync_key(K::KIND, &namespace, &obj.name_any());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply(o, ctx.clone()).await,
            FinalizerEvent::Cleanup(o) => cleanup(o, ctx.clone()).await,
        }
    })
    .await
    .map_err(Error::from);
    ctx.metrics.reconcile_finished(K::KIND, started.elapsed());
    ctx.sync.reconciled(&key);
    if result.is_ok() {
        ctx.backoffs.reset(&key);
    }
    result
}

async fn write_status<K: ManagedKind>(
    obj: &K,
    ctx: &Context,
    outcome: &KindOutcome<K::Status>,
) -> Result<(), Error> {
    if !outcome.status_changed(obj.current_status()) {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": K::KIND,
        "status": outcome.status,
    });
    crate::before_status!(K::KIND);
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

async fn apply<K: ManagedKind>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = crate::time::now_rfc3339();
    let outcome = obj.apply(&ctx.reconcile, &now).await;
    write_status(obj.as_ref(), &ctx, &outcome).await?;
    for note in &outcome.events {
        publish_for(&ctx, obj.as_ref(), note).await;
    }
    match outcome.result {
        Ok(v) => Ok(Action::requeue(v.requeue.unwrap_or(ctx.settings.resync))),
        Err(Error::Waiting { retry_after, .. }) => Ok(Action::requeue(retry_after)),
        Err(err) if err.is_terminal() => {
            ctx.metrics
                .reconcile_failed(K::KIND, err.metric_label(), err.reason());
            warn!(kind = K::KIND, name = %obj.name_any(), namespace = ?obj.namespace(), reason = err.reason(), error = %err, "object needs attention");
            Ok(Action::requeue(ctx.settings.terminal_recheck))
        }
        Err(err) => Err(err),
    }
}

async fn cleanup<K: ManagedKind>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = crate::time::now_rfc3339();
    let outcome = obj.cleanup(&ctx.reconcile, &now).await;
    // The object may be going away; a failed status write must not block the cleanup.
    if let Err(e) = write_status(obj.as_ref(), &ctx, &outcome).await {
        warn!(kind = K::KIND, name = %obj.name_any(), error = %e, "could not write status during deletion");
    }
    for note in &outcome.events {
        publish_for(&ctx, obj.as_ref(), note).await;
    }
    // Ok lets kube remove the finalizer; an error keeps it (and goes to the error policy).
    outcome.result.map(|_| Action::await_change())
}

/// The watch caches, as the reconcilers' catalog; objects that could not be read are left
/// out of every lookup.
#[derive(Clone, Default)]
pub struct KubeCatalog {
    pub payers: Vec<Store<Guarded<Payer>>>,
    pub scps: Vec<Store<Guarded<ServiceControlPolicy>>>,
    pub ous: Vec<Store<Guarded<OrganizationalUnit>>>,
    pub accounts: Vec<Store<Guarded<LinkedAccount>>>,
    pub plans: Vec<Store<Guarded<crate::api::PricingPlan>>>,
    pub groups: Vec<Store<Guarded<crate::api::BillingGroup>>>,
    pub items: Vec<Store<Guarded<crate::api::CustomLineItem>>>,
}

type Guarded<K> = kube::core::DeserializeGuard<K>;

fn find<K>(stores: &[Store<Guarded<K>>], ns: &str, name: &str) -> Option<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let key = ObjectRef::new(name).within(ns);
    stores
        .iter()
        .find_map(|s| s.get(&key))
        .and_then(|o| o.0.as_ref().ok().cloned())
}

fn in_namespace<K>(stores: &[Store<Guarded<K>>], ns: &str) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    in_namespace_where(stores, ns, &|_| true)
}

/// The valid objects of `ns` that `keep` accepts, copied out of the watch caches (the others
/// are not copied).
fn in_namespace_where<K>(
    stores: &[Store<Guarded<K>>],
    ns: &str,
    keep: &dyn Fn(&K) -> bool,
) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    stores
        .iter()
        .flat_map(|s| s.state())
        .filter(|o| o.meta().namespace.as_deref() == Some(ns))
        .filter_map(|o| o.0.as_ref().ok().filter(|k| keep(k)).cloned())
        .collect()
}

impl Catalog for KubeCatalog {
    fn payer(&self, ns: &str, name: &str) -> Option<Payer> {
        find(&self.payers, ns, name)
    }
    fn all_payers(&self) -> Vec<Payer> {
        self.payers
            .iter()
            .flat_map(|s| s.state())
            .filter_map(|p| p.0.as_ref().ok().cloned())
            .collect()
    }
    fn service_control_policy(&self, ns: &str, name: &str) -> Option<ServiceControlPolicy> {
        find(&self.scps, ns, name)
    }
    fn service_control_policies(&self, ns: &str) -> Vec<ServiceControlPolicy> {
        in_namespace(&self.scps, ns)
    }
    fn organizational_unit(&self, ns: &str, name: &str) -> Option<OrganizationalUnit> {
        find(&self.ous, ns, name)
    }
    fn linked_accounts(&self, ns: &str) -> Vec<LinkedAccount> {
        in_namespace(&self.accounts, ns)
    }
    fn pricing_plan(&self, ns: &str, name: &str) -> Option<crate::api::PricingPlan> {
        find(&self.plans, ns, name)
    }
    fn billing_groups(&self, ns: &str) -> Vec<crate::api::BillingGroup> {
        in_namespace(&self.groups, ns)
    }
    fn linked_accounts_where(
        &self,
        ns: &str,
        keep: &dyn Fn(&LinkedAccount) -> bool,
    ) -> Vec<LinkedAccount> {
        in_namespace_where(&self.accounts, ns, keep)
    }
    fn billing_groups_where(
        &self,
        ns: &str,
        keep: &dyn Fn(&crate::api::BillingGroup) -> bool,
    ) -> Vec<crate::api::BillingGroup> {
        in_namespace_where(&self.groups, ns, keep)
    }
    fn billing_group(&self, ns: &str, name: &str) -> Option<crate::api::BillingGroup> {
        find(&self.groups, ns, name)
    }
    fn linked_account(&self, ns: &str, name: &str) -> Option<LinkedAccount> {
        find(&self.accounts, ns, name)
    }
    fn custom_line_items(&self, ns: &str) -> Vec<crate::api::CustomLineItem> {
        in_namespace(&self.items, ns)
    }
}

/// The closure log in the Payer's status, written with its own field manager.
pub struct KubeLedger {
    pub client: Client,
}

#[async_trait]
impl ClosureLedger for KubeLedger {
    async fn closures(&self, payer: &Payer) -> Result<Vec<ClosureRecord>, Error> {
        let api: Api<Payer> =
            Api::namespaced(self.client.clone(), &payer.namespace().unwrap_or_default());
        let fresh = api.get(&payer.name_any()).await?;
        Ok(fresh.status.map(|s| s.closures).unwrap_or_default())
    }

    async fn record(&self, payer: &Payer, record: ClosureRecord) -> Result<(), Error> {
        let now = record.requested_at.clone();
        let mut all = self.closures(payer).await?;
        all.retain(|r| !crate::time::older_than(&r.requested_at, &now, 30 * 24 * 3600));
        all.push(record);
        let api: Api<Payer> =
            Api::namespaced(self.client.clone(), &payer.namespace().unwrap_or_default());
        let patch = json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": "Payer",
            "status": {"closures": all},
        });
        api.patch_status(
            &payer.name_any(),
            &PatchParams::apply(CLOSURES_FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;
    use kube::runtime::watcher;

    fn guarded(v: serde_json::Value) -> Guarded<LinkedAccount> {
        serde_json::from_value(v).expect("a guard always deserializes")
    }

    fn account(name: &str, tags: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
            "metadata": {"name": name, "namespace": "billing"},
            "spec": {"payerRef": {"name": "acme"}, "adopt": {"accountId": "111122223333"}, "tags": tags}
        })
    }

    #[test]
    fn an_unreadable_object_is_kept_apart_and_the_others_are_served() {
        let bad = guarded(account("broken", serde_json::json!("not-a-map")));
        let invalid = bad.0.as_ref().expect_err("a string where a map belongs");
        assert!(invalid.error.contains("map"), "{}", invalid.error);
        assert_eq!(invalid.metadata.name.as_deref(), Some("broken"));
        let good = guarded(account("fine", serde_json::json!({"team": "a"})));
        assert!(good.0.is_ok());

        let (reader, mut writer) = reflector::store::<Guarded<LinkedAccount>>();
        writer.apply_watcher_event(&watcher::Event::InitApply(bad));
        writer.apply_watcher_event(&watcher::Event::InitApply(good));
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let catalog = KubeCatalog {
            accounts: vec![reader],
            ..KubeCatalog::default()
        };
        let names: Vec<String> = catalog
            .linked_accounts("billing")
            .iter()
            .map(|a| a.name_any())
            .collect();
        assert_eq!(names, vec!["fine".to_string()]);
    }
}
