//! `plan -f`: objects that depend on objects new in the same change. Once an object's plan
//! creates its AWS object (an SCP, an OU, an account, a pricing plan, a billing group), a
//! placeholder for it is put into this plan's own snapshots (or catalog), named
//! `(planned: <what>)`, so that the objects after it plan the change they will make once it
//! exists (attach the new SCP, move an account into the new OU, create a group with the new
//! plan) instead of waiting for it with no changes. Plan only: the placeholders live in the
//! plan's context, which is dropped afterwards, and no write is made in plan mode; the prune
//! preview skips them.
//!
//! This is the one place where file mode looks at kinds: a placeholder is the kind's AWS
//! object as its dependents look it up (by name in the shared snapshots, or the account id
//! in a LinkedAccount's status).

use std::any::Any;
use std::sync::Arc;

use kube::ResourceExt;

use crate::api::{
    BillingGroup, LinkedAccount, OrganizationalUnit, PricingPlan, ServiceControlPolicy,
};
use crate::aws::billing::{BcGroup, BcPlan};
use crate::aws::organizations::{OrgUnit, PolicySummary};
use crate::billing::snapshot::BillingSnapshot;
use crate::payer::snapshot::{OrgSnapshot, SharedReads, SnapshotCache};
use crate::reconcile::report::ObjectReport;
use crate::reconcile::{Change, ChangeAction, ReconcileContext, change, object_key};

/// How every placeholder id or ARN starts.
pub const PLANNED: &str = "(planned: ";

/// Whether `id` is a placeholder of this module (never sent to AWS).
pub fn is_planned(id: &str) -> bool {
    id.starts_with(PLANNED)
}

fn placeholder(what: &str) -> String {
    format!("{PLANNED}{what})")
}

/// After `object` was planned as `report` says: when the plan creates its AWS object, put a
/// placeholder for it where its dependents look it up (and, for an account to create, add
/// to `report` what follows its creation: the move into its OU, its SCP attachments).
pub fn record(object: &dyn Any, report: &mut ObjectReport, ctx: &ReconcileContext) {
    let creates = report
        .changes
        .iter()
        .any(|c| c.action == ChangeAction::Create);
    if report.error || !creates {
        return;
    }
    if let Some(o) = object.downcast_ref::<ServiceControlPolicy>() {
        policy(o, ctx);
    } else if let Some(o) = object.downcast_ref::<OrganizationalUnit>() {
        organizational_unit(o, ctx);
    } else if let Some(o) = object.downcast_ref::<LinkedAccount>() {
        account(o, ctx);
        report.changes.extend(after_creation(o, ctx));
    } else if let Some(o) = object.downcast_ref::<PricingPlan>() {
        pricing_plan(o, ctx);
    } else if let Some(o) = object.downcast_ref::<BillingGroup>() {
        billing_group(o, ctx);
    }
}

fn org_update(
    namespace: &str,
    payer: &str,
    ctx: &ReconcileContext,
    write: impl Fn(&mut OrgSnapshot) + Send + Sync + 'static,
) {
    let key = object_key(namespace, payer);
    ctx.shared::<SnapshotCache>().update(&key, Arc::new(write));
}

fn billing_update(
    namespace: &str,
    payer: &str,
    ctx: &ReconcileContext,
    write: impl Fn(&mut BillingSnapshot) + Send + Sync + 'static,
) {
    let key = object_key(namespace, payer);
    ctx.shared::<SharedReads<BillingSnapshot>>()
        .update(&key, Arc::new(write));
}

fn policy(o: &ServiceControlPolicy, ctx: &ReconcileContext) {
    let name = o.policy_name();
    let description = o.spec.description.clone().unwrap_or_default();
    let ns = o.namespace().unwrap_or_default();
    org_update(&ns, &o.spec.payer_ref.name, ctx, move |s| {
        s.root.scp_enabled = true;
        if s.policy_named(&name).is_none() {
            s.policies.push(PolicySummary {
                id: placeholder(&format!("SCP {name}")),
                arn: String::new(),
                name: name.clone(),
                description: description.clone(),
                aws_managed: false,
            });
        }
    });
}

