//! Turning AWS SDK errors into terminal or retryable [`Error`]s.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;
use crate::reconcile::reasons::{
    ACCESS_DENIED, AWS_BAD_RESPONSE, AWS_ERROR, AWS_SERVICE_ERROR, AWS_THROTTLED, AWS_TIMEOUT,
    AWS_UNREACHABLE, CREDENTIALS_UNAVAILABLE,
};

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
];

const AUTH: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "InvalidAccessKeyId",
];

/// Classify an SDK error from `service:operation`.
pub fn classify<E>(service: &str, operation: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let call = format!("{service}:{operation}");
    match &err {
        SdkError::TimeoutError(_) => Error::retryable(AWS_TIMEOUT, format!("{call} timed out")),
        SdkError::DispatchFailure(_) => Error::retryable(
            AWS_UNREACHABLE,
            format!("{call} could not be sent: {}", DisplayErrorContext(&err)),
        ),
        SdkError::ResponseError(_) => Error::retryable(
            AWS_BAD_RESPONSE,
            format!(
                "{call} returned a response that could not be read: {}",
                DisplayErrorContext(&err)
            ),
        ),
        SdkError::ConstructionFailure(_) => Error::terminal(
            CREDENTIALS_UNAVAILABLE,
            format!(
                "{call} could not be prepared (usually: no usable credentials): {}",
                DisplayErrorContext(&err)
            ),
        ),
        SdkError::ServiceError(service_err) => {
            let code = service_err.err().code().unwrap_or("Unknown").to_string();
            let message = service_err.err().message().unwrap_or("").to_string();
            let status = Some(service_err.raw().status().as_u16());
            let aws_reason = service_err
                .raw()
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v.get("Reason").and_then(|r| r.as_str()).map(str::to_string));
            classify_code_with_reason(&call, &code, &message, status, aws_reason)
        }
        _ => Error::retryable(
            AWS_ERROR,
            format!("{call} failed: {}", DisplayErrorContext(&err)),
        ),
    }
}

/// One AWS operation, for turning its SDK errors into [`Error`]s at the call site.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    service: &'static str,
    operation: &'static str,
}

/// The operation `service:operation` (the IAM test reads these names from the source).
pub fn on(service: &'static str, operation: &'static str) -> Op {
    Op { service, operation }
}

impl Op {
    /// A `map_err` adapter.
    pub fn err<E>(self) -> impl FnOnce(SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| classify(self.service, self.operation, e)
    }

    /// The output, or `None` when AWS answers with one of the `absent` error codes (not
    /// found, already there): the outcomes a reconciler treats as a state, not a failure.
    pub fn absent<T, E>(
        self,
        result: Result<T, SdkError<E, HttpResponse>>,
        absent: &[&str],
    ) -> Result<Option<T>, Error>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match result {
            Ok(out) => Ok(Some(out)),
            Err(e) if error_code(&e).is_some_and(|c| absent.contains(&c.as_str())) => Ok(None),
            Err(e) => Err(classify(self.service, self.operation, e)),
        }
    }
}

/// The AWS error code of a service error (the HTTP status when the body has none, as for S3
/// HEAD requests).
pub fn error_code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<String> {
    match e {
        SdkError::ServiceError(s) => s
            .err()
            .code()
            .map(str::to_string)
            .or_else(|| Some(s.raw().status().as_u16().to_string())),
        _ => None,
    }
}

/// Classify by error code and HTTP status (exposed for tests and for services that hand back
/// codes outside the SDK error types).
pub fn classify_code(call: &str, code: &str, message: &str, status: Option<u16>) -> Error {
    classify_code_with_reason(call, code, message, status, None)
}

/// As [`classify_code`], keeping the `Reason` member AWS sent with the error.
pub fn classify_code_with_reason(
    call: &str,
    code: &str,
    message: &str,
    status: Option<u16>,
    aws_reason: Option<String>,
) -> Error {
    let detail = if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    };
    if THROTTLING.contains(&code) || status == Some(429) {
        return Error::retryable(AWS_THROTTLED, format!("{call} was throttled ({detail})"));
    }
    if status.is_some_and(|s| s >= 500) {
        return Error::retryable(
            AWS_SERVICE_ERROR,
            format!("{call} failed on the AWS side ({detail})"),
        );
    }
    if AUTH.contains(&code) || status == Some(403) {
        return Error::terminal(
            ACCESS_DENIED,
            format!(
                "{call} was denied ({detail}); check the credentials and that the identity's IAM policy allows {call}"
            ),
        );
    }
    let detail = match &aws_reason {
        Some(r) => format!("{detail} [{r}]"),
        None => detail,
    };
    Error::AwsRejected {
        code: code.to_string(),
        aws_reason,
        message: format!("{call} was rejected ({detail})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(!classify_code("o:L", "TooManyRequestsException", "", Some(400)).is_terminal());
        assert!(!classify_code("o:L", "Whatever", "", Some(503)).is_terminal());
        assert!(!classify_code("o:L", "Whatever", "", Some(429)).is_terminal());
        let denied = classify_code("o:L", "AccessDeniedException", "no", Some(400));
        assert!(denied.is_terminal());
        assert_eq!(denied.reason(), "AccessDenied");
        assert!(denied.to_string().contains("IAM policy allows o:L"));
        let invalid = classify_code("o:C", "ConstraintViolationException", "bad", Some(400));
        assert_eq!(invalid.reason(), "AwsRejected");
        assert!(invalid.is_terminal());
    }
}
