//! PricingPlan: one AWS pricing rule per entry (named after the plan, the entry and its
//! fields AWS cannot update), the plan, and the associations in batches of 30. A change to
//! such a field replaces the rule: the new one is created and associated before the old one
//! is disassociated and deleted, so the plan is never without it.
//!
//! Ownership: the plan and its rules carry the owner tag of the PricingPlan object. A plan or
//! rule found by name that another resource owns is refused (`OwnedElsewhere`), one without
//! the tag only with `spec.adopt` (`AdoptionRequired`). Only rules named like this plan's and
//! carrying its owner tag are ever retired.
//!
//! Steps: `observe` (the payer's Billing Conductor snapshot, the plan's ownership, the owner
//! tags of the rules that matter), [`plan`] (pure: a list of [`PlanStep`]s), `execute` (every
//! write through [`Run::write`]), then the status and a pure verdict.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

use crate::api::common::{OWNER_TAG, owner_value, with_owner};
use crate::api::pricing_plan::PricingRule;
use crate::api::{PricingPlan, PricingPlanStatus};
use crate::aws::billing::{BcRule, BillingApi, NewRule};
use crate::aws::organizations::Tags;
use crate::error::Error;

use crate::billing::context::{BATCH, BillingContext, payer_gone};
use crate::billing::snapshot::BillingSnapshot;
use crate::reconcile::ownership::{
    Claim, ClaimCheck, Claimant, Found, TagAudit, check_claim, claim, client_token, complete_claim,
    deletable, fnv,
};
use crate::reconcile::reasons::{
    AVAILABLE, AWS_CHANGED, DELETED, PLAN_IN_USE, PLANNED_ONLY, RELEASED,
};
use crate::reconcile::run::Run;
use crate::reconcile::{Change, ChangeAction, KindOutcome, ReconcileContext, Verdict, change};

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
    /// Change the description of the plan `arn`.
    UpdatePlan {
        arn: String,
    },
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
        Some(p) if p.description != want.description => {
            steps.push(PlanStep::UpdatePlan { arn: p.arn.clone() })
        }
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
                            AWS_CHANGED,
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
    let retire = retired_rules(want, &wanted_names, snapshot, owners);
    if !retire.is_empty() {
        steps.push(PlanStep::Retire { rules: retire });
    }
    Ok(steps)
}

/// This plan's rules that no entry wants any more (AWS names and ARNs, sorted): associated
/// ones and orphans left by an interrupted replacement. Only rules with this object's owner
/// tag: names alone cannot tell plan `std`'s rules from plan `std.gold`'s. Pure.
fn retired_rules(
    want: &DesiredPlan<'_>,
    wanted_names: &BTreeSet<String>,
    snapshot: &BillingSnapshot,
    owners: &RuleOwners,
) -> Vec<(String, String)> {
    let mut retire: Vec<(String, String)> = snapshot
        .rules
        .iter()
        .filter(|r| has_rule_name_of(want.name, &r.name) && !wanted_names.contains(&r.name))
        .filter(|r| {
            owners
                .get(&r.arn)
                .is_some_and(|o| o.as_deref() == Some(want.claimant.owner))
        })
        .map(|r| (r.name.clone(), r.arn.clone()))
        .collect();
    retire.sort();
    retire
}

