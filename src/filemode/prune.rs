//! The prune preview of `plan -f DIR --prune`: the AWS objects in scope of the Payers in DIR
//! that carry this operator's owner tag but have no manifest in DIR (what a GitOps prune
//! would delete), with what their deletion would do in AWS; and the objects whose manifest
//! now names another AWS object than the one carrying its owner tag (a replacement), plus the
//! deletions the plan itself makes. Reads only: the organization and Billing Conductor
//! snapshots the plan loaded, one ListTagsForResource per organization object and Billing
//! Conductor plan, group and item, ListCustomLineItems of the previous billing period, and
//! the Payer's inbound billing transfers (ListInboundResponsibilityTransfers, the read the
//! BillingTransfer kind makes) with one ListTagsForResource each.
//!
//! The deletion policy of an object without a manifest cannot be read from AWS (the owner tag
//! names the object, not its policy): it is read from the manifests as they were before the
//! change when given (`--previous DIR`), else the most destructive policy the kind allows is
//! assumed and said so, so that a pull-request check never under-reports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::api::billing_transfer::TransferDeletionPolicy;
use crate::api::common::OWNER_TAG;
use crate::api::{LinkedAccount, LocalRef, Payer};
use crate::aws::AwsConnect;
use crate::aws::organizations::{Tags, Transfer};
use crate::billing::context::BillingContext;
use crate::error::Error;
use crate::payer::context::PayerContext;
use crate::reconcile::kind::{Kind, KindVisitor};
use crate::reconcile::report::Report;
use crate::reconcile::{ChangeAction, ReconcileContext};

use super::load::Manifests;
use super::policies::{Effect, PolicySource, deletion_effect};

/// Exit status of `plan --prune` when the preview needs a person's review: an object would be
/// deleted, closed or removed from the organization, or replaced (errors still exit 1).
pub const EXIT_REVIEW: i32 = 3;

/// One AWS object with this operator's owner tag and no manifest in DIR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Orphan {
    /// Kind, namespace and name the owner tag records.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The AWS object: its id or ARN, and its name in AWS.
    pub aws_id: String,
    pub aws_name: String,
    /// What deleting the object does in AWS: `retain`, `remove`, `close`, `delete`, `none`;
    /// for a BillingTransfer also `cancel` (its open invitation is canceled) and `terminate`
    /// (the accepted transfer ends at the end of the month).
    pub action: String,
    /// The deletion policy that decides it.
    pub policy: String,
    /// Where the policy comes from: `previous-manifest` or `assumed-worst-case`.
    pub policy_source: String,
    /// The effect in words, and why this policy is assumed.
    pub effect: String,
}

impl Orphan {
    /// Whether the action changes AWS (anything but retain / none).
    pub fn destructive(&self) -> bool {
        !matches!(self.action.as_str(), "retain" | "none")
    }
}

/// An object whose manifest is in DIR but whose change replaces or deletes something in AWS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replacement {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The AWS object concerned (id, ARN or the plan's change target).
    pub aws_id: String,
    pub detail: String,
}

/// The prune preview (see the module docs).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrunePreview {
    pub orphans: Vec<Orphan>,
    pub replacements: Vec<Replacement>,
    /// What the preview could not read (a Payer it could not use): the preview is then
    /// incomplete, and `plan` exits 1.
    pub problems: Vec<String>,
    /// What the preview does not cover, and objects owned by other namespaces it skipped.
    pub notes: Vec<String>,
}

impl PrunePreview {
    /// Whether a person must review the change: something would be deleted, closed, removed
    /// or replaced.
    pub fn requires_review(&self) -> bool {
        self.orphans.iter().any(Orphan::destructive) || !self.replacements.is_empty()
    }
}

/// What DIR holds, as the preview needs it: every object's key, the Payers, and the objects
/// whose AWS identity is checked for replacement.
#[derive(Default)]
pub struct Inventory {
    keys: BTreeSet<(String, String, String)>,
    payers: Vec<Payer>,
    named: BTreeMap<(String, String, String), String>,
    accounts: Vec<LinkedAccount>,
}

