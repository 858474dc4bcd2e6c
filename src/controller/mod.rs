//! The controller front door: watch Payers, reconcile them with the shared reconcilers,
//! patch status when it changed, record Events, back off per object.

pub mod health;
pub mod kinds;
pub mod leader;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::api::{FINALIZER, Payer};
use crate::backoff::{BackoffPolicy, Backoffs};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::payer;
use crate::reconcile::run::Run;
use crate::reconcile::{EventNote, ReconcileContext, object_key};

/// The field manager for every write the operator makes.
pub const FIELD_MANAGER: &str = "partner-billing-operator";

/// Settings of the controller.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Re-check every object this often when nothing happens.
    pub resync: Duration,
    /// Re-check an object stuck on a terminal error this often (a spec change triggers at once).
    pub terminal_recheck: Duration,
    /// At most this many reconciles at once (AWS rate limits).
    pub concurrency: u16,
    pub backoff: BackoffPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(300),
            terminal_recheck: Duration::from_secs(900),
            concurrency: 4,
            backoff: BackoffPolicy::default(),
        }
    }
}

/// Tracks the first full sync: ready once every object present at startup was reconciled.
#[derive(Debug, Default)]
pub struct SyncTracker {
    ready: AtomicBool,
    state: Mutex<SyncState>,
}

#[derive(Debug, Default)]
struct SyncState {
    expected: Option<HashSet<String>>,
    seen: HashSet<String>,
}

impl SyncTracker {
    /// The objects the initial list returned (call once the watch stores are ready).
    pub fn expect(&self, keys: impl IntoIterator<Item = String>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.expected.get_or_insert_with(HashSet::new).extend(keys);
        self.update(&s);
    }

    /// An object finished a reconcile (successfully or not: it has a status either way).
    pub fn reconciled(&self, key: &str) {
        if self.is_ready() {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.seen.insert(key.to_string());
        self.update(&s);
    }

    fn update(&self, s: &SyncState) {
        if let Some(expected) = &s.expected
            && expected.iter().all(|k| s.seen.contains(k))
        {
            self.ready.store(true, Ordering::SeqCst);
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// Shared state of the controller.
pub struct Context {
    pub client: Client,
    pub reconcile: ReconcileContext,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub backoffs: Backoffs,
    pub settings: Settings,
    pub sync: Arc<SyncTracker>,
}

impl Context {
    pub fn new(
        client: Client,
        reconcile: ReconcileContext,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        // The metrics endpoint shows what the reconcilers learn about costs.
        let reconcile = reconcile.with_insights(metrics.insights.clone());
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            reconcile,
            metrics,
            backoffs: Backoffs::new(settings.backoff),
            settings,
            sync: Arc::new(SyncTracker::default()),
        }
    }
}

/// Key of an object for readiness and backoff: `Kind/namespace/name`.
pub fn sync_key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{}", object_key(namespace, name))
}

/// Reconcile one Payer: finalizer handling around apply/cleanup.
pub async fn reconcile_payer(obj: Arc<Payer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconcile_started("Payer");
    let namespace = obj.namespace().unwrap_or_default();
    let key = sync_key("Payer", &namespace, &obj.name_any());
    let api: Api<Payer> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(p) => apply_payer(p, ctx.clone()).await,
            FinalizerEvent::Cleanup(p) => cleanup_payer(p, ctx.clone()).await,
        }
    })
    .await
    .map_err(Error::from);
    ctx.metrics.reconcile_finished("Payer", started.elapsed());
    ctx.sync.reconciled(&key);
    if result.is_ok() {
        ctx.backoffs.reset(&key);
    }
    result
}

