//! ServiceControlPolicy: the document is checked and minified before any AWS call; the
//! policy is found again by name (and owner tag), created, updated, and deleted only once it
//! is attached nowhere.
//!
//! Reconcile: [`observe`] what AWS holds, [`plan`] the steps (pure), carry them out through the
//! `Run` (each write also recorded in the payer's organization snapshot), and derive the status
//! (pure). Cleanup: observe, [`plan_deletion`] (pure), delete.

use kube::ResourceExt;
use serde_json::Value;

use crate::api::common::{DeleteOrRetain, OWNER_TAG, owner_value, with_owner};
use crate::api::{ServiceControlPolicy, ServiceControlPolicyStatus};
use crate::aws::organizations::{PolicySummary, Tags};
use crate::error::Error;

use crate::payer::context::PayerContext;
use crate::payer::snapshot::OrgSnapshot;
use crate::reconcile::reasons::{
    AVAILABLE, DELETED, DOCUMENT_TOO_LONG, INVALID_DOCUMENT, OWNED_ELSEWHERE, PLANNED_ONLY,
    POLICY_IN_USE, RELEASED,
};
use crate::reconcile::run::Run;
use crate::reconcile::tags::tag_changes;
use crate::reconcile::{ChangeAction, KindOutcome, ReconcileContext, Verdict, change};

/// The most characters AWS allows in an SCP document.
pub const MAX_DOCUMENT_CHARS: usize = 5120;

/// Check an SCP document and return it minified. Pure.
pub fn minify(document: &Value) -> Result<String, Error> {
    let invalid = |why: &str| Error::terminal(INVALID_DOCUMENT, format!("spec.document {why}"));
    let obj = document
        .as_object()
        .ok_or_else(|| invalid("must be an object with Version and Statement"))?;
    if let Some(v) = obj.get("Version")
        && v != "2012-10-17"
        && v != "2008-10-17"
    {
        return Err(invalid("has an unsupported Version; use \"2012-10-17\""));
    }
    let statements: Vec<&Value> = match obj.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => return Err(invalid("needs a Statement (an object or a non-empty list)")),
    };
    for (i, st) in statements.iter().enumerate() {
        let effect = st.get("Effect").and_then(Value::as_str);
        if !matches!(effect, Some("Allow" | "Deny")) {
            return Err(invalid(&format!(
                "Statement[{i}] needs Effect Allow or Deny"
            )));
        }
        if st.get("Action").is_none() && st.get("NotAction").is_none() {
            return Err(invalid(&format!(
                "Statement[{i}] needs Action or NotAction"
            )));
        }
    }
    let text = serde_json::to_string(document).map_err(|e| invalid(&e.to_string()))?;
    let chars = text.chars().count();
    if chars > MAX_DOCUMENT_CHARS {
        return Err(Error::terminal(
            DOCUMENT_TOO_LONG,
            format!(
                "the minified policy document has {chars} characters; AWS allows {MAX_DOCUMENT_CHARS}. Shorten it or split it into several policies"
            ),
        ));
    }
    Ok(text)
}

/// What the object asks AWS to hold: the policy's name, description, minified document and
/// tags (owner tag included), and the owner value that marks it as this object's.
#[derive(Clone, Debug, PartialEq)]
pub struct ScpDesired {
    pub name: String,
    pub description: String,
    pub content: String,
    pub tags: Tags,
    pub owner: String,
}

impl ScpDesired {
    /// What `obj` (in `namespace`) asks for; refuses a document AWS would refuse. Pure.
    pub fn of(obj: &ServiceControlPolicy, namespace: &str) -> Result<Self, Error> {
        let owner = owner_value(namespace, "ServiceControlPolicy", &obj.name_any());
        Ok(Self {
            name: obj.policy_name(),
            description: obj.spec.description.clone().unwrap_or_default(),
            content: minify(&obj.spec.document)?,
            tags: with_owner(&obj.spec.tags, &owner),
            owner,
        })
    }

