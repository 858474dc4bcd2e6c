//! Observe -> plan -> execute, per kind. Shared by the controller and by file mode.
//!
//! Each kind's module has an `observe` (reads AWS through the [`crate::aws`] traits), a pure
//! `plan` (no AWS, no Kubernetes, no clock), an `execute` that carries the plan out, and a pure
//! status function. Front doors differ only in how they resolve references, read Secrets and
//! store status.

pub mod ownership;
pub mod reasons;
pub mod run;
pub mod tags;

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use std::time::Duration;

use async_trait::async_trait;

use crate::api::conditions::{
    Condition, ConditionStatus, DesiredCondition, READY, SYNCED, merge_conditions,
};
use crate::api::payer::ClosureRecord;
use crate::api::{LinkedAccount, OrganizationalUnit, Payer, ServiceControlPolicy};
use crate::aws::{AwsConnect, Connection, PayerCredentialsSource};
use crate::billing::snapshot::BillingSnapshot;
use crate::error::Error;
use crate::organizations::creations;
use crate::payer::insights;
use crate::payer::snapshot::{self, SnapshotCache};
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

/// The objects a reconciler may look up by reference: the watch caches in the controller,
/// the manifests in file mode.
pub trait Catalog: Send + Sync {
    fn payer(&self, namespace: &str, name: &str) -> Option<Payer>;
    /// Every Payer the front door knows of, in all namespaces.
    fn all_payers(&self) -> Vec<Payer>;
    fn service_control_policy(&self, namespace: &str, name: &str) -> Option<ServiceControlPolicy>;
    fn service_control_policies(&self, namespace: &str) -> Vec<ServiceControlPolicy>;
    fn organizational_unit(&self, namespace: &str, name: &str) -> Option<OrganizationalUnit>;
    fn linked_accounts(&self, namespace: &str) -> Vec<LinkedAccount>;
    fn pricing_plan(&self, namespace: &str, name: &str) -> Option<crate::api::PricingPlan>;
    fn billing_groups(&self, namespace: &str) -> Vec<crate::api::BillingGroup>;
    fn custom_line_items(&self, namespace: &str) -> Vec<crate::api::CustomLineItem>;
    /// The LinkedAccounts of `namespace` that `keep` accepts; only those are copied (a
    /// namespace may hold thousands, and reconcilers mostly want a handful).
    fn linked_accounts_where(
        &self,
        namespace: &str,
        keep: &dyn Fn(&LinkedAccount) -> bool,
    ) -> Vec<LinkedAccount> {
        self.linked_accounts(namespace)
            .into_iter()
            .filter(|a| keep(a))
            .collect()
    }
    /// The BillingGroups of `namespace` that `keep` accepts; only those are copied.
    fn billing_groups_where(
        &self,
        namespace: &str,
        keep: &dyn Fn(&crate::api::BillingGroup) -> bool,
    ) -> Vec<crate::api::BillingGroup> {
        self.billing_groups(namespace)
            .into_iter()
            .filter(|g| keep(g))
            .collect()
    }
    /// BillingGroup `name` of `namespace`.
    fn billing_group(&self, namespace: &str, name: &str) -> Option<crate::api::BillingGroup> {
        self.billing_groups_where(namespace, &|g| g.metadata.name.as_deref() == Some(name))
            .into_iter()
            .next()
    }
    /// LinkedAccount `name` of `namespace`.
    fn linked_account(&self, namespace: &str, name: &str) -> Option<LinkedAccount> {
        self.linked_accounts_where(namespace, &|a| a.metadata.name.as_deref() == Some(name))
            .into_iter()
            .next()
    }
}

/// A catalog that knows nothing (Payer-only uses).
pub struct EmptyCatalog;

impl Catalog for EmptyCatalog {
    fn payer(&self, _: &str, _: &str) -> Option<Payer> {
        None
    }
    fn all_payers(&self) -> Vec<Payer> {
        Vec::new()
    }
    fn service_control_policy(&self, _: &str, _: &str) -> Option<ServiceControlPolicy> {
        None
    }
    fn service_control_policies(&self, _: &str) -> Vec<ServiceControlPolicy> {
        Vec::new()
    }
    fn organizational_unit(&self, _: &str, _: &str) -> Option<OrganizationalUnit> {
        None
    }
    fn linked_accounts(&self, _: &str) -> Vec<LinkedAccount> {
        Vec::new()
    }
    fn pricing_plan(&self, _: &str, _: &str) -> Option<crate::api::PricingPlan> {
        None
    }
    fn billing_groups(&self, _: &str) -> Vec<crate::api::BillingGroup> {
        Vec::new()
    }
    fn custom_line_items(&self, _: &str) -> Vec<crate::api::CustomLineItem> {
        Vec::new()
    }
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
    pub catalog: Arc<dyn Catalog>,
    pub snapshots: Arc<SnapshotCache>,
    pub billing: Arc<snapshot::SharedReads<BillingSnapshot>>,
    pub ledger: Arc<dyn ClosureLedger>,
    pub locks: Arc<PayerLocks>,
    /// Account creations in flight, watched per payer.
    pub creations: Arc<creations::Creations>,
    pub mailer: Arc<dyn crate::notify::Mailer>,
    /// Cost insights kept in memory (shared with the metrics endpoint).
    pub insights: Arc<insights::InsightsStore>,
    /// Tenancy (issue 17): the PayerGrants and namespace labels; default: nothing granted.
    pub grants: Arc<dyn crate::payer::tenancy::GrantSource>,
}

