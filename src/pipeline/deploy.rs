//! The validated settings of the two deploy action types: `lambda-deploy` (function code from a
//! ZIP artifact) and `s3-deploy` (an artifact's files synced to a bucket). Plain data; the engine
//! runs them. Texts documented as holding `#{...}` are resolved when the action starts.

use super::glob::Glob;

/// How many functions a `lambda-deploy` action deploys at once when it does not say.
pub const LAMBDA_PARALLELISM_DEFAULT: usize = 3;

/// A `lambda-deploy` action: updates (or creates) each function from its ZIP in the one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaDeployAction {
    /// The region; `None` is the runner's AWS region.
    pub region: Option<String>,
    /// How many functions deploy at once (at least 1).
    pub parallelism: usize,
    /// The bucket that carries ZIPs above Lambda's direct-upload limit (may hold `#{...}`).
    pub upload_bucket: Option<String>,
    /// The functions, in file order (at least one).
    pub functions: Vec<LambdaFunction>,
}

/// One function of a `lambda-deploy` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaFunction {
    /// Function name or ARN (may hold `#{...}`).
    pub name: String,
    /// Path of the ZIP inside the input artifact (may hold `#{...}`); `None`: the artifact is the ZIP.
    pub zip: Option<String>,
    /// Runtime, for a create.
    pub runtime: Option<String>,
    /// Handler, for a create.
    pub handler: Option<String>,
    /// Execution role ARN, for a create (may hold `#{...}`).
    pub role: Option<String>,
    /// Memory in MB, for a create.
    pub memory: Option<u32>,
    /// Timeout in seconds, for a create.
    pub timeout: Option<u32>,
    /// Environment variables, for a create; values may hold `#{...}`.
    pub env: Vec<(String, String)>,
    /// Whether a version is published after the code changes.
    pub publish: Publish,
    /// An alias moved to the published version (requires [`Publish::NewVersion`]).
    pub alias: Option<String>,
}

/// Whether a `lambda-deploy` publishes a version of a function whose code it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Publish {
    /// Only `$LATEST` changes (the default).
    #[default]
    LatestOnly,
    /// A new version is published (`publish: true`).
    NewVersion,
}

/// An `s3-deploy` action: syncs the files of its one input to a bucket and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3DeployAction {
    /// The region; `None` is the runner's AWS region.
    pub region: Option<String>,
    /// The bucket (may hold `#{...}`).
    pub bucket: String,
    /// The key prefix, `""` for the bucket's root (may hold `#{...}`).
    pub prefix: String,
    /// What happens to objects under the prefix that the artifact no longer has.
    pub deletions: Deletions,
    /// SSE-KMS key id, ARN or alias; `None` leaves encryption to the bucket's default.
    pub kms_key_id: Option<String>,
    /// `Cache-Control` values by path pattern; the first match wins.
    pub cache_control: Vec<CacheControlRule>,
}

impl S3DeployAction {
    /// The `Cache-Control` value of the file at `path` (relative to the artifact's root).
    pub fn cache_control_for(&self, path: &str) -> Option<&str> {
        self.cache_control
            .iter()
            .find(|rule| rule.pattern.is_match(path))
            .map(|rule| rule.value.as_str())
    }
}

/// Whether an `s3-deploy` deletes objects the artifact no longer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deletions {
    /// Leave them (the default).
    #[default]
    Keep,
    /// Delete them (`delete: true`).
    Delete,
}

/// One `cache_control` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheControlRule {
    /// Matched against the whole path relative to the artifact's root.
    pub pattern: Glob,
    /// The header's value.
    pub value: String,
}
