//! `runner rollback --stage S [--target EXECUTION]`: a new execution of type ROLLBACK that re-runs
//! stage `S` with the revisions, variables and artifacts of an earlier execution that succeeded
//! in it (P40).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use super::Outcome;
use super::args::RollbackArgs;
use super::retry::stored_outputs;
use super::run::{self, PIPELINE_VARIABLES, Workspace};
use super::settings::Settings;
use crate::engine::{ExecutionRequest, RunId};
use crate::pipeline::{self, ExecutionMode};
use crate::state::{
    ActionStatus, ExecutionDetail, ExecutionId, NewExecution, Store, Trigger, TriggerKind,
};

/// Runs `runner rollback`.
#[expect(
    clippy::print_stdout,
    reason = "progress of the execution is this command's output"
)]
pub(crate) async fn rollback(settings: &Settings, args: &RollbackArgs) -> anyhow::Result<Outcome> {
    let (pipeline, plan) = run::load_pipeline(&args.pipeline)?;
    let Some(stage_index) = pipeline.stages.iter().position(|s| s.name == args.stage) else {
        bail!("the pipeline has no stage {}", args.stage);
    };
    if stage_index == 0 {
        bail!("a source stage cannot be rolled back (P40)");
    }
    if pipeline.execution_mode == ExecutionMode::Parallel {
        bail!("rollback is not available in PARALLEL execution mode (P22, P40)");
    }
    let workspace = Workspace::open(settings).await?;
    let store = &workspace.store;
    let target = match &args.target {
        Some(id) => store
            .get_execution(&ExecutionId::from(id.as_str()))
            .await
            .with_context(|| format!("read execution {id}"))?,
        None => last_success(
            store,
            &pipeline.name,
            &args.stage,
            pipeline.stages[stage_index].actions.len(),
        )
        .await?
        .with_context(|| {
            format!(
                "no execution of {} succeeded in stage {}; nothing to roll back to (P41)",
                pipeline.name, args.stage
            )
        })?,
    };
    let target_id = target.execution.id.clone();
    if matches!(
        target.execution.trigger.kind,
        TriggerKind::ManualRollback | TriggerKind::AutomatedRollback
    ) {
        bail!(
            "execution {} is itself a rollback and cannot be a rollback target (P40)",
            target_id.as_str()
        );
    }
    if !succeeded_in(
        &target,
        &args.stage,
        pipeline.stages[stage_index].actions.len(),
    ) {
        bail!(
            "execution {} did not succeed in stage {} (P40)",
            target_id.as_str(),
            args.stage
        );
    }
    if target.execution.pipeline_digest != pipeline::digest(&pipeline) {
        bail!(
            "execution {} ran under a different pipeline structure (P40)",
            target_id.as_str()
        );
    }
    let artifacts = workspace.artifact_store(&pipeline).await?;
    let variables = store.variables_for(&target_id).await?;
    let mut completed = BTreeMap::new();
    for id in pipeline.action_ids().filter(|id| id.stage < stage_index) {
        completed.insert(
            id,
            stored_outputs(
                &workspace, &artifacts, &target_id, id, &pipeline, &variables,
            )
            .await?,
        );
    }
    let run_id = RunId::generate();
    let execution = ExecutionId::from(run_id.0.as_str());
    store
        .create_execution(NewExecution {
            id: execution.clone(),
            pipeline: pipeline.name.clone(),
            pipeline_digest: target.execution.pipeline_digest.clone(),
            trigger: Trigger {
                kind: TriggerKind::ManualRollback,
                detail: format!("stage {} to execution {}", args.stage, target_id.as_str()),
            },
            sources: target.sources.clone(),
            started_at: chrono::Utc::now(),
        })
        .await
        .context("record the rollback execution")?;
    let pipeline_variables = variables
        .get(PIPELINE_VARIABLES)
        .cloned()
        .unwrap_or_default();
    store
        .set_variables(
            &execution,
            PIPELINE_VARIABLES,
            None,
            pipeline_variables.clone(),
        )
        .await?;
    run::prepare_images(settings, &workspace, &pipeline).await?;
    let revision = target.sources.first().map(|s| s.revision_id.clone());
    println!(
        "==> execution {run_id} of {} at {}: rollback of stage {} with the artifacts of execution {}",
        pipeline.name,
        revision.as_deref().unwrap_or("?"),
        args.stage,
        target_id.as_str()
    );
    let request = ExecutionRequest {
        run_id,
        pipeline: Arc::clone(&pipeline),
        plan,
        completed,
        pipeline_variables,
        revision: target
            .sources
            .first()
            .map(|s| s.revision_id.clone())
            .filter(|r| !r.starts_with("dir:")),
        parallelism: args.parallelism,
        timeout: None,
        builds: run::build_settings(settings, store),
        last_stage: Some(stage_index),
    };
    run::execute(settings, &workspace, &artifacts, request, None).await
}

/// Whether every action of `stage` succeeded in its latest attempt.
fn succeeded_in(detail: &ExecutionDetail, stage: &str, actions: usize) -> bool {
    let latest: Vec<_> = detail.latest_actions(stage).collect();
    latest.len() == actions && latest.iter().all(|a| a.status == ActionStatus::Succeeded)
}

/// The newest non-rollback execution of `pipeline` that succeeded in `stage`.
async fn last_success(
    store: &Store,
    pipeline: &str,
    stage: &str,
    actions: usize,
) -> anyhow::Result<Option<ExecutionDetail>> {
    for execution in store.list_executions(Some(pipeline), 200).await? {
        if matches!(
            execution.trigger.kind,
            TriggerKind::ManualRollback | TriggerKind::AutomatedRollback
        ) {
            continue;
        }
        let detail = store.get_execution(&execution.id).await?;
        if succeeded_in(&detail, stage, actions) {
            return Ok(Some(detail));
        }
    }
    Ok(None)
}
