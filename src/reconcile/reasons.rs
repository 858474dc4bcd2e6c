//! Condition and Event reasons, in one place: every `reason` a condition or an Event of this
//! operator can carry. Argo CD health scripts, alerts and the README match on these strings,
//! so they are part of the API: add new ones here, never rename one.
//!
//! Reasons that mean "come back later" come in two flavours (see [`crate::error::Error`] and
//! [`super::Verdict`]): waiting for *another* object (`PayerNotFound`, `DependencyNotReady`) is
//! an `Error::Waiting`; this object's *own* AWS operation in flight (`Creating`, `Closing`,
//! `InvitationPending`) is a `Verdict::progressing`.

/// `AccessDenied`.
pub const ACCESS_DENIED: &str = "AccessDenied";
/// `AccountClaimed`.
pub const ACCOUNT_CLAIMED: &str = "AccountClaimed";
/// `AccountClosed`.
pub const ACCOUNT_CLOSED: &str = "AccountClosed";
/// `AccountConflict`.
pub const ACCOUNT_CONFLICT: &str = "AccountConflict";
/// `AccountLeftOrganization`.
pub const ACCOUNT_LEFT_ORGANIZATION: &str = "AccountLeftOrganization";
/// `AccountMismatch`.
pub const ACCOUNT_MISMATCH: &str = "AccountMismatch";
/// `AccountNotActive`.
pub const ACCOUNT_NOT_ACTIVE: &str = "AccountNotActive";
/// `AccountNotInOrganization`.
pub const ACCOUNT_NOT_IN_ORGANIZATION: &str = "AccountNotInOrganization";
/// `AccountPendingActivation`.
pub const ACCOUNT_PENDING_ACTIVATION: &str = "AccountPendingActivation";
/// `AccountSuspended`.
pub const ACCOUNT_SUSPENDED: &str = "AccountSuspended";
/// `AccountWantedByAnotherGroup`.
pub const ACCOUNT_WANTED_BY_ANOTHER_GROUP: &str = "AccountWantedByAnotherGroup";
/// `Active`.
pub const ACTIVE: &str = "Active";
/// `AdoptionRequired`.
pub const ADOPTION_REQUIRED: &str = "AdoptionRequired";
/// `Available`.
pub const AVAILABLE: &str = "Available";
/// `AwaitingFirstDelivery`.
pub const AWAITING_FIRST_DELIVERY: &str = "AwaitingFirstDelivery";
/// `BucketNotFound`.
pub const BUCKET_NOT_FOUND: &str = "BucketNotFound";
/// `BucketNotOwned`.
pub const BUCKET_NOT_OWNED: &str = "BucketNotOwned";
/// `BucketPolicyUnreadable`.
pub const BUCKET_POLICY_UNREADABLE: &str = "BucketPolicyUnreadable";
/// `CloseBudgetExhausted`.
pub const CLOSE_BUDGET_EXHAUSTED: &str = "CloseBudgetExhausted";
/// `CloseQuotaExceeded`.
pub const CLOSE_QUOTA_EXCEEDED: &str = "CloseQuotaExceeded";
/// `Closed`.
pub const CLOSED: &str = "Closed";
/// `Closing`.
pub const CLOSING: &str = "Closing";
/// `CostsRead`.
pub const COSTS_READ: &str = "CostsRead";
/// `CrawlFailed`.
pub const CRAWL_FAILED: &str = "CrawlFailed";
/// `CreateFailed`.
pub const CREATE_FAILED: &str = "CreateFailed";
/// `Created`.
pub const CREATED: &str = "Created";
/// `Creating`.
pub const CREATING: &str = "Creating";
/// `CreationQueued`.
pub const CREATION_QUEUED: &str = "CreationQueued";
/// `CreationRequested`.
pub const CREATION_REQUESTED: &str = "CreationRequested";
/// `CredentialsUnavailable`.
pub const CREDENTIALS_UNAVAILABLE: &str = "CredentialsUnavailable";
/// `Deleted`.
pub const DELETED: &str = "Deleted";
/// `Delivered`.
pub const DELIVERED: &str = "Delivered";
/// `DependencyNotReady`.
pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
/// `DocumentTooLong`.
pub const DOCUMENT_TOO_LONG: &str = "DocumentTooLong";
/// `Ended`.
pub const ENDED: &str = "Ended";
/// `ExportUnhealthy`.
pub const EXPORT_UNHEALTHY: &str = "ExportUnhealthy";
/// `GroupHasForeignItems`.
pub const GROUP_HAS_FOREIGN_ITEMS: &str = "GroupHasForeignItems";
/// `InvalidDocument`.
pub const INVALID_DOCUMENT: &str = "InvalidDocument";
/// `InvalidObject`.
pub const INVALID_OBJECT: &str = "InvalidObject";
/// `InvalidSpec`.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// `InvalidTime`.
pub const INVALID_TIME: &str = "InvalidTime";
/// `InvitationDeclined`.
pub const INVITATION_DECLINED: &str = "InvitationDeclined";
/// `InvitationExpired`.
pub const INVITATION_EXPIRED: &str = "InvitationExpired";
/// `InvitationPending`.
pub const INVITATION_PENDING: &str = "InvitationPending";
/// `InvitationRefused`.
pub const INVITATION_REFUSED: &str = "InvitationRefused";
/// `InvitationSent`.
pub const INVITATION_SENT: &str = "InvitationSent";
/// `LeftInClosedPeriod`.
pub const LEFT_IN_CLOSED_PERIOD: &str = "LeftInClosedPeriod";
/// `ManagementAccountProtected`.
pub const MANAGEMENT_ACCOUNT_PROTECTED: &str = "ManagementAccountProtected";
/// `NoConflict`.
pub const NO_CONFLICT: &str = "NoConflict";
/// `NoOrganization`.
pub const NO_ORGANIZATION: &str = "NoOrganization";
/// `NoSmtpSettings`.
pub const NO_SMTP_SETTINGS: &str = "NoSmtpSettings";
/// `NotDelivered`.
pub const NOT_DELIVERED: &str = "NotDelivered";
/// `NotInOrganization`.
pub const NOT_IN_ORGANIZATION: &str = "NotInOrganization";
/// `NotManagementAccount`.
pub const NOT_MANAGEMENT_ACCOUNT: &str = "NotManagementAccount";
/// `NotificationNotSent`.
pub const NOTIFICATION_NOT_SENT: &str = "NotificationNotSent";
/// `NotificationPending`.
pub const NOTIFICATION_PENDING: &str = "NotificationPending";
/// `OrganizationalUnitNotEmpty`.
pub const ORGANIZATIONAL_UNIT_NOT_EMPTY: &str = "OrganizationalUnitNotEmpty";
/// `OwnedElsewhere`.
pub const OWNED_ELSEWHERE: &str = "OwnedElsewhere";
/// `ParentMismatch`.
pub const PARENT_MISMATCH: &str = "ParentMismatch";
/// `PayerGone`.
pub const PAYER_GONE: &str = "PayerGone";
/// `PayerNotFound`.
pub const PAYER_NOT_FOUND: &str = "PayerNotFound";
/// `PayerNotManagementAccount`.
pub const PAYER_NOT_MANAGEMENT_ACCOUNT: &str = "PayerNotManagementAccount";
/// `Pending`.
pub const PENDING: &str = "Pending";
/// `PeriodClosed`.
pub const PERIOD_CLOSED: &str = "PeriodClosed";
/// `PipelineReady`.
pub const PIPELINE_READY: &str = "PipelineReady";
/// `PlanInUse`.
pub const PLAN_IN_USE: &str = "PlanInUse";
/// `PlannedOnly`.
pub const PLANNED_ONLY: &str = "PlannedOnly";
/// `PolicyInUse`.
pub const POLICY_IN_USE: &str = "PolicyInUse";
/// `PrimaryAccountMismatch`.
pub const PRIMARY_ACCOUNT_MISMATCH: &str = "PrimaryAccountMismatch";
/// `ReconcileSuccess`.
pub const RECONCILE_SUCCESS: &str = "ReconcileSuccess";
/// `Released`.
pub const RELEASED: &str = "Released";
/// `RemoveRefused`.
pub const REMOVE_REFUSED: &str = "RemoveRefused";
/// `Removed`.
pub const REMOVED: &str = "Removed";
/// `Retained`.
pub const RETAINED: &str = "Retained";
/// `SecretForbidden`.
pub const SECRET_FORBIDDEN: &str = "SecretForbidden";
/// `SecretKeyMissing`.
pub const SECRET_KEY_MISSING: &str = "SecretKeyMissing";
/// `SecretNotFound`.
pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
/// `Sent`.
pub const SENT: &str = "Sent";
/// `TooManyCostPages`.
pub const TOO_MANY_COST_PAGES: &str = "TooManyCostPages";
/// `TooManyPolicies`.
pub const TOO_MANY_POLICIES: &str = "TooManyPolicies";
/// `Verified`.
pub const VERIFIED: &str = "Verified";
/// `Waiting`.
pub const WAITING: &str = "Waiting";
/// `Conflict`: AWS changed under this reconcile (e.g. a same-named object appeared); it looks
/// again.
pub const CONFLICT: &str = "Conflict";
/// `AwsChanged`: an object changed in AWS while it was being read; it is read again.
pub const AWS_CHANGED: &str = "AwsChanged";
/// `NotGranted`: a Payer would use the operator's own AWS identity without a PayerGrant.
pub const NOT_GRANTED: &str = "NotGranted";
/// `InvitationCanceled`.
pub const INVITATION_CANCELED: &str = "InvitationCanceled";
/// `NotificationUncertain`: an earlier attempt to send a notice was cut off.
pub const NOTIFICATION_UNCERTAIN: &str = "NotificationUncertain";
/// `Observed`: under `managementPolicy: Observe`, AWS was read and compared with the spec;
/// nothing was written.
pub const OBSERVED: &str = "Observed";
/// `Drifted`: under `managementPolicy: Observe`, AWS differs from the spec (the message lists
/// the differences).
pub const DRIFTED: &str = "Drifted";
/// `NoDrift`: under `managementPolicy: Observe`, AWS matches the spec.
pub const NO_DRIFT: &str = "NoDrift";
/// `Paused`: the `partnerbilling.io/paused: "true"` annotation stops every AWS call.
pub const PAUSED: &str = "Paused";
/// `ReleasedUntouched`: a paused or Observe object was deleted; its finalizer went without any
/// AWS call.
pub const RELEASED_UNTOUCHED: &str = "ReleasedUntouched";
/// `PlanNotAllowed`: a billing group names an AWS-managed pricing plan its type cannot use
/// (`Passthrough` on a STANDARD group).
pub const PLAN_NOT_ALLOWED: &str = "PlanNotAllowed";
/// `QuotaExceeded`: a custom line item would exceed a per-billing-group quota of Billing
/// Conductor (10 filtered items, 5 ITEMIZED items); it is refused before AWS is called.
pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
/// `GroupTypeMismatch`: the billing group found in AWS is of another type or bills another
/// responsibility transfer than the spec says; AWS cannot change either.
pub const GROUP_TYPE_MISMATCH: &str = "GroupTypeMismatch";
/// `TransferNotAccepted`: a TRANSFER_BILLING group waits for its BillingTransfer to be
/// ACCEPTED.
pub const TRANSFER_NOT_ACCEPTED: &str = "TransferNotAccepted";
/// `TransferRequested`: a billing transfer invitation is open; the customer's management
/// account has not answered.
pub const TRANSFER_REQUESTED: &str = "TransferRequested";
/// `TransferAccepted`: the billing transfer is accepted (in effect from its start).
pub const TRANSFER_ACCEPTED: &str = "TransferAccepted";
/// `TransferDeclined`: the customer declined the billing transfer invitation.
pub const TRANSFER_DECLINED: &str = "TransferDeclined";
/// `TransferExpired`: the billing transfer invitation was not accepted in time.
pub const TRANSFER_EXPIRED: &str = "TransferExpired";
/// `TransferCanceled`: the billing transfer invitation was canceled.
pub const TRANSFER_CANCELED: &str = "TransferCanceled";
/// `TransferWithdrawn`: the billing transfer was terminated (by either side).
pub const TRANSFER_WITHDRAWN: &str = "TransferWithdrawn";
/// `TransferInvitationSent`: an InviteOrganizationToTransferResponsibility was sent.
pub const TRANSFER_INVITATION_SENT: &str = "TransferInvitationSent";
/// `TransferRefused`: AWS refused the billing transfer invitation or termination (a
/// transfer-specific constraint: quota, prerequisite, existing transfer, ...).
pub const TRANSFER_REFUSED: &str = "TransferRefused";
/// `InvalidTransferDate`: a start or end that AWS does not accept (not on a month boundary,
/// too soon, too late).
pub const INVALID_TRANSFER_DATE: &str = "InvalidTransferDate";
/// `TransferMismatch`: the transfer found in AWS is for another customer or start than the
/// spec names, and AWS cannot change either.
pub const TRANSFER_MISMATCH: &str = "TransferMismatch";
/// `Terminated`: TerminateResponsibilityTransfer was called on deletion.
pub const TERMINATED: &str = "Terminated";
/// `CostByServiceUnavailable` (warning Event): a billing group's cost by service could not be
/// read; the last figures are kept and the read is tried again later.
pub const COST_BY_SERVICE_UNAVAILABLE: &str = "CostByServiceUnavailable";
/// `TransferNotListed`: a billing transfer invitation was sent for this spec, but AWS does not
/// show its transfer yet (reads are eventually consistent); no second invitation is sent.
pub const TRANSFER_NOT_LISTED: &str = "TransferNotListed";
/// `TransferEnded`: the billing transfer a TRANSFER_BILLING group names has ended or was
/// never accepted, and cannot become active again without a new invitation.
pub const TRANSFER_ENDED: &str = "TransferEnded";
/// `AwsTimeout`: an AWS call timed out (tried again).
pub const AWS_TIMEOUT: &str = "AwsTimeout";
/// `AwsUnreachable`: an AWS call could not be sent (tried again).
pub const AWS_UNREACHABLE: &str = "AwsUnreachable";
/// `AwsBadResponse`: an AWS answer could not be read, or lacked what it must hold (tried
/// again).
pub const AWS_BAD_RESPONSE: &str = "AwsBadResponse";
/// `AwsError`: an AWS call failed in a way the SDK does not classify (tried again).
pub const AWS_ERROR: &str = "AwsError";
/// `AwsThrottled`: AWS throttled a call (tried again).
pub const AWS_THROTTLED: &str = "AwsThrottled";
/// `AwsServiceError`: an AWS call failed on the AWS side (5xx; tried again).
pub const AWS_SERVICE_ERROR: &str = "AwsServiceError";
/// `AwsRejected`: AWS refused a call with an error this operator has no reason of its own for.
pub const AWS_REJECTED: &str = "AwsRejected";
/// `CredentialsTimeout`: getting the payer's AWS credentials timed out (tried again).
pub const CREDENTIALS_TIMEOUT: &str = "CredentialsTimeout";
/// `KubernetesApiError`: a call to the Kubernetes API failed.
pub const KUBERNETES_API_ERROR: &str = "KubernetesApiError";
/// `FinalizerError`: adding or removing the finalizer failed.
pub const FINALIZER_ERROR: &str = "FinalizerError";
/// `FinalizerConflict`: the object changed while its finalizer was being updated (tried
/// again).
pub const FINALIZER_CONFLICT: &str = "FinalizerConflict";
/// `SmtpFailed`: the mail server could not be reached or refused a notification (tried again).
pub const SMTP_FAILED: &str = "SmtpFailed";
/// `GrantsNotLoaded`: the operator has not listed PayerGrants and Namespaces yet (tried again).
pub const GRANTS_NOT_LOADED: &str = "GrantsNotLoaded";
/// `GrantApplied` (Event on a PayerGrant): the grant covers its namespaces now.
pub const GRANT_APPLIED: &str = "GrantApplied";
/// `GrantDeleted` (Event on a PayerGrant): the grant was deleted.
pub const GRANT_DELETED: &str = "GrantDeleted";
/// `InvalidExternalId`: the external id in the named Secret is not a valid one.
pub const INVALID_EXTERNAL_ID: &str = "InvalidExternalId";
