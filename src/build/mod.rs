//! Runs one CodeBuild-style build: a buildspec in a container, with CodeBuild's semantics.
//!
//! [`run`] resolves the buildspec's secrets (B12), stages the source and the rendered scripts
//! into a fresh container, streams the log through a [`Transcript`], enforces the timeout and
//! cancellation, then collects artifacts, exported variables and the cache. Secret values live
//! only in the container's environment and the log masker, never in the report or on disk
//! (unless a command copies one into an exported variable or an artifact). It talks to
//! containers only through [`Executor`], and it always removes the container it created,
//! whatever happened.

pub mod cache;
pub(crate) mod collect;
pub mod environment;
pub mod mask;
mod outputs;
mod preflight;
mod secrets;
pub mod staging;
pub mod transcript;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{instrument, warn};

pub use environment::{BuildIdentity, EnvLayers};
pub use secrets::SecretProvider;
pub use transcript::{PhaseRecord, Status};

use crate::buildspec::script::{self, Layout};
use crate::buildspec::{Buildspec, SecretRef};
use crate::executor::{
    ContainerSpec, DockerSocket, Executor, ExecutorError, ImageInfo, LABEL_JOB, LABEL_RUN_ID,
    NetworkMode,
};
use mask::Masker;
use preflight::{RuntimeCheck, aws_secret_values, precheck, runtime_check, source_digits};
pub use staging::Staging;
use staging::StagingError;
use transcript::{Transcript, agent_line};

/// Receives finished, masked log lines as they happen.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Everything one build needs.
#[derive(Clone)]
pub struct BuildRequest {
    /// The checked buildspec.
    pub buildspec: Buildspec,
    /// Ids, counters and source versions.
    pub identity: BuildIdentity,
    /// Image reference.
    pub image: String,
    /// What the image says about itself (its runtimes label).
    pub image_info: ImageInfo,
    /// Host directory copied to `$CODEBUILD_SRC_DIR`.
    pub source_dir: PathBuf,
    /// Secondary sources: identifier and host directory (`$CODEBUILD_SRC_DIR_<id>`).
    pub secondary_sources: Vec<(String, PathBuf)>,
    /// Project and override variables.
    pub layers: EnvLayers,
    /// Values to mask in the log.
    pub secret_values: Vec<String>,
    /// Start-build overrides served from SSM or Secrets Manager (a pipeline action's
    /// `parameter_store` and `secrets_manager`, P43): they outrank every other layer.
    pub override_secrets: BTreeMap<String, SecretRef>,
    /// Where `env.parameter-store` and `env.secrets-manager` values come from.
    pub secret_provider: SecretProvider,
    /// Network mode.
    pub network: NetworkMode,
    /// Docker socket access.
    pub docker_socket: DockerSocket,
    /// Build timeout.
    pub timeout: Duration,
    /// Host CA bundle to install in the container.
    pub ca_bundle: Option<PathBuf>,
    /// Where cache entries live; `None` disables caching.
    pub cache_root: Option<PathBuf>,
    /// How inputs reach the container.
    pub staging: Staging,
    /// Extra container labels (a pipeline execution labels its builds with its id).
    pub labels: BTreeMap<String, String>,
    /// Where artifact ZIPs go; `None` skips writing them.
    pub artifacts_out: Option<PathBuf>,
}

/// One artifact written by the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactOutput {
    /// `None` for the primary artifact, else the secondary identifier.
    pub identifier: Option<String>,
    /// The ZIP file.
    pub zip: PathBuf,
    /// Entry names.
    pub files: Vec<String>,
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// `<project>:<uuid>`.
    pub build_id: String,
    /// The project's build counter.
    pub build_number: u64,
    /// Final status.
    pub status: Status,
    /// Phase table.
    pub phases: Vec<PhaseRecord>,
    /// Artifacts written.
    pub artifacts: Vec<ArtifactOutput>,
    /// `exported-variables` (B13).
    pub exported: BTreeMap<String, String>,
}

