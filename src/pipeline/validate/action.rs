//! One action: the keys every type shares (P3, P7, P9), the artifact counts of its type (P8),
//! and the type's own settings. A new action type gets an arm in [`action`] and a function
//! beside [`build`] (the deploy types' live in `deploy`).

use std::time::Duration;

use super::super::error::{Counted, NameKind, ProblemKind};
use super::super::model::{
    Action, ActionKind, ActionType, ApprovalAction, BuildAction, BuildspecRef, Network, RepoRef,
    SecretSource, SourceAction, SourceConfig,
};
use super::super::spec::{ActionSpec, EnvSpec};
use super::{ACTION_NAME, ARTIFACT_NAME, Ctx, NAMESPACE_NAME, deploy, required_at};
use crate::pipeline::variables::{CODEPIPELINE_NAMESPACE, VARIABLES_NAMESPACE};

/// CodeBuild's default build timeout.
pub(super) const BUILD_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60 * 60);
/// A pipeline action times out after 8 hours, whatever the build's own timeout (P45).
pub(super) const BUILD_TIMEOUT_MAX: Duration = Duration::from_secs(8 * 60 * 60);
/// A manual approval times out after 7 days (P45).
const APPROVAL_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The buildspec a build action runs when it names none, as in CodeBuild.
const DEFAULT_BUILDSPEC: &str = "buildspec.yml";
/// P9: CodePipeline accepts run orders up to 999.
const RUN_ORDER_MAX: i64 = 999;

/// `defaults:`, checked.
#[derive(Debug, Default)]
pub(super) struct Defaults {
    pub(super) image: Option<String>,
    pub(super) env: Vec<EnvEntry>,
    pub(super) timeout: Option<Duration>,
    pub(super) network: Option<Network>,
}

/// One environment variable and the field it was written at.
#[derive(Debug, Clone)]
pub(super) struct EnvEntry {
    pub(super) name: String,
    pub(super) value: String,
    pub(super) field: String,
}

/// An action while the cross-action checks still need its raw parts.
#[derive(Debug)]
pub(super) struct Draft {
    /// The action; `depends_on` and `consumes` are filled by `flow`.
    pub(super) action: Action,
    /// `None` when the type is missing or unknown (already reported).
    pub(super) action_type: Option<ActionType>,
    /// `stages[i].actions[j]`.
    pub(super) field: String,
    /// `depends_on` as written, with each entry's field.
    pub(super) depends_on: Option<Vec<(String, String)>>,
    /// Texts that may hold `#{...}` references, with their fields.
    pub(super) references: Vec<(String, String)>,
}

/// Converts one action.
pub(super) fn action(
    cx: &mut Ctx<'_>,
    mut spec: ActionSpec,
    field: String,
    defaults: &Defaults,
    source: Option<&SourceConfig>,
) -> Draft {
    let name_field = format!("{field}.name");
    let name = required_at(cx, spec.name.take(), "name", &name_field).unwrap_or_default();
    if !name.is_empty() {
        cx.name(ACTION_NAME, &name, &name_field);
    }
    let action_type = action_type(cx, spec.kind.as_deref(), &field);
    let inputs = artifacts(cx, spec.inputs.take(), &format!("{field}.inputs"), true);
    let outputs = artifacts(cx, spec.outputs.take(), &format!("{field}.outputs"), false);
    let namespace = spec.namespace.take();
    if let Some(namespace) = &namespace {
        let namespace_field = format!("{field}.namespace");
        cx.name(NAMESPACE_NAME, namespace, &namespace_field);
        if [CODEPIPELINE_NAMESPACE, VARIABLES_NAMESPACE].contains(&namespace.as_str()) {
            let namespace = namespace.clone();
            cx.report(
                namespace_field,
                ProblemKind::ReservedNamespace { namespace },
            );
        }
    }
    let run_order = run_order(cx, spec.run_order, &field);
    let depends_on = spec.depends_on.take().map(|entries| {
        let fields = (0..entries.len()).map(|index| format!("{field}.depends_on[{index}]"));
        entries.into_iter().zip(fields).collect()
    });
    let mut draft = Draft {
        action: Action {
            name,
            kind: ActionKind::Approval(ApprovalAction {
                timeout: APPROVAL_TIMEOUT,
            }),
            inputs,
            outputs,
            namespace,
            run_order,
            depends_on: None,
            consumes: Vec::new(),
            location: cx.location(&field),
        },
        action_type,
        field,
        depends_on,
        references: Vec::new(),
    };
    if let Some(kind) = action_type {
        type_rules(cx, &spec, kind, &draft);
        draft.action.kind = match kind {
            ActionType::Source => ActionKind::Source(source_action(source)),
            ActionType::Build => ActionKind::Build(build(cx, spec, defaults, &mut draft)),
            ActionType::Approval => ActionKind::Approval(approval(cx, spec, &draft.field)),
            ActionType::LambdaDeploy => {
                ActionKind::LambdaDeploy(deploy::lambda_deploy(cx, spec, &mut draft))
            }
            ActionType::S3Deploy => ActionKind::S3Deploy(deploy::s3_deploy(cx, spec, &mut draft)),
        };
    }
    draft
}

