//! `PipelineError`: a pipeline file that cannot be read, or every problem found in one that can.
//!
//! Each problem prints as `<origin>:<line>:<column>: <field>: <message>`, one per line, and
//! carries a structured [`ProblemKind`] whose [`rule`](ProblemKind::rule) names the spec rule.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use super::glob::GlobError;
use super::model::{ActionType, Location};

/// Why a pipeline could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file could not be read.
    #[error("{} pipeline file {}", io_verb(source), path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid pipeline.
    #[error("{}", render(origin, problems))]
    Invalid {
        /// Where the text came from (a path, or `<inline>`).
        origin: String,
        /// Every problem found, in document order.
        problems: Vec<Problem>,
    },
}

impl PipelineError {
    /// The problems found; empty for `Io`.
    pub fn problems(&self) -> &[Problem] {
        match self {
            PipelineError::Io { .. } => &[],
            PipelineError::Invalid { problems, .. } => problems,
        }
    }
}

/// One thing wrong with a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file.
    pub location: Location,
    /// The path of the offending value, e.g. `stages[1].actions[0].inputs[0]`; empty for
    /// malformed YAML.
    pub field: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl Problem {
    /// Formats the problem as `<origin>:<line>:<column>: <field>: <message>`.
    pub fn display<'a>(&'a self, origin: &'a str) -> impl fmt::Display + 'a {
        ProblemDisplay {
            origin,
            problem: self,
        }
    }
}

/// What a name names, for messages about names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The pipeline's name.
    Pipeline,
    /// A stage.
    Stage,
    /// An action.
    Action,
    /// An output artifact.
    Artifact,
    /// An action's namespace.
    Namespace,
    /// A pipeline variable.
    Variable,
    /// An environment variable.
    EnvVar,
    /// A Lambda function of a `lambda-deploy` action.
    LambdaFunction,
    /// A Lambda alias.
    LambdaAlias,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Pipeline => "pipeline",
            NameKind::Stage => "stage",
            NameKind::Action => "action",
            NameKind::Artifact => "artifact",
            NameKind::Namespace => "namespace",
            NameKind::Variable => "variable",
            NameKind::EnvVar => "environment variable",
            NameKind::LambdaFunction => "Lambda function",
            NameKind::LambdaAlias => "Lambda alias",
        })
    }
}

