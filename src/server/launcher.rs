//! The [`Launcher`] port: what turns an accepted trigger into a queued execution.
//!
//! `cli::serve` implements it over the loaded pipelines, `daemon::trigger::decide` and one
//! start queue per pipeline. Its methods are synchronous and must not block: a webhook is
//! answered as soon as the request is queued, never after the execution.

use serde::Serialize;

use crate::source::github::PushPayload;

/// Decides what a trigger starts and queues it.
pub trait Launcher: Send + Sync + 'static {
    /// A verified push delivery; `delivery` is its `X-GitHub-Delivery` id, by which a
    /// redelivery is recognised and starts nothing new.
    fn push(&self, delivery: Option<&str>, push: &PushPayload) -> PushReply;

    /// A manual start of the pipeline named `pipeline` at the head of its branch.
    fn start(&self, pipeline: &str) -> Result<Started, StartRefused>;

    /// The pipelines served.
    fn pipelines(&self) -> Vec<PipelineInfo>;

    /// How many start requests wait in the queues, over all pipelines.
    fn queue_depth(&self) -> usize;
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
}
