//! A stage's `before_entry`, `on_success` and `on_failure` (P39, P41, P42): results allowed in
//! each place, 1–5 `variable_check` rules per condition, operators and regular expressions.
//! The `#{...}` references of the rules are checked later, with the other variable references,
//! by `flow::stage_references`; [`StageConditions::references`] lists them for it.

use regex::Regex;

use super::super::conditions::{Condition, ConditionResult, OnFailure, Operator, Rule};
use super::super::error::{Counted, ProblemKind};
use super::super::model::{AutoRetry, RetryMode, Stage};
use super::super::spec::{ConditionSpec, ConditionsSpec, OnFailureSpec, RuleSpec};
use super::{Ctx, required_at};

/// P42: rules per condition.
const RULES: (usize, usize) = (1, 5);

/// When a condition is checked, which decides the variables it may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum When {
    /// Before the stage's first action starts: only earlier stages' variables.
    BeforeEntry,
    /// After the stage ended: this stage's variables too.
    AfterStage,
}

/// A stage's conditions, and the texts whose references still need checking.
pub(super) struct StageConditions {
    pub(super) before_entry: Vec<Condition>,
    pub(super) on_success: Vec<Condition>,
    pub(super) on_failure: Option<OnFailure>,
    /// `(field, text, when)` of every rule's `variable` and `value`.
    pub(super) references: Vec<(String, String, When)>,
}

/// Converts a stage's three condition keys; `field` is the stage's field path.
pub(super) fn stage_conditions(
    cx: &mut Ctx<'_>,
    before_entry: Option<ConditionsSpec>,
    on_success: Option<ConditionsSpec>,
    on_failure: Option<OnFailureSpec>,
    field: &str,
) -> StageConditions {
    let mut out = StageConditions {
        before_entry: Vec::new(),
        on_success: Vec::new(),
        on_failure: None,
        references: Vec::new(),
    };
    if let Some(spec) = before_entry {
        let block = Block {
            field: format!("{field}.before_entry"),
            key: "before_entry result",
            results: &[
                ("fail", ConditionResult::Fail),
                ("skip", ConditionResult::Skip),
            ],
            when: When::BeforeEntry,
        };
        out.before_entry = block.conditions(cx, spec.conditions, &mut out.references);
    }
    if let Some(spec) = on_success {
        let block = Block {
            field: format!("{field}.on_success"),
            key: "on_success result",
            results: &[
                ("rollback", ConditionResult::Rollback),
                ("fail", ConditionResult::Fail),
            ],
            when: When::AfterStage,
        };
        out.on_success = block.conditions(cx, spec.conditions, &mut out.references);
    }
    if let Some(spec) = on_failure {
        out.on_failure = self::on_failure(cx, spec, &format!("{field}.on_failure"), &mut out);
    }
    out
}

/// `on_failure`: `result: retry` (P39, no conditions) or `result: rollback` (P41, optional
/// conditions whose result is `rollback`).
fn on_failure(
    cx: &mut Ctx<'_>,
    spec: OnFailureSpec,
    field: &str,
    out: &mut StageConditions,
) -> Option<OnFailure> {
    #[derive(Clone, Copy)]
    enum Kind {
        Retry,
        Rollback,
    }
    const RESULTS: [(&str, Kind); 2] = [("retry", Kind::Retry), ("rollback", Kind::Rollback)];
    let result_field = format!("{field}.result");
    let result = required_at(cx, spec.result, "result", &result_field)?;
    match cx.choice(&RESULTS, "on_failure result", &result, &result_field)? {
        Kind::Retry => {
            if spec.conditions.is_some() {
                let kind = ProblemKind::KeyNotApplicableTo {
                    key: "conditions",
                    context: "an on_failure with result retry (P39)",
                };
                cx.report(format!("{field}.conditions"), kind);
            }
            auto_retry(cx, spec.retry_mode, spec.attempts, field).map(OnFailure::Retry)
        }
        Kind::Rollback => {
            for (key, present) in [
                ("retry_mode", spec.retry_mode.is_some()),
                ("attempts", spec.attempts.is_some()),
            ] {
                if present {
                    let kind = ProblemKind::KeyNotApplicableTo {
                        key,
                        context: "an on_failure with result rollback",
                    };
                    cx.report(format!("{field}.{key}"), kind);
                }
            }
            let conditions = match spec.conditions {
                None => Vec::new(),
                Some(specs) => {
                    let block = Block {
                        field: field.to_owned(),
                        key: "on_failure condition result",
                        results: &[("rollback", ConditionResult::Rollback)],
                        when: When::AfterStage,
                    };
                    block.conditions(cx, Some(specs), &mut out.references)
                }
            };
            Some(OnFailure::Rollback { conditions })
        }
    }
}

