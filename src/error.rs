//! Errors with a class: terminal ones wait for the user (condition, slow re-check), retryable
//! ones are retried with per-object exponential backoff.

use crate::reconcile::reasons::{
    AWS_REJECTED, FINALIZER_CONFLICT, FINALIZER_ERROR, KUBERNETES_API_ERROR,
};
use std::fmt;

/// Whether an error can go away by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad spec, missing Secret, wrong account, AWS validation error: needs a change by a person.
    Terminal,
    /// Throttling, 5xx, network, Kubernetes API hiccups: retry with backoff.
    Retryable,
}

/// An error met while reconciling an object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object cannot reach its desired state until someone changes something.
    #[error("{message}")]
    Terminal {
        reason: &'static str,
        message: String,
    },
    /// A transient failure; the same request may succeed later.
    #[error("{message}")]
    Retryable {
        reason: &'static str,
        message: String,
    },
    /// AWS refused the request with an error code that needs a person (a terminal error whose
    /// code and `Reason` reconcilers can inspect).
    #[error("{message}")]
    AwsRejected {
        code: String,
        aws_reason: Option<String>,
        message: String,
    },
    /// Not an error: the object waits for something (an account creation, a dependency) and
    /// is looked at again after `retry_after`.
    #[error("{message}")]
    Waiting {
        reason: &'static str,
        message: String,
        retry_after: std::time::Duration,
    },
    /// The Kubernetes API failed.
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    /// A finalizer step failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    pub fn terminal(reason: &'static str, message: impl fmt::Display) -> Self {
        Error::Terminal {
            reason,
            message: message.to_string(),
        }
    }
    pub fn retryable(reason: &'static str, message: impl fmt::Display) -> Self {
        Error::Retryable {
            reason,
            message: message.to_string(),
        }
    }

    pub fn waiting(
        reason: &'static str,
        message: impl fmt::Display,
        retry_after: std::time::Duration,
    ) -> Self {
        Error::Waiting {
            reason,
            message: message.to_string(),
            retry_after,
        }
    }

    /// The AWS error code, when AWS refused the request.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::AwsRejected { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The `Reason` member of an AWS error (e.g. of ConstraintViolationException).
    pub fn aws_reason(&self) -> Option<&str> {
        match self {
            Error::AwsRejected { aws_reason, .. } => aws_reason.as_deref(),
            _ => None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Terminal { .. } | Error::AwsRejected { .. } => ErrorClass::Terminal,
            Error::Kube(kube::Error::Api(status)) if status.code == 422 || status.code == 400 => {
                ErrorClass::Terminal
            }
            _ => ErrorClass::Retryable,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.class() == ErrorClass::Terminal
    }

    /// One CamelCase word for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Terminal { reason, .. }
            | Error::Retryable { reason, .. }
            | Error::Waiting { reason, .. } => reason,
            Error::AwsRejected { .. } => AWS_REJECTED,
            Error::Kube(_) => KUBERNETES_API_ERROR,
            Error::Finalizer(_) => FINALIZER_ERROR,
        }
    }

    /// Label for the failures metric.
    pub fn metric_label(&self) -> &'static str {
        match self.class() {
            ErrorClass::Terminal => "terminal",
            ErrorClass::Retryable => "retryable",
        }
    }
}

impl<E> From<kube::runtime::finalizer::Error<E>> for Error
where
    E: std::error::Error + Into<Error> + 'static,
{
    fn from(err: kube::runtime::finalizer::Error<E>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match err {
            F::ApplyFailed(e) | F::CleanupFailed(e) => e.into(),
            // The finalizer is added or removed with a JSON patch that first tests the list
            // the watch cache showed. When the cache lagged behind the previous reconcile's
            // own write, the test fails and the server answers 422: nothing is wrong with the
            // object, the next try sees the fresh list (found by a real API server; a
            // terminal class made such an object wait for the 15-minute re-check).
            F::AddFinalizer(kube::Error::Api(s)) | F::RemoveFinalizer(kube::Error::Api(s))
                if s.code == 422 =>
            {
                Error::retryable(
                    FINALIZER_CONFLICT,
                    format!(
                        "the object changed while its finalizer was being updated: {}",
                        s.message
                    ),
                )
            }
            F::AddFinalizer(e) | F::RemoveFinalizer(e) => Error::Kube(e),
            F::UnnamedObject => Error::Finalizer("object has no name".into()),
            F::InvalidFinalizer => Error::Finalizer("invalid finalizer name".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(
                "the server rejected our request due to an error in our request",
                "Invalid",
            )
            .with_code(code)
            .boxed(),
        )
    }

    #[test]
    fn a_finalizer_patch_on_a_stale_object_is_retried_soon() {
        let stale: Error =
            kube::runtime::finalizer::Error::<Error>::AddFinalizer(status(422)).into();
        assert_eq!(stale.class(), ErrorClass::Retryable);
        assert_eq!(stale.reason(), "FinalizerConflict");
        // Any other 422 (a status write the schema refuses) still needs a person.
        assert_eq!(Error::Kube(status(422)).class(), ErrorClass::Terminal);
    }
}
