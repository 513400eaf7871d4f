//! [`digest`]: a stable hash of what a pipeline's executions do, so that a retry can be refused
//! when "the pipeline structure has changed since the failure" (P37).
//!
//! Covered: the name, the artifact store, the variables and every stage and action setting.
//! Not covered: file locations and comments, the origin, and the trigger filters and execution
//! mode, which decide when executions start but not what they run. The encoding is written out
//! field by field (length-prefixed), never through `Debug` or `Hash`, so it only changes when
//! this file does.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use super::conditions::{Condition, OnFailure};
use super::model::{
    Action, ActionKind, ArtifactStore, BuildspecRef, ConsumedItem, Network, Pipeline, SecretSource,
};

/// The SHA-256 of the pipeline's structure, as 64 lowercase hex digits.
pub fn digest(pipeline: &Pipeline) -> String {
    let mut canon = Canon::default();
    canon.field("name", &pipeline.name);
    match &pipeline.artifact_store {
        ArtifactStore::Local => canon.field("artifact_store", "local"),
        ArtifactStore::S3 {
            bucket,
            prefix,
            kms_key_id,
        } => {
            canon.field("artifact_store", "s3");
            canon.field("bucket", bucket);
            canon.optional("prefix", prefix.as_deref());
            canon.optional("kms_key_id", kms_key_id.as_deref());
        }
    }
    for variable in &pipeline.variables {
        canon.field("variable", &variable.name);
        canon.optional("default", variable.default.as_deref());
    }
    for stage in &pipeline.stages {
        canon.field("stage", &stage.name);
        match &stage.on_failure {
            Some(OnFailure::Retry(retry)) => canon.field(
                "on_failure",
                &format!("{:?} {}", retry.mode, retry.attempts),
            ),
            Some(OnFailure::Rollback { conditions }) => {
                canon.field("on_failure", "rollback");
                self::conditions(&mut canon, "on_failure", conditions);
            }
            None => {}
        }
        self::conditions(&mut canon, "before_entry", &stage.before_entry);
        self::conditions(&mut canon, "on_success", &stage.on_success);
        for action in &stage.actions {
            self::action(&mut canon, action);
        }
    }
    let hash = Sha256::digest(canon.0.as_bytes());
    hash.iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            write!(out, "{byte:02x}").expect("writing to a String cannot fail");
            out
        })
}

fn conditions(canon: &mut Canon, key: &str, conditions: &[Condition]) {
    for condition in conditions {
        canon.field(key, condition.result.name());
        for rule in &condition.rules {
            canon.field("rule", &rule.name);
            canon.field("variable", &rule.variable);
            canon.field("operator", rule.operator.name());
            canon.field("value", &rule.value);
        }
    }
}

fn action(canon: &mut Canon, action: &Action) {
    canon.field("action", &action.name);
    canon.field("type", action.type_name());
    canon.list("inputs", &action.inputs);
    canon.list("outputs", &action.outputs);
    canon.optional("namespace", action.namespace.as_deref());
    canon.field("run_order", &action.run_order.to_string());
    if let Some(depends_on) = &action.depends_on {
        let ids: Vec<String> = depends_on.iter().map(ToString::to_string).collect();
        canon.list("depends_on", &ids);
    }
    for consumed in &action.consumes {
        let item = match &consumed.item {
            ConsumedItem::Artifact(name) => format!("artifact {name}"),
            ConsumedItem::Variables(namespace) => format!("variables {namespace}"),
        };
        canon.field("consumes", &format!("{} {item}", consumed.producer));
    }
    match &action.kind {
        ActionKind::Source(source) => {
            canon.field("repo", &source.repo.to_string());
            canon.field("branch", &source.branch);
        }
        ActionKind::Build(build) => {
            match &build.buildspec {
                BuildspecRef::Path(path) => canon.field("buildspec", path),
                BuildspecRef::Inline(text) => canon.field("buildspec_inline", text),
            }
            canon.optional("image", build.image.as_deref());
            for (name, value) in &build.env {
                canon.field("env", name);
                canon.field("value", value);
            }
            for (name, source) in &build.secret_env {
                let (key, reference) = match source {
                    SecretSource::ParameterStore(name) => ("parameter_store", name),
                    SecretSource::SecretsManager(reference) => ("secrets_manager", reference),
                };
                canon.field(key, name);
                canon.field("value", reference);
            }
            canon.field("timeout", &build.timeout.as_secs().to_string());
            let network = match build.network {
                Network::Bridge => "bridge",
                Network::Host => "host",
                Network::None => "none",
            };
            canon.field("network", network);
            canon.field("primary_source", &build.primary_source);
        }
        ActionKind::Approval(approval) => {
            canon.field("timeout", &approval.timeout.as_secs().to_string());
        }
        // The deploy settings are plain data whose `Debug` form names every field.
        ActionKind::LambdaDeploy(deploy) => canon.field("lambda_deploy", &format!("{deploy:?}")),
        ActionKind::S3Deploy(deploy) => canon.field("s3_deploy", &format!("{deploy:?}")),
    }
}

/// `key=<length>:<value>` lines: unambiguous whatever the values hold.
#[derive(Default)]
struct Canon(String);

impl Canon {
    fn field(&mut self, key: &str, value: &str) {
        writeln!(self.0, "{key}={}:{value}", value.len()).expect("writing to a String cannot fail");
    }

    fn optional(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.field(key, value),
            None => writeln!(self.0, "{key}~").expect("writing to a String cannot fail"),
        }
    }

    fn list(&mut self, key: &str, values: &[String]) {
        writeln!(self.0, "{key}#{}", values.len()).expect("writing to a String cannot fail");
        for value in values {
            self.field(key, value);
        }
    }
}
