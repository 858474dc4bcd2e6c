//! Prometheus metrics: reconciles by kind, AWS calls by service, operation and outcome.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: String,
    pub class: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    pub service: String,
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantChangeLabels {
    /// `applied` or `deleted`.
    pub change: String,
}

/// All metrics the operator exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<KindLabels, Counter>,
    pub failures: Family<FailureLabels, Counter>,
    pub durations: Family<KindLabels, Histogram>,
    pub aws_calls: Family<AwsCallLabels, Counter>,
    pub ready: Gauge,
    /// Payers refused for want of a PayerGrant, by namespace.
    pub grant_refusals: Family<NamespaceLabels, Counter>,
    /// PayerGrants applied (created or changed) and deleted.
    pub grant_changes: Family<GrantChangeLabels, Counter>,
    /// Costs and margins exposed on every scrape (filled by the reconcilers).
    pub insights: Arc<crate::payer::insights::InsightsStore>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("partnerbilling");
        let reconciles = Family::<KindLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let durations = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 14))
        });
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        let ready = Gauge::default();
        let grant_refusals = Family::<NamespaceLabels, Counter>::default();
        let grant_changes = Family::<GrantChangeLabels, Counter>::default();
        registry.register(
            "grant_refusals",
            "Reconciles refused because no PayerGrant lets the object's Payer use the operator's AWS identity (reason NotGranted), by namespace",
            grant_refusals.clone(),
        );
        registry.register(
            "grant_changes",
            "PayerGrants applied (created or changed) and deleted, as the operator saw them",
            grant_changes.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles started, by kind",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that ended in an error, by kind, error class and reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile, by kind",
            durations.clone(),
        );
        registry.register(
            "aws_calls",
            "AWS API attempts, by service, operation and outcome (success, throttled, client_error, server_error, transport_error)",
            aws_calls.clone(),
        );
        registry.register(
            "ready",
            "1 once the first full sync has completed",
            ready.clone(),
        );
        let insights = Arc::new(crate::payer::insights::InsightsStore::default());
        registry.register_collector(Box::new(crate::payer::insights::CostCollector {
            store: insights.clone(),
        }));
        Self {
            registry,
            insights,
            reconciles,
            failures,
            durations,
            aws_calls,
            ready,
            grant_refusals,
            grant_changes,
        }
    }
}

impl Metrics {
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn reconcile_started(&self, kind: &str) {
        self.reconciles
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    pub fn reconcile_finished(&self, kind: &str, took: Duration) {
        self.durations
            .get_or_create(&KindLabels { kind: kind.into() })
            .observe(took.as_secs_f64());
    }

    pub fn reconcile_failed(&self, kind: &str, class: &str, reason: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                kind: kind.into(),
                class: class.into(),
                reason: reason.into(),
            })
            .inc();
    }

    pub fn aws_call(&self, service: &str, operation: &str, outcome: &str) {
        self.aws_calls
            .get_or_create(&AwsCallLabels {
                service: service.into(),
                operation: operation.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Number of AWS attempts recorded with these labels.
    pub fn aws_call_count(&self, service: &str, operation: &str, outcome: &str) -> u64 {
        self.aws_calls
            .get_or_create(&AwsCallLabels {
                service: service.into(),
                operation: operation.into(),
                outcome: outcome.into(),
            })
            .get()
    }

    /// A Payer (or an object of it) in `namespace` was refused for want of a PayerGrant.
    pub fn grant_refused(&self, namespace: &str) {
        self.grant_refusals
            .get_or_create(&NamespaceLabels {
                namespace: namespace.into(),
            })
            .inc();
    }

    /// Refusals counted in `namespace`.
    pub fn grant_refusal_count(&self, namespace: &str) -> u64 {
        self.grant_refusals
            .get_or_create(&NamespaceLabels {
                namespace: namespace.into(),
            })
            .get()
    }

    /// A PayerGrant was `applied` or `deleted`.
    pub fn grant_changed(&self, change: &str) {
        self.grant_changes
            .get_or_create(&GrantChangeLabels {
                change: change.into(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_reconcile_and_aws_metrics() {
        let m = Metrics::default();
        m.reconcile_started("Payer");
        m.reconcile_failed("Payer", "terminal", "AccountMismatch");
        m.reconcile_finished("Payer", Duration::from_millis(30));
        m.aws_call("organizations", "ListAccounts", "throttled");
        let text = m.encode();
        assert!(
            text.contains("partnerbilling_reconciles_total{kind=\"Payer\"} 1"),
            "{text}"
        );
        assert!(text.contains("reason=\"AccountMismatch\""), "{text}");
        assert!(text.contains("partnerbilling_aws_calls_total{service=\"organizations\",operation=\"ListAccounts\",outcome=\"throttled\"} 1"), "{text}");
        assert!(
            text.contains("partnerbilling_reconcile_duration_seconds_count{kind=\"Payer\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn exposes_grant_refusals_and_changes() {
        let m = Metrics::default();
        m.grant_refused("acme");
        m.grant_refused("acme");
        m.grant_changed("deleted");
        assert_eq!(m.grant_refusal_count("acme"), 2);
        let text = m.encode();
        assert!(
            text.contains("partnerbilling_grant_refusals_total{namespace=\"acme\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("partnerbilling_grant_changes_total{change=\"deleted\"} 1"),
            "{text}"
        );
    }
}
