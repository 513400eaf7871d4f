//! `runner retry --stage NAME`: re-run one stage of an execution with the same revision, the
//! stored upstream artifacts and variables, then carry on into later stages (C.8, P36–P38).
//!
//! [`prepare`] checks a retry against the rules of P37 and marks the execution `InProgress`;
//! [`run_prepared`] runs it. `runner retry` calls both in turn, and `runner serve` answers an
//! HTTP retry between the two (`cli::launcher`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use super::args::RetryArgs;
use super::run::{self, PIPELINE_VARIABLES, Workspace};
use super::settings::Settings;
use crate::artifacts::{AnyArtifactStore, ArtifactRef, ArtifactStore as _, Sha256Hex};
use crate::daemon::locks::StageLocks;
use crate::dag::Plan;
use crate::engine::{ActionOutputs, ExecutionRequest, RunId};
use crate::pipeline::{self, ActionId, Pipeline};
use crate::state::{ActionRun, ActionStatus, ExecutionId, RetryMode, Store};

/// Why a retry is refused before anything runs (P37); the execution is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RetryRefusal {
    /// The pipeline has no such stage.
    #[error("the pipeline has no stage {stage}; its stages are {stages}")]
    UnknownStage {
        /// The stage asked for.
        stage: String,
        /// The pipeline's stages, comma-separated.
        stages: String,
    },
    /// The first stage holds the source actions.
    #[error("the source stage cannot be retried; start a new execution instead")]
    SourceStage,
    /// The execution ran another pipeline.
    #[error("execution {execution} belongs to pipeline {actual}, not {expected}")]
    OtherPipeline {
        /// The execution.
        execution: String,
        /// The pipeline it ran.
        actual: String,
        /// The pipeline given.
        expected: String,
    },
    /// The pipeline's structure changed since the execution ran.
    #[error(
        "the pipeline structure has changed since execution {execution} ran; start a new execution (P37)"
    )]
    StructureChanged {
        /// The execution.
        execution: String,
    },
    /// The execution has not ended.
    #[error("execution {execution} is still in progress")]
    InProgress {
        /// The execution.
        execution: String,
    },
    /// The stage never started in the execution.
    #[error("stage {stage} never ran in execution {execution}")]
    NeverRan {
        /// The stage.
        stage: String,
        /// The execution.
        execution: String,
    },
    /// Every action of the stage succeeded.
    #[error("stage {stage} succeeded in execution {execution}; there is nothing to retry (P37)")]
    Succeeded {
        /// The stage.
        stage: String,
        /// The execution.
        execution: String,
    },
    /// A newer execution has entered the stage.
    #[error(
        "NotLatestPipelineExecutionException: a newer execution has reached stage {stage} (P37)"
    )]
    NotLatest {
        /// The stage.
        stage: String,
    },
}

/// A retry that passed its checks: the execution is `InProgress` again and everything it
/// keeps from its earlier attempt is loaded.
pub(crate) struct PreparedRetry {
    pipeline: Arc<Pipeline>,
    plan: Arc<Plan>,
    execution: ExecutionId,
    stage_index: usize,
    mode: RetryMode,
    artifacts: Arc<AnyArtifactStore>,
    completed: BTreeMap<ActionId, ActionOutputs>,
    revision: Option<String>,
    variables: BTreeMap<String, String>,
}

impl PreparedRetry {
    /// The execution retried.
    pub(crate) fn execution(&self) -> &ExecutionId {
        &self.execution
    }

    /// The stage retried.
    pub(crate) fn stage(&self) -> &str {
        &self.pipeline.stages[self.stage_index].name
    }

    /// The stage retried, by position.
    pub(crate) fn stage_index(&self) -> usize {
        self.stage_index
    }
}

/// Runs `runner retry`.
pub(crate) async fn retry(settings: &Settings, args: &RetryArgs) -> anyhow::Result<Outcome> {
    let pipeline_path = match &args.pipeline {
        Some(path) => path.clone(),
        None => stored_pipeline(settings, args).await?,
    };
    let (pipeline, plan) = run::load_pipeline(&pipeline_path)?;
    stage_index(&pipeline, &args.stage)?;
    let workspace = Workspace::open(settings).await?;
    let execution = match &args.execution {
        Some(id) => ExecutionId::from(id.as_str()),
        None => workspace
            .store
            .latest_execution_where_stage_failed(&pipeline.name, &args.stage)
            .await?
            .map(|e| e.id)
            .with_context(|| {
                format!(
                    "no execution of {} has a failed or stopped stage {}",
                    pipeline.name, args.stage
                )
            })?,
    };
    let mode = if args.all_actions {
        RetryMode::AllActions
    } else {
        RetryMode::FailedActions
    };
    let prepared = prepare(&workspace, &pipeline, &plan, &execution, &args.stage, mode).await?;
    run_prepared(settings, &workspace, prepared, args.parallelism, None, None).await
}

