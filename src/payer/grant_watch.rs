//! The controller's source of grants: watch caches of every PayerGrant and of the labels of
//! every Namespace; the Payers to check again when either changes (a grant removed stops its
//! Payers at once, one added lets them go on at once); Events and metrics of grant changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::broadcast;
use tracing::{info, warn};

use super::grants::{NotGranted, uses_operator_identity};
use super::tenancy::{GrantSource, GrantView};
use crate::api::payer::Payer;
use crate::api::payer_grant::PayerGrant;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::reconcile::ReconcileContext;
use crate::reconcile::reasons::{GRANT_APPLIED, GRANT_DELETED, GRANTS_NOT_LOADED, INVALID_OBJECT};
use crate::reconcile::trigger::{Trigger, WakeUp, WakeUps};

type Guarded<K> = DeserializeGuard<K>;

/// How long a reconcile waits for the first list of grants and namespaces before it gives up
/// (retryably).
const FIRST_LIST_WAIT: Duration = Duration::from_secs(20);

/// What changed, for the Payer controllers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A PayerGrant (or, after a watch restart, possibly several): check every Payer that uses
    /// the operator's identity.
    Grants,
    /// The labels of this namespace: check its Payers that use the operator's identity.
    Namespace(String),
}

/// The watch caches, as a [`GrantSource`].
#[derive(Clone)]
pub struct KubeGrants {
    grants: Store<Guarded<PayerGrant>>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl GrantSource for KubeGrants {
    async fn view(&self, namespace: &str) -> Result<GrantView, Error> {
        let ready = async {
            self.grants.wait_until_ready().await.is_ok()
                && self.namespaces.wait_until_ready().await.is_ok()
        };
        if !tokio::time::timeout(FIRST_LIST_WAIT, ready)
            .await
            .unwrap_or(false)
        {
            return Err(Error::retryable(
                GRANTS_NOT_LOADED,
                "the operator has not listed PayerGrants and Namespaces yet (may it list and watch them? see its RBAC); nothing was called in AWS",
            ));
        }
        let grants = self
            .grants
            .state()
            .iter()
            .filter_map(|g| g.0.as_ref().ok().cloned())
            .collect();
        let labels = self
            .namespaces
            .get(&ObjectRef::new(namespace))
            .map(|n| n.metadata.labels.clone().unwrap_or_default());
        Ok(GrantView::Enforced { grants, labels })
    }

    fn refused(&self, refusal: &NotGranted) {
        self.metrics.grant_refused(&refusal.namespace);
    }
}

/// The tenancy watches of a controller: build with [`Tenancy::new`], hand
/// [`Tenancy::source`] to the reconcilers, add [`Tenancy::payer_triggers`] to the Payer
/// controllers, and keep the guard [`Tenancy::spawn`] returns while they run.
pub struct Tenancy {
    source: KubeGrants,
    changes: broadcast::Sender<Change>,
    client: Client,
    grant_writer: reflector::store::Writer<Guarded<PayerGrant>>,
    namespace_writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
}

impl Tenancy {
    pub fn new(client: &Client, metrics: Arc<Metrics>) -> Self {
        let (grants, grant_writer) = reflector::store();
        let (namespaces, namespace_writer) = reflector::store();
        Self {
            source: KubeGrants {
                grants,
                namespaces,
                metrics,
            },
            changes: broadcast::channel(1024).0,
            client: client.clone(),
            grant_writer,
            namespace_writer,
        }
    }

    /// The grants, for the context's shared [`super::tenancy::Grants`].
    pub fn source(&self) -> Arc<dyn GrantSource> {
        Arc::new(self.source.clone())
    }

    /// Where grant and namespace changes are announced, for the Payers' trigger
    /// ([`payer_triggers`]); share it with `ReconcileContext::with_shared`.
    pub fn changes(&self) -> GrantChanges {
        GrantChanges(self.changes.clone())
    }

