//! `runner build`: one buildspec, one container, CodeBuild's local agent on our engine.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use super::args::BuildArgs;
use super::report;
use super::settings::Settings;
use crate::build::{self, BuildIdentity, BuildRequest, EnvLayers, LogSink, Status};
use crate::buildspec;
use crate::executor::{DockerExecutor, DockerSocket, NetworkMode, images};

/// The same atomic counter pipeline builds use (state.db), strictly increasing per project.
async fn next_build_number(settings: &Settings, project: &str) -> anyhow::Result<u64> {
    crate::state::Store::open(settings.data_dir.join("state.db"))
        .await
        .context("open the state database")?
        .next_build_number(project)
        .await
        .context("take the next build number")
}

/// Runs `runner build`.
pub(crate) async fn run(settings: &Settings, args: BuildArgs) -> anyhow::Result<Outcome> {
    let source = fs_err::canonicalize(&args.source).context("open the source directory")?;
    let buildspec_path = resolve_buildspec(&source, args.buildspec.as_deref());
    let loaded = match buildspec::load_file(&buildspec_path) {
        Ok(loaded) => loaded,
        Err(error) => return Ok(report::buildspec_failure(&error)),
    };
    report::warnings(&loaded.buildspec.origin, &loaded.warnings);
    report::warnings(
        &loaded.buildspec.origin,
        &buildspec::lint::lint(&loaded.buildspec),
    );

    let network = NetworkMode::parse(&args.network).with_context(|| {
        format!(
            "--network must be bridge, host or none, not {}",
            args.network
        )
    })?;
    let (layers, secret_values) = env_layers(&args)?;
    let secondary_sources = secondary_sources(&args)?;

    // Resolving the commit runs `git`; do it while Docker is contacted and the image checked.
    let head = tokio::spawn(git_head(source.clone()));
    let executor = DockerExecutor::connect()
        .await
        .context("connect to Docker")?;
    let image_info = images::ensure(&executor, &settings.runners_dir, &args.image)
        .await
        .with_context(|| format!("prepare the build image {}", args.image))?;
    let project = args.project.clone().unwrap_or_else(|| {
        source
            .file_name()
            .map_or_else(|| "build".into(), |n| n.to_string_lossy().into_owned())
    });
    let number = next_build_number(settings, &project).await?;
    let artifacts_out = args.artifacts_out.clone().unwrap_or_else(|| {
        settings
            .data_dir
            .join("builds")
            .join(&project)
            .join(number.to_string())
    });
    let resolved = head.await.ok().flatten();
    let identity = BuildIdentity {
        project: project.clone(),
        uuid: uuid::Uuid::new_v4().to_string(),
        number,
        initiator: std::env::var("USER").unwrap_or_else(|_| "runner".into()),
        source_version: args
            .source_version
            .clone()
            .or_else(|| resolved.clone())
            .unwrap_or_default(),
        resolved_source_version: resolved,
        source_repo_url: String::new(),
        region: settings.region.clone(),
        account: settings.account.clone(),
        start_time: chrono::Utc::now(),
        kms_key_id: None,
    };
    let request = BuildRequest {
        buildspec: loaded.buildspec,
        identity,
        image: args.image.clone(),
        image_info,
        source_dir: source,
        secondary_sources,
        layers,
        secret_values,
        override_secrets: std::collections::BTreeMap::new(),
        secret_provider: build::SecretProvider::Aws,
        network,
        docker_socket: if args.docker_socket {
            DockerSocket::Mounted
        } else {
            DockerSocket::Hidden
        },
        timeout: args.timeout,
        ca_bundle: ca_bundle(&args),
        cache_root: Some(settings.data_dir.join("cache")),
        staging: settings.staging,
        labels: std::collections::BTreeMap::new(),
        artifacts_out: Some(artifacts_out),
    };
    let cancel = CancellationToken::new();
    watch_interrupts(cancel.clone());
    let sink: LogSink = Arc::new(|line: &str| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
    });
    let report = build::run(&executor, &request, &sink, &cancel)
        .await
        .context("run the build")?;
    report::build_summary(&report);
    Ok(match report.status {
        Status::Succeeded => Outcome::Success,
        Status::Stopped => Outcome::Interrupted,
        _ => Outcome::Failure,
    })
}

/// The project (`--env-file`) and override (`--env`, `--secret-env`) layers, and the values to mask.
fn env_layers(args: &BuildArgs) -> anyhow::Result<(EnvLayers, Vec<String>)> {
    let mut layers = EnvLayers::default();
    if let Some(file) = &args.env_file {
        layers.project = read_env_file(file)?;
    }
    layers.overrides = args
        .env
        .iter()
        .map(|e| parse_assignment(e))
        .collect::<anyhow::Result<_>>()?;
    let mut secret_values = Vec::new();
    for entry in &args.secret_env {
        let (name, value) = match entry.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (
                entry.clone(),
                std::env::var(entry).with_context(|| {
                    format!("--secret-env {entry}: not set in this environment")
                })?,
            ),
        };
        secret_values.push(value.clone());
        layers.overrides.push((name, value));
    }
    Ok((layers, secret_values))
}

/// Secondary sources from `--secondary-source ID=DIR`.
fn secondary_sources(args: &BuildArgs) -> anyhow::Result<Vec<(String, PathBuf)>> {
    args.secondary_sources
        .iter()
        .map(|entry| {
            let (id, dir) = parse_assignment(entry)?;
            let dir = fs_err::canonicalize(&dir).context("open a secondary source")?;
            Ok((id, dir))
        })
        .collect::<anyhow::Result<Vec<_>>>()
}

/// B1: the buildspec path is relative to the source directory; a path that exists from the
/// current directory is taken as given.
fn resolve_buildspec(source: &Path, given: Option<&Path>) -> PathBuf {
    match given {
        None => source.join("buildspec.yml"),
        Some(path) if path.is_absolute() || path.exists() => path.to_owned(),
        Some(path) => source.join(path),
    }
}

fn parse_assignment(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => bail!("expected NAME=VALUE, got {text:?}"),
    }
}

fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = fs_err::read_to_string(path).context("read the env file")?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(index, line)| {
            parse_assignment(line.trim())
                .with_context(|| format!("{}:{}", path.display(), index + 1))
        })
        .collect()
}

fn ca_bundle(args: &BuildArgs) -> Option<PathBuf> {
    if args.no_ca_bundle {
        return None;
    }
    args.ca_bundle
        .clone()
        .or_else(|| std::env::var_os("SSL_CERT_FILE").map(PathBuf::from))
        .filter(|path| path.is_file())
}

async fn git_head(source: PathBuf) -> Option<String> {
    let output = tokio::process::Command::new("git")
        .arg("-C")
        .arg(&source)
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    let head = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && head.len() == 40).then_some(head)
}

/// First Ctrl-C (or SIGTERM) stops the build cleanly; a second one exits at once.
pub(crate) fn watch_interrupts(cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
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
        tracing::warn!("interrupted: stopping the build (press Ctrl-C again to exit at once)");
        cancel.cancel();
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}
