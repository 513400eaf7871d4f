//! `POST /api/v1/executions/{execution_id}/cancel` and
//! `POST /api/v1/executions/{execution_id}/approvals/{stage}/{action}` (behind the API token):
//! requests the process running the execution picks up, as `runner cancel` / `runner approve`.
//! `POST /api/v1/executions/{execution_id}/stages/{stage}/retry` hands a stage retry to the
//! `Launcher`, as `runner retry` would run it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::error::ApiError;
use crate::server::{AppState, RetryRefused, RetryRequest};
use crate::state::{ExecutionId, RetryMode, requests};

/// The body of an approval: `{}` approves, `{"reject": "why"}` rejects.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Answer {
    reject: Option<String>,
}

/// `?mode=` or `{"mode": ..}` of a retry: `failed_actions` (the default) or `all_actions`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryOptions {
    mode: Option<String>,
}

/// The data directory, and the execution, which must exist and still run.
async fn running(state: &AppState, execution_id: &str) -> Result<std::path::PathBuf, ApiError> {
    let data_dir = state.data_dir.clone().ok_or(ApiError::ControlDisabled)?;
    if !requests::is_safe_name(execution_id) {
        return Err(ApiError::NotFound {
            what: "execution",
            id: execution_id.to_owned(),
        });
    }
    let detail = state
        .store
        .get_execution(&ExecutionId::from(execution_id))
        .await?;
    if detail.execution.status.is_terminal() {
        return Err(ApiError::Ended {
            id: execution_id.to_owned(),
        });
    }
    Ok(data_dir)
}

fn written(path: &std::path::Path, content: &str) -> Result<(), ApiError> {
    requests::write(path, content).map_err(|source| ApiError::Io {
        what: "a control request",
        source,
    })
}

/// Asks the running execution to stop; 202 once the request is written.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(execution_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let data_dir = running(&state, &execution_id).await?;
    written(&requests::cancel_file(&data_dir, &execution_id), "cancel")?;
    tracing::info!(execution = execution_id, "cancel requested through the API");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "cancel_requested": execution_id })),
    ))
}

/// A JSON body of type `T`; an empty one (or only whitespace) is `T::default()`, whatever the
/// content type says.
fn json_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| ApiError::BadBody {
        reason: format!("the body is not {what}: {error}"),
    })
}

