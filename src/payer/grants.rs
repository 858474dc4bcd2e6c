//! Grants: whether a Payer may have the operator act with the operator's own AWS identity.
//! Pure: the Payer, the labels of its namespace and every PayerGrant go in; the decision
//! comes out, and a refusal names exactly what is missing.
//!
//! One grant must cover all of it at once: the namespace, the account and the role (or the
//! operator's identity itself). Grants never add up: one for namespace A and account X and
//! another for namespace B and account Y do not let A reach Y. Without a grant: deny.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use crate::api::payer::{Payer, PayerSpec};
use crate::api::payer_grant::{GrantNamespaces, PayerGrant};
use crate::error::Error;

pub use crate::reconcile::reasons::NOT_GRANTED;

/// How a Payer reaches AWS, as far as grants are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityUse<'a> {
    /// Keys from a Secret of the Payer's own namespace: no grant is needed.
    OwnKeys,
    /// The operator's own identity itself (no `spec.credentials`).
    OperatorIdentity,
    /// A role assumed with the operator's own identity.
    AssumeRole { role_arn: &'a str },
}

/// How `spec` reaches AWS. A spec with both `secretRef` and `assumeRole` (the schema refuses
/// it) counts as assuming the role.
pub fn identity_use(spec: &PayerSpec) -> IdentityUse<'_> {
    match &spec.credentials {
        Some(c) => match (&c.assume_role, &c.secret_ref) {
            (Some(role), _) => IdentityUse::AssumeRole {
                role_arn: &role.role_arn,
            },
            (None, Some(_)) => IdentityUse::OwnKeys,
            (None, None) => IdentityUse::OperatorIdentity,
        },
        None => IdentityUse::OperatorIdentity,
    }
}

/// Whether `spec` would use the operator's own identity (directly or to assume a role).
pub fn uses_operator_identity(spec: &PayerSpec) -> bool {
    identity_use(spec) != IdentityUse::OwnKeys
}

/// Why a Payer may go ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// It brings its own keys.
    OwnKeys,
    /// This PayerGrant (the first by name of those that cover it) allows it.
    Grant(String),
}

/// What a refused Payer lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The role to assume is not in the Payer's own account (no grant can allow that).
    RoleOutsideAccount { role_arn: String },
    /// No PayerGrant covers the namespace.
    Namespace,
    /// These grants cover the namespace, but none lists the account.
    Account { covering: Vec<String> },
    /// These grants cover the namespace and the account, but none allows the role.
    Role {
        role_arn: String,
        covering: Vec<String>,
    },
    /// These grants cover the namespace and the account, but none allows the operator's own
    /// identity without a role.
    OperatorIdentity { covering: Vec<String> },
}

/// A refusal: the Payer would use the operator's identity without a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotGranted {
    pub namespace: String,
    pub account_id: String,
    pub missing: Missing,
}

impl NotGranted {
    /// The terminal error a reconcile ends with (reason `NotGranted`).
    pub fn into_error(self) -> Error {
        Error::terminal(NOT_GRANTED, self)
    }
}

fn names(grants: &[String]) -> String {
    let quoted: Vec<String> = grants.iter().map(|g| format!("PayerGrant {g}")).collect();
    quoted.join(", ")
}

impl fmt::Display for NotGranted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ns, account) = (&self.namespace, &self.account_id);
        let fix = "no AWS call was made; a platform administrator can grant it with a PayerGrant, or give this Payer keys of its own in a Secret (spec.credentials.secretRef)";
        match &self.missing {
            Missing::RoleOutsideAccount { role_arn } => write!(
                f,
                "role {role_arn} is not in this Payer's account {account}: the role to assume must be in the management account spec.accountId names; no AWS call was made"
            ),
            Missing::Namespace => write!(
                f,
                "no PayerGrant covers namespace {ns}, so the operator's own AWS identity may not be used for account {account} from it; {fix}"
            ),
            Missing::Account { covering } => write!(
                f,
                "{} cover{} namespace {ns} but none lists account {account} in spec.accountIds; {fix}",
                names(covering),
                if covering.len() == 1 { "s" } else { "" }
            ),
            Missing::Role { role_arn, covering } => write!(
                f,
                "{} cover{} namespace {ns} and account {account} but none lists role {role_arn} in spec.roleArns; {fix}",
                names(covering),
                if covering.len() == 1 { "s" } else { "" }
            ),
            Missing::OperatorIdentity { covering } => write!(
                f,
                "{} cover{} namespace {ns} and account {account} but none sets allowOperatorIdentity, and this Payer has no spec.credentials (it would use the operator's own identity itself); assume a granted role with spec.credentials.assumeRole instead. {fix}",
                names(covering),
                if covering.len() == 1 { "s" } else { "" }
            ),
        }
    }
}

