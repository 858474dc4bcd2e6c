//! Leader election with a coordination.k8s.io Lease, for more than one replica: only the
//! holder runs the controllers; a standby takes over when the holder stops renewing.
//!
//! Timings follow client-go's defaults: a 15 s lease, tried and renewed every 2 s; a leader
//! that could not renew for 10 s stops (before anyone may take its lease); a leader that shuts
//! down cleanly releases the lease so that a standby takes over at its next try. Whether a
//! holder is gone is judged by the local clock (how long its record has not changed), never
//! by comparing the holder's renewTime with this machine's clock, so clock skew between nodes
//! cannot hand the lease over early.
//!
//! Every attempt to take or renew the lease is bounded by what is left of the renew deadline
//! (counted from the start of the last attempt that renewed it), so a call that hangs (no read
//! timeout, the client's retries of 429/503/504) cannot keep a leader leading after a standby
//! may have taken the lease. The outcome of every Lease call goes to the readiness state.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::{info, warn};

use super::health::Readiness;

/// How long a lease lasts, how often it is tried or renewed, and how long a leader keeps
/// leading when renewing fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub lease: Duration,
    pub renew_deadline: Duration,
    pub retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// A Lease-based election.
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// The last record seen held by another replica (holder, renewTime) and when it was
    /// first seen unchanged.
    observed: Mutex<Option<(String, Option<Timestamp>, Instant)>>,
    /// When the last attempt that left us holding the lease started.
    renewed: Mutex<Option<Instant>>,
    /// Where the outcome of each Lease call is recorded (`/readyz`).
    readiness: Option<Arc<Readiness>>,
}

/// Why [`LeaderElection::hold`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Another replica holds the lease.
    TakenOver,
    /// No attempt renewed the lease within the renew deadline (failed or did not answer).
    DeadlinePassed,
}

/// Keep renewing with `attempt` every `timing.retry` from `last_renewed` (when the last
/// successful attempt started) until the lease is lost. Each attempt is bounded by what is left
/// of the renew deadline; one that does not finish in time counts as lost leadership, so this
/// returns at most `timing.renew_deadline` after the start of the last successful renewal.
/// `record` gets the outcome of each attempt (`Err` describes the failure).
pub async fn keep_renewing<F, Fut, E>(
    timing: Timing,
    mut last_renewed: Instant,
    mut attempt: F,
    record: impl Fn(Result<(), String>),
) -> Lost
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
    E: std::fmt::Display,
{
    let mut next = last_renewed + timing.retry;
    loop {
        let deadline = last_renewed + timing.renew_deadline;
        if next >= deadline {
            tokio::time::sleep_until(deadline).await;
            warn!("leader election: the lease was not renewed within the renew deadline");
            return Lost::DeadlinePassed;
        }
        tokio::time::sleep_until(next).await;
        let started = Instant::now();
        match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(Ok(true)) => {
                record(Ok(()));
                last_renewed = started;
                next = started + timing.retry;
            }
            Ok(Ok(false)) => {
                record(Ok(()));
                warn!("another replica holds the lease");
                return Lost::TakenOver;
            }
            Ok(Err(e)) => {
                warn!(error = %e, "leader election: renewing failed");
                record(Err(format!("cannot read or write the leader lease: {e}")));
                next = Instant::now() + timing.retry;
            }
            Err(_) => {
                warn!(
                    deadline = ?timing.renew_deadline,
                    "leader election: renewing did not finish within the renew deadline"
                );
                record(Err(format!(
                    "the leader lease was not renewed within {:?}",
                    timing.renew_deadline
                )));
                return Lost::DeadlinePassed;
            }
        }
    }
}

/// Whether `lease` may be taken by `identity` when its record has not changed for
/// `unchanged_for` (local clock): free, ours, or not renewed within its duration. Pure.
pub fn can_take(lease: &LeaseSpec, identity: &str, unchanged_for: Duration) -> bool {
    let holder = lease.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == identity {
        return true;
    }
    let seconds = lease.lease_duration_seconds.unwrap_or(15).max(1);
    unchanged_for >= Duration::from_secs(u64::from(seconds.unsigned_abs()))
}

