//! Cost insights: one Cost Explorer read per payer and refresh interval (GetCostAndUsage,
//! monthly unblended cost grouped by linked account and service), summarised into
//! `Payer.status.costs`, `LinkedAccount.status.cost` and Prometheus series; plus the billing
//! groups' AWS cost, pro forma cost and margin for Prometheus, and each billing group's cost
//! by service (read by the BillingGroup reconciler on the same refresh interval, kept here
//! for Prometheus).
//!
//! All arithmetic is exact ([`Amount`]). Summaries are pure and unit-tested; the store keeps
//! the last read per payer in memory for the LinkedAccount reconciler and the metrics.
//!
//! [`CostCollector`], the Prometheus view of the store, lives here rather than next to
//! `metrics.rs`: it reads the store's private snapshot and the summaries' month totals, so it
//! belongs with the data it encodes; `metrics.rs` only registers it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::jiff::Timestamp;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::api::linked_account::AccountCost;
use crate::api::payer::{InsightsSpec, MonthCost, PayerCosts, ServiceCost};
use crate::aws::costs::{CostApi, CostRow};
use crate::error::Error;
use crate::money::Amount;
use crate::reconcile::reasons;
use crate::time::{billing_period, next_day, older_than, previous_period, unix_seconds};

/// Services listed in `Payer.status.costs.topServices`.
pub const TOP_SERVICES: usize = 5;
/// A failed read is retried after this long at the earliest (each request costs money).
pub const RETRY_AFTER_FAILURE_SECS: i64 = 900;

/// One payer's costs, summarised from one read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostSummary {
    pub currency: String,
    /// The current month, `YYYY-MM`.
    pub month: String,
    pub previous_month: String,
    /// Total per month, oldest first (every month asked for, zero when AWS had no rows).
    pub totals: BTreeMap<String, Amount>,
    /// (month, account) -> cost.
    pub by_account: BTreeMap<(String, String), Amount>,
    /// (month, service) -> cost.
    pub by_service: BTreeMap<(String, String), Amount>,
}

impl CostSummary {
    /// Summarise rows of GetCostAndUsage for `months` (oldest first; the last is current).
    pub fn from_rows(rows: &[CostRow], months: &[String]) -> CostSummary {
        let month = months.last().cloned().unwrap_or_default();
        let previous_month = previous_period(&month);
        let mut summary = CostSummary {
            currency: rows
                .iter()
                .map(|r| r.unit.clone())
                .find(|u| !u.is_empty())
                .unwrap_or_else(|| "USD".to_string()),
            month,
            previous_month,
            totals: months.iter().map(|m| (m.clone(), Amount::ZERO)).collect(),
            ..Default::default()
        };
        for row in rows {
            let Some(amount) = Amount::parse(&row.amount) else {
                continue;
            };
            *summary.totals.entry(row.month.clone()).or_default() += amount;
            *summary
                .by_account
                .entry((row.month.clone(), row.account_id.clone()))
                .or_default() += amount;
            *summary
                .by_service
                .entry((row.month.clone(), row.service.clone()))
                .or_default() += amount;
        }
        summary
    }

    fn total(&self, month: &str) -> Amount {
        self.totals.get(month).copied().unwrap_or_default()
    }

    /// An account's cost this month and last.
    pub fn account(&self, account_id: &str, as_of: &str) -> AccountCost {
        let get = |m: &str| {
            self.by_account
                .get(&(m.to_string(), account_id.to_string()))
                .copied()
                .unwrap_or_default()
        };
        let mtd = get(&self.month);
        let prev = get(&self.previous_month);
        AccountCost {
            month: self.month.clone(),
            month_to_date: mtd.to_cents(),
            previous_month: prev.to_cents(),
            month_over_month_percent: mtd.change_from(prev),
            currency: self.currency.clone(),
            as_of: as_of.to_string(),
        }
    }

    /// The Payer's status block.
    pub fn payer_costs(&self, refreshed_at: &str, requests: u32, interval_secs: i64) -> PayerCosts {
        let mtd = self.total(&self.month);
        let prev = self.total(&self.previous_month);
        let mut services: Vec<(&String, Amount)> = self
            .by_service
            .iter()
            .filter(|((m, _), _)| *m == self.month)
            .map(|((_, s), a)| (s, *a))
            .collect();
        // Most expensive first; ties by name so the list is stable.
        services.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let requests_per_month = requests_per_month(requests, interval_secs);
        PayerCosts {
            refreshed_at: refreshed_at.to_string(),
            currency: self.currency.clone(),
            month: self.month.clone(),
            month_to_date: mtd.to_cents(),
            previous_month: prev.to_cents(),
            month_over_month_percent: mtd.change_from(prev),
            top_services: services
                .into_iter()
                .take(TOP_SERVICES)
                .map(|(s, a)| ServiceCost {
                    service: s.clone(),
                    month_to_date: a.to_cents(),
                    share_percent: a.percent_of(mtd).unwrap_or_else(|| "0.00".to_string()),
                })
                .collect(),
            months: self
                .totals
                .iter()
                .map(|(m, a)| MonthCost {
                    month: m.clone(),
                    total: a.to_cents(),
                })
                .collect(),
            requests_per_refresh: requests,
            requests_per_month,
            estimated_monthly_cost_usd: monthly_cost_usd(requests_per_month),
        }
    }
}

