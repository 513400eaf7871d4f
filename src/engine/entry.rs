//! Entering a stage: an action first waits in front of its stage, for a disabled transition
//! (P18) or a stage lock (P20), through the [`ApprovalGate`](super::ApprovalGate). Only once the
//! gate opens does the stage start: the dispatcher's `StageStarted` is held back until then, so
//! an execution waiting in front of a stage is not shown, or timed, as working in it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::event::{ActionOutcome, ActionStatus, RunEvent, RunEventKind};
use super::{Context, Transition};
use crate::pipeline::ActionId;

/// `StageStarted` events held back until the stage's gate opens, by stage index.
#[derive(Default)]
pub(super) struct HeldStarts {
    held: Mutex<HashMap<usize, RunEventKind>>,
}

impl HeldStarts {
    /// Holds `event` when it starts a stage with actions about to run (`ready`), until one of
    /// them passes the stage's gate; gives back any other event.
    pub(super) fn hold_start(
        &self,
        event: RunEventKind,
        ready: &[ActionId],
    ) -> Option<RunEventKind> {
        match event {
            RunEventKind::StageStarted { stage, .. }
                if ready.iter().any(|id| id.stage == stage) =>
            {
                self.lock().insert(stage, event);
                None
            }
            other => Some(other),
        }
    }

    fn take(&self, stage: usize) -> Option<RunEventKind> {
        self.lock().remove(&stage)
    }

    /// Whether `stage` ends without ever having started (no action passed its gate); forgets
    /// the held start.
    pub(super) fn never_started(&self, stage: usize) -> bool {
        self.take(stage).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, RunEventKind>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waits until action `id` may enter its stage, and sends the stage's held start when it does.
/// `Err` is the action's outcome when it may not run: superseded, or stopped while it waited;
/// the stage then never started, and its end is not reported either ([`HeldStarts::never_started`]).
pub(super) async fn enter<E, S>(
    context: &Context<E, S>,
    id: ActionId,
    cancel: &CancellationToken,
) -> Result<(), ActionOutcome> {
    let pipeline = &context.request.pipeline;
    let run = &context.request.run_id;
    let stage = &pipeline.stages[id.stage].name;
    let mode = pipeline.execution_mode;
    let verdict = tokio::select! {
        transition = context.approvals.transition(run, &pipeline.name, mode, stage) => {
            match transition {
                Transition::Continue => Ok(()),
                Transition::Superseded(reason) => Err(ActionOutcome {
                    status: ActionStatus::Superseded,
                    ..ActionOutcome::failed(reason)
                }),
            }
        }
        () = cancel.cancelled() => Err(ActionOutcome {
            status: ActionStatus::Stopped,
            ..ActionOutcome::failed("stopped while it waited in front of the stage")
        }),
    };
    if verdict.is_ok() {
        if let Some(start) = context.held_starts.take(id.stage) {
            let _ = context.events.send(RunEvent {
                at: Utc::now(),
                run_id: run.clone(),
                kind: start,
            });
        }
    }
    verdict
}
