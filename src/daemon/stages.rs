//! Who may enter which stage, per pipeline (P20–P22): [`StageScheduler`] is a synchronous state
//! machine fed [`ScheduleEvent`]s that answers with [`Command`]s. [`super::locks`] drives it
//! for `runner serve`.
//!
//! R1 (a stage works on one execution at a time) holds in SUPERSEDED and QUEUED mode; R2 (the
//! others wait in front of it) as a FIFO line; R3 (in SUPERSEDED mode only the newest waits) by
//! superseding the older arrival. Nothing here reads a clock or spawns a task, so it stays
//! unit-testable: the E13 scenario runs here as a simulation.

use std::collections::VecDeque;
use std::fmt;

use crate::pipeline::ExecutionMode;

/// Something that happened to an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleEvent<E> {
    /// A new execution wants to enter the first stage.
    Triggered(E),
    /// The engine started an execution in a stage it was let into (a consistency check).
    StageEntered {
        /// The execution.
        execution: E,
        /// The stage's index.
        stage: usize,
    },
    /// An execution succeeded in a stage and moves on to the next one.
    StageFinished {
        /// The execution.
        execution: E,
        /// The stage's index.
        stage: usize,
    },
    /// An execution reached the front of a stage (a repeat for one it waits for or is in does
    /// nothing).
    Arrived {
        /// The execution.
        execution: E,
        /// The stage's index.
        stage: usize,
    },
    /// An execution is done with a stage (finished, skipped or stopped in it) without moving on
    /// by itself; leaving a stage it never reached does nothing.
    Left {
        /// The execution.
        execution: E,
        /// The stage's index.
        stage: usize,
    },
    /// An execution ended (failed, stopped, superseded or done) and lets go of everything.
    ExecutionFinished(E),
}

/// What the engine must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<E> {
    /// Start the execution in the stage; the scheduler has already locked it for it.
    Enter {
        /// The execution.
        execution: E,
        /// The stage's index.
        stage: usize,
    },
    /// Mark the execution `Superseded`: a newer one replaced it in front of the stage (P20 R3).
    Supersede {
        /// The execution.
        execution: E,
        /// The stage it was waiting for.
        stage: usize,
        /// The newer execution that replaced it.
        by: E,
    },
}

/// An event that does not fit the scheduler's state: a bug in the caller.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError<E: fmt::Display + fmt::Debug> {
    /// `Triggered` for an execution the scheduler already holds.
    #[error("schedule execution {execution}: it was already triggered")]
    AlreadyTriggered {
        /// The execution.
        execution: E,
    },
    /// `StageEntered` or `StageFinished` for an execution not let into that stage.
    #[error("schedule execution {execution}: it was not let into stage {stage}")]
    NotInStage {
        /// The execution.
        execution: E,
        /// The stage's index.
        stage: usize,
    },
}

/// Whether a mode allows stage rollback: PARALLEL does not (P22, E13).
pub fn allows_rollback(mode: ExecutionMode) -> bool {
    mode != ExecutionMode::Parallel
}

/// One pipeline's stage locks and waiting lines.
#[derive(Debug, Clone)]
pub struct StageScheduler<E> {
    mode: ExecutionMode,
    stages: Vec<StageState<E>>,
}

#[derive(Debug, Clone)]
struct StageState<E> {
    /// Executions inside the stage: at most one unless the mode is PARALLEL.
    running: Vec<E>,
    /// Executions in front of it, oldest first: at most one in SUPERSEDED mode.
    waiting: VecDeque<E>,
}

impl<E: Clone + Eq + fmt::Display + fmt::Debug> StageScheduler<E> {
    /// A scheduler for a pipeline with `stage_count` stages.
    pub fn new(mode: ExecutionMode, stage_count: usize) -> Self {
        let stage = StageState {
            running: Vec::new(),
            waiting: VecDeque::new(),
        };
        StageScheduler {
            mode,
            stages: vec![stage; stage_count],
        }
    }