/// The index of `stage` in `pipeline`, which must not be the source stage.
fn stage_index(pipeline: &Pipeline, stage: &str) -> Result<usize, RetryRefusal> {
    let Some(index) = pipeline.stages.iter().position(|s| s.name == stage) else {
        let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
        return Err(RetryRefusal::UnknownStage {
            stage: stage.to_owned(),
            stages: names.join(", "),
        });
    };
    if index == 0 {
        return Err(RetryRefusal::SourceStage);
    }
    Ok(index)
}

/// Checks a retry of `stage` of `execution` (P37), loads what it keeps from the earlier attempt
/// and marks the execution `InProgress`. A refusal is a [`RetryRefusal`] in the error chain; an
/// unknown execution is the state database's `NotFound`.
pub(crate) async fn prepare(
    workspace: &Workspace,
    pipeline: &Arc<Pipeline>,
    plan: &Arc<Plan>,
    execution: &ExecutionId,
    stage: &str,
    mode: RetryMode,
) -> anyhow::Result<PreparedRetry> {
    let stage_index = stage_index(pipeline, stage)?;
    let artifacts = workspace.artifact_store(pipeline).await?;
    let store = &workspace.store;
    let detail = store
        .get_execution(execution)
        .await
        .with_context(|| format!("read execution {}", execution.as_str()))?;
    let latest: Vec<ActionRun> = detail.latest_actions(stage).cloned().collect();
    check(store, pipeline, &detail, stage_index, &latest).await?;

    // Everything before the stage is kept; so are the stage's succeeded actions in FAILED_ACTIONS.
    let variables = store.variables_for(execution).await?;
    let mut completed = BTreeMap::new();
    for id in pipeline.action_ids() {
        let action = &pipeline.stages[id.stage].actions[id.action];
        let keep = id.stage < stage_index
            || (id.stage == stage_index
                && mode == RetryMode::FailedActions
                && latest
                    .iter()
                    .any(|a| a.action == action.name && a.status == ActionStatus::Succeeded));
        if keep {
            let outputs =
                stored_outputs(workspace, &artifacts, execution, id, pipeline, &variables).await?;
            completed.insert(id, outputs);
        }
    }
    store
        .set_execution_status(
            execution,
            crate::state::ExecutionStatus::InProgress,
            Some(format!("retrying stage {stage}")),
            chrono::Utc::now(),
        )
        .await?;
    Ok(PreparedRetry {
        pipeline: Arc::clone(pipeline),
        plan: Arc::clone(plan),
        execution: execution.clone(),
        stage_index,
        mode,
        artifacts,
        completed,
        revision: detail
            .sources
            .first()
            .map(|s| s.revision_id.clone())
            .filter(|r| !r.starts_with("dir:")),
        variables: variables
            .get(PIPELINE_VARIABLES)
            .cloned()
            .unwrap_or_else(|| defaults(pipeline)),
    })
}

/// The rules of P37 for a retry of the stage at `stage_index`, whose latest action attempts in
/// the execution are `latest`.
async fn check(
    store: &Store,
    pipeline: &Pipeline,
    detail: &crate::state::ExecutionDetail,
    stage_index: usize,
    latest: &[ActionRun],
) -> anyhow::Result<()> {
    let execution = detail.execution.id.as_str().to_owned();
    let stage = &pipeline.stages[stage_index].name;
    if detail.execution.pipeline != pipeline.name {
        bail!(RetryRefusal::OtherPipeline {
            execution,
            actual: detail.execution.pipeline.clone(),
            expected: pipeline.name.clone(),
        });
    }
    if detail.execution.pipeline_digest != pipeline::digest(pipeline) {
        bail!(RetryRefusal::StructureChanged { execution });
    }
    if !detail.execution.status.is_terminal() {
        bail!(RetryRefusal::InProgress { execution });
    }
    if latest.is_empty() {
        bail!(RetryRefusal::NeverRan {
            stage: stage.clone(),
            execution,
        });
    }
    if latest.iter().all(|a| a.status == ActionStatus::Succeeded)
        && latest.len() == pipeline.stages[stage_index].actions.len()
    {
        bail!(RetryRefusal::Succeeded {
            stage: stage.clone(),
            execution,
        });
    }
    if !store
        .is_latest_for_stage(&pipeline.name, stage, &detail.execution.id)
        .await?
    {
        bail!(RetryRefusal::NotLatest {
            stage: stage.clone(),
        });
    }
    Ok(())
}

