//! One reconcile of one object: the accumulator every kind writes into.
//!
//! A [`Run`] owns what a reconcile produces besides its verdict: the changes it made (or, in
//! plan mode, would make), the Events it wants recorded, whether it may write to AWS, and the
//! time it runs at. Every AWS write goes through [`Run::write`], which records the change and
//! skips the call in plan mode, so plan purity lives here and nowhere else. [`Run::finish`]
//! turns the verdict into conditions and the outcome the front doors store.

use std::future::Future;

use k8s_openapi::jiff::Timestamp;

use crate::api::conditions::DesiredCondition;
use crate::error::Error;

use super::{
    Change, ChangeAction, EventNote, KindOutcome, KindStatus, Mode, Verdict, conditions_for,
    ready_change_event,
};

/// The accumulator of one reconcile (see the module docs).
#[derive(Debug)]
pub struct Run {
    mode: Mode,
    now: Timestamp,
    now_text: String,
    changes: Vec<Change>,
    events: Vec<EventNote>,
}

impl Run {
    /// A reconcile in `mode` at `now` (whole seconds are kept: status timestamps are RFC 3339
    /// with second precision).
    pub fn new(mode: Mode, now: Timestamp) -> Self {
        let now = now.round(k8s_openapi::jiff::Unit::Second).unwrap_or(now);
        Self {
            mode,
            now,
            now_text: now.to_string(),
            changes: Vec::new(),
            events: Vec::new(),
        }
    }

    /// A reconcile in `mode` at the current time.
    pub fn now(mode: Mode) -> Self {
        Self::new(mode, Timestamp::now())
    }

    /// A reconcile in `mode` at `now` given as RFC 3339 (tests and fixtures); an unreadable
    /// time falls back to the current one.
    pub fn at(mode: Mode, now: &str) -> Self {
        Self::new(mode, now.parse().unwrap_or_else(|_| Timestamp::now()))
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether AWS writes are carried out (`apply`, the controller) rather than only planned.
    pub fn applying(&self) -> bool {
        self.mode == Mode::Apply
    }

    /// The time this reconcile runs at.
    pub fn time(&self) -> Timestamp {
        self.now
    }

    /// The time this reconcile runs at, as RFC 3339 (what status timestamps hold).
    pub fn timestamp(&self) -> &str {
        &self.now_text
    }

    /// The changes recorded so far.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Record a change whose AWS call is made elsewhere (by a watcher, or a step that needs
    /// several calls); prefer [`Run::write`].
    pub fn record(
        &mut self,
        action: ChangeAction,
        target: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.changes.push(Change {
            action,
            target: target.into(),
            detail: detail.into(),
        });
    }

    /// Record an Event (kept only in apply mode).
    pub fn event(&mut self, warning: bool, reason: &str, note: impl Into<String>) {
        self.events.push(EventNote {
            warning,
            reason: reason.to_string(),
            note: note.into(),
        });
    }

    /// The one AWS write path: record `change`; in apply mode make `call` and return its
    /// answer, in plan mode return `None` without calling. Callers update their snapshot with
    /// what `Some` holds.
    pub async fn write<T, F, Fut>(&mut self, change: Change, call: F) -> Result<Option<T>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.changes.push(change);
        if !self.applying() {
            return Ok(None);
        }
        call().await.map(Some)
    }

    /// Finish a reconcile: conditions from `result` (plus `extra` ones), the observed
    /// generation, an Event when `Ready` changed. In plan mode the stored status is kept and no
    /// Event is recorded (in observe mode, no Event either).
    pub fn finish<S: KindStatus>(
        mut self,
        previous: &S,
        mut status: S,
        result: Result<Verdict, Error>,
        extra: &[DesiredCondition],
        generation: Option<i64>,
    ) -> KindOutcome<S> {
        status.set_conditions(self.conditions(previous, &result, extra, generation));
        status.set_observed_generation(generation);
        if self.applying() {
            self.events.extend(ready_change_event(
                previous.conditions(),
                status.conditions(),
            ));
        } else {
            // A plan never stores its status; Observe hands it to `management`, which keeps
            // only what was read from AWS.
            if self.mode == Mode::Plan {
                status = previous.clone();
            }
            self.events.clear();
        }
        KindOutcome {
            result,
            status,
            changes: self.changes,
            events: self.events,
        }
    }

    /// Finish a deletion step: conditions from `result` (plus `extra`), and an Event — the
    /// release itself when `result` is Ok (a warning when `warn` says so for its reason), else
    /// a `Ready` change.
    pub fn finish_cleanup<S: KindStatus>(
        mut self,
        previous: &S,
        mut status: S,
        result: Result<Verdict, Error>,
        extra: &[DesiredCondition],
        generation: Option<i64>,
        warn: impl Fn(&str) -> bool,
    ) -> KindOutcome<S> {
        status.set_conditions(self.conditions(previous, &result, extra, generation));
        match &result {
            Ok(v) => self.event(warn(&v.reason), &v.reason.clone(), v.message.clone()),
            Err(_) => self.events.extend(ready_change_event(
                previous.conditions(),
                status.conditions(),
            )),
        }
        KindOutcome {
            result,
            status,
            changes: self.changes,
            events: self.events,
        }
    }