/// P39: `retry_mode` (failed actions by default) and `attempts` (1 by default, at most 10).
fn auto_retry(
    cx: &mut Ctx<'_>,
    retry_mode: Option<String>,
    attempts: Option<i64>,
    field: &str,
) -> Option<AutoRetry> {
    let mode = match retry_mode {
        Some(mode) => cx.choice(
            &RetryMode::ALL,
            "retry_mode",
            &mode,
            &format!("{field}.retry_mode"),
        ),
        None => Some(RetryMode::FailedActions),
    };
    let attempts = attempts.unwrap_or(1);
    if !(1..=10).contains(&attempts) {
        let kind = ProblemKind::OutOfRange {
            key: "attempts",
            min: 1,
            max: 10,
            found: attempts,
        };
        cx.report(format!("{field}.attempts"), kind);
        return None;
    }
    Some(AutoRetry {
        mode: mode?,
        attempts: u32::try_from(attempts).ok()?,
    })
}

/// One of the three places conditions are written.
struct Block {
    field: String,
    key: &'static str,
    results: &'static [(&'static str, ConditionResult)],
    when: When,
}

impl Block {
    fn conditions(
        &self,
        cx: &mut Ctx<'_>,
        specs: Option<Vec<ConditionSpec>>,
        references: &mut Vec<(String, String, When)>,
    ) -> Vec<Condition> {
        let field = format!("{}.conditions", self.field);
        let Some(specs) = specs.filter(|specs| !specs.is_empty()) else {
            cx.report(field, ProblemKind::Missing { key: "conditions" });
            return Vec::new();
        };
        let mut conditions = Vec::with_capacity(specs.len());
        for (index, spec) in specs.into_iter().enumerate() {
            let field = format!("{field}[{index}]");
            let result_field = format!("{field}.result");
            let result = required_at(cx, spec.result, "result", &result_field)
                .and_then(|result| cx.choice(self.results, self.key, &result, &result_field));
            let rules_field = format!("{field}.rules");
            let specs = spec.rules.unwrap_or_default();
            cx.count(&rules_field, Counted::Rules, RULES, specs.len());
            let rules: Vec<Rule> = specs
                .into_iter()
                .enumerate()
                .filter_map(|(index, spec)| {
                    let field = format!("{rules_field}[{index}]");
                    rule(cx, spec, &field, self.when, references)
                })
                .collect();
            if let Some(result) = result {
                conditions.push(Condition {
                    result,
                    rules,
                    location: cx.location(&field),
                });
            }
        }
        conditions
    }
}

/// One `variable_check` rule.
fn rule(
    cx: &mut Ctx<'_>,
    spec: RuleSpec,
    field: &str,
    when: When,
    references: &mut Vec<(String, String, When)>,
) -> Option<Rule> {
    const TYPES: [(&str, ()); 1] = [("variable_check", ())];
    let name = required_at(cx, spec.name, "name", &format!("{field}.name"));
    let kind = required_at(cx, spec.kind, "type", &format!("{field}.type"))
        .and_then(|kind| cx.choice(&TYPES, "rule type", &kind, &format!("{field}.type")));
    let variable_field = format!("{field}.variable");
    let variable = required_at(cx, spec.variable, "variable", &variable_field)
        .map(|text| cx.text(&variable_field, &text));
    let value_field = format!("{field}.value");
    // The value may be empty (`eq ""`), so it is only required to be present.
    let value = spec.value.map(|text| cx.text(&value_field, &text));
    if value.is_none() {
        cx.report(value_field.clone(), ProblemKind::Missing { key: "value" });
    }
    let operator_field = format!("{field}.operator");
    let operator = required_at(cx, spec.operator, "operator", &operator_field).and_then(|text| {
        let table: Vec<(&'static str, &'static str)> =
            Operator::NAMES.iter().map(|name| (*name, *name)).collect();
        cx.choice(&table, "operator", &text, &operator_field)
    });
    let operator = match (operator?, value.as_deref()) {
        ("eq", _) => Operator::Eq,
        ("ne", _) => Operator::Ne,
        ("contains", _) => Operator::Contains,
        (_, Some(pattern)) => match Regex::new(pattern) {
            Ok(regex) => Operator::Matches(regex),
            Err(error) => {
                let kind = ProblemKind::InvalidRegex {
                    pattern: pattern.to_owned(),
                    reason: error.to_string(),
                };
                cx.report(value_field, kind);
                return None;
            }
        },
        (_, None) => return None,
    };
    let (variable, value) = (variable?, value?);
    references.push((variable_field, variable.clone(), when));
    if !matches!(operator, Operator::Matches(_)) {
        references.push((value_field, value.clone(), when));
    }
    kind?;
    Some(Rule {
        name: name?,
        variable,
        operator,
        value,
    })
}

