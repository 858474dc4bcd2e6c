//! AWS Billing Conductor: pricing rules and plans, billing groups, custom line items, cost
//! reports. A global service, always called in us-east-1.
//!
//! The seam is idempotent where AWS is not: a delete whose object is already gone succeeds
//! (see [`BillingApi::delete_rule`]), and [`BillingApi::tags_if_exists`] reads the tags of an
//! object that may have been deleted meanwhile. Callers never match on AWS error codes for
//! "already done".

use async_trait::async_trait;
use aws_sdk_billingconductor::types;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use super::organizations::Tags;
use crate::error::Error;
use crate::reconcile::reasons::INVALID_SPEC;

/// A pricing rule as ListPricingRules reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct BcRule {
    pub arn: String,
    pub name: String,
    pub description: String,
    pub scope: String,
    pub type_: String,
    pub modifier_percentage: Option<f64>,
    pub service: Option<String>,
    pub billing_entity: Option<String>,
    pub usage_type: Option<String>,
    pub operation: Option<String>,
    pub free_tier: Option<bool>,
}

/// What CreatePricingRule is asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRule {
    pub name: String,
    pub description: String,
    pub scope: String,
    pub type_: String,
    pub modifier_percentage: Option<f64>,
    pub service: Option<String>,
    pub billing_entity: Option<String>,
    pub usage_type: Option<String>,
    pub operation: Option<String>,
    pub free_tier: Option<bool>,
    pub tags: Tags,
}

/// A pricing plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BcPlan {
    pub arn: String,
    pub name: String,
    pub description: String,
    pub size: i64,
}

/// A billing group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BcGroup {
    pub arn: String,
    pub name: String,
    pub description: String,
    pub primary_account_id: String,
    pub plan_arn: String,
    pub size: i64,
    pub status: String,
    pub status_reason: Option<String>,
    pub auto_associate: bool,
    /// `STANDARD` or `TRANSFER_BILLING` (BillingGroupType).
    pub group_type: String,
    /// The responsibility transfer of a `TRANSFER_BILLING` group.
    pub transfer_arn: Option<String>,
}

/// What CreateBillingGroup is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGroup {
    pub name: String,
    pub description: String,
    /// The primary account of a `STANDARD` group (none for a `TRANSFER_BILLING` one).
    pub primary_account_id: Option<String>,
    /// `AccountGrouping.ResponsibilityTransferArn`: makes the group a `TRANSFER_BILLING` one.
    pub transfer_arn: Option<String>,
    /// At most 30 (more are associated afterwards).
    pub accounts: Vec<String>,
    pub plan_arn: String,
    pub auto_associate: bool,
    pub tags: Tags,
}

/// A custom line item, as ListCustomLineItems reports it for one period.
#[derive(Clone, Debug, PartialEq)]
pub struct BcItem {
    pub arn: String,
    pub name: String,
    pub description: String,
    pub group_arn: String,
    pub charge_type: String,
    pub flat: Option<f64>,
    pub percent: Option<f64>,
    pub account_id: Option<String>,
    /// `CONSOLIDATED` or `ITEMIZED`.
    pub computation_rule: String,
    /// Its line-item filter (AWS keeps at most one).
    pub filter: Option<ItemFilter>,
    /// `PresentationDetails.Service`.
    pub presentation_service: Option<String>,
}

/// A custom line item's line-item filter (LineItemFilter: at most one per item, with one
/// value): `SAVINGS_PLAN_NEGATION` goes in `Values` (LineItemFilterValue, its one value),
/// any other value (a line item type, a service code) in `AttributeValues`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemFilter {
    /// `LINE_ITEM_TYPE` or `SERVICE`.
    pub attribute: String,
    /// `EQUAL` or `NOT_EQUAL`.
    pub match_option: String,
    pub value: String,
}

/// What CreateCustomLineItem is asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct NewItem {
    pub name: String,
    pub description: String,
    pub group_arn: String,
    pub charge_type: String,
    pub flat: Option<f64>,
    pub percent: Option<f64>,
    pub associated: Vec<String>,
    pub start: String,
    pub end: Option<String>,
    pub account_id: Option<String>,
    pub computation_rule: Option<String>,
    pub filter: Option<ItemFilter>,
    pub presentation_service: Option<String>,
    pub tags: Tags,
}

