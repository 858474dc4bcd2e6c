//! From what `import` read to manifests (pure): OUs, SCPs, accounts as `adopt`, pricing plans
//! with their rules, billing groups and custom line items, each with
//! `managementPolicy: Observe`, `deletionPolicy: Retain` where the kind has one, `adopt: true`
//! on the Billing Conductor kinds, the AWS tags (without `aws:` and the operator's own) and an
//! annotation recording the AWS id.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::api::common::OWNER_TAG;
use crate::aws::organizations::{AccountState, Tags};
use crate::billing::pricing_plan::{has_rule_name_of, rule_aws_name};

use super::names::{Given, assign};
use super::read::Found;

/// Annotation on every imported object: the AWS id or ARN it was imported from.
pub const IMPORTED_FROM: &str = "partnerbilling.io/imported-from";

/// One manifest to write.
#[derive(Clone, Debug)]
pub struct Doc {
    pub kind: &'static str,
    pub name: String,
    /// Comment lines written above it.
    pub comments: Vec<String>,
    pub value: Value,
}

/// The manifests and what the command tells the user (collisions, objects left out, what
/// switching to Manage would change).
#[derive(Clone, Debug, Default)]
pub struct Built {
    pub docs: Vec<Doc>,
    pub notes: Vec<String>,
}

/// Where the manifests go and what they refer to.
pub struct Target<'a> {
    pub namespace: &'a str,
    pub payer: &'a str,
}

fn user_tags(tags: Option<&Tags>) -> Map<String, Value> {
    tags.into_iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("partnerbilling.io/"))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

impl Built {
    /// Add the manifest of `kind` for the AWS object `aws_id` named `given`, unless the
    /// object already carries an owner tag (it is managed already: a note says so).
    fn push(
        &mut self,
        kind: &'static str,
        aws_id: &str,
        given: &Given,
        spec: Value,
        found: &Found,
        t: &Target<'_>,
    ) {
        if let Some(owner) = found.tags.get(aws_id).and_then(|t| t.get(OWNER_TAG)) {
            self.notes.push(format!(
                "skipped {kind} {aws_id}: it is managed already by {owner} (tag {OWNER_TAG})"
            ));
            return;
        }
        let mut comments = Vec::new();
        if let Some(base) = &given.collided_with {
            let line = format!(
                "{kind} {aws_id}: the name {base} was taken by another {kind}; named {} instead",
                given.name
            );
            comments.push(format!("name collision: {line}"));
            self.notes.push(format!("name collision: {line}"));
        }
        let mut spec = spec;
        if let Some(map) = spec.as_object_mut() {
            map.retain(|_, v| !v.is_null() && *v != json!([]) && *v != json!({}));
            map.insert("managementPolicy".into(), "Observe".into());
        }
        self.docs.push(Doc {
            kind,
            name: given.name.clone(),
            comments,
            value: json!({
                "apiVersion": crate::api::API_VERSION,
                "kind": kind,
                "metadata": {
                    "name": given.name,
                    "namespace": t.namespace,
                    "annotations": {IMPORTED_FROM: aws_id},
                },
                "spec": spec,
            }),
        });
    }
}