/// A failure of the runner itself (not of the build's commands).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The container runtime failed.
    #[error("run the build container")]
    Executor(#[from] ExecutorError),
    /// Staging files failed.
    #[error("stage build files")]
    Staging(#[from] StagingError),
    /// The task reading the build's output panicked or was cancelled.
    #[error("read the build output")]
    LogReader(#[source] tokio::task::JoinError),
}

/// How the container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Exited(i64),
    TimedOut,
    Stopped,
}

/// Runs `request` to completion. Build failures are in the report; `Err` means the runner
/// could not run the build at all.
#[instrument(skip_all, fields(build_id = %request.identity.build_id()))]
pub async fn run<E: Executor>(
    executor: &E,
    request: &BuildRequest,
    sink: &LogSink,
    cancel: &CancellationToken,
) -> Result<BuildReport, BuildError> {
    let digits = source_digits(&request.identity.uuid);
    let secondary_dirs = secondary_dirs(request, &digits);
    let mut layout = Layout::with_digits(&digits);
    if request.staging == Staging::Mount {
        staging::mount_layout(&mut layout, &secondary_dirs);
    }
    let artifacts = outputs::Plan::new(&request.buildspec);
    let rendered = script::render(&request.buildspec, &layout, artifacts.expansions());
    let started = Utc::now();
    let (problem, resolved, masker) = check_and_resolve(request).await;
    let mut transcript = Transcript::new(rendered.commands.clone(), masker);
    let emit = |lines: Vec<String>| {
        for line in &lines {
            sink(line);
        }
    };
    let say = |transcript: &Transcript, text: &str| {
        sink(&transcript.masker().mask(&agent_line(Utc::now(), text)));
    };

    transcript.begin("DOWNLOAD_SOURCE", started);
    say(&transcript, "Phase is DOWNLOAD_SOURCE");
    say(
        &transcript,
        &format!("CODEBUILD_SRC_DIR={}", layout.src_dir),
    );
    say(
        &transcript,
        &format!("YAML location is {}", request.buildspec.origin),
    );
    let env = environment::assemble(
        &request.buildspec,
        &request.identity,
        &request.image,
        &layout.src_dir,
        &secondary_dirs,
        &request.layers,
        request.ca_bundle.is_some(),
    );
    let secrets = match process_environment(&transcript, request, problem, resolved, sink) {
        Ok(secrets) => secrets,
        Err(failure) => {
            emit(transcript.complete_now("DOWNLOAD_SOURCE", Status::Failed, Some(failure)));
            return Ok(finalize(
                request,
                transcript,
                Ending::Exited(0),
                Vec::new(),
                BTreeMap::new(),
                sink,
            ));
        }
    };
    let runtime = runtime_check(&request.buildspec, &request.image_info);
    let cache_entry = cache::restore_entry(request, &env);
    preamble(&transcript, request, &layout, &runtime, sink);

    let secondary_pairs: Vec<(PathBuf, String)> = request
        .secondary_sources
        .iter()
        .zip(&secondary_dirs)
        .map(|((_, host), (_, container))| (host.clone(), container.clone()))
        .collect();
    let prepared = staging::prepare(
        request.staging,
        &layout,
        &rendered.files,
        &request.source_dir,
        &secondary_pairs,
        request
            .ca_bundle
            .as_deref()
            .map(|bundle| (bundle, environment::CA_BUNDLE_PATH)),
    )?;
    let env = environment::with_secrets(env, &secrets.buildspec, &request.layers);
    let env = environment::with_overrides(env, &secrets.overrides);
    let spec = container_spec(request, &layout, env, &rendered, &prepared);
    let container_id = executor.create(&spec).await?;
    tracing::debug!(container_id, "container created");
    let result = run_in_container(
        executor,
        request,
        &container_id,
        &layout,
        &rendered,
        &prepared,
        &secondary_dirs,
        cache_entry,
        runtime,
        transcript,
        &artifacts,
        sink,
        cancel,
    )
    .await;
    if let Err(error) = executor.remove(&container_id).await {
        warn!(container_id, error = %error, "could not remove the build container");
    }
    result
}

/// The container for a build: never privileged, labelled, state on a tmpfs.
fn container_spec(
    request: &BuildRequest,
    layout: &Layout,
    env: Vec<(String, String)>,
    rendered: &script::Rendered,
    prepared: &staging::Prepared,
) -> ContainerSpec {
    ContainerSpec {
        image: request.image.clone(),
        env,
        command: rendered.entrypoint.clone(),
        user: Some("0".into()),
        labels: request
            .labels
            .clone()
            .into_iter()
            .chain([
                (LABEL_RUN_ID.to_owned(), request.identity.build_id()),
                (LABEL_JOB.to_owned(), request.identity.project.clone()),
            ])
            .collect(),
        network: request.network.clone(),
        docker_socket: request.docker_socket,
        tmpfs: vec![layout.tmp_dir.clone()],
        read_only_mounts: prepared.mounts.clone(),
    }
}

/// Each secondary source's identifier and its directory in the container.
fn secondary_dirs(request: &BuildRequest, digits: &str) -> Vec<(String, String)> {
    request
        .secondary_sources
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.clone(), format!("/codebuild/output/src{digits}{i}/src")))
        .collect()
}

