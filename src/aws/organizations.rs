//! AWS Organizations: the organization and its accounts.

use async_trait::async_trait;
use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationError;

use crate::error::Error;

/// The organization as DescribeOrganization reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub arn: String,
    pub feature_set: String,
    pub management_account_id: String,
}

/// One account of the organization, as ListAccounts reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub name: String,
    pub status: String,
}

/// The Organizations calls the operator makes.
#[async_trait]
pub trait OrganizationsApi: Send + Sync {
    /// `Ok(None)` when the account is not in an organization.
    async fn describe_organization(&self) -> Result<Option<Organization>, Error>;
    /// Every account of the organization (all pages of ListAccounts).
    async fn list_accounts(&self) -> Result<Vec<Account>, Error>;
}

#[async_trait]
impl OrganizationsApi for aws_sdk_organizations::Client {
    async fn describe_organization(&self) -> Result<Option<Organization>, Error> {
        match self.describe_organization().send().await {
            Ok(out) => Ok(out.organization().map(|o| Organization {
                id: o.id().unwrap_or_default().to_string(),
                arn: o.arn().unwrap_or_default().to_string(),
                feature_set: o
                    .feature_set()
                    .map(|f| f.as_str().to_string())
                    .unwrap_or_default(),
                management_account_id: o.master_account_id().unwrap_or_default().to_string(),
            })),
            Err(err) => match err.as_service_error() {
                Some(DescribeOrganizationError::AwsOrganizationsNotInUseException(_)) => Ok(None),
                _ => Err(super::classify::classify(
                    "organizations",
                    "DescribeOrganization",
                    err,
                )),
            },
        }
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, Error> {
        // 20 is the most ListAccounts returns per page.
        let mut pages = self.list_accounts().max_results(20).into_paginator().send();
        let mut accounts = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| super::classify::classify("organizations", "ListAccounts", e))?;
            for a in page.accounts() {
                accounts.push(Account {
                    id: a.id().unwrap_or_default().to_string(),
                    email: a.email().unwrap_or_default().to_string(),
                    name: a.name().unwrap_or_default().to_string(),
                    status: a
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(accounts)
    }
}