    /// A whole reconcile of an object whose stored status is `stored`: `apply` works on a
    /// copy of it, then [`Run::finish`] (no extra conditions).
    pub async fn reconcile<S: KindStatus + Default>(
        mut self,
        stored: Option<&S>,
        generation: Option<i64>,
        apply: impl AsyncFnOnce(&mut Run, &mut S) -> Result<Verdict, Error>,
    ) -> KindOutcome<S> {
        let previous = stored.cloned().unwrap_or_default();
        let mut status = previous.clone();
        let result = apply(&mut self, &mut status).await;
        self.finish(&previous, status, result, &[], generation)
    }

    /// A whole deletion step of an object whose stored status is `stored`: `delete` works on
    /// a copy of it, then [`Run::finish_cleanup`] (no extra conditions; the release Event is a
    /// warning when `warn` says so for its reason).
    pub async fn cleanup<S: KindStatus + Default>(
        mut self,
        stored: Option<&S>,
        generation: Option<i64>,
        warn: impl Fn(&str) -> bool,
        delete: impl AsyncFnOnce(&mut Run, &mut S) -> Result<Verdict, Error>,
    ) -> KindOutcome<S> {
        let previous = stored.cloned().unwrap_or_default();
        let mut status = previous.clone();
        let result = delete(&mut self, &mut status).await;
        self.finish_cleanup(&previous, status, result, &[], generation, warn)
    }

    fn conditions<S: KindStatus>(
        &self,
        previous: &S,
        result: &Result<Verdict, Error>,
        extra: &[DesiredCondition],
        generation: Option<i64>,
    ) -> Vec<crate::api::conditions::Condition> {
        let conditions = conditions_for(previous.conditions(), result, generation, &self.now_text);
        if extra.is_empty() {
            conditions
        } else {
            crate::api::conditions::merge_conditions(&conditions, extra, generation, &self.now_text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn change() -> Change {
        Change {
            action: ChangeAction::Create,
            target: "billinggroup/acme".into(),
            detail: "new".into(),
        }
    }

    #[tokio::test]
    async fn plan_mode_records_the_change_and_never_calls() {
        let calls = AtomicU32::new(0);
        let mut run = Run::at(Mode::Plan, "2026-12-01T10:00:00Z");
        let answer = run
            .write(change(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(7)
            })
            .await
            .unwrap();
        assert_eq!(answer, None);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(run.changes(), &[change()]);
    }

    #[tokio::test]
    async fn apply_mode_records_the_change_and_calls_once() {
        let calls = AtomicU32::new(0);
        let mut run = Run::at(Mode::Apply, "2026-12-01T10:00:00.700Z");
        let answer = run
            .write(change(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(7)
            })
            .await
            .unwrap();
        assert_eq!(answer, Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(run.changes().len(), 1);
        assert_eq!(run.timestamp(), "2026-12-01T10:00:01Z");
    }

    #[tokio::test]
    async fn reconcile_works_on_a_copy_of_the_stored_status_and_finishes_it() {
        use crate::api::BillingTransferStatus;
        let stored = BillingTransferStatus::default();
        let apply = async |run: &mut Run, status: &mut BillingTransferStatus| {
            status.transfer_id = Some("rt-a1b2c3d4".into());
            run.write(change(), || async { Ok::<_, Error>(()) }).await?;
            Ok(Verdict::ready("Accepted", "the transfer is accepted"))
        };
        let out = Run::at(Mode::Apply, "2026-12-01T10:00:00Z")
            .reconcile(Some(&stored), Some(3), apply)
            .await;
        assert_eq!(out.status.transfer_id.as_deref(), Some("rt-a1b2c3d4"));
        assert_eq!(out.status.observed_generation, Some(3));
        assert!(
            out.status
                .conditions
                .iter()
                .any(|c| c.type_ == crate::api::conditions::READY && c.reason == "Accepted"),
            "{:?}",
            out.status.conditions
        );
        assert_eq!(out.changes, vec![change()]);
        // A plan keeps the stored status.
        let out = Run::at(Mode::Plan, "2026-12-01T10:00:00Z")
            .reconcile(Some(&stored), Some(3), apply)
            .await;
        assert_eq!(out.status, stored);
        assert_eq!(out.changes, vec![change()]);
    }

    #[tokio::test]
    async fn cleanup_finishes_with_the_release_event_warning_as_warn_says() {
        use crate::api::BillingTransferStatus;
        for (warn, reason) in [(true, "LeftInPlace"), (false, "Released")] {
            let out = Run::at(Mode::Apply, "2026-12-01T10:00:00Z")
                .cleanup(
                    None::<&BillingTransferStatus>,
                    Some(2),
                    |r| r == "LeftInPlace",
                    async |_, _| Ok(Verdict::ready(reason, "done")),
                )
                .await;
            assert_eq!(out.events.len(), 1, "{:?}", out.events);
            assert_eq!(out.events[0].warning, warn);
            assert_eq!(out.events[0].reason, reason);
        }
    }
}
