//! The one catalog: the objects a reconciler may look up by reference, kept in kube's
//! reflector stores whichever front door runs.
//!
//! The controller hands over its watch caches ([`Catalog::watch`]); file mode and tests fill a
//! store of their own from manifests ([`Catalog::put`], through a reflector `Writer`). Lookups
//! are generic over the kind; an object that could not be deserialized (a wrong type in a
//! field) is left out of every lookup.
//!
//! Besides lookups by name, [`Catalog::find`] looks objects up by keys computed from them (a
//! [`Lookup`]: a LinkedAccount's account id, the accounts a BillingGroup names), so that a
//! reconcile that wants the few objects with a key does not scan every object of the
//! namespace (a pass over N objects scanning N objects each is N² work).

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap};
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

/// A lookup of kind `K`'s objects by keys computed from each object: [`Catalog::find`] gives
/// the objects with one of some keys, what [`Catalog::list_where`] would give for that filter.
pub struct Lookup<K> {
    /// Tells the lookups of one kind apart (one index is kept per name: give each `keys` its
    /// own name).
    pub name: &'static str,
    /// The keys an object is found by (none: never found).
    pub keys: fn(&K) -> Vec<String>,
}

/// A [`Lookup`] of the local store as built: namespace -> key -> names of the objects.
struct Index<K> {
    keys: fn(&K) -> Vec<String>,
    names: HashMap<String, HashMap<String, BTreeSet<String>>>,
}

impl<K: Object> Index<K> {
    fn build(keys: fn(&K) -> Vec<String>, objects: &[Arc<Guarded<K>>]) -> Self {
        let mut index = Self {
            keys,
            names: HashMap::new(),
        };
        for o in objects {
            index.add(o);
        }
        index
    }

    fn entries(&self, o: &Guarded<K>) -> Option<(String, String, Vec<String>)> {
        let o = o.0.as_ref().ok()?;
        let meta = o.meta();
        Some((
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
            (self.keys)(o),
        ))
    }

    fn add(&mut self, o: &Guarded<K>) {
        let Some((namespace, name, keys)) = self.entries(o) else {
            return;
        };
        let by_key = self.names.entry(namespace).or_default();
        for k in keys {
            by_key.entry(k).or_default().insert(name.clone());
        }
    }

    fn forget(&mut self, o: &Guarded<K>) {
        let Some((namespace, name, keys)) = self.entries(o) else {
            return;
        };
        let Some(by_key) = self.names.get_mut(&namespace) else {
            return;
        };
        for k in keys {
            if let Some(names) = by_key.get_mut(&k) {
                names.remove(&name);
                if names.is_empty() {
                    by_key.remove(&k);
                }
            }
        }
    }
}

/// The stores of one kind: the watch caches handed over, and one filled locally.
struct Shelf<K: Object> {
    watched: Vec<Store<Guarded<K>>>,
    local: Mutex<Writer<Guarded<K>>>,
    local_reader: Store<Guarded<K>>,
    /// The [`Lookup`]s of the local store, by name: built on first use, kept current by
    /// every edit ([`Shelf::apply`]). Locked before `local` (an index is built from the
    /// store under this lock, so no edit falls between the reading and the keeping).
    indexes: Mutex<HashMap<&'static str, Index<K>>>,
}

impl<K: Object> Shelf<K> {
    fn new(watched: Vec<Store<Guarded<K>>>) -> Self {
        let writer = Writer::default();
        let local_reader = writer.as_reader();
        Self {
            watched,
            local: Mutex::new(writer),
            local_reader,
            indexes: Mutex::default(),
        }
    }

