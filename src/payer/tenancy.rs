//! Tenancy at the reconcilers' door: where PayerGrants and namespace labels come from (the
//! controller's watch caches, or memory), the check made before a Payer's credentials are
//! resolved (no AWS call for a Payer that may not use the operator's identity), which Payers
//! may claim an account, and the external id read from a Secret.
//!
//! The decision itself is [`super::grants::decide`] (pure).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use kube::ResourceExt;

use super::grants::{self, NotGranted};
use crate::api::payer::{AssumeRole, Payer};
use crate::api::payer_grant::PayerGrant;
use crate::error::Error;
use crate::reconcile::reasons::{
    INVALID_EXTERNAL_ID, INVALID_SPEC, SECRET_KEY_MISSING, SECRET_NOT_FOUND,
};
use crate::reconcile::{ReconcileContext, object_key};
use crate::secrets::{SecretSource, SecretString};

/// What the grants say for one namespace.
#[derive(Clone, Debug)]
pub enum GrantView {
    /// Grants are not consulted: file mode, where the AWS identity is the invoker's own.
    Unrestricted,
    /// Every PayerGrant, and the labels of the namespace (`None`: not known).
    Enforced {
        grants: Vec<PayerGrant>,
        labels: Option<BTreeMap<String, String>>,
    },
}

/// Where grants and namespace labels come from.
#[async_trait]
pub trait GrantSource: Send + Sync {
    /// The grants that apply to Payers of `namespace`. Fails (retryably) while the grants
    /// have not been read yet: a Payer is never judged on an empty list that is not.
    async fn view(&self, namespace: &str) -> Result<GrantView, Error>;
    /// A Payer was refused (for metrics).
    fn refused(&self, _refusal: &NotGranted) {}
}

/// No grants are consulted (file mode: the identity is the invoker's own).
pub struct Unrestricted;

#[async_trait]
impl GrantSource for Unrestricted {
    async fn view(&self, _: &str) -> Result<GrantView, Error> {
        Ok(GrantView::Unrestricted)
    }
}

/// Grants and namespace labels held in memory (tests; a deny-all default). Empty: nothing
/// is granted.
#[derive(Default)]
pub struct StaticGrants {
    grants: RwLock<Vec<PayerGrant>>,
    labels: RwLock<HashMap<String, BTreeMap<String, String>>>,
    refusals: Mutex<Vec<NotGranted>>,
}