/// Every kind of problem, with its context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// Malformed YAML.
    #[error("{message}")]
    Syntax {
        /// The parser's description.
        message: String,
    },
    /// An unknown key or a value of the wrong type, as `serde_yaml` reports it.
    #[error("{message}")]
    Schema {
        /// `serde_yaml`'s description, without its location.
        message: String,
    },
    /// A key written twice in one mapping.
    #[error("duplicate key `{key}` (first defined at line {first_line})")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where it was first written.
        first_line: usize,
    },
    /// A required key is absent.
    #[error("`{key}` is required")]
    Missing {
        /// The key.
        key: &'static str,
    },
    /// An empty string where a value is needed.
    #[error("`{key}` must not be empty")]
    Empty {
        /// The key.
        key: &'static str,
    },
    /// A value that is not one of a fixed set.
    #[error("unknown {key} `{value}`, expected one of: {}", known.join(", "))]
    UnknownValue {
        /// The key.
        key: &'static str,
        /// What was written.
        value: String,
        /// The accepted values.
        known: Vec<&'static str>,
    },
    /// A name that breaks its pattern (P3, P7, P33).
    #[error("{kind} name `{name}` must match `{pattern}`")]
    InvalidName {
        /// What it names.
        kind: NameKind,
        /// The name.
        name: String,
        /// The pattern.
        pattern: &'static str,
    },
    /// A name used twice where it must be unique (P2, P3, P6, P7, P33).
    #[error("duplicate {kind} name `{name}` (first at line {})", first.line)]
    DuplicateName {
        /// What it names.
        kind: NameKind,
        /// The name.
        name: String,
        /// The first use.
        first: Location,
    },
    /// A number outside its range (P2, P3, P8, P25).
    #[error("{what} must be {}, found {found}", range(*min, *max))]
    Count {
        /// What is counted.
        what: Counted,
        /// The least allowed.
        min: usize,
        /// The most allowed.
        max: usize,
        /// What was found.
        found: usize,
    },
    /// P2.
    #[error("the first stage may hold only source actions, found {}", a(*kind))]
    NonSourceInFirstStage {
        /// The type found.
        kind: ActionType,
    },
    /// P2.
    #[error("source actions are only allowed in the first stage")]
    SourceOutsideFirstStage,
    /// A type-specific key on an action of another type.
    #[error("`{key}` does not apply to {kind} actions")]
    KeyNotApplicable {
        /// The key.
        key: &'static str,
        /// The action's type.
        kind: ActionType,
    },
    /// A key that does not apply to the chosen `type` of something other than an action.
    #[error("`{key}` does not apply to {context}")]
    KeyNotApplicableTo {
        /// The key.
        key: &'static str,
        /// What it was written in.
        context: &'static str,
    },
    /// P9.
    #[error("run_order must be a positive integer up to 999, found {value}")]
    RunOrder {
        /// What was written.
        value: i64,
    },
    /// P6.
    #[error("input `{name}` is listed twice")]
    DuplicateInput {
        /// The artifact.
        name: String,
    },
    /// P6: no action produces the artifact.
    #[error("unknown artifact `{name}`: no action produces it")]
    UnknownArtifact {
        /// The artifact.
        name: String,
    },
    /// P6: the producer does not run before the consumer.
    #[error(
        "artifact `{name}` is consumed before it is produced: `{producer}` does not run before this action (it must be in an earlier stage or have a lower run_order)"
    )]
    InputBeforeProduced {
        /// The artifact.
        name: String,
        /// `stage.action` of the producer.
        producer: String,
    },
    /// P7.
    #[error("namespace `{namespace}` is also an artifact name")]
    NamespaceIsArtifact {
        /// The namespace.
        namespace: String,
    },
    /// P7, P31.
    #[error("namespace `{namespace}` is reserved")]
    ReservedNamespace {
        /// The namespace.
        namespace: String,
    },
    /// P8.
    #[error("`primary_source` is required when a build action has more than one input")]
    PrimarySourceRequired,
    /// P8.
    #[error("primary_source `{name}` is not one of the action's inputs")]
    PrimarySourceNotInput {
        /// What was written.
        name: String,
    },
    /// D-10.
    #[error(
        "{role} `{name}` of a build action may not contain `-`: CodeBuild source and artifact identifiers are `[A-Za-z0-9_]`"
    )]
    DashInBuildIdentifier {
        /// `secondary input` or `output`.
        role: &'static str,
        /// The artifact.
        name: String,
    },
    /// P25.
    #[error("a {list} filter takes {allowed}; found {found}")]
    FilterCombination {
        /// `push` or `pull_request`.
        list: &'static str,
        /// The allowed combinations.
        allowed: &'static str,
        /// The keys written.
        found: String,
    },
    /// P25.
    #[error("a filter criterion needs `includes` or `excludes`")]
    EmptyCriterion,
    /// P25.
    #[error("event `{event}` is listed twice")]
    DuplicateEvent {
        /// The event.
        event: String,
    },
    /// P26.
    #[error("invalid pattern `{pattern}`: {reason}")]
    InvalidGlob {
        /// The pattern.
        pattern: String,
        /// Why it does not compile.
        reason: GlobError,
    },
    /// P26.
    #[error("a pattern must not be empty")]
    EmptyPattern,
    /// P31.
    #[error("malformed variable reference `{text}`: {reason}")]
    MalformedReference {
        /// The reference as written.
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// P32 decision: unknown namespaces are rejected on save.
    #[error("unknown namespace `{namespace}` in `#{{{namespace}.{key}}}`: no action declares it")]
    UnknownNamespace {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
    },
    /// P33.
    #[error("unknown pipeline variable `{name}`: declare it under `variables`")]
    UnknownPipelineVariable {
        /// The variable.
        name: String,
    },
    /// P31, P34: a fixed namespace without that key.
    #[error("`{namespace}` has no variable `{key}`, expected one of: {}", known.join(", "))]
    UnknownVariableKey {
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// The keys it has.
        known: Vec<&'static str>,
    },
    /// P32.
    #[error(
        "namespace `{namespace}` belongs to `{producer}`, which does not run before this action (it must be in an earlier stage or have a lower run_order)"
    )]
    VariableFromLaterAction {
        /// The namespace.
        namespace: String,
        /// `stage.action` of its action.
        producer: String,
    },
    /// A text longer than allowed (P33).
    #[error("{what} may be at most {max} characters, found {found}")]
    TooLong {
        /// What it is.
        what: &'static str,
        /// The limit.
        max: usize,
        /// The length found.
        found: usize,
    },
    /// `depends_on` names no action.
    #[error("unknown action `{reference}`: expected `stage.action`")]
    UnknownAction {
        /// What was written.
        reference: String,
    },
    /// `depends_on` names more than one action (stage and action names may contain `.`).
    #[error("`{reference}` names more than one action")]
    AmbiguousAction {
        /// What was written.
        reference: String,
    },
    /// `depends_on` must point backwards.
    #[error(
        "`{reference}` is not in an earlier stage; depends_on may only name actions of earlier stages"
    )]
    DependsOnNotEarlier {
        /// What was written.
        reference: String,
    },
    /// `depends_on` lists an action twice.
    #[error("`{reference}` is listed twice")]
    DuplicateDependency {
        /// What was written.
        reference: String,
    },
    /// Both `buildspec` and `buildspec_inline`.
    #[error("`buildspec` and `buildspec_inline` are mutually exclusive")]
    BuildspecConflict,
    /// A buildspec path that leaves the input or is absolute.
    #[error("buildspec path `{path}` must be relative to the primary input and stay inside it")]
    BuildspecPath {
        /// What was written.
        path: String,
    },
    /// A timeout humantime cannot read, or out of range.
    #[error("invalid timeout `{text}`: {reason}")]
    Timeout {
        /// What was written.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// D-8.
    #[error("environment variable `{name}` may not start with `CODEBUILD_`")]
    ReservedEnvName {
        /// The name.
        name: String,
    },
    /// `source.repo` is none of the accepted forms.
    #[error(
        "repo `{repo}` is not `owner/name`, a git URL or a local path (absolute, or starting with `./`, `../` or `~/`)"
    )]
    InvalidRepo {
        /// What was written.
        repo: String,
    },
    /// `source.branch` is not a valid branch name.
    #[error("branch `{branch}` is not a valid git branch name")]
    InvalidBranch {
        /// What was written.
        branch: String,
    },
    /// A number outside the range its key allows.
    #[error("`{key}` must be {min} to {max}, found {found}")]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The least allowed.
        min: i64,
        /// The most allowed.
        max: i64,
        /// What was written.
        found: i64,
    },
    /// A Lambda alias without `publish: true`.
    #[error("`alias` needs `publish: true`: an alias points at a published version")]
    AliasNeedsPublish,
    /// A Lambda execution role that is not an IAM role ARN.
    #[error("role `{role}` is not an IAM role ARN (`arn:aws:iam::<account>:role/<name>`)")]
    InvalidRoleArn {
        /// What was written.
        role: String,
    },
    /// A path inside an input artifact that is absolute or leaves it.
    #[error("{key} path `{path}` must be relative to the input artifact and stay inside it")]
    ArtifactPath {
        /// The key.
        key: &'static str,
        /// What was written.
        path: String,
    },
    /// An S3 key prefix that starts with `/` or holds a `..` segment.
    #[error("prefix `{prefix}` must not start with `/` or contain a `..` segment")]
    InvalidPrefix {
        /// What was written.
        prefix: String,
    },
    /// A `matches` rule whose value is not a regular expression (P42).
    #[error("`{pattern}` is not a valid regular expression: {reason}")]
    InvalidRegex {
        /// What was written.
        pattern: String,
        /// The regex parser's description.
        reason: String,
    },
    /// A condition's variable reads an action that has not finished when it is evaluated (P42).
    #[error(
        "`#{{{namespace}.…}}` is produced by {producer}, which has not finished when {when} is checked"
    )]
    ConditionVariableTooLate {
        /// The namespace.
        namespace: String,
        /// `stage.action` of its producer.
        producer: String,
        /// `before_entry` or `on_success`.
        when: &'static str,
    },
    /// A rollback result in a PARALLEL pipeline (P22).
    #[error("rollback is not available in PARALLEL execution mode")]
    RollbackInParallel,
    /// An action setting or key above its length limit (P5).
    #[error("{what} may be at most {max} characters, found {found}")]
    SettingTooLong {
        /// `a key` or `a value`.
        what: &'static str,
        /// The limit.
        max: usize,
        /// What was found.
        found: usize,
    },
    /// An S3 bucket name S3 would refuse.
    #[error(
        "bucket `{bucket}` is not a valid S3 bucket name (3-63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit)"
    )]
    InvalidBucket {
        /// What was written.
        bucket: String,
    },
}

