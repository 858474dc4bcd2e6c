//! Account creations in flight, per payer. AWS runs at most five CreateAccount requests per
//! organization at once; the rest of the LinkedAccounts wait in a queue. While creations are
//! in flight, one watcher per payer looks at them with a single ListCreateAccountStatus call
//! (not one DescribeCreateAccountStatus per account) and, the moment one ends, records the new
//! account in the payer's snapshot and wakes the LinkedAccount that asked for it and the next
//! queued ones, so a free slot is handed on at once instead of at the queue's next poll.
//!
//! The watcher polls at a tenth of the age of the oldest request it follows (between
//! [`MIN_WATCH`] and [`MAX_WATCH`]): densely near the end of a short creation, rarely during
//! the minutes a real one takes. It backs off on errors, stops on a terminal one (the
//! accounts then poll their own requests, as without it), and ends when nothing is in flight
//! or the context that started it is gone.
//!
//! This module owns the queue's rules ([`MAX_CREATES_IN_FLIGHT`], [`creation_queue`],
//! [`queue_position`]) and the helpers a LinkedAccount uses to take part in it
//! ([`refresh_requests`], [`follow_request`]); it knows nothing of LinkedAccount's reconcile.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use tracing::{debug, warn};

use crate::api::LinkedAccount;
use crate::aws::Connection;
use crate::aws::organizations::{Account, CreateStatus, OrganizationsApi};
use crate::error::Error;

use crate::payer::snapshot::{OrgSnapshot, SnapshotCache, Write};
use crate::reconcile::{Catalog, PayerLocks};

/// Shortest pause between two looks of the watcher.
pub const MIN_WATCH: Duration = Duration::from_millis(250);
/// Longest pause between two looks while nothing fails.
pub const MAX_WATCH: Duration = Duration::from_secs(5);
/// Longest pause after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// AWS runs at most this many CreateAccount requests per organization at once.
pub const MAX_CREATES_IN_FLIGHT: usize = 5;

/// A LinkedAccount to reconcile now.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Wake {
    pub namespace: String,
    pub name: String,
}

/// A request the watcher follows: since when, and whose it is (if known).
struct Followed {
    since: Instant,
    owner: Option<String>,
}

#[derive(Default)]
struct PayerCreations {
    followed: HashMap<String, Followed>,
    watching: bool,
}

/// The creation watchers of every payer, and the channel their wake-ups go out on.
pub struct Creations {
    payers: Mutex<HashMap<String, PayerCreations>>,
    wake: tokio::sync::broadcast::Sender<Wake>,
    shutdown: Arc<tokio::sync::Notify>,
}

impl Default for Creations {
    fn default() -> Self {
        Self {
            payers: Mutex::default(),
            wake: tokio::sync::broadcast::channel(4096).0,
            shutdown: Arc::default(),
        }
    }
}

impl Drop for Creations {
    fn drop(&mut self) {
        // Watchers waiting for their next look end now rather than after it.
        self.shutdown.notify_waiters();
    }
}

/// What a watcher needs from the reconcile context.
pub struct WatchParts {
    pub payer_key: String,
    pub conn: Connection,
    pub snapshots: Arc<SnapshotCache>,
    pub locks: Arc<PayerLocks>,
    pub catalog: Arc<Catalog>,
}

impl Creations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PayerCreations>> {
        self.payers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The LinkedAccounts to reconcile now, as watchers find them.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Wake> {
        self.wake.subscribe()
    }

    /// Have LinkedAccount `namespace`/`name` reconciled now (by whoever subscribed).
    pub fn wake(&self, namespace: &str, name: &str) {
        // No subscriber (plan mode, tests) is not an error: nobody waits.
        let _ = self.wake.send(Wake {
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    }

    /// Whether payer `key`'s requests are being watched (its snapshot then knows the
    /// requests in flight without another ListCreateAccountStatus).
    pub fn watching(&self, key: &str) -> bool {
        self.lock().get(key).is_some_and(|p| p.watching)
    }

    /// Whether the watcher of payer `key` follows `request_id` (it wakes the owner when the
    /// request ends, so the owner need not poll it).
    pub fn follows(&self, key: &str, request_id: &str) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|p| p.watching && p.followed.contains_key(request_id))
    }