impl Inventory {
    /// The inventory of `manifests`.
    pub fn of(manifests: &Manifests) -> Self {
        let mut keys = Keys {
            manifests,
            keys: BTreeSet::new(),
        };
        crate::kinds::visit(&mut keys);
        let mut named = BTreeMap::new();
        let mut put = |kind: &str, o: &dyn Fn() -> (String, String), aws: String| {
            let (ns, name) = o();
            named.insert((kind.to_string(), ns, name), aws);
        };
        for p in manifests.of::<crate::api::PricingPlan>() {
            put("PricingPlan", &|| key_of(p), p.plan_name());
        }
        for g in manifests.of::<crate::api::BillingGroup>() {
            put("BillingGroup", &|| key_of(g), g.group_name());
        }
        for i in manifests.of::<crate::api::CustomLineItem>() {
            put("CustomLineItem", &|| key_of(i), i.item_name());
        }
        Self {
            keys: keys.keys,
            payers: manifests.of::<Payer>().to_vec(),
            named,
            accounts: manifests.of::<LinkedAccount>().to_vec(),
        }
    }

    fn has(&self, kind: &str, namespace: &str, name: &str) -> bool {
        self.keys
            .contains(&(kind.to_string(), namespace.to_string(), name.to_string()))
    }
}

fn key_of<K: ResourceExt>(o: &K) -> (String, String) {
    (o.namespace().unwrap_or_default(), o.name_any())
}

struct Keys<'a> {
    manifests: &'a Manifests,
    keys: BTreeSet<(String, String, String)>,
}

impl KindVisitor for Keys<'_> {
    fn visit<K: Kind>(&mut self) {
        for o in self.manifests.of::<K>() {
            let (ns, name) = key_of(o);
            self.keys.insert((K::kind(&()).into_owned(), ns, name));
        }
    }
}

/// `plan` over `manifests` plus the prune preview, with the policies of removed objects read
/// from `previous` when given. Writes nothing.
pub async fn plan_with_prune(
    manifests: Manifests,
    previous: Option<Manifests>,
    connector: Arc<dyn AwsConnect>,
) -> (Report, PrunePreview) {
    let inventory = Inventory::of(&manifests);
    let (objects, ctx) =
        super::run::prepare(manifests, connector, super::run::RunOptions::default());
    let report = super::run::plan_objects(&objects, &ctx).await;
    let preview = preview(&inventory, previous.as_ref(), &ctx, &report).await;
    (report, preview)
}

/// The preview for the Payers of `inventory`, with `ctx` (whose snapshots the plan loaded).
pub async fn preview(
    inventory: &Inventory,
    previous: Option<&Manifests>,
    ctx: &ReconcileContext,
    report: &Report,
) -> PrunePreview {
    let mut out = PrunePreview::default();
    let mut seen = BTreeSet::new();
    for payer in &inventory.payers {
        let namespace = payer.namespace().unwrap_or_default();
        if !seen.insert((namespace.clone(), payer.spec.account_id.clone())) {
            continue;
        }
        let owned = match owned_objects(payer, ctx).await {
            Ok(o) => o,
            Err(e) => {
                out.problems.push(format!(
                    "Payer {namespace}/{}: cannot list the objects it owns in AWS: {e}",
                    payer.name_any()
                ));
                continue;
            }
        };
        let now = Timestamp::now().as_second();
        classify(&owned, &namespace, inventory, previous, now, &mut out);
    }
    out.replacements.extend(plan_deletions(report));
    out.notes.push(
        "CurPipeline objects are not covered: deleting one never deletes the bucket or its data; with deletionPolicy Delete its export, crawler and database go".into(),
    );
    out
}

/// An AWS object with an owner tag of this operator.
#[derive(Clone, Debug)]
pub struct Owned {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub aws_id: String,
    pub aws_name: String,
    /// What identifies it against a manifest: account id and e-mail, or its AWS name.
    pub identity: Vec<String>,
    /// A billing transfer: what AWS holds of it (its deletion depends on its state).
    pub transfer: Option<Transfer>,
}

/// The owner tag `<namespace>/<kind>/<name>` as a kind of the kind list, a namespace and a
/// name. `None` for another value.
pub fn parse_owner(value: &str) -> Option<(String, String, String)> {
    let mut parts = value.splitn(3, '/');
    let (ns, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
    let kind = crate::kinds::NAMES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(kind))?;
    Some((kind.to_string(), ns.to_string(), name.to_string()))
}

