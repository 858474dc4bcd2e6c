//! The Payer schema rejects bad input before any reconcile: checked here with kube's CEL
//! evaluator and the structural checks the API server applies.

use partner_billing_operator::{crdgen, schema_check};
use serde_json::{Value, json};

fn payer(spec: Value) -> Value {
    json!({
        "apiVersion": "partnerbilling.io/v1alpha1",
        "kind": "Payer",
        "metadata": {"name": "acme", "namespace": "billing"},
        "spec": spec
    })
}

fn violations(spec: Value) -> Vec<String> {
    let schema = crdgen::schema_for("Payer").expect("Payer schema");
    schema_check::validate(&schema, &payer(spec), None)
        .into_iter()
        .map(|v| v.to_string())
        .collect()
}

#[test]
fn a_minimal_payer_is_valid() {
    assert_eq!(
        violations(json!({"accountId": "111122223333"})),
        Vec::<String>::new()
    );
}

#[test]
fn each_credential_source_alone_is_valid() {
    let secret =
        json!({"accountId": "111122223333", "credentials": {"secretRef": {"name": "aws"}}});
    assert_eq!(violations(secret), Vec::<String>::new());
    let role = json!({"accountId": "111122223333", "region": "eu-west-1", "credentials": {"assumeRole": {
        "roleArn": "arn:aws:iam::111122223333:role/PartnerBilling", "externalId": "x-1"}}});
    assert_eq!(violations(role), Vec::<String>::new());
}

#[test]
fn a_bad_account_id_is_rejected() {
    for bad in ["12345", "1111222233334", "11112222333a", ""] {
        let v = violations(json!({"accountId": bad}));
        assert_eq!(v.len(), 1, "{bad:?}: {v:?}");
        assert!(v[0].starts_with("spec.accountId:"), "{v:?}");
    }
}

#[test]
fn a_missing_account_id_is_rejected() {
    let v = violations(json!({}));
    assert_eq!(v, ["spec.accountId: is required"]);
}

#[test]
fn two_credential_sources_at_once_are_rejected_by_the_cel_rule() {
    let v = violations(json!({"accountId": "111122223333", "credentials": {
        "secretRef": {"name": "aws"},
        "assumeRole": {"roleArn": "arn:aws:iam::111122223333:role/PartnerBilling"}}}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("set at most one of credentials.secretRef and credentials.assumeRole"),
        "{v:?}"
    );
}

#[test]
fn a_bad_role_arn_and_region_are_rejected() {
    let v = violations(json!({"accountId": "111122223333", "region": "Mars",
        "credentials": {"assumeRole": {"roleArn": "arn:aws:iam::111122223333:user/Bob"}}}));
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v.iter().any(|m| m.starts_with("spec.region:")), "{v:?}");
    assert!(
        v.iter()
            .any(|m| m.starts_with("spec.credentials.assumeRole.roleArn:")),
        "{v:?}"
    );
}

#[test]
fn unknown_fields_are_reported() {
    let v = violations(json!({"accountId": "111122223333", "acountId": "x"}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].starts_with("spec.acountId:"), "{v:?}");
}

