//! Executions: create, change status, read back with every attempt, list.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::types::Millis;
use super::{
    ActionRun, ActionRunId, ActionStatus, Context, Execution, ExecutionDetail, ExecutionId,
    ExecutionStatus, NewExecution, Phase, PhaseContext, SourceRevision, StageRun, StateError,
    Store, Trigger,
};

/// The columns [`execution_from_row`] reads, in order.
pub(super) const EXECUTION_COLUMNS: &str = "id, pipeline, pipeline_digest, trigger_type, \
     trigger_detail, status, status_summary, started_at, ended_at";

impl Store {
    /// Records a new execution, `InProgress`, owned by this process, with its source revisions.
    pub async fn create_execution(&self, new: NewExecution) -> Result<(), StateError> {
        let operation = "create execution";
        self.call(operation, move |connection, inner| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(operation)?;
            transaction
                .execute(
                    "INSERT INTO executions (id, pipeline, pipeline_digest, trigger_type, \
                     trigger_detail, status, owner, started_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        new.id,
                        new.pipeline,
                        new.pipeline_digest,
                        new.trigger.kind,
                        new.trigger.detail,
                        ExecutionStatus::InProgress,
                        inner.owner.id(),
                        Millis(new.started_at),
                    ],
                )
                .during(operation)?;
            insert_sources(&transaction, &new.id, &new.sources).during(operation)?;
            transaction.commit().during(operation)
        })
        .await
    }

    /// Records the source revisions an execution fetched (replacing any recorded before).
    pub async fn set_source_revisions(
        &self,
        execution: &ExecutionId,
        sources: Vec<SourceRevision>,
    ) -> Result<(), StateError> {
        let operation = "record source revisions";
        let execution = execution.clone();
        self.call(operation, move |connection, _| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(operation)?;
            require_execution(&transaction, &execution)?;
            insert_sources(&transaction, &execution, &sources).during(operation)?;
            transaction.commit().during(operation)
        })
        .await
    }

    /// Sets an execution's status; a terminal status also sets its end time to `at`.
    ///
    /// Going back to `InProgress` (a retry) clears the end time and makes this process the
    /// execution's owner.
    pub async fn set_execution_status(
        &self,
        execution: &ExecutionId,
        status: ExecutionStatus,
        summary: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let operation = "set execution status";
        let execution = execution.clone();
        self.call(operation, move |connection, inner| {
            let ended_at = status.is_terminal().then_some(Millis(at));
            let changed = connection
                .execute(
                    "UPDATE executions SET status = ?2, status_summary = ?3, ended_at = ?4, \
                     owner = CASE WHEN ?5 THEN owner ELSE ?6 END WHERE id = ?1",
                    params![
                        execution,
                        status,
                        summary,
                        ended_at,
                        status.is_terminal(),
                        inner.owner.id(),
                    ],
                )
                .during(operation)?;
            if changed == 0 {
                return Err(not_found(&execution));
            }
            Ok(())
        })
        .await
    }

    /// One execution with its sources, every stage attempt and every action attempt.
    pub async fn get_execution(&self, id: &ExecutionId) -> Result<ExecutionDetail, StateError> {
        let operation = "load execution";
        let id = id.clone();
        self.call(operation, move |connection, _| {
            // One read transaction, so the parts agree with each other.
            let transaction = connection.transaction().during(operation)?;
            let execution = transaction
                .query_row(
                    &format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?1"),
                    [&id],
                    execution_from_row,
                )
                .or_not_found(operation, "execution", id.as_str())?;
            let detail = ExecutionDetail {
                execution,
                sources: sources(&transaction, &id).during(operation)?,
                stages: stages(&transaction, &id).during(operation)?,
                actions: actions(&transaction, &id).during(operation)?,
            };
            Ok(detail)
        })
        .await
    }

    /// The newest executions first, of one pipeline or of all, at most `limit`.
    pub async fn list_executions(
        &self,
        pipeline: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Execution>, StateError> {
        let operation = "list executions";
        let pipeline = pipeline.map(str::to_owned);
        self.call(operation, move |connection, _| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {EXECUTION_COLUMNS} FROM executions \
                     WHERE ?1 IS NULL OR pipeline = ?1 ORDER BY seq DESC LIMIT ?2"
                ))
                .during(operation)?;
            statement
                .query_map(params![pipeline, limit], execution_from_row)
                .and_then(Iterator::collect)
                .during(operation)
        })
        .await
    }

    /// How many executions there are in each status, per pipeline; statuses with none are
    /// left out (the `/metrics` gauge).
    pub async fn count_executions(
        &self,
    ) -> Result<Vec<(String, ExecutionStatus, u64)>, StateError> {
        let operation = "count executions";
        self.call(operation, move |connection, _| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT pipeline, status, COUNT(*) FROM executions \
                     GROUP BY pipeline, status ORDER BY pipeline, status",
                )
                .during(operation)?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .and_then(Iterator::collect)
                .during(operation)
        })
        .await
    }
}

