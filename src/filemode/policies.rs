//! What deleting an object does in AWS, by kind and deletion policy, for the prune preview:
//! the policy of an object whose manifest was removed is read from the manifests as they were
//! before the change, when given; otherwise the most destructive policy the kind allows is
//! assumed (never the default: a preview must not under-report a closure).

use serde_json::Value;

use crate::reconcile::kind::{Kind, KindVisitor};

use super::load::Manifests;

/// Where the deletion policy of an object without manifest comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// Its manifest before the change: `spec.deletionPolicy` (`None`: not set, the kind's
    /// default applies) and whether it was observe-only (`spec.managementPolicy: Observe`).
    Previous {
        policy: Option<String>,
        observe: bool,
    },
    /// Its manifest before the change paused it (annotation `partnerbilling.io/paused`).
    Paused,
    /// Not known: the worst case is assumed.
    Assumed,
}

impl PolicySource {
    /// The policy of `kind` `namespace`/`name` in `previous`, if it holds that object.
    pub fn find(previous: Option<&Manifests>, kind: &str, namespace: &str, name: &str) -> Self {
        let Some(previous) = previous else {
            return Self::Assumed;
        };
        let mut finder = Finder {
            manifests: previous,
            kind,
            namespace,
            name,
            found: None,
        };
        crate::kinds::visit(&mut finder);
        let paused = |v: &Value| {
            v.pointer("/metadata/annotations")
                .and_then(|a| a.get(crate::api::common::PAUSED_ANNOTATION))
                .and_then(Value::as_str)
                == Some(crate::api::common::PAUSED_VALUE)
        };
        match finder.found {
            Some(v) if paused(&v) => Self::Paused,
            Some(v) => Self::Previous {
                policy: v
                    .pointer("/spec/deletionPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                observe: v.pointer("/spec/managementPolicy").and_then(Value::as_str)
                    == Some("Observe"),
            },
            None => Self::Assumed,
        }
    }

    /// For the report: `previous-manifest` or `assumed-worst-case`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Previous { .. } | Self::Paused => "previous-manifest",
            Self::Assumed => "assumed-worst-case",
        }
    }
}

struct Finder<'a> {
    manifests: &'a Manifests,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    found: Option<Value>,
}

impl KindVisitor for Finder<'_> {
    fn visit<K: Kind>(&mut self) {
        if K::kind(&()) != self.kind || self.found.is_some() {
            return;
        }
        self.found = self
            .manifests
            .of::<K>()
            .iter()
            .find(|o| {
                o.meta().name.as_deref() == Some(self.name)
                    && o.meta().namespace.as_deref() == Some(self.namespace)
            })
            .and_then(|o| serde_json::to_value(o).ok());
    }
}

/// What deleting an object does: the action word, the policy, and the effect in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub action: &'static str,
    pub policy: String,
    pub text: String,
}

/// The deletion policies of a kind: its default and its most destructive one (`None` for a
/// kind without `deletionPolicy`, whose deletion always does the same).
fn policies(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "LinkedAccount" => Some(("Retain", "Close")),
        "BillingGroup" => Some(("Retain", "Delete")),
        "OrganizationalUnit" | "ServiceControlPolicy" | "CurPipeline" => Some(("Delete", "Delete")),
        _ => None,
    }
}

/// The action and its effect for `kind` under `policy`.
fn action(kind: &str, policy: &str) -> (&'static str, &'static str) {
    match (kind, policy) {
        (_, "Retain") => (
            "retain",
            "nothing changes in AWS: the object stays, no longer managed by the operator",
        ),
        ("LinkedAccount", "Remove") => (
            "remove",
            "RemoveAccountFromOrganization: the account leaves the organization and becomes standalone",
        ),
        ("LinkedAccount", _) => (
            "close",
            "CloseAccount: the account is closed (AWS Support can reopen it within 90 days); counts against the Payer's closure budget",
        ),
        ("OrganizationalUnit", _) => (
            "delete",
            "DeleteOrganizationalUnit (AWS refuses while the OU holds accounts or OUs; the object then waits)",
        ),
        ("ServiceControlPolicy", _) => (
            "delete",
            "the policy is detached from every target, then DeletePolicy",
        ),
        ("PricingPlan", _) => (
            "delete",
            "its pricing rules are disassociated and deleted, then the plan (AWS refuses while a billing group uses it)",
        ),
        ("BillingGroup", _) => (
            "delete",
            "its custom line items, then the group, are deleted; its accounts fall back to the payer's default billing",
        ),
        ("CustomLineItem", _) => (
            "delete",
            "the custom line item is deleted (it applies to an open billing period)",
        ),
        _ => ("delete", "the objects the operator made for it are deleted"),
    }
}

/// What deleting an object of `kind` does, its policy read from `source`.
pub fn deletion_effect(kind: &str, source: &PolicySource) -> Effect {
    let kinds = policies(kind);
    let (policy, why) = match (source, kinds) {
        (PolicySource::Previous { observe: true, .. }, _) => {
            return Effect {
                action: "none",
                policy: "Observe".into(),
                text: "managementPolicy Observe: the operator writes nothing in AWS, also not on deletion".into(),
            };
        }
        (PolicySource::Paused, _) => {
            return Effect {
                action: "none",
                policy: "Paused".into(),
                text: "paused (annotation partnerbilling.io/paused): deleting it makes no AWS call"
                    .into(),
            };
        }
        (
            PolicySource::Previous {
                policy: Some(p), ..
            },
            Some(_),
        ) => (
            p.clone(),
            "as its manifest before the change says".to_string(),
        ),
        (PolicySource::Previous { policy: None, .. }, Some((default, _))) => (
            default.to_string(),
            "the kind's default (its manifest before the change sets none)".to_string(),
        ),
        (PolicySource::Assumed, Some((default, worst))) => (
            worst.to_string(),
            format!(
                "assumed: without its manifest the policy is not known, so the most destructive one the kind allows is shown (the kind's default is {default}); pass --previous DIR with the manifests before the change to read it"
            ),
        ),
        (_, None) => (
            "Delete".to_string(),
            "the kind has no deletionPolicy: deleting the object always does this".to_string(),
        ),
    };
    let (action, effect) = action(kind, &policy);
    Effect {
        action,
        text: format!("{effect} [{why}]"),
        policy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_policy_assumes_the_worst_and_says_so() {
        let e = deletion_effect("LinkedAccount", &PolicySource::Assumed);
        assert_eq!((e.action, e.policy.as_str()), ("close", "Close"));
        assert!(e.text.contains("default is Retain"), "{}", e.text);
        let e = deletion_effect("BillingGroup", &PolicySource::Assumed);
        assert_eq!(e.action, "delete");
    }

    #[test]
    fn a_previous_manifest_decides_and_observe_writes_nothing() {
        let prev = |p: Option<&str>, observe| PolicySource::Previous {
            policy: p.map(str::to_string),
            observe,
        };
        assert_eq!(
            deletion_effect("LinkedAccount", &prev(None, false)).action,
            "retain"
        );
        assert_eq!(
            deletion_effect("LinkedAccount", &prev(Some("Remove"), false)).action,
            "remove"
        );
        assert_eq!(
            deletion_effect("OrganizationalUnit", &prev(None, false)).action,
            "delete"
        );
        assert_eq!(
            deletion_effect("LinkedAccount", &prev(Some("Close"), true)).action,
            "none"
        );
        assert_eq!(
            deletion_effect("PricingPlan", &PolicySource::Assumed).action,
            "delete"
        );
    }
}
