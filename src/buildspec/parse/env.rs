//! The `env` block: shell (B9), variables (B5, B10), secrets (B12), exported variables (B13), and
//! the name rules that cut across them (B11, B50).

use std::collections::BTreeMap;

use super::Ctx;
use super::node::{Single, child, flag, mapping, string, string_items, type_error};
use crate::buildspec::model::{Env, Location, SecretRef, Shell};
use crate::yaml::{Node, NodeKind};

/// One name defined by `variables`, `parameter-store` or `secrets-manager`.
struct Definition {
    name: String,
    block: &'static str,
    location: Location,
}

pub(super) fn env(cx: &mut Ctx, node: &Node) -> Env {
    let mut env = Env::default();
    let mut definitions = Vec::new();
    let mut exported = Vec::new();
    for entry in mapping(cx, node, "env").unwrap_or_default() {
        let field = child("env", entry.key);
        match entry.key {
            "shell" => env.shell = shell(cx, entry.value).unwrap_or_default(),
            "variables" => variables(cx, entry.value, &mut env, &mut definitions),
            "parameter-store" => secrets(
                cx,
                entry.value,
                "parameter-store",
                &mut env,
                &mut definitions,
            ),
            "secrets-manager" => secrets(
                cx,
                entry.value,
                "secrets-manager",
                &mut env,
                &mut definitions,
            ),
            "exported-variables" => {
                exported = string_items(cx, entry.value, &field, Single::Rejected);
            }
            "git-credential-helper" => env.git_credential_helper = flag(cx, entry.value, &field),
            _ => cx.unknown_key(&entry, "env"),
        }
    }
    check_definitions(cx, &definitions);
    env.exported_variables = exported_variables(cx, exported, &definitions);
    env
}

/// B5, B10: values keep their source text; `X:` sets `X` to the empty string.
fn variables(cx: &mut Ctx, node: &Node, env: &mut Env, definitions: &mut Vec<Definition>) {
    for (name, value) in named_values(cx, node, "variables", definitions) {
        match &value.kind {
            NodeKind::Scalar { text, .. } => drop(env.variables.insert(name, text.clone())),
            NodeKind::Null => drop(env.variables.insert(name, String::new())),
            _ => type_error(cx, value, &format!("env.variables.{name}"), "a string"),
        }
    }
}

/// B12: `parameter-store` and `secrets-manager` map a name to a non-empty reference.
fn secrets(
    cx: &mut Ctx,
    node: &Node,
    block: &'static str,
    env: &mut Env,
    definitions: &mut Vec<Definition>,
) {
    for (name, value) in named_values(cx, node, block, definitions) {
        let field = format!("env.{block}.{name}");
        let Some(text) = string(cx, value, &field).filter(|text| !text.trim().is_empty()) else {
            if value.as_scalar().is_some() || value.kind == NodeKind::Null {
                cx.invalid(
                    value.location,
                    field,
                    "expected a secret reference, found an empty value",
                );
            }
            continue;
        };
        let secret = if block == "parameter-store" {
            SecretRef::ParameterStore(text)
        } else {
            SecretRef::SecretsManager(text)
        };
        env.secrets.insert(name, secret);
    }
}

/// B9: `bash` or `/bin/sh` (`sh` too); Windows shells are refused by name.
fn shell(cx: &mut Ctx, node: &Node) -> Option<Shell> {
    let text = string(cx, node, "env.shell")?;
    match text.as_str() {
        "bash" => Some(Shell::Bash),
        "/bin/sh" | "sh" => Some(Shell::Sh),
        _ if ["powershell.exe", "cmd.exe"].contains(&text.to_ascii_lowercase().as_str()) => {
            let message = format!(
                "shell `{text}` is not supported: Windows shells are not supported, use bash or /bin/sh"
            );
            cx.unsupported(node.location, "env.shell", message);
            None
        }
        _ => {
            cx.invalid(
                node.location,
                "env.shell",
                format!("unknown shell `{text}`: expected bash or /bin/sh"),
            );
            None
        }
    }
}

/// The entries of a name → value block, with each name checked and recorded for B50.
fn named_values<'a>(
    cx: &mut Ctx,
    node: &'a Node,
    block: &'static str,
    definitions: &mut Vec<Definition>,
) -> Vec<(String, &'a Node)> {
    let field = child("env", block);
    let mut values = Vec::new();
    for entry in mapping(cx, node, &field).unwrap_or_default() {
        let name = entry.key.to_owned();
        check_name(cx, &name, entry.key_location, &child(&field, &name));
        definitions.push(Definition {
            name: name.clone(),
            block,
            location: entry.key_location,
        });
        values.push((name, entry.value));
    }
    values
}

/// Names become environment variables, so they must be shell identifiers; B11 reserves
/// `CODEBUILD_`.
fn check_name(cx: &mut Ctx, name: &str, location: Location, field: &str) {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !valid_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        let message = format!(
            "`{name}` is not a valid environment variable name: use letters, digits and `_`, not starting with a digit"
        );
        cx.invalid(location, field, message);
    } else if name.starts_with("CODEBUILD_") {
        let message = format!("no user environment variables can start with CODEBUILD_ (`{name}`)");
        cx.invalid(location, field, message);
    }
}

/// B50: one name in more than one of `variables`, `parameter-store` and `secrets-manager`.
fn check_definitions(cx: &mut Ctx, definitions: &[Definition]) {
    let mut first: BTreeMap<&str, &Definition> = BTreeMap::new();
    for definition in definitions {
        match first.get(definition.name.as_str()) {
            Some(earlier) => {
                let message = format!(
                    "`{}` is defined in both env.{} and env.{}",
                    definition.name, earlier.block, definition.block
                );
                let field = child(&child("env", definition.block), &definition.name);
                cx.invalid(definition.location, field, message);
            }
            None => drop(first.insert(&definition.name, definition)),
        }
    }
}

/// B13: exported names are checked against `AWS_` and against the secrets defined here.
fn exported_variables(
    cx: &mut Ctx,
    exported: Vec<(String, Location)>,
    definitions: &[Definition],
) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(exported.len());
    for (index, (name, location)) in exported.into_iter().enumerate() {
        let field = format!("env.exported-variables[{index}]");
        check_name(cx, &name, location, &field);
        if name.starts_with("AWS_") {
            cx.invalid(
                location,
                &field,
                format!("`{name}` cannot be exported: names starting with AWS_ are reserved"),
            );
        }
        let secret = definitions
            .iter()
            .find(|definition| definition.name == name && definition.block != "variables");
        if let Some(secret) = secret {
            let message = format!(
                "`{name}` cannot be exported: it is a secret from env.{}",
                secret.block
            );
            cx.invalid(location, &field, message);
        }
        if names.contains(&name) {
            cx.warn(
                location,
                "B13",
                format!("`{name}` is exported more than once"),
            );
        } else {
            names.push(name);
        }
    }
    names
}
