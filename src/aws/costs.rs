//! Cost Explorer: monthly unblended cost by linked account and service. Always us-east-1.
//! Every request costs USD 0.01, so callers poll rarely (see `payer::insights`). Reads only:
//! nothing here writes to AWS.

use async_trait::async_trait;
use aws_sdk_costexplorer::types::{DateInterval, GroupDefinition, GroupDefinitionType};

use crate::error::Error;
use crate::reconcile::reasons;

/// The metric read.
pub const METRIC: &str = "UnblendedCost";

/// One (month, account, service) cell of GetCostAndUsage grouped by LINKED_ACCOUNT and SERVICE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostRow {
    /// `YYYY-MM`.
    pub month: String,
    pub account_id: String,
    pub service: String,
    /// Decimal string as AWS sent it.
    pub amount: String,
    pub unit: String,
    /// AWS marks the open month as estimated.
    pub estimated: bool,
}

/// What one refresh read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CostQuery {
    pub rows: Vec<CostRow>,
    /// GetCostAndUsage requests made (one per page), each billed USD 0.01.
    pub requests: u32,
}

#[async_trait]
pub trait CostApi: Send + Sync {
    /// Monthly unblended cost from `start` (inclusive, `YYYY-MM-DD`) to `end` (exclusive),
    /// grouped by linked account and service; every page.
    async fn monthly_costs(&self, start: &str, end: &str) -> Result<CostQuery, Error>;
}

#[async_trait]
impl CostApi for aws_sdk_costexplorer::Client {
    async fn monthly_costs(&self, start: &str, end: &str) -> Result<CostQuery, Error> {
        let period = DateInterval::builder()
            .start(start)
            .end(end)
            .build()
            .map_err(|e| Error::terminal(reasons::INVALID_SPEC, e))?;
        let mut out = CostQuery::default();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .get_cost_and_usage()
                .time_period(period.clone())
                .granularity(aws_sdk_costexplorer::types::Granularity::Monthly)
                .metrics(METRIC)
                .group_by(
                    GroupDefinition::builder()
                        .r#type(GroupDefinitionType::Dimension)
                        .key("LINKED_ACCOUNT")
                        .build(),
                )
                .group_by(
                    GroupDefinition::builder()
                        .r#type(GroupDefinitionType::Dimension)
                        .key("SERVICE")
                        .build(),
                )
                .set_next_page_token(token.clone())
                .send()
                .await
                .map_err(super::classify::on("ce", "GetCostAndUsage").err())?;
            out.requests += 1;
            for by_time in page.results_by_time() {
                let month = by_time
                    .time_period()
                    .map(|p| p.start().chars().take(7).collect::<String>())
                    .unwrap_or_default();
                for group in by_time.groups() {
                    let keys = group.keys();
                    let Some(value) = group.metrics().and_then(|m| m.get(METRIC)) else {
                        continue;
                    };
                    out.rows.push(CostRow {
                        month: month.clone(),
                        account_id: keys.first().cloned().unwrap_or_default(),
                        service: keys.get(1).cloned().unwrap_or_default(),
                        amount: value.amount().unwrap_or("0").to_string(),
                        unit: value.unit().unwrap_or("USD").to_string(),
                        estimated: by_time.estimated(),
                    });
                }
            }
            token = page
                .next_page_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
            if out.requests >= 100 {
                return Err(Error::terminal(
                    reasons::TOO_MANY_COST_PAGES,
                    "GetCostAndUsage returned more than 100 pages; lower spec.insights.monthsOfHistory",
                ));
            }
        }
    }
}
