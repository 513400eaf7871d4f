//! `runner run`: one execution of a pipeline, from the source stage to the last stage.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use super::approvals::{self, FileApprovals};
use super::args::RunArgs;
use super::recorder::Recorder;
use super::settings::Settings;
use super::source_step::{self, SourceOptions};
use super::stage_gate::LockingGate;
use crate::artifacts::{
    AnyArtifactStore, LocalArtifactStore, S3ArtifactStore, S3Encryption, S3StoreConfig,
};
use crate::daemon::locks::StageLocks;
use crate::dag::Plan;
use crate::engine::{
    self, ActionOutputs, BuildCounter, BuildSettings, ExecutionRequest, RunId, RunStatus,
};
use crate::executor::{DockerExecutor, Executor as _, LABEL_EXECUTION, WarmPool, images};
use crate::pipeline::{self, ActionId, ActionKind, Pipeline};
use crate::state::{
    self, ExecutionId, NewActionRun, NewArtifact, NewExecution, RetryMode, SourceRevision,
    StageStatus, Store, Trigger, TriggerKind,
};

/// The namespace under which an execution's pipeline-level variables are stored, so a retry
/// resolves `#{variables.X}` as the first attempt did.
pub(crate) const PIPELINE_VARIABLES: &str = "variables";

/// Everything an execution needs from this machine.
pub(crate) struct Workspace {
    /// State database.
    pub(crate) store: Store,
    /// The local artifact store (pipelines with `artifact_store: {type: s3}` get theirs from
    /// [`Workspace::artifact_store`]).
    pub(crate) artifacts: Arc<AnyArtifactStore>,
    /// Docker.
    pub(crate) executor: Arc<DockerExecutor>,
    /// Source steps of concurrent executions take turns: they share the repository mirrors.
    pub(crate) source_turn: tokio::sync::Mutex<()>,
}

impl Workspace {
    /// Opens state and artifacts, connects to Docker, and cleans up after crashed runners.
    pub(crate) async fn open(settings: &Settings) -> anyhow::Result<Self> {
        Self::open_with(settings, None).await
    }

    /// [`Workspace::open`] for the daemon of the data directory: it also removes the warm-pool
    /// containers an earlier daemon of this directory left, and keeps `warm_pool` idle build
    /// containers per shape from now on (none when 0).
    pub(crate) async fn open_serving(
        settings: &Settings,
        warm_pool: usize,
    ) -> anyhow::Result<Self> {
        Self::open_with(settings, Some(warm_pool)).await
    }

    async fn open_with(settings: &Settings, warm_pool: Option<usize>) -> anyhow::Result<Self> {
        let store = Store::open(settings.data_dir.join("state.db"))
            .await
            .context("open the state database")?;
        let artifacts = LocalArtifactStore::open(settings.data_dir.join("artifacts"))
            .context("open the artifact store")?;
        let mut executor = DockerExecutor::connect()
            .await
            .context("connect to Docker")?;
        if let Some(size) = warm_pool {
            let dir = std::fs::canonicalize(&settings.data_dir)
                .unwrap_or_else(|_| settings.data_dir.clone());
            let owner = dir.display().to_string();
            let swept = executor.sweep_warm_pool(&owner).await?;
            if swept > 0 {
                tracing::info!(swept, "removed warm-pool containers an earlier daemon left");
            }
            if size > 0 {
                executor = executor.with_warm_pool(WarmPool::new(size, owner));
            }
        }
        let abandoned = store
            .mark_abandoned_on_startup(chrono::Utc::now())
            .await
            .context("recover executions of runners that died")?;
        for execution in abandoned {
            tracing::warn!(
                execution = execution.as_str(),
                "marked abandoned: its runner died"
            );
            for container in executor
                .list_labelled(LABEL_EXECUTION, execution.as_str())
                .await?
            {
                executor.remove(&container).await?;
            }
        }
        Ok(Self {
            store,
            artifacts: Arc::new(AnyArtifactStore::Local(artifacts)),
            executor: Arc::new(executor),
            source_turn: tokio::sync::Mutex::new(()),
        })
    }
}

