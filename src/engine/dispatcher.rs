//! The engine's bookkeeping: which actions are pending, running and done, what they produced,
//! and when stages start and end. Synchronous and free of I/O, so it is unit-tested directly.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::artifacts::ArtifactRef;
use crate::dag::Plan;
use crate::pipeline::{ActionId, ConditionResult, OnFailure, Pipeline, RetryMode};

use super::conditions::{self, Verdict};
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
    /// In a stage skipped by its entry condition (P42); counts as done for what follows.
    Skipped,
    /// In a stage failed by its entry condition (P42): never started.
    Blocked,
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
    /// Stages whose entry conditions have been checked (once per execution).
    entered: BTreeSet<usize>,
    /// `variables` and `codepipeline` namespaces, for conditions.
    fixed: BTreeMap<String, BTreeMap<String, String>>,
    /// The stage to roll back once the execution ends (P41, P42).
    rollback: Option<usize>,
    /// Stages failed by a condition rather than by an action (P42).
    failed_by_condition: BTreeSet<usize>,
    /// A newer execution replaced this one in front of a stage (P18, P20).
    superseded: bool,
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
                .filter_map(|(index, stage)| match &stage.on_failure {
                    Some(OnFailure::Retry(retry)) => Some((index, retry.attempts)),
                    _ => None,
                })
                .collect(),
            retrying: BTreeMap::new(),
            entered: BTreeSet::new(),
            fixed: BTreeMap::new(),
            rollback: None,
            failed_by_condition: BTreeSet::new(),
            superseded: false,
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

    /// Gives conditions the execution id and the pipeline variables (P31).
    pub(crate) fn with_execution(
        mut self,
        run_id: &str,
        pipeline_variables: &BTreeMap<String, String>,
    ) -> Self {
        self.fixed = conditions::fixed_namespaces(run_id, pipeline_variables);
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
    /// starts after a failure (P10) or a stop. A stage's entry conditions are checked when its
    /// first action is ready (P42); a skipped stage releases what waits for it at once.
    pub(crate) fn start_ready(&mut self) -> Vec<ActionId> {
        let ready = loop {
            if self.failed || self.stopping {
                return Vec::new();
            }
            let ready = self.ready_pending();
            let entering: BTreeSet<usize> = ready
                .iter()
                .map(|id| id.stage)
                .filter(|stage| !self.entered.contains(stage))
                .collect();
            let mut blocked = false;
            for stage in entering {
                self.entered.insert(stage);
                blocked |= self.check_entry(stage);
            }
            if !blocked {
                break ready;
            }
        };
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

    fn ready_pending(&self) -> Vec<ActionId> {
        let done = self.ids_in(|s| {
            matches!(
                s,
                State::Completed | State::Done(ActionStatus::Succeeded) | State::Skipped
            )
        });
        let running = self.ids_in(|s| s == State::Running);
        self.plan
            .ready(&done, &running)
            .into_iter()
            .filter(|id| self.states.get(id) == Some(&State::Pending))
            .collect()
    }

    /// P42 `before_entry`: an unmet condition fails or skips the stage before anything in it
    /// starts. Returns whether it did.
    fn check_entry(&mut self, stage: usize) -> bool {
        let conditions = &self.pipeline.stages[stage].before_entry;
        let Some(verdict) = conditions::entry(conditions, &self.variables, &self.fixed) else {
            return false;
        };
        let (marked, status) = match verdict.result {
            ConditionResult::Skip => (State::Skipped, RunStatus::Skipped),
            ConditionResult::Fail | ConditionResult::Rollback => {
                self.failed = true;
                self.failed_by_condition.insert(stage);
                (State::Blocked, RunStatus::Failed)
            }
        };
        for (id, current) in &mut self.states {
            if id.stage == stage && *current == State::Pending {
                *current = marked;
            }
        }
        self.started_stages.insert(stage);
        self.finished_stages.insert(stage);
        self.events.push(RunEventKind::StageStarted {
            stage,
            automatic_retry: None,
        });
        self.events.push(verdict.event(stage));
        self.events
            .push(RunEventKind::StageFinished { stage, status });
        true
    }

    /// The stage to roll back after the execution ends, if a condition asked for it.
    pub(crate) fn rollback(&self) -> Option<usize> {
        self.rollback
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
            ActionStatus::Superseded => {
                self.superseded = true;
                self.stopping = true;
            }
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
        if states.contains(&State::Done(ActionStatus::Stopped))
            || states.contains(&State::Done(ActionStatus::Superseded))
        {
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
            let mut status = match self.stage_status(stage) {
                Some(status) => status,
                None if closing && self.stopping => RunStatus::Stopped,
                None if closing => RunStatus::Failed,
                None => continue,
            };
            // A stage whose failure is settled ends only when nothing of it still runs (P10).
            self.finished_stages.insert(stage);
            // Only a failure of the stage's own actions is retried or rolled back by
            // `on_failure`; a failed `on_success` condition says itself what happens.
            let actions_failed = status == RunStatus::Failed && !closing && !self.stopping;
            if status == RunStatus::Succeeded {
                status = self.check_success(stage);
            } else if actions_failed {
                self.check_failure(stage);
            }
            self.events
                .push(RunEventKind::StageFinished { stage, status });
            if actions_failed {
                self.retry_automatically(stage);
            }
        }
    }

    /// P42 `on_success`: an unmet condition fails the stage, and rolls it back when its result
    /// says so. Returns the stage's status.
    fn check_success(&mut self, stage: usize) -> RunStatus {
        let conditions = &self.pipeline.stages[stage].on_success;
        let Some(verdict) = conditions::after(conditions, false, &self.variables, &self.fixed)
        else {
            return RunStatus::Succeeded;
        };
        if verdict.result == ConditionResult::Rollback {
            self.rollback = Some(stage);
        }
        self.failed = true;
        self.failed_by_condition.insert(stage);
        self.events.push(verdict.event(stage));
        RunStatus::Failed
    }

    /// P41: a failed stage with `on_failure: {result: rollback}` is rolled back after the
    /// execution ends, unconditionally or when one of its conditions is met (P42).
    fn check_failure(&mut self, stage: usize) {
        let Some(OnFailure::Rollback { conditions }) = &self.pipeline.stages[stage].on_failure
        else {
            return;
        };
        let verdict = if conditions.is_empty() {
            Some(Verdict::unconditional())
        } else {
            conditions::after(conditions, true, &self.variables, &self.fixed)
        };
        if let Some(verdict) = verdict {
            self.rollback = Some(stage);
            self.events.push(verdict.event(stage));
        }
    }

    /// P39: a failed stage with retries left goes back to pending (its failed actions, or all of
    /// them) and starts again as a new attempt.
    fn retry_automatically(&mut self, stage: usize) {
        let Some(OnFailure::Retry(retry)) = self
            .pipeline
            .stages
            .get(stage)
            .and_then(|s| s.on_failure.clone())
        else {
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
        self.failed = !self.failed_by_condition.is_empty()
            || self
                .states
                .values()
                .any(|s| *s == State::Done(ActionStatus::Failed));
    }

    /// Whether the execution stays in `stage` after it ended: an automatic retry (P39) is
    /// about to re-run it, or a rollback of it (P41, P42) follows the execution.
    pub(crate) fn stays_in(&self, stage: usize) -> bool {
        self.retrying.contains_key(&stage) || self.rollback == Some(stage)
    }

    /// Ends every started stage that is still open (nothing runs any more).
    pub(crate) fn close(&mut self) -> Vec<RunEventKind> {
        self.finish_stages(true);
        self.take_stage_events()
    }

    /// The execution's final status.
    pub(crate) fn status(&self) -> RunStatus {
        if self.superseded {
            RunStatus::Superseded
        } else if self.stopping {
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
        assert!(
            dispatcher.stays_in(1),
            "the retry keeps the stage (and its lock)"
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
        assert!(!dispatcher.stays_in(1), "the last failure leaves the stage");
        assert_eq!(dispatcher.status(), RunStatus::Failed);
    }

    /// The test pipeline with `keys` spliced into the build stage, and the source done with a
    /// `Src` namespace holding `BranchName=main`.
    fn with_build_stage_keys(keys: &str) -> (Pipeline, Plan, BTreeMap<ActionId, ActionOutputs>) {
        let text = PIPELINE
            .replace(
                "  - name: build\n    actions:",
                &format!("  - name: build\n{keys}    actions:"),
            )
            .replace(
                "outputs: [Src]\n",
                "outputs: [Src]\n        namespace: SrcVars\n",
            );
        let pipeline = pipeline::parse("t.yml", &text).expect("valid pipeline");
        let plan = Plan::new(&pipeline).expect("plan");
        let source = ActionOutputs {
            artifacts: BTreeMap::new(),
            variables: BTreeMap::from([("BranchName".to_owned(), "main".to_owned())]),
        };
        (pipeline, plan, BTreeMap::from([(id(0, 0), source)]))
    }

    fn condition(block: &str, result: &str, operator: &str, value: &str) -> String {
        format!(
            "    {block}:\n      conditions:\n        - result: {result}\n          rules:\n            - {{name: branch, type: variable_check, variable: '#{{SrcVars.BranchName}}', operator: {operator}, value: {value}}}\n"
        )
    }

    #[test]
    fn p42_before_entry_skip_marks_the_stage_skipped_and_releases_the_next() {
        let keys = condition("before_entry", "skip", "eq", "release");
        let (pipeline, plan, completed) = with_build_stage_keys(&keys);
        let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
        assert_eq!(
            dispatcher.start_ready(),
            vec![id(2, 0)],
            "deploy, not build"
        );
        let events = dispatcher.take_stage_events();
        assert!(events.contains(&RunEventKind::StageFinished {
            stage: 1,
            status: RunStatus::Skipped
        }));
        assert!(events.contains(&RunEventKind::StageCondition {
            stage: 1,
            message: "before_entry: skip (rule branch: \"main\" eq \"release\" is false)".into()
        }));
        dispatcher.finish(id(2, 0), &outcome(ActionStatus::Succeeded));
        assert_eq!(dispatcher.status(), RunStatus::Succeeded);
    }

    #[test]
    fn p42_before_entry_met_lets_the_stage_run() {
        let keys = condition("before_entry", "fail", "eq", "main");
        let (pipeline, plan, completed) = with_build_stage_keys(&keys);
        let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
        assert_eq!(dispatcher.start_ready(), vec![id(1, 0), id(1, 1)]);
    }

    #[test]
    fn p42_before_entry_fail_fails_the_stage_before_anything_starts() {
        let keys = condition("before_entry", "fail", "ne", "main");
        let (pipeline, plan, completed) = with_build_stage_keys(&keys);
        let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
        assert!(dispatcher.start_ready().is_empty());
        assert!(
            dispatcher
                .take_stage_events()
                .contains(&RunEventKind::StageFinished {
                    stage: 1,
                    status: RunStatus::Failed
                })
        );
        assert!(dispatcher.close().is_empty());
        assert_eq!(dispatcher.status(), RunStatus::Failed);
        assert_eq!(dispatcher.rollback(), None);
    }

    #[test]
    fn p42_on_success_rollback_fails_the_stage_and_asks_for_a_rollback() {
        let keys = condition("on_success", "rollback", "eq", "release");
        let (pipeline, plan, completed) = with_build_stage_keys(&keys);
        let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
        dispatcher.start_ready();
        for done in [id(1, 0), id(1, 1)] {
            dispatcher.finish(done, &outcome(ActionStatus::Succeeded));
        }
        assert_eq!(dispatcher.start_ready(), vec![id(1, 2)]);
        dispatcher.finish(id(1, 2), &outcome(ActionStatus::Succeeded));
        assert!(
            dispatcher
                .take_stage_events()
                .contains(&RunEventKind::StageFinished {
                    stage: 1,
                    status: RunStatus::Failed
                })
        );
        assert!(dispatcher.start_ready().is_empty(), "deploy does not start");
        assert_eq!(dispatcher.status(), RunStatus::Failed);
        assert_eq!(dispatcher.rollback(), Some(1));
    }

    #[test]
    fn p41_on_failure_rollback_asks_for_a_rollback_when_its_condition_is_met() {
        for (operator, expected) in [("eq", Some(1)), ("ne", None)] {
            let keys = format!(
                "    on_failure:\n      result: rollback\n{}",
                condition("x", "rollback", operator, "main")
                    .replace("    x:\n      conditions:", "      conditions:")
            );
            let (pipeline, plan, completed) = with_build_stage_keys(&keys);
            let mut dispatcher = Dispatcher::new(&pipeline, &plan, &completed);
            dispatcher.start_ready();
            dispatcher.finish(id(1, 0), &outcome(ActionStatus::Failed));
            dispatcher.finish(id(1, 1), &outcome(ActionStatus::Succeeded));
            assert_eq!(dispatcher.rollback(), expected, "{operator}");
            assert_eq!(dispatcher.stays_in(1), expected.is_some(), "{operator}");
            assert_eq!(dispatcher.status(), RunStatus::Failed);
        }
    }
}
