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
use crate::reconcile::reasons::{AWS_BAD_RESPONSE, NO_ORGANIZATION};

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
    /// Lookups by account id and by policy target, built on first use and dropped by every
    /// edit made through the methods below (a lookup per object over lists of every account
    /// made a pass over N objects cost N² string comparisons). Start with
    /// `Default::default()`.
    pub index: SnapshotIndex,
}

/// See [`OrgSnapshot::index`].
#[derive(Clone, Debug, Default)]
pub struct SnapshotIndex(std::sync::OnceLock<Index>);

#[derive(Clone, Debug)]
pub struct Index {
    /// Position in `accounts` of each account id.
    account: HashMap<String, usize>,
    /// Positions in `policies` of the policies attached to each target id.
    policies_of: HashMap<String, Vec<usize>>,
}

impl OrgSnapshot {
    /// Read the organization through `conn`.
    pub async fn load(conn: &Connection) -> Result<Self, Error> {
        let organization = conn
            .organizations
            .describe_organization()
            .await?
            .ok_or_else(|| {
                Error::terminal(
                    NO_ORGANIZATION,
                    "the payer's account is not in an organization",
                )
            })?;
        Self::load_for(conn, organization).await
    }

    /// Read the rest of the organization through `conn`, the organization itself being known
    /// (the Payer has just described it: no second DescribeOrganization).
    pub async fn load_for(conn: &Connection, organization: Organization) -> Result<Self, Error> {
        let orgs = conn.organizations.as_ref();
        let root = orgs
            .list_roots()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::retryable(AWS_BAD_RESPONSE, "ListRoots returned no root"))?;
        // Creations in progress before accounts: a creation that finishes between the two
        // reads is then in one of them (in the other order it could be in neither, and its
        // account would be created a second time).
        let creates_in_progress = orgs.list_creates_in_progress().await?;
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
            index: SnapshotIndex::default(),
        })
    }

    fn index(&self) -> &Index {
        self.index.0.get_or_init(|| {
            let account = self
                .accounts
                .iter()
                .enumerate()
                .map(|(i, a)| (a.id.clone(), i))
                .collect();
            let mut policies_of: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, p) in self.policies.iter().enumerate() {
                for t in self.targets.get(&p.id).into_iter().flatten() {
                    let at = policies_of.entry(t.clone()).or_default();
                    if !at.contains(&i) {
                        at.push(i);
                    }
                }
            }
            Index {
                account,
                policies_of,
            }
        })
    }

    /// Forget the lookups (every edit calls it).
    fn edited(&mut self) {
        self.index = SnapshotIndex::default();
    }

    pub fn account(&self, id: &str) -> Option<&Account> {
        self.index()
            .account
            .get(id)
            .and_then(|i| self.accounts.get(*i))
            .filter(|a| a.id == id)
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
        self.index()
            .policies_of
            .get(target_id)
            .into_iter()
            .flatten()
            .filter_map(|i| self.policies.get(*i))
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

    /// An account the operator saw join (created or invited): it starts in the root.
    pub fn add_account(&mut self, account: &Account) {
        self.edited();
        match self.accounts.iter_mut().find(|a| a.id == account.id) {
            Some(a) => *a = account.clone(),
            None => self.accounts.push(account.clone()),
        }
        self.parent_of
            .entry(account.id.clone())
            .or_insert_with(|| self.root.id.clone());
        self.creates_in_progress
            .retain(|c| c.account_id.as_deref() != Some(account.id.as_str()));
    }

    pub fn remove_account(&mut self, account_id: &str) {
        self.edited();
        self.accounts.retain(|a| a.id != account_id);
        self.parent_of.remove(account_id);
        for t in self.targets.values_mut() {
            t.retain(|x| x != account_id);
        }
    }

    pub fn set_parent(&mut self, account_id: &str, parent_id: &str) {
        self.edited();
        self.parent_of
            .insert(account_id.to_string(), parent_id.to_string());
    }

    pub fn attach(&mut self, policy_id: &str, target_id: &str) {
        self.edited();
        let t = self.targets.entry(policy_id.to_string()).or_default();
        if !t.iter().any(|x| x == target_id) {
            t.push(target_id.to_string());
        }
    }

    pub fn detach(&mut self, policy_id: &str, target_id: &str) {
        self.edited();
        if let Some(t) = self.targets.get_mut(policy_id) {
            t.retain(|x| x != target_id);
        }
    }

    pub fn add_ou(&mut self, ou: &OrgUnit) {
        self.edited();
        match self.ous.iter_mut().find(|o| o.id == ou.id) {
            Some(o) => *o = ou.clone(),
            None => self.ous.push(ou.clone()),
        }
    }

    pub fn rename_ou(&mut self, ou_id: &str, name: &str) {
        self.edited();
        if let Some(o) = self.ous.iter_mut().find(|o| o.id == ou_id) {
            o.name = name.to_string();
        }
    }

    pub fn remove_ou(&mut self, ou_id: &str) {
        self.edited();
        self.ous.retain(|o| o.id != ou_id);
        for t in self.targets.values_mut() {
            t.retain(|x| x != ou_id);
        }
    }

    pub fn add_policy(&mut self, policy: &PolicySummary) {
        self.edited();
        match self.policies.iter_mut().find(|p| p.id == policy.id) {
            Some(p) => *p = policy.clone(),
            None => self.policies.push(policy.clone()),
        }
        self.targets.entry(policy.id.clone()).or_default();
    }

    pub fn remove_policy(&mut self, policy_id: &str) {
        self.edited();
        self.policies.retain(|p| p.id != policy_id);
        self.targets.remove(policy_id);
    }

    /// A CreateAccount request the operator made.
    pub fn add_create(&mut self, create: &CreateStatus) {
        self.edited();
        if !self
            .creates_in_progress
            .iter()
            .any(|c| c.request_id == create.request_id)
        {
            self.creates_in_progress.push(create.clone());
        }
    }

    pub fn add_invitation(&mut self, handshake: &Handshake) {
        self.edited();
        match self.invitations.iter_mut().find(|h| h.id == handshake.id) {
            Some(h) => *h = handshake.clone(),
            None => self.invitations.push(handshake.clone()),
        }
    }

    pub fn set_invitation_state(&mut self, handshake_id: &str, state: &str) {
        self.edited();
        if let Some(h) = self.invitations.iter_mut().find(|h| h.id == handshake_id) {
            h.state = state.to_string();
        }
    }

    /// The newest invitation to `target`.
    pub fn latest_invitation(&self, target: &str) -> Option<&Handshake> {
        self.invitations
            .iter()
            .filter(|h| h.target == target)
            .max_by(|a, b| a.requested_at.cmp(&b.requested_at))
    }
}