fn action_type(cx: &mut Ctx<'_>, kind: Option<&str>, field: &str) -> Option<ActionType> {
    let type_field = format!("{field}.type");
    let Some(kind) = kind else {
        cx.report(type_field, ProblemKind::Missing { key: "type" });
        return None;
    };
    let found = ActionType::from_name(kind);
    if found.is_none() {
        let known = ActionType::ALL.iter().map(|kind| kind.name()).collect();
        let value = kind.to_owned();
        let problem = ProblemKind::UnknownValue {
            key: "action type",
            value,
            known,
        };
        cx.report(type_field, problem);
    }
    found
}

/// Artifact names (P3); inputs may not repeat (P6). Output uniqueness is pipeline-wide (`flow`).
fn artifacts(
    cx: &mut Ctx<'_>,
    names: Option<Vec<String>>,
    field: &str,
    inputs: bool,
) -> Vec<String> {
    let names = names.unwrap_or_default();
    for (index, name) in names.iter().enumerate() {
        let item = format!("{field}[{index}]");
        cx.name(ARTIFACT_NAME, name, &item);
        if inputs && names[..index].contains(name) {
            cx.report(item, ProblemKind::DuplicateInput { name: name.clone() });
        }
    }
    names
}

/// P9: a positive integer, 1 by default.
fn run_order(cx: &mut Ctx<'_>, value: Option<i64>, field: &str) -> u32 {
    let value = value.unwrap_or(1);
    match u32::try_from(value) {
        Ok(order) if (1..=RUN_ORDER_MAX).contains(&value) => order,
        _ => {
            cx.report(
                format!("{field}.run_order"),
                ProblemKind::RunOrder { value },
            );
            1
        }
    }
}

/// P8 counts, and keys that belong to other types.
fn type_rules(cx: &mut Ctx<'_>, spec: &ActionSpec, kind: ActionType, draft: &Draft) {
    let field = &draft.field;
    let inputs = draft.action.inputs.len();
    cx.count(
        &format!("{field}.inputs"),
        Counted::Inputs(kind),
        kind.inputs(),
        inputs,
    );
    let outputs = draft.action.outputs.len();
    cx.count(
        &format!("{field}.outputs"),
        Counted::Outputs(kind),
        kind.outputs(),
        outputs,
    );
    let present = [
        ("buildspec", spec.buildspec.is_some()),
        ("buildspec_inline", spec.buildspec_inline.is_some()),
        ("image", spec.image.is_some()),
        ("env", spec.env.is_some()),
        ("parameter_store", spec.parameter_store.is_some()),
        ("secrets_manager", spec.secrets_manager.is_some()),
        ("timeout", spec.timeout.is_some()),
        ("network", spec.network.is_some()),
        ("primary_source", spec.primary_source.is_some()),
        ("region", spec.region.is_some()),
        ("parallelism", spec.parallelism.is_some()),
        ("upload_bucket", spec.upload_bucket.is_some()),
        ("functions", spec.functions.is_some()),
        ("bucket", spec.bucket.is_some()),
        ("prefix", spec.prefix.is_some()),
        ("delete", spec.delete.is_some()),
        ("kms_key_id", spec.kms_key_id.is_some()),
        ("cache_control", spec.cache_control.is_some()),
    ];
    for (key, _) in present.into_iter().filter(|(_, present)| *present) {
        if !kind.keys().contains(&key) {
            cx.report(
                format!("{field}.{key}"),
                ProblemKind::KeyNotApplicable { key, kind },
            );
        }
    }
}

