//! PricingPlan: one AWS pricing rule per entry (named after the plan, the entry and its
//! fields AWS cannot update), the plan, and the associations in batches of 30. A change to
//! such a field replaces the rule: the new one is created and associated before the old one
//! is disassociated and deleted, so the plan is never without it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::ResourceExt;

use crate::api::common::{owner_value, with_owner};
use crate::api::pricing_plan::PricingRule;
use crate::api::{PricingPlan, PricingPlanStatus};
use crate::aws::Connection;
use crate::aws::billing::{BcRule, NewRule};
use crate::error::Error;

use super::billing_snapshot::BillingSnapshot;
use super::org::{change, payer_connection};
use super::{ChangeAction, KindOutcome, Mode, ReconcileContext, Verdict};

/// AWS accepts at most this many rules or accounts in one associate call.
pub const BATCH: usize = 30;

/// A stable 32-bit FNV-1a hash, hex (names and tokens must not change between builds).
pub fn fnv(parts: &[&str]) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    format!("{h:08x}")
}

/// A ClientToken (1-64 of `[a-zA-Z0-9-]`) derived from an object's UID and a purpose.
pub fn client_token(uid: &str, purpose: &str) -> String {
    let uid: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let mut token = format!("{}-{}", &uid[..uid.len().min(40)], fnv(&[purpose]));
    token.truncate(64);
    token
}

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
    /// Associate these rules (entry names; ARNs are known once created), in batches.
    Associate {
        entries: Vec<String>,
    },
    /// Disassociate and delete rules the plan no longer wants (AWS names and ARNs).
    Retire {
        rules: Vec<(String, String)>,
    },
}

/// What to do for a pricing plan. Pure.
pub fn plan(
    plan_name: &str,
    description: &str,
    rules: &[PricingRule],
    tags: &BTreeMap<String, String>,
    snapshot: &BillingSnapshot,
) -> Vec<PlanStep> {
    let mut steps = Vec::new();
    let existing = snapshot.plan_named(plan_name);
    match existing {
        None => steps.push(PlanStep::CreatePlan),
        Some(p) if p.description != description => steps.push(PlanStep::UpdatePlan),
        Some(_) => {}
    }
    let associated: BTreeSet<&str> = existing
        .and_then(|p| snapshot.plan_rules.get(&p.arn))
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut to_associate = Vec::new();
    let mut wanted_names = BTreeSet::new();
    for r in rules {
        let aws_name = rule_aws_name(plan_name, r);
        wanted_names.insert(aws_name.clone());
        let want = new_rule(&aws_name, r, tags);
        match snapshot.rule_named(&aws_name) {
            None => {
                steps.push(PlanStep::CreateRule {
                    entry: r.name.clone(),
                    rule: want,
                });
                to_associate.push(r.name.clone());
            }
            Some(have) => {
                if needs_update(have, &want) {
                    steps.push(PlanStep::UpdateRule {
                        entry: r.name.clone(),
                        arn: have.arn.clone(),
                        rule: want,
                    });
                }
                if !associated.contains(have.arn.as_str()) {
                    to_associate.push(r.name.clone());
                }
            }
        }
    }
    if !to_associate.is_empty() {
        steps.push(PlanStep::Associate {
            entries: to_associate,
        });
    }
    // Rules of this plan (by name prefix) that no entry wants any more: associated ones and
    // orphans left by an interrupted replacement.
    let prefix: String = plan_name.chars().take(50).collect::<String>() + ".";
    let mut retire: Vec<(String, String)> = snapshot
        .rules
        .iter()
        .filter(|r| r.name.starts_with(&prefix) && !wanted_names.contains(&r.name))
        .map(|r| (r.name.clone(), r.arn.clone()))
        .collect();
    retire.sort();
    if !retire.is_empty() {
        steps.push(PlanStep::Retire { rules: retire });
    }
    steps
}

