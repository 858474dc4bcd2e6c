//! The controller's watches: one shared watch per kind per namespace. Each feeds the kind's
//! watch cache (the reconcilers' catalog), the kind's controller, and the controllers of the
//! kinds that follow it (cross-kind triggers, declared in the kind list). The first full
//! sync is tracked over the same caches.

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
            let watch = watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
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

/// Ready once every object the first lists returned was reconciled.
async fn first_sync(ctx: Arc<Context>) {
    let mut initial = InitialObjects {
        catalog: &ctx.reconcile.catalog,
        lists: Vec::new(),
    };
    crate::kinds::visit(&mut initial);
    let mut keys = Vec::new();
    for list in initial.lists {
        match list.await {
            Some(k) => keys.extend(k),
            None => return,
        }
    }
    ctx.sync.expect(keys);
    while !ctx.sync.is_ready() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ctx.metrics.ready.set(1);
    info!("first full sync complete");
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
                store.wait_until_ready().await.ok()?;
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