/// Durations of finished action attempts, for the `/metrics` histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionDuration {
    /// The pipeline.
    pub pipeline: String,
    /// The attempt's status.
    pub status: ActionStatus,
    /// How long it ran, in milliseconds.
    pub millis: u64,
}

impl Store {
    /// Every finished action attempt's pipeline, status and duration.
    pub async fn action_durations(&self) -> Result<Vec<ActionDuration>, StateError> {
        let operation = "read action durations";
        self.call(operation, move |connection, _| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT e.pipeline, r.status, MAX(r.ended_at - r.started_at, 0) \
                     FROM action_runs AS r JOIN executions AS e ON e.id = r.execution_id \
                     WHERE r.ended_at IS NOT NULL",
                )
                .during(operation)?;
            statement
                .query_map([], |row| {
                    Ok(ActionDuration {
                        pipeline: row.get(0)?,
                        status: row.get(1)?,
                        millis: row.get(2)?,
                    })
                })
                .and_then(Iterator::collect)
                .during(operation)
        })
        .await
    }

    /// Bytes of the artifacts recorded, by pipeline.
    pub async fn artifact_bytes(&self) -> Result<Vec<(String, u64)>, StateError> {
        let operation = "sum artifact sizes";
        self.call(operation, move |connection, _| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT e.pipeline, SUM(a.size) FROM artifacts AS a \
                     JOIN action_runs AS r ON r.id = a.action_run_id \
                     JOIN executions AS e ON e.id = r.execution_id \
                     GROUP BY e.pipeline ORDER BY e.pipeline",
                )
                .during(operation)?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .and_then(Iterator::collect)
                .during(operation)
        })
        .await
    }
}

pub(super) fn not_found(execution: &ExecutionId) -> StateError {
    StateError::NotFound {
        what: "execution",
        id: execution.to_string(),
    }
}

/// Fails with `NotFound` unless the execution exists.
pub(super) fn require_execution(
    connection: &Connection,
    execution: &ExecutionId,
) -> Result<(), StateError> {
    connection
        .query_row(
            "SELECT 1 FROM executions WHERE id = ?1",
            [execution],
            |_| Ok(()),
        )
        .optional()
        .during("find execution")?
        .ok_or_else(|| not_found(execution))
}

pub(super) fn execution_from_row(row: &Row<'_>) -> rusqlite::Result<Execution> {
    Ok(Execution {
        id: row.get(0)?,
        pipeline: row.get(1)?,
        pipeline_digest: row.get(2)?,
        trigger: Trigger {
            kind: row.get(3)?,
            detail: row.get(4)?,
        },
        status: row.get(5)?,
        status_summary: row.get(6)?,
        started_at: row.get::<_, Millis>(7)?.0,
        ended_at: row.get::<_, Option<Millis>>(8)?.map(|millis| millis.0),
    })
}

fn insert_sources(
    connection: &Connection,
    execution: &ExecutionId,
    sources: &[SourceRevision],
) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO source_revisions (execution_id, action, revision_id, ref_name, summary) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (execution_id, action) DO UPDATE SET revision_id = excluded.revision_id, \
         ref_name = excluded.ref_name, summary = excluded.summary",
    )?;
    for source in sources {
        statement.execute(params![
            execution,
            source.action,
            source.revision_id,
            source.ref_name,
            source.summary,
        ])?;
    }
    Ok(())
}

