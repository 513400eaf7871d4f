//! Stage conditions (P41, P42): what a stage does on failure, and the `before_entry` and
//! `on_success` checks made of `variable_check` rules. Plain data and pure evaluation; the engine
//! decides when to evaluate them.
//!
//! A condition is **met** when all of its rules pass. An unmet `before_entry` or `on_success`
//! condition engages its result (CodePipeline: "when the criteria are not met, the specified
//! result engages"). An `on_failure` condition with rules engages its rollback when it is met
//! (the rules say when a failure warrants a rollback); without rules a failed stage always rolls
//! back (P41).

use regex::Regex;

use super::model::{AutoRetry, Location};
use super::variables::resolve_variables;

/// What a stage does when it fails.
#[derive(Debug, Clone)]
pub enum OnFailure {
    /// Retry it automatically (P39).
    Retry(AutoRetry),
    /// Roll it back to the last execution that succeeded in it (P41), when every rule of one of
    /// `conditions` passes, or always when there are none.
    Rollback {
        /// Conditions with result `rollback`; empty: roll back on every failure.
        conditions: Vec<Condition>,
    },
}

/// What an unmet (or, for `on_failure`, a met) condition does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionResult {
    /// The stage fails.
    Fail,
    /// The stage is skipped and the execution goes on (`before_entry` only).
    Skip,
    /// The stage fails and is rolled back to the last execution that succeeded in it.
    Rollback,
}

impl ConditionResult {
    /// The spelling in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            ConditionResult::Fail => "fail",
            ConditionResult::Skip => "skip",
            ConditionResult::Rollback => "rollback",
        }
    }
}

/// A condition: a result and the rules that decide it (1–5, P42).
#[derive(Debug, Clone)]
pub struct Condition {
    /// What it does when it engages.
    pub result: ConditionResult,
    /// Its rules, all of which must pass for the condition to be met.
    pub rules: Vec<Rule>,
    /// Where it is in the file.
    pub location: Location,
}

/// A `variable_check` rule (P42 decision: the only rule type v1 supports).
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, for messages.
    pub name: String,
    /// The text checked, holding `#{namespace.key}` references.
    pub variable: String,
    /// How it is compared.
    pub operator: Operator,
    /// What it is compared with (may hold references too).
    pub value: String,
}

/// A `variable_check` operator, as CodePipeline's `EQ`, `NE`, `CONTAINS` and `MATCHES`.
#[derive(Debug, Clone)]
pub enum Operator {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// The value is a substring.
    Contains,
    /// The value is a regular expression matched anywhere in the variable; compiled when the
    /// file is loaded.
    Matches(Regex),
}

impl Operator {
    /// The spellings accepted in pipeline files (the regex is filled in by validation).
    pub const NAMES: [&str; 4] = ["eq", "ne", "contains", "matches"];

    /// The spelling in pipeline files.
    pub fn name(&self) -> &'static str {
        match self {
            Operator::Eq => "eq",
            Operator::Ne => "ne",
            Operator::Contains => "contains",
            Operator::Matches(_) => "matches",
        }
    }
}

// `Regex` has no `PartialEq`; a rule is equal to another when the pattern texts are.
impl PartialEq for Operator {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Operator::Eq, Operator::Eq)
            | (Operator::Ne, Operator::Ne)
            | (Operator::Contains, Operator::Contains) => true,
            (Operator::Matches(a), Operator::Matches(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for Operator {}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, &self.variable, &self.operator, &self.value)
            == (&other.name, &other.variable, &other.operator, &other.value)
    }
}

impl Eq for Rule {}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        (self.result, &self.rules, self.location) == (other.result, &other.rules, other.location)
    }
}

impl Eq for Condition {}

impl PartialEq for OnFailure {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (OnFailure::Retry(a), OnFailure::Retry(b)) => a == b,
            (OnFailure::Rollback { conditions: a }, OnFailure::Rollback { conditions: b }) => {
                a == b
            }
            _ => false,
        }
    }
}

impl Eq for OnFailure {}

/// Why a rule did not pass, for the stage's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleVerdict {
    /// The rule's name.
    pub rule: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was compared, or which variable was missing.
    pub detail: String,
}

