//! One action's job: fetch its inputs, run it, store its outputs.
//!
//! A build action unpacks its input artifacts (the primary one becomes `$CODEBUILD_SRC_DIR`,
//! the others `$CODEBUILD_SRC_DIR_<name>`, P16), resolves `#{...}` variables in its
//! configuration just before it starts (P31), runs the buildspec through [`build::run`], and
//! puts each output ZIP into the artifact store. An approval action waits on the gate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info_span};

use super::dispatcher::Inputs;
use super::event::{ActionOutcome, ActionOutputs, ActionStatus, RunEvent, RunEventKind};
use super::inputs;
use super::{Approval, Context};
use crate::artifacts::ArtifactStore;
use crate::build::{self, BuildIdentity, BuildRequest, EnvLayers, LogSink, Status};
use crate::buildspec;
use crate::buildspec::SecretRef;
use crate::executor::{DockerSocket, Executor, ImageInfo, NetworkMode};
use crate::pipeline::{ActionId, ActionKind, BuildAction, BuildspecRef, Network, SecretSource};

/// Runs action `id` and reports how it ended; never panics on bad input.
pub(super) async fn run<E, S>(
    context: &Arc<Context<E, S>>,
    id: ActionId,
    inputs: Inputs,
    cancel: &CancellationToken,
) -> ActionOutcome
where
    E: Executor + 'static,
    S: ArtifactStore + 'static,
{
    let pipeline = &context.request.pipeline;
    let Some(action) = pipeline.action(id) else {
        return ActionOutcome::failed(format!("no action {id} in the pipeline"));
    };
    let span = info_span!("action", action = %pipeline.qualified_name(id));
    async move {
        match &action.kind {
            ActionKind::Build(build) => run_build(context, id, build, &inputs, cancel).await,
            ActionKind::LambdaDeploy(deploy) => {
                super::deploy::run_lambda(context, id, deploy, &inputs, cancel).await
            }
            ActionKind::S3Deploy(deploy) => {
                super::deploy::run_s3(context, id, deploy, &inputs, cancel).await
            }
            ActionKind::Approval(approval) => {
                let stage = &pipeline.stages[id.stage].name;
                let wait = context.approvals.wait(&context.request.run_id, stage, &action.name, approval.timeout);
                tokio::select! {
                    decision = wait => match decision {
                        Approval::Approved => ActionOutcome {
                            status: ActionStatus::Succeeded,
                            outputs: ActionOutputs::default(),
                            phases: Vec::new(),
                            build_id: None,
                            error: None,
                        },
                        Approval::Rejected(reason) => ActionOutcome::failed(format!("rejected: {reason}")),
                    },
                    () = cancel.cancelled() => ActionOutcome {
                        status: ActionStatus::Stopped,
                        ..ActionOutcome::failed("stopped while waiting for approval")
                    },
                }
            }
            ActionKind::Source(_) => ActionOutcome::failed(
                "source actions run before the engine starts; this one was not provided",
            ),
        }
    }
    .instrument(span)
    .await
}

/// The failure of one step of a build action, already worded for the user.
type StepResult<T> = Result<T, String>;

async fn run_build<E, S>(
    context: &Arc<Context<E, S>>,
    id: ActionId,
    build: &BuildAction,
    inputs: &Inputs,
    cancel: &CancellationToken,
) -> ActionOutcome
where
    E: Executor + 'static,
    S: ArtifactStore + 'static,
{
    let work = match tempfile::Builder::new().prefix("runner-action-").tempdir() {
        Ok(work) => work,
        Err(error) => return ActionOutcome::failed(format!("create a work directory: {error}")),
    };
    match prepare_and_build(context, id, build, inputs, work.path(), cancel).await {
        Ok(outcome) => outcome,
        Err(message) => ActionOutcome::failed(message),
    }
}

