//! The operator's HTTP endpoints: `/healthz`, `/readyz` (after the first full sync) and
//! Prometheus `/metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::SyncTracker;
use crate::metrics::Metrics;

/// Answer one request.
pub fn respond(path: &str, sync: &SyncTracker, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" if sync.is_ready() => (StatusCode::OK, "text/plain", "ready\n".to_string()),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "first sync not complete\n".to_string(),
        ),
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
    sync: Arc<SyncTracker>,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    info!(%addr, "serving /healthz, /readyz and /metrics");
    loop {
        let (stream, _) = listener.accept().await?;
        let sync = sync.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let resp = respond(req.uri().path(), &sync, &metrics);
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

    #[test]
    fn readiness_follows_first_sync() {
        let sync = SyncTracker::default();
        let metrics = Metrics::default();
        assert_eq!(
            respond("/healthz", &sync, &metrics).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond("/readyz", &sync, &metrics).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        sync.expect(Vec::<String>::new());
        assert_eq!(respond("/readyz", &sync, &metrics).status(), StatusCode::OK);
        assert_eq!(
            respond("/metrics", &sync, &metrics).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond("/nope", &sync, &metrics).status(),
            StatusCode::NOT_FOUND
        );
    }
}
