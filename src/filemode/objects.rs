//! The objects of a file-mode run, of any kind, in reconcile order: each one planned,
//! applied or deleted by its kind's reconciler, its status kept in the catalog as the
//! controller would store it.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::error::Error;
use crate::reconcile::kind::{Kind, KindVisitor};
use crate::reconcile::report::ObjectReport;
use crate::reconcile::run::Run;
use crate::reconcile::{Mode, ReconcileContext, Verdict};

use super::load::Manifests;
use crate::reconcile::management;

use super::report::managed_report;

/// In `apply`, objects waiting at most this long for something in progress (an account
/// creation, a dependency created earlier in the same run) are looked at again until
/// `--wait` runs out; longer waits (an invitation, a closure budget) are reported as they are.
const IN_PROGRESS_MAX: Duration = Duration::from_secs(20);

/// How soon `apply` tries an object again after a transient AWS failure.
const RETRY_TRANSIENT: Duration = Duration::from_secs(1);

/// One object of any kind (see the module docs).
#[async_trait]
pub trait FileObject: Send + Sync {
    /// Whether the object is of kind `kind` (and, when given, `namespace`/`name`).
    fn is(&self, kind: &str, key: Option<(&str, &str)>) -> bool;
    /// Whether deleting it may change AWS (else there is no deletion step).
    fn aws_cleanup(&self) -> bool;
    /// Put the object (as it stands) into the reconcilers' catalog.
    fn put_into(&self, ctx: &ReconcileContext);
    /// The object itself (for [`super::planned`]).
    fn object(&self) -> &(dyn std::any::Any + Send + Sync);
    /// What would change, at `now`.
    async fn plan(&self, ctx: &ReconcileContext, now: Timestamp) -> ObjectReport;
    /// Reconcile, store the new status, and say whether (and when) to look again.
    async fn apply(&mut self, ctx: &ReconcileContext) -> (ObjectReport, Option<Duration>);
    /// Run the deletion path; once released, the object leaves the catalog.
    async fn delete(&mut self, ctx: &ReconcileContext) -> (ObjectReport, Option<Duration>);
}

/// An object of kind `K`.
struct Slot<K>(K);

#[async_trait]
impl<K: Kind> FileObject for Slot<K> {
    fn is(&self, kind: &str, key: Option<(&str, &str)>) -> bool {
        K::kind(&()) == kind
            && key.is_none_or(|(namespace, name)| {
                self.0.name_any() == name && self.0.namespace().as_deref() == Some(namespace)
            })
    }

    fn aws_cleanup(&self) -> bool {
        K::AWS_CLEANUP
    }

    fn put_into(&self, ctx: &ReconcileContext) {
        ctx.catalog.put(self.0.clone());
    }

    fn object(&self) -> &(dyn std::any::Any + Send + Sync) {
        &self.0
    }

    async fn plan(&self, ctx: &ReconcileContext, now: Timestamp) -> ObjectReport {
        let managed = management::reconcile(&self.0, ctx, Run::new(Mode::Plan, now)).await;
        // What an Observe object read from AWS (its account id, its ARN) is what the objects
        // after it find it by, as in `apply`; a plan stores nothing else.
        if managed.management == management::Management::Observe {
            let mut observed = self.0.clone();
            *observed.status_mut() = Some(managed.outcome.status.clone());
            ctx.catalog.put(observed);
        }
        managed_report(&self.0, &managed, true)
    }

    async fn apply(&mut self, ctx: &ReconcileContext) -> (ObjectReport, Option<Duration>) {
        let managed = management::reconcile(&self.0, ctx, Run::now(Mode::Apply)).await;
        crate::before_status!(K::kind(&()));
        *self.0.status_mut() = Some(managed.outcome.status.clone());
        ctx.catalog.put(self.0.clone());
        let again = in_progress(&managed.outcome.result);
        (managed_report(&self.0, &managed, false), again)
    }

    async fn delete(&mut self, ctx: &ReconcileContext) -> (ObjectReport, Option<Duration>) {
        let managed = management::cleanup(&self.0, ctx, Run::now(Mode::Apply)).await;
        let outcome = &managed.outcome;
        crate::before_status!(K::kind(&()));
        *self.0.status_mut() = Some(outcome.status.clone());
        let again = in_progress(&outcome.result);
        if outcome.result.is_ok() && again.is_none() {
            ctx.catalog
                .remove::<K>(&self.0.namespace().unwrap_or_default(), &self.0.name_any());
        } else {
            ctx.catalog.put(self.0.clone());
        }
        (managed_report(&self.0, &managed, false), again)
    }
}

/// When to look again at an object whose work is still in progress, or that met a
/// transient failure (throttling, 5xx: tried again while `--wait` lasts).
fn in_progress(result: &Result<Verdict, Error>) -> Option<Duration> {
    let after = match result {
        Ok(v) => v.requeue?,
        Err(Error::Waiting { retry_after, .. }) => *retry_after,
        Err(e) if !e.is_terminal() => RETRY_TRANSIENT,
        Err(_) => return None,
    };
    (after <= IN_PROGRESS_MAX).then_some(after)
}

/// The objects of `manifests` in reconcile order: kinds in the order of the kind list, the
/// objects of a kind in the kind's file order.
pub fn ordered(manifests: &mut Manifests) -> Vec<Box<dyn FileObject>> {
    let mut order = Order {
        manifests,
        objects: Vec::new(),
    };
    crate::kinds::visit(&mut order);
    order.objects
}

struct Order<'a> {
    manifests: &'a mut Manifests,
    objects: Vec<Box<dyn FileObject>>,
}

impl KindVisitor for Order<'_> {
    fn visit<K: Kind>(&mut self) {
        let mut objects = self.manifests.take::<K>();
        K::file_order(&mut objects);
        self.objects.extend(
            objects
                .into_iter()
                .map(|o| Box::new(Slot(o)) as Box<dyn FileObject>),
        );
    }
}
