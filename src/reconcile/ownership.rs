//! Ownership of the Billing Conductor objects (pricing plans and rules, billing groups,
//! custom line items): how an object found by name in AWS is judged against the owner tag
//! of the resource that names it (`OwnedElsewhere`, `AdoptionRequired`, adoption with
//! `spec.adopt`), how its tags are converged once nothing refuses it, when a resource may
//! delete it, how a dependent object treats a dependency that refuses its AWS object, and
//! the ClientTokens derived from a resource's UID. Judging is pure ([`claim`], [`refusal`]);
//! the reads go through the Billing Conductor seam and the tag writes through [`Run::write`].

use k8s_openapi::jiff::Timestamp;

use crate::api::common::OWNER_TAG;
use crate::api::conditions::{Condition, ConditionStatus, READY, find};
use crate::aws::billing::BillingApi;
use crate::aws::organizations::Tags;
use crate::error::Error;

use super::ChangeAction;
use super::reasons::{ADOPTION_REQUIRED, DEPENDENCY_NOT_READY, OWNED_ELSEWHERE};
use super::run::Run;
use super::tags::{TagApi, converge_tags, tag_check_due};

/// A stable 32-bit FNV-1a hash, hex (names and tokens must not change between builds).
pub fn fnv(parts: &[&str]) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    format!("{h:08x}")
}

/// A ClientToken (1-64 of `[a-zA-Z0-9-]`) derived from an object's UID and a purpose.
pub fn client_token(uid: &str, purpose: &str) -> String {
    let uid: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let mut token = format!("{}-{}", &uid[..uid.len().min(40)], fnv(&[purpose]));
    token.truncate(64);
    token
}

/// Who a Billing Conductor object found by name in AWS belongs to, for messages and the
/// ownership check.
#[derive(Clone, Debug)]
pub struct Claimant<'a> {
    /// Owner tag value of this resource (`<namespace>/<kind>/<name>`).
    pub owner: &'a str,
    /// `spec.adopt`: an object without owner tag may be taken over.
    pub adopt: bool,
    /// The spec field that names the object in AWS, for "choose another ...".
    pub name_field: &'a str,
}

/// How an object found by name relates to this resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// It carries this resource's owner tag.
    Ours,
    /// It carries no owner tag and `spec.adopt` is set: it is taken over (tagged).
    Adopt,
}

/// Judge an object's tags: this resource's owner tag, another resource's (`OwnedElsewhere`,
/// naming it), or none (`AdoptionRequired` unless `spec.adopt`). `what` names the object in
/// messages. Pure.
pub fn claim(tags: &Tags, claimant: &Claimant<'_>, what: &str) -> Result<Claim, Error> {
    match tags.get(OWNER_TAG) {
        Some(o) if o == claimant.owner => Ok(Claim::Ours),
        Some(other) => Err(Error::terminal(
            OWNED_ELSEWHERE,
            format!(
                "{what} is managed by {other} (tag {OWNER_TAG}); give this object another {} or remove that one",
                claimant.name_field
            ),
        )),
        None if claimant.adopt => Ok(Claim::Adopt),
        None => Err(Error::terminal(
            ADOPTION_REQUIRED,
            format!(
                "{what} already exists in AWS without the {OWNER_TAG} tag (it was made outside this operator); set spec.adopt: true to manage it from now on, or choose another {}",
                claimant.name_field
            ),
        )),
    }
}

/// How soon an object looks again at a dependency that refuses its AWS object: a person has
/// to act first (rename, remove, or set `spec.adopt`).
pub const REFUSED_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// The condition with which a Billing Conductor resource refuses the object of its name in
/// AWS (`OwnedElsewhere`, `AdoptionRequired`), if it does: objects that depend on it must not
/// use that object. Pure.
pub fn refusal(conditions: &[Condition]) -> Option<&Condition> {
    find(conditions, READY)
        .filter(|c| c.status == ConditionStatus::False)
        .filter(|c| c.reason == OWNED_ELSEWHERE || c.reason == ADOPTION_REQUIRED)
}

/// Refuse to build on a dependency whose object refuses the AWS object of its name (see
/// [`refusal`]): `DependencyNotReady`, looked at again after [`REFUSED_RETRY`].
/// `dependency` names it (`PricingPlan ns/gold`), `what` its AWS object (`plan`). Pure.
pub fn usable_dependency(
    dependency: &str,
    what: &str,
    conditions: Option<&[Condition]>,
) -> Result<(), Error> {
    match conditions.and_then(refusal) {
        Some(c) => Err(Error::waiting(
            DEPENDENCY_NOT_READY,
            format!(
                "{dependency} refuses the {what} of its name in AWS: {}",
                c.message
            ),
            REFUSED_RETRY,
        )),
        None => Ok(()),
    }
}

/// When the tags of an object found by name are compared with the spec again (see
/// [`check_claim`]): when the spec changed, and at a periodic audit spread by UID.
#[derive(Clone, Copy, Debug)]
pub struct TagAudit<'a> {
    /// The spec changed since it was last reconciled (generation not yet observed).
    pub spec_changed: bool,
    /// When the tags were last compared (`status.tagsCheckedAt`).
    pub checked_at: Option<&'a str>,
    /// The resource's UID, which spreads the audits over time.
    pub uid: &'a str,
    /// When this reconcile runs.
    pub now: Timestamp,
}

/// The object found by name in AWS whose ownership and tags [`check_claim`] judges.
#[derive(Clone, Debug)]
pub struct Found<'a> {
    pub arn: &'a str,
    /// What it is, for messages (`billing group gold`).
    pub what: String,
    /// The ARN the resource's status recorded: the object was claimed before when it is
    /// this one.
    pub status_arn: Option<&'a str>,
}

