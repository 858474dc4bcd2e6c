//! What else makes an object be looked at again, declared with its kind in the kind list:
//! changes of another kind (watched once per namespace and shared), or wake-ups from shared
//! state (an account creation that ended). The controller attaches them to the kind's
//! controller; file mode listens to the wake-ups.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::ResourceExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, ReflectHandle, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};

use super::catalog::{Guarded, Object};
use super::context::ReconcileContext;

/// What a trigger can follow: an object type a watch can deserialize (every kind is one).
pub trait Watched: Object + serde::de::DeserializeOwned + std::fmt::Debug {}

impl<K> Watched for K where K: Object + serde::de::DeserializeOwned + std::fmt::Debug {}

/// A wake-up: look at this object now, or (some were missed) at every object of the kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WakeUp {
    Object { namespace: String, name: String },
    Missed,
}

/// A stream of wake-ups.
pub type WakeUps = BoxStream<'static, WakeUp>;

/// Where wake-ups come from (reads the shared state of the context).
pub type WakeUpSource = fn(&ReconcileContext) -> WakeUps;

/// Whether an object of another kind (first) concerns an object of this kind (second).
pub type Related<Other, K> = fn(&Guarded<Other>, &Guarded<K>) -> bool;

/// What of an object a trigger follows (a change of the hash triggers).
pub type Fingerprint<K> = fn(&Guarded<K>) -> Option<u64>;

type Attach<K> =
    Box<dyn Fn(Controller<Guarded<K>>, &Sources<'_, K>) -> Controller<Guarded<K>> + Send + Sync>;

/// One trigger of kind `K` (see the module docs).
pub struct Trigger<K: Watched> {
    attach: Attach<K>,
    wake_ups: Option<WakeUpSource>,
}

impl<K: Watched> Trigger<K> {
    /// Reconcile the objects of `K` in the same namespace that `related` names whenever an
    /// `Other` changes in what `fingerprint` hashes.
    pub fn on<Other: Watched>(fingerprint: Fingerprint<Other>, related: Related<Other, K>) -> Self {
        let attach = move |controller: Controller<Guarded<K>>, sources: &Sources<'_, K>| {
            let Some(others) = sources.streams.subscribe::<Other>(sources.index) else {
                return controller;
            };
            let own = sources.own.clone();
            controller.watches_shared_stream(
                changed_only(others, fingerprint),
                move |other: Arc<Guarded<Other>>| {
                    let namespace = other.namespace();
                    own.state()
                        .into_iter()
                        .filter(|k| k.namespace() == namespace && related(&other, k))
                        .map(|k| ObjectRef::from(k.as_ref()))
                        .collect::<Vec<_>>()
                },
            )
        };
        Self {
            attach: Box::new(attach),
            wake_ups: None,
        }
    }

    /// Reconcile the objects `source` names as soon as it names them.
    pub fn wake_ups(source: WakeUpSource) -> Self {
        let attach = move |controller: Controller<Guarded<K>>, sources: &Sources<'_, K>| {
            let scope = sources.namespace.clone();
            controller.reconcile_on(in_scope(source(sources.ctx), scope))
        };
        Self {
            attach: Box::new(attach),
            wake_ups: Some(source),
        }
    }

    /// The wake-up source, if this trigger is one.
    pub fn wake_up_source(&self) -> Option<WakeUpSource> {
        self.wake_ups
    }

    /// Add this trigger to the controller of `K` in one namespace.
    pub fn attach(
        &self,
        controller: Controller<Guarded<K>>,
        sources: &Sources<'_, K>,
    ) -> Controller<Guarded<K>> {
        (self.attach)(controller, sources)
    }
}

/// The objects of one namespace's wake-ups (all namespaces when `scope` is `None`), as a
/// trigger stream. Missed wake-ups are dropped: the objects' own polls cover them.
pub fn in_scope<K: Watched>(
    wake_ups: WakeUps,
    scope: Option<String>,
) -> impl futures::Stream<Item = ObjectRef<Guarded<K>>> + Send + 'static {
    wake_ups.filter_map(move |w| {
        let woken = match w {
            WakeUp::Object { namespace, name }
                if scope.as_ref().is_none_or(|ns| *ns == namespace) =>
            {
                Some(ObjectRef::new(&name).within(&namespace))
            }
            _ => None,
        };
        futures::future::ready(woken)
    })
}

/// The objects of `stream` whose `fingerprint` changed since they were last seen (kube's
/// predicate filter over a shared stream).
pub fn changed_only<K: Watched>(
    stream: impl futures::Stream<Item = Arc<Guarded<K>>> + Send + 'static,
    fingerprint: Fingerprint<K>,
) -> impl futures::Stream<Item = Arc<Guarded<K>>> + Send + 'static {
    stream
        .map(|o| Ok::<_, watcher::Error>(o.as_ref().clone()))
        .predicate_filter(fingerprint, Default::default())
        .filter_map(|o| futures::future::ready(o.ok().map(Arc::new)))
}

/// What a trigger of kind `K` may draw on in one namespace's controller.
pub struct Sources<'a, K: Watched> {
    pub ctx: &'a ReconcileContext,
    /// The namespace (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Its position in the list of watched namespaces.
    pub index: usize,
    /// The watch cache of `K` in this namespace.
    pub own: Store<Guarded<K>>,
    pub streams: &'a SharedStreams,
}

/// The shared watch streams of every kind, one per watched namespace: each is watched once
/// and fanned out to every controller that follows it.
#[derive(Default)]
pub struct SharedStreams {
    writers: HashMap<TypeId, Box<dyn Any + Send>>,
}

impl SharedStreams {
    /// The writers of kind `K`'s shared stores, one per namespace.
    pub fn insert<K: Watched>(&mut self, writers: Vec<Writer<Guarded<K>>>) {
        self.writers.insert(TypeId::of::<K>(), Box::new(writers));
    }

    /// A subscription to kind `K`'s stream in namespace `index` (before the streams run).
    pub fn subscribe<K: Watched>(&self, index: usize) -> Option<ReflectHandle<Guarded<K>>> {
        self.writers
            .get(&TypeId::of::<K>())?
            .downcast_ref::<Vec<Writer<Guarded<K>>>>()?
            .get(index)?
            .subscribe()
    }

    /// Take kind `K`'s writers out, to run its watches.
    pub fn take<K: Watched>(&mut self) -> Vec<Writer<Guarded<K>>> {
        self.writers
            .remove(&TypeId::of::<K>())
            .and_then(|w| w.downcast::<Vec<Writer<Guarded<K>>>>().ok())
            .map(|w| *w)
            .unwrap_or_default()
    }
}