impl ProblemKind {
    /// The spec rule the problem breaks (`P6`, `D-10`), or what kind of check found it.
    pub fn rule(&self) -> &'static str {
        match self {
            ProblemKind::Syntax { .. } | ProblemKind::DuplicateKey { .. } => "yaml",
            ProblemKind::Schema { .. } => "schema",
            ProblemKind::NonSourceInFirstStage { .. } | ProblemKind::SourceOutsideFirstStage => {
                "P2"
            }
            ProblemKind::InvalidName { kind, .. } | ProblemKind::DuplicateName { kind, .. } => {
                name_rule(*kind)
            }
            ProblemKind::RunOrder { .. } => "P9",
            ProblemKind::DuplicateInput { .. }
            | ProblemKind::UnknownArtifact { .. }
            | ProblemKind::InputBeforeProduced { .. } => "P6",
            ProblemKind::NamespaceIsArtifact { .. } | ProblemKind::ReservedNamespace { .. } => "P7",
            ProblemKind::PrimarySourceRequired | ProblemKind::PrimarySourceNotInput { .. } => "P8",
            ProblemKind::DashInBuildIdentifier { .. } => "D-10",
            ProblemKind::UnknownValue { key: "event", .. }
            | ProblemKind::FilterCombination { .. }
            | ProblemKind::EmptyCriterion
            | ProblemKind::DuplicateEvent { .. } => "P25",
            ProblemKind::InvalidGlob { .. } | ProblemKind::EmptyPattern => "P26",
            ProblemKind::MalformedReference { .. } | ProblemKind::UnknownVariableKey { .. } => {
                "P31"
            }
            ProblemKind::UnknownNamespace { .. } | ProblemKind::VariableFromLaterAction { .. } => {
                "P32"
            }
            ProblemKind::UnknownPipelineVariable { .. } | ProblemKind::TooLong { .. } => "P33",
            ProblemKind::ReservedEnvName { .. } => "D-8",
            ProblemKind::InvalidRegex { .. }
            | ProblemKind::ConditionVariableTooLate { .. }
            | ProblemKind::UnknownValue {
                key:
                    "before_entry result"
                    | "on_success result"
                    | "on_failure condition result"
                    | "rule type"
                    | "operator",
                ..
            } => "P42",
            ProblemKind::SettingTooLong { .. } => "P5",
            ProblemKind::RollbackInParallel => "P22",
            ProblemKind::Count { what, .. } => what.rule(),
            _ => "format",
        }
    }
}