fn source_action(source: Option<&SourceConfig>) -> SourceAction {
    // A missing or broken `source` is reported once, at `source`.
    source.map_or_else(
        || SourceAction {
            repo: RepoRef::Url(String::new()),
            branch: String::new(),
        },
        |source| SourceAction {
            repo: source.repo.clone(),
            branch: source.branch.clone(),
        },
    )
}

fn build(
    cx: &mut Ctx<'_>,
    spec: ActionSpec,
    defaults: &Defaults,
    draft: &mut Draft,
) -> BuildAction {
    let field = draft.field.clone();
    let buildspec = buildspec(cx, spec.buildspec, spec.buildspec_inline, draft);
    let image = match spec.image {
        Some(image) if image.is_empty() => {
            cx.report(
                format!("{field}.image"),
                ProblemKind::Empty { key: "image" },
            );
            None
        }
        Some(image) => Some(image),
        None => defaults.image.clone(),
    };
    let own_env = env(cx, spec.env.unwrap_or_default(), &format!("{field}.env"));
    let mut merged = defaults.env.clone();
    for entry in own_env {
        match merged
            .iter_mut()
            .find(|existing| existing.name == entry.name)
        {
            Some(existing) => *existing = entry,
            None => merged.push(entry),
        }
    }
    for entry in &merged {
        draft
            .references
            .push((entry.field.clone(), entry.value.clone()));
    }
    let sections = [
        ("parameter_store", spec.parameter_store),
        ("secrets_manager", spec.secrets_manager),
    ];
    let secret_env = secret_env(cx, sections, &merged, draft);
    let timeout = match spec.timeout {
        Some(text) => cx.duration(&text, BUILD_TIMEOUT_MAX, &format!("{field}.timeout")),
        None => defaults.timeout,
    };
    let network = match spec.network {
        Some(network) => cx.choice(
            &Network::ALL,
            "network",
            &network,
            &format!("{field}.network"),
        ),
        None => defaults.network,
    };
    let primary_source = primary_source(cx, spec.primary_source, draft);
    BuildAction {
        buildspec,
        image,
        env: merged
            .into_iter()
            .map(|entry| (entry.name, entry.value))
            .collect(),
        secret_env,
        timeout: timeout.unwrap_or(BUILD_TIMEOUT_DEFAULT),
        network: network.unwrap_or_default(),
        primary_source,
    }
}

fn buildspec(
    cx: &mut Ctx<'_>,
    path: Option<String>,
    inline: Option<String>,
    draft: &mut Draft,
) -> BuildspecRef {
    let field = &draft.field;
    match (path, inline) {
        (Some(_), Some(inline)) => {
            cx.report(
                format!("{field}.buildspec_inline"),
                ProblemKind::BuildspecConflict,
            );
            BuildspecRef::Inline(inline)
        }
        (Some(path), None) => {
            let path_field = format!("{field}.buildspec");
            if path.is_empty() {
                cx.report(path_field, ProblemKind::Empty { key: "buildspec" });
            } else if path.starts_with('/') || path.split('/').any(|part| part == "..") {
                cx.report(
                    path_field,
                    ProblemKind::BuildspecPath { path: path.clone() },
                );
            } else {
                draft.references.push((path_field, path.clone()));
            }
            BuildspecRef::Path(path)
        }
        (None, Some(inline)) => {
            if inline.trim().is_empty() {
                let key = "buildspec_inline";
                cx.report(format!("{field}.{key}"), ProblemKind::Empty { key });
            }
            BuildspecRef::Inline(inline)
        }
        (None, None) => BuildspecRef::Path(DEFAULT_BUILDSPEC.to_owned()),
    }
}

