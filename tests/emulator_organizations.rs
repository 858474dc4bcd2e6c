//! LinkedAccount, OrganizationalUnit and ServiceControlPolicy against the emulator, through
//! the real AWS SDK: creation (crash safety, the 5-in-flight limit), invitations, adoption,
//! SCPs and drift, OUs, closing, and what a steady-state resync costs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use partner_billing_operator::api::conditions::{self, READY};
use partner_billing_operator::api::{
    ConditionStatus, LinkedAccount, OrganizationalUnit, Payer, ServiceControlPolicy,
};
use partner_billing_operator::billing::snapshot::BillingSnapshot;
use partner_billing_operator::error::Error;
use partner_billing_operator::organizations::creations::Creations;
use partner_billing_operator::organizations::{
    linked_account, organizational_unit, service_control_policy,
};
use partner_billing_operator::payer::snapshot::{SharedReads, SnapshotCache};
use partner_billing_operator::reconcile::catalog::Catalog;
use partner_billing_operator::reconcile::run::Run;
use partner_billing_operator::reconcile::{KindOutcome, Mode, ReconcileContext, Verdict};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const ACCESS_KEY: &str = "AKIAPBOORG0000000001";
const SECRET_KEY: &str = "pbo-org-test-secret";
const NS: &str = "billing";
const ORG: &str = "/_emulator/services/organizations/";

struct World {
    emu: &'static common::Emulator,
    catalog: Arc<Catalog>,
    ctx: ReconcileContext,
}

fn meta(name: &str, seq: u32) -> Value {
    json!({"name": name, "namespace": NS, "uid": format!("uid-{name}"), "generation": 1,
           "creationTimestamp": format!("2026-11-24T10:{:02}:{:02}Z", seq / 60, seq % 60)})
}

fn payer_object() -> Payer {
    common::payer_object(meta("acme", 0), json!({"maxClosuresPer30Days": 2}))
}

fn account(name: &str, seq: u32, spec: Value) -> LinkedAccount {
    let mut spec = spec;
    spec["payerRef"] = json!({"name": "acme"});
    serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
        "metadata": meta(name, seq), "spec": spec
    }))
    .unwrap()
}

fn create_spec(name: &str) -> Value {
    json!({"create": {"email": format!("{name}@example.com"), "accountName": name}})
}

fn ou(name: &str, aws_name: &str, parent: Option<&str>, scps: &[&str]) -> OrganizationalUnit {
    let mut spec =
        json!({"payerRef": {"name": "acme"}, "name": aws_name, "serviceControlPolicies": scps});
    if let Some(p) = parent {
        spec["parentRef"] = json!({"name": p});
    }
    serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "OrganizationalUnit",
        "metadata": meta(name, 0), "spec": spec
    }))
    .unwrap()
}

fn scp(name: &str, action: &str) -> ServiceControlPolicy {
    serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "ServiceControlPolicy",
        "metadata": meta(name, 0),
        "spec": {"payerRef": {"name": "acme"}, "description": "test",
                 "document": {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": action, "Resource": "*"}]}}
    }))
    .unwrap()
}

impl World {
    /// A fresh emulator organization and a fresh operator (no caches).
    async fn new(emu: &'static common::Emulator) -> Self {
        let config = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
        emu.create_organization(&config, 0).await;
        emu.control(
            "POST",
            &format!("{ORG}settings"),
            Some(json!({"createDelaySeconds": 0.3, "closeDelaySeconds": 0.3})),
        );
        let catalog = Arc::new(Catalog::new());
        catalog.put(payer_object());
        let ctx = Self::operator(emu, catalog.clone());
        Self { emu, catalog, ctx }
    }

    /// A new operator process: new connections, snapshot cache and locks; same objects.
    fn operator(emu: &common::Emulator, catalog: Arc<Catalog>) -> ReconcileContext {
        common::operator_context(emu, catalog, NS, ACCESS_KEY, SECRET_KEY)
    }

    fn restart(&mut self) {
        self.ctx = Self::operator(self.emu, self.catalog.clone());
    }

    fn put_account(&self, a: &LinkedAccount) {
        self.catalog.put(a.clone());
    }

    /// `count` LinkedAccounts `{prefix}-NN` to create, oldest first; the emulator holds
    /// each creation IN_PROGRESS for `hold` seconds.
    fn accounts_to_create(&self, prefix: &str, count: usize, hold: f64) -> Vec<String> {
        self.emu.control(
            "POST",
            &format!("{ORG}settings"),
            Some(json!({"createDelaySeconds": hold})),
        );
        let names: Vec<String> = (0..count).map(|i| format!("{prefix}-{i:02}")).collect();
        for (i, n) in names.iter().enumerate() {
            self.put_account(&account(n, i as u32 + 1, create_spec(n)));
        }
        names
    }

    fn get_account(&self, name: &str) -> LinkedAccount {
        self.catalog.get::<LinkedAccount>(NS, name).unwrap()
    }

    /// One reconcile of account `name`, its status stored as the controller would.
    async fn reconcile_account(
        &self,
        name: &str,
    ) -> KindOutcome<partner_billing_operator::api::LinkedAccountStatus> {
        let mut a = self.get_account(name);
        let out = linked_account::reconcile(&a, &self.ctx, Run::at(Mode::Apply, &now())).await;
        a.status = Some(out.status.clone());
        self.put_account(&a);
        out
    }

    /// Reconcile account `name` until it stops being in progress (at most `rounds`).
    async fn converge_account(
        &self,
        name: &str,
        rounds: usize,
    ) -> KindOutcome<partner_billing_operator::api::LinkedAccountStatus> {
        let mut out = self.reconcile_account(name).await;
        for _ in 0..rounds {
            if !in_progress(&out.result) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            out = self.reconcile_account(name).await;
        }
        out
    }

    async fn apply_scp(
        &self,
        s: &ServiceControlPolicy,
    ) -> KindOutcome<partner_billing_operator::api::ServiceControlPolicyStatus> {
        let mut s = s.clone();
        let out =
            service_control_policy::reconcile(&s, &self.ctx, Run::at(Mode::Apply, &now())).await;
        s.status = Some(out.status.clone());
        self.catalog.put(s);
        out
    }

    async fn apply_ou(
        &self,
        o: &OrganizationalUnit,
    ) -> KindOutcome<partner_billing_operator::api::OrganizationalUnitStatus> {
        let mut o = o.clone();
        if let Some(existing) = self
            .catalog
            .get::<OrganizationalUnit>(NS, o.metadata.name.as_deref().unwrap())
        {
            o.status = existing.status.clone();
        }
        let out = organizational_unit::reconcile(&o, &self.ctx, Run::at(Mode::Apply, &now())).await;
        o.status = Some(out.status.clone());
        self.catalog.put(o);
        out
    }

