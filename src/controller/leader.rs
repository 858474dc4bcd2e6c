//! Leader election with a coordination.k8s.io Lease, for more than one replica: only the
//! holder runs the controllers; a standby takes over when the holder stops renewing.
//!
//! Timings follow client-go's defaults: a 15 s lease, tried and renewed every 2 s; a leader
//! that could not renew for 10 s stops (before anyone may take its lease); a leader that shuts
//! down cleanly releases the lease so that a standby takes over at its next try. Whether a
//! holder is gone is judged by the local clock (how long its record has not changed), never
//! by comparing the holder's renewTime with this machine's clock, so clock skew between nodes
//! cannot hand the lease over early.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::{info, warn};

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
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
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

    /// Wait until we hold the lease.
    pub async fn acquire(&self) {
        info!(lease = %self.name, identity = %self.identity, "waiting to become leader");
        loop {
            match self.try_acquire().await {
                Ok(true) => {
                    info!(lease = %self.name, identity = %self.identity, "became leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "leader election: could not read or write the lease"),
            }
            tokio::time::sleep(self.timing.retry).await;
        }
    }

    /// Keep renewing; returns when the lease is lost: another replica holds it, or renewing
    /// failed for the renew deadline (shorter than the lease, so that we stop leading before
    /// anyone else may start).
    pub async fn hold(&self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry).await;
            match self.try_acquire().await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => {
                    warn!(lease = %self.name, "another replica holds the lease");
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "leader election: renewing failed");
                    if last_renewed.elapsed() >= self.timing.renew_deadline {
                        return;
                    }
                }
            }
        }
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

    #[test]
    fn the_leader_gives_up_before_anyone_may_take_over() {
        let t = Timing::default();
        assert!(t.renew_deadline < t.lease);
        assert!(t.retry < t.renew_deadline);
    }
}
