//! The payer behind an object: its Payer, an AWS connection made with the Payer's credentials,
//! and the organization snapshot shared by every object of that payer.
//!
//! [`PayerContext`] owns the Organizations write path of every kind that works on the
//! organization: [`PayerContext::write`] makes a write through [`Run::write`] (the change
//! recorded, the call skipped in plan mode) and records what it changed into the shared
//! snapshot, so that no object of the payer lists the organization again because of it.

use std::future::Future;
use std::sync::Arc;

use crate::api::{LocalRef, Payer};
use crate::aws::Connection;
use crate::aws::organizations::Account;
use crate::error::Error;
use crate::reconcile::reasons::{PAYER_NOT_FOUND, PAYER_NOT_MANAGEMENT_ACCOUNT};
use crate::reconcile::run::Run;
use crate::reconcile::{Change, DEPENDENCY_RETRY, ReconcileContext, object_key};

use crate::payer::snapshot::{OrgSnapshot, SnapshotCache};

/// The payer an object belongs to, its AWS connection and the organization snapshot.
pub struct PayerContext {
    pub key: String,
    pub payer: Payer,
    pub conn: Connection,
    pub snapshot: Arc<OrgSnapshot>,
}

/// The Payer `payer_ref` names in `namespace`, its key and an AWS connection to it. Waits
/// while the Payer does not exist.
pub async fn payer_connection(
    namespace: &str,
    payer_ref: &LocalRef,
    ctx: &ReconcileContext,
) -> Result<(String, Payer, Connection), Error> {
    let payer = ctx
        .catalog
        .get::<crate::api::Payer>(namespace, &payer_ref.name)
        .ok_or_else(|| {
            Error::waiting(
                PAYER_NOT_FOUND,
                format!(
                    "Payer {namespace}/{} does not exist; create it or fix spec.payerRef",
                    payer_ref.name
                ),
                DEPENDENCY_RETRY,
            )
        })?;
    // Tenancy (issue 17): the operator's identity only with a PayerGrant (no AWS call
    // otherwise); claims among the Payers that may claim.
    crate::payer::tenancy::authorize(&payer, ctx).await?;
    let claimants = crate::payer::tenancy::claimants(ctx, &payer.spec.account_id).await?;
    if let Some(err) = crate::payer::tenancy::claimed_elsewhere(&payer, &claimants) {
        return Err(err);
    }
    let key = object_key(namespace, &payer_ref.name);
    let credentials = crate::payer::resolve_credentials(&payer, ctx.secrets.as_ref()).await?;
    let conn = ctx
        .connections
        .get_or_connect(&key, ctx.connector.as_ref(), &credentials, payer.region())
        .await?;
    Ok((key, payer, conn))
}

impl PayerContext {
    /// Resolve `payer_ref` in `namespace`, connect and load (or reuse) the snapshot.
    pub async fn resolve(
        namespace: &str,
        payer_ref: &LocalRef,
        ctx: &ReconcileContext,
    ) -> Result<Self, Error> {
        let (key, payer, conn) = payer_connection(namespace, payer_ref, ctx).await?;
        let snapshot = ctx.shared::<SnapshotCache>().get(&key, &conn).await?;
        if snapshot.organization.management_account_id != payer.spec.account_id {
            return Err(Error::terminal(
                PAYER_NOT_MANAGEMENT_ACCOUNT,
                format!(
                    "Payer {key} (account {}) is not the management account of organization {}; see the Payer's status",
                    payer.spec.account_id, snapshot.organization.id
                ),
            ));
        }
        Ok(Self {
            key,
            payer,
            conn,
            snapshot,
        })
    }

    /// Apply one of the operator's own writes to the shared snapshot and to this one, so
    /// neither this object nor any other reads everything again because of it.
    pub fn record(
        &mut self,
        ctx: &ReconcileContext,
        write: impl Fn(&mut OrgSnapshot) + Send + Sync + 'static,
    ) {
        let write: crate::payer::snapshot::Write<OrgSnapshot> = Arc::new(write);
        match ctx
            .shared::<SnapshotCache>()
            .update(&self.key, write.clone())
        {
            Some(s) => self.snapshot = s,
            None => write(Arc::make_mut(&mut self.snapshot)),
        }
    }

    /// One Organizations write of this payer: `call` (given the payer's connection) goes
    /// through [`Run::write`], so `change` is recorded and, in plan mode, the call is not made
    /// (`Ok(None)`). Once AWS took the write, `record` turns its answer into an edit of the
    /// organization snapshot, applied as [`PayerContext::record`] does (to the shared snapshot
    /// and to this context's copy).
    ///
    /// "Already done" answers (a duplicate attachment, an account already gone) are success:
    /// absorb them inside `call` so the edit is still recorded. Map other errors on the result.
    /// The edit must be idempotent (see [`crate::payer::snapshot::Write`]).
    ///
    /// ```ignore
    /// pc.write(
    ///     ctx,
    ///     &mut run,
    ///     change(ChangeAction::Update, format!("account {id}"), format!("move from {from} to {to}")),
    ///     |c| async move { c.organizations.move_account(id, from, to).await },
    ///     |_| {
    ///         let (id, to) = (id.clone(), to.clone());
    ///         move |s: &mut OrgSnapshot| s.set_parent(&id, &to)
    ///     },
    /// )
    /// .await?;
    /// ```
    pub async fn write<T, F, Fut, R, W>(
        &mut self,
        ctx: &ReconcileContext,
        run: &mut Run,
        change: Change,
        call: F,
        record: R,
    ) -> Result<Option<T>, Error>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
        R: FnOnce(&T) -> W,
        W: Fn(&mut OrgSnapshot) + Send + Sync + 'static,
    {
        let conn = self.conn.clone();
        let answer = run.write(change, || call(conn)).await?;
        if let Some(answer) = &answer {
            self.record(ctx, record(answer));
        }
        Ok(answer)
    }

    /// Record an account that joined (a finished creation, an accepted invitation): one
    /// DescribeAccount instead of reading the organization again. `None` while AWS does
    /// not list it yet.
    pub async fn account_joined(
        &mut self,
        ctx: &ReconcileContext,
        account_id: &str,
    ) -> Result<Option<Account>, Error> {
        if let Some(a) = self.snapshot.account(account_id) {
            return Ok(Some(a.clone()));
        }
        let Some(a) = self.conn.organizations.describe_account(account_id).await? else {
            return Ok(None);
        };
        let joined = a.clone();
        self.record(ctx, move |s| s.add_account(&joined));
        Ok(Some(a))
    }

    /// Drop the cached snapshot after a write and read a fresh one.
    pub async fn refresh(&mut self, ctx: &ReconcileContext) -> Result<(), Error> {
        ctx.shared::<SnapshotCache>().invalidate(&self.key);
        self.snapshot = ctx
            .shared::<SnapshotCache>()
            .get(&self.key, &self.conn)
            .await?;
        Ok(())
    }

    /// Forget the snapshot after a write (the next reader loads a fresh one).
    pub fn invalidate(&self, ctx: &ReconcileContext) {
        ctx.shared::<SnapshotCache>().invalidate(&self.key);
    }
}
