//! BillingGroup: found by name, created with a ClientToken, members converged in batches of 30
//! (named LinkedAccounts, account ids, and a label selector), an account held by another
//! group reported on both and left where it is; cost reports for the current and previous
//! period in status.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use crate::api::billing_group::{CostReport, GroupDeletionPolicy};
use crate::api::common::{OWNER_TAG, owner_value, with_owner};
use crate::api::conditions::{ConditionStatus, DesiredCondition};
use crate::api::{BillingGroup, BillingGroupStatus, LinkedAccount};
use crate::aws::billing::{BcCost, BcGroup, BcItem, NewGroup};
use crate::error::Error;
use crate::money::Amount;
use crate::payer::insights::GroupCost;

use crate::billing::pricing_plan::{BATCH, billing_snapshot, record_billing};
use crate::billing::snapshot::BillingSnapshot;
use crate::payer::context::payer_connection;
use crate::reconcile::ownership::{
    Claimant, Found, REFUSED_RETRY, TagAudit, check_claim, client_token, complete_claim, deletable,
    usable_dependency,
};
use crate::reconcile::run::Run;
use crate::reconcile::{ChangeAction, EventNote, KindOutcome, Mode, ReconcileContext, Verdict};
use crate::reconcile::{DEPENDENCY_RETRY, change};

/// Condition type naming accounts two billing groups both want.
pub const CONFLICT: &str = "AccountConflict";

/// Whether `labels` match `selector` (matchLabels and matchExpressions). Pure.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// An account reference: a 12-digit id as is, else a LinkedAccount name (its account id once
/// it has one).
pub(crate) fn resolve_account(
    reference: &str,
    accounts: &[LinkedAccount],
) -> Result<String, String> {
    if reference.len() == 12 && reference.chars().all(|c| c.is_ascii_digit()) {
        return Ok(reference.to_string());
    }
    let la = accounts
        .iter()
        .find(|a| a.name_any() == reference)
        .ok_or_else(|| format!("LinkedAccount {reference} does not exist"))?;
    la.status
        .as_ref()
        .and_then(|s| s.account_id.clone())
        .ok_or_else(|| format!("LinkedAccount {reference} has no account id yet"))
}

/// Which of `members` (account ids) group `other` wants: by id, by the name of their
/// LinkedAccount (`member_accounts`), or through its selector. Pure.
pub fn wanted_members(
    other: &BillingGroup,
    members: &[String],
    member_accounts: &[LinkedAccount],
) -> BTreeSet<String> {
    let id_of = |la: &LinkedAccount| la.status.as_ref().and_then(|s| s.account_id.clone());
    let mut wanted = BTreeSet::new();
    for r in &other.spec.accounts {
        if members.contains(r) {
            wanted.insert(r.clone());
        }
        wanted.extend(
            member_accounts
                .iter()
                .filter(|la| la.metadata.name.as_deref() == Some(r.as_str()))
                .filter_map(id_of),
        );
    }
    if let Some(sel) = &other.spec.account_selector {
        wanted.extend(
            member_accounts
                .iter()
                .filter(|la| selector_matches(sel, la.labels()))
                .filter_map(id_of),
        );
    }
    wanted
}

/// Membership changes for a group. Pure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipPlan {
    pub associate: Vec<String>,
    pub disassociate: Vec<String>,
    /// Wanted accounts another group holds: account -> that group's ARN.
    pub held_elsewhere: BTreeMap<String, String>,
}

/// What to associate and disassociate so that group `arn` holds `wanted` (the primary is
/// never disassociated; accounts other groups hold are left there). Pure.
pub fn membership(
    arn: Option<&str>,
    primary: &str,
    wanted: &BTreeSet<String>,
    snapshot: &BillingSnapshot,
) -> MembershipPlan {
    let current: BTreeSet<String> = arn
        .map(|a| snapshot.members(a).into_iter().collect())
        .unwrap_or_default();
    let mut plan = MembershipPlan::default();
    for a in wanted {
        if current.contains(a) {
            continue;
        }
        match snapshot.group_of.get(a) {
            Some(other) if Some(other.as_str()) != arn => {
                plan.held_elsewhere.insert(a.clone(), other.clone());
            }
            _ => plan.associate.push(a.clone()),
        }
    }
    plan.disassociate = current
        .iter()
        .filter(|a| !wanted.contains(*a) && a.as_str() != primary)
        .cloned()
        .collect();
    plan
}

