//! `runner rollback --stage S [--target EXECUTION]`: a new execution of type ROLLBACK that re-runs
//! stage `S` with the revisions, variables and artifacts of an earlier execution that succeeded
//! in it (P40); and the automatic rollback a stage's `on_failure` or `on_success` asks for (P41,
//! P42).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use super::Outcome;
use super::args::RollbackArgs;
use super::retry::stored_outputs;
use super::run::{self, PIPELINE_VARIABLES, Workspace};
use super::settings::Settings;
use crate::dag::Plan;
use crate::engine::{ExecutionRequest, RunId};
use crate::pipeline::{self, ExecutionMode, Pipeline};
use crate::state::{
    ActionStatus, ExecutionDetail, ExecutionId, NewExecution, Store, Trigger, TriggerKind,
};

/// Runs `runner rollback`.
pub(crate) async fn rollback(settings: &Settings, args: &RollbackArgs) -> anyhow::Result<Outcome> {
    let (pipeline, plan) = run::load_pipeline(&args.pipeline)?;
    let Some(stage) = pipeline.stages.iter().position(|s| s.name == args.stage) else {
        bail!("the pipeline has no stage {}", args.stage);
    };
    let workspace = Workspace::open(settings).await?;
    let rollback = Rollback {
        pipeline: &pipeline,
        plan: &plan,
        stage,
        parallelism: args.parallelism,
    };
    let target = args.target.as_deref().map(ExecutionId::from);
    let detail = std::env::var("USER").unwrap_or_default();
    rollback
        .start(
            settings,
            &workspace,
            target,
            TriggerKind::ManualRollback,
            &detail,
        )
        .await
}

/// A rollback of one stage of a pipeline (P40, P41).
pub(crate) struct Rollback<'a> {
    /// The pipeline.
    pub(crate) pipeline: &'a Arc<Pipeline>,
    /// Its plan.
    pub(crate) plan: &'a Arc<Plan>,
    /// The stage's index.
    pub(crate) stage: usize,
    /// Actions at once.
    pub(crate) parallelism: usize,
}

impl Rollback<'_> {
    /// P41: after `failed` ended with a stage that asks for a rollback, roll that stage back to
    /// the newest execution that succeeded in it. Not for a rollback execution itself, and a
    /// stage that never succeeded is left as it is; both say so.
    #[expect(
        clippy::print_stdout,
        reason = "progress of the execution is this command's output"
    )]
    pub(crate) async fn automatic(
        &self,
        settings: &Settings,
        workspace: &Workspace,
        failed: &ExecutionId,
    ) -> anyhow::Result<Outcome> {
        let name = &self.pipeline.stages[self.stage].name;
        let detail = workspace.store.get_execution(failed).await?;
        if is_rollback(detail.execution.trigger.kind) {
            println!("==> stage {name}: no automatic rollback of a rollback execution (P40)");
            return Ok(Outcome::Failure);
        }
        let actions = self.pipeline.stages[self.stage].actions.len();
        if last_success(&workspace.store, &self.pipeline.name, name, actions)
            .await?
            .is_none()
        {
            println!("==> stage {name} has never succeeded: no rollback (P41)");
            return Ok(Outcome::Failure);
        }
        println!("==> stage {name}: rolling back automatically (P41)");
        let detail = format!("stage {name} of execution {}", failed.as_str());
        self.start(
            settings,
            workspace,
            None,
            TriggerKind::AutomatedRollback,
            &detail,
        )
        .await
    }

    /// Starts a rollback execution to `target` (default: the newest non-rollback execution that
    /// succeeded in the stage) and runs it to its end, refusing what P40 refuses.
    #[expect(
        clippy::print_stdout,
        reason = "progress of the execution is this command's output"
    )]
    pub(crate) async fn start(
        &self,
        settings: &Settings,
        workspace: &Workspace,
        target: Option<ExecutionId>,
        trigger: TriggerKind,
        trigger_detail: &str,
    ) -> anyhow::Result<Outcome> {
        let (pipeline, stage_index) = (self.pipeline, self.stage);
        let stage_name = &pipeline.stages[stage_index].name;
        if stage_index == 0 {
            bail!("a source stage cannot be rolled back (P40)");
        }
        if pipeline.execution_mode == ExecutionMode::Parallel {
            bail!("rollback is not available in PARALLEL execution mode (P22, P40)");
        }
        let store = &workspace.store;
        let target = self.target(store, target).await?;
        let target_id = target.execution.id.clone();
        let artifacts = workspace.artifact_store(pipeline).await?;
        let variables = store.variables_for(&target_id).await?;
        let mut completed = BTreeMap::new();
        for id in pipeline.action_ids().filter(|id| id.stage < stage_index) {
            completed.insert(
                id,
                stored_outputs(workspace, &artifacts, &target_id, id, pipeline, &variables).await?,
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
                    kind: trigger,
                    detail: format!(
                        "{trigger_detail}: stage {stage_name} to execution {}",
                        target_id.as_str()
                    ),
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
        run::prepare_images(settings, workspace, pipeline).await?;
        let revision = target.sources.first().map(|s| s.revision_id.clone());
        println!(
            "==> execution {run_id} of {} at {}: rollback of stage {stage_name} with the artifacts of execution {}",
            pipeline.name,
            revision.as_deref().unwrap_or("?"),
            target_id.as_str()
        );
        let request = ExecutionRequest {
            run_id,
            pipeline: Arc::clone(pipeline),
            plan: Arc::clone(self.plan),
            completed,
            pipeline_variables,
            revision: revision.filter(|r| !r.starts_with("dir:")),
            parallelism: self.parallelism,
            timeout: None,
            builds: run::build_settings(settings, store),
            last_stage: Some(stage_index),
        };
        run::execute(settings, workspace, &artifacts, request, None).await
    }
}

impl Rollback<'_> {
    /// The execution to roll back to, checked against P40.
    async fn target(
        &self,
        store: &Store,
        target: Option<ExecutionId>,
    ) -> anyhow::Result<ExecutionDetail> {
        let pipeline = self.pipeline;
        let stage_name = &pipeline.stages[self.stage].name;
        let actions = pipeline.stages[self.stage].actions.len();
        let target = match target {
            Some(id) => store
                .get_execution(&id)
                .await
                .with_context(|| format!("read execution {}", id.as_str()))?,
            None => last_success(store, &pipeline.name, stage_name, actions)
                .await?
                .with_context(|| {
                    format!(
                        "no execution of {} succeeded in stage {stage_name}; nothing to roll back to (P41)",
                        pipeline.name
                    )
                })?,
        };
        let target_id = target.execution.id.as_str();
        if is_rollback(target.execution.trigger.kind) {
            bail!(
                "execution {target_id} is itself a rollback and cannot be a rollback target (P40)"
            );
        }
        if !succeeded_in(&target, stage_name, actions) {
            bail!("execution {target_id} did not succeed in stage {stage_name} (P40)");
        }
        if target.execution.pipeline_digest != pipeline::digest(pipeline) {
            bail!("execution {target_id} ran under a different pipeline structure (P40)");
        }
        Ok(target)
    }
}

fn is_rollback(kind: TriggerKind) -> bool {
    matches!(
        kind,
        TriggerKind::ManualRollback | TriggerKind::AutomatedRollback
    )
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
        if is_rollback(execution.trigger.kind) {
            continue;
        }
        let detail = store.get_execution(&execution.id).await?;
        if succeeded_in(&detail, stage, actions) {
            return Ok(Some(detail));
        }
    }
    Ok(None)
}
