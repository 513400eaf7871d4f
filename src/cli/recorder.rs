//! The state recorder and console reporter: subscribers of the engine's [`RunEvent`]s.
//!
//! The engine never writes to the database (STYLE B2); this task does, one event at a time, and
//! appends each action's log lines to `<data>/logs/<execution>/<stage>.<action>.<attempt>.log`.
//! It also prints progress and every log line, prefixed by its action, to stdout.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::engine::{ActionStatus, RunEvent, RunEventKind, RunStatus};
use crate::pipeline::{ActionId, Pipeline};
use crate::state::{
    self, ActionRunId, ExecutionId, ExecutionStatus, NewActionRun, NewArtifact, PhaseStatus,
    RetryMode, StageStatus, Store,
};

/// Records one execution's events until it finishes.
pub(crate) struct Recorder {
    store: Store,
    pipeline: Arc<Pipeline>,
    execution: ExecutionId,
    logs_dir: PathBuf,
    retry: Option<(usize, RetryMode)>,
    stage_attempts: HashMap<usize, u32>,
    actions: HashMap<ActionId, (ActionRunId, fs_err::File)>,
    started: HashMap<ActionId, chrono::DateTime<chrono::Utc>>,
    /// Why the execution was superseded, for its summary.
    superseded: Option<String>,
    quiet: bool,
}

impl Recorder {
    /// A recorder for `execution`; `retry` names the retried stage and its mode.
    pub(crate) fn new(
        store: Store,
        pipeline: Arc<Pipeline>,
        execution: ExecutionId,
        logs_dir: PathBuf,
        retry: Option<(usize, RetryMode)>,
    ) -> Self {
        Self {
            store,
            pipeline,
            execution,
            logs_dir,
            retry,
            stage_attempts: HashMap::new(),
            actions: HashMap::new(),
            started: HashMap::new(),
            superseded: None,
            quiet: false,
        }
    }

    /// Records events until the channel closes; returns the execution's final status.
    pub(crate) async fn record(
        mut self,
        mut events: mpsc::UnboundedReceiver<RunEvent>,
    ) -> anyhow::Result<Option<RunStatus>> {
        let mut last = None;
        while let Some(event) = events.recv().await {
            if let RunEventKind::RunFinished { status } = &event.kind {
                last = Some(*status);
            }
            self.handle(event).await?;
        }
        Ok(last)
    }

    fn name(&self, id: ActionId) -> String {
        self.pipeline.qualified_name(id)
    }

    async fn handle(&mut self, event: RunEvent) -> anyhow::Result<()> {
        let at = event.at;
        match event.kind {
            RunEventKind::RunStarted => Ok(()),
            RunEventKind::StageStarted {
                stage,
                automatic_retry,
            } => self.on_stage_started(stage, automatic_retry, at).await,
            RunEventKind::ActionStarted { action } => self.on_action_started(action, at).await,
            RunEventKind::ActionLog { action, line } => self.on_action_log(action, &line),
            RunEventKind::ActionFinished { action, outcome } => {
                self.on_action_finished(action, outcome, at).await
            }
            RunEventKind::StageCondition { stage, message } => {
                self.on_stage_condition(stage, &message);
                Ok(())
            }
            RunEventKind::StageFinished { stage, status } => {
                self.on_stage_finished(stage, status, at).await
            }
            RunEventKind::RunFinished { status } => self.on_run_finished(status, at).await,
        }
    }

