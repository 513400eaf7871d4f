//! The deploy action types: `lambda-deploy` ([`lambda`]) and `s3-deploy` ([`s3`]).
//!
//! Both fetch their one input artifact from the store, resolve `#{...}` in their settings just
//! before they start (P31), talk to AWS through `crate::aws` with the runner's credentials and
//! endpoint (`AWS_ENDPOINT_URL` for moto), write their progress to the action's log, and put what
//! they did into output variables. They skip work that is already done, so a second run of an
//! unchanged artifact changes nothing.

mod lambda;
mod s3;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Context;
use super::dispatcher::Inputs;
use super::event::{ActionOutcome, ActionOutputs, ActionStatus, RunEvent, RunEventKind};
use super::inputs;
use crate::artifacts::ArtifactStore;
use crate::aws::{AwsConfig, AwsError};
use crate::build::LogSink;
use crate::pipeline::{Action, ActionId, LambdaDeployAction, S3DeployAction};

/// Why a deploy action failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeployError {
    /// Fetching or unpacking the input, or resolving a variable (already worded).
    #[error("{0}")]
    Prepare(String),
    /// A local file of the artifact could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A `zip:` path that is not in the input artifact.
    #[error("find {path} in input artifact {artifact}: no such file")]
    ZipMissing {
        /// The path after resolution.
        path: String,
        /// The input artifact.
        artifact: String,
    },
    /// A resolved path that leaves the artifact.
    #[error("use path `{path}`: it must stay inside the input artifact")]
    PathEscapes {
        /// The path after resolution.
        path: String,
    },
    /// A ZIP above Lambda's direct-upload limit and no `upload_bucket` to carry it.
    #[error(
        "upload the code of Lambda function `{function}`: its ZIP is {size} bytes, above the {limit}-byte direct-upload limit, and the action has no `upload_bucket`"
    )]
    ZipTooLarge {
        /// Function name.
        function: String,
        /// ZIP size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A function to create whose action lacks a setting a create needs.
    #[error(
        "create Lambda function `{function}`: it does not exist and its `{key}` is not set in the pipeline"
    )]
    CreateSettingMissing {
        /// Function name.
        function: String,
        /// The missing key.
        key: &'static str,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Several functions failed; each is listed.
    #[error("{}", failures.join("; "))]
    Several {
        /// Each failure, with its cause chain.
        failures: Vec<String>,
    },
    /// The run was cancelled.
    #[error("stopped")]
    Stopped,
}

/// Runs a `lambda-deploy` action.
pub(super) async fn run_lambda<E, S>(
    context: &Arc<Context<E, S>>,
    id: ActionId,
    deploy: &LambdaDeployAction,
    inputs: &Inputs,
    cancel: &CancellationToken,
) -> ActionOutcome
where
    S: ArtifactStore + 'static,
{
    let Some(job) = Job::new(context, id, inputs) else {
        return ActionOutcome::failed(format!("no action {id} in the pipeline"));
    };
    outcome(lambda::run(&job, deploy, cancel).await)
}

/// Runs an `s3-deploy` action.
pub(super) async fn run_s3<E, S>(
    context: &Arc<Context<E, S>>,
    id: ActionId,
    deploy: &S3DeployAction,
    inputs: &Inputs,
    cancel: &CancellationToken,
) -> ActionOutcome
where
    S: ArtifactStore + 'static,
{
    let Some(job) = Job::new(context, id, inputs) else {
        return ActionOutcome::failed(format!("no action {id} in the pipeline"));
    };
    outcome(s3::run(&job, deploy, cancel).await)
}

/// What a deploy needs from the execution: its action, inputs, store, variables and log.
struct Job<'a, E, S> {
    context: &'a Arc<Context<E, S>>,
    action: &'a Action,
    inputs: &'a Inputs,
    sink: LogSink,
}

impl<'a, E, S: ArtifactStore> Job<'a, E, S> {
    fn new(context: &'a Arc<Context<E, S>>, id: ActionId, inputs: &'a Inputs) -> Option<Self> {
        let action = context.request.pipeline.action(id)?;
        let events = context.events.clone();
        let run_id = context.request.run_id.clone();
        let sink: LogSink = Arc::new(move |line: &str| {
            let _ = events.send(RunEvent {
                at: chrono::Utc::now(),
                run_id: run_id.clone(),
                kind: RunEventKind::ActionLog {
                    action: id,
                    line: line.to_owned(),
                },
            });
        });
        Some(Self {
            context,
            action,
            inputs,
            sink,
        })
    }

    /// The one input artifact's name (validation guarantees exactly one).
    fn input(&self) -> Result<&'a str, DeployError> {
        self.action
            .inputs
            .first()
            .map(String::as_str)
            .ok_or_else(|| DeployError::Prepare("the action has no input artifact".to_owned()))
    }

    /// Fetches and unpacks the input under `work`; returns its directory.
    async fn unpack_input(&self, work: &std::path::Path) -> Result<PathBuf, DeployError> {
        let name = self.input()?.to_owned();
        let mut unpacked = inputs::fetch(
            self.context.store.as_ref(),
            std::slice::from_ref(&name),
            self.inputs,
            work,
        )
        .await
        .map_err(DeployError::Prepare)?;
        unpacked
            .remove(&name)
            .ok_or_else(|| DeployError::Prepare(format!("input artifact {name} was not unpacked")))
    }

    /// Fetches the input's ZIP itself to `path`.
    async fn input_zip(&self, path: &std::path::Path) -> Result<(), DeployError> {
        let name = self.input()?;
        let reference = self.inputs.artifacts.get(name).ok_or_else(|| {
            DeployError::Prepare(format!("input artifact {name} was not produced"))
        })?;
        self.context
            .store
            .get(reference, path)
            .await
            .map_err(|error| DeployError::Prepare(format!("fetch input artifact {name}: {error}")))
    }

    /// `text` with its `#{...}` references resolved.
    fn resolve(&self, text: &str) -> Result<String, DeployError> {
        inputs::resolve(&self.context.request, self.inputs, text).map_err(DeployError::Prepare)
    }

    fn log(&self, line: &str) {
        (self.sink)(line);
    }
}

/// The AWS configuration for an action: the runner's chain, with the action's region if any.
async fn aws_config(region: Option<&str>) -> Result<AwsConfig, DeployError> {
    Ok(AwsConfig::load(region.map(str::to_owned), None).await?)
}

/// A fresh work directory, removed when dropped.
fn work_dir() -> Result<tempfile::TempDir, DeployError> {
    tempfile::Builder::new()
        .prefix("runner-deploy-")
        .tempdir()
        .map_err(|error| DeployError::Prepare(format!("create a work directory: {error}")))
}

/// A path from the pipeline, resolved, that must stay inside the artifact.
fn relative_path(path: &str) -> Result<&str, DeployError> {
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|part| part == "..") {
        return Err(DeployError::PathEscapes {
            path: path.to_owned(),
        });
    }
    Ok(path)
}

fn outcome(result: Result<ActionOutputs, DeployError>) -> ActionOutcome {
    match result {
        Ok(outputs) => ActionOutcome {
            status: ActionStatus::Succeeded,
            outputs,
            phases: Vec::new(),
            build_id: None,
            error: None,
        },
        Err(DeployError::Stopped) => ActionOutcome {
            status: ActionStatus::Stopped,
            ..ActionOutcome::failed("stopped while deploying")
        },
        Err(error) => ActionOutcome::failed(super::event::error_chain(&error)),
    }
}