impl LeaderElection {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self::with_timing(client, namespace, name, identity, Timing::default())
    }

    pub fn with_timing(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            observed: Mutex::new(None),
            renewed: Mutex::new(None),
            readiness: None,
        }
    }

    /// Record the outcome of every Lease call in `readiness`.
    pub fn with_readiness(mut self, readiness: Arc<Readiness>) -> Self {
        self.readiness = Some(readiness);
        self
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn record(&self, outcome: Result<(), String>) {
        if let Some(r) = &self.readiness {
            r.set_lease(outcome);
        }
    }

    /// How long the record `current` (held by another replica) has been seen unchanged.
    fn unchanged_for(&self, current: &LeaseSpec) -> Duration {
        let holder = current.holder_identity.clone().unwrap_or_default();
        let renewed = current.renew_time.as_ref().map(|t| t.0);
        let mut seen = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        match &*seen {
            Some((h, r, since)) if *h == holder && *r == renewed => since.elapsed(),
            _ => {
                *seen = Some((holder, renewed, Instant::now()));
                Duration::ZERO
            }
        }
    }

    /// Try once to take or renew the lease. `Ok(true)` when we hold it afterwards.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let spec = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timing.lease.as_secs().min(3600) as i32),
            acquire_time: acquired.or(Some(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        match self.api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(0, None)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Some(mut lease) => {
                let current = lease.spec.clone().unwrap_or_default();
                let ours = current.holder_identity.as_deref() == Some(self.identity.as_str());
                let unchanged_for = if ours {
                    Duration::ZERO
                } else {
                    self.unchanged_for(&current)
                };
                if !can_take(&current, &self.identity, unchanged_for) {
                    return Ok(false);
                }
                let transitions = current.lease_transitions.unwrap_or(0) + i32::from(!ours);
                let acquired = if ours {
                    current.acquire_time.clone()
                } else {
                    None
                };
                lease.spec = Some(spec(transitions, acquired));
                // The resourceVersion in `lease` makes this a compare-and-swap.
                match self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Wait until we hold the lease. Each attempt is bounded by the renew deadline, so a call
    /// that hangs is abandoned and retried (and reported to readiness).
    pub async fn acquire(&self) {
        info!(lease = %self.name, identity = %self.identity, "waiting to become leader");
        loop {
            let started = Instant::now();
            match tokio::time::timeout(self.timing.renew_deadline, self.try_acquire()).await {
                Ok(Ok(held)) => {
                    self.record(Ok(()));
                    if held {
                        *self.renewed.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
                        info!(lease = %self.name, identity = %self.identity, "became leader");
                        return;
                    }
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "leader election: could not read or write the lease");
                    self.record(Err(format!(
                        "cannot read or write the leader lease {}: {e}",
                        self.name
                    )));
                }
                Err(_) => {
                    warn!(
                        deadline = ?self.timing.renew_deadline,
                        "leader election: the lease was not read and written in time"
                    );
                    self.record(Err(format!(
                        "the leader lease {} was not read and written within {:?}",
                        self.name, self.timing.renew_deadline
                    )));
                }
            }
            tokio::time::sleep(self.timing.retry).await;
        }
    }

    /// Keep renewing; returns when the lease is lost: another replica holds it, or no attempt
    /// renewed it within the renew deadline (shorter than the lease, so that we stop leading
    /// before anyone else may start). An attempt still running at the deadline is abandoned:
    /// see [`keep_renewing`].
    pub async fn hold(&self) -> Lost {
        let last_renewed = self
            .renewed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(Instant::now);
        keep_renewing(
            self.timing,
            last_renewed,
            || self.try_acquire(),
            |outcome| self.record(outcome),
        )
        .await
    }

    /// Give the lease up (on a clean shutdown) so that a standby takes over at its next try
    /// instead of waiting for the lease to run out. Does nothing when another replica holds it.
    pub async fn release(&self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else {
                return Ok(false);
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            lease.spec = Some(spec);
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
                .map(|_| true)
        }
        .await;
        match result {
            Ok(true) => info!(lease = %self.name, "released the leader lease"),
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not release the leader lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_taken_when_free_ours_or_not_renewed_for_its_duration() {
        let fresh = Duration::from_secs(1);
        assert!(can_take(&lease(None), "me", fresh));
        assert!(can_take(&lease(Some("")), "me", fresh));
        assert!(can_take(&lease(Some("me")), "me", fresh));
        assert!(!can_take(&lease(Some("other")), "me", fresh));
        assert!(!can_take(
            &lease(Some("other")),
            "me",
            Duration::from_millis(14_999)
        ));
        assert!(can_take(
            &lease(Some("other")),
            "me",
            Duration::from_secs(15)
        ));
        // A released lease (duration 1 s) is free as soon as its holder is cleared, and a
        // holder that set duration 1 s is gone after a second.
        let mut released = lease(Some("other"));
        released.lease_duration_seconds = Some(1);
        assert!(can_take(&released, "me", Duration::from_secs(1)));
    }

    fn no_record(_: Result<(), String>) {}

    #[tokio::test(start_paused = true)]
    async fn a_renewal_that_never_answers_is_lost_leadership_within_the_deadline() {
        let t = Timing::default();
        let start = Instant::now();
        let lost = keep_renewing(
            t,
            start,
            std::future::pending::<Result<bool, String>>,
            no_record,
        )
        .await;
        assert_eq!(lost, Lost::DeadlinePassed);
        assert_eq!(start.elapsed(), t.renew_deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_from_the_start_of_the_last_successful_renewal() {
        let t = Timing::default();
        let start = Instant::now();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let renewed_at = Mutex::new(start);
        let outcomes = Mutex::new(Vec::new());
        let lost = keep_renewing(
            t,
            start,
            || {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let renewed_at = &renewed_at;
                async move {
                    match n {
                        // Two renewals that take a second each, then one that hangs.
                        0 | 1 => {
                            *renewed_at.lock().unwrap() = Instant::now();
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            Ok(true)
                        }
                        _ => std::future::pending::<Result<bool, String>>().await,
                    }
                }
            },
            |o| outcomes.lock().unwrap().push(o),
        )
        .await;
        assert_eq!(lost, Lost::DeadlinePassed);
        let last = *renewed_at.lock().unwrap();
        assert_eq!(last.elapsed(), t.renew_deadline);
        assert_eq!(calls.into_inner(), 3);
        let outcomes = outcomes.into_inner().unwrap();
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes[2].is_err(), "{outcomes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn failing_renewals_lose_leadership_at_the_deadline_and_are_recorded() {
        let t = Timing::default();
        let start = Instant::now();
        let outcomes = Mutex::new(Vec::new());
        let lost = keep_renewing(
            t,
            start,
            || async { Err::<bool, _>("403 Forbidden") },
            |o| outcomes.lock().unwrap().push(o),
        )
        .await;
        assert_eq!(lost, Lost::DeadlinePassed);
        assert!(start.elapsed() <= t.renew_deadline);
        let outcomes = outcomes.into_inner().unwrap();
        assert!(!outcomes.is_empty());
        assert!(
            outcomes
                .iter()
                .all(|o| o.as_ref().is_err_and(|e| e.contains("403 Forbidden")))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn another_holder_ends_leadership_at_once() {
        let t = Timing::default();
        let start = Instant::now();
        let lost = keep_renewing(t, start, || async { Ok::<_, String>(false) }, no_record).await;
        assert_eq!(lost, Lost::TakenOver);
        assert_eq!(start.elapsed(), t.retry);
    }

    #[test]
    fn the_leader_gives_up_before_anyone_may_take_over() {
        let t = Timing::default();
        assert!(t.renew_deadline < t.lease);
        assert!(t.retry < t.renew_deadline);
    }
}