/// One of the operator's own writes, applied to a cached value so that readers see it
/// without everything being read again. Applied at most twice (to the cached value and to a
/// value being loaded while the write happened), so it must be idempotent.
pub type Write<T> = Arc<dyn Fn(&mut T) + Send + Sync>;

struct Slot<T> {
    value: Option<(Instant, Arc<T>)>,
    /// Number of writes recorded so far.
    seq: u64,
    /// Writes recorded while a load was running, replayed onto what it read.
    journal: Vec<(u64, Write<T>)>,
    loading: bool,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            value: None,
            seq: 0,
            journal: Vec::new(),
            loading: false,
        }
    }
}

/// Shared reads per payer, reused for `max_age`; loaded once even when many objects ask at
/// the same time. The operator's own writes are applied to the cached value (`update`)
/// instead of dropping it, so a burst of writes does not turn into a burst of full reads.
pub struct SharedReads<T> {
    max_age: Duration,
    slots: Mutex<HashMap<String, Slot<T>>>,
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    loads: std::sync::atomic::AtomicU64,
}

/// The organization snapshots.
pub type SnapshotCache = SharedReads<OrgSnapshot>;

impl<T: Clone> SharedReads<T> {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            slots: Mutex::default(),
            gates: Mutex::default(),
            loads: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How long a value is reused.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// How many times a value was loaded (all payers).
    pub fn loads(&self) -> u64 {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot<T>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
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
            .gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        let _loading = gate.lock().await;
        if let Some(s) = self.fresh(key) {
            return Ok(s);
        }
        let since = {
            let mut slots = self.lock();
            let slot = slots.entry(key.to_string()).or_default();
            slot.loading = true;
            slot.seq
        };
        self.loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let loaded = load().await;
        let mut slots = self.lock();
        let slot = slots.entry(key.to_string()).or_default();
        slot.loading = false;
        let journal = std::mem::take(&mut slot.journal);
        let mut value = loaded?;
        // Writes made while the lists were being read may be missing from them.
        for (_, write) in journal.iter().filter(|(seq, _)| *seq > since) {
            write(&mut value);
        }
        let value = Arc::new(value);
        slot.value = Some((Instant::now(), value.clone()));
        Ok(value)
    }

