//! BillingGroup: found by name, created with a ClientToken, members converged in batches of 30
//! (named LinkedAccounts, account ids, and a label selector), an account held by another
//! group reported on both and left where it is; cost reports for the current and previous
//! period in status. Observe (payer snapshot, pricing plan, accounts, ownership), plan (pure:
//! update, creation, membership), execute through the billing write path, then a pure status
//! and verdict.

use crate::reconcile::catalog::{Guarded, Lookup};
use crate::reconcile::trigger::Trigger;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use crate::api::billing_group::{
    BillingGroupSpec, BillingGroupType, CostReport, GroupDeletionPolicy,
};
use crate::api::common::{OWNER_TAG, owner_value, with_owner};
use crate::api::conditions::{ConditionStatus, DesiredCondition};
use crate::api::{BillingGroup, BillingGroupStatus, LinkedAccount};
use crate::aws::billing::{BcCost, BcGroup, BcItem, BillingApi, NewGroup};
use crate::aws::organizations::Tags;
use crate::error::Error;
use crate::money::Amount;
use crate::payer::insights::GroupCost;

use crate::billing::context::{BATCH, BillingContext, payer_gone};
use crate::billing::snapshot::BillingSnapshot;
use crate::reconcile::ownership::{
    ClaimCheck, Claimant, Found, REFUSED_RETRY, TagAudit, check_claim, client_token,
    complete_claim, deletable, usable_dependency,
};
use crate::reconcile::reasons::{
    ACCOUNT_CONFLICT, ACCOUNT_WANTED_BY_ANOTHER_GROUP, AVAILABLE, CREATED, DELETED,
    DEPENDENCY_NOT_READY, GROUP_HAS_FOREIGN_ITEMS, GROUP_TYPE_MISMATCH, NO_CONFLICT,
    PLAN_NOT_ALLOWED, PLANNED_ONLY, PRIMARY_ACCOUNT_MISMATCH, RELEASED,
};
use crate::reconcile::run::Run;
use crate::reconcile::{
    ChangeAction, DEPENDENCY_RETRY, KindOutcome, ReconcileContext, Verdict, change, object_key,
};

/// Condition type naming accounts two billing groups both want.
pub const CONFLICT: &str = "AccountConflict";

/// Whether `labels` match `selector` (matchLabels and matchExpressions). Pure.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// An account reference: a 12-digit id as is, else a LinkedAccount name (its account id once
/// it has one).
pub(crate) fn resolve_account(
    reference: &str,
    accounts: &[LinkedAccount],
) -> Result<String, String> {
    if reference.len() == 12 && reference.chars().all(|c| c.is_ascii_digit()) {
        return Ok(reference.to_string());
    }
    let la = accounts
        .iter()
        .find(|a| a.name_any() == reference)
        .ok_or_else(|| format!("LinkedAccount {reference} does not exist"))?;
    la.status
        .as_ref()
        .and_then(|s| s.account_id.clone())
        .ok_or_else(|| format!("LinkedAccount {reference} has no account id yet"))
}

/// Which of `members` (account ids) group `other` wants: by id, by the name of their
/// LinkedAccount (`member_accounts`), or through its selector. Pure.
pub fn wanted_members(
    other: &BillingGroup,
    members: &[String],
    member_accounts: &[LinkedAccount],
) -> BTreeSet<String> {
    let id_of = |la: &LinkedAccount| la.status.as_ref().and_then(|s| s.account_id.clone());
    let mut wanted = BTreeSet::new();
    for r in &other.spec.accounts {
        if members.contains(r) {
            wanted.insert(r.clone());
        }
        wanted.extend(
            member_accounts
                .iter()
                .filter(|la| la.metadata.name.as_deref() == Some(r.as_str()))
                .filter_map(id_of),
        );
    }
    if let Some(sel) = &other.spec.account_selector {
        wanted.extend(
            member_accounts
                .iter()
                .filter(|la| selector_matches(sel, la.labels()))
                .filter_map(id_of),
        );
    }
    wanted
}

/// Membership changes for a group. Pure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipPlan {
    pub associate: Vec<String>,
    pub disassociate: Vec<String>,
    /// Wanted accounts another group holds: account -> that group's ARN.
    pub held_elsewhere: BTreeMap<String, String>,
}

/// What to associate and disassociate so that group `arn` holds `wanted` (the primary is
/// never disassociated; accounts other groups hold are left there). Pure.
pub fn membership(
    arn: Option<&str>,
    primary: &str,
    wanted: &BTreeSet<String>,
    snapshot: &BillingSnapshot,
) -> MembershipPlan {
    let current: BTreeSet<String> = arn
        .map(|a| snapshot.members(a).into_iter().collect())
        .unwrap_or_default();
    let mut plan = MembershipPlan::default();
    for a in wanted {
        if current.contains(a) {
            continue;
        }
        match snapshot.group_of.get(a) {
            Some(other) if Some(other.as_str()) != arn => {
                plan.held_elsewhere.insert(a.clone(), other.clone());
            }
            _ => plan.associate.push(a.clone()),
        }
    }
    plan.disassociate = current
        .iter()
        .filter(|a| !wanted.contains(*a) && a.as_str() != primary)
        .cloned()
        .collect();
    plan
}

fn report(period: &str, c: &BcCost) -> CostReport {
    CostReport {
        billing_period: period.to_string(),
        aws_cost: c.aws_cost.clone(),
        proforma_cost: c.proforma_cost.clone(),
        margin: c.margin.clone(),
        margin_percentage: c.margin_percentage.clone(),
        currency: c.currency.clone(),
    }
}

/// Month-over-month change of the pro forma cost, in percent (two decimals). Pure.
pub fn change_percent(previous: &str, current: &str) -> Option<String> {
    let p = Amount::parse(previous)?;
    let c = Amount::parse(current)?;
    c.change_from(p)
}

/// The accounts a group wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WantedAccounts {
    /// The primary account's id (none for a TRANSFER_BILLING group, whose accounts are the
    /// customer organization's and not managed here).
    pub primary: Option<String>,
    /// Every wanted account id, the primary included.
    pub wanted: BTreeSet<String>,
    /// Why some named or selected accounts are not wanted yet (no account id).
    pub pending: Vec<String>,
}

/// The accounts `spec` names or selects among `linked` (the LinkedAccounts it names or
/// selects). Waits while the primary account has no id. Pure.
pub fn wanted_accounts(
    spec: &BillingGroupSpec,
    linked: &[LinkedAccount],
) -> Result<WantedAccounts, Error> {
    let Some(primary_ref) = spec.primary_account.as_deref() else {
        return Ok(WantedAccounts::default());
    };
    let primary = resolve_account(primary_ref, linked).map_err(|m| {
        Error::waiting(
            DEPENDENCY_NOT_READY,
            format!("primaryAccount: {m}"),
            DEPENDENCY_RETRY,
        )
    })?;
    let mut out = WantedAccounts {
        wanted: BTreeSet::from([primary.clone()]),
        primary: Some(primary),
        pending: Vec::new(),
    };
    for r in &spec.accounts {
        match resolve_account(r, linked) {
            Ok(id) => {
                out.wanted.insert(id);
            }
            Err(m) => out.pending.push(m),
        }
    }
    if let Some(selector) = &spec.account_selector {
        for la in linked
            .iter()
            .filter(|la| selector_matches(selector, la.labels()))
        {
            match la.status.as_ref().and_then(|s| s.account_id.clone()) {
                Some(id) => {
                    out.wanted.insert(id);
                }
                None => out.pending.push(format!(
                    "LinkedAccount {} has no account id yet",
                    la.name_any()
                )),
            }
        }
    }
    Ok(out)
}

