//! Billing Conductor's automatic transfer billing groups preference of a billing transfer
//! (GetBillingTransferPreference / UpdateBillingTransferPreference): the seam
//! [`TransferPreferenceApi`] and its SDK implementation.
//!
//! botocore's billingconductor model (service-2.json, 2021-07-30): UpdateBillingTransferPreference
//! "Sets the auto billing group creation preference for a billing transfer. When the
//! preference is enabled, Billing Conductor automatically creates an indirect billing transfer
//! billing group in your account, with the pricing plan that you specify, for each account
//! that transfers its bill to the bill source account of this billing transfer";
//! `AutoTransferBillingGroupCreationPreference.PricingPlanArn` "is required when `Enabled` is
//! `true`, and must be omitted when `Enabled` is `false`"; the preference "is disabled by
//! default".
//! <https://docs.aws.amazon.com/billingconductor/latest/APIReference/API_UpdateBillingTransferPreference.html>

use async_trait::async_trait;
use aws_sdk_billingconductor::types::AutoTransferBillingGroupCreationPreference;

use super::classify::on;
use crate::error::Error;
use crate::reconcile::reasons::INVALID_SPEC;

/// The preference as Billing Conductor holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferPreference {
    pub enabled: bool,
    /// Full ARN of a customer plan, or `BasicPricingPlan` / `Passthrough` (AWS-managed; the
    /// model's `PricingPlanArn` pattern takes both forms).
    pub pricing_plan_arn: Option<String>,
}

/// The Billing Conductor calls about a billing transfer.
#[async_trait]
pub trait TransferPreferenceApi: Send + Sync {
    /// The preference of the transfer `transfer_arn` (disabled when never set).
    async fn get_transfer_preference(
        &self,
        transfer_arn: &str,
    ) -> Result<TransferPreference, Error>;
    /// Set it. Idempotent with `client_token` (the model's ClientToken:
    /// "if the original request completes successfully, any subsequent retries complete
    /// successfully without performing any further actions"); setting the value it holds
    /// changes nothing either.
    async fn update_transfer_preference(
        &self,
        transfer_arn: &str,
        preference: &TransferPreference,
        client_token: &str,
    ) -> Result<(), Error>;
}

fn sdk_preference(
    p: &TransferPreference,
) -> Result<AutoTransferBillingGroupCreationPreference, Error> {
    AutoTransferBillingGroupCreationPreference::builder()
        .enabled(p.enabled)
        .set_pricing_plan_arn(p.pricing_plan_arn.clone())
        .build()
        .map_err(|e| Error::terminal(INVALID_SPEC, e))
}

#[async_trait]
impl TransferPreferenceApi for aws_sdk_billingconductor::Client {
    async fn get_transfer_preference(
        &self,
        transfer_arn: &str,
    ) -> Result<TransferPreference, Error> {
        let out = self
            .get_billing_transfer_preference()
            .responsibility_transfer_arn(transfer_arn)
            .send()
            .await
            .map_err(on("billingconductor", "GetBillingTransferPreference").err())?;
        Ok(out
            .auto_billing_transfer_billing_group_creation()
            .map(|p| TransferPreference {
                enabled: p.enabled(),
                pricing_plan_arn: p.pricing_plan_arn().map(str::to_string),
            })
            .unwrap_or_default())
    }

    async fn update_transfer_preference(
        &self,
        transfer_arn: &str,
        preference: &TransferPreference,
        client_token: &str,
    ) -> Result<(), Error> {
        self.update_billing_transfer_preference()
            .responsibility_transfer_arn(transfer_arn)
            .auto_billing_transfer_billing_group_creation(sdk_preference(preference)?)
            .client_token(client_token)
            .send()
            .await
            .map_err(on("billingconductor", "UpdateBillingTransferPreference").err())?;
        crate::after_write!("billingconductor:UpdateBillingTransferPreference");
        Ok(())
    }
}