    async fn org(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await)
    }
}

fn now() -> String {
    partner_billing_operator::time::now_rfc3339()
}

fn in_progress(result: &Result<Verdict, Error>) -> bool {
    match result {
        Ok(v) => v.requeue.is_some_and(|d| d <= Duration::from_secs(20)),
        Err(Error::Waiting { retry_after, .. }) => *retry_after <= Duration::from_secs(20),
        Err(_) => false,
    }
}

fn ready<S>(out: &KindOutcome<S>) -> (bool, String, String)
where
    S: HasConditionsForTest,
{
    let c = conditions::find(out.status.conds(), READY).expect("Ready condition");
    (
        c.status == ConditionStatus::True,
        c.reason.clone(),
        c.message.clone(),
    )
}

trait HasConditionsForTest {
    fn conds(&self) -> &[partner_billing_operator::api::Condition];
}
impl HasConditionsForTest for partner_billing_operator::api::LinkedAccountStatus {
    fn conds(&self) -> &[partner_billing_operator::api::Condition] {
        &self.conditions
    }
}
impl HasConditionsForTest for partner_billing_operator::api::OrganizationalUnitStatus {
    fn conds(&self) -> &[partner_billing_operator::api::Condition] {
        &self.conditions
    }
}
impl HasConditionsForTest for partner_billing_operator::api::ServiceControlPolicyStatus {
    fn conds(&self) -> &[partner_billing_operator::api::Condition] {
        &self.conditions
    }
}

