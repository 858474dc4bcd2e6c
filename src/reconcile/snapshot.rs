//! Shared reads per payer: one snapshot of the organization (paginated list calls), read by
//! every object of that payer, instead of one describe call per object.
//!
//! A snapshot costs DescribeOrganization, ListRoots, the pages of ListAccounts, one
//! ListOrganizationalUnitsForParent and one ListAccountsForParent per parent (root and OUs),
//! ListPolicies, one ListTargetsForPolicy per SCP, ListCreateAccountStatus (in progress) and
//! ListHandshakesForOrganization: it grows with the number of OUs and policies and with
//! pages of 20 accounts, never with one call per account.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::aws::Connection;
use crate::aws::organizations::{
    Account, CreateStatus, Handshake, OrgUnit, Organization, PolicySummary, Root,
};
use crate::error::Error;

/// What the organization looked like when the snapshot was taken.
#[derive(Clone, Debug)]
pub struct OrgSnapshot {
    pub organization: Organization,
    pub root: Root,
    pub accounts: Vec<Account>,
    pub ous: Vec<OrgUnit>,
    /// Parent (root or OU id) of each account.
    pub parent_of: HashMap<String, String>,
    pub policies: Vec<PolicySummary>,
    /// Targets (root, OU and account ids) of each policy id.
    pub targets: HashMap<String, Vec<String>>,
    pub creates_in_progress: Vec<CreateStatus>,
    pub invitations: Vec<Handshake>,
}

impl OrgSnapshot {
    /// Read the organization through `conn`.
    pub async fn load(conn: &Connection) -> Result<Self, Error> {
        let orgs = conn.organizations.as_ref();
        let organization = orgs.describe_organization().await?.ok_or_else(|| {
            Error::terminal(
                "NoOrganization",
                "the payer's account is not in an organization",
            )
        })?;
        let root = orgs
            .list_roots()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::retryable("AwsBadResponse", "ListRoots returned no root"))?;
        let accounts = orgs.list_accounts().await?;
        let mut ous = Vec::new();
        let mut parent_of = HashMap::new();
        let mut queue = VecDeque::from([root.id.clone()]);
        while let Some(parent) = queue.pop_front() {
            for id in orgs.list_account_ids_for_parent(&parent).await? {
                parent_of.insert(id, parent.clone());
            }
            for ou in orgs.list_ous_for_parent(&parent).await? {
                queue.push_back(ou.id.clone());
                ous.push(ou);
            }
        }
        let policies = orgs.list_scps().await?;
        let mut targets = HashMap::new();
        for p in &policies {
            targets.insert(p.id.clone(), orgs.list_targets_for_policy(&p.id).await?);
        }
        let creates_in_progress = orgs.list_creates_in_progress().await?;
        let invitations = orgs.list_invitations().await?;
        Ok(Self {
            organization,
            root,
            accounts,
            ous,
            parent_of,
            policies,
            targets,
            creates_in_progress,
            invitations,
        })
    }

    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    pub fn account_by_email(&self, email: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
    }

    pub fn ou(&self, id: &str) -> Option<&OrgUnit> {
        self.ous.iter().find(|o| o.id == id)
    }

    /// The OU named `name` directly under `parent_id`.
    pub fn ou_named(&self, parent_id: &str, name: &str) -> Option<&OrgUnit> {
        self.ous
            .iter()
            .find(|o| o.parent_id == parent_id && o.name == name)
    }

    /// The customer-managed SCP named `name`.
    pub fn policy_named(&self, name: &str) -> Option<&PolicySummary> {
        self.policies
            .iter()
            .find(|p| p.name == name && !p.aws_managed)
    }

    /// Policies attached to `target_id`.
    pub fn policies_of(&self, target_id: &str) -> Vec<&PolicySummary> {
        self.policies
            .iter()
            .filter(|p| {
                self.targets
                    .get(&p.id)
                    .is_some_and(|t| t.iter().any(|x| x == target_id))
            })
            .collect()
    }

    /// Whether `id` is a parent: the root or a known OU.
    pub fn is_parent(&self, id: &str) -> bool {
        id == self.root.id || self.ou(id).is_some()
    }

    /// Accounts and OUs directly inside `parent_id`.
    pub fn children_of(&self, parent_id: &str) -> (Vec<String>, Vec<String>) {
        let mut accounts: Vec<String> = self
            .parent_of
            .iter()
            .filter(|(_, p)| *p == parent_id)
            .map(|(a, _)| a.clone())
            .collect();
        accounts.sort();
        let ous = self
            .ous
            .iter()
            .filter(|o| o.parent_id == parent_id)
            .map(|o| format!("{} ({})", o.name, o.id))
            .collect();
        (accounts, ous)
    }

    /// The newest invitation to `target`.
    pub fn latest_invitation(&self, target: &str) -> Option<&Handshake> {
        self.invitations
            .iter()
            .filter(|h| h.target == target)
            .max_by(|a, b| a.requested_at.cmp(&b.requested_at))
    }
}

/// Shared reads per payer, reused for `max_age` and dropped after any write; loaded once
/// even when many objects ask at the same time.
pub struct SharedReads<T> {
    max_age: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<T>)>>,
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The organization snapshots.
pub type SnapshotCache = SharedReads<OrgSnapshot>;

impl<T> SharedReads<T> {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: Mutex::default(),
            loading: Mutex::default(),
        }
    }

    /// How long a value is reused.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The value for payer `key`, from `load` unless a fresh one is cached.
    pub async fn get_or_load<F, Fut>(&self, key: &str, load: F) -> Result<Arc<T>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        if let Some(s) = self.fresh(key) {
            return Ok(s);
        }
        let gate = self
            .loading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        let _loading = gate.lock().await;
        if let Some(s) = self.fresh(key) {
            return Ok(s);
        }
        let value = Arc::new(load().await?);
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (Instant::now(), value.clone()));
        Ok(value)
    }

    fn fresh(&self, key: &str) -> Option<Arc<T>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.max_age)
            .map(|(_, s)| s.clone())
    }

    /// Forget payer `key`'s value (after a write, or to force a fresh read).
    pub fn invalidate(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

impl SharedReads<OrgSnapshot> {
    /// The organization snapshot of payer `key`.
    pub async fn get(&self, key: &str, conn: &Connection) -> Result<Arc<OrgSnapshot>, Error> {
        self.get_or_load(key, || OrgSnapshot::load(conn)).await
    }
}

impl<T> Default for SharedReads<T> {
    fn default() -> Self {
        Self::new(Duration::from_secs(15))
    }
}
