//! Runs one pipeline execution: the [`Plan`]'s actions, as soon as their dependencies finish.
//!
//! [`run`] drives a `dispatcher::Dispatcher` (pending/running/done bookkeeping, synchronous
//! and unit-tested) and spawns each ready action into a `JoinSet` bounded by a semaphore.
//! Actions talk to containers only through [`Executor`] and to artifacts only through
//! [`ArtifactStore`]; the engine never touches the database: its output is [`RunEvent`]s.

mod action;
mod conditions;
mod deploy;
mod dispatcher;
mod entry;
mod event;
mod inputs;
mod limits;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info_span, warn};

pub use event::{
    ActionOutcome, ActionOutputs, ActionStatus, RunEvent, RunEventKind, RunId, RunStatus,
};

use crate::artifacts::ArtifactStore;
use crate::build::Staging;
use crate::dag::Plan;
use crate::executor::Executor;
use crate::pipeline::{ActionId, ExecutionMode, Pipeline};
use dispatcher::Dispatcher;

/// Hands out `CODEBUILD_BUILD_NUMBER`s: strictly increasing per project.
pub type BuildCounter = Arc<dyn Fn(String) -> BoxFuture<'static, u64> + Send + Sync>;

/// A manual approval's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Go on.
    Approved,
    /// Fail the action, with the reviewer's reason.
    Rejected(String),
}

/// Waits for manual approvals (`runner approve`).
pub trait ApprovalGate: Send + Sync {
    /// Waits until `stage/action` of `run` is approved or rejected, or `timeout` passes.
    fn wait(
        &self,
        run: &RunId,
        stage: &str,
        action: &str,
        timeout: Duration,
    ) -> BoxFuture<'static, Approval>;

    /// Waits while the transition into `stage` of `pipeline` is disabled (P18); returns at once
    /// when it is enabled, which is the default. In SUPERSEDED mode only the newest execution
    /// waiting in front of a stage goes on; the others are superseded (P18, P20).
    fn transition(
        &self,
        run: &RunId,
        pipeline: &str,
        mode: ExecutionMode,
        stage: &str,
    ) -> BoxFuture<'static, Transition> {
        let _ = (run, pipeline, mode, stage);
        Box::pin(std::future::ready(Transition::Continue))
    }

    /// The execution `run` is done with stage `stage` (its index): it ended there, one way or
    /// another. Whoever locks stages releases the lock here (P20 R1).
    fn left_stage(&self, run: &RunId, stage: usize) {
        let _ = (run, stage);
    }
}

/// What happens to an execution in front of a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// It goes on into the stage.
    Continue,
    /// It ends `Superseded`, for the reason given.
    Superseded(String),
}

/// Settings every build action of the execution shares.
#[derive(Clone)]
pub struct BuildSettings {
    /// Pseudo region.
    pub region: String,
    /// Pseudo account.
    pub account: String,
    /// CA bundle to install in build containers.
    pub ca_bundle: Option<PathBuf>,
    /// Cache root for `cache.paths`.
    pub cache_root: Option<PathBuf>,
    /// How inputs reach the containers.
    pub staging: Staging,
    /// Build counters.
    pub counter: BuildCounter,
    /// Whether builds receive AWS credentials.
    pub aws_credentials: AwsCredentials,
}

/// Whether build containers receive AWS credentials, like a CodeBuild service role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AwsCredentials {
    /// No AWS variables are passed (the default: nothing secret enters a build unasked).
    #[default]
    None,
    /// The runner's own credentials (standard chain), region and endpoint, masked in logs.
    FromRunner,
}

