//! What a build leaves behind: `artifacts` (B38–B44), `reports` (B45) and `cache` (B46).

use std::collections::BTreeMap;

use super::Ctx;
use super::node::{Entry, Single, child, flag, mapping, string, string_list};
use crate::buildspec::model::{ArtifactSpec, Artifacts, Cache, CacheAction, Location, ReportGroup};
use crate::yaml::{Node, NodeKind};

/// B45: the most report groups a project may have.
const MAX_REPORT_GROUPS: usize = 5;

/// B45: test-report and coverage formats.
const REPORT_FORMATS: [&str; 10] = [
    "CUCUMBERJSON",
    "JUNITXML",
    "NUNITXML",
    "NUNIT3XML",
    "TESTNGXML",
    "VISUALSTUDIOTRX",
    "CLOVERXML",
    "COBERTURAXML",
    "JACOCOXML",
    "SIMPLECOV",
];

pub(super) fn artifacts(cx: &mut Ctx, node: &Node) -> Option<Artifacts> {
    let entries = mapping(cx, node, "artifacts")?;
    let mut secondary = BTreeMap::new();
    let primary = artifact_block(
        cx,
        &entries,
        node.location,
        "artifacts",
        Some(&mut secondary),
    );
    Some(Artifacts { primary, secondary })
}

/// One artifact block. Only the top-level one may hold `secondary-artifacts` (B44).
fn artifact_block(
    cx: &mut Ctx,
    entries: &[Entry<'_>],
    location: Location,
    field: &str,
    mut secondary: Option<&mut BTreeMap<String, ArtifactSpec>>,
) -> ArtifactSpec {
    let mut spec = ArtifactSpec {
        location,
        ..ArtifactSpec::default()
    };
    let mut files = None;
    for entry in entries {
        let value = entry.value;
        let value_field = child(field, entry.key);
        match (entry.key, secondary.as_deref_mut()) {
            ("files", _) => {
                files = Some(value);
                spec.files = string_list(cx, value, &value_field, Single::Allowed);
            }
            ("name", _) => spec.name = string(cx, value, &value_field),
            ("discard-paths", _) => spec.discard_paths = flag(cx, value, &value_field),
            ("base-directory", _) => spec.base_directory = string(cx, value, &value_field),
            ("exclude-paths", _) => {
                spec.exclude_paths = string_list(cx, value, &value_field, Single::Allowed);
            }
            ("enable-symlinks", _) => spec.enable_symlinks = flag(cx, value, &value_field),
            ("s3-prefix", _) => spec.s3_prefix = string(cx, value, &value_field),
            ("secondary-artifacts", Some(secondary)) => {
                for block in mapping(cx, value, &value_field).unwrap_or_default() {
                    let block_field = child(&value_field, block.key);
                    let Some(block_entries) = mapping(cx, block.value, &block_field) else {
                        continue;
                    };
                    let spec =
                        artifact_block(cx, &block_entries, block.key_location, &block_field, None);
                    secondary.insert(block.key.to_owned(), spec);
                }
            }
            _ => cx.unknown_key(entry, field),
        }
    }
    require_files(cx, files, location, field);
    spec
}

/// B44, B45: `files` must be present and list at least one pattern. A value of the wrong type
/// has already been reported.
fn require_files(cx: &mut Ctx, files: Option<&Node>, location: Location, field: &str) {
    let (location, message) = match files {
        None => (location, "`files` is required"),
        Some(node) if matches!(&node.kind, NodeKind::Null) => {
            (node.location, "`files` must list at least one pattern")
        }
        Some(Node {
            kind: NodeKind::Seq(items),
            location,
        }) if items.is_empty() => (*location, "`files` must list at least one pattern"),
        Some(_) => return,
    };
    cx.invalid(location, child(field, "files"), message);
}

pub(super) fn reports(cx: &mut Ctx, node: &Node) -> BTreeMap<String, ReportGroup> {
    let mut reports = BTreeMap::new();
    let entries = mapping(cx, node, "reports").unwrap_or_default();
    if let Some(extra) = entries.get(MAX_REPORT_GROUPS) {
        let message = format!(
            "at most {MAX_REPORT_GROUPS} report groups are allowed, found {}",
            entries.len()
        );
        cx.invalid(extra.key_location, child("reports", extra.key), message);
    }
    for entry in &entries {
        let field = child("reports", entry.key);
        let group = report_group(cx, entry.value, entry.key_location, &field);
        reports.insert(entry.key.to_owned(), group);
    }
    reports
}

fn report_group(cx: &mut Ctx, node: &Node, location: Location, field: &str) -> ReportGroup {
    let mut group = ReportGroup {
        file_format: "JUNITXML".to_owned(),
        ..ReportGroup::default()
    };
    let Some(entries) = mapping(cx, node, field) else {
        return group;
    };
    let mut files = None;
    for entry in entries {
        let value = entry.value;
        let value_field = child(field, entry.key);
        match entry.key {
            "files" => {
                files = Some(value);
                group.files = string_list(cx, value, &value_field, Single::Allowed);
            }
            "base-directory" => group.base_directory = string(cx, value, &value_field),
            "discard-paths" => group.discard_paths = flag(cx, value, &value_field),
            "file-format" => {
                let Some(format) = string(cx, value, &value_field) else {
                    continue;
                };
                let upper = format.to_ascii_uppercase();
                if REPORT_FORMATS.contains(&upper.as_str()) {
                    group.file_format = upper;
                } else {
                    let expected = REPORT_FORMATS.join(", ");
                    let message = format!(
                        "unknown report file-format `{format}`: expected one of {expected}"
                    );
                    cx.invalid(value.location, value_field, message);
                }
            }
            _ => cx.unknown_key(&entry, field),
        }
    }
    require_files(cx, files, location, field);
    group
}

pub(super) fn cache(cx: &mut Ctx, node: &Node) -> Option<Cache> {
    let mut cache = Cache::default();
    for entry in mapping(cx, node, "cache")? {
        let value = entry.value;
        let field = child("cache", entry.key);
        match entry.key {
            "paths" => cache.paths = string_list(cx, value, &field, Single::Allowed),
            "key" => cache.key = string(cx, value, &field),
            "fallback-keys" => {
                cache.fallback_keys = string_list(cx, value, &field, Single::Rejected);
            }
            "action" => cache.action = cache_action(cx, value, &field),
            _ => cx.unknown_key(&entry, "cache"),
        }
    }
    Some(cache)
}

fn cache_action(cx: &mut Ctx, node: &Node, field: &str) -> CacheAction {
    match string(cx, node, field).as_deref() {
        None => CacheAction::Both,
        Some("restore") => CacheAction::Restore,
        Some("save") => CacheAction::Save,
        Some(other) => {
            let message = format!("unknown cache action `{other}`: expected restore or save");
            cx.invalid(node.location, field, message);
            CacheAction::Both
        }
    }
}