impl ReconcileContext {
    pub fn new(connector: Arc<dyn AwsConnect>, secrets: Arc<dyn SecretSource>) -> Self {
        Self {
            connector,
            secrets,
            connections: Arc::new(ConnectionCache::default()),
            catalog: Arc::new(EmptyCatalog),
            snapshots: Arc::new(SnapshotCache::default()),
            billing: Arc::new(snapshot::SharedReads::default()),
            ledger: Arc::new(MemoryLedger::default()),
            locks: Arc::new(PayerLocks::default()),
            creations: Arc::new(creations::Creations::default()),
            mailer: Arc::new(crate::notify::SmtpMailer),
            insights: Arc::new(insights::InsightsStore::default()),
            grants: Arc::new(crate::payer::tenancy::StaticGrants::default()),
        }
    }

    /// Tenancy (issue 17): where PayerGrants come from.
    pub fn with_grants(mut self, grants: Arc<dyn crate::payer::tenancy::GrantSource>) -> Self {
        self.grants = grants;
        self
    }

    /// Share the insights store (the metrics endpoint reads it).
    pub fn with_insights(mut self, insights: Arc<insights::InsightsStore>) -> Self {
        self.insights = insights;
        self
    }

    pub fn with_mailer(mut self, mailer: Arc<dyn crate::notify::Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    pub fn with_catalog(mut self, catalog: Arc<dyn Catalog>) -> Self {
        self.catalog = catalog;
        self
    }

    pub fn with_ledger(mut self, ledger: Arc<dyn ClosureLedger>) -> Self {
        self.ledger = ledger;
        self
    }

    /// Use `max_age` for both shared reads (organization and Billing Conductor).
    pub fn with_snapshots(mut self, snapshots: Arc<SnapshotCache>) -> Self {
        self.billing = Arc::new(snapshot::SharedReads::new(snapshots.max_age()));
        self.snapshots = snapshots;
        self
    }
}

/// Whether a reconcile may write to AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Observe and plan only (`plan -f`).
    Plan,
    /// Observe, plan and execute.
    Apply,
}

/// Where an object stands after a reconcile that did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// Look again after this long (something is in progress), instead of the resync period.
    pub requeue: Option<Duration>,
}

impl Verdict {
    pub fn ready(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ready: true,
            reason: reason.into(),
            message: message.into(),
            requeue: None,
        }
    }

    /// Not ready yet, but progressing: look again after `after`.
    pub fn progressing(reason: &str, message: impl Into<String>, after: Duration) -> Self {
        Self {
            ready: false,
            reason: reason.into(),
            message: message.into(),
            requeue: Some(after),
        }
    }

    /// Not ready, and nothing will change until something outside does.
    pub fn blocked(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ready: false,
            reason: reason.into(),
            message: message.into(),
            requeue: None,
        }
    }
}

/// Everything one reconcile of an object produced.
#[derive(Debug)]
pub struct KindOutcome<S> {
    pub result: Result<Verdict, Error>,
    pub status: S,
    /// Changes made (Apply) or that would be made (Plan).
    pub changes: Vec<Change>,
    pub events: Vec<EventNote>,
}

impl<S: PartialEq> KindOutcome<S> {
    pub fn status_changed(&self, previous: Option<&S>) -> bool {
        previous != Some(&self.status)
    }
}

/// What every status of a reconciled kind has: conditions and the generation they describe.
pub trait KindStatus: Clone {
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, conditions: Vec<Condition>);
    fn set_observed_generation(&mut self, generation: Option<i64>);
}

