//! The validated buildspec: what the rest of the program sees after `buildspec::load`.
//!
//! Every value here has been checked against Section A of the spec. Scalars keep the text the
//! author wrote (B5), and every item remembers where it came from so that lints and run-time
//! messages can name `file:line:column`.

use std::collections::BTreeMap;

pub use crate::yaml::Location;

/// The shell each command runs in (B9, B21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shell {
    /// `/bin/sh` of the build image (dash on Debian/Ubuntu): the default.
    #[default]
    Sh,
    /// `bash`.
    Bash,
}

impl Shell {
    /// The program the driver runs each command with.
    pub fn program(self) -> &'static str {
        match self {
            Shell::Sh => "/bin/sh",
            Shell::Bash => "bash",
        }
    }
}

/// The four command phases, in the order they always run (B17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhaseName {
    /// `install`.
    Install,
    /// `pre_build`.
    PreBuild,
    /// `build`.
    Build,
    /// `post_build`.
    PostBuild,
}

impl PhaseName {
    /// All phases in execution order.
    pub const ALL: [PhaseName; 4] = [
        PhaseName::Install,
        PhaseName::PreBuild,
        PhaseName::Build,
        PhaseName::PostBuild,
    ];

    /// The key used in YAML (`pre_build`).
    pub fn key(self) -> &'static str {
        match self {
            PhaseName::Install => "install",
            PhaseName::PreBuild => "pre_build",
            PhaseName::Build => "build",
            PhaseName::PostBuild => "post_build",
        }
    }

    /// The name CodeBuild prints in its log (`PRE_BUILD`).
    pub fn log_name(self) -> &'static str {
        match self {
            PhaseName::Install => "INSTALL",
            PhaseName::PreBuild => "PRE_BUILD",
            PhaseName::Build => "BUILD",
            PhaseName::PostBuild => "POST_BUILD",
        }
    }

    /// Parses a YAML phase key.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|phase| phase.key() == key)
    }
}

/// What happens after a phase fails (B28–B31).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// No `on-failure`: CodeBuild's phase diagram decides (B28).
    #[default]
    Default,
    /// `on-failure: CONTINUE`.
    Continue,
    /// `on-failure: ABORT`.
    Abort,
}

/// One command as written in the buildspec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command text; a `- |` block is one command (B22).
    pub text: String,
    /// Where the item starts.
    pub location: Location,
}

/// One phase that the buildspec declares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Phase {
    /// `run-as` for this phase only (B25).
    pub run_as: Option<String>,
    /// `on-failure`.
    pub on_failure: OnFailure,
    /// `commands`.
    pub commands: Vec<Command>,
    /// `finally`.
    pub finally: Vec<Command>,
    /// `runtime-versions` (install only): runtime name to requested version text (B24).
    pub runtime_versions: BTreeMap<String, String>,
    /// Where the phase key is.
    pub location: Location,
}

/// A secret reference from `env.parameter-store` or `env.secrets-manager` (B12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An SSM parameter name.
    ParameterStore(String),
    /// `secret-id[:json-key[:version-stage|version-id]]`.
    SecretsManager(String),
}

/// The `env` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Env {
    /// `env.shell`.
    pub shell: Shell,
    /// `env.variables`, values as written (B5, B10).
    pub variables: BTreeMap<String, String>,
    /// `env.parameter-store` and `env.secrets-manager` (B12).
    pub secrets: BTreeMap<String, SecretRef>,
    /// `env.exported-variables` (B13).
    pub exported_variables: Vec<String>,
    /// `env.git-credential-helper` (B14).
    pub git_credential_helper: bool,
}

/// One artifact block: the top-level `artifacts` or one `secondary-artifacts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArtifactSpec {
    /// `files` patterns (B6, B38).
    pub files: Vec<String>,
    /// `name` (shell-expanded at the end of the build, B43).
    pub name: Option<String>,
    /// `discard-paths` (B40).
    pub discard_paths: bool,
    /// `base-directory` (B39).
    pub base_directory: Option<String>,
    /// `exclude-paths` (B41).
    pub exclude_paths: Vec<String>,
    /// `enable-symlinks` (B42).
    pub enable_symlinks: bool,
    /// `s3-prefix`.
    pub s3_prefix: Option<String>,
    /// Where the block starts.
    pub location: Location,
}

/// The `artifacts` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Artifacts {
    /// The primary artifact.
    pub primary: ArtifactSpec,
    /// `secondary-artifacts`, by identifier (B44).
    pub secondary: BTreeMap<String, ArtifactSpec>,
}

/// One `reports` group (B45).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportGroup {
    /// `files`.
    pub files: Vec<String>,
    /// `base-directory`.
    pub base_directory: Option<String>,
    /// `discard-paths`.
    pub discard_paths: bool,
    /// `file-format`, upper-cased; defaults to `JUNITXML`.
    pub file_format: String,
}

/// The `cache` block (B46).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cache {
    /// `paths`.
    pub paths: Vec<String>,
    /// `key`, unexpanded.
    pub key: Option<String>,
    /// `fallback-keys`, unexpanded.
    pub fallback_keys: Vec<String>,
    /// `action`: restore only, save only, or both.
    pub action: CacheAction,
}

/// `cache.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheAction {
    /// Restore before `install` and save at the end (no `action` given).
    #[default]
    Both,
    /// `restore`.
    Restore,
    /// `save`.
    Save,
}

/// A checked buildspec, version 0.2.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Buildspec {
    /// Where it was read from (a path, or `<inline>`), used in messages.
    pub origin: String,
    /// Top-level `run-as` (B8).
    pub run_as: Option<String>,
    /// `env`.
    pub env: Env,
    /// Declared phases; a phase left out is `None` (B17).
    pub phases: BTreeMap<PhaseName, Phase>,
    /// `artifacts`, if any.
    pub artifacts: Option<Artifacts>,
    /// `reports`, by group name.
    pub reports: BTreeMap<String, ReportGroup>,
    /// `cache`, if any.
    pub cache: Option<Cache>,
    /// `proxy.upload-artifacts` and `proxy.logs`, parsed and ignored (B15).
    pub proxy: (bool, bool),
}

/// A warning found while loading or linting: not fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where in the file.
    pub location: Location,
    /// A short rule id, e.g. `B7` or `lint/function-across-commands`.
    pub rule: &'static str,
    /// The message, lowercase, no period.
    pub message: String,
}
