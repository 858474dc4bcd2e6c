//! OrganizationalUnit: found again by id (status) or by name under its parent; created,
//! renamed, tagged, SCPs attached; deleted only when empty.

use std::time::Duration;

use kube::ResourceExt;

use crate::api::common::{DeleteOrRetain, OWNER_TAG, owner_value, with_owner};
use crate::api::{LocalRef, OrganizationalUnit, OrganizationalUnitStatus};
use crate::aws::organizations::OrgUnit;
use crate::error::Error;

use crate::organizations::{
    attachment_plan, execute_attachments, managed_policy_names, resolve_policies,
};
use crate::payer::context::PayerContext;
use crate::payer::snapshot::OrgSnapshot;
use crate::reconcile::run::Run;
use crate::reconcile::tags::{TagApi, converge_tags, tag_check_due};
use crate::reconcile::{ChangeAction, KindOutcome, Mode, ReconcileContext, Verdict};
use crate::reconcile::{DEPENDENCY_RETRY, change};

/// AWS allows OUs five levels deep.
const MAX_DEPTH: usize = 5;

/// The id of the parent `parent_ref` names (the root when none). Waits while the parent OU
/// does not exist yet.
pub fn resolve_parent(
    namespace: &str,
    parent_ref: Option<&LocalRef>,
    snapshot: &OrgSnapshot,
    ctx: &ReconcileContext,
) -> Result<String, Error> {
    resolve_parent_at(namespace, parent_ref, snapshot, ctx, 0)
}

fn resolve_parent_at(
    namespace: &str,
    parent_ref: Option<&LocalRef>,
    snapshot: &OrgSnapshot,
    ctx: &ReconcileContext,
    depth: usize,
) -> Result<String, Error> {
    let Some(parent_ref) = parent_ref else {
        return Ok(snapshot.root.id.clone());
    };
    if depth >= MAX_DEPTH {
        return Err(Error::terminal(
            "InvalidSpec",
            format!(
                "OrganizationalUnits nest deeper than {MAX_DEPTH} levels (or in a cycle) at {}",
                parent_ref.name
            ),
        ));
    }
    let parent = ctx
        .catalog
        .organizational_unit(namespace, &parent_ref.name)
        .ok_or_else(|| {
            Error::waiting(
                "DependencyNotReady",
                format!(
                    "OrganizationalUnit {namespace}/{} does not exist",
                    parent_ref.name
                ),
                DEPENDENCY_RETRY,
            )
        })?;
    let grandparent = resolve_parent_at(
        namespace,
        parent.spec.parent_ref.as_ref(),
        snapshot,
        ctx,
        depth + 1,
    )?;
    find_ou(&parent, &grandparent, snapshot)
        .map(|o| o.id.clone())
        .ok_or_else(|| {
            Error::waiting(
                "DependencyNotReady",
                format!(
                    "OrganizationalUnit {namespace}/{} is not created in AWS yet",
                    parent_ref.name
                ),
                DEPENDENCY_RETRY,
            )
        })
}

/// The OU of `obj` in the snapshot: by the id in its status, else by name under `parent_id`.
pub fn find_ou<'a>(
    obj: &OrganizationalUnit,
    parent_id: &str,
    snapshot: &'a OrgSnapshot,
) -> Option<&'a OrgUnit> {
    obj.status
        .as_ref()
        .and_then(|s| s.ou_id.as_deref())
        .and_then(|id| snapshot.ou(id))
        .or_else(|| snapshot.ou_named(parent_id, &obj.spec.name))
}

/// The OU under `parent_id` whose owner tag is `owner` (one ListTagsForResource per OU
/// there; only asked when the name does not find it).
async fn owned_ou(
    pc: &PayerContext,
    parent_id: &str,
    owner: &str,
) -> Result<Option<OrgUnit>, Error> {
    for ou in pc.snapshot.ous.iter().filter(|o| o.parent_id == parent_id) {
        let tags = pc.conn.organizations.list_tags(&ou.id).await?;
        if tags.get(OWNER_TAG).is_some_and(|o| o == owner) {
            return Ok(Some(ou.clone()));
        }
    }
    Ok(None)
}