/// Read the owner tag of each rule in `arns` (one ListTagsForResource each). A rule deleted
/// meanwhile is left out.
pub async fn rule_owners(api: &dyn BillingApi, arns: &[String]) -> Result<RuleOwners, Error> {
    let mut out = RuleOwners::new();
    for arn in arns {
        if let Some(tags) = api.tags_if_exists(arn).await? {
            out.insert(arn.clone(), tags.get(OWNER_TAG).cloned());
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
    run.reconcile(
        obj.status.as_ref(),
        obj.metadata.generation,
        async |run, status| apply(obj, ctx, run, status).await,
    )
    .await
}

/// What a PricingPlan names in AWS and how its objects are tagged and claimed (owned values
/// behind a [`DesiredPlan`]).
struct PlanSpec {
    namespace: String,
    uid: String,
    name: String,
    description: String,
    owner: String,
    tags: Tags,
}

impl PlanSpec {
    fn of(obj: &PricingPlan) -> Self {
        let namespace = obj.namespace().unwrap_or_default();
        let uid = obj
            .uid()
            .unwrap_or_else(|| format!("{namespace}-{}", obj.name_any()));
        let owner = owner_value(&namespace, "PricingPlan", &obj.name_any());
        Self {
            uid,
            name: obj.plan_name(),
            description: obj.spec.description.clone().unwrap_or_default(),
            tags: with_owner(&obj.spec.tags, &owner),
            owner,
            namespace,
        }
    }

    fn desired<'a>(&'a self, obj: &'a PricingPlan) -> DesiredPlan<'a> {
        DesiredPlan {
            name: &self.name,
            description: &self.description,
            rules: &obj.spec.rules,
            tags: &self.tags,
            claimant: Claimant {
                owner: &self.owner,
                adopt: obj.spec.adopt,
                name_field: "spec.planName",
            },
        }
    }
}

/// What AWS holds for a pricing plan, read before anything is decided.
struct PlanObservation {
    billing: BillingContext,
    /// The judgement of the plan found by name (none when it does not exist yet).
    claim: Option<ClaimCheck>,
    /// Owner tags of the rules whose ownership the plan depends on.
    owners: RuleOwners,
}

async fn apply(
    obj: &PricingPlan,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut PricingPlanStatus,
) -> Result<Verdict, Error> {
    let spec = PlanSpec::of(obj);
    let want = spec.desired(obj);
    let observed = observe(obj, &spec, &want, ctx, run, status).await?;
    let PlanObservation {
        mut billing,
        claim,
        owners,
    } = observed;
    let steps = plan(&want, &billing.snapshot, &owners)?;
    if let Some(check) = claim {
        let api = billing.api();
        complete_claim(
            api.as_ref(),
            check,
            &spec.tags,
            &mut status.tags_checked_at,
            run,
        )
        .await?;
    }
    let done = execute(&want, &spec.uid, &steps, &mut billing, run).await?;
    if steps.contains(&PlanStep::CreatePlan) {
        // Tagged at creation (a plan-mode status is never stored).
        status.tags_checked_at = Some(run.timestamp().to_string());
    }
    // What AWS reports as associated: the listed size when nothing was written, else the
    // plan's rules read again (one ListPricingRulesAssociatedToPricingPlan).
    status.size = match &done.plan_arn {
        Some(arn) if done.wrote => Some(billing.api().list_plan_rule_arns(arn).await?.len() as i64),
        Some(_) => billing.snapshot.plan_named(&spec.name).map(|p| p.size),
        None => None,
    };
    status.arn = done.plan_arn.clone();
    status.rule_arns = done.rule_arns;
    Ok(verdict(&spec.name, done.plan_arn.as_deref(), status.size))
}

/// Read what the plan depends on: the snapshot, the plan's ownership (its tags, when due) and
/// the owner tags of the rules [`rules_to_inspect`] (and, on adoption,
/// [`wanted_rules_in_plan`]) names. Writes nothing.
async fn observe(
    obj: &PricingPlan,
    spec: &PlanSpec,
    want: &DesiredPlan<'_>,
    ctx: &ReconcileContext,
    run: &Run,
    status: &PricingPlanStatus,
) -> Result<PlanObservation, Error> {
    let billing =
        BillingContext::resolve(&spec.namespace, &obj.spec.payer_ref, ctx, run.time()).await?;
    let api = billing.api();
    let snapshot = &billing.snapshot;
    let plan_arn = snapshot.plan_named(&spec.name).map(|p| p.arn.clone());
    // Every judgement before any write: the plan's owner here, its rules' in `plan`.
    let claim = match &plan_arn {
        Some(arn) => Some(
            check_claim(
                api.as_ref(),
                &Found {
                    arn,
                    what: format!("pricing plan {}", spec.name),
                    status_arn: status.arn.as_deref(),
                },
                &want.claimant,
                &TagAudit {
                    spec_changed: status.observed_generation != obj.metadata.generation,
                    checked_at: status.tags_checked_at.as_deref(),
                    uid: &spec.uid,
                    now: run.time(),
                },
            )
            .await?,
        ),
        None => None,
    };
    let wanted: BTreeSet<String> = want
        .rules
        .iter()
        .map(|r| rule_aws_name(&spec.name, r))
        .collect();
    let mut inspect = rules_to_inspect(&spec.name, &wanted, plan_arn.as_deref(), snapshot);
    if let (Some(arn), Some(check)) = (&plan_arn, &claim)
        && check.was_read()
        && want.claimant.adopt
    {
        inspect.extend(wanted_rules_in_plan(&wanted, arn, snapshot));
    }
    let owners = rule_owners(api.as_ref(), &inspect).await?;
    Ok(PlanObservation {
        billing,
        claim,
        owners,
    })
}

/// What [`execute`] did.
struct Executed {
    plan_arn: Option<String>,
    /// Rule ARN of each entry, as far as known.
    rule_arns: BTreeMap<String, String>,
    /// Whether anything was written to AWS (apply mode).
    wrote: bool,
}

/// Carry out `steps` in order, every write through `run`. The shared snapshot is dropped
/// once anything was written (the next reader loads what AWS made of it).
async fn execute(
    want: &DesiredPlan<'_>,
    uid: &str,
    steps: &[PlanStep],
    billing: &mut BillingContext,
    run: &mut Run,
) -> Result<Executed, Error> {
    let mut done = Executed {
        plan_arn: billing
            .snapshot
            .plan_named(want.name)
            .map(|p| p.arn.clone()),
        rule_arns: want
            .rules
            .iter()
            .filter_map(|r| {
                billing
                    .snapshot
                    .rule_named(&rule_aws_name(want.name, r))
                    .map(|x| (r.name.clone(), x.arn.clone()))
            })
            .collect(),
        wrote: false,
    };
    for step in steps {
        let wrote = execute_step(want, uid, step, billing, run, &mut done).await?;
        done.wrote |= wrote;
    }
    if done.wrote {
        billing.invalidate();
    }
    Ok(done)
}

/// One step of [`execute`]; whether it wrote to AWS.
async fn execute_step(
    want: &DesiredPlan<'_>,
    uid: &str,
    step: &PlanStep,
    billing: &BillingContext,
    run: &mut Run,
    done: &mut Executed,
) -> Result<bool, Error> {
    let api = billing.api();
    let api = api.as_ref();
    let (name, tags) = (want.name, want.tags);
    let plan_change =
        |action, detail: String| change(action, format!("pricing plan {name}"), detail);
    let wrote = match step {
        PlanStep::CreatePlan => {
            let token = client_token(uid, "plan");
            let created = run
                .write(plan_change(ChangeAction::Create, String::new()), || {
                    api.create_plan(name, want.description, tags, &token)
                })
                .await?;
            let wrote = created.is_some();
            done.plan_arn = created.or(done.plan_arn.take());
            wrote
        }
        PlanStep::UpdatePlan { arn } => run
            .write(
                plan_change(ChangeAction::Update, "description".into()),
                || api.update_plan(arn, want.description),
            )
            .await?
            .is_some(),
        PlanStep::CreateRule { entry, rule } => {
            let token = client_token(uid, &rule.name);
            let created = run
                .write(rule_change(ChangeAction::Create, rule), || {
                    api.create_rule(rule, &token)
                })
                .await?;
            let wrote = created.is_some();
            if let Some(arn) = created {
                done.rule_arns.insert(entry.clone(), arn);
            }
            wrote
        }
        PlanStep::UpdateRule { arn, rule, .. } => run
            .write(rule_change(ChangeAction::Update, rule), || {
                api.update_rule(arn, rule)
            })
            .await?
            .is_some(),
        PlanStep::AdoptRules { rules } => {
            let mut wrote = false;
            for (rule_name, arn) in rules {
                let adopt = change(
                    ChangeAction::Update,
                    format!("pricing rule {rule_name}"),
                    format!("adopt: add the {OWNER_TAG} tag"),
                );
                wrote |= run.write(adopt, || api.tag(arn, tags)).await?.is_some();
            }
            wrote
        }
        PlanStep::Associate { entries } => {
            let arns: Vec<String> = entries
                .iter()
                .filter_map(|e| done.rule_arns.get(e).cloned())
                .collect();
            let plan_arn = done.plan_arn.as_deref();
            let detail = format!("associate {} rule(s)", entries.len());
            run.write(plan_change(ChangeAction::Update, detail), || async move {
                if let Some(plan) = plan_arn {
                    for batch in arns.chunks(BATCH) {
                        api.associate_rules(plan, batch).await?;
                    }
                }
                Ok(())
            })
            .await?
            .is_some()
        }
        PlanStep::Retire { rules } => {
            let plan_arn = done.plan_arn.as_deref();
            retire(api, plan_arn, rules, &billing.snapshot, run).await?
        }
    };
    Ok(wrote)
}

/// The change that creates or updates `rule`.
fn rule_change(action: ChangeAction, rule: &NewRule) -> Change {
    let detail = match action {
        ChangeAction::Create => format!(
            "{} {} {:?}%",
            rule.scope,
            rule.type_,
            rule.modifier_percentage.unwrap_or(0.0)
        ),
        _ => "description, type or percentage".to_string(),
    };
    change(action, format!("pricing rule {}", rule.name), detail)
}

/// Retire `rules` (AWS names and ARNs) the plan no longer wants: one change each, carried
/// out as one step: those associated with plan `plan_arn` are disassociated (in batches),
/// then each is deleted. Returns whether it wrote.
async fn retire(
    api: &dyn BillingApi,
    plan_arn: Option<&str>,
    rules: &[(String, String)],
    snapshot: &BillingSnapshot,
    run: &mut Run,
) -> Result<bool, Error> {
    let associated: BTreeSet<&str> = plan_arn
        .and_then(|p| snapshot.plan_rules.get(p))
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let attached: Vec<String> = rules
        .iter()
        .filter(|(_, a)| associated.contains(a.as_str()))
        .map(|(_, a)| a.clone())
        .collect();
    let mut changes: Vec<Change> = rules
        .iter()
        .map(|(rule_name, _)| {
            change(
                ChangeAction::Delete,
                format!("pricing rule {rule_name}"),
                "disassociate and delete",
            )
        })
        .collect();
    let Some(last) = changes.pop() else {
        return Ok(false);
    };
    for c in changes {
        // Carried out by the one step below.
        run.record(c.action, c.target, c.detail);
    }
    let done = run
        .write(last, || async {
            if let Some(plan) = plan_arn {
                disassociate(api, plan, &attached).await?;
            }
            for (_, arn) in rules {
                api.delete_rule(arn).await?;
            }
            Ok(())
        })
        .await?;
    Ok(done.is_some())
}

/// Disassociate `rules` from plan `plan_arn`, in batches of [`BATCH`].
async fn disassociate(api: &dyn BillingApi, plan_arn: &str, rules: &[String]) -> Result<(), Error> {
    for batch in rules.chunks(BATCH) {
        api.disassociate_rules(plan_arn, batch).await?;
    }
    Ok(())
}

/// The verdict on a plan once its steps were carried out (`plan_arn` none: it would be
/// created). Pure.
fn verdict(name: &str, plan_arn: Option<&str>, size: Option<i64>) -> Verdict {
    match plan_arn {
        Some(arn) => Verdict::ready(
            AVAILABLE,
            format!(
                "pricing plan {name} ({arn}) with {} rule(s) associated",
                size.unwrap_or(0)
            ),
        ),
        None => Verdict::blocked(
            PLANNED_ONLY,
            format!("pricing plan {name} would be created"),
        ),
    }
}

/// Deletion: the plan's rules are disassociated and deleted, then the plan (refused by AWS
/// while a billing group uses it: the object waits).
pub async fn cleanup(
    obj: &PricingPlan,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<PricingPlanStatus> {
    run.cleanup(
        obj.status.as_ref(),
        obj.metadata.generation,
        |_| false,
        async |run, _| delete(obj, ctx, run).await,
    )
    .await
}

async fn delete(
    obj: &PricingPlan,
    ctx: &ReconcileContext,
    run: &mut Run,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let Some(billing) =
        BillingContext::resolve_unless_gone(&namespace, &obj.spec.payer_ref, ctx, run.time())
            .await?
    else {
        return Ok(payer_gone());
    };
    let name = obj.plan_name();
    let snapshot = &billing.snapshot;
    let Some(plan) = snapshot.plan_named(&name) else {
        return Ok(Verdict::ready(
            RELEASED,
            format!("pricing plan {name} does not exist in AWS"),
        ));
    };
    let api = billing.api();
    let api = api.as_ref();
    let owner = owner_value(&namespace, "PricingPlan", &obj.name_any());
    let found = Found {
        arn: &plan.arn,
        what: format!("pricing plan {name}"),
        status_arn: obj.status.as_ref().and_then(|s| s.arn.as_deref()),
    };
    if let Some(why) = deletable(api, &found, &owner).await? {
        return Ok(Verdict::ready(RELEASED, why));
    }
    if let Some(g) = snapshot.groups.iter().find(|g| g.plan_arn == plan.arn) {
        return Err(Error::waiting(
            PLAN_IN_USE,
            format!(
                "pricing plan {name} is used by billing group {}; point it at another plan or delete it first",
                g.name
            ),
            std::time::Duration::from_secs(30),
        ));
    }
    // The rules this object owns: named like the plan's, in this plan or in none, with its
    // owner tag (rules of plans whose names start the same are left alone).
    let candidates = rules_to_inspect(&name, &BTreeSet::new(), Some(&plan.arn), snapshot);
    let owners = rule_owners(api, &candidates).await?;
    let owned: Vec<&BcRule> = snapshot
        .rules
        .iter()
        .filter(|r| {
            owners
                .get(&r.arn)
                .is_some_and(|o| o.as_deref() == Some(owner.as_str()))
        })
        .collect();
    // The plan's rules leave it before the first deletion.
    let mut detach = snapshot.plan_rules.get(&plan.arn).cloned();
    for r in owned {
        let delete_rule = change(
            ChangeAction::Delete,
            format!("pricing rule {}", r.name),
            "delete",
        );
        let associated = detach.take().unwrap_or_default();
        run.write(delete_rule, || async {
            disassociate(api, &plan.arn, &associated).await?;
            api.delete_rule(&r.arn).await
        })
        .await?;
    }
    let delete_plan = change(
        ChangeAction::Delete,
        format!("pricing plan {name}"),
        "delete",
    );
    let associated = detach.take().unwrap_or_default();
    run.write(delete_plan, || async {
        disassociate(api, &plan.arn, &associated).await?;
        api.delete_plan(&plan.arn).await
    })
    .await?;
    billing.invalidate();
    Ok(Verdict::ready(
        DELETED,
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
            index: Default::default(),
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