    /// Names of the LinkedAccounts (namespace of payer `key`) whose request is followed: they
    /// are no longer in the queue even if their status does not say so yet.
    pub fn requested(&self, key: &str) -> BTreeSet<String> {
        self.lock()
            .get(key)
            .map(|p| {
                p.followed
                    .values()
                    .filter_map(|f| f.owner.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Follow `request_id` of payer `key`, made for the LinkedAccount `owner` (a name in the
    /// payer's namespace) if known; starts the payer's watcher unless it runs.
    pub fn follow(
        self: &Arc<Self>,
        parts: impl FnOnce() -> WatchParts,
        key: &str,
        request_id: &str,
        owner: Option<&str>,
    ) {
        let start = {
            let mut payers = self.lock();
            let p = payers.entry(key.to_string()).or_default();
            let f = p
                .followed
                .entry(request_id.to_string())
                .or_insert_with(|| Followed {
                    since: Instant::now(),
                    owner: None,
                });
            if let Some(o) = owner {
                f.owner = Some(o.to_string());
            }
            !std::mem::replace(&mut p.watching, true)
        };
        if start {
            let parts = parts();
            debug!(payer = %parts.payer_key, "watching account creations");
            tokio::spawn(watch(Arc::downgrade(self), self.shutdown.clone(), parts));
        }
    }

    /// The pause before the next look, and the request ids followed.
    fn schedule(&self, key: &str, failures: u32) -> (Duration, Vec<String>) {
        let payers = self.lock();
        let Some(p) = payers.get(key) else {
            return (MAX_WATCH, Vec::new());
        };
        let oldest = p
            .followed
            .values()
            .map(|f| f.since.elapsed())
            .max()
            .unwrap_or_default();
        (
            watch_interval(oldest, failures),
            p.followed.keys().cloned().collect(),
        )
    }

    /// Stop following `ended`; the owners to wake. Ends the watch (returns `false`) when
    /// nothing is left to follow, under the same lock `follow` takes, so a request followed
    /// meanwhile is never left without a watcher.
    fn ended(&self, key: &str, ended: &[String]) -> (Vec<String>, bool) {
        let mut payers = self.lock();
        let Some(p) = payers.get_mut(key) else {
            return (Vec::new(), false);
        };
        let owners = ended
            .iter()
            .filter_map(|r| p.followed.remove(r))
            .filter_map(|f| f.owner)
            .collect();
        if p.followed.is_empty() {
            p.watching = false;
        }
        (owners, p.watching)
    }

    /// Give up watching payer `key` (terminal error, or the payer refused: see
    /// `payer::tenancy::authorize`): its accounts poll their own requests.
    pub fn abandon(&self, key: &str) {
        if let Some(p) = self.lock().get_mut(key) {
            p.followed.clear();
            p.watching = false;
        }
    }
}

/// The pause before the watcher's next look: a tenth of the age of the oldest request
/// followed, between [`MIN_WATCH`] and [`MAX_WATCH`], doubled for each failure in a row (up to
/// 30 s). Pure.
pub fn watch_interval(oldest: Duration, failures: u32) -> Duration {
    let base = (oldest / 10).clamp(MIN_WATCH, MAX_WATCH);
    if failures == 0 {
        return base;
    }
    base.saturating_mul(1u32 << failures.min(8))
        .min(MAX_BACKOFF)
}

/// What one look at the requests in flight found.
#[derive(Clone, Debug, Default)]
pub struct CreatesSeen {
    /// ListCreateAccountStatus (IN_PROGRESS), as read.
    pub in_progress: Vec<CreateStatus>,
    /// Ids of the requests looked for that are no longer in progress (SUCCEEDED, FAILED or
    /// gone).
    pub ended: Vec<String>,
    /// Accounts those requests created, as DescribeAccount returned them.
    pub joined: Vec<Account>,
}

impl CreatesSeen {
    /// The change to the organization snapshot: requests in flight as read, created accounts
    /// added (so an account is never missing between "no longer in progress" and "listed").
    pub fn write(&self) -> Write<OrgSnapshot> {
        let (in_progress, joined) = (self.in_progress.clone(), self.joined.clone());
        Arc::new(move |s: &mut OrgSnapshot| {
            for a in &joined {
                s.add_account(a);
            }
            s.creates_in_progress = in_progress.clone();
        })
    }
}

/// One ListCreateAccountStatus; for each of `known` no longer in progress, its
/// DescribeCreateAccountStatus, and DescribeAccount of the account it created unless
/// `have_account` says it is known.
pub async fn look(
    orgs: &dyn OrganizationsApi,
    known: &[String],
    have_account: impl Fn(&str) -> bool,
) -> Result<CreatesSeen, Error> {
    let in_progress = orgs.list_creates_in_progress().await?;
    let mut seen = CreatesSeen::default();
    for request_id in known {
        if in_progress.iter().any(|n| &n.request_id == request_id) {
            continue;
        }
        seen.ended.push(request_id.clone());
        let done = match orgs.describe_create_account_status(request_id).await {
            Ok(d) => d,
            // Gone (AWS keeps finished requests 90 days): nothing to record, the slot is free.
            Err(e) if e.aws_code() == Some("CreateAccountStatusNotFoundException") => continue,
            Err(e) => return Err(e),
        };
        if let Some(id) = done
            .account_id
            .as_deref()
            .filter(|_| done.state == "SUCCEEDED")
            && !have_account(id)
            && let Some(a) = orgs.describe_account(id).await?
        {
            seen.joined.push(a);
        }
    }
    seen.in_progress = in_progress;
    Ok(seen)
}

/// LinkedAccounts of `payer` (by name) waiting for a creation slot, first in line first:
/// oldest first, then by name. Objects in `requested` have a request in flight already. Pure.
pub fn creation_queue<'a>(
    all: &'a [LinkedAccount],
    payer: &str,
    requested: &BTreeSet<String>,
) -> Vec<&'a LinkedAccount> {
    let mut queue: Vec<&LinkedAccount> = all
        .iter()
        .filter(|o| may_queue(o, payer) && !requested.contains(&o.name_any()))
        .collect();
    queue.sort_by_key(|o| queue_key(o));
    queue
}

/// Whether `o` is a LinkedAccount of `payer` that waits for its account to be created (no
/// request made, as far as its status says). Pure.
pub fn may_queue(o: &LinkedAccount, payer: &str) -> bool {
    o.spec.payer_ref.name == payer
        && o.spec.create.is_some()
        && o.metadata.deletion_timestamp.is_none()
        && o.status
            .as_ref()
            .is_none_or(|s| s.account_id.is_none() && s.create_request_id.is_none())
}

/// Place in the creation queue: when the object was made, then its name.
pub fn queue_key(o: &LinkedAccount) -> (Option<k8s_openapi::jiff::Timestamp>, String) {
    (
        o.metadata.creation_timestamp.as_ref().map(|t| t.0),
        o.name_any(),
    )
}

/// How many LinkedAccounts of the same payer wait to be created ahead of `obj`: oldest
/// first, then by name; those in `requested` have a request in flight already. Pure.
pub fn queue_position(
    obj: &LinkedAccount,
    all: &[LinkedAccount],
    requested: &BTreeSet<String>,
) -> usize {
    let mine = queue_key(obj);
    creation_queue(all, &obj.spec.payer_ref.name, requested)
        .into_iter()
        .filter(|o| o.name_any() != obj.name_any() && queue_key(o) < mine)
        .count()
}

/// The watcher of one payer's creations (see the module documentation).
async fn watch(creations: Weak<Creations>, shutdown: Arc<tokio::sync::Notify>, parts: WatchParts) {
    let key = parts.payer_key.clone();
    let (namespace, payer_name) = key.split_once('/').unwrap_or(("", key.as_str()));
    let (namespace, payer_name) = (namespace.to_string(), payer_name.to_string());
    let mut failures = 0u32;
    loop {
        // Made before the context is looked for, so a context dropped in between still ends
        // the pause.
        let stop = shutdown.notified();
        let Some((pause, followed)) = creations.upgrade().map(|c| c.schedule(&key, failures))
        else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop => return,
        }
        // Creation decisions and this look take turns: a request made during the look is
        // never overwritten by a list read before it.
        let gate = parts.locks.get(&format!("{key}#create"));
        let _turn = gate.lock().await;
        // Tenancy (issue 17): abandoned meanwhile (the payer was refused): no further call.
        if !creations.upgrade().is_some_and(|c| c.watching(&key)) {
            return;
        }
        let cached = parts.snapshots.peek(&key);
        let seen = look(parts.conn.organizations.as_ref(), &followed, |id| {
            cached.as_ref().is_some_and(|s| s.account(id).is_some())
        })
        .await;
        let Some(this) = creations.upgrade() else {
            return;
        };
        let seen = match seen {
            Ok(s) => s,
            Err(e) if e.is_terminal() => {
                warn!(payer = %key, error = %e, "cannot watch account creations; accounts poll their own requests");
                this.abandon(&key);
                return;
            }
            Err(e) => {
                failures += 1;
                debug!(payer = %key, error = %e, failures, "looking at account creations failed; trying again");
                continue;
            }
        };
        failures = 0;
        parts.snapshots.update(&key, seen.write());
        let (owners, go_on) = this.ended(&key, &seen.ended);
        if !seen.ended.is_empty() {
            let requested = this.requested(&key);
            let free = MAX_CREATES_IN_FLIGHT.saturating_sub(seen.in_progress.len());
            let all = parts
                .catalog
                .list_where::<crate::api::LinkedAccount>(&namespace, |o: &LinkedAccount| {
                    may_queue(o, &payer_name)
                });
            let next = creation_queue(&all, &payer_name, &requested)
                .into_iter()
                .take(free)
                .map(|o| o.name_any());
            for name in owners.into_iter().chain(next) {
                this.wake(&namespace, &name);
            }
        }
        if !go_on {
            debug!(payer = %key, "no account creation in flight; watcher ends");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn la(name: &str, created: &str, status: Option<serde_json::Value>) -> LinkedAccount {
        let mut v = json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
            "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            "spec": {"payerRef": {"name": "p"}, "create": {"email": format!("{name}@example.com"), "accountName": name}}
        });
        if let Some(s) = status {
            v["status"] = s;
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn queue_is_oldest_first_then_by_name_and_skips_started_ones() {
        let all = vec![
            la("c", "2026-11-24T10:00:02Z", None),
            la("a", "2026-11-24T10:00:01Z", None),
            la("b", "2026-11-24T10:00:01Z", None),
            la(
                "started",
                "2026-11-24T09:00:00Z",
                Some(json!({"createRequestId": "car-1"})),
            ),
            la(
                "done",
                "2026-11-24T09:00:00Z",
                Some(json!({"accountId": "111122223333"})),
            ),
        ];
        let none = Default::default();
        assert_eq!(queue_position(&all[1], &all, &none), 0);
        assert_eq!(queue_position(&all[2], &all, &none), 1);
        assert_eq!(queue_position(&all[0], &all, &none), 2);
        // "a" asked for its account a moment ago; its status does not say so yet.
        let requested = ["a".to_string()].into_iter().collect();
        assert_eq!(queue_position(&all[2], &all, &requested), 0);
        assert_eq!(queue_position(&all[0], &all, &requested), 1);
        let queue: Vec<String> = creation_queue(&all, "p", &requested)
            .into_iter()
            .map(|o| o.name_any())
            .collect();
        assert_eq!(queue, ["b", "c"]);
        assert!(creation_queue(&all, "other", &none).is_empty());
    }

    #[test]
    fn the_watch_is_dense_near_the_end_of_short_creations_and_rare_in_long_ones() {
        assert_eq!(watch_interval(Duration::from_millis(100), 0), MIN_WATCH);
        assert_eq!(
            watch_interval(Duration::from_secs(5), 0),
            Duration::from_millis(500)
        );
        assert_eq!(watch_interval(Duration::from_secs(300), 0), MAX_WATCH);
        assert_eq!(
            watch_interval(Duration::from_secs(5), 2),
            Duration::from_secs(2)
        );
        assert_eq!(watch_interval(Duration::from_secs(300), 9), MAX_BACKOFF);
    }
}
