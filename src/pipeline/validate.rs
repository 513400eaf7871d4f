//! `PipelineSpec` → [`Pipeline`]: every rule of spec Section C that can be checked when the file
//! is saved, each problem collected with its field path and `line:column`, none fatal.
//!
//! This file checks the pipeline-level keys and the stage skeleton (P2, P3, P33); `conditions`
//! a stage's `before_entry`, `on_success` and `on_failure` (P39, P41, P42); `source` the
//! repository and the artifact store, `triggers` the source filters (P24–P26), `action` one
//! action by type (P8, P9, D-10), and `flow` what crosses actions (P6, P7, P31–P33,
//! `depends_on`).

mod action;
mod conditions;
mod deploy;
mod flow;
pub(crate) mod limits;
mod source;
mod triggers;

use std::collections::HashMap;
use std::time::Duration;

use super::error::{Counted, NameKind, Problem, ProblemKind};
use super::locate::Locations;
use super::model::{
    ExecutionMode, Location, Network, Pipeline, RepoRef, SourceConfig, Stage, Variable, names,
};
use super::spec::{DefaultsSpec, EnvSpec, PipelineSpec, VariableSpec};

use self::action::{Defaults, Draft};

/// Collects problems while the spec is converted.
pub(super) struct Ctx<'a> {
    locations: &'a Locations,
    pub(super) problems: Vec<Problem>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(locations: &'a Locations, problems: Vec<Problem>) -> Self {
        Ctx {
            locations,
            problems,
        }
    }

    /// Reports a problem at `field`'s location.
    fn report(&mut self, field: impl Into<String>, kind: ProblemKind) {
        let field = field.into();
        let location = self.locations.get(&field);
        self.problems.push(Problem {
            location,
            field,
            kind,
        });
    }

    /// The scalar at `field` as the author wrote it, or `fallback` (serde's reading).
    fn text(&self, field: &str, fallback: &str) -> String {
        self.locations.text(field).unwrap_or(fallback).to_owned()
    }

    fn location(&self, field: &str) -> Location {
        self.locations.get(field)
    }

    /// Reports `name` unless it matches `rule`.
    fn name(&mut self, rule: NameRule, name: &str, field: &str) {
        let length = name.chars().count();
        let valid = (1..=rule.max).contains(&length)
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || rule.punctuation.contains(c));
        if !valid {
            self.report(
                field,
                ProblemKind::InvalidName {
                    kind: rule.kind,
                    name: name.to_owned(),
                    pattern: rule.pattern,
                },
            );
        }
    }

    /// Reports the second and later uses of each name in `names` (`(name, field)` pairs).
    fn unique<'n>(&mut self, kind: NameKind, names: impl IntoIterator<Item = (&'n str, String)>) {
        let mut seen: HashMap<&str, Location> = HashMap::new();
        for (name, field) in names {
            let location = self.location(&field);
            if let Some(&first) = seen.get(name) {
                self.report(
                    field,
                    ProblemKind::DuplicateName {
                        kind,
                        name: name.to_owned(),
                        first,
                    },
                );
            } else {
                seen.insert(name, location);
            }
        }
    }

    /// Reports `found` outside `min..=max`.
    fn count(&mut self, field: &str, what: Counted, (min, max): (usize, usize), found: usize) {
        if !(min..=max).contains(&found) {
            self.report(
                field,
                ProblemKind::Count {
                    what,
                    min,
                    max,
                    found,
                },
            );
        }
    }

    /// One of a fixed set of values, or `None` after reporting it.
    fn choice<T: Copy>(
        &mut self,
        table: &[(&'static str, T)],
        key: &'static str,
        value: &str,
        field: &str,
    ) -> Option<T> {
        let found = table.iter().find(|(name, _)| *name == value);
        if found.is_none() {
            self.report(
                field,
                ProblemKind::UnknownValue {
                    key,
                    value: value.to_owned(),
                    known: names(table),
                },
            );
        }
        found.map(|(_, value)| *value)
    }

    /// Parses a humantime duration in `(0, max]`.
    fn duration(&mut self, text: &str, max: Duration, field: &str) -> Option<Duration> {
        let reason = match humantime::parse_duration(text) {
            Ok(duration) if duration.is_zero() => "must be more than zero".to_owned(),
            Ok(duration) if duration > max => {
                format!("must be at most {}", humantime::format_duration(max))
            }
            Ok(duration) => return Some(duration),
            Err(error) => error.to_string(),
        };
        self.report(
            field,
            ProblemKind::Timeout {
                text: text.to_owned(),
                reason,
            },
        );
        None
    }
}

/// A name's allowed characters and length.
#[derive(Clone, Copy)]
pub(super) struct NameRule {
    kind: NameKind,
    pattern: &'static str,
    punctuation: &'static str,
    max: usize,
}

const PIPELINE_NAME: NameRule = NameRule {
    kind: NameKind::Pipeline,
    pattern: "[A-Za-z0-9.@\\-_]{1,100}",
    punctuation: ".@-_",
    max: 100,
};
const STAGE_NAME: NameRule = NameRule {
    kind: NameKind::Stage,
    ..PIPELINE_NAME
};
const ACTION_NAME: NameRule = NameRule {
    kind: NameKind::Action,
    ..PIPELINE_NAME
};
const ARTIFACT_NAME: NameRule = NameRule {
    kind: NameKind::Artifact,
    pattern: "[A-Za-z0-9_\\-]{1,100}",
    punctuation: "_-",
    max: 100,
};
const NAMESPACE_NAME: NameRule = NameRule {
    kind: NameKind::Namespace,
    pattern: "[A-Za-z0-9@\\-_]{1,100}",
    punctuation: "@-_",
    max: 100,
};
const VARIABLE_NAME: NameRule = NameRule {
    kind: NameKind::Variable,
    pattern: "[A-Za-z0-9@\\-_]{1,128}",
    punctuation: "@-_",
    max: 128,
};

/// P2, P3: stage and action counts.
const STAGES: (usize, usize) = (2, 50);
const STAGE_ACTIONS: (usize, usize) = (1, 50);
const PIPELINE_ACTIONS: (usize, usize) = (1, 500);

/// Converts the spec, collecting problems into `cx`; the result is meaningful only when none
/// were found.
pub(super) fn pipeline(cx: &mut Ctx<'_>, origin: &str, spec: PipelineSpec) -> Pipeline {
    let name = required(cx, spec.name, "name").unwrap_or_default();
    if !name.is_empty() {
        cx.name(PIPELINE_NAME, &name, "name");
    }
    let source = if let Some(source) = spec.source {
        source::source_config(cx, source)
    } else {
        cx.report("source", ProblemKind::Missing { key: "source" });
        None
    };
    let execution_mode = spec
        .execution_mode
        .map_or(ExecutionMode::default(), |mode| {
            cx.choice(
                &ExecutionMode::ALL,
                "execution_mode",
                &mode,
                "execution_mode",
            )
            .unwrap_or_default()
        });
    let artifact_store = spec
        .artifact_store
        .map(|store| source::artifact_store(cx, store))
        .unwrap_or_default();
    let variables = variables(cx, spec.variables.unwrap_or_default());
    let defaults = defaults(cx, spec.defaults);
    let stages = stages(cx, spec.stages, &defaults, source.as_ref(), &variables);
    limits::check(cx);
    if execution_mode == ExecutionMode::Parallel {
        conditions::no_rollback(cx, &stages);
    }
    Pipeline {
        origin: origin.to_owned(),
        name,
        source: source.unwrap_or_else(|| SourceConfig {
            repo: RepoRef::Url(String::new()),
            branch: String::new(),
            triggers: None,
        }),
        execution_mode,
        artifact_store,
        variables,
        stages,
    }
}

/// A required, non-empty string.
fn required(cx: &mut Ctx<'_>, value: Option<String>, key: &'static str) -> Option<String> {
    required_at(cx, value, key, key)
}

fn required_at(
    cx: &mut Ctx<'_>,
    value: Option<String>,
    key: &'static str,
    field: &str,
) -> Option<String> {
    match value {
        None => cx.report(field, ProblemKind::Missing { key }),
        Some(value) if value.is_empty() => cx.report(field, ProblemKind::Empty { key }),
        Some(value) => return Some(value),
    }
    None
}

/// P33.
fn variables(cx: &mut Ctx<'_>, specs: Vec<VariableSpec>) -> Vec<Variable> {
    let mut variables = Vec::with_capacity(specs.len());
    for (index, spec) in specs.into_iter().enumerate() {
        let field = format!("variables[{index}]");
        let name = required_at(cx, spec.name, "name", &format!("{field}.name"));
        if let Some(name) = &name {
            cx.name(VARIABLE_NAME, name, &format!("{field}.name"));
        }
        let default = spec.default.map(|text| {
            let default_field = format!("{field}.default");
            let text = cx.text(&default_field, &text);
            let found = text.chars().count();
            if found == 0 {
                cx.report(default_field, ProblemKind::Empty { key: "default" });
            } else if found > 1000 {
                let kind = ProblemKind::TooLong {
                    what: "a variable's default",
                    max: 1000,
                    found,
                };
                cx.report(default_field, kind);
            }
            text
        });
        let found = spec
            .description
            .as_ref()
            .map_or(0, |text| text.chars().count());
        if found > 200 {
            let kind = ProblemKind::TooLong {
                what: "a variable's description",
                max: 200,
                found,
            };
            cx.report(format!("{field}.description"), kind);
        }
        variables.push(Variable {
            name: name.unwrap_or_default(),
            default,
            description: spec.description,
        });
    }
    let names = variables
        .iter()
        .enumerate()
        .map(|(index, variable)| (variable.name.as_str(), format!("variables[{index}].name")));
    cx.unique(
        NameKind::Variable,
        names.filter(|(name, _)| !name.is_empty()),
    );
    variables
}

fn defaults(cx: &mut Ctx<'_>, spec: Option<DefaultsSpec>) -> Defaults {
    let Some(spec) = spec else {
        return Defaults::default();
    };
    let image = spec.image.filter(|image| {
        if image.is_empty() {
            cx.report("defaults.image", ProblemKind::Empty { key: "image" });
        }
        !image.is_empty()
    });
    let env = action::env(
        cx,
        spec.env.unwrap_or_else(EnvSpec::default),
        "defaults.env",
    );
    let timeout = spec
        .timeout
        .and_then(|text| cx.duration(&text, action::BUILD_TIMEOUT_MAX, "defaults.timeout"));
    let network = spec
        .network
        .and_then(|network| cx.choice(&Network::ALL, "network", &network, "defaults.network"));
    Defaults {
        image,
        env,
        timeout,
        network,
    }
}

fn stages(
    cx: &mut Ctx<'_>,
    specs: Option<Vec<super::spec::StageSpec>>,
    defaults: &Defaults,
    source: Option<&SourceConfig>,
    variables: &[Variable],
) -> Vec<Stage> {
    let Some(specs) = specs else {
        cx.report("stages", ProblemKind::Missing { key: "stages" });
        return Vec::new();
    };
    cx.count("stages", Counted::Stages, STAGES, specs.len());
    let mut drafts: Vec<Vec<Draft>> = Vec::with_capacity(specs.len());
    let mut stages = Vec::with_capacity(specs.len());
    let mut condition_references = Vec::with_capacity(specs.len());
    for (index, spec) in specs.into_iter().enumerate() {
        let field = format!("stages[{index}]");
        let name = required_at(cx, spec.name, "name", &format!("{field}.name"));
        if let Some(name) = &name {
            cx.name(STAGE_NAME, name, &format!("{field}.name"));
        }
        let actions = spec.actions.unwrap_or_default();
        let actions_field = format!("{field}.actions");
        cx.count(
            &actions_field,
            Counted::StageActions,
            STAGE_ACTIONS,
            actions.len(),
        );
        let stage_drafts: Vec<Draft> = actions
            .into_iter()
            .enumerate()
            .map(|(action, spec)| {
                let field = format!("{actions_field}[{action}]");
                action::action(cx, spec, field, defaults, source)
            })
            .collect();
        first_stage_rules(cx, index, &stage_drafts);
        let names = stage_drafts
            .iter()
            .map(|draft| (draft.action.name.as_str(), format!("{}.name", draft.field)));
        cx.unique(NameKind::Action, names.filter(|(name, _)| !name.is_empty()));
        let conditions = conditions::stage_conditions(
            cx,
            spec.before_entry,
            spec.on_success,
            spec.on_failure,
            &field,
        );
        stages.push(Stage {
            name: name.unwrap_or_default(),
            actions: Vec::new(),
            before_entry: conditions.before_entry,
            on_success: conditions.on_success,
            on_failure: conditions.on_failure,
            location: cx.location(&field),
        });
        condition_references.push(conditions.references);
        drafts.push(stage_drafts);
    }
    let names = stages
        .iter()
        .enumerate()
        .map(|(index, stage)| (stage.name.as_str(), format!("stages[{index}].name")));
    cx.unique(NameKind::Stage, names.filter(|(name, _)| !name.is_empty()));
    let total = drafts.iter().map(Vec::len).sum();
    cx.count("stages", Counted::PipelineActions, PIPELINE_ACTIONS, total);
    flow::check(cx, &stages, &mut drafts, variables, &condition_references);
    for (stage, drafts) in stages.iter_mut().zip(drafts) {
        stage.actions = drafts.into_iter().map(|draft| draft.action).collect();
    }
    stages
}

/// P2: source actions in the first stage and nowhere else.
fn first_stage_rules(cx: &mut Ctx<'_>, stage: usize, drafts: &[Draft]) {
    use super::model::ActionType;
    for draft in drafts {
        let Some(kind) = draft.action_type else {
            continue;
        };
        let field = format!("{}.type", draft.field);
        match (stage, kind) {
            (0, ActionType::Source)
            | (
                1..,
                ActionType::Build
                | ActionType::Approval
                | ActionType::LambdaDeploy
                | ActionType::S3Deploy,
            ) => {}
            (0, kind) => cx.report(field, ProblemKind::NonSourceInFirstStage { kind }),
            (1.., ActionType::Source) => cx.report(field, ProblemKind::SourceOutsideFirstStage),
        }
    }
}
