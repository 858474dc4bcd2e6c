//! TRANSITIONAL, removed after the redesign merge: the per-kind lookups of the former
//! `Catalog` trait, kept only so that domain files written against it still compile.
//!
//! New code calls the generic lookups of [`super::catalog::Catalog`]
//! (`ctx.catalog.get::<Payer>(ns, name)`, `list_where::<LinkedAccount>(ns, |a| ..)`,
//! `all::<Payer>()`). Once no domain file calls the methods below, delete this file and
//! re-export `catalog::Catalog` as `crate::reconcile::Catalog`. The free `finish` and
//! `finish_cleanup` (replaced by `Run::finish*`) go with it.

use crate::api::{
    BillingGroup, CustomLineItem, LinkedAccount, OrganizationalUnit, Payer, PricingPlan,
    ServiceControlPolicy,
};

use crate::api::conditions::{DesiredCondition, merge_conditions};
use crate::error::Error;

use super::catalog::Catalog as Objects;
use super::conditions::{conditions_for, ready_change_event};
use super::outcome::{Change, EventNote, KindOutcome, KindStatus, Mode, Verdict};

/// The former per-kind catalog interface (see the module docs).
pub trait Catalog: Send + Sync {
    fn payer(&self, namespace: &str, name: &str) -> Option<Payer>;
    fn all_payers(&self) -> Vec<Payer>;
    fn service_control_policy(&self, namespace: &str, name: &str) -> Option<ServiceControlPolicy>;
    fn service_control_policies(&self, namespace: &str) -> Vec<ServiceControlPolicy>;
    fn organizational_unit(&self, namespace: &str, name: &str) -> Option<OrganizationalUnit>;
    fn linked_accounts(&self, namespace: &str) -> Vec<LinkedAccount>;
    fn pricing_plan(&self, namespace: &str, name: &str) -> Option<PricingPlan>;
    fn billing_groups(&self, namespace: &str) -> Vec<BillingGroup>;
    fn custom_line_items(&self, namespace: &str) -> Vec<CustomLineItem>;
    fn linked_accounts_where(
        &self,
        namespace: &str,
        keep: &dyn Fn(&LinkedAccount) -> bool,
    ) -> Vec<LinkedAccount>;
    fn billing_groups_where(
        &self,
        namespace: &str,
        keep: &dyn Fn(&BillingGroup) -> bool,
    ) -> Vec<BillingGroup>;
    fn billing_group(&self, namespace: &str, name: &str) -> Option<BillingGroup>;
    fn linked_account(&self, namespace: &str, name: &str) -> Option<LinkedAccount>;
}

