//! Least-privilege IAM policies, one per family of kinds, for the identity the operator uses
//! in a payer's management account. `partner-billing-operator iam --dir DIR` writes them; a
//! test checks that every AWS operation the code calls is in one of them.

use serde_json::{Value, json};

/// A family of kinds and the AWS actions its reconcilers call.
pub struct Family {
    pub name: &'static str,
    pub kinds: &'static [&'static str],
    pub actions: &'static [&'static str],
}

/// Every family.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "payer",
        kinds: &["Payer"],
        actions: &[
            "sts:GetCallerIdentity",
            "organizations:DescribeOrganization",
            "organizations:ListAccounts",
        ],
    },
    Family {
        name: "organizations",
        kinds: &[
            "LinkedAccount",
            "OrganizationalUnit",
            "ServiceControlPolicy",
        ],
        actions: &[
            "organizations:DescribeOrganization",
            "organizations:ListAccounts",
            "organizations:DescribeAccount",
            "organizations:ListRoots",
            "organizations:ListOrganizationalUnitsForParent",
            "organizations:ListAccountsForParent",
            "organizations:ListPolicies",
            "organizations:ListTargetsForPolicy",
            "organizations:DescribePolicy",
            "organizations:CreatePolicy",
            "organizations:UpdatePolicy",
            "organizations:DeletePolicy",
            "organizations:AttachPolicy",
            "organizations:DetachPolicy",
            "organizations:EnablePolicyType",
            "organizations:CreateOrganizationalUnit",
            "organizations:UpdateOrganizationalUnit",
            "organizations:DeleteOrganizationalUnit",
            "organizations:CreateAccount",
            "organizations:DescribeCreateAccountStatus",
            "organizations:ListCreateAccountStatus",
            "organizations:InviteAccountToOrganization",
            "organizations:ListHandshakesForOrganization",
            "organizations:CancelHandshake",
            "organizations:MoveAccount",
            "organizations:ListTagsForResource",
            "organizations:TagResource",
            "organizations:UntagResource",
            "organizations:CloseAccount",
            "organizations:RemoveAccountFromOrganization",
        ],
    },
    Family {
        name: "billing",
        kinds: &["PricingPlan", "BillingGroup", "CustomLineItem"],
        actions: &[
            "billingconductor:ListPricingRules",
            "billingconductor:ListPricingPlans",
            "billingconductor:ListPricingRulesAssociatedToPricingPlan",
            "billingconductor:ListBillingGroups",
            "billingconductor:ListAccountAssociations",
            "billingconductor:ListCustomLineItems",
            "billingconductor:ListBillingGroupCostReports",
            "billingconductor:GetBillingGroupCostReport",
            "billingconductor:CreatePricingRule",
            "billingconductor:UpdatePricingRule",
            "billingconductor:DeletePricingRule",
            "billingconductor:CreatePricingPlan",
            "billingconductor:UpdatePricingPlan",
            "billingconductor:DeletePricingPlan",
            "billingconductor:AssociatePricingRules",
            "billingconductor:DisassociatePricingRules",
            "billingconductor:CreateBillingGroup",
            "billingconductor:UpdateBillingGroup",
            "billingconductor:DeleteBillingGroup",
            "billingconductor:AssociateAccounts",
            "billingconductor:DisassociateAccounts",
            "billingconductor:CreateCustomLineItem",
            "billingconductor:UpdateCustomLineItem",
            "billingconductor:DeleteCustomLineItem",
            "billingconductor:ListTagsForResource",
            "billingconductor:TagResource",
            "billingconductor:UntagResource",
        ],
    },
    Family {
        name: "insights",
        kinds: &["Payer"],
        actions: &["ce:GetCostAndUsage"],
    },
    Family {
        name: "pipeline",
        kinds: &["CurPipeline"],
        actions: &[
            "s3:ListBucket",
            "s3:CreateBucket",
            "s3:PutBucketTagging",
            "s3:GetBucketPolicy",
            "s3:PutBucketPolicy",
            "bcm-data-exports:ListExports",
            "bcm-data-exports:GetExport",
            "bcm-data-exports:CreateExport",
            "bcm-data-exports:UpdateExport",
            "bcm-data-exports:DeleteExport",
            "bcm-data-exports:TagResource",
            "cur:DescribeReportDefinitions",
            "cur:PutReportDefinition",
            "cur:ModifyReportDefinition",
            "cur:DeleteReportDefinition",
            "cur:ListTagsForResource",
            "cur:TagResource",
            "glue:GetDatabase",
            "glue:CreateDatabase",
            "glue:DeleteDatabase",
            "glue:GetCrawler",
            "glue:CreateCrawler",
            "glue:UpdateCrawler",
            "glue:DeleteCrawler",
            "glue:TagResource",
            "iam:PassRole",
        ],
    },
    Family {
        // InviteOrganizationToTransferResponsibility with Tags (the owner tag) also needs
        // organizations:TagResource, as the Organizations create calls with Tags do.
        name: "transfer",
        kinds: &["BillingTransfer"],
        actions: &[
            "organizations:DescribeOrganization",
            "organizations:ListAccounts",
            "organizations:InviteOrganizationToTransferResponsibility",
            "organizations:ListInboundResponsibilityTransfers",
            "organizations:DescribeResponsibilityTransfer",
            "organizations:TerminateResponsibilityTransfer",
            "organizations:CancelHandshake",
            "organizations:ListTagsForResource",
            "organizations:TagResource",
            "billingconductor:GetBillingTransferPreference",
            "billingconductor:UpdateBillingTransferPreference",
        ],
    },
];

