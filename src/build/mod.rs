//! Runs one CodeBuild-style build: a buildspec in a container, with CodeBuild's semantics.
//!
//! [`run`] stages the source and the rendered scripts into a fresh container, streams the log
//! through a [`Transcript`], enforces the timeout and cancellation, then collects artifacts,
//! exported variables and the cache. It talks to containers only through [`Executor`], and it
//! always removes the container it created, whatever happened.

pub mod cache;
pub(crate) mod collect;
pub mod environment;
pub mod mask;
mod outputs;
pub mod staging;
pub mod transcript;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};

pub use environment::{BuildIdentity, EnvLayers};
pub use transcript::{PhaseRecord, Status};

use crate::buildspec::script::{self, Layout};
use crate::buildspec::{Buildspec, PhaseName};
use crate::executor::{
    ContainerSpec, DockerSocket, Executor, ExecutorError, ImageInfo, LABEL_JOB, LABEL_RUN_ID,
    LABEL_RUNTIMES, NetworkMode,
};
use mask::Masker;
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
    let secondary_dirs: Vec<(String, String)> = request
        .secondary_sources
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.clone(), format!("/codebuild/output/src{digits}{i}/src")))
        .collect();
    let mut layout = Layout::with_digits(&digits);
    if request.staging == Staging::Mount {
        staging::mount_layout(&mut layout, &secondary_dirs);
    }
    let artifacts = outputs::Plan::new(&request.buildspec);
    let rendered = script::render(&request.buildspec, &layout, artifacts.expansions());
    let mut masker_values = request.secret_values.clone();
    masker_values.extend(aws_secret_values(&request.layers));
    let mut transcript = Transcript::new(rendered.commands.clone(), Masker::new(masker_values));
    let emit = |lines: Vec<String>| lines.iter().for_each(|line| sink(line));
    let say = |transcript: &Transcript, text: &str| {
        sink(&transcript.masker().mask(&agent_line(Utc::now(), text)))
    };

    transcript.begin("DOWNLOAD_SOURCE", Utc::now());
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
    if let Some(problem) = precheck(request) {
        let mut out = Vec::new();
        transcript.complete(
            "DOWNLOAD_SOURCE",
            Status::Failed,
            Some(problem),
            Utc::now(),
            &mut out,
        );
        emit(out);
        return Ok(finalize(
            request,
            transcript,
            Ending::Exited(0),
            Vec::new(),
            BTreeMap::new(),
            sink,
        ));
    }
    say(&transcript, "Processing environment variables");
    let runtime = runtime_check(&request.buildspec, &request.image_info);
    if let RuntimeCheck::Unsupported = runtime {
        say(
            &transcript,
            "Skipping install of runtimes. Runtime version selection is not supported by this build image",
        );
    }
    say(
        &transcript,
        &format!("Moving to directory {}", layout.src_dir),
    );
    let cache_entry = cache_restore_entry(request, &env);
    if request.buildspec.cache.is_none() {
        say(
            &transcript,
            "Unable to initialize cache download: no paths specified to be cached",
        );
    }
    let declared = request.buildspec.phases.len();
    say(&transcript, &format!("Phases found in YAML: {declared}"));
    for (name, phase) in &request.buildspec.phases {
        say(
            &transcript,
            &format!(" {}: {} commands", name.log_name(), phase.commands.len()),
        );
    }

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
    let spec = ContainerSpec {
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
    };
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
    let emit = |lines: Vec<String>| lines.iter().for_each(|line| sink(line));
    if let Some(tar) = &prepared.upload {
        executor.upload(container_id, "/", tar.clone()).await?;
    }
    if let Some(entry) = &cache_entry {
        let tar = cache::restore_archive(entry, &layout.src_dir)?;
        executor.upload(container_id, "/", tar.into()).await?;
        sink(&agent_line(Utc::now(), "Cache restored"));
    }
    let mut out = Vec::new();
    transcript.complete(
        "DOWNLOAD_SOURCE",
        Status::Succeeded,
        None,
        Utc::now(),
        &mut out,
    );
    emit(out);
    if let RuntimeCheck::Missing(message) = runtime {
        let mut out = Vec::new();
        transcript.enter("INSTALL", Utc::now(), &mut out);
        transcript.complete(
            "INSTALL",
            Status::Failed,
            Some(("YAML_FILE_ERROR".into(), message)),
            Utc::now(),
            &mut out,
        );
        emit(out);
        return Ok(finalize(
            request,
            transcript,
            Ending::Exited(0),
            Vec::new(),
            BTreeMap::new(),
            sink,
        ));
    }

    let output = executor.output(container_id);
    executor.start(container_id).await?;
    let pump_sink = Arc::clone(sink);
    let pump = tokio::spawn(pump_output(output, transcript, pump_sink));
    let ending = tokio::select! {
        code = executor.wait(container_id) => Ending::Exited(code?),
        () = tokio::time::sleep(request.timeout) => Ending::TimedOut,
        () = cancel.cancelled() => Ending::Stopped,
    };
    if ending != Ending::Exited(0) && !matches!(ending, Ending::Exited(_)) {
        // Kill now: a timed-out or stopped build runs nothing further (B34).
        executor.stop(container_id, Duration::ZERO).await?;
        executor.wait(container_id).await?;
    }
    let mut transcript = match pump.await {
        Ok(transcript) => transcript,
        Err(join) => {
            warn!(error = %join, "log reader failed");
            return Err(BuildError::Executor(ExecutorError::ImageBuild {
                image: request.image.clone(),
                message: "the log reader stopped unexpectedly".into(),
            }));
        }
    };
    let reason = match ending {
        Ending::TimedOut => Some((
            Status::TimedOut,
            format!(
                "Build timed out after {}",
                humantime::format_duration(request.timeout)
            ),
        )),
        Ending::Stopped => Some((Status::Stopped, "Build was stopped".to_owned())),
        Ending::Exited(_) if !transcript.is_done() => Some((
            Status::Failed,
            "The build container exited before the build finished".to_owned(),
        )),
        Ending::Exited(_) => None,
    };
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
    let mut written = Vec::new();
    if transcript.upload() == Some(true) {
        let mut out = Vec::new();
        transcript.enter("UPLOAD_ARTIFACTS", Utc::now(), &mut out);
        emit(out);
        let secondary: Vec<String> = secondary_dirs.iter().map(|(_, dir)| dir.clone()).collect();
        let result = artifacts
            .collect(
                executor,
                container_id,
                layout,
                &secondary,
                &finished.expanded,
                request.artifacts_out.as_deref(),
                sink,
            )
            .await;
        let mut out = Vec::new();
        match result {
            Ok(list) => {
                written = list;
                transcript.complete(
                    "UPLOAD_ARTIFACTS",
                    Status::Succeeded,
                    None,
                    Utc::now(),
                    &mut out,
                );
            }
            Err(message) => {
                transcript.complete(
                    "UPLOAD_ARTIFACTS",
                    Status::Failed,
                    Some(("CLIENT_ERROR".into(), message)),
                    Utc::now(),
                    &mut out,
                );
            }
        }
        emit(out);
    }
    if let (Some(cache), Some(root)) = (&request.buildspec.cache, &request.cache_root) {
        save_cache(executor, container_id, request, cache, root, layout).await;
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

async fn save_cache<E: Executor>(
    executor: &E,
    container_id: &str,
    request: &BuildRequest,
    cache: &crate::buildspec::Cache,
    root: &std::path::Path,
    layout: &Layout,
) {
    if cache.action == crate::buildspec::CacheAction::Restore {
        return;
    }
    let env = environment::assemble(
        &request.buildspec,
        &request.identity,
        &request.image,
        &layout.src_dir,
        &[],
        &request.layers,
        false,
    );
    let key = cache.key.as_deref().map_or_else(
        || cache::DEFAULT_KEY.to_owned(),
        |k| environment::expand(k, &env),
    );
    let entry = cache::entry_path(root, &request.identity.project, &key);
    let directories: Vec<String> = cache
        .paths
        .iter()
        .filter_map(|p| cache::pattern_dir(p, &layout.src_dir))
        .collect();
    match cache::save(
        executor,
        container_id,
        &entry,
        &directories,
        &layout.src_dir,
        cache.key.is_some(),
    )
    .await
    {
        Ok(true) => info!(key, "cache saved"),
        Ok(false) => info!(key, "cache entry exists and is kept"),
        Err(error) => warn!(key, error = %error, "could not save the cache"),
    }
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
    out.iter().for_each(|line| sink(line));
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

/// Problems that stop a build before any container exists.
fn precheck(request: &BuildRequest) -> Option<(String, String)> {
    if let Err(environment::ReservedName(name)) = environment::check_reserved(&request.layers) {
        return Some((
            "CLIENT_ERROR".into(),
            format!("No user environment variables can start with CODEBUILD_: {name}"),
        ));
    }
    if let Some(name) = request.buildspec.env.secrets.keys().next() {
        return Some((
            "CLIENT_ERROR".into(),
            format!(
                "env.parameter-store / env.secrets-manager variable {name} needs an AWS secret provider, which this runner does not have yet"
            ),
        ));
    }
    None
}

/// Values of AWS credential variables, masked like CodeBuild masks them.
fn aws_secret_values(layers: &EnvLayers) -> Vec<String> {
    layers
        .project
        .iter()
        .chain(&layers.overrides)
        .filter(|(name, _)| matches!(name.as_str(), "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN"))
        .map(|(_, value)| value.clone())
        .collect()
}

/// Digits for `/codebuild/output/src<digits>/src`, derived from the build uuid.
fn source_digits(uuid: &str) -> String {
    let digits: String = uuid
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|b| char::from(b'0' + (b % 10)))
        .take(9)
        .collect();
    if digits.is_empty() {
        "0".into()
    } else {
        digits
    }
}

/// The outcome of checking `runtime-versions` against the image (B24).
#[derive(Debug, Clone, PartialEq, Eq)]
enum RuntimeCheck {
    /// Nothing asked, or everything asked is present.
    Fine,
    /// The image has no runtimes label: warn and carry on.
    Unsupported,
    /// A runtime or version the image lacks.
    Missing(String),
}

fn runtime_check(buildspec: &Buildspec, image: &ImageInfo) -> RuntimeCheck {
    let Some(requested) = buildspec
        .phases
        .get(&PhaseName::Install)
        .map(|p| &p.runtime_versions)
        .filter(|r| !r.is_empty())
    else {
        return RuntimeCheck::Fine;
    };
    let Some(label) = image.labels.get(LABEL_RUNTIMES) else {
        return RuntimeCheck::Unsupported;
    };
    let available: BTreeMap<&str, &str> = label
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .collect();
    for (name, version) in requested {
        let Some(have) = available.get(name.as_str()) else {
            return RuntimeCheck::Missing(format!(
                "Unknown runtime named '{name}'. This build image has the following runtimes: {label}"
            ));
        };
        let wanted = version.trim_matches('"');
        let matches = wanted == "latest"
            || wanted.starts_with('$')
            || wanted
                .trim_end_matches(".x")
                .trim_end_matches('x')
                .is_empty()
            || have.starts_with(wanted.trim_end_matches(".x").trim_end_matches('x'));
        if !matches {
            return RuntimeCheck::Missing(format!(
                "Unknown runtime version named '{wanted}' of {name}. This build image has the following versions: {have}"
            ));
        }
    }
    RuntimeCheck::Fine
}

fn cache_restore_entry(request: &BuildRequest, env: &[(String, String)]) -> Option<PathBuf> {
    let cache = request.buildspec.cache.as_ref()?;
    let root = request.cache_root.as_ref()?;
    if cache.action == crate::buildspec::CacheAction::Save {
        return None;
    }
    let mut keys: Vec<String> = cache
        .key
        .iter()
        .map(|k| environment::expand(k, env))
        .collect();
    keys.extend(
        cache
            .fallback_keys
            .iter()
            .map(|k| environment::expand(k, env)),
    );
    if keys.is_empty() {
        keys.push(cache::DEFAULT_KEY.to_owned());
    }
    cache::lookup(root, &request.identity.project, &keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b24_runtime_versions_checked_against_label() {
        let mut buildspec = Buildspec::default();
        let mut install = crate::buildspec::Phase::default();
        install
            .runtime_versions
            .insert("python".into(), "3.11".into());
        buildspec.phases.insert(PhaseName::Install, install);
        let mut image = ImageInfo::default();
        assert_eq!(runtime_check(&buildspec, &image), RuntimeCheck::Unsupported);
        image
            .labels
            .insert(LABEL_RUNTIMES.into(), "python=3.11 java=17".into());
        assert_eq!(runtime_check(&buildspec, &image), RuntimeCheck::Fine);
        image
            .labels
            .insert(LABEL_RUNTIMES.into(), "python=3.12".into());
        assert!(matches!(
            runtime_check(&buildspec, &image),
            RuntimeCheck::Missing(_)
        ));
    }

    #[test]
    fn source_digits_are_digits() {
        let digits = source_digits("3f2a9c1e-0000");
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(digits.len(), 9);
    }
}
