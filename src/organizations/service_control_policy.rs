//! ServiceControlPolicy: the document is checked and minified before any AWS call; the
//! policy is found again by name (and owner tag), created, updated, and deleted only once it
//! is attached nowhere.

use kube::ResourceExt;
use serde_json::Value;

use crate::api::common::{DeleteOrRetain, OWNER_TAG, owner_value, with_owner};
use crate::api::{ServiceControlPolicy, ServiceControlPolicyStatus};
use crate::aws::organizations::{PolicySummary, Tags};
use crate::error::Error;

use crate::payer::context::PayerContext;
use crate::reconcile::change;
use crate::reconcile::run::Run;
use crate::reconcile::tags::tag_changes;
use crate::reconcile::{ChangeAction, KindOutcome, Mode, ReconcileContext, Verdict};

/// The most characters AWS allows in an SCP document.
pub const MAX_DOCUMENT_CHARS: usize = 5120;

/// Check an SCP document and return it minified. Pure.
pub fn minify(document: &Value) -> Result<String, Error> {
    let invalid = |why: &str| Error::terminal("InvalidDocument", format!("spec.document {why}"));
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
            "DocumentTooLong",
            format!(
                "the minified policy document has {chars} characters; AWS allows {MAX_DOCUMENT_CHARS}. Shorten it or split it into several policies"
            ),
        ));
    }
    Ok(text)
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
    name: &str,
    description: &str,
    content: &str,
    desired_tags: &Tags,
    owner: &str,
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
        && other != owner
    {
        return Err(Error::terminal(
            "OwnedElsewhere",
            format!(
                "policy {name} ({}) belongs to {other}; give this object a different spec.policyName",
                existing.id
            ),
        ));
    }
    let same_content = observed
        .content
        .as_deref()
        .is_some_and(|c| same_json(c, content));
    // A changed spec.policyName renames the policy (same id, attachments kept).
    if existing.name != name || existing.description != description || !same_content {
        steps.push(ScpStep::Update {
            policy_id: existing.id.clone(),
        });
    }
    let adopting = !observed.tags.contains_key(OWNER_TAG);
    if check_tags || adopting {
        let (set, remove) = tag_changes(desired_tags, &observed.tags);
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
fn customer_policy(pc: &PayerContext, id: &str) -> Option<PolicySummary> {
    pc.snapshot
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
        .service_control_policies(namespace)
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
    obj: &ServiceControlPolicy,
    ctx: &ReconcileContext,
    mode: Mode,
    _now: &str,
    status: &mut ServiceControlPolicyStatus,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let content = minify(&obj.spec.document)?;
    status.document_length = Some(content.chars().count() as i64);
    let name = obj.policy_name();
    let description = obj.spec.description.clone().unwrap_or_default();
    let owner = owner_value(&namespace, "ServiceControlPolicy", &obj.name_any());
    let desired_tags = with_owner(&obj.spec.tags, &owner);
    let mut pc = PayerContext::resolve(&namespace, &obj.spec.payer_ref, ctx).await?;
    let existing = match pc.snapshot.policy_named(&name).cloned() {
        Some(p) => Some(p),
        // Renamed (spec.policyName changed): the policy of the status, or, the status lost,
        // the one that carries this object's owner tag.
        None => match status
            .policy_id
            .as_deref()
            .and_then(|id| customer_policy(&pc, id))
        {
            Some(p) => Some(p),
            None => owned_policy(&pc, ctx, &namespace, obj, &owner).await?,
        },
    };
    let (current, tags) = match &existing {
        Some(p) => (
            Some(pc.conn.organizations.describe_policy_content(&p.id).await?),
            pc.conn.organizations.list_tags(&p.id).await?,
        ),
        None => (None, Tags::new()),
    };
    let observed = ScpObservation {
        existing,
        content: current,
        tags,
        scp_enabled: pc.snapshot.root.scp_enabled,
        root_id: pc.snapshot.root.id.clone(),
    };
    // The policy's tags are read on every reconcile anyway (for the owner check; one call per
    // policy), so they are always compared.
    let check_tags = true;
    let steps = plan(
        &name,
        &description,
        &content,
        &desired_tags,
        &owner,
        &observed,
        check_tags,
    )?;
    let plan_only = mode == Mode::Plan;
    let mut policy_id = observed.existing.as_ref().map(|p| p.id.clone());
    let mut arn = observed.existing.as_ref().map(|p| p.arn.clone());
    for step in &steps {
        match step {
            ScpStep::EnableScpType { root_id } => {
                changes.push(change(
                    ChangeAction::Update,
                    format!("root {root_id}"),
                    "enable the SERVICE_CONTROL_POLICY policy type",
                ));
                if !plan_only {
                    match pc.conn.organizations.enable_scp_type(root_id).await {
                        Err(e) if e.aws_code() == Some("PolicyTypeAlreadyEnabledException") => {}
                        other => other?,
                    }
                    pc.record(ctx, |s| s.root.scp_enabled = true);
                }
            }
            ScpStep::Create => {
                changes.push(change(
                    ChangeAction::Create,
                    format!("SCP {name}"),
                    format!("{} characters", content.chars().count()),
                ));
                if !plan_only {
                    let created = pc
                        .conn
                        .organizations
                        .create_scp(&name, &description, &content, &desired_tags)
                        .await?;
                    policy_id = Some(created.id.clone());
                    arn = Some(created.arn.clone());
                    pc.record(ctx, move |s| s.add_policy(&created));
                }
            }
            ScpStep::Update { policy_id } => {
                changes.push(change(
                    ChangeAction::Update,
                    format!("SCP {name} ({policy_id})"),
                    match observed.existing.as_ref().map(|p| p.name.as_str()) {
                        Some(old) if old != name => {
                            format!("rename from {old}; document or description")
                        }
                        _ => "document or description".to_string(),
                    },
                ));
                if !plan_only {
                    pc.conn
                        .organizations
                        .update_scp(policy_id, &name, &description, &content)
                        .await?;
                    let (id, description, new_name) =
                        (policy_id.clone(), description.clone(), name.clone());
                    pc.record(ctx, move |s| {
                        if let Some(p) = s.policies.iter_mut().find(|p| p.id == id) {
                            p.description = description.clone();
                            p.name = new_name.clone();
                        }
                    });
                }
            }
            ScpStep::SetTags {
                policy_id,
                set,
                remove,
            } => {
                changes.push(change(
                    ChangeAction::Update,
                    format!("tags of SCP {name} ({policy_id})"),
                    format!("set {}, remove {}", set.len(), remove.len()),
                ));
                if !plan_only {
                    if !set.is_empty() {
                        pc.conn.organizations.tag_resource(policy_id, set).await?;
                    }
                    if !remove.is_empty() {
                        pc.conn
                            .organizations
                            .untag_resource(policy_id, remove)
                            .await?;
                    }
                }
            }
        }
    }
    status.policy_id = policy_id.clone();
    status.arn = arn;
    let mut targets = policy_id
        .as_ref()
        .and_then(|id| pc.snapshot.targets.get(id).cloned())
        .unwrap_or_default();
    targets.sort();
    status.attached_targets = targets;
    match policy_id {
        Some(id) => Ok(Verdict::ready(
            "Available",
            format!(
                "policy {id} ({} characters) is attached to {} target(s)",
                content.chars().count(),
                status.attached_targets.len()
            ),
        )),
        None => Ok(Verdict::blocked(
            "PlannedOnly",
            format!("policy {name} would be created"),
        )),
    }
}

/// Deletion: `Retain` releases at once; `Delete` waits until the policy is attached nowhere,
/// never deletes a policy owned by another object, then deletes it.
pub async fn cleanup(
    obj: &ServiceControlPolicy,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<ServiceControlPolicyStatus> {
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
    obj: &ServiceControlPolicy,
    ctx: &ReconcileContext,
    changes: &mut Vec<crate::reconcile::Change>,
) -> Result<Verdict, Error> {
    if obj.spec.deletion_policy == DeleteOrRetain::Retain {
        return Ok(Verdict::ready(
            "Released",
            "deletionPolicy Retain: the policy stays in AWS",
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
    let name = obj.policy_name();
    let found = pc.snapshot.policy_named(&name).cloned().or_else(|| {
        obj.status
            .as_ref()
            .and_then(|s| s.policy_id.as_deref())
            .and_then(|id| customer_policy(&pc, id))
    });
    let Some(policy) = found else {
        return Ok(Verdict::ready(
            "Released",
            format!("policy {name} does not exist in AWS"),
        ));
    };
    let owner = owner_value(&namespace, "ServiceControlPolicy", &obj.name_any());
    let tags = pc.conn.organizations.list_tags(&policy.id).await?;
    if tags.get(OWNER_TAG).is_some_and(|o| *o != owner) {
        return Ok(Verdict::ready(
            "Released",
            format!("policy {name} belongs to another object; left in AWS"),
        ));
    }
    let targets = pc
        .snapshot
        .targets
        .get(&policy.id)
        .cloned()
        .unwrap_or_default();
    if !targets.is_empty() {
        return Err(Error::waiting(
            "PolicyInUse",
            format!(
                "policy {name} ({}) is still attached to {}; remove it from those LinkedAccounts and OrganizationalUnits first",
                policy.id,
                targets.join(", ")
            ),
            std::time::Duration::from_secs(30),
        ));
    }
    changes.push(change(
        ChangeAction::Delete,
        format!("SCP {name} ({})", policy.id),
        "delete",
    ));
    match pc.conn.organizations.delete_policy(&policy.id).await {
        Err(e) if e.aws_code() == Some("PolicyNotFoundException") => {}
        other => other?,
    }
    let id = policy.id.clone();
    pc.record(ctx, move |s| s.remove_policy(&id));
    Ok(Verdict::ready(
        "Deleted",
        format!("policy {name} ({}) was deleted", policy.id),
    ))
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
        let steps = plan("deny-s3", "d", "{}", &Tags::new(), "ns/scp/x", &o, true).unwrap();
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
            plan("deny-s3", "d", &content, &tags, owner, &same, true).unwrap(),
            vec![]
        );
        let changed = plan("deny-s3", "new", &content, &tags, owner, &same, false).unwrap();
        assert_eq!(
            changed,
            vec![ScpStep::Update {
                policy_id: "p-abc12345".into()
            }]
        ); // A new spec.policyName: the same policy, renamed.
        let renamed = plan("deny-s3-v2", "d", &content, &tags, owner, &same, false).unwrap();
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
        let steps = plan("deny-s3", "d", &content, &tags, owner, &unowned, false).unwrap();
        assert!(
            matches!(&steps[0], ScpStep::SetTags { set, .. } if set.get(OWNER_TAG).map(String::as_str) == Some(owner))
        );
        let elsewhere = observed(
            true,
            &content,
            &[(OWNER_TAG, "other/servicecontrolpolicy/y")],
        );
        let err = plan("deny-s3", "d", &content, &tags, owner, &elsewhere, false).unwrap_err();
        assert_eq!(err.reason(), "OwnedElsewhere");
    }
}
