//! What `import` reads from AWS with the Payer's credentials: the organization snapshot
//! (the same paginated lists the reconcilers share) plus the tags of every account, OU and
//! policy and the content of every customer-managed SCP; the Billing Conductor snapshot plus
//! the custom line items of the previous billing period and the tags of every plan, rule,
//! group and item. Reads only.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{LocalRef, Payer};
use crate::aws::AwsConnect;
use crate::aws::billing::BcItem;
use crate::aws::organizations::Tags;
use crate::billing::context::BillingContext;
use crate::billing::snapshot::BillingSnapshot;
use crate::error::Error;
use crate::payer::context::PayerContext;
use crate::payer::snapshot::OrgSnapshot;
use crate::reconcile::ReconcileContext;
use crate::reconcile::catalog::Catalog;
use crate::secrets::StaticSecrets;

/// Everything `import` turns into manifests.
#[derive(Clone, Debug)]
pub struct Found {
    pub org: Arc<OrgSnapshot>,
    pub billing: Arc<BillingSnapshot>,
    /// Custom line items of the open periods (current first), and the periods each is in.
    pub items: Vec<(BcItem, Vec<String>)>,
    /// Tags by account, OU, policy id or Billing Conductor ARN.
    pub tags: BTreeMap<String, Tags>,
    /// Document of each customer-managed SCP, by policy id.
    pub documents: BTreeMap<String, String>,
}

/// Read the organization and Billing Conductor of `payer` (credentials from `secrets`).
pub async fn read(
    payer: &Payer,
    secrets: StaticSecrets,
    connector: Arc<dyn AwsConnect>,
    now: Timestamp,
) -> Result<Found, Error> {
    let catalog = Arc::new(Catalog::new());
    catalog.put(payer.clone());
    let ctx = ReconcileContext::new(connector, Arc::new(secrets))
        .with_catalog(catalog)
        .with_shared(Arc::new(crate::payer::tenancy::Grants(Arc::new(
            crate::payer::tenancy::Unrestricted,
        ))));
    let namespace = payer.namespace().unwrap_or_default();
    let payer_ref = LocalRef {
        name: payer.name_any(),
    };
    let pc = PayerContext::resolve(&namespace, &payer_ref, &ctx).await?;
    let orgs = pc.conn.organizations.clone();
    let org = pc.snapshot.clone();
    let mut tags = BTreeMap::new();
    let mut documents = BTreeMap::new();
    let ids = org
        .accounts
        .iter()
        .map(|a| a.id.clone())
        .chain(org.ous.iter().map(|o| o.id.clone()));
    for id in ids {
        let t = orgs.list_tags(&id).await?;
        tags.insert(id, t);
    }
    for p in org.policies.iter().filter(|p| !p.aws_managed) {
        tags.insert(p.id.clone(), orgs.list_tags(&p.id).await?);
        documents.insert(p.id.clone(), orgs.describe_policy_content(&p.id).await?);
    }
    let bc = BillingContext::resolve(&namespace, &payer_ref, &ctx, now).await?;
    let billing = bc.snapshot.clone();
    let api = bc.api();
    let mut items: Vec<(BcItem, Vec<String>)> = billing
        .items
        .iter()
        .map(|i| (i.clone(), vec![billing.current_period.clone()]))
        .collect();
    for i in api.list_items(&billing.previous_period).await? {
        match items.iter_mut().find(|(x, _)| x.arn == i.arn) {
            Some((_, periods)) => periods.push(billing.previous_period.clone()),
            None => items.push((i, vec![billing.previous_period.clone()])),
        }
    }
    let arns = billing
        .plans
        .iter()
        .map(|p| p.arn.clone())
        .chain(billing.rules.iter().map(|r| r.arn.clone()))
        .chain(billing.groups.iter().map(|g| g.arn.clone()))
        .chain(items.iter().map(|(i, _)| i.arn.clone()));
    for arn in arns.collect::<Vec<_>>() {
        if let Some(t) = api.tags_if_exists(&arn).await? {
            tags.insert(arn, t);
        }
    }
    Ok(Found {
        org,
        billing,
        items,
        tags,
        documents,
    })
}
