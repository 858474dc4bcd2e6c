//! CustomLineItem: billing-period aware. Only the current and the previous period are open;
//! an item is never created or changed in an older one (a condition names the closed period).

use std::sync::Arc;

use kube::ResourceExt;

use crate::api::common::{owner_value, with_owner};
use crate::api::custom_line_item::ChargeType;
use crate::api::{CustomLineItem, CustomLineItemStatus};
use crate::aws::billing::{BcItem, NewItem};
use crate::error::Error;

use crate::billing::pricing_plan::billing_snapshot;
use crate::payer::context::payer_connection;
use crate::reconcile::ownership::{
    Claimant, Found, TagAudit, check_claim, client_token, complete_claim, deletable,
    usable_dependency,
};
use crate::reconcile::run::Run;
use crate::reconcile::{ChangeAction, KindOutcome, Mode, ReconcileContext, Verdict};
use crate::reconcile::{DEPENDENCY_RETRY, change};

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

/// Reconcile a CustomLineItem.
pub async fn reconcile(
    obj: &CustomLineItem,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<CustomLineItemStatus> {
    let mode = run.mode();
    let now = run.timestamp().to_string();
    let now = now.as_str();
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut changes = Vec::new();
    let result = apply(obj, ctx, mode, now, &mut status, &mut changes).await;
    crate::reconcile::finish(
        &previous,
        status,
        result,
        &[],
        obj.metadata.generation,
        mode,
        now,
        changes,
        Vec::new(),
    )
}

async fn apply(
    obj: &CustomLineItem,
    ctx: &ReconcileContext,
    mode: Mode,
    now: &str,
    status: &mut CustomLineItemStatus,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let plan_only = mode == Mode::Plan;
    let uid = obj
        .uid()
        .unwrap_or_else(|| format!("{namespace}-{}", obj.name_any()));
    let group_obj = ctx
        .catalog
        .billing_group(&namespace, &obj.spec.billing_group_ref.name)
        .ok_or_else(|| {
            Error::waiting(
                "DependencyNotReady",
                format!(
                    "BillingGroup {namespace}/{} does not exist",
                    obj.spec.billing_group_ref.name
                ),
                DEPENDENCY_RETRY,
            )
        })?;
    usable_dependency(
        &format!(
            "BillingGroup {namespace}/{}",
            obj.spec.billing_group_ref.name
        ),
        "group",
        group_obj.status.as_ref().map(|s| s.conditions.as_slice()),
    )?;
    let (key, _payer, conn) = payer_connection(&namespace, &group_obj.spec.payer_ref, ctx).await?;
    let snapshot = billing_snapshot(&key, &conn, ctx, now).await?;
    let group = snapshot
        .group_named(&group_obj.group_name())
        .cloned()
        .ok_or_else(|| {
            Error::waiting(
                "DependencyNotReady",
                format!(
                    "BillingGroup {namespace}/{} is not created in AWS yet",
                    obj.spec.billing_group_ref.name
                ),
                DEPENDENCY_RETRY,
            )
        })?;
    let name = obj.item_name();
    let owner = owner_value(&namespace, "CustomLineItem", &obj.name_any());
    let existing = snapshot.item_named(&name).cloned();
    let (current, previous) = (
        snapshot.current_period.clone(),
        snapshot.previous_period.clone(),
    );
    status.billing_period = Some(current.clone());
    let start = obj
        .spec
        .billing_period
        .start
        .clone()
        .or_else(|| status.start_period.clone())
        .unwrap_or_else(|| current.clone());
    match check_period(
        &start,
        obj.spec.billing_period.end.as_deref(),
        &previous,
        &current,
        existing.is_some() || status.arn.is_some(),
    ) {
        PeriodCheck::Closed(period) => {
            return Err(Error::terminal(
                "PeriodClosed",
                format!(
                    "billing period {period} is closed: custom line items can be created or changed only in {previous} and {current}; start the item in {previous} or later"
                ),
            ));
        }
        PeriodCheck::Ended => {
            return Ok(Verdict::ready(
                "Ended",
                format!(
                    "the item's billing periods ended before {current}; nothing left to change"
                ),
            ));
        }
        PeriodCheck::Open => {}
    }
    // A percentage item may apply to other items of the group.
    let mut associated = Vec::new();
    if let Some(p) = &obj.spec.percentage {
        for other in &p.applies_to {
            let o = ctx
                .catalog
                .custom_line_items(&namespace)
                .into_iter()
                .find(|i| i.name_any() == *other)
                .ok_or_else(|| {
                    Error::waiting(
                        "DependencyNotReady",
                        format!("CustomLineItem {namespace}/{other} does not exist"),
                        DEPENDENCY_RETRY,
                    )
                })?;
            let arn = snapshot
                .item_named(&o.item_name())
                .map(|i| i.arn.clone())
                .ok_or_else(|| {
                    Error::waiting(
                        "DependencyNotReady",
                        format!("CustomLineItem {namespace}/{other} is not created in AWS yet"),
                        DEPENDENCY_RETRY,
                    )
                })?;
            associated.push(arn);
        }
    }
    let want = NewItem {
        name: name.clone(),
        description: obj.spec.description.clone(),
        group_arn: group.arn.clone(),
        charge_type: obj.spec.type_.as_str().to_string(),
        flat: obj.spec.flat.as_ref().map(|f| f.amount),
        percent: obj.spec.percentage.as_ref().map(|p| p.percent),
        associated,
        start: start.clone(),
        end: obj.spec.billing_period.end.clone(),
        account_id: obj.spec.account_id.clone(),
        computation_rule: obj.spec.computation_rule.map(|c| c.as_str().to_string()),
        exclude_savings_plan_negation: obj.spec.exclude_savings_plan_negation.unwrap_or(false),
        tags: with_owner(&obj.spec.tags, &owner),
    };
    let bc = conn.billing.as_ref();
    let verb = if obj.spec.type_ == ChargeType::Fee {
        "fee"
    } else {
        "credit"
    };
    let amount = match (want.flat, want.percent) {
        (Some(v), _) => format!("{v:.2} USD"),
        (_, Some(p)) => format!("{p}%"),
        _ => String::new(),
    };
    match existing {
        None => {
            changes.push(change(
                ChangeAction::Create,
                format!("custom line item {name}"),
                format!("{verb} {amount} from {}", want.start),
            ));
            if plan_only {
                return Ok(Verdict::blocked(
                    "PlannedOnly",
                    format!("custom line item {name} would be created"),
                ));
            }
            let arn = bc.create_item(&want, &client_token(&uid, "item")).await?;
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
            ctx.billing
                .update(&key, Arc::new(move |s| s.put_item(&item)));
            status.arn = Some(arn);
            status.tags_checked_at = Some(now.to_string());
            status.start_period = Some(start.clone());
        }
        Some(have) => {
            // Before anything else is written to it: an item another resource owns is
            // refused.
            let check = check_claim(
                &conn,
                &Found {
                    arn: &have.arn,
                    what: format!("custom line item {name}"),
                    status_arn: status.arn.as_deref(),
                },
                &Claimant {
                    owner: &owner,
                    adopt: obj.spec.adopt,
                    name_field: "spec.itemName",
                },
                &TagAudit {
                    spec_changed: status.observed_generation != obj.metadata.generation,
                    checked_at: status.tags_checked_at.as_deref(),
                    uid: &uid,
                    now,
                },
            )
            .await?;
            complete_claim(
                &conn,
                check,
                &want.tags,
                &mut status.tags_checked_at,
                plan_only,
                changes,
            )
            .await?;
            if differs(&have, &want) {
                changes.push(change(
                    ChangeAction::Update,
                    format!("custom line item {name}"),
                    format!("description or amount, from {current}"),
                ));
                if !plan_only {
                    bc.update_item(&have.arn, &want, &current).await?;
                    let mut item = have.clone();
                    item.description = want.description.clone();
                    item.flat = want.flat;
                    item.percent = want.percent;
                    ctx.billing
                        .update(&key, Arc::new(move |s| s.put_item(&item)));
                }
            }
            status.arn = Some(have.arn.clone());
            if status.start_period.is_none() {
                status.start_period = Some(start.clone());
            }
        }
    }
    Ok(Verdict::ready(
        "Available",
        format!(
            "{verb} of {amount} on billing group {} in {current}",
            group.name
        ),
    ))
}

/// Deletion: an item that still touches an open period is deleted; one whose periods are all
/// closed stays in AWS (it cannot be deleted) and the object is released.
pub async fn cleanup(
    obj: &CustomLineItem,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<CustomLineItemStatus> {
    let now = run.timestamp().to_string();
    let now = now.as_str();
    let previous = obj.status.clone().unwrap_or_default();
    let status = previous.clone();
    let mut changes = Vec::new();
    let result = delete(obj, ctx, now, &mut changes).await;
    crate::reconcile::finish_cleanup(
        &previous,
        status,
        result,
        &[],
        obj.metadata.generation,
        now,
        changes,
        Vec::new(),
        |r| r == "LeftInClosedPeriod",
    )
}

async fn delete(
    obj: &CustomLineItem,
    ctx: &ReconcileContext,
    now: &str,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let Some(group_obj) = ctx
        .catalog
        .billing_group(&namespace, &obj.spec.billing_group_ref.name)
    else {
        return Ok(Verdict::ready(
            "Released",
            "the BillingGroup is gone; nothing in AWS was changed",
        ));
    };
    let (key, _payer, conn) =
        match payer_connection(&namespace, &group_obj.spec.payer_ref, ctx).await {
            Ok(x) => x,
            Err(Error::Waiting { .. }) => {
                return Ok(Verdict::ready(
                    "Released",
                    "the Payer is gone; nothing in AWS was changed",
                ));
            }
            Err(e) => return Err(e),
        };
    let snapshot = billing_snapshot(&key, &conn, ctx, now).await?;
    let name = obj.item_name();
    let Some(item) = snapshot.item_named(&name).cloned() else {
        return Ok(Verdict::ready(
            "Released",
            format!("custom line item {name} is not in the current period; nothing to delete"),
        ));
    };
    let found = Found {
        arn: &item.arn,
        what: format!("custom line item {name}"),
        status_arn: obj.status.as_ref().and_then(|s| s.arn.as_deref()),
    };
    let owner = owner_value(&namespace, "CustomLineItem", &obj.name_any());
    if let Some(why) = deletable(&conn, &found, &owner).await? {
        return Ok(Verdict::ready("Released", why));
    }
    changes.push(change(
        ChangeAction::Delete,
        format!("custom line item {name}"),
        "delete",
    ));
    match conn.billing.delete_item(&item.arn).await {
        Err(e) if e.aws_code() == Some("ResourceNotFoundException") => {}
        Err(e) if e.aws_reason() == Some("INVALID_BILLING_PERIOD_FOR_OPERATION") => {
            return Ok(Verdict::ready(
                "LeftInClosedPeriod",
                format!(
                    "custom line item {name} lies in a closed billing period and stays in AWS: {e}"
                ),
            ));
        }
        other => other?,
    }
    ctx.billing.invalidate(&key);
    Ok(Verdict::ready(
        "Deleted",
        format!("custom line item {name} was deleted"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
