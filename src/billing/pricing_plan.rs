//! PricingPlan: one AWS pricing rule per entry (named after the plan, the entry and its
//! fields AWS cannot update), the plan, and the associations in batches of 30. A change to
//! such a field replaces the rule: the new one is created and associated before the old one
//! is disassociated and deleted, so the plan is never without it.
//!
//! Ownership: the plan and its rules carry the owner tag of the PricingPlan object. A plan or
//! rule found by name that another resource owns is refused (`OwnedElsewhere`), one without
//! the tag only with `spec.adopt` (`AdoptionRequired`). Only rules named like this plan's and
//! carrying its owner tag are ever retired.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::ResourceExt;

use crate::api::common::{OWNER_TAG, owner_value, with_owner};
use crate::api::pricing_plan::PricingRule;
use crate::api::{PricingPlan, PricingPlanStatus};
use crate::aws::Connection;
use crate::aws::billing::{BcRule, NewRule};
use crate::aws::organizations::Tags;
use crate::error::Error;

use crate::billing::snapshot::BillingSnapshot;
use crate::payer::context::payer_connection;
use crate::reconcile::change;
use crate::reconcile::ownership::{
    Claim, Claimant, Found, TagAudit, check_claim, claim, client_token, complete_claim, deletable,
    fnv,
};
use crate::reconcile::run::Run;
use crate::reconcile::{ChangeAction, KindOutcome, Mode, ReconcileContext, Verdict};

/// AWS accepts at most this many rules or accounts in one associate call.
pub const BATCH: usize = 30;

/// The AWS name of a rule: plan name, entry name, and a hash of what AWS cannot update, so
/// that changing one of those names a new rule. Pure.
pub fn rule_aws_name(plan: &str, rule: &PricingRule) -> String {
    let fixed = [
        rule.scope.as_str(),
        rule.service.as_deref().unwrap_or(""),
        rule.billing_entity.map(|b| b.as_str()).unwrap_or(""),
        rule.usage_type.as_deref().unwrap_or(""),
        rule.operation.as_deref().unwrap_or(""),
    ];
    let plan: String = plan.chars().take(50).collect();
    format!("{plan}.{}.{}", rule.name, &fnv(&fixed)[..6])
}

fn new_rule(aws_name: &str, rule: &PricingRule, tags: &BTreeMap<String, String>) -> NewRule {
    NewRule {
        name: aws_name.to_string(),
        description: rule.description.clone().unwrap_or_default(),
        scope: rule.scope.as_str().to_string(),
        type_: rule.type_.as_str().to_string(),
        modifier_percentage: rule.modifier_percentage,
        service: rule.service.clone(),
        billing_entity: rule.billing_entity.map(|b| b.as_str().to_string()),
        usage_type: rule.usage_type.clone(),
        operation: rule.operation.clone(),
        free_tier: rule.free_tier,
        tags: tags.clone(),
    }
}

fn needs_update(have: &BcRule, want: &NewRule) -> bool {
    have.description != want.description
        || have.type_ != want.type_
        || (want.type_ != "TIERING" && have.modifier_percentage != want.modifier_percentage)
        || (want.free_tier.is_some() && have.free_tier != want.free_tier)
}

/// Whether `name` has the shape of the AWS name of a rule of plan `plan_name`:
/// `<plan>.<entry>.<6 hex digits>` (see [`rule_aws_name`]). Entries may contain dots, so the
/// rules of plan `std.gold` also have the shape of rules of plan `std`: only the owner tag
/// tells them apart. Pure.
pub fn has_rule_name_of(plan_name: &str, name: &str) -> bool {
    let prefix: String = plan_name.chars().take(50).collect::<String>() + ".";
    let Some(rest) = name.strip_prefix(&prefix) else {
        return false;
    };
    let Some((entry, hash)) = rest.rsplit_once('.') else {
        return false;
    };
    hash.len() == 6
        && hash
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        && (1..=64).contains(&entry.len())
        && entry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=.@-".contains(c))
}

/// Owner tag of each rule whose tags were read (`None`: the rule has no owner tag), by ARN.
pub type RuleOwners = BTreeMap<String, Option<String>>;

/// Plan ARNs each rule ARN is associated with. Pure.
fn plans_of(snapshot: &BillingSnapshot) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (plan, rules) in &snapshot.plan_rules {
        for r in rules {
            out.entry(r.as_str()).or_default().insert(plan.as_str());
        }
    }
    out
}

