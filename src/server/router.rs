//! The routes, and [`launch`], which serves them until shutdown.
//!
//! Every route but the dashboard's is a row of [`API_ROUTES`], from which [`router`] is built;
//! `docs/openapi.yaml` must describe exactly those rows (the tests of `handlers::openapi`
//! compare them).

use axum::Router;
use axum::http::Method;
use axum::middleware;
use axum::routing::{MethodFilter, MethodRouter, on};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::auth::require_token;
use super::dashboard;
use super::handlers::{control, executions, health, hooks, logs, openapi, pipelines};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone.
    Open,
    /// Callers with `Authorization: Bearer <the API token>` (`auth::require_token`).
    Token,
    /// GitHub, by the `X-Hub-Signature-256` HMAC its handler checks.
    Signature,
}

/// One route of the HTTP API.
pub(crate) struct ApiRoute {
    /// The method it answers.
    pub(crate) method: Method,
    /// The path, in axum's `{param}` syntax, which is also the one of `OpenAPI` paths.
    pub(crate) path: &'static str,
    /// Who may call it.
    pub(crate) access: Access,
    /// The handler, for the method's filter.
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

impl ApiRoute {
    const fn new(
        method: Method,
        path: &'static str,
        access: Access,
        handler: fn(MethodFilter) -> MethodRouter<AppState>,
    ) -> Self {
        Self {
            method,
            path,
            access,
            handler,
        }
    }

    fn method_router(&self) -> MethodRouter<AppState> {
        let filter = MethodFilter::try_from(self.method.clone())
            .expect("the routes use standard methods, which all have a filter");
        (self.handler)(filter)
    }
}

/// Every route but the dashboard's. When you add, change or remove one, update
/// `docs/openapi.yaml` and the table on [`router`] too.
pub(crate) const API_ROUTES: &[ApiRoute] = {
    use Access::{Open, Signature, Token};
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    &[
        ApiRoute::new(POST, "/hooks/github", Signature, |m| on(m, hooks::github)),
        ApiRoute::new(GET, "/healthz", Open, |m| on(m, health::healthz)),
        ApiRoute::new(GET, "/metrics", Open, |m| on(m, health::metrics)),
        ApiRoute::new(GET, "/api/v1/openapi.yaml", Open, |m| {
            on(m, openapi::document)
        }),
        ApiRoute::new(GET, "/api/v1/pipelines", Open, |m| on(m, pipelines::list)),
        ApiRoute::new(POST, "/api/v1/pipelines/{name}/executions", Token, |m| {
            on(m, pipelines::start)
        }),
        ApiRoute::new(GET, "/api/v1/executions", Open, |m| on(m, executions::list)),
        ApiRoute::new(GET, "/api/v1/executions/{execution_id}", Open, |m| {
            on(m, executions::get)
        }),
        ApiRoute::new(GET, "/api/v1/executions/{execution_id}/logs", Open, |m| {
            on(m, logs::logs)
        }),
        ApiRoute::new(
            GET,
            "/api/v1/executions/{execution_id}/logs/stream",
            Open,
            |m| on(m, logs::stream),
        ),
        ApiRoute::new(
            POST,
            "/api/v1/executions/{execution_id}/cancel",
            Token,
            |m| on(m, control::cancel),
        ),
        ApiRoute::new(
            POST,
            "/api/v1/executions/{execution_id}/approvals/{stage}/{action}",
            Token,
            |m| on(m, control::approve),
        ),
        ApiRoute::new(
            POST,
            "/api/v1/executions/{execution_id}/stages/{stage}/retry",
            Token,
            |m| on(m, control::retry),
        ),
    ]
};

/// Every route over `state`: `API_ROUTES` and the dashboard's.
///
/// | route | auth |
/// |---|---|
/// | `POST /hooks/github` | `X-Hub-Signature-256` |
/// | `GET /healthz`, `GET /metrics` | none |
/// | `GET /api/v1/openapi.yaml` (this API's OpenAPI document) | none |
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
    let mut open = Router::new();
    let mut guarded = Router::new();
    for route in API_ROUTES {
        match route.access {
            Access::Token => guarded = guarded.route(route.path, route.method_router()),
            Access::Open | Access::Signature => {
                open = open.route(route.path, route.method_router());
            }
        }
    }
    let guarded = guarded.route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    open.merge(dashboard::routes())
        .merge(guarded)
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
