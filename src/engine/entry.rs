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

    /// Hands the held start of `stage`, if it is still held, to `send`, under the lock: an
    /// action of the stage that finds it gone cannot say it started before the stage did (its
    /// sibling may have taken the start and not yet sent it).
    fn release(&self, stage: usize, send: impl FnOnce(RunEventKind)) {
        let mut held = self.lock();
        if let Some(start) = held.remove(&stage) {
            send(start);
        }
    }

    /// Whether `stage` ends without ever having started (no action passed its gate); forgets
    /// the held start.
    pub(super) fn never_started(&self, stage: usize) -> bool {
        self.lock().remove(&stage).is_some()
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
        context.held_starts.release(id.stage, |start| {
            let _ = context.events.send(RunEvent {
                at: Utc::now(),
                run_id: run.clone(),
                kind: start,
            });
        });
    }
    verdict
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier, Mutex};
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_action_that_finds_the_start_gone_says_it_started_after_the_stage_did() {
        let held = Arc::new(HeldStarts::default());
        let start = RunEventKind::StageStarted {
            stage: 1,
            automatic_retry: None,
        };
        let ready = [ActionId {
            stage: 1,
            action: 0,
        }];
        assert!(held.hold_start(start, &ready).is_none(), "held");
        let said = Arc::new(Mutex::new(Vec::new()));
        let sending = Arc::new(Barrier::new(2));
        // One action takes the start and is slow to send it (another thread got the core)...
        let first = {
            let (held, said, sending) =
                (Arc::clone(&held), Arc::clone(&said), Arc::clone(&sending));
            std::thread::spawn(move || {
                held.release(1, |_| {
                    sending.wait();
                    std::thread::sleep(Duration::from_millis(50));
                    said.lock().expect("said").push("stage started");
                });
            })
        };
        // ...while its sibling passes the gate meanwhile and says it started.
        sending.wait();
        held.release(1, |_| said.lock().expect("said").push("the start twice"));
        said.lock().expect("said").push("action started");
        first.join().expect("first action");
        assert_eq!(
            *said.lock().expect("said"),
            ["stage started", "action started"]
        );
    }
}
