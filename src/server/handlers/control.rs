//! `POST /api/v1/executions/{execution_id}/cancel` and
//! `POST /api/v1/executions/{execution_id}/approvals/{stage}/{action}` (behind the API token):
//! requests the process running the execution picks up, as `runner cancel` / `runner approve`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::state::{ExecutionId, requests};

/// The body of an approval: `{}` approves, `{"reject": "why"}` rejects.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Answer {
    reject: Option<String>,
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

/// Answers an approval action; 202 once the answer is written.
pub(crate) async fn approve(
    State(state): State<AppState>,
    Path((execution_id, stage_name, action)): Path<(String, String, String)>,
    body: Option<Json<Answer>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let data_dir = running(&state, &execution_id).await?;
    if !requests::is_safe_name(&stage_name) || !requests::is_safe_name(&action) {
        return Err(ApiError::NotFound {
            what: "action",
            id: format!("{stage_name}/{action}"),
        });
    }
    let answer = body.map(|Json(answer)| answer).unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::server::PushReply;
    use crate::server::testing::{FakeLauncher, TOKEN, send, state};
    use crate::state::{ExecutionId, NewExecution, Trigger, TriggerKind, requests};

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
        let (status, _) = send(
            &state,
            post("/api/v1/executions/nope/cancel", Some(TOKEN), ""),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
