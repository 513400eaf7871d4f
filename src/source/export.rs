//! Writes the tree of one commit into a directory: the `CODE_ZIP` source artifact (P17).
//!
//! No `.git` is written. The executable bit and symlinks are kept, and submodules become empty
//! directories, as `git checkout` leaves them. Every entry name is checked before anything is
//! written, and nothing is ever opened through an existing path (directories with `create_dir`,
//! files with `create_new`), so a crafted tree cannot write outside the destination. Synchronous:
//! `git.rs` calls it inside `spawn_blocking`. It uses `std::fs` directly because each failure is
//! wrapped in [`SourceError::Export`], which already names the path.

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use super::SourceError;

/// Tree entry modes git writes (see `git help format-patch`, "mode").
const MODE_TREE: i32 = 0o040_000;
const MODE_EXECUTABLE: i32 = 0o100_755;
const MODE_SYMLINK: i32 = 0o120_000;
const MODE_SUBMODULE: i32 = 0o160_000;

/// Writes the tree `tree_id` into `dest`, which must be missing or empty.
pub(super) fn export_tree(repo: &Repository, tree_id: Oid, dest: &Path) -> Result<(), SourceError> {
    prepare_destination(dest)?;
    let mut pending = vec![(tree_id, String::new())];
    while let Some((tree_id, prefix)) = pending.pop() {
        let tree = repo
            .find_tree(tree_id)
            .map_err(|source| read_error(tree_id, source))?;
        for entry in &tree {
            let name = entry_name(entry.name_bytes(), &prefix)?;
            let tree_path = format!("{prefix}{}", name.to_string_lossy());
            let target = dest.join(&tree_path);
            match entry.filemode() {
                MODE_TREE => {
                    create_dir(&target)?;
                    pending.push((entry.id(), format!("{tree_path}/")));
                }
                MODE_SUBMODULE => create_dir(&target)?,
                MODE_SYMLINK => {
                    let blob = find_blob(repo, entry.id())?;
                    std::os::unix::fs::symlink(OsStr::from_bytes(blob.content()), &target)
                        .map_err(|source| export_error(&target, source))?;
                }
                mode => {
                    let blob = find_blob(repo, entry.id())?;
                    let permissions = if mode == MODE_EXECUTABLE {
                        0o755
                    } else {
                        0o644
                    };
                    write_file(&target, blob.content(), permissions)?;
                }
            }
        }
    }
    Ok(())
}

/// Checks one tree entry name: a single, ordinary path component that is not `.git`.
pub(super) fn entry_name<'a>(name: &'a [u8], prefix: &str) -> Result<&'a OsStr, SourceError> {
    let path = || format!("{prefix}{}", String::from_utf8_lossy(name));
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(SourceError::PathEscapes { path: path() });
    }
    if name.eq_ignore_ascii_case(b".git") {
        return Err(SourceError::GitMetadata { path: path() });
    }
    Ok(OsStr::from_bytes(name))
}

fn prepare_destination(dest: &Path) -> Result<(), SourceError> {
    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(SourceError::DestinationNotEmpty {
                    path: dest.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .create(dest)
            .map_err(|source| export_error(dest, source)),
        Err(source) => Err(export_error(dest, source)),
    }
}

fn create_dir(path: &Path) -> Result<(), SourceError> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|source| export_error(path, source))
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), SourceError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| export_error(path, source))?;
    file.write_all(content)
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(mode)))
        .map_err(|source| export_error(path, source))
}

fn find_blob(repo: &Repository, id: Oid) -> Result<git2::Blob<'_>, SourceError> {
    repo.find_blob(id).map_err(|source| read_error(id, source))
}

fn read_error(id: Oid, source: git2::Error) -> SourceError {
    SourceError::ReadObject {
        object: id.to_string(),
        source,
    }
}

fn export_error(path: &Path, source: std::io::Error) -> SourceError {
    SourceError::Export {
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_that_escape_are_refused() {
        for name in [&b".."[..], b".", b"", b"a/b", b"../x", b"nul\0"] {
            let error = entry_name(name, "dir/").expect_err("refused");
            assert!(
                matches!(&error, SourceError::PathEscapes { path } if path.starts_with("dir/")),
                "{error}"
            );
        }
        for name in [&b".git"[..], b".GIT"] {
            let error = entry_name(name, "").expect_err("refused");
            assert!(matches!(error, SourceError::GitMetadata { .. }), "{error}");
        }
        assert_eq!(entry_name(b"..ok", "").expect("plain"), OsStr::new("..ok"));
        assert_eq!(
            entry_name(b".github", "").expect("plain"),
            OsStr::new(".github")
        );
    }

    #[test]
    fn a_non_empty_destination_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::write(dir.path().join("stale"), "x").expect("write");
        let error = prepare_destination(dir.path()).expect_err("refused");
        assert!(matches!(error, SourceError::DestinationNotEmpty { .. }));
        prepare_destination(&dir.path().join("new/nested")).expect("created");
        prepare_destination(&dir.path().join("new/nested")).expect("empty is fine");
    }
}