/// Requests a 30-day month makes at one refresh per `interval_secs`, `requests` each.
pub fn requests_per_month(requests: u32, interval_secs: i64) -> u32 {
    let month = 30 * 86_400;
    let refreshes = (month + interval_secs - 1) / interval_secs.max(1);
    (refreshes as u32).saturating_mul(requests.max(1))
}

/// USD for `requests` Cost Explorer requests.
pub fn monthly_cost_usd(requests: u32) -> String {
    // USD 0.01 each: the count is the amount in cents.
    format!("{}.{:02}", requests / 100, requests % 100)
}

/// The months read, oldest first, ending with the month of `now` (UTC).
pub fn months_back(now: Timestamp, count: u32) -> Vec<String> {
    let mut months = vec![billing_period(&now.to_string())];
    while months.len() < count.max(1) as usize {
        let oldest = previous_period(months.last().map(String::as_str).unwrap_or_default());
        months.push(oldest);
    }
    months.reverse();
    months
}

/// Whether a read is due. Pure.
pub fn refresh_due(
    spec: &InsightsSpec,
    status: Option<&PayerCosts>,
    in_memory: bool,
    last_attempt: Option<&str>,
    now: &str,
) -> bool {
    if !spec.enabled {
        return false;
    }
    if let Some(attempt) = last_attempt
        && !older_than(attempt, now, RETRY_AFTER_FAILURE_SECS)
    {
        return false;
    }
    let interval = spec.refresh_interval_secs().unwrap_or(6 * 3600);
    match status {
        None => true,
        Some(costs) => {
            !in_memory
                // older_than is strict: a read exactly one interval old is due.
                || older_than(&costs.refreshed_at, now, interval - 1)
                || costs.months.len() != spec.months_of_history() as usize
                || costs.month != billing_period(now)
        }
    }
}

/// The last read of one payer.
#[derive(Clone, Debug)]
pub struct PayerRead {
    /// `namespace/name` of the Payer.
    pub payer: String,
    pub account_id: String,
    pub refreshed_at: String,
    pub summary: CostSummary,
}

/// A billing group's cost in the current period, for Prometheus.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupCost {
    pub payer: String,
    pub period: String,
    pub currency: String,
    pub aws_cost: Amount,
    pub proforma_cost: Amount,
    pub margin: Amount,
}

/// One service's cost in a billing group for one period, for Prometheus.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupServiceCost {
    pub period: String,
    pub service: String,
    pub aws_cost: Amount,
    pub proforma_cost: Amount,
}

/// A billing group's cost by service (current and previous period), for Prometheus.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupServiceCosts {
    pub payer: String,
    pub services: Vec<GroupServiceCost>,
}

/// What the insights keep in memory: the last read per payer, the attempts, and the billing
/// groups' costs. Shared by the Payer, LinkedAccount and BillingGroup reconcilers and the
/// metrics endpoint.
#[derive(Debug, Default)]
pub struct InsightsStore {
    /// Shared, not copied: every LinkedAccount reconcile and every scrape reads them.
    reads: Mutex<HashMap<String, Arc<PayerRead>>>,
    attempts: Mutex<HashMap<String, String>>,
    groups: Mutex<BTreeMap<String, GroupCost>>,
    /// Cost by service per billing group (`namespace/name`).
    group_services: Mutex<BTreeMap<String, GroupServiceCosts>>,
    /// When a billing group's cost by service was last attempted and failed.
    group_service_attempts: Mutex<HashMap<String, String>>,
}

impl InsightsStore {
    pub fn read(&self, payer: &str) -> Option<Arc<PayerRead>> {
        lock(&self.reads).get(payer).cloned()
    }

    pub fn has_read(&self, payer: &str) -> bool {
        lock(&self.reads).contains_key(payer)
    }

    pub fn last_attempt(&self, payer: &str) -> Option<String> {
        lock(&self.attempts).get(payer).cloned()
    }