fn sources(
    connection: &Connection,
    execution: &ExecutionId,
) -> rusqlite::Result<Vec<SourceRevision>> {
    let mut statement = connection.prepare_cached(
        "SELECT action, revision_id, ref_name, summary FROM source_revisions \
         WHERE execution_id = ?1 ORDER BY action",
    )?;
    statement
        .query_map([execution], |row| {
            Ok(SourceRevision {
                action: row.get(0)?,
                revision_id: row.get(1)?,
                ref_name: row.get(2)?,
                summary: row.get(3)?,
            })
        })?
        .collect()
}

fn stages(connection: &Connection, execution: &ExecutionId) -> rusqlite::Result<Vec<StageRun>> {
    let mut statement = connection.prepare_cached(
        "SELECT stage, attempt, retry_mode, status, started_at, ended_at FROM stage_runs \
         WHERE execution_id = ?1 ORDER BY id",
    )?;
    statement
        .query_map([execution], |row| {
            Ok(StageRun {
                stage: row.get(0)?,
                attempt: row.get(1)?,
                retry_mode: row.get(2)?,
                status: row.get(3)?,
                started_at: row.get::<_, Millis>(4)?.0,
                ended_at: row.get::<_, Option<Millis>>(5)?.map(|millis| millis.0),
            })
        })?
        .collect()
}

