//! Shared Billing Conductor reads per payer: paginated ListPricingRules, ListPricingPlans (and
//! the rules of each plan), ListBillingGroups, ListAccountAssociations, ListCustomLineItems
//! and ListBillingGroupCostReports for the current and the previous billing period. Every
//! PricingPlan, BillingGroup and CustomLineItem of the payer reads this one snapshot, and the
//! operator's own writes are applied to it (see [`super::context::BillingContext`]). Also the
//! billing periods Billing Conductor keeps open at a given time.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::jiff::Timestamp;

use crate::aws::Connection;
use crate::aws::billing::{BcCost, BcGroup, BcItem, BcPlan, BcRule};
use crate::error::Error;

/// The billing periods (`YYYY-MM`, UTC) Billing Conductor lets custom line items be created
/// in or changed: the current one and the previous one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingPeriods {
    pub current: String,
    pub previous: String,
}

impl BillingPeriods {
    /// The open billing periods at `now`. Pure.
    pub fn at(now: Timestamp) -> Self {
        let current = now.strftime("%Y-%m").to_string();
        let previous = crate::time::previous_period(&current);
        Self { current, previous }
    }
}

/// Billing Conductor as it was when the snapshot was taken.
#[derive(Clone, Debug)]
pub struct BillingSnapshot {
    pub current_period: String,
    pub previous_period: String,
    pub rules: Vec<BcRule>,
    pub plans: Vec<BcPlan>,
    /// Rule ARNs associated with each plan ARN.
    pub plan_rules: HashMap<String, Vec<String>>,
    pub groups: Vec<BcGroup>,
    /// Billing group ARN of each associated account. Changed only through the methods below
    /// (they keep [`BillingSnapshot::index`] right).
    pub group_of: HashMap<String, String>,
    /// Custom line items that apply in the current period.
    pub items: Vec<BcItem>,
    /// Cost reports by period (current and previous), by group ARN.
    pub costs: HashMap<String, HashMap<String, BcCost>>,
    /// The accounts of each group (`group_of` turned around), built on first use; the
    /// associations made or removed through the methods below update it, removing a group
    /// drops it (a scan of every association per group made a pass over N groups cost N
    /// scans of every account). Start with `Default::default()`.
    pub index: MembersIndex,
}

/// See [`BillingSnapshot::index`]: group ARN -> its accounts.
#[derive(Clone, Debug, Default)]
pub struct MembersIndex(std::sync::OnceLock<HashMap<String, BTreeSet<String>>>);

impl BillingSnapshot {
    /// Read Billing Conductor through `conn`, for the billing periods open at `now`.
    pub async fn load(conn: &Connection, now: Timestamp) -> Result<Self, Error> {
        let bc = conn.billing.as_ref();
        let BillingPeriods {
            current: current_period,
            previous: previous_period,
        } = BillingPeriods::at(now);
        let rules = bc.list_rules().await?;
        let plans = bc.list_plans().await?;
        let mut plan_rules = HashMap::new();
        for p in &plans {
            plan_rules.insert(p.arn.clone(), bc.list_plan_rule_arns(&p.arn).await?);
        }
        let groups = bc.list_groups(None).await?;
        let group_of = bc.list_associations().await?.into_iter().collect();
        let items = bc.list_items(&current_period).await?;
        let mut costs = HashMap::new();
        for period in [&current_period, &previous_period] {
            let reports = bc.cost_reports(period, None).await?;
            costs.insert(
                period.clone(),
                reports.into_iter().map(|r| (r.arn.clone(), r)).collect(),
            );
        }
        Ok(Self {
            current_period,
            previous_period,
            rules,
            plans,
            plan_rules,
            groups,
            group_of,
            items,
            costs,
            index: MembersIndex::default(),
        })
    }

    fn members_of(&self) -> &HashMap<String, BTreeSet<String>> {
        self.index.0.get_or_init(|| {
            let mut members: HashMap<String, BTreeSet<String>> = HashMap::new();
            for (account, group) in &self.group_of {
                members
                    .entry(group.clone())
                    .or_default()
                    .insert(account.clone());
            }
            members
        })
    }