    pub fn forget(&self, payer: &str) {
        lock(&self.reads).remove(payer);
        lock(&self.attempts).remove(payer);
    }

    /// Record a billing group's current cost (`group` = `namespace/name`).
    pub fn set_group(&self, group: &str, cost: Option<GroupCost>) {
        match cost {
            Some(c) => lock(&self.groups).insert(group.to_string(), c),
            None => lock(&self.groups).remove(group),
        };
    }

    /// Record a billing group's cost by service (`group` = `namespace/name`); `None` forgets
    /// it (insights turned off, group deleted).
    pub fn set_group_services(&self, group: &str, costs: Option<GroupServiceCosts>) {
        lock(&self.group_service_attempts).remove(group);
        match costs {
            Some(c) => lock(&self.group_services).insert(group.to_string(), c),
            None => lock(&self.group_services).remove(group),
        };
    }

    /// Whether a billing group's cost by service is held in memory (after a restart it is
    /// not, and is read again so that Prometheus has it).
    pub fn has_group_services(&self, group: &str) -> bool {
        lock(&self.group_services).contains_key(group)
    }

    /// Record a failed read of a billing group's cost by service at `now`.
    pub fn group_services_failed(&self, group: &str, now: &str) {
        lock(&self.group_service_attempts).insert(group.to_string(), now.to_string());
    }

    /// When the last failed read of a billing group's cost by service was.
    pub fn group_services_attempt(&self, group: &str) -> Option<String> {
        lock(&self.group_service_attempts).get(group).cloned()
    }

    /// Read Cost Explorer for one payer and keep the result. Records the attempt first, so a
    /// failing read is not repeated before [`RETRY_AFTER_FAILURE_SECS`].
    pub async fn refresh(
        &self,
        payer: &str,
        account_id: &str,
        spec: &InsightsSpec,
        costs: &dyn CostApi,
        now: &str,
    ) -> Result<PayerCosts, Error> {
        lock(&self.attempts).insert(payer.to_string(), now.to_string());
        let invalid = || {
            Error::terminal(
                reasons::INVALID_TIME,
                format!("cannot read the time {now:?}"),
            )
        };
        let at: Timestamp = now.parse().map_err(|_| invalid())?;
        let months = months_back(at, spec.months_of_history());
        let start = format!("{}-01", months[0]);
        let end = next_day(now).ok_or_else(invalid)?;
        let query = costs.monthly_costs(&start, &end).await?;
        let summary = CostSummary::from_rows(&query.rows, &months);
        let status = summary.payer_costs(
            now,
            query.requests,
            spec.refresh_interval_secs().unwrap_or(6 * 3600),
        );
        lock(&self.attempts).remove(payer);
        lock(&self.reads).insert(
            payer.to_string(),
            Arc::new(PayerRead {
                payer: payer.to_string(),
                account_id: account_id.to_string(),
                refreshed_at: now.to_string(),
                summary,
            }),
        );
        Ok(status)
    }

    fn snapshot(&self) -> (Vec<Arc<PayerRead>>, Vec<(String, GroupCost)>) {
        let reads = lock(&self.reads).values().cloned().collect();
        let groups = lock(&self.groups)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (reads, groups)
    }