impl Rule {
    /// Checks the rule against the variables `lookup` knows. A reference `lookup` cannot
    /// resolve fails the rule (the producing action was skipped or did not export it).
    pub fn check(&self, mut lookup: impl FnMut(&str, &str) -> Option<String>) -> RuleVerdict {
        let resolved = resolve_variables(&self.variable, &mut lookup)
            .and_then(|variable| Ok((variable, resolve_variables(&self.value, &mut lookup)?)));
        let (variable, value) = match resolved {
            Ok(pair) => pair,
            Err(missing) => {
                return RuleVerdict {
                    rule: self.name.clone(),
                    passed: false,
                    detail: format!("{missing}"),
                };
            }
        };
        let passed = match &self.operator {
            Operator::Eq => variable == value,
            Operator::Ne => variable != value,
            Operator::Contains => variable.contains(&value),
            Operator::Matches(regex) => regex.is_match(&variable),
        };
        let operator = self.operator.name();
        RuleVerdict {
            rule: self.name.clone(),
            passed,
            detail: format!("{variable:?} {operator} {value:?} is {passed}"),
        }
    }
}

impl Condition {
    /// Whether every rule passes, with each rule's verdict.
    pub fn evaluate(
        &self,
        mut lookup: impl FnMut(&str, &str) -> Option<String>,
    ) -> (bool, Vec<RuleVerdict>) {
        let verdicts: Vec<RuleVerdict> = self
            .rules
            .iter()
            .map(|rule| rule.check(&mut lookup))
            .collect();
        (verdicts.iter().all(|v| v.passed), verdicts)
    }
}

/// The first condition of `conditions` that engages, with a sentence saying why. `engage_when_met`
/// is true for `on_failure` conditions and false for `before_entry` and `on_success`.
pub fn engaged(
    conditions: &[Condition],
    engage_when_met: bool,
    mut lookup: impl FnMut(&str, &str) -> Option<String>,
) -> Option<(&Condition, String)> {
    conditions.iter().find_map(|condition| {
        let (met, verdicts) = condition.evaluate(&mut lookup);
        (met == engage_when_met).then(|| {
            let reasons: Vec<String> = verdicts
                .iter()
                .filter(|v| v.passed == engage_when_met)
                .map(|v| format!("rule {}: {}", v.rule, v.detail))
                .collect();
            (condition, reasons.join("; "))
        })
    })
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    fn lookup(namespace: &str, key: &str) -> Option<String> {
        match (namespace, key) {
            ("SourceVariables", "BranchName") => Some("main".into()),
            ("Build", "VERSION") => Some("1.4.2".into()),
            _ => None,
        }
    }

    fn rule(variable: &str, operator: Operator, value: &str) -> Rule {
        Rule {
            name: "r".into(),
            variable: variable.into(),
            operator,
            value: value.into(),
        }
    }

    #[test_case("#{SourceVariables.BranchName}", Operator::Eq, "main", true ; "eq passes")]
    #[test_case("#{SourceVariables.BranchName}", Operator::Eq, "dev", false ; "eq fails")]
    #[test_case("#{SourceVariables.BranchName}", Operator::Ne, "dev", true ; "ne passes")]
    #[test_case("v#{Build.VERSION}", Operator::Contains, "1.4", true ; "contains")]
    #[test_case("#{Build.VERSION}", Operator::Matches(Regex::new("^1\\.[0-9]+").unwrap()), "", true ; "matches")]
    #[test_case("#{Build.MISSING}", Operator::Ne, "x", false ; "missing variable fails the rule")]
    fn p42_variable_check(variable: &str, operator: Operator, value: &str, passes: bool) {
        assert_eq!(rule(variable, operator, value).check(lookup).passed, passes);
    }

    #[test]
    fn p42_a_condition_is_met_when_all_rules_pass_and_engages_when_unmet() {
        let condition = Condition {
            result: ConditionResult::Skip,
            rules: vec![
                rule("#{SourceVariables.BranchName}", Operator::Eq, "main"),
                rule("#{Build.VERSION}", Operator::Eq, "2.0.0"),
            ],
            location: Location::default(),
        };
        let conditions = [condition];
        let (engaged, why) = engaged(&conditions, false, lookup).expect("one rule fails");
        assert_eq!(engaged.result, ConditionResult::Skip);
        assert_eq!(why, "rule r: \"1.4.2\" eq \"2.0.0\" is false");
        assert!(engaged_when_met_is_none(&conditions));
    }

    fn engaged_when_met_is_none(conditions: &[Condition]) -> bool {
        engaged(conditions, true, lookup).is_none()
    }
}
