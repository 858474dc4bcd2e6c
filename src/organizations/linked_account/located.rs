//! Where the search for a LinkedAccount's account ended, shared by the ways an account is
//! found ([`super::create`], [`super::invite`], adoption) and by the deletion that waits for a
//! creation: a leaf, so those parts never depend on the module that dispatches to them.

use std::time::Duration;

use crate::aws::organizations::Account;
use crate::reconcile::Verdict;

/// How often an account creation in progress (or an account AWS is activating) is polled.
pub const CREATE_POLL: Duration = Duration::from_secs(10);

/// Where the account search ended.
#[derive(Debug)]
pub enum Located {
    /// The account is in the organization.
    Account(Account),
    /// Not yet: where the creation or invitation stands.
    Pending(Verdict),
}
