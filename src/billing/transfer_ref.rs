//! The responsibility transfer a TRANSFER_BILLING BillingGroup bills: its
//! `responsibilityTransferRef` names a BillingTransfer of the same namespace, whose
//! `status.transferArn` is used while the transfer is in effect: `ACCEPTED`, or `WITHDRAWN`
//! before its end (a billing transfer group can be made only for a transfer in effect).
//!
//! AWS facts (Billing User Guide, orgs_transfer_billing-stop-transfer): "you can withdraw a
//! transfer at any time. The transfer continues until the end date" (23:59:59 UTC on the last
//! day of the month named in the withdrawal); "Withdrawal cannot be undone: If a transfer is
//! withdrawn, the account that was managing and paying for another organization's consolidated
//! bill must send a new invitation to that organization to start again". A DECLINED, EXPIRED or
//! CANCELED invitation does not reopen either (orgs_transfer_billing-respond-invitation: the
//! invitation is answered once; a new one is sent). So:
//!
//! - REQUESTED (or no state yet): the group waits (`Error::Waiting`): the customer may accept.
//! - ACCEPTED, or WITHDRAWN with its end still ahead: the transfer's ARN is used.
//! - WITHDRAWN past its end, DECLINED, EXPIRED, CANCELED: it can never become active again: a
//!   terminal condition (`TransferEnded`) that says what to do (a new invitation through the
//!   BillingTransfer's `partnerbilling.io/reinvite` annotation, or another transfer). The group
//!   is woken again when the BillingTransfer's ARN or state changes (its trigger), so a new
//!   invitation that is accepted is picked up.

use k8s_openapi::jiff::Timestamp;

use crate::api::LocalRef;
use crate::api::linked_account::REINVITE_ANNOTATION;
use crate::error::Error;
use crate::reconcile::reasons::{DEPENDENCY_NOT_READY, TRANSFER_ENDED, TRANSFER_NOT_ACCEPTED};
use crate::reconcile::{DEPENDENCY_RETRY, ReconcileContext};

/// The transfer state in which a billing transfer group can be made.
pub const ACCEPTED: &str = "ACCEPTED";
/// A transfer ended by either side: in effect until its end, never again after it.
pub const WITHDRAWN: &str = "WITHDRAWN";

/// How long a group waits before it looks at a transfer not accepted yet again: the
/// customer accepts when they do (the BillingTransfer's own reconcile follows it).
const NOT_ACCEPTED_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// What a BillingTransfer's status says, for [`judge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferFacts<'a> {
    pub transfer_arn: Option<&'a str>,
    pub state: Option<&'a str>,
    /// The transfer's end (RFC 3339), when it has one.
    pub end: Option<&'a str>,
}

/// The ARN of transfer `dependency` (`BillingTransfer ns/name`) while it is in effect at `now`
/// (seconds): ACCEPTED, or WITHDRAWN before its end. Waits while it does not exist (`found`
/// none), has no ARN, or is REQUESTED; terminal (`TransferEnded`) once it can never be in
/// effect again (see the module docs). Pure.
pub fn judge(
    dependency: &str,
    found: Option<TransferFacts<'_>>,
    now: i64,
) -> Result<String, Error> {
    let Some(facts) = found else {
        return Err(Error::waiting(
            DEPENDENCY_NOT_READY,
            format!("{dependency} does not exist"),
            DEPENDENCY_RETRY,
        ));
    };
    let Some(arn) = facts.transfer_arn else {
        return Err(Error::waiting(
            DEPENDENCY_NOT_READY,
            format!("{dependency} has no transfer in AWS yet"),
            DEPENDENCY_RETRY,
        ));
    };
    let reinvite = format!(
        "set the annotation {REINVITE_ANNOTATION} on {dependency} to a new value to send a new invitation (this group is made once it is accepted), or point responsibilityTransferRef at another BillingTransfer"
    );
    match facts.state {
        Some(ACCEPTED) => Ok(arn.to_string()),
        Some(WITHDRAWN) => {
            let end = facts
                .end
                .and_then(|e| e.parse::<Timestamp>().ok())
                .map(|t| t.as_second());
            match end {
                Some(end) if now <= end => Ok(arn.to_string()),
                _ => Err(Error::terminal(
                    TRANSFER_ENDED,
                    format!(
                        "{dependency} was withdrawn and ended{}; AWS cannot undo a withdrawal, so a TRANSFER_BILLING group can no longer be made for transfer {arn}: {reinvite}",
                        facts.end.map(|e| format!(" at {e}")).unwrap_or_default()
                    ),
                )),
            }
        }
        Some(state @ ("DECLINED" | "EXPIRED" | "CANCELED")) => Err(Error::terminal(
            TRANSFER_ENDED,
            format!(
                "{dependency} is {state}: its invitation was never accepted and AWS does not reopen it, so transfer {arn} never takes effect: {reinvite}"
            ),
        )),
        state => Err(Error::waiting(
            TRANSFER_NOT_ACCEPTED,
            format!(
                "{dependency} is {}; a TRANSFER_BILLING group is created once the customer has accepted the transfer",
                state.unwrap_or("not reported yet")
            ),
            NOT_ACCEPTED_RETRY,
        )),
    }
}