    /// Applies an event and says which executions enter a stage and which are superseded, in
    /// the order to act on them.
    pub fn handle(&mut self, event: ScheduleEvent<E>) -> Result<Vec<Command<E>>, ScheduleError<E>> {
        let mut commands = Vec::new();
        match event {
            ScheduleEvent::Triggered(execution) => {
                if self.holds(&execution) {
                    return Err(ScheduleError::AlreadyTriggered { execution });
                }
                self.arrive(execution, 0, &mut commands);
            }
            ScheduleEvent::StageEntered { execution, stage } => {
                if !self.is_running(&execution, stage) {
                    return Err(ScheduleError::NotInStage { execution, stage });
                }
            }
            ScheduleEvent::StageFinished { execution, stage } => {
                if !self.is_running(&execution, stage) {
                    return Err(ScheduleError::NotInStage { execution, stage });
                }
                self.stages[stage].running.retain(|held| *held != execution);
                self.arrive(execution, stage + 1, &mut commands);
                self.admit(stage, &mut commands);
            }
            ScheduleEvent::Arrived { execution, stage } => {
                let known = self.stages.get(stage).is_some_and(|state| {
                    state.running.contains(&execution) || state.waiting.contains(&execution)
                });
                if !known {
                    self.arrive(execution, stage, &mut commands);
                }
            }
            ScheduleEvent::Left { execution, stage } => {
                if let Some(state) = self.stages.get_mut(stage) {
                    state.waiting.retain(|held| *held != execution);
                    let before = state.running.len();
                    state.running.retain(|held| *held != execution);
                    if state.running.len() != before {
                        self.admit(stage, &mut commands);
                    }
                }
            }
            ScheduleEvent::ExecutionFinished(execution) => {
                // Unknown executions are fine: one that finished its last stage or was
                // superseded is already gone.
                for stage in 0..self.stages.len() {
                    let state = &mut self.stages[stage];
                    state.waiting.retain(|held| *held != execution);
                    let before = state.running.len();
                    state.running.retain(|held| *held != execution);
                    if state.running.len() != before {
                        self.admit(stage, &mut commands);
                    }
                }
            }
        }
        Ok(commands)
    }

    /// The executions inside a stage.
    pub fn running(&self, stage: usize) -> &[E] {
        self.stages
            .get(stage)
            .map_or(&[][..], |state| &state.running[..])
    }

    /// The executions in front of a stage, oldest first.
    pub fn waiting(&self, stage: usize) -> Vec<&E> {
        self.stages
            .get(stage)
            .map_or_else(Vec::new, |state| state.waiting.iter().collect())
    }

    /// Whether no execution is in or in front of any stage.
    pub fn is_idle(&self) -> bool {
        self.stages
            .iter()
            .all(|state| state.running.is_empty() && state.waiting.is_empty())
    }

    fn holds(&self, execution: &E) -> bool {
        self.stages
            .iter()
            .any(|state| state.running.contains(execution) || state.waiting.contains(execution))
    }

    fn is_running(&self, execution: &E, stage: usize) -> bool {
        self.stages
            .get(stage)
            .is_some_and(|state| state.running.contains(execution))
    }

    /// `execution` reaches the front of `stage`; past the last stage it is done.
    fn arrive(&mut self, execution: E, stage: usize, commands: &mut Vec<Command<E>>) {
        let mode = self.mode;
        let Some(slot) = self.stages.get_mut(stage) else {
            return;
        };
        if mode == ExecutionMode::Superseded {
            // R3: only one waits; the newer arrival replaces the older one.
            while let Some(older) = slot.waiting.pop_front() {
                commands.push(Command::Supersede {
                    execution: older,
                    stage,
                    by: execution.clone(),
                });
            }
        }
        slot.waiting.push_back(execution);
        self.admit(stage, commands);
    }

