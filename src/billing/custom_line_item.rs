//! CustomLineItem: billing-period aware. Only the current and the previous period are open;
//! an item is never created or changed in an older one (a condition names the closed period).
//! Observe (the group, the item and the items it applies to, from the shared snapshot), plan
//! (pure: the period check and the item AWS should hold), then claim and write through the
//! billing write path.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::api::common::{owner_value, with_owner};
use crate::api::custom_line_item::{ChargeType, ComputationRule, CustomLineItemSpec};
use crate::api::{CustomLineItem, CustomLineItemStatus};
use crate::aws::billing::{BcGroup, BcItem, INVALID_BILLING_PERIOD, ItemFilter, NewItem};
use crate::aws::organizations::Tags;
use crate::error::Error;

use crate::billing::context::{BillingContext, payer_gone};
use crate::billing::snapshot::BillingSnapshot;
use crate::reconcile::ownership::{
    Claimant, Found, TagAudit, check_claim, client_token, complete_claim, deletable,
    usable_dependency,
};
use crate::reconcile::reasons::{
    AVAILABLE, DELETED, DEPENDENCY_NOT_READY, ENDED, LEFT_IN_CLOSED_PERIOD, PERIOD_CLOSED,
    PLANNED_ONLY, QUOTA_EXCEEDED, RELEASED,
};
use crate::reconcile::run::Run;
use crate::reconcile::{
    ChangeAction, DEPENDENCY_RETRY, KindOutcome, ReconcileContext, Verdict, change,
};

/// Where an item's period range stands against the open periods. Pure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeriodCheck {
    /// The item covers the current period (or starts in the previous one).
    Open,
    /// The item's range ended before the current period: nothing left to do.
    Ended,
    /// Creating it would touch a closed period.
    Closed(String),
}

/// Check `start`..`end` against the open periods (`previous`, `current`). Pure.
pub fn check_period(
    start: &str,
    end: Option<&str>,
    previous: &str,
    current: &str,
    exists: bool,
) -> PeriodCheck {
    if let Some(end) = end
        && end <= current
    {
        return if exists || end > previous {
            PeriodCheck::Ended
        } else {
            PeriodCheck::Closed(start.to_string())
        };
    }
    if !exists && start < previous {
        return PeriodCheck::Closed(start.to_string());
    }
    PeriodCheck::Open
}

/// Billing Conductor's quota of custom line items with a line-item filter per billing group
/// (AWS Billing Conductor quotas; see docs/aws-facts.md).
pub const FILTERED_PER_GROUP: usize = 10;
/// Billing Conductor's quota of ITEMIZED custom line items per billing group.
pub const ITEMIZED_PER_GROUP: usize = 5;

/// What UpdateCustomLineItem can change and the item differs in: description, amount, and
/// the line-item filter (UpdateCustomLineItemChargeDetails.LineItemFilters). Pure.
fn differs(have: &BcItem, want: &NewItem) -> bool {
    have.description != want.description
        || have.flat != want.flat
        || have.percent != want.percent
        || have.filter != want.filter
}

/// The line-item filter `spec` asks for (`excludeSavingsPlanNegation` is the
/// `LINE_ITEM_TYPE NOT_EQUAL SAVINGS_PLAN_NEGATION` filter). Pure.
pub fn wanted_filter(spec: &CustomLineItemSpec) -> Option<ItemFilter> {
    if let Some(f) = &spec.line_item_filter {
        return Some(ItemFilter {
            attribute: f.attribute.as_str().to_string(),
            match_option: f.match_option.as_str().to_string(),
            value: f.value.clone(),
        });
    }
    spec.exclude_savings_plan_negation
        .unwrap_or(false)
        .then(|| ItemFilter {
            attribute: "LINE_ITEM_TYPE".into(),
            match_option: "NOT_EQUAL".into(),
            value: "SAVINGS_PLAN_NEGATION".into(),
        })
}

/// Another CustomLineItem object of the same billing group, as the quotas count it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sibling {
    /// Its name in AWS.
    pub name: String,
    pub itemized: bool,
    pub filtered: bool,
}

