//! The controller's watches: one shared watch per kind per namespace. Each feeds the kind's
//! watch cache (the reconcilers' catalog), the kind's controller, and the controllers of the
//! kinds that follow it (cross-kind triggers, declared in the kind list). The first full
//! sync is tracked over the same caches.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::info;

use crate::reconcile::catalog::{Catalog, Guarded};
use crate::reconcile::kind::{Kind, KindVisitor};
use crate::reconcile::trigger::{SharedStreams, Sources, changed_only};

use super::context::{Context, sync_key};
use super::kinds::{error_policy, reconcile_guarded, trigger_fingerprint};
use super::ledger::KubeLedger;

/// Objects a shared watch holds for its slowest follower before it waits for it.
const SHARED_BUFFER: usize = 1024;

/// Run the controllers of every kind over `namespaces` (empty: all) until a shutdown signal.
/// The watch caches become the reconcilers' catalog and the Payers' status the closure log.
pub async fn run(mut ctx: Context, namespaces: Vec<String>) {
    let catalog = Catalog::new();
    let mut streams = SharedStreams::default();
    crate::kinds::visit(&mut OpenWatches {
        count: namespaces.len().max(1),
        catalog: &catalog,
        streams: &mut streams,
    });
    // Tenancy (issue 17): PayerGrants and Namespaces watched; Payers checked again on change.
    let tenancy = crate::payer::grant_watch::Tenancy::new(&ctx.client, ctx.metrics.clone());
    ctx.reconcile = ctx
        .reconcile
        .clone()
        .with_shared(Arc::new(crate::payer::tenancy::Grants(tenancy.source())))
        .with_shared(Arc::new(tenancy.changes()))
        .with_catalog(Arc::new(catalog))
        .with_ledger(Arc::new(KubeLedger {
            client: ctx.client.clone(),
        }));
    let ctx = Arc::new(ctx);
    let mut controllers = StartControllers {
        ctx: &ctx,
        namespaces: &namespaces,
        streams: &streams,
        runs: Vec::new(),
    };
    crate::kinds::visit(&mut controllers);
    let controllers = controllers.runs;
    let mut watches = RunWatches {
        client: &ctx.client,
        namespaces: &namespaces,
        streams: &mut streams,
        runs: Vec::new(),
    };
    crate::kinds::visit(&mut watches);
    let watches = watches.runs;
    tokio::spawn(first_sync(ctx.clone()));
    let _tenancy_watches = tenancy.spawn(super::context::FIELD_MANAGER);
    // The watches run until every controller has stopped (a shutdown signal).
    tokio::select! {
        _ = futures::future::join_all(controllers) => {}
        _ = futures::future::join_all(watches) => {}
    }
}

/// Makes the shared stores of every kind: readers to the catalog, writers to `streams`.
struct OpenWatches<'a> {
    count: usize,
    catalog: &'a Catalog,
    streams: &'a mut SharedStreams,
}

impl KindVisitor for OpenWatches<'_> {
    fn visit<K: Kind>(&mut self) {
        let (readers, writers) = (0..self.count)
            .map(|_| reflector::store_shared::<Guarded<K>>(SHARED_BUFFER))
            .unzip();
        self.catalog.watch::<K>(readers);
        self.streams.insert::<K>(writers);
    }
}

/// One controller per kind per namespace, following its kind's shared stream and the
/// triggers the kind declares.
struct StartControllers<'a> {
    ctx: &'a Arc<Context>,
    namespaces: &'a [String],
    streams: &'a SharedStreams,
    runs: Vec<BoxFuture<'static, ()>>,
}

impl KindVisitor for StartControllers<'_> {
    fn visit<K: Kind>(&mut self) {
        let triggers = K::triggers();
        for (index, own) in self
            .ctx
            .reconcile
            .catalog
            .watched::<K>()
            .into_iter()
            .enumerate()
        {
            let Some(changes) = self.streams.subscribe::<K>(index) else {
                continue;
            };
            let controller = Controller::for_shared_stream(
                changed_only(changes, trigger_fingerprint::<Guarded<K>>),
                own.clone(),
            )
            .with_config(ControllerConfig::default().concurrency(self.ctx.settings.concurrency));
            let sources = Sources {
                ctx: &self.ctx.reconcile,
                namespace: self.namespaces.get(index).cloned(),
                index,
                own,
                streams: self.streams,
            };
            let controller = triggers
                .iter()
                .fold(controller, |c, t| t.attach(c, &sources))
                .shutdown_on_signal();
            let ctx = self.ctx.clone();
            self.runs.push(Box::pin(async move {
                controller
                    .run(reconcile_guarded::<K>, error_policy, ctx)
                    .for_each(|res| async move {
                        match res {
                            Ok((obj, _)) => tracing::debug!(object = %obj.name, "reconciled"),
                            Err(e) => tracing::debug!(error = %e, "reconcile loop error"),
                        }
                    })
                    .await;
            }));
        }
    }
}

