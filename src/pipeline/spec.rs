//! The raw shape of a pipeline file, as serde reads it: unknown keys and wrong types stop here
//! with `serde_yaml`'s `line:column`; every other rule is checked by `validate`.
//!
//! Keys are `snake_case` as the issue writes them (a stated exception to B3's kebab-case). Almost
//! every field is optional here so that a missing one is reported with all other problems, not as
//! the first serde error. Enumerations stay strings for the same reason. Nothing outside
//! `pipeline` sees these types.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a pipeline: a mapping with `name`, `source` and `stages`"
)]
pub(super) struct PipelineSpec {
    pub(super) name: Option<String>,
    pub(super) source: Option<SourceSpec>,
    pub(super) execution_mode: Option<String>,
    pub(super) artifact_store: Option<ArtifactStoreSpec>,
    pub(super) variables: Option<Vec<VariableSpec>>,
    pub(super) defaults: Option<DefaultsSpec>,
    pub(super) stages: Option<Vec<StageSpec>>,
}

/// `source:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `repo`, `branch` and optionally `triggers`"
)]
pub(super) struct SourceSpec {
    pub(super) repo: Option<String>,
    pub(super) branch: Option<String>,
    pub(super) triggers: Option<TriggersSpec>,
}

/// `source.triggers:` (P24).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `push` and/or `pull_request`"
)]
pub(super) struct TriggersSpec {
    pub(super) push: Option<Vec<PushFilterSpec>>,
    pub(super) pull_request: Option<Vec<PullRequestFilterSpec>>,
}

/// One entry of `push:` (P25).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a push filter: a mapping with `tags`, `branches` or `file_paths`"
)]
pub(super) struct PushFilterSpec {
    pub(super) branches: Option<PatternsSpec>,
    pub(super) tags: Option<PatternsSpec>,
    pub(super) file_paths: Option<PatternsSpec>,
}

/// One entry of `pull_request:` (P25).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a pull_request filter: a mapping with `branches`, `file_paths` or `events`"
)]
pub(super) struct PullRequestFilterSpec {
    pub(super) branches: Option<PatternsSpec>,
    pub(super) file_paths: Option<PatternsSpec>,
    pub(super) events: Option<Vec<String>>,
}

/// `{includes: [...], excludes: [...]}` (P25).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `includes` and/or `excludes`"
)]
pub(super) struct PatternsSpec {
    pub(super) includes: Option<Vec<String>>,
    pub(super) excludes: Option<Vec<String>>,
}

/// `artifact_store:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `type` and, for s3, `bucket`, `prefix`, `kms_key_id`"
)]
pub(super) struct ArtifactStoreSpec {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) bucket: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) kms_key_id: Option<String>,
}

/// One entry of `variables:` (P33).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a variable: a mapping with `name`, `default` and `description`"
)]
pub(super) struct VariableSpec {
    pub(super) name: Option<String>,
    pub(super) default: Option<String>,
    pub(super) description: Option<String>,
}

/// `defaults:`, applied to every build action.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `image`, `env`, `timeout` and `network`"
)]
pub(super) struct DefaultsSpec {
    pub(super) image: Option<String>,
    pub(super) env: Option<EnvSpec>,
    pub(super) timeout: Option<String>,
    pub(super) network: Option<String>,
}

/// One entry of `stages:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a stage: a mapping with `name` and `actions`"
)]
pub(super) struct StageSpec {
    pub(super) name: Option<String>,
    pub(super) actions: Option<Vec<ActionSpec>>,
    pub(super) before_entry: Option<ConditionsSpec>,
    pub(super) on_success: Option<ConditionsSpec>,
    pub(super) on_failure: Option<OnFailureSpec>,
}