    fn indexes(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Index<K>>> {
        self.indexes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stores(&self) -> impl Iterator<Item = &Store<Guarded<K>>> {
        self.watched
            .iter()
            .chain(std::iter::once(&self.local_reader))
    }

    fn apply(&self, event: &watcher::Event<Guarded<K>>) {
        let mut indexes = self.indexes();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let (before, after) = match event {
            watcher::Event::Apply(o) => (self.local_reader.get(&ObjectRef::from_obj(o)), Some(o)),
            watcher::Event::Delete(o) => (self.local_reader.get(&ObjectRef::from_obj(o)), None),
            // Not sent by this catalog: whatever it changes, the indexes are built again.
            _ => {
                indexes.clear();
                (None, None)
            }
        };
        local.apply_watcher_event(event);
        for index in indexes.values_mut() {
            if let Some(before) = &before {
                index.forget(before);
            }
            if let Some(after) = after {
                index.add(after);
            }
        }
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

    /// The objects of `namespace` that `lookup` finds by one of `keys` (each once), sorted by
    /// name: what `list_where` gives for "one of its keys is among `keys`", by lookups in an
    /// index of the local store rather than a scan of the namespace. Watch caches, which the
    /// watcher changes without telling the catalog, are scanned.
    pub fn find<'a, K: Object>(
        &self,
        namespace: &str,
        lookup: &Lookup<K>,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Vec<K> {
        let Some(shelf) = self.shelf::<K>() else {
            return Vec::new();
        };
        let keys: BTreeSet<&str> = keys.into_iter().collect();
        let mut found = if shelf.watched.is_empty() {
            let mut indexes = shelf.indexes();
            let index = indexes
                .entry(lookup.name)
                .or_insert_with(|| Index::build(lookup.keys, &shelf.local_reader.state()));
            let Some(by_key) = index.names.get(namespace) else {
                return Vec::new();
            };
            let names: BTreeSet<&str> = keys
                .iter()
                .filter_map(|k| by_key.get(*k))
                .flatten()
                .map(String::as_str)
                .collect();
            names
                .into_iter()
                .filter_map(|name| shelf.local_reader.get(&key(namespace, name)))
                .filter_map(|o| o.0.as_ref().ok().cloned())
                .collect()
        } else {
            self.list_where(namespace, |o: &K| {
                (lookup.keys)(o).iter().any(|k| keys.contains(k.as_str()))
            })
        };
        found.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        found
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
    use kube::runtime::reflector::{self, store};

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

    static BY_ID: Lookup<LinkedAccount> = Lookup {
        name: "test: by account id",
        keys: |a| {
            a.status
                .as_ref()
                .and_then(|s| s.account_id.clone())
                .into_iter()
                .collect()
        },
    };

    fn with_id(name: &str, namespace: &str, id: Option<&str>) -> LinkedAccount {
        let mut a: LinkedAccount =
            serde_json::from_value(account(name, serde_json::json!({}))).unwrap();
        a.metadata.namespace = Some(namespace.to_string());
        a.status = id.map(|id| crate::api::LinkedAccountStatus {
            account_id: Some(id.to_string()),
            ..Default::default()
        });
        a
    }

    fn names(objects: &[LinkedAccount]) -> Vec<String> {
        objects.iter().map(|a| a.name_any()).collect()
    }

    #[test]
    fn a_lookup_finds_by_key_and_follows_every_put_and_remove_after_it_was_built() {
        let catalog = Catalog::new();
        assert!(
            catalog
                .find::<LinkedAccount>("billing", &BY_ID, ["1"])
                .is_empty()
        );
        catalog.put(with_id("b", "billing", Some("1")));
        catalog.put(with_id("a", "billing", Some("1")));
        catalog.put(with_id("c", "billing", Some("2")));
        catalog.put(with_id("d", "billing", None));
        catalog.put(with_id("a", "other", Some("1")));
        // Built here: every object with one of the keys, once, by name, of the namespace only.
        let found = catalog.find("billing", &BY_ID, ["1", "2", "1"]);
        assert_eq!(names(&found), ["a", "b", "c"]);
        assert!(
            found
                .iter()
                .all(|a| a.namespace().as_deref() == Some("billing"))
        );
        assert_eq!(names(&catalog.find("other", &BY_ID, ["1"])), ["a"]);
        assert!(catalog.find("billing", &BY_ID, ["3"]).is_empty());

        // Edits after it was built: a key changed, a key gained, a key lost, an object gone.
        catalog.put(with_id("b", "billing", Some("3")));
        catalog.put(with_id("d", "billing", Some("1")));
        catalog.put(with_id("c", "billing", None));
        catalog.remove::<LinkedAccount>("other", "a");
        assert_eq!(names(&catalog.find("billing", &BY_ID, ["1"])), ["a", "d"]);
        assert_eq!(names(&catalog.find("billing", &BY_ID, ["3"])), ["b"]);
        assert!(catalog.find("billing", &BY_ID, ["2"]).is_empty());
        assert!(catalog.find("other", &BY_ID, ["1"]).is_empty());
        // What is found is the object as it is now.
        let b = catalog.find("billing", &BY_ID, ["3"]);
        assert_eq!(
            b[0].status.as_ref().unwrap().account_id.as_deref(),
            Some("3")
        );
        // The same as a scan with the same filter.
        let scanned = catalog.list_where("billing", |a: &LinkedAccount| {
            (BY_ID.keys)(a).iter().any(|k| k == "1" || k == "3")
        });
        let mut scanned = names(&scanned);
        scanned.sort();
        assert_eq!(names(&catalog.find("billing", &BY_ID, ["1", "3"])), scanned);
    }

    #[test]
    fn a_lookup_scans_watch_caches_which_change_without_the_catalog() {
        let (reader, mut writer) = reflector::store::<Guarded<LinkedAccount>>();
        let apply = |w: &mut store::Writer<Guarded<LinkedAccount>>, a: LinkedAccount| {
            w.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(a))))
        };
        apply(&mut writer, with_id("b", "billing", Some("1")));
        apply(&mut writer, with_id("a", "billing", Some("1")));
        apply(&mut writer, with_id("bad", "billing", Some("1")));
        writer.apply_watcher_event(&watcher::Event::Apply(guarded(account(
            "broken",
            serde_json::json!("not-a-map"),
        ))));
        let catalog = Catalog::new();
        catalog.watch(vec![reader]);
        assert_eq!(
            names(&catalog.find("billing", &BY_ID, ["1"])),
            ["a", "b", "bad"]
        );
        // The watcher changes the store behind the catalog's back: seen at once.
        apply(&mut writer, with_id("bad", "billing", Some("2")));
        assert_eq!(names(&catalog.find("billing", &BY_ID, ["1"])), ["a", "b"]);
        assert_eq!(names(&catalog.find("billing", &BY_ID, ["2"])), ["bad"]);
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
