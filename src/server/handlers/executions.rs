//! `GET /api/v1/executions` and `GET /api/v1/executions/{execution_id}` (its logs are in
//! `handlers::logs`).
//!
//! An execution's JSON has the shape of `runner status --json`: the latest attempt of each
//! action under `actions`, and every stage and action attempt under `stages` and `attempts`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::state::{ActionRun, Execution, ExecutionDetail, ExecutionId, RetryMode, StageRun};

/// The most `GET /api/v1/executions` returns at once.
const MAX_LIMIT: u32 = 500;

/// `?pipeline=&limit=`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    pipeline: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
struct ExecutionView<'a> {
    id: &'a str,
    pipeline: &'a str,
    status: &'static str,
    status_summary: Option<&'a str>,
    trigger: &'static str,
    trigger_detail: &'a str,
    started_at: String,
    ended_at: Option<String>,
}

impl<'a> ExecutionView<'a> {
    fn new(execution: &'a Execution) -> Self {
        Self {
            id: execution.id.as_str(),
            pipeline: &execution.pipeline,
            status: execution.status.as_str(),
            status_summary: execution.status_summary.as_deref(),
            trigger: execution.trigger.kind.as_str(),
            trigger_detail: &execution.trigger.detail,
            started_at: time(execution.started_at),
            ended_at: execution.ended_at.map(time),
        }
    }
}

#[derive(Debug, Serialize)]
struct DetailView<'a> {
    #[serde(flatten)]
    execution: ExecutionView<'a>,
    revision: Option<&'a str>,
    actions: Vec<ActionView<'a>>,
    stages: Vec<StageView<'a>>,
    attempts: Vec<ActionView<'a>>,
}

#[derive(Debug, Serialize)]
struct StageView<'a> {
    stage: &'a str,
    attempt: u32,
    retry_mode: Option<&'static str>,
    status: &'static str,
    started_at: String,
    ended_at: Option<String>,
}

#[derive(Debug, Serialize)]
struct ActionView<'a> {
    stage: &'a str,
    action: &'a str,
    attempt: u32,
    stage_attempt: u32,
    status: &'static str,
    exit_code: Option<i32>,
    started_at: String,
    ended_at: Option<String>,
    build_id: Option<&'a str>,
    error: Option<&'a str>,
}

impl<'a> ActionView<'a> {
    fn new(run: &'a ActionRun) -> Self {
        Self {
            stage: &run.stage,
            action: &run.action,
            attempt: run.attempt,
            stage_attempt: run.stage_attempt,
            status: run.status.as_str(),
            exit_code: run.exit_code,
            started_at: time(run.started_at),
            ended_at: run.ended_at.map(time),
            build_id: run.build_id.as_deref(),
            error: run.error.as_deref(),
        }
    }
}

impl<'a> StageView<'a> {
    fn new(run: &'a StageRun) -> Self {
        Self {
            stage: &run.stage,
            attempt: run.attempt,
            retry_mode: run.retry_mode.map(RetryMode::as_str),
            status: run.status.as_str(),
            started_at: time(run.started_at),
            ended_at: run.ended_at.map(time),
        }
    }
}

/// RFC 3339, as `runner status --json` writes times.
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

/// Executions, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadQuery {
            reason: format!("limit must be 1 to {MAX_LIMIT}"),
        });
    }
    let executions = state
        .store
        .list_executions(query.pipeline.as_deref(), limit)
        .await?;
    let views: Vec<ExecutionView<'_>> = executions.iter().map(ExecutionView::new).collect();
    Ok(Json(serde_json::json!({ "executions": views })))
}

/// One execution with every attempt.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(execution_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let detail = state
        .store
        .get_execution(&ExecutionId::from(execution_id))
        .await?;
    let value = serde_json::to_value(detail_view(&detail)).map_err(|error| ApiError::Io {
        what: "execution JSON",
        source: error.into(),
    })?;
    Ok(Json(value))
}

