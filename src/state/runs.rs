//! Stage and action attempts, phases, and the questions a retry asks (P36, P37).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::executions::{EXECUTION_COLUMNS, execution_from_row, require_execution};
use super::types::{Millis, latest_attempts};
use super::{
    ActionAttempt, ActionOutcome, ActionRun, ActionRunId, ActionStatus, Context, Execution,
    ExecutionId, NewActionRun, Phase, RetryMode, StageStatus, StateError, Store, path_text,
};

impl Store {
    /// Starts the next attempt of `stage` (1 on first entry; a retry passes its mode) and
    /// returns its number. The execution becomes owned by this process. Refused with
    /// [`StateError::StageInProgress`] while the previous attempt is still running.
    pub async fn start_stage_attempt(
        &self,
        execution: &ExecutionId,
        stage: &str,
        retry_mode: Option<RetryMode>,
        at: DateTime<Utc>,
    ) -> Result<u32, StateError> {
        let operation = "start stage attempt";
        let (execution, stage) = (execution.clone(), stage.to_owned());
        self.call(operation, move |connection, inner| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(operation)?;
            require_execution(&transaction, &execution)?;
            let previous: Option<(u32, StageStatus)> = transaction
                .query_row(
                    "SELECT attempt, status FROM stage_runs WHERE execution_id = ?1 \
                     AND stage = ?2 ORDER BY attempt DESC LIMIT 1",
                    params![execution, stage],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .during(operation)?;
            // Checked in the same write transaction, so two processes cannot both retry.
            if let Some((attempt, _)) = previous.filter(|(_, status)| !status.is_terminal()) {
                return Err(StateError::StageInProgress {
                    execution: execution.to_string(),
                    stage,
                    attempt,
                });
            }
            let attempt = previous.map_or(1, |(attempt, _)| attempt + 1);
            transaction
                .execute(
                    "INSERT INTO stage_runs (execution_id, stage, attempt, retry_mode, status, \
                     started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        execution,
                        stage,
                        attempt,
                        retry_mode,
                        StageStatus::InProgress,
                        Millis(at)
                    ],
                )
                .during(operation)?;
            transaction
                .execute(
                    "UPDATE executions SET owner = ?2 WHERE id = ?1",
                    params![execution, inner.owner.id()],
                )
                .during(operation)?;
            transaction.commit().during(operation)?;
            Ok(attempt)
        })
        .await
    }

    /// Sets a stage attempt's status; a terminal status also sets its end time to `at`.
    pub async fn finish_stage(
        &self,
        execution: &ExecutionId,
        stage: &str,
        attempt: u32,
        status: StageStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let operation = "finish stage attempt";
        let (execution, stage) = (execution.clone(), stage.to_owned());
        self.call(operation, move |connection, _| {
            let ended_at = status.is_terminal().then_some(Millis(at));
            let changed = connection
                .execute(
                    "UPDATE stage_runs SET status = ?4, ended_at = ?5 \
                     WHERE execution_id = ?1 AND stage = ?2 AND attempt = ?3",
                    params![execution, stage, attempt, status, ended_at],
                )
                .during(operation)?;
            if changed == 0 {
                return Err(StateError::NotFound {
                    what: "stage attempt",
                    id: format!("{execution}/{stage}#{attempt}"),
                });
            }
            Ok(())
        })
        .await
    }

    /// Starts the next attempt of an action, `InProgress`, inside a stage attempt.
    pub async fn start_action_attempt(
        &self,
        new: NewActionRun,
    ) -> Result<ActionAttempt, StateError> {
        let operation = "start action attempt";
        let log_path = path_text(new.log_path.as_deref())?;
        self.call(operation, move |connection, _| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(operation)?;
            let stage_exists = transaction
                .query_row(
                    "SELECT 1 FROM stage_runs WHERE execution_id = ?1 AND stage = ?2 \
                     AND attempt = ?3",
                    params![new.execution_id, new.stage, new.stage_attempt],
                    |_| Ok(()),
                )
                .optional()
                .during(operation)?;
            if stage_exists.is_none() {
                return Err(StateError::NotFound {
                    what: "stage attempt",
                    id: format!("{}/{}#{}", new.execution_id, new.stage, new.stage_attempt),
                });
            }
            let attempt: u32 = transaction
                .query_row(
                    "SELECT coalesce(max(attempt), 0) + 1 FROM action_runs \
                     WHERE execution_id = ?1 AND stage = ?2 AND action = ?3",
                    params![new.execution_id, new.stage, new.action],
                    |row| row.get(0),
                )
                .during(operation)?;
            transaction
                .execute(
                    "INSERT INTO action_runs (execution_id, stage, stage_attempt, action, \
                     attempt, status, build_id, build_number, log_path, started_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        new.execution_id,
                        new.stage,
                        new.stage_attempt,
                        new.action,
                        attempt,
                        ActionStatus::InProgress,
                        new.build_id,
                        new.build_number,
                        log_path,
                        Millis(new.started_at),
                    ],
                )
                .during(operation)?;
            let id = ActionRunId(transaction.last_insert_rowid());
            transaction.commit().during(operation)?;
            Ok(ActionAttempt { id, attempt })
        })
        .await
    }

    /// Records (or updates, by name) one phase of an action attempt as it finishes.
    pub async fn record_phase(
        &self,
        action_run: ActionRunId,
        phase: Phase,
    ) -> Result<(), StateError> {
        let operation = "record phase";
        self.call(operation, move |connection, _| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(operation)?;
            require_action_run(&transaction, action_run)?;
            upsert_phase(&transaction, action_run, &phase).during(operation)?;
            transaction.commit().during(operation)
        })
        .await
    }

    /// Sets the log file and build id of a started action attempt (known only once it runs).
    pub async fn set_action_details(
        &self,
        action_run: ActionRunId,
        log_path: Option<PathBuf>,
        build_id: Option<String>,
    ) -> Result<(), StateError> {
        let operation = "record action details";
        let log_path = super::path_text(log_path.as_deref())?;
        self.call(operation, move |connection, _| {
            let changed = connection
                .execute(
                    "UPDATE action_runs SET log_path = COALESCE(?2, log_path), \
                     build_id = COALESCE(?3, build_id) WHERE id = ?1",
                    params![action_run.0, log_path, build_id],
                )
                .during(operation)?;
            updated(changed, action_run)
        })
        .await
    }

    /// Ends an action attempt: status, exit code, error and phases in one transaction.
    pub async fn finish_action(
        &self,
        action_run: ActionRunId,
        outcome: ActionOutcome,
    ) -> Result<(), StateError> {
        let operation = "finish action attempt";
        self.call(operation, move |connection, _| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(operation)?;
            let ended_at =
                (outcome.status != ActionStatus::InProgress).then_some(Millis(outcome.ended_at));
            let changed = transaction
                .execute(
                    "UPDATE action_runs SET status = ?2, exit_code = ?3, error = ?4, \
                     ended_at = ?5 WHERE id = ?1",
                    params![
                        action_run.0,
                        outcome.status,
                        outcome.exit_code,
                        outcome.error,
                        ended_at
                    ],
                )
                .during(operation)?;
            updated(changed, action_run)?;
            for phase in &outcome.phases {
                upsert_phase(&transaction, action_run, phase).during(operation)?;
            }
            transaction.commit().during(operation)
        })
        .await
    }

    /// The latest attempt of each action of `stage` that did not succeed (failed, stopped or
    /// abandoned): what a `FAILED_ACTIONS` retry re-runs. Actions that never started are not
    /// listed; the caller knows the stage's actions.
    pub async fn failed_actions(
        &self,
        execution: &ExecutionId,
        stage: &str,
    ) -> Result<Vec<ActionRun>, StateError> {
        let operation = "list failed actions";
        let (execution, stage) = (execution.clone(), stage.to_owned());
        self.call(operation, move |connection, _| {
            let transaction = connection.transaction().during(operation)?;
            require_execution(&transaction, &execution)?;
            let runs = super::executions::actions(&transaction, &execution).during(operation)?;
            Ok(latest_attempts(&runs, &stage)
                .filter(|run| {
                    matches!(
                        run.status,
                        ActionStatus::Failed | ActionStatus::Stopped | ActionStatus::Abandoned
                    )
                })
                .cloned()
                .collect())
        })
        .await
    }

    /// The newest execution of `pipeline` whose latest attempt of `stage` failed, stopped or
    /// was abandoned: the default target of `runner retry --stage`.
    pub async fn latest_execution_where_stage_failed(
        &self,
        pipeline: &str,
        stage: &str,
    ) -> Result<Option<Execution>, StateError> {
        let operation = "find the latest failed stage";
        let (pipeline, stage) = (pipeline.to_owned(), stage.to_owned());
        self.call(operation, move |connection, _| {
            connection
                .query_row(
                    &format!(
                        "SELECT {EXECUTION_COLUMNS} FROM executions AS e \
                         WHERE e.pipeline = ?1 AND (\
                             SELECT s.status FROM stage_runs AS s \
                             WHERE s.execution_id = e.id AND s.stage = ?2 \
                             ORDER BY s.attempt DESC LIMIT 1\
                         ) IN (?3, ?4, ?5) \
                         ORDER BY e.seq DESC LIMIT 1"
                    ),
                    // A retry is allowed after a failure or a stop (P19, P36), and after a crash.
                    params![
                        pipeline,
                        stage,
                        StageStatus::Failed,
                        StageStatus::Stopped,
                        StageStatus::Abandoned
                    ],
                    execution_from_row,
                )
                .optional()
                .during(operation)
        })
        .await
    }

    /// Whether `execution` is the one that most recently entered `stage` of `pipeline`; a retry
    /// of any other is refused with `NotLatestPipelineExecution` (P37).
    pub async fn is_latest_for_stage(
        &self,
        pipeline: &str,
        stage: &str,
        execution: &ExecutionId,
    ) -> Result<bool, StateError> {
        let operation = "find the latest execution of a stage";
        let (pipeline, stage, execution) =
            (pipeline.to_owned(), stage.to_owned(), execution.clone());
        self.call(operation, move |connection, _| {
            let latest: Option<ExecutionId> = connection
                .query_row(
                    "SELECT s.execution_id FROM stage_runs AS s \
                     JOIN executions AS e ON e.id = s.execution_id \
                     WHERE e.pipeline = ?1 AND s.stage = ?2 AND s.attempt = 1 \
                     ORDER BY s.id DESC LIMIT 1",
                    params![pipeline, stage],
                    |row| row.get(0),
                )
                .optional()
                .during(operation)?;
            Ok(latest.as_ref() == Some(&execution))
        })
        .await
    }
}