/// The action's buildspec: a file in the primary input (its path may hold `#{...}`), or inline.
fn load_buildspec(
    build: &BuildAction,
    primary: &Path,
    resolve: &dyn Fn(&str) -> StepResult<String>,
) -> StepResult<buildspec::Loaded> {
    match &build.buildspec {
        BuildspecRef::Path(path) => {
            let path = resolve(path)?;
            // Messages name the file as the repository does, not its unpacked copy.
            let text = fs_err::read_to_string(primary.join(&path)).map_err(|error| {
                if error.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "YAML_FILE_ERROR: buildspec {path} does not exist in input artifact {}",
                        build.primary_source
                    )
                } else {
                    format!("YAML_FILE_ERROR: read buildspec {path}: {error}")
                }
            })?;
            buildspec::load(&path, &text)
        }
        BuildspecRef::Inline(text) => buildspec::load("<inline buildspec>", text),
    }
    .map_err(|error| format!("YAML_FILE_ERROR: {error}"))
}

/// Start-build overrides: plain values, and references served from SSM or Secrets Manager.
type ActionEnv = (Vec<(String, String)>, BTreeMap<String, SecretRef>);

/// The action's `env` (P31-resolved start-build overrides) and its `parameter_store` and
/// `secrets_manager` references (P43), resolved the same way.
fn action_env(
    build: &BuildAction,
    resolve: &dyn Fn(&str) -> StepResult<String>,
) -> StepResult<ActionEnv> {
    let mut overrides = Vec::new();
    for (name, value) in &build.env {
        overrides.push((name.clone(), resolve(value)?));
    }
    let mut secrets = BTreeMap::new();
    for (name, source) in &build.secret_env {
        let secret = match source {
            SecretSource::ParameterStore(text) => SecretRef::ParameterStore(resolve(text)?),
            SecretSource::SecretsManager(text) => SecretRef::SecretsManager(resolve(text)?),
        };
        secrets.insert(name.clone(), secret);
    }
    Ok((overrides, secrets))
}

/// The action's image (CodeBuild's standard image by default) and what it declares.
async fn image_of<E: Executor>(
    executor: &E,
    build: &BuildAction,
) -> StepResult<(String, ImageInfo)> {
    let image = build
        .image
        .clone()
        .unwrap_or_else(|| "aws/codebuild/standard:7.0".into());
    let info = executor
        .inspect_image(&image)
        .await
        .map_err(|error| format!("inspect image {image}: {error}"))?
        .unwrap_or_else(ImageInfo::default);
    Ok((image, info))
}

/// Sends each log line of action `id` as an event.
fn log_sink<E, S>(context: &Arc<Context<E, S>>, id: ActionId) -> LogSink {
    let events = context.events.clone();
    let run_id = context.request.run_id.clone();
    Arc::new(move |line: &str| {
        let _ = events.send(RunEvent {
            at: chrono::Utc::now(),
            run_id: run_id.clone(),
            kind: RunEventKind::ActionLog {
                action: id,
                line: line.to_owned(),
            },
        });
    })
}

