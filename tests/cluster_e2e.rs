//! End-to-end on a real Kubernetes cluster (for example kind on a laptop), with AWS replaced
//! by the local emulator. Skipped unless `PBO_E2E_KUBECONFIG` names a kubeconfig: no cluster
//! can be reached from the project's build machines, so CI never runs it.
//!
//!     PBO_E2E_KUBECONFIG=$HOME/.kube/config make e2e
//!
//! It installs the CRDs (server-side apply), creates a throw-away namespace with a Secret and
//! a Payer, runs the controller in-process on that namespace, waits for `Ready=True`, then
//! deletes the Payer and waits until the finalizer lets it go.

mod common;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, Config, ResourceExt};
use partner_billing_operator::api::Payer;
use partner_billing_operator::aws::{AwsOptions, SdkConnector};
use partner_billing_operator::controller::{self, Context, Settings};
use partner_billing_operator::crdgen;
use partner_billing_operator::metrics::Metrics;
use partner_billing_operator::reconcile::ReconcileContext;
use partner_billing_operator::secrets::KubeSecrets;
use serde_json::json;

const ACCESS_KEY: &str = "AKIAPBOE2E0000000001";
const SECRET_KEY: &str = "pbo-e2e-secret-not-real";

#[tokio::test]
async fn payer_lifecycle_on_a_real_cluster() {
    let Some(path) = std::env::var_os("PBO_E2E_KUBECONFIG") else {
        eprintln!("skipped: set PBO_E2E_KUBECONFIG to a kubeconfig to run the real-cluster suite");
        return;
    };
    let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    let client = Client::try_from(config).expect("client");

    // CRDs.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crdgen::all() {
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply("pbo-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply CRD");
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD established in time")
        .expect("watch CRD");
    }

    // AWS: the emulator with an organization managed by the account the keys map to.
    let emu = common::emulator();
    let _guard = emu.lock().await;
    let aws = emu.sdk_config(ACCESS_KEY, SECRET_KEY, None).await;
    let org_id = emu.create_organization(&aws, 2).await;

    // A throw-away namespace with a Secret and a Payer.
    let ns = format!("pbo-e2e-{}", fastrand::u32(..));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .expect("create namespace");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "acme-aws"},
                "stringData": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}
            }))
            .unwrap(),
        )
        .await
        .expect("create secret");
    let payers: Api<Payer> = Api::namespaced(client.clone(), &ns);
    let payer: Payer = serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer",
        "metadata": {"name": "acme"},
        "spec": {"accountId": "123456789012", "credentials": {"secretRef": {"name": "acme-aws"}}}
    }))
    .unwrap();
    payers
        .create(&PostParams::default(), &payer)
        .await
        .expect("create payer");

    // The controller, in-process, on that namespace.
    let metrics = Metrics::shared();
    let connector = Arc::new(SdkConnector::new(
        AwsOptions {
            endpoint_url: Some(emu.url.clone()),
            ..AwsOptions::default()
        },
        metrics.clone(),
    ));
    let reconcile = ReconcileContext::new(connector, Arc::new(KubeSecrets::new(client.clone())));
    let ctx = Context::new(client.clone(), reconcile, metrics, Settings::default());
    let sync = ctx.sync.clone();
    let running = tokio::spawn(controller::run(ctx, vec![ns.clone()]));

    let ready = |p: Option<&Payer>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| partner_billing_operator::api::conditions::is_ready(&s.conditions))
    };
    let found = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(payers.clone(), "acme", ready),
    )
    .await
    .expect("Payer became Ready within 60s")
    .expect("watch payer")
    .expect("payer exists");
    let status = found.status.clone().expect("status");
    assert_eq!(status.organization_id.as_deref(), Some(org_id.as_str()));
    assert_eq!(status.member_accounts, Some(3));
    assert_eq!(status.observed_generation, found.metadata.generation);
    assert!(
        found
            .finalizers()
            .iter()
            .any(|f| f == partner_billing_operator::api::FINALIZER)
    );
    assert!(sync.is_ready(), "readiness follows the first full sync");

    // Deleting the Payer: the finalizer is removed and the object goes away.
    let uid = found.uid().expect("uid");
    payers
        .delete("acme", &DeleteParams::default())
        .await
        .expect("delete payer");
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(payers.clone(), "acme", conditions::is_deleted(&uid)),
    )
    .await
    .expect("Payer deleted within 60s")
    .expect("watch payer");

    running.abort();
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
}