/// The precheck's verdict, the buildspec's secrets (B12) when it passed, and a masker for every
/// secret value the build knows.
async fn check_and_resolve(
    request: &BuildRequest,
) -> (
    Option<secrets::Failure>,
    Result<Resolved, secrets::Failure>,
    Masker,
) {
    let problem = precheck(request);
    let resolved = match problem {
        None => resolve_secrets(request).await,
        Some(_) => Ok(Resolved::default()),
    };
    let mut values = request.secret_values.clone();
    values.extend(aws_secret_values(&request.layers));
    if let Ok(secrets) = &resolved {
        let all = secrets.buildspec.iter().chain(&secrets.overrides);
        values.extend(all.map(|(_, value)| value.clone()));
    }
    (problem, resolved, Masker::new(values))
}

/// Secret values by layer.
#[derive(Debug, Default)]
struct Resolved {
    /// The buildspec's `env.parameter-store` and `env.secrets-manager` (B12).
    buildspec: Vec<(String, String)>,
    /// The start-build overrides of the same kinds (P43).
    overrides: Vec<(String, String)>,
}

async fn resolve_secrets(request: &BuildRequest) -> Result<Resolved, secrets::Failure> {
    let provider = request.secret_provider;
    Ok(Resolved {
        buildspec: secrets::resolve(&request.buildspec.env.secrets, provider).await?,
        overrides: secrets::resolve(&request.override_secrets, provider).await?,
    })
}

/// A precheck problem, or the agent's environment lines and then the resolved secrets (B12) or
/// why they could not be resolved; either failure ends `DOWNLOAD_SOURCE`.
fn process_environment(
    transcript: &Transcript,
    request: &BuildRequest,
    problem: Option<secrets::Failure>,
    resolved: Result<Resolved, secrets::Failure>,
    sink: &LogSink,
) -> Result<Resolved, secrets::Failure> {
    if let Some(problem) = problem {
        return Err(problem);
    }
    let say = |text: &str| sink(&transcript.masker().mask(&agent_line(Utc::now(), text)));
    say("Processing environment variables");
    let has_parameters = request
        .buildspec
        .env
        .secrets
        .values()
        .chain(request.override_secrets.values())
        .any(|secret| matches!(secret, SecretRef::ParameterStore(_)));
    if has_parameters {
        say("Decrypting parameter store environment variables");
    }
    resolved
}