impl StaticGrants {
    pub fn new(grants: Vec<PayerGrant>) -> Self {
        let s = Self::default();
        s.set_grants(grants);
        s
    }
    /// Replace every grant.
    pub fn set_grants(&self, grants: Vec<PayerGrant>) {
        *self.grants.write().unwrap_or_else(|e| e.into_inner()) = grants;
    }
    /// Set the labels of `namespace`.
    pub fn set_labels(&self, namespace: &str, labels: BTreeMap<String, String>) {
        self.labels
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(namespace.to_string(), labels);
    }
    /// The refusals seen so far.
    pub fn refusals(&self) -> Vec<NotGranted> {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl GrantSource for StaticGrants {
    async fn view(&self, namespace: &str) -> Result<GrantView, Error> {
        Ok(GrantView::Enforced {
            grants: self
                .grants
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            labels: self
                .labels
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(namespace)
                .cloned(),
        })
    }
    fn refused(&self, refusal: &NotGranted) {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(refusal.clone());
    }
}

/// Where the PayerGrants come from, as the context's shared state (`ctx.shared::<Grants>()`):
/// the controller's watches, or [`Unrestricted`] in file mode. Default: nothing granted.
pub struct Grants(pub Arc<dyn GrantSource>);

impl Default for Grants {
    fn default() -> Self {
        Self(Arc::new(StaticGrants::default()))
    }
}

/// The check before a Payer's credentials are resolved and connected: a Payer that would use
/// the operator's own identity (no credentials, or `assumeRole`) goes ahead only when a
/// PayerGrant covers its namespace, account and role. A refusal is terminal (reason
/// `NotGranted`), makes no AWS call, drops the Payer's cached connection and stops its account
/// creation watcher.
pub async fn authorize(payer: &Payer, ctx: &ReconcileContext) -> Result<(), Error> {
    if !grants::uses_operator_identity(&payer.spec) {
        return Ok(());
    }
    let namespace = payer.namespace().unwrap_or_default();
    let (grant_list, labels) = match ctx.shared::<Grants>().0.view(&namespace).await? {
        GrantView::Unrestricted => return Ok(()),
        GrantView::Enforced { grants, labels } => (grants, labels),
    };
    match grants::decide(payer, labels.as_ref(), &grant_list) {
        Ok(_) => Ok(()),
        Err(refusal) => {
            let key = object_key(&namespace, &payer.name_any());
            ctx.connections.forget(&key);
            ctx.shared::<crate::organizations::creations::Creations>()
                .abandon(&key);
            ctx.shared::<Grants>().0.refused(&refusal);
            Err(refusal.into_error())
        }
    }
}

/// The Payers that may claim AWS account `account_id` (see [`claimant`]): those of that
/// account but the ones refused for the operator's identity, so that a refused Payer never
/// keeps a granted one out.
pub async fn claimants(ctx: &ReconcileContext, account_id: &str) -> Result<Vec<Payer>, Error> {
    let mut views: HashMap<String, GrantView> = HashMap::new();
    let mut out = Vec::new();
    let of_account = ctx
        .catalog
        .all::<Payer>()
        .into_iter()
        .filter(|p| p.spec.account_id == account_id);
    for p in of_account {
        if !grants::uses_operator_identity(&p.spec) {
            out.push(p);
            continue;
        }
        let ns = p.namespace().unwrap_or_default();
        let view = match views.get(&ns) {
            Some(v) => v.clone(),
            None => {
                let v = ctx.shared::<Grants>().0.view(&ns).await?;
                views.insert(ns, v.clone());
                v
            }
        };
        let keep = match &view {
            GrantView::Unrestricted => true,
            GrantView::Enforced { grants, labels } => {
                grants::may_claim(&p, labels.as_ref(), grants)
            }
        };
        if keep {
            out.push(p);
        }
    }
    // The catalog keeps no order; claims are judged the same whatever order it lists them in.
    out.sort_by_key(|p| (p.namespace(), p.name_any()));
    Ok(out)
}

/// The external id of `role`: `externalId`, or the value `externalIdSecretRef` names in a
/// Secret of `namespace`. Error messages name the Secret and key, never the value.
pub async fn external_id(
    namespace: &str,
    role: &AssumeRole,
    secrets: &dyn SecretSource,
) -> Result<Option<SecretString>, Error> {
    let r = match (&role.external_id, &role.external_id_secret_ref) {
        (Some(_), Some(_)) => {
            return Err(Error::terminal(
                INVALID_SPEC,
                "spec.credentials.assumeRole sets both externalId and externalIdSecretRef; keep one",
            ));
        }
        (Some(plain), None) => return Ok(Some(SecretString::new(plain.clone()))),
        (None, None) => return Ok(None),
        (None, Some(r)) => r,
    };
    let data = secrets.get(namespace, &r.name).await?.ok_or_else(|| {
        Error::terminal(
            SECRET_NOT_FOUND,
            format!(
                "Secret {namespace}/{} named in spec.credentials.assumeRole.externalIdSecretRef does not exist; create it with the key {}",
                r.name,
                r.key()
            ),
        )
    })?;
    let value = data
        .get(r.key())
        .map(|v| v.expose().trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::terminal(
                SECRET_KEY_MISSING,
                format!(
                    "Secret {namespace}/{} has no key {:?} (or it is empty); add it or set the key name in spec.credentials.assumeRole.externalIdSecretRef",
                    r.name,
                    r.key()
                ),
            )
        })?;
    if !valid_external_id(&value) {
        return Err(Error::terminal(
            INVALID_EXTERNAL_ID,
            format!(
                "the value of key {:?} in Secret {namespace}/{} is not a valid external id (2 to 1224 of letters, digits and _+=,.@:/-); the value is not shown",
                r.key(),
                r.name
            ),
        ));
    }
    Ok(Some(SecretString::new(value)))
}

/// What STS accepts as an external id: 2 to 1224 of `[\w+=,.@:/-]`.
fn valid_external_id(v: &str) -> bool {
    (2..=1224).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
}

/// The Payer that claims an AWS account: of all Payers with that account id in the
/// cluster, the oldest (then by namespace and name). Pure.
pub fn claimant<'a>(account_id: &str, all: &'a [Payer]) -> Option<&'a Payer> {
    all.iter()
        .filter(|p| p.spec.account_id == account_id && p.metadata.deletion_timestamp.is_none())
        .min_by_key(|p| {
            (
                p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                p.namespace().unwrap_or_default(),
                p.name_any(),
            )
        })
}

