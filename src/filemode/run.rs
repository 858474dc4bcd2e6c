//! `plan`, `apply` and the deletion path over the objects of a folder of manifests: one
//! reconcile context whose catalog holds every object, objects in reconcile order, and in
//! `apply` objects in progress looked at again (sooner when a wake-up names them) until
//! `--wait` runs out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::FutureExt;
use futures::stream::{BoxStream, StreamExt};
use k8s_openapi::jiff::Timestamp;

use crate::aws::AwsConnect;
use crate::reconcile::catalog::Catalog;
use crate::reconcile::kind::{Kind, KindVisitor};
use crate::reconcile::report::{ObjectReport, Report};
use crate::reconcile::trigger::WakeUp;
use crate::reconcile::{Change, ReconcileContext};

use crate::billing::snapshot::BillingSnapshot;
use crate::payer::snapshot::{FOR_THE_PASS, MAX_AGE, SharedReads, SnapshotCache};
use crate::reconcile::tags::TagRefresh;

use super::load::Manifests;
use super::objects::{FileObject, ordered};

/// In `apply`, the longest pause before an object in progress is looked at again (an
/// object waiting for another one of the same run sees it change within this).
const FILE_POLL: Duration = Duration::from_secs(2);

/// In the deletion path, the longest pause before objects in progress are looked at again.
const DELETE_POLL: Duration = Duration::from_secs(2);

/// How a `plan` or `apply` reads AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Compare tags with AWS when they are due (`--refresh-tags`, the default): in file mode,
    /// where the manifests rarely carry a status, that is one ListTagsForResource per account
    /// on every run. `false`: tags are read only for an object about to be written (its
    /// ownership is checked first); tag drift is neither reported nor corrected.
    pub refresh_tags: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { refresh_tags: true }
    }
}

/// The objects in order and a context whose catalog holds all of them.
pub(super) fn prepare(
    mut manifests: Manifests,
    connector: Arc<dyn AwsConnect>,
    options: RunOptions,
) -> (Vec<Box<dyn FileObject>>, ReconcileContext) {
    let objects = ordered(&mut manifests);
    // Tenancy (issue 17): file mode acts with the invoker's own identity; grants are not
    // consulted.
    let ctx = ReconcileContext::new(connector, Arc::new(manifests.secrets))
        .with_catalog(Arc::new(Catalog::new()))
        .with_shared(Arc::new(crate::payer::tenancy::Grants(Arc::new(
            crate::payer::tenancy::Unrestricted,
        ))))
        // Every list read once per payer and pass (expired between passes by `next_pass`).
        .with_shared(Arc::new(SnapshotCache::new(FOR_THE_PASS)))
        .with_shared(Arc::new(SharedReads::<BillingSnapshot>::new(FOR_THE_PASS)))
        .with_shared(Arc::new(TagRefresh {
            skip_audit: !options.refresh_tags,
        }));
    for o in &objects {
        o.put_into(&ctx);
    }
    (objects, ctx)
}

/// Observe AWS and report what would change. Writes nothing.
pub async fn plan(manifests: Manifests, connector: Arc<dyn AwsConnect>) -> Report {
    plan_with(manifests, connector, RunOptions::default()).await
}

/// As [`plan`], with `options`.
pub async fn plan_with(
    manifests: Manifests,
    connector: Arc<dyn AwsConnect>,
    options: RunOptions,
) -> Report {
    let (objects, ctx) = prepare(manifests, connector, options);
    plan_objects(&objects, &ctx).await
}

/// Plan every object of `objects` with `ctx`, in order. Writes nothing.
pub(super) async fn plan_objects(
    objects: &[Box<dyn FileObject>],
    ctx: &ReconcileContext,
) -> Report {
    let now = Timestamp::now();
    let mut report = Report::default();
    for o in objects {
        let mut planned = o.plan(ctx, now).await;
        // What depends on an object new in this change plans against a placeholder of it.
        super::planned::record(o.object(), &mut planned, ctx);
        report.objects.push(planned);
    }
    report
}

/// Reconcile every object in dependency order, again while something it waits for is in
/// progress (at most `wait`), and report the resulting statuses.
pub async fn apply(manifests: Manifests, connector: Arc<dyn AwsConnect>, wait: Duration) -> Report {
    apply_with_insights(manifests, connector, wait, Arc::default()).await
}

/// As [`apply`], with `options`.
pub async fn apply_with(
    manifests: Manifests,
    connector: Arc<dyn AwsConnect>,
    wait: Duration,
    options: RunOptions,
) -> Report {
    let (objects, ctx) = prepare(manifests, connector, options);
    apply_objects(objects, ctx, wait).await
}

/// As [`apply`], keeping what the reconcilers learn about costs in `insights` (for metrics).
pub async fn apply_with_insights(
    manifests: Manifests,
    connector: Arc<dyn AwsConnect>,
    wait: Duration,
    insights: Arc<crate::payer::insights::InsightsStore>,
) -> Report {
    let (objects, ctx) = prepare(manifests, connector, RunOptions::default());
    apply_objects(objects, ctx.with_shared(insights), wait).await
}

