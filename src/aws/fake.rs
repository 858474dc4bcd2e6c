//! An in-memory AWS for unit tests of reconcilers and the controller.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::billing::{
    BcCost, BcGroup, BcItem, BcPlan, BcRule, BcServiceCost, BillingApi, NewGroup, NewItem, NewRule,
};
use super::connector::{AwsConnect, Connection, PayerCredentialsSource};
use super::identity::{CallerIdentity, IdentityApi};
use super::organizations::{
    Account, AccountState, CreateStatus, Handshake, NewAccount, OrgUnit, Organization,
    OrganizationsApi, PolicySummary, Root, Tags, Transfer, TransferInvitationSent, TransferInvite,
};
use super::transfer_preference::{TransferPreference, TransferPreferenceApi};
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
    /// What GetCostAndUsage returns.
    pub costs: Vec<super::costs::CostRow>,
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
            costs: Vec::new(),
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

    fn unsupported(&self, call: &'static str) -> Error {
        self.lock().calls.push(call);
        Error::terminal(
            "FakeUnsupported",
            format!("the fake AWS does not serve {call}"),
        )
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
        state: AccountState::Active,
        joined_method: "CREATED".into(),
    }
}

#[async_trait]
impl AwsConnect for FakeAws {
    async fn connect(&self, _: &PayerCredentialsSource, _: &str) -> Result<Connection, Error> {
        Ok(Connection {
            identity: Arc::new(self.clone()),
            organizations: Arc::new(self.clone()),
            billing: Arc::new(self.clone()),
            costs: Arc::new(self.clone()),
            pipeline: Arc::new(self.clone()),
            transfer_preference: Arc::new(self.clone()),
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
    async fn describe_account(&self, id: &str) -> Result<Option<Account>, Error> {
        Ok(self
            .call("DescribeAccount")?
            .accounts
            .into_iter()
            .find(|a| a.id == id))
    }
    // The Payer-level fake serves only the calls a Payer makes; the Organizations kinds are
    // tested against the emulator. (A write served here must keep the trait's contract: an
    // "already done" answer is success, never an error.)
    // The organization snapshot's reads (the Payer reads the snapshot): one root holding
    // every account, no OU, no SCP.
    async fn list_roots(&self) -> Result<Vec<Root>, Error> {
        self.call("ListRoots")?;
        Ok(vec![Root {
            id: "r-fake".into(),
            arn: "arn:aws:organizations::000000000000:root/o-fake1234567/r-fake".into(),
            scp_enabled: false,
        }])
    }
    async fn list_ous_for_parent(&self, _: &str) -> Result<Vec<OrgUnit>, Error> {
        self.call("ListOrganizationalUnitsForParent")?;
        Ok(Vec::new())
    }
    async fn list_account_ids_for_parent(&self, _: &str) -> Result<Vec<String>, Error> {
        let s = self.call("ListAccountsForParent")?;
        Ok(s.accounts.into_iter().map(|a| a.id).collect())
    }
    async fn list_scps(&self) -> Result<Vec<PolicySummary>, Error> {
        self.call("ListPolicies")?;
        Ok(Vec::new())
    }
    async fn list_targets_for_policy(&self, _: &str) -> Result<Vec<String>, Error> {
        Err(self.unsupported("list_targets_for_policy"))
    }
    async fn describe_policy_content(&self, _: &str) -> Result<String, Error> {
        Err(self.unsupported("describe_policy_content"))
    }
    async fn create_scp(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &Tags,
    ) -> Result<PolicySummary, Error> {
        Err(self.unsupported("create_scp"))
    }
    async fn update_scp(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), Error> {
        Err(self.unsupported("update_scp"))
    }
    async fn delete_policy(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("delete_policy"))
    }
    async fn attach_policy(&self, _: &str, _: &str) -> Result<(), Error> {
        Err(self.unsupported("attach_policy"))
    }
    async fn detach_policy(&self, _: &str, _: &str) -> Result<(), Error> {
        Err(self.unsupported("detach_policy"))
    }
    async fn enable_scp_type(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("enable_scp_type"))
    }
    async fn create_ou(&self, _: &str, _: &str, _: &Tags) -> Result<OrgUnit, Error> {
        Err(self.unsupported("create_ou"))
    }
    async fn rename_ou(&self, _: &str, _: &str) -> Result<(), Error> {
        Err(self.unsupported("rename_ou"))
    }
    async fn delete_ou(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("delete_ou"))
    }
    async fn create_account(&self, _: &NewAccount) -> Result<CreateStatus, Error> {
        Err(self.unsupported("create_account"))
    }
    async fn describe_create_account_status(&self, _: &str) -> Result<CreateStatus, Error> {
        Err(self.unsupported("describe_create_account_status"))
    }
    async fn list_creates_in_progress(&self) -> Result<Vec<CreateStatus>, Error> {
        self.call("ListCreateAccountStatus")?;
        Ok(Vec::new())
    }
    async fn invite_account(&self, _: &str, _: Option<&str>) -> Result<Handshake, Error> {
        Err(self.unsupported("invite_account"))
    }
    async fn list_invitations(&self) -> Result<Vec<Handshake>, Error> {
        self.call("ListHandshakesForOrganization")?;
        Ok(Vec::new())
    }
    async fn cancel_handshake(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("cancel_handshake"))
    }
    async fn move_account(&self, _: &str, _: &str, _: &str) -> Result<(), Error> {
        Err(self.unsupported("move_account"))
    }
    async fn list_tags(&self, _: &str) -> Result<Tags, Error> {
        Err(self.unsupported("list_tags"))
    }
    async fn tag_resource(&self, _: &str, _: &Tags) -> Result<(), Error> {
        Err(self.unsupported("tag_resource"))
    }
    async fn untag_resource(&self, _: &str, _: &[String]) -> Result<(), Error> {
        Err(self.unsupported("untag_resource"))
    }
    async fn close_account(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("close_account"))
    }
    async fn invite_transfer(&self, _: &TransferInvite) -> Result<TransferInvitationSent, Error> {
        Err(self.unsupported("InviteOrganizationToTransferResponsibility"))
    }
    async fn list_inbound_transfers(&self) -> Result<Vec<Transfer>, Error> {
        self.call("ListInboundResponsibilityTransfers")?;
        Ok(Vec::new())
    }
    async fn describe_transfer(&self, _: &str) -> Result<Option<Transfer>, Error> {
        self.call("DescribeResponsibilityTransfer")?;
        Ok(None)
    }
    async fn terminate_transfer(&self, _: &str, _: i64) -> Result<(), Error> {
        Err(self.unsupported("TerminateResponsibilityTransfer"))
    }
    async fn remove_account(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("remove_account"))
    }
}