    /// How many accounts group `arn` has (a scan when the index is not built: no index is
    /// built for one count).
    fn size_of(&self, arn: &str) -> i64 {
        match self.index.0.get() {
            Some(members) => members.get(arn).map_or(0, BTreeSet::len) as i64,
            None => self.group_of.values().filter(|g| *g == arn).count() as i64,
        }
    }

    pub fn rule_named(&self, name: &str) -> Option<&BcRule> {
        self.rules.iter().find(|r| r.name == name)
    }

    pub fn plan_named(&self, name: &str) -> Option<&BcPlan> {
        self.plans.iter().find(|p| p.name == name)
    }

    pub fn group_named(&self, name: &str) -> Option<&BcGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn group(&self, arn: &str) -> Option<&BcGroup> {
        self.groups.iter().find(|g| g.arn == arn)
    }

    pub fn item_named(&self, name: &str) -> Option<&BcItem> {
        self.items.iter().find(|i| i.name == name)
    }

    /// Accounts associated with group `arn`, sorted.
    pub fn members(&self, arn: &str) -> Vec<String> {
        self.members_of()
            .get(arn)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A group the operator created, with the accounts it associated (its state is not
    /// known until Billing Conductor is listed again).
    pub fn add_group(&mut self, group: &BcGroup, members: &[String]) {
        match self.groups.iter_mut().find(|g| g.arn == group.arn) {
            Some(g) => *g = group.clone(),
            None => self.groups.push(group.clone()),
        }
        self.associate(&group.arn, members);
    }

    pub fn update_group(&mut self, arn: &str, description: &str, plan_arn: &str, auto: bool) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.arn == arn) {
            g.description = description.to_string();
            g.plan_arn = plan_arn.to_string();
            g.auto_associate = auto;
        }
    }

    pub fn associate(&mut self, arn: &str, accounts: &[String]) {
        let mut index = self.index.0.get_mut();
        for a in accounts {
            let before = self.group_of.insert(a.clone(), arn.to_string());
            if let Some(members) = index.as_deref_mut() {
                if let Some(before) = before.filter(|b| b != arn)
                    && let Some(m) = members.get_mut(&before)
                {
                    m.remove(a);
                }
                members
                    .entry(arn.to_string())
                    .or_default()
                    .insert(a.clone());
            }
        }
        let size = self.size_of(arn);
        if let Some(g) = self.groups.iter_mut().find(|g| g.arn == arn) {
            g.size = size;
        }
    }

    pub fn disassociate(&mut self, arn: &str, accounts: &[String]) {
        let mut index = self.index.0.get_mut();
        for a in accounts {
            if self.group_of.get(a).is_some_and(|g| g == arn) {
                self.group_of.remove(a);
                if let Some(m) = index.as_deref_mut().and_then(|m| m.get_mut(arn)) {
                    m.remove(a);
                }
            }
        }
        let size = self.size_of(arn);
        if let Some(g) = self.groups.iter_mut().find(|g| g.arn == arn) {
            g.size = size;
        }
    }

    pub fn remove_group(&mut self, arn: &str) {
        self.groups.retain(|g| g.arn != arn);
        self.group_of.retain(|_, g| g != arn);
        self.items.retain(|i| i.group_arn != arn);
        self.index = MembersIndex::default();
    }

    pub fn put_item(&mut self, item: &BcItem) {
        match self.items.iter_mut().find(|i| i.arn == item.arn) {
            Some(i) => *i = item.clone(),
            None => self.items.push(item.clone()),
        }
    }

    pub fn remove_item(&mut self, arn: &str) {
        self.items.retain(|i| i.arn != arn);
    }

