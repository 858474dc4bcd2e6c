//! One object of any kind in the controller: finalizer first, then the kind's reconcile or
//! cleanup; the status server-side applied when it changed; Events; requeue by outcome. An
//! object that cannot be read gets a Warning Event naming the field at fault.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use crate::api::FINALIZER;
use crate::error::Error;
use crate::reconcile::catalog::Guarded;
use crate::reconcile::kind::Kind;
use crate::reconcile::management;
use crate::reconcile::reasons;
use crate::reconcile::run::Run;
use crate::reconcile::{EventNote, KindOutcome, Mode};

use super::context::{Context, FIELD_MANAGER, sync_key};

/// Reconcile one object of kind `K`: finalizer first, then apply or cleanup.
pub async fn reconcile_kind<K: Kind>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let kind = K::kind(&());
    let started = Instant::now();
    ctx.metrics.reconcile_started(&kind);
    let namespace = obj.namespace().unwrap_or_default();
    let key = sync_key(&kind, &namespace, &obj.name_any());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    // Without the finalizer, kube only adds it (the change brings the object back at once):
    // that pass reconciles nothing, so it does not count towards the first full sync.
    let adds_finalizer_only =
        obj.meta().deletion_timestamp.is_none() && !obj.finalizers().iter().any(|f| f == FINALIZER);
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply(o, ctx.clone()).await,
            FinalizerEvent::Cleanup(o) => cleanup(o, ctx.clone()).await,
        }
    })
    .await
    .map_err(Error::from);
    ctx.metrics.reconcile_finished(&kind, started.elapsed());
    if !adds_finalizer_only {
        ctx.sync.reconciled(&key);
    }
    if result.is_ok() {
        ctx.backoffs.reset(&key);
    }
    result
}

/// As [`reconcile_kind`] for an object of a watch cache: one that could not be deserialized
/// (a wrong type in a field) gets a Warning Event and waits for a change.
pub async fn reconcile_guarded<K: Kind>(
    obj: Arc<Guarded<K>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let invalid = match &obj.0 {
        Ok(valid) => return reconcile_kind(Arc::new(valid.clone()), ctx).await,
        Err(invalid) => invalid,
    };
    let kind = K::kind(&());
    let ns = obj.namespace().unwrap_or_default();
    warn!(kind = %kind, name = %obj.name_any(), namespace = %ns, error = %invalid.error, "object cannot be read; fix it");
    let note = EventNote {
        warning: true,
        reason: reasons::INVALID_OBJECT.into(),
        note: format!("the operator cannot read this {kind}: {}", invalid.error),
    };
    publish_for(&ctx, obj.as_ref(), &note).await;
    ctx.sync.reconciled(&sync_key(&kind, &ns, &obj.name_any()));
    Ok(Action::await_change())
}

/// Server-side apply the status of `outcome` (the part the operator's field manager owns)
/// when it changed.
async fn write_status<K: Kind>(
    obj: &K,
    ctx: &Context,
    outcome: &KindOutcome<K::Status>,
) -> Result<(), Error> {
    if !outcome.status_changed(obj.status()) {
        return Ok(());
    }
    let kind = K::kind(&());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": kind,
        "status": K::owned_status(&outcome.status),
    });
    crate::before_status!(kind);
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

async fn apply<K: Kind>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Paused and Observe objects are held back here (no AWS call / no AWS write).
    let outcome = management::reconcile(obj.as_ref(), &ctx.reconcile, Run::now(Mode::Apply))
        .await
        .outcome;
    write_status(obj.as_ref(), &ctx, &outcome).await?;
    for note in &outcome.events {
        publish_for(&ctx, obj.as_ref(), note).await;
    }
    match outcome.result {
        Ok(v) => Ok(Action::requeue(v.requeue.unwrap_or(ctx.settings.resync))),
        Err(Error::Waiting { retry_after, .. }) => Ok(Action::requeue(retry_after)),
        Err(err) if err.is_terminal() => {
            let kind = K::kind(&());
            ctx.metrics
                .reconcile_failed(&kind, err.metric_label(), err.reason());
            warn!(kind = %kind, name = %obj.name_any(), namespace = ?obj.namespace(), reason = err.reason(), error = %err, "object needs attention");
            Ok(Action::requeue(ctx.settings.terminal_recheck))
        }
        Err(err) => Err(err),
    }
}

async fn cleanup<K: Kind>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    // A paused or Observe object is released without any AWS call.
    let outcome = management::cleanup(obj.as_ref(), &ctx.reconcile, Run::now(Mode::Apply))
        .await
        .outcome;
    // The object may be going away; a failed status write must not block the cleanup. A
    // kind without AWS cleanup is only released: its status stays as it was.
    if K::AWS_CLEANUP
        && let Err(e) = write_status(obj.as_ref(), &ctx, &outcome).await
    {
        warn!(kind = %K::kind(&()), name = %obj.name_any(), error = %e, "could not write status during deletion");
    }
    for note in &outcome.events {
        publish_for(&ctx, obj.as_ref(), note).await;
    }
    // Ok lets kube remove the finalizer; an error keeps it (and goes to the error policy).
    outcome.result.map(|_| Action::await_change())
}

/// Record `note` as a Kubernetes Event about `obj`.
pub async fn publish_for<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, note: &EventNote) {
    let event = Event {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason.clone(),
        note: Some(note.note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, "could not record event");
    }
}

/// Failures: waits come back when they said, terminal errors at the slow re-check,
/// retryable ones with per-object exponential backoff and jitter.
pub fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    err: &Error,
    ctx: Arc<Context>,
) -> Action {
    let delay = retry_delay(obj.as_ref(), err, &ctx);
    if !matches!(err, Error::Waiting { .. }) {
        warn!(kind = %K::kind(&()), name = %obj.name_any(), namespace = ?obj.namespace(), reason = err.reason(), error = %err, retry_in_secs = delay.as_secs_f64(), "reconcile failed");
    }
    Action::requeue(delay)
}

/// How long `obj` waits after `err`: what a wait asked for, the slow re-check for terminal
/// errors, otherwise the object's next exponential backoff step. Counts real failures.
pub fn retry_delay<K: Resource<DynamicType = ()>>(obj: &K, err: &Error, ctx: &Context) -> Duration {
    let kind = K::kind(&());
    let key = sync_key(&kind, &obj.namespace().unwrap_or_default(), &obj.name_any());
    if let Error::Waiting { retry_after, .. } = err {
        return *retry_after;
    }
    ctx.metrics
        .reconcile_failed(&kind, err.metric_label(), err.reason());
    if err.is_terminal() {
        ctx.settings.terminal_recheck
    } else {
        ctx.backoffs.next_delay(&key)
    }
}

/// Which changes of an object trigger a reconcile: spec (generation), annotations,
/// finalizers and deletion; not our own status writes.
pub fn trigger_fingerprint<K: Resource>(p: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.meta().generation.hash(&mut h);
    p.meta().annotations.hash(&mut h);
    p.meta().finalizers.hash(&mut h);
    p.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}
