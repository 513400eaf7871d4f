//! After a crash: executions whose runner died become `Abandoned`, in one transaction.

use chrono::{DateTime, Utc};
use rusqlite::{TransactionBehavior, params};

use super::types::Millis;
use super::{
    ActionStatus, Context, ExecutionId, ExecutionStatus, PhaseStatus, StageStatus, StateError,
    Store,
};

impl Store {
    /// Marks every unfinished execution whose owning runner process is dead as `Abandoned`,
    /// with its unfinished stage attempts, action attempts (`Abandoned`) and phases (`FAULT`),
    /// all ended at `now`. Returns the executions it marked, so the caller can remove the
    /// containers labelled with their ids.
    ///
    /// Executions driven by live runners, this one included, are left alone, so a second
    /// `runner` process on the same data directory does not abandon a running daemon's work.
    /// Safe to call again at any time: a second call finds nothing new.
    pub async fn mark_abandoned_on_startup(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<ExecutionId>, StateError> {
        let operation = "mark abandoned executions";
        self.call(operation, move |connection, inner| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(operation)?;
            let candidates: Vec<(ExecutionId, Option<String>)> = {
                let mut statement = transaction
                    .prepare(
                        "SELECT id, owner FROM executions WHERE status IN (?1, ?2) ORDER BY seq",
                    )
                    .during(operation)?;
                statement
                    .query_map(
                        params![ExecutionStatus::InProgress, ExecutionStatus::Stopping],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .and_then(Iterator::collect)
                    .during(operation)?
            };
            let mut abandoned = Vec::new();
            for (execution, owner) in candidates {
                let alive = owner
                    .as_deref()
                    .is_some_and(|owner| inner.owner.is_alive(&inner.path, owner));
                if alive {
                    continue;
                }
                abandon(&transaction, &execution, Millis(now)).during(operation)?;
                abandoned.push(execution);
            }
            transaction.commit().during(operation)?;
            if !abandoned.is_empty() {
                tracing::info!(
                    count = abandoned.len(),
                    "marked executions of dead runners abandoned"
                );
            }
            Ok(abandoned)
        })
        .await
    }
}

fn abandon(
    transaction: &rusqlite::Transaction<'_>,
    execution: &ExecutionId,
    now: Millis,
) -> rusqlite::Result<()> {
    transaction.execute(
        "UPDATE phases SET status = ?3, ended_at = ?2, \
         context_code = coalesce(context_code, 'RUNNER_EXITED'), \
         context_message = coalesce(context_message, 'the runner exited while the phase ran') \
         WHERE status = ?4 AND action_run_id IN \
         (SELECT id FROM action_runs WHERE execution_id = ?1)",
        params![execution, now, PhaseStatus::Fault, PhaseStatus::InProgress],
    )?;
    transaction.execute(
        "UPDATE action_runs SET status = ?3, ended_at = ?2 \
         WHERE execution_id = ?1 AND status = ?4",
        params![
            execution,
            now,
            ActionStatus::Abandoned,
            ActionStatus::InProgress
        ],
    )?;
    transaction.execute(
        "UPDATE stage_runs SET status = ?3, ended_at = ?2 \
         WHERE execution_id = ?1 AND status IN (?4, ?5)",
        params![
            execution,
            now,
            StageStatus::Abandoned,
            StageStatus::InProgress,
            StageStatus::Stopping
        ],
    )?;
    transaction.execute(
        "UPDATE executions SET status = ?3, ended_at = ?2, \
         status_summary = coalesce(status_summary, 'the runner driving it exited') \
         WHERE id = ?1",
        params![execution, now, ExecutionStatus::Abandoned],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{at, start_action, start_execution};
    use crate::state::{Phase, StageStatus};

    #[tokio::test]
    async fn a_crashed_runners_execution_is_abandoned_everywhere_on_the_next_start() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        let store = Store::open(&path).await.unwrap();
        let execution = start_execution(&store, "app").await;
        let stage = store
            .start_stage_attempt(&execution, "build", None, at(1))
            .await
            .unwrap();
        let action = start_action(&store, &execution, "build", stage, "Compile").await;
        store
            .record_phase(
                action.id,
                Phase {
                    name: "BUILD".to_owned(),
                    status: PhaseStatus::InProgress,
                    started_at: at(2),
                    ended_at: None,
                    context: None,
                },
            )
            .await
            .unwrap();
        // The runner dies: nothing is finished, the store is simply gone.
        drop(store);

        let store = Store::open(&path).await.unwrap();
        let abandoned = store.mark_abandoned_on_startup(at(100)).await.unwrap();
        assert_eq!(abandoned, vec![execution.clone()]);

        let detail = store.get_execution(&execution).await.unwrap();
        assert_eq!(detail.execution.status, ExecutionStatus::Abandoned);
        assert_eq!(detail.execution.ended_at, Some(at(100)));
        assert_eq!(detail.stages[0].status, StageStatus::Abandoned);
        assert_eq!(detail.stages[0].ended_at, Some(at(100)));
        let run = &detail.actions[0];
        assert_eq!(run.status, ActionStatus::Abandoned);
        assert_eq!(run.ended_at, Some(at(100)));
        assert_eq!(run.phases[0].status, PhaseStatus::Fault);
        assert_eq!(run.phases[0].ended_at, Some(at(100)));

        // Nothing new the second time, and the abandoned stage is now retryable.
        assert!(
            store
                .mark_abandoned_on_startup(at(200))
                .await
                .unwrap()
                .is_empty()
        );
        let failed = store
            .latest_execution_where_stage_failed("app", "build")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failed.id, execution);
    }

    #[tokio::test]
    async fn executions_of_live_runners_are_left_alone() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        let daemon = Store::open(&path).await.unwrap();
        let running = start_execution(&daemon, "app").await;
        let finished = start_execution(&daemon, "app").await;
        daemon
            .set_execution_status(&finished, ExecutionStatus::Succeeded, None, at(5))
            .await
            .unwrap();

        // A second runner process on the same data directory, and the daemon itself.
        let other = Store::open(&path).await.unwrap();
        assert!(
            other
                .mark_abandoned_on_startup(at(10))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            daemon
                .mark_abandoned_on_startup(at(10))
                .await
                .unwrap()
                .is_empty()
        );
        let detail = other.get_execution(&running).await.unwrap();
        assert_eq!(detail.execution.status, ExecutionStatus::InProgress);
        assert_eq!(detail.execution.ended_at, None);

        drop(daemon);
        let abandoned = other.mark_abandoned_on_startup(at(20)).await.unwrap();
        assert_eq!(abandoned, vec![running]);
        let detail = other.get_execution(&finished).await.unwrap();
        assert_eq!(detail.execution.status, ExecutionStatus::Succeeded);
    }
}
