use super::*;
use crate::api::billing_transfer::ManagedPricingPlan;
use serde_json::json;

const PAYER: &str = "111111111111";
const CUSTOMER: &str = "222222222222";
// 2026-12-01T10:00:00Z
const NOW: i64 = 1_796_119_200;

fn object(spec: serde_json::Value) -> BillingTransfer {
    let mut spec = spec;
    spec["payerRef"] = json!({"name": "acme"});
    serde_json::from_value(json!({
        "apiVersion": "partnerbilling.io/v1alpha1", "kind": "BillingTransfer",
        "metadata": {"name": "globex", "namespace": "billing", "uid": "u-1", "generation": 1},
        "spec": spec
    }))
    .unwrap()
}

fn desired(spec: serde_json::Value) -> Result<TransferDesired, Error> {
    validate(&object(spec), "billing", PAYER, |id| id == "333333333333")
}

fn good() -> TransferDesired {
    desired(json!({"customer": {"accountId": CUSTOMER}, "start": "2027-02-01T00:00:00Z"})).unwrap()
}

fn transfer(status: &str) -> Transfer {
    Transfer {
        id: "rt-abcd1234".into(),
        arn:
            "arn:aws:organizations::111111111111:transfer/o-abcdefghij/billing/inbound/rt-abcd1234"
                .into(),
        name: "globex".into(),
        status: status.into(),
        source_account_id: Some(CUSTOMER.into()),
        source_email: None,
        start: Some("2027-02-01T00:00:00Z".into()),
        end: None,
        handshake_id: Some("h-abcd1234".into()),
    }
}

#[test]
fn month_boundaries_are_utc_and_the_24_hours_are_strict() {
    let at = |t: &str| t.parse::<Timestamp>().unwrap().as_second();
    // A leap February, the last second of a month, and the first second of one.
    assert_eq!(
        end_of_month(at("2028-02-10T12:00:00Z"))
            .map(rfc3339)
            .as_deref(),
        Some("2028-02-29T23:59:59Z")
    );
    assert_eq!(
        end_of_month(at("2027-12-31T23:59:59Z"))
            .map(rfc3339)
            .as_deref(),
        Some("2027-12-31T23:59:59Z")
    );
    assert_eq!(
        end_of_month(at("2027-01-01T00:00:00Z"))
            .map(rfc3339)
            .as_deref(),
        Some("2027-01-31T23:59:59Z")
    );
    // Exactly 24 hours before a first of month is too late for it (accepted "24 hours
    // before" the start leaves the customer no time): the month after.
    assert_eq!(
        earliest_start(at("2026-12-31T00:00:00Z"))
            .map(rfc3339)
            .as_deref(),
        Some("2027-02-01T00:00:00Z")
    );
    assert_eq!(
        earliest_start(at("2026-12-30T23:59:59Z"))
            .map(rfc3339)
            .as_deref(),
        Some("2027-01-01T00:00:00Z")
    );
    // The fixture's NOW is what the other tests take it for.
    assert_eq!(
        earliest_start(NOW).map(rfc3339).as_deref(),
        Some("2027-01-01T00:00:00Z")
    );
}

#[test]
fn an_invitation_sent_for_this_spec_is_awaited_not_sent_again() {
    let d = good();
    let sent = TransferInvitation {
        handshake_id: Some("h-new00001".into()),
        sent_at: "2026-12-01T09:58:00Z".into(),
        generation: Some(1),
        reinvite: None,
    };
    let awaiting = TransferStep::Await {
        handshake: "h-new00001".into(),
        sent_at: "2026-12-01T09:58:00Z".into(),
    };
    // Sent, and the list does not show its transfer yet: wait, never Send.
    assert_eq!(
        plan(&d, None, Some(&sent), Some(1), None, NOW).unwrap(),
        awaiting
    );
    // Sent again after a decline (reinvite): the declined transfer of the earlier invitation
    // is found, the new one is not shown yet: wait for it, rather than report the old one.
    let mut old = transfer("DECLINED");
    old.handshake_id = Some("h-old00001".into());
    let resent = TransferInvitation {
        reinvite: Some("1".into()),
        ..sent.clone()
    };
    assert_eq!(
        plan(
            &d,
            Some(&old),
            Some(&resent),
            Some(1),
            Some("1".into()),
            NOW
        )
        .unwrap(),
        awaiting
    );
    // Its own transfer shown and ended: reported as ended.
    let mut own = transfer("DECLINED");
    own.handshake_id = Some("h-new00001".into());
    assert!(matches!(
        plan(&d, Some(&own), Some(&sent), Some(1), None, NOW),
        Ok(TransferStep::Ended { .. })
    ));
    // Sent for an earlier spec (generation 1, now 2): a new invitation is asked for.
    assert_eq!(
        plan(&d, None, Some(&sent), Some(2), None, NOW).unwrap(),
        TransferStep::Send
    );
    // No handshake recorded (nothing sent) and nothing found: the first invitation.
    let unsent = TransferInvitation {
        handshake_id: None,
        ..sent
    };
    assert_eq!(
        plan(&d, None, Some(&unsent), Some(1), None, NOW).unwrap(),
        TransferStep::Send
    );
}