fn owned(tags: &Tags, aws_id: &str, aws_name: &str, identity: Vec<String>) -> Option<Owned> {
    let (kind, namespace, name) = parse_owner(tags.get(OWNER_TAG)?)?;
    Some(Owned {
        kind,
        namespace,
        name,
        aws_id: aws_id.to_string(),
        aws_name: aws_name.to_string(),
        identity,
        transfer: None,
    })
}

/// Every object of `payer`'s organization and Billing Conductor that carries an owner tag.
async fn owned_objects(payer: &Payer, ctx: &ReconcileContext) -> Result<Vec<Owned>, Error> {
    let namespace = payer.namespace().unwrap_or_default();
    let payer_ref = LocalRef {
        name: payer.name_any(),
    };
    let pc = PayerContext::resolve(&namespace, &payer_ref, ctx).await?;
    let orgs = pc.conn.organizations.clone();
    let snap = pc.snapshot.clone();
    let mut out = Vec::new();
    // Placeholders of objects new in this change (see super::planned) are not in AWS.
    let real = |id: &str| !super::planned::is_planned(id);
    for a in &snap.accounts {
        if a.id == snap.organization.management_account_id {
            continue;
        }
        let tags = orgs.list_tags(&a.id).await?;
        let identity = vec![a.id.clone(), a.email.to_ascii_lowercase()];
        out.extend(owned(
            &tags,
            &a.id,
            &format!("{} <{}>", a.name, a.email),
            identity,
        ));
    }
    for ou in snap.ous.iter().filter(|o| real(&o.id)) {
        let tags = orgs.list_tags(&ou.id).await?;
        out.extend(owned(&tags, &ou.id, &ou.name, vec![ou.name.clone()]));
    }
    for p in snap
        .policies
        .iter()
        .filter(|p| !p.aws_managed && real(&p.id))
    {
        let tags = orgs.list_tags(&p.id).await?;
        out.extend(owned(&tags, &p.id, &p.name, vec![p.name.clone()]));
    }
    // Billing transfers: the read the BillingTransfer kind makes (ListInboundResponsibilityTransfers,
    // then the owner tag of each), ended ones included: they carry the owner tag too, and
    // their deletion is shown to do nothing.
    for t in orgs.list_inbound_transfers().await? {
        let tags = orgs.list_tags(&t.id).await?;
        let customer = t
            .source_account_id
            .clone()
            .or_else(|| t.source_email.clone())
            .unwrap_or_else(|| "?".into());
        let name = format!("{} ({} from {customer})", t.name, t.status);
        if let Some(mut o) = owned(&tags, &t.id, &name, vec![t.id.clone()]) {
            o.transfer = Some(t);
            out.push(o);
        }
    }
    out.extend(owned_billing(&namespace, &payer_ref, ctx).await?);
    Ok(out)
}

/// What deleting the BillingTransfer that owns `transfer` does, its policy read from
/// `source`, at `now`: what its own deletion does (`plan_deletion`), so that an invitation
/// is shown as canceled, an accepted transfer as ended at the end of the month, and one that
/// ended or already has an end as nothing. Unknown policy: `Terminate` (the most destructive;
/// the default is `Retain`).
fn transfer_effect(transfer: &Transfer, source: &PolicySource, now: i64) -> Effect {
    use crate::organizations::billing_transfer::{TransferDeletion, plan_deletion};
    let (policy, why) = match source {
        PolicySource::Previous { observe: true, .. } | PolicySource::Paused => {
            return deletion_effect("BillingTransfer", source);
        }
        PolicySource::Previous {
            policy: Some(p), ..
        } => (p.clone(), "as its manifest before the change says".to_string()),
        PolicySource::Previous { policy: None, .. } => (
            "Retain".to_string(),
            "the kind's default (its manifest before the change sets none)".to_string(),
        ),
        PolicySource::Assumed => (
            "Terminate".to_string(),
            "assumed: without its manifest the policy is not known, so the most destructive one the kind allows is shown (the kind's default is Retain); pass --previous DIR with the manifests before the change to read it".to_string(),
        ),
    };
    let parsed = if policy == "Terminate" {
        TransferDeletionPolicy::Terminate
    } else {
        TransferDeletionPolicy::Retain
    };
    let (action, text) = match plan_deletion(parsed, Some(transfer), now) {
        TransferDeletion::Release(_) if parsed == TransferDeletionPolicy::Retain => (
            "retain",
            "nothing changes in AWS: the billing transfer stays, no longer managed by the operator"
                .to_string(),
        ),
        TransferDeletion::Release(v) => ("none", format!("nothing to end in AWS: {}", v.message)),
        TransferDeletion::Cancel { handshake, .. } => (
            "cancel",
            format!("CancelHandshake {handshake}: the open invitation to the customer is canceled"),
        ),
        TransferDeletion::Terminate { end, .. } => (
            "terminate",
            format!(
                "TerminateResponsibilityTransfer: the customer's billing transfer ends at {} and AWS cannot undo it (a new invitation is needed to start again)",
                Timestamp::from_second(end)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            ),
        ),
    };
    Effect {
        action,
        policy,
        text: format!("{text} [{why}]"),
    }
}

