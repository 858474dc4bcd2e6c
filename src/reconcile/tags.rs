//! Tag convergence, shared by the Organizations and Billing Conductor kinds: what differs
//! (pure), when it is due for a comparison with AWS (pure, typed time), and the writes that
//! converge it (through [`Run::write`]).

use std::hash::{Hash, Hasher};

use k8s_openapi::jiff::{Timestamp, ToSpan};

use crate::aws::organizations::Tags;
use crate::error::Error;

use super::run::Run;
use super::{ChangeAction, change};

/// Tags are compared with AWS when the spec changed, or this often (plus a per-object
/// spread of up to an hour), since reading them costs one call per object.
pub const TAG_AUDIT_SECS: i64 = 6 * 3600;

/// Whether the periodic tag audit runs (shared state of a front door: `ctx.shared`). The
/// controller always audits when due ([`tag_check_due`]). `plan`/`apply
/// --refresh-tags=false` skips the audit: an object's tags are then read only when the object
/// is about to be written (its ownership mark is checked before the write), so drift in tags
/// is neither reported nor corrected by that run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagRefresh {
    pub skip_audit: bool,
}

impl TagRefresh {
    /// Whether tags due for a comparison (`due`) are read now.
    pub fn audit(&self, due: bool) -> bool {
        due && !self.skip_audit
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

/// Whether the tags of an object are due for a comparison with AWS: the spec changed, they
/// were never compared (`checked_at` is `None`; an unreadable status time counts as never),
/// or the last comparison is older than the audit period plus the object's spread. Pure.
pub fn tag_check_due(
    spec_changed: bool,
    checked_at: Option<Timestamp>,
    now: Timestamp,
    uid: &str,
) -> bool {
    if spec_changed {
        return true;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut h);
    let spread = (h.finish() % 3600) as i64;
    checked_at.is_none_or(
        |then| match then.checked_add((TAG_AUDIT_SECS + spread).seconds()) {
            Ok(limit) => limit < now,
            Err(_) => true,
        },
    )
}

/// Where tags are converged: an Organizations resource or a Billing Conductor one (the
/// calls differ, the rules do not).
#[derive(Clone, Copy)]
pub enum TagApi<'a> {
    Organizations(&'a dyn crate::aws::OrganizationsApi),
    Billing(&'a dyn crate::aws::billing::BillingApi),
}

/// Converge the tags of `resource_id` from `current` (read by the caller, which also checks the
/// owner tag on it): set and remove what differs from `desired`, each through `run`.
pub async fn converge_tags(
    api: TagApi<'_>,
    resource_id: &str,
    desired: &Tags,
    current: &Tags,
    run: &mut Run,
) -> Result<(), Error> {
    let (set, remove) = tag_changes(desired, current);
    if !set.is_empty() {
        let keys = set.keys().cloned().collect::<Vec<_>>().join(", ");
        let set_tags = change(
            ChangeAction::Update,
            format!("tags of {resource_id}"),
            format!("set {keys}"),
        );
        run.write(set_tags, || async {
            match api {
                TagApi::Organizations(o) => o.tag_resource(resource_id, &set).await,
                TagApi::Billing(b) => b.tag(resource_id, &set).await,
            }
        })
        .await?;
    }
    if !remove.is_empty() {
        let remove_tags = change(
            ChangeAction::Update,
            format!("tags of {resource_id}"),
            format!("remove {}", remove.join(", ")),
        );
        run.write(remove_tags, || async {
            match api {
                TagApi::Organizations(o) => o.untag_resource(resource_id, &remove).await,
                TagApi::Billing(b) => b.untag(resource_id, &remove).await,
            }
        })
        .await?;
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

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
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
            Some(at("2026-11-24T12:00:00Z")),
            at("2026-11-24T12:00:01Z"),
            "u"
        ));
        assert!(tag_check_due(false, None, at("2026-11-24T12:00:00Z"), "u"));
        assert!(!tag_check_due(
            false,
            Some(at("2026-11-24T12:00:00Z")),
            at("2026-11-24T13:00:00Z"),
            "u"
        ));
        assert!(tag_check_due(
            false,
            Some(at("2026-11-24T00:00:00Z")),
            at("2026-11-24T08:00:00Z"),
            "u"
        ));
    }

    #[tokio::test]
    async fn converging_records_both_changes_and_calls_nothing_in_plan_mode() {
        let aws = crate::aws::fake::FakeAws::default();
        let mut run = Run::at(crate::reconcile::Mode::Plan, "2026-11-24T12:00:00Z");
        let desired = tags(&[("team", "a")]);
        let current = tags(&[("old", "x")]);
        converge_tags(
            TagApi::Organizations(&aws),
            "ou-1",
            &desired,
            &current,
            &mut run,
        )
        .await
        .unwrap();
        let details: Vec<&str> = run.changes().iter().map(|c| c.detail.as_str()).collect();
        assert_eq!(details, vec!["set team", "remove old"]);
        assert!(aws.calls().is_empty());
    }
}