/// One service's cost in a billing group for one period (GetBillingGroupCostReport grouped
/// by PRODUCT_NAME).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BcServiceCost {
    pub service: String,
    pub aws_cost: String,
    pub proforma_cost: String,
    pub margin: String,
    pub currency: String,
}

/// A billing group's cost in one period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BcCost {
    pub arn: String,
    pub aws_cost: String,
    pub proforma_cost: String,
    pub margin: String,
    pub margin_percentage: String,
    pub currency: String,
}

/// The Billing Conductor calls the operator makes. Lists follow NextToken to the last page,
/// asking for pages of [`PAGE`]; ARN filters go out in chunks of [`FILTER_ARNS`].
#[async_trait]
pub trait BillingApi: Send + Sync {
    async fn list_rules(&self) -> Result<Vec<BcRule>, Error>;
    async fn list_plans(&self) -> Result<Vec<BcPlan>, Error>;
    async fn list_plan_rule_arns(&self, plan_arn: &str) -> Result<Vec<String>, Error>;
    /// Every group, or only those of `arns` (any number).
    async fn list_groups(&self, arns: Option<&[String]>) -> Result<Vec<BcGroup>, Error>;
    /// (account id, billing group ARN) of every associated account.
    async fn list_associations(&self) -> Result<Vec<(String, String)>, Error>;
    async fn list_items(&self, period: &str) -> Result<Vec<BcItem>, Error>;
    /// Cost reports of every group in `period`, or only of the groups `arns` (any number).
    async fn cost_reports(
        &self,
        period: &str,
        arns: Option<&[String]>,
    ) -> Result<Vec<BcCost>, Error>;
    /// GetBillingGroupCostReport of group `arn` for the one billing period `period`, grouped
    /// by PRODUCT_NAME: AWS and pro forma cost per service.
    async fn cost_by_service(&self, arn: &str, period: &str) -> Result<Vec<BcServiceCost>, Error>;
    async fn create_rule(&self, rule: &NewRule, token: &str) -> Result<String, Error>;
    async fn update_rule(&self, arn: &str, rule: &NewRule) -> Result<(), Error>;
    /// DeletePricingRule. Already gone is done: the API reference models no not-found error
    /// for DeletePricingRule (its errors are AccessDenied, Conflict, InternalServer,
    /// Throttling and Validation), but the service's ResourceNotFoundException ("the request
    /// references a resource that doesn't exist") is what a rule deleted meanwhile answers,
    /// and it is taken as success. A rule still associated with a plan is a
    /// ConflictException and stays an error.
    async fn delete_rule(&self, arn: &str) -> Result<(), Error>;
    async fn create_plan(
        &self,
        name: &str,
        description: &str,
        tags: &Tags,
        token: &str,
    ) -> Result<String, Error>;
    async fn update_plan(&self, arn: &str, description: &str) -> Result<(), Error>;
    /// DeletePricingPlan. Already gone is done: a ResourceNotFoundException ("the request
    /// references a resource that doesn't exist"; not among the operation's modelled errors)
    /// is taken as success. A plan still used by a billing group is a ConflictException and
    /// stays an error.
    async fn delete_plan(&self, arn: &str) -> Result<(), Error>;
    /// At most 30 rules per call.
    async fn associate_rules(&self, plan_arn: &str, rule_arns: &[String]) -> Result<(), Error>;
    async fn disassociate_rules(&self, plan_arn: &str, rule_arns: &[String]) -> Result<(), Error>;
    async fn create_group(&self, group: &NewGroup, token: &str) -> Result<String, Error>;
    async fn update_group(
        &self,
        arn: &str,
        description: &str,
        plan_arn: &str,
        auto_associate: bool,
    ) -> Result<(), Error>;
    /// DeleteBillingGroup. Already gone is done: a ResourceNotFoundException ("the request
    /// references a resource that doesn't exist"; the API reference lists only AccessDenied,
    /// InternalServer, Throttling and Validation for this operation) is taken as success.
    async fn delete_group(&self, arn: &str) -> Result<(), Error>;
    /// At most 30 accounts per call.
    async fn associate_accounts(&self, group_arn: &str, accounts: &[String]) -> Result<(), Error>;
    async fn disassociate_accounts(
        &self,
        group_arn: &str,
        accounts: &[String],
    ) -> Result<(), Error>;
    async fn create_item(&self, item: &NewItem, token: &str) -> Result<String, Error>;
    /// Update description and amount, for `period` onwards.
    async fn update_item(&self, arn: &str, item: &NewItem, period: &str) -> Result<(), Error>;
    /// DeleteCustomLineItem ("in the current, or previous billing period", says the API
    /// reference). Already gone is done: a ResourceNotFoundException ("the request references
    /// a resource that doesn't exist"; not among the operation's modelled errors) is taken as
    /// success. An item that lies in a closed period is a ValidationException with reason
    /// `INVALID_BILLING_PERIOD_FOR_OPERATION` and stays an error: the caller decides.
    async fn delete_item(&self, arn: &str) -> Result<(), Error>;
    async fn list_tags(&self, arn: &str) -> Result<Tags, Error>;
    /// ListTagsForResource of an object that may have been deleted since it was listed:
    /// `None` when AWS answers ResourceNotFoundException, which the API reference lists for
    /// ListTagsForResource ("the request references a resource that doesn't exist").
    async fn tags_if_exists(&self, arn: &str) -> Result<Option<Tags>, Error> {
        match self.list_tags(arn).await {
            Ok(tags) => Ok(Some(tags)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
    async fn tag(&self, arn: &str, tags: &Tags) -> Result<(), Error>;
    async fn untag(&self, arn: &str, keys: &[String]) -> Result<(), Error>;
}

/// The `Reason` of the ValidationException DeleteCustomLineItem answers for an item that lies
/// in a closed billing period (it stays in AWS).
pub const INVALID_BILLING_PERIOD: &str = "INVALID_BILLING_PERIOD_FOR_OPERATION";

/// The code of AWS's answer for an object that does not exist (any more).
const NOT_FOUND: &str = "ResourceNotFoundException";

/// Whether AWS answered that the object does not exist (any more).
fn is_not_found(e: &Error) -> bool {
    e.aws_code() == Some(NOT_FOUND)
}

/// A delete's answer with "already gone" taken as done (see [`BillingApi::delete_rule`]).
fn gone_is_done(answer: Result<(), Error>) -> Result<(), Error> {
    match answer {
        Err(e) if is_not_found(&e) => Ok(()),
        other => other,
    }
}

fn err<E>(op: &str) -> impl FnOnce(SdkError<E, HttpResponse>) -> Error + '_
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    move |e| super::classify::classify("billingconductor", op, e)
}

/// Largest page the Billing Conductor list operations accept (`MaxResults` 1-100 in the
/// model; ListAccountAssociations takes none).
pub const PAGE: i32 = 100;

/// At most this many ARNs in one `Filters.Arns` / `Filters.BillingGroupArns` of
/// ListBillingGroups and ListBillingGroupCostReports.
pub const FILTER_ARNS: usize = 100;

fn s(v: Option<&str>) -> String {
    v.unwrap_or_default().to_string()
}

fn o(v: Option<&str>) -> Option<String> {
    v.map(str::to_string)
}

/// The `Filters` ARN lists for `arns`: no filter at all (every object) for `None`, else
/// chunks of at most [`FILTER_ARNS`]; an empty list asks for nothing. Pure.
pub fn arn_filters(arns: Option<&[String]>) -> Vec<Option<&[String]>> {
    match arns {
        None => vec![None],
        Some(a) => a.chunks(FILTER_ARNS).map(Some).collect(),
    }
}

fn build_err(e: impl std::fmt::Display) -> Error {
    Error::terminal(INVALID_SPEC, e)
}

fn charge(item: &NewItem) -> Result<types::CustomLineItemChargeDetails, Error> {
    let mut details = types::CustomLineItemChargeDetails::builder()
        .r#type(types::CustomLineItemType::from(item.charge_type.as_str()));
    if let Some(v) = item.flat {
        details = details.flat(
            types::CustomLineItemFlatChargeDetails::builder()
                .charge_value(v)
                .build()
                .map_err(build_err)?,
        );
    }
    if let Some(p) = item.percent {
        details = details.percentage(
            types::CustomLineItemPercentageChargeDetails::builder()
                .percentage_value(p)
                .set_associated_values(
                    (!item.associated.is_empty()).then(|| item.associated.clone()),
                )
                .build()
                .map_err(build_err)?,
        );
    }
    if let Some(f) = &item.filter {
        details = details.line_item_filters(line_item_filter(f)?);
    }
    details.build().map_err(build_err)
}

/// The SDK's LineItemFilter for `f`: `LINE_ITEM_TYPE` `SAVINGS_PLAN_NEGATION` in `Values`
/// (LineItemFilterValue), any other value in `AttributeValues` (model: AttributeValueList, at
/// most one `[a-zA-Z0-9]+`).
fn line_item_filter(f: &ItemFilter) -> Result<types::LineItemFilter, Error> {
    let attribute = types::LineItemFilterAttributeName::from(f.attribute.as_str());
    let builder = types::LineItemFilter::builder()
        .attribute(attribute.clone())
        .match_option(types::MatchOption::from(f.match_option.as_str()));
    let negation = types::LineItemFilterValue::SavingsPlanNegation;
    let builder = if attribute == types::LineItemFilterAttributeName::LineItemType
        && f.value == negation.as_str()
    {
        builder.values(negation)
    } else {
        builder.attribute_values(&f.value)
    };
    builder.build().map_err(build_err)
}

/// The one filter of an item as AWS lists it (see [`line_item_filter`]).
fn listed_filter(filters: &[types::LineItemFilter]) -> Option<ItemFilter> {
    let f = filters.first()?;
    let value = f
        .values()
        .first()
        .map(|v| v.as_str().to_string())
        .or_else(|| f.attribute_values().first().cloned())
        .unwrap_or_default();
    Some(ItemFilter {
        attribute: f.attribute().as_str().to_string(),
        match_option: f.match_option().as_str().to_string(),
        value,
    })
}

/// The billing period after `period` (`YYYY-MM`). Pure.
fn next_period(period: &str) -> String {
    let (y, m) = period.split_once('-').unwrap_or((period, "1"));
    let (y, m): (i32, u32) = (y.parse().unwrap_or(0), m.parse().unwrap_or(1));
    if m >= 12 {
        format!("{:04}-01", y + 1)
    } else {
        format!("{y:04}-{:02}", m + 1)
    }
}

#[async_trait]
impl BillingApi for aws_sdk_billingconductor::Client {
    async fn list_rules(&self) -> Result<Vec<BcRule>, Error> {
        let mut pages = self
            .list_pricing_rules()
            .into_paginator()
            .page_size(PAGE)
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            for r in page.map_err(err("ListPricingRules"))?.pricing_rules() {
                out.push(BcRule {
                    arn: s(r.arn()),
                    name: s(r.name()),
                    description: s(r.description()),
                    scope: r
                        .scope()
                        .map(|x| x.as_str().to_string())
                        .unwrap_or_default(),
                    type_: r
                        .r#type()
                        .map(|x| x.as_str().to_string())
                        .unwrap_or_default(),
                    modifier_percentage: r.modifier_percentage(),
                    service: o(r.service()),
                    billing_entity: o(r.billing_entity()),
                    usage_type: o(r.usage_type()),
                    operation: o(r.operation()),
                    free_tier: r
                        .tiering()
                        .and_then(|t| t.free_tier())
                        .map(|f| f.activated()),
                });
            }
        }
        Ok(out)
    }

    async fn list_plans(&self) -> Result<Vec<BcPlan>, Error> {
        let mut pages = self
            .list_pricing_plans()
            .into_paginator()
            .page_size(PAGE)
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            for p in page.map_err(err("ListPricingPlans"))?.pricing_plans() {
                out.push(BcPlan {
                    arn: s(p.arn()),
                    name: s(p.name()),
                    description: s(p.description()),
                    size: p.size(),
                });
            }
        }
        Ok(out)
    }

