//! `GET /api/v1/pipelines` and `POST /api/v1/pipelines/{name}/executions` (a manual start,
//! behind the API token).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::server::error::ApiError;
use crate::server::{AppState, PipelineInfo, StartRefused};

/// The pipelines served.
pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<PipelineInfo>> {
    Json(state.launcher.pipelines())
}

/// Queues an execution of the head of the pipeline's branch; 202 once queued.
pub(crate) async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    match state.launcher.start(&name) {
        Ok(started) => {
            tracing::info!(
                pipeline = name,
                revision = started.revision,
                "queued a manual start"
            );
            Ok((StatusCode::ACCEPTED, Json(json!({ "started": [started] }))))
        }
        Err(StartRefused::UnknownPipeline) => Err(ApiError::NotFound {
            what: "pipeline",
            id: name,
        }),
        Err(StartRefused::QueueFull) => Err(ApiError::QueueFull { pipeline: name }),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::server::PushReply;
    use crate::server::testing::{FakeLauncher, TOKEN, send, send_json, state};

    fn start(pipeline: &str, token: Option<&str>) -> Request<Body> {
        let mut request = Request::post(format!("/api/v1/pipelines/{pipeline}/executions"));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn starting_needs_the_token() {
        let launcher = FakeLauncher::new(PushReply::Duplicate);
        let (_dir, state) = state(launcher.clone()).await;
        for token in [None, Some("wrong"), Some("")] {
            let (status, text) = send(&state, start("app", token)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {text}");
        }
        assert!(launcher.starts.lock().unwrap().is_empty());
        let (status, json) = send_json(&state, start("app", Some(TOKEN))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{json}");
        assert_eq!(json["started"][0]["revision"], "refs/heads/main");
        let (status, _) = send(&state, start("nope", Some(TOKEN))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(launcher.starts.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn without_a_configured_token_starting_is_refused() {
        let launcher = FakeLauncher::new(PushReply::Duplicate);
        let (_dir, state) = state(launcher.clone()).await;
        let state = state.with_api_token(None);
        let (status, json) = send_json(&state, start("app", Some(TOKEN))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(json["error"].as_str().unwrap().contains("no API token"));
        assert!(launcher.starts.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn pipelines_are_listed_without_a_token() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let request = Request::get("/api/v1/pipelines")
            .body(Body::empty())
            .unwrap();
        let (status, json) = send_json(&state, request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json[0]["name"], "app");
    }
}