/// What a BillingGroup wants, for [`plan`].
#[derive(Clone, Debug)]
pub struct DesiredGroup<'a> {
    pub name: &'a str,
    pub description: &'a str,
    /// ARN of the pricing plan it names.
    pub plan_arn: &'a str,
    pub auto_associate: bool,
    /// The primary account of a STANDARD group.
    pub primary: Option<&'a str>,
    /// The responsibility transfer of a TRANSFER_BILLING group.
    pub transfer_arn: Option<&'a str>,
    /// Every wanted account id, the primary included.
    pub wanted: &'a BTreeSet<String>,
}

impl DesiredGroup<'_> {
    /// `STANDARD`, or `TRANSFER_BILLING` for a group made from a responsibility transfer.
    fn group_type(&self) -> &'static str {
        if self.transfer_arn.is_some() {
            BillingGroupType::TransferBilling.as_str()
        } else {
            BillingGroupType::Standard.as_str()
        }
    }
}

/// Refuse, before anything is read or written, an AWS-managed plan the group's type cannot
/// use: `Passthrough` is for TRANSFER_BILLING groups only (AWS-managed pricing plans, see
/// docs/aws-facts.md). Pure.
pub fn check_plan_allowed(spec: &BillingGroupSpec) -> Result<(), Error> {
    if spec.pricing_plan_ref.aws_managed() == Some("Passthrough")
        && spec.type_ != BillingGroupType::TransferBilling
    {
        return Err(Error::terminal(
            PLAN_NOT_ALLOWED,
            "the Passthrough pricing plan is allowed only on TRANSFER_BILLING billing groups; name a PricingPlan or BasicPricingPlan in spec.pricingPlanRef",
        ));
    }
    Ok(())
}

/// The ARN of an AWS-managed pricing plan (`BasicPricingPlan`, `Passthrough`): no account in
/// it (model: PricingPlanFullArn `arn:aws:billingconductor::aws:pricingplan/...`). Pure.
pub fn managed_plan_arn(name: &str) -> String {
    format!("arn:aws:billingconductor::aws:pricingplan/{name}")
}

/// Refuse a group found by name that AWS cannot turn into the one wanted: another type or
/// responsibility transfer (`TransferMismatch`), another primary account
/// (`PrimaryAccountMismatch`). Pure.
fn check_existing(want: &DesiredGroup<'_>, g: &BcGroup) -> Result<(), Error> {
    let name = want.name;
    if g.group_type != want.group_type() || g.transfer_arn.as_deref() != want.transfer_arn {
        return Err(Error::terminal(
            GROUP_TYPE_MISMATCH,
            format!(
                "billing group {name} is a {} group{} in AWS, the spec wants a {} group{}; AWS cannot change a group's type or transfer: give the BillingGroup another groupName",
                g.group_type,
                g.transfer_arn
                    .as_deref()
                    .map(|t| format!(" of transfer {t}"))
                    .unwrap_or_default(),
                want.group_type(),
                want.transfer_arn
                    .map(|t| format!(" of transfer {t}"))
                    .unwrap_or_default(),
            ),
        ));
    }
    if let Some(primary) = want.primary
        && g.primary_account_id != primary
    {
        return Err(Error::terminal(
            PRIMARY_ACCOUNT_MISMATCH,
            format!(
                "billing group {name} has primary account {} in AWS, the spec says {primary}; AWS cannot change it",
                g.primary_account_id
            ),
        ));
    }
    Ok(())
}

/// A group to create: `first` (the primary first, at most [`BATCH`]) go with the create
/// call, `rest` are associated afterwards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creation {
    pub first: Vec<String>,
    pub rest: Vec<String>,
}

/// What to do for a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupPlan {
    /// The existing group whose pricing plan, description or autoAssociate differ (ARN).
    pub update: Option<String>,
    /// The group does not exist yet.
    pub create: Option<Creation>,
    pub members: MembershipPlan,
}

/// What to do for a group whose ownership was checked: refused when the group found by name
/// has another primary account (`PrimaryAccountMismatch`: AWS cannot change it), or when the
/// primary account of a group to create belongs to another group (`AccountConflict`). Pure.
pub fn plan(want: &DesiredGroup<'_>, snapshot: &BillingSnapshot) -> Result<GroupPlan, Error> {
    let existing = snapshot.group_named(want.name);
    if let Some(g) = existing {
        check_existing(want, g)?;
    }
    let Some(primary) = want.primary else {
        // A TRANSFER_BILLING group: its accounts are the customer organization's.
        return Ok(GroupPlan {
            update: existing
                .filter(|g| update_due(g, want))
                .map(|g| g.arn.clone()),
            create: existing.is_none().then(Creation::default),
            members: MembershipPlan::default(),
        });
    };
    let update = existing
        .filter(|g| update_due(g, want))
        .map(|g| g.arn.clone());
    let members = membership(
        existing.map(|g| g.arn.as_str()),
        primary,
        want.wanted,
        snapshot,
    );
    let create = match existing {
        Some(_) => None,
        None => {
            if let Some(other) = snapshot.group_of.get(primary) {
                return Err(Error::terminal(
                    ACCOUNT_CONFLICT,
                    format!(
                        "primary account {primary} belongs to billing group {other}; it can be in one group only"
                    ),
                ));
            }
            let mut first = vec![primary.to_string()];
            first.extend(
                members
                    .associate
                    .iter()
                    .filter(|a| *a != primary)
                    .take(BATCH - 1)
                    .cloned(),
            );
            let rest = members
                .associate
                .iter()
                .filter(|a| !first.contains(a))
                .cloned()
                .collect();
            Some(Creation { first, rest })
        }
    };
    Ok(GroupPlan {
        update,
        create,
        members,
    })
}

/// Whether UpdateBillingGroup has something to change: plan, description, autoAssociate.
fn update_due(g: &BcGroup, want: &DesiredGroup<'_>) -> bool {
    g.plan_arn != want.plan_arn
        || g.description != want.description
        || g.auto_associate != want.auto_associate
}

