//! A billing group's cost by service: GetBillingGroupCostReport grouped by PRODUCT_NAME for
//! the current and the previous billing period, read on the Payer's insights refresh interval
//! (not on every resync: the reads are kept in `BillingGroup.status.costByService` and in the
//! insights store for Prometheus). Deciding whether a read is due and summarising it are pure;
//! a failed read keeps the last status and is not repeated before
//! [`RETRY_AFTER_FAILURE_SECS`].

use kube::ResourceExt;

use crate::api::BillingGroup;
use crate::api::billing_group::{BillingGroupStatus, CostByService, ServiceCost};
use crate::api::payer::InsightsSpec;
use crate::aws::billing::BcServiceCost;
use crate::money::Amount;
use crate::payer::insights::{
    GroupServiceCost, GroupServiceCosts, InsightsStore, RETRY_AFTER_FAILURE_SECS,
};
use crate::reconcile::reasons::COST_BY_SERVICE_UNAVAILABLE;
use crate::reconcile::run::Run;
use crate::reconcile::{Mode, ReconcileContext, object_key};
use crate::time::older_than;

use super::context::BillingContext;

/// Services listed per period in `status.costByService`.
pub const TOP_SERVICES: usize = 5;

/// What a due check reads. `in_memory`: the store holds this group's costs (false after a
/// restart, so that Prometheus gets them again).
#[derive(Clone, Debug)]
pub struct DueCheck<'a> {
    pub insights: &'a InsightsSpec,
    pub last: Option<&'a CostByService>,
    pub in_memory: bool,
    pub last_failure: Option<&'a str>,
    pub current_period: &'a str,
    pub now: &'a str,
}

/// Whether the group's cost by service is to be read now: insights on, no failure in the
/// last [`RETRY_AFTER_FAILURE_SECS`], and no read yet, none in memory, a read one refresh
/// interval old, or a read of another period. Pure.
pub fn due(check: &DueCheck<'_>) -> bool {
    if !check.insights.enabled {
        return false;
    }
    if let Some(at) = check.last_failure
        && !older_than(at, check.now, RETRY_AFTER_FAILURE_SECS)
    {
        return false;
    }
    let interval = check.insights.refresh_interval_secs().unwrap_or(6 * 3600);
    match check.last {
        None => true,
        Some(last) => {
            !check.in_memory
                || older_than(&last.refreshed_at, check.now, interval - 1)
                || last.current_period != check.current_period
        }
    }
}

/// The services of one period, highest pro forma cost first (then by name), at most
/// [`TOP_SERVICES`]; amounts AWS did not give as numbers count as zero. Pure.
pub fn top_services(rows: &[BcServiceCost]) -> Vec<ServiceCost> {
    let mut sorted: Vec<(Amount, &BcServiceCost)> = rows
        .iter()
        .map(|r| (Amount::parse(&r.proforma_cost).unwrap_or_default(), r))
        .collect();
    sorted.sort_by(|(a, x), (b, y)| b.cmp(a).then_with(|| x.service.cmp(&y.service)));
    sorted
        .into_iter()
        .take(TOP_SERVICES)
        .map(|(_, r)| ServiceCost {
            service: r.service.clone(),
            aws_cost: r.aws_cost.clone(),
            proforma_cost: r.proforma_cost.clone(),
            margin: r.margin.clone(),
        })
        .collect()
}

/// Every service of both periods, exact, for Prometheus. Pure.
pub fn metric_rows(period: &str, rows: &[BcServiceCost]) -> Vec<GroupServiceCost> {
    rows.iter()
        .map(|r| GroupServiceCost {
            period: period.to_string(),
            service: r.service.clone(),
            aws_cost: Amount::parse(&r.aws_cost).unwrap_or_default(),
            proforma_cost: Amount::parse(&r.proforma_cost).unwrap_or_default(),
        })
        .collect()
}