    /// What Billing Conductor says of one group now: its state and cost reports.
    pub fn set_group_facts(&mut self, group: &BcGroup, costs: &[(String, BcCost)]) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.arn == group.arn) {
            g.status = group.status.clone();
            g.status_reason = group.status_reason.clone();
        }
        for (period, cost) in costs {
            self.costs
                .entry(period.clone())
                .or_default()
                .insert(cost.arn.clone(), cost.clone());
        }
    }

    pub fn cost(&self, period: &str, arn: &str) -> Option<&BcCost> {
        self.costs.get(period).and_then(|c| c.get(arn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(arn: &str) -> BcGroup {
        BcGroup {
            arn: arn.into(),
            name: arn.into(),
            description: String::new(),
            primary_account_id: String::new(),
            plan_arn: String::new(),
            size: 0,
            status: String::new(),
            status_reason: None,
            auto_associate: false,
            group_type: "STANDARD".into(),
            transfer_arn: None,
        }
    }

    fn snapshot(group_of: &[(&str, &str)]) -> BillingSnapshot {
        BillingSnapshot {
            current_period: "2026-11".into(),
            previous_period: "2026-10".into(),
            rules: vec![],
            plans: vec![],
            plan_rules: HashMap::new(),
            groups: vec![group("g1"), group("g2")],
            group_of: group_of
                .iter()
                .map(|(a, g)| (a.to_string(), g.to_string()))
                .collect(),
            items: vec![],
            costs: HashMap::new(),
            index: MembersIndex::default(),
        }
    }

    /// `members` by a scan of every association (what the index must give).
    fn scanned(s: &BillingSnapshot, arn: &str) -> Vec<String> {
        let mut m: Vec<String> = (s.group_of.iter())
            .filter(|(_, g)| *g == arn)
            .map(|(a, _)| a.clone())
            .collect();
        m.sort();
        m
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn members_come_from_an_index_that_every_association_edit_keeps_right() {
        let mut s = snapshot(&[("3", "g1"), ("1", "g1"), ("2", "g2")]);
        assert!(s.index.0.get().is_none());
        assert_eq!(s.members("g1"), ids(&["1", "3"]));
        assert!(s.index.0.get().is_some(), "built on first use");
        assert!(s.members("g3").is_empty());

        // An account moved from g2 to g1, a new one, one already there.
        s.associate("g1", &ids(&["2", "4", "1"]));
        assert_eq!(s.members("g1"), ids(&["1", "2", "3", "4"]));
        assert!(s.members("g2").is_empty());
        assert_eq!(s.groups[0].size, 4);
        // Only the accounts of the group named are disassociated.
        s.associate("g2", &ids(&["5"]));
        s.disassociate("g1", &ids(&["3", "5", "9"]));
        assert_eq!(s.members("g1"), ids(&["1", "2", "4"]));
        assert_eq!(s.members("g2"), ids(&["5"]));
        assert_eq!((s.groups[0].size, s.groups[1].size), (3, 1));
        for g in ["g1", "g2"] {
            assert_eq!(s.members(g), scanned(&s, g));
        }
        // A clone carries the index and goes its own way.
        let mut copy = s.clone();
        copy.associate("g2", &ids(&["1"]));
        assert_eq!(copy.members("g2"), ids(&["1", "5"]));
        assert_eq!(s.members("g2"), ids(&["5"]));

        s.remove_group("g1");
        assert!(s.members("g1").is_empty());
        assert_eq!(s.members("g2"), ids(&["5"]));
        assert_eq!(s.members("g2"), scanned(&s, "g2"));
    }

    #[test]
    fn sizes_are_counted_without_an_index_too() {
        let mut s = snapshot(&[("1", "g1"), ("2", "g2")]);
        s.associate("g1", &ids(&["2", "3"]));
        assert!(s.index.0.get().is_none(), "no index built for a count");
        assert_eq!((s.groups[0].size, s.groups[1].size), (3, 0));
        s.disassociate("g1", &ids(&["1"]));
        assert_eq!(s.groups[0].size, 2);
        assert_eq!(s.members("g1"), ids(&["2", "3"]));
    }

    #[test]
    fn the_open_periods_follow_utc_months() {
        let at = |t: &str| BillingPeriods::at(t.parse().unwrap());
        assert_eq!(
            at("2026-11-24T12:00:00Z"),
            BillingPeriods {
                current: "2026-11".into(),
                previous: "2026-10".into()
            }
        );
        assert_eq!(at("2026-01-01T00:00:00Z").previous, "2025-12");
        assert_eq!(at("2026-11-30T23:59:59Z").current, "2026-11");
    }
}