impl Workspace {
    /// The artifact store `pipeline` names: the local one, or S3 + KMS through the standard AWS
    /// configuration chain (`AWS_ENDPOINT_URL` honoured), checked before anything runs.
    pub(crate) async fn artifact_store(
        &self,
        pipeline: &Pipeline,
    ) -> anyhow::Result<Arc<AnyArtifactStore>> {
        let crate::pipeline::ArtifactStore::S3 {
            bucket,
            prefix,
            kms_key_id,
        } = &pipeline.artifact_store
        else {
            return Ok(Arc::clone(&self.artifacts));
        };
        let aws = crate::aws::AwsConfig::load(None, None)
            .await
            .context("load the AWS configuration for the S3 artifact store")?;
        let config = S3StoreConfig {
            bucket: bucket.clone(),
            prefix: prefix
                .clone()
                .unwrap_or_else(|| pipeline.name.chars().take(20).collect()),
            encryption: match kms_key_id {
                Some(key_id) => S3Encryption::SseKms {
                    key_id: key_id.clone(),
                },
                None => S3Encryption::ManagedKey,
            },
        };
        let store = S3ArtifactStore::connect(&aws, config)
            .await
            .with_context(|| format!("open the artifact store s3://{bucket}"))?;
        Ok(Arc::new(AnyArtifactStore::S3(store)))
    }
}

/// Loads and plans a pipeline file.
pub(crate) fn load_pipeline(path: &Path) -> anyhow::Result<(Arc<Pipeline>, Arc<Plan>)> {
    let pipeline = match pipeline::load(path) {
        Ok(pipeline) => pipeline,
        Err(error) => bail!("{error}"),
    };
    let plan = Plan::new(&pipeline).with_context(|| format!("plan {}", path.display()))?;
    Ok((Arc::new(pipeline), Arc::new(plan)))
}

/// Runs `runner run`.
pub(crate) async fn run(settings: &Settings, args: &RunArgs) -> anyhow::Result<Outcome> {
    let (pipeline, plan) = load_pipeline(&args.pipeline)?;
    let workspace = Workspace::open(settings).await?;
    prepare_images(settings, &workspace, &pipeline).await?;
    let options = StartOptions {
        revision: args.revision.clone(),
        source_dir: args.source_dir.clone(),
        variables: args.variables.clone(),
        parallelism: args.parallelism,
        timeout: args.timeout,
        trigger: TriggerKind::Manual,
        trigger_detail: std::env::var("USER").unwrap_or_default(),
        stop: None,
        run_id: None,
        locks: None,
    };
    start_execution(settings, &workspace, &pipeline, &plan, &options).await
}

/// How to start one execution.
pub(crate) struct StartOptions {
    /// A commit or branch instead of the pipeline's branch.
    pub(crate) revision: Option<String>,
    /// A directory to snapshot instead of fetching.
    pub(crate) source_dir: Option<std::path::PathBuf>,
    /// `NAME=VALUE` pipeline variable overrides.
    pub(crate) variables: Vec<String>,
    /// Actions at once.
    pub(crate) parallelism: usize,
    /// Execution timeout.
    pub(crate) timeout: Option<std::time::Duration>,
    /// What started it.
    pub(crate) trigger: TriggerKind,
    /// Who or what, for the record.
    pub(crate) trigger_detail: String,
    /// Stops the execution when cancelled (`runner serve`, after its shutdown grace); `None`:
    /// the first Ctrl-C or SIGTERM does.
    pub(crate) stop: Option<CancellationToken>,
    /// The execution's id, when the caller chose it (`runner serve`: its stage locks know it).
    pub(crate) run_id: Option<RunId>,
    /// The pipeline's stage locks (`runner serve`); the caller already holds the source
    /// stage's for `run_id`, released here once the source is fetched.
    pub(crate) locks: Option<Arc<StageLocks>>,
}

