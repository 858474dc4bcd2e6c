//! What the controller's reconcilers share: the settings, the Kubernetes client and Event
//! recorder, the reconcile context, metrics, per-object backoff and the first-sync tracker.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::backoff::{BackoffPolicy, Backoffs};
use crate::metrics::Metrics;
use crate::reconcile::{ReconcileContext, object_key};

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

/// Tracks the first full sync: ready once every object present at startup was reconciled
/// (or is gone). The keys are dropped once ready.
#[derive(Debug, Default)]
pub struct SyncTracker {
    ready: AtomicBool,
    state: Mutex<SyncState>,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Objects of the initial list not reconciled yet; `None` before the list is known.
    pending: Option<HashSet<String>>,
    /// Objects reconciled before the initial list was known.
    early: HashSet<String>,
}

impl SyncTracker {
    /// The objects the initial list returned (call once the watch stores are ready).
    pub fn expect(&self, keys: impl IntoIterator<Item = String>) {
        if self.is_ready() {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let early = std::mem::take(&mut s.early);
        let pending = s.pending.get_or_insert_with(HashSet::new);
        pending.extend(keys.into_iter().filter(|k| !early.contains(k)));
        self.update(&mut s);
    }

    /// An object finished a reconcile (successfully or not: it has a status either way).
    pub fn reconciled(&self, key: &str) {
        if self.is_ready() {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.pending.as_mut() {
            Some(pending) => {
                pending.remove(key);
            }
            None => {
                s.early.insert(key.to_string());
            }
        }
        self.update(&mut s);
    }

    /// Stop waiting for the objects of the initial list that `present` no longer has
    /// (deleted before their first reconcile: they will never be reconciled).
    pub fn forget_missing(&self, present: &HashSet<String>) {
        if self.is_ready() {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pending) = s.pending.as_mut() {
            pending.retain(|k| present.contains(k));
        }
        self.update(&mut s);
    }

    /// Objects of the initial list still waiting for a reconcile (`None`: list not known yet).
    pub fn pending(&self) -> Option<usize> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.pending.as_ref().map(HashSet::len)
    }

    /// What the first sync waits for, for `/readyz`: the watch caches' first lists, or how
    /// many objects of them are not reconciled yet and the first of them by key.
    pub fn progress(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.pending.as_ref() {
            None => "waiting for the watch caches' first lists".into(),
            Some(pending) => match pending.iter().min() {
                Some(first) => format!(
                    "{} object(s) of the first lists not reconciled yet, e.g. {first}",
                    pending.len()
                ),
                None => "every object of the first lists reconciled".into(),
            },
        }
    }

    fn update(&self, s: &mut SyncState) {
        if s.pending.as_ref().is_some_and(HashSet::is_empty) {
            self.ready.store(true, Ordering::SeqCst);
            *s = SyncState {
                pending: Some(HashSet::new()),
                early: HashSet::new(),
            };
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
        let reconcile = reconcile.with_shared(metrics.insights.clone());
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
