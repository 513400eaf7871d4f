//! Keeps `cache.paths` between builds of the same project (B46, B47).
//!
//! An entry is one tar archive of the cached directories with absolute paths, stored under
//! `<cache root>/<project>/<key>.tar`, restored at `/` before `install` and saved after the
//! build. An entry saved under an explicit `cache.key` is never updated (B46); without a key
//! the project's single entry is refreshed by every build. Each pattern caches the directory
//! before its first glob character (`/root/.m2/**/*` caches `/root/.m2`). Paths below
//! `$CODEBUILD_SRC_DIR` are stored relative to it, because its digits change with every build.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use tracing::{info, warn};

use super::staging::{self, StagingError};
use super::{BuildRequest, environment};
use crate::buildspec::script::Layout;
use crate::executor::Executor;

/// The key used when the buildspec gives none.
pub const DEFAULT_KEY: &str = "default";

/// Stands for the build's `$CODEBUILD_SRC_DIR` at the start of a stored path.
const SRC_DIR_TOKEN: &str = "$CODEBUILD_SRC_DIR";

/// `path` (relative to `/`) with a leading source directory replaced by [`SRC_DIR_TOKEN`].
fn portable(path: &str, src_dir: &str) -> String {
    match path.strip_prefix(src_dir.trim_matches('/')) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{SRC_DIR_TOKEN}{rest}"),
        _ => path.to_owned(),
    }
}

/// The inverse of [`portable`] for a build whose source directory is `src_dir`.
fn localize(path: &str, src_dir: &str) -> String {
    match path.strip_prefix(SRC_DIR_TOKEN) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", src_dir.trim_matches('/'))
        }
        _ => path.to_owned(),
    }
}

/// The on-disk file for `key`.
pub fn entry_path(root: &Path, project: &str, key: &str) -> PathBuf {
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    root.join(sanitize(project))
        .join(format!("{safe}-{:016x}.tar", fnv1a(key.as_bytes())))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The first entry that exists for `keys`, tried in order (exact match, B46 decision).
pub fn lookup(root: &Path, project: &str, keys: &[String]) -> Option<PathBuf> {
    keys.iter()
        .map(|key| entry_path(root, project, key))
        .find(|path| path.is_file())
}

/// The directory a cache pattern stands for, absolute inside the container.
pub fn pattern_dir(pattern: &str, src_dir: &str) -> Option<String> {
    let static_part: Vec<&str> = pattern
        .split('/')
        .take_while(|part| !part.contains(['*', '?', '[', '{']))
        .collect();
    let joined = static_part.join("/");
    let joined = joined.trim_end_matches('/');
    if joined.split('/').any(|part| part == "..") {
        return None;
    }
    let absolute = if pattern.starts_with('/') {
        format!("/{}", joined.trim_start_matches('/'))
    } else if joined.is_empty() {
        src_dir.to_owned()
    } else {
        format!("{src_dir}/{joined}")
    };
    (absolute != "/").then_some(absolute)
}

/// The tar to unpack at `/` that restores `entry` in a build whose source directory is
/// `src_dir`.
pub fn restore_archive(entry: &Path, src_dir: &str) -> Result<Vec<u8>, StagingError> {
    let pack = |source| StagingError::Pack {
        path: entry.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(fs_err::File::open(entry).map_err(pack)?);
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for item in archive.entries().map_err(pack)? {
        let mut item = item.map_err(pack)?;
        let mut header = item.header().clone();
        let name = localize(&item.path().map_err(pack)?.to_string_lossy(), src_dir);
        let kind = header.entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = item.link_name().map_err(pack)?.unwrap_or_default();
            let target = target.to_string_lossy();
            // A hard link names another entry of the archive; a symlink is left as written.
            let target = if kind.is_hard_link() {
                localize(&target, src_dir)
            } else {
                target.into_owned()
            };
            builder
                .append_link(&mut header, &name, target)
                .map_err(pack)?;
        } else {
            builder
                .append_data(&mut header, &name, &mut item)
                .map_err(pack)?;
        }
    }
    builder.into_inner().map_err(pack)
}

/// Downloads the cached directories from the container into a new entry for `key`.
/// Returns `Ok(false)` when an explicit key's entry already exists and is kept as it is.
pub async fn save<E: Executor>(
    executor: &E,
    container_id: &str,
    entry: &Path,
    directories: &[String],
    src_dir: &str,
    keep_existing: bool,
) -> Result<bool, StagingError> {
    if keep_existing && entry.is_file() {
        return Ok(false);
    }
    let pack = |source| StagingError::Pack {
        path: entry.to_owned(),
        source,
    };
    let parent = entry.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent).map_err(pack)?;
    let temp = tempfile::NamedTempFile::new_in(parent).map_err(pack)?;
    let mut builder = tar::Builder::new(temp.reopen().map_err(pack)?);
    builder.follow_symlinks(false);
    for directory in directories {
        let stream = executor.download(container_id, directory).boxed();
        // A cached path the build never created is simply not cached.
        let Ok(spooled) = staging::spool(directory, stream).await else {
            continue;
        };
        let parent_dir = Path::new(directory).parent().map_or_else(String::new, |p| {
            p.to_string_lossy().trim_start_matches('/').to_owned()
        });
        let file = fs_err::File::open(spooled.path()).map_err(pack)?;
        let mut archive = tar::Archive::new(file);
        for entry in archive.entries().map_err(pack)? {
            let mut entry = entry.map_err(pack)?;
            let mut header = entry.header().clone();
            let name = entry.path().map_err(pack)?.to_string_lossy().into_owned();
            let full = if parent_dir.is_empty() {
                name
            } else {
                format!("{parent_dir}/{name}")
            };
            let full = portable(&full, src_dir);
            if header.entry_type().is_symlink() || header.entry_type().is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(pack)?
                    .unwrap_or_default()
                    .into_owned();
                let target = if header.entry_type().is_hard_link() {
                    portable(&target.to_string_lossy(), src_dir).into()
                } else {
                    target
                };
                builder
                    .append_link(&mut header, &full, target)
                    .map_err(pack)?;
            } else {
                builder
                    .append_data(&mut header, &full, &mut entry)
                    .map_err(pack)?;
            }
        }
    }
    builder.into_inner().map_err(pack)?;
    temp.persist(entry).map_err(|error| pack(error.error))?;
    Ok(true)
}