impl StartOptions {
    /// A start by `trigger` at `revision` with every default.
    pub(crate) fn triggered(trigger: TriggerKind, revision: String, detail: String) -> Self {
        Self {
            revision: Some(revision),
            source_dir: None,
            variables: Vec::new(),
            parallelism: 4,
            timeout: None,
            trigger,
            trigger_detail: detail,
            stop: None,
            run_id: None,
            locks: None,
        }
    }
}

/// Fetches the source, records a new execution and runs it to its end.
pub(crate) async fn start_execution(
    settings: &Settings,
    workspace: &Workspace,
    pipeline: &Arc<Pipeline>,
    plan: &Arc<Plan>,
    options: &StartOptions,
) -> anyhow::Result<Outcome> {
    let variables = pipeline_variables(pipeline, &options.variables)?;
    let source = SourceOptions {
        revision: options.revision.as_deref(),
        source_dir: options.source_dir.as_deref(),
        mirrors: settings.data_dir.join("mirrors"),
        github_base: &settings.github_base,
    };
    let store = workspace.artifact_store(pipeline).await?;
    let fetched = {
        let _turn = workspace.source_turn.lock().await;
        source_step::fetch(pipeline, store.as_ref(), &source).await?
    };
    let run_id = options.run_id.clone().unwrap_or_else(RunId::generate);
    let execution = ExecutionId::from(run_id.0.as_str());
    workspace
        .store
        .create_execution(NewExecution {
            id: execution.clone(),
            pipeline: pipeline.name.clone(),
            pipeline_digest: pipeline::digest(pipeline),
            trigger: Trigger {
                kind: options.trigger,
                detail: options.trigger_detail.clone(),
            },
            sources: vec![SourceRevision {
                action: pipeline.stages[0].actions[0].name.clone(),
                revision_id: fetched.revision.clone(),
                ref_name: Some(fetched.ref_name.clone()),
                summary: None,
            }],
            started_at: chrono::Utc::now(),
        })
        .await
        .context("record the execution")?;
    save_pipeline_copy(settings, pipeline)?;
    eprintln_status(&format!(
        "execution {run_id} of {} at {}",
        pipeline.name, fetched.revision
    ));
    record_source_stage(&workspace.store, pipeline, &execution, &fetched.outputs).await?;
    if let Some(locks) = &options.locks {
        locks.pass_on(&run_id.0, 0, 1);
    }
    workspace
        .store
        .set_variables(&execution, PIPELINE_VARIABLES, None, variables.clone())
        .await
        .context("record the pipeline variables")?;
    let request = ExecutionRequest {
        run_id,
        pipeline: Arc::clone(pipeline),
        plan: Arc::clone(plan),
        completed: fetched.outputs,
        pipeline_variables: variables,
        revision: Some(fetched.revision).filter(|r| !r.starts_with("dir:")),
        parallelism: options.parallelism,
        timeout: options.timeout,
        builds: build_settings(settings, &workspace.store),
        last_stage: None,
    };
    execute_until(
        settings,
        workspace,
        &store,
        request,
        None,
        options.stop.as_ref(),
        options.locks.as_ref(),
    )
    .await
}

/// Keeps the pipeline file an execution ran with, by digest, so `runner retry` without
/// `--pipeline` can find it again.
fn save_pipeline_copy(settings: &Settings, pipeline: &Pipeline) -> anyhow::Result<()> {
    let dir = settings.data_dir.join("pipelines");
    let path = dir.join(format!("{}.yml", pipeline::digest(pipeline)));
    if path.exists() {
        return Ok(());
    }
    fs_err::create_dir_all(&dir).context("create the pipeline copies directory")?;
    let text = fs_err::read_to_string(&pipeline.origin).context("copy the pipeline file")?;
    let temp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    fs_err::write(&temp, text).context("copy the pipeline file")?;
    fs_err::rename(&temp, &path).context("copy the pipeline file")?;
    Ok(())
}

