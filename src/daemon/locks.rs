//! Stage locks of one pipeline inside `runner serve` (P20–P22): [`StageLocks`] drives a
//! [`StageScheduler`] and lets each execution wait, as a future, until it may enter a stage.
//!
//! An execution takes the locks of its stages in stage order: asking for stage `k` first enters
//! every earlier stage it has neither entered nor left. A pipeline's `depends_on` can let a later
//! stage start before an earlier one ends, so one execution may hold several stages; taking them
//! in one global order is what keeps two executions from waiting on each other for ever.
//!
//! A lock is released when the engine says the stage ended ([`StageLocks::leave`]) or when the
//! execution ends ([`StageLocks::finish`]). Dropping a waiting future (the execution was stopped)
//! keeps its place until one of those comes, which the caller always sends.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use super::stages::{Command, ScheduleEvent, StageScheduler};
use crate::pipeline::ExecutionMode;

/// Why an execution may not enter a stage: a newer execution replaced it while it waited
/// (P20 R3), or it ended meanwhile. The text says which and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superseded(pub String);

/// Where an execution stands in front of one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Admission {
    /// It waits for the stage's lock.
    Waiting,
    /// It holds the lock (or held it and left).
    Entered,
    /// A newer execution replaced it while it waited (P20 R3); the text says which and where.
    Superseded(String),
}

/// An execution's hold on a pipeline's stage locks ([`StageLocks::hold`]), let go when dropped.
#[derive(Debug)]
pub struct Held {
    locks: Arc<StageLocks>,
    run: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.locks.finish(&self.run);
    }
}

/// The stage locks of one pipeline, shared by all its executions in this process.
#[derive(Debug)]
pub struct StageLocks {
    stage_names: Vec<String>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    scheduler: StageScheduler<String>,
    runs: HashMap<String, RunLocks>,
}

/// One execution's places in front of (or inside) stages.
#[derive(Debug, Default)]
struct RunLocks {
    /// Stages it arrived at, with where it stands there.
    arrived: HashMap<usize, watch::Sender<Admission>>,
    /// Stages it is done with (left, or ended before it asked for them: skipped).
    passed: BTreeSet<usize>,
    /// Set once it is superseded: it enters nothing more.
    superseded: Option<String>,
}

impl StageLocks {
    /// Locks for a pipeline in `mode` with these stages, in order.
    pub fn new(mode: ExecutionMode, stage_names: Vec<String>) -> Self {
        let scheduler = StageScheduler::new(mode, stage_names.len());
        Self {
            stage_names,
            inner: Mutex::new(Inner {
                scheduler,
                runs: HashMap::new(),
            }),
        }
    }