/// The manifests of everything in `found`.
pub fn build(found: &Found, t: &Target<'_>) -> Built {
    let org = &found.org;
    let mut built = Built::default();
    let scps: Vec<(String, String)> = org
        .policies
        .iter()
        .filter(|p| !p.aws_managed)
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    let scp_names = assign(&scps, "scp");
    let ou_names = assign(
        &org.ous
            .iter()
            .map(|o| (o.id.clone(), o.name.clone()))
            .collect::<Vec<_>>(),
        "ou",
    );
    let accounts: Vec<_> = org
        .accounts
        .iter()
        .filter(|a| a.id != org.organization.management_account_id)
        .collect();
    let account_names = assign(
        &accounts
            .iter()
            .map(|a| (a.id.clone(), a.name.clone()))
            .collect::<Vec<_>>(),
        "account",
    );
    let policies_of = |target: &str| -> Vec<String> {
        org.policies_of(target)
            .iter()
            .filter_map(|p| scp_names.get(&p.id).map(|g| g.name.clone()))
            .collect()
    };
    for p in org.policies.iter().filter(|p| !p.aws_managed) {
        let given = &scp_names[&p.id];
        let document: Value = found
            .documents
            .get(&p.id)
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null);
        let spec = json!({
            "payerRef": {"name": t.payer},
            "policyName": (p.name != given.name).then_some(&p.name),
            "description": (!p.description.is_empty()).then_some(&p.description),
            "document": document,
            "tags": user_tags(found.tags.get(&p.id)),
            "deletionPolicy": "Retain",
        });
        built.push("ServiceControlPolicy", &p.id, given, spec, found, t);
    }
    for ou in &org.ous {
        let spec = json!({
            "payerRef": {"name": t.payer},
            "name": ou.name,
            "parentRef": ou_names.get(&ou.parent_id).map(|g| json!({"name": g.name})),
            "tags": user_tags(found.tags.get(&ou.id)),
            "serviceControlPolicies": policies_of(&ou.id),
            "deletionPolicy": "Retain",
        });
        built.push(
            "OrganizationalUnit",
            &ou.id,
            &ou_names[&ou.id],
            spec,
            found,
            t,
        );
    }
    for a in accounts {
        if a.state != AccountState::Active {
            built.notes.push(format!(
                "skipped account {} ({}): its state is {:?}, not ACTIVE",
                a.id, a.name, a.state
            ));
            continue;
        }
        let parent = org.parent_of.get(&a.id);
        let spec = json!({
            "payerRef": {"name": t.payer},
            "adopt": {"accountId": a.id},
            "parentRef": parent.and_then(|p| ou_names.get(p)).map(|g| json!({"name": g.name})),
            "tags": user_tags(found.tags.get(&a.id)),
            "serviceControlPolicies": policies_of(&a.id),
            "deletionPolicy": "Retain",
        });
        built.push(
            "LinkedAccount",
            &a.id,
            &account_names[&a.id],
            spec,
            found,
            t,
        );
    }
    billing(found, t, &account_names, &mut built);
    built
}

/// The Billing Conductor manifests: plans with their rules, groups, items.
fn billing(found: &Found, t: &Target<'_>, accounts: &BTreeMap<String, Given>, built: &mut Built) {
    let bc = &found.billing;
    let plan_names = assign(
        &bc.plans
            .iter()
            .map(|p| (p.arn.clone(), p.name.clone()))
            .collect::<Vec<_>>(),
        "plan",
    );
    for p in &bc.plans {
        let given = &plan_names[&p.arn];
        let arns = bc.plan_rules.get(&p.arn).cloned().unwrap_or_default();
        let (rules, foreign) = plan_rules(found, &p.name, &arns);
        if !foreign.is_empty() {
            built.notes.push(format!(
                "PricingPlan {}: rule(s) {} are not named as the operator names rules (<plan>.<entry>.<hash>); under Observe this shows as drift, and switching the plan to Manage would create the operator's rules next to them (review before you do)",
                given.name,
                foreign.join(", ")
            ));
        }
        let spec = json!({
            "payerRef": {"name": t.payer},
            "planName": (p.name != given.name).then_some(&p.name),
            "description": (!p.description.is_empty()).then_some(&p.description),
            "rules": rules,
            "tags": user_tags(found.tags.get(&p.arn)),
            "adopt": true,
        });
        built.push("PricingPlan", &p.arn, given, spec, found, t);
    }
    let group_names = assign(
        &bc.groups
            .iter()
            .map(|g| (g.arn.clone(), g.name.clone()))
            .collect::<Vec<_>>(),
        "group",
    );
    for g in &bc.groups {
        let given = &group_names[&g.arn];
        // Account ids, not LinkedAccount names: a group resolves a name through the
        // LinkedAccount's status, which an Observe LinkedAccount does not fill in.
        let members: Vec<String> = bc
            .members(&g.arn)
            .into_iter()
            .filter(|m| *m != g.primary_account_id)
            .collect();
        let named: Vec<String> = std::iter::once(&g.primary_account_id)
            .chain(&members)
            .filter_map(|id| {
                accounts
                    .get(id)
                    .map(|a| format!("{id} = LinkedAccount {}", a.name))
            })
            .collect();
        let spec = json!({
            "payerRef": {"name": t.payer},
            "groupName": (g.name != given.name).then_some(&g.name),
            "primaryAccount": g.primary_account_id,
            "accounts": members,
            "pricingPlanRef": plan_names.get(&g.plan_arn).map(|p| json!({"name": p.name})),
            "autoAssociate": g.auto_associate.then_some(true),
            "description": (!g.description.is_empty()).then_some(&g.description),
            "tags": user_tags(found.tags.get(&g.arn)),
            "deletionPolicy": "Retain",
            "adopt": true,
        });
        built.push("BillingGroup", &g.arn, given, spec, found, t);
        if let Some(doc) = built.docs.last_mut().filter(|d| d.name == given.name) {
            doc.comments.push(format!("accounts: {}", named.join(", ")));
        }
    }
    items(found, t, &group_names, built);
}

