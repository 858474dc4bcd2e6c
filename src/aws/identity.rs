//! STS: who are we in this account.

use async_trait::async_trait;

use crate::error::Error;

/// The identity behind a set of credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

/// The STS calls the operator makes.
#[async_trait]
pub trait IdentityApi: Send + Sync {
    async fn caller_identity(&self) -> Result<CallerIdentity, Error>;
}

#[async_trait]
impl IdentityApi for aws_sdk_sts::Client {
    async fn caller_identity(&self) -> Result<CallerIdentity, Error> {
        let out = self
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| super::classify::classify("sts", "GetCallerIdentity", e))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }
}