#[test]
fn a_transfer_not_shown_yet_is_a_retried_wait_that_asks_a_person_after_a_while() {
    let d = good();
    let soon = not_listed("h-new00001", "2026-12-01T09:58:00Z", &d, NOW);
    assert_eq!(soon.reason(), TRANSFER_NOT_LISTED);
    assert!(!soon.is_terminal());
    let text = soon.to_string();
    assert!(
        text.contains("h-new00001") && text.contains("not sent again"),
        "{text}"
    );
    assert!(!text.contains(REINVITE_ANNOTATION), "{text}");
    let late = not_listed("h-new00001", "2026-12-01T09:00:00Z", &d, NOW).to_string();
    assert!(
        late.contains("60 minutes") && late.contains(REINVITE_ANNOTATION),
        "{late}"
    );
    // AWS refusing a second open invitation to the customer is a wait too, never terminal.
    let duplicate = transfer_error(
        Error::AwsRejected {
            code: "DuplicateHandshakeException".into(),
            aws_reason: None,
            message: "A handshake with the same action and target already exists.".into(),
        },
        "invite",
    );
    assert_eq!(duplicate.reason(), TRANSFER_NOT_LISTED);
    assert!(!duplicate.is_terminal());
}

#[test]
fn deletion_cancels_an_invitation_whose_transfer_was_never_seen() {
    let mut status = BillingTransferStatus::default();
    assert_eq!(unlisted_invitation(&status), None);
    status.invitation = Some(TransferInvitation {
        handshake_id: Some("h-new00001".into()),
        sent_at: "2026-12-01T09:58:00Z".into(),
        generation: Some(1),
        reinvite: None,
    });
    assert_eq!(unlisted_invitation(&status).as_deref(), Some("h-new00001"));
    // Once its transfer was seen, deletion follows the transfer (plan_deletion).
    status.state = Some("DECLINED".into());
    assert_eq!(unlisted_invitation(&status), None);
}

#[test]
fn validation_refuses_before_any_call() {
    let own = desired(json!({"customer": {"accountId": PAYER}, "start": "2027-02-01T00:00:00Z"}));
    assert!(
        own.unwrap_err()
            .to_string()
            .contains("Payer's own management account")
    );
    let member = desired(
        json!({"customer": {"accountId": "333333333333"}, "start": "2027-02-01T00:00:00Z"}),
    );
    assert!(
        member
            .unwrap_err()
            .to_string()
            .contains("member of the Payer's own organization")
    );
    let mid =
        desired(json!({"customer": {"accountId": CUSTOMER}, "start": "2027-02-15T00:00:00Z"}))
            .unwrap_err();
    assert_eq!(mid.reason(), INVALID_TRANSFER_DATE);
    assert!(mid.to_string().contains("YYYY-MM-01T00:00:00Z"), "{mid}");
    let not_last = desired(
        json!({"customer": {"accountId": CUSTOMER}, "start": "2027-02-01T00:00:00Z", "end": "2027-02-30T23:59:59Z"}),
    );
    assert!(not_last.is_err());
    let feb = desired(json!({"customer": {"accountId": CUSTOMER}, "start": "2027-01-01T00:00:00Z", "end": "2027-02-28T23:59:59Z"}))
        .unwrap();
    assert_eq!(
        feb.end_epoch.map(rfc3339).as_deref(),
        Some("2027-02-28T23:59:59Z")
    );
    let before = desired(
        json!({"customer": {"accountId": CUSTOMER}, "start": "2027-03-01T00:00:00Z", "end": "2027-02-28T23:59:59Z"}),
    );
    assert!(
        before
            .unwrap_err()
            .to_string()
            .contains("not after spec.start")
    );
    let by_mail = desired(
        json!({"customer": {"email": "ops@globex.example"}, "start": "2027-02-01T00:00:00Z"}),
    )
    .unwrap();
    assert_eq!(
        by_mail.customer,
        TransferParty::Email("ops@globex.example".into())
    );
    assert_eq!(by_mail.owner, "billing/billingtransfer/globex");
}

