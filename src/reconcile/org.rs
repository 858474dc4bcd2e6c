//! What the Organizations kinds share: the payer behind an object and its snapshot, tag
//! convergence, SCP attachments.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use crate::api::{LocalRef, Payer};
use crate::aws::Connection;
use crate::aws::organizations::Tags;
use crate::error::Error;
use crate::time::older_than;

use super::snapshot::OrgSnapshot;
use super::{Change, ChangeAction, ReconcileContext, object_key};

/// How long a dependency (a Payer, an OU, an SCP not created yet) is waited for before the
/// object is looked at again.
pub const DEPENDENCY_RETRY: Duration = Duration::from_secs(15);

/// Tags are compared with AWS when the spec changed, or this often (plus a per-object
/// spread of up to an hour), since reading them costs one call per object.
pub const TAG_AUDIT_SECS: i64 = 6 * 3600;

/// The payer an object belongs to, its AWS connection and the organization snapshot.
pub struct PayerContext {
    pub key: String,
    pub payer: Payer,
    pub conn: Connection,
    pub snapshot: Arc<OrgSnapshot>,
}

/// The Payer `payer_ref` names in `namespace`, its key and an AWS connection to it. Waits
/// while the Payer does not exist.
pub async fn payer_connection(
    namespace: &str,
    payer_ref: &LocalRef,
    ctx: &ReconcileContext,
) -> Result<(String, Payer, Connection), Error> {
    let payer = ctx
        .catalog
        .payer(namespace, &payer_ref.name)
        .ok_or_else(|| {
            Error::waiting(
                "PayerNotFound",
                format!(
                    "Payer {namespace}/{} does not exist; create it or fix spec.payerRef",
                    payer_ref.name
                ),
                DEPENDENCY_RETRY,
            )
        })?;
    if let Some(err) = super::payer::claimed_elsewhere(&payer, &ctx.catalog.all_payers()) {
        return Err(err);
    }
    let key = object_key(namespace, &payer_ref.name);
    let credentials = super::payer::resolve_credentials(&payer, ctx.secrets.as_ref()).await?;
    let conn = ctx
        .connections
        .get_or_connect(&key, ctx.connector.as_ref(), &credentials, payer.region())
        .await?;
    Ok((key, payer, conn))
}

impl PayerContext {
    /// Resolve `payer_ref` in `namespace`, connect and load (or reuse) the snapshot.
    pub async fn resolve(
        namespace: &str,
        payer_ref: &LocalRef,
        ctx: &ReconcileContext,
    ) -> Result<Self, Error> {
        let (key, payer, conn) = payer_connection(namespace, payer_ref, ctx).await?;
        let snapshot = ctx.snapshots.get(&key, &conn).await?;
        if snapshot.organization.management_account_id != payer.spec.account_id {
            return Err(Error::terminal(
                "PayerNotManagementAccount",
                format!(
                    "Payer {key} (account {}) is not the management account of organization {}; see the Payer's status",
                    payer.spec.account_id, snapshot.organization.id
                ),
            ));
        }
        Ok(Self {
            key,
            payer,
            conn,
            snapshot,
        })
    }

    /// Apply one of the operator's own writes to the shared snapshot and to this one, so
    /// neither this object nor any other reads everything again because of it.
    pub fn record(
        &mut self,
        ctx: &ReconcileContext,
        write: impl Fn(&mut OrgSnapshot) + Send + Sync + 'static,
    ) {
        let write: super::snapshot::Write<OrgSnapshot> = Arc::new(write);
        match ctx.snapshots.update(&self.key, write.clone()) {
            Some(s) => self.snapshot = s,
            None => write(Arc::make_mut(&mut self.snapshot)),
        }
    }

    /// Bring the CreateAccount requests of the snapshot up to date (one ListCreateAccountStatus):
    /// a request that finished since is looked up, and its account recorded, so an account
    /// is never missing between "no longer in progress" and "listed".
    pub async fn refresh_creates(&mut self, ctx: &ReconcileContext) -> Result<(), Error> {
        let known: Vec<String> = self
            .snapshot
            .creates_in_progress
            .iter()
            .map(|c| c.request_id.clone())
            .collect();
        let snapshot = self.snapshot.clone();
        let seen = super::creations::look(self.conn.organizations.as_ref(), &known, |id| {
            snapshot.account(id).is_some()
        })
        .await?;
        let write = seen.write();
        self.record(ctx, move |s| write(s));
        Ok(())
    }

