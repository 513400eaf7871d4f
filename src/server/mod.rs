//! The HTTP front door of `runner serve`: GitHub webhooks, the JSON API with its live log
//! stream, the dashboard, `/healthz` and `/metrics` (axum). [`router`] builds the routes over an [`AppState`]; [`launch`] serves them
//! on an injected listener until the shutdown token fires.
//!
//! Layer L3. It reads executions from `state` and checks webhooks with `source::github`, but it
//! neither decides what a push starts nor runs anything: a [`Launcher`] handed in by `cli` does
//! both (it may use `daemon`, which `server` must not name, STYLE B2), so this module stays a
//! thin, testable translation between HTTP and those two ports.

mod auth;
mod dashboard;
mod error;
mod handlers;
mod launcher;
mod logs;
mod metrics;
mod router;
#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use self::auth::Secret;
pub use self::error::ApiError;
pub use self::launcher::{
    Launcher, PipelineInfo, PushReply, RetryRefused, RetryRequest, RetryStarted, Skipped,
    StageInfo, StartRefused, Started,
};
pub use self::logs::{LogFollower, LogLine, PartialLine};
pub use self::metrics::{DeliveryResult, Metrics};
pub use self::router::{launch, router};
use crate::source::github::MAX_BODY_BYTES;
use crate::state::Store;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    launcher: Arc<dyn Launcher>,
    webhook_secret: Option<Arc<Secret>>,
    api_token: Option<Arc<Secret>>,
    metrics: Arc<Metrics>,
    body_limit: usize,
    /// Where cancel and approval requests go (`None`: those endpoints answer 503).
    data_dir: Option<std::path::PathBuf>,
    /// Ends the log streams when the server shuts down (set by [`launch`]), so that a graceful
    /// shutdown does not wait for them.
    shutdown: CancellationToken,
}

impl AppState {
    /// State over `store` whose triggers go to `launcher`; without a webhook secret every
    /// delivery is refused, and without an API token every mutating endpoint is.
    pub fn new(store: Store, launcher: Arc<dyn Launcher>) -> Self {
        Self {
            store,
            launcher,
            webhook_secret: None,
            api_token: None,
            metrics: Arc::new(Metrics::default()),
            body_limit: MAX_BODY_BYTES,
            data_dir: None,
            shutdown: CancellationToken::new(),
        }
    }

    /// The secret GitHub signs deliveries with (`X-Hub-Signature-256`).
    #[must_use]
    pub fn with_webhook_secret(mut self, secret: Option<Secret>) -> Self {
        self.webhook_secret = secret.map(Arc::new);
        self
    }

    /// The `Bearer` token mutating API calls must carry.
    #[must_use]
    pub fn with_api_token(mut self, token: Option<Secret>) -> Self {
        self.api_token = token.map(Arc::new);
        self
    }

    /// The largest webhook body accepted (default and upper bound: GitHub's 25 MB cap).
    #[must_use]
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit.min(MAX_BODY_BYTES);
        self
    }

    /// The data directory whose running executions take cancel and approval requests.
    #[must_use]
    pub fn with_data_dir(mut self, data_dir: std::path::PathBuf) -> Self {
        self.data_dir = Some(data_dir);
        self
    }

    /// The counters `/metrics` reports.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AppState")
            .field("store", &self.store)
            .field("webhook_secret", &self.webhook_secret)
            .field("api_token", &self.api_token)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}
