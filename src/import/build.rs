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

use super::names::{Given, assign_by};
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
    let scps = org.policies.iter().filter(|p| !p.aws_managed);
    let scp_names = assign_by(scps, |p| (&p.id, &p.name), "scp");
    let ou_names = assign_by(&org.ous, |o| (&o.id, &o.name), "ou");
    let accounts: Vec<_> = org
        .accounts
        .iter()
        .filter(|a| a.id != org.organization.management_account_id)
        .collect();
    let account_names = assign_by(&accounts, |a| (&a.id, &a.name), "account");
    let policies_of = |target: &str| -> Vec<String> {
        org.policies_of(target)
            .iter()
            .filter_map(|p| scp_names.get(&p.id).map(|g| g.name.clone()))
            .collect()
    };
    policy_docs(found, t, &scp_names, &mut built);
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

/// The SCPs, documents included (a root attachment is said in a note: no kind manages it).
fn policy_docs(
    found: &Found,
    t: &Target<'_>,
    scp_names: &BTreeMap<String, Given>,
    built: &mut Built,
) {
    let org = &found.org;
    for p in org.policies.iter().filter(|p| !p.aws_managed) {
        let given = &scp_names[&p.id];
        if org
            .targets
            .get(&p.id)
            .is_some_and(|t| t.contains(&org.root.id))
        {
            built.notes.push(format!(
                "SCP {} ({}) is attached to the root {}: no kind manages root attachments, so it stays attached as it is",
                p.name, p.id, org.root.id
            ));
        }
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
}

/// The Billing Conductor manifests: plans with their rules, groups, items.
fn billing(found: &Found, t: &Target<'_>, accounts: &BTreeMap<String, Given>, built: &mut Built) {
    let bc = &found.billing;
    let plan_names = assign_by(&bc.plans, |p| (&p.arn, &p.name), "plan");
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
    let group_names = assign_by(&bc.groups, |g| (&g.arn, &g.name), "group");
    for g in &bc.groups {
        let given = &group_names[&g.arn];
        if g.group_type == "TRANSFER_BILLING" {
            // Its spec names a BillingTransfer (responsibilityTransferRef), which import does
            // not write: say so rather than write a manifest that cannot validate.
            built.notes.push(format!(
                "BillingGroup {}: a TRANSFER_BILLING group (transfer {}) is not imported: write a BillingTransfer for its transfer and a group with type TRANSFER_BILLING and responsibilityTransferRef by hand",
                g.name,
                g.transfer_arn.as_deref().unwrap_or("unknown")
            ));
            continue;
        }
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
            "pricingPlanRef": plan_ref(&plan_names, &g.plan_arn),
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

/// The `pricingPlanRef` of an imported group: the imported PricingPlan, or the AWS-managed
/// plan (`BasicPricingPlan`, `Passthrough`) the group uses.
fn plan_ref(plan_names: &BTreeMap<String, Given>, plan_arn: &str) -> Option<Value> {
    if let Some(p) = plan_names.get(plan_arn) {
        return Some(json!({"name": p.name}));
    }
    crate::api::billing_group::AWS_MANAGED_PLANS
        .into_iter()
        .find(|name| crate::billing::billing_group::managed_plan_arn(name) == plan_arn)
        .map(|name| json!({"name": name}))
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
    let item_names = assign_by(&found.items, |(i, _)| (&i.arn, &i.name), "item");
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::aws::billing::{BcGroup, BcPlan, BcRule};
    use crate::aws::organizations::{Account, OrgUnit, Organization, PolicySummary, Root};
    use crate::billing::snapshot::BillingSnapshot;
    use crate::payer::snapshot::OrgSnapshot;

    fn account(id: &str, name: &str) -> Account {
        Account {
            id: id.into(),
            email: format!("{name}@example.com"),
            name: name.into(),
            state: AccountState::Active,
            joined_method: "CREATED".into(),
        }
    }

    fn rule(arn: &str, name: &str) -> BcRule {
        BcRule {
            arn: arn.into(),
            name: name.into(),
            description: String::new(),
            scope: "GLOBAL".into(),
            type_: "MARKUP".into(),
            modifier_percentage: Some(5.0),
            service: None,
            billing_entity: None,
            usage_type: None,
            operation: None,
            free_tier: None,
        }
    }

    fn found() -> Found {
        let entry: crate::api::pricing_plan::PricingRule = serde_json::from_value(
            json!({"name": "markup", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 5}),
        )
        .unwrap();
        let org = OrgSnapshot {
            organization: Organization {
                id: "o-1".into(),
                arn: String::new(),
                feature_set: "ALL".into(),
                management_account_id: "123456789012".into(),
            },
            root: Root {
                id: "r-1".into(),
                arn: String::new(),
                scp_enabled: true,
            },
            accounts: vec![
                account("123456789012", "payer"),
                account("111111111111", "Acme"),
                account("222222222222", "ACME"),
            ],
            ous: vec![OrgUnit {
                id: "ou-1".into(),
                arn: String::new(),
                name: "Customers".into(),
                parent_id: "r-1".into(),
            }],
            parent_of: HashMap::from([("111111111111".to_string(), "ou-1".to_string())]),
            policies: vec![PolicySummary {
                id: "p-1".into(),
                arn: String::new(),
                name: "Deny Leave".into(),
                description: String::new(),
                aws_managed: false,
            }],
            targets: HashMap::from([(
                "p-1".to_string(),
                vec!["r-1".to_string(), "ou-1".to_string()],
            )]),
            creates_in_progress: Vec::new(),
            invitations: Vec::new(),
            index: Default::default(),
        };
        let billing = BillingSnapshot {
            current_period: "2026-12".into(),
            previous_period: "2026-11".into(),
            rules: vec![
                rule(
                    "arn:r1",
                    &crate::billing::pricing_plan::rule_aws_name("silver", &entry),
                ),
                rule("arn:r2", "by-hand"),
            ],
            plans: vec![BcPlan {
                arn: "arn:p1".into(),
                name: "silver".into(),
                description: String::new(),
                size: 2,
            }],
            plan_rules: HashMap::from([(
                "arn:p1".to_string(),
                vec!["arn:r1".to_string(), "arn:r2".to_string()],
            )]),
            groups: vec![BcGroup {
                arn: "arn:g1".into(),
                name: "acme".into(),
                description: String::new(),
                primary_account_id: "111111111111".into(),
                plan_arn: "arn:p1".into(),
                size: 1,
                status: "ACTIVE".into(),
                status_reason: None,
                auto_associate: false,
                group_type: "STANDARD".into(),
                transfer_arn: None,
            }],
            group_of: HashMap::from([("111111111111".to_string(), "arn:g1".to_string())]),
            items: Vec::new(),
            costs: HashMap::new(),
            index: Default::default(),
        };
        Found {
            org: Arc::new(org),
            billing: Arc::new(billing),
            items: Vec::new(),
            tags: BTreeMap::from([(
                "111111111111".to_string(),
                Tags::from([
                    ("team".to_string(), "a".to_string()),
                    (OWNER_TAG.to_string(), "x/linkedaccount/y".to_string()),
                ]),
            )]),
            documents: BTreeMap::from([(
                "p-1".to_string(),
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#.to_string(),
            )]),
        }
    }

    #[test]
    fn manifests_validate_and_say_what_they_could_not_carry() {
        let built = build(
            &found(),
            &Target {
                namespace: "billing",
                payer: "acme",
            },
        );
        let names: Vec<(&str, &str)> = built
            .docs
            .iter()
            .map(|d| (d.kind, d.name.as_str()))
            .collect();
        // The account with an owner tag is managed already: skipped with a note.
        assert_eq!(
            names,
            [
                ("ServiceControlPolicy", "deny-leave"),
                ("OrganizationalUnit", "customers"),
                ("LinkedAccount", "acme-22222222"),
                ("PricingPlan", "silver"),
                ("BillingGroup", "acme"),
            ]
        );
        for d in &built.docs {
            let schema = crate::crdgen::schema_for(d.kind).unwrap();
            let v = crate::schema_check::validate(&schema, &d.value, None);
            assert!(v.is_empty(), "{}: {v:?}\n{}", d.kind, d.value);
            assert_eq!(d.value["spec"]["managementPolicy"], "Observe");
        }
        let notes = built.notes.join("\n");
        assert!(
            notes.contains("name collision: LinkedAccount 222222222222"),
            "{notes}"
        );
        assert!(
            notes.contains("managed already by x/linkedaccount/y"),
            "{notes}"
        );
        assert!(notes.contains("attached to the root"), "{notes}");
        assert!(
            notes.contains("PricingPlan silver: rule(s) by-hand"),
            "{notes}"
        );
        let plan = &built.docs[3].value["spec"];
        assert_eq!(
            plan["rules"][0]["name"], "markup",
            "the operator's rule name round-trips"
        );
        assert_eq!(plan["rules"][1]["name"], "by-hand");
        assert_eq!(built.docs[0].value["spec"]["policyName"], "Deny Leave");
        assert_eq!(
            built.docs[4].value["spec"]["primaryAccount"],
            "111111111111"
        );
    }
}
