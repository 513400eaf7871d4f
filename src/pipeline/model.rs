//! The validated pipeline: what the rest of the program sees after `pipeline::load`.
//!
//! Every value has been checked against Section C of the spec, defaults are applied, and
//! references between actions (`depends_on`, artifact producers, variable namespaces) are
//! resolved to [`ActionId`]s.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::yaml::Location;

use super::conditions::{Condition, OnFailure};
use super::deploy::{LambdaDeployAction, S3DeployAction};
use super::glob::Glob;

/// The position of an action: its stage's index and its index within the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionId {
    /// Index into [`Pipeline::stages`].
    pub stage: usize,
    /// Index into [`Stage::actions`].
    pub action: usize,
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.stage, self.action)
    }
}

/// A checked pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Where it was loaded from, for messages (a path, or `<inline>`).
    pub origin: String,
    /// The pipeline's name.
    pub name: String,
    /// The repository and its triggers.
    pub source: SourceConfig,
    /// How concurrent executions interact (P20–P22).
    pub execution_mode: ExecutionMode,
    /// Where artifacts go.
    pub artifact_store: ArtifactStore,
    /// Pipeline-level variables (P33), in declaration order.
    pub variables: Vec<Variable>,
    /// The stages, in order (at least two).
    pub stages: Vec<Stage>,
}

impl Pipeline {
    /// The action at `id`, if it exists.
    pub fn action(&self, id: ActionId) -> Option<&Action> {
        self.stages.get(id.stage)?.actions.get(id.action)
    }

    /// Every action id, stage by stage.
    pub fn action_ids(&self) -> impl Iterator<Item = ActionId> + '_ {
        self.stages.iter().enumerate().flat_map(|(stage, s)| {
            (0..s.actions.len()).map(move |action| ActionId { stage, action })
        })
    }

    /// `stage.action`, the name `depends_on` and messages use; `?` parts for an unknown id.
    pub fn qualified_name(&self, id: ActionId) -> String {
        let stage = self.stages.get(id.stage);
        let action = stage.and_then(|stage| stage.actions.get(id.action));
        format!(
            "{}.{}",
            stage.map_or("?", |stage| stage.name.as_str()),
            action.map_or("?", |action| action.name.as_str())
        )
    }
}

/// `source:`: the repository every execution builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// Where the repository is.
    pub repo: RepoRef,
    /// The branch a manual start builds, and the one pushes start when there are no triggers (P30).
    pub branch: String,
    /// Trigger filters; `None` starts an execution on every push to `branch` (P30), and an
    /// empty `triggers: {}` starts none automatically.
    pub triggers: Option<Triggers>,
}

/// How `source.repo` names the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoRef {
    /// `owner/name` on GitHub.
    GitHub {
        /// The user or organisation.
        owner: String,
        /// The repository.
        name: String,
    },
    /// Any git URL (`https://`, `ssh://`, `file://`, `git@host:path`).
    Url(String),
    /// A local path (absolute, or starting with `./`, `../` or `~/`).
    Path(PathBuf),
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepoRef::GitHub { owner, name } => write!(f, "{owner}/{name}"),
            RepoRef::Url(url) => f.write_str(url),
            RepoRef::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `source.triggers` (P24–P28).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Triggers {
    /// Push filters, OR-ed (P28).
    pub push: Vec<PushFilter>,
    /// Pull-request filters, OR-ed (P28).
    pub pull_request: Vec<PullRequestFilter>,
}

/// One push filter: the three combinations P25 allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushFilter {
    /// `tags`.
    Tags(Patterns),
    /// `branches`, optionally AND-ed with `file_paths`.
    Branches {
        /// Branch patterns.
        branches: Patterns,
        /// File path patterns, if any.
        file_paths: Option<Patterns>,
    },
}

/// One pull-request filter (P25).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestFilter {
    /// Patterns for the PR's destination branch.
    pub branches: Patterns,
    /// File path patterns, if any.
    pub file_paths: Option<Patterns>,
    /// The events that fire; all three when the file names none.
    pub events: Vec<PullRequestEvent>,
}

/// A pull-request event (P25, P29).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestEvent {
    /// Opened.
    Open,
    /// New commits pushed.
    Updated,
    /// Closed, merged or not (P29 decision).
    Closed,
}

impl PullRequestEvent {
    /// Every event with its name in the file.
    pub const ALL: [(&str, PullRequestEvent); 3] = [
        ("open", PullRequestEvent::Open),
        ("updated", PullRequestEvent::Updated),
        ("closed", PullRequestEvent::Closed),
    ];
}

/// `{includes, excludes}` (P25–P27).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Patterns {
    /// Patterns of which one must match; empty means everything (P27 decision).
    pub includes: Vec<Glob>,
    /// Patterns of which none may match; they beat includes (P27).
    pub excludes: Vec<Glob>,
}

impl Patterns {
    /// Whether `text` passes: not excluded, and included (P27).
    pub fn is_match(&self, text: &str) -> bool {
        !self.excludes.iter().any(|glob| glob.is_match(text))
            && (self.includes.is_empty() || self.includes.iter().any(|glob| glob.is_match(text)))
    }
}