    async fn list_plan_rule_arns(&self, plan_arn: &str) -> Result<Vec<String>, Error> {
        let mut pages = self
            .list_pricing_rules_associated_to_pricing_plan()
            .pricing_plan_arn(plan_arn)
            .into_paginator()
            .page_size(PAGE)
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(
                page.map_err(err("ListPricingRulesAssociatedToPricingPlan"))?
                    .pricing_rule_arns()
                    .iter()
                    .cloned(),
            );
        }
        Ok(out)
    }

    async fn list_groups(&self, arns: Option<&[String]>) -> Result<Vec<BcGroup>, Error> {
        let mut out = Vec::new();
        for filter in arn_filters(arns) {
            // Both types asked for by name (BillingGroupTypes, 1-2 values): a transfer
            // billing group is listed next to the standard ones.
            let filter = types::ListBillingGroupsFilter::builder()
                .set_arns(filter.map(<[String]>::to_vec))
                .billing_group_types(types::BillingGroupType::Standard)
                .billing_group_types(types::BillingGroupType::TransferBilling)
                .build();
            let mut pages = self
                .list_billing_groups()
                .filters(filter)
                .into_paginator()
                .page_size(PAGE)
                .send();
            while let Some(page) = pages.next().await {
                for g in page.map_err(err("ListBillingGroups"))?.billing_groups() {
                    out.push(BcGroup {
                        arn: s(g.arn()),
                        name: s(g.name()),
                        description: s(g.description()),
                        primary_account_id: s(g.primary_account_id()),
                        plan_arn: s(g.computation_preference().map(|c| c.pricing_plan_arn())),
                        size: g.size(),
                        status: g
                            .status()
                            .map(|x| x.as_str().to_string())
                            .unwrap_or_default(),
                        status_reason: o(g.status_reason()),
                        auto_associate: g
                            .account_grouping()
                            .and_then(|a| a.auto_associate())
                            .unwrap_or(false),
                        group_type: g
                            .billing_group_type()
                            .map_or("STANDARD", |t| t.as_str())
                            .to_string(),
                        transfer_arn: o(g
                            .account_grouping()
                            .and_then(|a| a.responsibility_transfer_arn())),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn list_associations(&self) -> Result<Vec<(String, String)>, Error> {
        // Without a filter AWS lists every linked account of the payer, grouped or not;
        // MONITORED keeps only those associated with a billing group.
        let monitored = types::ListAccountAssociationsFilter::builder()
            .association("MONITORED")
            .build();
        let mut pages = self
            .list_account_associations()
            .filters(monitored)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            for a in page
                .map_err(err("ListAccountAssociations"))?
                .linked_accounts()
            {
                if let (Some(id), Some(group)) = (a.account_id(), a.billing_group_arn()) {
                    out.push((id.to_string(), group.to_string()));
                }
            }
        }
        Ok(out)
    }

    async fn list_items(&self, period: &str) -> Result<Vec<BcItem>, Error> {
        let mut pages = self
            .list_custom_line_items()
            .billing_period(period)
            .into_paginator()
            .page_size(PAGE)
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            for i in page
                .map_err(err("ListCustomLineItems"))?
                .custom_line_items()
            {
                let c = i.charge_details();
                out.push(BcItem {
                    arn: s(i.arn()),
                    name: s(i.name()),
                    description: s(i.description()),
                    group_arn: s(i.billing_group_arn()),
                    charge_type: c
                        .map(|c| c.r#type().as_str().to_string())
                        .unwrap_or_default(),
                    flat: c.and_then(|c| c.flat()).map(|f| f.charge_value()),
                    percent: c.and_then(|c| c.percentage()).map(|p| p.percentage_value()),
                    account_id: o(i.account_id()),
                    computation_rule: i
                        .computation_rule()
                        .map_or("CONSOLIDATED", |r| r.as_str())
                        .to_string(),
                    filter: c.and_then(|c| listed_filter(c.line_item_filters())),
                    presentation_service: o(i.presentation_details().map(|p| p.service())),
                });
            }
        }
        Ok(out)
    }

    async fn cost_reports(
        &self,
        period: &str,
        arns: Option<&[String]>,
    ) -> Result<Vec<BcCost>, Error> {
        let mut out = Vec::new();
        for filter in arn_filters(arns) {
            let filter = filter.map(|a| {
                types::ListBillingGroupCostReportsFilter::builder()
                    .set_billing_group_arns(Some(a.to_vec()))
                    .build()
            });
            let mut pages = self
                .list_billing_group_cost_reports()
                .billing_period(period)
                .set_filters(filter)
                .into_paginator()
                .page_size(PAGE)
                .send();
            while let Some(page) = pages.next().await {
                for r in page
                    .map_err(err("ListBillingGroupCostReports"))?
                    .billing_group_cost_reports()
                {
                    out.push(BcCost {
                        arn: s(r.arn()),
                        aws_cost: s(r.aws_cost()),
                        proforma_cost: s(r.proforma_cost()),
                        margin: s(r.margin()),
                        margin_percentage: s(r.margin_percentage()),
                        currency: s(r.currency()),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn cost_by_service(&self, arn: &str, period: &str) -> Result<Vec<BcServiceCost>, Error> {
        // One period: [period, next) (BillingPeriodRange, both ends required). The model has
        // no paginator for the operation, so NextToken is followed here.
        let range = types::BillingPeriodRange::builder()
            .inclusive_start_billing_period(period)
            .exclusive_end_billing_period(next_period(period))
            .build()
            .map_err(build_err)?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .get_billing_group_cost_report()
                .arn(arn)
                .billing_period_range(range.clone())
                .group_by(types::GroupByAttributeName::ProductName)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(err("GetBillingGroupCostReport"))?;
            for r in page.billing_group_cost_report_results() {
                let service = r
                    .attributes()
                    .iter()
                    .find(|a| a.key() == Some("PRODUCT_NAME"))
                    .and_then(|a| a.value())
                    .unwrap_or_default();
                out.push(BcServiceCost {
                    service: service.to_string(),
                    aws_cost: s(r.aws_cost()),
                    proforma_cost: s(r.proforma_cost()),
                    margin: s(r.margin()),
                    currency: s(r.currency()),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn create_rule(&self, rule: &NewRule, token: &str) -> Result<String, Error> {
        let mut call = self
            .create_pricing_rule()
            .client_token(token)
            .name(&rule.name)
            .description(&rule.description)
            .scope(types::PricingRuleScope::from(rule.scope.as_str()))
            .r#type(types::PricingRuleType::from(rule.type_.as_str()))
            .set_modifier_percentage(rule.modifier_percentage)
            .set_service(rule.service.clone())
            .set_billing_entity(rule.billing_entity.clone())
            .set_usage_type(rule.usage_type.clone())
            .set_operation(rule.operation.clone())
            .set_tags(Some(rule.tags.clone().into_iter().collect()));
        if let Some(free) = rule.free_tier {
            call = call.tiering(
                types::CreateTieringInput::builder()
                    .free_tier(
                        types::CreateFreeTierConfig::builder()
                            .activated(free)
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            );
        }
        let out = call.send().await.map_err(err("CreatePricingRule"))?;
        crate::after_write!("billingconductor:CreatePricingRule");
        Ok(s(out.arn()))
    }

    async fn update_rule(&self, arn: &str, rule: &NewRule) -> Result<(), Error> {
        let mut call = self
            .update_pricing_rule()
            .arn(arn)
            .description(&rule.description)
            .r#type(types::PricingRuleType::from(rule.type_.as_str()))
            .set_modifier_percentage(rule.modifier_percentage);
        if let Some(free) = rule.free_tier {
            call = call.tiering(
                types::UpdateTieringInput::builder()
                    .free_tier(
                        types::UpdateFreeTierConfig::builder()
                            .activated(free)
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            );
        }
        call.send().await.map_err(err("UpdatePricingRule"))?;
        crate::after_write!("billingconductor:UpdatePricingRule");
        Ok(())
    }

    async fn delete_rule(&self, arn: &str) -> Result<(), Error> {
        let answer = self.delete_pricing_rule().arn(arn).send().await;
        if answer.is_ok() {
            crate::after_write!("billingconductor:DeletePricingRule");
        }
        gone_is_done(answer.map(|_| ()).map_err(err("DeletePricingRule")))
    }

    async fn create_plan(
        &self,
        name: &str,
        description: &str,
        tags: &Tags,
        token: &str,
    ) -> Result<String, Error> {
        let out = self
            .create_pricing_plan()
            .client_token(token)
            .name(name)
            .description(description)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(err("CreatePricingPlan"))?;
        crate::after_write!("billingconductor:CreatePricingPlan");
        Ok(s(out.arn()))
    }

    async fn update_plan(&self, arn: &str, description: &str) -> Result<(), Error> {
        self.update_pricing_plan()
            .arn(arn)
            .description(description)
            .send()
            .await
            .map_err(err("UpdatePricingPlan"))?;
        crate::after_write!("billingconductor:UpdatePricingPlan");
        Ok(())
    }

    async fn delete_plan(&self, arn: &str) -> Result<(), Error> {
        let answer = self.delete_pricing_plan().arn(arn).send().await;
        if answer.is_ok() {
            crate::after_write!("billingconductor:DeletePricingPlan");
        }
        gone_is_done(answer.map(|_| ()).map_err(err("DeletePricingPlan")))
    }

    async fn associate_rules(&self, plan_arn: &str, rule_arns: &[String]) -> Result<(), Error> {
        self.associate_pricing_rules()
            .arn(plan_arn)
            .set_pricing_rule_arns(Some(rule_arns.to_vec()))
            .send()
            .await
            .map_err(err("AssociatePricingRules"))?;
        crate::after_write!("billingconductor:AssociatePricingRules");
        Ok(())
    }

    async fn disassociate_rules(&self, plan_arn: &str, rule_arns: &[String]) -> Result<(), Error> {
        self.disassociate_pricing_rules()
            .arn(plan_arn)
            .set_pricing_rule_arns(Some(rule_arns.to_vec()))
            .send()
            .await
            .map_err(err("DisassociatePricingRules"))?;
        crate::after_write!("billingconductor:DisassociatePricingRules");
        Ok(())
    }

    async fn create_group(&self, group: &NewGroup, token: &str) -> Result<String, Error> {
        let out = self
            .create_billing_group()
            .client_token(token)
            .name(&group.name)
            .description(&group.description)
            .set_primary_account_id(group.primary_account_id.clone())
            .account_grouping(
                types::AccountGrouping::builder()
                    .set_linked_account_ids(
                        (!group.accounts.is_empty()).then(|| group.accounts.clone()),
                    )
                    .auto_associate(group.auto_associate)
                    .set_responsibility_transfer_arn(group.transfer_arn.clone())
                    .build(),
            )
            .computation_preference(
                types::ComputationPreference::builder()
                    .pricing_plan_arn(&group.plan_arn)
                    .build()
                    .map_err(build_err)?,
            )
            .set_tags(Some(group.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(err("CreateBillingGroup"))?;
        crate::after_write!("billingconductor:CreateBillingGroup");
        Ok(s(out.arn()))
    }

    async fn update_group(
        &self,
        arn: &str,
        description: &str,
        plan_arn: &str,
        auto_associate: bool,
    ) -> Result<(), Error> {
        self.update_billing_group()
            .arn(arn)
            .description(description)
            .computation_preference(
                types::ComputationPreference::builder()
                    .pricing_plan_arn(plan_arn)
                    .build()
                    .map_err(build_err)?,
            )
            .account_grouping(
                types::UpdateBillingGroupAccountGrouping::builder()
                    .auto_associate(auto_associate)
                    .build(),
            )
            .send()
            .await
            .map_err(err("UpdateBillingGroup"))?;
        crate::after_write!("billingconductor:UpdateBillingGroup");
        Ok(())
    }

    async fn delete_group(&self, arn: &str) -> Result<(), Error> {
        let answer = self.delete_billing_group().arn(arn).send().await;
        if answer.is_ok() {
            crate::after_write!("billingconductor:DeleteBillingGroup");
        }
        gone_is_done(answer.map(|_| ()).map_err(err("DeleteBillingGroup")))
    }

    async fn associate_accounts(&self, group_arn: &str, accounts: &[String]) -> Result<(), Error> {
        self.associate_accounts()
            .arn(group_arn)
            .set_account_ids(Some(accounts.to_vec()))
            .send()
            .await
            .map_err(err("AssociateAccounts"))?;
        crate::after_write!("billingconductor:AssociateAccounts");
        Ok(())
    }

    async fn disassociate_accounts(
        &self,
        group_arn: &str,
        accounts: &[String],
    ) -> Result<(), Error> {
        self.disassociate_accounts()
            .arn(group_arn)
            .set_account_ids(Some(accounts.to_vec()))
            .send()
            .await
            .map_err(err("DisassociateAccounts"))?;
        crate::after_write!("billingconductor:DisassociateAccounts");
        Ok(())
    }

    async fn create_item(&self, item: &NewItem, token: &str) -> Result<String, Error> {
        let out = self
            .create_custom_line_item()
            .client_token(token)
            .name(&item.name)
            .description(&item.description)
            .billing_group_arn(&item.group_arn)
            .billing_period_range(
                types::CustomLineItemBillingPeriodRange::builder()
                    .inclusive_start_billing_period(&item.start)
                    .set_exclusive_end_billing_period(item.end.clone())
                    .build()
                    .map_err(build_err)?,
            )
            .charge_details(charge(item)?)
            .set_account_id(item.account_id.clone())
            .set_computation_rule(
                item.computation_rule
                    .as_deref()
                    .map(types::ComputationRuleEnum::from),
            )
            .set_presentation_details(
                item.presentation_service
                    .as_ref()
                    .map(|svc| types::PresentationObject::builder().service(svc).build())
                    .transpose()
                    .map_err(build_err)?,
            )
            .set_tags(Some(item.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(err("CreateCustomLineItem"))?;
        crate::after_write!("billingconductor:CreateCustomLineItem");
        Ok(s(out.arn()))
    }

    async fn update_item(&self, arn: &str, item: &NewItem, period: &str) -> Result<(), Error> {
        let mut details = types::UpdateCustomLineItemChargeDetails::builder();
        if let Some(v) = item.flat {
            details = details.flat(
                types::UpdateCustomLineItemFlatChargeDetails::builder()
                    .charge_value(v)
                    .build()
                    .map_err(build_err)?,
            );
        }
        if let Some(p) = item.percent {
            details = details.percentage(
                types::UpdateCustomLineItemPercentageChargeDetails::builder()
                    .percentage_value(p)
                    .build()
                    .map_err(build_err)?,
            );
        }
        // LineItemFilters is part of UpdateCustomLineItemChargeDetails: sent every time (an
        // empty list removes the filter).
        details = details.set_line_item_filters(Some(
            item.filter
                .iter()
                .map(line_item_filter)
                .collect::<Result<Vec<_>, _>>()?,
        ));
        self.update_custom_line_item()
            .arn(arn)
            .description(&item.description)
            .charge_details(details.build())
            .billing_period_range(
                types::CustomLineItemBillingPeriodRange::builder()
                    .inclusive_start_billing_period(period)
                    .set_exclusive_end_billing_period(item.end.clone())
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await
            .map_err(err("UpdateCustomLineItem"))?;
        crate::after_write!("billingconductor:UpdateCustomLineItem");
        Ok(())
    }

    async fn delete_item(&self, arn: &str) -> Result<(), Error> {
        let answer = self.delete_custom_line_item().arn(arn).send().await;
        if answer.is_ok() {
            crate::after_write!("billingconductor:DeleteCustomLineItem");
        }
        gone_is_done(answer.map(|_| ()).map_err(err("DeleteCustomLineItem")))
    }

    async fn list_tags(&self, arn: &str) -> Result<Tags, Error> {
        let out = self
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(err("ListTagsForResource"))?;
        Ok(out
            .tags()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect())
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> Result<(), Error> {
        self.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(err("TagResource"))?;
        crate::after_write!("billingconductor:TagResource");
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> Result<(), Error> {
        self.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(err("UntagResource"))?;
        crate::after_write!("billingconductor:UntagResource");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_filters_stay_within_the_model_limit() {
        let arns: Vec<String> = (0..250).map(|i| format!("arn-{i}")).collect();
        let chunks = arn_filters(Some(&arns));
        assert_eq!(
            chunks
                .iter()
                .map(|c| c.map_or(0, <[String]>::len))
                .collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert_eq!(arn_filters(None), vec![None]);
        assert!(arn_filters(Some(&[])).is_empty());
    }

    #[test]
    fn the_period_after_wraps_the_year() {
        assert_eq!(next_period("2026-11"), "2026-12");
        assert_eq!(next_period("2026-12"), "2027-01");
    }

    #[test]
    fn a_delete_of_an_object_already_gone_is_done() {
        let rejected = |code: &str| Error::AwsRejected {
            code: code.into(),
            aws_reason: None,
            message: "no".into(),
        };
        assert!(gone_is_done(Ok(())).is_ok());
        assert!(gone_is_done(Err(rejected(NOT_FOUND))).is_ok());
        let conflict = gone_is_done(Err(rejected("ConflictException"))).unwrap_err();
        assert_eq!(conflict.aws_code(), Some("ConflictException"));
    }
}
