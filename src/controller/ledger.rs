//! The closure log in the Payer's status, written with its own field manager: the
//! controller's [`ClosureLedger`].

use async_trait::async_trait;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::api::Payer;
use crate::api::payer::ClosureRecord;
use crate::error::Error;
use crate::reconcile::ClosureLedger;

/// Field manager of the Payer's closure log (written by LinkedAccount deletions).
pub const CLOSURES_FIELD_MANAGER: &str = "partner-billing-operator-closures";

/// The closure log in the Payer's status, written with its own field manager.
pub struct KubeLedger {
    pub client: Client,
}

#[async_trait]
impl ClosureLedger for KubeLedger {
    async fn closures(&self, payer: &Payer) -> Result<Vec<ClosureRecord>, Error> {
        let api: Api<Payer> =
            Api::namespaced(self.client.clone(), &payer.namespace().unwrap_or_default());
        let fresh = api.get(&payer.name_any()).await?;
        Ok(fresh.status.map(|s| s.closures).unwrap_or_default())
    }

    async fn record(&self, payer: &Payer, record: ClosureRecord) -> Result<(), Error> {
        let now = record.requested_at.clone();
        let mut all = self.closures(payer).await?;
        all.retain(|r| !crate::time::older_than(&r.requested_at, &now, 30 * 24 * 3600));
        all.push(record);
        let api: Api<Payer> =
            Api::namespaced(self.client.clone(), &payer.namespace().unwrap_or_default());
        let patch = json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": "Payer",
            "status": {"closures": all},
        });
        api.patch_status(
            &payer.name_any(),
            &PatchParams::apply(CLOSURES_FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        Ok(())
    }
}
