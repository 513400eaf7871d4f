//! What crosses actions: output artifacts and their consumers (P6), namespaces (P7), variable
//! references (P31–P33), and `depends_on`. Fills each action's `consumes` and `depends_on`.
//!
//! "Runs before" is positional, as in CodePipeline: an earlier stage, or the same stage with a
//! lower `run_order`. `dag` adds an edge from each producer, so that stays true when `depends_on`
//! lets an action skip the stages between it and its producer.

use std::collections::HashMap;

use super::super::error::{NameKind, ProblemKind};
use super::super::model::{
    ActionId, ActionType, Consumed, ConsumedItem, SOURCE_VARIABLE_KEYS, Stage, Variable,
};
use super::Ctx;
use super::action::Draft;
use super::conditions::When;
use crate::pipeline::variables::{
    CODEPIPELINE_KEYS, CODEPIPELINE_NAMESPACE, VARIABLES_NAMESPACE, references,
};

/// Runs every cross-action check and resolves the references between actions.
/// `conditions` holds, per stage, the references of its conditions (P42): a `before_entry`
/// reference becomes something every action of the stage consumes, so the plan makes them
/// wait for its producer.
pub(super) fn check(
    cx: &mut Ctx<'_>,
    stages: &[Stage],
    drafts: &mut [Vec<Draft>],
    variables: &[Variable],
    conditions: &[Vec<(String, String, When)>],
) {
    let producers = producers(cx, drafts);
    let namespaces = namespaces(cx, drafts, &producers);
    let index = Index {
        stages,
        drafts,
        producers: &producers,
        namespaces: &namespaces,
        variables,
    };
    let mut resolved = Vec::new();
    for (stage, actions) in drafts.iter().enumerate() {
        for action in 0..actions.len() {
            let id = ActionId { stage, action };
            let mut consumes = inputs(cx, &index, id);
            consumes.extend(references_of(cx, &index, id));
            resolved.push((id, consumes, depends_on(cx, &index, id)));
        }
    }
    let entry_reads: Vec<Vec<Consumed>> = conditions
        .iter()
        .enumerate()
        .map(|(stage, references)| stage_references(cx, &index, stage, references))
        .collect();
    for (id, mut consumes, depends_on) in resolved {
        for read in entry_reads.get(id.stage).into_iter().flatten() {
            if !consumes.contains(read) {
                consumes.push(read.clone());
            }
        }
        let action = &mut drafts[id.stage][id.action].action;
        action.consumes = consumes;
        action.depends_on = depends_on;
    }
}

/// What the checks look things up in.
struct Index<'a> {
    stages: &'a [Stage],
    drafts: &'a [Vec<Draft>],
    producers: &'a HashMap<String, ActionId>,
    namespaces: &'a HashMap<String, ActionId>,
    variables: &'a [Variable],
}

impl Index<'_> {
    fn draft(&self, id: ActionId) -> &Draft {
        &self.drafts[id.stage][id.action]
    }

    /// `stage.action`.
    fn qualified(&self, id: ActionId) -> String {
        let stage = self
            .stages
            .get(id.stage)
            .map_or("?", |stage| stage.name.as_str());
        format!("{stage}.{}", self.draft(id).action.name)
    }

    /// Whether `producer` finishes before `consumer` starts, by position alone.
    fn runs_before(&self, producer: ActionId, consumer: ActionId) -> bool {
        producer.stage < consumer.stage
            || (producer.stage == consumer.stage
                && self.draft(producer).action.run_order < self.draft(consumer).action.run_order)
    }
}

/// P6: each output artifact name once in the pipeline.
fn producers(cx: &mut Ctx<'_>, drafts: &[Vec<Draft>]) -> HashMap<String, ActionId> {
    let mut producers = HashMap::new();
    let mut names = Vec::new();
    for (stage, actions) in drafts.iter().enumerate() {
        for (action, draft) in actions.iter().enumerate() {
            for (index, output) in draft.action.outputs.iter().enumerate() {
                producers
                    .entry(output.clone())
                    .or_insert(ActionId { stage, action });
                names.push((output.as_str(), format!("{}.outputs[{index}]", draft.field)));
            }
        }
    }
    cx.unique(NameKind::Artifact, names);
    producers
}

