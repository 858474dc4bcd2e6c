//! An in-memory AWS for unit tests of reconcilers and the controller.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::connector::{AwsConnect, Connection, PayerCredentialsSource};
use super::identity::{CallerIdentity, IdentityApi};
use super::organizations::{Account, Organization, OrganizationsApi};
use crate::error::Error;

/// What the fake account looks like; every field can be changed between reconciles.
#[derive(Clone, Debug, Default)]
pub struct FakeState {
    pub caller: Option<CallerIdentity>,
    pub organization: Option<Organization>,
    pub accounts: Vec<Account>,
    /// When set, every call fails: (terminal?, reason, message).
    pub fail: Option<(bool, &'static str, String)>,
    pub calls: Vec<&'static str>,
}

/// A fake AWS shared by all connections it hands out.
#[derive(Clone, Default)]
pub struct FakeAws {
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeAws {
    /// The management account `account` of organization `o-fake1234567` with `members` more accounts.
    pub fn management_account(account: &str, members: usize) -> Self {
        let mut accounts = vec![account_of(account)];
        accounts.extend(
            (0..members).map(|i| account_of(&format!("{:012}", 500_000_000_000u64 + i as u64))),
        );
        let state = FakeState {
            caller: Some(CallerIdentity {
                account: account.into(),
                arn: format!("arn:aws:iam::{account}:user/operator"),
            }),
            organization: Some(Organization {
                id: "o-fake1234567".into(),
                arn: format!("arn:aws:organizations::{account}:organization/o-fake1234567"),
                feature_set: "ALL".into(),
                management_account_id: account.into(),
            }),
            accounts,
            fail: None,
            calls: Vec::new(),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Make every call fail with a terminal (or retryable) error.
    pub fn fail_with(&self, terminal: bool, reason: &'static str, message: &str) {
        self.lock().fail = Some((terminal, reason, message.to_string()));
    }

    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn call(&self, name: &'static str) -> Result<FakeState, Error> {
        let mut s = self.lock();
        s.calls.push(name);
        match &s.fail {
            Some((true, reason, message)) => Err(Error::terminal(reason, message)),
            Some((false, reason, message)) => Err(Error::retryable(reason, message)),
            None => Ok(s.clone()),
        }
    }
}

fn account_of(id: &str) -> Account {
    Account {
        id: id.into(),
        email: format!("{id}@example.com"),
        name: id.into(),
        status: "ACTIVE".into(),
    }
}

#[async_trait]
impl AwsConnect for FakeAws {
    async fn connect(&self, _: &PayerCredentialsSource, _: &str) -> Result<Connection, Error> {
        Ok(Connection {
            identity: Arc::new(self.clone()),
            organizations: Arc::new(self.clone()),
        })
    }
}

#[async_trait]
impl IdentityApi for FakeAws {
    async fn caller_identity(&self) -> Result<CallerIdentity, Error> {
        let s = self.call("GetCallerIdentity")?;
        s.caller
            .ok_or_else(|| Error::terminal("CredentialsUnavailable", "fake: no caller"))
    }
}

#[async_trait]
impl OrganizationsApi for FakeAws {
    async fn describe_organization(&self) -> Result<Option<Organization>, Error> {
        Ok(self.call("DescribeOrganization")?.organization)
    }
    async fn list_accounts(&self) -> Result<Vec<Account>, Error> {
        Ok(self.call("ListAccounts")?.accounts)
    }
}