/// How concurrent executions interact (P20–P22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionMode {
    /// One execution per stage; a newer one waiting in front of a stage replaces the older (P20).
    #[default]
    Superseded,
    /// Executions go through in arrival order (P21).
    Queued,
    /// Executions run independently (P22).
    Parallel,
}

impl ExecutionMode {
    /// Every mode with its name in the file.
    pub const ALL: [(&str, ExecutionMode); 3] = [
        ("superseded", ExecutionMode::Superseded),
        ("queued", ExecutionMode::Queued),
        ("parallel", ExecutionMode::Parallel),
    ];
}

/// `artifact_store:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ArtifactStore {
    /// On the runner's disk (the default).
    #[default]
    Local,
    /// An S3 bucket, objects encrypted with KMS (P13, P14).
    S3 {
        /// The bucket.
        bucket: String,
        /// A key prefix inside it.
        prefix: Option<String>,
        /// Key id, key ARN or alias; `None` is the AWS-managed `aws/s3` key (P14).
        kms_key_id: Option<String>,
    },
}

/// A pipeline-level variable (P33).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// `[A-Za-z0-9@\-_]{1,128}`.
    pub name: String,
    /// 1–1000 characters; without one, a start must supply a value.
    pub default: Option<String>,
    /// Up to 200 characters.
    pub description: Option<String>,
}

/// A stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Unique in the pipeline.
    pub name: String,
    /// 1–50 actions, in file order.
    pub actions: Vec<Action>,
    /// Checked before the stage's first action starts (P42): an unmet condition fails or skips
    /// the stage.
    pub before_entry: Vec<Condition>,
    /// Checked after the stage succeeded (P42): an unmet condition fails it or rolls it back.
    pub on_success: Vec<Condition>,
    /// What a failure of the stage does: an automatic retry (P39) or rollback (P41).
    pub on_failure: Option<OnFailure>,
    /// Where the stage starts in the file.
    pub location: Location,
}

/// A stage's automatic retry (P39): which actions, and how many times at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoRetry {
    /// `failed_actions` (default) or `all_actions`.
    pub mode: RetryMode,
    /// Automatic attempts after the first (P39 decision: 1 by default; at most 10).
    pub attempts: u32,
}

/// Which actions a stage retry re-runs (P36).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    /// Only the actions that did not succeed.
    FailedActions,
    /// Every action of the stage.
    AllActions,
}

impl RetryMode {
    /// The spellings accepted in pipeline files.
    pub const ALL: [(&str, RetryMode); 2] = [
        ("failed_actions", RetryMode::FailedActions),
        ("all_actions", RetryMode::AllActions),
    ];
}

/// An action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Unique in its stage.
    pub name: String,
    /// What it does, with its type-specific settings.
    pub kind: ActionKind,
    /// Input artifact names.
    pub inputs: Vec<String>,
    /// Output artifact names, unique in the pipeline.
    pub outputs: Vec<String>,
    /// Where its output variables can be referenced from (P7).
    pub namespace: Option<String>,
    /// Position within the stage (P9); 1 by default.
    pub run_order: u32,
    /// `None`: waits for the whole previous stage. `Some`: waits for exactly these actions of
    /// earlier stages instead (plus its producers and lower run-order groups).
    pub depends_on: Option<Vec<ActionId>>,
    /// The actions whose artifacts or variables this one reads, one entry per artifact and per
    /// namespace.
    pub consumes: Vec<Consumed>,
    /// Where the action starts in the file.
    pub location: Location,
}

impl Action {
    /// The type name as written in the file.
    pub fn type_name(&self) -> &'static str {
        self.kind.action_type().name()
    }
}

/// Something an action reads from an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The action that produces it.
    pub producer: ActionId,
    /// What is read.
    pub item: ConsumedItem,
}

/// An artifact or a namespace's variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumedItem {
    /// An input artifact.
    Artifact(String),
    /// Output variables referenced as `#{namespace.key}`.
    Variables(String),
}

/// An action's type and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// Fetches the repository (first stage only, P2).
    Source(SourceAction),
    /// Runs a buildspec in a container.
    Build(BuildAction),
    /// Waits for a person (P45).
    Approval(ApprovalAction),
    /// Deploys Lambda function code from a ZIP artifact.
    LambdaDeploy(LambdaDeployAction),
    /// Syncs an artifact's files to an S3 bucket.
    S3Deploy(S3DeployAction),
}

impl ActionKind {
    /// The type without its settings.
    pub fn action_type(&self) -> ActionType {
        match self {
            ActionKind::Source(_) => ActionType::Source,
            ActionKind::Build(_) => ActionType::Build,
            ActionKind::Approval(_) => ActionType::Approval,
            ActionKind::LambdaDeploy(_) => ActionType::LambdaDeploy,
            ActionKind::S3Deploy(_) => ActionType::S3Deploy,
        }
    }
}