/// The `AccountConflict` condition for `conflicts` (account -> why). Pure.
fn conflict_condition(conflicts: &BTreeMap<String, String>) -> DesiredCondition {
    if conflicts.is_empty() {
        DesiredCondition::new(
            CONFLICT,
            ConditionStatus::False,
            NO_CONFLICT,
            "no account is wanted by another billing group",
        )
    } else {
        DesiredCondition::new(
            CONFLICT,
            ConditionStatus::True,
            ACCOUNT_WANTED_BY_ANOTHER_GROUP,
            conflicts
                .iter()
                .map(|(a, g)| format!("{a}: {g}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// Reconcile a BillingGroup.
pub async fn reconcile(
    obj: &BillingGroup,
    ctx: &ReconcileContext,
    mut run: Run,
) -> KindOutcome<BillingGroupStatus> {
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let result = apply(obj, ctx, &mut run, &mut status).await;
    // Conflicts are known only after a reconcile that got through.
    let extra: Vec<DesiredCondition> = result
        .is_ok()
        .then(|| conflict_condition(&status.conflicts))
        .into_iter()
        .collect();
    run.finish(&previous, status, result, &extra, obj.metadata.generation)
}

/// What a BillingGroup names in AWS and how it is tagged (owned values behind a
/// [`DesiredGroup`]).
struct GroupSpec {
    namespace: String,
    uid: String,
    name: String,
    description: String,
    owner: String,
    tags: Tags,
}

impl GroupSpec {
    fn of(obj: &BillingGroup) -> Self {
        let namespace = obj.namespace().unwrap_or_default();
        let uid = obj
            .uid()
            .unwrap_or_else(|| format!("{namespace}-{}", obj.name_any()));
        let owner = owner_value(&namespace, "BillingGroup", &obj.name_any());
        Self {
            uid,
            name: obj.group_name(),
            description: obj.spec.description.clone().unwrap_or_default(),
            tags: with_owner(&obj.spec.tags, &owner),
            owner,
            namespace,
        }
    }
}

/// What the catalog and AWS hold for a group, read before anything is decided.
struct GroupObservation {
    billing: BillingContext,
    /// ARN of the pricing plan the group names.
    plan_arn: String,
    /// The responsibility transfer a TRANSFER_BILLING group bills.
    transfer_arn: Option<String>,
    /// The LinkedAccounts the spec names or selects.
    linked: Vec<LinkedAccount>,
    accounts: WantedAccounts,
    /// The judgement of the group found by name (none when it does not exist yet).
    claim: Option<ClaimCheck>,
}

async fn apply(
    obj: &BillingGroup,
    ctx: &ReconcileContext,
    run: &mut Run,
    status: &mut BillingGroupStatus,
) -> Result<Verdict, Error> {
    check_plan_allowed(&obj.spec)?;
    let spec = GroupSpec::of(obj);
    let GroupObservation {
        mut billing,
        plan_arn,
        transfer_arn,
        linked,
        accounts,
        claim,
    } = observe(obj, &spec, ctx, run, status).await?;
    let want = DesiredGroup {
        name: &spec.name,
        description: &spec.description,
        plan_arn: &plan_arn,
        auto_associate: obj.spec.auto_associate,
        primary: accounts.primary.as_deref(),
        transfer_arn: transfer_arn.as_deref(),
        wanted: &accounts.wanted,
    };
    let steps = plan(&want, &billing.snapshot)?;
    if let Some(check) = claim {
        // Nothing refuses the group any more: its tags (an adoption's owner tag included).
        let api = billing.api();
        let checked_at = &mut status.tags_checked_at;
        complete_claim(api.as_ref(), check, &spec.tags, checked_at, run).await?;
    }
    let Some(group_arn) = execute(&spec, &want, &steps, &mut billing, run).await? else {
        return Ok(Verdict::blocked(
            PLANNED_ONLY,
            format!("billing group {} would be created", spec.name),
        ));
    };
    if steps.create.is_some() {
        // Tagged at creation (a plan-mode status is never stored).
        status.tags_checked_at = Some(run.timestamp().to_string());
    }
    let members = billing.snapshot.members(&group_arn);
    let rivals = rival_claims(obj, &spec.namespace, ctx, &members);
    let held = &steps.members.held_elsewhere;
    let conflicts = conflicts(held, &rivals, &billing.snapshot);
    group_status(status, &group_arn, members, conflicts, &billing.snapshot);
    status.responsibility_transfer_arn = transfer_arn;
    record_costs(obj, ctx, status);
    super::service_costs::refresh(obj, ctx, &billing, &group_arn, run, status).await;
    Ok(verdict(
        &spec.name,
        held.len(),
        status,
        &accounts.pending,
        &linked,
    ))
}

/// Read what the group depends on: its payer's snapshot, its pricing plan in AWS, the
/// accounts it names or selects, and the ownership of the group found by name (its tags, when
/// due). Writes nothing.
async fn observe(
    obj: &BillingGroup,
    spec: &GroupSpec,
    ctx: &ReconcileContext,
    run: &Run,
    status: &BillingGroupStatus,
) -> Result<GroupObservation, Error> {
    let namespace = spec.namespace.as_str();
    let billing = BillingContext::resolve(namespace, &obj.spec.payer_ref, ctx, run.time()).await?;
    let plan_arn = pricing_plan_arn(obj, namespace, ctx, &billing.snapshot)?;
    let transfer_arn = match &obj.spec.responsibility_transfer_ref {
        Some(r) => Some(super::transfer_ref::accepted_transfer_arn(
            namespace, r, ctx,
        )?),
        None => None,
    };
    let linked = linked_accounts(obj, namespace, ctx);
    let accounts = wanted_accounts(&obj.spec, &linked)?;
    let claim = match billing.snapshot.group_named(&spec.name) {
        // Before anything is written to it: a group another resource owns is refused (the
        // tags of a group adopted are written only once nothing refuses it).
        Some(g) => Some(
            check_claim(
                billing.api().as_ref(),
                &Found {
                    arn: &g.arn,
                    what: format!("billing group {}", spec.name),
                    status_arn: status.arn.as_deref(),
                },
                &Claimant {
                    owner: &spec.owner,
                    adopt: obj.spec.adopt,
                    name_field: "spec.groupName",
                },
                &TagAudit {
                    spec_changed: status.observed_generation != obj.metadata.generation,
                    checked_at: status.tags_checked_at.as_deref(),
                    uid: &spec.uid,
                    now: run.time(),
                },
            )
            .await?,
        ),
        None => None,
    };
    Ok(GroupObservation {
        billing,
        plan_arn,
        transfer_arn,
        linked,
        accounts,
        claim,
    })
}

/// The ARN of the pricing plan the group names: waits while its PricingPlan does not exist,
/// refuses the plan of its name, or has not created it yet.
fn pricing_plan_arn(
    obj: &BillingGroup,
    namespace: &str,
    ctx: &ReconcileContext,
    snapshot: &BillingSnapshot,
) -> Result<String, Error> {
    if let Some(managed) = obj.spec.pricing_plan_ref.aws_managed() {
        return Ok(managed_plan_arn(managed));
    }
    let plan_ref = &obj.spec.pricing_plan_ref.name;
    let dependency = format!("PricingPlan {namespace}/{plan_ref}");
    let waiting = |what: &str| {
        Error::waiting(
            DEPENDENCY_NOT_READY,
            format!("{dependency} {what}"),
            DEPENDENCY_RETRY,
        )
    };
    let plan_obj = ctx
        .catalog
        .get::<crate::api::PricingPlan>(namespace, plan_ref)
        .ok_or_else(|| waiting("does not exist"))?;
    usable_dependency(
        &dependency,
        "plan",
        plan_obj.status.as_ref().map(|s| s.conditions.as_slice()),
    )?;
    snapshot
        .plan_named(&plan_obj.plan_name())
        .map(|p| p.arn.clone())
        .ok_or_else(|| waiting("is not created in AWS yet"))
}

/// The LinkedAccounts the group names or selects (only they are copied out of the catalog).
fn linked_accounts(
    obj: &BillingGroup,
    namespace: &str,
    ctx: &ReconcileContext,
) -> Vec<LinkedAccount> {
    let named: BTreeSet<&str> = obj
        .spec
        .primary_account
        .iter()
        .map(String::as_str)
        .chain(obj.spec.accounts.iter().map(String::as_str))
        .collect();
    let Some(selector) = obj.spec.account_selector.as_ref() else {
        // Names only: looked up, not a scan of every LinkedAccount of the namespace per group.
        return ctx.catalog.named(namespace, named);
    };
    ctx.catalog.list_where::<crate::api::LinkedAccount>(
        namespace,
        |la: &crate::api::LinkedAccount| {
            la.metadata
                .name
                .as_deref()
                .is_some_and(|n| named.contains(n))
                || selector_matches(selector, la.labels())
        },
    )
}

/// Carry out `steps`, every write through the billing write path. The ARN of the group,
/// or none when it would be created (plan mode).
async fn execute(
    spec: &GroupSpec,
    want: &DesiredGroup<'_>,
    steps: &GroupPlan,
    billing: &mut BillingContext,
    run: &mut Run,
) -> Result<Option<String>, Error> {
    let api = billing.api();
    let name = want.name;
    let group_change =
        |action, detail: String| change(action, format!("billing group {name}"), detail);
    if let Some(arn) = &steps.update {
        let update = group_change(
            ChangeAction::Update,
            "pricing plan, description or autoAssociate".into(),
        );
        let (a, d, p, auto) = (
            arn.clone(),
            want.description.to_string(),
            want.plan_arn.to_string(),
            want.auto_associate,
        );
        billing
            .write(
                run,
                update,
                || api.update_group(arn, want.description, want.plan_arn, auto),
                move |_| move |s: &mut BillingSnapshot| s.update_group(&a, &d, &p, auto),
            )
            .await?;
    }
    if let Some(creation) = &steps.create {
        return create(spec, want, creation, &steps.members, billing, run).await;
    }
    let Some(arn) = billing.snapshot.group_named(name).map(|g| g.arn.clone()) else {
        return Ok(None);
    };
    let members = &steps.members;
    if !members.associate.is_empty() {
        let associate = group_change(
            ChangeAction::Update,
            format!("associate {}", members.associate.join(", ")),
        );
        billing
            .write_batches(
                run,
                associate,
                &members.associate,
                |batch| api.associate_accounts(&arn, batch),
                |batch| {
                    let (a, b) = (arn.clone(), batch.to_vec());
                    move |s: &mut BillingSnapshot| s.associate(&a, &b)
                },
            )
            .await?;
    }
    if !members.disassociate.is_empty() {
        let disassociate = group_change(
            ChangeAction::Update,
            format!("disassociate {}", members.disassociate.join(", ")),
        );
        billing
            .write_batches(
                run,
                disassociate,
                &members.disassociate,
                |batch| api.disassociate_accounts(&arn, batch),
                |batch| {
                    let (a, b) = (arn.clone(), batch.to_vec());
                    move |s: &mut BillingSnapshot| s.disassociate(&a, &b)
                },
            )
            .await?;
    }
    Ok(Some(arn))
}

/// Create the group (with a ClientToken: a retry after a crash finds the same group) with
/// its first accounts, then associate the rest; then read the new group's state and cost
/// reports. None in plan mode, where the associations are a change of their own.
async fn create(
    spec: &GroupSpec,
    want: &DesiredGroup<'_>,
    creation: &Creation,
    members: &MembershipPlan,
    billing: &mut BillingContext,
    run: &mut Run,
) -> Result<Option<String>, Error> {
    let name = want.name;
    let new = NewGroup {
        name: name.to_string(),
        description: want.description.to_string(),
        primary_account_id: want.primary.map(str::to_string),
        transfer_arn: want.transfer_arn.map(str::to_string),
        accounts: creation.first.clone(),
        plan_arn: want.plan_arn.to_string(),
        auto_associate: want.auto_associate,
        tags: spec.tags.clone(),
    };
    let token = client_token(&spec.uid, "group");
    let create = change(
        ChangeAction::Create,
        format!("billing group {name}"),
        match (want.primary, want.transfer_arn) {
            (Some(primary), _) => format!("primary {primary}"),
            (None, transfer) => format!(
                "TRANSFER_BILLING, transfer {}",
                transfer.unwrap_or_default()
            ),
        },
    );
    let api = billing.api();
    let this = &mut *billing;
    let created = run
        .write(create, move || async move {
            let arn = api.create_group(&new, &token).await?;
            let group = created_group(&new, &arn);
            let first = new.accounts.clone();
            this.record(move |s| s.add_group(&group, &first));
            // An association that fails leaves the group made: reported after the Event.
            let mut rest = Ok(());
            for batch in creation.rest.chunks(BATCH) {
                rest = api.associate_accounts(&arn, batch).await;
                if rest.is_err() {
                    break;
                }
                let (a, b) = (arn.clone(), batch.to_vec());
                this.record(move |s| s.associate(&a, &b));
            }
            Ok((arn, rest))
        })
        .await?;
    let Some((arn, rest)) = created else {
        if !members.associate.is_empty() {
            run.record(
                ChangeAction::Update,
                format!("billing group {name}"),
                format!("associate {} account(s)", members.associate.len()),
            );
        }
        return Ok(None);
    };
    run.event(false, CREATED, format!("billing group {name} ({arn})"));
    rest?;
    read_group_facts(billing, &arn).await?;
    Ok(Some(arn))
}

/// The group just created, as the snapshot keeps it (its state is known when Billing
/// Conductor is listed again). Pure.
fn created_group(new: &NewGroup, arn: &str) -> BcGroup {
    BcGroup {
        arn: arn.to_string(),
        name: new.name.clone(),
        description: new.description.clone(),
        primary_account_id: new.primary_account_id.clone().unwrap_or_default(),
        plan_arn: new.plan_arn.clone(),
        size: new.accounts.len() as i64,
        status: String::new(),
        status_reason: None,
        auto_associate: new.auto_associate,
        group_type: if new.transfer_arn.is_some() {
            BillingGroupType::TransferBilling.as_str().to_string()
        } else {
            BillingGroupType::Standard.as_str().to_string()
        },
        transfer_arn: new.transfer_arn.clone(),
    }
}

/// The new group's state and cost reports: three filtered reads for this group, not a new
/// read of everything.
async fn read_group_facts(billing: &mut BillingContext, arn: &str) -> Result<(), Error> {
    let api = billing.api();
    let one = [arn.to_string()];
    if let Some(listed) = api.list_groups(Some(&one)).await?.into_iter().next() {
        let mut costs = Vec::new();
        let periods = [
            billing.snapshot.current_period.clone(),
            billing.snapshot.previous_period.clone(),
        ];
        for period in periods {
            for c in api.cost_reports(&period, Some(&one)).await? {
                costs.push((period.clone(), c));
            }
        }
        billing.record(move |s| s.set_group_facts(&listed, &costs));
    }
    Ok(())
}

/// LinkedAccounts by their account id (`status.accountId`).
pub(crate) static BY_ACCOUNT_ID: Lookup<LinkedAccount> = Lookup {
    name: "LinkedAccount by account id",
    keys: account_id_key,
};

fn account_id_key(la: &LinkedAccount) -> Vec<String> {
    la.status
        .as_ref()
        .and_then(|s| s.account_id.clone())
        .into_iter()
        .collect()
}

/// The key under which [`BY_REFERENCE`] finds every group with an account selector (no
/// account id or Kubernetes name contains a NUL).
const SELECTS: &str = "\0selector";

/// BillingGroups by what can make [`wanted_members`] find an account in them: each reference
/// of `spec.accounts` (an account id or a LinkedAccount name), and [`SELECTS`] for a group
/// with a selector.
static BY_REFERENCE: Lookup<BillingGroup> = Lookup {
    name: "BillingGroup by account reference",
    keys: reference_keys,
};

fn reference_keys(g: &BillingGroup) -> Vec<String> {
    let mut keys = g.spec.accounts.clone();
    if g.spec.account_selector.is_some() {
        keys.push(SELECTS.to_string());
    }
    keys
}

/// Accounts of `members` (this group's) that other groups of the namespace want, with why
/// (the first of those groups by name). Lookups, not scans of the namespace: only those
/// members' LinkedAccounts and the groups that name one of them (or select) are copied out of
/// the catalog.
fn rival_claims(
    obj: &BillingGroup,
    namespace: &str,
    ctx: &ReconcileContext,
    members: &[String],
) -> BTreeMap<String, String> {
    let member_accounts: Vec<LinkedAccount> = ctx.catalog.find(
        namespace,
        &BY_ACCOUNT_ID,
        members.iter().map(String::as_str),
    );
    let me = obj.name_any();
    // What `wanted_members` can find at all: a group names one of these (an account id among
    // the members, or the name of a member's LinkedAccount) or has a selector. Only those
    // groups are compared, not every group with every group.
    let references = members
        .iter()
        .map(String::as_str)
        .chain(
            member_accounts
                .iter()
                .filter_map(|la| la.metadata.name.as_deref()),
        )
        .chain([SELECTS]);
    let candidates: Vec<BillingGroup> = ctx.catalog.find(namespace, &BY_REFERENCE, references);
    let mut out = BTreeMap::new();
    for other in candidates
        .iter()
        .filter(|g| g.metadata.name.as_deref() != Some(me.as_str()))
    {
        for a in wanted_members(other, members, &member_accounts) {
            out.entry(a)
                .or_insert_with(|| format!("also wanted by BillingGroup {}", other.name_any()));
        }
    }
    out
}

/// Conflicts, on both sides: accounts this group wants that another holds (`held`: account
/// -> that group's ARN), then accounts it holds that another group wants (`rivals`). Pure.
fn conflicts(
    held: &BTreeMap<String, String>,
    rivals: &BTreeMap<String, String>,
    snapshot: &BillingSnapshot,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = held
        .iter()
        .map(|(a, other)| {
            let group = snapshot
                .group(other)
                .map(|g| g.name.clone())
                .unwrap_or_else(|| other.clone());
            (a.clone(), format!("held by {group}"))
        })
        .collect();
    for (a, why) in rivals {
        out.entry(a.clone()).or_insert_with(|| why.clone());
    }
    out
}

/// The status of group `arn` as the snapshot holds it: state, members, conflicts, and cost
/// reports of the current and previous period. Pure.
fn group_status(
    status: &mut BillingGroupStatus,
    arn: &str,
    members: Vec<String>,
    conflicts: BTreeMap<String, String>,
    snapshot: &BillingSnapshot,
) {
    let g = snapshot.group(arn);
    status.arn = Some(arn.to_string());
    status.state = g.map(|g| g.status.clone()).filter(|s| !s.is_empty());
    status.state_reason = g.and_then(|g| g.status_reason.clone());
    status.size = Some(members.len() as i64);
    status.members = members;
    status.conflicts = conflicts;
    let (current, previous) = (&snapshot.current_period, &snapshot.previous_period);
    status.current_period = snapshot.cost(current, arn).map(|c| report(current, c));
    status.previous_period = snapshot.cost(previous, arn).map(|c| report(previous, c));
    status.proforma_change_percent = match (&status.previous_period, &status.current_period) {
        (Some(p), Some(c)) => change_percent(&p.proforma_cost, &c.proforma_cost),
        _ => None,
    };
}

/// Keep the group's current cost for the metrics endpoint.
fn record_costs(obj: &BillingGroup, ctx: &ReconcileContext, status: &BillingGroupStatus) {
    let namespace = obj.namespace().unwrap_or_default();
    let cost = status.current_period.as_ref().map(|c| GroupCost {
        payer: object_key(&namespace, &obj.spec.payer_ref.name),
        period: c.billing_period.clone(),
        currency: c.currency.clone(),
        aws_cost: Amount::parse(&c.aws_cost).unwrap_or_default(),
        proforma_cost: Amount::parse(&c.proforma_cost).unwrap_or_default(),
        margin: Amount::parse(&c.margin).unwrap_or_default(),
    });
    ctx.shared::<crate::payer::insights::InsightsStore>()
        .set_group(&object_key(&namespace, &obj.name_any()), cost);
}

/// The verdict on a group once its steps were carried out: blocked while `held` wanted
/// accounts belong to other groups, progressing while some have no id (`pending`), else
/// available with its current cost. Pure.
fn verdict(
    name: &str,
    held: usize,
    status: &BillingGroupStatus,
    pending: &[String],
    linked: &[LinkedAccount],
) -> Verdict {
    if held > 0 {
        return Verdict::blocked(
            ACCOUNT_CONFLICT,
            format!(
                "{held} wanted account(s) belong to another billing group and are left there: {}",
                status
                    .conflicts
                    .iter()
                    .map(|(a, g)| format!("{a} ({g})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if !pending.is_empty() {
        return Verdict::progressing(
            DEPENDENCY_NOT_READY,
            pending.join("; "),
            pending_retry(linked),
        );
    }
    let cost = status
        .current_period
        .as_ref()
        .map(|c| {
            format!(
                "; {}: AWS cost {} {}, billed {}, margin {}",
                c.billing_period, c.aws_cost, c.currency, c.proforma_cost, c.margin
            )
        })
        .unwrap_or_default();
    Verdict::ready(
        AVAILABLE,
        format!(
            "billing group {name} with {} account(s){cost}",
            status.size.unwrap_or(0)
        ),
    )
}

/// How soon to look again while member accounts have no id yet: soon while an account of
/// the namespace is being created (minutes; `apply` waits for it), else in a minute (an
/// invited account joins when its owner accepts, which can take days).
fn pending_retry(linked: &[LinkedAccount]) -> std::time::Duration {
    let creating = linked.iter().any(|la| {
        la.spec.create.is_some() && la.status.as_ref().is_none_or(|s| s.account_id.is_none())
    });
    if creating {
        DEPENDENCY_RETRY
    } else {
        std::time::Duration::from_secs(60)
    }
}

/// Deletion: `Retain` releases; `Delete` deletes the group's custom line items (only those a
/// CustomLineItem of this namespace owns: any other one refuses the deletion), then the group.
pub async fn cleanup(
    obj: &BillingGroup,
    ctx: &ReconcileContext,
    run: Run,
) -> KindOutcome<BillingGroupStatus> {
    let released = async |run: &mut Run, _: &mut BillingGroupStatus| {
        let result = delete(obj, ctx, run).await;
        if result.is_ok() {
            let key = object_key(&obj.namespace().unwrap_or_default(), &obj.name_any());
            let store = ctx.shared::<crate::payer::insights::InsightsStore>();
            store.set_group(&key, None);
            store.set_group_services(&key, None);
        }
        result
    };
    run.cleanup(
        obj.status.as_ref(),
        obj.metadata.generation,
        |_| false,
        released,
    )
    .await
}

async fn delete(
    obj: &BillingGroup,
    ctx: &ReconcileContext,
    run: &mut Run,
) -> Result<Verdict, Error> {
    if obj.spec.deletion_policy == GroupDeletionPolicy::Retain {
        return Ok(Verdict::ready(
            RELEASED,
            "deletionPolicy Retain: the billing group stays in AWS",
        ));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let payer_ref = &obj.spec.payer_ref;
    let Some(billing) =
        BillingContext::resolve_unless_gone(&namespace, payer_ref, ctx, run.time()).await?
    else {
        return Ok(payer_gone());
    };
    let name = obj.group_name();
    let Some(group) = billing.snapshot.group_named(&name) else {
        return Ok(Verdict::ready(
            RELEASED,
            format!("billing group {name} does not exist in AWS"),
        ));
    };
    let found = Found {
        arn: &group.arn,
        what: format!("billing group {name}"),
        status_arn: obj.status.as_ref().and_then(|s| s.arn.as_deref()),
    };
    let owner = owner_value(&namespace, "BillingGroup", &obj.name_any());
    let api = billing.api();
    let api = api.as_ref();
    if let Some(why) = deletable(api, &found, &owner).await? {
        return Ok(Verdict::ready(RELEASED, why));
    }
    // AWS deletes no group that still has custom line items. Those a CustomLineItem of this
    // namespace owns go with the group (deleting it forces them); any other one (made by
    // hand, or owned elsewhere) stops the deletion: it is not ours to delete.
    let items: Vec<&BcItem> = billing
        .snapshot
        .items
        .iter()
        .filter(|i| i.group_arn == group.arn)
        .collect();
    let foreign =
        foreign_items(api, &items, &owner_value(&namespace, "CustomLineItem", "")).await?;
    if !foreign.is_empty() {
        return Err(Error::waiting(
            GROUP_HAS_FOREIGN_ITEMS,
            format!(
                "billing group {name} holds custom line items this operator does not manage: {}; delete or move them, or set deletionPolicy: Retain",
                foreign.join(", ")
            ),
            REFUSED_RETRY,
        ));
    }
    for item in items {
        let delete_item = change(
            ChangeAction::Delete,
            format!("custom line item {}", item.name),
            "delete with its billing group",
        );
        run.write(delete_item, || api.delete_item(&item.arn))
            .await?;
    }
    let delete_group = change(
        ChangeAction::Delete,
        format!("billing group {name}"),
        "delete",
    );
    run.write(delete_group, || api.delete_group(&group.arn))
        .await?;
    billing.invalidate();
    Ok(Verdict::ready(
        DELETED,
        format!(
            "billing group {name} was deleted; its accounts fall back to the payer's default billing"
        ),
    ))
}

/// The items of `items` no CustomLineItem of the namespace owns (their owner tag does not
/// start with `ours`), described for a message; items deleted meanwhile are left out.
async fn foreign_items(
    api: &dyn BillingApi,
    items: &[&BcItem],
    ours: &str,
) -> Result<Vec<String>, Error> {
    let mut foreign = Vec::new();
    for item in items {
        let Some(tags) = api.tags_if_exists(&item.arn).await? else {
            continue;
        };
        match tags.get(OWNER_TAG) {
            Some(o) if o.len() > ours.len() && o.starts_with(ours) => {}
            Some(o) => foreign.push(format!("{} (managed by {o})", item.name)),
            None => foreign.push(format!("{} (no {OWNER_TAG} tag)", item.name)),
        }
    }
    Ok(foreign)
}

/// Billing groups follow LinkedAccount label and account-id changes at once (selectors).
pub fn triggers() -> Vec<Trigger<BillingGroup>> {
    vec![
        Trigger::on::<LinkedAccount>(linked_account_fingerprint, |_, _| true),
        Trigger::on::<crate::api::BillingTransfer>(transfer_fingerprint, names_transfer),
    ]
}

/// What a TRANSFER_BILLING group follows of its BillingTransfer: the transfer's ARN and
/// state (a group waits for ACCEPTED).
fn transfer_fingerprint(t: &Guarded<crate::api::BillingTransfer>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let status = t.0.as_ref().ok().and_then(|t| t.status.as_ref());
    status.and_then(|s| s.transfer_arn.clone()).hash(&mut h);
    status.and_then(|s| s.state.clone()).hash(&mut h);
    Some(h.finish())
}

/// Whether group `g` names transfer `t` in `responsibilityTransferRef`.
fn names_transfer(t: &Guarded<crate::api::BillingTransfer>, g: &Guarded<BillingGroup>) -> bool {
    let name = kube::Resource::meta(t).name.as_deref();
    g.0.as_ref()
        .ok()
        .and_then(|g| g.spec.responsibility_transfer_ref.as_ref())
        .is_some_and(|r| Some(r.name.as_str()) == name)
}

/// What of a LinkedAccount BillingGroups follow: its labels (selectors) and its account id.
fn linked_account_fingerprint(a: &Guarded<LinkedAccount>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    kube::Resource::meta(a).labels.hash(&mut h);
    a.0.as_ref()
        .ok()
        .and_then(|a| a.status.as_ref())
        .and_then(|s| s.account_id.clone())
        .hash(&mut h);
    kube::Resource::meta(a)
        .deletion_timestamp
        .is_some()
        .hash(&mut h);
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use std::collections::HashMap;

    fn snap(group_of: &[(&str, &str)]) -> BillingSnapshot {
        BillingSnapshot {
            current_period: "2026-11".into(),
            previous_period: "2026-10".into(),
            rules: vec![],
            plans: vec![],
            plan_rules: HashMap::new(),
            groups: vec![],
            group_of: group_of
                .iter()
                .map(|(a, g)| (a.to_string(), g.to_string()))
                .collect(),
            items: vec![],
            costs: HashMap::new(),
            index: Default::default(),
        }
    }

    #[test]
    fn rival_groups_want_members_by_id_name_or_selector() {
        let la = |name: &str, id: &str, team: &str| -> LinkedAccount {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
                "metadata": {"name": name, "namespace": "ns", "labels": {"team": team}},
                "spec": {"payerRef": {"name": "p"}, "adopt": {"accountId": id}},
                "status": {"accountId": id}
            }))
            .unwrap()
        };
        let group = |accounts: &[&str], team: Option<&str>| -> BillingGroup {
            let mut spec = serde_json::json!({"payerRef": {"name": "p"}, "primaryAccount": "999999999999",
                "pricingPlanRef": {"name": "plan"}, "accounts": accounts});
            if let Some(t) = team {
                spec["accountSelector"] = serde_json::json!({"matchLabels": {"team": t}});
            }
            serde_json::from_value(serde_json::json!({
                "apiVersion": "partnerbilling.io/v1alpha1", "kind": "BillingGroup",
                "metadata": {"name": "other", "namespace": "ns"}, "spec": spec
            }))
            .unwrap()
        };
        let members = vec!["111111111111".to_string(), "222222222222".to_string()];
        let member_accounts = vec![
            la("ops", "111111111111", "a"),
            la("dev", "222222222222", "b"),
        ];
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            wanted_members(
                &group(&["111111111111", "333333333333"], None),
                &members,
                &member_accounts
            ),
            ids(&["111111111111"])
        );
        assert_eq!(
            wanted_members(
                &group(&["dev", "elsewhere"], None),
                &members,
                &member_accounts
            ),
            ids(&["222222222222"])
        );
        assert_eq!(
            wanted_members(&group(&[], Some("a")), &members, &member_accounts),
            ids(&["111111111111"])
        );
        assert!(
            wanted_members(&group(&["nobody"], Some("c")), &members, &member_accounts).is_empty()
        );
    }

    fn catalog_context() -> ReconcileContext {
        ReconcileContext::new(
            std::sync::Arc::new(crate::aws::fake::FakeAws::management_account(
                "210987654321",
                1,
            )),
            std::sync::Arc::new(crate::secrets::StaticSecrets::default()),
        )
    }

    fn named_la(name: &str, id: Option<&str>, team: &str) -> LinkedAccount {
        let mut v = serde_json::json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
            "metadata": {"name": name, "namespace": "ns", "labels": {"team": team}},
            "spec": {"payerRef": {"name": "p"}, "adopt": {"accountId": "000000000000"}}
        });
        if let Some(id) = id {
            v["status"] = serde_json::json!({"accountId": id});
        }
        serde_json::from_value(v).unwrap()
    }

    fn named_group(name: &str, accounts: &[&str], team: Option<&str>) -> BillingGroup {
        let mut spec = serde_json::json!({"payerRef": {"name": "p"}, "primaryAccount": "999999999999",
            "pricingPlanRef": {"name": "plan"}, "accounts": accounts});
        if let Some(t) = team {
            spec["accountSelector"] = serde_json::json!({"matchLabels": {"team": t}});
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "BillingGroup",
            "metadata": {"name": name, "namespace": "ns"}, "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn rival_claims_are_found_by_lookups_and_follow_edits_of_accounts_and_groups() {
        let ctx = catalog_context();
        let c = &ctx.catalog;
        let me = named_group("me", &["111111111111", "222222222222"], None);
        c.put(me.clone());
        c.put(named_la("ops", Some("111111111111"), "a"));
        c.put(named_la("dev", Some("222222222222"), "b"));
        c.put(named_la("idle", None, "a"));
        // By id (two groups: the first by name is named), by name, by selector, and groups
        // that want none of the members.
        c.put(named_group("z-by-id", &["111111111111"], None));
        c.put(named_group(
            "b-by-id",
            &["111111111111", "333333333333"],
            None,
        ));
        c.put(named_group("c-by-name", &["dev"], None));
        c.put(named_group("d-elsewhere", &["333333333333", "idle"], None));
        c.put(named_group("e-selects", &[], Some("c")));
        let members = vec!["111111111111".to_string(), "222222222222".to_string()];
        let rivals = |ctx: &ReconcileContext| rival_claims(&me, "ns", ctx, &members);
        let why = |g: &str| format!("also wanted by BillingGroup {g}");
        assert_eq!(
            rivals(&ctx),
            BTreeMap::from([
                ("111111111111".to_string(), why("b-by-id")),
                ("222222222222".to_string(), why("c-by-name")),
            ])
        );

        // Edits after the lookups were built: a LinkedAccount's id, a group's references, a
        // selector that now matches, a group gone.
        c.put(named_la("dev", Some("444444444444"), "c"));
        c.put(named_la("ops2", Some("222222222222"), "a"));
        assert_eq!(
            rivals(&ctx).get("222222222222"),
            None,
            "dev no longer has the member's id; e-selects wants team c, ops2 is team a"
        );
        c.put(named_group("e-selects", &[], Some("a")));
        assert_eq!(rivals(&ctx).get("222222222222"), Some(&why("e-selects")));
        c.put(named_group("a-by-name", &["ops"], None));
        c.remove::<BillingGroup>("ns", "b-by-id");
        assert_eq!(
            rivals(&ctx),
            BTreeMap::from([
                ("111111111111".to_string(), why("a-by-name")),
                ("222222222222".to_string(), why("e-selects")),
            ])
        );
        // A group never rivals itself.
        c.put(named_group(
            "me",
            &["111111111111", "222222222222"],
            Some("a"),
        ));
        assert_eq!(rivals(&ctx).len(), 2);
        assert!(rivals(&ctx).values().all(|w| !w.ends_with(" me")));
    }

    #[test]
    fn membership_associates_missing_disassociates_extra_and_leaves_others_alone() {
        let s = snap(&[
            ("111111111111", "g1"),
            ("222222222222", "g1"),
            ("333333333333", "g2"),
        ]);
        let wanted: BTreeSet<String> = ["111111111111", "333333333333", "444444444444"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = membership(Some("g1"), "111111111111", &wanted, &s);
        assert_eq!(p.associate, vec!["444444444444"]);
        assert_eq!(p.disassociate, vec!["222222222222"]);
        assert_eq!(
            p.held_elsewhere.get("333333333333").map(String::as_str),
            Some("g2")
        );
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: BTreeMap<String, String> = [
            ("tier".to_string(), "gold".to_string()),
            ("team".to_string(), "a".to_string()),
        ]
        .into();
        let sel = LabelSelector {
            match_labels: Some([("tier".to_string(), "gold".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "team".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert!(selector_matches(&sel, &labels));
        let sel = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "legacy".into(),
                operator: "Exists".into(),
                values: None,
            }]),
        };
        assert!(!selector_matches(&sel, &labels));
    }

    fn group(arn: &str, name: &str, primary: &str, plan_arn: &str) -> BcGroup {
        BcGroup {
            arn: arn.into(),
            name: name.into(),
            description: String::new(),
            primary_account_id: primary.into(),
            plan_arn: plan_arn.into(),
            size: 1,
            status: "ACTIVE".into(),
            status_reason: None,
            auto_associate: false,
            group_type: "STANDARD".into(),
            transfer_arn: None,
        }
    }

    fn ids(n: usize) -> BTreeSet<String> {
        (0..n)
            .map(|i| format!("{:012}", 100_000_000_000 + i))
            .collect()
    }

    fn desired<'a>(primary: &'a str, wanted: &'a BTreeSet<String>) -> DesiredGroup<'a> {
        DesiredGroup {
            name: "gold",
            description: "",
            plan_arn: "plan-arn",
            auto_associate: false,
            primary: Some(primary),
            transfer_arn: None,
            wanted,
        }
    }

    const TRANSFER: &str =
        "arn:aws:organizations::123456789012:transfer/o-abcdefghij/billing/outbound/rt-12345678";

    #[test]
    fn a_transfer_group_is_created_without_accounts_and_never_turned_into_another_type() {
        let none = BTreeSet::new();
        let want = DesiredGroup {
            primary: None,
            transfer_arn: Some(TRANSFER),
            ..desired("", &none)
        };
        let p = plan(&want, &snap(&[])).unwrap();
        assert_eq!(p.create, Some(Creation::default()));
        assert_eq!(p.members, MembershipPlan::default());
        let mut s = snap(&[]);
        s.groups.push(BcGroup {
            group_type: "TRANSFER_BILLING".into(),
            transfer_arn: Some(TRANSFER.into()),
            ..group("g1", "gold", "", "plan-arn")
        });
        assert_eq!(plan(&want, &s).unwrap(), GroupPlan::default());
        // The same name, a standard group in AWS: refused, never replaced.
        s.groups[0] = group("g1", "gold", "111111111111", "plan-arn");
        assert_eq!(plan(&want, &s).unwrap_err().reason(), GROUP_TYPE_MISMATCH);
        let wanted = ids(1);
        let primary = wanted.iter().next().unwrap().clone();
        s.groups[0] = BcGroup {
            group_type: "TRANSFER_BILLING".into(),
            transfer_arn: Some(TRANSFER.into()),
            ..group("g1", "gold", &primary, "plan-arn")
        };
        let err = plan(&desired(&primary, &wanted), &s).unwrap_err();
        assert_eq!(err.reason(), GROUP_TYPE_MISMATCH);
    }

    #[test]
    fn passthrough_is_refused_on_a_standard_group_before_anything_else() {
        let spec = |extra: serde_json::Value| -> BillingGroupSpec {
            let mut v = serde_json::json!({"payerRef": {"name": "acme"}, "pricingPlanRef": {"name": "Passthrough"}});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value(v).unwrap()
        };
        let standard = spec(serde_json::json!({"primaryAccount": "111111111111"}));
        let err = check_plan_allowed(&standard).unwrap_err();
        assert_eq!(err.reason(), PLAN_NOT_ALLOWED);
        assert!(err.to_string().contains("TRANSFER_BILLING"), "{err}");
        let transfer = spec(
            serde_json::json!({"type": "TRANSFER_BILLING", "responsibilityTransferRef": {"name": "t"}}),
        );
        assert!(check_plan_allowed(&transfer).is_ok());
        assert_eq!(
            managed_plan_arn("Passthrough"),
            "arn:aws:billingconductor::aws:pricingplan/Passthrough"
        );
    }

    #[test]
    fn a_new_group_takes_its_first_30_accounts_with_the_create_call_primary_first() {
        let wanted = ids(65);
        let primary = wanted.iter().nth(40).unwrap().clone();
        let p = plan(&desired(&primary, &wanted), &snap(&[])).unwrap();
        let creation = p.create.unwrap();
        assert_eq!(creation.first.len(), BATCH);
        assert_eq!(creation.first[0], primary);
        assert_eq!(creation.rest.len(), 65 - BATCH);
        assert!(creation.rest.iter().all(|a| !creation.first.contains(a)));
        assert_eq!(p.update, None);
    }

    #[test]
    fn a_primary_account_aws_cannot_change_or_that_another_group_holds_is_refused() {
        let wanted = ids(1);
        let primary = wanted.iter().next().unwrap().clone();
        let mut s = snap(&[(&primary, "other-arn")]);
        let err = plan(&desired(&primary, &wanted), &s).unwrap_err();
        assert_eq!(err.reason(), ACCOUNT_CONFLICT);
        s.groups
            .push(group("g1", "gold", "999999999999", "plan-arn"));
        let err = plan(&desired(&primary, &wanted), &s).unwrap_err();
        assert_eq!(err.reason(), PRIMARY_ACCOUNT_MISMATCH);
    }

    #[test]
    fn an_existing_group_is_updated_only_when_its_plan_description_or_auto_associate_differ() {
        let wanted = ids(1);
        let primary = wanted.iter().next().unwrap().clone();
        let mut s = snap(&[(&primary, "g1")]);
        s.groups.push(group("g1", "gold", &primary, "plan-arn"));
        assert_eq!(
            plan(&desired(&primary, &wanted), &s).unwrap(),
            GroupPlan::default()
        );
        s.groups[0].plan_arn = "old-plan".into();
        let p = plan(&desired(&primary, &wanted), &s).unwrap();
        assert_eq!(p.update.as_deref(), Some("g1"));
        assert_eq!(p.create, None);
    }

    #[test]
    fn conflicts_name_the_holding_group_before_rival_wishes() {
        let mut s = snap(&[]);
        s.groups.push(group("g2", "silver", "2", "p"));
        let held = BTreeMap::from([("111111111111".to_string(), "g2".to_string())]);
        let rivals = BTreeMap::from([
            (
                "111111111111".to_string(),
                "also wanted by BillingGroup x".to_string(),
            ),
            (
                "222222222222".to_string(),
                "also wanted by BillingGroup y".to_string(),
            ),
        ]);
        let c = conflicts(&held, &rivals, &s);
        assert_eq!(c["111111111111"], "held by silver");
        assert_eq!(c["222222222222"], "also wanted by BillingGroup y");
        assert_eq!(conflict_condition(&BTreeMap::new()).reason, NO_CONFLICT);
        assert_eq!(
            conflict_condition(&c).reason,
            ACCOUNT_WANTED_BY_ANOTHER_GROUP
        );
    }

    #[test]
    fn month_over_month() {
        assert_eq!(change_percent("100.00", "125.00").as_deref(), Some("25.00"));
        assert_eq!(change_percent("0.00", "10.00"), None);
    }
}
