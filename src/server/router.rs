//! The routes, and [`launch`], which serves them until shutdown.

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::auth::require_token;
use super::dashboard;
use super::handlers::{control, executions, health, hooks, logs, pipelines};

/// Every route over `state`.
///
/// | route | auth |
/// |---|---|
/// | `POST /hooks/github` | `X-Hub-Signature-256` |
/// | `GET /healthz`, `GET /metrics` | none |
/// | `GET /api/v1/pipelines` | none |
/// | `POST /api/v1/pipelines/{name}/executions` | `Bearer` token |
/// | `GET /api/v1/executions[?pipeline=&limit=]` | none |
/// | `GET /api/v1/executions/{execution_id}` | none |
/// | `GET /api/v1/executions/{execution_id}/logs[?action=]` | none |
/// | `GET /api/v1/executions/{execution_id}/logs/stream[?action=]` (SSE) | none |
/// | `POST /api/v1/executions/{execution_id}/cancel` | `Bearer` token |
/// | `POST /api/v1/executions/{execution_id}/approvals/{stage}/{action}` | `Bearer` token |
/// | `POST /api/v1/executions/{execution_id}/stages/{stage}/retry[?mode=]` | `Bearer` token |
/// | `GET /`, `GET /executions/{execution_id}`, `GET /assets/{file}` (dashboard) | none |
pub fn router(state: AppState) -> Router {
    let mutating = Router::new()
        .route(
            "/api/v1/pipelines/{name}/executions",
            post(pipelines::start),
        )
        .route(
            "/api/v1/executions/{execution_id}/cancel",
            post(control::cancel),
        )
        .route(
            "/api/v1/executions/{execution_id}/approvals/{stage}/{action}",
            post(control::approve),
        )
        .route(
            "/api/v1/executions/{execution_id}/stages/{stage}/retry",
            post(control::retry),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/hooks/github", post(hooks::github))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/pipelines", get(pipelines::list))
        .route("/api/v1/executions", get(executions::list))
        .route("/api/v1/executions/{execution_id}", get(executions::get))
        .route("/api/v1/executions/{execution_id}/logs", get(logs::logs))
        .route(
            "/api/v1/executions/{execution_id}/logs/stream",
            get(logs::stream),
        )
        .merge(dashboard::routes())
        .merge(mutating)
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` is cancelled, then stops accepting and
/// lets requests in flight finish.
pub async fn launch(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving HTTP");
    }
    let state = AppState {
        shutdown: shutdown.clone(),
        ..state
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