/// One execution to run.
#[derive(Clone)]
pub struct ExecutionRequest {
    /// The execution id.
    pub run_id: RunId,
    /// The checked pipeline.
    pub pipeline: Arc<Pipeline>,
    /// Its plan.
    pub plan: Arc<Plan>,
    /// Actions that are already done (the source step, or everything a retry keeps).
    pub completed: BTreeMap<ActionId, ActionOutputs>,
    /// Actions to leave alone entirely (a retry's stages before the retried one are
    /// `completed`; nothing is skipped in a fresh run).
    pub pipeline_variables: BTreeMap<String, String>,
    /// The commit every build reports as `CODEBUILD_RESOLVED_SOURCE_VERSION`.
    pub revision: Option<String>,
    /// How many actions may run at once.
    pub parallelism: usize,
    /// Execution timeout (CodePipeline's is 8 hours per action; this bounds the whole run).
    pub timeout: Option<Duration>,
    /// Build settings.
    pub builds: BuildSettings,
    /// Run no stage after this one (a rollback re-runs one stage only, P40).
    pub last_stage: Option<usize>,
}

/// Everything an action job needs, shared by all jobs of an execution.
struct Context<E, S> {
    executor: Arc<E>,
    store: Arc<S>,
    approvals: Arc<dyn ApprovalGate>,
    request: ExecutionRequest,
    events: mpsc::UnboundedSender<RunEvent>,
    /// Stage starts held until the stage's gate opens.
    held_starts: Arc<entry::HeldStarts>,
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    /// Its status.
    pub status: RunStatus,
    /// A stage a condition asked to roll back (P41, P42); the caller starts the rollback.
    pub rollback: Option<usize>,
}

/// The token that stops the run: cancelled with `cancel`, or when `timeout` runs out.
fn stop_token(
    cancel: &CancellationToken,
    timeout: Option<std::time::Duration>,
) -> CancellationToken {
    let stop = cancel.child_token();
    if let Some(timeout) = timeout {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            stop.cancel();
        });
    }
    stop
}

/// What a finished job says: its action, outcome and end time. A job that panicked still
/// ends its action, as a failure that names it.
fn joined_outcome(
    joined: Result<(tokio::task::Id, (ActionOutcome, DateTime<Utc>)), tokio::task::JoinError>,
    job_actions: &mut std::collections::HashMap<tokio::task::Id, ActionId>,
) -> Option<(ActionId, ActionOutcome, DateTime<Utc>)> {
    let (id, (outcome, ended)) = match joined {
        Ok((task, result)) => (job_actions.remove(&task), result),
        Err(error) => {
            warn!(error = %error, "an action task ended abnormally");
            let message = format!("the action's task ended abnormally: {error}");
            (
                job_actions.remove(&error.id()),
                (ActionOutcome::failed(message), Utc::now()),
            )
        }
    };
    id.map(|id| (id, outcome, ended))
}

