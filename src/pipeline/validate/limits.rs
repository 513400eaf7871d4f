//! P5: an action's configuration keys are at most 50 characters and its values at most 1000.
//!
//! Our action settings stand for CodePipeline's `configuration` map, so every key and scalar
//! written under `stages[].actions[]` is measured: environment variable names and values,
//! paths, names. `buildspec_inline` is exempt: it stands for the CodeBuild project's buildspec,
//! which is not pipeline configuration. The 100 KB limit on a resolved configuration and the
//! 122880-byte limit on an action's output variables are checked when the action runs.

use super::super::error::ProblemKind;
use super::Ctx;

/// P5: longest configuration key.
pub(crate) const KEY_MAX: usize = 50;
/// P5: longest configuration value.
pub(crate) const VALUE_MAX: usize = 1000;

/// Reports every key and value under an action that is too long.
pub(super) fn check(cx: &mut Ctx<'_>) {
    let mut found: Vec<(String, ProblemKind)> = Vec::new();
    for (path, _, text) in cx.locations.fields() {
        if !is_action_setting(path) {
            continue;
        }
        let key = path.rsplit(['.', ']']).next().unwrap_or_default();
        let key_length = key.chars().count();
        if key_length > KEY_MAX {
            let kind = ProblemKind::SettingTooLong {
                what: "a key",
                max: KEY_MAX,
                found: key_length,
            };
            found.push((path.to_owned(), kind));
        }
        let length = text.map_or(0, |text| text.chars().count());
        if length > VALUE_MAX {
            let kind = ProblemKind::SettingTooLong {
                what: "a value",
                max: VALUE_MAX,
                found: length,
            };
            found.push((path.to_owned(), kind));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    for (field, kind) in found {
        cx.report(field, kind);
    }
}

/// `stages[i].actions[j].<something>`, not inside `buildspec_inline`.
fn is_action_setting(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("stages[") else {
        return false;
    };
    let Some((_, rest)) = rest.split_once("].actions[") else {
        return false;
    };
    let Some((_, setting)) = rest.split_once("].") else {
        return false;
    };
    setting != "buildspec_inline" && !setting.starts_with("buildspec_inline.")
}

#[cfg(test)]
mod tests {
    use crate::pipeline::parse;

    fn pipeline(action: &str) -> String {
        format!(
            "name: demo\nsource: {{repo: acme/app, branch: main}}\nstages:\n  - name: source\n    actions:\n      - {{name: checkout, type: source, outputs: [Src]}}\n  - name: build\n    actions:\n{action}"
        )
    }

    #[test]
    fn p5_keys_up_to_50_and_values_up_to_1000_characters() {
        let ok = format!(
            "      - name: a\n        type: build\n        inputs: [Src]\n        env: {{{}: '{}'}}\n        buildspec_inline: |\n          version: 0.2\n          # {}\n",
            "K".repeat(50),
            "v".repeat(1000),
            "x".repeat(5000)
        );
        parse("p.yml", &pipeline(&ok)).unwrap_or_else(|error| panic!("{error}"));

        let long = format!(
            "      - name: a\n        type: build\n        inputs: [Src]\n        env: {{{}: '{}'}}\n",
            "K".repeat(51),
            "v".repeat(1001)
        );
        let error = parse("p.yml", &pipeline(&long)).expect_err("too long");
        let found: Vec<String> = error
            .problems()
            .iter()
            .map(|p| format!("{} {}", p.kind.rule(), p.kind))
            .collect();
        assert_eq!(
            found,
            [
                "P5 a key may be at most 50 characters, found 51",
                "P5 a value may be at most 1000 characters, found 1001",
            ]
        );
        assert!(
            error.problems()[0]
                .field
                .ends_with(&format!("env.{}", "K".repeat(51)))
        );
    }
}