fn stats(emu: &common::Emulator) -> Value {
    emu.control("POST", &format!("{ORG}stats"), Some(json!({})))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_create_account_never_creates_a_second_account() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let mut world = World::new(emu).await;
    emu.control(
        "POST",
        &format!("{ORG}settings"),
        Some(json!({"createDelaySeconds": 30})),
    );
    world.put_account(&account("crashy", 1, create_spec("crashy")));

    // CreateAccount is called; then the process dies before the status is written.
    let first = linked_account::reconcile(
        &world.get_account("crashy"),
        &world.ctx,
        Run::at(Mode::Apply, &now()),
    )
    .await;
    assert!(
        first.status.create_request_id.is_some(),
        "{:?}",
        first.result
    );
    assert_eq!(emu.count("organizations", "CreateAccount"), 1);
    world.restart();

    // Restarted, with no status: the request in flight is found by account name.
    let again = world.reconcile_account("crashy").await;
    assert_eq!(ready(&again).1, "Creating", "{:?}", again.result);
    assert_eq!(
        again.status.create_request_id,
        first.status.create_request_id
    );
    assert_eq!(emu.count("organizations", "CreateAccount"), 1);

    // The creation finishes while the operator is down again: found by e-mail.
    emu.control("POST", &format!("{ORG}complete-creates"), Some(json!({})));
    let mut a = world.get_account("crashy");
    a.status = None;
    world.put_account(&a);
    world.restart();
    let done = world.converge_account("crashy", 10).await;
    assert!(ready(&done).0, "{:?}", done.result);
    assert_eq!(emu.count("organizations", "CreateAccount"), 1);
    let listed = world
        .org()
        .await
        .list_accounts()
        .send()
        .await
        .unwrap()
        .accounts
        .unwrap_or_default()
        .into_iter()
        .filter(|x| x.email() == Some("crashy@example.com"))
        .count();
    assert_eq!(listed, 1, "exactly one account with the e-mail exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_accounts_at_once_never_exceed_five_creations_in_flight() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = Arc::new(World::new(emu).await);
    // Long enough that five creations are surely in flight together.
    let names = world.accounts_to_create("bulk", 20, 2.0);
    // Like the controller: every object reconciled concurrently, again while in progress.
    for _round in 0..60 {
        let pending: Vec<String> = names
            .iter()
            .filter(|n| {
                let a = world.get_account(n);
                !a.status
                    .as_ref()
                    .is_some_and(|s| conditions::is_ready(&s.conditions))
            })
            .cloned()
            .collect();
        if pending.is_empty() {
            break;
        }
        let handles: Vec<_> = pending
            .iter()
            .map(|n| {
                let w = world.clone();
                let n = n.clone();
                tokio::spawn(async move { w.reconcile_account(&n).await.result.is_ok() })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in &names {
        let a = world.get_account(n);
        let status = a.status.expect("status");
        assert!(
            conditions::is_ready(&status.conditions),
            "{n}: {:?}",
            status.conditions
        );
    }
    let s = stats(emu);
    assert_eq!(s["maxCreatesInFlight"], 5, "{s}");
    assert_eq!(s["createRequests"], 20, "{s}");
    let refused: u64 = emu
        .outcomes("organizations", "CreateAccount")
        .into_iter()
        .filter(|(o, _)| o != "ok")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        refused, 0,
        "the operator never asked for a sixth creation in flight"
    );
    // Queued objects said so while they waited.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_creation_hands_its_slot_to_the_next_queued_account_without_polling() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = Arc::new(World::new(emu).await);
    // Held 3 s: the twelve first reconciles must all run while the first five creations are
    // still in flight, which 1 s did not leave room for on a loaded 2-core machine.
    let names = world.accounts_to_create("slot", 12, 3.0);
    let mut woken = world.ctx.shared::<Creations>().subscribe();
    // One reconcile each: five creations start, seven wait in the queue.
    for n in &names {
        world.reconcile_account(n).await;
    }
    let queued: Vec<String> = names
        .iter()
        .filter(|n| {
            world
                .get_account(n)
                .status
                .is_some_and(|s| s.create_request_id.is_none())
        })
        .cloned()
        .collect();
    assert_eq!(queued, names[5..].to_vec(), "the oldest five go first");
    assert!(
        world
            .ctx
            .shared::<Creations>()
            .watching(&format!("{NS}/acme"))
    );
    // From now on an account is reconciled only when the creation watcher wakes it: no
    // polling. Every account must still end up created, the queue in order.
    let mut woken_names = Vec::new();
    while !names.iter().all(|n| {
        world
            .get_account(n)
            .status
            .is_some_and(|s| conditions::is_ready(&s.conditions))
    }) {
        let w = tokio::time::timeout(Duration::from_secs(20), woken.recv())
            .await
            .expect("a wake-up within 20 s")
            .expect("no wake-up missed");
        assert_eq!(w.namespace, NS);
        woken_names.push(w.name.clone());
        world.reconcile_account(&w.name).await;
    }
    for n in &names {
        assert!(
            woken_names.contains(n),
            "{n} was woken (its creation ended or it was next in line): {woken_names:?}"
        );
    }
    let s = stats(emu);
    assert_eq!(s["maxCreatesInFlight"], 5, "{s}");
    assert_eq!(s["createRequests"], 12, "{s}");
    // The watcher followed the requests with its list; the accounts never polled their own
    // request: one DescribeCreateAccountStatus per ended request.
    assert_eq!(
        emu.count("organizations", "DescribeCreateAccountStatus"),
        12
    );
    // Nothing in flight: the watcher has ended.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !world
            .ctx
            .shared::<Creations>()
            .watching(&format!("{NS}/acme"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_accepted_declined_and_expired_and_adoption() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    for (i, (name, id)) in [
        ("acc", "444400000001"),
        ("dec", "444400000002"),
        ("exp", "444400000003"),
    ]
    .iter()
    .enumerate()
    {
        world.put_account(&account(
            name,
            i as u32 + 1,
            json!({"invite": {"accountId": id, "notes": "welcome"}}),
        ));
        let out = world.reconcile_account(name).await;
        let (ok, reason, message) = ready(&out);
        assert!(!ok);
        assert_eq!(reason, "InvitationPending", "{message}");
        assert!(
            out.status
                .invitation
                .as_ref()
                .is_some_and(|h| h.state == "OPEN")
        );
    }
    let hs = |name: &str| {
        world
            .get_account(name)
            .status
            .unwrap()
            .invitation
            .unwrap()
            .id
    };
    emu.control(
        "POST",
        &format!("{ORG}accept"),
        Some(json!({"handshakeId": hs("acc"), "email": "owner@acc.example"})),
    );
    emu.control(
        "POST",
        &format!("{ORG}decline"),
        Some(json!({"handshakeId": hs("dec")})),
    );
    emu.control(
        "POST",
        &format!("{ORG}expire"),
        Some(json!({"handshakeId": hs("exp")})),
    );

    let acc = world.converge_account("acc", 5).await;
    assert!(ready(&acc).0, "{:?}", acc.result);
    assert_eq!(acc.status.joined_method.as_deref(), Some("INVITED"));
    assert_eq!(acc.status.account_id.as_deref(), Some("444400000001"));

    let dec = world.reconcile_account("dec").await;
    assert_eq!(ready(&dec).1, "InvitationDeclined");
    assert!(ready(&dec).2.contains("partnerbilling.io/reinvite"));
    let exp = world.reconcile_account("exp").await;
    assert_eq!(ready(&exp).1, "InvitationExpired");
    // Not re-sent by itself.
    assert_eq!(emu.count("organizations", "InviteAccountToOrganization"), 3);

    // The annotation sends a new invitation.
    let mut again = world.get_account("dec");
    again.metadata.annotations =
        Some([("partnerbilling.io/reinvite".to_string(), "1".to_string())].into());
    world.put_account(&again);
    let resent = world.reconcile_account("dec").await;
    assert_eq!(ready(&resent).1, "InvitationPending");
    assert_eq!(emu.count("organizations", "InviteAccountToOrganization"), 4);
    assert_ne!(resent.status.invitation.unwrap().id, hs("exp"));

    // Adopt by id and by e-mail.
    world.put_account(&account(
        "by-id",
        10,
        json!({"adopt": {"accountId": "444400000001"}}),
    ));
    let by_id = world.reconcile_account("by-id").await;
    // The account is already managed by "acc": ownership tags keep two objects apart.
    assert_eq!(ready(&by_id).1, "OwnedElsewhere", "{:?}", by_id.result);
    // Accounts in the organization that no object manages yet: adopted by id and by e-mail.
    let cfg = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let orgs = aws_sdk_organizations::Client::new(&cfg);
    for name in ["outside-1", "outside-2"] {
        orgs.create_account()
            .email(format!("{name}@example.com"))
            .account_name(name)
            .send()
            .await
            .unwrap();
    }
    emu.control("POST", &format!("{ORG}complete-creates"), Some(json!({})));
    let accounts = orgs
        .list_accounts()
        .send()
        .await
        .unwrap()
        .accounts
        .unwrap_or_default();
    let outside_1 = accounts
        .iter()
        .find(|a| a.email() == Some("outside-1@example.com"))
        .and_then(|a| a.id.clone())
        .unwrap();
    world.put_account(&account(
        "adopt-id",
        12,
        json!({"adopt": {"accountId": outside_1}}),
    ));
    let adopted = world.reconcile_account("adopt-id").await;
    assert!(ready(&adopted).0, "{:?}", adopted.result);
    assert_eq!(
        adopted.status.email.as_deref(),
        Some("outside-1@example.com")
    );
    world.put_account(&account(
        "by-email",
        13,
        json!({"adopt": {"email": "OUTSIDE-2@example.com"}}),
    ));
    let by_email = world.reconcile_account("by-email").await;
    assert!(ready(&by_email).0, "{:?}", by_email.result);
    assert_eq!(
        by_email.status.email.as_deref(),
        Some("outside-2@example.com")
    );
    world.put_account(&account(
        "nobody",
        13,
        json!({"adopt": {"accountId": "999999999999"}}),
    ));
    let nobody = world.reconcile_account("nobody").await;
    assert_eq!(ready(&nobody).1, "NotInOrganization");
}

/// Ids of the invitation handshakes the emulator lists.
async fn listed_handshakes(world: &World) -> Vec<String> {
    world
        .org()
        .await
        .list_handshakes_for_organization()
        .send()
        .await
        .unwrap()
        .handshakes()
        .iter()
        .filter_map(|h| h.id().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_invitation_is_not_sent_again_after_aws_stops_listing_it() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    for (i, (name, id)) in [("dec", "444400000012"), ("quiet", "444400000013")]
        .iter()
        .enumerate()
    {
        world.put_account(&account(
            name,
            i as u32 + 1,
            json!({"invite": {"accountId": id}}),
        ));
        let out = world.reconcile_account(name).await;
        assert_eq!(ready(&out).1, "InvitationPending");
    }
    let declined = world
        .get_account("dec")
        .status
        .unwrap()
        .invitation
        .unwrap()
        .id;
    emu.control(
        "POST",
        &format!("{ORG}decline"),
        Some(json!({"handshakeId": declined})),
    );
    let dec = world.reconcile_account("dec").await;
    assert_eq!(ready(&dec).1, "InvitationDeclined");
    let ended_at = dec.status.invitation.as_ref().unwrap().ended_at.clone();
    assert!(ended_at.is_some(), "{:?}", dec.status.invitation);
    assert_eq!(emu.count("organizations", "InviteAccountToOrganization"), 2);

    // 46 days later: "quiet" expired unanswered after 15 days, and AWS lists finished
    // invitations for 30 days only, so neither is listed any more.
    emu.control(
        "POST",
        &format!("{ORG}advance"),
        Some(json!({"seconds": 46 * 24 * 3600})),
    );
    assert_eq!(
        listed_handshakes(&world).await,
        Vec::<String>::new(),
        "the emulator should stop listing handshakes 30 days after they ended"
    );
    for _ in 0..2 {
        let dec = world.reconcile_account("dec").await;
        let (ok, reason, message) = ready(&dec);
        assert!(!ok);
        assert_eq!(reason, "InvitationDeclined", "{message}");
        assert!(message.contains("partnerbilling.io/reinvite"), "{message}");
        assert!(message.contains("no longer lists"), "{message}");
        let record = dec.status.invitation.unwrap();
        assert_eq!(
            (record.id.as_str(), record.state.as_str()),
            (declined.as_str(), "DECLINED")
        );
        assert_eq!(record.ended_at, ended_at);
        let quiet = world.reconcile_account("quiet").await;
        let (ok, reason, message) = ready(&quiet);
        assert!(!ok);
        assert_eq!(reason, "InvitationExpired", "{message}");
        assert!(message.contains("partnerbilling.io/reinvite"), "{message}");
    }
    // Nothing was sent by itself.
    assert_eq!(emu.count("organizations", "InviteAccountToOrganization"), 2);

    // Asked for again: one new invitation.
    let mut again = world.get_account("dec");
    again.metadata.annotations =
        Some([("partnerbilling.io/reinvite".to_string(), "2".to_string())].into());
    world.put_account(&again);
    let resent = world.reconcile_account("dec").await;
    assert_eq!(ready(&resent).1, "InvitationPending");
    assert_ne!(resent.status.invitation.unwrap().id, declined);
    world.reconcile_account("dec").await;
    assert_eq!(emu.count("organizations", "InviteAccountToOrganization"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_scp_keeps_its_policy_and_attachments_even_with_its_status_lost() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    let mut guard = scp("guard", "s3:*");
    guard.spec.policy_name = Some("guard-v1".into());
    let first = world.apply_scp(&guard).await;
    assert!(ready(&first).0, "{:?}", first.result);
    let id = first.status.policy_id.clone().unwrap();
    let mut spec = create_spec("guarded");
    spec["serviceControlPolicies"] = json!(["guard"]);
    world.put_account(&account("guarded", 1, spec));
    let out = world.converge_account("guarded", 20).await;
    assert!(ready(&out).0, "{:?}", out.result);
    let account_id = out.status.account_id.clone().unwrap();
    let orgs = world.org().await;
    let customer_policies = |orgs: aws_sdk_organizations::Client| async move {
        let mut v: Vec<(String, String)> = orgs
            .list_policies()
            .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
            .send()
            .await
            .unwrap()
            .policies()
            .iter()
            .filter(|p| !p.aws_managed())
            .map(|p| (p.name().unwrap().to_string(), p.id().unwrap().to_string()))
            .collect();
        v.sort();
        v
    };
    let attached_to_account = |orgs: aws_sdk_organizations::Client, account: String| async move {
        orgs.list_policies_for_target()
            .target_id(account)
            .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
            .send()
            .await
            .unwrap()
            .policies()
            .iter()
            .filter(|p| !p.aws_managed())
            .map(|p| p.id().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // Renamed with its status: UpdatePolicy, same id.
    guard.spec.policy_name = Some("guard-v2".into());
    guard.status = Some(first.status.clone());
    let renamed = world.apply_scp(&guard).await;
    assert!(ready(&renamed).0, "{:?}", renamed.result);
    assert_eq!(renamed.status.policy_id.as_deref(), Some(id.as_str()));
    assert!(
        renamed
            .changes
            .iter()
            .any(|c| c.detail.contains("rename from guard-v1")),
        "{:?}",
        renamed.changes
    );
    assert_eq!(
        customer_policies(orgs.clone()).await,
        vec![("guard-v2".to_string(), id.clone())]
    );
    // Renamed again, the status lost: found by its owner tag, not created a second time.
    guard.spec.policy_name = Some("guard-v3".into());
    guard.status = None;
    let again = world.apply_scp(&guard).await;
    assert!(ready(&again).0, "{:?}", again.result);
    assert_eq!(again.status.policy_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        customer_policies(orgs.clone()).await,
        vec![("guard-v3".to_string(), id.clone())]
    );
    // The account keeps the same policy attached, and stays Ready.
    let out = world.converge_account("guarded", 5).await;
    assert!(ready(&out).0, "{:?}", out.result);
    assert_eq!(
        attached_to_account(orgs.clone(), account_id.clone()).await,
        vec![id.clone()]
    );
    // A policy no object names (here: its object is gone from the catalog) is looked at for
    // the owner tag, and not taken over by another object.
    world.catalog.remove::<ServiceControlPolicy>(NS, "guard");
    let mut other = scp("other", "ec2:*");
    other.spec.policy_name = Some("other-v1".into());
    let created = world.apply_scp(&other).await;
    assert!(ready(&created).0, "{:?}", created.result);
    assert_ne!(created.status.policy_id.as_deref(), Some(id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scps_attach_detach_and_drift_is_corrected() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    let deny_s3 = scp("deny-s3", "s3:*");
    let deny_ec2 = scp("deny-ec2", "ec2:*");
    assert!(ready(&world.apply_scp(&deny_s3).await).0);
    assert!(ready(&world.apply_scp(&deny_ec2).await).0);
    let mut spec = create_spec("guarded");
    spec["serviceControlPolicies"] = json!(["deny-s3", "deny-ec2"]);
    world.put_account(&account("guarded", 1, spec));
    let out = world.converge_account("guarded", 20).await;
    assert!(ready(&out).0, "{:?}", out.result);
    assert_eq!(out.status.attached_policies, vec!["deny-ec2", "deny-s3"]);
    let id = out.status.account_id.clone().unwrap();
    let orgs = world.org().await;
    let attached = |orgs: aws_sdk_organizations::Client, id: String| async move {
        let mut names: Vec<String> = orgs
            .list_policies_for_target()
            .target_id(id)
            .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
            .send()
            .await
            .unwrap()
            .policies
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        attached(orgs.clone(), id.clone()).await,
        vec!["FullAWSAccess", "deny-ec2", "deny-s3"]
    );

    // Drift: detached directly in AWS, re-attached at the next reconcile.
    let s3_id = world
        .catalog
        .get::<ServiceControlPolicy>(NS, "deny-s3")
        .unwrap()
        .status
        .clone()
        .unwrap()
        .policy_id
        .unwrap();
    orgs.detach_policy()
        .policy_id(&s3_id)
        .target_id(&id)
        .send()
        .await
        .unwrap();
    let fixed = world.reconcile_account("guarded").await;
    assert!(
        fixed.changes.iter().any(|c| c.target.contains("deny-s3")),
        "{:?}",
        fixed.changes
    );
    assert_eq!(
        attached(orgs.clone(), id.clone()).await,
        vec!["FullAWSAccess", "deny-ec2", "deny-s3"]
    );

    // Removed from the spec: detached; FullAWSAccess stays.
    let mut a = world.get_account("guarded");
    a.spec.service_control_policies = vec!["deny-ec2".into()];
    a.metadata.generation = Some(2);
    world.put_account(&a);
    world.reconcile_account("guarded").await;
    assert_eq!(
        attached(orgs.clone(), id.clone()).await,
        vec!["FullAWSAccess", "deny-ec2"]
    );

    // A policy still attached is not deleted; once detached it is.
    let mut ec2 = world
        .catalog
        .get::<ServiceControlPolicy>(NS, "deny-ec2")
        .unwrap()
        .clone();
    ec2.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let blocked =
        service_control_policy::cleanup(&ec2, &world.ctx, Run::at(Mode::Apply, &now())).await;
    assert_eq!(ready(&blocked).1, "PolicyInUse", "{:?}", blocked.result);
    assert!(ready(&blocked).2.contains(&id));
    let mut a = world.get_account("guarded");
    a.spec.service_control_policies = vec![];
    a.metadata.generation = Some(3);
    world.put_account(&a);
    world.reconcile_account("guarded").await;
    assert_eq!(
        attached(orgs.clone(), id.clone()).await,
        vec!["FullAWSAccess"]
    );
    let deleted =
        service_control_policy::cleanup(&ec2, &world.ctx, Run::at(Mode::Apply, &now())).await;
    assert_eq!(
        deleted.result.as_ref().map(|v| v.reason.as_str()).ok(),
        Some("Deleted")
    );

    // Too long a document: a condition with its length, no AWS call.
    let before = emu.count("organizations", "CreatePolicy");
    let mut long = scp("long", "s3:*");
    long.spec.document["Statement"][0]["Action"] = json!(format!("s3:{}", "x".repeat(5200)));
    let refused = world.apply_scp(&long).await;
    assert_eq!(ready(&refused).1, "DocumentTooLong");
    assert!(
        ready(&refused).2.contains("characters"),
        "{}",
        ready(&refused).2
    );
    assert_eq!(emu.count("organizations", "CreatePolicy"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ous_move_rename_and_refuse_to_delete_when_not_empty() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    let customers = ou("customers", "Customers", None, &[]);
    let eu = ou("eu", "EU", Some("customers"), &[]);
    let sandbox = ou("sandbox", "Sandbox", None, &[]);
    for o in [&customers, &eu, &sandbox] {
        let out = world.apply_ou(o).await;
        assert!(ready(&out).0, "{:?}", out.result);
    }
    let ou_id = |n: &str| {
        world
            .catalog
            .get::<OrganizationalUnit>(NS, n)
            .unwrap()
            .status
            .clone()
            .unwrap()
            .ou_id
            .unwrap()
    };
    let mut spec = create_spec("mover");
    spec["parentRef"] = json!({"name": "eu"});
    world.put_account(&account("mover", 1, spec));
    let out = world.converge_account("mover", 20).await;
    assert!(ready(&out).0, "{:?}", out.result);
    let id = out.status.account_id.clone().unwrap();
    let parent = |orgs: aws_sdk_organizations::Client, id: String| async move {
        orgs.list_parents()
            .child_id(id)
            .send()
            .await
            .unwrap()
            .parents
            .unwrap()[0]
            .id
            .clone()
            .unwrap()
    };
    assert_eq!(parent(world.org().await, id.clone()).await, ou_id("eu"));

    // Moved in the spec.
    let mut a = world.get_account("mover");
    a.spec.parent_ref = Some(partner_billing_operator::api::LocalRef {
        name: "sandbox".into(),
    });
    a.metadata.generation = Some(2);
    world.put_account(&a);
    world.reconcile_account("mover").await;
    assert_eq!(
        parent(world.org().await, id.clone()).await,
        ou_id("sandbox")
    );
    // Moved outside the operator: moved back at the next reconcile.
    world
        .org()
        .await
        .move_account()
        .account_id(&id)
        .source_parent_id(ou_id("sandbox"))
        .destination_parent_id(ou_id("customers"))
        .send()
        .await
        .unwrap();
    world.reconcile_account("mover").await;
    assert_eq!(
        parent(world.org().await, id.clone()).await,
        ou_id("sandbox")
    );

    // Rename.
    let mut renamed = sandbox.clone();
    renamed.spec.name = "Playground".into();
    renamed.metadata.generation = Some(2);
    let out = world.apply_ou(&renamed).await;
    assert!(ready(&out).0, "{:?}", out.result);
    let described = world
        .org()
        .await
        .describe_organizational_unit()
        .organizational_unit_id(ou_id("sandbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.organizational_unit.unwrap().name.as_deref(),
        Some("Playground")
    );

    // Deleting a non-empty OU is refused with what is inside; the parent with a child OU too.
    let mut gone = world
        .catalog
        .get::<OrganizationalUnit>(NS, "sandbox")
        .unwrap()
        .clone();
    gone.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let refused =
        organizational_unit::cleanup(&gone, &world.ctx, Run::at(Mode::Apply, &now())).await;
    let (_, reason, message) = ready(&refused);
    assert_eq!(reason, "OrganizationalUnitNotEmpty");
    assert!(message.contains(&id), "{message}");
    let parent_ou = world
        .catalog
        .get::<OrganizationalUnit>(NS, "customers")
        .unwrap()
        .clone();
    let refused =
        organizational_unit::cleanup(&parent_ou, &world.ctx, Run::at(Mode::Apply, &now())).await;
    assert!(ready(&refused).2.contains("EU"), "{}", ready(&refused).2);
    // Emptied, it is deleted.
    let mut a = world.get_account("mover");
    a.spec.parent_ref = None;
    a.metadata.generation = Some(3);
    world.put_account(&a);
    world.reconcile_account("mover").await;
    let deleted =
        organizational_unit::cleanup(&gone, &world.ctx, Run::at(Mode::Apply, &now())).await;
    assert_eq!(
        deleted.result.as_ref().map(|v| v.reason.as_str()).ok(),
        Some("Deleted"),
        "{:?}",
        deleted.result
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_accounts_within_budget_over_budget_and_never_the_management_account() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    // The Payer allows 2 closures per 30 days.
    let names = ["close-a", "close-b", "close-c"];
    for (i, n) in names.iter().enumerate() {
        let mut spec = create_spec(n);
        spec["deletionPolicy"] = json!("Close");
        world.put_account(&account(n, i as u32 + 1, spec));
        assert!(ready(&world.converge_account(n, 30).await).0);
    }
    let deleting = |name: &str| {
        let mut a = world.get_account(name);
        a.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        a
    };
    for n in &names[..2] {
        let out =
            linked_account::cleanup(&deleting(n), &world.ctx, Run::at(Mode::Apply, &now())).await;
        assert_eq!(
            out.result.as_ref().map(|v| v.reason.as_str()).ok(),
            Some("Closed"),
            "{n}: {:?}",
            out.result
        );
    }
    assert_eq!(emu.count("organizations", "CloseAccount"), 2);
    let over = linked_account::cleanup(
        &deleting("close-c"),
        &world.ctx,
        Run::at(Mode::Apply, &now()),
    )
    .await;
    let (_, reason, message) = ready(&over);
    assert_eq!(reason, "CloseBudgetExhausted");
    assert!(message.contains("2 of 2"), "{message}");
    assert_eq!(
        emu.count("organizations", "CloseAccount"),
        2,
        "over budget: no call"
    );
    // Deleting a closed account's object again does not call CloseAccount twice.
    let again = linked_account::cleanup(
        &deleting("close-a"),
        &world.ctx,
        Run::at(Mode::Apply, &now()),
    )
    .await;
    assert_eq!(
        again.result.as_ref().map(|v| v.reason.as_str()).ok(),
        Some("Closed")
    );
    assert_eq!(emu.count("organizations", "CloseAccount"), 2);

    // The management account: adopted, never closed.
    let mut spec = json!({"adopt": {"accountId": ACCOUNT}, "deletionPolicy": "Close"});
    spec["payerRef"] = json!({"name": "acme"});
    world.put_account(&account("mgmt", 9, spec));
    assert!(ready(&world.reconcile_account("mgmt").await).0);
    let out =
        linked_account::cleanup(&deleting("mgmt"), &world.ctx, Run::at(Mode::Apply, &now())).await;
    assert_eq!(
        out.result.as_ref().map(|v| v.reason.as_str()).ok(),
        Some("ManagementAccountProtected")
    );
    assert!(out.events.iter().any(|e| e.warning));
    assert_eq!(emu.count("organizations", "CloseAccount"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_state_resync_costs_list_calls_per_payer_not_calls_per_account() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    assert!(ready(&world.apply_scp(&scp("deny-s3", "s3:*")).await).0);
    assert!(
        ready(
            &world
                .apply_ou(&ou("customers", "Customers", None, &["deny-s3"]))
                .await
        )
        .0
    );
    let n = 30;
    for i in 0..n {
        let name = format!("steady-{i:02}");
        let mut spec = create_spec(&name);
        spec["parentRef"] = json!({"name": "customers"});
        spec["tags"] = json!({"customer": name});
        world.put_account(&account(&name, i + 1, spec));
    }
    for _ in 0..40 {
        let mut all_ready = true;
        for i in 0..n {
            let name = format!("steady-{i:02}");
            let a = world.get_account(&name);
            if !a
                .status
                .as_ref()
                .is_some_and(|s| conditions::is_ready(&s.conditions))
            {
                all_ready = false;
                world.reconcile_account(&name).await;
            }
        }
        if all_ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // One resync: a new operator process whose snapshot is shared by every object of the payer.
    let mut world = world;
    world.ctx = World::operator(emu, world.catalog.clone())
        .with_shared(Arc::new(SnapshotCache::new(Duration::from_secs(60))))
        .with_shared(Arc::new(SharedReads::<BillingSnapshot>::new(
            Duration::from_secs(60),
        )));
    emu.control("DELETE", "/_emulator/requests", None);
    for i in 0..n {
        let out = world.reconcile_account(&format!("steady-{i:02}")).await;
        assert!(ready(&out).0, "{:?}", out.result);
        assert!(out.changes.is_empty(), "{:?}", out.changes);
    }
    let counts = emu.control("GET", "/_emulator/requests", None);
    let per_op: Vec<(String, u64)> = counts["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["operation"].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let total: u64 = per_op.iter().map(|(_, c)| c).sum();
    eprintln!("steady-state resync of {n} accounts: {total} AWS calls: {per_op:?}");
    // Per payer: DescribeOrganization, ListRoots, ceil((n+1)/20) ListAccounts pages, one
    // ListOrganizationalUnitsForParent and ListAccountsForParent per parent (2 parents,
    // ListAccountsForParent paged by 20), ListPolicies, a ListTargetsForPolicy per SCP
    // (FullAWSAccess is attached to every account: paged), ListCreateAccountStatus,
    // ListHandshakesForOrganization, and GetCallerIdentity-free credentials.
    assert!(
        per_op
            .iter()
            .all(|(op, _)| op.starts_with("List") || op.starts_with("Describe")),
        "{per_op:?}"
    );
    assert!(
        !per_op
            .iter()
            .any(|(op, _)| op == "ListTagsForResource" || op == "DescribeAccount"),
        "{per_op:?}"
    );
    assert!(total <= 20, "{total} calls for {n} accounts: {per_op:?}");
}

fn set_smtp(world: &World, port: u16) {
    let mut p = world.catalog.get::<Payer>(NS, "acme").unwrap();
    p.spec.notifications = Some(
        serde_json::from_value(json!({"smtp": {"host": "127.0.0.1", "port": port, "tls": "None", "from": "billing@partner.example"}}))
            .unwrap(),
    );
    p.status = Some(serde_json::from_value(json!({"organizationId": "o-testorg"})).unwrap());
    world.catalog.put(p);
}

fn notified(
    status: &partner_billing_operator::api::LinkedAccountStatus,
) -> Option<(ConditionStatus, String)> {
    conditions::find(&status.conditions, "Notified").map(|c| (c.status, c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_mailed_once_and_a_dead_mail_server_never_blocks_the_account() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    set_smtp(&world, emu.smtp_port);

    let mut spec = create_spec("mailed");
    spec["notifications"] =
        json!({"recipients": ["owner@northwind.example", "admin@northwind.example"]});
    spec["deletionPolicy"] = json!("Close");
    world.put_account(&account("mailed", 1, spec));
    let out = world.converge_account("mailed", 20).await;
    assert!(ready(&out).0, "{:?}", out.result);
    assert_eq!(
        notified(&out.status),
        Some((ConditionStatus::True, "Sent".into()))
    );
    let id = out.status.account_id.clone().unwrap();
    let mail = emu.mail();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(
        mail[0].0,
        vec!["owner@northwind.example", "admin@northwind.example"]
    );
    for needle in [
        id.as_str(),
        "mailed@example.com",
        "Next steps",
        "o-testorg",
        "From: billing@partner.example",
    ] {
        assert!(mail[0].1.contains(needle), "{needle} not in {}", mail[0].1);
    }
    // Delivered once: later reconciles do not send again.
    world.reconcile_account("mailed").await;
    assert_eq!(emu.mail().len(), 1);
    // Not even with the status lost (a restored backup, a re-created object): the account's
    // partnerbilling.io/notified tag remembers it.
    let mut lost = world.get_account("mailed");
    lost.status = None;
    world.put_account(&lost);
    let out = world.converge_account("mailed", 5).await;
    assert!(ready(&out).0, "{:?}", out.result);
    assert_eq!(out.status.account_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        notified(&out.status),
        Some((ConditionStatus::True, "Sent".into()))
    );
    assert_eq!(out.status.notifications.len(), 1);
    assert_eq!(emu.mail().len(), 1);

    // The mail server is down: the account is still Ready, the condition says why, and the
    // object is looked at again soon.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    set_smtp(&world, dead);
    let mut spec = create_spec("quiet");
    spec["notifications"] = json!({"recipients": ["owner@contoso.example"], "events": ["Joined"]});
    world.put_account(&account("quiet", 2, spec));
    let out = world.converge_account("quiet", 20).await;
    assert!(ready(&out).0, "{:?}", out.result);
    let (status, reason) = notified(&out.status).unwrap();
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, "SmtpFailed")
    );
    assert!(
        out.result
            .as_ref()
            .unwrap()
            .requeue
            .is_some_and(|d| d <= Duration::from_secs(60))
    );
    assert!(out.status.notifications.is_empty());
    // Back up: sent at the next reconcile.
    set_smtp(&world, emu.smtp_port);
    let out = world.reconcile_account("quiet").await;
    assert_eq!(
        notified(&out.status),
        Some((ConditionStatus::True, "Sent".into()))
    );
    assert_eq!(emu.mail().len(), 2);

    // Closing sends the closure notice.
    let mut a = world.get_account("mailed");
    a.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let out = linked_account::cleanup(&a, &world.ctx, Run::at(Mode::Apply, &now())).await;
    assert_eq!(
        out.result.as_ref().map(|v| v.reason.as_str()).ok(),
        Some("Closed"),
        "{:?}",
        out.result
    );
    let mail = emu.mail();
    assert_eq!(mail.len(), 3);
    assert!(
        mail[2].1.contains("has been closed") && mail[2].1.contains("90 days"),
        "{}",
        mail[2].1
    );
}

/// The deletion of account `name`'s object, as the controller sees it.
fn deleting(world: &World, name: &str) -> LinkedAccount {
    let mut a = world.get_account(name);
    a.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_account_is_not_taken_for_closed_and_is_never_closed_while_suspended() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    let mut spec = create_spec("susp");
    spec["deletionPolicy"] = json!("Close");
    world.put_account(&account("susp", 1, spec));
    let out = world.converge_account("susp", 30).await;
    assert!(ready(&out).0, "{:?}", ready(&out));
    let id = out.status.account_id.clone().expect("account id");

    // AWS suspends it (Account.State SUSPENDED: AWS-enforced, not a closure).
    emu.control(
        "POST",
        &format!("{ORG}suspend"),
        Some(json!({"accountId": id, "managementAccountId": ACCOUNT})),
    );
    let out = world.reconcile_account("susp").await;
    let (is_ready, reason, message) = ready(&out);
    assert!(!is_ready);
    assert_eq!(reason, "AccountSuspended", "{message}");
    assert!(message.contains("AWS Support"), "{message}");
    assert!(!message.contains("closed or being closed"), "{message}");
    assert_eq!(out.status.state.as_deref(), Some("SUSPENDED"));

    // Deleting it with deletionPolicy Close waits, says why, and does not call CloseAccount.
    let del = linked_account::cleanup(
        &deleting(&world, "susp"),
        &world.ctx,
        Run::at(Mode::Apply, &now()),
    )
    .await;
    match &del.result {
        Err(Error::Waiting { reason, .. }) => assert_eq!(*reason, "AccountSuspended"),
        other => panic!("expected to wait on the suspension: {other:?}"),
    }
    let (is_ready, reason, message) = ready(&del);
    assert!(!is_ready);
    assert_eq!(reason, "AccountSuspended");
    assert!(message.contains("not closed"), "{message}");
    assert_eq!(emu.count("organizations", "CloseAccount"), 0);

    // Once AWS lifts the suspension, the deletion closes it.
    emu.control(
        "POST",
        &format!("{ORG}reinstate"),
        Some(json!({"accountId": id, "managementAccountId": ACCOUNT})),
    );
    let del = linked_account::cleanup(
        &deleting(&world, "susp"),
        &world.ctx,
        Run::at(Mode::Apply, &now()),
    )
    .await;
    let reason = match &del.result {
        Ok(v) => v.reason.clone(),
        Err(Error::Waiting { reason, .. }) => reason.to_string(),
        Err(e) => panic!("{e:?}"),
    };
    assert!(reason == "Closed" || reason == "Closing", "{reason}");
    assert_eq!(emu.count("organizations", "CloseAccount"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_closed_or_closing_account_is_refused_clearly_without_calling_aws() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    let mut spec = create_spec("gone");
    spec["deletionPolicy"] = json!("Remove");
    world.put_account(&account("gone", 1, spec));
    let out = world.converge_account("gone", 30).await;
    assert!(ready(&out).0, "{:?}", ready(&out));
    let id = out.status.account_id.clone().expect("account id");
    // Someone closes it outside the operator: PENDING_CLOSURE, then CLOSED.
    world
        .org()
        .await
        .close_account()
        .account_id(&id)
        .send()
        .await
        .expect("CloseAccount");
    for expected in ["PENDING_CLOSURE", "CLOSED"] {
        if expected == "CLOSED" {
            emu.control(
                "POST",
                &format!("{ORG}advance"),
                Some(json!({"seconds": 1})),
            );
        }
        let del = linked_account::cleanup(
            &deleting(&world, "gone"),
            &world.ctx,
            Run::at(Mode::Apply, &now()),
        )
        .await;
        match &del.result {
            Err(Error::Terminal { reason, message }) => {
                assert_eq!(*reason, "AccountClosed", "{message}");
                assert!(message.contains(expected), "{message}");
                assert!(message.contains("deletionPolicy Remove"), "{message}");
                assert!(!message.contains("stand alone"), "{message}");
            }
            other => panic!("{expected}: expected a terminal AccountClosed: {other:?}"),
        }
        let (is_ready, reason, _) = ready(&del);
        assert!(!is_ready);
        assert_eq!(reason, "AccountClosed");
        assert_eq!(
            emu.count("organizations", "RemoveAccountFromOrganization"),
            0,
            "{expected}: RemoveAccountFromOrganization must not be called"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_pending_activation_is_reported_then_managed_once_active() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    // AWS holds the created account in PENDING_ACTIVATION for 2 seconds.
    emu.control(
        "POST",
        &format!("{ORG}settings"),
        Some(json!({"activationDelaySeconds": 2})),
    );
    world.put_account(&account("fresh", 1, create_spec("fresh")));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut pending_seen = None;
    let out = loop {
        let out = world.reconcile_account("fresh").await;
        let (is_ready, reason, message) = ready(&out);
        if reason == "AccountPendingActivation" {
            assert!(!is_ready, "{message}");
            assert!(message.contains("PENDING_ACTIVATION"), "{message}");
            assert_eq!(out.status.state.as_deref(), Some("PENDING_ACTIVATION"));
            pending_seen = Some(message.clone());
        }
        if is_ready || std::time::Instant::now() > deadline {
            break out;
        }
        assert!(in_progress(&out.result), "{reason}: {message}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert!(
        pending_seen.is_some(),
        "Ready=False AccountPendingActivation was never reported"
    );
    let (is_ready, reason, message) = ready(&out);
    assert!(is_ready, "{reason}: {message}");
    assert_eq!(reason, "Active");
    assert_eq!(out.status.state.as_deref(), Some("ACTIVE"));
}

/// Tenancy (issue 17): the objects of a Payer that would have the operator assume a role
/// without a PayerGrant are refused too (`NotGranted`), with no AWS call, and so is their
/// deletion (the finalizer stays; nothing in AWS is touched).
#[tokio::test]
async fn objects_of_an_ungranted_payer_make_no_aws_call() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    let mut p = payer_object();
    p.spec.credentials = Some(
        serde_json::from_value(
            json!({"assumeRole": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/Billing")}}),
        )
        .unwrap(),
    );
    world.catalog.put(p);
    world.put_account(&account("refused", 1, create_spec("refused")));
    emu.control("DELETE", "/_emulator/requests", None);

    let out = world.reconcile_account("refused").await;
    let err = out.result.expect_err("refused");
    assert_eq!(err.reason(), "NotGranted");
    assert!(err.is_terminal());
    assert!(
        err.to_string()
            .contains("no PayerGrant covers namespace billing"),
        "{err}"
    );
    let ready = conditions::find(&out.status.conditions, READY).expect("Ready");
    assert_eq!(ready.reason, "NotGranted");
    let mut gone = world.get_account("refused");
    gone.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-11-24T11:00:00Z".parse().unwrap(),
    ));
    // Retain (the default) needs nothing from AWS: released.
    let retained = linked_account::cleanup(&gone, &world.ctx, Run::at(Mode::Apply, &now())).await;
    assert_eq!(retained.result.expect("released").reason, "Released");
    // Remove would call AWS: refused, the finalizer stays.
    gone.spec.deletion_policy = serde_json::from_value(json!("Remove")).unwrap();
    let cleanup = linked_account::cleanup(&gone, &world.ctx, Run::at(Mode::Apply, &now())).await;
    assert_eq!(
        cleanup.result.expect_err("refused too").reason(),
        "NotGranted"
    );
    assert_eq!(emu.total_requests(), 0, "no AWS call for a refused payer");
}

/// The notification marks (tag `partnerbilling.io/notified`) go through the run's write path:
/// a plan, an Observe run or a planned deletion of an account that would be announced sends
/// no mail and makes no TagResource call; the applying run that follows does both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_or_observe_run_neither_mails_nor_marks_the_account() {
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let world = World::new(emu).await;
    set_smtp(&world, emu.smtp_port);
    // Created with no one to tell.
    let mut spec = create_spec("quietly");
    spec["deletionPolicy"] = json!("Close");
    world.put_account(&account("quietly", 1, spec));
    let out = world.converge_account("quietly", 20).await;
    assert!(ready(&out).0, "{:?}", out.result);
    let id = out.status.account_id.clone().expect("account id");
    // Now with recipients: an applying run would announce it (mail and mark).
    let mut a = world.get_account("quietly");
    a.spec.notifications =
        Some(serde_json::from_value(json!({"recipients": ["owner@northwind.example"]})).unwrap());
    world.put_account(&a);
    let mails = emu.mail().len();
    emu.control("DELETE", "/_emulator/requests", None);
    for mode in [Mode::Plan, Mode::Observe] {
        let a = world.get_account("quietly");
        let out = linked_account::reconcile(&a, &world.ctx, Run::at(mode, &now())).await;
        assert!(out.result.is_ok(), "{mode:?}: {:?}", out.result);
        assert!(
            out.changes.iter().all(|c| !c.target.contains("notified")),
            "{mode:?}: {:?}",
            out.changes
        );
        assert_eq!(emu.count("organizations", "TagResource"), 0, "{mode:?}");
        assert_eq!(emu.mail().len(), mails, "{mode:?}: no mail");
    }
    // The applying run announces it, and its changes list the marks it wrote.
    let out = world.reconcile_account("quietly").await;
    assert_eq!(
        notified(&out.status),
        Some((ConditionStatus::True, "Sent".into()))
    );
    assert_eq!(emu.mail().len(), mails + 1);
    assert_eq!(
        emu.count("organizations", "TagResource"),
        2,
        "sending, sent"
    );
    let marks: Vec<_> = out
        .changes
        .iter()
        .filter(|c| c.target == format!("tag partnerbilling.io/notified of {id}"))
        .map(|c| c.detail.as_str())
        .collect();
    assert_eq!(
        marks,
        ["Joined sending", "Joined sent"],
        "{:?}",
        out.changes
    );

    // Closed outside the operator: deleting the object would send the closure notice. A
    // planned deletion does not (nor any mark); the applying one does.
    world
        .org()
        .await
        .close_account()
        .account_id(&id)
        .send()
        .await
        .expect("CloseAccount");
    emu.control(
        "POST",
        &format!("{ORG}advance"),
        Some(json!({"seconds": 1})),
    );
    emu.control("DELETE", "/_emulator/requests", None);
    let planned = linked_account::cleanup(
        &deleting(&world, "quietly"),
        &world.ctx,
        Run::at(Mode::Plan, &now()),
    )
    .await;
    assert_eq!(
        planned.result.as_ref().map(|v| v.reason.as_str()).ok(),
        Some("Closed"),
        "{:?}",
        planned.result
    );
    let closed = partner_billing_operator::api::notifications::NotificationEvent::Closed;
    assert!(
        planned
            .status
            .notifications
            .iter()
            .all(|r| r.event != closed),
        "{:?}",
        planned.status
    );
    assert_eq!(
        emu.mail().len(),
        mails + 1,
        "a planned deletion mails no one"
    );
    assert_eq!(emu.count("organizations", "TagResource"), 0);
    assert_eq!(emu.count("organizations", "UntagResource"), 0);
    let applied = linked_account::cleanup(
        &deleting(&world, "quietly"),
        &world.ctx,
        Run::at(Mode::Apply, &now()),
    )
    .await;
    assert_eq!(
        notified(&applied.status),
        Some((ConditionStatus::True, "Sent".into())),
        "{:?}",
        applied.result
    );
    assert_eq!(emu.mail().len(), mails + 2);
}
