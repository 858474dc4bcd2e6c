//! The Billing Conductor side of the payer behind a billing object: the AWS connection made
//! with the Payer's credentials, the shared Billing Conductor snapshot of that payer, and the
//! one write path of the billing kinds ([`BillingContext::write`]), which goes through
//! [`Run::write`] and records what a write did into the shared snapshot, so that neither this
//! object nor any other reads everything again because of it.

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use crate::api::LocalRef;
use crate::aws::Connection;
use crate::aws::billing::BillingApi;
use crate::error::Error;
use crate::payer::context::payer_connection;
use crate::payer::snapshot::{SharedReads, Write};
use crate::reconcile::reasons::RELEASED;
use crate::reconcile::run::Run;
use crate::reconcile::{Change, ReconcileContext, Verdict};

use super::snapshot::BillingSnapshot;

/// AWS accepts at most this many rules or accounts in one associate or disassociate call.
pub const BATCH: usize = 30;

/// The payer of a billing object: its key, its AWS connection and its Billing Conductor
/// snapshot (read once per payer and reused).
pub struct BillingContext {
    pub key: String,
    pub conn: Connection,
    pub snapshot: Arc<BillingSnapshot>,
    shared: Arc<SharedReads<BillingSnapshot>>,
}

/// What a deletion says when the Payer is gone: nothing in AWS can be changed any more.
pub fn payer_gone() -> Verdict {
    Verdict::ready(RELEASED, "the Payer is gone; nothing in AWS was changed")
}

impl BillingContext {
    /// Resolve `payer_ref` in `namespace`, connect, and load (or reuse) the snapshot of the
    /// billing periods open at `now`. Waits while the Payer does not exist.
    pub async fn resolve(
        namespace: &str,
        payer_ref: &LocalRef,
        ctx: &ReconcileContext,
        now: Timestamp,
    ) -> Result<Self, Error> {
        let (key, _payer, conn) = payer_connection(namespace, payer_ref, ctx).await?;
        Self::load(key, conn, ctx, now).await
    }

    /// Like [`BillingContext::resolve`], for a deletion: `None` when the Payer is gone
    /// (see [`payer_gone`]).
    pub async fn resolve_unless_gone(
        namespace: &str,
        payer_ref: &LocalRef,
        ctx: &ReconcileContext,
        now: Timestamp,
    ) -> Result<Option<Self>, Error> {
        match payer_connection(namespace, payer_ref, ctx).await {
            Ok((key, _payer, conn)) => Self::load(key, conn, ctx, now).await.map(Some),
            Err(Error::Waiting { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn load(
        key: String,
        conn: Connection,
        ctx: &ReconcileContext,
        now: Timestamp,
    ) -> Result<Self, Error> {
        let snapshot = ctx
            .shared::<SharedReads<BillingSnapshot>>()
            .get_or_load(&key, || BillingSnapshot::load(&conn, now))
            .await?;
        Ok(Self {
            key,
            conn,
            snapshot,
            shared: ctx.shared::<SharedReads<BillingSnapshot>>(),
        })
    }

    /// The Billing Conductor seam of this payer (for reads, and for the calls handed to
    /// [`BillingContext::write`]).
    pub fn api(&self) -> Arc<dyn BillingApi> {
        self.conn.billing.clone()
    }

    /// Apply one of the operator's own writes to the shared snapshot and to this one.
    pub fn record(&mut self, write: impl Fn(&mut BillingSnapshot) + Send + Sync + 'static) {
        let write: Write<BillingSnapshot> = Arc::new(write);
        match self.shared.update(&self.key, write.clone()) {
            Some(s) => self.snapshot = s,
            None => write(Arc::make_mut(&mut self.snapshot)),
        }
    }

    /// Forget the shared snapshot after writes whose effect is not recorded (the next reader
    /// loads a fresh one).
    pub fn invalidate(&self) {
        self.shared.invalidate(&self.key);
    }

    /// The Billing Conductor write path: [`Run::write`] records `change` and makes `call`
    /// (apply mode only); what `record` makes of the answer is then applied to the snapshot.
    pub async fn write<T, F, Fut, W>(
        &mut self,
        run: &mut Run,
        change: Change,
        call: F,
        record: impl FnOnce(&T) -> W,
    ) -> Result<Option<T>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
        W: Fn(&mut BillingSnapshot) + Send + Sync + 'static,
    {
        let answer = run.write(change, call).await?;
        if let Some(done) = &answer {
            self.record(record(done));
        }
        Ok(answer)
    }

    /// One change carried out in batches of [`BATCH`] (associations): `call` for each batch
    /// of `items`, each batch recorded into the snapshot (by `record`) as soon as AWS took
    /// it. Returns whether the calls were made (apply mode).
    pub async fn write_batches<'a, F, Fut, R, W>(
        &mut self,
        run: &mut Run,
        change: Change,
        items: &'a [String],
        call: F,
        record: R,
    ) -> Result<bool, Error>
    where
        F: Fn(&'a [String]) -> Fut,
        Fut: Future<Output = Result<(), Error>>,
        R: Fn(&'a [String]) -> W,
        W: Fn(&mut BillingSnapshot) + Send + Sync + 'static,
    {
        let this = &mut *self;
        let done = run
            .write(change, move || async move {
                for batch in items.chunks(BATCH) {
                    call(batch).await?;
                    this.record(record(batch));
                }
                Ok(())
            })
            .await?;
        Ok(done.is_some())
    }
}