/// Runs the execution to its end and says how it ended. Events go to `events` as they happen.
pub async fn run<E, S>(
    executor: Arc<E>,
    store: Arc<S>,
    approvals: Arc<dyn ApprovalGate>,
    request: ExecutionRequest,
    events: mpsc::UnboundedSender<RunEvent>,
    cancel: CancellationToken,
) -> RunEnd
where
    E: Executor + 'static,
    S: ArtifactStore + 'static,
{
    let span = info_span!("run", run_id = %request.run_id, pipeline = %request.pipeline.name);
    async move {
        let run_id = request.run_id.clone();
        let emit_at = |at, kind| {
            let _ = events.send(RunEvent {
                at,
                run_id: run_id.clone(),
                kind,
            });
        };
        let held_starts = Arc::new(entry::HeldStarts::default());
        let emit = |kind: RunEventKind| {
            if let RunEventKind::StageFinished { stage, .. } = &kind
                && held_starts.never_started(*stage)
            {
                // Superseded or stopped in front of it: the stage was never entered.
                return;
            }
            emit_at(Utc::now(), kind);
        };
        // The gate hears that a stage ended unless the execution stays in it (an automatic
        // retry, or a rollback the caller starts next): it keeps the stage's lock, so no other
        // execution enters between the attempts (P20). The caller lets go when it is done.
        let stage_event = |kind: RunEventKind, dispatcher: &Dispatcher| {
            if let RunEventKind::StageFinished { stage, .. } = &kind
                && !dispatcher.stays_in(*stage)
            {
                approvals.left_stage(&run_id, *stage);
            }
            emit(kind);
        };
        emit(RunEventKind::RunStarted);
        let mut dispatcher = Dispatcher::new(&request.pipeline, &request.plan, &request.completed)
            .with_last_stage(request.last_stage)
            .with_execution(&request.run_id.0, &request.pipeline_variables);
        let permits = Arc::new(Semaphore::new(request.parallelism.max(1)));
        let context = Arc::new(Context {
            executor,
            store,
            approvals: Arc::clone(&approvals),
            request: request.clone(),
            events: events.clone(),
            held_starts: Arc::clone(&held_starts),
        });
        let mut jobs: JoinSet<(ActionOutcome, DateTime<Utc>)> = JoinSet::new();
        let mut job_actions = std::collections::HashMap::new();
        let stop = stop_token(&cancel, request.timeout);
        loop {
            if !stop.is_cancelled() {
                let ready = dispatcher.start_ready();
                for kind in dispatcher.take_stage_events() {
                    // A stage with actions to run starts when one passes its gate (`entry`).
                    if let Some(kind) = context.held_starts.hold_start(kind, &ready) {
                        stage_event(kind, &dispatcher);
                    }
                }
                for id in ready {
                    let inputs = dispatcher.inputs_for(id);
                    let job = run_job(&context, &permits, id, inputs, stop.child_token());
                    job_actions.insert(jobs.spawn(job).id(), id);
                }
            }
            let next = tokio::select! {
                joined = jobs.join_next_with_id() => joined,
                () = stop.cancelled(), if !dispatcher.is_stopping() => {
                    dispatcher.stop();
                    continue;
                }
            };
            let Some(joined) = next else {
                break;
            };
            let Some((id, outcome, ended)) = joined_outcome(joined, &mut job_actions) else {
                continue;
            };
            let outcome = limits::enforce(outcome);
            dispatcher.finish(id, &outcome);
            emit_at(
                ended,
                RunEventKind::ActionFinished {
                    action: id,
                    outcome: Box::new(outcome),
                },
            );
            for kind in dispatcher.take_stage_events() {
                stage_event(kind, &dispatcher);
            }
        }
        for kind in dispatcher.close() {
            stage_event(kind, &dispatcher);
        }
        let status = dispatcher.status();
        emit(RunEventKind::RunFinished { status });
        RunEnd {
            status,
            rollback: dispatcher.rollback(),
        }
    }
    .instrument(span)
    .await
}

/// One action's job: waits for a permit, says the action started, and runs it. Returns how it
/// ended and when, taken before the permit is released so no recorded start of a queued action
/// precedes the recorded end of the action it waited for.
fn run_job<E, S>(
    context: &Arc<Context<E, S>>,
    permits: &Arc<Semaphore>,
    id: ActionId,
    inputs: dispatcher::Inputs,
    token: CancellationToken,
) -> impl Future<Output = (ActionOutcome, DateTime<Utc>)> + Send + 'static
where
    E: Executor + 'static,
    S: ArtifactStore + 'static,
{
    let context = Arc::clone(context);
    let permits = Arc::clone(permits);
    async move {
        // In front of the stage first: a waiting action holds no permit.
        if let Err(outcome) = entry::enter(&context, id, &token).await {
            return (outcome, Utc::now());
        }
        let _permit = permits.acquire_owned().await;
        if token.is_cancelled() {
            // Stopped while it queued for a permit: no container is started.
            let outcome = ActionOutcome {
                status: ActionStatus::Stopped,
                ..ActionOutcome::failed("stopped before it started")
            };
            return (outcome, Utc::now());
        }
        // Started once it holds a permit, so the recorded start is the real one (P9).
        let _ = context.events.send(RunEvent {
            at: Utc::now(),
            run_id: context.request.run_id.clone(),
            kind: RunEventKind::ActionStarted { action: id },
        });
        let outcome = action::run(&context, id, inputs, &token).await;
        (outcome, Utc::now())
    }
}
