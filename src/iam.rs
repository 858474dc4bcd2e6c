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

/// The IAM policy document of a family.
pub fn policy(family: &Family) -> Value {
    let mut actions: Vec<&str> = family.actions.to_vec();
    actions.sort();
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": format!("PartnerBillingOperator{}", capitalize(family.name)),
            "Effect": "Allow",
            "Action": actions,
            "Resource": "*"
        }]
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