    /// The index of the stage named `name`.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stage_names.iter().position(|stage| stage == name)
    }

    /// `run`'s hold on these locks: dropping it (also in a panic) lets go of every stage
    /// `run` holds or waits for, as [`StageLocks::finish`].
    pub fn hold(self: &Arc<Self>, run: &str) -> Held {
        Held {
            locks: Arc::clone(self),
            run: run.to_owned(),
        }
    }

    /// Puts `run` in line for the first stage now, so that arrivals keep the order of calls
    /// (QUEUED is FIFO); [`StageLocks::enter`] then waits for the turn.
    pub fn arrive_first(&self, run: &str) {
        let mut inner = self.lock();
        self.arrive(&mut inner, run, 0);
    }

    /// Waits until `run` holds the lock of `stage` (and of every stage before it that it has
    /// not left), or is superseded in front of one of them.
    pub async fn enter(&self, run: &str, stage: usize) -> Result<(), Superseded> {
        for step in 0..=stage.min(self.stage_names.len().saturating_sub(1)) {
            let Some(mut admission) = self.admission(run, step, step == stage) else {
                continue;
            };
            let settled = admission
                .wait_for(|admission| *admission != Admission::Waiting)
                .await
                .map(|admission| admission.clone());
            match settled {
                Ok(Admission::Entered) => {}
                Ok(Admission::Superseded(reason)) => return Err(Superseded(reason)),
                // The sender went with the execution's entry: it finished meanwhile.
                Ok(Admission::Waiting) | Err(_) => {
                    return Err(Superseded(format!(
                        "the execution ended while it waited in front of stage {}",
                        self.stage_names[step]
                    )));
                }
            }
        }
        Ok(())
    }

    /// `run` is done with `stage`: the next one waiting enters it. Asking for the stage again
    /// (an automatic stage retry) takes its lock again.
    pub fn leave(&self, run: &str, stage: usize) {
        let mut inner = self.lock();
        let entry = inner.runs.entry(run.to_owned()).or_default();
        entry.passed.insert(stage);
        if entry.arrived.remove(&stage).is_none() {
            return;
        }
        let event = ScheduleEvent::Left {
            execution: run.to_owned(),
            stage,
        };
        self.handle(&mut inner, event);
    }

    /// `run` is done with stage `from` and goes on to `to`: it lines up in front of `to`
    /// before it lets go of `from`, so no execution behind it can get ahead in between.
    pub fn pass_on(&self, run: &str, from: usize, to: usize) {
        if to < self.stage_names.len() {
            let mut inner = self.lock();
            self.arrive(&mut inner, run, to);
        }
        self.leave(run, from);
    }

    /// `run` ended: it lets go of every stage and leaves every line.
    pub fn finish(&self, run: &str) {
        let mut inner = self.lock();
        self.handle(&mut inner, ScheduleEvent::ExecutionFinished(run.to_owned()));
        inner.runs.remove(run);
    }

    /// Whether an execution other than `run` is inside `stage` or waits in front of it.
    pub fn busy(&self, stage: usize, run: &str) -> bool {
        let inner = self.lock();
        let scheduler = &inner.scheduler;
        scheduler
            .running(stage)
            .iter()
            .chain(scheduler.waiting(stage))
            .any(|other| other != run)
    }

    /// `run` comes back at `stage` (a stage retry of an ended execution): it has passed every
    /// stage before, so [`StageLocks::enter`] lines it up at `stage` only.
    pub fn resume_at(&self, run: &str, stage: usize) {
        let mut inner = self.lock();
        let entry = inner.runs.entry(run.to_owned()).or_default();
        entry.passed.extend(0..stage);
        entry.superseded = None;
    }

    /// How many executions wait in front of `stage`.
    pub fn waiting_at(&self, stage: usize) -> usize {
        self.lock().scheduler.waiting(stage).len()
    }

    /// How many executions wait in front of a stage.
    pub fn waiting(&self) -> usize {
        let inner = self.lock();
        (0..self.stage_names.len())
            .map(|stage| inner.scheduler.waiting(stage).len())
            .sum()
    }

    /// Where `run` stands in front of `stage`, arriving there first if it has not yet; `None`
    /// when it left or skipped the stage and does not ask for it again (`target`: it does).
    fn admission(
        &self,
        run: &str,
        stage: usize,
        target: bool,
    ) -> Option<watch::Receiver<Admission>> {
        let mut inner = self.lock();
        let entry = inner.runs.entry(run.to_owned()).or_default();
        // A stage it holds stays its own even once it was superseded in front of another.
        if let Some(sender) = entry.arrived.get(&stage)
            && *sender.borrow() == Admission::Entered
        {
            return Some(sender.subscribe());
        }
        if let Some(reason) = &entry.superseded {
            let (_, receiver) = watch::channel(Admission::Superseded(reason.clone()));
            return Some(receiver);
        }
        if entry.passed.contains(&stage) {
            if !target {
                return None;
            }
            entry.passed.remove(&stage);
        }
        // Where it already waits, `arrive` gives back that place.
        Some(self.arrive(&mut inner, run, stage))
    }

    fn arrive(&self, inner: &mut Inner, run: &str, stage: usize) -> watch::Receiver<Admission> {
        let entry = inner.runs.entry(run.to_owned()).or_default();
        if let Some(sender) = entry.arrived.get(&stage) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(Admission::Waiting);
        entry.arrived.insert(stage, sender);
        let event = ScheduleEvent::Arrived {
            execution: run.to_owned(),
            stage,
        };
        self.handle(inner, event);
        receiver
    }

    /// Applies `event` and tells the executions it let in or superseded.
    fn handle(&self, inner: &mut Inner, event: ScheduleEvent<String>) {
        let commands = match inner.scheduler.handle(event) {
            Ok(commands) => commands,
            Err(error) => {
                // Arrived, Left and ExecutionFinished never fail; a bug if they do.
                tracing::error!(%error, "stage locks out of step");
                return;
            }
        };
        for command in commands {
            match command {
                Command::Enter { execution, stage } => {
                    if let Some(sender) = inner
                        .runs
                        .get(&execution)
                        .and_then(|entry| entry.arrived.get(&stage))
                    {
                        sender.send_replace(Admission::Entered);
                    }
                }
                Command::Supersede {
                    execution,
                    stage,
                    by,
                } => {
                    let reason = format!(
                        "superseded in front of stage {} by execution {by} (P20)",
                        self.stage_names[stage]
                    );
                    tracing::info!(execution, reason, "superseded");
                    if let Some(entry) = inner.runs.get_mut(&execution) {
                        entry.superseded = Some(reason.clone());
                        if let Some(sender) = entry.arrived.get(&stage) {
                            sender.send_replace(Admission::Superseded(reason));
                        }
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn locks(mode: ExecutionMode) -> Arc<StageLocks> {
        let names = ["source", "build", "deploy"].map(str::to_owned).to_vec();
        Arc::new(StageLocks::new(mode, names))
    }

    /// Whether `future` is still pending after the scheduler had a chance to run.
    async fn pending<F: Future + Unpin>(future: &mut F) -> bool {
        tokio::time::timeout(Duration::from_millis(20), future)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn p20_a_newer_arrival_supersedes_the_waiting_one_and_the_holder_goes_on() {
        let locks = locks(ExecutionMode::Superseded);
        for run in ["c1", "c2", "c3"] {
            locks.arrive_first(run);
        }
        assert_eq!(locks.enter("c1", 0).await, Ok(()));
        let superseded = locks.enter("c2", 0).await;
        assert_eq!(
            superseded,
            Err(Superseded(
                "superseded in front of stage source by execution c3 (P20)".into()
            ))
        );
        let mut c3 = Box::pin(locks.enter("c3", 1));
        assert!(pending(&mut c3).await, "c1 holds source");
        locks.leave("c1", 0);
        assert_eq!(c3.await, Ok(()), "c3 took source, then build");
        // c2 enters nothing more, even a stage nobody holds.
        assert!(locks.enter("c2", 2).await.is_err());
    }

    #[tokio::test]
    async fn p21_queued_executions_enter_in_arrival_order() {
        let locks = locks(ExecutionMode::Queued);
        for run in ["c1", "c2", "c3"] {
            locks.arrive_first(run);
        }
        assert_eq!(locks.waiting(), 2);
        let mut c3 = Box::pin(locks.enter("c3", 0));
        let mut c2 = Box::pin(locks.enter("c2", 0));
        assert_eq!(locks.enter("c1", 1).await, Ok(()));
        locks.leave("c1", 0);
        assert_eq!(c2.as_mut().await, Ok(()));
        assert!(pending(&mut c3).await, "c2 holds source");
        locks.finish("c2");
        assert_eq!(c3.await, Ok(()));
        let mut c3_build = Box::pin(locks.enter("c3", 1));
        assert!(pending(&mut c3_build).await, "c1 holds build");
        locks.leave("c1", 1);
        assert_eq!(c3_build.await, Ok(()));
    }

    #[tokio::test]
    async fn p22_parallel_executions_share_every_stage() {
        let locks = locks(ExecutionMode::Parallel);
        for run in ["c1", "c2"] {
            locks.arrive_first(run);
            assert_eq!(locks.enter(run, 2).await, Ok(()));
        }
        assert_eq!(locks.waiting(), 0);
    }

    #[tokio::test]
    async fn a_stage_left_before_it_was_asked_for_is_not_taken() {
        let locks = locks(ExecutionMode::Queued);
        locks.arrive_first("other");
        assert_eq!(locks.enter("other", 0).await, Ok(()));
        // "run" skipped source (say a retry that starts later): it does not wait for it.
        locks.leave("run", 0);
        assert_eq!(locks.enter("run", 1).await, Ok(()));
    }

    #[tokio::test]
    async fn a_stage_retried_automatically_takes_its_lock_again() {
        let locks = locks(ExecutionMode::Queued);
        locks.arrive_first("c1");
        assert_eq!(locks.enter("c1", 1).await, Ok(()));
        locks.leave("c1", 0);
        locks.leave("c1", 1);
        locks.arrive_first("c2");
        assert_eq!(locks.enter("c2", 1).await, Ok(()), "c1 left build");
        let mut again = Box::pin(locks.enter("c1", 1));
        assert!(pending(&mut again).await, "c2 holds build now");
        locks.leave("c2", 1);
        assert_eq!(again.await, Ok(()));
    }

    #[tokio::test]
    async fn passing_on_lines_up_before_letting_go() {
        let locks = locks(ExecutionMode::Queued);
        locks.arrive_first("c1");
        locks.arrive_first("c2");
        assert_eq!(locks.enter("c1", 0).await, Ok(()));
        locks.arrive_first("c0");
        // c0 holds build while c1 fetches; c1 is in line at build before c2 gets the source.
        locks.resume_at("c0", 1);
        assert_eq!(locks.enter("c0", 1).await, Ok(()));
        locks.pass_on("c1", 0, 1);
        assert_eq!(locks.enter("c2", 0).await, Ok(()));
        locks.pass_on("c2", 0, 1);
        assert_eq!(locks.waiting_at(1), 2);
        let mut c2 = Box::pin(locks.enter("c2", 1));
        let mut c1 = Box::pin(locks.enter("c1", 1));
        locks.leave("c0", 1);
        assert_eq!((&mut c1).await, Ok(()), "c1 first: it lined up first");
        assert!(pending(&mut c2).await);
        locks.pass_on("c1", 1, 3);
        assert_eq!(c2.await, Ok(()));
    }

    #[tokio::test]
    async fn a_resumed_execution_lines_up_at_its_stage_only() {
        let locks = locks(ExecutionMode::Queued);
        locks.arrive_first("c2");
        assert_eq!(locks.enter("c2", 0).await, Ok(()), "c2 holds source");
        assert!(locks.busy(0, "c1"));
        assert!(!locks.busy(1, "c1"));
        locks.resume_at("c1", 1);
        assert_eq!(
            locks.enter("c1", 1).await,
            Ok(()),
            "source is not in its way"
        );
        assert!(locks.busy(1, "c2"));
        assert!(!locks.busy(1, "c1"), "its own hold is not busy for it");
        locks.finish("c1");
        assert!(!locks.busy(1, "c2"));
    }

    #[tokio::test]
    async fn a_waiter_whose_execution_ends_is_let_go() {
        let locks = locks(ExecutionMode::Queued);
        locks.arrive_first("c1");
        locks.arrive_first("c2");
        let mut c2 = Box::pin(locks.enter("c2", 0));
        assert!(pending(&mut c2).await);
        locks.finish("c2");
        assert!(c2.await.is_err());
        assert_eq!(locks.waiting(), 0);
        assert_eq!(locks.waiting_at(0), 0);
    }
}
