//! Controller tests against a mocked Kubernetes API server (kube-rs' `tower_test` pattern):
//! every request the reconciler makes is checked (method, path, body) and answered.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::*;
use crate::api::Payer;
use crate::aws::fake::FakeAws;
use crate::metrics::Metrics;
use crate::reconcile::ReconcileContext;
use crate::secrets::StaticSecrets;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const PAYER_PATH: &str = "/apis/partnerbilling.io/v1alpha1/namespaces/billing/payers/acme";
const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/billing/events";

fn payer_json(finalizer: bool, deleting: bool, status: Option<Value>) -> Value {
    let mut p = json!({
        "apiVersion": "partnerbilling.io/v1alpha1",
        "kind": "Payer",
        "metadata": {
            "name": "acme", "namespace": "billing", "uid": "7d2c6a43-0c1e-4b8a-9f51-3c3b1f0e2a10",
            "generation": 3, "resourceVersion": "100"
        },
        "spec": {"accountId": "111122223333"}
    });
    if finalizer {
        p["metadata"]["finalizers"] = json!([crate::api::FINALIZER]);
    }
    if deleting {
        p["metadata"]["deletionTimestamp"] = json!("2026-11-24T10:00:00Z");
    }
    if let Some(s) = status {
        p["status"] = s;
    }
    p
}

fn payer(v: &Value) -> Arc<Payer> {
    Arc::new(serde_json::from_value(v.clone()).expect("payer"))
}

fn context(aws: FakeAws) -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    // Tenancy (issue 17): these Payers use the operator's identity; grants are not the point here.
    let reconcile = ReconcileContext::new(Arc::new(aws), Arc::new(StaticSecrets::default()))
        .with_shared(Arc::new(crate::payer::tenancy::Grants(Arc::new(
            crate::payer::tenancy::Unrestricted,
        ))));
    let ctx = Context::new(client, reconcile, Metrics::shared(), Settings::default());
    (Arc::new(ctx), handle)
}

/// Answer the next request, which must be `method` on `path`, with `reply`; return its
/// query string and JSON body.
async fn serve(
    handle: &mut Handle,
    method: Method,
    path: &str,
    reply: impl FnOnce(&Value) -> Value,
) -> (String, Option<String>, Value) {
    let (request, respond) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request came; expected {method} {path}"))
        .expect("service dropped");
    assert_eq!(request.method(), method, "{}", request.uri());
    assert_eq!(request.uri().path(), path);
    let query = request.uri().query().unwrap_or_default().to_string();
    let content_type = request
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = request.into_body().collect_bytes().await.expect("body");
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    let answer = reply(&body);
    respond.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap(),
    );
    (query, content_type, body)
}

/// No further request arrives.
async fn quiet(handle: &mut Handle) {
    if let Ok(Some((request, _))) =
        tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await
    {
        panic!("unexpected request {} {}", request.method(), request.uri());
    }
}

fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition in {status}"))
}

/// The first full reconcile's status patch and Event of the `acme` Payer.
fn assert_verified(patch: &Value, event: &Value) {
    assert_eq!(patch["apiVersion"], "partnerbilling.io/v1alpha1");
    assert_eq!(patch["kind"], "Payer");
    let status = &patch["status"];
    let ready = condition(status, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "Verified");
    assert_eq!(ready["observedGeneration"], 3);
    assert!(ready["lastTransitionTime"].is_string());
    assert_eq!(condition(status, "Synced")["status"], "True");
    assert_eq!(status["organizationId"], "o-fake1234567");
    assert_eq!(status["featureSet"], "ALL");
    assert_eq!(status["memberAccounts"], 3);
    assert_eq!(status["observedGeneration"], 3);
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["reason"], "Verified");
    assert_eq!(event["regarding"]["name"], "acme");
}