// Billing Conductor kinds are tested against the emulator.
#[async_trait]
impl BillingApi for FakeAws {
    async fn list_rules(&self) -> Result<Vec<BcRule>, Error> {
        Err(self.unsupported("list_rules"))
    }
    async fn list_plans(&self) -> Result<Vec<BcPlan>, Error> {
        Err(self.unsupported("list_plans"))
    }
    async fn list_plan_rule_arns(&self, _: &str) -> Result<Vec<String>, Error> {
        Err(self.unsupported("list_plan_rule_arns"))
    }
    async fn list_groups(&self, _: Option<&[String]>) -> Result<Vec<BcGroup>, Error> {
        Err(self.unsupported("list_groups"))
    }
    async fn list_associations(&self) -> Result<Vec<(String, String)>, Error> {
        Err(self.unsupported("list_associations"))
    }
    async fn list_items(&self, _: &str) -> Result<Vec<BcItem>, Error> {
        Err(self.unsupported("list_items"))
    }
    async fn cost_reports(&self, _: &str, _: Option<&[String]>) -> Result<Vec<BcCost>, Error> {
        Err(self.unsupported("cost_reports"))
    }
    async fn cost_by_service(&self, _: &str, _: &str) -> Result<Vec<BcServiceCost>, Error> {
        Err(self.unsupported("cost_by_service"))
    }
    async fn create_rule(&self, _: &NewRule, _: &str) -> Result<String, Error> {
        Err(self.unsupported("create_rule"))
    }
    async fn update_rule(&self, _: &str, _: &NewRule) -> Result<(), Error> {
        Err(self.unsupported("update_rule"))
    }
    async fn delete_rule(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("delete_rule"))
    }
    async fn create_plan(&self, _: &str, _: &str, _: &Tags, _: &str) -> Result<String, Error> {
        Err(self.unsupported("create_plan"))
    }
    async fn update_plan(&self, _: &str, _: &str) -> Result<(), Error> {
        Err(self.unsupported("update_plan"))
    }
    async fn delete_plan(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("delete_plan"))
    }
    async fn associate_rules(&self, _: &str, _: &[String]) -> Result<(), Error> {
        Err(self.unsupported("associate_rules"))
    }
    async fn disassociate_rules(&self, _: &str, _: &[String]) -> Result<(), Error> {
        Err(self.unsupported("disassociate_rules"))
    }
    async fn create_group(&self, _: &NewGroup, _: &str) -> Result<String, Error> {
        Err(self.unsupported("create_group"))
    }
    async fn update_group(&self, _: &str, _: &str, _: &str, _: bool) -> Result<(), Error> {
        Err(self.unsupported("update_group"))
    }
    async fn delete_group(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("delete_group"))
    }
    async fn associate_accounts(&self, _: &str, _: &[String]) -> Result<(), Error> {
        Err(self.unsupported("associate_accounts"))
    }
    async fn disassociate_accounts(&self, _: &str, _: &[String]) -> Result<(), Error> {
        Err(self.unsupported("disassociate_accounts"))
    }
    async fn create_item(&self, _: &NewItem, _: &str) -> Result<String, Error> {
        Err(self.unsupported("create_item"))
    }
    async fn update_item(&self, _: &str, _: &NewItem, _: &str) -> Result<(), Error> {
        Err(self.unsupported("update_item"))
    }
    async fn delete_item(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("delete_item"))
    }
    async fn list_tags(&self, _: &str) -> Result<Tags, Error> {
        Err(self.unsupported("list_tags"))
    }
    async fn tag(&self, _: &str, _: &Tags) -> Result<(), Error> {
        Err(self.unsupported("tag"))
    }
    async fn untag(&self, _: &str, _: &[String]) -> Result<(), Error> {
        Err(self.unsupported("untag"))
    }
}

