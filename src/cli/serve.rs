//! `runner serve`: one daemon for every pipeline given. GitHub webhooks and the HTTP API
//! (`server`) queue start requests through the [`PipelineLauncher`]; one worker per pipeline
//! starts each with `run::start_execution` as it arrives, and the pipeline's stage locks
//! (`daemon::locks`) order them through the stages by execution mode (P20–P22): under
//! `superseded` (the default) and `queued` each stage works on one execution at a time, so a
//! newer execution builds while an older one deploys; under `superseded` only the newest waits
//! in front of a stage, the older one recorded `Superseded`; `queued` lets them through in
//! arrival order; `parallel` locks nothing. Stage retries asked for over HTTP run beside them
//! ([`Retries`]) and take the locks from the retried stage on.
//!
//! Pipelines come from `--pipeline` flags and from the `[[pipeline]]` tables of a `--config`
//! file (`config`); a pipeline with `watch = true` also has its repository polled, its new
//! heads queued like webhook pushes.
//!
//! Shutdown (Ctrl-C or SIGTERM): the server stops accepting and finishes requests in flight,
//! workers take no new requests (queued ones are dropped and logged), running executions may
//! finish within `--shutdown-grace`, after which they are stopped cleanly (their builds end
//! `STOPPED`), and serve exits 0. A second signal exits at once (130).

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Outcome;
use super::args::ServeArgs;
use super::config::{ServeOptions, Watch};
use super::launcher::{PipelineLauncher, StartRequest};
use super::pull_request;
use super::retries::Retries;
use super::run::{self, StartOptions, Workspace};
use super::settings::Settings;
use super::watch::Follower;
use crate::daemon::intake::HeadStarts;
use crate::daemon::locks::{StageLocks, Superseded};
use crate::daemon::trigger::Decision;
use crate::dag::Plan;
use crate::engine::RunId;
use crate::env;
use crate::pipeline::Pipeline;
use crate::server::{self, AppState, Secret};
use crate::source::github::PullRequestPayload;
use crate::state::{
    ExecutionId, ExecutionStatus, NewExecution, SourceRevision, Trigger, TriggerKind,
};

/// Runs `runner serve`.
pub(crate) async fn serve(settings: &Settings, args: &ServeArgs) -> anyhow::Result<Outcome> {
    let options = ServeOptions::resolve(args)?;
    let mut settings = settings.clone();
    if let Some(dir) = options
        .data_dir
        .clone()
        .filter(|_| !settings.data_dir_given)
    {
        settings.data_dir = dir;
    }
    let settings = &settings;
    let webhook_secret = read_secret(
        options.webhook_secret_file.as_deref(),
        env::RUNNER_WEBHOOK_SECRET,
    )?;
    let api_token = read_secret(options.api_token_file.as_deref(), env::RUNNER_API_TOKEN)?;
    let loaded = load(&options)?;
    let workspace = Arc::new(Workspace::open_serving(settings, options.warm_pool).await?);
    for (pipeline, _, _) in &loaded {
        run::prepare_images(settings, &workspace, pipeline).await?;
    }
    let pipelines: Vec<Arc<Pipeline>> = loaded.iter().map(|(p, _, _)| Arc::clone(p)).collect();
    let abort = CancellationToken::new();
    let stage_locks = stage_locks(&pipelines);
    let retries = Arc::new(
        Retries::new(
            settings.clone(),
            Arc::clone(&workspace),
            loaded
                .iter()
                .map(|(pipeline, plan, _)| (Arc::clone(pipeline), Arc::clone(plan)))
                .collect(),
            options.parallelism,
            abort.clone(),
        )
        .with_stage_locks(stage_locks.clone()),
    );
    let (launcher, queues) = PipelineLauncher::new(&pipelines, options.queue_capacity);
    let launcher = launcher
        .with_retries(Arc::clone(&retries))
        .with_stage_locks(stage_locks.clone());
    if webhook_secret.is_none() {
        warn!("no webhook secret: every delivery to /hooks/github is refused");
    }
    if api_token.is_none() {
        warn!("no API token: the mutating API endpoints are refused");
    }
    let state = AppState::new(workspace.store.clone(), Arc::new(launcher))
        .with_webhook_secret(webhook_secret)
        .with_api_token(api_token)
        .with_data_dir(settings.data_dir.clone());
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listen on {}", options.listen))?;
    let address = listener
        .local_addr()
        .context("read the listening address")?;
    announce(&format!("listening on http://{address}"));
    let shutdown = CancellationToken::new();
    watch_signals(shutdown.clone());
    let mut workers = JoinSet::new();
    for (((pipeline, plan, watch), queue), locks) in loaded.into_iter().zip(queues).zip(stage_locks)
    {
        let queue = match watch {
            Some(watch) => {
                let poll = Poll {
                    settings: settings.clone(),
                    workspace: Arc::clone(&workspace),
                    pipeline: Arc::clone(&pipeline),
                    watch,
                };
                poll.merged_with(queue, options.queue_capacity, shutdown.clone())
                    .await?
            }
            None => queue,
        };
        let worker = Worker {
            settings: settings.clone(),
            workspace: Arc::clone(&workspace),
            pipeline,
            plan,
            locks,
            parallelism: options.parallelism,
            capacity: options.queue_capacity.max(1),
            abort: abort.clone(),
        };
        workers.spawn(worker.run(queue, shutdown.clone()));
    }
    server::launch(listener, state, shutdown.clone())
        .await
        .context("serve HTTP")?;
    drain(workers, options.shutdown_grace, &abort).await;
    retries.finish().await;
    workspace.executor.drain_warm_pool().await;
    Ok(Outcome::Success)
}