/// `NotFound` when an update by id changed no row: the action attempt does not exist.
fn updated(changed: usize, action_run: ActionRunId) -> Result<(), StateError> {
    if changed == 0 {
        return Err(StateError::NotFound {
            what: "action attempt",
            id: action_run.to_string(),
        });
    }
    Ok(())
}

fn require_action_run(connection: &Connection, action_run: ActionRunId) -> Result<(), StateError> {
    connection
        .query_row(
            "SELECT 1 FROM action_runs WHERE id = ?1",
            [action_run.0],
            |_| Ok(()),
        )
        .or_not_found(
            "find action attempt",
            "action attempt",
            &action_run.to_string(),
        )
}

fn upsert_phase(
    connection: &Connection,
    action_run: ActionRunId,
    phase: &Phase,
) -> rusqlite::Result<()> {
    let (code, message) = phase
        .context
        .as_ref()
        .map(|context| (context.code.as_str(), context.message.as_str()))
        .unzip();
    connection
        .prepare_cached(
            "INSERT INTO phases (action_run_id, name, status, started_at, ended_at, \
             context_code, context_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (action_run_id, name) DO UPDATE SET status = excluded.status, \
             started_at = excluded.started_at, ended_at = excluded.ended_at, \
             context_code = excluded.context_code, context_message = excluded.context_message",
        )?
        .execute(params![
            action_run.0,
            phase.name,
            phase.status,
            Millis(phase.started_at),
            phase.ended_at.map(Millis),
            code,
            message,
        ])
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{at, run_action, start_execution, temp_store};

    /// Runs `stage` once with one action ending in `status`, and ends the stage to match.
    async fn run_stage(store: &Store, execution: &ExecutionId, stage: &str, status: ActionStatus) {
        let attempt = store
            .start_stage_attempt(execution, stage, None, at(5))
            .await
            .unwrap();
        run_action(store, execution, stage, attempt, "Build", status).await;
        let stage_status = match status {
            ActionStatus::Succeeded => StageStatus::Succeeded,
            ActionStatus::Stopped => StageStatus::Stopped,
            _ => StageStatus::Failed,
        };
        store
            .finish_stage(execution, stage, attempt, stage_status, at(30))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn latest_execution_where_stage_failed_picks_the_newest_failed_one() {
        let (_directory, store) = temp_store().await;
        let older = start_execution(&store, "app").await;
        run_stage(&store, &older, "build", ActionStatus::Failed).await;
        let newer = start_execution(&store, "app").await;
        run_stage(&store, &newer, "build", ActionStatus::Stopped).await;
        let passed = start_execution(&store, "app").await;
        run_stage(&store, &passed, "build", ActionStatus::Succeeded).await;
        let other_pipeline = start_execution(&store, "other").await;
        run_stage(&store, &other_pipeline, "build", ActionStatus::Failed).await;

        let found = store
            .latest_execution_where_stage_failed("app", "build")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, newer);
        assert_eq!(found.pipeline, "app");
        assert!(
            store
                .latest_execution_where_stage_failed("app", "deploy")
                .await
                .unwrap()
                .is_none()
        );

        // A successful retry of the newer one leaves the older one as the latest failure.
        let retry = store
            .start_stage_attempt(&newer, "build", Some(RetryMode::FailedActions), at(40))
            .await
            .unwrap();
        assert_eq!(retry, 2);
        store
            .finish_stage(&newer, "build", retry, StageStatus::Succeeded, at(50))
            .await
            .unwrap();
        let found = store
            .latest_execution_where_stage_failed("app", "build")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, older);
    }

    #[tokio::test]
    async fn failed_actions_lists_only_failures_of_each_actions_latest_attempt() {
        let (_directory, store) = temp_store().await;
        let execution = start_execution(&store, "app").await;
        let first = store
            .start_stage_attempt(&execution, "build", None, at(1))
            .await
            .unwrap();
        run_action(
            &store,
            &execution,
            "build",
            first,
            "Fixed",
            ActionStatus::Failed,
        )
        .await;
        run_action(
            &store,
            &execution,
            "build",
            first,
            "Broken",
            ActionStatus::Failed,
        )
        .await;
        run_action(
            &store,
            &execution,
            "build",
            first,
            "Fine",
            ActionStatus::Succeeded,
        )
        .await;
        store
            .finish_stage(&execution, "build", first, StageStatus::Failed, at(2))
            .await
            .unwrap();
        let second = store
            .start_stage_attempt(&execution, "build", Some(RetryMode::FailedActions), at(3))
            .await
            .unwrap();
        let fixed = run_action(
            &store,
            &execution,
            "build",
            second,
            "Fixed",
            ActionStatus::Succeeded,
        )
        .await;
        assert_eq!(fixed.attempt, 2);
        let broken = run_action(
            &store,
            &execution,
            "build",
            second,
            "Broken",
            ActionStatus::Failed,
        )
        .await;

        let failed = store.failed_actions(&execution, "build").await.unwrap();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].action, "Broken");
        assert_eq!(failed[0].attempt, 2);
        assert_eq!(failed[0].id, broken.id);
        assert_eq!(failed[0].stage_attempt, 2);
        assert_eq!(failed[0].exit_code, Some(2));
    }

    #[tokio::test]
    async fn only_the_execution_that_entered_a_stage_last_is_latest() {
        let (_directory, store) = temp_store().await;
        let first = start_execution(&store, "app").await;
        let second = start_execution(&store, "app").await;
        run_stage(&store, &second, "build", ActionStatus::Failed).await;
        // The first execution enters the stage after the second: entry order decides (P37).
        run_stage(&store, &first, "build", ActionStatus::Failed).await;
        assert!(
            store
                .is_latest_for_stage("app", "build", &first)
                .await
                .unwrap()
        );
        assert!(
            !store
                .is_latest_for_stage("app", "build", &second)
                .await
                .unwrap()
        );
        // A retry of the second does not make it the latest entry.
        store
            .start_stage_attempt(&second, "build", Some(RetryMode::AllActions), at(60))
            .await
            .unwrap();
        assert!(
            store
                .is_latest_for_stage("app", "build", &first)
                .await
                .unwrap()
        );
        assert!(
            !store
                .is_latest_for_stage("app", "deploy", &first)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_stage_attempt_cannot_start_while_the_previous_one_runs() {
        let (_directory, store) = temp_store().await;
        let execution = start_execution(&store, "app").await;
        store
            .start_stage_attempt(&execution, "build", None, at(1))
            .await
            .unwrap();
        let error = store
            .start_stage_attempt(&execution, "build", Some(RetryMode::AllActions), at(2))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StateError::StageInProgress { attempt: 1, .. }),
            "{error:?}"
        );
        store
            .finish_stage(&execution, "build", 1, StageStatus::Failed, at(3))
            .await
            .unwrap();
        let retry = store
            .start_stage_attempt(&execution, "build", Some(RetryMode::AllActions), at(4))
            .await
            .unwrap();
        assert_eq!(retry, 2);
    }

    #[tokio::test]
    async fn missing_rows_are_not_found() {
        let (_directory, store) = temp_store().await;
        let missing = ExecutionId::from("no-such-execution");
        let error = store
            .start_stage_attempt(&missing, "build", None, at(0))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StateError::NotFound { what: "execution", id } if id == "no-such-execution"),
            "{error:?}"
        );
        let execution = start_execution(&store, "app").await;
        let error = store
            .finish_stage(&execution, "build", 1, StageStatus::Failed, at(0))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            StateError::NotFound {
                what: "stage attempt",
                ..
            }
        ));
        let error = store
            .record_phase(
                ActionRunId(999),
                Phase {
                    name: "BUILD".to_owned(),
                    status: crate::state::PhaseStatus::Succeeded,
                    started_at: at(0),
                    ended_at: None,
                    context: None,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            StateError::NotFound {
                what: "action attempt",
                ..
            }
        ));
        assert_eq!(error.to_string(), "find action attempt `999`");
    }
}
