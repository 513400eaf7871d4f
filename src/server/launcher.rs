//! The [`Launcher`] port: what turns an accepted trigger into a queued execution.
//!
//! `cli::serve` implements it over the loaded pipelines, `daemon::trigger::decide` and one
//! start queue per pipeline. Its methods must not wait for an execution: a webhook is answered
//! as soon as the request is queued, and a retry as soon as its checks passed and it started in
//! the background. All but [`Launcher::retry`], which reads the state database, are synchronous.

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::source::github::{PullRequestPayload, PushPayload};
use crate::state::RetryMode;

/// Decides what a trigger starts and queues it.
pub trait Launcher: Send + Sync + 'static {
    /// A verified push delivery; `delivery` is its `X-GitHub-Delivery` id, by which a
    /// redelivery is recognised and starts nothing new.
    fn push(&self, delivery: Option<&str>, push: &PushPayload) -> PushReply;

    /// A verified pull-request delivery (P29), deduplicated like a push.
    fn pull_request(&self, delivery: Option<&str>, pr: &PullRequestPayload) -> PushReply;

    /// A manual start of the pipeline named `pipeline` at the head of its branch.
    fn start(&self, pipeline: &str) -> Result<Started, StartRefused>;

    /// The pipelines served.
    fn pipelines(&self) -> Vec<PipelineInfo>;

    /// How many start requests wait in the queues, over all pipelines.
    fn queue_depth(&self) -> usize;

    /// Checks a retry of one stage of an ended execution (P36, P37) and, when it is allowed,
    /// starts it in the background; resolves once it started, not once it ended.
    fn retry(&self, request: RetryRequest) -> BoxFuture<'_, Result<RetryStarted, RetryRefused>>;
}

/// A stage retry asked for over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRequest {
    /// The execution.
    pub execution: String,
    /// The stage to re-run.
    pub stage: String,
    /// Only the failed actions, or all of them.
    pub mode: RetryMode,
}

/// A retry that started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryStarted {
    /// The execution, which keeps its id.
    pub execution: String,
    /// The stage re-run.
    pub stage: String,
    /// `FAILED_ACTIONS` or `ALL_ACTIONS`.
    pub mode: &'static str,
}

/// Why a retry did not start.
#[derive(Debug)]
pub enum RetryRefused {
    /// No execution, stage or served pipeline of that name.
    NotFound {
        /// `execution`, `stage` or `pipeline`.
        what: &'static str,
        /// Its id or name.
        id: String,
    },
    /// The retry rules refuse it (P37): the stage succeeded, a newer execution reached it, the
    /// pipeline changed, or the execution is still running.
    Conflict {
        /// Why, for the caller.
        reason: String,
    },
    /// This server does not retry.
    Disabled,
    /// Checking or starting the retry failed.
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// What a push delivery led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushReply {
    /// The push was for served pipelines; each either queued an execution or skipped it.
    Accepted {
        /// Executions queued.
        started: Vec<Started>,
        /// Pipelines whose trigger filters did not match, with why.
        skipped: Vec<Skipped>,
    },
    /// The delivery id was seen before; nothing new was queued.
    Duplicate,
    /// No pipeline is served for the repository.
    UnknownRepository,
    /// A matching pipeline's queue is full; nothing was queued and the delivery is not
    /// remembered, so a redelivery is tried again.
    QueueFull {
        /// The pipeline whose queue is full.
        pipeline: String,
    },
}

/// One execution queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    /// The pipeline.
    pub pipeline: String,
    /// What it will build: a commit id, or `refs/heads/<branch>` for a manual start.
    pub revision: String,
    /// Why, for the log and the caller.
    pub reason: String,
}

/// A pipeline a push did not start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The pipeline.
    pub pipeline: String,
    /// Why not.
    pub reason: String,
}

/// Why a manual start was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefused {
    /// No pipeline of that name is served.
    UnknownPipeline,
    /// Its queue is full.
    QueueFull,
}

/// A served pipeline, as `GET /api/v1/pipelines` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineInfo {
    /// Its name.
    pub name: String,
    /// `source.repo` as written.
    pub repo: String,
    /// `source.branch`.
    pub branch: String,
    /// Start requests waiting for it.
    pub queued: usize,
    /// Its stages in order, for the dashboard to show stages that have not run yet.
    pub stages: Vec<StageInfo>,
}

/// One stage of a served pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageInfo {
    /// Its name.
    pub name: String,
    /// Its actions' names, in the order written.
    pub actions: Vec<String>,
}