    /// Start watching PayerGrants and Namespaces; the watches stop when the guard drops.
    /// `controller` names the operator in the Events (its field manager).
    pub fn spawn(self, controller: &str) -> WatchGuard {
        let reporter = Reporter {
            controller: controller.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let recorder = Recorder::new(self.client.clone(), reporter);
        let grants = watch_grants(
            Api::all(self.client.clone()),
            self.grant_writer,
            self.changes.clone(),
            recorder,
            self.source.metrics.clone(),
        );
        let namespaces = watch_namespaces(
            Api::all(self.client.clone()),
            self.namespace_writer,
            self.changes,
        );
        WatchGuard(tokio::spawn(async move {
            futures::future::join(grants, namespaces).await;
        }))
    }
}

/// Stops the tenancy watches when dropped.
pub struct WatchGuard(tokio::task::JoinHandle<()>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The Payers of `payers` that `change` concerns: those that use the operator's identity
/// (all of them for a grant change, those of the namespace for a label change). Pure.
pub fn concerned(
    payers: &[Arc<Guarded<Payer>>],
    change: &Change,
) -> Vec<ObjectRef<Guarded<Payer>>> {
    payers
        .iter()
        .filter(|p| p.0.as_ref().is_ok_and(|p| uses_operator_identity(&p.spec)))
        .filter(|p| match change {
            Change::Grants => true,
            Change::Namespace(ns) => p.namespace().as_deref() == Some(ns.as_str()),
        })
        .map(|p| ObjectRef::from(p.as_ref()))
        .collect()
}

/// Grant and namespace changes as the context's shared state: the controller's tenancy
/// watches announce them; nothing does in file mode (the default channel stays silent).
pub struct GrantChanges(pub broadcast::Sender<Change>);

impl Default for GrantChanges {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

/// The Payer's triggers (named in the kind list): a grant or namespace change reconciles the
/// Payers it concerns at once, so a removed grant stops them at their next reconcile.
pub fn payer_triggers() -> Vec<Trigger<Payer>> {
    vec![Trigger::wake_ups(grant_wake_ups)]
}

/// The Payers of the catalog that grant and namespace changes concern, as wake-ups.
fn grant_wake_ups(ctx: &ReconcileContext) -> WakeUps {
    let rx = ctx.shared::<GrantChanges>().0.subscribe();
    let catalog = ctx.catalog.clone();
    let payers = move || {
        catalog
            .all::<Payer>()
            .into_iter()
            .map(|p| Arc::new(DeserializeGuard(Ok(p))))
            .collect::<Vec<_>>()
    };
    payers_to_check(rx, payers)
        .map(|r| WakeUp::Object {
            namespace: r.namespace.unwrap_or_default(),
            name: r.name,
        })
        .boxed()
}

/// The Payers to reconcile as changes arrive; a receiver that fell behind checks them all.
fn payers_to_check(
    rx: broadcast::Receiver<Change>,
    payers: impl Fn() -> Vec<Arc<Guarded<Payer>>> + Send + 'static,
) -> impl Stream<Item = ObjectRef<Guarded<Payer>>> + Send + 'static {
    use tokio::sync::broadcast::error::RecvError;
    futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(c) => Some((c, rx)),
            Err(RecvError::Lagged(_)) => Some((Change::Grants, rx)),
            Err(RecvError::Closed) => None,
        }
    })
    .flat_map(move |change| futures::stream::iter(concerned(&payers(), &change)))
}