    fn group_services_snapshot(&self) -> Vec<(String, GroupServiceCosts)> {
        lock(&self.group_services)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Exposes the store as Prometheus gauges on every scrape.
#[derive(Debug)]
pub struct CostCollector {
    pub store: Arc<InsightsStore>,
}

type Labels = Vec<(&'static str, String)>;

fn gauge_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        let family = metric.encode_family(labels)?;
        ConstGauge::new(*value).encode(family)?;
    }
    Ok(())
}

/// The payers' gauge series, one list per family.
#[derive(Default)]
struct PayerSeries {
    totals: Vec<(Labels, f64)>,
    accounts: Vec<(Labels, f64)>,
    services: Vec<(Labels, f64)>,
    changes: Vec<(Labels, f64)>,
    ages: Vec<(Labels, f64)>,
}

impl PayerSeries {
    /// Add the series of one payer's read (`now` in Unix seconds, for the read's age).
    fn add(&mut self, read: &PayerRead, now: i64) {
        let s = &read.summary;
        let base = |extra: Labels| -> Labels {
            let mut l = vec![
                ("payer", read.payer.clone()),
                ("payer_account", read.account_id.clone()),
            ];
            l.extend(extra);
            l
        };
        for (month, amount) in &s.totals {
            self.totals
                .push((base(vec![("month", month.clone())]), amount.to_f64()));
        }
        for ((month, account), amount) in &s.by_account {
            self.accounts.push((
                base(vec![("month", month.clone()), ("account", account.clone())]),
                amount.to_f64(),
            ));
        }
        for ((month, service), amount) in &s.by_service {
            self.services.push((
                base(vec![("month", month.clone()), ("service", service.clone())]),
                amount.to_f64(),
            ));
        }
        let mtd = s.total(&s.month);
        if let Some(change) = mtd
            .change_from(s.total(&s.previous_month))
            .and_then(|c| c.parse::<f64>().ok())
        {
            self.changes.push((base(vec![]), change));
        }
        if let Some(at) = unix_seconds(&read.refreshed_at) {
            self.ages.push((base(vec![]), (now - at).max(0) as f64));
        }
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge_family(
            encoder,
            "cost_usd",
            "Unblended cost of the organization per month (Cost Explorer)",
            &self.totals,
        )?;
        gauge_family(
            encoder,
            "account_cost_usd",
            "Unblended cost per linked account and month (Cost Explorer)",
            &self.accounts,
        )?;
        gauge_family(
            encoder,
            "service_cost_usd",
            "Unblended cost per service and month (Cost Explorer)",
            &self.services,
        )?;
        gauge_family(
            encoder,
            "cost_month_over_month_percent",
            "Month-to-date cost against the whole previous month, in percent",
            &self.changes,
        )?;
        gauge_family(
            encoder,
            "cost_refresh_age_seconds",
            "Seconds since Cost Explorer was last read for the payer",
            &self.ages,
        )
    }
}

/// The billing groups' gauge families: AWS cost, pro forma cost, margin.
fn encode_groups(
    encoder: &mut DescriptorEncoder,
    groups: &[(String, GroupCost)],
) -> Result<(), std::fmt::Error> {
    let mut aws = Vec::new();
    let mut proforma = Vec::new();
    let mut margin = Vec::new();
    for (group, c) in groups {
        let labels: Labels = vec![
            ("billing_group", group.clone()),
            ("payer", c.payer.clone()),
            ("period", c.period.clone()),
        ];
        aws.push((labels.clone(), c.aws_cost.to_f64()));
        proforma.push((labels.clone(), c.proforma_cost.to_f64()));
        margin.push((labels, c.margin.to_f64()));
    }
    gauge_family(
        encoder,
        "billing_group_aws_cost_usd",
        "What AWS charges for a billing group's accounts in the current period",
        &aws,
    )?;
    gauge_family(
        encoder,
        "billing_group_proforma_cost_usd",
        "What the customer is billed (pro forma cost) in the current period",
        &proforma,
    )?;
    gauge_family(
        encoder,
        "billing_group_margin_usd",
        "Pro forma cost minus AWS cost in the current period",
        &margin,
    )
}

/// The billing groups' cost by service: AWS cost and pro forma cost per group, service and
/// period.
fn encode_group_services(
    encoder: &mut DescriptorEncoder,
    groups: &[(String, GroupServiceCosts)],
) -> Result<(), std::fmt::Error> {
    let mut aws = Vec::new();
    let mut proforma = Vec::new();
    for (group, costs) in groups {
        for c in &costs.services {
            let labels: Labels = vec![
                ("billing_group", group.clone()),
                ("payer", costs.payer.clone()),
                ("period", c.period.clone()),
                ("service", c.service.clone()),
            ];
            aws.push((labels.clone(), c.aws_cost.to_f64()));
            proforma.push((labels, c.proforma_cost.to_f64()));
        }
    }
    gauge_family(
        encoder,
        "billing_group_service_aws_cost_usd",
        "What AWS charges for a service in a billing group, per billing period",
        &aws,
    )?;
    gauge_family(
        encoder,
        "billing_group_service_proforma_cost_usd",
        "What the customer is billed (pro forma cost) for a service, per billing period",
        &proforma,
    )
}

impl Collector for CostCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (reads, groups) = self.store.snapshot();
        let now = unix_seconds(&crate::time::now_rfc3339()).unwrap_or_default();
        let mut payers = PayerSeries::default();
        for read in &reads {
            payers.add(read, now);
        }
        payers.encode(&mut encoder)?;
        encode_groups(&mut encoder, &groups)?;
        encode_group_services(&mut encoder, &self.store.group_services_snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(month: &str, account: &str, service: &str, amount: &str) -> CostRow {
        CostRow {
            month: month.into(),
            account_id: account.into(),
            service: service.into(),
            amount: amount.into(),
            unit: "USD".into(),
            estimated: false,
        }
    }

    fn rows() -> Vec<CostRow> {
        vec![
            row("2026-10", "111111111111", "Amazon EC2", "100.10"),
            row("2026-10", "222222222222", "Amazon S3", "0.20"),
            row("2026-11", "111111111111", "Amazon EC2", "80.05"),
            row("2026-11", "111111111111", "Amazon S3", "0.10"),
            row("2026-11", "222222222222", "Amazon S3", "0.20"),
            row("2026-11", "222222222222", "AWS Lambda", "30.0000000001"),
        ]
    }

    #[test]
    fn totals_month_over_month_and_top_services_are_exact() {
        let months = months_back("2026-11-24T10:00:00Z".parse().unwrap(), 3);
        assert_eq!(months, ["2026-09", "2026-10", "2026-11"]);
        let s = CostSummary::from_rows(&rows(), &months);
        let c = s.payer_costs("2026-11-24T10:00:00Z", 1, 6 * 3600);
        assert_eq!(c.month_to_date, "110.35");
        assert_eq!(c.previous_month, "100.30");
        // (110.3500000001 - 100.30) / 100.30 = 10.0199...%
        assert_eq!(c.month_over_month_percent.as_deref(), Some("10.02"));
        assert_eq!(
            c.months,
            vec![
                MonthCost {
                    month: "2026-09".into(),
                    total: "0.00".into()
                },
                MonthCost {
                    month: "2026-10".into(),
                    total: "100.30".into()
                },
                MonthCost {
                    month: "2026-11".into(),
                    total: "110.35".into()
                },
            ]
        );
        let top: Vec<(&str, &str, &str)> = c
            .top_services
            .iter()
            .map(|s| {
                (
                    s.service.as_str(),
                    s.month_to_date.as_str(),
                    s.share_percent.as_str(),
                )
            })
            .collect();
        assert_eq!(
            top,
            [
                ("Amazon EC2", "80.05", "72.54"),
                ("AWS Lambda", "30.00", "27.19"),
                ("Amazon S3", "0.30", "0.27"),
            ]
        );
        assert_eq!(c.requests_per_month, 120);
        assert_eq!(c.estimated_monthly_cost_usd, "1.20");
        let a = s.account("222222222222", "t");
        assert_eq!(a.month_to_date, "30.20");
        assert_eq!(a.previous_month, "0.20");
        assert_eq!(a.month_over_month_percent.as_deref(), Some("15000.00"));
        let none = s.account("999999999999", "t");
        assert_eq!(none.month_to_date, "0.00");
        assert_eq!(none.month_over_month_percent, None);
    }

    #[test]
    fn refresh_is_due_by_interval_months_and_failures() {
        let spec = InsightsSpec {
            enabled: true,
            refresh_interval: Some("6h".into()),
            months_of_history: Some(3),
        };
        let costs = PayerCosts {
            refreshed_at: "2026-11-24T10:00:00Z".into(),
            month: "2026-11".into(),
            months: vec![MonthCost::default(); 3],
            ..Default::default()
        };
        let at = |t: &str| format!("2026-11-24T{t}Z");
        assert!(refresh_due(&spec, None, false, None, &at("10:00:00")));
        assert!(!refresh_due(
            &spec,
            Some(&costs),
            true,
            None,
            &at("15:59:00")
        ));
        assert!(refresh_due(
            &spec,
            Some(&costs),
            true,
            None,
            &at("16:00:00")
        ));
        assert!(
            refresh_due(&spec, Some(&costs), false, None, &at("11:00:00")),
            "nothing in memory"
        );
        assert!(
            !refresh_due(
                &spec,
                Some(&costs),
                false,
                Some(&at("10:50:00")),
                &at("11:00:00")
            ),
            "failed 10 min ago"
        );
        let five = InsightsSpec {
            months_of_history: Some(5),
            ..spec.clone()
        };
        assert!(
            refresh_due(&five, Some(&costs), true, None, &at("11:00:00")),
            "months changed"
        );
        let off = InsightsSpec {
            enabled: false,
            ..spec
        };
        assert!(!refresh_due(&off, None, false, None, &at("11:00:00")));
    }

    #[test]
    fn intervals_and_request_costs() {
        let spec = |i: &str| InsightsSpec {
            enabled: true,
            refresh_interval: Some(i.into()),
            months_of_history: None,
        };
        assert_eq!(spec("90m").refresh_interval_secs(), Some(5400));
        assert_eq!(spec("1d").refresh_interval_secs(), Some(86_400));
        assert_eq!(spec("30m").refresh_interval_secs(), None);
        assert_eq!(requests_per_month(2, 86_400), 60);
        assert_eq!(monthly_cost_usd(60), "0.60");
    }
}