/// A terminal error when another Payer already claims this payer's AWS account. Pure.
pub fn claimed_elsewhere(payer: &Payer, all: &[Payer]) -> Option<Error> {
    let first = claimant(&payer.spec.account_id, all)?;
    let same = first.namespace() == payer.namespace() && first.name_any() == payer.name_any();
    (!same).then(|| {
        Error::terminal(
            crate::reconcile::reasons::ACCOUNT_CLAIMED,
            format!(
                "AWS account {} is already managed by Payer {}/{}; one account can be claimed by one Payer in the cluster. Delete this Payer or the other",
                payer.spec.account_id,
                first.namespace().unwrap_or_default(),
                first.name_any()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{SecretData, StaticSecrets};
    use serde_json::json;

    fn role(v: serde_json::Value) -> AssumeRole {
        serde_json::from_value(v).unwrap()
    }

    fn secrets(key: &str, value: &str) -> StaticSecrets {
        let mut data = SecretData::new();
        data.insert(key.to_string(), SecretString::new(value));
        let mut s = StaticSecrets::default();
        s.insert("acme", "role-ext", data);
        s
    }

    const ARN: &str = "arn:aws:iam::210987654321:role/PartnerBilling";

    #[tokio::test]
    async fn the_external_id_comes_from_the_payer_or_from_a_secret() {
        let none = StaticSecrets::default();
        assert_eq!(
            external_id("acme", &role(json!({"roleArn": ARN})), &none)
                .await
                .unwrap(),
            None
        );
        let plain = external_id(
            "acme",
            &role(json!({"roleArn": ARN, "externalId": "partner-42"})),
            &none,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(plain.expose(), "partner-42");
        let from_secret = external_id(
            "acme",
            &role(json!({"roleArn": ARN, "externalIdSecretRef": {"name": "role-ext"}})),
            &secrets("externalId", "s3cr3t-ext-id\n"),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(from_secret.expose(), "s3cr3t-ext-id");
        let other_key = external_id(
            "acme",
            &role(
                json!({"roleArn": ARN, "externalIdSecretRef": {"name": "role-ext", "key": "id"}}),
            ),
            &secrets("id", "s3cr3t-ext-id"),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(other_key.expose(), "s3cr3t-ext-id");
    }

    #[tokio::test]
    async fn external_id_errors_name_the_secret_and_key_but_never_the_value() {
        let by_ref = role(json!({"roleArn": ARN, "externalIdSecretRef": {"name": "role-ext"}}));
        let missing = external_id("acme", &by_ref, &StaticSecrets::default())
            .await
            .unwrap_err();
        assert_eq!(missing.reason(), "SecretNotFound");
        assert!(missing.to_string().contains("acme/role-ext"), "{missing}");
        let no_key = external_id("acme", &by_ref, &secrets("other", "x-value-x"))
            .await
            .unwrap_err();
        assert_eq!(no_key.reason(), "SecretKeyMissing");
        assert!(!no_key.to_string().contains("x-value-x"));
        let bad = external_id("acme", &by_ref, &secrets("externalId", "has spaces in it"))
            .await
            .unwrap_err();
        assert_eq!(bad.reason(), "InvalidExternalId");
        assert!(bad.is_terminal());
        assert!(!bad.to_string().contains("has spaces"), "{bad}");
        let both = role(
            json!({"roleArn": ARN, "externalId": "ab", "externalIdSecretRef": {"name": "role-ext"}}),
        );
        assert_eq!(
            external_id("acme", &both, &StaticSecrets::default())
                .await
                .unwrap_err()
                .reason(),
            "InvalidSpec"
        );
    }

    fn payer(ns: &str, created: &str, credentials: serde_json::Value) -> Payer {
        serde_json::from_value(json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer",
            "metadata": {"name": "p", "namespace": ns, "creationTimestamp": created},
            "spec": {"accountId": "210987654321", "credentials": credentials}
        }))
        .unwrap()
    }

    fn acme_grant() -> PayerGrant {
        serde_json::from_value(json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "PayerGrant",
            "metadata": {"name": "acme"},
            "spec": {"namespaces": {"names": ["acme"]}, "accountIds": ["210987654321"], "roleArns": [ARN]}
        }))
        .unwrap()
    }

    fn context(payers: Vec<Payer>, grants: Arc<StaticGrants>) -> ReconcileContext {
        let catalog = crate::reconcile::catalog::Catalog::new();
        for p in payers {
            catalog.put(p);
        }
        ReconcileContext::new(
            Arc::new(crate::aws::fake::FakeAws::management_account(
                "210987654321",
                1,
            )),
            Arc::new(StaticSecrets::default()),
        )
        .with_catalog(Arc::new(catalog))
        .with_shared(Arc::new(Grants(grants)))
    }

    #[tokio::test]
    async fn a_refused_payer_claims_nothing_and_a_granted_one_claims_its_account() {
        // The squatter in `contoso` is older, but may not use the operator's identity.
        let squatter = payer(
            "contoso",
            "2026-11-24T09:00:00Z",
            json!({"assumeRole": {"roleArn": ARN}}),
        );
        let granted = payer(
            "acme",
            "2026-11-24T10:00:00Z",
            json!({"assumeRole": {"roleArn": ARN}}),
        );
        let keys = payer(
            "keys",
            "2026-11-24T11:00:00Z",
            json!({"secretRef": {"name": "aws"}}),
        );
        let grants = Arc::new(StaticGrants::new(vec![acme_grant()]));
        let ctx = context(
            vec![squatter.clone(), granted.clone(), keys],
            grants.clone(),
        );
        let eligible = claimants(&ctx, "210987654321").await.unwrap();
        let namespaces: Vec<String> = eligible
            .iter()
            .map(|p| p.namespace().unwrap_or_default())
            .collect();
        assert_eq!(namespaces, ["acme", "keys"]);
        assert!(claimed_elsewhere(&granted, &eligible).is_none());
        assert!(claimants(&ctx, "111111111111").await.unwrap().is_empty());

        // The squatter itself is refused (and that is what it is told, not AccountClaimed).
        let err = authorize(&squatter, &ctx).await.unwrap_err();
        assert_eq!(err.reason(), "NotGranted");
        assert!(authorize(&granted, &ctx).await.is_ok());
        assert_eq!(grants.refusals().len(), 1);
        assert_eq!(grants.refusals()[0].namespace, "contoso");
    }

    #[tokio::test]
    async fn a_refusal_drops_the_payers_cached_connection() {
        let p = payer(
            "acme",
            "2026-11-24T10:00:00Z",
            json!({"assumeRole": {"roleArn": ARN}}),
        );
        let grants = Arc::new(StaticGrants::new(vec![acme_grant()]));
        let ctx = context(vec![p.clone()], grants.clone());
        assert!(authorize(&p, &ctx).await.is_ok());
        let creds = crate::aws::PayerCredentialsSource::DefaultChain;
        ctx.connections
            .get_or_connect("acme/p", ctx.connector.as_ref(), &creds, "us-east-1")
            .await
            .unwrap();
        assert_eq!(ctx.connections.len(), 1);
        grants.set_grants(Vec::new());
        assert_eq!(
            authorize(&p, &ctx).await.unwrap_err().reason(),
            "NotGranted"
        );
        assert!(ctx.connections.is_empty(), "the session is dropped");
        // Unrestricted (file mode) and own keys never consult grants.
        let open = ctx
            .clone()
            .with_shared(Arc::new(Grants(Arc::new(Unrestricted))));
        assert!(authorize(&p, &open).await.is_ok());
        let keys = payer(
            "acme",
            "2026-11-24T10:00:00Z",
            json!({"secretRef": {"name": "aws"}}),
        );
        assert!(authorize(&keys, &ctx).await.is_ok());
    }

    #[test]
    fn external_id_characters() {
        assert!(valid_external_id("partner-42"));
        assert!(valid_external_id("a_b+c=d,e.f@g:h/i-j"));
        assert!(!valid_external_id("a"));
        assert!(!valid_external_id("a b"));
        assert!(!valid_external_id("ä-umlaut"));
        assert!(!valid_external_id(&"a".repeat(1225)));
    }
}
