//! The [`ApprovalGate`] of an execution that `runner serve` starts: approvals and disabled
//! transitions as files ([`FileApprovals`]), then the pipeline's stage locks
//! ([`StageLocks`], P20–P22), so that in SUPERSEDED and QUEUED mode each stage works on one
//! execution at a time while the executions behind it wait in front.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::approvals::FileApprovals;
use crate::daemon::locks::{StageLocks, Superseded};
use crate::engine::{Approval, ApprovalGate, RunId, Transition};
use crate::pipeline::ExecutionMode;

/// Files first, then the stage lock.
pub(crate) struct LockingGate {
    files: Arc<FileApprovals>,
    locks: Arc<StageLocks>,
}

impl LockingGate {
    /// A gate over `files` that also takes `locks`.
    pub(crate) fn new(files: Arc<FileApprovals>, locks: Arc<StageLocks>) -> Self {
        Self { files, locks }
    }
}

impl ApprovalGate for LockingGate {
    fn wait(
        &self,
        run: &RunId,
        stage: &str,
        action: &str,
        timeout: Duration,
    ) -> BoxFuture<'static, Approval> {
        self.files.wait(run, stage, action, timeout)
    }

    fn transition(
        &self,
        run: &RunId,
        pipeline: &str,
        mode: ExecutionMode,
        stage: &str,
    ) -> BoxFuture<'static, Transition> {
        let disabled = self.files.transition(run, pipeline, mode, stage);
        let Some(index) = self.locks.stage_index(stage) else {
            return disabled;
        };
        let (locks, run) = (Arc::clone(&self.locks), run.0.clone());
        Box::pin(async move {
            if let Transition::Superseded(reason) = disabled.await {
                return Transition::Superseded(reason);
            }
            match locks.enter(&run, index).await {
                Ok(()) => Transition::Continue,
                Err(Superseded(reason)) => Transition::Superseded(reason),
            }
        })
    }

    fn left_stage(&self, run: &RunId, stage: usize) {
        self.locks.leave(&run.0, stage);
    }
}
