//! `runner retry --stage NAME`: re-run one stage of an execution with the same revision, the
//! stored upstream artifacts and variables, then carry on into later stages (C.8, P36–P38).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use super::Outcome;
use super::args::RetryArgs;
use super::run::{self, PIPELINE_VARIABLES, Workspace};
use super::settings::Settings;
use crate::artifacts::{AnyArtifactStore, ArtifactRef, ArtifactStore as _, Sha256Hex};
use crate::engine::{ActionOutputs, ExecutionRequest, RunId};
use crate::pipeline::{self, ActionId};
use crate::state::{ExecutionId, ExecutionStatus, RetryMode};

/// Runs `runner retry`.
#[expect(
    clippy::print_stdout,
    reason = "progress of the execution is this command's output"
)]
pub(crate) async fn retry(settings: &Settings, args: &RetryArgs) -> anyhow::Result<Outcome> {
    let pipeline_path = match &args.pipeline {
        Some(path) => path.clone(),
        None => stored_pipeline(settings, args).await?,
    };
    let (pipeline, plan) = run::load_pipeline(&pipeline_path)?;
    let Some(stage_index) = pipeline.stages.iter().position(|s| s.name == args.stage) else {
        let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "the pipeline has no stage {}; its stages are {}",
            args.stage,
            names.join(", ")
        );
    };
    if stage_index == 0 {
        bail!("the source stage cannot be retried; start a new execution instead");
    }
    let workspace = Workspace::open(settings).await?;
    let artifacts = workspace.artifact_store(&pipeline).await?;
    let store = &workspace.store;
    let execution = match &args.execution {
        Some(id) => ExecutionId::from(id.as_str()),
        None => store
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
    let detail = store
        .get_execution(&execution)
        .await
        .with_context(|| format!("read execution {}", execution.as_str()))?;
    if detail.execution.pipeline != pipeline.name {
        bail!(
            "execution {} belongs to pipeline {}, not {}",
            execution.as_str(),
            detail.execution.pipeline,
            pipeline.name
        );
    }
    if detail.execution.pipeline_digest != pipeline::digest(&pipeline) {
        bail!(
            "the pipeline structure has changed since execution {} ran; start a new execution (P37)",
            execution.as_str()
        );
    }
    if detail.execution.status == ExecutionStatus::InProgress {
        bail!("execution {} is still in progress", execution.as_str());
    }
    let latest: Vec<_> = detail.latest_actions(&args.stage).cloned().collect();
    if latest.is_empty() {
        bail!(
            "stage {} never ran in execution {}",
            args.stage,
            execution.as_str()
        );
    }
    if latest
        .iter()
        .all(|a| a.status == crate::state::ActionStatus::Succeeded)
        && latest.len() == pipeline.stages[stage_index].actions.len()
    {
        bail!(
            "stage {} succeeded in execution {}; there is nothing to retry (P37)",
            args.stage,
            execution.as_str()
        );
    }
    if !store
        .is_latest_for_stage(&pipeline.name, &args.stage, &execution)
        .await?
    {
        bail!(
            "NotLatestPipelineExecutionException: a newer execution has reached stage {} (P37)",
            args.stage
        );
    }
    let mode = if args.all_actions {
        RetryMode::AllActions
    } else {
        RetryMode::FailedActions
    };

    // Everything before the stage is kept; so are the stage's succeeded actions in FAILED_ACTIONS.
    let variables = store.variables_for(&execution).await?;
    let mut completed = BTreeMap::new();
    for id in pipeline.action_ids() {
        let action = &pipeline.stages[id.stage].actions[id.action];
        let keep = id.stage < stage_index
            || (id.stage == stage_index
                && mode == RetryMode::FailedActions
                && latest.iter().any(|a| {
                    a.action == action.name && a.status == crate::state::ActionStatus::Succeeded
                }));
        if !keep {
            continue;
        }
        completed.insert(
            id,
            stored_outputs(
                &workspace, &artifacts, &execution, id, &pipeline, &variables,
            )
            .await?,
        );
    }
    store
        .set_execution_status(
            &execution,
            ExecutionStatus::InProgress,
            Some(format!("retrying stage {}", args.stage)),
            chrono::Utc::now(),
        )
        .await?;
    let revision = detail
        .sources
        .first()
        .map(|s| s.revision_id.clone())
        .filter(|r| !r.starts_with("dir:"));
    let variables_values = variables
        .get(PIPELINE_VARIABLES)
        .cloned()
        .unwrap_or_else(|| defaults(&pipeline));
    println!(
        "==> retrying stage {} of execution {} ({})",
        args.stage,
        execution.as_str(),
        mode.as_str()
    );
    let request = ExecutionRequest {
        run_id: RunId(execution.as_str().to_owned()),
        pipeline: Arc::clone(&pipeline),
        plan,
        completed,
        pipeline_variables: variables_values,
        revision,
        parallelism: args.parallelism,
        timeout: None,
        builds: run::build_settings(settings, store),
        last_stage: None,
    };
    run::prepare_images(settings, &workspace, &pipeline).await?;
    run::execute(
        settings,
        &workspace,
        &artifacts,
        request,
        Some((stage_index, mode)),
    )
    .await
}

/// Without `--pipeline`: the pipeline file that the newest execution with a failed (or stopped,
/// or abandoned) attempt of the stage ran with, from the copies kept by digest.
async fn stored_pipeline(
    settings: &Settings,
    args: &RetryArgs,
) -> anyhow::Result<std::path::PathBuf> {
    let store = crate::state::Store::open(settings.data_dir.join("state.db"))
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