/// Refuse an item that would exceed a per-group quota (`QuotaExceeded`), before AWS is
/// called: the items of the group AWS holds (this one aside) and the `siblings` that come
/// before this object and are not in AWS yet are counted. Only what this item would add is
/// checked: a new ITEMIZED item, a new filter. Pure.
fn check_quotas(want: &NewItem, have: Option<&BcItem>, facts: &ItemFacts<'_>) -> Result<(), Error> {
    let in_group: Vec<&BcItem> = facts
        .snapshot
        .items
        .iter()
        .filter(|i| i.group_arn == facts.group_arn && i.name != want.name)
        .collect();
    let count = |aws: &dyn Fn(&BcItem) -> bool, object: &dyn Fn(&Sibling) -> bool| {
        let mut names: std::collections::BTreeSet<&str> = in_group
            .iter()
            .filter(|i| aws(i))
            .map(|i| i.name.as_str())
            .collect();
        names.extend(
            facts
                .siblings
                .iter()
                .filter(|s| s.name != want.name && object(s))
                .map(|s| s.name.as_str()),
        );
        names.len()
    };
    let itemized = want.computation_rule.as_deref() == Some(ComputationRule::Itemized.as_str());
    if itemized && have.is_none() {
        let n = count(&|i| i.computation_rule == "ITEMIZED", &|s| s.itemized);
        if n >= ITEMIZED_PER_GROUP {
            return Err(Error::terminal(
                QUOTA_EXCEEDED,
                format!(
                    "billing group already has {n} ITEMIZED custom line items (AWS allows {ITEMIZED_PER_GROUP} per group); make this item CONSOLIDATED or remove another ITEMIZED one"
                ),
            ));
        }
    }
    if want.filter.is_some() && have.is_none_or(|h| h.filter.is_none()) {
        let n = count(&|i| i.filter.is_some(), &|s| s.filtered);
        if n >= FILTERED_PER_GROUP {
            return Err(Error::terminal(
                QUOTA_EXCEEDED,
                format!(
                    "billing group already has {n} custom line items with a line-item filter (AWS allows {FILTERED_PER_GROUP} per group); drop this item's filter or remove another filtered item"
                ),
            ));
        }
    }
    Ok(())
}

/// What a CustomLineItem wants, for [`plan`].
#[derive(Clone, Debug)]
pub struct DesiredItem<'a> {
    pub spec: &'a CustomLineItemSpec,
    pub namespace: &'a str,
    /// The item's name in AWS.
    pub name: &'a str,
    /// Its tags, the owner tag included.
    pub tags: &'a Tags,
    /// The first period it was created in (`status.startPeriod`), if known.
    pub start_period: Option<&'a str>,
    /// Whether it was created before (its status holds an ARN).
    pub known: bool,
}

/// What [`plan`] reads: the shared snapshot (open periods, items), the group's ARN, and the
/// AWS name of each CustomLineItem its percentage applies to, by object name (none when the
/// object does not exist).
#[derive(Clone, Debug)]
pub struct ItemFacts<'a> {
    pub snapshot: &'a BillingSnapshot,
    pub group_arn: &'a str,
    pub applies_to: &'a BTreeMap<String, String>,
    /// The other CustomLineItem objects of the group that come before this one (by creation
    /// time, then name), for the quotas.
    pub siblings: &'a [Sibling],
}

/// What to do for an item.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemStep {
    /// Its billing periods ended before the current one: nothing left to do.
    Ended,
    /// Create it.
    Create(NewItem),
    /// It exists: claim it, and update it when `update`.
    Existing {
        have: Box<BcItem>,
        want: NewItem,
        update: bool,
    },
}