/// Rules whose owner tag must be read before planning (ARNs): rules named like this plan's
/// that an entry wants but that are not associated with the plan (left by an interrupted
/// run, or another resource's rule of the same name), and rules named like this plan's that
/// no entry wants and that are associated with this plan or with no plan at all (candidates
/// for retirement). Rules associated only with other plans belong to those plans and are
/// not read. In a converged payer this is empty. Pure.
pub fn rules_to_inspect(
    plan_name: &str,
    wanted: &BTreeSet<String>,
    plan_arn: Option<&str>,
    snapshot: &BillingSnapshot,
) -> Vec<String> {
    let plans = plans_of(snapshot);
    snapshot
        .rules
        .iter()
        .filter(|r| has_rule_name_of(plan_name, &r.name))
        .filter(|r| {
            let associated = plans.get(r.arn.as_str());
            let in_this = plan_arn.is_some_and(|p| associated.is_some_and(|a| a.contains(p)));
            let elsewhere = associated.is_some_and(|a| a.iter().any(|p| Some(*p) != plan_arn));
            if wanted.contains(&r.name) {
                !in_this
            } else {
                !elsewhere
            }
        })
        .map(|r| r.arn.clone())
        .collect()
}

/// Wanted rules already associated with plan `plan_arn` (ARNs). Their owner tags are read
/// too when the plan is adopted (and at its tag audits with `spec.adopt`): a plan made by
/// hand may hold rules made by hand, which must carry the owner tag to be retired once their
/// entry goes. Pure.
pub fn wanted_rules_in_plan(
    wanted: &BTreeSet<String>,
    plan_arn: &str,
    snapshot: &BillingSnapshot,
) -> Vec<String> {
    let associated: BTreeSet<&str> = snapshot
        .plan_rules
        .get(plan_arn)
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default();
    snapshot
        .rules
        .iter()
        .filter(|r| wanted.contains(&r.name) && associated.contains(r.arn.as_str()))
        .map(|r| r.arn.clone())
        .collect()
}

/// One step of the plan.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanStep {
    CreatePlan,
    UpdatePlan,
    CreateRule {
        entry: String,
        rule: NewRule,
    },
    UpdateRule {
        entry: String,
        arn: String,
        rule: NewRule,
    },
    /// Take over rules of the wanted names that carry no owner tag (`spec.adopt`): tag them.
    AdoptRules {
        rules: Vec<(String, String)>,
    },
    /// Associate these rules (entry names; ARNs are known once created), in batches.
    Associate {
        entries: Vec<String>,
    },
    /// Disassociate and delete rules the plan no longer wants (AWS names and ARNs).
    Retire {
        rules: Vec<(String, String)>,
    },
}

/// What a PricingPlan wants, for [`plan`].
#[derive(Clone, Debug)]
pub struct DesiredPlan<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub rules: &'a [PricingRule],
    /// Tags of the plan and its rules, the owner tag included.
    pub tags: &'a BTreeMap<String, String>,
    pub claimant: Claimant<'a>,
}

