//! The operator's HTTP endpoints: `/healthz` (the process runs), `/readyz` (it can do its job:
//! the API server answers and serves every partnerbilling.io kind and, with leader election,
//! the last read or write of the Lease worked, whether this replica leads or stands by) and
//! Prometheus `/metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::context::SyncTracker;
use crate::metrics::Metrics;

/// What this replica does with the controllers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// No leader election: the controllers run as soon as the process starts.
    #[default]
    Alone,
    /// Waiting for the Lease; takes over when the leader stops renewing it.
    Standby,
    /// Holds the Lease and runs the controllers.
    Leader,
}

/// Whether the replica can do its job, for `/readyz`. Deliberately not "is the leader" nor
/// "finished the first sync": a Deployment's rolling update starts each new pod as a standby
/// (the old pod still holds the Lease) and waits for it to be ready before it stops an old
/// one, so a readiness that only the leader passes stalls every update. A replica is ready
/// when its last check found the API server answering and serving every partnerbilling.io
/// kind and its last Lease call (with leader election) did not fail, i.e. when it could take
/// over at once.
#[derive(Debug, Default)]
pub struct Readiness {
    state: Mutex<ReadinessState>,
}

#[derive(Debug, Default)]
struct ReadinessState {
    /// Outcome of the last API check; `None` before the first one.
    api: Option<Result<(), String>>,
    /// Outcome of the last read or write of the leader Lease; `None` without leader election
    /// or before the first one. A replica that cannot read or write the Lease (RBAC, the API
    /// server not answering) could not take over, so it is not ready.
    lease: Option<Result<(), String>>,
    role: Role,
}

impl Readiness {
    pub fn set_role(&self, role: Role) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).role = role;
    }

    pub fn role(&self) -> Role {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).role
    }

    /// Record the outcome of an API check (`Err` says what is missing).
    pub fn set_api(&self, outcome: Result<(), String>) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).api = Some(outcome);
    }

    /// Record the outcome of a read or write of the leader Lease (`Err` says what failed).
    pub fn set_lease(&self, outcome: Result<(), String>) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).lease = Some(outcome);
    }

    /// Ready or not, and a one-line explanation (the `/readyz` body).
    pub fn report(&self, sync: &SyncTracker) -> (bool, String) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let role = match s.role {
            Role::Alone => "running",
            Role::Standby => "standby, waiting for the leader lease",
            Role::Leader => "leader",
        };
        let sync = if s.role == Role::Standby {
            String::new()
        } else if sync.is_ready() {
            ", first sync complete".into()
        } else {
            format!(", first sync in progress ({})", sync.progress())
        };
        if let Some(Err(problem)) = &s.lease {
            return (false, format!("not ready ({role}): {problem}"));
        }
        match &s.api {
            Some(Ok(())) => (true, format!("ready: {role}{sync}")),
            Some(Err(problem)) => (false, format!("not ready ({role}): {problem}")),
            None => (
                false,
                format!("not ready ({role}): the API server was not checked yet"),
            ),
        }
    }
}

/// The resources of `partnerbilling.io/v1alpha1` a replica needs served (their plurals).
pub fn required_resources() -> Vec<String> {
    crate::crdgen::all()
        .into_iter()
        .map(|crd| crd.spec.names.plural)
        .collect()
}

/// One check: the API server answers discovery for `partnerbilling.io/v1alpha1` and serves
/// every resource in `required` (discovery needs no RBAC grant beyond authentication).
pub async fn check_api(client: &kube::Client, required: &[String]) -> Result<(), String> {
    let group_version = crate::api::API_VERSION;
    let list = match tokio::time::timeout(
        Duration::from_secs(10),
        client.list_api_group_resources(group_version),
    )
    .await
    {
        Err(_) => return Err("the API server did not answer within 10s".into()),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
            return Err(format!(
                "{group_version} is not served: install the CRDs (crds/ or the chart's)"
            ));
        }
        Ok(Err(e)) => return Err(format!("cannot reach the API server: {e}")),
        Ok(Ok(list)) => list,
    };
    let missing: Vec<&str> = required
        .iter()
        .filter(|r| !list.resources.iter().any(|s| &s.name == *r))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "CRDs not installed: {} (install crds/ or the chart's)",
            missing.join(", ")
        ))
    }
}