/// The per-kind lookups as inherent methods (callers that do not import the trait).
impl Objects {
    pub fn payer(&self, namespace: &str, name: &str) -> Option<Payer> {
        self.get(namespace, name)
    }
    pub fn all_payers(&self) -> Vec<Payer> {
        self.all()
    }
    pub fn service_control_policy(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<ServiceControlPolicy> {
        self.get(namespace, name)
    }
    pub fn service_control_policies(&self, namespace: &str) -> Vec<ServiceControlPolicy> {
        self.list(namespace)
    }
    pub fn organizational_unit(&self, namespace: &str, name: &str) -> Option<OrganizationalUnit> {
        self.get(namespace, name)
    }
    pub fn linked_accounts(&self, namespace: &str) -> Vec<LinkedAccount> {
        self.list(namespace)
    }
    pub fn pricing_plan(&self, namespace: &str, name: &str) -> Option<PricingPlan> {
        self.get(namespace, name)
    }
    pub fn billing_groups(&self, namespace: &str) -> Vec<BillingGroup> {
        self.list(namespace)
    }
    pub fn custom_line_items(&self, namespace: &str) -> Vec<CustomLineItem> {
        self.list(namespace)
    }
    pub fn linked_accounts_where(
        &self,
        namespace: &str,
        keep: &dyn Fn(&LinkedAccount) -> bool,
    ) -> Vec<LinkedAccount> {
        self.list_where(namespace, keep)
    }
    pub fn billing_groups_where(
        &self,
        namespace: &str,
        keep: &dyn Fn(&BillingGroup) -> bool,
    ) -> Vec<BillingGroup> {
        self.list_where(namespace, keep)
    }
    pub fn billing_group(&self, namespace: &str, name: &str) -> Option<BillingGroup> {
        self.get(namespace, name)
    }
    pub fn linked_account(&self, namespace: &str, name: &str) -> Option<LinkedAccount> {
        self.get(namespace, name)
    }
}

impl Catalog for Objects {
    fn payer(&self, namespace: &str, name: &str) -> Option<Payer> {
        Objects::payer(self, namespace, name)
    }
    fn all_payers(&self) -> Vec<Payer> {
        Objects::all_payers(self)
    }
    fn service_control_policy(&self, namespace: &str, name: &str) -> Option<ServiceControlPolicy> {
        Objects::service_control_policy(self, namespace, name)
    }
    fn service_control_policies(&self, namespace: &str) -> Vec<ServiceControlPolicy> {
        Objects::service_control_policies(self, namespace)
    }
    fn organizational_unit(&self, namespace: &str, name: &str) -> Option<OrganizationalUnit> {
        Objects::organizational_unit(self, namespace, name)
    }
    fn linked_accounts(&self, namespace: &str) -> Vec<LinkedAccount> {
        Objects::linked_accounts(self, namespace)
    }
    fn pricing_plan(&self, namespace: &str, name: &str) -> Option<PricingPlan> {
        Objects::pricing_plan(self, namespace, name)
    }
    fn billing_groups(&self, namespace: &str) -> Vec<BillingGroup> {
        Objects::billing_groups(self, namespace)
    }
    fn custom_line_items(&self, namespace: &str) -> Vec<CustomLineItem> {
        Objects::custom_line_items(self, namespace)
    }
    fn linked_accounts_where(
        &self,
        namespace: &str,
        keep: &dyn Fn(&LinkedAccount) -> bool,
    ) -> Vec<LinkedAccount> {
        Objects::linked_accounts_where(self, namespace, keep)
    }
    fn billing_groups_where(
        &self,
        namespace: &str,
        keep: &dyn Fn(&BillingGroup) -> bool,
    ) -> Vec<BillingGroup> {
        Objects::billing_groups_where(self, namespace, keep)
    }
    fn billing_group(&self, namespace: &str, name: &str) -> Option<BillingGroup> {
        Objects::billing_group(self, namespace, name)
    }
    fn linked_account(&self, namespace: &str, name: &str) -> Option<LinkedAccount> {
        Objects::linked_account(self, namespace, name)
    }
}

/// TRANSITIONAL: the former free `finish`; kinds call [`super::run::Run::finish`] now.
#[allow(clippy::too_many_arguments)]
pub fn finish<S: KindStatus>(
    previous: &S,
    mut status: S,
    result: Result<Verdict, Error>,
    extra: &[DesiredCondition],
    generation: Option<i64>,
    mode: Mode,
    now: &str,
    changes: Vec<Change>,
    mut events: Vec<EventNote>,
) -> KindOutcome<S> {
    let mut conditions = conditions_for(previous.conditions(), &result, generation, now);
    if !extra.is_empty() {
        conditions = merge_conditions(&conditions, extra, generation, now);
    }
    status.set_conditions(conditions);
    status.set_observed_generation(generation);
    if mode == Mode::Plan {
        status = previous.clone();
        events.clear();
    } else {
        events.extend(ready_change_event(
            previous.conditions(),
            status.conditions(),
        ));
    }
    KindOutcome {
        result,
        status,
        changes,
        events,
    }
}

/// TRANSITIONAL: the former free `finish_cleanup`; kinds call
/// [`super::run::Run::finish_cleanup`] now.
#[allow(clippy::too_many_arguments)]
pub fn finish_cleanup<S: KindStatus>(
    previous: &S,
    mut status: S,
    result: Result<Verdict, Error>,
    extra: &[DesiredCondition],
    generation: Option<i64>,
    now: &str,
    changes: Vec<Change>,
    mut events: Vec<EventNote>,
    warn: impl Fn(&str) -> bool,
) -> KindOutcome<S> {
    let mut conditions = conditions_for(previous.conditions(), &result, generation, now);
    if !extra.is_empty() {
        conditions = merge_conditions(&conditions, extra, generation, now);
    }
    status.set_conditions(conditions);
    match &result {
        Ok(v) => events.push(EventNote {
            warning: warn(&v.reason),
            reason: v.reason.clone(),
            note: v.message.clone(),
        }),
        Err(_) => events.extend(ready_change_event(
            previous.conditions(),
            status.conditions(),
        )),
    }
    KindOutcome {
        result,
        status,
        changes,
        events,
    }
}