/// P7: namespaces unique and distinct from artifact names.
fn namespaces(
    cx: &mut Ctx<'_>,
    drafts: &[Vec<Draft>],
    producers: &HashMap<String, ActionId>,
) -> HashMap<String, ActionId> {
    let mut namespaces = HashMap::new();
    let mut names = Vec::new();
    for (stage, actions) in drafts.iter().enumerate() {
        for (action, draft) in actions.iter().enumerate() {
            let Some(namespace) = &draft.action.namespace else {
                continue;
            };
            let field = format!("{}.namespace", draft.field);
            let consumed = drafts
                .iter()
                .flatten()
                .any(|d| d.action.inputs.contains(namespace));
            if producers.contains_key(namespace) || consumed {
                let namespace = namespace.clone();
                cx.report(
                    field.clone(),
                    ProblemKind::NamespaceIsArtifact { namespace },
                );
            }
            namespaces
                .entry(namespace.clone())
                .or_insert(ActionId { stage, action });
            names.push((namespace.as_str(), field));
        }
    }
    cx.unique(NameKind::Namespace, names);
    namespaces
}

/// P6: every input produced by an action that runs before this one.
fn inputs(cx: &mut Ctx<'_>, index: &Index<'_>, id: ActionId) -> Vec<Consumed> {
    let consumer = index.draft(id);
    let mut reads = Vec::new();
    for (position, name) in consumer.action.inputs.iter().enumerate() {
        let field = format!("{}.inputs[{position}]", consumer.field);
        let Some(&producer) = index.producers.get(name) else {
            cx.report(field, ProblemKind::UnknownArtifact { name: name.clone() });
            continue;
        };
        if !index.runs_before(producer, id) {
            let producer = index.qualified(producer);
            let name = name.clone();
            cx.report(field, ProblemKind::InputBeforeProduced { name, producer });
            continue;
        }
        let item = ConsumedItem::Artifact(name.clone());
        if !reads.iter().any(|c: &Consumed| c.item == item) {
            reads.push(Consumed { producer, item });
        }
    }
    reads
}

/// P31–P33: every `#{namespace.key}` in the action's configuration.
fn references_of(cx: &mut Ctx<'_>, index: &Index<'_>, id: ActionId) -> Vec<Consumed> {
    let texts = index.draft(id).references.iter().map(|(f, t)| (f, t));
    references_in(cx, index, texts, |producer| {
        (!index.runs_before(producer, id)).then_some("")
    })
}

/// P42: the references of a stage's conditions. `before_entry` may read earlier stages only,
/// the others this stage too. Returns what the stage's actions consume for `before_entry`.
fn stage_references(
    cx: &mut Ctx<'_>,
    index: &Index<'_>,
    stage: usize,
    references: &[(String, String, When)],
) -> Vec<Consumed> {
    let mut entry = Vec::new();
    for when in [When::BeforeEntry, When::AfterStage] {
        let texts = references
            .iter()
            .filter(|(_, _, w)| *w == when)
            .map(|(f, t, _)| (f, t));
        let reads = references_in(cx, index, texts, |producer| match when {
            When::BeforeEntry => (producer.stage >= stage).then_some("before_entry"),
            When::AfterStage => (producer.stage > stage).then_some("on_success"),
        });
        if when == When::BeforeEntry {
            entry = reads;
        }
    }
    entry
}