/// P8: required with more than one input and one of them; D-10 for the other inputs and the
/// outputs.
fn primary_source(cx: &mut Ctx<'_>, written: Option<String>, draft: &Draft) -> String {
    let field = &draft.field;
    let inputs = &draft.action.inputs;
    let primary = match written {
        Some(name) if inputs.contains(&name) => Some(name),
        Some(name) => {
            let kind = ProblemKind::PrimarySourceNotInput { name };
            cx.report(format!("{field}.primary_source"), kind);
            None
        }
        None if inputs.len() > 1 => {
            cx.report(
                format!("{field}.inputs"),
                ProblemKind::PrimarySourceRequired,
            );
            None
        }
        None => inputs.first().cloned(),
    };
    let dashed =
        |(index, name): (usize, &String)| name.contains('-').then(|| (index, name.clone()));
    if let Some(primary) = &primary {
        let secondary = inputs
            .iter()
            .enumerate()
            .filter(|(_, name)| *name != primary);
        for (index, name) in secondary.filter_map(dashed) {
            let kind = ProblemKind::DashInBuildIdentifier {
                role: "secondary input",
                name,
            };
            cx.report(format!("{field}.inputs[{index}]"), kind);
        }
    }
    for (index, name) in draft.action.outputs.iter().enumerate().filter_map(dashed) {
        let kind = ProblemKind::DashInBuildIdentifier {
            role: "output",
            name,
        };
        cx.report(format!("{field}.outputs[{index}]"), kind);
    }
    primary.unwrap_or_default()
}

/// Environment variables: names like a shell's, none starting with `CODEBUILD_` (D-8); values
/// exactly as written.
pub(super) fn env(cx: &mut Ctx<'_>, spec: EnvSpec, field: &str) -> Vec<EnvEntry> {
    let mut entries = Vec::with_capacity(spec.0.len());
    for (name, value) in spec.0 {
        let entry_field = format!("{field}.{name}");
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let kind = ProblemKind::InvalidName {
                kind: NameKind::EnvVar,
                name: name.clone(),
                pattern: "[A-Za-z_][A-Za-z0-9_]*",
            };
            cx.report(entry_field.clone(), kind);
        } else if name.starts_with("CODEBUILD_") {
            cx.report(
                entry_field.clone(),
                ProblemKind::ReservedEnvName { name: name.clone() },
            );
        }
        let value = cx.text(&entry_field, &value);
        entries.push(EnvEntry {
            name,
            value,
            field: entry_field,
        });
    }
    entries
}

/// P43: `parameter_store` and `secrets_manager` of a build action, the typed entries of
/// CodePipeline's `EnvironmentVariables`. A name may appear once across them and `env`.
fn secret_env(
    cx: &mut Ctx<'_>,
    sections: [(&'static str, Option<EnvSpec>); 2],
    plain: &[EnvEntry],
    draft: &mut Draft,
) -> Vec<(String, SecretSource)> {
    let field = draft.field.clone();
    let mut entries = Vec::new();
    let mut names: Vec<(String, String)> = plain
        .iter()
        .map(|entry| (entry.name.clone(), entry.field.clone()))
        .collect();
    for (key, section) in sections {
        let Some(section) = section else { continue };
        for entry in env(cx, section, &format!("{field}.{key}")) {
            if entry.value.is_empty() {
                cx.report(entry.field.clone(), ProblemKind::Empty { key });
            }
            draft
                .references
                .push((entry.field.clone(), entry.value.clone()));
            names.push((entry.name.clone(), entry.field.clone()));
            let source = if key == "parameter_store" {
                SecretSource::ParameterStore(entry.value)
            } else {
                SecretSource::SecretsManager(entry.value)
            };
            entries.push((entry.name, source));
        }
    }
    cx.unique(
        NameKind::EnvVar,
        names
            .iter()
            .map(|(name, field)| (name.as_str(), field.clone())),
    );
    entries
}

fn approval(cx: &mut Ctx<'_>, spec: ActionSpec, field: &str) -> ApprovalAction {
    let timeout = spec
        .timeout
        .and_then(|text| cx.duration(&text, APPROVAL_TIMEOUT, &format!("{field}.timeout")));
    ApprovalAction {
        timeout: timeout.unwrap_or(APPROVAL_TIMEOUT),
    }
}