/// Read group `arn`'s cost by service when due (see [`due`]) and put it in `status` and the
/// insights store; drop both when the Payer's insights are off. A failed read is a warning
/// Event (`CostByServiceUnavailable`) and leaves the last status as it was (the group itself
/// is fine).
pub async fn refresh(
    obj: &BillingGroup,
    ctx: &ReconcileContext,
    billing: &BillingContext,
    arn: &str,
    run: &mut Run,
    status: &mut BillingGroupStatus,
) {
    let namespace = obj.namespace().unwrap_or_default();
    let key = object_key(&namespace, &obj.name_any());
    let store = ctx.shared::<InsightsStore>();
    let insights = ctx
        .catalog
        .get::<crate::api::Payer>(&namespace, &obj.spec.payer_ref.name)
        .and_then(|p| p.spec.insights.clone())
        .unwrap_or_default();
    if !insights.enabled {
        status.cost_by_service = None;
        store.set_group_services(&key, None);
        return;
    }
    let (current, previous) = (
        billing.snapshot.current_period.clone(),
        billing.snapshot.previous_period.clone(),
    );
    let last_failure = store.group_services_attempt(&key);
    let check = DueCheck {
        insights: &insights,
        last: status.cost_by_service.as_ref(),
        in_memory: store.has_group_services(&key),
        last_failure: last_failure.as_deref(),
        current_period: &current,
        now: run.timestamp(),
    };
    // A group only planned has no costs; plan mode reads nothing more than it must.
    if run.mode() == Mode::Plan || !due(&check) {
        return;
    }
    let api = billing.api();
    let read = async {
        let now = api.cost_by_service(arn, &current).await?;
        let before = api.cost_by_service(arn, &previous).await?;
        Ok::<_, crate::error::Error>((now, before))
    };
    match read.await {
        Ok((now, before)) => {
            status.cost_by_service = Some(CostByService {
                refreshed_at: run.timestamp().to_string(),
                current_period: current.clone(),
                current: top_services(&now),
                previous_period: previous.clone(),
                previous: top_services(&before),
            });
            let mut services = metric_rows(&current, &now);
            services.extend(metric_rows(&previous, &before));
            let payer = object_key(&namespace, &obj.spec.payer_ref.name);
            store.set_group_services(&key, Some(GroupServiceCosts { payer, services }));
        }
        Err(e) => {
            tracing::warn!(billing_group = %key, error = %e, "reading the cost by service failed; the last one is kept");
            store.group_services_failed(&key, run.timestamp());
            run.event(
                true,
                COST_BY_SERVICE_UNAVAILABLE,
                format!(
                    "GetBillingGroupCostReport failed, tried again in {} minutes; the last figures are kept: {e}",
                    RETRY_AFTER_FAILURE_SECS / 60
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(service: &str, aws: &str, proforma: &str) -> BcServiceCost {
        BcServiceCost {
            service: service.into(),
            aws_cost: aws.into(),
            proforma_cost: proforma.into(),
            margin: String::new(),
            currency: "USD".into(),
        }
    }

    #[test]
    fn the_top_services_are_the_five_highest_billed_exactly() {
        let rows: Vec<BcServiceCost> = [
            ("A", "1.10", "1.21"),
            ("B", "300.00", "330.00"),
            ("C", "0.01", "0.01"),
            ("D", "20.00", "22.00"),
            ("E", "20.00", "22.00"),
            ("F", "5.00", "5.50"),
        ]
        .iter()
        .map(|(s, a, p)| row(s, a, p))
        .collect();
        let top = top_services(&rows);
        let names: Vec<&str> = top.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["B", "D", "E", "F", "A"]);
        assert_eq!(top[0].proforma_cost, "330.00");
        let metrics = metric_rows("2026-11", &rows);
        let total: Amount = metrics.iter().map(|m| m.proforma_cost).sum();
        assert_eq!(total.to_cents(), "380.72");
    }

    #[test]
    fn a_read_is_due_by_interval_period_restart_and_not_right_after_a_failure() {
        let on: InsightsSpec =
            serde_json::from_value(serde_json::json!({"enabled": true, "refreshInterval": "6h"}))
                .unwrap();
        let last = CostByService {
            refreshed_at: "2026-11-24T06:00:00Z".into(),
            current_period: "2026-11".into(),
            ..Default::default()
        };
        let check = |now: &'static str, last: Option<&'static CostByService>| DueCheck {
            insights: Box::leak(Box::new(on.clone())),
            last,
            in_memory: true,
            last_failure: None,
            current_period: "2026-11",
            now,
        };
        let last: &'static CostByService = Box::leak(Box::new(last));
        assert!(due(&check("2026-11-24T07:00:00Z", None)));
        assert!(!due(&check("2026-11-24T07:00:00Z", Some(last))));
        assert!(due(&check("2026-11-24T12:00:00Z", Some(last))));
        let restarted = DueCheck {
            in_memory: false,
            ..check("2026-11-24T07:00:00Z", Some(last))
        };
        assert!(due(&restarted));
        let new_month = DueCheck {
            current_period: "2026-12",
            ..check("2026-11-24T07:00:00Z", Some(last))
        };
        assert!(due(&new_month));
        let failed = DueCheck {
            last_failure: Some("2026-11-24T11:55:00Z"),
            ..check("2026-11-24T12:00:00Z", Some(last))
        };
        assert!(!due(&failed));
        let off = InsightsSpec::default();
        let disabled = DueCheck {
            insights: &off,
            ..check("2026-11-24T12:00:00Z", None)
        };
        assert!(!due(&disabled));
    }
}
