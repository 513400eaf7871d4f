//! What actions produce: artifacts (latest attempt wins, P38), variables, build numbers.

use std::collections::BTreeMap;

use rusqlite::{TransactionBehavior, params};

use super::executions::require_execution;
use super::types::Millis;
use super::{ActionRunId, Artifact, Context, ExecutionId, NewArtifact, StateError, Store};

/// Variables of one execution: namespace → name → value.
pub type Variables = BTreeMap<String, BTreeMap<String, String>>;

impl Store {
    /// Records an output artifact of an action attempt (replacing one of the same name from
    /// the same attempt).
    pub async fn record_artifact(
        &self,
        action_run: ActionRunId,
        artifact: NewArtifact,
    ) -> Result<(), StateError> {
        let operation = "record artifact";
        self.call(operation, move |connection, _| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(operation)?;
            transaction
                .query_row(
                    "SELECT 1 FROM action_runs WHERE id = ?1",
                    [action_run.0],
                    |_| Ok(()),
                )
                .or_not_found(operation, "action attempt", &action_run.to_string())?;
            transaction
                .execute(
                    "INSERT INTO artifacts (action_run_id, name, digest, size, location, \
                     created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (action_run_id, name) DO UPDATE SET digest = excluded.digest, \
                     size = excluded.size, location = excluded.location, \
                     created_at = excluded.created_at",
                    params![
                        action_run.0,
                        artifact.name,
                        artifact.digest,
                        artifact.size,
                        artifact.location,
                        Millis(artifact.created_at),
                    ],
                )
                .during(operation)?;
            transaction.commit().during(operation)
        })
        .await
    }

    /// The artifact `name` of an execution, from the latest attempt that recorded it.
    pub async fn artifact_for(
        &self,
        execution: &ExecutionId,
        name: &str,
    ) -> Result<Artifact, StateError> {
        let operation = "find artifact";
        let (execution, name) = (execution.clone(), name.to_owned());
        self.call(operation, move |connection, _| {
            connection
                .query_row(
                    "SELECT a.name, r.execution_id, r.stage, r.action, r.attempt, r.id, \
                     a.digest, a.size, a.location, a.created_at \
                     FROM artifacts AS a JOIN action_runs AS r ON r.id = a.action_run_id \
                     WHERE r.execution_id = ?1 AND a.name = ?2 \
                     ORDER BY r.attempt DESC, r.id DESC LIMIT 1",
                    params![execution, name],
                    |row| {
                        Ok(Artifact {
                            name: row.get(0)?,
                            execution_id: row.get(1)?,
                            stage: row.get(2)?,
                            action: row.get(3)?,
                            attempt: row.get(4)?,
                            action_run: ActionRunId(row.get(5)?),
                            digest: row.get(6)?,
                            size: row.get(7)?,
                            location: row.get(8)?,
                            created_at: row.get::<_, Millis>(9)?.0,
                        })
                    },
                )
                .or_not_found(operation, "artifact", &format!("{execution}/{name}"))
        })
        .await
    }

    /// Sets variables of one namespace of an execution in one transaction; a value already
    /// there is overwritten (a re-run action replaces its outputs). `action_run` names the
    /// producer, or `None` for pipeline-level variables. Never pass secrets.
    pub async fn set_variables(
        &self,
        execution: &ExecutionId,
        namespace: &str,
        action_run: Option<ActionRunId>,
        values: BTreeMap<String, String>,
    ) -> Result<(), StateError> {
        let operation = "record variables";
        let (execution, namespace) = (execution.clone(), namespace.to_owned());
        self.call(operation, move |connection, _| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .during(operation)?;
            require_execution(&transaction, &execution)?;
            {
                let mut statement = transaction
                    .prepare_cached(
                        "INSERT INTO variables (execution_id, namespace, name, value, \
                         action_run_id) VALUES (?1, ?2, ?3, ?4, ?5) \
                         ON CONFLICT (execution_id, namespace, name) DO UPDATE SET \
                         value = excluded.value, action_run_id = excluded.action_run_id",
                    )
                    .during(operation)?;
                for (name, value) in &values {
                    statement
                        .execute(params![
                            execution,
                            namespace,
                            name,
                            value,
                            action_run.map(|id| id.0),
                        ])
                        .during(operation)?;
                }
            }
            transaction.commit().during(operation)
        })
        .await
    }

    /// Every variable of an execution, by namespace.
    pub async fn variables_for(&self, execution: &ExecutionId) -> Result<Variables, StateError> {
        let operation = "load variables";
        let execution = execution.clone();
        self.call(operation, move |connection, _| {
            let transaction = connection.transaction().during(operation)?;
            require_execution(&transaction, &execution)?;
            let mut statement = transaction
                .prepare_cached(
                    "SELECT namespace, name, value FROM variables WHERE execution_id = ?1",
                )
                .during(operation)?;
            let rows = statement
                .query_map([&execution], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<(String, String, String)>>>)
                .during(operation)?;
            let mut variables = Variables::new();
            for (namespace, name, value) in rows {
                variables.entry(namespace).or_default().insert(name, value);
            }
            Ok(variables)
        })
        .await
    }

    /// The next build number of a CodeBuild project: 1, 2, 3... strictly increasing, atomic
    /// across tasks and processes.
    pub async fn next_build_number(&self, project: &str) -> Result<u64, StateError> {
        let operation = "take the next build number";
        let project = project.to_owned();
        self.call(operation, move |connection, _| {
            connection
                .query_row(
                    "INSERT INTO build_numbers (project, last) VALUES (?1, 1) \
                     ON CONFLICT (project) DO UPDATE SET last = last + 1 RETURNING last",
                    [project],
                    |row| row.get(0),
                )
                .during(operation)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{at, run_action, start_execution, temp_store};
    use crate::state::{ActionStatus, RetryMode, StageStatus};

    fn artifact(name: &str, digest: &str) -> NewArtifact {
        NewArtifact {
            name: name.to_owned(),
            digest: digest.to_owned(),
            size: 1234,
            location: format!("app/{name}/{digest}.zip"),
            created_at: at(15),
        }
    }

    #[tokio::test]
    async fn two_attempts_of_an_action_are_both_kept_and_the_latest_artifact_wins() {
        let (_directory, store) = temp_store().await;
        let execution = start_execution(&store, "app").await;
        let first_stage = store
            .start_stage_attempt(&execution, "build", None, at(1))
            .await
            .unwrap();
        let first = run_action(
            &store,
            &execution,
            "build",
            first_stage,
            "Compile",
            ActionStatus::Failed,
        )
        .await;
        store
            .record_artifact(first.id, artifact("BuildOutput", "sha256:aaa"))
            .await
            .unwrap();
        store
            .finish_stage(&execution, "build", first_stage, StageStatus::Failed, at(2))
            .await
            .unwrap();
        let second_stage = store
            .start_stage_attempt(&execution, "build", Some(RetryMode::FailedActions), at(3))
            .await
            .unwrap();
        let second = run_action(
            &store,
            &execution,
            "build",
            second_stage,
            "Compile",
            ActionStatus::Succeeded,
        )
        .await;
        store
            .record_artifact(second.id, artifact("BuildOutput", "sha256:bbb"))
            .await
            .unwrap();

        let found = store.artifact_for(&execution, "BuildOutput").await.unwrap();
        assert_eq!(found.digest, "sha256:bbb");
        assert_eq!(found.attempt, 2);
        assert_eq!(found.action_run, second.id);
        assert_eq!(
            (found.stage.as_str(), found.action.as_str()),
            ("build", "Compile")
        );
        assert_eq!(found.size, 1234);
        assert_eq!(found.location, "app/BuildOutput/sha256:bbb.zip");

        let detail = store.get_execution(&execution).await.unwrap();
        let attempts: Vec<_> = detail
            .actions
            .iter()
            .map(|run| (run.attempt, run.stage_attempt, run.status))
            .collect();
        assert_eq!(
            attempts,
            vec![
                (1, 1, ActionStatus::Failed),
                (2, 2, ActionStatus::Succeeded)
            ]
        );
        let stages: Vec<_> = detail
            .stages
            .iter()
            .map(|stage| (stage.attempt, stage.retry_mode, stage.status))
            .collect();
        assert_eq!(
            stages,
            vec![
                (1, None, StageStatus::Failed),
                (2, Some(RetryMode::FailedActions), StageStatus::InProgress)
            ]
        );
        let latest: Vec<_> = detail.latest_actions("build").map(|run| run.id).collect();
        assert_eq!(latest, vec![second.id]);
    }

    #[tokio::test]
    async fn a_missing_artifact_is_not_found() {
        let (_directory, store) = temp_store().await;
        let execution = start_execution(&store, "app").await;
        let error = store.artifact_for(&execution, "Nope").await.unwrap_err();
        assert!(
            matches!(
                error,
                StateError::NotFound {
                    what: "artifact",
                    ..
                }
            ),
            "{error:?}"
        );
        let error = store
            .record_artifact(ActionRunId(42), artifact("Nope", "sha256:ccc"))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            StateError::NotFound {
                what: "action attempt",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn variables_round_trip_and_a_rerun_overwrites_them() {
        let (_directory, store) = temp_store().await;
        let execution = start_execution(&store, "app").await;
        let stage = store
            .start_stage_attempt(&execution, "build", None, at(1))
            .await
            .unwrap();
        let run = run_action(
            &store,
            &execution,
            "build",
            stage,
            "Compile",
            ActionStatus::Failed,
        )
        .await;
        let values = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        store
            .set_variables(&execution, "variables", None, values(&[("Env", "prod")]))
            .await
            .unwrap();
        store
            .set_variables(
                &execution,
                "BuildVariables",
                Some(run.id),
                values(&[("Tag", "v1")]),
            )
            .await
            .unwrap();
        store
            .set_variables(
                &execution,
                "BuildVariables",
                Some(run.id),
                values(&[("Tag", "v2")]),
            )
            .await
            .unwrap();

        let variables = store.variables_for(&execution).await.unwrap();
        assert_eq!(variables["variables"]["Env"], "prod");
        assert_eq!(variables["BuildVariables"]["Tag"], "v2");
        assert_eq!(variables.len(), 2);
        let missing = ExecutionId::from("missing");
        assert!(matches!(
            store.variables_for(&missing).await.unwrap_err(),
            StateError::NotFound {
                what: "execution",
                ..
            }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn build_numbers_increase_strictly_under_concurrent_calls() {
        let (_directory, store) = temp_store().await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let store = store.clone();
            tasks.spawn(async move { store.next_build_number("lambdas").await.unwrap() });
        }
        let mut numbers = tasks.join_all().await;
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=20).collect::<Vec<u64>>());
        assert_eq!(store.next_build_number("other").await.unwrap(), 1);
        assert_eq!(store.next_build_number("lambdas").await.unwrap(), 21);
    }
}