    /// Have the payer's creation watcher follow `request_id` (made for the LinkedAccount
    /// `owner`, if known): it wakes the owner and the next queued accounts when it ends.
    pub fn follow_create(&self, ctx: &ReconcileContext, request_id: &str, owner: Option<&str>) {
        ctx.creations.follow(
            || super::creations::WatchParts {
                payer_key: self.key.clone(),
                conn: self.conn.clone(),
                snapshots: ctx.snapshots.clone(),
                locks: ctx.locks.clone(),
                catalog: ctx.catalog.clone(),
            },
            &self.key,
            request_id,
            owner,
        );
    }

    /// Record an account that joined (a finished creation, an accepted invitation): one
    /// DescribeAccount instead of reading the organization again. `None` while AWS does
    /// not list it yet.
    pub async fn account_joined(
        &mut self,
        ctx: &ReconcileContext,
        account_id: &str,
    ) -> Result<Option<crate::aws::organizations::Account>, Error> {
        if let Some(a) = self.snapshot.account(account_id) {
            return Ok(Some(a.clone()));
        }
        let Some(a) = self.conn.organizations.describe_account(account_id).await? else {
            return Ok(None);
        };
        let joined = a.clone();
        self.record(ctx, move |s| s.add_account(&joined));
        Ok(Some(a))
    }

    /// Drop the cached snapshot after a write and read a fresh one.
    pub async fn refresh(&mut self, ctx: &ReconcileContext) -> Result<(), Error> {
        ctx.snapshots.invalidate(&self.key);
        self.snapshot = ctx.snapshots.get(&self.key, &self.conn).await?;
        Ok(())
    }

    /// Forget the snapshot after a write (the next reader loads a fresh one).
    pub fn invalidate(&self, ctx: &ReconcileContext) {
        ctx.snapshots.invalidate(&self.key);
    }
}

