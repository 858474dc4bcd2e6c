//! An SDK interceptor that counts every AWS attempt by service, operation and outcome (and,
//! for tests and benchmarks, can log each request: [`RequestLog`]).

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::metrics::Metrics;

/// Counts attempts (so retries of throttled calls are visible) into [`Metrics::aws_calls`].
#[derive(Debug, Clone)]
pub struct CallMetrics {
    metrics: Arc<Metrics>,
    log: Option<Arc<RequestLog>>,
}

impl CallMetrics {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics, log: None }
    }

    /// Also record every attempt into `log`.
    pub fn with_log(mut self, log: Option<Arc<RequestLog>>) -> Self {
        self.log = log;
        self
    }
}

/// One AWS request as sent: service, operation, and what tells two requests of the same
/// operation apart (the URI and the body, e.g. a ParentId or a NextToken).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoggedRequest {
    pub service: String,
    pub operation: String,
    pub request: String,
}

/// Every request the SDK clients of a connector sent (tests and benchmarks: which list page
/// was read twice). Never enabled by the operator itself: bodies may hold names and tags.
#[derive(Debug, Default)]
pub struct RequestLog {
    requests: std::sync::Mutex<Vec<LoggedRequest>>,
}

impl RequestLog {
    /// The requests logged so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forget the requests logged so far.
    pub fn clear(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The `List*` requests sent more than once with the same URI and body (the same page of
    /// the same list read again), with how many times each was sent.
    pub fn repeated_listings(&self) -> Vec<(LoggedRequest, usize)> {
        let mut seen = std::collections::BTreeMap::<LoggedRequest, usize>::new();
        for r in self.requests() {
            if r.operation.starts_with("List") {
                *seen.entry(r).or_default() += 1;
            }
        }
        seen.into_iter().filter(|(_, n)| *n > 1).collect()
    }

    fn push(&self, request: LoggedRequest) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request);
    }
}

/// Outcome label of one attempt from its HTTP status and (for errors) the start of its body.
pub fn outcome(status: Option<u16>, body: Option<&[u8]>) -> &'static str {
    match status {
        None => "transport_error",
        Some(s) if s < 400 => "success",
        Some(429) => "throttled",
        Some(s) if s >= 500 => "server_error",
        Some(_) => {
            let head = body
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(512)]).to_string())
                .unwrap_or_default();
            if head.contains("Throttl")
                || head.contains("TooManyRequests")
                || head.contains("RequestLimitExceeded")
            {
                "throttled"
            } else {
                "client_error"
            }
        }
    }
}

impl Intercept for CallMetrics {
    fn name(&self) -> &'static str {
        "PartnerBillingCallMetrics"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(log) = &self.log else {
            return Ok(());
        };
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_lowercase(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let request = context.request();
        let sent = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        log.push(LoggedRequest {
            service,
            operation,
            request: format!("{} {sent}", request.uri()),
        });
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_lowercase(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let response = context.response();
        let status = response.map(|r| r.status().as_u16());
        let body = response.and_then(|r| r.body().bytes());
        self.metrics
            .aws_call(&service, &operation, outcome(status, body));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::outcome;

    #[test]
    fn outcomes() {
        assert_eq!(outcome(Some(200), None), "success");
        assert_eq!(
            outcome(Some(400), Some(br#"{"__type":"TooManyRequestsException"}"#)),
            "throttled"
        );
        assert_eq!(
            outcome(Some(400), Some(b"<Code>Throttling</Code>")),
            "throttled"
        );
        assert_eq!(
            outcome(Some(400), Some(b"{\"__type\":\"InvalidInputException\"}")),
            "client_error"
        );
        assert_eq!(outcome(Some(503), None), "server_error");
        assert_eq!(outcome(None, None), "transport_error");
    }
}