async fn apply_payer(p: Arc<Payer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = crate::time::now_rfc3339();
    let outcome = payer::reconcile(
        &p,
        &ctx.reconcile,
        Run::at(crate::reconcile::Mode::Apply, &now),
    )
    .await;
    if outcome.status_changed {
        let api: Api<Payer> =
            Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
        // The closure log belongs to the LinkedAccount reconciler (its own field manager).
        let mut status = outcome.status.clone();
        status.closures.clear();
        let patch = json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": "Payer",
            "status": status,
        });
        crate::before_status!("Payer");
        api.patch_status(
            &p.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    if let Some(note) = &outcome.event {
        publish(&ctx, p.as_ref(), note).await;
    }
    match outcome.plan {
        Ok(_) => Ok(Action::requeue(ctx.settings.resync)),
        Err(err) if err.is_terminal() => {
            // Written to status; wait for a change instead of retrying hot.
            ctx.metrics
                .reconcile_failed("Payer", err.metric_label(), err.reason());
            warn!(payer = %p.name_any(), namespace = ?p.namespace(), reason = err.reason(), error = %err, "payer needs attention");
            Ok(Action::requeue(ctx.settings.terminal_recheck))
        }
        Err(err) => Err(err),
    }
}

async fn cleanup_payer(p: Arc<Payer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(&p.namespace().unwrap_or_default(), &p.name_any());
    ctx.reconcile.connections.forget(&key);
    info!(payer = %p.name_any(), namespace = ?p.namespace(), "payer released; nothing in AWS is changed");
    publish(
        &ctx,
        p.as_ref(),
        &EventNote {
            warning: false,
            reason: "Released".into(),
            note: "Payer deleted: the operator stopped managing this account; nothing in AWS was changed".into(),
        },
    )
    .await;
    Ok(Action::await_change())
}

async fn publish(ctx: &Context, obj: &Payer, note: &EventNote) {
    publish_for(ctx, obj, note).await
}

/// Record `note` as a Kubernetes Event about `obj`.
pub async fn publish_for<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, note: &EventNote) {
    let event = Event {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason.clone(),
        note: Some(note.note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, "could not record event");
    }
}

/// Failures: waits come back when they said, terminal errors at the slow re-check,
/// retryable ones with per-object exponential backoff and jitter.
pub fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    err: &Error,
    ctx: Arc<Context>,
) -> Action {
    let delay = retry_delay(obj.as_ref(), err, &ctx);
    if !matches!(err, Error::Waiting { .. }) {
        warn!(kind = %K::kind(&()), name = %obj.name_any(), namespace = ?obj.namespace(), reason = err.reason(), error = %err, retry_in_secs = delay.as_secs_f64(), "reconcile failed");
    }
    Action::requeue(delay)
}

/// How long `obj` waits after `err`: what a wait asked for, the slow re-check for terminal
/// errors, otherwise the object's next exponential backoff step. Counts real failures.
pub fn retry_delay<K: Resource<DynamicType = ()>>(obj: &K, err: &Error, ctx: &Context) -> Duration {
    let kind = K::kind(&());
    let key = sync_key(&kind, &obj.namespace().unwrap_or_default(), &obj.name_any());
    if let Error::Waiting { retry_after, .. } = err {
        return *retry_after;
    }
    ctx.metrics
        .reconcile_failed(&kind, err.metric_label(), err.reason());
    if err.is_terminal() {
        ctx.settings.terminal_recheck
    } else {
        ctx.backoffs.next_delay(&key)
    }
}

/// Which changes of an object trigger a reconcile: spec (generation), annotations,
/// finalizers and deletion; not our own status writes.
fn trigger_fingerprint<K: Resource>(p: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.meta().generation.hash(&mut h);
    p.meta().annotations.hash(&mut h);
    p.meta().finalizers.hash(&mut h);
    p.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Watch caches of every kind, per namespace (or one for all namespaces).
/// Objects are watched through [`Guarded`]: one that cannot be deserialized (a wrong type in
/// a field) is reported on its own and never stops the watch of the others.
type Guarded<K> = kube::core::DeserializeGuard<K>;

struct Watches<K: Resource<DynamicType = ()> + Clone + 'static> {
    apis: Vec<Api<Guarded<K>>>,
    readers: Vec<reflector::Store<Guarded<K>>>,
    writers: Vec<reflector::store::Writer<Guarded<K>>>,
}

