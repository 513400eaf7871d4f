//! The engine's bookkeeping: which actions are pending, running and done, what they produced,
//! and when stages start and end. Synchronous and free of I/O, so it is unit-tested directly.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::artifacts::ArtifactRef;
use crate::dag::Plan;
use crate::pipeline::{ActionId, Pipeline, RetryMode};

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
    /// Not part of this execution (stages after a rollback's stage).
    OutOfScope,
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
    /// Automatic stage retries left (P39), by stage.
    retries_left: BTreeMap<usize, u32>,
    /// Stages being retried automatically, for their next `StageStarted`.
    retrying: BTreeMap<usize, RetryMode>,
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
            retries_left: pipeline
                .stages
                .iter()
                .enumerate()
                .filter_map(|(index, stage)| Some((index, stage.on_failure?.attempts)))
                .collect(),
            retrying: BTreeMap::new(),
        };
        for (id, outputs) in completed {
            dispatcher.states.insert(*id, State::Completed);
            dispatcher.absorb(*id, outputs);
        }
        dispatcher
    }

    /// Leaves every stage after `last` out of this execution.
    pub(crate) fn with_last_stage(mut self, last: Option<usize>) -> Self {
        if let Some(last) = last {
            for (id, state) in &mut self.states {
                if id.stage > last && *state == State::Pending {
                    *state = State::OutOfScope;
                }
            }
        }
        self
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
                self.events.push(RunEventKind::StageStarted {
                    stage: id.stage,
                    automatic_retry: self.retrying.remove(&id.stage),
                });
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
            if status == RunStatus::Failed && !closing && !self.stopping {
                self.retry_automatically(stage);
            }
        }
    }

    /// P39: a failed stage with retries left goes back to pending (its failed actions, or all of
    /// them) and starts again as a new attempt.
    fn retry_automatically(&mut self, stage: usize) {
        let Some(retry) = self.pipeline.stages.get(stage).and_then(|s| s.on_failure) else {
            return;
        };
        let Some(left) = self.retries_left.get_mut(&stage).filter(|left| **left > 0) else {
            return;
        };
        *left -= 1;
        for (id, state) in &mut self.states {
            let rerun = matches!(
                (retry.mode, *state),
                (_, State::Done(ActionStatus::Failed | ActionStatus::Stopped))
                    | (RetryMode::AllActions, State::Done(ActionStatus::Succeeded))
            );
            if id.stage == stage && rerun {
                *state = State::Pending;
            }
        }
        self.started_stages.remove(&stage);
        self.finished_stages.remove(&stage);
        self.retrying.insert(stage, retry.mode);
        self.failed = self
            .states
            .values()
            .any(|s| *s == State::Done(ActionStatus::Failed));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline;

    const PIPELINE: &str = "name: t\nsource:\n  repo: ./src\n  branch: main\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: build\n    actions:\n      - name: a\n        type: build\n        inputs: [Src]\n      - name: b\n        type: build\n        inputs: [Src]\n      - name: c\n        type: build\n        inputs: [Src]\n        run_order: 2\n  - name: deploy\n    actions:\n      - name: d\n        type: build\n        inputs: [Src]\n";

    fn setup() -> (Pipeline, Plan, BTreeMap<ActionId, ActionOutputs>) {
        let pipeline = pipeline::parse("t.yml", PIPELINE).expect("valid pipeline");
        let plan = Plan::new(&pipeline).expect("plan");
        let completed = BTreeMap::from([(
            ActionId {
                stage: 0,
                action: 0,
            },
            ActionOutputs::default(),
        )]);
        (pipeline, plan, completed)
    }

    fn id(stage: usize, action: usize) -> ActionId {
        ActionId { stage, action }
    }

    fn outcome(status: ActionStatus) -> ActionOutcome {
        ActionOutcome {
            status,
            ..ActionOutcome::failed("")
        }
    }

    #[test]
    fn p9_same_run_order_starts_together_and_the_next_group_waits() {
        let (pipeline, plan, completed) = setup();
        let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
        assert_eq!(dispatcher.start_ready(), vec![id(1, 0), id(1, 1)]);
        assert_eq!(
            dispatcher.take_stage_events(),
            vec![RunEventKind::StageStarted {
                stage: 1,
                automatic_retry: None
            }]
        );
        dispatcher.finish(id(1, 0), &outcome(ActionStatus::Succeeded));
        assert!(dispatcher.start_ready().is_empty(), "c waits for b too");
        dispatcher.finish(id(1, 1), &outcome(ActionStatus::Succeeded));
        assert_eq!(dispatcher.start_ready(), vec![id(1, 2)]);
        dispatcher.finish(id(1, 2), &outcome(ActionStatus::Succeeded));
        assert_eq!(
            dispatcher.take_stage_events(),
            vec![RunEventKind::StageFinished {
                stage: 1,
                status: RunStatus::Succeeded
            }]
        );
        assert_eq!(dispatcher.start_ready(), vec![id(2, 0)]);
        dispatcher.finish(id(2, 0), &outcome(ActionStatus::Succeeded));
        assert_eq!(dispatcher.status(), RunStatus::Succeeded);
    }

    #[test]
    fn p10_a_failure_lets_the_group_finish_and_starts_nothing_after() {
        let (pipeline, plan, completed) = setup();
        let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
        dispatcher.start_ready();
        dispatcher.take_stage_events();
        dispatcher.finish(id(1, 0), &outcome(ActionStatus::Failed));
        assert!(
            dispatcher.take_stage_events().is_empty(),
            "b still runs, so the stage is open"
        );
        assert!(dispatcher.start_ready().is_empty());
        dispatcher.finish(id(1, 1), &outcome(ActionStatus::Succeeded));
        assert_eq!(
            dispatcher.take_stage_events(),
            vec![RunEventKind::StageFinished {
                stage: 1,
                status: RunStatus::Failed
            }]
        );
        assert!(dispatcher.start_ready().is_empty());
        assert!(dispatcher.close().is_empty());
        assert_eq!(dispatcher.status(), RunStatus::Failed);
    }

    #[test]
    fn stop_starts_nothing_and_the_run_ends_stopped() {
        let (pipeline, plan, completed) = setup();
        let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
        dispatcher.start_ready();
        dispatcher.stop();
        dispatcher.finish(id(1, 0), &outcome(ActionStatus::Stopped));
        dispatcher.finish(id(1, 1), &outcome(ActionStatus::Succeeded));
        assert!(dispatcher.start_ready().is_empty());
        assert_eq!(dispatcher.status(), RunStatus::Stopped);
    }

    #[test]
    fn p38_completed_actions_and_their_outputs_are_kept() {
        let (pipeline, plan, mut completed) = setup();
        let digest = crate::artifacts::Sha256Hex::of_bytes(b"src");
        completed.insert(
            id(0, 0),
            ActionOutputs {
                artifacts: BTreeMap::from([("Src".to_owned(), ArtifactRef { digest, size: 3 })]),
                variables: BTreeMap::new(),
            },
        );
        for done in [id(1, 0), id(1, 1), id(1, 2)] {
            completed.insert(done, ActionOutputs::default());
        }
        let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
        assert_eq!(
            dispatcher.start_ready(),
            vec![id(2, 0)],
            "a retry of deploy runs only deploy"
        );
        assert_eq!(dispatcher.inputs_for(id(2, 0)).artifacts.len(), 1);
    }

    #[test]
    fn p39_a_failed_stage_is_retried_automatically_once() {
        let text = PIPELINE.replace(
            "  - name: build\n    actions:",
            "  - name: build\n    on_failure:\n      result: retry\n    actions:",
        );
        let pipeline = pipeline::parse("t.yml", &text).expect("valid pipeline");
        let plan = Plan::new(&pipeline).expect("plan");
        let completed = BTreeMap::from([(id(0, 0), ActionOutputs::default())]);
        let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
        dispatcher.start_ready();
        dispatcher.take_stage_events();
        dispatcher.finish(id(1, 0), &outcome(ActionStatus::Failed));
        dispatcher.finish(id(1, 1), &outcome(ActionStatus::Succeeded));
        assert_eq!(
            dispatcher.take_stage_events(),
            vec![RunEventKind::StageFinished {
                stage: 1,
                status: RunStatus::Failed
            }]
        );
        assert_eq!(
            dispatcher.start_ready(),
            vec![id(1, 0)],
            "only the failed action again"
        );
        assert_eq!(
            dispatcher.take_stage_events(),
            vec![RunEventKind::StageStarted {
                stage: 1,
                automatic_retry: Some(RetryMode::FailedActions)
            }]
        );
        dispatcher.finish(id(1, 0), &outcome(ActionStatus::Failed));
        assert!(
            dispatcher.start_ready().is_empty(),
            "one automatic retry only"
        );
        assert_eq!(dispatcher.status(), RunStatus::Failed);
    }
}