/// Waits for the workers' executions for `grace`, then stops them with `abort`.
async fn drain(mut workers: JoinSet<()>, grace: std::time::Duration, abort: &CancellationToken) {
    info!(?grace, "shutting down: waiting for running executions");
    let finished = tokio::time::timeout(grace, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        warn!("executions still running after the grace period: stopping them");
        abort.cancel();
        while workers.join_next().await.is_some() {}
    }
}

/// A served pipeline, its plan, and its polling if it is watched.
type Loaded = (Arc<Pipeline>, Arc<Plan>, Option<Watch>);

/// Every pipeline served; two with one name are an error.
fn load(options: &ServeOptions) -> anyhow::Result<Vec<Loaded>> {
    let mut loaded = Vec::new();
    for served in &options.pipelines {
        let (pipeline, plan) = run::load_pipeline(&served.file)?;
        if loaded
            .iter()
            .any(|(p, _, _): &Loaded| p.name == pipeline.name)
        {
            anyhow::bail!("two pipeline files are named {}", pipeline.name);
        }
        loaded.push((pipeline, plan, served.watch.clone()));
    }
    Ok(loaded)
}

/// One set of stage locks per pipeline, in the same order.
fn stage_locks(pipelines: &[Arc<Pipeline>]) -> Vec<Arc<StageLocks>> {
    pipelines
        .iter()
        .map(|pipeline| {
            let names = pipeline.stages.iter().map(|s| s.name.clone()).collect();
            Arc::new(StageLocks::new(pipeline.execution_mode, names))
        })
        .collect()
}

/// Polls a served pipeline's repository, as `runner watch` does (`watch = true` in the config).
struct Poll {
    settings: Settings,
    workspace: Arc<Workspace>,
    pipeline: Arc<Pipeline>,
    watch: Watch,
}

impl Poll {
    /// One queue for the pipeline's worker: the launcher's requests (webhooks, API) and the
    /// poller's, in arrival order, a new head that a push webhook and the poll both report
    /// queued once.
    async fn merged_with(
        self,
        mut launched: mpsc::Receiver<StartRequest>,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> anyhow::Result<mpsc::Receiver<StartRequest>> {
        let repo = self.pipeline.source.repo.to_string();
        let mut follower = Follower::open(
            &self.settings,
            &self.workspace,
            &self.pipeline,
            &repo,
            self.watch.branch.as_deref(),
            self.watch.interval,
        )
        .await
        .with_context(|| format!("watch {repo} for pipeline {}", self.pipeline.name))?;
        let (merged, receiver) = mpsc::channel(capacity.max(1));
        let (polled, mut polls) = mpsc::channel(1);
        let name = self.pipeline.name.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut heads = HeadStarts::default();
            loop {
                let request = tokio::select! {
                    request = launched.recv() => request,
                    Some(request) = polls.recv() => Some(request),
                    () = stop.cancelled() => None,
                };
                let Some(request) = request else { break };
                if !admit(&mut heads, &request) {
                    info!(
                        pipeline = name,
                        revision = request.revision,
                        trigger = request.trigger.as_str(),
                        "this head has started already (a webhook and a poll both saw it)"
                    );
                    continue;
                }
                if merged.send(request).await.is_err() {
                    break;
                }
            }
        });
        let name = self.pipeline.name.clone();
        tokio::spawn(async move {
            while let Some(start) = follower.next(&shutdown).await {
                let request = StartRequest {
                    pipeline: name.clone(),
                    revision: start.revision,
                    trigger: TriggerKind::Poll,
                    reason: start.reason,
                    files_from: None,
                    head_of: Some(start.git_ref),
                };
                if polled.try_send(request).is_err() {
                    warn!(
                        pipeline = name,
                        "the queue is full: this poll's head waits for the next poll"
                    );
                }
            }
        });
        Ok(receiver)
    }
}