/// The rules of a plan as spec entries, and the AWS names not in the operator's form.
fn plan_rules(found: &Found, plan: &str, arns: &[String]) -> (Vec<Value>, Vec<String>) {
    let mut rules = Vec::new();
    let mut foreign = Vec::new();
    for r in found.billing.rules.iter().filter(|r| arns.contains(&r.arn)) {
        let mut entry = json!({
            "name": r.name,
            "description": (!r.description.is_empty()).then_some(&r.description),
            "scope": r.scope,
            "type": r.type_,
            "modifierPercentage": r.modifier_percentage,
            "service": r.service,
            "billingEntity": r.billing_entity,
            "usageType": r.usage_type,
            "operation": r.operation,
            "freeTier": r.free_tier,
        });
        if let Some(map) = entry.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
        let parsed: Option<crate::api::pricing_plan::PricingRule> =
            serde_json::from_value(entry.clone()).ok();
        let operator_named = has_rule_name_of(plan, &r.name);
        let round_trip = parsed.as_ref().and_then(|rule| {
            let entry_name = r
                .name
                .strip_prefix(&format!("{plan}."))?
                .rsplit_once('.')?
                .0;
            let rule = crate::api::pricing_plan::PricingRule {
                name: entry_name.to_string(),
                ..rule.clone()
            };
            (rule_aws_name(plan, &rule) == r.name).then(|| entry_name.to_string())
        });
        match round_trip.filter(|_| operator_named) {
            Some(entry_name) => entry["name"] = entry_name.into(),
            None => {
                let mut name = r.name.clone();
                name.truncate(64);
                entry["name"] = name.into();
                foreign.push(r.name.clone());
            }
        }
        rules.push(entry);
    }
    (rules, foreign)
}

/// The custom line items of the open periods: one that is only in the previous period ends
/// before the current one (`billingPeriod.end`).
fn items(found: &Found, t: &Target<'_>, groups: &BTreeMap<String, Given>, built: &mut Built) {
    let bc = &found.billing;
    let item_names = assign(
        &found
            .items
            .iter()
            .map(|(i, _)| (i.arn.clone(), i.name.clone()))
            .collect::<Vec<_>>(),
        "item",
    );
    for (i, periods) in &found.items {
        let Some(group) = groups.get(&i.group_arn) else {
            built.notes.push(format!(
                "skipped custom line item {} ({}): its billing group {} is not imported",
                i.name, i.arn, i.group_arn
            ));
            continue;
        };
        let given = &item_names[&i.arn];
        let in_current = periods.contains(&bc.current_period);
        let start = if periods.contains(&bc.previous_period) {
            &bc.previous_period
        } else {
            &bc.current_period
        };
        let spec = json!({
            "billingGroupRef": {"name": group.name},
            "itemName": (i.name != given.name).then_some(&i.name),
            "description": i.description,
            "type": i.charge_type,
            "flat": i.flat.map(|a| json!({"amount": a})),
            "percentage": i.percent.map(|p| json!({"percent": p})),
            "billingPeriod": {"start": start, "end": (!in_current).then_some(&bc.current_period)},
            "accountId": i.account_id,
            "tags": user_tags(found.tags.get(&i.arn)),
            "adopt": true,
        });
        let mut spec = spec;
        if let Some(bp) = spec["billingPeriod"].as_object_mut() {
            bp.retain(|_, v| !v.is_null());
        }
        built.push("CustomLineItem", &i.arn, given, spec, found, t);
    }
}
