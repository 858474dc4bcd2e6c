//! An SDK interceptor that counts every AWS attempt by service, operation and outcome.

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::metrics::Metrics;

/// Counts attempts (so retries of throttled calls are visible) into [`Metrics::aws_calls`].
#[derive(Debug, Clone)]
pub struct CallMetrics {
    metrics: Arc<Metrics>,
}

impl CallMetrics {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
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