/// Actions a policy needs that are not the name of an operation the code calls: (action,
/// why). The IAM test accepts exactly these beyond the called operations.
pub const IMPLIED: &[(&str, &str)] = &[
    (
        "s3:ListBucket",
        "HeadBucket and ListObjectsV2 are authorized as s3:ListBucket",
    ),
    (
        "iam:PassRole",
        "CreateCrawler and UpdateCrawler pass the crawler's role to Glue",
    ),
    (
        "glue:TagResource",
        "CreateDatabase and CreateCrawler with Tags",
    ),
    (
        "bcm-data-exports:TagResource",
        "CreateExport with ResourceTags",
    ),
    (
        "cur:TagResource",
        "PutReportDefinition with Tags (and TagResource itself when a pipeline adopts a report definition)",
    ),
];

/// Operations authorized under another action name (operation -> action).
pub const AUTHORIZED_AS: &[(&str, &str)] = &[
    ("s3:HeadBucket", "s3:ListBucket"),
    ("s3:ListObjectsV2", "s3:ListBucket"),
];

/// An action a family's policy allows only on some resources and under a condition, in a
/// statement of its own instead of on `*`.
pub struct Scoped {
    /// The action (also in the family's `actions`: the call coverage test sees it there).
    pub action: &'static str,
    pub family: &'static str,
    /// The resources the statement names.
    pub resources: &'static [&'static str],
    /// `StringEquals` condition: (key, value).
    pub condition: (&'static str, &'static str),
}

/// Every scoped action. `iam:PassRole`: the only role the operator passes is a CurPipeline's
/// `spec.glue.roleArn`, to Glue, in CreateCrawler and UpdateCrawler (`aws/pipeline.rs`). The
/// role ARN is the object's own, so the shipped policy can only name the ARN shape the CRD
/// accepts (`arn:<partition>:iam::<account>:role/<path and name>`); the condition key
/// `iam:PassedToService` (IAM User Guide, "Grant a user permissions to pass a role to an AWS
/// service": the value is the service principal) keeps the pass to Glue. Narrow the resource
/// to your crawler roles' ARNs when you deploy the policy.
pub const SCOPED: &[Scoped] = &[Scoped {
    action: "iam:PassRole",
    family: "pipeline",
    resources: &["arn:*:iam::*:role/*"],
    condition: ("iam:PassedToService", "glue.amazonaws.com"),
}];

/// The IAM policy document of a family: its actions on `*`, then one statement per scoped
/// action ([`SCOPED`]) with its resources and condition.
pub fn policy(family: &Family) -> Value {
    let scoped: Vec<&Scoped> = SCOPED.iter().filter(|s| s.family == family.name).collect();
    let mut actions: Vec<&str> = family
        .actions
        .iter()
        .copied()
        .filter(|a| !scoped.iter().any(|s| s.action == *a))
        .collect();
    actions.sort();
    let sid = format!("PartnerBillingOperator{}", capitalize(family.name));
    let mut statements = vec![json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": "*"
    })];
    for s in scoped {
        let (key, value) = s.condition;
        statements.push(json!({
            "Sid": format!("{sid}{}", s.action.rsplit(':').next().unwrap_or_default()),
            "Effect": "Allow",
            "Action": s.action,
            "Resource": s.resources,
            "Condition": {"StringEquals": {key: value}}
        }));
    }
    json!({
        "Version": "2012-10-17",
        "Statement": statements
    })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// File name of a family's policy: `<family>.json`.
pub fn file_name(family: &Family) -> String {
    format!("{}.json", family.name)
}

/// A family's policy as pretty JSON with a trailing newline.
pub fn to_json(family: &Family) -> String {
    serde_json::to_string_pretty(&policy(family)).unwrap_or_default() + "\n"
}

/// Write every family's policy into `dir`.
pub fn write_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for f in FAMILIES {
        let path = dir.join(file_name(f));
        std::fs::write(&path, to_json(f)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements of a family's policy that allow `action`.
    fn allowing<'a>(policy: &'a Value, action: &str) -> Vec<&'a Value> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["Action"] == action
                    || s["Action"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == action))
            })
            .collect()
    }

    #[test]
    fn pass_role_is_only_for_roles_passed_to_glue() {
        let pipeline = FAMILIES.iter().find(|f| f.name == "pipeline").unwrap();
        let doc = policy(pipeline);
        let pass = allowing(&doc, "iam:PassRole");
        assert_eq!(pass.len(), 1, "{doc}");
        assert_eq!(pass[0]["Resource"], json!(["arn:*:iam::*:role/*"]));
        assert_eq!(
            pass[0]["Condition"],
            json!({"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}})
        );
        // The crawler's other actions are still allowed, on `*`.
        let crawler = allowing(&doc, "glue:CreateCrawler");
        assert_eq!(crawler.len(), 1);
        assert_eq!(crawler[0]["Resource"], "*");
    }

    #[test]
    fn no_policy_passes_a_role_unscoped_and_every_scoped_action_is_a_familys() {
        for f in FAMILIES {
            let doc = policy(f);
            for s in allowing(&doc, "iam:PassRole") {
                assert_ne!(s["Resource"], "*", "{}: {doc}", f.name);
                assert!(s.get("Condition").is_some(), "{}: {doc}", f.name);
            }
            // Every action of the family is in exactly one statement.
            for a in f.actions {
                assert_eq!(allowing(&doc, a).len(), 1, "{}: {a}", f.name);
            }
        }
        for s in SCOPED {
            let family = FAMILIES.iter().find(|f| f.name == s.family);
            assert!(
                family.is_some_and(|f| f.actions.contains(&s.action)),
                "{} is scoped for {}, which does not allow it",
                s.action,
                s.family
            );
        }
    }
}