/// The judgement of [`check_claim`] on an object found by name: whether its tags were read
/// (and what they were), to be completed by [`complete_claim`] once nothing else refuses.
#[derive(Clone, Debug)]
#[must_use = "the tags are converged by complete_claim"]
pub struct ClaimCheck {
    arn: String,
    what: String,
    now: Timestamp,
    /// Its tags and how they relate to the claimant, when they were read.
    read: Option<(Tags, Claim)>,
}

impl ClaimCheck {
    /// Whether the object's tags were read by this check (first sight, status lost, spec
    /// changed, or the periodic audit).
    pub fn was_read(&self) -> bool {
        self.read.is_some()
    }
}

/// Judge a Billing Conductor object found by name, without writing anything. Its tags are
/// read (one ListTagsForResource) when its ownership is not established yet (the status
/// holds no or another ARN: first sight, status lost, file mode) and when the tags are due
/// for a check (spec changed, or the periodic audit); then an object another resource owns
/// is refused (`OwnedElsewhere`) and one without owner tag needs `spec.adopt`
/// (`AdoptionRequired`). Call it before any write to the object, and [`complete_claim`]
/// once every other judgement that could refuse has been made.
pub async fn check_claim(
    api: &dyn BillingApi,
    found: &Found<'_>,
    claimant: &Claimant<'_>,
    audit: &TagAudit<'_>,
) -> Result<ClaimCheck, Error> {
    let claimed = found.status_arn == Some(found.arn);
    let due = tag_check_due(
        audit.spec_changed,
        audit.checked_at.and_then(|t| t.parse().ok()),
        audit.now,
        audit.uid,
    );
    let read = if claimed && !due {
        None
    } else {
        let current = api.list_tags(found.arn).await?;
        let judged = claim(&current, claimant, &found.what)?;
        Some((current, judged))
    };
    Ok(ClaimCheck {
        arn: found.arn.to_string(),
        what: found.what.clone(),
        now: audit.now,
        read,
    })
}

/// Complete a claim [`check_claim`] judged: make the object's tags equal to `desired` (owner
/// tag included, which completes an adoption) when they were read, through `run`, and record
/// in `checked_at` when they were compared (a plan-mode status is never stored).
pub async fn complete_claim(
    api: &dyn BillingApi,
    check: ClaimCheck,
    desired: &Tags,
    checked_at: &mut Option<String>,
    run: &mut Run,
) -> Result<(), Error> {
    let Some((current, judged)) = check.read else {
        return Ok(());
    };
    if judged == Claim::Adopt {
        // Carried out by the tag writes below.
        run.record(
            ChangeAction::Update,
            check.what.clone(),
            format!("adopt: add the {OWNER_TAG} tag"),
        );
    }
    converge_tags(TagApi::Billing(api), &check.arn, desired, &current, run).await?;
    *checked_at = Some(check.now.to_string());
    Ok(())
}

/// Whether this resource may delete object `found` on deletion: it is the one its status
/// recorded, or it carries this resource's owner tag (one ListTagsForResource). `Ok(Some(why))`
/// says why it is left alone.
pub async fn deletable(
    api: &dyn BillingApi,
    found: &Found<'_>,
    owner: &str,
) -> Result<Option<String>, Error> {
    if found.status_arn == Some(found.arn) {
        return Ok(None);
    }
    let tags = api.list_tags(found.arn).await?;
    Ok(match tags.get(OWNER_TAG) {
        Some(o) if o == owner => None,
        Some(other) => Some(format!(
            "{} is managed by {other}; it was left in AWS",
            found.what
        )),
        None => Some(format!(
            "{} was not made or adopted by this object; it was left in AWS",
            found.what
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "ns/pricingplan/gold";

    #[test]
    fn claims_judge_the_owner_tag() {
        let c = Claimant {
            owner: OWNER,
            adopt: false,
            name_field: "spec.groupName",
        };
        let tag = |v: &str| Tags::from([(OWNER_TAG.to_string(), v.to_string())]);
        assert_eq!(claim(&tag(OWNER), &c, "x").unwrap(), Claim::Ours);
        let e = claim(&tag("b/billinggroup/other"), &c, "billing group g").unwrap_err();
        assert_eq!(e.reason(), "OwnedElsewhere");
        assert!(e.is_terminal());
        assert!(
            e.to_string().contains("b/billinggroup/other")
                && e.to_string().contains("spec.groupName"),
            "{e}"
        );
        let e = claim(&Tags::new(), &c, "billing group g").unwrap_err();
        assert_eq!(e.reason(), "AdoptionRequired");
        assert!(e.to_string().contains("spec.adopt: true"), "{e}");
        let c = Claimant { adopt: true, ..c };
        assert_eq!(claim(&Tags::new(), &c, "x").unwrap(), Claim::Adopt);
    }

    #[test]
    fn a_refusing_dependency_is_not_used() {
        let refused = |reason: &str| -> Vec<Condition> {
            serde_json::from_value(serde_json::json!([{
                "type": "Ready", "status": "False", "reason": reason, "message": "taken",
                "lastTransitionTime": "2026-11-01T00:00:00Z"
            }]))
            .unwrap()
        };
        assert!(usable_dependency("PricingPlan ns/gold", "plan", None).is_ok());
        let waiting = refused("DependencyNotReady");
        assert!(usable_dependency("PricingPlan ns/gold", "plan", Some(&waiting)).is_ok());
        let owned = refused("OwnedElsewhere");
        let e = usable_dependency("PricingPlan ns/gold", "plan", Some(&owned)).unwrap_err();
        assert_eq!(e.reason(), "DependencyNotReady");
        assert_eq!(
            e.to_string(),
            "PricingPlan ns/gold refuses the plan of its name in AWS: taken"
        );
    }
}
