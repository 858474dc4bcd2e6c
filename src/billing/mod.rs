//! The Billing Conductor kinds: PricingPlan, BillingGroup and CustomLineItem, the shared
//! Billing Conductor reads per payer they all use (`snapshot`), and the payer context with the
//! one write path of these kinds (`context`); the cost by service of billing groups
//! (`service_costs`) and the transfer a TRANSFER_BILLING group bills (`transfer_ref`).

pub mod billing_group;
pub mod context;
pub mod custom_line_item;
pub mod pricing_plan;
pub mod service_costs;
pub mod snapshot;
pub mod transfer_ref;