/// Check the API every `every`, recording the outcome in `readiness`. Runs until dropped.
pub async fn watch_api(client: kube::Client, readiness: Arc<Readiness>, every: Duration) {
    let required = required_resources();
    loop {
        let outcome = check_api(&client, &required).await;
        if let Err(problem) = &outcome {
            warn!(%problem, "not ready");
        }
        readiness.set_api(outcome);
        tokio::time::sleep(every).await;
    }
}

/// Answer one request.
pub fn respond(
    path: &str,
    readiness: &Readiness,
    sync: &SyncTracker,
    metrics: &Metrics,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" => {
            let (ready, text) = readiness.report(sync);
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, "text/plain", format!("{text}\n"))
        }
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Bind `addr` and serve until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    readiness: Arc<Readiness>,
    sync: Arc<SyncTracker>,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    info!(%addr, "serving /healthz, /readyz and /metrics");
    loop {
        let (stream, _) = listener.accept().await?;
        let readiness = readiness.clone();
        let sync = sync.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let resp = respond(req.uri().path(), &readiness, &sync, &metrics);
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                warn!(error = %e, "health connection failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(path: &str, r: &Readiness, sync: &SyncTracker) -> StatusCode {
        respond(path, r, sync, &Metrics::default()).status()
    }

    fn body(r: &Readiness, sync: &SyncTracker) -> String {
        r.report(sync).1
    }

    #[test]
    fn readiness_is_being_able_to_work_not_leading() {
        let sync = SyncTracker::default();
        let r = Readiness::default();
        assert_eq!(status("/healthz", &r, &sync), StatusCode::OK);
        assert_eq!(
            status("/readyz", &r, &sync),
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready before the API was checked"
        );

        // A standby that reaches the API server and finds the CRDs is ready: a rolling update
        // can go on.
        r.set_role(Role::Standby);
        r.set_api(Ok(()));
        assert_eq!(status("/readyz", &r, &sync), StatusCode::OK);
        assert!(body(&r, &sync).contains("standby"), "{}", body(&r, &sync));

        // The leader is ready during its first sync too (taking over must not flap readiness).
        r.set_role(Role::Leader);
        assert_eq!(status("/readyz", &r, &sync), StatusCode::OK);
        assert!(body(&r, &sync).contains("first sync in progress"));
        sync.expect(Vec::<String>::new());
        assert!(body(&r, &sync).contains("first sync complete"));

        // Losing the API server or the CRDs makes any replica unready; liveness stays.
        r.set_api(Err("CRDs not installed: payers".into()));
        assert_eq!(
            status("/readyz", &r, &sync),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(body(&r, &sync).contains("CRDs not installed: payers"));
        assert_eq!(status("/healthz", &r, &sync), StatusCode::OK);

        assert_eq!(status("/metrics", &r, &sync), StatusCode::OK);
        assert_eq!(status("/nope", &r, &sync), StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_replica_that_cannot_use_the_lease_is_not_ready() {
        let sync = SyncTracker::default();
        let r = Readiness::default();
        r.set_role(Role::Standby);
        r.set_api(Ok(()));
        assert_eq!(status("/readyz", &r, &sync), StatusCode::OK);

        // The last Lease call failed (e.g. RBAC): discovery alone does not make it ready.
        r.set_lease(Err(
            "cannot read or write the leader lease: 403 Forbidden".into()
        ));
        assert_eq!(
            status("/readyz", &r, &sync),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(
            body(&r, &sync).contains("403 Forbidden"),
            "{}",
            body(&r, &sync)
        );

        // The next Lease call succeeded (taken or seen held by the leader): ready again.
        r.set_lease(Ok(()));
        assert_eq!(status("/readyz", &r, &sync), StatusCode::OK);

        // Both must pass: a working Lease does not hide missing CRDs.
        r.set_api(Err("CRDs not installed: payers".into()));
        assert_eq!(
            status("/readyz", &r, &sync),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn every_kind_is_required() {
        let required = required_resources();
        assert_eq!(required.len(), crate::crdgen::all().len());
        assert!(required.iter().any(|r| r == "linkedaccounts"));
    }
}
