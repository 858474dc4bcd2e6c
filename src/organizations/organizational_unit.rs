//! OrganizationalUnit: found again by id (status) or by name under its parent; created,
//! renamed, tagged, SCPs attached; deleted only when empty.
//!
//! Reconcile: [`observe`] the OU (snapshot, else its owner tag), [`plan`] its creation or
//! rename (pure), carry that out through the `Run` (each write also recorded in the payer's
//! organization snapshot), then its tags when due ([`check_owner`] is pure) and its SCP
//! attachments (the pure plan lives in `organizations`), and derive the status (pure).
//! Cleanup: observe, [`plan_deletion`] (pure), delete.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::common::{DeleteOrRetain, OWNER_TAG, owner_value, with_owner};
use crate::api::{LocalRef, OrganizationalUnit, OrganizationalUnitStatus};
use crate::aws::organizations::{OrgUnit, Tags};
use crate::error::Error;

use crate::organizations::{
    attachment_plan, execute_attachments, managed_policy_names, resolve_policies,
};
use crate::payer::context::PayerContext;
use crate::payer::snapshot::OrgSnapshot;
use crate::reconcile::reasons::{
    AVAILABLE, CONFLICT, DELETED, DEPENDENCY_NOT_READY, INVALID_SPEC,
    ORGANIZATIONAL_UNIT_NOT_EMPTY, OWNED_ELSEWHERE, PARENT_MISMATCH, PLANNED_ONLY, RELEASED,
};
use crate::reconcile::run::Run;
use crate::reconcile::tags::{TagApi, converge_tags, tag_check_due};
use crate::reconcile::{ChangeAction, KindOutcome, ReconcileContext, Verdict};
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
            INVALID_SPEC,
            format!(
                "OrganizationalUnits nest deeper than {MAX_DEPTH} levels (or in a cycle) at {}",
                parent_ref.name
            ),
        ));
    }
    let parent = ctx
        .catalog
        .get::<crate::api::OrganizationalUnit>(namespace, &parent_ref.name)
        .ok_or_else(|| {
            Error::waiting(
                DEPENDENCY_NOT_READY,
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
                DEPENDENCY_NOT_READY,
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

/// What the object asks AWS to hold.
#[derive(Clone, Debug, PartialEq)]
pub struct OuDesired {
    pub name: String,
    /// The id of the parent the spec names (the root when none).
    pub parent_id: String,
    /// Its tags, owner tag included.
    pub tags: Tags,
    /// The owner value that marks the OU as this object's.
    pub owner: String,
    /// (AWS name, policy id) of the SCPs to attach.
    pub policies: Vec<(String, String)>,
}

/// What makes the OU exist as the spec names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OuPlan {
    /// Create it under the desired parent.
    Create,
    /// Rename the OU found to the desired name.
    Rename(OrgUnit),
    /// The OU found is as the spec names it.
    Keep(OrgUnit),
}

/// What to do so that the OU exists under its parent with its name: create it when it was not
/// `found`; refuse one under another parent (AWS cannot move OUs); rename. Pure.
pub fn plan(desired: &OuDesired, found: Option<OrgUnit>) -> Result<OuPlan, Error> {
    let Some(ou) = found else {
        return Ok(OuPlan::Create);
    };
    if ou.parent_id != desired.parent_id {
        return Err(Error::terminal(
            PARENT_MISMATCH,
            format!(
                "OU {} ({}) is under {} but the spec puts it under {}; AWS cannot move OUs: move its accounts to a new OrganizationalUnit",
                ou.name, ou.id, ou.parent_id, desired.parent_id
            ),
        ));
    }
    if ou.name != desired.name {
        return Ok(OuPlan::Rename(ou));
    }
    Ok(OuPlan::Keep(ou))
}

/// Refuse an OU whose `current` tags name another owner than `owner`. Pure.
pub fn check_owner(ou: &OrgUnit, current: &Tags, owner: &str) -> Result<(), Error> {
    match current.get(OWNER_TAG).filter(|o| **o != owner) {
        Some(other) => Err(Error::terminal(
            OWNED_ELSEWHERE,
            format!("OU {} ({}) belongs to {other}", ou.name, ou.id),
        )),
        None => Ok(()),
    }
}

/// Reconcile an OrganizationalUnit.
pub async fn reconcile(
    obj: &OrganizationalUnit,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<OrganizationalUnitStatus> {
    run.reconcile(
        obj.status.as_ref(),
        obj.metadata.generation,
        async |run, status| apply(obj, ctx, run, status).await,
    )
    .await
}

async fn apply(
    obj: &OrganizationalUnit,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut OrganizationalUnitStatus,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let mut pc = PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await?;
    let desired = desired(obj, &namespace, &pc.snapshot, ctx)?;
    let found = observe(&pc, obj, &desired).await?;
    let ou = match plan(&desired, found)? {
        OuPlan::Create => match create(&mut pc, ctx, run, &desired).await? {
            Some(created) => {
                status.tags_checked_at = Some(run.timestamp().to_string());
                created
            }
            None => return Ok(planned_creation(run, &desired)),
        },
        OuPlan::Rename(ou) => {
            rename(&mut pc, ctx, run, &ou, &desired.name).await?;
            ou
        }
        OuPlan::Keep(ou) => ou,
    };
    let spec_changed = status.observed_generation != obj.metadata.generation;
    let checked_at = status
        .tags_checked_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok());
    let uid = obj.uid().unwrap_or_default();
    if tag_check_due(spec_changed, checked_at, run.time(), &uid) {
        converge_ou_tags(&pc, run, &ou, &desired).await?;
        if run.applying() {
            status.tags_checked_at = Some(run.timestamp().to_string());
        }
    }
    let managed = managed_policy_names(
        &namespace,
        &obj.spec.payer_ref,
        &status.attached_policies,
        ctx,
    );
    let attachments = attachment_plan(&ou.id, &desired.policies, &managed, &pc.snapshot)?;
    execute_attachments(&mut pc, ctx, &ou.id, &attachments, run).await?;
    Ok(derive_status(status, &ou, &desired, attachments.result))
}

/// What `obj` asks for: its parent resolved (waits while the parent OU does not exist), its
/// tags with the owner tag, its SCPs resolved (waits while one does not exist).
fn desired(
    obj: &OrganizationalUnit,
    namespace: &str,
    snapshot: &OrgSnapshot,
    ctx: &ReconcileContext,
) -> Result<OuDesired, Error> {
    let parent_id = resolve_parent(namespace, obj.spec.parent_ref.as_ref(), snapshot, ctx)?;
    let owner = owner_value(namespace, "OrganizationalUnit", &obj.name_any());
    let policies = resolve_policies(namespace, &obj.spec.service_control_policies, snapshot, ctx)?;
    Ok(OuDesired {
        name: obj.spec.name.clone(),
        parent_id,
        tags: with_owner(&obj.spec.tags, &owner),
        owner,
        policies,
    })
}

/// The OU of `obj`: by the status's id or by name in the snapshot, else (renamed while its
/// status was lost: a crash, file mode) the one under the parent that carries its owner tag.
async fn observe(
    pc: &PayerContext,
    obj: &OrganizationalUnit,
    desired: &OuDesired,
) -> Result<Option<OrgUnit>, Error> {
    match find_ou(obj, &desired.parent_id, &pc.snapshot) {
        Some(ou) => Ok(Some(ou.clone())),
        None => owned_ou(pc, &desired.parent_id, &desired.owner).await,
    }
}

/// Create the OU (with its tags); `None` in plan mode. An OU of that name that appeared
/// meanwhile is looked for again.
async fn create(
    pc: &mut PayerContext,
    ctx: &ReconcileContext,
    run: &mut Run,
    desired: &OuDesired,
) -> Result<Option<OrgUnit>, Error> {
    let create = change(
        ChangeAction::Create,
        format!("OU {}", desired.name),
        format!("under {}", desired.parent_id),
    );
    let orgs = pc.conn.organizations.clone();
    let created = match run
        .write(create, || {
            orgs.create_ou(&desired.parent_id, &desired.name, &desired.tags)
        })
        .await
    {
        Err(e) if e.aws_code() == Some("DuplicateOrganizationalUnitException") => {
            pc.refresh(ctx).await?;
            return Err(Error::retryable(
                CONFLICT,
                format!(
                    "OU {} appeared under {} meanwhile; looking again",
                    desired.name, desired.parent_id
                ),
            ));
        }
        other => other?,
    };
    if let Some(created) = &created {
        let ou = created.clone();
        pc.record(ctx, move |s| s.add_ou(&ou));
    }
    Ok(created)
}

/// Plan mode, the OU not created: its attachments are listed as they would be made (they
/// cannot be planned against an OU that does not exist).
fn planned_creation(run: &mut Run, desired: &OuDesired) -> Verdict {
    for (name, _) in &desired.policies {
        run.record(
            ChangeAction::Create,
            format!("SCP attachment {name} -> OU {}", desired.name),
            "attach",
        );
    }
    Verdict::blocked(
        PLANNED_ONLY,
        format!("OU {} would be created", desired.name),
    )
}

async fn rename(
    pc: &mut PayerContext,
    ctx: &ReconcileContext,
    run: &mut Run,
    ou: &OrgUnit,
    name: &str,
) -> Result<(), Error> {
    let rename = change(
        ChangeAction::Update,
        format!("OU {} ({})", ou.name, ou.id),
        format!("rename to {name}"),
    );
    let orgs = pc.conn.organizations.clone();
    if run
        .write(rename, || orgs.rename_ou(&ou.id, name))
        .await?
        .is_some()
    {
        let (id, name) = (ou.id.clone(), name.to_string());
        pc.record(ctx, move |s| s.rename_ou(&id, &name));
    }
    Ok(())
}

/// Read the OU's tags, refuse it if another object owns it, and converge them.
async fn converge_ou_tags(
    pc: &PayerContext,
    run: &mut Run,
    ou: &OrgUnit,
    desired: &OuDesired,
) -> Result<(), Error> {
    let current = pc.conn.organizations.list_tags(&ou.id).await?;
    check_owner(ou, &current, &desired.owner)?;
    converge_tags(
        TagApi::Organizations(pc.conn.organizations.as_ref()),
        &ou.id,
        &desired.tags,
        &current,
        run,
    )
    .await
}

/// The status and verdict once the OU is in place with `attached` policies. Pure.
fn derive_status(
    status: &mut OrganizationalUnitStatus,
    ou: &OrgUnit,
    desired: &OuDesired,
    attached: Vec<String>,
) -> Verdict {
    status.ou_id = Some(ou.id.clone());
    status.arn = Some(ou.arn.clone());
    status.parent_id = Some(desired.parent_id.clone());
    status.attached_policies = attached;
    Verdict::ready(
        AVAILABLE,
        format!(
            "OU {} ({}) under {}",
            desired.name, ou.id, desired.parent_id
        ),
    )
}

/// Deletion: `Retain` releases; `Delete` refuses while the OU holds accounts or OUs (a
/// condition lists them), then deletes it.
pub async fn cleanup(
    obj: &OrganizationalUnit,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<OrganizationalUnitStatus> {
    run.cleanup(
        obj.status.as_ref(),
        obj.metadata.generation,
        |_| false,
        async |run, _| delete(obj, ctx, run).await,
    )
    .await
}

/// What AWS holds for an OU being deleted: the OU, its tags, and the ids of the accounts and
/// OUs directly in it.
#[derive(Clone, Debug, PartialEq)]
pub struct OuFound {
    pub ou: OrgUnit,
    pub tags: Tags,
    pub accounts: Vec<String>,
    pub ous: Vec<String>,
}

/// What deleting the object does in AWS.
#[derive(Clone, Debug, PartialEq)]
pub enum OuDeletion {
    /// Nothing: the object is released as the verdict says.
    Release(Verdict),
    /// Delete the (empty) OU.
    Delete(OrgUnit),
}

/// Whether the OU `name` (`found` in AWS, or not) is deleted for the object `owner`; waits
/// while it holds accounts or OUs. Pure.
pub fn plan_deletion(name: &str, owner: &str, found: Option<OuFound>) -> Result<OuDeletion, Error> {
    let Some(found) = found else {
        return Ok(OuDeletion::Release(Verdict::ready(
            RELEASED,
            format!("OU {name} does not exist in AWS"),
        )));
    };
    let ou = found.ou;
    if found.tags.get(OWNER_TAG).is_some_and(|o| *o != owner) {
        return Ok(OuDeletion::Release(Verdict::ready(
            RELEASED,
            format!("OU {} belongs to another object; left in AWS", ou.id),
        )));
    }
    if !found.accounts.is_empty() || !found.ous.is_empty() {
        let mut inside = Vec::new();
        if !found.accounts.is_empty() {
            inside.push(format!("accounts {}", found.accounts.join(", ")));
        }
        if !found.ous.is_empty() {
            inside.push(format!("OUs {}", found.ous.join(", ")));
        }
        return Err(Error::waiting(
            ORGANIZATIONAL_UNIT_NOT_EMPTY,
            format!(
                "OU {} ({}) still holds {}; move or delete them before deleting it (or set deletionPolicy Retain)",
                ou.name,
                ou.id,
                inside.join(" and ")
            ),
            Duration::from_secs(60),
        ));
    }
    Ok(OuDeletion::Delete(ou))
}

async fn delete(
    obj: &OrganizationalUnit,
    ctx: &ReconcileContext,
    run: &mut Run,
) -> Result<Verdict, Error> {
    if obj.spec.deletion_policy == DeleteOrRetain::Retain {
        return Ok(Verdict::ready(
            RELEASED,
            "deletionPolicy Retain: the OU stays in AWS",
        ));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let mut pc = match PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await {
        Ok(pc) => pc,
        Err(Error::Waiting { .. }) => {
            return Ok(Verdict::ready(
                RELEASED,
                "the Payer is gone; nothing in AWS was changed",
            ));
        }
        Err(e) => return Err(e),
    };
    let found = observe_deletion(&pc, ctx, obj, &namespace).await?;
    let owner = owner_value(&namespace, "OrganizationalUnit", &obj.name_any());
    let ou = match plan_deletion(&obj.spec.name, &owner, found)? {
        OuDeletion::Release(verdict) => return Ok(verdict),
        OuDeletion::Delete(ou) => ou,
    };
    let delete = change(
        ChangeAction::Delete,
        format!("OU {} ({})", ou.name, ou.id),
        "delete",
    );
    let orgs = pc.conn.organizations.clone();
    if run
        .write(delete, || orgs.delete_ou(&ou.id))
        .await?
        .is_some()
    {
        let id = ou.id.clone();
        pc.record(ctx, move |s| s.remove_ou(&id));
    }
    Ok(Verdict::ready(
        DELETED,
        format!("OU {} ({}) was deleted", ou.name, ou.id),
    ))
}

/// Find the OU being deleted (by the status's id, else by name under its parent: the status's,
/// or, without a status — lost in a crash, or never written — the one the spec names) and
/// read its tags and children.
async fn observe_deletion(
    pc: &PayerContext,
    ctx: &ReconcileContext,
    obj: &OrganizationalUnit,
    namespace: &str,
) -> Result<Option<OuFound>, Error> {
    let by_id = obj
        .status
        .as_ref()
        .and_then(|s| s.ou_id.as_deref())
        .and_then(|id| pc.snapshot.ou(id));
    let parent = obj
        .status
        .as_ref()
        .and_then(|s| s.parent_id.clone())
        .or_else(|| {
            resolve_parent(namespace, obj.spec.parent_ref.as_ref(), &pc.snapshot, ctx).ok()
        });
    let found = by_id
        .or_else(|| {
            parent
                .as_deref()
                .and_then(|p| pc.snapshot.ou_named(p, &obj.spec.name))
        })
        .cloned();
    let Some(ou) = found else {
        return Ok(None);
    };
    let tags = pc.conn.organizations.list_tags(&ou.id).await?;
    let (accounts, ous) = pc.snapshot.children_of(&ou.id);
    Ok(Some(OuFound {
        ou,
        tags,
        accounts,
        ous,
    }))
}

/// OrganizationalUnits parents first (then by namespace and name).
pub fn parents_first(ous: &mut [OrganizationalUnit]) {
    let depth_of = |ou: &OrganizationalUnit| {
        let mut depth = 0;
        let mut current = ou.spec.parent_ref.clone();
        let ns = ou.namespace().unwrap_or_default();
        while let Some(r) = current {
            depth += 1;
            if depth > 10 {
                break;
            }
            current = ous
                .iter()
                .find(|o| o.namespace().unwrap_or_default() == ns && o.name_any() == r.name)
                .and_then(|o| o.spec.parent_ref.clone());
        }
        depth
    };
    let depths: Vec<usize> = ous.iter().map(depth_of).collect();
    let mut keyed: Vec<(usize, OrganizationalUnit)> =
        depths.into_iter().zip(ous.iter().cloned()).collect();
    keyed.sort_by_key(|(d, o)| (*d, o.namespace().unwrap_or_default(), o.name_any()));
    for (slot, (_, ou)) in ous.iter_mut().zip(keyed) {
        *slot = ou;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ou(name: &str, parent: &str) -> OrgUnit {
        OrgUnit {
            id: "ou-abcd-12345678".into(),
            arn: "arn".into(),
            name: name.into(),
            parent_id: parent.into(),
        }
    }

    fn desired() -> OuDesired {
        OuDesired {
            name: "prod".into(),
            parent_id: "r-abcd".into(),
            tags: Tags::new(),
            owner: "ns/organizationalunit/prod".into(),
            policies: Vec::new(),
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plans_creation_rename_or_nothing_and_refuses_another_parent() {
        assert_eq!(plan(&desired(), None).unwrap(), OuPlan::Create);
        let same = ou("prod", "r-abcd");
        assert_eq!(
            plan(&desired(), Some(same.clone())).unwrap(),
            OuPlan::Keep(same)
        );
        let old = ou("production", "r-abcd");
        assert_eq!(
            plan(&desired(), Some(old.clone())).unwrap(),
            OuPlan::Rename(old)
        );
        let err = plan(&desired(), Some(ou("prod", "ou-abcd-other123"))).unwrap_err();
        assert_eq!(err.reason(), PARENT_MISMATCH);
    }

    #[test]
    fn refuses_an_ou_another_object_owns() {
        let owner = desired().owner;
        assert!(check_owner(&ou("prod", "r-abcd"), &Tags::new(), &owner).is_ok());
        assert!(check_owner(&ou("prod", "r-abcd"), &tags(&[(OWNER_TAG, &owner)]), &owner).is_ok());
        let err = check_owner(
            &ou("prod", "r-abcd"),
            &tags(&[(OWNER_TAG, "x/y/z")]),
            &owner,
        )
        .unwrap_err();
        assert_eq!(err.reason(), OWNED_ELSEWHERE);
    }

    #[test]
    fn deletes_only_an_empty_ou_of_its_own() {
        let owner = desired().owner;
        let found = |owner_tag: &str, accounts: Vec<String>| OuFound {
            ou: ou("prod", "r-abcd"),
            tags: tags(&[(OWNER_TAG, owner_tag)]),
            accounts,
            ous: Vec::new(),
        };
        assert!(matches!(
            plan_deletion("prod", &owner, None).unwrap(),
            OuDeletion::Release(v) if v.reason == RELEASED
        ));
        assert!(matches!(
            plan_deletion("prod", &owner, Some(found("x/y/z", Vec::new()))).unwrap(),
            OuDeletion::Release(v) if v.reason == RELEASED
        ));
        let err = plan_deletion(
            "prod",
            &owner,
            Some(found(&owner, vec!["111122223333".into()])),
        )
        .unwrap_err();
        assert_eq!(err.reason(), ORGANIZATIONAL_UNIT_NOT_EMPTY);
        assert!(matches!(
            plan_deletion("prod", &owner, Some(found(&owner, Vec::new()))).unwrap(),
            OuDeletion::Delete(o) if o.id == "ou-abcd-12345678"
        ));
    }
}
