//! Helpers shared by this module's unit tests.

use chrono::{DateTime, Utc};
use tempfile::TempDir;

use super::{
    ActionAttempt, ActionOutcome, ActionStatus, ExecutionId, NewActionRun, NewExecution,
    SourceRevision, Store, Trigger, TriggerKind,
};

/// A store in a fresh temporary directory (kept alive by the returned guard).
pub(super) async fn temp_store() -> (TempDir, Store) {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("data").join("state.db"))
        .await
        .unwrap();
    (directory, store)
}

/// A fixed time, `seconds` after 2025-01-01T00:00:00Z.
pub(super) fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_689_600 + seconds, 0).unwrap()
}

/// What `create_execution` gets in these tests.
pub(super) fn new_execution(pipeline: &str) -> NewExecution {
    NewExecution {
        id: ExecutionId::generate(),
        pipeline: pipeline.to_owned(),
        pipeline_digest: "sha256:structure".to_owned(),
        trigger: Trigger {
            kind: TriggerKind::Webhook,
            detail: "push refs/heads/main".to_owned(),
        },
        sources: vec![SourceRevision {
            action: "Source".to_owned(),
            revision_id: "0123abcd".to_owned(),
            ref_name: Some("refs/heads/main".to_owned()),
            summary: Some("Fix the build".to_owned()),
        }],
        started_at: at(0),
    }
}

/// Creates an execution of `pipeline` and returns its id.
pub(super) async fn start_execution(store: &Store, pipeline: &str) -> ExecutionId {
    let new = new_execution(pipeline);
    let id = new.id.clone();
    store.create_execution(new).await.unwrap();
    id
}

/// Starts an attempt of `action` in a stage attempt.
pub(super) async fn start_action(
    store: &Store,
    execution: &ExecutionId,
    stage: &str,
    stage_attempt: u32,
    action: &str,
) -> ActionAttempt {
    store
        .start_action_attempt(NewActionRun {
            execution_id: execution.clone(),
            stage: stage.to_owned(),
            stage_attempt,
            action: action.to_owned(),
            build_id: Some(format!("{action}:uuid")),
            build_number: Some(1),
            log_path: Some(format!("/logs/{execution}/{action}.log").into()),
            started_at: at(10),
        })
        .await
        .unwrap()
}

/// Starts an attempt of `action` and ends it with `status`.
pub(super) async fn run_action(
    store: &Store,
    execution: &ExecutionId,
    stage: &str,
    stage_attempt: u32,
    action: &str,
    status: ActionStatus,
) -> ActionAttempt {
    let attempt = start_action(store, execution, stage, stage_attempt, action).await;
    store
        .finish_action(
            attempt.id,
            ActionOutcome {
                status,
                exit_code: (status == ActionStatus::Failed).then_some(2),
                error: None,
                phases: Vec::new(),
                ended_at: at(20),
            },
        )
        .await
        .unwrap();
    attempt
}