/// Answers an approval action; 202 once the answer is written.
pub(crate) async fn approve(
    State(state): State<AppState>,
    Path((execution_id, stage_name, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Read whatever the content type says: a rejection must never pass for an approval.
    let answer: Answer = json_body(&body, "an approval answer")?;
    let data_dir = running(&state, &execution_id).await?;
    if !requests::is_safe_name(&stage_name) || !requests::is_safe_name(&action) {
        return Err(ApiError::NotFound {
            what: "action",
            id: format!("{stage_name}/{action}"),
        });
    }
    let text = requests::approval_answer(answer.reject.as_deref());
    written(
        &requests::approval_file(&data_dir, &execution_id, &stage_name, &action),
        &text,
    )?;
    tracing::info!(
        execution = execution_id,
        stage = stage_name,
        action,
        answer = text,
        "approval answered through the API"
    );
    Ok((StatusCode::ACCEPTED, Json(json!({ "answer": text }))))
}

/// Retries a stage of an ended execution; 202 once the retry started in the background.
pub(crate) async fn retry(
    State(state): State<AppState>,
    Path((execution_id, stage_name)): Path<(String, String)>,
    Query(query): Query<RetryOptions>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: RetryOptions = json_body(&body, "a retry request")?;
    let mode = retry_mode(body.mode.or(query.mode).as_deref())?;
    if !requests::is_safe_name(&execution_id) {
        return Err(ApiError::NotFound {
            what: "execution",
            id: execution_id,
        });
    }
    let request = RetryRequest {
        execution: execution_id,
        stage: stage_name,
        mode,
    };
    match state.launcher.retry(request).await {
        Ok(started) => {
            tracing::info!(
                execution = started.execution,
                stage = started.stage,
                mode = started.mode,
                "stage retry started through the API"
            );
            Ok((StatusCode::ACCEPTED, Json(json!(started))))
        }
        Err(RetryRefused::NotFound { what, id }) => Err(ApiError::NotFound { what, id }),
        Err(RetryRefused::Conflict { reason }) => Err(ApiError::RetryConflict { reason }),
        Err(RetryRefused::Disabled) => Err(ApiError::ControlDisabled),
        Err(RetryRefused::Failed(source)) => Err(ApiError::RetryFailed(source)),
    }
}

fn retry_mode(text: Option<&str>) -> Result<RetryMode, ApiError> {
    match text.map(str::to_ascii_lowercase).as_deref() {
        None | Some("failed_actions") => Ok(RetryMode::FailedActions),
        Some("all_actions") => Ok(RetryMode::AllActions),
        Some(other) => Err(ApiError::BadQuery {
            reason: format!("mode must be failed_actions or all_actions, not `{other}`"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::server::PushReply;
    use crate::server::testing::{FakeLauncher, TOKEN, send, state};
    use crate::state::{ExecutionId, NewExecution, RetryMode, Trigger, TriggerKind, requests};

    fn post(uri: &str, token: Option<&str>, body: &str) -> Request<Body> {
        let mut request = Request::post(uri).header("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request.body(Body::from(body.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn cancel_and_approve_write_requests_for_a_running_execution() {
        let (dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let data = dir.path().join("data");
        let state = state.with_data_dir(data.clone());
        state
            .store
            .create_execution(NewExecution {
                id: ExecutionId::from("e1"),
                pipeline: "app".into(),
                pipeline_digest: "d".into(),
                trigger: Trigger {
                    kind: TriggerKind::Manual,
                    detail: String::new(),
                },
                sources: Vec::new(),
                started_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        let (status, _) = send(&state, post("/api/v1/executions/e1/cancel", None, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!requests::cancel_file(&data, "e1").exists());
        let (status, text) = send(
            &state,
            post("/api/v1/executions/e1/cancel", Some(TOKEN), ""),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{text}");
        assert!(requests::cancel_file(&data, "e1").exists());
        let uri = "/api/v1/executions/e1/approvals/gate/approve";
        let (status, text) = send(&state, post(uri, Some(TOKEN), r#"{"reject": "no"}"#)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{text}");
        let answer =
            fs_err::read_to_string(requests::approval_file(&data, "e1", "gate", "approve"))
                .unwrap();
        assert_eq!(answer, "rejected: no");
        // Without a content type the rejection is still read, never taken for an approval.
        let bare = Request::post(uri)
            .header("Authorization", format!("Bearer {TOKEN}"))
            .body(Body::from(r#"{"reject": "still no"}"#))
            .unwrap();
        let (status, text) = send(&state, bare).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{text}");
        let answer =
            fs_err::read_to_string(requests::approval_file(&data, "e1", "gate", "approve"))
                .unwrap();
        assert_eq!(answer, "rejected: still no");
        let (status, text) = send(&state, post(uri, Some(TOKEN), "reject")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(
            text.contains("the body is not an approval answer"),
            "{text}"
        );
        let (status, _) = send(
            &state,
            post("/api/v1/executions/nope/cancel", Some(TOKEN), ""),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_retry_needs_the_token_and_hands_the_mode_to_the_launcher() {
        let launcher = FakeLauncher::new(PushReply::Duplicate);
        let (_dir, state) = state(launcher.clone()).await;
        let uri = "/api/v1/executions/e1/stages/build/retry";
        let (status, _) = send(&state, post(uri, None, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, text) = send(&state, post(uri, Some(TOKEN), "")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{text}");
        assert_eq!(
            text,
            r#"{"execution":"e1","mode":"FAILED_ACTIONS","stage":"build"}"#
        );
        let (status, _) = send(
            &state,
            post(&format!("{uri}?mode=all_actions"), Some(TOKEN), ""),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let (status, _) = send(&state, post(uri, Some(TOKEN), r#"{"mode": "ALL_ACTIONS"}"#)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let modes: Vec<_> = launcher
            .retries
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.mode)
            .collect();
        assert_eq!(
            modes,
            [
                RetryMode::FailedActions,
                RetryMode::AllActions,
                RetryMode::AllActions
            ]
        );
        let (status, text) = send(&state, post(uri, Some(TOKEN), r#"{"mode": "some"}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        let (status, _) = send(
            &state,
            post(
                "/api/v1/executions/nope/stages/build/retry",
                Some(TOKEN),
                "",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, text) = send(
            &state,
            post("/api/v1/executions/e1/stages/done/retry", Some(TOKEN), ""),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(text, r#"{"error":"retry the stage: stage done succeeded"}"#);
        assert_eq!(launcher.retries.lock().unwrap().len(), 3);
    }
}
