//! Command-line arguments (clap derive). Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::env;

/// A self-hosted GitOps pipeline runner: CodePipeline V2 + CodeBuild on your own build box.
#[derive(Debug, Parser)]
#[command(name = "runner", version, about)]
pub struct Cli {
    /// Options for every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options for every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More logging (-v debug, -vv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Directory for state, counters, cache and artifacts [default: `$XDG_DATA_HOME/runner`].
    #[arg(long, global = true, env = env::RUNNER_DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// Directory with the runner image definitions (`runners/NAME/`).
    #[arg(long, global = true, env = env::RUNNER_RUNNERS_DIR, default_value = "runners")]
    pub runners_dir: PathBuf,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one buildspec in a container, like CodeBuild's local agent.
    Build(Box<BuildArgs>),
    /// Check a buildspec or pipeline file without running it: errors and lint warnings.
    Validate(ValidateArgs),
    /// Manage runner images.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Run a pipeline once: fetch the source, then every stage.
    Run(RunArgs),
    /// Re-run one stage of an execution with the same revision and upstream artifacts.
    Retry(RetryArgs),
    /// Show an execution (the newest by default).
    Status(StatusArgs),
    /// List executions, newest first.
    List(ListArgs),
    /// Print an execution's build logs.
    Logs(LogsArgs),
    /// Approve (or reject) a manual approval action.
    Approve(ApproveArgs),
    /// Stop a running execution: running builds are stopped, nothing new starts.
    Cancel(CancelArgs),
    /// Print a pipeline's plan as a tree, DOT or Mermaid.
    Graph(GraphArgs),
    /// Follow a repository and run its pipeline on every new head of the branch.
    Watch(WatchArgs),
    /// Re-run one stage with the artifacts of an earlier execution that succeeded in it (P40).
    Rollback(RollbackArgs),
    /// Disable or enable the transition into a stage (P18).
    #[command(subcommand)]
    Transition(TransitionCommand),
    /// Serve pipelines: GitHub webhooks start them; an HTTP API shows and starts executions.
    Serve(ServeArgs),
}

/// `runner serve`. Flags override the `--config` file, which overrides the defaults.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A `runner.toml` with the settings below and the pipelines to serve (and watch).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the address is printed) [default:
    /// 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Pipeline file to serve; repeat for more (added to the config file's).
    #[arg(long = "pipeline", short, required_unless_present = "config")]
    pub pipelines: Vec<PathBuf>,
    /// File holding the webhook secret [default: `$RUNNER_WEBHOOK_SECRET`; without either,
    /// every webhook delivery is refused].
    #[arg(long)]
    pub webhook_secret_file: Option<PathBuf>,
    /// File holding the API token [default: `$RUNNER_API_TOKEN`; without either, the mutating
    /// API endpoints are refused].
    #[arg(long)]
    pub api_token_file: Option<PathBuf>,
    /// How many actions of one execution may run at once [default: 4].
    #[arg(long)]
    pub parallelism: Option<usize>,
    /// Start requests a pipeline's queue holds before new ones are refused with 503 [default:
    /// 32].
    #[arg(long)]
    pub queue_capacity: Option<usize>,
    /// On shutdown, how long running executions may go on before they are stopped, e.g. 5m
    /// [default: 10m].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub shutdown_grace: Option<std::time::Duration>,
    /// Build containers kept created and started, idle, per container shape (image, network),
    /// so a push's first build skips Docker's create and start [default: 0].
    #[arg(long)]
    pub warm_pool: Option<usize>,
}

/// `runner transition ...`.
#[derive(Debug, Subcommand)]
pub enum TransitionCommand {
    /// Executions wait in front of the stage until the transition is enabled again.
    Disable(TransitionArgs),
    /// Let waiting executions into the stage.
    Enable(TransitionArgs),
}

/// `runner transition disable|enable`.
#[derive(Debug, Args)]
pub struct TransitionArgs {
    /// Pipeline name.
    #[arg(long)]
    pub pipeline: String,
    /// The stage the transition leads into.
    #[arg(long)]
    pub stage: String,
    /// Why (recorded with a disable).
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// `runner rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Pipeline file.
    #[arg(long, short)]
    pub pipeline: PathBuf,
    /// The stage to roll back.
    #[arg(long)]
    pub stage: String,
    /// Execution to roll back to [default: the latest that succeeded in the stage].
    #[arg(long)]
    pub target: Option<String>,
    /// How many actions may run at once.
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
}

/// `runner watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Repository: `owner/name` (GitHub), a git URL or a local path.
    #[arg(long)]
    pub repo: String,
    /// Branch to follow [default: the pipeline's `source.branch`].
    #[arg(long)]
    pub branch: Option<String>,
    /// Pipeline file [default: the one in pipelines/ whose source is the repository].
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// Time between polls, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
}

