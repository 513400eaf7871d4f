//! Typed access to tree nodes: mappings, strings, lists and flags, each reporting a wrong type
//! as a problem with the field's path instead of failing.

use std::collections::HashMap;

use super::Ctx;
use crate::buildspec::error::ProblemCode;
use crate::buildspec::model::Location;
use crate::yaml::{Node, NodeKind};

/// One `key: value` pair of a mapping.
pub(super) struct Entry<'a> {
    pub(super) key: &'a str,
    pub(super) key_location: Location,
    pub(super) value: &'a Node,
}

/// Whether a list field also takes a single string (B6).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Single {
    /// `files: out.zip` means `files: [out.zip]`.
    Allowed,
    /// Only a list will do.
    Rejected,
}

/// `parent.key`, or `key` at the top level.
pub(super) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Reports that `node` is not what `field` takes.
pub(super) fn type_error(cx: &mut Ctx, node: &Node, field: &str, expected: &str) {
    let found = node.describe();
    cx.invalid(
        node.location,
        field,
        format!("expected {expected}, found {found}"),
    );
}

/// The entries of a mapping; an empty value counts as an empty mapping. Reports duplicate and
/// non-string keys, and returns `None` when `node` is not a mapping.
pub(super) fn mapping<'a>(cx: &mut Ctx, node: &'a Node, field: &str) -> Option<Vec<Entry<'a>>> {
    let pairs = match &node.kind {
        NodeKind::Map(pairs) => pairs,
        NodeKind::Null => return Some(Vec::new()),
        _ => {
            type_error(cx, node, field, "a mapping");
            return None;
        }
    };
    let mut seen: HashMap<&str, Location> = HashMap::new();
    let mut entries = Vec::with_capacity(pairs.len());
    for (key_node, value) in pairs {
        let Some(key) = key_node.as_scalar() else {
            let found = key_node.describe();
            let message = format!("mapping keys must be strings, found {found}");
            cx.problem(
                ProblemCode::YamlFileError,
                key_node.location,
                field,
                message,
            );
            continue;
        };
        if let Some(first) = seen.insert(key, key_node.location) {
            let message = format!(
                "duplicate key `{key}` (first defined at line {})",
                first.line
            );
            cx.problem(
                ProblemCode::YamlFileError,
                key_node.location,
                child(field, key),
                message,
            );
            continue;
        }
        entries.push(Entry {
            key,
            key_location: key_node.location,
            value,
        });
    }
    Some(entries)
}

/// A string field: any scalar, as written. An empty value is `None`.
pub(super) fn string(cx: &mut Ctx, node: &Node, field: &str) -> Option<String> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Some(text.clone()),
        NodeKind::Null => None,
        _ => {
            type_error(cx, node, field, "a string");
            None
        }
    }
}

/// A list of strings with the location of each item. An empty value is an empty list.
pub(super) fn string_items(
    cx: &mut Ctx,
    node: &Node,
    field: &str,
    single: Single,
) -> Vec<(String, Location)> {
    match &node.kind {
        NodeKind::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let text = item.as_scalar();
                if text.is_none() {
                    type_error(cx, item, &format!("{field}[{index}]"), "a string");
                }
                Some((text?.to_owned(), item.location))
            })
            .collect(),
        NodeKind::Scalar { text, .. } if single == Single::Allowed => {
            vec![(text.clone(), node.location)]
        }
        NodeKind::Null => Vec::new(),
        _ => {
            type_error(cx, node, field, "a list of strings");
            Vec::new()
        }
    }
}

/// [`string_items`] without the locations.
pub(super) fn string_list(cx: &mut Ctx, node: &Node, field: &str, single: Single) -> Vec<String> {
    string_items(cx, node, field, single)
        .into_iter()
        .map(|(text, _)| text)
        .collect()
}

/// A yes/no flag (B4): `yes`, `no`, `true` or `false` in any case. An empty value is `false`.
pub(super) fn flag(cx: &mut Ctx, node: &Node, field: &str) -> bool {
    let Some(text) = string(cx, node, field) else {
        return false;
    };
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => true,
        "no" | "false" => false,
        _ => {
            let message = format!("expected yes, no, true or false, found `{text}`");
            cx.invalid(node.location, field, message);
            false
        }
    }
}