    /// Lets waiting executions into `stage` while its lock allows.
    fn admit(&mut self, stage: usize, commands: &mut Vec<Command<E>>) {
        let locked = self.mode != ExecutionMode::Parallel;
        let slot = &mut self.stages[stage];
        while !locked || slot.running.is_empty() {
            let Some(execution) = slot.waiting.pop_front() else {
                break;
            };
            slot.running.push(execution.clone());
            commands.push(Command::Enter { execution, stage });
        }
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use std::collections::BTreeMap;

    use super::*;

    /// E13's pipeline: stage names and how long each takes, in milliseconds.
    const E13_STAGES: [(&str, u64); 3] = [("source", 500), ("build", 10_000), ("deploy", 10_000)];

    /// Runs E13: c1, c2 and c3 triggered one second apart; the engine is simulated by starting
    /// each admitted stage at once and finishing it after its duration. Returns the log.
    fn simulate_e13(mode: ExecutionMode) -> Vec<String> {
        let mut scheduler = StageScheduler::new(mode, E13_STAGES.len());
        let mut queue = BTreeMap::new();
        let mut sequence = 0;
        let mut schedule = |queue: &mut BTreeMap<_, _>, at: u64, event| {
            sequence += 1;
            queue.insert((at, sequence), event);
        };
        for (index, commit) in ["c1", "c2", "c3"].into_iter().enumerate() {
            let at = 1000 * u64::try_from(index).unwrap();
            schedule(&mut queue, at, ScheduleEvent::Triggered(commit));
        }
        let mut log = Vec::new();
        while let Some(((now, _), event)) = queue.pop_first() {
            match &event {
                ScheduleEvent::Triggered(execution) => {
                    log.push(format!("{now} {execution} triggered"));
                }
                ScheduleEvent::StageFinished { execution, stage } => {
                    log.push(format!(
                        "{now} {execution} finishes {}",
                        E13_STAGES[*stage].0
                    ));
                    if *stage + 1 == E13_STAGES.len() {
                        schedule(&mut queue, now, ScheduleEvent::ExecutionFinished(execution));
                    }
                }
                ScheduleEvent::StageEntered { .. }
                | ScheduleEvent::Arrived { .. }
                | ScheduleEvent::Left { .. }
                | ScheduleEvent::ExecutionFinished(_) => {}
            }
            for command in scheduler.handle(event).unwrap() {
                match command {
                    Command::Enter { execution, stage } => {
                        log.push(format!("{now} {execution} enters {}", E13_STAGES[stage].0));
                        schedule(
                            &mut queue,
                            now,
                            ScheduleEvent::StageEntered { execution, stage },
                        );
                        let done = now + E13_STAGES[stage].1;
                        schedule(
                            &mut queue,
                            done,
                            ScheduleEvent::StageFinished { execution, stage },
                        );
                    }
                    Command::Supersede {
                        execution, stage, ..
                    } => log.push(format!(
                        "{now} {execution} superseded in front of {}",
                        E13_STAGES[stage].0
                    )),
                }
            }
        }
        assert!(scheduler.is_idle(), "{scheduler:?}");
        log
    }

    #[test]
    fn e13_superseded_c2_is_replaced_in_front_of_build() {
        assert_eq!(
            simulate_e13(ExecutionMode::Superseded),
            [
                "0 c1 triggered",
                "0 c1 enters source",
                "500 c1 finishes source",
                "500 c1 enters build",
                "1000 c2 triggered",
                "1000 c2 enters source",
                "1500 c2 finishes source",
                "2000 c3 triggered",
                "2000 c3 enters source",
                "2500 c3 finishes source",
                "2500 c2 superseded in front of build",
                "10500 c1 finishes build",
                "10500 c1 enters deploy",
                "10500 c3 enters build",
                "20500 c1 finishes deploy",
                "20500 c3 finishes build",
                "20500 c3 enters deploy",
                "30500 c3 finishes deploy",
            ]
        );
    }

    #[test]
    fn e13_queued_deploys_all_three_in_order() {
        let log = simulate_e13(ExecutionMode::Queued);
        let deployed: Vec<&str> = log
            .iter()
            .filter(|line| line.ends_with("finishes deploy"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            deployed,
            [
                "20500 c1 finishes deploy",
                "30500 c2 finishes deploy",
                "40500 c3 finishes deploy"
            ]
        );
        assert!(
            !log.iter().any(|line| line.contains("superseded")),
            "{log:#?}"
        );
        let builds: Vec<&str> = log
            .iter()
            .filter(|line| line.contains("build"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            builds,
            [
                "500 c1 enters build",
                "10500 c1 finishes build",
                "10500 c2 enters build",
                "20500 c2 finishes build",
                "20500 c3 enters build",
                "30500 c3 finishes build",
            ]
        );
    }

    #[test]
    fn e13_parallel_runs_all_three_at_once_and_rejects_rollback() {
        let log = simulate_e13(ExecutionMode::Parallel);
        let builds: Vec<&str> = log
            .iter()
            .filter(|line| line.contains("enters build"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            builds,
            [
                "500 c1 enters build",
                "1500 c2 enters build",
                "2500 c3 enters build"
            ]
        );
        assert!(
            log.contains(&"22500 c3 finishes deploy".to_owned()),
            "{log:#?}"
        );
        assert!(!allows_rollback(ExecutionMode::Parallel));
        assert!(allows_rollback(ExecutionMode::Superseded));
        assert!(allows_rollback(ExecutionMode::Queued));
    }

    #[test_case(ExecutionMode::Superseded ; "superseded")]
    #[test_case(ExecutionMode::Queued ; "queued")]
    #[test_case(ExecutionMode::Parallel ; "parallel")]
    fn e13_no_running_stage_is_interrupted(mode: ExecutionMode) {
        let log = simulate_e13(mode);
        for line in log.iter().filter(|line| line.contains(" enters ")) {
            let finished = line
                .split_once(' ')
                .unwrap()
                .1
                .replace(" enters ", " finishes ");
            assert!(
                log.iter().any(|other| other.ends_with(&finished)),
                "{line} never finished: {log:#?}"
            );
        }
    }

    #[test]
    fn p20_only_one_waits_and_the_newest_wins() {
        let mut scheduler = StageScheduler::new(ExecutionMode::Superseded, 2);
        let enter = |execution, stage| Command::Enter { execution, stage };
        assert_eq!(
            scheduler.handle(ScheduleEvent::Triggered(1)).unwrap(),
            [enter(1, 0)]
        );
        assert!(
            scheduler
                .handle(ScheduleEvent::Triggered(2))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            scheduler.handle(ScheduleEvent::Triggered(3)).unwrap(),
            [Command::Supersede {
                execution: 2,
                stage: 0,
                by: 3
            }]
        );
        assert_eq!(scheduler.waiting(0), [&3]);
        assert_eq!(scheduler.running(0), [1]);
    }

    #[test]
    fn failed_execution_releases_its_stage() {
        let mut scheduler = StageScheduler::new(ExecutionMode::Queued, 2);
        scheduler.handle(ScheduleEvent::Triggered("a")).unwrap();
        scheduler.handle(ScheduleEvent::Triggered("b")).unwrap();
        assert_eq!(
            scheduler
                .handle(ScheduleEvent::ExecutionFinished("a"))
                .unwrap(),
            [Command::Enter {
                execution: "b",
                stage: 0
            }]
        );
        // Finishing again, or finishing an unknown execution, is harmless.
        assert!(
            scheduler
                .handle(ScheduleEvent::ExecutionFinished("a"))
                .unwrap()
                .is_empty()
        );
        assert!(
            scheduler
                .handle(ScheduleEvent::ExecutionFinished("z"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn stopping_a_waiting_execution_removes_it() {
        let mut scheduler = StageScheduler::new(ExecutionMode::Queued, 1);
        scheduler.handle(ScheduleEvent::Triggered("a")).unwrap();
        scheduler.handle(ScheduleEvent::Triggered("b")).unwrap();
        scheduler
            .handle(ScheduleEvent::ExecutionFinished("b"))
            .unwrap();
        assert!(scheduler.waiting(0).is_empty());
        let last = ScheduleEvent::StageFinished {
            execution: "a",
            stage: 0,
        };
        assert!(scheduler.handle(last).unwrap().is_empty());
        assert!(scheduler.is_idle());
    }

    #[test_case(ScheduleEvent::Triggered("a"), "schedule execution a: it was already triggered" ; "twice")]
    #[test_case(ScheduleEvent::StageEntered { execution: "b", stage: 0 }, "schedule execution b: it was not let into stage 0" ; "entered while waiting")]
    #[test_case(ScheduleEvent::StageFinished { execution: "a", stage: 1 }, "schedule execution a: it was not let into stage 1" ; "finished wrong stage")]
    #[test_case(ScheduleEvent::StageFinished { execution: "a", stage: 9 }, "schedule execution a: it was not let into stage 9" ; "no such stage")]
    fn protocol_errors(event: ScheduleEvent<&'static str>, message: &str) {
        let mut scheduler = StageScheduler::new(ExecutionMode::Superseded, 2);
        scheduler.handle(ScheduleEvent::Triggered("a")).unwrap();
        scheduler.handle(ScheduleEvent::Triggered("b")).unwrap();
        assert_eq!(scheduler.handle(event).unwrap_err().to_string(), message);
    }
}
