//! Where Secret data comes from: the Kubernetes API (controller) or the manifests given to
//! `plan`/`apply` (file mode). Values are wrapped so they never print.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::error::Error;
use crate::reconcile::reasons::SECRET_FORBIDDEN;

/// A secret string whose `Debug`/`Display` never show the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for handing to the AWS SDK. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(**redacted**)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

/// The data of one Secret, decoded.
pub type SecretData = BTreeMap<String, SecretString>;

/// Reads Secrets in a namespace.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// `Ok(None)` when the Secret does not exist.
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, Error>;
}

/// Decode a Secret's `data` (bytes) and `stringData` into strings.
pub fn decode(secret: &Secret) -> SecretData {
    let mut out = SecretData::new();
    for (k, v) in secret.data.iter().flatten() {
        out.insert(
            k.clone(),
            SecretString(
                String::from_utf8_lossy(&v.0)
                    .trim_end_matches('\n')
                    .to_string(),
            ),
        );
    }
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), SecretString(v.clone()));
    }
    out
}

/// Secrets from the Kubernetes API.
pub struct KubeSecrets {
    client: Client,
}

impl KubeSecrets {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretSource for KubeSecrets {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, Error> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(found) => Ok(found.as_ref().map(decode)),
            Err(kube::Error::Api(status)) if status.code == 403 => Err(Error::terminal(
                SECRET_FORBIDDEN,
                format!(
                    "the operator may not read Secret {namespace}/{name}: grant it get on secrets in this namespace"
                ),
            )),
            Err(e) => Err(Error::Kube(e)),
        }
    }
}

/// Secrets given in manifests (file mode), keyed by namespace and name.
#[derive(Default)]
pub struct StaticSecrets {
    secrets: HashMap<(String, String), SecretData>,
}

impl StaticSecrets {
    pub fn insert(&mut self, namespace: &str, name: &str, data: SecretData) {
        self.secrets
            .insert((namespace.to_string(), name.to_string()), data);
    }
    pub fn len(&self) -> usize {
        self.secrets.len()
    }
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

#[async_trait]
impl SecretSource for StaticSecrets {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, Error> {
        Ok(self
            .secrets
            .get(&(namespace.to_string(), name.to_string()))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn secret_values_never_print() {
        let s = SecretString::new("wJalrXUtnFEMI/K7MDENG");
        assert!(!format!("{s:?} {s}").contains("wJalr"));
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG");
    }

    #[test]
    fn decodes_data_and_string_data() {
        let secret = Secret {
            data: Some([("a".to_string(), ByteString(b"one\n".to_vec()))].into()),
            string_data: Some([("b".to_string(), "two".to_string())].into()),
            ..Default::default()
        };
        let d = decode(&secret);
        assert_eq!(d["a"].expose(), "one");
        assert_eq!(d["b"].expose(), "two");
    }
}
