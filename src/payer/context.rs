//! The payer behind an object: its Payer, an AWS connection made with the Payer's credentials,
//! and the organization snapshot shared by every object of that payer.

use std::sync::Arc;

use crate::api::{LocalRef, Payer};
use crate::aws::Connection;
use crate::error::Error;
use crate::reconcile::{DEPENDENCY_RETRY, ReconcileContext, object_key};

use crate::payer::snapshot::OrgSnapshot;

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
        .payer(namespace, &payer_ref.name)
        .ok_or_else(|| {
            Error::waiting(
                "PayerNotFound",
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
    if let Some(err) = crate::payer::claimed_elsewhere(&payer, &claimants) {
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
        let snapshot = ctx.snapshots.get(&key, &conn).await?;
        if snapshot.organization.management_account_id != payer.spec.account_id {
            return Err(Error::terminal(
                "PayerNotManagementAccount",
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
        match ctx.snapshots.update(&self.key, write.clone()) {
            Some(s) => self.snapshot = s,
            None => write(Arc::make_mut(&mut self.snapshot)),
        }
    }

    /// Drop the cached snapshot after a write and read a fresh one.
    pub async fn refresh(&mut self, ctx: &ReconcileContext) -> Result<(), Error> {
        ctx.snapshots.invalidate(&self.key);
        self.snapshot = ctx.snapshots.get(&self.key, &self.conn).await?;
        Ok(())
    }

    /// Forget the snapshot after a write (the next reader loads a fresh one).
    pub fn invalidate(&self, ctx: &ReconcileContext) {
        ctx.snapshots.invalidate(&self.key);
    }
}