/// A pattern the checker cannot compile would be skipped silently here while the API server
/// enforces it; keep every pattern compilable by the `regex` crate.
#[test]
fn every_schema_pattern_compiles() {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(p)) = map.get("pattern")
                    && let Err(e) = regex::Regex::new(p)
                {
                    out.push(format!("{path}: {p}: {e}"));
                }
                for (k, child) in map {
                    walk(child, &format!("{path}.{k}"), out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, path, out)),
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for crd in crdgen::all() {
        let schema = crdgen::schema_for(&crd.spec.names.kind).expect("schema");
        walk(&schema, &crd.spec.names.kind, &mut bad);
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

fn linked_account(spec: Value) -> Value {
    json!({
        "apiVersion": "partnerbilling.io/v1alpha1",
        "kind": "LinkedAccount",
        "metadata": {"name": "northwind", "namespace": "billing"},
        "spec": spec
    })
}

fn account_violations(spec: Value, old: Option<Value>) -> Vec<String> {
    let schema = crdgen::schema_for("LinkedAccount").expect("LinkedAccount schema");
    let old = old.map(linked_account);
    schema_check::validate(&schema, &linked_account(spec), old.as_ref())
        .into_iter()
        .map(|v| v.to_string())
        .collect()
}

fn create(email: &str, name: &str) -> Value {
    json!({"payerRef": {"name": "acme"}, "create": {"email": email, "accountName": name}})
}

#[test]
fn a_valid_linked_account_passes_create_and_update() {
    let spec = create("aws+northwind@example.com", "northwind-prod");
    assert_eq!(account_violations(spec.clone(), None), Vec::<String>::new());
    let mut moved = spec.clone();
    moved["parentRef"] = json!({"name": "customers"});
    assert_eq!(account_violations(moved, Some(spec)), Vec::<String>::new());
}

#[test]
fn a_bad_email_is_rejected() {
    for bad in ["not-an-email", "a@b", "x y@example.com", "a@b.c"] {
        let v = account_violations(create(bad, "n"), None);
        assert!(
            v.iter().any(|m| m.starts_with("spec.create.email:")),
            "{bad:?}: {v:?}"
        );
    }
}

#[test]
fn an_account_name_over_50_characters_is_rejected() {
    let v = account_violations(create("a@example.com", &"n".repeat(51)), None);
    assert!(
        v.iter().any(|m| m.starts_with("spec.create.accountName:")),
        "{v:?}"
    );
    assert!(account_violations(create("a@example.com", &"n".repeat(50)), None).is_empty());
}

#[test]
fn two_ways_in_at_once_are_rejected() {
    let mut spec = create("a@example.com", "n");
    spec["invite"] = json!({"accountId": "111122223333"});
    let v = account_violations(spec, None);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("exactly one of create, invite and adopt"),
        "{v:?}"
    );
    let none = account_violations(json!({"payerRef": {"name": "acme"}}), None);
    assert!(
        none.iter()
            .any(|m| m.contains("exactly one of create, invite and adopt")),
        "{none:?}"
    );
    let both = account_violations(
        json!({"payerRef": {"name": "acme"}, "adopt": {"accountId": "111122223333", "email": "a@example.com"}}),
        None,
    );
    assert!(
        both.iter()
            .any(|m| m.contains("exactly one of adopt.accountId and adopt.email")),
        "{both:?}"
    );
}

#[test]
fn an_unknown_deletion_policy_is_rejected() {
    let mut spec = create("a@example.com", "n");
    spec["deletionPolicy"] = json!("Destroy");
    let v = account_violations(spec, None);
    assert!(
        v.iter().any(|m| m.starts_with("spec.deletionPolicy:")),
        "{v:?}"
    );
    for ok in ["Retain", "Remove", "Close"] {
        let mut spec = create("a@example.com", "n");
        spec["deletionPolicy"] = json!(ok);
        assert!(account_violations(spec, None).is_empty(), "{ok}");
    }
}

#[test]
fn the_way_in_and_the_create_request_cannot_change() {
    let old = create("a@example.com", "n");
    let v = account_violations(create("b@example.com", "n"), Some(old.clone()));
    assert!(
        v.iter().any(|m| m.contains("create cannot change")),
        "{v:?}"
    );
    let adopt = json!({"payerRef": {"name": "acme"}, "adopt": {"email": "a@example.com"}});
    let v = account_violations(adopt, Some(old));
    assert!(v.iter().any(|m| m.contains("the way in")), "{v:?}");
}

#[test]
fn an_ou_parent_cannot_change_and_an_scp_needs_a_statement() {
    let ou = |parent: Option<&str>| {
        let mut spec = json!({"payerRef": {"name": "acme"}, "name": "EU"});
        if let Some(p) = parent {
            spec["parentRef"] = json!({"name": p});
        }
        json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "OrganizationalUnit",
               "metadata": {"name": "eu", "namespace": "billing"}, "spec": spec})
    };
    let schema = crdgen::schema_for("OrganizationalUnit").unwrap();
    assert!(schema_check::validate(&schema, &ou(Some("a")), Some(&ou(Some("a")))).is_empty());
    let v = schema_check::validate(&schema, &ou(Some("b")), Some(&ou(Some("a"))));
    assert!(
        v.iter()
            .any(|m| m.message.contains("parentRef cannot change")),
        "{v:?}"
    );
    let v = schema_check::validate(&schema, &ou(None), Some(&ou(Some("a"))));
    assert!(
        v.iter()
            .any(|m| m.message.contains("parentRef cannot change")),
        "{v:?}"
    );

    let scp = |document: Value| {
        json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "ServiceControlPolicy",
               "metadata": {"name": "p", "namespace": "billing"},
               "spec": {"payerRef": {"name": "acme"}, "document": document}})
    };
    let schema = crdgen::schema_for("ServiceControlPolicy").unwrap();
    assert!(
        schema_check::validate(
            &schema,
            &scp(json!({"Version": "2012-10-17", "Statement": []})),
            None
        )
        .is_empty()
    );
    let v = schema_check::validate(&schema, &scp(json!({"Version": "2012-10-17"})), None);
    assert!(
        v.iter()
            .any(|m| m.to_string() == "spec.document.Statement: is required"),
        "{v:?}"
    );
}