/// Reconcile a PricingPlan.
pub async fn reconcile(
    obj: &PricingPlan,
    ctx: &ReconcileContext,
    mode: Mode,
    now: &str,
) -> KindOutcome<PricingPlanStatus> {
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut changes = Vec::new();
    let result = apply(obj, ctx, mode, now, &mut status, &mut changes).await;
    super::finish(
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

/// The Billing Conductor snapshot of a payer.
/// Apply one of the operator's own Billing Conductor writes to the shared snapshot of payer
/// `key` and to `local`, instead of reading everything again.
pub fn record_billing(
    ctx: &ReconcileContext,
    key: &str,
    local: &mut Arc<BillingSnapshot>,
    write: impl Fn(&mut BillingSnapshot) + Send + Sync + 'static,
) {
    let write: super::snapshot::Write<BillingSnapshot> = Arc::new(write);
    match ctx.billing.update(key, write.clone()) {
        Some(s) => *local = s,
        None => write(Arc::make_mut(local)),
    }
}

/// Converge the tags of Billing Conductor resource `arn` when the spec changed or the periodic
/// audit is due: one ListTagsForResource, then TagResource / UntagResource for what differs
/// (`aws:` tags untouched). Records in `checked_at` when they were compared.
#[allow(clippy::too_many_arguments)]
pub async fn converge_billing_tags(
    conn: &Connection,
    arn: &str,
    desired: &crate::aws::organizations::Tags,
    spec_changed: bool,
    checked_at: &mut Option<String>,
    uid: &str,
    now: &str,
    plan_only: bool,
    changes: &mut Vec<super::Change>,
) -> Result<(), Error> {
    if !super::org::tag_check_due(spec_changed, checked_at.as_deref(), now, uid) {
        return Ok(());
    }
    let current = conn.billing.list_tags(arn).await?;
    super::org::converge_tags(
        super::org::TagApi::Billing(conn.billing.as_ref()),
        arn,
        desired,
        &current,
        plan_only,
        changes,
    )
    .await?;
    if !plan_only {
        *checked_at = Some(now.to_string());
    }
    Ok(())
}

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
    changes: &mut Vec<super::Change>,
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
    let tags = with_owner(
        &obj.spec.tags,
        &owner_value(&namespace, "PricingPlan", &obj.name_any()),
    );
    let steps = plan(&name, &description, &obj.spec.rules, &tags, &snapshot);
    let bc = conn.billing.as_ref();
    let mut plan_arn = snapshot.plan_named(&name).map(|p| p.arn.clone());
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
    let created = !plan_only && steps.iter().any(|s| matches!(s, PlanStep::CreatePlan));
    if created {
        status.tags_checked_at = Some(now.to_string());
    } else if let Some(arn) = &plan_arn {
        converge_billing_tags(
            &conn,
            arn,
            &tags,
            status.observed_generation != obj.metadata.generation,
            &mut status.tags_checked_at,
            &uid,
            now,
            plan_only,
            changes,
        )
        .await?;
    }
    status.arn = plan_arn.clone();
    status.rule_arns = rule_arns;
    status.size = Some(obj.spec.rules.len() as i64);
    match plan_arn {
        Some(arn) => Ok(Verdict::ready(
            "Available",
            format!(
                "pricing plan {name} ({arn}) with {} rule(s)",
                obj.spec.rules.len()
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
    now: &str,
) -> KindOutcome<PricingPlanStatus> {
    let previous = obj.status.clone().unwrap_or_default();
    let status = previous.clone();
    let mut changes = Vec::new();
    let result = delete(obj, ctx, now, &mut changes).await;
    super::finish_cleanup(
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
    changes: &mut Vec<super::Change>,
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
    let rules = snapshot
        .plan_rules
        .get(&plan.arn)
        .cloned()
        .unwrap_or_default();
    for batch in rules.chunks(BATCH) {
        bc.disassociate_rules(&plan.arn, batch).await?;
    }
    let prefix: String = name.chars().take(50).collect::<String>() + ".";
    for r in snapshot
        .rules
        .iter()
        .filter(|r| r.name.starts_with(&prefix))
    {
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
        assert!(plan("gold", "", &[r], &BTreeMap::new(), &s).is_empty());
    }

    #[test]
    fn an_immutable_change_creates_associates_then_retires_the_old_rule() {
        let old = rule("svc", RuleScope::Service, Some("AmazonS3"), 5.0);
        let old_name = rule_aws_name("gold", &old);
        let s = snapshot(vec![bc(&old_name, "r-old", &old)], vec!["r-old".into()]);
        let mut new = old.clone();
        new.service = Some("AmazonEC2".into());
        let steps = plan("gold", "", &[new], &BTreeMap::new(), &s);
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
        let steps = plan("gold", "", &[changed], &BTreeMap::new(), &s);
        assert!(matches!(&steps[..], [PlanStep::UpdateRule { arn, .. }] if arn == "r1"));
    }
}