/// Whether `request` starts something new: a push webhook's or a poll's new head starts once.
fn admit(heads: &mut HeadStarts, request: &StartRequest) -> bool {
    request
        .head_of
        .as_deref()
        .is_none_or(|git_ref| heads.admit(git_ref, &request.revision))
}

/// A secret from `file` (trimmed), else from the environment variable `var`.
fn read_secret(file: Option<&std::path::Path>, var: &str) -> anyhow::Result<Option<Secret>> {
    let text = match file {
        Some(path) => fs_err::read_to_string(path).context("read a secret file")?,
        None => std::env::var(var).unwrap_or_default(),
    };
    Ok(Secret::from_text(&text))
}

/// Runs one pipeline's start requests, each as soon as it arrives; the pipeline's stage locks
/// decide who works in which stage (P20–P22).
#[derive(Clone)]
struct Worker {
    settings: Settings,
    workspace: Arc<Workspace>,
    pipeline: Arc<Pipeline>,
    plan: Arc<Plan>,
    locks: Arc<StageLocks>,
    parallelism: usize,
    /// How many executions may wait for the source stage before requests stay in the queue,
    /// which refuses webhooks once it is full too.
    capacity: usize,
    /// Stops the running execution (after the shutdown grace).
    abort: CancellationToken,
}