fn name_rule(kind: NameKind) -> &'static str {
    match kind {
        NameKind::Stage => "P2",
        NameKind::Pipeline | NameKind::Action => "P3",
        NameKind::Artifact => "P6",
        NameKind::Namespace => "P7",
        NameKind::Variable => "P33",
        NameKind::EnvVar | NameKind::LambdaFunction | NameKind::LambdaAlias => "format",
    }
}

/// `a build action`, `an approval action`.
fn a(kind: ActionType) -> String {
    // `s3` is read "ess three".
    let article =
        if kind.name().starts_with(['a', 'e', 'i', 'o', 'u']) || kind == ActionType::S3Deploy {
            "an"
        } else {
            "a"
        };
    format!("{article} {kind} action")
}

fn range(min: usize, max: usize) -> String {
    if min == max {
        format!("exactly {min}")
    } else {
        format!("{min} to {max}")
    }
}

/// What a [`ProblemKind::Count`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Stages in the pipeline (P2).
    Stages,
    /// Actions in one stage (P3).
    StageActions,
    /// Actions in the pipeline (P3).
    PipelineActions,
    /// Input artifacts of an action of this type (P8).
    Inputs(ActionType),
    /// Output artifacts of an action of this type (P8).
    Outputs(ActionType),
    /// Filters in a `push` or `pull_request` list (P24).
    Filters,
    /// Patterns in an `includes` or `excludes` list (P25).
    Patterns,
    /// Pull-request events (P25).
    Events,
    /// Rules in a stage condition (P42).
    Rules,
}

impl Counted {
    fn rule(self) -> &'static str {
        match self {
            Counted::Stages => "P2",
            Counted::StageActions | Counted::PipelineActions => "P3",
            Counted::Inputs(_) | Counted::Outputs(_) => "P8",
            Counted::Filters => "P24",
            Counted::Patterns | Counted::Events => "P25",
            Counted::Rules => "P42",
        }
    }
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Counted::Stages => f.write_str("the number of stages"),
            Counted::StageActions => f.write_str("the number of actions in a stage"),
            Counted::PipelineActions => f.write_str("the number of actions in a pipeline"),
            Counted::Inputs(kind) => write!(f, "the number of inputs of {}", a(*kind)),
            Counted::Outputs(kind) => write!(f, "the number of outputs of {}", a(*kind)),
            Counted::Filters => f.write_str("the number of filters in a list"),
            Counted::Patterns => f.write_str("the number of patterns in a list"),
            Counted::Events => f.write_str("the number of events"),
            Counted::Rules => f.write_str("the number of rules in a condition"),
        }
    }
}

struct ProblemDisplay<'a> {
    origin: &'a str,
    problem: &'a Problem,
}

impl fmt::Display for ProblemDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Problem {
            location,
            field,
            kind,
        } = self.problem;
        write!(f, "{}:{location}: ", self.origin)?;
        if !field.is_empty() {
            write!(f, "{field}: ")?;
        }
        write!(f, "{kind}")
    }
}

fn io_verb(source: &std::io::Error) -> &'static str {
    if source.kind() == std::io::ErrorKind::NotFound {
        "find"
    } else {
        "read"
    }
}

fn render(origin: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (index, problem) in problems.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        write!(out, "{}", problem.display(origin)).expect("writing to a String cannot fail");
    }
    out
}
