//! CustomLineItem: billing-period aware. Only the current and the previous period are open;
//! an item is never created or changed in an older one (a condition names the closed period).
//! Observe (the group, the item and the items it applies to, from the shared snapshot), plan
//! (pure: the period check and the item AWS should hold), then claim and write through the
//! billing write path.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::api::common::{owner_value, with_owner};
use crate::api::custom_line_item::{ChargeType, CustomLineItemSpec};
use crate::api::{CustomLineItem, CustomLineItemStatus};
use crate::aws::billing::{BcGroup, BcItem, INVALID_BILLING_PERIOD, NewItem};
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
    PLANNED_ONLY, RELEASED,
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

fn differs(have: &BcItem, want: &NewItem) -> bool {
    have.description != want.description || have.flat != want.flat || have.percent != want.percent
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
        have: BcItem,
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
        exclude_savings_plan_negation: spec.exclude_savings_plan_negation.unwrap_or(false),
        tags: desired.tags.clone(),
    };
    Ok(match existing {
        None => ItemStep::Create(want),
        Some(have) => ItemStep::Existing {
            update: differs(have, &want),
            have: have.clone(),
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
    mut run: Run,
) -> KindOutcome<CustomLineItemStatus> {
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let result = apply(obj, ctx, &mut run, &mut status).await;
    run.finish(&previous, status, result, &[], obj.metadata.generation)
}

/// What the catalog and AWS hold for an item, read before anything is decided.
struct ItemObservation {
    billing: BillingContext,
    group: BcGroup,
    /// AWS names of the CustomLineItems its percentage applies to, by object name.
    applies_to: BTreeMap<String, String>,
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
        format!("description or amount, from {current}"),
    );
    let mut item = have.clone();
    item.description = want.description.clone();
    item.flat = want.flat;
    item.percent = want.percent;
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
    mut run: Run,
) -> KindOutcome<CustomLineItemStatus> {
    let previous = obj.status.clone().unwrap_or_default();
    let status = previous.clone();
    let result = delete(obj, ctx, &mut run).await;
    run.finish_cleanup(
        &previous,
        status,
        result,
        &[],
        obj.metadata.generation,
        |r| r == LEFT_IN_CLOSED_PERIOD,
    )
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
            },
        )
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