impl<K> Watches<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    fn new(client: &Client, namespaces: &[String]) -> Self {
        let apis: Vec<Api<Guarded<K>>> = namespaced_apis(client, namespaces);
        let (readers, writers) = apis.iter().map(|_| reflector::store()).unzip();
        Self {
            apis,
            readers,
            writers,
        }
    }

    /// One controller per namespace, reconciling with `reconcile`.
    fn run<F, Fut>(
        self,
        ctx: Arc<Context>,
        reconcile: F,
    ) -> Vec<futures::future::BoxFuture<'static, ()>>
    where
        F: FnMut(Arc<K>, Arc<Context>) -> Fut + Send + Clone + 'static,
        Fut: std::future::Future<Output = Result<Action, Error>> + Send + 'static,
    {
        self.run_with(ctx, reconcile, |c, _| c)
    }

    /// As [`Self::run`], letting `extend` add triggers to each namespace's controller (it
    /// gets the controller and the namespace's watch cache).
    fn run_with<F, Fut, E>(
        self,
        ctx: Arc<Context>,
        reconcile: F,
        extend: E,
    ) -> Vec<futures::future::BoxFuture<'static, ()>>
    where
        F: FnMut(Arc<K>, Arc<Context>) -> Fut + Send + Clone + 'static,
        Fut: std::future::Future<Output = Result<Action, Error>> + Send + 'static,
        E: Fn(Controller<Guarded<K>>, reflector::Store<Guarded<K>>) -> Controller<Guarded<K>>,
    {
        // Valid objects go to `reconcile`; an invalid one gets a Warning event naming the
        // field at fault and waits for a change.
        let guarded = move |obj: Arc<Guarded<K>>, ctx: Arc<Context>| {
            let mut reconcile = reconcile.clone();
            async move {
                match &obj.0 {
                    Ok(valid) => reconcile(Arc::new(valid.clone()), ctx).await,
                    Err(invalid) => {
                        let kind = K::kind(&());
                        let ns = obj.namespace().unwrap_or_default();
                        warn!(kind = %kind, name = %obj.name_any(), namespace = %ns, error = %invalid.error, "object cannot be read; fix it");
                        publish_for(
                            &ctx,
                            obj.as_ref(),
                            &EventNote {
                                warning: true,
                                reason: "InvalidObject".into(),
                                note: format!(
                                    "the operator cannot read this {kind}: {}",
                                    invalid.error
                                ),
                            },
                        )
                        .await;
                        ctx.sync.reconciled(&sync_key(&kind, &ns, &obj.name_any()));
                        Ok(Action::await_change())
                    }
                }
            }
        };
        let mut runs = Vec::new();
        for ((api, reader), writer) in self.apis.into_iter().zip(self.readers).zip(self.writers) {
            let triggers = watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
                .reflect(writer)
                .applied_objects()
                .predicate_filter(trigger_fingerprint, Default::default());
            let controller = Controller::for_stream(triggers, reader.clone())
                .with_config(ControllerConfig::default().concurrency(ctx.settings.concurrency));
            let controller = extend(controller, reader).shutdown_on_signal();
            let ctx = ctx.clone();
            let reconcile = guarded.clone();
            runs.push(Box::pin(async move {
                controller
                    .run(reconcile, error_policy, ctx)
                    .for_each(|res| async move {
                        match res {
                            Ok((obj, _)) => tracing::debug!(object = %obj.name, "reconciled"),
                            Err(e) => tracing::debug!(error = %e, "reconcile loop error"),
                        }
                    })
                    .await;
            }) as futures::future::BoxFuture<'static, ()>);
        }
        runs
    }
}

