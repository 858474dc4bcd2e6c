//! Tag convergence, shared by the Organizations and Billing Conductor kinds: what differs,
//! when it is due for a comparison with AWS, and the calls that converge it.

use std::hash::{Hash, Hasher};

use crate::aws::organizations::Tags;
use crate::error::Error;
use crate::time::older_than;

use super::{Change, ChangeAction};

/// Tags are compared with AWS when the spec changed, or this often (plus a per-object
/// spread of up to an hour), since reading them costs one call per object.
pub const TAG_AUDIT_SECS: i64 = 6 * 3600;

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