/// Decide whether `payer` may go ahead. `namespace_labels` are the labels of the Payer's
/// namespace (`None` when unknown: label selectors then cover nothing); `grants` are all
/// PayerGrants. Pure.
pub fn decide(
    payer: &Payer,
    namespace_labels: Option<&BTreeMap<String, String>>,
    grants: &[PayerGrant],
) -> Result<Allowed, NotGranted> {
    let namespace = payer.namespace().unwrap_or_default();
    let account = payer.spec.account_id.as_str();
    let refuse = |missing| NotGranted {
        namespace: namespace.clone(),
        account_id: account.to_string(),
        missing,
    };
    let how = identity_use(&payer.spec);
    if how == IdentityUse::OwnKeys {
        return Ok(Allowed::OwnKeys);
    }
    if let IdentityUse::AssumeRole { role_arn } = how
        && role_account(role_arn) != Some(account)
    {
        return Err(refuse(Missing::RoleOutsideAccount {
            role_arn: role_arn.to_string(),
        }));
    }
    let mut live: Vec<&PayerGrant> = grants
        .iter()
        .filter(|g| g.metadata.deletion_timestamp.is_none())
        .collect();
    live.sort_by_key(|g| g.name_any());
    let for_namespace: Vec<&PayerGrant> = live
        .into_iter()
        .filter(|g| covers_namespace(&g.spec.namespaces, &namespace, namespace_labels))
        .collect();
    if for_namespace.is_empty() {
        return Err(refuse(Missing::Namespace));
    }
    let grant_names = |gs: &[&PayerGrant]| gs.iter().map(|g| g.name_any()).collect::<Vec<_>>();
    let for_account: Vec<&PayerGrant> = for_namespace
        .iter()
        .copied()
        .filter(|g| g.spec.account_ids.iter().any(|a| a == "*" || a == account))
        .collect();
    if for_account.is_empty() {
        return Err(refuse(Missing::Account {
            covering: grant_names(&for_namespace),
        }));
    }
    let allowing = match how {
        IdentityUse::AssumeRole { role_arn } => for_account
            .iter()
            .find(|g| g.spec.role_arns.iter().any(|p| wildcard_match(p, role_arn)))
            .ok_or_else(|| {
                refuse(Missing::Role {
                    role_arn: role_arn.to_string(),
                    covering: grant_names(&for_account),
                })
            })?,
        _ => for_account
            .iter()
            .find(|g| g.spec.allow_operator_identity)
            .ok_or_else(|| {
                refuse(Missing::OperatorIdentity {
                    covering: grant_names(&for_account),
                })
            })?,
    };
    Ok(Allowed::Grant(allowing.name_any()))
}

/// Whether `payer` may claim its AWS account (the oldest Payer of an account claims it): one
/// that brings its own keys may, one that uses the operator's identity only when granted. A
/// refused Payer never keeps a granted one out. Pure.
pub fn may_claim(
    payer: &Payer,
    namespace_labels: Option<&BTreeMap<String, String>>,
    grants: &[PayerGrant],
) -> bool {
    decide(payer, namespace_labels, grants).is_ok()
}

