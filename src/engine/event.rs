//! What the engine says: execution ids, statuses, and the [`RunEvent`]s it emits.
//!
//! The engine's only output is a stream of [`RunEvent`]s; the console reporter and the state
//! recorder (both in `cli`) subscribe to it. Plain data.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::artifacts::ArtifactRef;
use crate::build::PhaseRecord;
use crate::pipeline::{ActionId, RetryMode};

/// A pipeline execution id (a uuid, like CodePipeline's).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub String);

impl RunId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an action ended (P12; `Stopped` for a cancelled one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Stopped by a cancel.
    Stopped,
    /// Never entered its stage: a newer execution replaced it in front of it (P18, P20).
    Superseded,
}

/// How a stage or an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Everything in scope succeeded.
    Succeeded,
    /// Something failed.
    Failed,
    /// Cancelled or timed out.
    Stopped,
    /// A stage skipped by its entry condition (P42); never an execution's status.
    Skipped,
    /// A newer execution replaced it in front of a stage (P18, P20).
    Superseded,
}

impl RunStatus {
    /// CodePipeline's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Failed => "Failed",
            RunStatus::Stopped => "Stopped",
            RunStatus::Skipped => "Skipped",
            RunStatus::Superseded => "Superseded",
        }
    }
}

impl ActionStatus {
    /// CodePipeline's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Succeeded => "Succeeded",
            ActionStatus::Failed => "Failed",
            ActionStatus::Stopped => "Stopped",
            ActionStatus::Superseded => "Superseded",
        }
    }
}

/// What an action produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionOutputs {
    /// Output artifacts by name.
    pub artifacts: BTreeMap<String, ArtifactRef>,
    /// Output variables (exported variables of a build, P34).
    pub variables: BTreeMap<String, String>,
}

/// How an action ended, with what it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    /// Final status.
    pub status: ActionStatus,
    /// Outputs (empty unless it succeeded).
    pub outputs: ActionOutputs,
    /// The CodeBuild-style phase table of a build action.
    pub phases: Vec<PhaseRecord>,
    /// The build id of a build action.
    pub build_id: Option<String>,
    /// Why it failed, masked.
    pub error: Option<String>,
}

impl ActionOutcome {
    /// A failure with a message and nothing else.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            status: ActionStatus::Failed,
            outputs: ActionOutputs::default(),
            phases: Vec::new(),
            build_id: None,
            error: Some(error.into()),
        }
    }
}

/// Something that happened in an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Which execution.
    pub run_id: RunId,
    /// What.
    pub kind: RunEventKind,
}

/// The kinds of [`RunEvent`].
#[derive(Debug, Clone, PartialEq)]
pub enum RunEventKind {
    /// The engine started working on the execution.
    RunStarted,
    /// A stage's first action started.
    StageStarted {
        /// Stage index.
        stage: usize,
        /// Set when the engine retries a failed stage by itself (P39).
        automatic_retry: Option<RetryMode>,
    },
    /// An action started.
    ActionStarted {
        /// Which.
        action: ActionId,
    },
    /// One masked line of an action's log.
    ActionLog {
        /// Which.
        action: ActionId,
        /// The line.
        line: String,
    },
    /// An action ended.
    ActionFinished {
        /// Which.
        action: ActionId,
        /// How.
        outcome: Box<ActionOutcome>,
    },
    /// A stage condition engaged (P41, P42): the stage fails, is skipped or is rolled back.
    StageCondition {
        /// Stage index.
        stage: usize,
        /// Which condition, its result and the rules that decided it.
        message: String,
    },
    /// A stage ended.
    StageFinished {
        /// Stage index.
        stage: usize,
        /// How.
        status: RunStatus,
    },
    /// The execution ended.
    RunFinished {
        /// How.
        status: RunStatus,
    },
}

/// An error with its sources, `: `-separated, like `{:#}` on an `anyhow::Error`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
