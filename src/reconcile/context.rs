//! What every reconciler needs, whichever front door called it: AWS connections per payer,
//! Secrets, the catalog of objects, the closure ledger, per-payer locks, the mailer, and the
//! state shared by type ([`Shared`]).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::api::Payer;
use crate::api::payer::ClosureRecord;
use crate::aws::{AwsConnect, Connection, PayerCredentialsSource};
use crate::error::Error;
use crate::secrets::SecretSource;

use super::catalog::Catalog;
use super::outcome::object_key;
use super::shared::Shared;

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

/// Where account closures are recorded, for the per-payer closure budget: the Payer's
/// status in the controller, memory in file mode.
#[async_trait]
pub trait ClosureLedger: Send + Sync {
    /// Closures of the payer recorded so far (callers filter by age).
    async fn closures(&self, payer: &Payer) -> Result<Vec<ClosureRecord>, Error>;
    /// Record a closure before CloseAccount is called.
    async fn record(&self, payer: &Payer, record: ClosureRecord) -> Result<(), Error>;
}

/// A ledger in memory, seeded from the Payers' statuses.
#[derive(Default)]
pub struct MemoryLedger {
    records: Mutex<HashMap<String, Vec<ClosureRecord>>>,
}

#[async_trait]
impl ClosureLedger for MemoryLedger {
    async fn closures(&self, payer: &Payer) -> Result<Vec<ClosureRecord>, Error> {
        let key = payer_key(payer);
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        Ok(records.get(&key).cloned().unwrap_or_else(|| {
            payer
                .status
                .as_ref()
                .map(|s| s.closures.clone())
                .unwrap_or_default()
        }))
    }

    async fn record(&self, payer: &Payer, record: ClosureRecord) -> Result<(), Error> {
        let existing = self.closures(payer).await?;
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let entry = records.entry(payer_key(payer)).or_insert(existing);
        entry.push(record);
        Ok(())
    }
}

/// `namespace/name` of a Payer.
pub fn payer_key(payer: &Payer) -> String {
    use kube::ResourceExt;
    object_key(&payer.namespace().unwrap_or_default(), &payer.name_any())
}

/// Per-payer locks for steps that must not interleave (account creation slots, closures).
#[derive(Default)]
pub struct PayerLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl PayerLocks {
    pub fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone()
    }
}

/// What every reconciler needs, whichever front door called it.
#[derive(Clone)]
pub struct ReconcileContext {
    pub connector: Arc<dyn AwsConnect>,
    pub secrets: Arc<dyn SecretSource>,
    pub connections: Arc<ConnectionCache>,
    pub catalog: Arc<Catalog>,
    pub ledger: Arc<dyn ClosureLedger>,
    pub locks: Arc<PayerLocks>,
    pub mailer: Arc<dyn crate::notify::Mailer>,
    shared: Shared,
}

impl ReconcileContext {
    pub fn new(connector: Arc<dyn AwsConnect>, secrets: Arc<dyn SecretSource>) -> Self {
        let shared = Shared::default();
        Self {
            connector,
            secrets,
            connections: Arc::new(ConnectionCache::default()),
            catalog: Arc::new(Catalog::default()),
            ledger: Arc::new(MemoryLedger::default()),
            locks: Arc::new(PayerLocks::default()),
            mailer: Arc::new(crate::notify::SmtpMailer),
            shared,
        }
    }

    /// The shared value of type `T` (see [`Shared`]), made with `T::default()` on first use.
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        self.shared.get()
    }

    /// Use `value` as the shared value of type `T` in this context (and its later clones).
    pub fn with_shared<T: Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.shared = self.shared.with(value);
        self
    }

    pub fn with_mailer(mut self, mailer: Arc<dyn crate::notify::Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    pub fn with_catalog(mut self, catalog: Arc<Catalog>) -> Self {
        self.catalog = catalog;
        self
    }

    pub fn with_ledger(mut self, ledger: Arc<dyn ClosureLedger>) -> Self {
        self.ledger = ledger;
        self
    }
}