/// `runner run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pipeline file.
    #[arg(long, short)]
    pub pipeline: PathBuf,
    /// Commit or branch to build instead of the pipeline's branch.
    #[arg(long)]
    pub revision: Option<String>,
    /// Build this directory instead of fetching the repository.
    #[arg(long)]
    pub source_dir: Option<PathBuf>,
    /// Pipeline variable override NAME=VALUE (P33).
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
    /// How many actions may run at once.
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
    /// Stop the execution after this long, e.g. 2h.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// `runner retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Pipeline file [default: the one the latest execution where the stage failed ran with].
    #[arg(long, short)]
    pub pipeline: Option<PathBuf>,
    /// The stage to retry.
    #[arg(long)]
    pub stage: String,
    /// Execution id [default: the latest one where that stage failed or stopped].
    #[arg(long)]
    pub execution: Option<String>,
    /// Re-run every action of the stage (`ALL_ACTIONS`), not only the failed ones.
    #[arg(long)]
    pub all_actions: bool,
    /// How many actions may run at once.
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
}

/// `runner status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Execution id [default: the newest].
    pub execution: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `runner list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this pipeline's executions.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

/// `runner logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Execution id.
    pub execution: String,
    /// Only this action (`stage.action` or `action`).
    #[arg(long)]
    pub action: Option<String>,
    /// Keep printing new lines until the execution ends.
    #[arg(long, short)]
    pub follow: bool,
}

/// `runner approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Execution id.
    pub execution: String,
    /// `stage/action` of the approval action.
    pub target: String,
    /// Reject instead, with this reason.
    #[arg(long)]
    pub reject: Option<String>,
}

/// `runner cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Execution id.
    pub execution: String,
}

/// `runner graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Pipeline file.
    pub pipeline: PathBuf,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "dot", "mermaid"])]
    pub format: String,
}

/// `runner build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Buildspec file [default: buildspec.yml in the source directory] (B1).
    #[arg(long)]
    pub buildspec: Option<PathBuf>,
    /// Source directory, copied to `$CODEBUILD_SRC_DIR`.
    #[arg(long, default_value = ".")]
    pub source: PathBuf,
    /// Secondary source as ID=DIR, available at `$CODEBUILD_SRC_DIR_<ID>`.
    #[arg(long = "secondary-source", value_name = "ID=DIR")]
    pub secondary_sources: Vec<String>,
    /// Build image; missing images are built from runners/ or pulled.
    #[arg(long, env = env::RUNNER_IMAGE, default_value = "aws/codebuild/standard:7.0")]
    pub image: String,
    /// Environment override NAME=VALUE (highest precedence, B48).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// File of NAME=VALUE lines, applied as project variables.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// Secret variable NAME=VALUE, or NAME to take the value from this environment; masked in logs.
    #[arg(long = "secret-env", value_name = "NAME[=VALUE]")]
    pub secret_env: Vec<String>,
    /// Where to write artifact ZIPs [default: <data-dir>/builds/<project>/<number>].
    #[arg(long)]
    pub artifacts_out: Option<PathBuf>,
    /// Build timeout, e.g. 60m, 90s (CodeBuild's default is 60 minutes).
    #[arg(long, default_value = "60m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Container network: bridge, host or none.
    #[arg(long, default_value = "bridge")]
    pub network: String,
    /// Host CA bundle to trust inside the build [default: `$SSL_CERT_FILE` when set].
    #[arg(long, env = env::RUNNER_CA_BUNDLE)]
    pub ca_bundle: Option<PathBuf>,
    /// Do not install any CA bundle into the build.
    #[arg(long, conflicts_with = "ca_bundle")]
    pub no_ca_bundle: bool,
    /// Project name (build ids, counters, cache) [default: the source directory's name].
    #[arg(long)]
    pub project: Option<String>,
    /// Source version to report as `CODEBUILD_SOURCE_VERSION`.
    #[arg(long)]
    pub source_version: Option<String>,
    /// Mount the Docker socket into the build (off unless asked).
    #[arg(long)]
    pub docker_socket: bool,
}

/// `runner validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Buildspec or pipeline file to check (a file with `stages:` is a pipeline).
    pub file: PathBuf,
}

/// `runner images ...`.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build the image defined in runners/NAME/ (debootstrap base or Dockerfile).
    Build(ImagesBuildArgs),
}

/// `runner images build`.
#[derive(Debug, Args)]
pub struct ImagesBuildArgs {
    /// Directory name under runners/.
    pub name: String,
    /// Tag to give the image [default: TAG from rootfs.conf, or runner/NAME].
    #[arg(long)]
    pub tag: Option<String>,
    /// Build even when the image already exists.
    #[arg(long)]
    pub force: bool,
}