/// P22: no rollback result in a PARALLEL pipeline.
pub(super) fn no_rollback(cx: &mut Ctx<'_>, stages: &[Stage]) {
    for (index, stage) in stages.iter().enumerate() {
        if matches!(stage.on_failure, Some(OnFailure::Rollback { .. })) {
            let field = format!("stages[{index}].on_failure.result");
            cx.report(field, ProblemKind::RollbackInParallel);
        }
        for (position, condition) in stage.on_success.iter().enumerate() {
            if condition.result == ConditionResult::Rollback {
                let field = format!("stages[{index}].on_success.conditions[{position}].result");
                cx.report(field, ProblemKind::RollbackInParallel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::{
        ActionId, Condition, ConditionResult, Consumed, ConsumedItem, OnFailure, Operator,
        Pipeline, parse,
    };

    /// Source (namespace `SrcVars`) → build (`keys` spliced in; namespace `BuildVars`) → deploy.
    fn pipeline(keys: &str) -> String {
        format!(
            "name: demo\nsource: {{repo: acme/app, branch: main}}\nvariables:\n  - {{name: ENV, default: dev}}\nstages:\n  - name: source\n    actions:\n      - {{name: checkout, type: source, outputs: [Src], namespace: SrcVars}}\n  - name: build\n{keys}    actions:\n      - {{name: a, type: build, inputs: [Src], namespace: BuildVars}}\n      - {{name: b, type: build, inputs: [Src], run_order: 2}}\n  - name: deploy\n    actions:\n      - {{name: d, type: build, inputs: [Src], namespace: DeployVars}}\n"
        )
    }

    fn rule(variable: &str, operator: &str, value: &str) -> String {
        format!(
            "            - {{name: r, type: variable_check, variable: '{variable}', operator: {operator}, value: '{value}'}}\n"
        )
    }

    fn block(name: &str, result: &str, rules: &str) -> String {
        format!(
            "    {name}:\n      conditions:\n        - result: {result}\n          rules:\n{rules}"
        )
    }

    #[track_caller]
    fn load(text: &str) -> Pipeline {
        parse("p.yml", text).unwrap_or_else(|error| panic!("{error}"))
    }

    /// `rule field: message` of each problem.
    #[track_caller]
    fn problems(text: &str) -> Vec<String> {
        let error = parse("p.yml", text).expect_err("problems");
        error
            .problems()
            .iter()
            .map(|p| format!("{} {}: {}", p.kind.rule(), p.field, p.kind))
            .collect()
    }

    #[test]
    fn p42_conditions_load_and_entry_variables_order_the_stage() {
        let keys = [
            block(
                "before_entry",
                "skip",
                &rule("#{SrcVars.BranchName}", "matches", "^(main|release/.*)$"),
            ),
            block(
                "on_success",
                "rollback",
                &rule("#{BuildVars.OK}", "eq", "#{variables.ENV}"),
            ),
            "    on_failure: {result: rollback}\n".to_owned(),
        ]
        .concat();
        let pipeline = load(&pipeline(&keys));
        let stage = &pipeline.stages[1];
        assert_eq!(stage.before_entry.len(), 1);
        let Condition { result, rules, .. } = &stage.before_entry[0];
        assert_eq!(*result, ConditionResult::Skip);
        assert!(
            matches!(&rules[0].operator, Operator::Matches(re) if re.as_str() == "^(main|release/.*)$")
        );
        assert_eq!(stage.on_success[0].result, ConditionResult::Rollback);
        assert_eq!(
            stage.on_failure,
            Some(OnFailure::Rollback {
                conditions: Vec::new()
            })
        );
        let reads = Consumed {
            producer: ActionId {
                stage: 0,
                action: 0,
            },
            item: ConsumedItem::Variables("SrcVars".into()),
        };
        for action in &stage.actions {
            assert!(action.consumes.contains(&reads), "{}", action.name);
        }
    }

    #[test]
    fn p42_results_rules_and_operators_are_checked_where_they_are_written() {
        let six = rule("#{variables.ENV}", "eq", "x").repeat(6);
        let keys = [
            block(
                "before_entry",
                "rollback",
                &rule("#{variables.ENV}", "eq", "x"),
            ),
            block("on_success", "skip", &six),
            "    on_failure:\n      result: retry\n      conditions: []\n".to_owned(),
        ]
        .concat();
        assert_eq!(
            problems(&pipeline(&keys)),
            [
                "P42 stages[1].before_entry.conditions[0].result: unknown before_entry result `rollback`, expected one of: fail, skip",
                "P42 stages[1].on_success.conditions[0].result: unknown on_success result `skip`, expected one of: rollback, fail",
                "P42 stages[1].on_success.conditions[0].rules: the number of rules in a condition must be 1 to 5, found 6",
                "format stages[1].on_failure.conditions: `conditions` does not apply to an on_failure with result retry (P39)",
            ]
        );
        let keys = block(
            "before_entry",
            "fail",
            &[
                rule("#{variables.ENV}", "like", "x"),
                rule("#{variables.ENV}", "matches", "(unclosed"),
                "            - {name: l, type: lambda_invoke, variable: x, operator: eq, value: y}\n"
                    .to_owned(),
            ]
            .concat(),
        );
        let found = problems(&pipeline(&keys));
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with(
            "P42 stages[1].before_entry.conditions[0].rules[0].operator: unknown operator `like`"
        ));
        assert!(found[1].starts_with("P42 stages[1].before_entry.conditions[0].rules[1].value: `(unclosed` is not a valid regular expression"));
        assert!(found[2].starts_with("P42 stages[1].before_entry.conditions[0].rules[2].type: unknown rule type `lambda_invoke`"));
    }

    #[test]
    fn p42_a_condition_reads_only_what_has_finished_when_it_is_checked() {
        let keys = [
            block("before_entry", "fail", &rule("#{BuildVars.X}", "eq", "y")),
            block(
                "on_success",
                "fail",
                &rule("#{DeployVars.X}", "ne", "#{Nowhere.Y}"),
            ),
        ]
        .concat();
        assert_eq!(
            problems(&pipeline(&keys)),
            [
                "P42 stages[1].before_entry.conditions[0].rules[0].variable: `#{BuildVars.…}` is produced by build.a, which has not finished when before_entry is checked",
                "P42 stages[1].on_success.conditions[0].rules[0].variable: `#{DeployVars.…}` is produced by deploy.d, which has not finished when on_success is checked",
                "P32 stages[1].on_success.conditions[0].rules[0].value: unknown namespace `Nowhere` in `#{Nowhere.Y}`: no action declares it",
            ]
        );
        let own = block("on_success", "fail", &rule("#{BuildVars.X}", "eq", "y"));
        load(&pipeline(&own));
    }

    #[test]
    fn p41_rollback_takes_neither_retry_mode_nor_attempts() {
        let keys = "    on_failure: {result: rollback, retry_mode: all_actions, attempts: 2}\n";
        assert_eq!(
            problems(&pipeline(keys)),
            [
                "format stages[1].on_failure.retry_mode: `retry_mode` does not apply to an on_failure with result rollback",
                "format stages[1].on_failure.attempts: `attempts` does not apply to an on_failure with result rollback",
            ]
        );
    }

    #[test]
    fn p22_no_rollback_in_parallel_mode() {
        let keys = [
            "    on_failure: {result: rollback}\n".to_owned(),
            block(
                "on_success",
                "rollback",
                &rule("#{variables.ENV}", "eq", "dev"),
            ),
        ]
        .concat();
        let text =
            pipeline(&keys).replace("name: demo\n", "name: demo\nexecution_mode: parallel\n");
        assert_eq!(
            problems(&text),
            [
                "P22 stages[1].on_failure.result: rollback is not available in PARALLEL execution mode",
                "P22 stages[1].on_success.conditions[0].result: rollback is not available in PARALLEL execution mode",
            ]
        );
    }
}
