//! What a finished build hands back: exported variables, expanded names, artifact ZIPs.
//!
//! Names and base directories are shell-expanded inside the container after `post_build`
//! (B39, B43), so they see the build's final environment. Artifacts are resolved against a
//! copy of `$CODEBUILD_SRC_DIR` taken out of the container (B36), never against the last `cd`;
//! a base directory inside a secondary source (`$CODEBUILD_SRC_DIR_<id>`) uses a copy of that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use futures_util::StreamExt;

use super::collect::{self, CollectRequest};
use super::staging::{self, StagingError};
use super::transcript::agent_line;
use super::{ArtifactOutput, LogSink};
use crate::buildspec::script::Layout;
use crate::buildspec::{ArtifactSpec, Buildspec};
use crate::executor::Executor;

/// One artifact to collect, and where its expanded texts are.
#[derive(Debug, Clone)]
struct Entry {
    identifier: Option<String>,
    /// A report group's files (B45): a missing match warns instead of failing the build.
    report: bool,
    spec: ArtifactSpec,
    name_index: Option<usize>,
    base_index: Option<usize>,
}

/// The artifacts a buildspec declares.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    entries: Vec<Entry>,
    expansions: Vec<String>,
}

impl Plan {
    /// The artifacts of `buildspec`, primary first.
    pub(crate) fn new(buildspec: &Buildspec) -> Self {
        let mut plan = Self::default();
        let mut specs: Vec<(Option<String>, ArtifactSpec, bool)> = Vec::new();
        if let Some(artifacts) = &buildspec.artifacts {
            specs.push((None, artifacts.primary.clone(), false));
            for (id, spec) in &artifacts.secondary {
                specs.push((Some(id.clone()), spec.clone(), false));
            }
        }
        for (group, report) in &buildspec.reports {
            let spec = ArtifactSpec {
                files: report.files.clone(),
                base_directory: report.base_directory.clone(),
                discard_paths: report.discard_paths,
                ..ArtifactSpec::default()
            };
            let safe: String = group
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            specs.push((Some(format!("reports/{safe}")), spec, true));
        }
        for (identifier, spec, report) in specs {
            let mut push = |text: &Option<String>| {
                text.as_ref().map(|text| {
                    plan.expansions.push(text.clone());
                    plan.expansions.len() - 1
                })
            };
            let name_index = push(&spec.name);
            let base_index = push(&spec.base_directory);
            plan.entries.push(Entry {
                identifier,
                report,
                spec,
                name_index,
                base_index,
            });
        }
        plan
    }

    /// Texts the driver must expand, in index order.
    pub(crate) fn expansions(&self) -> Vec<String> {
        self.expansions.clone()
    }

    /// Collects every artifact into `out_dir`; `Err` carries the `CLIENT_ERROR` message.
    /// `secondary_dirs` are the secondary sources' directories in the container.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the pieces are all per-build"
    )]
    pub(crate) async fn collect<E: Executor>(
        &self,
        executor: &E,
        container_id: &str,
        layout: &Layout,
        secondary_dirs: &[String],
        expanded: &[String],
        out_dir: Option<&Path>,
        sink: &LogSink,
    ) -> Result<Vec<ArtifactOutput>, String> {
        if self.entries.is_empty() {
            return Ok(Vec::new());
        }
        // Copies of source trees taken out of the container: (container dir, temp dir, root).
        let mut copies: Vec<(String, tempfile::TempDir, PathBuf)> = Vec::new();
        let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out_dir = out_dir.unwrap_or(scratch.path());
        let mut written = Vec::new();
        for entry in &self.entries {
            let mut spec = entry.spec.clone();
            if let Some(index) = entry.base_index {
                let base = expanded.get(index).cloned().unwrap_or_default();
                sink(&agent_line(
                    Utc::now(),
                    &format!("Expanding base directory path: {base}"),
                ));
                spec.base_directory = Some(base);
            }
            let tree = source_tree(layout, secondary_dirs, spec.base_directory.as_deref());
            let slot = if let Some(index) = copies.iter().position(|(dir, ..)| dir == tree) {
                index
            } else {
                let (copy, root) = copy_tree(executor, container_id, tree).await?;
                copies.push((tree.to_owned(), copy, root));
                copies.len() - 1
            };
            let src_root = &copies[slot].2;
            let name = entry
                .name_index
                .and_then(|i| expanded.get(i).cloned())
                .filter(|n| !n.is_empty());
            let zip = zip_path(out_dir, entry.identifier.as_deref(), name.as_deref())?;
            let identity = |text: &str| text.to_owned();
            let request = CollectRequest {
                src_root,
                container_src_dir: tree,
                spec: &spec,
                expand: &identity,
                out_zip: &zip,
            };
            sink(&agent_line(Utc::now(), "Assembling file list"));
            let collected = match collect::collect(&request) {
                Ok(collected) => collected,
                Err(error) if entry.report => {
                    // B45: report files are collected, not required; a miss is a warning.
                    let group = entry.identifier.as_deref().unwrap_or_default();
                    sink(&agent_line(Utc::now(), &format!("Report {group}: {error}")));
                    continue;
                }
                Err(error) => {
                    if let collect::CollectError::NoMatchingPaths { skipped } = &error {
                        for (path, _reason) in skipped {
                            sink(&agent_line(
                                Utc::now(),
                                &format!("Skipping invalid file path {path}"),
                            ));
                        }
                    }
                    return Err(error.to_string());
                }
            };
            for (path, _reason) in &collected.skipped {
                sink(&agent_line(
                    Utc::now(),
                    &format!("Skipping invalid file path {path}"),
                ));
            }
            sink(&agent_line(
                Utc::now(),
                &format!("Found {} file(s)", collected.files.len()),
            ));
            written.push(ArtifactOutput {
                identifier: entry.identifier.clone(),
                zip,
                files: collected.files,
            });
        }
        Ok(written)
    }
}

