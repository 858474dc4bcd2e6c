//! The Organizations kinds: LinkedAccount (with the account-creation queue),
//! OrganizationalUnit and ServiceControlPolicy, and what they share: SCP attachments — which
//! policies a target should carry ([`resolve_policies`], [`managed_policy_names`]), the pure
//! [`attachment_plan`], and [`execute_attachments`], which carries it out through the `Run`
//! and records each attachment in the payer's organization snapshot.

pub mod billing_transfer;
pub mod creations;
pub mod linked_account;
pub mod organizational_unit;
pub mod service_control_policy;

use std::collections::{BTreeSet, HashMap};

use crate::error::Error;
use crate::payer::context::PayerContext;
use crate::payer::snapshot::OrgSnapshot;
use crate::reconcile::reasons::{DEPENDENCY_NOT_READY, TOO_MANY_POLICIES};
use crate::reconcile::run::Run;
use crate::reconcile::{ChangeAction, DEPENDENCY_RETRY, ReconcileContext, change};

/// SCP attachments of one target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachmentPlan {
    /// (policy name, policy id) to attach.
    pub attach: Vec<(String, String)>,
    /// (policy name, policy id) to detach.
    pub detach: Vec<(String, String)>,
    /// Names of the operator's policies attached once the plan is carried out.
    pub result: Vec<String>,
}

/// AWS names of the ServiceControlPolicy objects `names` refers to, with their policy ids.
/// Waits while one does not exist yet.
pub fn resolve_policies(
    namespace: &str,
    names: &[String],
    snapshot: &OrgSnapshot,
    ctx: &ReconcileContext,
) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for name in names {
        let object = ctx
            .catalog
            .get::<crate::api::ServiceControlPolicy>(namespace, name)
            .ok_or_else(|| {
                Error::waiting(
                    DEPENDENCY_NOT_READY,
                    format!("ServiceControlPolicy {namespace}/{name} does not exist"),
                    DEPENDENCY_RETRY,
                )
            })?;
        let aws_name = object.policy_name();
        let policy = snapshot.policy_named(&aws_name).ok_or_else(|| {
            Error::waiting(
                DEPENDENCY_NOT_READY,
                format!(
                    "ServiceControlPolicy {namespace}/{name} ({aws_name}) is not created in AWS yet"
                ),
                DEPENDENCY_RETRY,
            )
        })?;
        out.push((aws_name, policy.id.clone()));
    }
    Ok(out)
}

/// AWS names of the policies the operator manages for this payer: every ServiceControlPolicy
/// object of the namespace with this payer, plus what the object's status says it attached.
pub fn managed_policy_names(
    namespace: &str,
    payer: &crate::api::LocalRef,
    previously: &[String],
    ctx: &ReconcileContext,
) -> BTreeSet<String> {
    ctx.catalog
        .list::<crate::api::ServiceControlPolicy>(namespace)
        .iter()
        .filter(|p| p.spec.payer_ref == *payer)
        .map(|p| p.policy_name())
        .chain(previously.iter().cloned())
        .collect()
}

/// Plan the SCP attachments of `target_id`: attach every desired policy, detach the managed
/// ones (`managed`) that are no longer desired, leave the others (FullAWSAccess, policies
/// attached outside the operator) alone. Refuses more than 5. Pure.
pub fn attachment_plan(
    target_id: &str,
    desired: &[(String, String)],
    managed: &BTreeSet<String>,
    snapshot: &OrgSnapshot,
) -> Result<AttachmentPlan, Error> {
    let current: HashMap<String, String> = snapshot
        .policies_of(target_id)
        .into_iter()
        .map(|p| (p.name.clone(), p.id.clone()))
        .collect();
    let wanted: BTreeSet<&str> = desired.iter().map(|(n, _)| n.as_str()).collect();
    let attach: Vec<(String, String)> = desired
        .iter()
        .filter(|(n, _)| !current.contains_key(n))
        .cloned()
        .collect();
    let mut detach: Vec<(String, String)> = current
        .iter()
        .filter(|(n, _)| managed.contains(*n) && !wanted.contains(n.as_str()))
        .map(|(n, id)| (n.clone(), id.clone()))
        .collect();
    detach.sort();
    let mut after: Vec<String> = current
        .keys()
        .filter(|n| !detach.iter().any(|(d, _)| d == *n))
        .cloned()
        .chain(attach.iter().map(|(n, _)| n.clone()))
        .collect();
    after.sort();
    after.dedup();
    if after.len() > 5 {
        return Err(Error::terminal(
            TOO_MANY_POLICIES,
            format!(
                "{target_id} would have {} SCPs attached ({}); AWS allows 5 per target, FullAWSAccess included",
                after.len(),
                after.join(", ")
            ),
        ));
    }
    let mut result: Vec<String> = wanted.iter().map(|n| n.to_string()).collect();
    result.sort();
    Ok(AttachmentPlan {
        attach,
        detach,
        result,
    })
}

/// Carry out an attachment plan through `run`: attach first, then detach, so the target never
/// has no SCP. Each attachment made is recorded in the snapshot at once, so a failure half-way
/// leaves the snapshot true to AWS. (The seam treats "already attached" and "not attached"
/// answers as done.)
pub async fn execute_attachments(
    pc: &mut PayerContext,
    ctx: &ReconcileContext,
    target_id: &str,
    plan: &AttachmentPlan,
    run: &mut Run,
) -> Result<(), Error> {
    for (name, id) in &plan.attach {
        let attach = change(
            ChangeAction::Create,
            format!("SCP attachment {name} -> {target_id}"),
            format!("attach {id}"),
        );
        let orgs = &pc.conn.organizations;
        if run
            .write(attach, || orgs.attach_policy(id, target_id))
            .await?
            .is_some()
        {
            let (policy, target) = (id.clone(), target_id.to_string());
            pc.record(ctx, move |s| s.attach(&policy, &target));
        }
    }
    for (name, id) in &plan.detach {
        let detach = change(
            ChangeAction::Delete,
            format!("SCP attachment {name} -> {target_id}"),
            format!("detach {id}"),
        );
        let orgs = &pc.conn.organizations;
        if run
            .write(detach, || orgs.detach_policy(id, target_id))
            .await?
            .is_some()
        {
            let (policy, target) = (id.clone(), target_id.to_string());
            pc.record(ctx, move |s| s.detach(&policy, &target));
        }
    }
    Ok(())
}