impl Worker {
    async fn run(self, mut queue: mpsc::Receiver<StartRequest>, shutdown: CancellationToken) {
        let mut running = JoinSet::new();
        'requests: loop {
            while self.locks.waiting_at(0) >= self.capacity {
                tokio::select! {
                    () = shutdown.cancelled() => break 'requests,
                    () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                }
            }
            let request = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                request = queue.recv() => match request {
                    Some(request) => request,
                    None => break,
                },
            };
            let request = match request.files_from.clone() {
                None => request,
                Some(pr) => {
                    let decided = tokio::select! {
                        decided = self.with_files(request, &pr) => decided,
                        () = shutdown.cancelled() => {
                            warn!(
                                pipeline = self.pipeline.name,
                                pull_request = pr.number,
                                "shutting down: dropped a pull request whose files were being listed"
                            );
                            break;
                        }
                    };
                    let Some(request) = decided else { continue };
                    request
                }
            };
            // In line for the source stage now, so executions keep the order requests came in.
            let run_id = RunId::generate();
            self.locks.arrive_first(&run_id.0);
            let worker = self.clone();
            let stop = shutdown.clone();
            running.spawn(async move { worker.admit(run_id, request, stop).await });
            while let Some(joined) = running.try_join_next() {
                self.ended(joined);
            }
        }
        // Executions already running finish (or are stopped by `abort`) before exit.
        while let Some(joined) = running.join_next().await {
            self.ended(joined);
        }
        queue.close();
        let mut dropped = 0;
        while queue.try_recv().is_ok() {
            dropped += 1;
        }
        if dropped > 0 {
            warn!(
                pipeline = self.pipeline.name,
                dropped, "shutting down: dropped queued start requests"
            );
        }
    }

    /// Logs an execution task that panicked (its stage locks went with its `Held`).
    fn ended(&self, joined: Result<(), tokio::task::JoinError>) {
        if let Err(error) = joined {
            warn!(pipeline = self.pipeline.name, error = %error, "an execution task ended abnormally");
        }
    }

    /// `request` as its pull request's changed files decide it (`None`: it starts nothing).
    /// The fetch takes the source steps' turn (they share the mirror) and at most
    /// [`PULL_REQUEST_CHECK_TIMEOUT`], so a stalled remote cannot hold up the queue.
    async fn with_files(
        &self,
        request: StartRequest,
        pr: &PullRequestPayload,
    ) -> Option<StartRequest> {
        let decided = tokio::time::timeout(PULL_REQUEST_CHECK_TIMEOUT, async {
            let _turn = self.workspace.source_turn.lock().await;
            pull_request::decide_with_files(&self.settings, &self.pipeline, pr).await
        })
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "fetching took longer than {PULL_REQUEST_CHECK_TIMEOUT:?}"
            ))
        });
        match decided {
            Ok(Decision::Start { revision, reason }) => Some(StartRequest {
                revision,
                reason,
                files_from: None,
                ..request
            }),
            Ok(Decision::Skip { reason }) => {
                info!(
                    pipeline = self.pipeline.name,
                    reason, "the pull request starts nothing"
                );
                None
            }
            Err(error) => {
                warn!(
                    pipeline = self.pipeline.name,
                    pull_request = pr.number,
                    error = %format!("{error:#}"),
                    "could not list the files of a pull request; it starts nothing"
                );
                None
            }
        }
    }

    /// Waits for the source stage, then runs the execution; one superseded in front of it is
    /// recorded as such (P20 R3), and one still waiting at shutdown is dropped.
    async fn admit(&self, run_id: RunId, request: StartRequest, shutdown: CancellationToken) {
        // Whatever happens below, a panic included, the execution lets go of its locks.
        let _held = self.locks.hold(&run_id.0);
        let admission = tokio::select! {
            admission = self.locks.enter(&run_id.0, 0) => Some(admission),
            () = shutdown.cancelled() => None,
        };
        match admission {
            Some(Ok(())) => self.start(run_id.clone(), request).await,
            Some(Err(Superseded(reason))) => {
                info!(
                    pipeline = self.pipeline.name,
                    revision = request.revision,
                    reason,
                    "superseded before it started"
                );
                if let Err(error) = self.record_superseded(&run_id, &request, reason).await {
                    warn!(error = %format!("{error:#}"), "could not record a superseded execution");
                }
            }
            None => warn!(
                pipeline = self.pipeline.name,
                revision = request.revision,
                "shutting down: dropped a start request waiting for the source stage"
            ),
        }
    }

    /// Records `request` as execution `id` that ended `Superseded` before its source stage ran.
    async fn record_superseded(
        &self,
        id: &RunId,
        request: &StartRequest,
        summary: String,
    ) -> anyhow::Result<()> {
        let store = &self.workspace.store;
        let id = ExecutionId::from(id.0.as_str());
        let now = chrono::Utc::now();
        store
            .create_execution(NewExecution {
                id: id.clone(),
                pipeline: self.pipeline.name.clone(),
                pipeline_digest: crate::pipeline::digest(&self.pipeline),
                trigger: Trigger {
                    kind: request.trigger,
                    detail: request.reason.clone(),
                },
                sources: vec![SourceRevision {
                    action: self.pipeline.stages[0].actions[0].name.clone(),
                    revision_id: request.revision.clone(),
                    ref_name: None,
                    summary: None,
                }],
                started_at: now,
            })
            .await?;
        store
            .set_execution_status(&id, ExecutionStatus::Superseded, Some(summary), now)
            .await?;
        Ok(())
    }

    async fn start(&self, run_id: RunId, request: StartRequest) {
        info!(
            pipeline = self.pipeline.name,
            execution = run_id.0,
            revision = request.revision,
            reason = request.reason,
            "starting an execution"
        );
        let mut options =
            StartOptions::triggered(request.trigger, request.revision, request.reason);
        options.parallelism = self.parallelism;
        options.stop = Some(self.abort.clone());
        options.run_id = Some(run_id);
        options.locks = Some(Arc::clone(&self.locks));
        let outcome = run::start_execution(
            &self.settings,
            &self.workspace,
            &self.pipeline,
            &self.plan,
            &options,
        )
        .await;
        match outcome {
            Ok(outcome) => info!(pipeline = self.pipeline.name, ?outcome, "execution ended"),
            Err(error) => {
                let error = format!("{error:#}");
                warn!(
                    pipeline = self.pipeline.name,
                    error, "the execution could not run"
                );
            }
        }
    }
}

/// How long a pull request's file check may fetch before the request is dropped.
const PULL_REQUEST_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

#[expect(clippy::print_stdout, reason = "the address is this command's output")]
fn announce(text: &str) {
    println!("==> {text}");
}

/// The first Ctrl-C or SIGTERM starts the shutdown; a second one exits at once.
fn watch_signals(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for round in 0..2 {
            let terminated = async {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = terminated => {}
            }
            if round == 0 {
                warn!("shutting down (press Ctrl-C again to exit at once)");
                shutdown.cancel();
            }
        }
        std::process::exit(130);
    });
}
