//! Resolved settings: command line over environment over defaults, decided once.

use std::path::PathBuf;

use anyhow::Context as _;

use super::args::GlobalArgs;
use crate::build::Staging;
use crate::env;

/// Settings shared by every command.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// State, counters, cache and artifacts.
    pub(crate) data_dir: PathBuf,
    /// Whether `--data-dir` or `RUNNER_DATA_DIR` chose it (a config file's does not override).
    pub(crate) data_dir_given: bool,
    /// `runners/` image definitions.
    pub(crate) runners_dir: PathBuf,
    /// Pseudo region for builds.
    pub(crate) region: String,
    /// Pseudo account for builds.
    pub(crate) account: String,
    /// How build inputs reach containers.
    pub(crate) staging: Staging,
    /// Base URL for `owner/name` repositories (tests point it at a local server).
    pub(crate) github_base: String,
    /// Whether pipeline builds receive the runner's AWS credentials.
    pub(crate) aws_credentials: crate::engine::AwsCredentials,
    /// Host CA bundle for build containers (`$SSL_CERT_FILE` when set).
    pub(crate) ca_bundle: Option<PathBuf>,
}

impl Settings {
    /// Resolves the settings from the global arguments and the environment.
    pub(crate) fn resolve(global: &GlobalArgs) -> anyhow::Result<Self> {
        let data_dir = match &global.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir().context("find a data directory (set --data-dir)")?,
        };
        Ok(Self {
            data_dir,
            data_dir_given: global.data_dir.is_some(),
            runners_dir: global.runners_dir.clone(),
            region: std::env::var(env::RUNNER_REGION).unwrap_or_else(|_| "us-east-1".into()),
            account: std::env::var(env::RUNNER_ACCOUNT).unwrap_or_else(|_| "000000000000".into()),
            staging: staging()?,
            aws_credentials: match std::env::var(env::RUNNER_BUILD_AWS_CREDENTIALS)
                .ok()
                .as_deref()
            {
                None | Some("" | "none") => crate::engine::AwsCredentials::None,
                Some("runner") => crate::engine::AwsCredentials::FromRunner,
                Some(other) => anyhow::bail!(
                    "{} must be none or runner, not {other}",
                    env::RUNNER_BUILD_AWS_CREDENTIALS
                ),
            },
            github_base: std::env::var(env::RUNNER_GITHUB_BASE)
                .unwrap_or_else(|_| crate::source::DEFAULT_GITHUB_BASE.to_owned()),
            ca_bundle: std::env::var_os(env::RUNNER_CA_BUNDLE)
                .or_else(|| std::env::var_os("SSL_CERT_FILE"))
                .map(PathBuf::from)
                .filter(|path| path.is_file()),
        })
    }
}

/// `RUNNER_STAGING=mount|upload`; by default, mount when the engine is on this host.
fn staging() -> anyhow::Result<Staging> {
    match std::env::var(env::RUNNER_STAGING).ok().as_deref() {
        Some("mount") => Ok(Staging::Mount),
        Some("upload") => Ok(Staging::Upload),
        Some(other) => anyhow::bail!(
            "{} must be mount or upload, not {other}",
            env::RUNNER_STAGING
        ),
        None => {
            let remote = std::env::var("DOCKER_HOST")
                .is_ok_and(|host| !host.is_empty() && !host.starts_with("unix://"));
            Ok(if remote {
                Staging::Upload
            } else {
                Staging::Mount
            })
        }
    }
}

fn default_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("runner"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share/runner"))
}
