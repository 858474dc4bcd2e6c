//! Every Organizations list call follows NextToken to the last page and never asks for more
//! than AWS serves per page (MaxResults 1-20 in the service model), through the real SDK
//! client against a small local server that pages like AWS may: one item per page, and an
//! empty page that still carries a NextToken in the middle.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use partner_billing_operator::aws::{
    AwsConnect, AwsOptions, OrganizationsApi, PayerCredentialsSource, SdkConnector,
};
use partner_billing_operator::metrics::Metrics;
use partner_billing_operator::secrets::SecretString;
use serde_json::{Value, json};

/// One request as the server saw it: operation, MaxResults, NextToken.
type Seen = (String, Option<i64>, Option<String>);
/// A request's MaxResults and NextToken.
type Asked = (Option<i64>, Option<String>);

/// The items of `op`'s page `n` (0, 1, 2): one item, none, one item.
fn item(op: &str, n: usize) -> Value {
    let id = format!("{}", 111_111_111_110 + n as u64);
    match op {
        "ListAccounts" | "ListAccountsForParent" => json!({
            "Id": id, "Arn": format!("arn:aws:organizations::123456789012:account/o-abc/{id}"),
            "Email": format!("a{n}@example.com"), "Name": format!("a{n}"),
            "State": "ACTIVE", "JoinedMethod": "CREATED"
        }),
        "ListRoots" => {
            json!({"Id": format!("r-ab1{n}"), "Arn": "arn", "Name": "Root", "PolicyTypes": []})
        }
        "ListOrganizationalUnitsForParent" => {
            json!({"Id": format!("ou-ab12-1111111{n}"), "Arn": "arn", "Name": format!("ou{n}")})
        }
        "ListPolicies" => json!({
            "Id": format!("p-1111111{n}"), "Arn": "arn", "Name": format!("scp{n}"),
            "Description": "", "Type": "SERVICE_CONTROL_POLICY", "AwsManaged": false
        }),
        "ListTargetsForPolicy" => {
            json!({"TargetId": id, "Arn": "arn", "Name": format!("a{n}"), "Type": "ACCOUNT"})
        }
        "ListCreateAccountStatus" => json!({
            "Id": format!("car-1111111{n}"), "AccountName": format!("a{n}"), "State": "IN_PROGRESS"
        }),
        "ListHandshakesForOrganization" => json!({
            "Id": format!("h-1111111{n}"), "State": "OPEN", "Action": "INVITE",
            "Parties": [{"Id": "o-abc1234567", "Type": "ORGANIZATION"}, {"Id": id, "Type": "ACCOUNT"}]
        }),
        "ListTagsForResource" => json!({"Key": format!("k{n}"), "Value": "v"}),
        other => panic!("unexpected operation {other}"),
    }
}

fn list_key(op: &str) -> &'static str {
    match op {
        "ListAccounts" | "ListAccountsForParent" => "Accounts",
        "ListRoots" => "Roots",
        "ListOrganizationalUnitsForParent" => "OrganizationalUnits",
        "ListPolicies" => "Policies",
        "ListTargetsForPolicy" => "Targets",
        "ListCreateAccountStatus" => "CreateAccountStatuses",
        "ListHandshakesForOrganization" => "Handshakes",
        "ListTagsForResource" => "Tags",
        other => panic!("unexpected operation {other}"),
    }
}

/// Page `token` of `op`: page 0 (no token) has one item and token "1"; page "1" has no items
/// and token "2"; page "2" has one item and no token.
fn page(op: &str, token: Option<&str>) -> Value {
    let (items, next) = match token {
        None => (vec![item(op, 0)], Some("1")),
        Some("1") => (vec![], Some("2")),
        Some("2") => (vec![item(op, 2)], None),
        Some(other) => panic!("{op}: unknown NextToken {other}"),
    };
    let mut out = json!({ list_key(op): items });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    out
}