#[test]
fn an_invitation_needs_24_hours_before_the_start() {
    let d = desired(json!({"customer": {"accountId": CUSTOMER}, "start": "2026-12-01T00:00:00Z"}))
        .unwrap();
    let err = plan(&d, None, None, Some(1), None, NOW).unwrap_err();
    assert_eq!(err.reason(), INVALID_TRANSFER_DATE);
    assert!(err.to_string().contains("2027-01-01T00:00:00Z"), "{err}");
    // 2026-12-31T12:00:00Z: January is less than 24 hours away; February is the earliest.
    assert_eq!(
        earliest_start(NOW + 30 * 86_400 + 2 * 3600)
            .map(rfc3339)
            .as_deref(),
        Some("2027-02-01T00:00:00Z")
    );
    assert_eq!(
        plan(&good(), None, None, Some(1), None, NOW).unwrap(),
        TransferStep::Send
    );
}

#[test]
fn a_live_transfer_is_followed_and_an_ended_one_is_not_sent_again_by_itself() {
    let d = good();
    assert!(matches!(
        plan(&d, Some(&transfer("REQUESTED")), None, Some(1), None, NOW),
        Ok(TransferStep::Follow(_))
    ));
    let record = TransferInvitation {
        handshake_id: None,
        sent_at: "x".into(),
        generation: Some(1),
        reinvite: None,
    };
    for (state, reason) in [
        ("DECLINED", TRANSFER_DECLINED),
        ("EXPIRED", TRANSFER_EXPIRED),
        ("WITHDRAWN", TRANSFER_WITHDRAWN),
        ("CANCELED", TRANSFER_CANCELED),
    ] {
        let t = transfer(state);
        assert_eq!(
            plan(&d, Some(&t), Some(&record), Some(1), None, NOW).unwrap(),
            TransferStep::Ended {
                transfer: t.clone(),
                reason
            }
        );
        // Status lost: taken as sent for this spec.
        assert!(matches!(
            plan(&d, Some(&t), None, Some(1), None, NOW),
            Ok(TransferStep::Ended { .. })
        ));
        // A spec change or a new annotation value sends another.
        assert_eq!(
            plan(&d, Some(&t), Some(&record), Some(2), None, NOW).unwrap(),
            TransferStep::Send
        );
        assert_eq!(
            plan(&d, Some(&t), Some(&record), Some(1), Some("1".into()), NOW).unwrap(),
            TransferStep::Send
        );
    }
    let mut other = transfer("ACCEPTED");
    other.start = Some("2027-03-01T00:00:00Z".into());
    assert_eq!(
        plan(&d, Some(&other), None, Some(1), None, NOW)
            .unwrap_err()
            .reason(),
        TRANSFER_MISMATCH
    );
    other.status = "DECLINED".into();
    assert_eq!(
        plan(&d, Some(&other), None, Some(1), None, NOW).unwrap(),
        TransferStep::Send
    );
}

#[test]
fn the_preference_is_written_only_when_it_differs() {
    let wanted = AutomaticBillingGroups {
        enabled: true,
        pricing_plan_ref: None,
        pricing_plan: Some(ManagedPricingPlan::Passthrough),
    };
    let off = TransferPreference::default();
    let set = plan_preference(&wanted, Some("Passthrough".into()), &off).unwrap();
    assert_eq!(
        set,
        TransferPreference {
            enabled: true,
            pricing_plan_arn: Some("Passthrough".into())
        }
    );
    assert_eq!(
        plan_preference(&wanted, Some("Passthrough".into()), &set),
        None
    );
    let full = TransferPreference {
        enabled: true,
        pricing_plan_arn: Some("arn:aws:billingconductor::aws:pricingplan/Passthrough".into()),
    };
    assert_eq!(
        plan_preference(&wanted, Some("Passthrough".into()), &full),
        None
    );
    let disable = AutomaticBillingGroups {
        enabled: false,
        pricing_plan_ref: None,
        pricing_plan: None,
    };
    assert_eq!(
        plan_preference(&disable, None, &set),
        Some(TransferPreference::default())
    );
    assert_eq!(plan_preference(&disable, None, &off), None);
}