fn report(period: &str, c: &BcCost) -> CostReport {
    CostReport {
        billing_period: period.to_string(),
        aws_cost: c.aws_cost.clone(),
        proforma_cost: c.proforma_cost.clone(),
        margin: c.margin.clone(),
        margin_percentage: c.margin_percentage.clone(),
        currency: c.currency.clone(),
    }
}

/// Month-over-month change of the pro forma cost, in percent (two decimals). Pure.
pub fn change_percent(previous: &str, current: &str) -> Option<String> {
    let p = Amount::parse(previous)?;
    let c = Amount::parse(current)?;
    c.change_from(p)
}

/// Reconcile a BillingGroup.
pub async fn reconcile(
    obj: &BillingGroup,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<BillingGroupStatus> {
    let mode = run.mode();
    let now = run.timestamp().to_string();
    let now = now.as_str();
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut changes = Vec::new();
    let mut events = Vec::new();
    let result = apply(obj, ctx, mode, now, &mut status, &mut changes, &mut events).await;
    let conflict = if status.conflicts.is_empty() {
        DesiredCondition::new(
            CONFLICT,
            ConditionStatus::False,
            "NoConflict",
            "no account is wanted by another billing group",
        )
    } else {
        DesiredCondition::new(
            CONFLICT,
            ConditionStatus::True,
            "AccountWantedByAnotherGroup",
            status
                .conflicts
                .iter()
                .map(|(a, g)| format!("{a}: {g}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    // Conflicts are known only after a reconcile that got through.
    let extra: Vec<DesiredCondition> = result.is_ok().then_some(conflict).into_iter().collect();
    crate::reconcile::finish(
        &previous,
        status,
        result,
        &extra,
        obj.metadata.generation,
        mode,
        now,
        changes,
        events,
    )
}

#[allow(clippy::too_many_arguments)]
async fn apply(
    obj: &BillingGroup,
    ctx: &ReconcileContext,
    mode: Mode,
    now: &str,
    status: &mut BillingGroupStatus,
    changes: &mut Vec<crate::reconcile::Change>,
    events: &mut Vec<EventNote>,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let plan_only = mode == Mode::Plan;
    let uid = obj
        .uid()
        .unwrap_or_else(|| format!("{namespace}-{}", obj.name_any()));
    let (key, _payer, conn) = payer_connection(&namespace, &obj.spec.payer_ref, ctx).await?;
    let mut snapshot = billing_snapshot(&key, &conn, ctx, now).await?;
    let bc = conn.billing.as_ref();
    let name = obj.group_name();

    // The plan.
    let plan_obj = ctx
        .catalog
        .pricing_plan(&namespace, &obj.spec.pricing_plan_ref.name)
        .ok_or_else(|| {
            Error::waiting(
                "DependencyNotReady",
                format!(
                    "PricingPlan {namespace}/{} does not exist",
                    obj.spec.pricing_plan_ref.name
                ),
                DEPENDENCY_RETRY,
            )
        })?;
    usable_dependency(
        &format!("PricingPlan {namespace}/{}", obj.spec.pricing_plan_ref.name),
        "plan",
        plan_obj.status.as_ref().map(|s| s.conditions.as_slice()),
    )?;
    let plan_arn = snapshot
        .plan_named(&plan_obj.plan_name())
        .map(|p| p.arn.clone())
        .ok_or_else(|| {
            Error::waiting(
                "DependencyNotReady",
                format!(
                    "PricingPlan {namespace}/{} is not created in AWS yet",
                    obj.spec.pricing_plan_ref.name
                ),
                DEPENDENCY_RETRY,
            )
        })?;

    // The accounts: those named and those the selector picks (only they are copied out of
    // the catalog).
    let named: BTreeSet<&str> = std::iter::once(obj.spec.primary_account.as_str())
        .chain(obj.spec.accounts.iter().map(String::as_str))
        .collect();
    let linked = ctx.catalog.linked_accounts_where(&namespace, &|la| {
        la.metadata
            .name
            .as_deref()
            .is_some_and(|n| named.contains(n))
            || obj
                .spec
                .account_selector
                .as_ref()
                .is_some_and(|sel| selector_matches(sel, la.labels()))
    });
    let primary = resolve_account(&obj.spec.primary_account, &linked).map_err(|m| {
        Error::waiting(
            "DependencyNotReady",
            format!("primaryAccount: {m}"),
            DEPENDENCY_RETRY,
        )
    })?;
    let mut wanted: BTreeSet<String> = BTreeSet::from([primary.clone()]);
    let mut pending = Vec::new();
    for r in &obj.spec.accounts {
        match resolve_account(r, &linked) {
            Ok(id) => {
                wanted.insert(id);
            }
            Err(m) => pending.push(m),
        }
    }
    if let Some(selector) = &obj.spec.account_selector {
        for la in linked
            .iter()
            .filter(|la| selector_matches(selector, la.labels()))
        {
            match la.status.as_ref().and_then(|s| s.account_id.clone()) {
                Some(id) => {
                    wanted.insert(id);
                }
                None => pending.push(format!(
                    "LinkedAccount {} has no account id yet",
                    la.name_any()
                )),
            }
        }
    }

    let description = obj.spec.description.clone().unwrap_or_default();
    let owner = owner_value(&namespace, "BillingGroup", &obj.name_any());
    let tags = with_owner(&obj.spec.tags, &owner);
    let mut arn = snapshot.group_named(&name).map(|g| g.arn.clone());
    if let Some(g) = arn.as_deref().and_then(|a| snapshot.group(a)).cloned() {
        // Before anything is written to it: a group another resource owns is refused, and so
        // is one whose primary account differs (the tags of a group adopted are written only
        // once nothing refuses it).
        let check = check_claim(
            &conn,
            &Found {
                arn: &g.arn,
                what: format!("billing group {name}"),
                status_arn: status.arn.as_deref(),
            },
            &Claimant {
                owner: &owner,
                adopt: obj.spec.adopt,
                name_field: "spec.groupName",
            },
            &TagAudit {
                spec_changed: status.observed_generation != obj.metadata.generation,
                checked_at: status.tags_checked_at.as_deref(),
                uid: &uid,
                now,
            },
        )
        .await?;
        if g.primary_account_id != primary {
            return Err(Error::terminal(
                "PrimaryAccountMismatch",
                format!(
                    "billing group {name} has primary account {} in AWS, the spec says {primary}; AWS cannot change it",
                    g.primary_account_id
                ),
            ));
        }
        complete_claim(
            &conn,
            check,
            &tags,
            &mut status.tags_checked_at,
            plan_only,
            changes,
        )
        .await?;
        if g.plan_arn != plan_arn
            || g.description != description
            || g.auto_associate != obj.spec.auto_associate
        {
            changes.push(change(
                ChangeAction::Update,
                format!("billing group {name}"),
                "pricing plan, description or autoAssociate",
            ));
            if !plan_only {
                bc.update_group(&g.arn, &description, &plan_arn, obj.spec.auto_associate)
                    .await?;
                let (a, d, p, auto) = (
                    g.arn.clone(),
                    description.clone(),
                    plan_arn.clone(),
                    obj.spec.auto_associate,
                );
                record_billing(ctx, &key, &mut snapshot, move |s| {
                    s.update_group(&a, &d, &p, auto)
                });
            }
        }
    }
    let plan = membership(arn.as_deref(), &primary, &wanted, &snapshot);
    if arn.is_none() {
        if let Some(other) = snapshot.group_of.get(&primary) {
            return Err(Error::terminal(
                "AccountConflict",
                format!(
                    "primary account {primary} belongs to billing group {other}; it can be in one group only"
                ),
            ));
        }
        changes.push(change(
            ChangeAction::Create,
            format!("billing group {name}"),
            format!("primary {primary}"),
        ));
        if plan_only {
            if !plan.associate.is_empty() {
                changes.push(change(
                    ChangeAction::Update,
                    format!("billing group {name}"),
                    format!("associate {} account(s)", plan.associate.len()),
                ));
            }
            return Ok(Verdict::blocked(
                "PlannedOnly",
                format!("billing group {name} would be created"),
            ));
        }
        // The first 30 accounts go with the create call, the primary first.
        let mut first: Vec<String> = vec![primary.clone()];
        first.extend(
            plan.associate
                .iter()
                .filter(|a| **a != primary)
                .take(BATCH - 1)
                .cloned(),
        );
        let new = NewGroup {
            name: name.clone(),
            description: description.clone(),
            primary_account_id: primary.clone(),
            accounts: first.clone(),
            plan_arn: plan_arn.clone(),
            auto_associate: obj.spec.auto_associate,
            tags: tags.clone(),
        };
        let created = bc.create_group(&new, &client_token(&uid, "group")).await?;
        events.push(EventNote {
            warning: false,
            reason: "Created".into(),
            note: format!("billing group {name} ({created})"),
        });
        let rest: Vec<String> = plan
            .associate
            .iter()
            .filter(|a| !first.contains(a))
            .cloned()
            .collect();
        let group = BcGroup {
            arn: created.clone(),
            name: name.clone(),
            description: description.clone(),
            primary_account_id: primary.clone(),
            plan_arn: plan_arn.clone(),
            size: first.len() as i64,
            // Known when Billing Conductor is listed again.
            status: String::new(),
            status_reason: None,
            auto_associate: obj.spec.auto_associate,
        };
        let members = first.clone();
        record_billing(ctx, &key, &mut snapshot, move |s| {
            s.add_group(&group, &members)
        });
        for batch in rest.chunks(BATCH) {
            bc.associate_accounts(&created, batch).await?;
            let (a, b) = (created.clone(), batch.to_vec());
            record_billing(ctx, &key, &mut snapshot, move |s| s.associate(&a, &b));
        }
        // The new group's state and cost reports: three filtered reads for this group, not
        // a new read of everything.
        let one = std::slice::from_ref(&created);
        if let Some(listed) = bc.list_groups(Some(one)).await?.into_iter().next() {
            let mut costs = Vec::new();
            for period in [&snapshot.current_period, &snapshot.previous_period] {
                for c in bc.cost_reports(period, Some(one)).await? {
                    costs.push((period.clone(), c));
                }
            }
            record_billing(ctx, &key, &mut snapshot, move |s| {
                s.set_group_facts(&listed, &costs)
            });
        }
        arn = Some(created);
        status.tags_checked_at = Some(now.to_string());
    } else if let Some(group_arn) = &arn {
        if !plan.associate.is_empty() {
            changes.push(change(
                ChangeAction::Update,
                format!("billing group {name}"),
                format!("associate {}", plan.associate.join(", ")),
            ));
            if !plan_only {
                for batch in plan.associate.chunks(BATCH) {
                    bc.associate_accounts(group_arn, batch).await?;
                    let (a, b) = (group_arn.clone(), batch.to_vec());
                    record_billing(ctx, &key, &mut snapshot, move |s| s.associate(&a, &b));
                }
            }
        }
        if !plan.disassociate.is_empty() {
            changes.push(change(
                ChangeAction::Update,
                format!("billing group {name}"),
                format!("disassociate {}", plan.disassociate.join(", ")),
            ));
            if !plan_only {
                for batch in plan.disassociate.chunks(BATCH) {
                    bc.disassociate_accounts(group_arn, batch).await?;
                    let (a, b) = (group_arn.clone(), batch.to_vec());
                    record_billing(ctx, &key, &mut snapshot, move |s| s.disassociate(&a, &b));
                }
            }
        }
    }
    let group_arn = arn.clone().unwrap_or_default();

    // Conflicts, on both sides: accounts this group wants that another holds, and accounts
    // it holds that another group (same namespace) wants.
    let mut conflicts: BTreeMap<String, String> = plan
        .held_elsewhere
        .iter()
        .map(|(a, other)| {
            (
                a.clone(),
                format!(
                    "held by {}",
                    snapshot
                        .group(other)
                        .map(|g| g.name.clone())
                        .unwrap_or_else(|| other.clone())
                ),
            )
        })
        .collect();
    let members = snapshot.members(&group_arn);
    // Only this group's members can be in conflict: their LinkedAccounts, then the other
    // groups that want one of them (nothing else is copied out of the catalog).
    let member_set: BTreeSet<&str> = members.iter().map(String::as_str).collect();
    let member_accounts = ctx.catalog.linked_accounts_where(&namespace, &|la| {
        la.status
            .as_ref()
            .and_then(|s| s.account_id.as_deref())
            .is_some_and(|id| member_set.contains(id))
    });
    let me = obj.name_any();
    let rivals = ctx.catalog.billing_groups_where(&namespace, &|g| {
        g.metadata.name.as_deref() != Some(me.as_str())
            && !wanted_members(g, &members, &member_accounts).is_empty()
    });
    for other in &rivals {
        for a in wanted_members(other, &members, &member_accounts) {
            conflicts
                .entry(a)
                .or_insert_with(|| format!("also wanted by BillingGroup {}", other.name_any()));
        }
    }
    let g = snapshot.group(&group_arn);
    status.arn = arn.clone();
    status.state = g.map(|g| g.status.clone()).filter(|s| !s.is_empty());
    status.state_reason = g.and_then(|g| g.status_reason.clone());
    status.size = Some(members.len() as i64);
    status.members = members;
    status.conflicts = conflicts;
    status.current_period = snapshot
        .cost(&snapshot.current_period, &group_arn)
        .map(|c| report(&snapshot.current_period, c));
    status.previous_period = snapshot
        .cost(&snapshot.previous_period, &group_arn)
        .map(|c| report(&snapshot.previous_period, c));
    status.proforma_change_percent = match (&status.previous_period, &status.current_period) {
        (Some(p), Some(c)) => change_percent(&p.proforma_cost, &c.proforma_cost),
        _ => None,
    };
    let group_key =
        crate::reconcile::object_key(&obj.namespace().unwrap_or_default(), &obj.name_any());
    ctx.insights.set_group(
        &group_key,
        status.current_period.as_ref().map(|c| GroupCost {
            payer: crate::reconcile::object_key(
                &obj.namespace().unwrap_or_default(),
                &obj.spec.payer_ref.name,
            ),
            period: c.billing_period.clone(),
            currency: c.currency.clone(),
            aws_cost: Amount::parse(&c.aws_cost).unwrap_or_default(),
            proforma_cost: Amount::parse(&c.proforma_cost).unwrap_or_default(),
            margin: Amount::parse(&c.margin).unwrap_or_default(),
        }),
    );
    if !plan.held_elsewhere.is_empty() {
        return Ok(Verdict::blocked(
            "AccountConflict",
            format!(
                "{} wanted account(s) belong to another billing group and are left there: {}",
                plan.held_elsewhere.len(),
                status
                    .conflicts
                    .iter()
                    .map(|(a, g)| format!("{a} ({g})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if !pending.is_empty() {
        return Ok(Verdict::progressing(
            "DependencyNotReady",
            pending.join("; "),
            pending_retry(&linked),
        ));
    }
    let cost = status
        .current_period
        .as_ref()
        .map(|c| {
            format!(
                "; {}: AWS cost {} {}, billed {}, margin {}",
                c.billing_period, c.aws_cost, c.currency, c.proforma_cost, c.margin
            )
        })
        .unwrap_or_default();
    Ok(Verdict::ready(
        "Available",
        format!(
            "billing group {name} with {} account(s){cost}",
            status.size.unwrap_or(0)
        ),
    ))
}

/// How soon to look again while member accounts have no id yet: soon while an account of
/// the namespace is being created (minutes; `apply` waits for it), else in a minute (an
/// invited account joins when its owner accepts, which can take days).
fn pending_retry(linked: &[LinkedAccount]) -> std::time::Duration {
    let creating = linked.iter().any(|la| {
        la.spec.create.is_some() && la.status.as_ref().is_none_or(|s| s.account_id.is_none())
    });
    if creating {
        DEPENDENCY_RETRY
    } else {
        std::time::Duration::from_secs(60)
    }
}

/// Deletion: `Retain` releases; `Delete` deletes the group's custom line items (only those a
/// CustomLineItem of this namespace owns: any other one refuses the deletion), then the group.
pub async fn cleanup(
    obj: &BillingGroup,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<BillingGroupStatus> {
    let now = run.timestamp().to_string();
    let now = now.as_str();
    let previous = obj.status.clone().unwrap_or_default();
    let status = previous.clone();
    let mut changes = Vec::new();
    let result = delete(obj, ctx, now, &mut changes).await;
    if result.is_ok() {
        ctx.insights.set_group(
            &crate::reconcile::object_key(&obj.namespace().unwrap_or_default(), &obj.name_any()),
            None,
        );
    }
    crate::reconcile::finish_cleanup(
        &previous,
        status,
        result,
        &[],
        obj.metadata.generation,
        now,
        changes,
        Vec::new(),
        |_| false,
    )
}

async fn delete(
    obj: &BillingGroup,
    ctx: &ReconcileContext,
    now: &str,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    if obj.spec.deletion_policy == GroupDeletionPolicy::Retain {
        return Ok(Verdict::ready(
            "Released",
            "deletionPolicy Retain: the billing group stays in AWS",
        ));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let (key, _payer, conn) = match payer_connection(&namespace, &obj.spec.payer_ref, ctx).await {
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
    let name = obj.group_name();
    let Some(group) = snapshot.group_named(&name).cloned() else {
        return Ok(Verdict::ready(
            "Released",
            format!("billing group {name} does not exist in AWS"),
        ));
    };
    let found = Found {
        arn: &group.arn,
        what: format!("billing group {name}"),
        status_arn: obj.status.as_ref().and_then(|s| s.arn.as_deref()),
    };
    let owner = owner_value(&namespace, "BillingGroup", &obj.name_any());
    if let Some(why) = deletable(&conn, &found, &owner).await? {
        return Ok(Verdict::ready("Released", why));
    }
    let bc = conn.billing.as_ref();
    // AWS deletes no group that still has custom line items. Those a CustomLineItem of this
    // namespace owns go with the group (deleting it forces them); any other one (made by
    // hand, or owned elsewhere) stops the deletion: it is not ours to delete.
    let items: Vec<&BcItem> = snapshot
        .items
        .iter()
        .filter(|i| i.group_arn == group.arn)
        .collect();
    let ours = owner_value(&namespace, "CustomLineItem", "");
    let mut foreign = Vec::new();
    for item in &items {
        let tags = match bc.list_tags(&item.arn).await {
            Ok(tags) => tags,
            Err(e) if e.aws_code() == Some("ResourceNotFoundException") => continue,
            Err(e) => return Err(e),
        };
        match tags.get(OWNER_TAG) {
            Some(o) if o.len() > ours.len() && o.starts_with(&ours) => {}
            Some(o) => foreign.push(format!("{} (managed by {o})", item.name)),
            None => foreign.push(format!("{} (no {OWNER_TAG} tag)", item.name)),
        }
    }
    if !foreign.is_empty() {
        return Err(Error::waiting(
            "GroupHasForeignItems",
            format!(
                "billing group {name} holds custom line items this operator does not manage: {}; delete or move them, or set deletionPolicy: Retain",
                foreign.join(", ")
            ),
            REFUSED_RETRY,
        ));
    }
    for item in items {
        changes.push(change(
            ChangeAction::Delete,
            format!("custom line item {}", item.name),
            "delete with its billing group",
        ));
        match bc.delete_item(&item.arn).await {
            Err(e) if e.aws_code() == Some("ResourceNotFoundException") => {}
            other => other?,
        }
    }
    changes.push(change(
        ChangeAction::Delete,
        format!("billing group {name}"),
        "delete",
    ));
    match bc.delete_group(&group.arn).await {
        Err(e) if e.aws_code() == Some("ResourceNotFoundException") => {}
        other => other?,
    }
    ctx.billing.invalidate(&key);
    Ok(Verdict::ready(
        "Deleted",
        format!(
            "billing group {name} was deleted; its accounts fall back to the payer's default billing"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use std::collections::HashMap;

    fn snap(group_of: &[(&str, &str)]) -> BillingSnapshot {
        BillingSnapshot {
            current_period: "2026-11".into(),
            previous_period: "2026-10".into(),
            rules: vec![],
            plans: vec![],
            plan_rules: HashMap::new(),
            groups: vec![],
            group_of: group_of
                .iter()
                .map(|(a, g)| (a.to_string(), g.to_string()))
                .collect(),
            items: vec![],
            costs: HashMap::new(),
        }
    }

    #[test]
    fn rival_groups_want_members_by_id_name_or_selector() {
        let la = |name: &str, id: &str, team: &str| -> LinkedAccount {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
                "metadata": {"name": name, "namespace": "ns", "labels": {"team": team}},
                "spec": {"payerRef": {"name": "p"}, "adopt": {"accountId": id}},
                "status": {"accountId": id}
            }))
            .unwrap()
        };
        let group = |accounts: &[&str], team: Option<&str>| -> BillingGroup {
            let mut spec = serde_json::json!({"payerRef": {"name": "p"}, "primaryAccount": "999999999999",
                "pricingPlanRef": {"name": "plan"}, "accounts": accounts});
            if let Some(t) = team {
                spec["accountSelector"] = serde_json::json!({"matchLabels": {"team": t}});
            }
            serde_json::from_value(serde_json::json!({
                "apiVersion": "partnerbilling.io/v1alpha1", "kind": "BillingGroup",
                "metadata": {"name": "other", "namespace": "ns"}, "spec": spec
            }))
            .unwrap()
        };
        let members = vec!["111111111111".to_string(), "222222222222".to_string()];
        let member_accounts = vec![
            la("ops", "111111111111", "a"),
            la("dev", "222222222222", "b"),
        ];
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            wanted_members(
                &group(&["111111111111", "333333333333"], None),
                &members,
                &member_accounts
            ),
            ids(&["111111111111"])
        );
        assert_eq!(
            wanted_members(
                &group(&["dev", "elsewhere"], None),
                &members,
                &member_accounts
            ),
            ids(&["222222222222"])
        );
        assert_eq!(
            wanted_members(&group(&[], Some("a")), &members, &member_accounts),
            ids(&["111111111111"])
        );
        assert!(
            wanted_members(&group(&["nobody"], Some("c")), &members, &member_accounts).is_empty()
        );
    }

    #[test]
    fn membership_associates_missing_disassociates_extra_and_leaves_others_alone() {
        let s = snap(&[
            ("111111111111", "g1"),
            ("222222222222", "g1"),
            ("333333333333", "g2"),
        ]);
        let wanted: BTreeSet<String> = ["111111111111", "333333333333", "444444444444"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = membership(Some("g1"), "111111111111", &wanted, &s);
        assert_eq!(p.associate, vec!["444444444444"]);
        assert_eq!(p.disassociate, vec!["222222222222"]);
        assert_eq!(
            p.held_elsewhere.get("333333333333").map(String::as_str),
            Some("g2")
        );
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: BTreeMap<String, String> = [
            ("tier".to_string(), "gold".to_string()),
            ("team".to_string(), "a".to_string()),
        ]
        .into();
        let sel = LabelSelector {
            match_labels: Some([("tier".to_string(), "gold".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "team".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert!(selector_matches(&sel, &labels));
        let sel = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "legacy".into(),
                operator: "Exists".into(),
                values: None,
            }]),
        };
        assert!(!selector_matches(&sel, &labels));
    }

    #[test]
    fn month_over_month() {
        assert_eq!(change_percent("100.00", "125.00").as_deref(), Some("25.00"));
        assert_eq!(change_percent("0.00", "10.00"), None);
    }
}