/// Runs a prepared retry to the end of the execution, with up to `parallelism` actions at once.
#[expect(
    clippy::print_stdout,
    reason = "progress of the execution is this command's output"
)]
/// `stop` ends it (`runner serve`, after its shutdown grace); `None`: Ctrl-C or SIGTERM does.
pub(crate) async fn run_prepared(
    settings: &Settings,
    workspace: &Workspace,
    prepared: PreparedRetry,
    parallelism: usize,
    stop: Option<&CancellationToken>,
    locks: Option<&Arc<StageLocks>>,
) -> anyhow::Result<Outcome> {
    println!(
        "==> retrying stage {} of execution {} ({})",
        prepared.stage(),
        prepared.execution.as_str(),
        prepared.mode.as_str()
    );
    let request = ExecutionRequest {
        run_id: RunId(prepared.execution.as_str().to_owned()),
        pipeline: Arc::clone(&prepared.pipeline),
        plan: prepared.plan,
        completed: prepared.completed,
        pipeline_variables: prepared.variables,
        revision: prepared.revision,
        parallelism,
        timeout: None,
        builds: run::build_settings(settings, &workspace.store),
        last_stage: None,
    };
    run::prepare_images(settings, workspace, &prepared.pipeline).await?;
    run::execute_until(
        settings,
        workspace,
        &prepared.artifacts,
        request,
        Some((prepared.stage_index, prepared.mode)),
        stop,
        locks,
    )
    .await
}

/// Without `--pipeline`: the pipeline file that the newest execution with a failed (or stopped,
/// or abandoned) attempt of the stage ran with, from the copies kept by digest.
async fn stored_pipeline(
    settings: &Settings,
    args: &RetryArgs,
) -> anyhow::Result<std::path::PathBuf> {
    let store = Store::open(settings.data_dir.join("state.db"))
        .await
        .context("open the state database")?;
    let mut pipelines: Vec<String> = Vec::new();
    for execution in store.list_executions(None, 200).await? {
        if !pipelines.contains(&execution.pipeline) {
            pipelines.push(execution.pipeline);
        }
    }
    let mut newest: Option<crate::state::Execution> = None;
    for name in pipelines {
        if let Some(found) = store
            .latest_execution_where_stage_failed(&name, &args.stage)
            .await?
        {
            if newest
                .as_ref()
                .is_none_or(|n| found.started_at > n.started_at)
            {
                newest = Some(found);
            }
        }
    }
    let execution = newest.with_context(|| {
        format!(
            "no execution has a failed or stopped stage {}; pass --pipeline and --execution",
            args.stage
        )
    })?;
    let path = run::pipeline_copy(settings, &execution.pipeline_digest);
    if !path.is_file() {
        bail!(
            "the pipeline file of execution {} was not kept; pass --pipeline",
            execution.id.as_str()
        );
    }
    Ok(path)
}

/// The outputs an earlier attempt stored for `id`: its artifacts (which must still exist) and
/// its namespace's variables.
pub(crate) async fn stored_outputs(
    workspace: &Workspace,
    store: &Arc<AnyArtifactStore>,
    execution: &ExecutionId,
    id: ActionId,
    pipeline: &pipeline::Pipeline,
    variables: &crate::state::Variables,
) -> anyhow::Result<ActionOutputs> {
    let action = &pipeline.stages[id.stage].actions[id.action];
    let mut outputs = ActionOutputs::default();
    for name in &action.outputs {
        let stored = workspace
            .store
            .artifact_for(execution, name)
            .await
            .with_context(|| {
                format!(
                    "artifact {name} of execution {} is gone; it cannot be retried",
                    execution.as_str()
                )
            })?;
        let reference = ArtifactRef {
            digest: Sha256Hex::parse(&stored.digest)
                .context("a stored artifact digest is malformed")?,
            size: stored.size,
        };
        if !store.exists(&reference).await? {
            bail!(
                "artifact {name} ({}) is no longer in the artifact store; the stage cannot be retried",
                stored.digest
            );
        }
        outputs.artifacts.insert(name.clone(), reference);
    }
    if let Some(namespace) = &action.namespace {
        if let Some(values) = variables.get(namespace) {
            outputs.variables.clone_from(values);
        }
    }
    Ok(outputs)
}

/// Pipeline variables when none were stored: the declared defaults.
fn defaults(pipeline: &pipeline::Pipeline) -> BTreeMap<String, String> {
    pipeline
        .variables
        .iter()
        .filter_map(|v| Some((v.name.clone(), v.default.clone()?)))
        .collect()
}
