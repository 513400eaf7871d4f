//! Stage retries of `runner serve` ([`Retries`]): a retry asked for over HTTP is checked with
//! `cli::retry` (P36, P37) and against the pipeline's stage locks, marked `InProgress`, and
//! run in the background; the HTTP answer does not wait for it.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::retry::{self, RetryRefusal};
use super::run::Workspace;
use super::settings::Settings;
use crate::daemon::locks::StageLocks;
use crate::dag::Plan;
use crate::pipeline::Pipeline;
use crate::server::{RetryRefused, RetryRequest, RetryStarted};
use crate::state::{ExecutionId, ExecutionStatus, StateError};

/// Stage retries of `runner serve`: checked one at a time, then run in the background.
pub(crate) struct Retries {
    settings: Settings,
    workspace: Arc<Workspace>,
    /// The served pipelines with their plans.
    pipelines: Vec<(Arc<Pipeline>, Arc<Plan>)>,
    parallelism: usize,
    /// Stops running retries after the shutdown grace, as it stops the workers' executions.
    abort: CancellationToken,
    /// Held while a retry is checked and marked `InProgress`, so that two requests for one
    /// stage cannot both pass the checks.
    checking: tokio::sync::Mutex<()>,
    /// Retries still running; [`Retries::finish`] waits for them.
    running: Mutex<JoinSet<()>>,
    /// The pipelines' stage locks, in the order of `pipelines`; empty: retries take none.
    locks: Vec<Arc<StageLocks>>,
}

impl Retries {
    /// Retries of `pipelines` over `workspace`, each running up to `parallelism` actions until
    /// `abort` stops them.
    pub(crate) fn new(
        settings: Settings,
        workspace: Arc<Workspace>,
        pipelines: Vec<(Arc<Pipeline>, Arc<Plan>)>,
        parallelism: usize,
        abort: CancellationToken,
    ) -> Self {
        Self {
            settings,
            workspace,
            pipelines,
            parallelism,
            abort,
            checking: tokio::sync::Mutex::new(()),
            running: Mutex::new(JoinSet::new()),
            locks: Vec::new(),
        }
    }

    /// Retries take the stage locks of their pipeline (`locks`, in the order of the pipelines)
    /// as executions do, and are refused while another execution is in the stage or waits in
    /// front of it.
    #[must_use]
    pub(crate) fn with_stage_locks(mut self, locks: Vec<Arc<StageLocks>>) -> Self {
        self.locks = locks;
        self
    }

    /// Waits for every running retry; after the shutdown grace, `abort` has stopped them.
    pub(crate) async fn finish(&self) {
        let mut running =
            std::mem::take(&mut *self.running.lock().unwrap_or_else(PoisonError::into_inner));
        while running.join_next().await.is_some() {}
    }

    /// Checks `request`, marks the execution `InProgress` and starts it in the background.
    pub(crate) async fn start(
        self: Arc<Self>,
        request: RetryRequest,
    ) -> Result<RetryStarted, RetryRefused> {
        let execution = ExecutionId::from(request.execution.as_str());
        let detail = self
            .workspace
            .store
            .get_execution(&execution)
            .await
            .map_err(refused)?;
        let Some((index, (pipeline, plan))) = self
            .pipelines
            .iter()
            .enumerate()
            .find(|(_, (pipeline, _))| pipeline.name == detail.execution.pipeline)
        else {
            return Err(RetryRefused::NotFound {
                what: "pipeline",
                id: detail.execution.pipeline,
            });
        };
        let locks = self.locks.get(index).cloned();
        let prepared = {
            let _checking = self.checking.lock().await;
            // Before `prepare`, which marks the execution `InProgress`.
            if let Some(locks) = &locks
                && let Some(stage) = locks.stage_index(&request.stage)
                && locks.busy(stage, &request.execution)
            {
                return Err(RetryRefused::Conflict {
                    reason: format!(
                        "another execution is in stage {} or waits in front of it; retry once \
                         it has passed (P37)",
                        request.stage
                    ),
                });
            }
            let prepared = retry::prepare(
                &self.workspace,
                pipeline,
                plan,
                &execution,
                &request.stage,
                request.mode,
            )
            .await
            .map_err(|error| refused_retry(&error))?;
            if let Some(locks) = &locks {
                locks.resume_at(&request.execution, prepared.stage_index());
            }
            prepared
        };
        let started = RetryStarted {
            execution: request.execution,
            stage: prepared.stage().to_owned(),
            mode: request.mode.as_str(),
        };
        let this = Arc::clone(&self);
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        while running.try_join_next().is_some() {}
        running.spawn(async move { this.run(prepared, locks).await });
        Ok(started)
    }

    /// Runs a prepared retry; when it cannot even start, the execution ends `Failed` instead of
    /// staying `InProgress`.
    async fn run(&self, prepared: retry::PreparedRetry, locks: Option<Arc<StageLocks>>) {
        let execution = prepared.execution().clone();
        let stage = prepared.stage().to_owned();
        let held = locks.as_ref().map(|locks| locks.hold(execution.as_str()));
        let outcome = retry::run_prepared(
            &self.settings,
            &self.workspace,
            prepared,
            self.parallelism,
            Some(&self.abort),
            locks.as_ref(),
        )
        .await;
        drop(held);
        match outcome {
            Ok(outcome) => info!(
                execution = execution.as_str(),
                stage,
                ?outcome,
                "retry ended"
            ),
            Err(error) => {
                let error = format!("{error:#}");
                warn!(
                    execution = execution.as_str(),
                    stage, error, "the retry could not run"
                );
                let summary = format!("the retry of stage {stage} could not run: {error}");
                let marked = self
                    .workspace
                    .store
                    .set_execution_status(
                        &execution,
                        ExecutionStatus::Failed,
                        Some(summary),
                        chrono::Utc::now(),
                    )
                    .await;
                if let Err(error) = marked {
                    warn!(execution = execution.as_str(), %error, "could not mark the retry failed");
                }
            }
        }
    }
}

/// A state database error as a refusal: `NotFound` stays a 404.
fn refused(error: StateError) -> RetryRefused {
    match error {
        StateError::NotFound { what, id } => RetryRefused::NotFound { what, id },
        other => RetryRefused::Failed(Box::new(other)),
    }
}

/// A failed `retry::prepare` as a refusal: the rules of P37 are conflicts, an unknown stage or
/// execution is not found, anything else failed.
fn refused_retry(error: &anyhow::Error) -> RetryRefused {
    if let Some(refusal) = error.downcast_ref::<RetryRefusal>() {
        return match refusal {
            RetryRefusal::UnknownStage { stage, .. } => RetryRefused::NotFound {
                what: "stage",
                id: stage.clone(),
            },
            other => RetryRefused::Conflict {
                reason: other.to_string(),
            },
        };
    }
    if let Some(StateError::NotFound { what, id }) = error.downcast_ref::<StateError>() {
        return RetryRefused::NotFound {
            what,
            id: id.clone(),
        };
    }
    RetryRefused::Failed(format!("{error:#}").into())
}