/// What of a LinkedAccount BillingGroups follow: its labels (selectors) and its account id.
fn linked_account_fingerprint(a: &Guarded<crate::api::LinkedAccount>) -> Option<u64> {
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

/// The LinkedAccounts (of namespace `scope`, or all) the creation watchers wake, as a trigger
/// stream for the LinkedAccount controller. Missed wake-ups (the channel overflowed) are
/// covered by the accounts' own polls.
fn woken_accounts(
    creations: &crate::organizations::creations::Creations,
    scope: Option<String>,
) -> impl futures::Stream<Item = reflector::ObjectRef<Guarded<crate::api::LinkedAccount>>> + Send + 'static
{
    use tokio::sync::broadcast::error::RecvError;
    futures::stream::unfold(creations.subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(w) => return Some((w, rx)),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .filter(move |w| futures::future::ready(scope.as_ref().is_none_or(|ns| *ns == w.namespace)))
    .map(|w| reflector::ObjectRef::new(&w.name).within(&w.namespace))
}

/// One Api per watched namespace (all namespaces when the list is empty).
fn namespaced_apis<K>(client: &kube::Client, namespaces: &[String]) -> Vec<Api<K>>
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

/// Run the controllers of every kind over `namespaces` (empty: all) until a shutdown signal.
/// The watch caches become the reconcilers' catalog and the Payers' status the closure log.
pub async fn run(mut ctx: Context, namespaces: Vec<String>) {
    let payers = Watches::<Payer>::new(&ctx.client, &namespaces);
    let scps = Watches::<crate::api::ServiceControlPolicy>::new(&ctx.client, &namespaces);
    let ous = Watches::<crate::api::OrganizationalUnit>::new(&ctx.client, &namespaces);
    let accounts = Watches::<crate::api::LinkedAccount>::new(&ctx.client, &namespaces);
    let plans = Watches::<crate::api::PricingPlan>::new(&ctx.client, &namespaces);
    let groups = Watches::<crate::api::BillingGroup>::new(&ctx.client, &namespaces);
    let items = Watches::<crate::api::CustomLineItem>::new(&ctx.client, &namespaces);
    let pipelines = Watches::<crate::api::CurPipeline>::new(&ctx.client, &namespaces);
    let pipeline_stores = pipelines.readers.clone();
    let catalog = kinds::KubeCatalog {
        payers: payers.readers.clone(),
        scps: scps.readers.clone(),
        ous: ous.readers.clone(),
        accounts: accounts.readers.clone(),
        plans: plans.readers.clone(),
        groups: groups.readers.clone(),
        items: items.readers.clone(),
    };
    // Tenancy (issue 17): PayerGrants and Namespaces watched; Payers checked again on change.
    let tenancy = crate::payer::grant_watch::Tenancy::new(&ctx.client, ctx.metrics.clone());
    ctx.reconcile = ctx
        .reconcile
        .clone()
        .with_catalog(Arc::new(catalog.clone()))
        .with_ledger(Arc::new(kinds::KubeLedger {
            client: ctx.client.clone(),
        }))
        .with_grants(tenancy.source());
    let ctx = Arc::new(ctx);

    let mut runs = payers.run_with(ctx.clone(), reconcile_payer, tenancy.payer_triggers());
    let _tenancy_watches = tenancy.spawn();
    runs.extend(scps.run(ctx.clone(), kinds::reconcile_kind));
    runs.extend(ous.run(ctx.clone(), kinds::reconcile_kind));
    // LinkedAccounts take their cost from the payer's Cost Explorer read as soon as it lands.
    let payer_apis = std::sync::Mutex::new(
        namespaced_apis::<Guarded<Payer>>(&ctx.client, &namespaces).into_iter(),
    );
    // A LinkedAccount whose creation ended, and the next ones in the creation queue, are
    // reconciled as soon as the payer's creation watcher sees it end.
    let wake_scopes = std::sync::Mutex::new(
        if namespaces.is_empty() {
            vec![None]
        } else {
            namespaces.iter().cloned().map(Some).collect()
        }
        .into_iter(),
    );
    let creations = ctx.reconcile.creations.clone();
    runs.extend(accounts.run_with(
        ctx.clone(),
        kinds::reconcile_kind,
        move |controller, accounts_store| {
            let controller = match wake_scopes.lock().unwrap_or_else(|e| e.into_inner()).next() {
                Some(scope) => controller.reconcile_on(woken_accounts(&creations, scope)),
                None => controller,
            };
            let Some(api) = payer_apis.lock().unwrap_or_else(|e| e.into_inner()).next() else {
                return controller;
            };
            let changes = watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
                .applied_objects()
                .predicate_filter(payer_costs_fingerprint, Default::default());
            controller.watches_stream(changes, move |payer: Guarded<Payer>| {
                let ns = payer.namespace().unwrap_or_default();
                let name = payer.name_any();
                accounts_store
                    .state()
                    .into_iter()
                    .filter(|a| a.namespace().as_deref() == Some(ns.as_str()))
                    .filter(|a| a.0.as_ref().is_ok_and(|a| a.spec.payer_ref.name == name))
                    .map(|a| reflector::ObjectRef::from(a.as_ref()))
                    .collect::<Vec<_>>()
            })
        },
    ));
    runs.extend(plans.run(ctx.clone(), kinds::reconcile_kind));
    // Billing groups follow LinkedAccount label and account-id changes at once (selectors).
    let account_apis = std::sync::Mutex::new(
        namespaced_apis::<Guarded<crate::api::LinkedAccount>>(&ctx.client, &namespaces).into_iter(),
    );
    runs.extend(groups.run_with(
        ctx.clone(),
        kinds::reconcile_kind,
        move |controller, groups_store| {
            let Some(api) = account_apis
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .next()
            else {
                return controller;
            };
            let changes = watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
                .applied_objects()
                .predicate_filter(linked_account_fingerprint, Default::default());
            controller.watches_stream(
                changes,
                move |account: Guarded<crate::api::LinkedAccount>| {
                    let ns = account.namespace().unwrap_or_default();
                    groups_store
                        .state()
                        .into_iter()
                        .filter(|g| g.namespace().as_deref() == Some(ns.as_str()))
                        .map(|g| reflector::ObjectRef::from(g.as_ref()))
                        .collect::<Vec<_>>()
                },
            )
        },
    ));
    runs.extend(items.run(ctx.clone(), kinds::reconcile_kind));
    runs.extend(pipelines.run(ctx.clone(), kinds::reconcile_kind));

    let sync = ctx.sync.clone();
    let metrics = ctx.metrics.clone();
    tokio::spawn(async move {
        let mut keys = Vec::new();
        macro_rules! initial {
            ($stores:expr, $kind:expr) => {
                for store in &$stores {
                    if store.wait_until_ready().await.is_err() {
                        return;
                    }
                    keys.extend(store.state().into_iter().map(|o| {
                        sync_key($kind, &o.namespace().unwrap_or_default(), &o.name_any())
                    }));
                }
            };
        }
        initial!(catalog.payers, "Payer");
        initial!(catalog.scps, "ServiceControlPolicy");
        initial!(catalog.ous, "OrganizationalUnit");
        initial!(catalog.accounts, "LinkedAccount");
        initial!(catalog.plans, "PricingPlan");
        initial!(catalog.groups, "BillingGroup");
        initial!(catalog.items, "CustomLineItem");
        initial!(pipeline_stores, "CurPipeline");
        sync.expect(keys);
        while !sync.is_ready() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        metrics.ready.set(1);
        info!("first full sync complete");
    });
    futures::future::join_all(runs).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_tracker_waits_for_every_initial_object() {
        let t = SyncTracker::default();
        t.reconciled("ns/a");
        assert!(!t.is_ready(), "not ready before the initial list is known");
        t.expect(["ns/a".to_string(), "ns/b".to_string()]);
        assert!(!t.is_ready());
        t.reconciled("ns/b");
        assert!(t.is_ready());
        let empty = SyncTracker::default();
        empty.expect(Vec::<String>::new());
        assert!(empty.is_ready(), "nothing to sync means ready");
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

    #[test]
    fn status_only_changes_do_not_trigger() {
        let mut p = Payer::new(
            "p",
            crate::api::PayerSpec {
                account_id: "111111111111".into(),
                credentials: None,
                region: None,
                max_closures_per30_days: None,
                notifications: None,
                insights: None,
            },
        );
        p.metadata.generation = Some(1);
        let before = trigger_fingerprint(&p);
        p.status = Some(Default::default());
        p.metadata.resource_version = Some("42".into());
        assert_eq!(before, trigger_fingerprint(&p));
        p.metadata.generation = Some(2);
        assert_ne!(before, trigger_fingerprint(&p));
    }
}

#[cfg(test)]
mod mock_api_tests;
