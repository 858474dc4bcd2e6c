//! The one catalog: the objects a reconciler may look up by reference, kept in kube's
//! reflector stores whichever front door runs.
//!
//! The controller hands over its watch caches ([`Catalog::watch`]); file mode and tests fill a
//! store of their own from manifests ([`Catalog::put`], through a reflector `Writer`). Lookups
//! are generic over the kind; an object that could not be deserialized (a wrong type in a
//! field) is left out of every lookup.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use kube::Resource;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher;

/// An object as a watch cache holds it: deserialized, or the reason it could not be.
pub type Guarded<K> = DeserializeGuard<K>;

/// What a catalog can hold: any namespaced Kubernetes object type known at compile time.
pub trait Object: Resource<DynamicType = ()> + Clone + Send + Sync + 'static {}

impl<K> Object for K where K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static {}

/// The stores of one kind: the watch caches handed over, and one filled locally.
struct Shelf<K: Object> {
    watched: Vec<Store<Guarded<K>>>,
    local: Mutex<Writer<Guarded<K>>>,
    local_reader: Store<Guarded<K>>,
}

impl<K: Object> Shelf<K> {
    fn new(watched: Vec<Store<Guarded<K>>>) -> Self {
        let writer = Writer::default();
        let local_reader = writer.as_reader();
        Self {
            watched,
            local: Mutex::new(writer),
            local_reader,
        }
    }

    fn stores(&self) -> impl Iterator<Item = &Store<Guarded<K>>> {
        self.watched
            .iter()
            .chain(std::iter::once(&self.local_reader))
    }

    fn apply(&self, event: &watcher::Event<Guarded<K>>) {
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .apply_watcher_event(event);
    }
}

/// The objects of every kind a front door knows of (see the module docs).
#[derive(Default)]
pub struct Catalog {
    shelves: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve kind `K` from these watch caches (one per watched namespace).
    pub fn watch<K: Object>(&self, stores: Vec<Store<Guarded<K>>>) {
        self.shelves
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(TypeId::of::<K>(), Arc::new(Shelf::<K>::new(stores)));
    }

    /// Add `object`, or replace the one with its namespace and name (file mode, tests).
    pub fn put<K: Object>(&self, object: K) {
        self.shelf_or_new::<K>()
            .apply(&watcher::Event::Apply(DeserializeGuard(Ok(object))));
    }

    /// Forget object `name` of `namespace` (it was released).
    pub fn remove<K: Object>(&self, namespace: &str, name: &str) {
        let Some(shelf) = self.shelf::<K>() else {
            return;
        };
        let Some(object) = shelf.local_reader.get(&key(namespace, name)) else {
            return;
        };
        shelf.apply(&watcher::Event::Delete(object.as_ref().clone()));
    }

    /// Object `name` of `namespace`.
    pub fn get<K: Object>(&self, namespace: &str, name: &str) -> Option<K> {
        let key = key(namespace, name);
        self.shelf::<K>()?
            .stores()
            .find_map(|s| s.get(&key))
            .and_then(|o| o.0.as_ref().ok().cloned())
    }

    /// Every object of `namespace`.
    pub fn list<K: Object>(&self, namespace: &str) -> Vec<K> {
        self.list_where(namespace, |_: &K| true)
    }

    /// The objects of `namespace` that `keep` accepts; only those are copied (a namespace may
    /// hold thousands, and reconcilers mostly want a handful).
    pub fn list_where<K: Object>(&self, namespace: &str, keep: impl Fn(&K) -> bool) -> Vec<K> {
        self.select(|o: &K| o.meta().namespace.as_deref() == Some(namespace) && keep(o))
    }

    /// The objects of `namespace` named in `names`: what `list_where` gives for a name filter,
    /// by lookups rather than a scan of the namespace (a BillingGroup names a handful of
    /// LinkedAccounts among thousands).
    pub fn named<'a, K: Object>(
        &self,
        namespace: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Vec<K> {
        let Some(shelf) = self.shelf::<K>() else {
            return Vec::new();
        };
        names
            .into_iter()
            .flat_map(|name| {
                let key = key(namespace, name);
                shelf
                    .stores()
                    .filter_map(|s| s.get(&key))
                    .filter_map(|o| o.0.as_ref().ok().cloned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every object of kind `K`, in all namespaces.
    pub fn all<K: Object>(&self) -> Vec<K> {
        self.select(|_: &K| true)
    }

    /// The watch caches of kind `K` handed over with [`Catalog::watch`].
    pub fn watched<K: Object>(&self) -> Vec<Store<Guarded<K>>> {
        self.shelf::<K>()
            .map(|s| s.watched.clone())
            .unwrap_or_default()
    }

    fn select<K: Object>(&self, keep: impl Fn(&K) -> bool) -> Vec<K> {
        let Some(shelf) = self.shelf::<K>() else {
            return Vec::new();
        };
        shelf
            .stores()
            .flat_map(|s| s.state())
            .filter_map(|o| o.0.as_ref().ok().filter(|k| keep(k)).cloned())
            .collect()
    }

    fn shelf<K: Object>(&self) -> Option<Arc<Shelf<K>>> {
        let shelf = self
            .shelves
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&TypeId::of::<K>())
            .cloned()?;
        shelf.downcast::<Shelf<K>>().ok()
    }

    fn shelf_or_new<K: Object>(&self) -> Arc<Shelf<K>> {
        if let Some(shelf) = self.shelf::<K>() {
            return shelf;
        }
        let mut shelves = self.shelves.write().unwrap_or_else(|e| e.into_inner());
        let shelf = shelves
            .entry(TypeId::of::<K>())
            .or_insert_with(|| Arc::new(Shelf::<K>::new(Vec::new())))
            .clone();
        shelf
            .downcast::<Shelf<K>>()
            .unwrap_or_else(|_| unreachable!("shelves are keyed by their kind's type"))
    }
}

fn key<K: Object>(namespace: &str, name: &str) -> ObjectRef<Guarded<K>> {
    ObjectRef::new(name).within(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LinkedAccount, Payer};
    use kube::ResourceExt;
    use kube::runtime::reflector;

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
        let catalog = Catalog::new();
        catalog.watch(vec![reader]);
        let names: Vec<String> = catalog
            .list::<LinkedAccount>("billing")
            .iter()
            .map(|a| a.name_any())
            .collect();
        assert_eq!(names, vec!["fine".to_string()]);
    }

    #[test]
    fn objects_put_locally_are_found_replaced_and_removed() {
        let catalog = Catalog::new();
        let mut a: LinkedAccount =
            serde_json::from_value(account("a", serde_json::json!({}))).unwrap();
        catalog.put(a.clone());
        assert!(catalog.get::<LinkedAccount>("billing", "a").is_some());
        assert!(catalog.get::<LinkedAccount>("other", "a").is_none());
        assert!(catalog.all::<Payer>().is_empty());
        a.status = Some(Default::default());
        catalog.put(a);
        assert_eq!(catalog.all::<LinkedAccount>().len(), 1);
        assert!(
            catalog
                .get::<LinkedAccount>("billing", "a")
                .unwrap()
                .status
                .is_some()
        );
        catalog.remove::<LinkedAccount>("billing", "a");
        assert!(catalog.list::<LinkedAccount>("billing").is_empty());
    }
}