fn organizational_unit(o: &OrganizationalUnit, ctx: &ReconcileContext) {
    let ns = o.namespace().unwrap_or_default();
    let key = object_key(&ns, &o.spec.payer_ref.name);
    let Some(snapshot) = ctx.shared::<SnapshotCache>().peek(&key) else {
        return;
    };
    let parent = crate::organizations::organizational_unit::resolve_parent(
        &ns,
        o.spec.parent_ref.as_ref(),
        &snapshot,
        ctx,
    );
    let Ok(parent_id) = parent else {
        return;
    };
    let name = o.spec.name.clone();
    org_update(&ns, &o.spec.payer_ref.name, ctx, move |s| {
        if s.ou_named(&parent_id, &name).is_none() {
            s.ous.push(OrgUnit {
                id: placeholder(&format!("OU {name}")),
                arn: String::new(),
                name: name.clone(),
                parent_id: parent_id.clone(),
            });
        }
    });
}

fn account(o: &LinkedAccount, ctx: &ReconcileContext) {
    let known = o.status.as_ref().and_then(|s| s.account_id.as_ref());
    if known.is_some() {
        return;
    }
    let mut planned = o.clone();
    let status = planned.status.get_or_insert_with(Default::default);
    status.account_id = Some(placeholder(&format!("account {}", o.name_any())));
    ctx.catalog.put(planned);
}

/// What the operator does once an account it creates exists: move it out of the root into
/// its parent, attach its SCPs (its tags go with CreateAccount).
fn after_creation(o: &LinkedAccount, ctx: &ReconcileContext) -> Vec<Change> {
    let Some(create) = &o.spec.create else {
        return Vec::new();
    };
    let ns = o.namespace().unwrap_or_default();
    let key = object_key(&ns, &o.spec.payer_ref.name);
    let Some(snapshot) = ctx.shared::<SnapshotCache>().peek(&key) else {
        return Vec::new();
    };
    let what = format!("account {}", create.account_name);
    let mut out = Vec::new();
    let parent = match (&o.spec.parent_ref, &o.spec.parent_id) {
        (Some(r), _) => {
            crate::organizations::organizational_unit::resolve_parent(&ns, Some(r), &snapshot, ctx)
                .ok()
        }
        (None, id) => id.clone(),
    };
    if let Some(parent) = parent.filter(|p| *p != snapshot.root.id) {
        out.push(change(
            ChangeAction::Update,
            what.clone(),
            format!("once created: move from {} to {parent}", snapshot.root.id),
        ));
    }
    for policy in &o.spec.service_control_policies {
        out.push(change(
            ChangeAction::Create,
            format!("SCP attachment {policy} -> {what}"),
            "once created: attach",
        ));
    }
    out
}

fn pricing_plan(o: &PricingPlan, ctx: &ReconcileContext) {
    let name = o.plan_name();
    let description = o.spec.description.clone().unwrap_or_default();
    let ns = o.namespace().unwrap_or_default();
    billing_update(&ns, &o.spec.payer_ref.name, ctx, move |s| {
        if s.plan_named(&name).is_none() {
            s.plans.push(BcPlan {
                arn: placeholder(&format!("pricing plan {name}")),
                name: name.clone(),
                description: description.clone(),
                size: 0,
            });
        }
    });
}

fn billing_group(o: &BillingGroup, ctx: &ReconcileContext) {
    let name = o.group_name();
    let description = o.spec.description.clone().unwrap_or_default();
    let auto_associate = o.spec.auto_associate;
    let group_type = o.spec.type_.as_str().to_string();
    let ns = o.namespace().unwrap_or_default();
    if o.status.as_ref().and_then(|s| s.arn.as_ref()).is_none() {
        let mut planned = o.clone();
        let status = planned.status.get_or_insert_with(Default::default);
        status.arn = Some(placeholder(&format!("billing group {name}")));
        ctx.catalog.put(planned);
    }
    billing_update(&ns, &o.spec.payer_ref.name, ctx, move |s| {
        if s.group_named(&name).is_none() {
            s.groups.push(BcGroup {
                arn: placeholder(&format!("billing group {name}")),
                name: name.clone(),
                description: description.clone(),
                primary_account_id: String::new(),
                plan_arn: String::new(),
                size: 0,
                status: String::new(),
                status_reason: None,
                auto_associate,
                group_type: group_type.clone(),
                // Known once its BillingTransfer is accepted; a placeholder group never
                // reaches AWS.
                transfer_arn: None,
            });
        }
    });
}
