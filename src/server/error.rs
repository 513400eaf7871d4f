//! [`ApiError`]: every way a request fails, and the response each becomes. User errors are 4xx
//! with their message; internal ones are logged here and answered with an opaque 500.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::source::github::WebhookError;
use crate::state::StateError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The webhook delivery was refused (signature, size, payload).
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The request body could not be read.
    #[error("read request body")]
    ReadBody(#[source] axum::Error),
    /// A webhook delivery without `X-GitHub-Event`.
    #[error("read webhook: no X-GitHub-Event header")]
    MissingEvent,
    /// Webhooks are off: no secret is configured.
    #[error("accept webhook: no webhook secret is configured")]
    WebhooksDisabled,
    /// No pipeline is served for the repository a push names.
    #[error("find a pipeline for repository {repository}")]
    UnknownRepository {
        /// `owner/name` from the payload.
        repository: String,
    },
    /// A missing or wrong API token.
    #[error("authorize: {reason}")]
    Unauthorized {
        /// What was wrong.
        reason: &'static str,
    },
    /// The thing asked for does not exist.
    #[error("find {what} `{id}`")]
    NotFound {
        /// `execution`, `pipeline`, `action`.
        what: &'static str,
        /// Its id or name.
        id: String,
    },
    /// A query parameter makes no sense.
    #[error("read query: {reason}")]
    BadQuery {
        /// What was wrong.
        reason: String,
    },
    /// A request body that is not what the route takes.
    #[error("read the body: {reason}")]
    BadBody {
        /// What was wrong.
        reason: String,
    },
    /// The start queue is full; try again later.
    #[error("queue the execution: the queue of pipeline {pipeline} is full")]
    QueueFull {
        /// The pipeline.
        pipeline: String,
    },
    /// The execution already ended; there is nothing to cancel or approve.
    #[error("execution {id} has already ended")]
    Ended {
        /// The execution.
        id: String,
    },
    /// This server takes no control requests (no data directory).
    #[error("control requests are not enabled on this server")]
    ControlDisabled,
    /// The retry rules refuse a stage retry (P37).
    #[error("retry the stage: {reason}")]
    RetryConflict {
        /// Why.
        reason: String,
    },
    /// Checking or starting a stage retry failed.
    #[error("retry the stage")]
    RetryFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The state database failed.
    #[error("read the state database")]
    State(#[source] StateError),
    /// A file (a build log) could not be read.
    #[error("read {what}")]
    Io {
        /// What was being read.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl From<StateError> for ApiError {
    fn from(error: StateError) -> Self {
        match error {
            StateError::NotFound { what, id } => ApiError::NotFound { what, id },
            other => ApiError::State(other),
        }
    }
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Webhook(error) => {
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::MissingEvent
            | ApiError::ReadBody(_)
            | ApiError::BadQuery { .. }
            | ApiError::BadBody { .. } => StatusCode::BAD_REQUEST,
            ApiError::Ended { .. } | ApiError::RetryConflict { .. } => StatusCode::CONFLICT,
            ApiError::WebhooksDisabled | ApiError::QueueFull { .. } | ApiError::ControlDisabled => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::UnknownRepository { .. } | ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::State(_) | ApiError::Io { .. } | ApiError::RetryFailed(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %Chain(&self), "request failed");
            "internal error".to_owned()
        } else {
            Chain(&self).to_string()
        };
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED && !matches!(self, ApiError::Webhook(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"runner\""),
            );
        }
        response
    }
}

/// An error and its causes, `: `-separated, as `{:#}` prints an anyhow chain.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(formatter, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_errors_keep_their_message_and_internal_ones_are_opaque() {
        let error = ApiError::from(StateError::NotFound {
            what: "execution",
            id: "x".into(),
        });
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
        assert_eq!(error.to_string(), "find execution `x`");
        let error = ApiError::Io {
            what: "log",
            source: std::io::Error::other("disk on fire"),
        };
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(Chain(&error).to_string(), "read log: disk on fire");
        assert_eq!(
            ApiError::Webhook(WebhookError::BadSignature).status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