/// What to do for a pricing plan whose ownership was checked, given the owner tags of the
/// rules [`rules_to_inspect`] (and, on adoption, [`wanted_rules_in_plan`]) named. Refuses a
/// wanted rule name another resource's rule (or, without `spec.adopt`, an unowned rule)
/// already has; with `spec.adopt` unowned ones are tagged, in the plan or not. Pure.
pub fn plan(
    want: &DesiredPlan<'_>,
    snapshot: &BillingSnapshot,
    owners: &RuleOwners,
) -> Result<Vec<PlanStep>, Error> {
    let plan_name = want.name;
    let mut steps = Vec::new();
    let existing = snapshot.plan_named(plan_name);
    match existing {
        None => steps.push(PlanStep::CreatePlan),
        Some(p) if p.description != want.description => steps.push(PlanStep::UpdatePlan),
        Some(_) => {}
    }
    let associated: BTreeSet<&str> = existing
        .and_then(|p| snapshot.plan_rules.get(&p.arn))
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut to_associate = Vec::new();
    let mut to_adopt = Vec::new();
    let mut wanted_names = BTreeSet::new();
    for r in want.rules {
        let aws_name = rule_aws_name(plan_name, r);
        wanted_names.insert(aws_name.clone());
        let rule = new_rule(&aws_name, r, want.tags);
        match snapshot.rule_named(&aws_name) {
            None => {
                steps.push(PlanStep::CreateRule {
                    entry: r.name.clone(),
                    rule,
                });
                to_associate.push(r.name.clone());
            }
            Some(have) => {
                let in_plan = associated.contains(have.arn.as_str());
                // A rule in this plan was put there by this plan, unless its owner tag was
                // read (the plan is being adopted); any other was inspected.
                let owner = match owners.get(&have.arn) {
                    Some(owner) => Some(owner),
                    None if in_plan => None,
                    None => {
                        return Err(Error::retryable(
                            "AwsChanged",
                            format!(
                                "pricing rule {aws_name} changed while it was read; looking again"
                            ),
                        ));
                    }
                };
                if let Some(owner) = owner {
                    let tags: Tags = owner
                        .iter()
                        .map(|o| (OWNER_TAG.to_string(), o.clone()))
                        .collect();
                    let what = format!("pricing rule {aws_name} (entry {})", r.name);
                    if claim(&tags, &want.claimant, &what)? == Claim::Adopt {
                        to_adopt.push((aws_name.clone(), have.arn.clone()));
                    }
                }
                if needs_update(have, &rule) {
                    steps.push(PlanStep::UpdateRule {
                        entry: r.name.clone(),
                        arn: have.arn.clone(),
                        rule,
                    });
                }
                if !in_plan {
                    to_associate.push(r.name.clone());
                }
            }
        }
    }
    if !to_adopt.is_empty() {
        steps.push(PlanStep::AdoptRules { rules: to_adopt });
    }
    if !to_associate.is_empty() {
        steps.push(PlanStep::Associate {
            entries: to_associate,
        });
    }
    // This plan's rules that no entry wants any more: associated ones and orphans left by an
    // interrupted replacement. Only rules with this object's owner tag: names alone cannot
    // tell plan `std`'s rules from plan `std.gold`'s.
    let mut retire: Vec<(String, String)> = snapshot
        .rules
        .iter()
        .filter(|r| has_rule_name_of(plan_name, &r.name) && !wanted_names.contains(&r.name))
        .filter(|r| {
            owners
                .get(&r.arn)
                .is_some_and(|o| o.as_deref() == Some(want.claimant.owner))
        })
        .map(|r| (r.name.clone(), r.arn.clone()))
        .collect();
    retire.sort();
    if !retire.is_empty() {
        steps.push(PlanStep::Retire { rules: retire });
    }
    Ok(steps)
}

