//! The controller front door: one shared watch per kind per namespace, one controller per
//! kind per namespace over the kind list, the shared reconcilers, status patched when it
//! changed, Events, per-object backoff.
//!
//! [`context`] holds what the reconcilers share; [`kinds`] reconciles one object of any kind;
//! [`watches`] wires the watches, controllers and triggers; [`ledger`] keeps the closure log
//! in the Payer's status; [`health`] and [`leader`] serve probes and leader election.

pub mod context;
pub mod health;
pub mod kinds;
pub mod leader;
pub mod ledger;
pub mod watches;

pub use context::{Context, FIELD_MANAGER, Settings, SyncTracker, sync_key};
pub use kinds::{error_policy, publish_for, retry_delay};
pub use watches::run;

#[cfg(test)]
mod tests {
    use super::kinds::trigger_fingerprint;
    use super::*;
    use crate::api::Payer;

    #[test]
    fn sync_tracker_waits_for_every_initial_object() {
        let t = SyncTracker::default();
        t.reconciled("ns/a");
        assert!(!t.is_ready(), "not ready before the initial list is known");
        assert_eq!(t.progress(), "waiting for the watch caches' first lists");
        t.expect(["ns/a".to_string(), "ns/b".to_string()]);
        assert!(!t.is_ready());
        assert_eq!(
            t.progress(),
            "1 object(s) of the first lists not reconciled yet, e.g. ns/b"
        );
        t.reconciled("ns/b");
        assert!(t.is_ready());
        let empty = SyncTracker::default();
        empty.expect(Vec::<String>::new());
        assert!(empty.is_ready(), "nothing to sync means ready");
    }

    #[test]
    fn sync_tracker_stops_waiting_for_objects_deleted_before_their_first_reconcile() {
        let t = SyncTracker::default();
        t.expect(["ns/a", "ns/b", "ns/c"].map(String::from));
        t.reconciled("ns/a");
        assert_eq!(t.pending(), Some(2));
        t.forget_missing(&["ns/a", "ns/b"].map(String::from).into());
        assert_eq!(t.pending(), Some(1), "ns/c is gone");
        assert!(!t.is_ready(), "ns/b is still there and not reconciled");
        t.reconciled("ns/b");
        assert!(t.is_ready());
        t.expect(["ns/d".to_string()]);
        assert!(t.is_ready(), "ready stays ready");
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