/// The copy of the pipeline file an execution ran with.
pub(crate) fn pipeline_copy(settings: &Settings, digest: &str) -> std::path::PathBuf {
    settings
        .data_dir
        .join("pipelines")
        .join(format!("{digest}.yml"))
}

/// Runs an execution request to its end with the recorder attached; maps the status.
pub(crate) async fn execute(
    settings: &Settings,
    workspace: &Workspace,
    store: &Arc<AnyArtifactStore>,
    request: ExecutionRequest,
    retry: Option<(usize, RetryMode)>,
) -> anyhow::Result<Outcome> {
    execute_until(settings, workspace, store, request, retry, None, None).await
}

/// [`execute`], stopped by `stop` (through a child token, so `runner cancel` stops only this
/// execution) instead of by Ctrl-C and SIGTERM when it is given, and taking the pipeline's
/// stage `locks` in front of each stage when they are given.
pub(crate) async fn execute_until(
    settings: &Settings,
    workspace: &Workspace,
    store: &Arc<AnyArtifactStore>,
    request: ExecutionRequest,
    retry: Option<(usize, RetryMode)>,
    stop: Option<&CancellationToken>,
    locks: Option<&Arc<StageLocks>>,
) -> anyhow::Result<Outcome> {
    let execution = ExecutionId::from(request.run_id.0.as_str());
    let (events, receiver) = mpsc::unbounded_channel();
    let recorder = Recorder::new(
        workspace.store.clone(),
        Arc::clone(&request.pipeline),
        execution.clone(),
        settings.data_dir.join("logs"),
        retry,
    );
    let recording = tokio::spawn(recorder.record(receiver));
    let cancel = stop.map_or_else(
        || {
            let cancel = CancellationToken::new();
            super::build::watch_interrupts(cancel.clone());
            cancel
        },
        CancellationToken::child_token,
    );
    approvals::watch_cancel_requests(
        settings.data_dir.clone(),
        request.run_id.0.clone(),
        cancel.clone(),
    );
    let approvals = Arc::new(FileApprovals::new(settings.data_dir.clone()));
    let gate: Arc<dyn engine::ApprovalGate> = match locks {
        Some(locks) => Arc::new(LockingGate::new(Arc::clone(&approvals), Arc::clone(locks))),
        None => Arc::clone(&approvals) as Arc<dyn engine::ApprovalGate>,
    };
    let run_id = request.run_id.clone();
    let (pipeline, plan, parallelism) = (
        Arc::clone(&request.pipeline),
        Arc::clone(&request.plan),
        request.parallelism,
    );
    let end = engine::run(
        Arc::clone(&workspace.executor),
        Arc::clone(store),
        gate,
        request,
        events,
        cancel,
    )
    .await;
    approvals.forget();
    recording.await.context("the state recorder stopped")??;
    eprintln_status(&format!("execution {run_id} {}", end.status.as_str()));
    super::status::print_execution(&workspace.store, &execution, false).await?;
    if let Some(stage) = end.rollback {
        let rollback = super::rollback::Rollback {
            pipeline: &pipeline,
            plan: &plan,
            stage,
            parallelism,
        };
        // Boxed: a rollback runs through this function too.
        Box::pin(rollback.automatic(settings, workspace, &execution)).await?;
    }
    Ok(match end.status {
        RunStatus::Succeeded => Outcome::Success,
        RunStatus::Failed | RunStatus::Skipped | RunStatus::Superseded => Outcome::Failure,
        RunStatus::Stopped => Outcome::Interrupted,
    })
}

#[expect(
    clippy::print_stdout,
    reason = "progress of the execution is this command's output"
)]
fn eprintln_status(text: &str) {
    println!("==> {text}");
}