macro_rules! kind_status {
    ($($t:ty),*) => {$(
        impl KindStatus for $t {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn set_conditions(&mut self, conditions: Vec<Condition>) {
                self.conditions = conditions;
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
        }
    )*};
}

kind_status!(
    crate::api::ServiceControlPolicyStatus,
    crate::api::OrganizationalUnitStatus,
    crate::api::LinkedAccountStatus,
    crate::api::PricingPlanStatus,
    crate::api::BillingGroupStatus,
    crate::api::CustomLineItemStatus,
    crate::api::CurPipelineStatus
);

/// Finish a reconcile: conditions from `result` (plus `extra` ones), the observed
/// generation, an event when `Ready` changed. In `Plan` mode the stored status is kept and no
/// event is recorded.
#[allow(clippy::too_many_arguments)]
pub fn finish<S: KindStatus>(
    previous: &S,
    mut status: S,
    result: Result<Verdict, Error>,
    extra: &[DesiredCondition],
    generation: Option<i64>,
    mode: Mode,
    now: &str,
    changes: Vec<Change>,
    mut events: Vec<EventNote>,
) -> KindOutcome<S> {
    let mut conditions = conditions_for(previous.conditions(), &result, generation, now);
    if !extra.is_empty() {
        conditions = merge_conditions(&conditions, extra, generation, now);
    }
    status.set_conditions(conditions);
    status.set_observed_generation(generation);
    if mode == Mode::Plan {
        status = previous.clone();
        events.clear();
    } else {
        events.extend(ready_change_event(
            previous.conditions(),
            status.conditions(),
        ));
    }
    KindOutcome {
        result,
        status,
        changes,
        events,
    }
}

/// Finish a deletion step: conditions from `result` (plus `extra`), and an event — the
/// release itself when `result` is Ok (a warning when `warn` says so), else a `Ready` change.
#[allow(clippy::too_many_arguments)]
pub fn finish_cleanup<S: KindStatus>(
    previous: &S,
    mut status: S,
    result: Result<Verdict, Error>,
    extra: &[DesiredCondition],
    generation: Option<i64>,
    now: &str,
    changes: Vec<Change>,
    mut events: Vec<EventNote>,
    warn: impl Fn(&str) -> bool,
) -> KindOutcome<S> {
    let mut conditions = conditions_for(previous.conditions(), &result, generation, now);
    if !extra.is_empty() {
        conditions = merge_conditions(&conditions, extra, generation, now);
    }
    status.set_conditions(conditions);
    match &result {
        Ok(v) => events.push(EventNote {
            warning: warn(&v.reason),
            reason: v.reason.clone(),
            note: v.message.clone(),
        }),
        Err(_) => events.extend(ready_change_event(
            previous.conditions(),
            status.conditions(),
        )),
    }
    KindOutcome {
        result,
        status,
        changes,
        events,
    }
}

/// The `Ready` and `Synced` conditions for a reconcile result, merged into `existing`.
/// Retryable errors leave `Ready` as it was.
pub fn conditions_for(
    existing: &[Condition],
    result: &Result<Verdict, Error>,
    generation: Option<i64>,
    now: &str,
) -> Vec<Condition> {
    let desired: Vec<DesiredCondition> = match result {
        Ok(v) => vec![
            DesiredCondition::new(
                READY,
                if v.ready {
                    ConditionStatus::True
                } else {
                    ConditionStatus::False
                },
                v.reason.clone(),
                v.message.clone(),
            ),
            DesiredCondition::new(
                SYNCED,
                ConditionStatus::True,
                "ReconcileSuccess",
                "AWS was read and the changes it needed were made",
            ),
        ],
        Err(Error::Waiting {
            reason, message, ..
        }) => vec![
            DesiredCondition::new(READY, ConditionStatus::False, *reason, message.clone()),
            DesiredCondition::new(SYNCED, ConditionStatus::True, "Waiting", message.clone()),
        ],
        Err(err) if err.is_terminal() => vec![
            DesiredCondition::new(READY, ConditionStatus::False, err.reason(), err.to_string()),
            DesiredCondition::new(
                SYNCED,
                ConditionStatus::False,
                err.reason(),
                err.to_string(),
            ),
        ],
        Err(err) => {
            let mut d = vec![DesiredCondition::new(
                SYNCED,
                ConditionStatus::False,
                err.reason(),
                err.to_string(),
            )];
            if crate::api::conditions::find(existing, READY).is_none() {
                d.push(DesiredCondition::new(
                    READY,
                    ConditionStatus::Unknown,
                    "Pending",
                    "waiting for AWS to answer",
                ));
            }
            d
        }
    };
    merge_conditions(existing, &desired, generation, now)
}

/// An event when `Ready` changed between two condition lists.
pub fn ready_change_event(before: &[Condition], after: &[Condition]) -> Option<EventNote> {
    let b = crate::api::conditions::find(before, READY);
    let a = crate::api::conditions::find(after, READY)?;
    let changed = b.is_none_or(|b| b.status != a.status || b.reason != a.reason);
    if !changed || a.status == ConditionStatus::Unknown {
        return None;
    }
    Some(EventNote {
        warning: a.status == ConditionStatus::False && !is_progress_reason(&a.reason),
        reason: a.reason.clone(),
        note: a.message.clone(),
    })
}

fn is_progress_reason(reason: &str) -> bool {
    matches!(
        reason,
        "Creating" | "CreationQueued" | "InvitationPending" | "DependencyNotReady" | "Closing"
    )
}

/// Key of a namespaced object: `namespace/name`.
pub fn object_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// How long a dependency (a Payer, an OU, an SCP not created yet) is waited for before the
/// object is looked at again.
pub const DEPENDENCY_RETRY: Duration = Duration::from_secs(15);

/// A change record.
pub fn change(
    action: ChangeAction,
    target: impl Into<String>,
    detail: impl Into<String>,
) -> Change {
    Change {
        action,
        target: target.into(),
        detail: detail.into(),
    }
}
