//! BillingTransfer against the emulator, through the real AWS SDK: the lifecycle accepted
//! (with the automatic billing groups preference, converged once and then left alone),
//! declined (not sent again until asked), expired, terminated on delete (once); a start that
//! is not the first of a month refused before any call; a lost status finds its transfer
//! again by natural key and owner tag, never sending a second invitation.

mod common;

use std::sync::Arc;

use k8s_openapi::jiff::civil::Date;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, ToSpan};
use partner_billing_operator::api::conditions::{self, READY};
use partner_billing_operator::api::{
    BillingTransfer, BillingTransferStatus, ConditionStatus, PricingPlan,
};
use partner_billing_operator::billing::pricing_plan;
use partner_billing_operator::organizations::billing_transfer;
use partner_billing_operator::reconcile::catalog::Catalog;
use partner_billing_operator::reconcile::run::Run;
use partner_billing_operator::reconcile::{KindOutcome, Mode, ReconcileContext};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const ACCESS_KEY: &str = "AKIAPBOTRANSFER00001";
const SECRET_KEY: &str = "pbo-transfer-test-secret";
const NS: &str = "billing";
const CTL: &str = "/_emulator/services/transfers/";
const INVITE: &str = "InviteOrganizationToTransferResponsibility";
const TERMINATE: &str = "TerminateResponsibilityTransfer";
const UPDATE_PREFERENCE: &str = "UpdateBillingTransferPreference";

/// The first day of the month `months` after this one, 00:00:00 UTC (RFC 3339).
fn first_of_month(months: i32) -> String {
    let today: Date = Timestamp::now().to_zoned(TimeZone::UTC).date();
    let d = today.first_of_month().checked_add(months.months()).unwrap();
    format!("{}T00:00:00Z", d)
}

/// The last second of the month `months` after this one (RFC 3339).
fn end_of_month(months: i32) -> String {
    let today: Date = Timestamp::now().to_zoned(TimeZone::UTC).date();
    let d = today.first_of_month().checked_add(months.months()).unwrap();
    format!("{}T23:59:59Z", d.last_of_month())
}

struct World {
    emu: &'static common::Emulator,
    catalog: Arc<Catalog>,
    ctx: ReconcileContext,
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": NS, "uid": format!("uid-{name}"), "generation": 1,
           "creationTimestamp": "2026-11-24T10:00:00Z"})
}

fn transfer(name: &str, spec: Value) -> BillingTransfer {
    let mut spec = spec;
    spec["payerRef"] = json!({"name": "acme"});
    serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "BillingTransfer",
        "metadata": meta(name), "spec": spec
    }))
    .unwrap()
}

impl World {
    async fn new(emu: &'static common::Emulator) -> Self {
        let config = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
        emu.create_organization(&config, 1).await;
        let catalog = Arc::new(Catalog::new());
        catalog.put(common::payer_object(meta("acme"), json!({})));
        let ctx = Self::operator(emu, catalog.clone());
        Self { emu, catalog, ctx }
    }

    fn operator(emu: &common::Emulator, catalog: Arc<Catalog>) -> ReconcileContext {
        common::operator_context(emu, catalog, NS, ACCESS_KEY, SECRET_KEY)
    }

    fn put(&self, t: &BillingTransfer) {
        self.catalog.put(t.clone());
    }

    fn get(&self, name: &str) -> BillingTransfer {
        self.catalog.get::<BillingTransfer>(NS, name).unwrap()
    }

    /// One reconcile, its status stored as the controller would.
    async fn reconcile(&self, name: &str) -> KindOutcome<BillingTransferStatus> {
        let mut t = self.get(name);
        let out = billing_transfer::reconcile(&t, &self.ctx, Run::now(Mode::Apply)).await;
        t.status = Some(out.status.clone());
        self.put(&t);
        out
    }

    async fn cleanup(&self, name: &str) -> KindOutcome<BillingTransferStatus> {
        let t = self.get(name);
        billing_transfer::cleanup(&t, &self.ctx, Run::now(Mode::Apply)).await
    }

    fn customer(&self, control: &str, transfer_id: &str) {
        self.emu.control(
            "POST",
            &format!("{CTL}{control}"),
            Some(json!({"transferId": transfer_id})),
        );
    }