#[test]
fn tags_are_limited_as_aws_limits_them() {
    let mut spec = create("a@example.com", "n");
    spec["tags"] = json!({"aws:reserved": "x"});
    let v = account_violations(spec, None);
    assert!(
        v.iter().any(|m| m.contains("must not start with aws:")),
        "{v:?}"
    );
    let mut spec = create("a@example.com", "n");
    spec["tags"] = json!({"ok": "v".repeat(257)});
    let v = account_violations(spec, None);
    assert!(!v.is_empty(), "a value over 256 characters");
}

/// `n` tags `k00`, `k01`, ...
fn tags(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("k{i:02}"), json!("v"))).collect())
}

#[test]
fn organizations_tags_leave_room_for_the_operators_own_within_the_50_aws_allows() {
    // OUs and SCPs: the owner tag is the 50th.
    let ou = |n: usize| json!({"payerRef": {"name": "acme"}, "name": "Customers", "tags": tags(n)});
    let scp = |n: usize| {
        json!({"payerRef": {"name": "acme"}, "tags": tags(n),
               "document": {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}})
    };
    for (kind, spec) in [
        ("OrganizationalUnit", ou as fn(usize) -> Value),
        ("ServiceControlPolicy", scp),
    ] {
        assert_eq!(
            kind_violations(kind, spec(49), None),
            Vec::<String>::new(),
            "{kind}: 49 tags"
        );
        assert_eq!(
            kind_violations(kind, spec(50), None),
            ["spec.tags: must have at most 49 properties"],
            "{kind}: 50 tags"
        );
    }
    // LinkedAccounts: the owner tag and the notifications tag.
    let account = |n: usize| {
        let mut spec = create("a@example.com", "n");
        spec["tags"] = tags(n);
        spec
    };
    assert_eq!(account_violations(account(48), None), Vec::<String>::new());
    for n in [49, 50] {
        assert_eq!(
            account_violations(account(n), None),
            ["spec.tags: must have at most 48 properties"],
            "{n} tags"
        );
    }
    // The operator's own keys are refused, so a user's tag never overwrites them.
    let mut spec = create("a@example.com", "n");
    spec["tags"] = json!({"partnerbilling.io/notified": "Joined=sent@2026-11-24T10:00:00Z"});
    let v = account_violations(spec, None);
    assert!(
        v.iter().any(
            |m| m.contains("must not be partnerbilling.io/owner or partnerbilling.io/notified")
        ),
        "{v:?}"
    );
    let mut spec = ou(1);
    spec["tags"] = json!({"partnerbilling.io/owner": "x"});
    assert!(!kind_violations("OrganizationalUnit", spec, None).is_empty());
    // The limit is said where `kubectl explain` shows it.
    let schema = crdgen::schema_for("LinkedAccount").unwrap();
    let doc = schema["properties"]["spec"]["properties"]["tags"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(doc.contains("at most 48") && doc.contains("50"), "{doc}");
}

fn obj(kind: &str, spec: Value) -> Value {
    json!({"apiVersion": "partnerbilling.io/v1alpha1", "kind": kind,
           "metadata": {"name": "x", "namespace": "billing"}, "spec": spec})
}

fn kind_violations(kind: &str, spec: Value, old: Option<Value>) -> Vec<String> {
    let schema = crdgen::schema_for(kind).expect("schema");
    let old = old.map(|o| obj(kind, o));
    schema_check::validate(&schema, &obj(kind, spec), old.as_ref())
        .into_iter()
        .map(|v| v.to_string())
        .collect()
}

fn plan_with(rule: Value) -> Value {
    json!({"payerRef": {"name": "acme"}, "rules": [rule]})
}

#[test]
fn modifier_percentages_take_whole_numbers_and_two_decimals() {
    // A real kube-apiserver rejected every whole number under the old `multipleOf: 0.01`.
    for ok in [
        json!(0),
        json!(10),
        json!(10.0),
        json!(0.29),
        json!(999999.99),
        json!(1000000),
    ] {
        let rule =
            json!({"name": "g", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": ok});
        assert_eq!(
            kind_violations("PricingPlan", plan_with(rule), None),
            Vec::<String>::new(),
            "{ok} must be accepted"
        );
    }
    for bad in [json!(1.005), json!(10.123)] {
        let rule =
            json!({"name": "g", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": bad});
        let v = kind_violations("PricingPlan", plan_with(rule), None);
        assert!(
            v.iter().any(|m| m.contains("at most two decimals")),
            "{bad}: {v:?}"
        );
    }
}

#[test]
fn pricing_plans_reject_what_aws_rejects() {
    let ok = plan_with(
        json!({"name": "g", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 10}),
    );
    assert_eq!(
        kind_violations("PricingPlan", ok, None),
        Vec::<String>::new()
    );
    let cases = [
        (
            json!({"name": "t", "scope": "SKU", "type": "TIERING", "freeTier": true, "service": "AmazonEC2", "usageType": "u"}),
            "TIERING rules are allowed only",
        ),
        (
            json!({"name": "s", "scope": "SKU", "type": "MARKUP", "modifierPercentage": 1, "usageType": "u"}),
            "need service",
        ),
        (
            json!({"name": "s", "scope": "SKU", "type": "MARKUP", "modifierPercentage": 1, "service": "AmazonEC2"}),
            "needs usageType",
        ),
        (
            json!({"name": "n", "scope": "GLOBAL", "type": "DISCOUNT", "modifierPercentage": -1}),
            "spec.rules[0].modifierPercentage",
        ),
        (
            json!({"name": "bad name", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 1}),
            "spec.rules[0].name",
        ),
        (
            json!({"name": "e", "scope": "BILLING_ENTITY", "type": "MARKUP", "modifierPercentage": 1}),
            "needs billingEntity",
        ),
        (
            json!({"name": "e", "scope": "REGION", "type": "MARKUP", "modifierPercentage": 1}),
            "spec.rules[0].scope",
        ),
    ];
    for (rule, expect) in cases {
        let v = kind_violations("PricingPlan", plan_with(rule.clone()), None);
        assert!(
            v.iter().any(|m| m.contains(expect)),
            "{rule}: expected {expect:?} in {v:?}"
        );
    }
    let long = json!({"payerRef": {"name": "acme"}, "planName": "p".repeat(129)});
    assert!(
        kind_violations("PricingPlan", long, None)
            .iter()
            .any(|m| m.starts_with("spec.planName"))
    );
    let rules: Vec<Value> = (0..501)
        .map(|i| json!({"name": format!("r{i}"), "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 1}))
        .collect();
    let v = kind_violations(
        "PricingPlan",
        json!({"payerRef": {"name": "acme"}, "rules": rules}),
        None,
    );
    assert!(v.iter().any(|m| m.starts_with("spec.rules:")), "{v:?}");
}

#[test]
fn a_billing_groups_primary_account_cannot_change() {
    let spec = |primary: &str| json!({"payerRef": {"name": "acme"}, "primaryAccount": primary, "pricingPlanRef": {"name": "p"}});
    assert!(kind_violations("BillingGroup", spec("northwind"), None).is_empty());
    assert!(kind_violations("BillingGroup", spec("northwind"), Some(spec("northwind"))).is_empty());
    let v = kind_violations("BillingGroup", spec("contoso"), Some(spec("northwind")));
    assert!(
        v.iter().any(|m| m.contains("primaryAccount cannot change")),
        "{v:?}"
    );
    let mut bad = spec("northwind");
    bad["deletionPolicy"] = json!("Destroy");
    assert!(
        kind_violations("BillingGroup", bad, None)
            .iter()
            .any(|m| m.starts_with("spec.deletionPolicy"))
    );
}

#[test]
fn custom_line_items_reject_what_aws_rejects() {
    let base = || json!({"billingGroupRef": {"name": "g"}, "description": "fee", "type": "FEE", "flat": {"amount": 5}});
    assert!(kind_violations("CustomLineItem", base(), None).is_empty());
    let mut both = base();
    both["percentage"] = json!({"percent": 10});
    assert!(
        kind_violations("CustomLineItem", both, None)
            .iter()
            .any(|m| m.contains("exactly one of flat and percentage"))
    );
    let mut none = base();
    none.as_object_mut().unwrap().remove("flat");
    assert!(
        kind_violations("CustomLineItem", none, None)
            .iter()
            .any(|m| m.contains("exactly one of flat and percentage"))
    );
    let mut no_description = base();
    no_description
        .as_object_mut()
        .unwrap()
        .remove("description");
    assert!(
        kind_violations("CustomLineItem", no_description, None)
            .iter()
            .any(|m| m == "spec.description: is required")
    );
    let mut too_much = base();
    too_much["flat"] = json!({"amount": 2_000_000});
    assert!(!kind_violations("CustomLineItem", too_much, None).is_empty());
    let mut bad_period = base();
    bad_period["billingPeriod"] = json!({"start": "2026-13"});
    assert!(
        kind_violations("CustomLineItem", bad_period, None)
            .iter()
            .any(|m| m.starts_with("spec.billingPeriod.start"))
    );
    // Immutable: type, group, flat-or-percentage, start.
    let mut credit = base();
    credit["type"] = json!("CREDIT");
    assert!(
        kind_violations("CustomLineItem", credit, Some(base()))
            .iter()
            .any(|m| m.contains("cannot change"))
    );
    let mut start = base();
    start["billingPeriod"] = json!({"start": "2026-11"});
    let mut later = base();
    later["billingPeriod"] = json!({"start": "2026-12"});
    assert!(
        kind_violations("CustomLineItem", later, Some(start.clone()))
            .iter()
            .any(|m| m.contains("billingPeriod.start cannot change"))
    );
    let mut amount = start.clone();
    amount["flat"] = json!({"amount": 7});
    assert!(
        kind_violations("CustomLineItem", amount, Some(start)).is_empty(),
        "the amount may change"
    );
}

#[test]
fn an_external_id_from_a_secret_is_valid_and_excludes_the_plain_one() {
    let role = |extra: Value| {
        let mut r = json!({"roleArn": "arn:aws:iam::111122223333:role/PartnerBilling"});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"accountId": "111122223333", "credentials": {"assumeRole": r}})
    };
    assert_eq!(
        violations(role(
            json!({"externalIdSecretRef": {"name": "acme-external-id"}})
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        violations(role(
            json!({"externalIdSecretRef": {"name": "acme-external-id", "key": "id"}})
        )),
        Vec::<String>::new()
    );
    let v = violations(role(
        json!({"externalId": "x-1", "externalIdSecretRef": {"name": "acme-external-id"}}),
    ));
    assert!(
        v.iter().any(|m| m.contains(
            "set at most one of assumeRole.externalId and assumeRole.externalIdSecretRef"
        )),
        "{v:?}"
    );
}

fn grant_violations(spec: Value) -> Vec<String> {
    let schema = crdgen::schema_for("PayerGrant").expect("PayerGrant schema");
    let grant = json!({
        "apiVersion": "partnerbilling.io/v1alpha1",
        "kind": "PayerGrant",
        "metadata": {"name": "acme"},
        "spec": spec
    });
    schema_check::validate(&schema, &grant, None)
        .into_iter()
        .map(|v| v.to_string())
        .collect()
}

#[test]
fn payer_grants_name_namespaces_accounts_and_roles() {
    for ok in [
        json!({"namespaces": {"names": ["acme"]}, "accountIds": ["111122223333"],
               "roleArns": ["arn:aws:iam::111122223333:role/PartnerBilling"]}),
        json!({"namespaces": {"selector": {"matchLabels": {"tenant": "acme"}}},
               "accountIds": ["*"], "roleArns": ["arn:aws:iam::*:role/tenants/acme/*", "*"]}),
        json!({"namespaces": {"selector": {}}, "accountIds": ["*"], "allowOperatorIdentity": true}),
        json!({"namespaces": {"names": ["acme"]}, "accountIds": ["111122223333"],
               "roleArns": ["arn:aws-cn:iam::111122223333:role/R"]}),
    ] {
        assert_eq!(grant_violations(ok.clone()), Vec::<String>::new(), "{ok}");
    }
    for (bad, says) in [
        (
            json!({"namespaces": {}, "accountIds": ["111122223333"]}),
            "namespaces needs names or a selector",
        ),
        (
            json!({"namespaces": {"names": ["acme"]}, "accountIds": []}),
            "spec.accountIds",
        ),
        (
            json!({"namespaces": {"names": ["acme"]}}),
            "spec.accountIds",
        ),
        (
            json!({"namespaces": {"names": ["Acme"]}, "accountIds": ["111122223333"]}),
            "spec.namespaces.names[0]",
        ),
        (
            json!({"namespaces": {"names": ["acme"]}, "accountIds": ["1111*"]}),
            "spec.accountIds[0]",
        ),
        (
            json!({"namespaces": {"names": ["acme"]}, "accountIds": ["111122223333"],
                   "roleArns": ["arn:aws:iam::111122223333:user/Bob"]}),
            "spec.roleArns[0]",
        ),
    ] {
        let v = grant_violations(bad.clone());
        assert!(v.iter().any(|m| m.contains(says)), "{bad}: {v:?}");
    }
}
