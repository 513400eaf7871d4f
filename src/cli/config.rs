//! `runner.toml`: what `runner serve --config` reads. Every key is optional; flags override it,
//! and it overrides the defaults. Relative paths are relative to the file's directory.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data_dir = "/var/lib/runner"          # unless --data-dir or RUNNER_DATA_DIR says otherwise
//! parallelism = 4
//! queue_capacity = 32
//! shutdown_grace = "10m"
//! warm_pool = 1                         # idle build containers kept per shape (default 0)
//! webhook_secret_file = "/etc/runner/webhook-secret"
//! api_token_file = "/etc/runner/api-token"
//!
//! [[pipeline]]
//! file = "pipelines/futureim.yml"
//! watch = true                          # also poll the repository, as `runner watch` does
//! interval = "30s"
//! branch = "master"                     # default: the pipeline's source.branch
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use super::args::ServeArgs;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    parallelism: Option<usize>,
    queue_capacity: Option<usize>,
    shutdown_grace: Option<String>,
    warm_pool: Option<usize>,
    webhook_secret_file: Option<PathBuf>,
    api_token_file: Option<PathBuf>,
    #[serde(default, rename = "pipeline")]
    pipelines: Vec<PipelineEntry>,
}

/// One `[[pipeline]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineEntry {
    file: PathBuf,
    #[serde(default)]
    watch: bool,
    interval: Option<String>,
    branch: Option<String>,
}

/// Everything `runner serve` runs with, decided once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServeOptions {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// The config file's `data_dir`, if it has one.
    pub(crate) data_dir: Option<PathBuf>,
    /// Actions at once per execution.
    pub(crate) parallelism: usize,
    /// Start requests per pipeline queue.
    pub(crate) queue_capacity: usize,
    /// How long running executions may go on at shutdown.
    pub(crate) shutdown_grace: Duration,
    /// Idle build containers kept started per container shape (0: none).
    pub(crate) warm_pool: usize,
    /// The webhook secret's file.
    pub(crate) webhook_secret_file: Option<PathBuf>,
    /// The API token's file.
    pub(crate) api_token_file: Option<PathBuf>,
    /// The pipelines served, config file first, then `--pipeline` flags.
    pub(crate) pipelines: Vec<Served>,
}

/// A pipeline served, and whether its repository is polled too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Served {
    /// The pipeline file.
    pub(crate) file: PathBuf,
    /// Polling, when asked for.
    pub(crate) watch: Option<Watch>,
}

/// How a served pipeline's repository is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watch {
    /// Time between polls.
    pub(crate) interval: Duration,
    /// The branch; `None` is the pipeline's.
    pub(crate) branch: Option<String>,
}

impl ServeOptions {
    /// Flags over the config file (if any) over defaults.
    pub(crate) fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let (file, base) = match &args.config {
            Some(path) => (read(path)?, path.parent().unwrap_or(Path::new("."))),
            None => (ConfigFile::default(), Path::new(".")),
        };
        let origin = args
            .config
            .as_deref()
            .map_or_else(String::new, |p| p.display().to_string());
        let duration = |key: &str, text: &str| {
            humantime::parse_duration(text)
                .with_context(|| format!("{origin}: `{key}`: `{text}` is not a duration"))
        };
        let mut pipelines = Vec::new();
        for (index, entry) in file.pipelines.into_iter().enumerate() {
            if entry.interval.is_some() && !entry.watch {
                bail!("{origin}: pipeline[{index}]: `interval` needs `watch = true`");
            }
            let watch = if entry.watch {
                let interval = match &entry.interval {
                    Some(text) => duration(&format!("pipeline[{index}].interval"), text)?,
                    None => Duration::from_secs(30),
                };
                Some(Watch {
                    interval,
                    branch: entry.branch,
                })
            } else {
                None
            };
            pipelines.push(Served {
                file: base.join(entry.file),
                watch,
            });
        }
        pipelines.extend(args.pipelines.iter().map(|file| Served {
            file: file.clone(),
            watch: None,
        }));
        if pipelines.is_empty() {
            bail!("nothing to serve: give --pipeline or a [[pipeline]] in --config");
        }
        let shutdown_grace = match (&args.shutdown_grace, &file.shutdown_grace) {
            (Some(grace), _) => *grace,
            (None, Some(text)) => duration("shutdown_grace", text)?,
            (None, None) => Duration::from_secs(600),
        };
        let relative = |path: Option<PathBuf>| path.map(|path| base.join(path));
        Ok(Self {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: relative(file.data_dir),
            parallelism: args.parallelism.or(file.parallelism).unwrap_or(4).max(1),
            queue_capacity: args.queue_capacity.or(file.queue_capacity).unwrap_or(32),
            shutdown_grace,
            warm_pool: args.warm_pool.or(file.warm_pool).unwrap_or(0),
            webhook_secret_file: args
                .webhook_secret_file
                .clone()
                .or_else(|| relative(file.webhook_secret_file)),
            api_token_file: args
                .api_token_file
                .clone()
                .or_else(|| relative(file.api_token_file)),
            pipelines,
        })
    }
}

