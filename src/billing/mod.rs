//! The Billing Conductor kinds: PricingPlan, BillingGroup and CustomLineItem, and the shared
//! Billing Conductor reads per payer they all use.

pub mod billing_group;
pub mod custom_line_item;
pub mod pricing_plan;
pub mod snapshot;