/// The account id in a role ARN (`arn:<partition>:iam::<account>:role/<name>`).
pub fn role_account(role_arn: &str) -> Option<&str> {
    let mut parts = role_arn.splitn(6, ':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("arn"), Some(_), Some("iam"), Some(""), Some(account), Some(resource))
            if resource.starts_with("role/") =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// Whether a grant's namespaces cover `namespace`: by name, or by its labels. Pure.
pub fn covers_namespace(
    g: &GrantNamespaces,
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    g.names.iter().any(|n| n == namespace)
        || g.selector
            .as_ref()
            .zip(labels)
            .is_some_and(|(s, l)| selector_matches(s, l))
}

/// Whether `labels` match `selector`; an operator other than In, NotIn, Exists and
/// DoesNotExist, or In without values, matches nothing. Pure.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (none
/// included) and everything else for itself. Pure.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = parts.collect();
    let Some((last, middle)) = middle.split_last() else {
        // No `*` at all: the whole text must be the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const ACCOUNT: &str = "210987654321";
    const ROLE: &str = "arn:aws:iam::210987654321:role/PartnerBilling";

    fn payer(ns: &str, account: &str, credentials: Value) -> Payer {
        let mut spec = json!({"accountId": account});
        if !credentials.is_null() {
            spec["credentials"] = credentials;
        }
        serde_json::from_value(json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer",
            "metadata": {"name": "p", "namespace": ns},
            "spec": spec
        }))
        .unwrap()
    }

    fn role(arn: &str) -> Value {
        json!({"assumeRole": {"roleArn": arn}})
    }

    fn grant(name: &str, spec: Value) -> PayerGrant {
        serde_json::from_value(json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "PayerGrant",
            "metadata": {"name": name},
            "spec": spec
        }))
        .unwrap()
    }

    fn acme_grant() -> PayerGrant {
        grant(
            "acme",
            json!({"namespaces": {"names": ["acme"]}, "accountIds": [ACCOUNT], "roleArns": [ROLE]}),
        )
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_is_deny_for_a_role_and_for_the_operator_identity() {
        for creds in [role(ROLE), Value::Null] {
            let err = decide(&payer("acme", ACCOUNT, creds), None, &[]).unwrap_err();
            assert_eq!(err.missing, Missing::Namespace);
            let text = err.to_string();
            assert!(
                text.contains("no PayerGrant covers namespace acme")
                    && text.contains(ACCOUNT)
                    && text.contains("no AWS call was made"),
                "{text}"
            );
        }
    }

    #[test]
    fn own_keys_need_no_grant() {
        let p = payer("acme", ACCOUNT, json!({"secretRef": {"name": "aws"}}));
        assert_eq!(decide(&p, None, &[]), Ok(Allowed::OwnKeys));
        assert!(!uses_operator_identity(&p.spec));
        assert!(may_claim(&p, None, &[]));
    }

    #[test]
    fn a_grant_covering_namespace_account_and_role_allows_it() {
        let p = payer("acme", ACCOUNT, role(ROLE));
        assert_eq!(
            decide(&p, None, &[acme_grant()]),
            Ok(Allowed::Grant("acme".into()))
        );
    }

    #[test]
    fn a_grant_for_namespace_a_does_not_cover_namespace_b() {
        let p = payer("contoso", ACCOUNT, role(ROLE));
        let err = decide(&p, None, &[acme_grant()]).unwrap_err();
        assert_eq!(err.missing, Missing::Namespace);
        assert!(err.to_string().contains("namespace contoso"), "{err}");
        assert!(!may_claim(&p, None, &[acme_grant()]));
    }

    #[test]
    fn the_refusal_names_the_missing_account() {
        let p = payer(
            "acme",
            "111122223333",
            role("arn:aws:iam::111122223333:role/X"),
        );
        let err = decide(&p, None, &[acme_grant()]).unwrap_err();
        assert_eq!(
            err.missing,
            Missing::Account {
                covering: vec!["acme".into()]
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("PayerGrant acme covers namespace acme")
                && text.contains("none lists account 111122223333"),
            "{text}"
        );
    }

    #[test]
    fn the_refusal_names_the_missing_role() {
        let other = "arn:aws:iam::210987654321:role/Admin";
        let err = decide(&payer("acme", ACCOUNT, role(other)), None, &[acme_grant()]).unwrap_err();
        assert_eq!(
            err.missing,
            Missing::Role {
                role_arn: other.into(),
                covering: vec!["acme".into()]
            }
        );
        assert!(
            err.to_string()
                .contains("none lists role arn:aws:iam::210987654321:role/Admin")
        );
        assert_eq!(err.clone().into_error().reason(), NOT_GRANTED);
        assert!(err.into_error().is_terminal());
    }

    #[test]
    fn the_operator_identity_itself_needs_allow_operator_identity() {
        let p = payer("acme", ACCOUNT, Value::Null);
        let err = decide(&p, None, &[acme_grant()]).unwrap_err();
        assert_eq!(
            err.missing,
            Missing::OperatorIdentity {
                covering: vec!["acme".into()]
            }
        );
        assert!(err.to_string().contains("allowOperatorIdentity"), "{err}");
        let allowed = grant(
            "acme-direct",
            json!({"namespaces": {"names": ["acme"]}, "accountIds": [ACCOUNT], "allowOperatorIdentity": true}),
        );
        assert_eq!(
            decide(&p, None, &[acme_grant(), allowed.clone()]),
            Ok(Allowed::Grant("acme-direct".into()))
        );
        // allowOperatorIdentity is not a licence for any role.
        let err = decide(&payer("acme", ACCOUNT, role(ROLE)), None, &[allowed]).unwrap_err();
        assert!(matches!(err.missing, Missing::Role { .. }), "{err:?}");
    }

    #[test]
    fn a_role_outside_the_payers_account_is_refused_whatever_the_grants() {
        let everything = grant(
            "all",
            json!({"namespaces": {"selector": {}}, "accountIds": ["*"], "roleArns": ["*"], "allowOperatorIdentity": true}),
        );
        let p = payer(
            "acme",
            ACCOUNT,
            role("arn:aws:iam::999999999999:role/PartnerBilling"),
        );
        let err = decide(&p, Some(&labels(&[])), std::slice::from_ref(&everything)).unwrap_err();
        assert_eq!(
            err.missing,
            Missing::RoleOutsideAccount {
                role_arn: "arn:aws:iam::999999999999:role/PartnerBilling".into()
            }
        );
        assert!(err.to_string().contains("not in this Payer's account"));
        // The same grant allows any role in the Payer's own account.
        assert!(
            decide(
                &payer("acme", ACCOUNT, role(ROLE)),
                Some(&labels(&[])),
                &[everything]
            )
            .is_ok()
        );
    }

    #[test]
    fn grants_do_not_add_up() {
        let a = grant(
            "a",
            json!({"namespaces": {"names": ["acme"]}, "accountIds": ["111111111111"], "roleArns": ["arn:aws:iam::111111111111:role/R"]}),
        );
        let b = grant(
            "b",
            json!({"namespaces": {"names": ["contoso"]}, "accountIds": [ACCOUNT], "roleArns": [ROLE]}),
        );
        let err = decide(&payer("acme", ACCOUNT, role(ROLE)), None, &[b, a]).unwrap_err();
        assert_eq!(
            err.missing,
            Missing::Account {
                covering: vec!["a".into()]
            }
        );
        // Namespace and account in one grant, the role in another: still refused.
        let c = grant(
            "c",
            json!({"namespaces": {"names": ["acme"]}, "accountIds": [ACCOUNT]}),
        );
        let d = grant(
            "d",
            json!({"namespaces": {"names": ["other"]}, "accountIds": [ACCOUNT], "roleArns": [ROLE]}),
        );
        let err = decide(&payer("acme", ACCOUNT, role(ROLE)), None, &[c, d]).unwrap_err();
        assert!(
            matches!(err.missing, Missing::Role { ref covering, .. } if covering == &["c".to_string()])
        );
    }

    #[test]
    fn role_patterns_with_wildcards() {
        let g = grant(
            "acme",
            json!({"namespaces": {"names": ["acme"]}, "accountIds": [ACCOUNT],
                   "roleArns": ["arn:aws:iam::*:role/tenants/acme/*"]}),
        );
        let ok = "arn:aws:iam::210987654321:role/tenants/acme/Billing";
        assert!(
            decide(
                &payer("acme", ACCOUNT, role(ok)),
                None,
                std::slice::from_ref(&g)
            )
            .is_ok()
        );
        for bad in [
            "arn:aws:iam::210987654321:role/tenants/contoso/Billing",
            "arn:aws:iam::210987654321:role/Billing",
            "arn:aws:iam::210987654321:role/tenants/acmeX/Billing",
        ] {
            assert!(
                decide(
                    &payer("acme", ACCOUNT, role(bad)),
                    None,
                    std::slice::from_ref(&g)
                )
                .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn wildcards_match_runs_of_characters_and_nothing_else() {
        assert!(wildcard_match("abc", "abc"));
        assert!(!wildcard_match("abc", "abcd"));
        assert!(!wildcard_match("abc", "ab"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "anything:at/all"));
        assert!(wildcard_match("a*", "a"));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a*c", "ac"));
        assert!(!wildcard_match("a*c", "abcd"));
        assert!(wildcard_match("*c", "abc"));
        assert!(!wildcard_match("ab*bc", "abc"), "the parts may not overlap");
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(!wildcard_match("a*b*c", "axxcyyb"));
        assert!(wildcard_match("a**c", "ac"));
        assert!(
            !wildcard_match("arn:aws:iam::1:role/R", "arn:aws:iam::1:role/r"),
            "case matters"
        );
        // `?` and regex characters are literal.
        assert!(!wildcard_match("a.c", "abc"));
        assert!(!wildcard_match("a?c", "abc"));
    }

    #[test]
    fn namespaces_by_label() {
        let g = grant(
            "tenants",
            json!({"namespaces": {"selector": {"matchLabels": {"tenant": "acme"},
                   "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold", "silver"]}]}},
                   "accountIds": [ACCOUNT], "roleArns": [ROLE]}),
        );
        let p = payer("acme-prod", ACCOUNT, role(ROLE));
        let gs = std::slice::from_ref(&g);
        assert!(
            decide(
                &p,
                Some(&labels(&[("tenant", "acme"), ("tier", "gold")])),
                gs
            )
            .is_ok()
        );
        assert!(
            decide(
                &p,
                Some(&labels(&[("tenant", "acme"), ("tier", "bronze")])),
                gs
            )
            .is_err()
        );
        assert!(
            decide(
                &p,
                Some(&labels(&[("tenant", "contoso"), ("tier", "gold")])),
                gs
            )
            .is_err()
        );
        // Labels not known (the namespace not seen yet): a selector covers nothing.
        assert_eq!(
            decide(&p, None, gs).unwrap_err().missing,
            Missing::Namespace
        );
    }

    #[test]
    fn selector_operators_fail_closed() {
        let sel = |e: Value| -> LabelSelector {
            serde_json::from_value(json!({"matchExpressions": [e]})).unwrap()
        };
        let l = labels(&[("a", "1")]);
        assert!(selector_matches(
            &sel(json!({"key": "a", "operator": "Exists"})),
            &l
        ));
        assert!(!selector_matches(
            &sel(json!({"key": "b", "operator": "Exists"})),
            &l
        ));
        assert!(selector_matches(
            &sel(json!({"key": "b", "operator": "DoesNotExist"})),
            &l
        ));
        assert!(selector_matches(
            &sel(json!({"key": "a", "operator": "NotIn", "values": ["2"]})),
            &l
        ));
        assert!(!selector_matches(
            &sel(json!({"key": "a", "operator": "In"})),
            &l
        ));
        assert!(!selector_matches(
            &sel(json!({"key": "a", "operator": "Gt", "values": ["0"]})),
            &l
        ));
        let everything: LabelSelector = serde_json::from_value(json!({})).unwrap();
        assert!(selector_matches(&everything, &labels(&[])));
    }

    #[test]
    fn a_grant_being_deleted_covers_nothing() {
        let mut g = acme_grant();
        g.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-11-24T10:00:00Z".parse().unwrap(),
        ));
        let err = decide(&payer("acme", ACCOUNT, role(ROLE)), None, &[g]).unwrap_err();
        assert_eq!(err.missing, Missing::Namespace);
    }

    #[test]
    fn role_accounts_are_read_from_the_arn() {
        assert_eq!(role_account(ROLE), Some(ACCOUNT));
        assert_eq!(
            role_account("arn:aws-cn:iam::111122223333:role/path/R"),
            Some("111122223333")
        );
        assert_eq!(role_account("arn:aws:iam::111122223333:user/R"), None);
        assert_eq!(role_account("not an arn"), None);
    }
}