/// What to do for an item: refused when it would touch a closed period
/// (`PeriodClosed`), waiting for the items it applies to (`DependencyNotReady`). Pure.
pub fn plan(desired: &DesiredItem<'_>, facts: &ItemFacts<'_>) -> Result<ItemStep, Error> {
    let spec = desired.spec;
    let snapshot = facts.snapshot;
    let (current, previous) = (&snapshot.current_period, &snapshot.previous_period);
    let existing = snapshot.item_named(desired.name);
    let start = spec
        .billing_period
        .start
        .clone()
        .or_else(|| desired.start_period.map(str::to_string))
        .unwrap_or_else(|| current.clone());
    match check_period(
        &start,
        spec.billing_period.end.as_deref(),
        previous,
        current,
        existing.is_some() || desired.known,
    ) {
        PeriodCheck::Closed(period) => {
            return Err(Error::terminal(
                PERIOD_CLOSED,
                format!(
                    "billing period {period} is closed: custom line items can be created or changed only in {previous} and {current}; start the item in {previous} or later"
                ),
            ));
        }
        PeriodCheck::Ended => return Ok(ItemStep::Ended),
        PeriodCheck::Open => {}
    }
    let want = NewItem {
        name: desired.name.to_string(),
        description: spec.description.clone(),
        group_arn: facts.group_arn.to_string(),
        charge_type: spec.type_.as_str().to_string(),
        flat: spec.flat.as_ref().map(|f| f.amount),
        percent: spec.percentage.as_ref().map(|p| p.percent),
        associated: associated(desired, facts)?,
        start,
        end: spec.billing_period.end.clone(),
        account_id: spec.account_id.clone(),
        computation_rule: spec.computation_rule.map(|c| c.as_str().to_string()),
        filter: wanted_filter(spec),
        presentation_service: spec.presentation_service.clone(),
        tags: desired.tags.clone(),
    };
    check_quotas(&want, existing, facts)?;
    Ok(match existing {
        None => ItemStep::Create(want),
        Some(have) => ItemStep::Existing {
            update: differs(have, &want),
            have: Box::new(have.clone()),
            want,
        },
    })
}

/// ARNs of the items a percentage item applies to (waits for those not made yet). Pure.
fn associated(desired: &DesiredItem<'_>, facts: &ItemFacts<'_>) -> Result<Vec<String>, Error> {
    let Some(p) = &desired.spec.percentage else {
        return Ok(Vec::new());
    };
    let namespace = desired.namespace;
    let waiting = |what: String| Error::waiting(DEPENDENCY_NOT_READY, what, DEPENDENCY_RETRY);
    p.applies_to
        .iter()
        .map(|other| {
            let name = facts.applies_to.get(other).ok_or_else(|| {
                waiting(format!("CustomLineItem {namespace}/{other} does not exist"))
            })?;
            facts
                .snapshot
                .item_named(name)
                .map(|i| i.arn.clone())
                .ok_or_else(|| {
                    waiting(format!(
                        "CustomLineItem {namespace}/{other} is not created in AWS yet"
                    ))
                })
        })
        .collect()
}

/// `fee` or `credit`, and the amount (`12.50 USD`, `5%`), for changes and messages. Pure.
fn charge_text(item: &NewItem) -> (&'static str, String) {
    let verb = if item.charge_type == ChargeType::Fee.as_str() {
        "fee"
    } else {
        "credit"
    };
    let amount = match (item.flat, item.percent) {
        (Some(v), _) => format!("{v:.2} USD"),
        (_, Some(p)) => format!("{p}%"),
        _ => String::new(),
    };
    (verb, amount)
}