/// Reconcile `objects` until none is in progress or `wait` has passed.
async fn apply_objects(
    mut objects: Vec<Box<dyn FileObject>>,
    ctx: ReconcileContext,
    wait: Duration,
) -> Report {
    let mut schedule = Schedule::new(objects.len(), Instant::now() + wait);
    // Sooner when something an object waits for ends (an account creation's watcher says so).
    let mut wake_ups = wake_ups(&ctx);
    loop {
        schedule.apply_due(&mut objects, &ctx).await;
        next_pass(&ctx);
        let Some(next) = schedule.next_due() else {
            break;
        };
        if next > schedule.deadline {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            Some(w) = wake_ups.next() => {
                schedule.wake(&objects, w);
                while let Some(Some(w)) = wake_ups.next().now_or_never() {
                    schedule.wake(&objects, w);
                }
            }
        }
    }
    schedule.report()
}

/// Between two passes over the objects: the shared reads older than the controller's
/// [`MAX_AGE`] are read again by the next pass (objects in progress see what changed), the
/// others are reused.
fn next_pass(ctx: &ReconcileContext) {
    ctx.shared::<SnapshotCache>().expire_older_than(MAX_AGE);
    ctx.shared::<SharedReads<BillingSnapshot>>()
        .expire_older_than(MAX_AGE);
}

/// Where each object of an `apply` stands: its report with every change made so far, whether
/// it is still in progress, and when it is looked at again.
struct Schedule {
    reports: Vec<Option<ObjectReport>>,
    changes: Vec<Vec<Change>>,
    pending: Vec<bool>,
    due: Vec<Instant>,
    deadline: Instant,
}

impl Schedule {
    fn new(count: usize, deadline: Instant) -> Self {
        Self {
            reports: vec![None; count],
            changes: vec![Vec::new(); count],
            pending: vec![true; count],
            due: vec![Instant::now(); count],
            deadline,
        }
    }

    /// Reconcile every pending object that is due (at most `FILE_POLL` after its last look).
    async fn apply_due(&mut self, objects: &mut [Box<dyn FileObject>], ctx: &ReconcileContext) {
        for (i, o) in objects.iter_mut().enumerate() {
            if !self.pending[i] || self.due[i] > Instant::now() {
                continue;
            }
            let (mut report, again) = o.apply(ctx).await;
            self.changes[i].extend(report.changes.iter().cloned());
            report.changes = self.changes[i].clone();
            self.reports[i] = Some(report);
            self.pending[i] = again.is_some();
            if let Some(d) = again {
                self.due[i] = Instant::now() + d.min(FILE_POLL);
            }
        }
    }

    /// When the next pending object is due.
    fn next_due(&self) -> Option<Instant> {
        (0..self.due.len())
            .filter(|i| self.pending[*i])
            .map(|i| self.due[i])
            .min()
    }

    /// Make the objects a wake-up names due now (every object of the kind when wake-ups
    /// were missed).
    fn wake(&mut self, objects: &[Box<dyn FileObject>], (kind, w): (String, WakeUp)) {
        for (i, o) in objects.iter().enumerate() {
            let named = match &w {
                WakeUp::Object { namespace, name } => o.is(&kind, Some((namespace, name))),
                WakeUp::Missed => o.is(&kind, None),
            };
            if named {
                self.due[i] = Instant::now();
            }
        }
    }

    fn report(self) -> Report {
        Report {
            objects: self.reports.into_iter().flatten().collect(),
        }
    }
}

/// The wake-ups of every kind that declares a source of them, with the kind's name.
fn wake_ups(ctx: &ReconcileContext) -> BoxStream<'static, (String, WakeUp)> {
    let mut sources = WakeUpSources {
        ctx,
        streams: Vec::new(),
    };
    crate::kinds::visit(&mut sources);
    futures::stream::select_all(sources.streams).boxed()
}

struct WakeUpSources<'a> {
    ctx: &'a ReconcileContext,
    streams: Vec<BoxStream<'static, (String, WakeUp)>>,
}

impl KindVisitor for WakeUpSources<'_> {
    fn visit<K: Kind>(&mut self) {
        for source in K::triggers().iter().filter_map(|t| t.wake_up_source()) {
            let kind = K::kind(&()).into_owned();
            self.streams
                .push(source(self.ctx).map(move |w| (kind.clone(), w)).boxed());
        }
    }
}

/// Run the deletion path of every object once it is deleted (what the controller does before
/// it removes its finalizer), in reverse dependency order, until each is released or `wait`
/// has passed. Each object's `deletionPolicy` decides what happens in AWS; a kind without
/// AWS cleanup (Payer) has no deletion step. The crash tests use it; there is no subcommand
/// for it (deleting is `kubectl delete`'s job).
pub async fn delete(
    manifests: Manifests,
    connector: Arc<dyn AwsConnect>,
    wait: Duration,
) -> Report {
    let (mut objects, ctx) = prepare(manifests, connector, RunOptions::default());
    objects.reverse();
    let started = Instant::now();
    let mut reports: Vec<Option<ObjectReport>> = vec![None; objects.len()];
    let mut pending: Vec<bool> = objects.iter().map(|o| o.aws_cleanup()).collect();
    loop {
        let mut next_poll: Option<Duration> = None;
        for (i, o) in objects.iter_mut().enumerate() {
            if !pending[i] {
                continue;
            }
            let (report, again) = o.delete(&ctx).await;
            reports[i] = Some(report);
            pending[i] = again.is_some();
            if let Some(d) = again {
                next_poll = Some(next_poll.map_or(d, |n: Duration| n.min(d)));
            }
        }
        let Some(poll) = next_poll else { break };
        next_pass(&ctx);
        if started.elapsed() + poll.min(DELETE_POLL) > wait {
            break;
        }
        tokio::time::sleep(poll.min(DELETE_POLL)).await;
    }
    Report {
        objects: reports.into_iter().flatten().collect(),
    }
}