/// Tags to set and tag keys to remove so that AWS holds exactly `desired` (AWS's own `aws:`
/// tags are never touched). Pure.
pub fn tag_changes(desired: &Tags, current: &Tags) -> (Tags, Vec<String>) {
    let set: Tags = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove: Vec<String> = current
        .keys()
        .filter(|k| !k.starts_with("aws:") && !desired.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// Whether the tags of an object are due for a comparison with AWS. Pure.
pub fn tag_check_due(spec_changed: bool, checked_at: Option<&str>, now: &str, uid: &str) -> bool {
    if spec_changed {
        return true;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut h);
    let spread = (h.finish() % 3600) as i64;
    checked_at.is_none_or(|t| older_than(t, now, TAG_AUDIT_SECS + spread))
}

/// Where tags are converged: an Organizations resource or a Billing Conductor one (the
/// calls differ, the rules do not).
#[derive(Clone, Copy)]
pub enum TagApi<'a> {
    Organizations(&'a dyn crate::aws::OrganizationsApi),
    Billing(&'a dyn crate::aws::billing::BillingApi),
}

/// Converge the tags of `resource_id` from `current` (read by the caller, which also checks the
/// owner tag on it): set and remove what differs from `desired`.
pub async fn converge_tags(
    api: TagApi<'_>,
    resource_id: &str,
    desired: &Tags,
    current: &Tags,
    plan_only: bool,
    changes: &mut Vec<Change>,
) -> Result<(), Error> {
    let (set, remove) = tag_changes(desired, current);
    if !set.is_empty() {
        changes.push(Change {
            action: ChangeAction::Update,
            target: format!("tags of {resource_id}"),
            detail: format!("set {}", set.keys().cloned().collect::<Vec<_>>().join(", ")),
        });
        if !plan_only {
            match api {
                TagApi::Organizations(o) => o.tag_resource(resource_id, &set).await?,
                TagApi::Billing(b) => b.tag(resource_id, &set).await?,
            }
        }
    }
    if !remove.is_empty() {
        changes.push(Change {
            action: ChangeAction::Update,
            target: format!("tags of {resource_id}"),
            detail: format!("remove {}", remove.join(", ")),
        });
        if !plan_only {
            match api {
                TagApi::Organizations(o) => o.untag_resource(resource_id, &remove).await?,
                TagApi::Billing(b) => b.untag(resource_id, &remove).await?,
            }
        }
    }
    Ok(())
}

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
            .service_control_policy(namespace, name)
            .ok_or_else(|| {
                Error::waiting(
                    "DependencyNotReady",
                    format!("ServiceControlPolicy {namespace}/{name} does not exist"),
                    DEPENDENCY_RETRY,
                )
            })?;
        let aws_name = object.policy_name();
        let policy = snapshot.policy_named(&aws_name).ok_or_else(|| {
            Error::waiting(
                "DependencyNotReady",
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
        .service_control_policies(namespace)
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
            "TooManyPolicies",
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

/// Carry out an attachment plan: attach first, then detach, so the target never has no SCP.
/// Each attachment done is recorded in the snapshot at once, so a failure half-way leaves
/// the snapshot true to AWS.
pub async fn execute_attachments(
    pc: &mut PayerContext,
    ctx: &ReconcileContext,
    target_id: &str,
    plan: &AttachmentPlan,
    plan_only: bool,
    changes: &mut Vec<Change>,
) -> Result<(), Error> {
    for (name, id) in &plan.attach {
        changes.push(Change {
            action: ChangeAction::Create,
            target: format!("SCP attachment {name} -> {target_id}"),
            detail: format!("attach {id}"),
        });
        if !plan_only {
            match pc.conn.organizations.attach_policy(id, target_id).await {
                Err(e) if e.aws_code() == Some("DuplicatePolicyAttachmentException") => {}
                other => other?,
            }
            let (policy, target) = (id.clone(), target_id.to_string());
            pc.record(ctx, move |s| s.attach(&policy, &target));
        }
    }
    for (name, id) in &plan.detach {
        changes.push(Change {
            action: ChangeAction::Delete,
            target: format!("SCP attachment {name} -> {target_id}"),
            detail: format!("detach {id}"),
        });
        if !plan_only {
            match pc.conn.organizations.detach_policy(id, target_id).await {
                Err(e) if e.aws_code() == Some("PolicyNotAttachedException") => {}
                other => other?,
            }
            let (policy, target) = (id.clone(), target_id.to_string());
            pc.record(ctx, move |s| s.detach(&policy, &target));
        }
    }
    Ok(())
}

/// A change record.
pub fn change(
    action: ChangeAction,
    target: impl Into<String>,
    detail: impl Into<String>,
) -> Change {
    Change {
        action,
        target: target.into(),
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tag_changes_set_differences_and_remove_extras_but_not_aws_tags() {
        let desired = tags(&[("team", "a"), ("env", "prod")]);
        let current = tags(&[("team", "b"), ("old", "x"), ("aws:cloudformation", "y")]);
        let (set, remove) = tag_changes(&desired, &current);
        assert_eq!(set, tags(&[("team", "a"), ("env", "prod")]));
        assert_eq!(remove, vec!["old".to_string()]);
        assert_eq!(tag_changes(&desired, &desired), (Tags::new(), vec![]));
    }

    #[test]
    fn tag_checks_follow_spec_changes_and_a_spread_audit() {
        assert!(tag_check_due(
            true,
            Some("2026-11-24T12:00:00Z"),
            "2026-11-24T12:00:01Z",
            "u"
        ));
        assert!(tag_check_due(false, None, "2026-11-24T12:00:00Z", "u"));
        assert!(!tag_check_due(
            false,
            Some("2026-11-24T12:00:00Z"),
            "2026-11-24T13:00:00Z",
            "u"
        ));
        assert!(tag_check_due(
            false,
            Some("2026-11-24T00:00:00Z"),
            "2026-11-24T08:00:00Z",
            "u"
        ));
    }
}
