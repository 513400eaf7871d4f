//! Secrets and the `Bearer` token check on mutating endpoints. Webhooks authenticate by their
//! signature instead (`handlers::hooks`).

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::AppState;
use super::error::ApiError;

/// A secret value (webhook secret, API token): redacted in `Debug`, wiped on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A secret from text, without surrounding whitespace (files end in a newline); `None`
    /// when nothing is left, since an empty secret would accept anyone.
    pub fn from_text(text: &str) -> Option<Self> {
        let trimmed = text.trim();
        (!trimmed.is_empty()).then(|| Self(Zeroizing::new(trimmed.as_bytes().to_vec())))
    }

    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether `candidate` is the secret, in time that does not depend on where they differ:
    /// both are hashed first, so even the length is not compared directly.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let expected = Sha256::digest(self.expose());
        let given = Sha256::digest(candidate);
        expected
            .iter()
            .zip(given.iter())
            .fold(0_u8, |difference, (a, b)| difference | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(***)")
    }
}

/// Middleware: refuses a request without `Authorization: Bearer <the API token>`, and every
/// request when no token is configured.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = &state.api_token else {
        return Err(ApiError::Unauthorized {
            reason: "no API token is configured; set RUNNER_API_TOKEN or --api-token-file",
        });
    };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(ApiError::Unauthorized {
            reason: "missing `Authorization: Bearer <token>`",
        }),
        Some(given) if token.matches(given.as_bytes()) => Ok(next.run(request).await),
        Some(_) => Err(ApiError::Unauthorized {
            reason: "the bearer token is wrong",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_trimmed_redacted_and_compared_whole() {
        let secret = Secret::from_text("  s3cret\n").unwrap();
        assert_eq!(secret.expose(), b"s3cret");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(secret.matches(b"s3cret"));
        assert!(!secret.matches(b"s3cre"));
        assert!(!secret.matches(b"s3crets"));
        assert!(Secret::from_text(" \n").is_none());
    }
}
