//! Observe -> plan -> execute, per kind. Shared by the controller and by file mode.
//!
//! Each kind's module has an `observe` (reads AWS through the [`crate::aws`] traits), a pure
//! `plan` (no AWS, no Kubernetes, no clock), an `execute` that carries the plan out, and a pure
//! status function. Front doors differ only in how they resolve references, read Secrets and
//! store status.

pub mod payer;

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::aws::{AwsConnect, Connection, PayerCredentialsSource};
use crate::error::Error;
use crate::secrets::SecretSource;

/// What kind of change a planned step makes in AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Create,
    Update,
    Delete,
}

/// One change the operator would make in AWS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub action: ChangeAction,
    /// What is changed, e.g. `billinggroup/acme`.
    pub target: String,
    /// Human-readable detail, e.g. `accounts +2 -1`.
    pub detail: String,
}

/// A notable thing that happened to an object, for a Kubernetes Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// AWS connections per payer, reused across reconciles while the credentials stay the same.
#[derive(Default)]
pub struct ConnectionCache {
    entries: Mutex<HashMap<String, (u64, Connection)>>,
}

impl ConnectionCache {
    /// The connection for payer `key`, made with `connector` unless one with the same
    /// credentials and region exists.
    pub async fn get_or_connect(
        &self,
        key: &str,
        connector: &dyn AwsConnect,
        credentials: &PayerCredentialsSource,
        region: &str,
    ) -> Result<Connection, Error> {
        let fingerprint = fingerprint(credentials, region);
        if let Some((fp, conn)) = self.lock().get(key)
            && *fp == fingerprint
        {
            return Ok(conn.clone());
        }
        let conn = connector.connect(credentials, region).await?;
        self.lock()
            .insert(key.to_string(), (fingerprint, conn.clone()));
        Ok(conn)
    }

    /// The cached connection of payer `key`, if any.
    pub fn get(&self, key: &str) -> Option<Connection> {
        self.lock().get(key).map(|(_, c)| c.clone())
    }

    /// Drop payer `key` (deleted, or its credentials failed).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Connection)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fingerprint(credentials: &PayerCredentialsSource, region: &str) -> u64 {
    let mut h = DefaultHasher::new();
    region.hash(&mut h);
    match credentials {
        PayerCredentialsSource::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => (
            0u8,
            access_key_id,
            secret_access_key.expose(),
            session_token.as_ref().map(|t| t.expose()),
        )
            .hash(&mut h),
        PayerCredentialsSource::AssumeRole {
            role_arn,
            external_id,
            session_name,
        } => (1u8, role_arn, external_id, session_name).hash(&mut h),
        PayerCredentialsSource::DefaultChain => 2u8.hash(&mut h),
    }
    h.finish()
}

/// What every reconciler needs, whichever front door called it.
#[derive(Clone)]
pub struct ReconcileContext {
    pub connector: Arc<dyn AwsConnect>,
    pub secrets: Arc<dyn SecretSource>,
    pub connections: Arc<ConnectionCache>,
}

impl ReconcileContext {
    pub fn new(connector: Arc<dyn AwsConnect>, secrets: Arc<dyn SecretSource>) -> Self {
        Self {
            connector,
            secrets,
            connections: Arc::new(ConnectionCache::default()),
        }
    }
}

/// Key of a namespaced object: `namespace/name`.
pub fn object_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}