/// The shared watches themselves, once every follower has subscribed.
struct RunWatches<'a> {
    client: &'a Client,
    namespaces: &'a [String],
    streams: &'a mut SharedStreams,
    runs: Vec<BoxFuture<'static, ()>>,
}

impl KindVisitor for RunWatches<'_> {
    fn visit<K: Kind>(&mut self) {
        let apis = namespaced_apis::<Guarded<K>>(self.client, self.namespaces);
        for (api, writer) in apis.into_iter().zip(self.streams.take::<K>()) {
            let watch = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
            let watch = for_cache(watch)
                .reflect_shared(writer)
                .for_each(|event| async move {
                    if let Err(e) = event {
                        tracing::debug!(error = %e, "watch error");
                    }
                });
            self.runs.push(Box::pin(watch));
        }
    }
}

/// The annotation `kubectl apply` (and Argo CD's client-side apply) writes: a full copy of the
/// object as last applied.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drop from a watched object what the operator never reads before it enters the watch cache:
/// `metadata.managedFields` (the API server's field ownership, often larger than the spec)
/// and the last-applied-configuration annotation. Both are the API server's and the client's
/// bookkeeping: the operator writes with server-side apply (status, closure log) and JSON
/// patches of the finalizers, which never send the cached object back, so they are unchanged.
/// Other annotations (pause, management mode) stay. For an object that could not be read
/// (`Err`), the same fields of the metadata kept for its Warning Event go.
pub fn strip_unread<K: kube::Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// A watch's events as they enter the watch cache: stripped of what the operator never reads.
pub fn for_cache<K: kube::Resource>(
    events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> {
    events.modify(strip_unread::<K>)
}

/// One Api per watched namespace (all namespaces when the list is empty).
fn namespaced_apis<K>(client: &Client, namespaces: &[String]) -> Vec<Api<K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    }
}

/// Ready once every object the first lists returned was reconciled (the pass that only adds
/// the finalizer does not count) or is gone.
async fn first_sync(ctx: Arc<Context>) {
    let Some(keys) = cached_keys(&ctx).await else {
        return;
    };
    ctx.sync.expect(keys);
    let mut checks = 0u32;
    while !ctx.sync.is_ready() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        checks += 1;
        // Every 10 s: objects deleted before their first reconcile are not waited for.
        if checks.is_multiple_of(50)
            && let Some(present) = cached_keys(&ctx).await
        {
            ctx.sync
                .forget_missing(&present.into_iter().collect::<HashSet<_>>());
        }
    }
    ctx.metrics.ready.set(1);
    info!("first full sync complete");
}

/// The keys of every object in the watch caches, once they are ready (`None`: a cache never
/// became ready).
async fn cached_keys(ctx: &Context) -> Option<Vec<String>> {
    let mut initial = InitialObjects {
        catalog: &ctx.reconcile.catalog,
        lists: Vec::new(),
    };
    crate::kinds::visit(&mut initial);
    let mut keys = Vec::new();
    for list in initial.lists {
        keys.extend(list.await?);
    }
    Some(keys)
}

/// Waits until `store` has its first list, as [`reflector::Store::wait_until_ready`] would, but
/// asks again every second. kube-runtime 5's `wait_until_ready` wakes only the last of several
/// tasks waiting on one store (it polls a `futures` oneshot receiver, which keeps one waker),
/// and the controllers wait on the same stores: first-sync readiness, waiting first, was never
/// woken and `partnerbilling_ready` stayed 0.
async fn until_ready<K>(store: &reflector::Store<K>) -> Result<(), reflector::store::WriterDropped>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        if let Ok(ready) =
            tokio::time::timeout(Duration::from_secs(1), store.wait_until_ready()).await
        {
            return ready;
        }
    }
}

/// The keys of every kind's objects once its watch caches are ready (`None`: a cache never
/// became ready).
struct InitialObjects<'a> {
    catalog: &'a Catalog,
    lists: Vec<BoxFuture<'static, Option<Vec<String>>>>,
}