/// The container directory an artifact is collected from: the secondary source that holds an
/// absolute `base_directory` (B39), else `$CODEBUILD_SRC_DIR`.
fn source_tree<'a>(
    layout: &'a Layout,
    secondary_dirs: &'a [String],
    base: Option<&str>,
) -> &'a str {
    let inside = |dir: &&String| {
        base.and_then(|base| base.strip_prefix(dir.as_str()))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    secondary_dirs
        .iter()
        .find(inside)
        .map_or(layout.src_dir.as_str(), String::as_str)
}

/// Copies the container directory `dir` to a new temporary directory; returns it and the copy's
/// root.
async fn copy_tree<E: Executor>(
    executor: &E,
    container_id: &str,
    dir: &str,
) -> Result<(tempfile::TempDir, PathBuf), String> {
    let copy = tempfile::tempdir().map_err(|e| e.to_string())?;
    let stream = executor.download(container_id, dir).boxed();
    let spooled = staging::spool(dir, stream)
        .await
        .map_err(|e| format!("{e:#}"))?;
    staging::unpack(dir, spooled.path(), copy.path()).map_err(|e| e.to_string())?;
    let root = copy
        .path()
        .join(Path::new(dir).file_name().unwrap_or_default());
    Ok((copy, root))
}

/// Where an artifact's ZIP goes: `<name>.zip`, or `artifacts.zip` / `<identifier>.zip`.
fn zip_path(
    out_dir: &Path,
    identifier: Option<&str>,
    name: Option<&str>,
) -> Result<PathBuf, String> {
    let stem = name.or(identifier).unwrap_or("artifacts");
    let relative = Path::new(stem);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "artifact name {stem} escapes the artifact directory"
        ));
    }
    let path = out_dir.join(format!("{stem}.zip"));
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    Ok(path)
}

/// Values the finish script left behind.
#[derive(Debug, Clone, Default)]
pub(crate) struct Finished {
    /// `exported-variables` with their frozen values (B13; never set means empty).
    pub(crate) exported: BTreeMap<String, String>,
    /// Expanded names and base directories, by index.
    pub(crate) expanded: Vec<String>,
}

/// Reads `<tmp>/out` from the container.
pub(crate) async fn read_finished<E: Executor>(
    executor: &E,
    container_id: &str,
    layout: &Layout,
    buildspec: &Buildspec,
) -> Result<Finished, StagingError> {
    let path = format!("{}/out", layout.agent_dir);
    let spooled = staging::spool(&path, executor.download(container_id, &path).boxed()).await?;
    let dir = tempfile::tempdir().map_err(|source| StagingError::Unpack {
        path: path.clone(),
        dest: std::env::temp_dir(),
        source,
    })?;
    staging::unpack(&path, spooled.path(), dir.path())?;
    let out = dir.path().join("out");
    let read = |relative: String| fs_err::read_to_string(out.join(relative)).unwrap_or_default();
    let exported = buildspec
        .env
        .exported_variables
        .iter()
        .map(|name| (name.clone(), read(format!("var/{name}"))))
        .collect();
    let count = fs_err::read_dir(out.join("expand")).map_or(0, Iterator::count);
    let expanded = (0..count).map(|i| read(format!("expand/{i}"))).collect();
    Ok(Finished { exported, expanded })
}
