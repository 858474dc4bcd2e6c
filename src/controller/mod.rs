//! The controller front door: watch Payers, reconcile them with the shared reconcilers,
//! patch status when it changed, record Events, back off per object.

pub mod health;

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
use crate::reconcile::{EventNote, ReconcileContext, object_key, payer};

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

/// Reconcile one Payer: finalizer handling around apply/cleanup.
pub async fn reconcile_payer(obj: Arc<Payer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconcile_started("Payer");
    let namespace = obj.namespace().unwrap_or_default();
    let key = object_key(&namespace, &obj.name_any());
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
    let outcome = payer::reconcile(&p, &ctx.reconcile, &now).await;
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

/// Retryable failures: per-object exponential backoff with jitter.
pub fn error_policy(obj: Arc<Payer>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = retry_delay(&obj, err, &ctx);
    warn!(payer = %obj.name_any(), namespace = ?obj.namespace(), reason = err.reason(), error = %err, retry_in_secs = delay.as_secs_f64(), "reconcile failed");
    Action::requeue(delay)
}

/// How long `obj` waits after `err`: the slow re-check for terminal errors, otherwise the
/// object's next exponential backoff step. Counts the failure.
pub fn retry_delay(obj: &Payer, err: &Error, ctx: &Context) -> Duration {
    let key = object_key(&obj.namespace().unwrap_or_default(), &obj.name_any());
    ctx.metrics
        .reconcile_failed("Payer", err.metric_label(), err.reason());
    if err.is_terminal() {
        ctx.settings.terminal_recheck
    } else {
        ctx.backoffs.next_delay(&key)
    }
}

/// Which changes of a Payer trigger a reconcile: spec (generation), annotations, finalizers
/// and deletion; not our own status writes.
fn trigger_fingerprint(p: &Payer) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.meta().generation.hash(&mut h);
    p.meta().annotations.hash(&mut h);
    p.meta().finalizers.hash(&mut h);
    p.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Run the Payer controller over `namespaces` (empty: all) until a shutdown signal.
pub async fn run(ctx: Arc<Context>, namespaces: Vec<String>) {
    let apis: Vec<Api<Payer>> = if namespaces.is_empty() {
        vec![Api::all(ctx.client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(ctx.client.clone(), ns))
            .collect()
    };
    let mut runs = Vec::new();
    let mut stores = Vec::new();
    for api in apis {
        let (reader, writer) = reflector::store();
        let triggers = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .reflect(writer)
            .applied_objects()
            .predicate_filter(trigger_fingerprint, Default::default());
        stores.push(reader.clone());
        let controller = Controller::for_stream(triggers, reader)
            .with_config(ControllerConfig::default().concurrency(ctx.settings.concurrency))
            .shutdown_on_signal();
        let ctx = ctx.clone();
        runs.push(async move {
            controller
                .run(reconcile_payer, error_policy, ctx)
                .for_each(|res| async move {
                    match res {
                        Ok((obj, _)) => tracing::debug!(object = %obj.name, "reconciled"),
                        Err(e) => tracing::debug!(error = %e, "reconcile loop error"),
                    }
                })
                .await;
        });
    }
    let sync = ctx.sync.clone();
    let metrics = ctx.metrics.clone();
    tokio::spawn(async move {
        for store in &stores {
            if store.wait_until_ready().await.is_err() {
                return;
            }
        }
        let keys: Vec<String> = stores
            .iter()
            .flat_map(|s| {
                s.state()
                    .into_iter()
                    .map(|p| object_key(&p.namespace().unwrap_or_default(), &p.name_any()))
            })
            .collect();
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

    #[test]
    fn status_only_changes_do_not_trigger() {
        let mut p = Payer::new(
            "p",
            crate::api::PayerSpec {
                account_id: "111111111111".into(),
                credentials: None,
                region: None,
                max_closures_per30_days: None,
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