impl KindVisitor for InitialObjects<'_> {
    fn visit<K: Kind>(&mut self) {
        let stores = self.catalog.watched::<K>();
        self.lists.push(Box::pin(async move {
            let kind = K::kind(&());
            let mut keys = Vec::new();
            for store in &stores {
                until_ready(store).await.ok()?;
                keys.extend(
                    store.state().into_iter().map(|o| {
                        sync_key(&kind, &o.namespace().unwrap_or_default(), &o.name_any())
                    }),
                );
            }
            Some(keys)
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LinkedAccount;
    use kube::Resource;
    use serde_json::json;

    /// Two tasks wait for one store's first list, ours first, then another (as the
    /// controller does): both see it. `wait_until_ready` alone would leave ours asleep.
    #[tokio::test]
    async fn first_sync_sees_a_ready_store_that_another_task_also_waits_for() {
        let (store, mut writer) = reflector::store::<LinkedAccount>();
        let ours = tokio::spawn({
            let store = store.clone();
            async move { until_ready(&store).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let other = tokio::spawn({
            let store = store.clone();
            async move { store.wait_until_ready().await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let both = tokio::time::timeout(Duration::from_secs(5), async {
            (ours.await.unwrap(), other.await.unwrap())
        })
        .await;
        assert_eq!(
            both.ok(),
            Some((true, true)),
            "both waiters see the first list"
        );
    }

    /// A LinkedAccount as a real API server serves it after `kubectl apply` and a status
    /// write: managedFields of two managers and the last-applied copy; `spec` a string when
    /// `invalid` (the object cannot be read).
    fn served(name: &str, invalid: bool) -> Guarded<LinkedAccount> {
        let spec = if invalid {
            json!("not an object")
        } else {
            json!({"payerRef": {"name": "acme"}, "adopt": {"accountId": "111122223333"}})
        };
        serde_json::from_value(json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
            "metadata": {
                "name": name, "namespace": "billing", "uid": format!("uid-{name}"),
                "resourceVersion": "7", "generation": 1,
                "annotations": {
                    LAST_APPLIED: "{\"apiVersion\":\"partnerbilling.io/v1alpha1\",\"kind\":\"LinkedAccount\"}",
                    "partnerbilling.io/paused": "true"
                },
                "managedFields": [
                    {"manager": "kubectl-client-side-apply", "operation": "Update",
                     "apiVersion": "partnerbilling.io/v1alpha1", "time": "2026-11-24T12:00:00Z",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:payerRef": {}}}},
                    {"manager": super::super::context::FIELD_MANAGER, "operation": "Apply",
                     "apiVersion": "partnerbilling.io/v1alpha1", "time": "2026-11-24T12:00:01Z",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}, "subresource": "status"}
                ]
            },
            "spec": spec
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn cached_objects_lose_managed_fields_and_the_last_applied_copy_only() {
        let valid = served("a", false);
        let invalid = served("b", true);
        assert!(valid.0.is_ok() && invalid.0.is_err());
        assert_eq!(valid.meta().managed_fields.as_ref().map(Vec::len), Some(2));
        assert!(invalid.meta().managed_fields.is_some());
        let events = futures::stream::iter(vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(valid.clone())),
            Ok(watcher::Event::InitApply(invalid)),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(served("c", false))),
        ]);
        let (store, writer) = reflector::store::<Guarded<LinkedAccount>>();
        let seen: Vec<_> = for_cache(events).reflect(writer).collect().await;
        assert_eq!(seen.len(), 5);
        let cached = store.state();
        assert_eq!(cached.len(), 3);
        for o in &cached {
            let meta = o.meta();
            assert_eq!(meta.managed_fields, None, "{:?}", meta.name);
            let annotations = meta.annotations.as_ref().expect("annotations kept");
            assert!(!annotations.contains_key(LAST_APPLIED), "{:?}", meta.name);
            assert_eq!(
                annotations
                    .get("partnerbilling.io/paused")
                    .map(String::as_str),
                Some("true"),
                "other annotations stay"
            );
            // Everything else is as served.
            assert_eq!(meta.generation, Some(1));
            assert_eq!(meta.resource_version.as_deref(), Some("7"));
        }
        let a = cached.iter().find(|o| o.name_any() == "a").unwrap();
        let (Ok(cached_a), Ok(served_a)) = (&a.0, &valid.0) else {
            panic!("a is valid")
        };
        assert_eq!(cached_a.spec, served_a.spec);
        let b = cached.iter().find(|o| o.name_any() == "b").unwrap();
        assert!(b.0.is_err(), "an unreadable object stays unreadable");
    }
}