fn detail_view(detail: &ExecutionDetail) -> DetailView<'_> {
    let mut stage_names: Vec<&str> = Vec::new();
    for stage in &detail.stages {
        if !stage_names.contains(&stage.stage.as_str()) {
            stage_names.push(&stage.stage);
        }
    }
    DetailView {
        execution: ExecutionView::new(&detail.execution),
        revision: detail.sources.first().map(|s| s.revision_id.as_str()),
        actions: stage_names
            .iter()
            .flat_map(|stage| detail.latest_actions(stage).map(ActionView::new))
            .collect(),
        stages: detail.stages.iter().map(StageView::new).collect(),
        attempts: detail.actions.iter().map(ActionView::new).collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::server::testing::{FakeLauncher, send, send_json, state};
    use crate::server::{AppState, PushReply};
    use crate::state::{
        ExecutionId, NewActionRun, NewExecution, SourceRevision, Trigger, TriggerKind,
    };

    /// Records an `InProgress` execution of `pipeline` with one build action `build.compile`
    /// whose log is `compiling\ndone\n`; returns its id.
    pub(crate) async fn record_execution(state: &AppState, pipeline: &str) -> String {
        let store = &state.store;
        let id = ExecutionId::generate();
        let now = chrono::Utc::now();
        store
            .create_execution(NewExecution {
                id: id.clone(),
                pipeline: pipeline.to_owned(),
                pipeline_digest: "digest".to_owned(),
                trigger: Trigger {
                    kind: TriggerKind::Webhook,
                    detail: "push to main".to_owned(),
                },
                sources: vec![SourceRevision {
                    action: "checkout".to_owned(),
                    revision_id: "c0ffee".to_owned(),
                    ref_name: Some("refs/heads/main".to_owned()),
                    summary: None,
                }],
                started_at: now,
            })
            .await
            .unwrap();
        let attempt = store
            .start_stage_attempt(&id, "build", None, now)
            .await
            .unwrap();
        let log = store.path().with_file_name(format!("{id}.log"));
        fs_err::write(&log, "compiling\ndone\n").unwrap();
        store
            .start_action_attempt(NewActionRun {
                execution_id: id.clone(),
                stage: "build".to_owned(),
                stage_attempt: attempt,
                action: "compile".to_owned(),
                build_id: Some("app:1".to_owned()),
                build_number: Some(1),
                log_path: Some(log),
                started_at: now,
            })
            .await
            .unwrap();
        id.to_string()
    }

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn executions_are_listed_newest_first_and_filtered() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let first = record_execution(&state, "app").await;
        let second = record_execution(&state, "other").await;
        let (status, json) = send_json(&state, get("/api/v1/executions")).await;
        assert_eq!(status, StatusCode::OK);
        let ids: Vec<_> = json["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, [second, first.clone()]);
        let (_, json) = send_json(&state, get("/api/v1/executions?pipeline=app")).await;
        assert_eq!(json["executions"][0]["id"], first.as_str());
        assert_eq!(json["executions"][0]["trigger"], "WebhookV2");
        assert_eq!(json["executions"].as_array().unwrap().len(), 1);
        let (status, _) = send(&state, get("/api/v1/executions?limit=0")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn one_execution_has_the_shape_of_status_json() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let id = record_execution(&state, "app").await;
        let (status, json) = send_json(&state, get(&format!("/api/v1/executions/{id}"))).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["id"], id.as_str());
        assert_eq!(json["status"], "InProgress");
        assert_eq!(json["revision"], "c0ffee");
        assert_eq!(json["stages"][0]["stage"], "build");
        assert_eq!(json["actions"][0]["action"], "compile");
        assert_eq!(json["actions"][0]["build_id"], "app:1");
        assert_eq!(json["attempts"].as_array().unwrap().len(), 1);
        let (status, json) = send_json(&state, get("/api/v1/executions/nope")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"], "find execution `nope`");
    }
}