#[tokio::test]
async fn first_reconcile_adds_the_finalizer_then_status_is_patched_ready() {
    let aws = FakeAws::management_account("111122223333", 2);
    let (ctx, mut api) = context(aws.clone());
    ctx.sync.expect([sync_key("Payer", "billing", "acme")]);

    // 1. No finalizer yet: it is added (guarded by a JSON-patch test) and nothing else happens.
    let fresh = payer_json(false, false, None);
    let server = tokio::spawn(async move {
        let (_, content_type, body) = serve(&mut api, Method::PATCH, PAYER_PATH, |_| {
            payer_json(true, false, None)
        })
        .await;
        assert_eq!(content_type.as_deref(), Some("application/json-patch+json"));
        let ops = body.as_array().expect("JSON patch");
        assert!(
            ops.iter().any(|op| op["op"] == "add"
                && op["path"] == "/metadata/finalizers"
                && op["value"] == json!([crate::api::FINALIZER])),
            "{body}"
        );
        quiet(&mut api).await;
        api
    });
    let action = kinds::reconcile_kind(payer(&fresh), ctx.clone())
        .await
        .expect("reconcile");
    assert_eq!(action, Action::await_change());
    let mut api = server.await.expect("server");
    assert!(
        aws.calls().is_empty(),
        "AWS is not called before the finalizer is in place"
    );
    assert!(
        !ctx.sync.is_ready(),
        "adding the finalizer is not the Payer's first reconcile"
    );

    // 2. With the finalizer: status is server-side applied, then a Normal event is recorded.
    let with_finalizer = payer_json(true, false, None);
    let server = tokio::spawn(async move {
        let status_path = format!("{PAYER_PATH}/status");
        let (query, content_type, body) = serve(&mut api, Method::PATCH, &status_path, |b| {
            let mut p = payer_json(true, false, None);
            p["status"] = b["status"].clone();
            p
        })
        .await;
        assert_eq!(
            content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert!(
            query.contains("fieldManager=partner-billing-operator"),
            "{query}"
        );
        assert!(query.contains("force=true"), "{query}");
        let (_, _, event) = serve(&mut api, Method::POST, EVENTS_PATH, |b| b.clone()).await;
        quiet(&mut api).await;
        (body, event, api)
    });
    let action = kinds::reconcile_kind(payer(&with_finalizer), ctx.clone())
        .await
        .expect("reconcile");
    assert_eq!(action, Action::requeue(ctx.settings.resync));
    let (patch, event, mut api) = server.await.expect("server");
    assert!(ctx.sync.is_ready(), "the first full sync is complete");

    assert_verified(&patch, &event);
    let status = &patch["status"];
    // The Payer's accounts come from the payer's organization snapshot (issue 20: one
    // listing per payer and pass, shared with every object of the payer).
    assert_eq!(
        aws.calls(),
        [
            "GetCallerIdentity",
            "DescribeOrganization",
            "ListRoots",
            "ListCreateAccountStatus",
            "ListAccounts",
            "ListAccountsForParent",
            "ListOrganizationalUnitsForParent",
            "ListPolicies",
            "ListHandshakesForOrganization"
        ]
    );

    // 3. Nothing changed: no status patch and no event.
    let mut steady = with_finalizer.clone();
    steady["status"] = status.clone();
    let server = tokio::spawn(async move {
        quiet(&mut api).await;
    });
    let action = kinds::reconcile_kind(payer(&steady), ctx.clone())
        .await
        .expect("reconcile");
    assert_eq!(action, Action::requeue(ctx.settings.resync));
    server.await.expect("no requests in steady state");
}

#[tokio::test]
async fn a_failing_aws_call_sets_ready_false_with_its_reason_and_waits() {
    let aws = FakeAws::management_account("111122223333", 0);
    aws.fail_with(
        true,
        "AccessDenied",
        "sts:GetCallerIdentity was denied: grant the operator's role access",
    );
    let (ctx, mut api) = context(aws.clone());
    let server = tokio::spawn(async move {
        let (_, _, body) = serve(
            &mut api,
            Method::PATCH,
            &format!("{PAYER_PATH}/status"),
            |b| {
                let mut p = payer_json(true, false, None);
                p["status"] = b["status"].clone();
                p
            },
        )
        .await;
        let (_, _, event) = serve(&mut api, Method::POST, EVENTS_PATH, |b| b.clone()).await;
        quiet(&mut api).await;
        (body, event)
    });
    let action = kinds::reconcile_kind(payer(&payer_json(true, false, None)), ctx.clone())
        .await
        .expect("a terminal error is reported in status, not returned");
    // No hot loop: the object waits for a change (or the slow re-check).
    assert_eq!(action, Action::requeue(ctx.settings.terminal_recheck));
    let (patch, event) = server.await.expect("server");
    let ready = condition(&patch["status"], "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "AccessDenied");
    assert!(
        ready["message"].as_str().unwrap().contains("grant"),
        "{ready}"
    );
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "AccessDenied");
    assert!(
        ctx.metrics.encode().contains(
            r#"reconcile_failures_total{kind="Payer",class="terminal",reason="AccessDenied"} 1"#
        ),
        "{}",
        ctx.metrics.encode()
    );
}

#[tokio::test]
async fn a_retryable_failure_is_returned_and_backs_off_per_object() {
    let aws = FakeAws::management_account("111122223333", 0);
    aws.fail_with(
        false,
        "AwsThrottled",
        "organizations:ListAccounts was throttled",
    );
    let (ctx, mut api) = context(aws.clone());
    let server = tokio::spawn(async move {
        let (_, _, body) = serve(
            &mut api,
            Method::PATCH,
            &format!("{PAYER_PATH}/status"),
            |b| {
                let mut p = payer_json(true, false, None);
                p["status"] = b["status"].clone();
                p
            },
        )
        .await;
        quiet(&mut api).await;
        body
    });
    let obj = payer(&payer_json(true, false, None));
    let err = kinds::reconcile_kind(obj.clone(), ctx.clone())
        .await
        .expect_err("retryable errors go to the error policy");
    assert_eq!(err.reason(), "AwsThrottled");
    let patch = server.await.expect("server");
    let synced = condition(&patch["status"], "Synced");
    assert_eq!(synced["status"], "False");
    assert_eq!(synced["reason"], "AwsThrottled");

    let base = ctx.settings.backoff.base;
    for n in 0..4u32 {
        let d = retry_delay(obj.as_ref(), &err, &ctx);
        let full = base * 2u32.pow(n);
        assert!(
            d >= full / 2 && d <= full,
            "retry {n}: {d:?} not within [{:?}, {full:?}]",
            full / 2
        );
    }
    // Another object starts from the bottom of its own backoff.
    let other = payer(&{
        let mut p = payer_json(true, false, None);
        p["metadata"]["name"] = json!("other");
        p
    });
    assert!(retry_delay(other.as_ref(), &err, &ctx) <= base);
    // A success resets the object's backoff.
    ctx.backoffs.reset("Payer/billing/acme");
    assert!(retry_delay(obj.as_ref(), &err, &ctx) <= base);
}

#[tokio::test]
async fn deletion_records_an_event_and_removes_the_finalizer_without_touching_aws() {
    let aws = FakeAws::management_account("111122223333", 0);
    let (ctx, mut api) = context(aws.clone());
    let server = tokio::spawn(async move {
        let (_, _, event) = serve(&mut api, Method::POST, EVENTS_PATH, |b| b.clone()).await;
        let (_, content_type, body) = serve(&mut api, Method::PATCH, PAYER_PATH, |_| {
            payer_json(false, true, None)
        })
        .await;
        quiet(&mut api).await;
        (event, content_type, body)
    });
    let action = kinds::reconcile_kind(payer(&payer_json(true, true, None)), ctx.clone())
        .await
        .expect("cleanup");
    assert_eq!(action, Action::await_change());
    let (event, content_type, body) = server.await.expect("server");
    assert_eq!(event["reason"], "Released");
    assert_eq!(content_type.as_deref(), Some("application/json-patch+json"));
    let ops = body.as_array().expect("JSON patch");
    assert!(
        ops.iter()
            .any(|op| op["op"] == "remove" && op["path"] == "/metadata/finalizers/0"),
        "{body}"
    );
    assert!(
        aws.calls().is_empty(),
        "deleting a Payer changes nothing in AWS"
    );
}

const ACCOUNT_PATH: &str =
    "/apis/partnerbilling.io/v1alpha1/namespaces/billing/linkedaccounts/northwind";

fn account_json(finalizer: bool, deleting: bool) -> Value {
    let mut a = json!({
        "apiVersion": "partnerbilling.io/v1alpha1",
        "kind": "LinkedAccount",
        "metadata": {"name": "northwind", "namespace": "billing", "uid": "4f0b7f55-3e0e-4f7c-9a38-6a4c2b9d1e22",
                     "generation": 1, "resourceVersion": "7"},
        "spec": {"payerRef": {"name": "missing"},
                 "create": {"email": "aws+northwind@example.com", "accountName": "northwind"}}
    });
    if finalizer {
        a["metadata"]["finalizers"] = json!([crate::api::FINALIZER]);
    }
    if deleting {
        a["metadata"]["deletionTimestamp"] = json!("2026-11-24T10:00:00Z");
    }
    a
}

#[tokio::test]
async fn a_linked_account_waiting_for_its_payer_reports_it_and_comes_back_soon() {
    use crate::api::LinkedAccount;
    let aws = FakeAws::management_account("111122223333", 0);
    let (ctx, mut api) = context(aws.clone());
    let obj: Arc<LinkedAccount> =
        Arc::new(serde_json::from_value(account_json(true, false)).unwrap());
    let server = tokio::spawn(async move {
        let (_, content_type, body) = serve(
            &mut api,
            Method::PATCH,
            &format!("{ACCOUNT_PATH}/status"),
            |b| {
                let mut a = account_json(true, false);
                a["status"] = b["status"].clone();
                a
            },
        )
        .await;
        assert_eq!(
            content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        let (_, _, event) = serve(&mut api, Method::POST, EVENTS_PATH, |b| b.clone()).await;
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "PayerNotFound");
        quiet(&mut api).await;
        body
    });
    let action = kinds::reconcile_kind(obj, ctx.clone())
        .await
        .expect("a wait is not an error");
    assert_eq!(action, Action::requeue(crate::reconcile::DEPENDENCY_RETRY));
    let patch = server.await.expect("server");
    assert_eq!(patch["kind"], "LinkedAccount");
    let ready = condition(&patch["status"], "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "PayerNotFound");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("billing/missing")
    );
    assert!(aws.calls().is_empty());
}

#[tokio::test]
async fn deleting_a_retained_linked_account_releases_it_without_aws() {
    use crate::api::LinkedAccount;
    let aws = FakeAws::management_account("111122223333", 0);
    let (ctx, mut api) = context(aws.clone());
    let obj: Arc<LinkedAccount> =
        Arc::new(serde_json::from_value(account_json(true, true)).unwrap());
    let server = tokio::spawn(async move {
        // Status (Released), the event, then the finalizer goes.
        serve(
            &mut api,
            Method::PATCH,
            &format!("{ACCOUNT_PATH}/status"),
            |b| {
                let mut a = account_json(true, true);
                a["status"] = b["status"].clone();
                a
            },
        )
        .await;
        let (_, _, event) = serve(&mut api, Method::POST, EVENTS_PATH, |b| b.clone()).await;
        let (_, _, body) = serve(&mut api, Method::PATCH, ACCOUNT_PATH, |_| {
            account_json(false, true)
        })
        .await;
        quiet(&mut api).await;
        (event, body)
    });
    let action = kinds::reconcile_kind(obj, ctx.clone())
        .await
        .expect("released");
    assert_eq!(action, Action::await_change());
    let (event, body) = server.await.expect("server");
    assert_eq!(event["reason"], "Released");
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .any(|op| op["op"] == "remove"),
        "{body}"
    );
    assert!(aws.calls().is_empty());
}