#[test]
fn deletion_terminates_once_and_cancels_an_open_invitation() {
    let accepted = transfer("ACCEPTED");
    match plan_deletion(TransferDeletionPolicy::Terminate, Some(&accepted), NOW) {
        // Not started yet: the end of its start month.
        TransferDeletion::Terminate { end, .. } => assert_eq!(rfc3339(end), "2027-02-28T23:59:59Z"),
        other => panic!("{other:?}"),
    }
    let mut started = accepted.clone();
    started.start = Some("2026-11-01T00:00:00Z".into());
    match plan_deletion(TransferDeletionPolicy::Terminate, Some(&started), NOW) {
        TransferDeletion::Terminate { end, .. } => assert_eq!(rfc3339(end), "2026-12-31T23:59:59Z"),
        other => panic!("{other:?}"),
    }
    let mut ending = accepted.clone();
    ending.end = Some("2027-03-31T23:59:59Z".into());
    assert!(matches!(
        plan_deletion(TransferDeletionPolicy::Terminate, Some(&ending), NOW),
        TransferDeletion::Release(_)
    ));
    assert!(matches!(
        plan_deletion(
            TransferDeletionPolicy::Terminate,
            Some(&transfer("WITHDRAWN")),
            NOW
        ),
        TransferDeletion::Release(_)
    ));
    assert!(matches!(
        plan_deletion(TransferDeletionPolicy::Retain, Some(&accepted), NOW),
        TransferDeletion::Release(_)
    ));
    assert!(matches!(
        plan_deletion(
            TransferDeletionPolicy::Terminate,
            Some(&transfer("REQUESTED")),
            NOW
        ),
        TransferDeletion::Cancel { .. }
    ));
    assert!(matches!(
        plan_deletion(TransferDeletionPolicy::Terminate, None, NOW),
        TransferDeletion::Release(_)
    ));
}

#[test]
fn aws_transfer_refusals_become_actionable_conditions() {
    let rejected = |code: &str, reason: &str| Error::AwsRejected {
        code: code.into(),
        aws_reason: Some(reason.into()),
        message: format!("organizations:X was rejected ({code} [{reason}])"),
    };
    let exists = transfer_error(
        rejected(
            "HandshakeConstraintViolationException",
            "RESPONSIBILITY_TRANSFER_ALREADY_EXISTS",
        ),
        "invite",
    );
    assert_eq!(exists.reason(), TRANSFER_REFUSED);
    assert!(exists.is_terminal());
    assert!(
        exists
            .to_string()
            .contains("already has a billing transfer")
    );
    let date = transfer_error(
        rejected("InvalidInputException", "START_DATE_TOO_EARLY"),
        "invite",
    );
    assert_eq!(date.reason(), INVALID_TRANSFER_DATE);
    let busy = transfer_error(
        rejected(
            "ConstraintViolationException",
            "ACTIVE_RESPONSIBILITY_TRANSFER_PROCESS",
        ),
        "invite",
    );
    assert!(!busy.is_terminal());
    let quota = transfer_error(
        rejected(
            "ConstraintViolationException",
            "RESPONSIBILITY_TRANSFER_MAX_INBOUND_QUOTA_VIOLATION",
        ),
        "invite",
    );
    assert!(quota.is_terminal() && quota.to_string().contains("quota"));
    let other = transfer_error(
        rejected("InvalidInputException", "INVALID_PATTERN"),
        "invite",
    );
    assert_eq!(other.reason(), "AwsRejected");
}

#[test]
fn a_termination_already_asked_for_is_not_asked_again() {
    let end = good().start_epoch + 86_400 * 400;
    let mut status = BillingTransferStatus::default();
    assert!(!termination_requested(&status, end));
    status.end = Some(rfc3339(end));
    assert!(
        !termination_requested(&status, end),
        "an end without a request"
    );
    status.termination_requested_at = Some("2027-01-05T10:00:00Z".into());
    assert!(termination_requested(&status, end));
    assert!(
        !termination_requested(&status, end + 86_400 * 30),
        "another end is a new request"
    );
}