#[async_trait]
impl super::costs::CostApi for FakeAws {
    async fn monthly_costs(&self, _: &str, _: &str) -> Result<super::costs::CostQuery, Error> {
        let s = self.call("GetCostAndUsage")?;
        Ok(super::costs::CostQuery {
            rows: s.costs,
            requests: 1,
        })
    }
}

// The CurPipeline reconciler is tested against the emulator; the fake refuses its calls.
#[async_trait]
impl super::pipeline::PipelineApi for FakeAws {
    async fn bucket_exists(&self, _: &str, _: &str) -> Result<bool, Error> {
        Err(self.unsupported("HeadBucket"))
    }
    async fn create_bucket(&self, _: &str, _: &str, _: &Tags) -> Result<(), Error> {
        Err(self.unsupported("CreateBucket"))
    }
    async fn bucket_policy(&self, _: &str, _: &str) -> Result<Option<String>, Error> {
        Err(self.unsupported("GetBucketPolicy"))
    }
    async fn put_bucket_policy(&self, _: &str, _: &str, _: &str) -> Result<(), Error> {
        Err(self.unsupported("PutBucketPolicy"))
    }
    async fn has_objects(&self, _: &str, _: &str, _: &str) -> Result<bool, Error> {
        Err(self.unsupported("ListObjectsV2"))
    }
    async fn find_export(&self, _: &str) -> Result<Option<super::pipeline::ExportInfo>, Error> {
        Err(self.unsupported("ListExports"))
    }
    async fn create_export(
        &self,
        _: &super::pipeline::ExportDef,
        _: &Tags,
    ) -> Result<String, Error> {
        Err(self.unsupported("CreateExport"))
    }
    async fn update_export(&self, _: &str, _: &super::pipeline::ExportDef) -> Result<(), Error> {
        Err(self.unsupported("UpdateExport"))
    }
    async fn delete_export(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("DeleteExport"))
    }
    async fn find_report(&self, _: &str) -> Result<Option<super::pipeline::ReportDef>, Error> {
        Err(self.unsupported("DescribeReportDefinitions"))
    }
    async fn report_tags(&self, _: &str) -> Result<Tags, Error> {
        Err(self.unsupported("ListTagsForResource"))
    }
    async fn tag_report(&self, _: &str, _: &Tags) -> Result<(), Error> {
        Err(self.unsupported("TagResource"))
    }
    async fn put_report(&self, _: &super::pipeline::ReportDef, _: &Tags) -> Result<(), Error> {
        Err(self.unsupported("PutReportDefinition"))
    }
    async fn modify_report(&self, _: &super::pipeline::ReportDef) -> Result<(), Error> {
        Err(self.unsupported("ModifyReportDefinition"))
    }
    async fn delete_report(&self, _: &str) -> Result<(), Error> {
        Err(self.unsupported("DeleteReportDefinition"))
    }
    async fn database(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<super::pipeline::GlueDatabase>, Error> {
        Err(self.unsupported("GetDatabase"))
    }
    async fn create_database(
        &self,
        _: &str,
        _: &super::pipeline::GlueDatabase,
        _: &Tags,
    ) -> Result<(), Error> {
        Err(self.unsupported("CreateDatabase"))
    }
    async fn delete_database(&self, _: &str, _: &str) -> Result<(), Error> {
        Err(self.unsupported("DeleteDatabase"))
    }
    async fn crawler(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<super::pipeline::CrawlerInfo>, Error> {
        Err(self.unsupported("GetCrawler"))
    }
    async fn create_crawler(
        &self,
        _: &str,
        _: &super::pipeline::CrawlerDef,
        _: &Tags,
    ) -> Result<(), Error> {
        Err(self.unsupported("CreateCrawler"))
    }
    async fn update_crawler(&self, _: &str, _: &super::pipeline::CrawlerDef) -> Result<(), Error> {
        Err(self.unsupported("UpdateCrawler"))
    }
    async fn delete_crawler(&self, _: &str, _: &str) -> Result<(), Error> {
        Err(self.unsupported("DeleteCrawler"))
    }
}

#[async_trait]
impl TransferPreferenceApi for FakeAws {
    async fn get_transfer_preference(&self, _: &str) -> Result<TransferPreference, Error> {
        self.call("GetBillingTransferPreference")?;
        Ok(TransferPreference::default())
    }
    async fn update_transfer_preference(
        &self,
        _: &str,
        _: &TransferPreference,
        _: &str,
    ) -> Result<(), Error> {
        Err(self.unsupported("UpdateBillingTransferPreference"))
    }
}