async fn owned_billing(
    namespace: &str,
    payer_ref: &LocalRef,
    ctx: &ReconcileContext,
) -> Result<Vec<Owned>, Error> {
    let billing = BillingContext::resolve(namespace, payer_ref, ctx, Timestamp::now()).await?;
    let api = billing.api();
    let snap = billing.snapshot.clone();
    let mut named: Vec<(String, String)> = Vec::new();
    named.extend(snap.plans.iter().map(|p| (p.arn.clone(), p.name.clone())));
    named.extend(snap.groups.iter().map(|g| (g.arn.clone(), g.name.clone())));
    let mut items = snap.items.clone();
    for i in api.list_items(&snap.previous_period).await? {
        if !items.iter().any(|x| x.arn == i.arn) {
            items.push(i);
        }
    }
    named.extend(items.iter().map(|i| (i.arn.clone(), i.name.clone())));
    let mut out = Vec::new();
    for (arn, name) in named
        .into_iter()
        .filter(|(a, _)| !super::planned::is_planned(a))
    {
        if let Some(tags) = api.tags_if_exists(&arn).await? {
            out.extend(owned(&tags, &arn, &name, vec![name.clone()]));
        }
    }
    Ok(out)
}

/// Sort the objects `namespace` owns into orphans (no manifest) and replacements (the
/// manifest names another AWS object).
fn classify(
    owned: &[Owned],
    namespace: &str,
    inventory: &Inventory,
    previous: Option<&Manifests>,
    now: i64,
    out: &mut PrunePreview,
) {
    let mut elsewhere = 0;
    for o in owned {
        if o.namespace != namespace {
            elsewhere += 1;
            continue;
        }
        if !inventory.has(&o.kind, &o.namespace, &o.name) {
            let source = PolicySource::find(previous, &o.kind, &o.namespace, &o.name);
            let effect = match &o.transfer {
                Some(t) => transfer_effect(t, &source, now),
                None => deletion_effect(&o.kind, &source),
            };
            out.orphans.push(Orphan {
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                aws_id: o.aws_id.clone(),
                aws_name: o.aws_name.clone(),
                action: effect.action.to_string(),
                policy: effect.policy,
                policy_source: source.label().to_string(),
                effect: effect.text,
            });
        } else if let Some(detail) = replaced(o, inventory) {
            out.replacements.push(Replacement {
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                aws_id: o.aws_id.clone(),
                detail,
            });
        }
    }
    if elsewhere > 0 {
        out.notes.push(format!(
            "{elsewhere} AWS object(s) of this payer are owned by objects of other namespaces than {namespace}; not in scope"
        ));
    }
}