    fn chars(&self) -> usize {
        self.content.chars().count()
    }
}

/// What AWS holds for the policy.
#[derive(Clone, Debug, PartialEq)]
pub struct ScpObservation {
    pub existing: Option<PolicySummary>,
    pub content: Option<String>,
    pub tags: Tags,
    pub scp_enabled: bool,
    pub root_id: String,
}

/// One step of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScpStep {
    EnableScpType {
        root_id: String,
    },
    Create,
    Update {
        policy_id: String,
    },
    SetTags {
        policy_id: String,
        set: Tags,
        remove: Vec<String>,
    },
}

/// What to do for the policy. Pure.
pub fn plan(
    desired: &ScpDesired,
    observed: &ScpObservation,
    check_tags: bool,
) -> Result<Vec<ScpStep>, Error> {
    let mut steps = Vec::new();
    if !observed.scp_enabled {
        steps.push(ScpStep::EnableScpType {
            root_id: observed.root_id.clone(),
        });
    }
    let Some(existing) = &observed.existing else {
        steps.push(ScpStep::Create);
        return Ok(steps);
    };
    if let Some(other) = observed.tags.get(OWNER_TAG)
        && *other != desired.owner
    {
        return Err(Error::terminal(
            OWNED_ELSEWHERE,
            format!(
                "policy {} ({}) belongs to {other}; give this object a different spec.policyName",
                desired.name, existing.id
            ),
        ));
    }
    let same_content = observed
        .content
        .as_deref()
        .is_some_and(|c| same_json(c, &desired.content));
    // A changed spec.policyName renames the policy (same id, attachments kept).
    if existing.name != desired.name || existing.description != desired.description || !same_content
    {
        steps.push(ScpStep::Update {
            policy_id: existing.id.clone(),
        });
    }
    let adopting = !observed.tags.contains_key(OWNER_TAG);
    if check_tags || adopting {
        let (set, remove) = tag_changes(&desired.tags, &observed.tags);
        if !set.is_empty() || !remove.is_empty() {
            steps.push(ScpStep::SetTags {
                policy_id: existing.id.clone(),
                set,
                remove,
            });
        }
    }
    Ok(steps)
}