    /// Payer `key`'s value if a fresh one is cached (no read).
    pub fn fresh(&self, key: &str) -> Option<Arc<T>> {
        self.lock()
            .get(key)
            .and_then(|s| s.value.as_ref())
            .filter(|(at, _)| at.elapsed() < self.max_age)
            .map(|(_, s)| s.clone())
    }

    /// Apply one of the operator's own writes to payer `key`'s cached value (and to a value
    /// being loaded meanwhile). Returns the updated value, if one is cached.
    pub fn update(&self, key: &str, write: Write<T>) -> Option<Arc<T>> {
        let mut slots = self.lock();
        let slot = slots.entry(key.to_string()).or_default();
        slot.seq += 1;
        if slot.loading {
            slot.journal.push((slot.seq, write.clone()));
        }
        let (_, value) = slot.value.as_mut()?;
        write(Arc::make_mut(value));
        Some(value.clone())
    }

    /// Payer `key`'s cached value, however old (no read).
    pub fn peek(&self, key: &str) -> Option<Arc<T>> {
        self.lock()
            .get(key)
            .and_then(|s| s.value.as_ref())
            .map(|(_, v)| v.clone())
    }

    /// Forget every value read more than `age` ago (all payers). File mode reuses a value for
    /// a whole pass over its objects and calls this between passes, so that a pass reads each
    /// list once and a later pass (objects still in progress) sees what changed meanwhile.
    pub fn expire_older_than(&self, age: Duration) {
        for slot in self.lock().values_mut() {
            if slot
                .value
                .as_ref()
                .is_some_and(|(at, _)| at.elapsed() >= age)
            {
                slot.value = None;
            }
        }
    }

    /// Forget payer `key`'s value (to force a fresh read).
    pub fn invalidate(&self, key: &str) {
        if let Some(slot) = self.lock().get_mut(key) {
            slot.value = None;
        }
    }
}

impl SharedReads<OrgSnapshot> {
    /// The organization snapshot of payer `key`.
    pub async fn get(&self, key: &str, conn: &Connection) -> Result<Arc<OrgSnapshot>, Error> {
        self.get_or_load(key, || OrgSnapshot::load(conn)).await
    }

    /// As [`SharedReads::get`], when the caller has described the organization already.
    pub async fn get_for(
        &self,
        key: &str,
        conn: &Connection,
        organization: Organization,
    ) -> Result<Arc<OrgSnapshot>, Error> {
        self.get_or_load(key, || OrgSnapshot::load_for(conn, organization))
            .await
    }
}

/// How long a shared read is reused by default (the controller's reconcilers; file mode
/// reuses one for a whole pass, see [`SharedReads::expire_older_than`]).
pub const MAX_AGE: Duration = Duration::from_secs(15);

/// Reused until expired explicitly (file mode, between passes).
pub const FOR_THE_PASS: Duration = Duration::MAX;

