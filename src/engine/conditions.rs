//! Evaluating a stage's conditions (P41, P42) against the variables an execution has so far,
//! and the event that says what a condition did.

use std::collections::BTreeMap;

use crate::pipeline::{CODEPIPELINE_NAMESPACE, Condition, ConditionResult, VARIABLES_NAMESPACE};

use super::event::RunEventKind;

/// Variables by namespace.
type Namespaces = BTreeMap<String, BTreeMap<String, String>>;

/// A condition that engaged: what it does and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// What it does.
    pub(crate) result: ConditionResult,
    /// `before_entry`, `on_success` or `on_failure`.
    pub(crate) when: &'static str,
    /// The rules that decided it.
    pub(crate) reason: String,
}

impl Verdict {
    /// `on_failure: {result: rollback}` without conditions (P41).
    pub(crate) fn unconditional() -> Self {
        Self {
            result: ConditionResult::Rollback,
            when: "on_failure",
            reason: "the stage failed".into(),
        }
    }

    /// The event that reports it for `stage`.
    pub(crate) fn event(&self, stage: usize) -> RunEventKind {
        RunEventKind::StageCondition {
            stage,
            message: format!("{}: {} ({})", self.when, self.result.name(), self.reason),
        }
    }
}

/// The `variables` and `codepipeline` namespaces of an execution (P31).
pub(crate) fn fixed_namespaces(
    run_id: &str,
    pipeline_variables: &BTreeMap<String, String>,
) -> Namespaces {
    BTreeMap::from([
        (VARIABLES_NAMESPACE.to_owned(), pipeline_variables.clone()),
        (
            CODEPIPELINE_NAMESPACE.to_owned(),
            BTreeMap::from([("PipelineExecutionId".to_owned(), run_id.to_owned())]),
        ),
    ])
}

/// The `before_entry` condition that engages, if any: the first one not met.
pub(crate) fn entry(
    conditions: &[Condition],
    variables: &Namespaces,
    fixed: &Namespaces,
) -> Option<Verdict> {
    evaluate(conditions, false, "before_entry", variables, fixed)
}

/// The `on_success` (`engage_when_met` false) or `on_failure` (true) condition that engages.
pub(crate) fn after(
    conditions: &[Condition],
    engage_when_met: bool,
    variables: &Namespaces,
    fixed: &Namespaces,
) -> Option<Verdict> {
    let when = if engage_when_met {
        "on_failure"
    } else {
        "on_success"
    };
    evaluate(conditions, engage_when_met, when, variables, fixed)
}

fn evaluate(
    conditions: &[Condition],
    engage_when_met: bool,
    when: &'static str,
    variables: &Namespaces,
    fixed: &Namespaces,
) -> Option<Verdict> {
    let lookup = |namespace: &str, key: &str| {
        fixed
            .get(namespace)
            .or_else(|| variables.get(namespace))
            .and_then(|values| values.get(key))
            .cloned()
    };
    let (condition, reason) = crate::pipeline::engaged(conditions, engage_when_met, lookup)?;
    Some(Verdict {
        result: condition.result,
        when,
        reason,
    })
}