/// The cache entry to restore before `install`: the first of `key` and `fallback-keys` that
/// exists (B46), or nothing when caching is off or the build only saves.
pub(super) fn restore_entry(request: &BuildRequest, env: &[(String, String)]) -> Option<PathBuf> {
    let cache = request.buildspec.cache.as_ref()?;
    let root = request.cache_root.as_ref()?;
    if cache.action == crate::buildspec::CacheAction::Save {
        return None;
    }
    let mut keys: Vec<String> = cache
        .key
        .iter()
        .map(|k| environment::expand(k, env))
        .collect();
    keys.extend(
        cache
            .fallback_keys
            .iter()
            .map(|k| environment::expand(k, env)),
    );
    if keys.is_empty() {
        keys.push(DEFAULT_KEY.to_owned());
    }
    lookup(root, &request.identity.project, &keys)
}

/// Saves `cache.paths` after the build, unless the buildspec only restores (B46).
pub(super) async fn save_after_build<E: Executor>(
    executor: &E,
    container_id: &str,
    request: &BuildRequest,
    cache: &crate::buildspec::Cache,
    root: &std::path::Path,
    layout: &Layout,
) {
    if cache.action == crate::buildspec::CacheAction::Restore {
        return;
    }
    let env = environment::assemble(
        &request.buildspec,
        &request.identity,
        &request.image,
        &layout.src_dir,
        &[],
        &request.layers,
        false,
    );
    let key = cache
        .key
        .as_deref()
        .map_or_else(|| DEFAULT_KEY.to_owned(), |k| environment::expand(k, &env));
    let entry = entry_path(root, &request.identity.project, &key);
    let directories: Vec<String> = cache
        .paths
        .iter()
        .filter_map(|p| pattern_dir(p, &layout.src_dir))
        .collect();
    match save(
        executor,
        container_id,
        &entry,
        &directories,
        &layout.src_dir,
        cache.key.is_some(),
    )
    .await
    {
        Ok(true) => info!(key, "cache saved"),
        Ok(false) => info!(key, "cache entry exists and is kept"),
        Err(error) => warn!(key, error = %error, "could not save the cache"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b46_pattern_directories() {
        let src = "/codebuild/output/src1/src";
        assert_eq!(
            pattern_dir("/root/.m2/**/*", src).as_deref(),
            Some("/root/.m2")
        );
        assert_eq!(
            pattern_dir("node_modules/**/*", src).as_deref(),
            Some("/codebuild/output/src1/src/node_modules")
        );
        assert_eq!(pattern_dir("../x/*", src), None);
        assert_eq!(pattern_dir("/*", src), None);
    }

    #[test]
    fn b46_source_paths_are_stored_relative_to_the_source_dir() {
        let old = "/codebuild/output/src111/src";
        let new = "/codebuild/output/src222/src";
        let stored = portable("codebuild/output/src111/src/deps/lib.txt", old);
        assert_eq!(stored, "$CODEBUILD_SRC_DIR/deps/lib.txt");
        assert_eq!(
            localize(&stored, new),
            "codebuild/output/src222/src/deps/lib.txt"
        );
        assert_eq!(
            portable("codebuild/output/src1110/src/x", old),
            "codebuild/output/src1110/src/x"
        );
        assert_eq!(portable("root/.m2/x", old), "root/.m2/x");
        assert_eq!(localize("root/.m2/x", new), "root/.m2/x");
    }

    #[test]
    fn b46_fallback_keys_exact_match_in_order() {
        let root = tempfile::tempdir().unwrap();
        let second = entry_path(root.path(), "p", "second");
        fs_err::create_dir_all(second.parent().unwrap()).unwrap();
        fs_err::write(&second, b"").unwrap();
        let keys = vec!["first".to_owned(), "sec".to_owned(), "second".to_owned()];
        assert_eq!(lookup(root.path(), "p", &keys), Some(second));
    }
}