async fn prepare_and_build<E, S>(
    context: &Arc<Context<E, S>>,
    id: ActionId,
    build: &BuildAction,
    inputs: &Inputs,
    work: &Path,
    cancel: &CancellationToken,
) -> StepResult<ActionOutcome>
where
    E: Executor + 'static,
    S: ArtifactStore + 'static,
{
    let request = &context.request;
    let pipeline = &request.pipeline;
    let action = pipeline.action(id).ok_or("unknown action")?;
    let mut sources = inputs::fetch(context.store.as_ref(), &action.inputs, inputs, work).await?;
    let primary = sources
        .remove(&build.primary_source)
        .ok_or_else(|| format!("primary source {} is missing", build.primary_source))?;
    let resolve = |text: &str| inputs::resolve(&context.request, inputs, text);
    let loaded = load_buildspec(build, &primary, &resolve)?;
    let (project_env, secret_values) = aws_environment(request.builds.aws_credentials).await?;
    let (overrides, override_secrets) = action_env(build, &resolve)?;
    let (image, image_info) = image_of(context.executor.as_ref(), build).await?;
    let project = format!(
        "{}-{}-{}",
        pipeline.name, pipeline.stages[id.stage].name, action.name
    );
    let number = (request.builds.counter)(project.clone()).await;
    let out_dir = work.join("out");
    let build_request = BuildRequest {
        buildspec: loaded.buildspec,
        identity: BuildIdentity {
            project,
            uuid: uuid::Uuid::new_v4().to_string(),
            number,
            initiator: format!("codepipeline/{}", pipeline.name),
            source_version: inputs
                .artifacts
                .get(&build.primary_source)
                .map_or_else(String::new, |r| format!("runner-artifact:{}", r.digest)),
            resolved_source_version: request.revision.clone(),
            source_repo_url: String::new(),
            region: request.builds.region.clone(),
            account: request.builds.account.clone(),
            start_time: chrono::Utc::now(),
            kms_key_id: None,
        },
        image,
        image_info,
        source_dir: primary,
        secondary_sources: sources.into_iter().collect(),
        layers: EnvLayers {
            project: project_env,
            overrides,
        },
        secret_values,
        override_secrets,
        secret_provider: build::SecretProvider::Aws,
        network: match build.network {
            Network::Bridge => NetworkMode::Bridge,
            Network::Host => NetworkMode::Host,
            Network::None => NetworkMode::None,
        },
        docker_socket: DockerSocket::Hidden,
        timeout: build.timeout,
        ca_bundle: request.builds.ca_bundle.clone(),
        cache_root: request.builds.cache_root.clone(),
        staging: request.builds.staging,
        artifacts_out: Some(out_dir),
        labels: BTreeMap::from([(
            crate::executor::LABEL_EXECUTION.to_owned(),
            request.run_id.0.clone(),
        )]),
    };
    let sink = log_sink(context, id);
    let report = build::run(context.executor.as_ref(), &build_request, &sink, cancel)
        .await
        .map_err(|error| super::event::error_chain(&error))?;
    let status = match report.status {
        Status::Succeeded => ActionStatus::Succeeded,
        Status::Stopped => ActionStatus::Stopped,
        _ => ActionStatus::Failed,
    };
    let mut outcome = ActionOutcome {
        status,
        outputs: ActionOutputs::default(),
        phases: report.phases.clone(),
        build_id: Some(report.build_id.clone()),
        error: (status != ActionStatus::Succeeded)
            .then(|| format!("build {} ended {}", report.build_id, report.status.as_str())),
    };
    if status == ActionStatus::Succeeded {
        outcome.outputs.variables = report.exported.clone();
        for (name, zip) in output_zips(&action.outputs, &report)? {
            let reference = context
                .store
                .put(&zip)
                .await
                .map_err(|error| format!("store output artifact {name}: {error}"))?;
            outcome.outputs.artifacts.insert(name, reference);
        }
    }
    Ok(outcome)
}

/// P16: one output comes from the buildspec's top-level `artifacts`; with several, each must be
/// a `secondary-artifacts` entry named like the output.
fn output_zips(
    outputs: &[String],
    report: &build::BuildReport,
) -> StepResult<Vec<(String, PathBuf)>> {
    let find = |identifier: Option<&str>| {
        report
            .artifacts
            .iter()
            .find(|a| a.identifier.as_deref() == identifier)
            .map(|a| a.zip.clone())
    };
    match outputs {
        [] => Ok(Vec::new()),
        [only] => find(None)
            .or_else(|| find(Some(only)))
            .map(|zip| vec![(only.clone(), zip)])
            .ok_or_else(|| format!("output artifact {only}: the buildspec declares no artifacts")),
        many => many
            .iter()
            .map(|name| {
                find(Some(name))
                    .map(|zip| (name.clone(), zip))
                    .ok_or_else(|| {
                        format!("output artifact {name}: no secondary-artifacts entry named {name}")
                    })
            })
            .collect(),
    }
}

/// The AWS variables a build gets (at the project level, so the action's own `env` still wins)
/// and the values to mask; none unless the runner is configured to hand them over.
async fn aws_environment(
    setting: super::AwsCredentials,
) -> StepResult<(Vec<(String, String)>, Vec<String>)> {
    if setting == super::AwsCredentials::None {
        return Ok((Vec::new(), Vec::new()));
    }
    let aws = crate::aws::AwsConfig::load(None, None)
        .await
        .map_err(|error| super::event::error_chain(&error))?;
    aws.build_environment()
        .await
        .map_err(|error| super::event::error_chain(&error))
}