async fn serve(seen: Arc<Mutex<Vec<Seen>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let op = req
                            .headers()
                            .get("x-amz-target")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|t| t.split('.').nth(1))
                            .unwrap_or_default()
                            .to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let token = input["NextToken"].as_str().map(str::to_string);
                        seen.lock().unwrap().push((
                            op.clone(),
                            input["MaxResults"].as_i64(),
                            token.clone(),
                        ));
                        let out = page(&op, token.as_deref());
                        let mut resp = Response::new(Full::new(Bytes::from(out.to_string())));
                        resp.headers_mut().insert(
                            "content-type",
                            "application/x-amz-json-1.1".parse().unwrap(),
                        );
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

#[tokio::test]
async fn every_organizations_list_call_reads_every_page_at_most_20_at_a_time() {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let url = serve(seen.clone()).await;
    let connector = SdkConnector::new(
        AwsOptions {
            endpoint_url: Some(url),
            max_attempts: 1,
            initial_backoff: Duration::from_millis(5),
            operator_credentials: None,
        },
        Metrics::shared(),
    );
    let conn = connector
        .connect(
            &PayerCredentialsSource::Static {
                access_key_id: "AKIAPAGING0000000001".into(),
                secret_access_key: SecretString::new("paging-test-secret"),
                session_token: None,
            },
            "us-east-1",
        )
        .await
        .unwrap();
    let orgs: &dyn OrganizationsApi = conn.organizations.as_ref();

    let ids = |v: Vec<String>| v.join(",");
    let accounts = orgs.list_accounts().await.unwrap();
    assert_eq!(
        ids(accounts.iter().map(|a| a.id.clone()).collect()),
        "111111111110,111111111112"
    );
    assert!(accounts.iter().all(|a| a.state.is_active()));
    let roots = orgs.list_roots().await.unwrap();
    assert_eq!(
        ids(roots.iter().map(|r| r.id.clone()).collect()),
        "r-ab10,r-ab12"
    );
    let ous = orgs.list_ous_for_parent("r-ab10").await.unwrap();
    assert_eq!(
        ids(ous.iter().map(|o| o.id.clone()).collect()),
        "ou-ab12-11111110,ou-ab12-11111112"
    );
    assert_eq!(
        ids(orgs.list_account_ids_for_parent("r-ab10").await.unwrap()),
        "111111111110,111111111112"
    );
    let scps = orgs.list_scps().await.unwrap();
    assert_eq!(
        ids(scps.iter().map(|p| p.id.clone()).collect()),
        "p-11111110,p-11111112"
    );
    assert_eq!(
        ids(orgs.list_targets_for_policy("p-11111110").await.unwrap()),
        "111111111110,111111111112"
    );
    let creates = orgs.list_creates_in_progress().await.unwrap();
    assert_eq!(
        ids(creates.iter().map(|c| c.request_id.clone()).collect()),
        "car-11111110,car-11111112"
    );
    let invitations = orgs.list_invitations().await.unwrap();
    assert_eq!(
        ids(invitations.iter().map(|h| h.id.clone()).collect()),
        "h-11111110,h-11111112"
    );
    let tags = orgs.list_tags("111111111110").await.unwrap();
    assert_eq!(ids(tags.keys().cloned().collect()), "k0,k2");

    // Three requests per operation (every page, the empty one included), each asking for at
    // most 20 items where the operation takes MaxResults.
    let seen = seen.lock().unwrap().clone();
    let mut per_op: BTreeMap<String, Vec<Asked>> = BTreeMap::new();
    for (op, max, token) in seen {
        per_op.entry(op).or_default().push((max, token));
    }
    assert_eq!(per_op.len(), 9, "{per_op:#?}");
    for (op, requests) in &per_op {
        let tokens: Vec<Option<&str>> = requests.iter().map(|(_, t)| t.as_deref()).collect();
        assert_eq!(tokens, [None, Some("1"), Some("2")], "{op}");
        for (max, _) in requests {
            if op == "ListTagsForResource" {
                assert_eq!(*max, None, "{op} takes no MaxResults");
            } else {
                assert_eq!(*max, Some(20), "{op} asks for {max:?} per page");
            }
        }
    }
}