/// Every action attempt of an execution, with its phases, in the order started.
pub(super) fn actions(
    connection: &Connection,
    execution: &ExecutionId,
) -> rusqlite::Result<Vec<ActionRun>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, stage, stage_attempt, action, attempt, status, exit_code, build_id, \
         build_number, log_path, error, started_at, ended_at FROM action_runs \
         WHERE execution_id = ?1 ORDER BY id",
    )?;
    let mut runs = statement
        .query_map([execution], |row| {
            Ok(ActionRun {
                id: ActionRunId(row.get(0)?),
                stage: row.get(1)?,
                stage_attempt: row.get(2)?,
                action: row.get(3)?,
                attempt: row.get(4)?,
                status: row.get(5)?,
                exit_code: row.get(6)?,
                build_id: row.get(7)?,
                build_number: row.get(8)?,
                log_path: row.get::<_, Option<String>>(9)?.map(PathBuf::from),
                error: row.get(10)?,
                started_at: row.get::<_, Millis>(11)?.0,
                ended_at: row.get::<_, Option<Millis>>(12)?.map(|millis| millis.0),
                phases: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for run in &mut runs {
        run.phases = phases(connection, run.id)?;
    }
    Ok(runs)
}

fn phases(connection: &Connection, action_run: ActionRunId) -> rusqlite::Result<Vec<Phase>> {
    let mut statement = connection.prepare_cached(
        "SELECT name, status, started_at, ended_at, context_code, context_message FROM phases \
         WHERE action_run_id = ?1 ORDER BY id",
    )?;
    statement
        .query_map([action_run.0], |row| {
            let code: Option<String> = row.get(4)?;
            let message: Option<String> = row.get(5)?;
            Ok(Phase {
                name: row.get(0)?,
                status: row.get(1)?,
                started_at: row.get::<_, Millis>(2)?.0,
                ended_at: row.get::<_, Option<Millis>>(3)?.map(|millis| millis.0),
                context: code.map(|code| PhaseContext {
                    code,
                    message: message.unwrap_or_default(),
                }),
            })
        })?
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TriggerKind;
    use crate::state::testing::{
        at, new_execution, run_action, start_action, start_execution, temp_store,
    };

    #[tokio::test]
    async fn an_execution_round_trips_with_its_sources_and_status() {
        let (_directory, store) = temp_store().await;
        let new = new_execution("app");
        let id = new.id.clone();
        store.create_execution(new.clone()).await.unwrap();

        let detail = store.get_execution(&id).await.unwrap();
        assert_eq!(detail.execution.id, id);
        assert_eq!(detail.execution.pipeline, "app");
        assert_eq!(detail.execution.pipeline_digest, "sha256:structure");
        assert_eq!(detail.execution.trigger.kind, TriggerKind::Webhook);
        assert_eq!(detail.execution.status, ExecutionStatus::InProgress);
        assert_eq!(detail.execution.started_at, at(0));
        assert_eq!(detail.execution.ended_at, None);
        assert_eq!(detail.sources, new.sources);
        assert!(detail.stages.is_empty() && detail.actions.is_empty());

        store
            .set_execution_status(
                &id,
                ExecutionStatus::Failed,
                Some("unresolved pipeline variable".to_owned()),
                at(9),
            )
            .await
            .unwrap();
        let execution = store.get_execution(&id).await.unwrap().execution;
        assert_eq!(execution.status, ExecutionStatus::Failed);
        assert_eq!(execution.ended_at, Some(at(9)));
        assert_eq!(
            execution.status_summary.as_deref(),
            Some("unresolved pipeline variable")
        );

        // A retry puts it back in progress and clears the end time.
        store
            .set_execution_status(&id, ExecutionStatus::InProgress, None, at(10))
            .await
            .unwrap();
        let execution = store.get_execution(&id).await.unwrap().execution;
        assert_eq!(
            (execution.status, execution.ended_at),
            (ExecutionStatus::InProgress, None)
        );
    }

    #[tokio::test]
    async fn listing_is_newest_first_and_filters_by_pipeline() {
        let (_directory, store) = temp_store().await;
        let first = start_execution(&store, "app").await;
        let other = start_execution(&store, "other").await;
        let second = start_execution(&store, "app").await;
        let ids = |executions: Vec<Execution>| {
            executions
                .into_iter()
                .map(|execution| execution.id)
                .collect::<Vec<_>>()
        };
        let app = store.list_executions(Some("app"), 10).await.unwrap();
        assert_eq!(ids(app), vec![second.clone(), first]);
        let all = store.list_executions(None, 2).await.unwrap();
        assert_eq!(ids(all), vec![second, other]);
    }

    #[tokio::test]
    async fn an_unknown_execution_is_not_found() {
        let (_directory, store) = temp_store().await;
        let missing = ExecutionId::from("3f1c0e1e-missing");
        let error = store.get_execution(&missing).await.unwrap_err();
        assert!(
            matches!(&error, StateError::NotFound { what: "execution", id } if id == missing.as_str()),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "find execution `3f1c0e1e-missing`");
        let error = store
            .set_execution_status(&missing, ExecutionStatus::Stopped, None, at(0))
            .await
            .unwrap_err();
        assert!(matches!(error, StateError::NotFound { .. }));
    }

    #[tokio::test]
    async fn an_unknown_stored_status_reads_as_corrupt() {
        let (_directory, store) = temp_store().await;
        let id = start_execution(&store, "app").await;
        let raw = rusqlite::Connection::open(store.path()).unwrap();
        raw.execute("UPDATE executions SET status = 'Exploded'", [])
            .unwrap();
        drop(raw);
        let error = store.get_execution(&id).await.unwrap_err();
        assert!(matches!(error, StateError::Corrupt { .. }), "{error:?}");
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert_eq!(source, "unknown ExecutionStatus `Exploded`");
    }
    #[tokio::test]
    async fn metrics_read_action_durations_and_artifact_bytes_by_pipeline() {
        let (_directory, store) = temp_store().await;
        let execution = start_execution(&store, "app").await;
        let stage = store
            .start_stage_attempt(&execution, "build", None, at(5))
            .await
            .unwrap();
        let attempt = run_action(
            &store,
            &execution,
            "build",
            stage,
            "Build",
            ActionStatus::Failed,
        )
        .await;
        start_action(&store, &execution, "build", stage, "Running").await;
        for (name, size) in [("Out", 1000), ("Logs", 24)] {
            let artifact = crate::state::NewArtifact {
                name: name.into(),
                digest: "d".repeat(64),
                size,
                location: "local".into(),
                created_at: at(20),
            };
            store.record_artifact(attempt.id, artifact).await.unwrap();
        }
        assert_eq!(
            store.action_durations().await.unwrap(),
            [ActionDuration {
                pipeline: "app".into(),
                status: ActionStatus::Failed,
                millis: 10_000,
            }],
            "the running attempt is not counted"
        );
        assert_eq!(
            store.artifact_bytes().await.unwrap(),
            [("app".to_owned(), 1024)]
        );
    }
}