/// Reconcile a CustomLineItem.
pub async fn reconcile(
    obj: &CustomLineItem,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<CustomLineItemStatus> {
    run.reconcile(
        obj.status.as_ref(),
        obj.metadata.generation,
        async |run, status| apply(obj, ctx, run, status).await,
    )
    .await
}

/// What the catalog and AWS hold for an item, read before anything is decided.
struct ItemObservation {
    billing: BillingContext,
    group: BcGroup,
    /// AWS names of the CustomLineItems its percentage applies to, by object name.
    applies_to: BTreeMap<String, String>,
    /// The group's other CustomLineItems that come before this one, for the quotas.
    siblings: Vec<Sibling>,
}

/// The other CustomLineItem objects of `obj`'s billing group that come before it (by
/// creation time, then name): those the quotas count besides what AWS holds.
fn siblings(obj: &CustomLineItem, namespace: &str, ctx: &ReconcileContext) -> Vec<Sibling> {
    let key = |i: &CustomLineItem| {
        (
            i.metadata.creation_timestamp.as_ref().map(|t| t.0),
            i.name_any(),
        )
    };
    let mine = key(obj);
    let group = &obj.spec.billing_group_ref.name;
    ctx.catalog
        .list_where::<CustomLineItem>(namespace, |i: &CustomLineItem| {
            &i.spec.billing_group_ref.name == group && key(i) < mine
        })
        .into_iter()
        .map(|i| Sibling {
            name: i.item_name(),
            itemized: i.spec.computation_rule == Some(ComputationRule::Itemized),
            filtered: wanted_filter(&i.spec).is_some(),
        })
        .collect()
}

/// The BillingGroup the item names, usable and created in AWS (waits otherwise), its payer's
/// Billing Conductor snapshot, and the items it applies to.
async fn observe(
    obj: &CustomLineItem,
    namespace: &str,
    ctx: &ReconcileContext,
    run: &Run,
) -> Result<ItemObservation, Error> {
    let group_ref = &obj.spec.billing_group_ref.name;
    let dependency = format!("BillingGroup {namespace}/{group_ref}");
    let group_obj = ctx
        .catalog
        .get::<crate::api::BillingGroup>(namespace, group_ref)
        .ok_or_else(|| {
            Error::waiting(
                DEPENDENCY_NOT_READY,
                format!("{dependency} does not exist"),
                DEPENDENCY_RETRY,
            )
        })?;
    usable_dependency(
        &dependency,
        "group",
        group_obj.status.as_ref().map(|s| s.conditions.as_slice()),
    )?;
    let billing =
        BillingContext::resolve(namespace, &group_obj.spec.payer_ref, ctx, run.time()).await?;
    let group = billing
        .snapshot
        .group_named(&group_obj.group_name())
        .cloned()
        .ok_or_else(|| {
            Error::waiting(
                DEPENDENCY_NOT_READY,
                format!("{dependency} is not created in AWS yet"),
                DEPENDENCY_RETRY,
            )
        })?;
    let wanted: Vec<&String> = obj
        .spec
        .percentage
        .iter()
        .flat_map(|p| &p.applies_to)
        .collect();
    let applies_to = if wanted.is_empty() {
        BTreeMap::new()
    } else {
        ctx.catalog
            .list::<crate::api::CustomLineItem>(namespace)
            .into_iter()
            .filter(|i| wanted.contains(&&i.name_any()))
            .map(|i| (i.name_any(), i.item_name()))
            .collect()
    };
    Ok(ItemObservation {
        billing,
        group,
        applies_to,
        siblings: siblings(obj, namespace, ctx),
    })
}

async fn apply(
    obj: &CustomLineItem,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut CustomLineItemStatus,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let uid = obj
        .uid()
        .unwrap_or_else(|| format!("{namespace}-{}", obj.name_any()));
    let ItemObservation {
        mut billing,
        group,
        applies_to,
        siblings,
    } = observe(obj, &namespace, ctx, run).await?;
    let name = obj.item_name();
    let owner = owner_value(&namespace, "CustomLineItem", &obj.name_any());
    let tags = with_owner(&obj.spec.tags, &owner);
    let current = billing.snapshot.current_period.clone();
    status.billing_period = Some(current.clone());
    let step = plan(
        &DesiredItem {
            spec: &obj.spec,
            namespace: &namespace,
            name: &name,
            tags: &tags,
            start_period: status.start_period.as_deref(),
            known: status.arn.is_some(),
        },
        &ItemFacts {
            snapshot: &billing.snapshot,
            group_arn: &group.arn,
            applies_to: &applies_to,
            siblings: &siblings,
        },
    )?;
    let want = match step {
        ItemStep::Ended => {
            return Ok(Verdict::ready(
                ENDED,
                format!(
                    "the item's billing periods ended before {current}; nothing left to change"
                ),
            ));
        }
        ItemStep::Create(want) => {
            let token = client_token(&uid, "item");
            if !create(&mut billing, &want, &token, run, status).await? {
                return Ok(Verdict::blocked(
                    PLANNED_ONLY,
                    format!("custom line item {name} would be created"),
                ));
            }
            want
        }
        ItemStep::Existing { have, want, update } => {
            let check = ItemCheck {
                obj,
                owner: &owner,
                uid: &uid,
            };
            converge(&check, &mut billing, &have, &want, update, run, status).await?;
            want
        }
    };
    let (verb, amount) = charge_text(&want);
    Ok(Verdict::ready(
        AVAILABLE,
        format!(
            "{verb} of {amount} on billing group {} in {current}",
            group.name
        ),
    ))
}

/// Who claims an existing item, for [`converge`].
struct ItemCheck<'a> {
    obj: &'a CustomLineItem,
    owner: &'a str,
    uid: &'a str,
}

