//! The engine's bookkeeping: which actions are pending, running and done, what they produced,
//! and when stages start and end. Synchronous and free of I/O, so it is unit-tested directly.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::artifacts::ArtifactRef;
use crate::dag::Plan;
use crate::pipeline::{ActionId, Pipeline};

use super::event::{ActionOutcome, ActionOutputs, ActionStatus, RunEventKind, RunStatus};

/// Where one action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started.
    Pending,
    /// Started.
    Running,
    /// Ended in this execution.
    Done(ActionStatus),
    /// Done before this execution began (source step, or kept by a retry).
    Completed,
}

/// What an action's job receives: its input artifacts and every namespace's variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inputs {
    /// Input artifacts by name.
    pub(crate) artifacts: BTreeMap<String, ArtifactRef>,
    /// Variables by namespace.
    pub(crate) variables: BTreeMap<String, BTreeMap<String, String>>,
}

/// The pending/running/done state of one execution.
pub(crate) struct Dispatcher<'a> {
    pipeline: &'a Pipeline,
    plan: &'a Plan,
    states: BTreeMap<ActionId, State>,
    artifacts: BTreeMap<String, ArtifactRef>,
    variables: BTreeMap<String, BTreeMap<String, String>>,
    started_stages: BTreeSet<usize>,
    finished_stages: BTreeSet<usize>,
    events: Vec<RunEventKind>,
    failed: bool,
    stopping: bool,
}

impl<'a> Dispatcher<'a> {
    /// A dispatcher with `completed` actions already done.
    pub(crate) fn new(
        pipeline: &'a Pipeline,
        plan: &'a Plan,
        completed: &BTreeMap<ActionId, ActionOutputs>,
    ) -> Self {
        let mut dispatcher = Self {
            pipeline,
            plan,
            states: pipeline
                .action_ids()
                .map(|id| (id, State::Pending))
                .collect(),
            artifacts: BTreeMap::new(),
            variables: BTreeMap::new(),
            started_stages: BTreeSet::new(),
            finished_stages: BTreeSet::new(),
            events: Vec::new(),
            failed: false,
            stopping: false,
        };
        for (id, outputs) in completed {
            dispatcher.states.insert(*id, State::Completed);
            dispatcher.absorb(*id, outputs);
        }
        dispatcher
    }

    fn absorb(&mut self, id: ActionId, outputs: &ActionOutputs) {
        self.artifacts.extend(outputs.artifacts.clone());
        if let Some(namespace) = self.pipeline.action(id).and_then(|a| a.namespace.clone()) {
            self.variables
                .entry(namespace)
                .or_default()
                .extend(outputs.variables.clone());
        }
    }

    fn ids_in(&self, state: impl Fn(State) -> bool) -> HashSet<ActionId> {
        self.states
            .iter()
            .filter(|(_, s)| state(**s))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Marks every action whose dependencies are done as running and returns them. Nothing
    /// starts after a failure (P10) or a stop.
    pub(crate) fn start_ready(&mut self) -> Vec<ActionId> {
        if self.failed || self.stopping {
            return Vec::new();
        }
        let done =
            self.ids_in(|s| matches!(s, State::Completed | State::Done(ActionStatus::Succeeded)));
        let running = self.ids_in(|s| s == State::Running);
        let ready: Vec<ActionId> = self
            .plan
            .ready(&done, &running)
            .into_iter()
            .filter(|id| self.states.get(id) == Some(&State::Pending))
            .collect();
        for id in &ready {
            self.states.insert(*id, State::Running);
            if self.started_stages.insert(id.stage) {
                self.events
                    .push(RunEventKind::StageStarted { stage: id.stage });
            }
        }
        ready
    }

    /// The inputs of `id`, from what has been produced so far.
    pub(crate) fn inputs_for(&self, id: ActionId) -> Inputs {
        let wanted = self
            .pipeline
            .action(id)
            .map(|a| a.inputs.clone())
            .unwrap_or_default();
        Inputs {
            artifacts: self
                .artifacts
                .iter()
                .filter(|(name, _)| wanted.contains(name))
                .map(|(name, reference)| (name.clone(), reference.clone()))
                .collect(),
            variables: self.variables.clone(),
        }
    }

    /// Records that `id` ended.
    pub(crate) fn finish(&mut self, id: ActionId, outcome: &ActionOutcome) {
        self.states.insert(id, State::Done(outcome.status));
        match outcome.status {
            ActionStatus::Succeeded => self.absorb(id, &outcome.outputs),
            ActionStatus::Failed => self.failed = true,
            ActionStatus::Stopped => self.stopping = true,
        }
        self.finish_stages(false);
    }

    /// Stop starting actions (a cancel or the execution timeout); running ones end themselves.
    pub(crate) fn stop(&mut self) {
        self.stopping = true;
    }

    /// Whether a stop was requested.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Stage events produced since the last call.
    pub(crate) fn take_stage_events(&mut self) -> Vec<RunEventKind> {
        std::mem::take(&mut self.events)
    }

    fn stage_status(&self, stage: usize) -> Option<RunStatus> {
        let states: Vec<State> = self
            .states
            .iter()
            .filter(|(id, _)| id.stage == stage)
            .map(|(_, s)| *s)
            .collect();
        if states.contains(&State::Running) {
            return None;
        }
        if states.contains(&State::Done(ActionStatus::Failed)) {
            return Some(RunStatus::Failed);
        }
        if states.contains(&State::Done(ActionStatus::Stopped)) {
            return Some(RunStatus::Stopped);
        }
        if states.contains(&State::Pending) {
            return None;
        }
        Some(RunStatus::Succeeded)
    }

    fn finish_stages(&mut self, closing: bool) {
        for stage in self.started_stages.clone() {
            if self.finished_stages.contains(&stage) {
                continue;
            }
            let status = match self.stage_status(stage) {
                Some(status) => status,
                None if closing && self.stopping => RunStatus::Stopped,
                None if closing => RunStatus::Failed,
                None => continue,
            };
            // A stage whose failure is settled ends only when nothing of it still runs (P10).
            self.finished_stages.insert(stage);
            self.events
                .push(RunEventKind::StageFinished { stage, status });
        }
    }

    /// Ends every started stage that is still open (nothing runs any more).
    pub(crate) fn close(&mut self) -> Vec<RunEventKind> {
        self.finish_stages(true);
        self.take_stage_events()
    }

    /// The execution's final status.
    pub(crate) fn status(&self) -> RunStatus {
        if self.stopping {
            RunStatus::Stopped
        } else if self.failed || self.states.values().any(|s| *s == State::Pending) {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        }
    }
}
