//! The records the store reads and writes: ids and rows, free of SQL.

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

use super::status::{
    ActionStatus, ExecutionStatus, PhaseStatus, RetryMode, StageStatus, TriggerKind,
};

/// A pipeline execution id: a uuid string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutionId(String);

impl ExecutionId {
    /// A fresh random (v4) id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text (also the `runner.run-id` container label).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for ExecutionId {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for ExecutionId {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl ToSql for ExecutionId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.as_str()))
    }
}

impl FromSql for ExecutionId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Self(value.as_str()?.to_owned()))
    }
}

/// The row id of one action attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionRunId(pub(super) i64);

impl fmt::Display for ActionRunId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

/// A time stored as unix milliseconds.
#[derive(Clone, Copy)]
pub(super) struct Millis(pub(super) DateTime<Utc>);

impl ToSql for Millis {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.timestamp_millis()))
    }
}

impl FromSql for Millis {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let millis = value.as_i64()?;
        DateTime::from_timestamp_millis(millis)
            .map(Millis)
            .ok_or(FromSqlError::OutOfRange(millis))
    }
}

/// Why an execution started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The kind of trigger.
    pub kind: TriggerKind,
    /// Free text for people: `push refs/heads/main`, `pull request #12 CLOSED (merged)`.
    pub detail: String,
}

/// The revision one source action fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRevision {
    /// Source action name.
    pub action: String,
    /// Commit id (or other revision value).
    pub revision_id: String,
    /// Branch or tag, when known.
    pub ref_name: Option<String>,
    /// First line of the commit message, when known.
    pub summary: Option<String>,
}

/// What [`Store::create_execution`](super::Store::create_execution) records.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// The new id (chosen by the caller so containers can be labelled before the row exists).
    pub id: ExecutionId,
    /// Pipeline name.
    pub pipeline: String,
    /// Digest of the validated pipeline structure; a retry after it changed is refused (P37).
    pub pipeline_digest: String,
    /// What started it.
    pub trigger: Trigger,
    /// Source revisions, one per source action, if already known.
    pub sources: Vec<SourceRevision>,
    /// Start time.
    pub started_at: DateTime<Utc>,
}

/// One execution, without its stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Id.
    pub id: ExecutionId,
    /// Pipeline name.
    pub pipeline: String,
    /// Digest of the pipeline structure it ran with.
    pub pipeline_digest: String,
    /// What started it.
    pub trigger: Trigger,
    /// Current status.
    pub status: ExecutionStatus,
    /// Why it ended that way, for people (`unresolved pipeline variable`).
    pub status_summary: Option<String>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, once terminal.
    pub ended_at: Option<DateTime<Utc>>,
}

/// One stage attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRun {
    /// Stage name.
    pub stage: String,
    /// 1 for the first run, then one more per retry.
    pub attempt: u32,
    /// For a retry, what it re-ran.
    pub retry_mode: Option<RetryMode>,
    /// Status.
    pub status: StageStatus,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, once terminal.
    pub ended_at: Option<DateTime<Utc>>,
}

/// What [`Store::start_action_attempt`](super::Store::start_action_attempt) records.
#[derive(Debug, Clone)]
pub struct NewActionRun {
    /// Execution.
    pub execution_id: ExecutionId,
    /// Stage name.
    pub stage: String,
    /// The stage attempt running it (from `start_stage_attempt`).
    pub stage_attempt: u32,
    /// Action name.
    pub action: String,
    /// `<project>:<uuid>` for a CodeBuild action.
    pub build_id: Option<String>,
    /// The project's build counter for a CodeBuild action.
    pub build_number: Option<u64>,
    /// Where the action's log is written (known at start so it can be followed).
    pub log_path: Option<PathBuf>,
    /// Start time.
    pub started_at: DateTime<Utc>,
}

/// The row and attempt number given to a new action attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionAttempt {
    /// Row id, for `finish_action`, `record_phase` and `record_artifact`.
    pub id: ActionRunId,
    /// 1 for the action's first run, then one more per re-run.
    pub attempt: u32,
}

/// How an action attempt ended.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    /// Final status.
    pub status: ActionStatus,
    /// The build's exit code, when a command failed.
    pub exit_code: Option<i32>,
    /// What went wrong, already masked.
    pub error: Option<String>,
    /// Phases to record (merged with any recorded before, by name).
    pub phases: Vec<Phase>,
    /// End time.
    pub ended_at: DateTime<Utc>,
}

/// One row of a build's phase table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// `INSTALL`, `UPLOAD_ARTIFACTS`...
    pub name: String,
    /// Status.
    pub status: PhaseStatus,
    /// When the phase was entered.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// `Phase context status code` and message, for a failed phase; already masked.
    pub context: Option<PhaseContext>,
}

/// Why a phase failed, as CodeBuild reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseContext {
    /// `COMMAND_EXECUTION_ERROR`, `CLIENT_ERROR`...
    pub code: String,
    /// The message.
    pub message: String,
}

/// One action attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRun {
    /// Row id.
    pub id: ActionRunId,
    /// Stage name.
    pub stage: String,
    /// The stage attempt that ran it.
    pub stage_attempt: u32,
    /// Action name.
    pub action: String,
    /// The action's own attempt number.
    pub attempt: u32,
    /// Status.
    pub status: ActionStatus,
    /// The build's exit code, when known.
    pub exit_code: Option<i32>,
    /// `<project>:<uuid>`, for a CodeBuild action.
    pub build_id: Option<String>,
    /// The project's build counter.
    pub build_number: Option<u64>,
    /// Where the log is.
    pub log_path: Option<PathBuf>,
    /// What went wrong.
    pub error: Option<String>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, once finished.
    pub ended_at: Option<DateTime<Utc>>,
    /// Phase table, in the order recorded.
    pub phases: Vec<Phase>,
}

/// An execution with everything recorded about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionDetail {
    /// The execution.
    pub execution: Execution,
    /// Source revisions.
    pub sources: Vec<SourceRevision>,
    /// Every stage attempt, in the order started.
    pub stages: Vec<StageRun>,
    /// Every action attempt, in the order started.
    pub actions: Vec<ActionRun>,
}

impl ExecutionDetail {
    /// The latest attempt of each action of `stage`, in the order the actions first started.
    pub fn latest_actions<'a>(&'a self, stage: &'a str) -> impl Iterator<Item = &'a ActionRun> {
        latest_attempts(&self.actions, stage)
    }
}

/// The latest attempt of each action of `stage` among `runs`, keeping the order of `runs`.
pub(super) fn latest_attempts<'a>(
    runs: &'a [ActionRun],
    stage: &'a str,
) -> impl Iterator<Item = &'a ActionRun> {
    runs.iter().filter(move |run| {
        run.stage == stage
            && !runs.iter().any(|later| {
                later.stage == stage && later.action == run.action && later.attempt > run.attempt
            })
    })
}

/// What [`Store::record_artifact`](super::Store::record_artifact) records.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    /// Output artifact name (unique in the pipeline, P6).
    pub name: String,
    /// `sha256:<hex>` of the stored object.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the artifact store keeps it (a key or path it understands).
    pub location: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// A stored output artifact and who produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Artifact name.
    pub name: String,
    /// Execution.
    pub execution_id: ExecutionId,
    /// Producing stage.
    pub stage: String,
    /// Producing action.
    pub action: String,
    /// The producing action's attempt.
    pub attempt: u32,
    /// The producing action attempt's row.
    pub action_run: ActionRunId,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the artifact store keeps it.
    pub location: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}
