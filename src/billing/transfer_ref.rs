//! The responsibility transfer a TRANSFER_BILLING BillingGroup bills: its
//! `responsibilityTransferRef` names a BillingTransfer of the same namespace, whose
//! `status.transferArn` is used once its `status.state` is `ACCEPTED` (a billing transfer
//! group can be made only for a transfer in effect). Until then the group waits
//! (`Error::Waiting`), like any object waiting for another.

use crate::api::LocalRef;
use crate::error::Error;
use crate::reconcile::reasons::{DEPENDENCY_NOT_READY, TRANSFER_NOT_ACCEPTED};
use crate::reconcile::{DEPENDENCY_RETRY, ReconcileContext};

/// The transfer state in which a billing transfer group can be made.
pub const ACCEPTED: &str = "ACCEPTED";

/// How long a group waits before it looks at a transfer not accepted yet again: the
/// customer accepts when they do (the BillingTransfer's own reconcile follows it).
const NOT_ACCEPTED_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// What a BillingTransfer's status says, for [`judge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferFacts<'a> {
    pub transfer_arn: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// The ARN of transfer `dependency` (`BillingTransfer ns/name`) when it is ACCEPTED; waits
/// while it does not exist (`found` none), has no ARN, or is in another state. Pure.
pub fn judge(dependency: &str, found: Option<TransferFacts<'_>>) -> Result<String, Error> {
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
    match facts.state {
        Some(ACCEPTED) => Ok(arn.to_string()),
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

/// The ARN of the accepted transfer `r` names in `namespace` (see [`judge`]).
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
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_is_used_only_once_accepted() {
        let d = "BillingTransfer ns/t";
        let arn =
            "arn:aws:organizations::123456789012:transfer/o-abcdefghij/billing/inbound/rt-12345678";
        assert_eq!(judge(d, None).unwrap_err().reason(), DEPENDENCY_NOT_READY);
        let none = TransferFacts {
            transfer_arn: None,
            state: None,
        };
        assert!(
            judge(d, Some(none))
                .unwrap_err()
                .to_string()
                .contains("no transfer")
        );
        let requested = TransferFacts {
            transfer_arn: Some(arn),
            state: Some("REQUESTED"),
        };
        let err = judge(d, Some(requested)).unwrap_err();
        assert_eq!(err.reason(), TRANSFER_NOT_ACCEPTED);
        assert!(err.to_string().contains("REQUESTED"), "{err}");
        let accepted = TransferFacts {
            transfer_arn: Some(arn),
            state: Some(ACCEPTED),
        };
        assert_eq!(judge(d, Some(accepted)).unwrap(), arn);
    }
}