fn same_json(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The customer-managed policy `id`, if the snapshot has it.
fn customer_policy(snapshot: &OrgSnapshot, id: &str) -> Option<PolicySummary> {
    snapshot
        .policies
        .iter()
        .find(|p| p.id == id && !p.aws_managed)
        .cloned()
}

/// The customer-managed policy whose owner tag is `owner`, among those no other
/// ServiceControlPolicy of this payer names (one ListTagsForResource each; only asked when
/// neither the name nor the status finds the policy, and never about a policy another object
/// names, so creating many policies costs nothing extra).
async fn owned_policy(
    pc: &PayerContext,
    ctx: &ReconcileContext,
    namespace: &str,
    obj: &ServiceControlPolicy,
    owner: &str,
) -> Result<Option<PolicySummary>, Error> {
    let named: std::collections::BTreeSet<String> = ctx
        .catalog
        .list::<crate::api::ServiceControlPolicy>(namespace)
        .iter()
        .filter(|p| p.spec.payer_ref == obj.spec.payer_ref && p.name_any() != obj.name_any())
        .map(|p| p.policy_name())
        .collect();
    for p in pc
        .snapshot
        .policies
        .iter()
        .filter(|p| !p.aws_managed && !named.contains(&p.name))
    {
        let tags = pc.conn.organizations.list_tags(&p.id).await?;
        if tags.get(OWNER_TAG).is_some_and(|o| o == owner) {
            return Ok(Some(p.clone()));
        }
    }
    Ok(None)
}

/// Reconcile a ServiceControlPolicy.
pub async fn reconcile(
    obj: &ServiceControlPolicy,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<ServiceControlPolicyStatus> {
    run.reconcile(
        obj.status.as_ref(),
        obj.metadata.generation,
        async |run, status| apply(obj, ctx, run, status).await,
    )
    .await
}

async fn apply(
    obj: &ServiceControlPolicy,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut ServiceControlPolicyStatus,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let desired = ScpDesired::of(obj, &namespace)?;
    status.document_length = Some(desired.chars() as i64);
    let mut pc = PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await?;
    let observed = observe(&pc, ctx, obj, &desired, status.policy_id.as_deref()).await?;
    // The policy's tags are read on every reconcile anyway (for the owner check; one call per
    // policy), so they are always compared.
    let steps = plan(&desired, &observed, true)?;
    let mut policy = observed
        .existing
        .as_ref()
        .map(|p| (p.id.clone(), p.arn.clone()));
    for step in &steps {
        if let Some(created) = execute(&mut pc, ctx, run, &desired, &observed, step).await? {
            policy = Some((created.id, created.arn));
        }
    }
    Ok(derive_status(status, &desired, policy, &pc.snapshot))
}

/// Find the policy (by name; renamed: by the status's id, or, the status lost, by this
/// object's owner tag) and read its document and tags.
async fn observe(
    pc: &PayerContext,
    ctx: &ReconcileContext,
    obj: &ServiceControlPolicy,
    desired: &ScpDesired,
    status_policy_id: Option<&str>,
) -> Result<ScpObservation, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let existing = match pc.snapshot.policy_named(&desired.name).cloned() {
        Some(p) => Some(p),
        None => match status_policy_id.and_then(|id| customer_policy(&pc.snapshot, id)) {
            Some(p) => Some(p),
            None => owned_policy(pc, ctx, &namespace, obj, &desired.owner).await?,
        },
    };
    let (content, tags) = match &existing {
        Some(p) => (
            Some(pc.conn.organizations.describe_policy_content(&p.id).await?),
            pc.conn.organizations.list_tags(&p.id).await?,
        ),
        None => (None, Tags::new()),
    };
    Ok(ScpObservation {
        existing,
        content,
        tags,
        scp_enabled: pc.snapshot.root.scp_enabled,
        root_id: pc.snapshot.root.id.clone(),
    })
}

/// Carry out one step through `run`, recording it in the snapshot once made. Returns the
/// policy a `Create` made.
async fn execute(
    pc: &mut PayerContext,
    ctx: &ReconcileContext,
    run: &mut Run,
    desired: &ScpDesired,
    observed: &ScpObservation,
    step: &ScpStep,
) -> Result<Option<PolicySummary>, Error> {
    let orgs = pc.conn.organizations.clone();
    let name = &desired.name;
    match step {
        ScpStep::EnableScpType { root_id } => {
            let enable = change(
                ChangeAction::Update,
                format!("root {root_id}"),
                "enable the SERVICE_CONTROL_POLICY policy type",
            );
            if run
                .write(enable, || orgs.enable_scp_type(root_id))
                .await?
                .is_some()
            {
                pc.record(ctx, |s| s.root.scp_enabled = true);
            }
            Ok(None)
        }
        ScpStep::Create => {
            let create = change(
                ChangeAction::Create,
                format!("SCP {name}"),
                format!("{} characters", desired.chars()),
            );
            let created = run
                .write(create, || {
                    orgs.create_scp(name, &desired.description, &desired.content, &desired.tags)
                })
                .await?;
            if let Some(created) = &created {
                let policy = created.clone();
                pc.record(ctx, move |s| s.add_policy(&policy));
            }
            Ok(created)
        }
        ScpStep::Update { policy_id } => {
            update(pc, ctx, run, desired, observed, policy_id).await?;
            Ok(None)
        }
        ScpStep::SetTags {
            policy_id,
            set,
            remove,
        } => {
            let tags = change(
                ChangeAction::Update,
                format!("tags of SCP {name} ({policy_id})"),
                format!("set {}, remove {}", set.len(), remove.len()),
            );
            run.write(tags, || async {
                if !set.is_empty() {
                    orgs.tag_resource(policy_id, set).await?;
                }
                if !remove.is_empty() {
                    orgs.untag_resource(policy_id, remove).await?;
                }
                Ok(())
            })
            .await?;
            Ok(None)
        }
    }
}

/// Update the document, description and name (a rename keeps the id and the attachments).
async fn update(
    pc: &mut PayerContext,
    ctx: &ReconcileContext,
    run: &mut Run,
    desired: &ScpDesired,
    observed: &ScpObservation,
    policy_id: &str,
) -> Result<(), Error> {
    let name = &desired.name;
    let update = change(
        ChangeAction::Update,
        format!("SCP {name} ({policy_id})"),
        match observed.existing.as_ref().map(|p| p.name.as_str()) {
            Some(old) if old != name => format!("rename from {old}; document or description"),
            _ => "document or description".to_string(),
        },
    );
    let orgs = pc.conn.organizations.clone();
    let made = run
        .write(update, || {
            orgs.update_scp(policy_id, name, &desired.description, &desired.content)
        })
        .await?;
    if made.is_some() {
        let (id, description, new_name) = (
            policy_id.to_string(),
            desired.description.clone(),
            name.clone(),
        );
        pc.record(ctx, move |s| {
            if let Some(p) = s.policies.iter_mut().find(|p| p.id == id) {
                p.description = description.clone();
                p.name = new_name.clone();
            }
        });
    }
    Ok(())
}

/// The status and verdict once the steps are carried out: the policy (`None` in plan mode
/// when it would be created) and the targets the snapshot has it attached to. Pure.
fn derive_status(
    status: &mut ServiceControlPolicyStatus,
    desired: &ScpDesired,
    policy: Option<(String, String)>,
    snapshot: &OrgSnapshot,
) -> Verdict {
    let (policy_id, arn) = policy.unzip();
    let mut targets = policy_id
        .as_ref()
        .and_then(|id| snapshot.targets.get(id).cloned())
        .unwrap_or_default();
    targets.sort();
    status.policy_id = policy_id.clone();
    status.arn = arn;
    status.attached_targets = targets;
    match policy_id {
        Some(id) => Verdict::ready(
            AVAILABLE,
            format!(
                "policy {id} ({} characters) is attached to {} target(s)",
                desired.chars(),
                status.attached_targets.len()
            ),
        ),
        None => Verdict::blocked(
            PLANNED_ONLY,
            format!("policy {} would be created", desired.name),
        ),
    }
}

/// Deletion: `Retain` releases at once; `Delete` waits until the policy is attached nowhere,
/// never deletes a policy owned by another object, then deletes it.
pub async fn cleanup(
    obj: &ServiceControlPolicy,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<ServiceControlPolicyStatus> {
    run.cleanup(
        obj.status.as_ref(),
        obj.metadata.generation,
        |_| false,
        async |run, _| delete(obj, ctx, run).await,
    )
    .await
}

/// What AWS holds for a policy being deleted: the policy, its tags and the targets it is
/// attached to.
#[derive(Clone, Debug, PartialEq)]
pub struct ScpFound {
    pub policy: PolicySummary,
    pub tags: Tags,
    pub targets: Vec<String>,
}

/// What deleting the object does in AWS.
#[derive(Clone, Debug, PartialEq)]
pub enum ScpDeletion {
    /// Nothing: the object is released as the verdict says.
    Release(Verdict),
    /// Delete the policy.
    Delete(PolicySummary),
}

/// Whether the policy `name` (`found` in AWS, or not) is deleted for the object `owner`;
/// waits while it is attached somewhere. Pure.
pub fn plan_deletion(
    name: &str,
    owner: &str,
    found: Option<ScpFound>,
) -> Result<ScpDeletion, Error> {
    let Some(found) = found else {
        return Ok(ScpDeletion::Release(Verdict::ready(
            RELEASED,
            format!("policy {name} does not exist in AWS"),
        )));
    };
    if found.tags.get(OWNER_TAG).is_some_and(|o| *o != owner) {
        return Ok(ScpDeletion::Release(Verdict::ready(
            RELEASED,
            format!("policy {name} belongs to another object; left in AWS"),
        )));
    }
    if !found.targets.is_empty() {
        return Err(Error::waiting(
            POLICY_IN_USE,
            format!(
                "policy {name} ({}) is still attached to {}; remove it from those LinkedAccounts and OrganizationalUnits first",
                found.policy.id,
                found.targets.join(", ")
            ),
            std::time::Duration::from_secs(30),
        ));
    }
    Ok(ScpDeletion::Delete(found.policy))
}

async fn delete(
    obj: &ServiceControlPolicy,
    ctx: &ReconcileContext,
    run: &mut Run,
) -> Result<Verdict, Error> {
    if obj.spec.deletion_policy == DeleteOrRetain::Retain {
        return Ok(Verdict::ready(
            RELEASED,
            "deletionPolicy Retain: the policy stays in AWS",
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
    let name = obj.policy_name();
    let found = observe_deletion(&pc, obj, &name).await?;
    let owner = owner_value(&namespace, "ServiceControlPolicy", &obj.name_any());
    let policy = match plan_deletion(&name, &owner, found)? {
        ScpDeletion::Release(verdict) => return Ok(verdict),
        ScpDeletion::Delete(policy) => policy,
    };
    let delete = change(
        ChangeAction::Delete,
        format!("SCP {name} ({})", policy.id),
        "delete",
    );
    let orgs = pc.conn.organizations.clone();
    if run
        .write(delete, || orgs.delete_policy(&policy.id))
        .await?
        .is_some()
    {
        let id = policy.id.clone();
        pc.record(ctx, move |s| s.remove_policy(&id));
    }
    Ok(Verdict::ready(
        DELETED,
        format!("policy {name} ({}) was deleted", policy.id),
    ))
}

/// Find the policy being deleted (by name, else by the status's id) and read its tags.
async fn observe_deletion(
    pc: &PayerContext,
    obj: &ServiceControlPolicy,
    name: &str,
) -> Result<Option<ScpFound>, Error> {
    let found = pc.snapshot.policy_named(name).cloned().or_else(|| {
        obj.status
            .as_ref()
            .and_then(|s| s.policy_id.as_deref())
            .and_then(|id| customer_policy(&pc.snapshot, id))
    });
    let Some(policy) = found else {
        return Ok(None);
    };
    let tags = pc.conn.organizations.list_tags(&policy.id).await?;
    let targets = pc
        .snapshot
        .targets
        .get(&policy.id)
        .cloned()
        .unwrap_or_default();
    Ok(Some(ScpFound {
        policy,
        tags,
        targets,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observed(existing: bool, content: &str, tags: &[(&str, &str)]) -> ScpObservation {
        ScpObservation {
            existing: existing.then(|| PolicySummary {
                id: "p-abc12345".into(),
                arn: "arn".into(),
                name: "deny-s3".into(),
                description: "d".into(),
                aws_managed: false,
            }),
            content: existing.then(|| content.to_string()),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            scp_enabled: true,
            root_id: "r-abcd".into(),
        }
    }

    /// [`plan`] for the desired policy given field by field.
    fn planned(
        name: &str,
        description: &str,
        content: &str,
        tags: &Tags,
        owner: &str,
        observed: &ScpObservation,
        check_tags: bool,
    ) -> Result<Vec<ScpStep>, Error> {
        let desired = ScpDesired {
            name: name.into(),
            description: description.into(),
            content: content.into(),
            tags: tags.clone(),
            owner: owner.into(),
        };
        plan(&desired, observed, check_tags)
    }

    fn doc() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]})
    }

    #[test]
    fn minify_checks_structure_and_length() {
        let text = minify(&doc()).unwrap();
        assert!(!text.contains(' '));
        let bad = minify(&json!({"Statement": [{"Action": "x"}]})).unwrap_err();
        assert_eq!(bad.reason(), "InvalidDocument");
        assert!(bad.to_string().contains("Effect"));
        let long = json!({"Statement": [{"Effect": "Deny", "Action": "s3:".to_string() + &"x".repeat(5200)}]});
        let err = minify(&long).unwrap_err();
        assert_eq!(err.reason(), "DocumentTooLong");
        assert!(err.to_string().contains("5,120") || err.to_string().contains("5120"));
        assert!(err.to_string().contains("characters"));
    }

    #[test]
    fn creates_when_missing_and_enables_the_policy_type() {
        let mut o = observed(false, "", &[]);
        o.scp_enabled = false;
        let steps = planned("deny-s3", "d", "{}", &Tags::new(), "ns/scp/x", &o, true).unwrap();
        assert_eq!(
            steps,
            vec![
                ScpStep::EnableScpType {
                    root_id: "r-abcd".into()
                },
                ScpStep::Create
            ]
        );
    }

    #[test]
    fn updates_only_on_real_differences() {
        let content = minify(&doc()).unwrap();
        let owner = "ns/serviceControlPolicy/x";
        let tags = with_owner(&Tags::new(), owner);
        let same = observed(
            true,
            &serde_json::to_string_pretty(&doc()).unwrap(),
            &[(OWNER_TAG, owner)],
        );
        assert_eq!(
            planned("deny-s3", "d", &content, &tags, owner, &same, true).unwrap(),
            vec![]
        );
        let changed = planned("deny-s3", "new", &content, &tags, owner, &same, false).unwrap();
        assert_eq!(
            changed,
            vec![ScpStep::Update {
                policy_id: "p-abc12345".into()
            }]
        ); // A new spec.policyName: the same policy, renamed.
        let renamed = planned("deny-s3-v2", "d", &content, &tags, owner, &same, false).unwrap();
        assert_eq!(
            renamed,
            vec![ScpStep::Update {
                policy_id: "p-abc12345".into()
            }]
        );
    }

    #[test]
    fn adopts_unowned_and_refuses_owned_elsewhere() {
        let content = minify(&doc()).unwrap();
        let owner = "ns/servicecontrolpolicy/x";
        let tags = with_owner(&Tags::new(), owner);
        let unowned = observed(true, &content, &[]);
        let steps = planned("deny-s3", "d", &content, &tags, owner, &unowned, false).unwrap();
        assert!(
            matches!(&steps[0], ScpStep::SetTags { set, .. } if set.get(OWNER_TAG).map(String::as_str) == Some(owner))
        );
        let elsewhere = observed(
            true,
            &content,
            &[(OWNER_TAG, "other/servicecontrolpolicy/y")],
        );
        let err = planned("deny-s3", "d", &content, &tags, owner, &elsewhere, false).unwrap_err();
        assert_eq!(err.reason(), "OwnedElsewhere");
    }

    #[test]
    fn deletes_only_an_unattached_policy_of_its_own() {
        let owner = "ns/servicecontrolpolicy/x";
        let found = |owner_tag: &str, targets: Vec<String>| ScpFound {
            policy: observed(true, "", &[]).existing.unwrap(),
            tags: [(OWNER_TAG.to_string(), owner_tag.to_string())].into(),
            targets,
        };
        assert!(matches!(
            plan_deletion("deny-s3", owner, None).unwrap(),
            ScpDeletion::Release(v) if v.reason == RELEASED
        ));
        assert!(matches!(
            plan_deletion("deny-s3", owner, Some(found("x/y/z", vec!["r-abcd".into()]))).unwrap(),
            ScpDeletion::Release(v) if v.reason == RELEASED
        ));
        let err =
            plan_deletion("deny-s3", owner, Some(found(owner, vec!["r-abcd".into()]))).unwrap_err();
        assert_eq!(err.reason(), POLICY_IN_USE);
        assert!(matches!(
            plan_deletion("deny-s3", owner, Some(found(owner, Vec::new()))).unwrap(),
            ScpDeletion::Delete(p) if p.id == "p-abc12345"
        ));
    }
}