    #[expect(
        clippy::print_stdout,
        reason = "the recorder is also the console reporter"
    )]
    async fn on_stage_started(
        &mut self,
        stage: usize,
        automatic_retry: Option<crate::pipeline::RetryMode>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        let name = self.pipeline.stages[stage].name.clone();
        let automatic = automatic_retry.map(|mode| match mode {
            crate::pipeline::RetryMode::FailedActions => RetryMode::FailedActions,
            crate::pipeline::RetryMode::AllActions => RetryMode::AllActions,
        });
        let mode = automatic.or_else(|| self.retry.filter(|(s, _)| *s == stage).map(|(_, m)| m));
        if automatic.is_some() {
            println!("==> stage {name} failed: retrying it automatically (P39)");
        }
        let attempt = self
            .store
            .start_stage_attempt(&self.execution, &name, mode, at)
            .await
            .with_context(|| format!("record the start of stage {name}"))?;
        self.stage_attempts.insert(stage, attempt);
        println!("==> stage {name} started");
        Ok(())
    }

    #[expect(
        clippy::print_stdout,
        reason = "the recorder is also the console reporter"
    )]
    async fn on_action_started(
        &mut self,
        action: ActionId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        let stage = self.pipeline.stages[action.stage].name.clone();
        let action_name = self.pipeline.stages[action.stage].actions[action.action]
            .name
            .clone();
        let stage_attempt = self.stage_attempts.get(&action.stage).copied().unwrap_or(1);
        let dir = self.logs_dir.join(self.execution.as_str());
        fs_err::create_dir_all(&dir).context("create the log directory")?;
        let attempt = self
            .store
            .start_action_attempt(NewActionRun {
                execution_id: self.execution.clone(),
                stage: stage.clone(),
                stage_attempt,
                action: action_name.clone(),
                build_id: None,
                build_number: None,
                log_path: None,
                started_at: at,
            })
            .await
            .with_context(|| format!("record the start of {stage}.{action_name}"))?;
        let path = dir.join(format!("{stage}.{action_name}.{}.log", attempt.attempt));
        let file = fs_err::File::create(&path).context("create the action's log file")?;
        self.store
            .set_action_details(attempt.id, Some(path), None)
            .await
            .context("record the log path")?;
        self.actions.insert(action, (attempt.id, file));
        self.started.insert(action, at);
        println!(
            "==> {stage}.{action_name} started (attempt {})",
            attempt.attempt
        );
        Ok(())
    }

    #[expect(
        clippy::print_stdout,
        reason = "the recorder is also the console reporter"
    )]
    fn on_action_log(&mut self, action: ActionId, line: &str) -> anyhow::Result<()> {
        if let Some((_, file)) = self.actions.get_mut(&action) {
            writeln!(file, "{line}").context("write the action's log")?;
        }
        if !self.quiet {
            println!("[{}] {line}", self.name(action));
        }
        Ok(())
    }

    #[expect(
        clippy::print_stdout,
        reason = "the recorder is also the console reporter"
    )]
    async fn on_action_finished(
        &mut self,
        action: ActionId,
        outcome: Box<crate::engine::ActionOutcome>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        let Some((run, _file)) = self.actions.remove(&action) else {
            // It never started: stopped or superseded while it waited.
            let reason = outcome.error.unwrap_or_default();
            println!(
                "==> {} {}: {reason}",
                self.name(action),
                outcome.status.as_str()
            );
            if outcome.status == ActionStatus::Superseded {
                self.superseded.get_or_insert(reason);
            }
            return Ok(());
        };
        let status = match outcome.status {
            ActionStatus::Succeeded => state::ActionStatus::Succeeded,
            ActionStatus::Failed => state::ActionStatus::Failed,
            // A cancel kills running builds: CodePipeline's "stop and abandon" (P12, P19).
            ActionStatus::Stopped | ActionStatus::Superseded => state::ActionStatus::Abandoned,
        };
        let phases = outcome.phases.iter().map(phase_record).collect();
        self.store
            .finish_action(
                run,
                state::ActionOutcome {
                    status,
                    exit_code: None,
                    error: outcome.error.clone(),
                    phases,
                    ended_at: at,
                },
            )
            .await
            .context("record the end of an action")?;
        if let Some(build_id) = &outcome.build_id {
            self.store
                .set_action_details(run, None, Some(build_id.clone()))
                .await
                .context("record the build id")?;
        }
        for (name, reference) in &outcome.outputs.artifacts {
            self.store
                .record_artifact(
                    run,
                    NewArtifact {
                        name: name.clone(),
                        digest: reference.digest.to_string(),
                        size: reference.size,
                        location: "local".into(),
                        created_at: at,
                    },
                )
                .await
                .context("record an artifact")?;
        }
        let namespace = self
            .pipeline
            .action(action)
            .and_then(|a| a.namespace.clone());
        if let Some(namespace) = namespace.filter(|_| !outcome.outputs.variables.is_empty()) {
            self.store
                .set_variables(
                    &self.execution,
                    &namespace,
                    Some(run),
                    outcome.outputs.variables.clone(),
                )
                .await
                .context("record output variables")?;
        }
        let detail = outcome
            .error
            .as_deref()
            .map_or_else(String::new, |e| format!(": {e}"));
        let elapsed = self
            .started
            .remove(&action)
            .map_or_else(String::new, |start| {
                let millis = (at - start).num_milliseconds().max(0);
                format!(" after {}.{:01}s", millis / 1000, (millis % 1000) / 100)
            });
        println!(
            "==> {} {}{elapsed}{detail}",
            self.name(action),
            outcome.status.as_str()
        );
        Ok(())
    }

    #[expect(
        clippy::print_stdout,
        reason = "the recorder is also the console reporter"
    )]
    async fn on_stage_finished(
        &mut self,
        stage: usize,
        status: RunStatus,
        at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        let name = self.pipeline.stages[stage].name.clone();
        let attempt = self.stage_attempts.get(&stage).copied().unwrap_or(1);
        self.store
            .finish_stage(&self.execution, &name, attempt, stage_status(status), at)
            .await
            .context("record the end of a stage")?;
        println!("==> stage {name} {}", status.as_str());
        Ok(())
    }

    #[expect(
        clippy::print_stdout,
        reason = "the recorder is also the console reporter"
    )]
    fn on_stage_condition(&self, stage: usize, message: &str) {
        println!(
            "==> stage {} condition {message}",
            self.pipeline.stages[stage].name
        );
    }

    async fn on_run_finished(
        &mut self,
        status: RunStatus,
        at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        let status = match status {
            // The dispatcher never ends an execution as skipped; only stages are.
            RunStatus::Succeeded | RunStatus::Skipped => ExecutionStatus::Succeeded,
            RunStatus::Failed => ExecutionStatus::Failed,
            RunStatus::Stopped => ExecutionStatus::Stopped,
            RunStatus::Superseded => ExecutionStatus::Superseded,
        };
        let summary = self
            .superseded
            .take()
            .filter(|_| status == ExecutionStatus::Superseded);
        self.store
            .set_execution_status(&self.execution, status, summary, at)
            .await
            .context("record the end of the execution")?;
        Ok(())
    }
}

fn stage_status(status: RunStatus) -> StageStatus {
    match status {
        RunStatus::Succeeded => StageStatus::Succeeded,
        RunStatus::Failed => StageStatus::Failed,
        // A superseded execution never entered the stage; its waiting actions are abandoned.
        RunStatus::Stopped | RunStatus::Superseded => StageStatus::Stopped,
        RunStatus::Skipped => StageStatus::Skipped,
    }
}

fn phase_record(phase: &crate::build::PhaseRecord) -> state::Phase {
    use crate::build::Status;
    state::Phase {
        name: phase.name.clone(),
        status: match phase.status {
            Status::Succeeded => PhaseStatus::Succeeded,
            Status::Failed => PhaseStatus::Failed,
            Status::Fault => PhaseStatus::Fault,
            Status::TimedOut => PhaseStatus::TimedOut,
            Status::Stopped => PhaseStatus::Stopped,
            Status::InProgress => PhaseStatus::InProgress,
        },
        started_at: phase.started,
        ended_at: phase.ended,
        context: phase
            .context
            .clone()
            .map(|(code, message)| state::PhaseContext { code, message }),
    }
}