/// What a grant covers, for its Events.
pub fn describe(g: &PayerGrant) -> String {
    let mut scope = Vec::new();
    if !g.spec.namespaces.names.is_empty() {
        scope.push(format!("namespaces {}", g.spec.namespaces.names.join(", ")));
    }
    if let Some(sel) = &g.spec.namespaces.selector {
        let labels: Vec<String> = sel
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(sel.match_expressions.iter().flatten().map(|e| {
                format!(
                    "{} {} ({})",
                    e.key,
                    e.operator,
                    e.values.clone().unwrap_or_default().join(",")
                )
            }))
            .collect();
        scope.push(if labels.is_empty() {
            "every namespace (empty selector)".to_string()
        } else {
            format!("namespaces labelled {}", labels.join(", "))
        });
    }
    let roles = if g.spec.role_arns.is_empty() {
        "no role".to_string()
    } else {
        format!("roles {}", g.spec.role_arns.join(", "))
    };
    format!(
        "{}; accounts {}; {roles}; the operator's own identity {}",
        scope.join(" and "),
        g.spec.account_ids.join(", "),
        if g.spec.allow_operator_identity {
            "allowed"
        } else {
            "not allowed"
        }
    )
}

async fn publish(recorder: &Recorder, g: &Guarded<PayerGrant>, reason: &str, note: String) {
    let event = KubeEvent {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Grant".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &g.object_ref(&())).await {
        warn!(error = %e, "could not record event");
    }
}

/// Watch PayerGrants into the cache; on a change (not our start-up list): an Event on the
/// grant, the metric, and the Payers checked again.
async fn watch_grants(
    api: Api<Guarded<PayerGrant>>,
    writer: reflector::store::Writer<Guarded<PayerGrant>>,
    changes: broadcast::Sender<Change>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
) {
    // Generation of each grant seen: metadata-only updates are no change.
    let mut seen: HashMap<String, Option<i64>> = HashMap::new();
    let mut relisted: HashMap<String, Option<i64>> = HashMap::new();
    let mut listed_once = false;
    let events = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer);
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => relisted.clear(),
            Ok(watcher::Event::InitApply(g)) => {
                relisted.insert(g.name_any(), g.meta().generation);
            }
            Ok(watcher::Event::InitDone) => {
                // After a watch restart, changes made meanwhile show up only here.
                if listed_once && relisted != seen {
                    info!(
                        "PayerGrants changed while the watch was restarting; checking Payers again"
                    );
                    metrics.grant_changed("applied");
                    let _ = changes.send(Change::Grants);
                }
                seen = std::mem::take(&mut relisted);
                listed_once = true;
            }
            Ok(watcher::Event::Apply(g)) => {
                let name = g.name_any();
                if seen.get(&name) == Some(&g.meta().generation) {
                    continue;
                }
                seen.insert(name.clone(), g.meta().generation);
                metrics.grant_changed("applied");
                let _ = changes.send(Change::Grants);
                match &g.0 {
                    Ok(grant) => {
                        let what = describe(grant);
                        info!(grant = %name, covers = %what, "PayerGrant applied");
                        publish(
                            &recorder,
                            &g,
                            GRANT_APPLIED,
                            format!(
                                "covers {what}; Payers that use the operator's identity are checked again now"
                            ),
                        )
                        .await;
                    }
                    Err(invalid) => {
                        warn!(grant = %name, error = %invalid.error, "PayerGrant cannot be read; it grants nothing");
                        publish(
                            &recorder,
                            &g,
                            INVALID_OBJECT,
                            format!(
                                "the operator cannot read this PayerGrant, so it grants nothing: {}",
                                invalid.error
                            ),
                        )
                        .await;
                    }
                }
            }
            Ok(watcher::Event::Delete(g)) => {
                let name = g.name_any();
                seen.remove(&name);
                metrics.grant_changed("deleted");
                let _ = changes.send(Change::Grants);
                info!(grant = %name, "PayerGrant deleted");
                publish(
                    &recorder,
                    &g,
                    GRANT_DELETED,
                    "deleted: the Payers it covered are checked again now, and those no other grant covers stop calling AWS".to_string(),
                )
                .await;
            }
            Err(e) => warn!(error = %e, "watching PayerGrants failed; retrying"),
        }
    }
}