/// Build settings shared by every action, with build numbers from the state database.
pub(crate) fn build_settings(settings: &Settings, store: &Store) -> BuildSettings {
    let counter_store = store.clone();
    let counter: BuildCounter = Arc::new(move |project: String| {
        let store = counter_store.clone();
        Box::pin(async move { store.next_build_number(&project).await.unwrap_or(0) })
    });
    BuildSettings {
        region: settings.region.clone(),
        account: settings.account.clone(),
        ca_bundle: settings.ca_bundle.clone(),
        cache_root: Some(settings.data_dir.join("cache")),
        staging: settings.staging,
        counter,
        aws_credentials: settings.aws_credentials,
    }
}

/// P33: defaults, overridden by `--variable NAME=VALUE`; a variable with neither is an error.
fn pipeline_variables(
    pipeline: &Pipeline,
    given: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for entry in given {
        let Some((name, value)) = entry.split_once('=') else {
            bail!("--variable expects NAME=VALUE, got {entry:?}");
        };
        if !pipeline.variables.iter().any(|v| v.name == name) {
            bail!("--variable {name}: the pipeline declares no such variable");
        }
        if value.is_empty() {
            bail!("--variable {name}: the value may not be empty (P33)");
        }
        values.insert(name.to_owned(), value.to_owned());
    }
    for variable in &pipeline.variables {
        if !values.contains_key(&variable.name) {
            let Some(default) = &variable.default else {
                bail!(
                    "unresolved pipeline variable {}: it has no default; pass --variable {}=VALUE",
                    variable.name,
                    variable.name
                );
            };
            values.insert(variable.name.clone(), default.clone());
        }
    }
    Ok(values)
}

/// Builds or pulls every image the pipeline's build actions use, before anything starts.
pub(crate) async fn prepare_images(
    settings: &Settings,
    workspace: &Workspace,
    pipeline: &Pipeline,
) -> anyhow::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for stage in &pipeline.stages {
        for action in &stage.actions {
            if let ActionKind::Build(build) = &action.kind {
                let image = build
                    .image
                    .clone()
                    .unwrap_or_else(|| "aws/codebuild/standard:7.0".into());
                if seen.insert(image.clone()) {
                    images::ensure(&workspace.executor, &settings.runners_dir, &image)
                        .await
                        .with_context(|| {
                            format!("prepare image {image} for {}.{}", stage.name, action.name)
                        })?;
                }
            }
        }
    }
    Ok(())
}

/// Records the source stage, which runs before the engine, like any other stage.
async fn record_source_stage(
    store: &Store,
    pipeline: &Pipeline,
    execution: &ExecutionId,
    outputs: &BTreeMap<ActionId, ActionOutputs>,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let stage = &pipeline.stages[0];
    let attempt = store
        .start_stage_attempt(execution, &stage.name, None, now)
        .await?;
    for (id, output) in outputs {
        let action = &stage.actions[id.action];
        let run = store
            .start_action_attempt(NewActionRun {
                execution_id: execution.clone(),
                stage: stage.name.clone(),
                stage_attempt: attempt,
                action: action.name.clone(),
                build_id: None,
                build_number: None,
                log_path: None,
                started_at: now,
            })
            .await?;
        for (name, reference) in &output.artifacts {
            store
                .record_artifact(
                    run.id,
                    NewArtifact {
                        name: name.clone(),
                        digest: reference.digest.to_string(),
                        size: reference.size,
                        location: "local".into(),
                        created_at: now,
                    },
                )
                .await?;
        }
        if let Some(namespace) = &action.namespace {
            store
                .set_variables(execution, namespace, Some(run.id), output.variables.clone())
                .await?;
        }
        store
            .finish_action(
                run.id,
                state::ActionOutcome {
                    status: state::ActionStatus::Succeeded,
                    exit_code: None,
                    error: None,
                    phases: Vec::new(),
                    ended_at: now,
                },
            )
            .await?;
    }
    store
        .finish_stage(execution, &stage.name, attempt, StageStatus::Succeeded, now)
        .await?;
    Ok(())
}