    fn transfers(&self) -> Value {
        self.emu
            .control("POST", &format!("{CTL}stats"), Some(json!({})))
    }
}

fn ready(out: &KindOutcome<BillingTransferStatus>) -> (bool, String, String) {
    let c = conditions::find(&out.status.conditions, READY).expect("Ready condition");
    (
        c.status == ConditionStatus::True,
        c.reason.clone(),
        c.message.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_with_the_preference_then_terminated_on_delete_once() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    let plan: PricingPlan = serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "PricingPlan", "metadata": meta("std"),
        "spec": {"payerRef": {"name": "acme"}, "rules": [{"name": "markup", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 10}]}
    }))
    .unwrap();
    world.catalog.put(plan.clone());
    let out = pricing_plan::reconcile(&plan, &world.ctx, Run::now(Mode::Apply)).await;
    let mut plan = plan;
    let plan_arn = out.status.arn.clone().expect("plan created");
    plan.status = Some(out.status);
    world.catalog.put(plan);

    let start = first_of_month(2);
    world.put(&transfer(
        "globex",
        json!({"customer": {"accountId": "222222222222"}, "start": start,
               "automaticBillingGroups": {"enabled": true, "pricingPlanRef": {"name": "std"}},
               "deletionPolicy": "Terminate"}),
    ));
    let first = world.reconcile("globex").await;
    let (ok, reason, message) = ready(&first);
    assert!(!ok && reason == "TransferRequested", "{reason}: {message}");
    let id = first
        .status
        .transfer_id
        .clone()
        .expect("transfer id in status");
    assert!(
        first
            .status
            .transfer_arn
            .as_deref()
            .unwrap()
            .contains("/billing/inbound/rt-")
    );
    assert_eq!(first.status.state.as_deref(), Some("REQUESTED"));
    assert_eq!(first.status.start.as_deref(), Some(start.as_str()));
    let tags = &world.transfers()["transfers"][&id]["tags"];
    assert_eq!(
        tags["partnerbilling.io/owner"],
        "billing/billingtransfer/globex"
    );
    // While it is open, nothing else is sent (and no preference before it is accepted).
    world.reconcile("globex").await;
    assert_eq!(emu.count("organizations", INVITE), 1);
    assert_eq!(
        emu.count("billingconductor", "GetBillingTransferPreference"),
        0
    );

    world.customer("accept", &id);
    let accepted = world.reconcile("globex").await;
    let (ok, reason, message) = ready(&accepted);
    assert!(ok && reason == "TransferAccepted", "{reason}: {message}");
    assert_eq!(accepted.status.state.as_deref(), Some("ACCEPTED"));
    let pref = accepted.status.automatic_billing_groups.clone().unwrap();
    assert!(pref.enabled);
    assert_eq!(pref.pricing_plan_arn.as_deref(), Some(plan_arn.as_str()));
    assert_eq!(emu.count("billingconductor", UPDATE_PREFERENCE), 1);
    // Idempotent: converged, nothing is written again.
    for _ in 0..2 {
        let again = world.reconcile("globex").await;
        assert!(ready(&again).0);
    }
    assert_eq!(emu.count("billingconductor", UPDATE_PREFERENCE), 1);
    assert_eq!(emu.count("organizations", INVITE), 1);

    // A change of the preference converges too (an AWS-managed plan).
    let mut t = world.get("globex");
    t.spec.automatic_billing_groups =
        serde_json::from_value(json!({"enabled": true, "pricingPlan": "BasicPricingPlan"}))
            .unwrap();
    t.metadata.generation = Some(2);
    world.put(&t);
    let changed = world.reconcile("globex").await;
    assert!(ready(&changed).0, "{:?}", ready(&changed));
    assert_eq!(
        changed
            .status
            .automatic_billing_groups
            .unwrap()
            .pricing_plan_arn
            .as_deref(),
        Some("BasicPricingPlan")
    );
    assert_eq!(emu.count("billingconductor", UPDATE_PREFERENCE), 2);

    // Delete (Terminate): ends at the end of its start month, once.
    let deleted = world.cleanup("globex").await;
    let (ok, reason, _) = ready(&deleted);
    assert!(ok && reason == "Terminated", "{reason}");
    let stats = world.transfers();
    assert_eq!(stats["transfers"][&id]["status"], "WITHDRAWN");
    let end = stats["transfers"][&id]["end"].as_f64().unwrap() as i64;
    assert_eq!(
        Timestamp::from_second(end).unwrap().to_string(),
        end_of_month(2)
    );
    let again = world.cleanup("globex").await;
    assert!(ready(&again).0);
    assert_eq!(emu.count("organizations", TERMINATE), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_is_not_sent_again_until_asked_and_expired_is_reported() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    world.put(&transfer(
        "initech",
        json!({"customer": {"email": "billing@initech.example"}, "start": first_of_month(2), "notes": "hello"}),
    ));
    let first = world.reconcile("initech").await;
    let id = first.status.transfer_id.clone().unwrap();
    world.customer("decline", &id);
    for _ in 0..2 {
        let out = world.reconcile("initech").await;
        let (ok, reason, message) = ready(&out);
        assert!(!ok && reason == "TransferDeclined", "{reason}");
        assert!(message.contains("partnerbilling.io/reinvite"), "{message}");
        assert_eq!(out.status.state.as_deref(), Some("DECLINED"));
    }
    assert_eq!(emu.count("organizations", INVITE), 1);

    // The annotation asks again: one new invitation.
    let mut t = world.get("initech");
    t.metadata.annotations =
        Some([("partnerbilling.io/reinvite".to_string(), "1".to_string())].into());
    world.put(&t);
    let resent = world.reconcile("initech").await;
    let second = resent.status.transfer_id.clone().unwrap();
    assert_ne!(second, id);
    assert_eq!(ready(&resent).1, "TransferRequested");
    world.reconcile("initech").await;
    assert_eq!(emu.count("organizations", INVITE), 2);

    world.customer("expire", &second);
    let expired = world.reconcile("initech").await;
    let (ok, reason, _) = ready(&expired);
    assert!(!ok && reason == "TransferExpired", "{reason}");
    assert_eq!(emu.count("organizations", INVITE), 2);

    // Retain (the default): deleting touches nothing in AWS.
    let released = world.cleanup("initech").await;
    assert_eq!(ready(&released).1, "Released");
    assert_eq!(emu.count("organizations", TERMINATE), 0);
    assert_eq!(emu.count("organizations", "CancelHandshake"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_start_is_refused_before_any_transfer_call() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    // Mid-month (the schema refuses it too: tests/bad-input/83-transfer-start-mid-month.yaml).
    let mid = first_of_month(2).replace("-01T", "-15T");
    world.put(&transfer(
        "mid",
        json!({"customer": {"accountId": "222222222222"}, "start": mid}),
    ));
    let out = world.reconcile("mid").await;
    let (ok, reason, message) = ready(&out);
    assert!(!ok && reason == "InvalidTransferDate", "{reason}");
    assert!(message.contains("first day of a month"), "{message}");
    // This month's first day: less than 24 hours away (in the past); the message names the
    // earliest start that works.
    world.put(&transfer(
        "soon",
        json!({"customer": {"accountId": "222222222222"}, "start": first_of_month(0)}),
    ));
    let out = world.reconcile("soon").await;
    let (ok, reason, message) = ready(&out);
    assert!(!ok && reason == "InvalidTransferDate", "{reason}");
    assert!(message.contains("24 hours"), "{message}");
    // Its own organization.
    world.put(&transfer(
        "self",
        json!({"customer": {"accountId": ACCOUNT}, "start": first_of_month(2)}),
    ));
    let out = world.reconcile("self").await;
    assert!(ready(&out).2.contains("own management account"));
    assert_eq!(emu.count("organizations", INVITE), 0);
    assert_eq!(
        emu.count("organizations", "ListInboundResponsibilityTransfers"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_status_finds_the_transfer_by_natural_key_and_owner_tag() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    let start = first_of_month(3);
    world.put(&transfer(
        "globex",
        json!({"customer": {"accountId": "222222222222"}, "start": start, "end": end_of_month(5)}),
    ));
    let first = world.reconcile("globex").await;
    let id = first.status.transfer_id.clone().unwrap();
    world.customer("accept", &id);
    // The status is lost (a crash before it was written, file mode).
    let mut t = world.get("globex");
    t.status = None;
    world.put(&t);
    let again = world.reconcile("globex").await;
    assert_eq!(again.status.transfer_id.as_deref(), Some(id.as_str()));
    assert_eq!(emu.count("organizations", INVITE), 1);
    // The spec's end: terminated once, then Ready as planned.
    let (ok, reason, message) = ready(&again);
    assert!(ok, "{reason}: {message}");
    assert_eq!(again.status.end.as_deref(), Some(end_of_month(5).as_str()));
    let later = world.reconcile("globex").await;
    let (ok, reason, _) = ready(&later);
    assert!(ok && reason == "TransferWithdrawn", "{reason}");
    assert_eq!(emu.count("organizations", TERMINATE), 1);

    // Another object with the same customer and start but not the owner tag never takes it.
    world.put(&transfer(
        "other",
        json!({"customer": {"accountId": "222222222222"}, "start": start}),
    ));
    let other = world.reconcile("other").await;
    assert_ne!(other.status.transfer_id.as_deref(), Some(id.as_str()));
}

#[test]
fn the_example_loads_and_validates_with_the_other_examples() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let manifests = partner_billing_operator::filemode::load(
        &[
            root.clone(),
            root.join("billing-transfer/billing-transfer.yaml"),
        ],
        "default",
    )
    .unwrap_or_else(|problems| panic!("examples/billing-transfer is not valid: {problems:#?}"));
    let transfers = manifests.of::<BillingTransfer>();
    assert_eq!(transfers.len(), 1);
    assert_eq!(
        transfers[0]
            .spec
            .automatic_billing_groups
            .as_ref()
            .unwrap()
            .pricing_plan_ref
            .as_ref()
            .unwrap()
            .name,
        "standard"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_the_customer_withdraws_is_reported_and_not_invited_again() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    world.put(&transfer(
        "hooli",
        json!({"customer": {"accountId": "555566667777"}, "start": first_of_month(2), "deletionPolicy": "Terminate"}),
    ));
    let id = world.reconcile("hooli").await.status.transfer_id.unwrap();
    world.customer("accept", &id);
    assert!(ready(&world.reconcile("hooli").await).0);
    world.customer("withdraw", &id);
    for _ in 0..2 {
        let out = world.reconcile("hooli").await;
        let (ok, reason, message) = ready(&out);
        assert!(!ok && reason == "TransferWithdrawn", "{reason}");
        assert!(message.contains("partnerbilling.io/reinvite"), "{message}");
        assert_eq!(out.status.state.as_deref(), Some("WITHDRAWN"));
        assert!(out.status.end.is_some());
    }
    assert_eq!(emu.count("organizations", INVITE), 1);
    // Terminate on delete: it has ended already; nothing is called.
    let deleted = world.cleanup("hooli").await;
    assert!(ready(&deleted).0);
    assert_eq!(emu.count("organizations", TERMINATE), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observe_transfer_is_never_invited_nor_terminated() {
    use partner_billing_operator::reconcile::management;
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    world.put(&transfer(
        "watched",
        json!({"customer": {"accountId": "222222222222"}, "start": first_of_month(2),
               "deletionPolicy": "Terminate", "managementPolicy": "Observe"}),
    ));
    let t = world.get("watched");
    let out = management::reconcile(&t, &world.ctx, Run::now(Mode::Apply)).await;
    let drifted = conditions::find(&out.outcome.status.conditions, "Drifted").expect("Drifted");
    assert_eq!(drifted.status, ConditionStatus::True, "{}", drifted.message);
    assert!(
        drifted.message.contains("billing transfer invitation"),
        "{}",
        drifted.message
    );
    assert!(!out.drift.is_empty());
    let released = management::cleanup(&t, &world.ctx, Run::now(Mode::Apply)).await;
    assert!(released.drift.is_empty());
    assert_eq!(emu.count("organizations", INVITE), 0);
    assert_eq!(emu.count("organizations", TERMINATE), 0);
    assert_eq!(emu.count("billingconductor", UPDATE_PREFERENCE), 0);
}

/// The transfers AWS holds (the emulator's view, whatever its read lag).
fn held(world: &World) -> serde_json::Map<String, Value> {
    world.transfers()["transfers"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_read_never_sends_a_second_invitation() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    // AWS does not show the new transfer (List, Describe) for a while after the invitation.
    emu.control(
        "POST",
        &format!("{CTL}settings"),
        Some(json!({"readLagSeconds": 600})),
    );
    world.put(&transfer(
        "globex",
        json!({"customer": {"accountId": "222222222222"}, "start": first_of_month(2)}),
    ));
    for _ in 0..3 {
        let out = world.reconcile("globex").await;
        let (ok, reason, message) = ready(&out);
        assert!(!ok && reason == "TransferNotListed", "{reason}: {message}");
        assert!(message.contains("not sent again"), "{message}");
        let inv = out
            .status
            .invitation
            .clone()
            .expect("the invitation recorded");
        assert!(inv.handshake_id.as_deref().unwrap().starts_with("h-"));
    }
    assert_eq!(emu.count("organizations", INVITE), 1);
    assert_eq!(held(&world).len(), 1);

    // The status is lost (a crash between the invitation and the status write) while the
    // read still lags: AWS refuses a second open invitation; the condition waits for the
    // first one's transfer, and AWS still holds one.
    let mut t = world.get("globex");
    let kept = t.status.take();
    world.put(&t);
    let out = world.reconcile("globex").await;
    let (ok, reason, message) = ready(&out);
    assert!(!ok && reason == "TransferNotListed", "{reason}: {message}");
    assert_eq!(held(&world).len(), 1);
    let mut t = world.get("globex");
    t.status = kept;
    world.put(&t);

    // Shown at last: followed, never sent again.
    emu.control(
        "POST",
        &format!("{CTL}settings"),
        Some(json!({"readLagSeconds": 0})),
    );
    let out = world.reconcile("globex").await;
    let (_, reason, message) = ready(&out);
    assert_eq!(reason, "TransferRequested", "{message}");
    let id = held(&world).keys().next().cloned().unwrap();
    assert_eq!(out.status.transfer_id.as_deref(), Some(id.as_str()));
    assert_eq!(held(&world).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_whose_spec_became_invalid_can_be_deleted() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    let invalid = |t: &mut BillingTransfer| {
        // The Payer's own account: refused by validation before any call.
        t.spec.customer.account_id = Some(ACCOUNT.into());
        t.spec.customer.email = None;
        t.metadata.generation = Some(2);
    };
    // An invitation AWS shows.
    world.put(&transfer(
        "globex",
        json!({"customer": {"accountId": "222222222222"}, "start": first_of_month(2), "deletionPolicy": "Terminate"}),
    ));
    let id = world
        .reconcile("globex")
        .await
        .status
        .transfer_id
        .expect("sent");
    let mut t = world.get("globex");
    invalid(&mut t);
    world.put(&t);
    let (ok, reason, _) = ready(&world.reconcile("globex").await);
    assert!(!ok && reason == "InvalidSpec", "{reason}");
    let deleted = world.cleanup("globex").await;
    let (ok, reason, message) = ready(&deleted);
    assert!(ok && reason == "TransferCanceled", "{reason}: {message}");
    assert_eq!(held(&world)[&id]["status"], "CANCELED");

    // An invitation AWS does not show yet: canceled by the handshake the status records.
    emu.control(
        "POST",
        &format!("{CTL}settings"),
        Some(json!({"readLagSeconds": 600})),
    );
    world.put(&transfer(
        "initech",
        json!({"customer": {"accountId": "333344445555"}, "start": first_of_month(2), "deletionPolicy": "Terminate"}),
    ));
    world.reconcile("initech").await;
    let mut t = world.get("initech");
    invalid(&mut t);
    world.put(&t);
    let deleted = world.cleanup("initech").await;
    let (ok, reason, message) = ready(&deleted);
    assert!(ok && reason == "TransferCanceled", "{reason}: {message}");
    let canceled = held(&world)
        .values()
        .filter(|t| t["status"] == "CANCELED")
        .count();
    assert_eq!(canceled, 2);
    assert_eq!(emu.count("organizations", "CancelHandshake"), 2);
    assert_eq!(emu.count("organizations", INVITE), 2);
}