/// The agent's lines between processing the environment and starting the container (B23, B24,
/// B35, B47).
fn preamble(
    transcript: &Transcript,
    request: &BuildRequest,
    layout: &Layout,
    runtime: &RuntimeCheck,
    sink: &LogSink,
) {
    let say = |text: &str| sink(&transcript.masker().mask(&agent_line(Utc::now(), text)));
    if let RuntimeCheck::Unsupported = runtime {
        say(
            "Skipping install of runtimes. Runtime version selection is not supported by this build image",
        );
    }
    say(&format!("Moving to directory {}", layout.src_dir));
    if request.buildspec.cache.is_none() {
        say("Unable to initialize cache download: no paths specified to be cached");
    }
    say(&format!(
        "Phases found in YAML: {}",
        request.buildspec.phases.len()
    ));
    for (name, phase) in &request.buildspec.phases {
        say(&format!(
            " {}: {} commands",
            name.log_name(),
            phase.commands.len()
        ));
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are all per-build"
)]
async fn run_in_container<E: Executor>(
    executor: &E,
    request: &BuildRequest,
    container_id: &str,
    layout: &Layout,
    rendered: &script::Rendered,
    prepared: &staging::Prepared,
    secondary_dirs: &[(String, String)],
    cache_entry: Option<PathBuf>,
    runtime: RuntimeCheck,
    mut transcript: Transcript,
    artifacts: &outputs::Plan,
    sink: &LogSink,
    cancel: &CancellationToken,
) -> Result<BuildReport, BuildError> {
    let emit = |lines: Vec<String>| {
        for line in &lines {
            sink(line);
        }
    };
    if let Some(tar) = &prepared.upload {
        executor.upload(container_id, "/", tar.clone()).await?;
    }
    if let Some(entry) = &cache_entry {
        let tar = cache::restore_archive(entry, &layout.src_dir)?;
        executor.upload(container_id, "/", tar.into()).await?;
        sink(&agent_line(Utc::now(), "Cache restored"));
    }
    emit(transcript.complete_now("DOWNLOAD_SOURCE", Status::Succeeded, None));
    if let RuntimeCheck::Missing(message) = runtime {
        let mut out = Vec::new();
        transcript.enter("INSTALL", Utc::now(), &mut out);
        emit(out);
        emit(transcript.complete_now(
            "INSTALL",
            Status::Failed,
            Some(("YAML_FILE_ERROR".into(), message)),
        ));
        return Ok(finalize(
            request,
            transcript,
            Ending::Exited(0),
            Vec::new(),
            BTreeMap::new(),
            sink,
        ));
    }

    let (ending, mut transcript) = watch_container(
        executor,
        container_id,
        transcript,
        request.timeout,
        sink,
        cancel,
    )
    .await?;
    let reason = interruption(ending, &transcript, request.timeout);
    if let Some((status, message)) = reason {
        emit(transcript.abort_open_phase(status, &message, Utc::now()));
        return Ok(finalize(
            request,
            transcript,
            ending,
            Vec::new(),
            BTreeMap::new(),
            sink,
        ));
    }

    let finished =
        if request.buildspec.env.exported_variables.is_empty() && rendered.expansions.is_empty() {
            outputs::Finished::default()
        } else {
            outputs::read_finished(executor, container_id, layout, &request.buildspec).await?
        };
    let written = if transcript.upload() == Some(true) {
        upload_artifacts(
            executor,
            container_id,
            request,
            layout,
            secondary_dirs,
            artifacts,
            &finished.expanded,
            &mut transcript,
            sink,
        )
        .await
    } else {
        Vec::new()
    };
    if let (Some(cache), Some(root)) = (&request.buildspec.cache, &request.cache_root) {
        cache::save_after_build(executor, container_id, request, cache, root, layout).await;
    }
    Ok(finalize(
        request,
        transcript,
        ending,
        written,
        finished.exported,
        sink,
    ))
}

