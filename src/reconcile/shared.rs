//! State the reconcilers of one front door share, keyed by its type (like
//! `http::Extensions`): the organization snapshots, the Billing Conductor reads, the account
//! creations in flight, the cost insights. The engine never names these types; the domain
//! that owns one reads it with `ctx.shared::<T>()`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

type Entries = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

/// A map from a type to the one shared value of that type (see the module docs).
///
/// Clones see the same values, including defaults made after the clone; [`Shared::with`]
/// makes a copy in which one value is replaced (set shared state up before handing the
/// context out).
#[derive(Clone, Default)]
pub struct Shared {
    entries: Arc<RwLock<Entries>>,
}

impl Shared {
    /// The value of type `T`, made with `T::default()` on first use.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        if let Some(value) = self.find::<T>() {
            return value;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let value = entries
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        value
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("entries are keyed by their type"))
    }

    /// The value of type `T`, if one was set or made.
    pub fn find<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let value = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&TypeId::of::<T>())
            .cloned()?;
        value.downcast::<T>().ok()
    }

    /// A copy of this map with `value` as the value of type `T`.
    pub fn with<T: Send + Sync + 'static>(&self, value: Arc<T>) -> Self {
        let mut entries = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        entries.insert(TypeId::of::<T>(), value);
        Self {
            entries: Arc::new(RwLock::new(entries)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Default)]
    struct Counter(AtomicU32);

    #[test]
    fn clones_share_values_and_with_replaces_one_in_a_copy() {
        let a = Shared::default();
        let b = a.clone();
        a.get::<Counter>().0.fetch_add(1, Ordering::SeqCst);
        assert_eq!(b.get::<Counter>().0.load(Ordering::SeqCst), 1);
        let c = b.with(Arc::new(Counter(AtomicU32::new(7))));
        assert_eq!(c.get::<Counter>().0.load(Ordering::SeqCst), 7);
        assert_eq!(a.get::<Counter>().0.load(Ordering::SeqCst), 1);
        assert!(a.find::<String>().is_none());
    }
}
