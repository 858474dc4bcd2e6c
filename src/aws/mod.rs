//! The seam to AWS: one narrow trait per service area, implemented with the AWS SDK, and a
//! connector that turns a Payer's credentials into clients.
//!
//! Everything above this module sees only the traits, so planners and reconcilers are
//! tested with fakes and the SDK implementations are tested against the emulator.

pub mod billing;
pub mod classify;
pub mod connector;
pub mod costs;
#[cfg(test)]
pub mod fake;
pub mod identity;
pub mod interceptor;
pub mod organizations;
pub mod pipeline;
pub mod transfer_preference;

pub use connector::{AwsConnect, AwsOptions, Connection, PayerCredentialsSource, SdkConnector};
pub use identity::{CallerIdentity, IdentityApi};
pub use organizations::{Organization, OrganizationsApi};