/// Reconcile an OrganizationalUnit.
pub async fn reconcile(
    obj: &OrganizationalUnit,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<OrganizationalUnitStatus> {
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
    obj: &OrganizationalUnit,
    ctx: &ReconcileContext,
    mode: Mode,
    now: &str,
    status: &mut OrganizationalUnitStatus,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let plan_only = mode == Mode::Plan;
    let mut pc = PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await?;
    let parent_id = resolve_parent(&namespace, obj.spec.parent_ref.as_ref(), &pc.snapshot, ctx)?;
    let owner = owner_value(&namespace, "OrganizationalUnit", &obj.name_any());
    let tags = with_owner(&obj.spec.tags, &owner);
    let desired_policies = resolve_policies(
        &namespace,
        &obj.spec.service_control_policies,
        &pc.snapshot,
        ctx,
    )?;
    let spec_changed = status.observed_generation != obj.metadata.generation;

    let mut found = find_ou(obj, &parent_id, &pc.snapshot).cloned();
    if found.is_none() {
        // Renamed while its status was lost (a crash, file mode): ours carries our owner tag.
        found = owned_ou(&pc, &parent_id, &owner).await?;
    }
    let ou = match found {
        Some(ou) => ou,
        None => {
            changes.push(change(
                ChangeAction::Create,
                format!("OU {}", obj.spec.name),
                format!("under {parent_id}"),
            ));
            if plan_only {
                for (name, _) in &desired_policies {
                    changes.push(change(
                        ChangeAction::Create,
                        format!("SCP attachment {name} -> OU {}", obj.spec.name),
                        "attach",
                    ));
                }
                return Ok(Verdict::blocked(
                    "PlannedOnly",
                    format!("OU {} would be created", obj.spec.name),
                ));
            }
            let created = match pc
                .conn
                .organizations
                .create_ou(&parent_id, &obj.spec.name, &tags)
                .await
            {
                Err(e) if e.aws_code() == Some("DuplicateOrganizationalUnitException") => {
                    pc.refresh(ctx).await?;
                    return Err(Error::retryable(
                        "Conflict",
                        format!(
                            "OU {} appeared under {parent_id} meanwhile; looking again",
                            obj.spec.name
                        ),
                    ));
                }
                other => other?,
            };
            status.tags_checked_at = Some(now.to_string());
            let ou = created.clone();
            pc.record(ctx, move |s| s.add_ou(&ou));
            created
        }
    };
    if ou.parent_id != parent_id {
        return Err(Error::terminal(
            "ParentMismatch",
            format!(
                "OU {} ({}) is under {} but the spec puts it under {parent_id}; AWS cannot move OUs: move its accounts to a new OrganizationalUnit",
                ou.name, ou.id, ou.parent_id
            ),
        ));
    }
    if ou.name != obj.spec.name {
        changes.push(change(
            ChangeAction::Update,
            format!("OU {} ({})", ou.name, ou.id),
            format!("rename to {}", obj.spec.name),
        ));
        if !plan_only {
            pc.conn
                .organizations
                .rename_ou(&ou.id, &obj.spec.name)
                .await?;
            let (id, name) = (ou.id.clone(), obj.spec.name.clone());
            pc.record(ctx, move |s| s.rename_ou(&id, &name));
        }
    }
    if tag_check_due(
        spec_changed,
        status.tags_checked_at.as_deref(),
        now,
        &obj.uid().unwrap_or_default(),
    ) {
        let current = pc.conn.organizations.list_tags(&ou.id).await?;
        if let Some(other) = current.get(OWNER_TAG).filter(|o| **o != owner) {
            return Err(Error::terminal(
                "OwnedElsewhere",
                format!("OU {} ({}) belongs to {other}", ou.name, ou.id),
            ));
        }
        converge_tags(
            TagApi::Organizations(pc.conn.organizations.as_ref()),
            &ou.id,
            &tags,
            &current,
            plan_only,
            changes,
        )
        .await?;
        if !plan_only {
            status.tags_checked_at = Some(now.to_string());
        }
    }
    let attachments = attachment_plan(
        &ou.id,
        &desired_policies,
        &managed_policy_names(
            &namespace,
            &obj.spec.payer_ref,
            &status.attached_policies,
            ctx,
        ),
        &pc.snapshot,
    )?;
    execute_attachments(&mut pc, ctx, &ou.id, &attachments, plan_only, changes).await?;
    status.ou_id = Some(ou.id.clone());
    status.arn = Some(ou.arn.clone());
    status.parent_id = Some(parent_id.clone());
    status.attached_policies = attachments.result;
    Ok(Verdict::ready(
        "Available",
        format!("OU {} ({}) under {parent_id}", obj.spec.name, ou.id),
    ))
}

/// Deletion: `Retain` releases; `Delete` refuses while the OU holds accounts or OUs (a
/// condition lists them), then deletes it.
pub async fn cleanup(
    obj: &OrganizationalUnit,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<OrganizationalUnitStatus> {
    let now = run.timestamp().to_string();
    let now = now.as_str();
    let previous = obj.status.clone().unwrap_or_default();
    let status = previous.clone();
    let mut changes = Vec::new();
    let result = delete(obj, ctx, &mut changes).await;
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
    obj: &OrganizationalUnit,
    ctx: &ReconcileContext,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    if obj.spec.deletion_policy == DeleteOrRetain::Retain {
        return Ok(Verdict::ready(
            "Released",
            "deletionPolicy Retain: the OU stays in AWS",
        ));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let mut pc = match PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await {
        Ok(pc) => pc,
        Err(Error::Waiting { .. }) => {
            return Ok(Verdict::ready(
                "Released",
                "the Payer is gone; nothing in AWS was changed",
            ));
        }
        Err(e) => return Err(e),
    };
    let by_id = obj
        .status
        .as_ref()
        .and_then(|s| s.ou_id.as_deref())
        .and_then(|id| pc.snapshot.ou(id));
    // Without a status (lost in a crash, or never written), the spec says where it is.
    let parent = obj
        .status
        .as_ref()
        .and_then(|s| s.parent_id.clone())
        .or_else(|| {
            resolve_parent(&namespace, obj.spec.parent_ref.as_ref(), &pc.snapshot, ctx).ok()
        });
    let ou = by_id
        .or_else(|| {
            parent
                .as_deref()
                .and_then(|p| pc.snapshot.ou_named(p, &obj.spec.name))
        })
        .cloned();
    let Some(ou) = ou else {
        return Ok(Verdict::ready(
            "Released",
            format!("OU {} does not exist in AWS", obj.spec.name),
        ));
    };
    let owner = owner_value(&namespace, "OrganizationalUnit", &obj.name_any());
    let tags = pc.conn.organizations.list_tags(&ou.id).await?;
    if tags.get(OWNER_TAG).is_some_and(|o| *o != owner) {
        return Ok(Verdict::ready(
            "Released",
            format!("OU {} belongs to another object; left in AWS", ou.id),
        ));
    }
    let (accounts, ous) = pc.snapshot.children_of(&ou.id);
    if !accounts.is_empty() || !ous.is_empty() {
        let mut inside = Vec::new();
        if !accounts.is_empty() {
            inside.push(format!("accounts {}", accounts.join(", ")));
        }
        if !ous.is_empty() {
            inside.push(format!("OUs {}", ous.join(", ")));
        }
        return Err(Error::waiting(
            "OrganizationalUnitNotEmpty",
            format!(
                "OU {} ({}) still holds {}; move or delete them before deleting it (or set deletionPolicy Retain)",
                ou.name,
                ou.id,
                inside.join(" and ")
            ),
            Duration::from_secs(60),
        ));
    }
    changes.push(change(
        ChangeAction::Delete,
        format!("OU {} ({})", ou.name, ou.id),
        "delete",
    ));
    match pc.conn.organizations.delete_ou(&ou.id).await {
        Err(e) if e.aws_code() == Some("OrganizationalUnitNotFoundException") => {}
        other => other?,
    }
    let id = ou.id.clone();
    pc.record(ctx, move |s| s.remove_ou(&id));
    Ok(Verdict::ready(
        "Deleted",
        format!("OU {} ({}) was deleted", ou.name, ou.id),
    ))
}
