//! The dashboard: server-rendered HTML at `/` (the pipelines and their latest executions) and
//! `/executions/{execution_id}` (stages, actions, live logs and a retry button), refreshed by
//! a little vanilla JavaScript that polls the JSON API and follows the log stream. No build
//! step: the assets are embedded with `include_str!`.
//!
//! Pages never contain the API token: the browser keeps it in `sessionStorage` (from the token
//! field or `?token=`) and sends it only with the mutating API calls. Every page answers with a
//! strict `Content-Security-Policy` (no inline script) and `Referrer-Policy: no-referrer`, so a
//! `?token=` in the first URL is not passed on to the assets.

mod pages;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;
use crate::state::{ExecutionId, StateError};

/// How many executions the index lists.
const RECENT: u32 = 20;

/// The embedded assets: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("assets/dashboard.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "index.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/index.js"),
    ),
    (
        "execution.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/execution.js"),
    ),
];

/// What every page and asset answers with.
const SECURITY_HEADERS: &[(HeaderName, &str)] = &[
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CACHE_CONTROL, "no-store"),
];

/// The dashboard's routes (no authentication: they only read).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/executions/{execution_id}", get(execution))
        .route("/assets/{file}", get(asset))
}

fn with_headers(mut response: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        response
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

/// `/`: every served pipeline with its latest execution, and the newest executions.
async fn index(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pipelines = state.launcher.pipelines();
    let mut latest = Vec::new();
    for pipeline in &pipelines {
        let execution = state
            .store
            .list_executions(Some(&pipeline.name), 1)
            .await?
            .into_iter()
            .next();
        latest.push(execution);
    }
    let recent = state.store.list_executions(None, RECENT).await?;
    let page = pages::index(&pipelines, &latest, &recent);
    Ok(with_headers(Html(page).into_response()))
}

/// `/executions/{execution_id}`: one execution; a 404 page for an unknown id.
async fn execution(
    State(state): State<AppState>,
    Path(execution_id): Path<String>,
) -> Result<Response, ApiError> {
    let detail = match state
        .store
        .get_execution(&ExecutionId::from(execution_id.as_str()))
        .await
    {
        Ok(detail) => detail,
        Err(StateError::NotFound { .. }) => {
            let page = pages::not_found(&execution_id);
            return Ok(with_headers(
                (StatusCode::NOT_FOUND, Html(page)).into_response(),
            ));
        }
        Err(error) => return Err(error.into()),
    };
    let structure = state
        .launcher
        .pipelines()
        .into_iter()
        .find(|pipeline| pipeline.name == detail.execution.pipeline)
        .map(|pipeline| pipeline.stages)
        .unwrap_or_default();
    let page = pages::execution(&detail, &structure);
    Ok(with_headers(Html(page).into_response()))
}

/// `/assets/{file}`: an embedded stylesheet or script.
async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, content_type, content)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return with_headers(StatusCode::NOT_FOUND.into_response());
    };
    with_headers(([(header::CONTENT_TYPE, *content_type)], *content).into_response())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use crate::server::PushReply;
    use crate::server::handlers::executions::tests::record_execution;
    use crate::server::testing::{FakeLauncher, TOKEN, send, state};

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn the_index_lists_pipelines_with_their_latest_execution() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let id = record_execution(&state, "app").await;
        let (status, page) = send(&state, get("/")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(r#"<tr data-pipeline="app">"#), "{page}");
        assert!(
            page.contains(&format!(r#"<a href="/executions/{id}">"#)),
            "{page}"
        );
        assert!(page.contains(r#"data-status="InProgress""#), "{page}");
        assert!(!page.contains(TOKEN));
    }

    #[tokio::test]
    async fn an_execution_page_shows_every_stage_and_never_the_token() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let id = record_execution(&state, "app").await;
        let uri = format!("/executions/{id}?token={TOKEN}");
        let response = crate::server::router(state.clone())
            .oneshot(get(&uri))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(!page.contains(TOKEN), "{page}");
        for stage in ["source", "build", "deploy"] {
            assert!(
                page.contains(&format!(r#"data-stage="{stage}""#)),
                "{stage}: {page}"
            );
        }
        assert!(page.contains(r#"data-action="compile" data-status="InProgress""#));
        assert!(page.contains(r#"data-action="ship" data-status="Pending""#));
        assert!(page.contains(
            r#"<span id="status" class="status" data-status="InProgress">InProgress</span>"#
        ));
        let (status, _) = send(&state, get("/executions/nope")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn assets_are_served_and_unknown_ones_are_404() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let (status, script) = send(&state, get("/assets/execution.js")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(script.contains("EventSource"));
        let (status, _) = send(&state, get("/assets/../state.db")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = send(&state, get("/assets/nope.js")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn text_from_the_records_is_escaped() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let id = record_execution(&state, "<img src=x onerror=alert(1)>").await;
        for uri in ["/".to_owned(), format!("/executions/{id}")] {
            let (status, page) = send(&state, get(&uri)).await;
            assert_eq!(status, StatusCode::OK);
            assert!(!page.contains("<img"), "{uri}: {page}");
            assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"), "{uri}");
        }
        let (_, page) = send(&state, get("/executions/%3Cb%3E")).await;
        assert!(page.contains("<code>&lt;b&gt;</code>"), "{page}");
    }
}