/// The ARN of the transfer in effect `r` names in `namespace` (see [`judge`]), now.
pub fn accepted_transfer_arn(
    namespace: &str,
    r: &LocalRef,
    ctx: &ReconcileContext,
) -> Result<String, Error> {
    let dependency = format!("BillingTransfer {namespace}/{}", r.name);
    let transfer = ctx
        .catalog
        .get::<crate::api::BillingTransfer>(namespace, &r.name);
    let status = transfer
        .as_ref()
        .map(|t| t.status.clone().unwrap_or_default());
    judge(
        &dependency,
        status.as_ref().map(|s| TransferFacts {
            transfer_arn: s.transfer_arn.as_deref(),
            state: s.state.as_deref(),
            end: s.end.as_deref(),
        }),
        Timestamp::now().as_second(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str =
        "arn:aws:organizations::123456789012:transfer/o-abcdefghij/billing/inbound/rt-12345678";
    // 2027-03-10T00:00:00Z
    const NOW: i64 = 1_804_636_800;

    fn facts<'a>(state: Option<&'a str>, end: Option<&'a str>) -> TransferFacts<'a> {
        TransferFacts {
            transfer_arn: Some(ARN),
            state,
            end,
        }
    }

    #[test]
    fn a_transfer_is_used_only_once_accepted() {
        let d = "BillingTransfer ns/t";
        assert_eq!(
            judge(d, None, NOW).unwrap_err().reason(),
            DEPENDENCY_NOT_READY
        );
        let none = TransferFacts {
            transfer_arn: None,
            state: None,
            end: None,
        };
        assert!(
            judge(d, Some(none), NOW)
                .unwrap_err()
                .to_string()
                .contains("no transfer")
        );
        let err = judge(d, Some(facts(Some("REQUESTED"), None)), NOW).unwrap_err();
        assert_eq!(err.reason(), TRANSFER_NOT_ACCEPTED);
        assert!(!err.is_terminal());
        assert!(err.to_string().contains("REQUESTED"), "{err}");
        assert_eq!(
            judge(d, Some(facts(Some(ACCEPTED), None)), NOW).unwrap(),
            ARN
        );
    }

    #[test]
    fn a_withdrawn_transfer_counts_until_its_end_and_is_terminal_after() {
        let d = "BillingTransfer ns/t";
        // Withdrawn, ending at the end of this month: still in effect.
        let running = facts(Some(WITHDRAWN), Some("2027-03-31T23:59:59Z"));
        assert_eq!(judge(d, Some(running), NOW).unwrap(), ARN);
        // Ended: never again; a terminal condition that says what to do.
        let ended = facts(Some(WITHDRAWN), Some("2027-02-28T23:59:59Z"));
        let err = judge(d, Some(ended), NOW).unwrap_err();
        assert_eq!(err.reason(), TRANSFER_ENDED);
        assert!(err.is_terminal(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("cannot undo a withdrawal")
                && text.contains("2027-02-28T23:59:59Z")
                && text.contains(REINVITE_ANNOTATION),
            "{text}"
        );
        // Withdrawn without a known end: not known to be in effect; terminal too.
        assert!(
            judge(d, Some(facts(Some(WITHDRAWN), None)), NOW)
                .unwrap_err()
                .is_terminal()
        );
    }

    #[test]
    fn an_invitation_never_accepted_is_terminal_not_awaited() {
        let d = "BillingTransfer ns/t";
        for state in ["DECLINED", "EXPIRED", "CANCELED"] {
            let err = judge(d, Some(facts(Some(state), None)), NOW).unwrap_err();
            assert_eq!(err.reason(), TRANSFER_ENDED, "{state}");
            assert!(err.is_terminal(), "{state}");
            assert!(err.to_string().contains(REINVITE_ANNOTATION), "{err}");
        }
    }
}