/// Watch the labels of every Namespace into the cache; a label change checks that
/// namespace's Payers again.
async fn watch_namespaces(
    api: Api<PartialObjectMeta<Namespace>>,
    writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
    changes: broadcast::Sender<Change>,
) {
    let mut labels: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let mut relisted: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let mut listed_once = false;
    let events = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer);
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => relisted.clear(),
            Ok(watcher::Event::InitApply(ns)) => {
                relisted.insert(ns.name_any(), ns.labels().clone());
            }
            Ok(watcher::Event::InitDone) => {
                if listed_once {
                    for (name, l) in &relisted {
                        if labels.get(name) != Some(l) {
                            let _ = changes.send(Change::Namespace(name.clone()));
                        }
                    }
                }
                labels = std::mem::take(&mut relisted);
                listed_once = true;
            }
            Ok(watcher::Event::Apply(ns)) => {
                let name = ns.name_any();
                if labels.get(&name) != Some(ns.labels()) {
                    labels.insert(name.clone(), ns.labels().clone());
                    let _ = changes.send(Change::Namespace(name));
                }
            }
            Ok(watcher::Event::Delete(ns)) => {
                labels.remove(&ns.name_any());
            }
            Err(e) => warn!(error = %e, "watching Namespaces failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn guarded_payer(ns: &str, name: &str, credentials: serde_json::Value) -> Arc<Guarded<Payer>> {
        let mut spec = json!({"accountId": "210987654321"});
        if !credentials.is_null() {
            spec["credentials"] = credentials;
        }
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer",
                "metadata": {"name": name, "namespace": ns},
                "spec": spec
            }))
            .unwrap(),
        )
    }

    #[test]
    fn changes_concern_the_payers_that_use_the_operator_identity() {
        let payers = vec![
            guarded_payer("acme", "direct", serde_json::Value::Null),
            guarded_payer(
                "acme",
                "role",
                json!({"assumeRole": {"roleArn": "arn:aws:iam::210987654321:role/R"}}),
            ),
            guarded_payer("acme", "keys", json!({"secretRef": {"name": "aws"}})),
            guarded_payer("contoso", "direct", serde_json::Value::Null),
        ];
        let names = |refs: Vec<ObjectRef<Guarded<Payer>>>| {
            refs.into_iter()
                .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(concerned(&payers, &Change::Grants)),
            ["acme/direct", "acme/role", "contoso/direct"]
        );
        assert_eq!(
            names(concerned(&payers, &Change::Namespace("contoso".into()))),
            ["contoso/direct"]
        );
    }

    #[tokio::test]
    async fn a_change_reaches_the_payer_controller_as_the_payers_to_check() {
        let (reader, mut writer) = reflector::store::<Guarded<Payer>>();
        for p in [
            guarded_payer(
                "acme",
                "role",
                json!({"assumeRole": {"roleArn": "arn:aws:iam::210987654321:role/R"}}),
            ),
            guarded_payer("acme", "keys", json!({"secretRef": {"name": "aws"}})),
        ] {
            writer.apply_watcher_event(&watcher::Event::InitApply((*p).clone()));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let (tx, _) = broadcast::channel(4);
        let stream = payers_to_check(tx.subscribe(), move || reader.state());
        tx.send(Change::Grants).unwrap();
        drop(tx);
        let got: Vec<_> = stream.collect().await;
        assert_eq!(got, vec![ObjectRef::new("role").within("acme")]);
    }

    #[test]
    fn grant_events_say_what_the_grant_covers() {
        let g: PayerGrant = serde_json::from_value(json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "PayerGrant",
            "metadata": {"name": "acme"},
            "spec": {"namespaces": {"names": ["acme"], "selector": {"matchLabels": {"tenant": "acme"}}},
                     "accountIds": ["210987654321"], "roleArns": ["arn:aws:iam::*:role/PB"]}
        }))
        .unwrap();
        assert_eq!(
            describe(&g),
            "namespaces acme and namespaces labelled tenant=acme; accounts 210987654321; roles arn:aws:iam::*:role/PB; the operator's own identity not allowed"
        );
    }
}