fn read(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = fs_err::read_to_string(path).context("read the config file")?;
    toml::from_str(&text).map_err(|error| {
        let at = error
            .span()
            .map(|span| {
                let line = text[..span.start].matches('\n').count() + 1;
                format!(":{line}")
            })
            .unwrap_or_default();
        anyhow::anyhow!("{}{at}: {}", path.display(), error.message())
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn options(config: &str, flags: &[&str]) -> anyhow::Result<ServeOptions> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("runner.toml");
        fs_err::write(&path, config).expect("write config");
        let mut command_line = vec!["runner", "serve", "--config", path.to_str().expect("utf-8")];
        command_line.extend_from_slice(flags);
        let cli = crate::cli::args::Cli::try_parse_from(command_line).expect("arguments parse");
        let crate::cli::args::Command::Serve(args) = cli.command else {
            panic!("serve");
        };
        let resolved = ServeOptions::resolve(&args);
        resolved.map(|mut options| {
            // Paths are relative to the temporary directory; compare them relative to it.
            for served in &mut options.pipelines {
                if let Ok(rest) = served.file.strip_prefix(dir.path()) {
                    served.file = rest.to_owned();
                }
            }
            options
        })
    }

    #[test]
    fn the_file_sets_what_flags_leave_out_and_flags_win() {
        let config = "listen = \"0.0.0.0:9000\"\nparallelism = 2\nshutdown_grace = \"1m\"\n\n[[pipeline]]\nfile = \"pipelines/a.yml\"\nwatch = true\ninterval = \"5s\"\n\n[[pipeline]]\nfile = \"pipelines/b.yml\"\n";
        let resolved =
            options(config, &["--parallelism", "8", "--pipeline", "c.yml"]).expect("valid");
        assert_eq!(resolved.listen, "0.0.0.0:9000".parse().expect("address"));
        assert_eq!(resolved.parallelism, 8, "the flag wins");
        assert_eq!(resolved.queue_capacity, 32, "the default");
        assert_eq!(resolved.shutdown_grace, Duration::from_secs(60));
        assert_eq!(
            resolved.pipelines,
            [
                Served {
                    file: "pipelines/a.yml".into(),
                    watch: Some(Watch {
                        interval: Duration::from_secs(5),
                        branch: None
                    })
                },
                Served {
                    file: "pipelines/b.yml".into(),
                    watch: None
                },
                Served {
                    file: "c.yml".into(),
                    watch: None
                },
            ]
        );
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let error = options(
            "listen = \"x\"\n\n[[pipeline]]\nfile = \"a.yml\"\nwatched = true\n",
            &[],
        )
        .expect_err("invalid");
        let text = format!("{error:#}");
        assert!(text.contains("runner.toml:1: "), "{text}");
        let error =
            options("[[pipeline]]\nfile = \"a.yml\"\nwatched = true\n", &[]).expect_err("invalid");
        let text = format!("{error:#}");
        assert!(
            text.contains("runner.toml:3: unknown field `watched`"),
            "{text}"
        );
        let error = options("[[pipeline]]\nfile = \"a.yml\"\ninterval = \"5s\"\n", &[])
            .expect_err("invalid");
        assert!(
            format!("{error:#}").ends_with("pipeline[0]: `interval` needs `watch = true`"),
            "{error:#}"
        );
        let error = options("", &[]).expect_err("nothing to serve");
        assert!(format!("{error:#}").contains("nothing to serve"));
    }
}