/// Converge an existing item: before anything else is written to it, its ownership (an item
/// another resource owns is refused) and its tags; then, when `update`, its description and
/// amount.
async fn converge(
    check: &ItemCheck<'_>,
    billing: &mut BillingContext,
    have: &BcItem,
    want: &NewItem,
    update: bool,
    run: &mut Run,
    status: &mut CustomLineItemStatus,
) -> Result<(), Error> {
    let found = Found {
        arn: &have.arn,
        what: format!("custom line item {}", want.name),
        status_arn: status.arn.as_deref(),
    };
    let claimant = Claimant {
        owner: check.owner,
        adopt: check.obj.spec.adopt,
        name_field: "spec.itemName",
    };
    let audit = TagAudit {
        spec_changed: status.observed_generation != check.obj.metadata.generation,
        checked_at: status.tags_checked_at.as_deref(),
        uid: check.uid,
        now: run.time(),
    };
    let api = billing.api();
    let claim = check_claim(api.as_ref(), &found, &claimant, &audit).await?;
    let checked_at = &mut status.tags_checked_at;
    complete_claim(api.as_ref(), claim, &want.tags, checked_at, run).await?;
    if update {
        let current = billing.snapshot.current_period.clone();
        update_item(billing, have, want, &current, run).await?;
    }
    status.arn = Some(have.arn.clone());
    status
        .start_period
        .get_or_insert_with(|| want.start.clone());
    Ok(())
}

/// Create the item; whether it was (apply mode). Its status then names it.
async fn create(
    billing: &mut BillingContext,
    want: &NewItem,
    token: &str,
    run: &mut Run,
    status: &mut CustomLineItemStatus,
) -> Result<bool, Error> {
    let (verb, amount) = charge_text(want);
    let create = change(
        ChangeAction::Create,
        format!("custom line item {}", want.name),
        format!("{verb} {amount} from {}", want.start),
    );
    let api = billing.api();
    let made = |arn: &String| {
        let item = BcItem {
            arn: arn.clone(),
            name: want.name.clone(),
            description: want.description.clone(),
            group_arn: want.group_arn.clone(),
            charge_type: want.charge_type.clone(),
            flat: want.flat,
            percent: want.percent,
            account_id: want.account_id.clone(),
            computation_rule: want
                .computation_rule
                .clone()
                .unwrap_or_else(|| ComputationRule::Consolidated.as_str().to_string()),
            filter: want.filter.clone(),
            presentation_service: want.presentation_service.clone(),
        };
        move |s: &mut BillingSnapshot| s.put_item(&item)
    };
    let created = billing
        .write(run, create, || api.create_item(want, token), made)
        .await?;
    let Some(arn) = created else {
        return Ok(false);
    };
    status.arn = Some(arn);
    status.tags_checked_at = Some(run.timestamp().to_string());
    status.start_period = Some(want.start.clone());
    Ok(true)
}

/// Update the description and amount of item `have`, from billing period `current` on.
async fn update_item(
    billing: &mut BillingContext,
    have: &BcItem,
    want: &NewItem,
    current: &str,
    run: &mut Run,
) -> Result<(), Error> {
    let update = change(
        ChangeAction::Update,
        format!("custom line item {}", want.name),
        format!("description, amount or line-item filter, from {current}"),
    );
    let mut item = have.clone();
    item.description = want.description.clone();
    item.flat = want.flat;
    item.percent = want.percent;
    item.filter = want.filter.clone();
    let api = billing.api();
    billing
        .write(
            run,
            update,
            || api.update_item(&have.arn, want, current),
            move |_| move |s: &mut BillingSnapshot| s.put_item(&item),
        )
        .await?;
    Ok(())
}