impl<T: Clone> Default for SharedReads<T> {
    fn default() -> Self {
        Self::new(MAX_AGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(x: u32) -> Write<Vec<u32>> {
        Arc::new(move |v: &mut Vec<u32>| {
            if !v.contains(&x) {
                v.push(x)
            }
        })
    }

    #[tokio::test]
    async fn own_writes_update_the_cached_value_without_a_reload() {
        let reads: SharedReads<Vec<u32>> = SharedReads::new(Duration::from_secs(60));
        assert!(reads.update("p", push(9)).is_none(), "nothing cached yet");
        let v = reads
            .get_or_load("p", || async { Ok(vec![1]) })
            .await
            .unwrap();
        assert_eq!(*v, vec![1]);
        let after = reads.update("p", push(2)).unwrap();
        assert_eq!(*after, vec![1, 2]);
        assert_eq!(*v, vec![1], "a reader's copy does not change under it");
        let again = reads
            .get_or_load("p", || async { panic!("must not load again") })
            .await
            .unwrap();
        assert_eq!(*again, vec![1, 2]);
        assert_eq!(reads.loads(), 1);
        reads.invalidate("p");
        let fresh = reads
            .get_or_load("p", || async { Ok(vec![7]) })
            .await
            .unwrap();
        assert_eq!(*fresh, vec![7]);
        assert_eq!(reads.loads(), 2);
    }

    #[tokio::test]
    async fn a_write_made_while_loading_is_replayed_onto_what_was_loaded() {
        let reads = Arc::new(SharedReads::<Vec<u32>>::new(Duration::from_secs(60)));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let loader = {
            let reads = reads.clone();
            tokio::spawn(async move {
                reads
                    .get_or_load("p", || async move {
                        started_tx.send(()).unwrap();
                        go_rx.await.unwrap();
                        // The lists were read before the write below happened.
                        Ok(vec![1])
                    })
                    .await
                    .unwrap()
            })
        };
        started_rx.await.unwrap();
        reads.update("p", push(5));
        go_tx.send(()).unwrap();
        let loaded = loader.await.unwrap();
        assert_eq!(*loaded, vec![1, 5]);
        // Only writes made during that load are replayed; the journal is empty afterwards.
        reads.invalidate("p");
        let next = reads
            .get_or_load("p", || async { Ok(vec![3]) })
            .await
            .unwrap();
        assert_eq!(*next, vec![3]);
    }

    #[tokio::test]
    async fn a_value_for_the_pass_is_reused_until_expired_between_passes() {
        let reads: SharedReads<Vec<u32>> = SharedReads::new(FOR_THE_PASS);
        reads
            .get_or_load("p", || async { Ok(vec![1]) })
            .await
            .unwrap();
        reads.expire_older_than(Duration::from_secs(3600));
        let kept = reads
            .get_or_load("p", || async { panic!("read within the hour: reused") })
            .await
            .unwrap();
        assert_eq!(*kept, vec![1]);
        reads.expire_older_than(Duration::ZERO);
        let next = reads
            .get_or_load("p", || async { Ok(vec![2]) })
            .await
            .unwrap();
        assert_eq!((next.as_slice(), reads.loads()), (&[2][..], 2));
    }

    fn org() -> OrgSnapshot {
        let account = |id: &str| Account {
            id: id.into(),
            email: format!("{id}@example.com"),
            name: id.into(),
            state: crate::aws::organizations::AccountState::Active,
            joined_method: "CREATED".into(),
        };
        let policy = |id: &str| PolicySummary {
            id: id.into(),
            arn: format!("arn:aws:organizations::1:policy/{id}"),
            name: id.into(),
            description: String::new(),
            aws_managed: false,
        };
        OrgSnapshot {
            organization: Organization {
                id: "o-1".into(),
                arn: "arn".into(),
                feature_set: "ALL".into(),
                management_account_id: "111111111111".into(),
            },
            root: Root {
                id: "r-1".into(),
                arn: "arn".into(),
                scp_enabled: true,
            },
            accounts: vec![account("111111111111"), account("222222222222")],
            ous: Vec::new(),
            parent_of: HashMap::new(),
            policies: vec![policy("p-a"), policy("p-b")],
            targets: HashMap::from([("p-a".to_string(), vec!["222222222222".to_string()])]),
            creates_in_progress: Vec::new(),
            invitations: Vec::new(),
            index: SnapshotIndex::default(),
        }
    }

    #[test]
    fn the_lookups_follow_every_edit() {
        let mut s = org();
        let names = |s: &OrgSnapshot, t: &str| -> Vec<String> {
            s.policies_of(t).iter().map(|p| p.name.clone()).collect()
        };
        assert_eq!(
            s.account("222222222222").map(|a| a.id.as_str()),
            Some("222222222222")
        );
        assert_eq!(names(&s, "222222222222"), ["p-a"]);
        s.remove_account("111111111111");
        assert!(s.account("111111111111").is_none());
        assert!(s.account("222222222222").is_some(), "positions moved");
        s.attach("p-b", "222222222222");
        assert_eq!(names(&s, "222222222222"), ["p-a", "p-b"]);
        s.remove_policy("p-a");
        assert_eq!(names(&s, "222222222222"), ["p-b"]);
        s.detach("p-b", "222222222222");
        assert!(names(&s, "222222222222").is_empty());
        let mut joined = s.accounts[0].clone();
        joined.id = "333333333333".into();
        s.add_account(&joined);
        assert_eq!(s.account("333333333333"), Some(&joined));
    }
}