/// `UPLOAD_ARTIFACTS`: collects every artifact, failing the phase with `CLIENT_ERROR` (B37).
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are all per-build"
)]
async fn upload_artifacts<E: Executor>(
    executor: &E,
    container_id: &str,
    request: &BuildRequest,
    layout: &Layout,
    secondary_dirs: &[(String, String)],
    artifacts: &outputs::Plan,
    expanded: &[String],
    transcript: &mut Transcript,
    sink: &LogSink,
) -> Vec<ArtifactOutput> {
    let mut out = Vec::new();
    transcript.enter("UPLOAD_ARTIFACTS", Utc::now(), &mut out);
    for line in &out {
        sink(line);
    }
    let secondary: Vec<String> = secondary_dirs.iter().map(|(_, dir)| dir.clone()).collect();
    let result = artifacts
        .collect(
            executor,
            container_id,
            layout,
            &secondary,
            expanded,
            request.artifacts_out.as_deref(),
            sink,
        )
        .await;
    let (written, status, context) = match result {
        Ok(list) => (list, Status::Succeeded, None),
        Err(message) => (
            Vec::new(),
            Status::Failed,
            Some(("CLIENT_ERROR".to_owned(), message)),
        ),
    };
    for line in transcript.complete_now("UPLOAD_ARTIFACTS", status, context) {
        sink(&line);
    }
    written
}

/// Why the build ended before the driver did, if it did (B34).
fn interruption(
    ending: Ending,
    transcript: &Transcript,
    timeout: Duration,
) -> Option<(Status, String)> {
    match ending {
        Ending::TimedOut => Some((
            Status::TimedOut,
            format!(
                "Build timed out after {}",
                humantime::format_duration(timeout)
            ),
        )),
        Ending::Stopped => Some((Status::Stopped, "Build was stopped".to_owned())),
        Ending::Exited(_) if !transcript.is_done() => Some((
            Status::Failed,
            "The build container exited before the build finished".to_owned(),
        )),
        Ending::Exited(_) => None,
    }
}

/// Starts the container and follows it to its end: exit, timeout or cancel. A timed-out or
/// stopped build is killed at once and runs nothing further (B34). Never drops the container.
async fn watch_container<E: Executor>(
    executor: &E,
    container_id: &str,
    transcript: Transcript,
    timeout: Duration,
    sink: &LogSink,
    cancel: &CancellationToken,
) -> Result<(Ending, Transcript), BuildError> {
    let output = executor.output(container_id);
    executor.start(container_id).await?;
    let pump = tokio::spawn(pump_output(output, transcript, Arc::clone(sink)));
    let ending = tokio::select! {
        code = executor.wait(container_id) => Ending::Exited(code?),
        () = tokio::time::sleep(timeout) => Ending::TimedOut,
        () = cancel.cancelled() => Ending::Stopped,
    };
    if !matches!(ending, Ending::Exited(_)) {
        executor.stop(container_id, Duration::ZERO).await?;
        executor.wait(container_id).await?;
    }
    let transcript = pump.await.map_err(BuildError::LogReader)?;
    Ok((ending, transcript))
}

async fn pump_output(
    mut output: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, ExecutorError>>,
    mut transcript: Transcript,
    sink: LogSink,
) -> Transcript {
    use futures_util::StreamExt;
    while let Some(chunk) = output.next().await {
        match chunk {
            Ok(chunk) => transcript
                .feed(&chunk, Utc::now())
                .iter()
                .for_each(|l| sink(l)),
            Err(error) => {
                warn!(error = %error, "build output stream ended with an error");
                break;
            }
        }
    }
    transcript
        .finish_output(Utc::now())
        .iter()
        .for_each(|l| sink(l));
    transcript
}

fn finalize(
    request: &BuildRequest,
    mut transcript: Transcript,
    ending: Ending,
    artifacts: Vec<ArtifactOutput>,
    exported: BTreeMap<String, String>,
    sink: &LogSink,
) -> BuildReport {
    let mut out = Vec::new();
    transcript.enter("FINALIZING", Utc::now(), &mut out);
    transcript.complete("FINALIZING", Status::Succeeded, None, Utc::now(), &mut out);
    for line in &out {
        sink(line);
    }
    let status = match ending {
        Ending::TimedOut => Status::TimedOut,
        Ending::Stopped => Status::Stopped,
        Ending::Exited(_) if transcript.any_failed() => Status::Failed,
        Ending::Exited(_) => Status::Succeeded,
    };
    BuildReport {
        build_id: request.identity.build_id(),
        build_number: request.identity.number,
        status,
        phases: transcript.phases().to_vec(),
        artifacts,
        exported,
    }
}