/// Deletion: an item that still touches an open period is deleted; one whose periods are all
/// closed stays in AWS (it cannot be deleted) and the object is released.
pub async fn cleanup(
    obj: &CustomLineItem,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<CustomLineItemStatus> {
    run.cleanup(
        obj.status.as_ref(),
        obj.metadata.generation,
        |r| r == LEFT_IN_CLOSED_PERIOD,
        async |run, _| delete(obj, ctx, run).await,
    )
    .await
}

async fn delete(
    obj: &CustomLineItem,
    ctx: &ReconcileContext,
    run: &mut Run,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let Some(group_obj) = ctx
        .catalog
        .get::<crate::api::BillingGroup>(&namespace, &obj.spec.billing_group_ref.name)
    else {
        return Ok(Verdict::ready(
            RELEASED,
            "the BillingGroup is gone; nothing in AWS was changed",
        ));
    };
    let payer_ref = &group_obj.spec.payer_ref;
    let Some(billing) =
        BillingContext::resolve_unless_gone(&namespace, payer_ref, ctx, run.time()).await?
    else {
        return Ok(payer_gone());
    };
    let name = obj.item_name();
    let Some(item) = billing.snapshot.item_named(&name) else {
        return Ok(Verdict::ready(
            RELEASED,
            format!("custom line item {name} is not in the current period; nothing to delete"),
        ));
    };
    let found = Found {
        arn: &item.arn,
        what: format!("custom line item {name}"),
        status_arn: obj.status.as_ref().and_then(|s| s.arn.as_deref()),
    };
    let owner = owner_value(&namespace, "CustomLineItem", &obj.name_any());
    let api = billing.api();
    if let Some(why) = deletable(api.as_ref(), &found, &owner).await? {
        return Ok(Verdict::ready(RELEASED, why));
    }
    let delete = change(
        ChangeAction::Delete,
        format!("custom line item {name}"),
        "delete",
    );
    match run.write(delete, || api.delete_item(&item.arn)).await {
        Err(e) if e.aws_reason() == Some(INVALID_BILLING_PERIOD) => {
            return Ok(Verdict::ready(
                LEFT_IN_CLOSED_PERIOD,
                format!(
                    "custom line item {name} lies in a closed billing period and stays in AWS: {e}"
                ),
            ));
        }
        other => other?,
    };
    billing.invalidate();
    Ok(Verdict::ready(
        DELETED,
        format!("custom line item {name} was deleted"),
    ))
}

/// CustomLineItems that others apply to first (then by namespace and name).
pub fn applied_to_first(items: &mut [CustomLineItem]) {
    items.sort_by_key(|i| {
        (
            i.spec
                .percentage
                .as_ref()
                .is_some_and(|p| !p.applies_to.is_empty()),
            i.namespace().unwrap_or_default(),
            i.name_any(),
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(value: serde_json::Value) -> CustomLineItemSpec {
        serde_json::from_value(value).unwrap()
    }

    fn snapshot(items: Vec<BcItem>) -> BillingSnapshot {
        BillingSnapshot {
            current_period: "2026-11".into(),
            previous_period: "2026-10".into(),
            rules: vec![],
            plans: vec![],
            plan_rules: HashMap::new(),
            groups: vec![],
            group_of: HashMap::new(),
            items,
            costs: HashMap::new(),
            index: Default::default(),
        }
    }

    fn item(name: &str, arn: &str, flat: f64) -> BcItem {
        BcItem {
            arn: arn.into(),
            name: name.into(),
            description: "d".into(),
            group_arn: "g1".into(),
            charge_type: "FEE".into(),
            flat: Some(flat),
            percent: None,
            account_id: None,
            computation_rule: "CONSOLIDATED".into(),
            filter: None,
            presentation_service: None,
        }
    }

    fn step(
        spec: &CustomLineItemSpec,
        s: &BillingSnapshot,
        known: bool,
    ) -> Result<ItemStep, Error> {
        let tags = Tags::new();
        let others = BTreeMap::from([("base".to_string(), "base-item".to_string())]);
        plan(
            &DesiredItem {
                spec,
                namespace: "ns",
                name: "fee",
                tags: &tags,
                start_period: None,
                known,
            },
            &ItemFacts {
                snapshot: s,
                group_arn: "g1",
                applies_to: &others,
                siblings: &[],
            },
        )
    }

    fn itemized(name: &str) -> BcItem {
        BcItem {
            computation_rule: "ITEMIZED".into(),
            ..item(name, &format!("arn-{name}"), 1.0)
        }
    }

    #[test]
    fn the_sixth_itemized_item_of_a_group_is_refused_counting_aws_and_earlier_objects() {
        let want = spec(
            serde_json::json!({"billingGroupRef": {"name": "g"}, "description": "d",
            "type": "FEE", "percentage": {"percent": 2.0}, "computationRule": "ITEMIZED",
            "lineItemFilter": {"attribute": "SERVICE", "matchOption": "EQUAL", "value": "AmazonEC2"},
            "billingPeriod": {}}),
        );
        let tags = Tags::new();
        let others = BTreeMap::new();
        let run = |items: Vec<BcItem>, siblings: &[Sibling]| {
            let s = snapshot(items);
            plan(
                &DesiredItem {
                    spec: &want,
                    namespace: "ns",
                    name: "fee",
                    tags: &tags,
                    start_period: None,
                    known: false,
                },
                &ItemFacts {
                    snapshot: &s,
                    group_arn: "g1",
                    applies_to: &others,
                    siblings,
                },
            )
        };
        let four: Vec<BcItem> = (0..4).map(|i| itemized(&format!("i{i}"))).collect();
        let ItemStep::Create(made) = run(four.clone(), &[]).unwrap() else {
            panic!("the fifth is created");
        };
        assert_eq!(
            made.filter,
            Some(ItemFilter {
                attribute: "SERVICE".into(),
                match_option: "EQUAL".into(),
                value: "AmazonEC2".into()
            })
        );
        let earlier = Sibling {
            name: "i9".into(),
            itemized: true,
            filtered: false,
        };
        let err = run(four.clone(), std::slice::from_ref(&earlier)).unwrap_err();
        assert_eq!(err.reason(), QUOTA_EXCEEDED);
        assert!(err.to_string().contains("5 ITEMIZED"), "{err}");
        // The same name counted once; an item of another group not at all.
        let mut same = four.clone();
        same.push(BcItem {
            group_arn: "g2".into(),
            ..itemized("other-group")
        });
        let dup = Sibling {
            name: "i0".into(),
            ..earlier.clone()
        };
        assert!(run(same, &[dup]).is_ok());
        // Ten filtered items: the eleventh filter is refused.
        let filtered: Vec<BcItem> = (0..10)
            .map(|i| BcItem {
                filter: made.filter.clone(),
                ..item(&format!("f{i}"), &format!("arn-f{i}"), 1.0)
            })
            .collect();
        let err = run(filtered, &[]).unwrap_err();
        assert!(err.to_string().contains("line-item filter"), "{err}");
    }

    #[test]
    fn a_changed_filter_is_an_update_and_the_savings_plan_switch_is_a_filter() {
        let sp = spec(
            serde_json::json!({"billingGroupRef": {"name": "g"}, "description": "d",
            "type": "CREDIT", "percentage": {"percent": 5.0}, "excludeSavingsPlanNegation": true,
            "billingPeriod": {}}),
        );
        let f = wanted_filter(&sp).unwrap();
        assert_eq!(
            (
                f.attribute.as_str(),
                f.match_option.as_str(),
                f.value.as_str()
            ),
            ("LINE_ITEM_TYPE", "NOT_EQUAL", "SAVINGS_PLAN_NEGATION")
        );
        let mut have = item("fee", "i1", 0.0);
        have.flat = None;
        have.percent = Some(5.0);
        let s = snapshot(vec![have.clone()]);
        assert!(matches!(
            step(&sp, &s, true).unwrap(),
            ItemStep::Existing { update: true, .. }
        ));
        have.filter = Some(f);
        let s = snapshot(vec![have]);
        assert!(matches!(
            step(&sp, &s, true).unwrap(),
            ItemStep::Existing { update: false, .. }
        ));
    }

    #[test]
    fn an_item_is_created_in_the_current_period_then_updated_only_when_it_differs() {
        let flat = spec(
            serde_json::json!({"billingGroupRef": {"name": "g"}, "description": "d",
            "type": "FEE", "flat": {"amount": 12.5}, "billingPeriod": {}}),
        );
        let ItemStep::Create(want) = step(&flat, &snapshot(vec![]), false).unwrap() else {
            panic!("not a creation");
        };
        assert_eq!((want.start.as_str(), want.flat), ("2026-11", Some(12.5)));
        assert_eq!(charge_text(&want), ("fee", "12.50 USD".to_string()));
        let same = step(&flat, &snapshot(vec![item("fee", "i1", 12.5)]), true).unwrap();
        assert!(matches!(same, ItemStep::Existing { update: false, .. }));
        let other = step(&flat, &snapshot(vec![item("fee", "i1", 10.0)]), true).unwrap();
        assert!(matches!(other, ItemStep::Existing { update: true, .. }));
    }

    #[test]
    fn closed_and_ended_periods_are_planned_before_anything_else() {
        let old = spec(
            serde_json::json!({"billingGroupRef": {"name": "g"}, "description": "d",
            "type": "CREDIT", "percentage": {"percent": 5.0, "appliesTo": ["missing"]},
            "billingPeriod": {"start": "2026-08"}}),
        );
        let err = step(&old, &snapshot(vec![]), false).unwrap_err();
        assert_eq!(err.reason(), PERIOD_CLOSED);
        let ended = spec(
            serde_json::json!({"billingGroupRef": {"name": "g"}, "description": "d",
            "type": "FEE", "flat": {"amount": 1.0},
            "billingPeriod": {"start": "2026-09", "end": "2026-11"}}),
        );
        assert_eq!(
            step(&ended, &snapshot(vec![]), true).unwrap(),
            ItemStep::Ended
        );
    }

    #[test]
    fn a_percentage_waits_for_the_items_it_applies_to() {
        let pct = |on: &str| {
            spec(
                serde_json::json!({"billingGroupRef": {"name": "g"}, "description": "d",
                "type": "CREDIT", "percentage": {"percent": 5.0, "appliesTo": [on]},
                "billingPeriod": {}}),
            )
        };
        let err = step(&pct("missing"), &snapshot(vec![]), false).unwrap_err();
        assert_eq!(err.reason(), DEPENDENCY_NOT_READY);
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = step(&pct("base"), &snapshot(vec![]), false).unwrap_err();
        assert!(err.to_string().contains("not created in AWS yet"), "{err}");
        let s = snapshot(vec![item("base-item", "i-base", 1.0)]);
        let ItemStep::Create(want) = step(&pct("base"), &s, false).unwrap() else {
            panic!("not a creation");
        };
        assert_eq!(want.associated, vec!["i-base".to_string()]);
        assert_eq!(charge_text(&want), ("credit", "5%".to_string()));
    }

    #[test]
    fn only_the_current_and_previous_periods_are_open() {
        assert_eq!(
            check_period("2026-11", None, "2026-10", "2026-11", false),
            PeriodCheck::Open
        );
        assert_eq!(
            check_period("2026-10", None, "2026-10", "2026-11", false),
            PeriodCheck::Open
        );
        assert_eq!(
            check_period("2026-09", None, "2026-10", "2026-11", false),
            PeriodCheck::Closed("2026-09".into())
        );
        // An existing recurring item that started long ago is fine.
        assert_eq!(
            check_period("2026-01", None, "2026-10", "2026-11", true),
            PeriodCheck::Open
        );
        assert_eq!(
            check_period("2026-09", Some("2026-11"), "2026-10", "2026-11", true),
            PeriodCheck::Ended
        );
        assert_eq!(
            check_period("2026-08", Some("2026-10"), "2026-10", "2026-11", false),
            PeriodCheck::Closed("2026-08".into())
        );
    }
}