/// Checks the references in `texts` and returns what they read. `too_late(producer)` says
/// when a producer has not finished in time: `Some("")` for an action's own configuration,
/// `Some(when)` for a stage condition checked at `when`.
fn references_in<'t>(
    cx: &mut Ctx<'_>,
    index: &Index<'_>,
    texts: impl Iterator<Item = (&'t String, &'t String)>,
    too_late: impl Fn(ActionId) -> Option<&'static str>,
) -> Vec<Consumed> {
    let mut reads: Vec<Consumed> = Vec::new();
    for (field, text) in texts {
        for reference in references(text) {
            let reference = match reference {
                Ok(reference) => reference,
                Err(malformed) => {
                    let kind = ProblemKind::MalformedReference {
                        text: malformed.text,
                        reason: malformed.reason,
                    };
                    cx.report(field.clone(), kind);
                    continue;
                }
            };
            let (namespace, key) = (reference.namespace, reference.key);
            let kind = match namespace.as_str() {
                CODEPIPELINE_NAMESPACE => fixed_key(&namespace, &key, CODEPIPELINE_KEYS),
                VARIABLES_NAMESPACE => index
                    .variables
                    .iter()
                    .all(|variable| variable.name != key)
                    .then(|| ProblemKind::UnknownPipelineVariable { name: key.clone() }),
                _ => match index.namespaces.get(&namespace) {
                    None => Some(ProblemKind::UnknownNamespace {
                        namespace: namespace.clone(),
                        key: key.clone(),
                    }),
                    Some(&producer) if too_late(producer).is_some() => {
                        let producer_name = index.qualified(producer);
                        Some(match too_late(producer) {
                            Some("") | None => ProblemKind::VariableFromLaterAction {
                                namespace: namespace.clone(),
                                producer: producer_name,
                            },
                            Some(when) => ProblemKind::ConditionVariableTooLate {
                                namespace: namespace.clone(),
                                producer: producer_name,
                                when,
                            },
                        })
                    }
                    Some(&producer) => {
                        let item = ConsumedItem::Variables(namespace.clone());
                        if !reads.iter().any(|c| c.item == item) {
                            reads.push(Consumed { producer, item });
                        }
                        let producer_type = index.draft(producer).action_type;
                        (producer_type == Some(ActionType::Source))
                            .then(|| fixed_key(&namespace, &key, SOURCE_VARIABLE_KEYS))
                            .flatten()
                    }
                },
            };
            if let Some(kind) = kind {
                cx.report(field.clone(), kind);
            }
        }
    }
    reads
}

/// A namespace whose keys are fixed (P31, P34).
fn fixed_key(namespace: &str, key: &str, known: &[&'static str]) -> Option<ProblemKind> {
    (!known.contains(&key)).then(|| ProblemKind::UnknownVariableKey {
        namespace: namespace.to_owned(),
        key: key.to_owned(),
        known: known.to_vec(),
    })
}

/// `depends_on: [stage.action]`: each an action of an earlier stage, listed once. Stage and
/// action names may contain `.`, so every split is tried.
fn depends_on(cx: &mut Ctx<'_>, index: &Index<'_>, id: ActionId) -> Option<Vec<ActionId>> {
    let entries = index.draft(id).depends_on.as_ref()?;
    let mut resolved = Vec::with_capacity(entries.len());
    for (reference, field) in entries {
        let matches: Vec<ActionId> = reference
            .match_indices('.')
            .filter_map(|(dot, _)| {
                let (stage_name, action_name) = (&reference[..dot], &reference[dot + 1..]);
                let stage = index
                    .stages
                    .iter()
                    .position(|stage| stage.name == stage_name)?;
                let action = index.drafts[stage]
                    .iter()
                    .position(|draft| draft.action.name == action_name)?;
                Some(ActionId { stage, action })
            })
            .collect();
        let reference = reference.clone();
        let kind = match matches.as_slice() {
            [] => ProblemKind::UnknownAction { reference },
            [_, _, ..] => ProblemKind::AmbiguousAction { reference },
            [target] if target.stage >= id.stage => ProblemKind::DependsOnNotEarlier { reference },
            [target] if resolved.contains(target) => ProblemKind::DuplicateDependency { reference },
            [target] => {
                resolved.push(*target);
                continue;
            }
        };
        cx.report(field.clone(), kind);
    }
    Some(resolved)
}
