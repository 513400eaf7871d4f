//! Every `RUNNER_*` environment variable the program reads, in one place.

/// Directory for state, build counters, cache and artifacts.
pub const RUNNER_DATA_DIR: &str = "RUNNER_DATA_DIR";
/// Directory holding the `runners/NAME/` image definitions.
pub const RUNNER_RUNNERS_DIR: &str = "RUNNER_RUNNERS_DIR";
/// Default build image.
pub const RUNNER_IMAGE: &str = "RUNNER_IMAGE";
/// CA bundle to install into build containers.
pub const RUNNER_CA_BUNDLE: &str = "RUNNER_CA_BUNDLE";
/// Pseudo AWS region reported to builds.
pub const RUNNER_REGION: &str = "RUNNER_REGION";
/// Pseudo AWS account id reported to builds.
pub const RUNNER_ACCOUNT: &str = "RUNNER_ACCOUNT";
/// How build inputs reach containers: `mount` (bind-mount and copy; default for a local engine)
/// or `upload` (tar through the Engine API; default when `DOCKER_HOST` is remote).
pub const RUNNER_STAGING: &str = "RUNNER_STAGING";
/// Base URL that `owner/name` repositories resolve against (default `https://github.com`).
pub const RUNNER_GITHUB_BASE: &str = "RUNNER_GITHUB_BASE";
/// `runner`: pipeline builds receive the runner's AWS credentials (standard chain), region and
/// `AWS_ENDPOINT_URL`, masked in logs and never stored, like a CodeBuild service role; `none`
/// (the default): no AWS variables enter a build.
pub const RUNNER_BUILD_AWS_CREDENTIALS: &str = "RUNNER_BUILD_AWS_CREDENTIALS";
/// Log output format: `pretty` or `json`.
pub const RUNNER_LOG_FORMAT: &str = "RUNNER_LOG_FORMAT";
/// The secret GitHub signs webhook deliveries with, for `runner serve` (or
/// `--webhook-secret-file`).
pub const RUNNER_WEBHOOK_SECRET: &str = "RUNNER_WEBHOOK_SECRET";
/// The `Bearer` token mutating `runner serve` API calls must carry (or `--api-token-file`).
pub const RUNNER_API_TOKEN: &str = "RUNNER_API_TOKEN";