/// `on_failure:` of a stage: `result: retry` (P39) or `result: rollback` (P41), the latter
/// optionally with `conditions` (P42).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `result` and optionally `retry_mode`, `attempts` or `conditions`"
)]
pub(super) struct OnFailureSpec {
    pub(super) result: Option<String>,
    pub(super) retry_mode: Option<String>,
    pub(super) attempts: Option<i64>,
    pub(super) conditions: Option<Vec<ConditionSpec>>,
}

/// `before_entry:` and `on_success:` of a stage (P42).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with `conditions`")]
pub(super) struct ConditionsSpec {
    pub(super) conditions: Option<Vec<ConditionSpec>>,
}

/// One condition (P42).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a condition: a mapping with `result` and `rules`"
)]
pub(super) struct ConditionSpec {
    pub(super) result: Option<String>,
    pub(super) rules: Option<Vec<RuleSpec>>,
}

/// One rule of a condition (P42 decision: `variable_check` only).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule: a mapping with `name`, `type`, `variable`, `operator` and `value`"
)]
pub(super) struct RuleSpec {
    pub(super) name: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) variable: Option<String>,
    pub(super) operator: Option<String>,
    pub(super) value: Option<String>,
}

/// One entry of `actions:`. Every key of every action type is here; `validate` rejects the keys
/// that do not apply to the action's type.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an action: a mapping with `name`, `type` and its settings"
)]
pub(super) struct ActionSpec {
    pub(super) name: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) inputs: Option<Vec<String>>,
    pub(super) outputs: Option<Vec<String>>,
    pub(super) namespace: Option<String>,
    pub(super) run_order: Option<i64>,
    pub(super) depends_on: Option<Vec<String>>,
    pub(super) timeout: Option<String>,
    pub(super) buildspec: Option<String>,
    pub(super) buildspec_inline: Option<String>,
    pub(super) image: Option<String>,
    pub(super) env: Option<EnvSpec>,
    pub(super) parameter_store: Option<EnvSpec>,
    pub(super) secrets_manager: Option<EnvSpec>,
    pub(super) network: Option<String>,
    pub(super) primary_source: Option<String>,
    pub(super) region: Option<String>,
    pub(super) parallelism: Option<i64>,
    pub(super) upload_bucket: Option<String>,
    pub(super) functions: Option<Vec<FunctionSpec>>,
    pub(super) bucket: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) delete: Option<bool>,
    pub(super) kms_key_id: Option<String>,
    pub(super) cache_control: Option<Vec<CacheControlSpec>>,
}

/// One entry of a `lambda-deploy` action's `functions:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a function: a mapping with `name`, `zip` and the settings for a create"
)]
pub(super) struct FunctionSpec {
    pub(super) name: Option<String>,
    pub(super) zip: Option<String>,
    pub(super) runtime: Option<String>,
    pub(super) handler: Option<String>,
    pub(super) role: Option<String>,
    pub(super) memory: Option<i64>,
    pub(super) timeout: Option<i64>,
    pub(super) env: Option<EnvSpec>,
    pub(super) publish: Option<bool>,
    pub(super) alias: Option<String>,
}

/// One entry of an `s3-deploy` action's `cache_control:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `pattern` and `value`"
)]
pub(super) struct CacheControlSpec {
    pub(super) pattern: Option<String>,
    pub(super) value: Option<String>,
}

/// An `env:` mapping in document order. Values are any scalar; `validate` takes their exact text
/// from the marked tree (`1.10` stays `1.10`).
#[derive(Debug, Default)]
pub(super) struct EnvSpec(pub(super) Vec<(String, String)>);

impl<'de> Deserialize<'de> for EnvSpec {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvVisitor)
    }
}

struct EnvVisitor;

impl<'de> Visitor<'de> for EnvVisitor {
    type Value = EnvSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of variable names to values")
    }

    fn visit_unit<E: de::Error>(self) -> Result<EnvSpec, E> {
        Ok(EnvSpec::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvSpec, A::Error> {
        let mut entries = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, Option<String>>()? {
            entries.push((name, value.unwrap_or_default()));
        }
        Ok(EnvSpec(entries))
    }
}
