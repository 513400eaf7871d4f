//! The `phases` block: the four fixed phase names (B7), commands (B3, B22), `on-failure` (B31)
//! and `runtime-versions` (B24).

use std::collections::BTreeMap;

use super::Ctx;
use super::node::{child, mapping, string, type_error};
use crate::buildspec::error::ProblemCode;
use crate::buildspec::model::{Command, OnFailure, Phase, PhaseName};
use crate::yaml::{Node, NodeKind};

pub(super) fn phases(cx: &mut Ctx, node: &Node) -> BTreeMap<PhaseName, Phase> {
    let mut phases = BTreeMap::new();
    let Some(entries) = mapping(cx, node, "phases") else {
        return phases;
    };
    if entries.is_empty() {
        let message = "`phases` must declare at least one of install, pre_build, build, post_build";
        cx.invalid(node.location, "phases", message);
    }
    for entry in entries {
        let field = child("phases", entry.key);
        let Some(name) = PhaseName::from_key(entry.key) else {
            let message = format!(
                "unknown phase `{}`: expected install, pre_build, build or post_build",
                entry.key
            );
            cx.invalid(entry.key_location, field, message);
            continue;
        };
        let mut phase = phase(cx, name, entry.value, &field);
        phase.location = entry.key_location;
        phases.insert(name, phase);
    }
    phases
}

fn phase(cx: &mut Ctx, name: PhaseName, node: &Node, field: &str) -> Phase {
    let mut phase = Phase::default();
    for entry in mapping(cx, node, field).unwrap_or_default() {
        let value_field = child(field, entry.key);
        match entry.key {
            "run-as" => phase.run_as = string(cx, entry.value, &value_field),
            "on-failure" => phase.on_failure = on_failure(cx, entry.value, &value_field),
            "runtime-versions" if name == PhaseName::Install => {
                phase.runtime_versions = runtime_versions(cx, entry.value, &value_field);
            }
            "runtime-versions" => {
                let message = "`runtime-versions` is only allowed in the install phase";
                cx.invalid(entry.key_location, value_field, message);
            }
            "commands" => phase.commands = commands(cx, entry.value, &value_field, "Commands"),
            "finally" => phase.finally = commands(cx, entry.value, &value_field, "Finally"),
            _ => cx.unknown_key(&entry, field),
        }
    }
    phase
}

/// B3, B22: each item must be a scalar, taken as written (`- 42` is the command `42`).
///
/// `label` is the list's name in `CodeBuild`'s message (`Expected Commands[N] ...`).
fn commands(cx: &mut Ctx, node: &Node, field: &str, label: &str) -> Vec<Command> {
    let items = match &node.kind {
        NodeKind::Seq(items) => items,
        NodeKind::Null => return Vec::new(),
        NodeKind::Scalar { text, .. } => {
            let message = format!("`{field}` should be a list; the string is run as one command");
            cx.warn(node.location, "B3", message);
            return vec![command(text, node)];
        }
        NodeKind::Map(_) => {
            type_error(cx, node, field, "a list of commands");
            return Vec::new();
        }
    };
    let mut commands = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let found = match &item.kind {
            NodeKind::Scalar { text, .. } => {
                commands.push(command(text, item));
                continue;
            }
            NodeKind::Null => {
                cx.warn(
                    item.location,
                    "B3",
                    format!("`{field}[{index}]` is empty and is ignored"),
                );
                continue;
            }
            NodeKind::Map(_) => "subkeys",
            NodeKind::Seq(_) => "a list",
        };
        let message = format!(
            "Expected {label}[{index}] to be of string type: found {found} instead at line {}; \
             quote the command if it contains \": \" or starts with `{{` or `[`",
            item.location.line
        );
        cx.problem(
            ProblemCode::YamlFileError,
            item.location,
            format!("{field}[{index}]"),
            message,
        );
    }
    commands
}

fn command(text: &str, node: &Node) -> Command {
    Command {
        text: text.to_owned(),
        location: node.location,
    }
}

/// B31: `CONTINUE` or `ABORT`. Other cases are accepted with a warning, because AWS documents
/// only the upper-case spelling; `RETRY*` is refused.
fn on_failure(cx: &mut Ctx, node: &Node, field: &str) -> OnFailure {
    let Some(text) = string(cx, node, field) else {
        return OnFailure::Default;
    };
    let upper = text.to_ascii_uppercase();
    let value = match upper.as_str() {
        "CONTINUE" => OnFailure::Continue,
        "ABORT" => OnFailure::Abort,
        _ if upper == "RETRY" || upper.starts_with("RETRY-") => {
            let message = format!("on-failure `{text}` is not supported: use CONTINUE or ABORT");
            cx.unsupported(node.location, field, message);
            return OnFailure::Default;
        }
        _ => {
            let message = format!("unknown on-failure value `{text}`: expected CONTINUE or ABORT");
            cx.invalid(node.location, field, message);
            return OnFailure::Default;
        }
    };
    if text != upper {
        let message = format!("on-failure `{text}` should be written `{upper}`");
        cx.warn(node.location, "B31", message);
    }
    value
}

/// B24: runtime name → version, kept as written (`python: 3.10` stays `3.10`).
fn runtime_versions(cx: &mut Ctx, node: &Node, field: &str) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    for entry in mapping(cx, node, field).unwrap_or_default() {
        let runtime_field = child(field, entry.key);
        match string(cx, entry.value, &runtime_field) {
            Some(version) => drop(versions.insert(entry.key.to_owned(), version)),
            None if entry.value.kind == NodeKind::Null => {
                cx.invalid(
                    entry.value.location,
                    runtime_field,
                    "expected a version, found an empty value",
                );
            }
            None => {}
        }
    }
    versions
}