/// Read the owner tag of each rule in `arns` (one ListTagsForResource each). A rule deleted
/// meanwhile is left out.
pub async fn rule_owners(conn: &Connection, arns: &[String]) -> Result<RuleOwners, Error> {
    let mut out = RuleOwners::new();
    for arn in arns {
        match conn.billing.list_tags(arn).await {
            Ok(tags) => {
                out.insert(arn.clone(), tags.get(OWNER_TAG).cloned());
            }
            Err(e) if e.aws_code() == Some("ResourceNotFoundException") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Reconcile a PricingPlan.
pub async fn reconcile(
    obj: &PricingPlan,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<PricingPlanStatus> {
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

/// Apply one of the operator's own Billing Conductor writes to the shared snapshot of payer
/// `key` and to `local`, instead of reading everything again.
pub fn record_billing(
    ctx: &ReconcileContext,
    key: &str,
    local: &mut Arc<BillingSnapshot>,
    write: impl Fn(&mut BillingSnapshot) + Send + Sync + 'static,
) {
    let write: crate::payer::snapshot::Write<BillingSnapshot> = Arc::new(write);
    match ctx.billing.update(key, write.clone()) {
        Some(s) => *local = s,
        None => write(Arc::make_mut(local)),
    }
}

/// The shared Billing Conductor snapshot of payer `key`, read once and then reused.
pub async fn billing_snapshot(
    key: &str,
    conn: &Connection,
    ctx: &ReconcileContext,
    now: &str,
) -> Result<Arc<BillingSnapshot>, Error> {
    ctx.billing
        .get_or_load(key, || BillingSnapshot::load(conn, now))
        .await
}

async fn apply(
    obj: &PricingPlan,
    ctx: &ReconcileContext,
    mode: Mode,
    now: &str,
    status: &mut PricingPlanStatus,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let plan_only = mode == Mode::Plan;
    let uid = obj
        .uid()
        .unwrap_or_else(|| format!("{namespace}-{}", obj.name_any()));
    let (key, _payer, conn) = payer_connection(&namespace, &obj.spec.payer_ref, ctx).await?;
    let snapshot = billing_snapshot(&key, &conn, ctx, now).await?;
    let name = obj.plan_name();
    let description = obj.spec.description.clone().unwrap_or_default();
    let owner = owner_value(&namespace, "PricingPlan", &obj.name_any());
    let tags = with_owner(&obj.spec.tags, &owner);
    let want = DesiredPlan {
        name: &name,
        description: &description,
        rules: &obj.spec.rules,
        tags: &tags,
        claimant: Claimant {
            owner: &owner,
            adopt: obj.spec.adopt,
            name_field: "spec.planName",
        },
    };
    let bc = conn.billing.as_ref();
    let mut plan_arn = snapshot.plan_named(&name).map(|p| p.arn.clone());
    // Every judgement before any write: the plan's owner, then its rules' (in `plan`).
    let plan_claim = match &plan_arn {
        Some(arn) => Some(
            check_claim(
                &conn,
                &Found {
                    arn,
                    what: format!("pricing plan {name}"),
                    status_arn: status.arn.as_deref(),
                },
                &want.claimant,
                &TagAudit {
                    spec_changed: status.observed_generation != obj.metadata.generation,
                    checked_at: status.tags_checked_at.as_deref(),
                    uid: &uid,
                    now,
                },
            )
            .await?,
        ),
        None => None,
    };
    let wanted: BTreeSet<String> = obj
        .spec
        .rules
        .iter()
        .map(|r| rule_aws_name(&name, r))
        .collect();
    let mut inspect = rules_to_inspect(&name, &wanted, plan_arn.as_deref(), &snapshot);
    if let (Some(arn), Some(check)) = (&plan_arn, &plan_claim)
        && check.was_read()
        && obj.spec.adopt
    {
        inspect.extend(wanted_rules_in_plan(&wanted, arn, &snapshot));
    }
    let owners = rule_owners(&conn, &inspect).await?;
    let steps = plan(&want, &snapshot, &owners)?;
    if let Some(check) = plan_claim {
        complete_claim(
            &conn,
            check,
            &tags,
            &mut status.tags_checked_at,
            plan_only,
            changes,
        )
        .await?;
    }
    let mut rule_arns: BTreeMap<String, String> = obj
        .spec
        .rules
        .iter()
        .filter_map(|r| {
            snapshot
                .rule_named(&rule_aws_name(&name, r))
                .map(|x| (r.name.clone(), x.arn.clone()))
        })
        .collect();
    let mut wrote = false;
    for step in &steps {
        match step {
            PlanStep::CreatePlan => {
                changes.push(change(
                    ChangeAction::Create,
                    format!("pricing plan {name}"),
                    "",
                ));
                if !plan_only {
                    plan_arn = Some(
                        bc.create_plan(&name, &description, &tags, &client_token(&uid, "plan"))
                            .await?,
                    );
                    wrote = true;
                }
            }
            PlanStep::UpdatePlan => {
                changes.push(change(
                    ChangeAction::Update,
                    format!("pricing plan {name}"),
                    "description",
                ));
                if !plan_only && let Some(arn) = &plan_arn {
                    bc.update_plan(arn, &description).await?;
                    wrote = true;
                }
            }
            PlanStep::CreateRule { entry, rule } => {
                changes.push(change(
                    ChangeAction::Create,
                    format!("pricing rule {}", rule.name),
                    format!(
                        "{} {} {:?}%",
                        rule.scope,
                        rule.type_,
                        rule.modifier_percentage.unwrap_or(0.0)
                    ),
                ));
                if !plan_only {
                    let arn = bc
                        .create_rule(rule, &client_token(&uid, &rule.name))
                        .await?;
                    rule_arns.insert(entry.clone(), arn);
                    wrote = true;
                }
            }
            PlanStep::UpdateRule { arn, rule, .. } => {
                changes.push(change(
                    ChangeAction::Update,
                    format!("pricing rule {}", rule.name),
                    "description, type or percentage",
                ));
                if !plan_only {
                    bc.update_rule(arn, rule).await?;
                    wrote = true;
                }
            }
            PlanStep::AdoptRules { rules } => {
                for (rule_name, arn) in rules {
                    changes.push(change(
                        ChangeAction::Update,
                        format!("pricing rule {rule_name}"),
                        format!("adopt: add the {OWNER_TAG} tag"),
                    ));
                    if !plan_only {
                        bc.tag(arn, &tags).await?;
                        wrote = true;
                    }
                }
            }
            PlanStep::Associate { entries } => {
                changes.push(change(
                    ChangeAction::Update,
                    format!("pricing plan {name}"),
                    format!("associate {} rule(s)", entries.len()),
                ));
                if !plan_only && let Some(plan) = &plan_arn {
                    let arns: Vec<String> = entries
                        .iter()
                        .filter_map(|e| rule_arns.get(e).cloned())
                        .collect();
                    for batch in arns.chunks(BATCH) {
                        bc.associate_rules(plan, batch).await?;
                    }
                    wrote = true;
                }
            }
            PlanStep::Retire { rules } => {
                for (rule_name, _) in rules {
                    changes.push(change(
                        ChangeAction::Delete,
                        format!("pricing rule {rule_name}"),
                        "disassociate and delete",
                    ));
                }
                if !plan_only {
                    let associated: BTreeSet<String> = plan_arn
                        .as_ref()
                        .and_then(|p| snapshot.plan_rules.get(p))
                        .map(|v| v.iter().cloned().collect())
                        .unwrap_or_default();
                    let attached: Vec<String> = rules
                        .iter()
                        .filter(|(_, a)| associated.contains(a))
                        .map(|(_, a)| a.clone())
                        .collect();
                    if let Some(plan) = &plan_arn {
                        for batch in attached.chunks(BATCH) {
                            bc.disassociate_rules(plan, batch).await?;
                        }
                    }
                    for (_, arn) in rules {
                        match bc.delete_rule(arn).await {
                            Err(e) if e.aws_code() == Some("ResourceNotFoundException") => {}
                            other => other?,
                        }
                    }
                    wrote = true;
                }
            }
        }
    }
    if wrote {
        ctx.billing.invalidate(&key);
    }
    if !plan_only && steps.iter().any(|s| matches!(s, PlanStep::CreatePlan)) {
        status.tags_checked_at = Some(now.to_string());
    }
    // What AWS reports as associated: the listed size when nothing was written, else the
    // plan's rules read again (one ListPricingRulesAssociatedToPricingPlan).
    status.size = match &plan_arn {
        Some(arn) if wrote => Some(bc.list_plan_rule_arns(arn).await?.len() as i64),
        Some(_) => snapshot.plan_named(&name).map(|p| p.size),
        None => None,
    };
    status.arn = plan_arn.clone();
    status.rule_arns = rule_arns;
    match plan_arn {
        Some(arn) => Ok(Verdict::ready(
            "Available",
            format!(
                "pricing plan {name} ({arn}) with {} rule(s) associated",
                status.size.unwrap_or(0)
            ),
        )),
        None => Ok(Verdict::blocked(
            "PlannedOnly",
            format!("pricing plan {name} would be created"),
        )),
    }
}

/// Deletion: the plan's rules are disassociated and deleted, then the plan (refused by AWS
/// while a billing group uses it: the object waits).
pub async fn cleanup(
    obj: &PricingPlan,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<PricingPlanStatus> {
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
        |_| false,
    )
}

async fn delete(
    obj: &PricingPlan,
    ctx: &ReconcileContext,
    now: &str,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
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
    let name = obj.plan_name();
    let Some(plan) = snapshot.plan_named(&name).cloned() else {
        return Ok(Verdict::ready(
            "Released",
            format!("pricing plan {name} does not exist in AWS"),
        ));
    };
    let owner = owner_value(&namespace, "PricingPlan", &obj.name_any());
    let found = Found {
        arn: &plan.arn,
        what: format!("pricing plan {name}"),
        status_arn: obj.status.as_ref().and_then(|s| s.arn.as_deref()),
    };
    if let Some(why) = deletable(&conn, &found, &owner).await? {
        return Ok(Verdict::ready("Released", why));
    }
    if let Some(g) = snapshot.groups.iter().find(|g| g.plan_arn == plan.arn) {
        return Err(Error::waiting(
            "PlanInUse",
            format!(
                "pricing plan {name} is used by billing group {}; point it at another plan or delete it first",
                g.name
            ),
            std::time::Duration::from_secs(30),
        ));
    }
    let bc = conn.billing.as_ref();
    let associated = snapshot
        .plan_rules
        .get(&plan.arn)
        .cloned()
        .unwrap_or_default();
    // The rules this object owns: named like the plan's, in this plan or in none, with its
    // owner tag (rules of plans whose names start the same are left alone).
    let candidates = rules_to_inspect(&name, &BTreeSet::new(), Some(&plan.arn), &snapshot);
    let owners = rule_owners(&conn, &candidates).await?;
    for batch in associated.chunks(BATCH) {
        bc.disassociate_rules(&plan.arn, batch).await?;
    }
    for r in snapshot.rules.iter().filter(|r| {
        owners
            .get(&r.arn)
            .is_some_and(|o| o.as_deref() == Some(owner.as_str()))
    }) {
        changes.push(change(
            ChangeAction::Delete,
            format!("pricing rule {}", r.name),
            "delete",
        ));
        match bc.delete_rule(&r.arn).await {
            Err(e) if e.aws_code() == Some("ResourceNotFoundException") => {}
            other => other?,
        }
    }
    changes.push(change(
        ChangeAction::Delete,
        format!("pricing plan {name}"),
        "delete",
    ));
    bc.delete_plan(&plan.arn).await?;
    ctx.billing.invalidate(&key);
    Ok(Verdict::ready(
        "Deleted",
        format!("pricing plan {name} and its rules were deleted"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pricing_plan::{RuleScope, RuleType};
    use std::collections::HashMap;

    fn rule(name: &str, scope: RuleScope, service: Option<&str>, pct: f64) -> PricingRule {
        PricingRule {
            name: name.into(),
            description: None,
            scope,
            type_: RuleType::Markup,
            modifier_percentage: Some(pct),
            service: service.map(str::to_string),
            billing_entity: None,
            usage_type: None,
            operation: None,
            free_tier: None,
        }
    }

    fn snapshot(rules: Vec<BcRule>, associated: Vec<String>) -> BillingSnapshot {
        BillingSnapshot {
            current_period: "2026-11".into(),
            previous_period: "2026-10".into(),
            rules,
            plans: vec![crate::aws::billing::BcPlan {
                arn: "plan-arn".into(),
                name: "gold".into(),
                description: String::new(),
                size: associated.len() as i64,
            }],
            plan_rules: HashMap::from([("plan-arn".to_string(), associated)]),
            groups: vec![],
            group_of: HashMap::new(),
            items: vec![],
            costs: HashMap::new(),
        }
    }

    const OWNER: &str = "ns/pricingplan/gold";

    fn want<'a>(rules: &'a [PricingRule], tags: &'a BTreeMap<String, String>) -> DesiredPlan<'a> {
        DesiredPlan {
            name: "gold",
            description: "",
            rules,
            tags,
            claimant: Claimant {
                owner: OWNER,
                adopt: false,
                name_field: "spec.planName",
            },
        }
    }

    fn owned(arns: &[(&str, Option<&str>)]) -> RuleOwners {
        arns.iter()
            .map(|(a, o)| (a.to_string(), o.map(str::to_string)))
            .collect()
    }

    fn bc(aws_name: &str, arn: &str, r: &PricingRule) -> BcRule {
        let n = new_rule(aws_name, r, &BTreeMap::new());
        BcRule {
            arn: arn.into(),
            name: n.name,
            description: n.description,
            scope: n.scope,
            type_: n.type_,
            modifier_percentage: n.modifier_percentage,
            service: n.service,
            billing_entity: n.billing_entity,
            usage_type: n.usage_type,
            operation: n.operation,
            free_tier: None,
        }
    }

    #[test]
    fn names_change_only_with_fields_aws_cannot_update() {
        let a = rule("s3", RuleScope::Service, Some("AmazonS3"), 5.0);
        let mut b = a.clone();
        b.modifier_percentage = Some(7.0);
        assert_eq!(rule_aws_name("gold", &a), rule_aws_name("gold", &b));
        b.service = Some("AmazonEC2".into());
        assert_ne!(rule_aws_name("gold", &a), rule_aws_name("gold", &b));
        assert!(rule_aws_name(&"p".repeat(128), &a).len() <= 128);
        assert_eq!(
            client_token("6f1c-uid", "plan"),
            client_token("6f1c-uid", "plan")
        );
        assert!(client_token(&"x".repeat(100), "plan").len() <= 64);
    }

    #[test]
    fn steady_state_plans_nothing() {
        let r = rule("global", RuleScope::Global, None, 10.0);
        let name = rule_aws_name("gold", &r);
        let s = snapshot(vec![bc(&name, "r1", &r)], vec!["r1".into()]);
        let rules = [r];
        let tags = BTreeMap::new();
        let wanted = BTreeSet::from([name]);
        assert!(rules_to_inspect("gold", &wanted, Some("plan-arn"), &s).is_empty());
        assert!(
            plan(&want(&rules, &tags), &s, &RuleOwners::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_immutable_change_creates_associates_then_retires_the_old_rule() {
        let old = rule("svc", RuleScope::Service, Some("AmazonS3"), 5.0);
        let old_name = rule_aws_name("gold", &old);
        let s = snapshot(vec![bc(&old_name, "r-old", &old)], vec!["r-old".into()]);
        let mut new = old.clone();
        new.service = Some("AmazonEC2".into());
        let rules = [new];
        let tags = BTreeMap::new();
        let wanted: BTreeSet<String> = rules.iter().map(|r| rule_aws_name("gold", r)).collect();
        assert_eq!(
            rules_to_inspect("gold", &wanted, Some("plan-arn"), &s),
            vec!["r-old".to_string()]
        );
        let steps = plan(&want(&rules, &tags), &s, &owned(&[("r-old", Some(OWNER))])).unwrap();
        assert!(matches!(&steps[0], PlanStep::CreateRule { entry, .. } if entry == "svc"));
        assert_eq!(
            steps[1],
            PlanStep::Associate {
                entries: vec!["svc".into()]
            }
        );
        assert_eq!(
            steps[2],
            PlanStep::Retire {
                rules: vec![(old_name, "r-old".into())]
            }
        );
    }

    #[test]
    fn a_mutable_change_updates_in_place() {
        let r = rule("global", RuleScope::Global, None, 10.0);
        let name = rule_aws_name("gold", &r);
        let s = snapshot(vec![bc(&name, "r1", &r)], vec!["r1".into()]);
        let mut changed = r.clone();
        changed.modifier_percentage = Some(12.5);
        let rules = [changed];
        let tags = BTreeMap::new();
        let steps = plan(&want(&rules, &tags), &s, &RuleOwners::new()).unwrap();
        assert!(matches!(&steps[..], [PlanStep::UpdateRule { arn, .. }] if arn == "r1"));
    }

    #[test]
    fn rule_names_of_a_plan_have_one_shape() {
        let r = rule("global", RuleScope::Global, None, 10.0);
        assert!(has_rule_name_of("gold", &rule_aws_name("gold", &r)));
        assert!(has_rule_name_of("std", &rule_aws_name("std.gold", &r)));
        assert!(!has_rule_name_of("gold", "gold.global"));
        assert!(!has_rule_name_of("gold", "gold.global.ABCDEF"));
        assert!(!has_rule_name_of("gold", "gold..abcdef"));
        assert!(!has_rule_name_of("gold", "golden.global.abcdef"));
        assert!(!has_rule_name_of("gold", "by-hand"));
    }

    #[test]
    fn only_rules_with_its_owner_tag_are_retired() {
        // Plan `gold` wants `keep`; plan `gold.vip` (another object) has rules whose names
        // look like gold's: one in its plan, one orphan left by an interrupted run.
        let keep = rule("keep", RuleScope::Global, None, 10.0);
        let old = rule("old", RuleScope::Global, None, 10.0);
        let vip = rule("x", RuleScope::Global, None, 5.0);
        let (keep_n, old_n) = (rule_aws_name("gold", &keep), rule_aws_name("gold", &old));
        let vip_n = rule_aws_name("gold.vip", &vip);
        let vip_orphan = rule_aws_name("gold.vip", &rule("y", RuleScope::Global, None, 5.0));
        let unowned = rule_aws_name("gold", &rule("hand", RuleScope::Global, None, 1.0));
        let mut s = snapshot(
            vec![
                bc(&keep_n, "r-keep", &keep),
                bc(&old_n, "r-old", &old),
                bc(&vip_n, "r-vip", &vip),
                bc(&vip_orphan, "r-vip-orphan", &vip),
                bc(&unowned, "r-hand", &old),
            ],
            vec!["r-keep".into(), "r-old".into()],
        );
        s.plans.push(crate::aws::billing::BcPlan {
            arn: "vip-arn".into(),
            name: "gold.vip".into(),
            description: String::new(),
            size: 1,
        });
        s.plan_rules.insert("vip-arn".into(), vec!["r-vip".into()]);
        let wanted = BTreeSet::from([keep_n.clone()]);
        // The vip plan's associated rule is never read; the orphans and the old rule are.
        let mut inspect = rules_to_inspect("gold", &wanted, Some("plan-arn"), &s);
        inspect.sort();
        assert_eq!(inspect, vec!["r-hand", "r-old", "r-vip-orphan"]);
        let owners = owned(&[
            ("r-old", Some(OWNER)),
            ("r-vip-orphan", Some("ns/pricingplan/gold.vip")),
            ("r-hand", None),
        ]);
        let rules = [keep];
        let tags = BTreeMap::new();
        let steps = plan(&want(&rules, &tags), &s, &owners).unwrap();
        assert_eq!(
            steps,
            vec![PlanStep::Retire {
                rules: vec![(old_n, "r-old".into())]
            }]
        );
    }

    #[test]
    fn a_wanted_rule_name_held_by_another_object_is_refused() {
        let r = rule("global", RuleScope::Global, None, 10.0);
        let name = rule_aws_name("gold", &r);
        let s = snapshot(vec![bc(&name, "r1", &r)], vec![]);
        let rules = [r];
        let tags = BTreeMap::new();
        let err = plan(
            &want(&rules, &tags),
            &s,
            &owned(&[("r1", Some("other/pricingplan/gold"))]),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "OwnedElsewhere");
        assert!(err.to_string().contains("other/pricingplan/gold"), "{err}");
        // Its own orphan (a crash between create and associate) is associated.
        let steps = plan(&want(&rules, &tags), &s, &owned(&[("r1", Some(OWNER))])).unwrap();
        assert_eq!(
            steps,
            vec![PlanStep::Associate {
                entries: vec!["global".into()]
            }]
        );
        // An unowned one needs spec.adopt, and is then tagged.
        let err = plan(&want(&rules, &tags), &s, &owned(&[("r1", None)])).unwrap_err();
        assert_eq!(err.reason(), "AdoptionRequired");
        let mut adopting = want(&rules, &tags);
        adopting.claimant.adopt = true;
        let steps = plan(&adopting, &s, &owned(&[("r1", None)])).unwrap();
        assert_eq!(
            steps[0],
            PlanStep::AdoptRules {
                rules: vec![(name, "r1".into())]
            }
        );
    }

    #[test]
    fn adopting_a_plan_tags_its_unowned_wanted_rules() {
        let r = rule("global", RuleScope::Global, None, 10.0);
        let name = rule_aws_name("gold", &r);
        let s = snapshot(vec![bc(&name, "r1", &r)], vec!["r1".into()]);
        let rules = [r];
        let tags = BTreeMap::new();
        let wanted = BTreeSet::from([name.clone()]);
        assert_eq!(wanted_rules_in_plan(&wanted, "plan-arn", &s), vec!["r1"]);
        let mut adopting = want(&rules, &tags);
        adopting.claimant.adopt = true;
        // Not read: trusted as this plan's, as before.
        assert!(plan(&adopting, &s, &RuleOwners::new()).unwrap().is_empty());
        // Read and unowned: tagged.
        assert_eq!(
            plan(&adopting, &s, &owned(&[("r1", None)])).unwrap(),
            vec![PlanStep::AdoptRules {
                rules: vec![(name, "r1".into())]
            }]
        );
        // Read and owned elsewhere: refused.
        let err = plan(
            &adopting,
            &s,
            &owned(&[("r1", Some("other/pricingplan/gold"))]),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "OwnedElsewhere");
        // Read and ours: nothing to do.
        assert!(
            plan(&adopting, &s, &owned(&[("r1", Some(OWNER))]))
                .unwrap()
                .is_empty()
        );
    }
}