/// The action types. Adding one means a variant here, its row in [`ActionType::ALL`] and the
/// methods below, a variant of [`ActionKind`], and an arm in `validate::action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// `source`.
    Source,
    /// `build`.
    Build,
    /// `approval`.
    Approval,
    /// `lambda-deploy`.
    LambdaDeploy,
    /// `s3-deploy`.
    S3Deploy,
}

impl ActionType {
    /// Every type, in the order messages list them.
    pub const ALL: [ActionType; 5] = [
        ActionType::Source,
        ActionType::Build,
        ActionType::Approval,
        ActionType::LambdaDeploy,
        ActionType::S3Deploy,
    ];

    /// The name in the file.
    pub fn name(self) -> &'static str {
        match self {
            ActionType::Source => "source",
            ActionType::Build => "build",
            ActionType::Approval => "approval",
            ActionType::LambdaDeploy => "lambda-deploy",
            ActionType::S3Deploy => "s3-deploy",
        }
    }

    /// Parses a name from the file.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// How many input artifacts it takes (P8).
    pub fn inputs(self) -> (usize, usize) {
        match self {
            ActionType::Source | ActionType::Approval => (0, 0),
            ActionType::Build => (1, 5),
            ActionType::LambdaDeploy | ActionType::S3Deploy => (1, 1),
        }
    }

    /// How many output artifacts it produces (P8).
    pub fn outputs(self) -> (usize, usize) {
        match self {
            ActionType::Source => (1, 1),
            ActionType::Build => (0, 5),
            ActionType::Approval | ActionType::LambdaDeploy | ActionType::S3Deploy => (0, 0),
        }
    }

    /// The action keys it takes beyond `name`, `type`, `inputs`, `outputs`, `namespace`,
    /// `run_order` and `depends_on`.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            ActionType::Source => &[],
            ActionType::Build => &[
                "buildspec",
                "buildspec_inline",
                "image",
                "env",
                "parameter_store",
                "secrets_manager",
                "timeout",
                "network",
                "primary_source",
            ],
            ActionType::Approval => &["timeout"],
            ActionType::LambdaDeploy => &["region", "parallelism", "upload_bucket", "functions"],
            ActionType::S3Deploy => &[
                "region",
                "bucket",
                "prefix",
                "delete",
                "kms_key_id",
                "cache_control",
            ],
        }
    }
}

impl fmt::Display for ActionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A source action: fetches `source.repo` at the execution's revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAction {
    /// The repository, from `source.repo`.
    pub repo: RepoRef,
    /// The branch, from `source.branch`.
    pub branch: String,
}

/// The output variable keys of a source action (P34).
pub const SOURCE_VARIABLE_KEYS: &[&str] = &[
    "AuthorDate",
    "BranchName",
    "CommitId",
    "CommitMessage",
    "ConnectionArn",
    "FullRepositoryName",
];

/// A build action: a buildspec in a container, as CodeBuild runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildAction {
    /// Which buildspec to run.
    pub buildspec: BuildspecRef,
    /// The image; `None` leaves it to the runner's default image setting.
    pub image: Option<String>,
    /// Environment variables, `defaults.env` first, in file order; values may hold `#{...}`.
    pub env: Vec<(String, String)>,
    /// Variables whose values come from SSM or Secrets Manager when the build starts (P43's
    /// `PARAMETER_STORE` and `SECRETS_MANAGER` types), in file order; references may hold
    /// `#{...}`. They override the buildspec's variables like `env` does, and are masked.
    pub secret_env: Vec<(String, SecretSource)>,
    /// The build timeout (CodeBuild's default is 60 minutes).
    pub timeout: Duration,
    /// The container's network.
    pub network: Network,
    /// The input unpacked into `CODEBUILD_SRC_DIR` (P16); the only input when there is one.
    pub primary_source: String,
}

/// Where a secret environment variable of a build action comes from (P43).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `parameter_store`: an SSM parameter name (or ARN).
    ParameterStore(String),
    /// `secrets_manager`: `secret-id[:json-key[:version-stage[:version-id]]]`.
    SecretsManager(String),
}

/// Where a build action's buildspec comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildspecRef {
    /// A path in the primary input (may hold `#{...}`); `buildspec.yml` by default.
    Path(String),
    /// The buildspec text itself.
    Inline(String),
}

/// A build container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// Docker's default bridge.
    #[default]
    Bridge,
    /// The host's network.
    Host,
    /// No network.
    None,
}

impl Network {
    /// Every network with its name in the file.
    pub const ALL: [(&str, Network); 3] = [
        ("bridge", Network::Bridge),
        ("host", Network::Host),
        ("none", Network::None),
    ];
}

/// A manual approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalAction {
    /// How long it waits before failing (7 days by default, P45).
    pub timeout: Duration,
}

/// Names that pick one of a few values, for messages.
pub(crate) fn names<T>(table: &[(&'static str, T)]) -> Vec<&'static str> {
    table.iter().map(|(name, _)| *name).collect()
}