/// Why the manifest of `o` no longer names the AWS object carrying its owner tag, if so.
fn replaced(o: &Owned, inventory: &Inventory) -> Option<String> {
    let key = (o.kind.clone(), o.namespace.clone(), o.name.clone());
    if let Some(want) = inventory.named.get(&key) {
        return (*want != o.aws_name).then(|| {
            format!(
                "the manifest now names {} {want:?} in AWS, not {:?} ({}): the operator would make or find {want:?} and stop managing {:?}, which stays in AWS with the owner tag (rename it back, or delete it by hand once it is not needed)",
                o.kind, o.aws_name, o.aws_id, o.aws_name
            )
        });
    }
    if o.kind != "LinkedAccount" {
        return None;
    }
    let account = inventory
        .accounts
        .iter()
        .find(|a| key_of(*a) == (o.namespace.clone(), o.name.clone()))?;
    let names = account_identity(account);
    let matches = names.iter().any(|n| o.identity.contains(n));
    (!names.is_empty() && !matches).then(|| {
        format!(
            "the manifest now names account {} while account {} ({}) carries its owner tag: the operator would create, invite or adopt the other account and stop managing this one, which stays in the organization",
            names.join(" / "),
            o.aws_id,
            o.aws_name
        )
    })
}

/// What a LinkedAccount names in AWS: the e-mail it creates or adopts, the id it invites or
/// adopts (lower-case e-mails).
fn account_identity(a: &LinkedAccount) -> Vec<String> {
    let s = &a.spec;
    let mut out = Vec::new();
    if let Some(c) = &s.create {
        out.push(c.email.to_ascii_lowercase());
    }
    if let Some(i) = &s.invite {
        out.push(i.account_id.clone());
    }
    if let Some(ad) = &s.adopt {
        out.extend(ad.account_id.clone());
        out.extend(ad.email.as_ref().map(|e| e.to_ascii_lowercase()));
    }
    out
}

/// The deletions the plan itself makes for objects of DIR (a pricing rule replaced, an
/// attachment removed): each needs a review as well.
fn plan_deletions(report: &Report) -> Vec<Replacement> {
    report
        .objects
        .iter()
        .flat_map(|o| {
            o.changes
                .iter()
                .filter(|c| c.action == ChangeAction::Delete)
                .map(move |c| Replacement {
                    kind: o.kind.clone(),
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    aws_id: c.target.clone(),
                    detail: format!("the plan deletes {}: {}", c.target, c.detail),
                })
        })
        .collect()
}

/// Exit status of `plan --prune`: 1 on an error (or an incomplete preview), else
/// [`EXIT_REVIEW`] when the preview needs a review, else as `plan` (0 or 2).
pub fn exit_code(report: &Report, preview: &PrunePreview) -> i32 {
    let plan = super::output::plan_exit_code(report);
    if plan == 1 || !preview.problems.is_empty() {
        1
    } else if preview.requires_review() {
        EXIT_REVIEW
    } else {
        plan
    }
}

/// The preview as text, after the plan's.
pub fn text(preview: &PrunePreview) -> String {
    let mut out = String::from(
        "\nPrune preview (AWS objects with this operator's owner tag and no manifest):\n",
    );
    if preview.orphans.is_empty() {
        out.push_str("  none\n");
    }
    for o in &preview.orphans {
        out.push_str(&format!(
            "  ! {} {} {}/{}: {} ({}) [deletionPolicy {}, {}]\n      {}\n",
            o.action,
            o.kind,
            o.namespace,
            o.name,
            o.aws_name,
            o.aws_id,
            o.policy,
            o.policy_source,
            o.effect
        ));
    }
    out.push_str("Replacements and deletions by changed manifests:\n");
    if preview.replacements.is_empty() {
        out.push_str("  none\n");
    }
    for r in &preview.replacements {
        out.push_str(&format!(
            "  ! {} {}/{}: {}\n",
            r.kind, r.namespace, r.name, r.detail
        ));
    }
    for p in &preview.problems {
        out.push_str(&format!("error: {p}\n"));
    }
    for n in &preview.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&format!(
        "Prune: {} object(s) without manifest ({} destructive), {} replacement(s); review {}.\n",
        preview.orphans.len(),
        preview.orphans.iter().filter(|o| o.destructive()).count(),
        preview.replacements.len(),
        if preview.requires_review() {
            "REQUIRED"
        } else {
            "not required"
        }
    ));
    out
}

/// The plan's JSON with the preview under `prune` and `summary.requiresReview`.
pub fn json(report: &Report, preview: &PrunePreview) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(&super::output::json(report)).unwrap_or_default();
    value["prune"] = serde_json::to_value(preview).unwrap_or_default();
    value["prune"]["requiresReview"] = preview.requires_review().into();
    value["summary"]["requiresReview"] = preview.requires_review().into();
    value["summary"]["pruneObjects"] = preview.orphans.len().into();
    value["summary"]["replacements"] = preview.replacements.len().into();
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::Change;
    use crate::reconcile::report::ObjectReport;

    fn orphan(action: &str) -> Orphan {
        Orphan {
            kind: "LinkedAccount".into(),
            namespace: "ns".into(),
            name: "a".into(),
            aws_id: "111111111111".into(),
            aws_name: "a <a@example.com>".into(),
            action: action.into(),
            policy: "Close".into(),
            policy_source: "assumed-worst-case".into(),
            effect: String::new(),
        }
    }

    #[test]
    fn owner_tags_name_kinds_of_the_kind_list() {
        assert_eq!(
            parse_owner("ns/linkedaccount/a-1"),
            Some(("LinkedAccount".into(), "ns".into(), "a-1".into()))
        );
        assert_eq!(parse_owner("ns/nosuchkind/a"), None);
        assert_eq!(parse_owner("garbage"), None);
    }

    #[test]
    fn review_is_required_for_destruction_and_replacement_only() {
        let report = Report::default();
        let mut preview = PrunePreview::default();
        assert_eq!(exit_code(&report, &preview), 0);
        preview.orphans.push(orphan("retain"));
        assert_eq!(exit_code(&report, &preview), 0);
        preview.orphans.push(orphan("close"));
        assert_eq!(exit_code(&report, &preview), EXIT_REVIEW);
        preview.problems.push("Payer ns/p: denied".into());
        assert_eq!(
            exit_code(&report, &preview),
            1,
            "an incomplete preview is an error"
        );
    }

    #[test]
    fn a_changed_name_and_a_plan_deletion_are_replacements() {
        let mut inventory = Inventory::default();
        let key = (
            "PricingPlan".to_string(),
            "ns".to_string(),
            "gold".to_string(),
        );
        inventory.keys.insert(key.clone());
        inventory.named.insert(key, "gold-v2".into());
        let owned = Owned {
            kind: "PricingPlan".into(),
            namespace: "ns".into(),
            name: "gold".into(),
            aws_id: "arn:p".into(),
            aws_name: "gold".into(),
            identity: vec!["gold".into()],
            transfer: None,
        };
        let mut preview = PrunePreview::default();
        classify(
            std::slice::from_ref(&owned),
            "ns",
            &inventory,
            None,
            0,
            &mut preview,
        );
        assert!(preview.orphans.is_empty());
        assert!(
            preview.replacements[0].detail.contains("gold-v2"),
            "{preview:?}"
        );
        let other_ns = Owned {
            namespace: "other".into(),
            ..owned
        };
        let mut preview = PrunePreview::default();
        classify(&[other_ns], "ns", &inventory, None, 0, &mut preview);
        assert!(preview.orphans.is_empty() && preview.replacements.is_empty());
        assert_eq!(preview.notes.len(), 1);
        let report = Report {
            objects: vec![ObjectReport {
                kind: "PricingPlan".into(),
                namespace: "ns".into(),
                name: "gold".into(),
                changes: vec![Change {
                    action: ChangeAction::Delete,
                    target: "pricing rule gold.x.abcdef".into(),
                    detail: "replaced".into(),
                }],
                ..blank()
            }],
        };
        assert_eq!(plan_deletions(&report).len(), 1);
    }

    #[test]
    fn an_account_whose_manifest_names_another_account_is_a_replacement() {
        let account: LinkedAccount = serde_json::from_value(serde_json::json!({
            "apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"payerRef": {"name": "p"}, "create": {"email": "New@example.com", "accountName": "a"}}
        }))
        .unwrap();
        let mut inventory = Inventory::default();
        inventory
            .keys
            .insert(("LinkedAccount".into(), "ns".into(), "a".into()));
        inventory.accounts.push(account);
        let owned = |email: &str| Owned {
            kind: "LinkedAccount".into(),
            namespace: "ns".into(),
            name: "a".into(),
            aws_id: "111111111111".into(),
            aws_name: format!("a <{email}>"),
            identity: vec!["111111111111".into(), email.to_string()],
            transfer: None,
        };
        assert_eq!(replaced(&owned("new@example.com"), &inventory), None);
        let detail = replaced(&owned("old@example.com"), &inventory).expect("a replacement");
        assert!(
            detail.contains("new@example.com") && detail.contains("111111111111"),
            "{detail}"
        );
    }

    fn owned_transfer(status: &str, end: Option<&str>) -> Owned {
        Owned {
            kind: "BillingTransfer".into(),
            namespace: "ns".into(),
            name: "globex".into(),
            aws_id: "rt-abcd1234".into(),
            aws_name: format!("globex ({status} from 222222222222)"),
            identity: vec!["rt-abcd1234".into()],
            transfer: Some(Transfer {
                id: "rt-abcd1234".into(),
                arn: "arn:aws:organizations::111111111111:transfer/o-abcdefghij/billing/inbound/rt-abcd1234".into(),
                name: "globex".into(),
                status: status.into(),
                source_account_id: Some("222222222222".into()),
                source_email: None,
                start: Some("2027-02-01T00:00:00Z".into()),
                end: end.map(str::to_string),
                handshake_id: Some("h-abcd1234".into()),
            }),
        }
    }

    #[test]
    fn a_billing_transfer_without_manifest_is_listed_with_what_its_deletion_does() {
        // 2026-12-01T10:00:00Z
        let now = 1_796_119_200;
        let inventory = Inventory::default();
        let orphan_of = |o: Owned| {
            let mut preview = PrunePreview::default();
            classify(&[o], "ns", &inventory, None, now, &mut preview);
            assert_eq!(preview.orphans.len(), 1, "{preview:?}");
            preview.orphans.remove(0)
        };
        // Policy unknown: Terminate assumed; accepted: ended at the end of its start month.
        let accepted = orphan_of(owned_transfer("ACCEPTED", None));
        assert_eq!(
            (accepted.kind.as_str(), accepted.action.as_str()),
            ("BillingTransfer", "terminate")
        );
        assert_eq!(accepted.policy, "Terminate");
        assert_eq!(accepted.policy_source, "assumed-worst-case");
        assert!(
            accepted.effect.contains("2027-02-28T23:59:59Z"),
            "{accepted:?}"
        );
        assert!(accepted.destructive());
        // An open invitation is canceled.
        let open = orphan_of(owned_transfer("REQUESTED", None));
        assert_eq!(open.action, "cancel");
        assert!(open.effect.contains("h-abcd1234"), "{open:?}");
        // Ended, or already ending: nothing is called; still listed (it carries the tag).
        for o in [
            owned_transfer("DECLINED", None),
            owned_transfer("ACCEPTED", Some("2027-03-31T23:59:59Z")),
        ] {
            let none = orphan_of(o);
            assert_eq!(none.action, "none", "{none:?}");
            assert!(!none.destructive());
        }
        // The policy of the manifest before the change: Retain.
        let mut previous = Manifests::default();
        previous.push::<crate::api::BillingTransfer>(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "partnerbilling.io/v1alpha1", "kind": "BillingTransfer",
                "metadata": {"name": "globex", "namespace": "ns"},
                "spec": {"payerRef": {"name": "p"}, "customer": {"accountId": "222222222222"},
                         "start": "2027-02-01T00:00:00Z"}
            }))
            .unwrap(),
        );
        let mut preview = PrunePreview::default();
        classify(
            &[owned_transfer("ACCEPTED", None)],
            "ns",
            &inventory,
            Some(&previous),
            now,
            &mut preview,
        );
        let kept = &preview.orphans[0];
        assert_eq!(
            (kept.action.as_str(), kept.policy.as_str()),
            ("retain", "Retain"),
            "{kept:?}"
        );
        assert_eq!(kept.policy_source, "previous-manifest");
    }

    fn blank() -> ObjectReport {
        ObjectReport {
            kind: String::new(),
            namespace: String::new(),
            name: String::new(),
            changes: Vec::new(),
            findings: Vec::new(),
            ready: true,
            synced: true,
            error: false,
            reason: String::new(),
            message: String::new(),
            object: None,
            management: crate::reconcile::management::Management::Manage,
            drift: Vec::new(),
        }
    }
}
