//! Collects one artifact block from a finished build's source tree into a ZIP file, as the
//! `UPLOAD_ARTIFACTS` phase does (B36–B42, D-6, D-7, D-12), and unpacks such a ZIP ([`extract_zip`]).
//! Patterns resolve against the source root or `base-directory`, never a working directory; nothing
//! outside the source root is read and nothing outside the destination is written. Naming, uploading
//! and encrypting the ZIP are the caller's business.

use std::collections::{BTreeMap, HashMap};
use std::fs::Permissions;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::buildspec::ArtifactSpec;

/// Files this close to 4 GiB get ZIP64 headers, leaving room for deflate's worst-case growth.
const LARGE_FILE_BYTES: u64 = 0xFFFF_FFFF - 0x0400_0000;
/// Longest symlink target read back from a ZIP (Linux `PATH_MAX`).
const MAX_LINK_TARGET: u64 = 4096;
/// How many symlinks one target may pass through before it counts as a loop (Linux `MAXSYMLINKS`).
const MAX_LINK_HOPS: u32 = 40;

/// What to collect, from where, and where to write the ZIP.
pub(crate) struct CollectRequest<'a> {
    /// Host directory holding a copy of the build's `$CODEBUILD_SRC_DIR`.
    pub src_root: &'a Path,
    /// `$CODEBUILD_SRC_DIR` as the build saw it, e.g. `/codebuild/output/src123/src`; absolute
    /// paths inside it are accepted in `base-directory` and `files`.
    pub container_src_dir: &'a str,
    /// The artifact block.
    pub spec: &'a ArtifactSpec,
    /// Expands `$VARS` and `${VARS}` in `base-directory` with the build's environment (B39).
    pub expand: &'a dyn Fn(&str) -> String,
    /// Where the ZIP goes; it appears there complete or not at all.
    pub out_zip: &'a Path,
}

/// What a successful [`collect`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Collected {
    /// Entry names in the ZIP, sorted, which is also the order they were written in.
    pub files: Vec<String>,
    /// Size of the ZIP file.
    pub bytes: u64,
    /// Matched paths (relative to the source root) left out, and why; the caller logs each as
    /// `Skipping invalid file path <path>` (B36).
    pub skipped: Vec<(String, String)>,
}

/// Why an artifact could not be collected or extracted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectError {
    /// Nothing matched (B37, D-7); `skipped` lists matches that were refused.
    #[error("no matching artifact paths found")]
    NoMatchingPaths { skipped: Vec<(String, String)> },
    /// `base-directory` (after expansion) names no directory inside the source root.
    #[error("no matching base directory path found for {base_directory}")]
    NoMatchingBaseDirectory { base_directory: String },
    /// A pattern or base directory reaches outside the source directory (B36).
    #[error("artifact path {pattern} escapes the source directory")]
    PathEscapes { pattern: String },
    /// A pattern is not a valid glob.
    #[error("parse artifact pattern {pattern}")]
    InvalidPattern {
        pattern: String,
        source: globset::Error,
    },
    /// Two matched files would get the same entry name (B40); paths relative to the source root.
    #[error("collect artifact: entry {name} would hold both {first} and {second}")]
    NameCollision {
        name: String,
        first: String,
        second: String,
    },
    /// Reading the source tree or writing extracted files failed.
    #[error("access artifact files")]
    Io(#[source] io::Error),
    /// Writing or reading a ZIP failed.
    #[error("process artifact zip {path}")]
    Zip { path: PathBuf, source: ZipError },
    /// A ZIP entry, or the symlink it is, would land outside the destination (zip-slip).
    #[error("extract artifact: entry {name} escapes the destination directory")]
    ZipSlip { name: String },
    /// [`extract_zip`] only unpacks into an empty or missing directory.
    #[error("extract artifact into {path}: the directory is not empty")]
    DestinationNotEmpty { path: PathBuf },
}

impl CollectError {
    /// Wraps a ZIP error for the ZIP at `path`.
    fn zip(path: &Path) -> impl Fn(ZipError) -> Self + '_ {
        |source| Self::Zip {
            path: path.to_owned(),
            source,
        }
    }

    fn invalid(pattern: String) -> impl FnOnce(globset::Error) -> Self {
        |source| Self::InvalidPattern { pattern, source }
    }

    /// Whether the build's author caused it, so the phase fails with `CLIENT_ERROR` (B37, B40).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "callers still match on variants")
    )]
    pub(crate) fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::NoMatchingPaths { .. }
                | Self::NoMatchingBaseDirectory { .. }
                | Self::PathEscapes { .. }
                | Self::InvalidPattern { .. }
                | Self::NameCollision { .. }
        )
    }
}

/// How one matched path goes into the ZIP.
enum Kind {
    /// Its content (a symlink is followed), with this Unix mode.
    File(u32),
    /// A symlink entry with this target (B42).
    Symlink(String),
    /// Left out, for this reason.
    Skip(&'static str),
}

/// Compiled `files` or `exclude-paths`: relative patterns match below the base directory, those
/// written as absolute paths inside the source dir match below the source root.
struct Patterns(GlobSet, GlobSet);

impl Patterns {
    fn compile(patterns: &[String], container_src_dir: &str) -> Result<Self, CollectError> {
        let mut sets = [GlobSetBuilder::new(), GlobSetBuilder::new()];
        for pattern in patterns {
            let (absolute, rel) = anchor(pattern, container_src_dir)?;
            sets[usize::from(absolute)].add(glob(&rel)?);
        }
        let [base, root] = sets.map(|set| {
            set.build()
                .map_err(CollectError::invalid(patterns.join(", ")))
        });
        Ok(Self(base?, root?))
    }

    fn is_match(&self, below_base: &Path, below_root: &Path) -> bool {
        self.0.is_match(below_base) || self.1.is_match(below_root)
    }
}

/// Collects the artifact `req.spec` describes into `req.out_zip`.
pub(crate) fn collect(req: &CollectRequest) -> Result<Collected, CollectError> {
    let root = fs_err::canonicalize(req.src_root).map_err(CollectError::Io)?;
    let include = Patterns::compile(&req.spec.files, req.container_src_dir)?;
    let exclude = Patterns::compile(&req.spec.exclude_paths, req.container_src_dir)?;
    // Entry name to (host path, path shown in messages, kind).
    let mut entries = BTreeMap::<String, (PathBuf, String, Kind)>::new();
    let mut skipped = Vec::new();
    for base in base_directories(req, &root)? {
        let base = root.join(base);
        for item in WalkDir::new(&base).min_depth(1).sort_by_file_name() {
            let item = item.map_err(|err| CollectError::Io(io::Error::other(err)))?;
            let path = item.path();
            let (Ok(below_base), Ok(below_root)) =
                (path.strip_prefix(&base), path.strip_prefix(&root))
            else {
                continue;
            };
            if item.file_type().is_dir()
                || !include.is_match(below_base, below_root)
                || exclude.is_match(below_base, below_root)
            {
                continue;
            }
            let shown = below_root.to_string_lossy().into_owned();
            let Some(full_name) = below_base.to_str() else {
                skipped.push((shown, "the file name is not valid utf-8".to_owned()));
                continue;
            };
            let name = match full_name.rsplit_once('/') {
                Some((_, file_name)) if req.spec.discard_paths => file_name,
                _ => full_name,
            };
            let kind = classify(&item, &root, name, req.spec).map_err(CollectError::Io)?;
            if let Kind::Skip(reason) = kind {
                skipped.push((shown, reason.to_owned()));
            } else if let Some((_, first, _)) = entries.get(name) {
                let (name, first) = (name.to_owned(), first.clone());
                return Err(CollectError::NameCollision {
                    name,
                    first,
                    second: shown,
                });
            } else {
                entries.insert(name.to_owned(), (path.to_owned(), shown, kind));
            }
        }
    }
    if entries.is_empty() {
        return Err(CollectError::NoMatchingPaths { skipped });
    }
    let bytes = write_zip(req.out_zip, &entries).map_err(CollectError::zip(req.out_zip))?;
    let files = entries.into_keys().collect();
    Ok(Collected {
        files,
        bytes,
        skipped,
    })
}

/// The directories, relative to `root`, that `base-directory` names (B39); `""` is the root.
/// A symlink counts when it leads to a directory inside the root.
fn base_directories(req: &CollectRequest, root: &Path) -> Result<Vec<String>, CollectError> {
    let Some(raw) = &req.spec.base_directory else {
        return Ok(vec![String::new()]);
    };
    let expanded = (req.expand)(raw);
    if expanded.trim().is_empty() {
        // An unset variable must not silently widen the artifact to the whole source root.
        let base_directory = raw.clone();
        return Err(CollectError::NoMatchingBaseDirectory { base_directory });
    }
    let (_, rel) = anchor(&expanded, req.container_src_dir)?;
    if rel.is_empty() {
        return Ok(vec![rel]);
    }
    let matcher = glob(&rel)?.compile_matcher();
    let depth = if rel.contains("**") {
        usize::MAX
    } else {
        rel.split('/').count()
    };
    let mut found = Vec::new();
    let walk = WalkDir::new(root).min_depth(1).max_depth(depth);
    for item in walk.sort_by_file_name() {
        let item = item.map_err(|err| CollectError::Io(io::Error::other(err)))?;
        let below_root = item.path().strip_prefix(root).unwrap_or(item.path());
        let resolved = || fs_err::canonicalize(item.path());
        if matcher.is_match(below_root)
            && resolved().is_ok_and(|real| real.starts_with(root) && real.is_dir())
        {
            // A name that is not UTF-8 cannot match a UTF-8 glob anyway.
            found.extend(below_root.to_str().map(str::to_owned));
        }
    }
    let base_directory = expanded;
    if found.is_empty() {
        Err(CollectError::NoMatchingBaseDirectory { base_directory })
    } else {
        Ok(found)
    }
}

/// Decides how a matched non-directory at entry `name` goes into the ZIP (B36, B42).
fn classify(
    item: &walkdir::DirEntry,
    root: &Path,
    name: &str,
    spec: &ArtifactSpec,
) -> io::Result<Kind> {
    if item.file_type().is_file() {
        return Ok(Kind::File(item.metadata()?.permissions().mode()));
    }
    if !item.file_type().is_symlink() {
        return Ok(Kind::Skip("not a regular file"));
    }
    let Ok(real) = fs_err::canonicalize(item.path()) else {
        return Ok(Kind::Skip("the symlink's target does not exist"));
    };
    if !real.starts_with(root) {
        return Ok(Kind::Skip("the symlink leads outside the source directory"));
    }
    if spec.enable_symlinks && !spec.discard_paths {
        // Kept only when it points inside the artifact itself, so that it still resolves there.
        let parent = name.rsplit_once('/').map_or("", |(parent, _)| parent);
        let target = fs_err::read_link(item.path())?;
        let target = target.to_str().filter(|target| !target.starts_with('/'));
        if let Some(target) =
            target.filter(|target| normalize(&format!("{parent}/{target}")).is_some())
        {
            return Ok(Kind::Symlink(target.to_owned()));
        }
    }
    let metadata = fs_err::metadata(&real)?;
    if !metadata.is_file() {
        return Ok(Kind::Skip(
            "a symlink to a directory cannot be stored as a file",
        ));
    }
    Ok(Kind::File(metadata.permissions().mode()))
}

/// Writes `entries` to a temporary file beside `out_zip`, then renames it into place.
fn write_zip(
    out_zip: &Path,
    entries: &BTreeMap<String, (PathBuf, String, Kind)>,
) -> Result<u64, ZipError> {
    let dir = out_zip.parent().filter(|dir| !dir.as_os_str().is_empty());
    let temp = tempfile::Builder::new()
        .prefix(".artifact-")
        .suffix(".zip.tmp")
        .tempfile_in(dir.unwrap_or(Path::new(".")))?;
    let mut zip = ZipWriter::new(BufWriter::new(temp));
    for (name, (path, _, kind)) in entries {
        // No modification time is set, so every entry gets zip's fixed 1980-01-01 and one tree
        // always gives the same bytes.
        let options = SimpleFileOptions::default();
        if let Kind::Symlink(target) = kind {
            zip.add_symlink(name, target, options)?;
        } else if let Kind::File(mode) = kind {
            let mut file = fs_err::File::open(path)?;
            let large = file.metadata()?.len() >= LARGE_FILE_BYTES;
            let method = CompressionMethod::Deflated;
            let options = options.compression_method(method).unix_permissions(*mode);
            zip.start_file(name, options.large_file(large))?;
            io::copy(&mut file, &mut zip)?;
        }
    }
    let buffered = zip.finish()?;
    let temp = buffered
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    let file = temp.persist(out_zip).map_err(|err| err.error)?;
    Ok(file.metadata()?.len())
}

/// Splits a pattern or base directory into (was absolute, path relative to its anchor), refusing
/// anything outside the source directory or above its anchor.
fn anchor(text: &str, container_src_dir: &str) -> Result<(bool, String), CollectError> {
    let anchored = match text.strip_prefix('/') {
        None => normalize(text).map(|parts| (false, parts.join("/"))),
        Some(absolute) => normalize(absolute)
            .zip(normalize(container_src_dir))
            .and_then(|(parts, src_dir)| Some((true, parts.strip_prefix(&src_dir[..])?.join("/")))),
    };
    anchored.ok_or_else(|| CollectError::PathEscapes {
        pattern: text.to_owned(),
    })
}

/// Lexically normalizes a `/`-separated path, dropping `.` and empty parts and folding `..`;
/// `None` when a `..` climbs above the start.
fn normalize(path: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => _ = parts.pop()?,
            part => parts.push(part),
        }
    }
    Some(parts)
}

/// Builds a glob where `*` stays within one directory and `**` crosses them (B38).
fn glob(pattern: &str) -> Result<globset::Glob, CollectError> {
    let mut builder = GlobBuilder::new(pattern);
    builder.literal_separator(true).backslash_escape(true);
    builder
        .build()
        .map_err(CollectError::invalid(pattern.to_owned()))
}

/// One ZIP entry to extract: index, safe relative name, symlink target, Unix mode.
type Planned = (usize, String, Option<String>, Option<u32>);

/// Unpacks an artifact ZIP into `dest` (empty or missing), restoring Unix modes and symlinks
/// (D-12, B42), and returns the names of the files and symlinks it created, sorted.
///
/// Every entry is checked before anything is written: a name that is absolute or has a `..`, an
/// entry beneath a symlink entry, or a symlink that resolves outside `dest` is refused. Directory
/// entries are not needed (a file's directories are created for it) and are ignored.
pub(crate) fn extract_zip(zip: &Path, dest: &Path) -> Result<Vec<String>, CollectError> {
    let file = fs_err::File::open(zip).map_err(CollectError::Io)?;
    let mut archive = ZipArchive::new(BufReader::new(file)).map_err(CollectError::zip(zip))?;
    let mut plan = plan_extraction(&mut archive, zip)?;
    if fs_err::read_dir(dest).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(CollectError::DestinationNotEmpty {
            path: dest.to_owned(),
        });
    }
    fs_err::create_dir_all(dest).map_err(CollectError::Io)?;
    // Symlinks last, so that nothing is ever written through one.
    plan.sort_by_key(|(_, _, link, _)| link.is_some());
    for (index, name, link, mode) in &plan {
        let path = dest.join(name);
        fs_err::create_dir_all(path.parent().unwrap_or(dest)).map_err(CollectError::Io)?;
        if let Some(target) = link {
            fs_err::os::unix::fs::symlink(target, &path).map_err(CollectError::Io)?;
        } else {
            let mut entry = archive.by_index(*index).map_err(CollectError::zip(zip))?;
            write_file(&mut entry, &path, *mode).map_err(CollectError::Io)?;
        }
    }
    let mut names: Vec<_> = plan.into_iter().map(|(_, name, ..)| name).collect();
    names.sort();
    Ok(names)
}

/// Lists the entries of the ZIP at `zip` except directories, refusing any that would escape.
fn plan_extraction<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    zip: &Path,
) -> Result<Vec<Planned>, CollectError> {
    let mut plan = Vec::new();
    let mut links = HashMap::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(CollectError::zip(zip))?;
        let raw = entry.name().to_owned();
        let parts = normalize(&raw).filter(|parts| !parts.is_empty() && !raw.starts_with('/'));
        let Some(parts) = parts.filter(|_| !raw.split('/').any(|part| part == "..")) else {
            return Err(CollectError::ZipSlip { name: raw });
        };
        let (name, mut link) = (parts.join("/"), None);
        if entry.is_symlink() {
            let mut target = String::new();
            let mut limited = entry.by_ref().take(MAX_LINK_TARGET);
            let read = limited.read_to_string(&mut target);
            read.map_err(|err| CollectError::zip(zip)(err.into()))?;
            links.insert(name.clone(), target.clone());
            link = Some(target);
        }
        if !entry.is_dir() {
            plan.push((index, name, link, entry.unix_mode()));
        }
    }
    for (_, name, link, _) in &plan {
        let beneath = |other: &String| name.starts_with(&format!("{other}/"));
        let beneath_link = links.keys().any(beneath);
        let parent = name.rsplit_once('/').map_or(Vec::new(), |(parent, _)| {
            parent.split('/').map(str::to_owned).collect()
        });
        let mut hops = MAX_LINK_HOPS;
        let resolves = |target| resolve(parent, target, &links, &mut hops).is_some();
        if beneath_link || !link.as_deref().is_none_or(resolves) {
            return Err(CollectError::ZipSlip { name: name.clone() });
        }
    }
    Ok(plan)
}

/// Resolves `target` from directory `at` as the kernel would inside the destination, following the
/// archive's own symlinks; `None` when it leaves the destination or loops.
fn resolve(
    mut at: Vec<String>,
    target: &str,
    links: &HashMap<String, String>,
    hops: &mut u32,
) -> Option<Vec<String>> {
    if target.starts_with('/') {
        return None;
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => _ = at.pop()?,
            part => {
                at.push(part.to_owned());
                if let Some(next) = links.get(&at.join("/")) {
                    *hops = hops.checked_sub(1)?;
                    at.pop();
                    at = resolve(at, next, links, hops)?;
                }
            }
        }
    }
    Some(at)
}

/// Streams one ZIP entry into a new file and applies its mode.
fn write_file(entry: &mut impl Read, path: &Path, mode: Option<u32>) -> io::Result<()> {
    let mut file = fs_err::File::create_new(path)?;
    io::copy(entry, &mut file)?;
    file.flush()?;
    if let Some(mode) = mode {
        file.set_permissions(Permissions::from_mode(mode & 0o777))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use test_case::test_case;

    use super::*;

    const SRC_DIR: &str = "/codebuild/output/src123/src";

    /// A source tree with the given files (parent directories are created).
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, content).unwrap();
        }
        dir
    }

    fn spec(files: &[&str]) -> ArtifactSpec {
        ArtifactSpec {
            files: files.iter().map(|file| (*file).to_owned()).collect(),
            ..ArtifactSpec::default()
        }
    }

    fn expand(text: &str) -> String {
        text.replace("${CODEBUILD_SRC_DIR}", SRC_DIR)
            .replace("$CODEBUILD_SRC_DIR", SRC_DIR)
            .replace("$OUT", "out")
            .replace("$ELSEWHERE", "/tmp")
            .replace("$UNSET", "")
    }

    /// Collects `spec` from `root` into a fresh directory, returning the result and the ZIP path.
    fn run(
        root: &Path,
        spec: &ArtifactSpec,
    ) -> (Result<Collected, CollectError>, tempfile::TempDir) {
        let out = tempfile::tempdir().unwrap();
        let request = CollectRequest {
            src_root: root,
            container_src_dir: SRC_DIR,
            spec,
            expand: &expand,
            out_zip: &out.path().join("artifact.zip"),
        };
        (collect(&request), out)
    }

    #[track_caller]
    fn collected(root: &Path, spec: &ArtifactSpec) -> (Collected, Vec<(String, u32, String)>) {
        let (result, out) = run(root, spec);
        let collected = result.unwrap();
        let entries = read_zip(&out.path().join("artifact.zip"));
        assert_eq!(
            collected.files,
            entries
                .iter()
                .map(|(name, ..)| name.clone())
                .collect::<Vec<_>>()
        );
        (collected, entries)
    }

    /// Every entry as (name, unix mode, content), in ZIP order.
    fn read_zip(path: &Path) -> Vec<(String, u32, String)> {
        let mut archive = ZipArchive::new(fs_err::File::open(path).unwrap()).unwrap();
        (0..archive.len())
            .map(|index| {
                let mut entry = archive.by_index(index).unwrap();
                let mut content = String::new();
                entry.read_to_string(&mut content).unwrap();
                (entry.name().to_owned(), entry.unix_mode().unwrap(), content)
            })
            .collect()
    }

    fn names(entries: &[(String, u32, String)]) -> Vec<&str> {
        entries.iter().map(|(name, ..)| name.as_str()).collect()
    }

    #[test]
    fn e9_base_directory_discard_paths_exclude() {
        let root = tree(&[
            ("out/a/1.txt", "one"),
            ("out/b/2.txt", "two"),
            ("out/b/.hidden", "hidden"),
            ("out/b/skip.log", "log"),
        ]);
        let spec = ArtifactSpec {
            base_directory: Some("out".into()),
            exclude_paths: vec!["**/*.log".into()],
            discard_paths: true,
            ..spec(&["**/*"])
        };
        let (collected, entries) = collected(root.path(), &spec);
        let contents: Vec<_> = entries
            .iter()
            .map(|(name, _, content)| (name.as_str(), content.as_str()))
            .collect();
        assert_eq!(
            contents,
            [(".hidden", "hidden"), ("1.txt", "one"), ("2.txt", "two")]
        );
        assert!(collected.skipped.is_empty());
        assert!(collected.bytes > 0);
    }

    #[test]
    fn b37_no_match_is_client_error() {
        let root = tree(&[("out/a/1.txt", "one")]);
        let (result, out) = run(root.path(), &spec(&["missing.txt"]));
        let err = result.unwrap_err();
        assert!(
            matches!(err, CollectError::NoMatchingPaths { .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "no matching artifact paths found");
        assert!(err.is_client_error());
        // No ZIP, and no temporary file left behind.
        assert_eq!(fs_err::read_dir(out.path()).unwrap().count(), 0);
    }

    #[test]
    fn b36_resolved_against_src_root_only() {
        let root = tree(&[("app.jar", "jar"), ("sub/app.jar", "nested")]);
        let (_, entries) = collected(root.path(), &spec(&["app.jar"]));
        assert_eq!(
            entries,
            [("app.jar".to_owned(), 0o100_644, "jar".to_owned())]
        );
    }

    #[test_case(&["target/app.jar"], &["target/app.jar"] ; "plain path is one file")]
    #[test_case(&["dir/*"], &["dir/.dot", "dir/a.txt"] ; "star is direct children")]
    #[test_case(&["dir/**/*"], &["dir/.dot", "dir/a.txt", "dir/sub/b.txt", "dir/sub/deep/c.txt"] ; "double star any depth")]
    #[test_case(&["*.txt"], &["top.txt"] ; "star does not cross slash")]
    #[test_case(&["**/*.txt"], &["dir/a.txt", "dir/sub/b.txt", "dir/sub/deep/c.txt", "top.txt"] ; "double star suffix")]
    #[test_case(&["./dir/sub/../a.txt", "dir/a.txt"] , &["dir/a.txt"] ; "normalized and deduplicated")]
    fn b38_pattern_meanings(files: &[&str], expected: &[&str]) {
        let root = tree(&[
            ("target/app.jar", "jar"),
            ("target/other.jar", "other"),
            ("dir/a.txt", "a"),
            ("dir/.dot", "dot"),
            ("dir/sub/b.txt", "b"),
            ("dir/sub/deep/c.txt", "c"),
            ("top.txt", "top"),
        ]);
        let (_, entries) = collected(root.path(), &spec(files));
        assert_eq!(names(&entries), expected);
    }

    #[test]
    fn b38_double_star_matches_dotfiles() {
        let root = tree(&[
            (".env", "e"),
            (".git/config", "c"),
            ("a/.b/c", "abc"),
            ("x", "x"),
        ]);
        let (_, entries) = collected(root.path(), &spec(&["**/*"]));
        assert_eq!(names(&entries), [".env", ".git/config", "a/.b/c", "x"]);
    }

    #[test]
    fn b38_directories_are_never_entries() {
        let root = tree(&[("dir/sub/b.txt", "b")]);
        let (result, _out) = run(root.path(), &spec(&["dir", "dir/sub"]));
        assert!(matches!(result, Err(CollectError::NoMatchingPaths { .. })));
        let (_, entries) = collected(root.path(), &spec(&["dir/*", "dir/sub/*"]));
        assert_eq!(names(&entries), ["dir/sub/b.txt"]);
    }

    #[test]
    fn b39_base_directory_glob() {
        let root = tree(&[
            ("my-build-1/a.txt", "1"),
            ("my-build-2/lib/b.txt", "2"),
            ("my-build.log", "not a directory"),
            ("other/c.txt", "3"),
        ]);
        let spec = ArtifactSpec {
            base_directory: Some("my-build*".into()),
            ..spec(&["**/*"])
        };
        let (_, entries) = collected(root.path(), &spec);
        let contents: Vec<_> = entries
            .iter()
            .map(|(name, _, content)| (name.as_str(), content.as_str()))
            .collect();
        assert_eq!(contents, [("a.txt", "1"), ("lib/b.txt", "2")]);
    }

    #[test_case("$CODEBUILD_SRC_DIR/out" ; "absolute after expansion")]
    #[test_case("${CODEBUILD_SRC_DIR}/./out/" ; "braces and dots")]
    #[test_case("$OUT" ; "relative after expansion")]
    fn b39_base_directory_expanded(base_directory: &str) {
        let root = tree(&[("out/bin/app", "app"), ("readme", "r")]);
        let spec = ArtifactSpec {
            base_directory: Some(base_directory.into()),
            ..spec(&["**/*"])
        };
        let (_, entries) = collected(root.path(), &spec);
        assert_eq!(names(&entries), ["bin/app"]);
    }

    #[test]
    fn b39_missing_base_directory_is_client_error() {
        let root = tree(&[("out/a", "a")]);
        for base_directory in ["build", "build*", "out/a", "$UNSET"] {
            let spec = ArtifactSpec {
                base_directory: Some(base_directory.into()),
                ..spec(&["**/*"])
            };
            let err = run(root.path(), &spec).0.unwrap_err();
            assert!(err.is_client_error());
            assert_eq!(
                err.to_string(),
                format!("no matching base directory path found for {base_directory}")
            );
        }
    }

    #[test]
    fn b39_absolute_file_pattern_inside_src_dir() {
        let root = tree(&[("out/a.txt", "a"), ("out/b.txt", "b")]);
        let spec = ArtifactSpec {
            base_directory: Some("out".into()),
            ..spec(&["/codebuild/output/src123/src/out/a.txt"])
        };
        let (_, entries) = collected(root.path(), &spec);
        assert_eq!(names(&entries), ["a.txt"]);
    }

    #[test]
    fn b40_discard_paths_collision_fails() {
        let root = tree(&[("a/x.txt", "1"), ("b/x.txt", "2")]);
        let spec = ArtifactSpec {
            discard_paths: true,
            ..spec(&["**/*.txt"])
        };
        let (result, out) = run(root.path(), &spec);
        let err = result.unwrap_err();
        assert!(err.is_client_error());
        assert_eq!(
            err.to_string(),
            "collect artifact: entry x.txt would hold both a/x.txt and b/x.txt"
        );
        assert_eq!(fs_err::read_dir(out.path()).unwrap().count(), 0);
    }

    #[test]
    fn b41_exclude_beats_include() {
        let root = tree(&[
            ("out/keep.txt", "k"),
            ("out/secret/key", "s"),
            ("out/debug.map", "m"),
        ]);
        let spec = ArtifactSpec {
            base_directory: Some("out".into()),
            exclude_paths: vec!["secret/*".into(), "debug.map".into()],
            ..spec(&["**/*", "secret/key", "debug.map"])
        };
        let (_, entries) = collected(root.path(), &spec);
        assert_eq!(names(&entries), ["keep.txt"]);
    }

    #[test]
    fn b42_symlink_kept_with_enable_symlinks() {
        let root = tree(&[("lib/libfoo.so.1", "elf")]);
        symlink("libfoo.so.1", root.path().join("lib/libfoo.so")).unwrap();
        symlink("lib", root.path().join("libdir")).unwrap();
        let spec = ArtifactSpec {
            enable_symlinks: true,
            ..spec(&["**/*"])
        };
        let (_, entries) = collected(root.path(), &spec);
        assert_eq!(
            entries,
            [
                (
                    "lib/libfoo.so".to_owned(),
                    0o120_777,
                    "libfoo.so.1".to_owned()
                ),
                ("lib/libfoo.so.1".to_owned(), 0o100_644, "elf".to_owned()),
                ("libdir".to_owned(), 0o120_777, "lib".to_owned()),
            ]
        );
    }

    #[test]
    fn b42_symlink_followed_without() {
        let root = tree(&[("lib/libfoo.so.1", "elf")]);
        symlink("libfoo.so.1", root.path().join("lib/libfoo.so")).unwrap();
        symlink("lib", root.path().join("libdir")).unwrap();
        let (collected, entries) = collected(root.path(), &spec(&["**/*"]));
        assert_eq!(
            entries,
            [
                ("lib/libfoo.so".to_owned(), 0o100_644, "elf".to_owned()),
                ("lib/libfoo.so.1".to_owned(), 0o100_644, "elf".to_owned()),
            ]
        );
        let reason = "a symlink to a directory cannot be stored as a file";
        assert_eq!(
            collected.skipped,
            [("libdir".to_owned(), reason.to_owned())]
        );
    }

    #[test]
    fn b42_symlink_leaving_the_artifact_is_followed() {
        // Kept as a link it would dangle once the base directory is stripped.
        let root = tree(&[("out/app", "app"), ("shared/config", "cfg")]);
        symlink("../shared/config", root.path().join("out/config")).unwrap();
        let spec = ArtifactSpec {
            base_directory: Some("out".into()),
            enable_symlinks: true,
            ..spec(&["*"])
        };
        let (_, entries) = collected(root.path(), &spec);
        assert_eq!(names(&entries), ["app", "config"]);
        assert_eq!(
            entries[1],
            ("config".to_owned(), 0o100_644, "cfg".to_owned())
        );
    }

    #[test_case(true ; "with enable-symlinks")]
    #[test_case(false ; "without enable-symlinks")]
    fn b36_symlink_outside_src_root_is_skipped(enable_symlinks: bool) {
        let outside = tree(&[("secret", "s")]);
        let root = tree(&[]);
        symlink(outside.path().join("secret"), root.path().join("link")).unwrap();
        symlink("../../../../../../../../etc", root.path().join("etc")).unwrap();
        symlink("nowhere", root.path().join("dangling")).unwrap();
        let spec = ArtifactSpec {
            enable_symlinks,
            ..spec(&["*"])
        };
        let err = run(root.path(), &spec).0.unwrap_err();
        let CollectError::NoMatchingPaths { skipped } = err else {
            panic!("{err:?}")
        };
        let outside = "the symlink leads outside the source directory".to_owned();
        assert_eq!(
            skipped,
            [
                (
                    "dangling".to_owned(),
                    "the symlink's target does not exist".to_owned()
                ),
                ("etc".to_owned(), outside.clone()),
                ("link".to_owned(), outside),
            ]
        );
    }

    #[test]
    fn d12_unix_mode_kept() {
        let root = tree(&[("bin/run.sh", "#!/bin/sh\n"), ("bin/data", "d")]);
        let script = root.path().join("bin/run.sh");
        fs_err::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (result, out) = run(root.path(), &spec(&["bin/*"]));
        result.unwrap();
        let zip = out.path().join("artifact.zip");
        let modes: Vec<_> = read_zip(&zip)
            .into_iter()
            .map(|(name, mode, _)| (name, mode))
            .collect();
        assert_eq!(
            modes,
            [
                ("bin/data".to_owned(), 0o100_644),
                ("bin/run.sh".to_owned(), 0o100_755)
            ]
        );
        let dest = out.path().join("unpacked");
        assert_eq!(
            extract_zip(&zip, &dest).unwrap(),
            ["bin/data", "bin/run.sh"]
        );
        let mode = fs_err::metadata(dest.join("bin/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn extract_round_trip_restores_symlinks() {
        let root = tree(&[("lib/libfoo.so.1", "elf"), ("lib/sub/x", "x")]);
        symlink("libfoo.so.1", root.path().join("lib/libfoo.so")).unwrap();
        symlink("lib/sub", root.path().join("subdir")).unwrap();
        let spec = ArtifactSpec {
            enable_symlinks: true,
            ..spec(&["**/*"])
        };
        let (result, out) = run(root.path(), &spec);
        result.unwrap();
        let dest = out.path().join("unpacked");
        let names = extract_zip(&out.path().join("artifact.zip"), &dest).unwrap();
        assert_eq!(
            names,
            ["lib/libfoo.so", "lib/libfoo.so.1", "lib/sub/x", "subdir"]
        );
        assert_eq!(
            fs_err::read_link(dest.join("lib/libfoo.so")).unwrap(),
            Path::new("libfoo.so.1")
        );
        assert_eq!(fs_err::read_to_string(dest.join("subdir/x")).unwrap(), "x");
    }

    #[test]
    fn zip_is_deterministic() {
        let root = tree(&[("b.txt", "b"), ("a/c.txt", "c")]);
        let first = run(root.path(), &spec(&["**/*"]));
        let second = run(root.path(), &spec(&["**/*"]));
        let read = |out: &tempfile::TempDir| fs_err::read(out.path().join("artifact.zip")).unwrap();
        assert_eq!(read(&first.1), read(&second.1));
        assert_eq!(first.0.unwrap().files, ["a/c.txt", "b.txt"]);
    }

    #[test_case(&["../etc/passwd"], None ; "dotdot pattern")]
    #[test_case(&["a/../../x"], None ; "folded dotdot pattern")]
    #[test_case(&["/etc/passwd"], None ; "absolute pattern")]
    #[test_case(&["/codebuild/output/src123/src/../other/x"], None ; "absolute pattern climbing out")]
    #[test_case(&["**/*"], Some("..") ; "dotdot base directory")]
    #[test_case(&["**/*"], Some("/tmp") ; "absolute base directory")]
    #[test_case(&["**/*"], Some("$ELSEWHERE/out") ; "base directory expanding outside")]
    #[test_case(&["*"], Some("out/../..") ; "base directory folding out")]
    fn artifact_path_escape_refused(files: &[&str], base_directory: Option<&str>) {
        let root = tree(&[("out/x", "x"), ("x", "x")]);
        let spec = ArtifactSpec {
            base_directory: base_directory.map(str::to_owned),
            ..spec(files)
        };
        let err = run(root.path(), &spec).0.unwrap_err();
        assert!(matches!(err, CollectError::PathEscapes { .. }), "{err:?}");
        assert!(
            err.to_string().ends_with("escapes the source directory"),
            "{err}"
        );
    }

    #[test]
    fn b39_base_directory_symlink_outside_not_followed() {
        let outside = tree(&[("x", "x")]);
        let root = tree(&[]);
        symlink(outside.path(), root.path().join("out")).unwrap();
        let spec = ArtifactSpec {
            base_directory: Some("out".into()),
            ..spec(&["*"])
        };
        let err = run(root.path(), &spec).0.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matching base directory path found for out"
        );
    }

    #[test]
    fn b39_base_directory_symlink_inside_followed() {
        let root = tree(&[("releases/v2/app", "v2")]);
        symlink("releases/v2", root.path().join("current")).unwrap();
        let spec = ArtifactSpec {
            base_directory: Some("current".into()),
            ..spec(&["*"])
        };
        let (_, entries) = collected(root.path(), &spec);
        assert_eq!(entries, [("app".to_owned(), 0o100_644, "v2".to_owned())]);
    }

    #[test]
    fn extract_ignores_directory_entries_and_keeps_nested_files() {
        let work = tempfile::tempdir().unwrap();
        let path = work.path().join("dirs.zip");
        let mut zip = ZipWriter::new(fs_err::File::create(&path).unwrap());
        let options = SimpleFileOptions::default();
        zip.add_directory("empty/", options).unwrap();
        zip.start_file("a/b/c.txt", options.unix_permissions(0o600))
            .unwrap();
        zip.write_all(b"abc").unwrap();
        zip.finish().unwrap();
        let dest = work.path().join("dest");
        assert_eq!(extract_zip(&path, &dest).unwrap(), ["a/b/c.txt"]);
        let mode = fs_err::metadata(dest.join("a/b/c.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// A ZIP with the given entries: `Some(target)` makes a symlink, `None` a file holding "x".
    fn hostile_zip(dir: &Path, entries: &[(&str, Option<&str>)]) -> PathBuf {
        let path = dir.join("hostile.zip");
        let mut zip = ZipWriter::new(fs_err::File::create(&path).unwrap());
        for (name, link) in entries {
            let options = SimpleFileOptions::default();
            if let Some(target) = link {
                zip.add_symlink(*name, *target, options).unwrap();
            } else {
                zip.start_file(*name, options).unwrap();
                zip.write_all(b"x").unwrap();
            }
        }
        zip.finish().unwrap();
        path
    }

    #[test_case(&[("../evil", None)] ; "dotdot name")]
    #[test_case(&[("a/../../evil", None)] ; "folded dotdot name")]
    #[test_case(&[("/tmp/evil", None)] ; "absolute name")]
    #[test_case(&[("link", Some("/etc"))] ; "absolute symlink")]
    #[test_case(&[("a/link", Some("../../evil"))] ; "symlink climbing out")]
    #[test_case(&[("here", Some(".")), ("up", Some("here/.."))] ; "symlink through symlink")]
    #[test_case(&[("link", Some("sub")), ("link/evil", None)] ; "file beneath symlink")]
    #[test_case(&[("a", Some("b")), ("b", Some("a"))] ; "symlink loop")]
    fn zip_slip_refused_on_extract(entries: &[(&str, Option<&str>)]) {
        let work = tempfile::tempdir().unwrap();
        let zip = hostile_zip(work.path(), entries);
        let dest = work.path().join("dest/inner");
        let err = extract_zip(&zip, &dest).unwrap_err();
        assert!(matches!(err, CollectError::ZipSlip { .. }), "{err:?}");
        assert!(
            !dest.exists(),
            "nothing is written before every entry is checked"
        );
    }

    #[test]
    fn extract_allows_internal_symlinks_and_refuses_non_empty_destination() {
        let work = tempfile::tempdir().unwrap();
        let zip = hostile_zip(
            work.path(),
            &[
                ("a/b/file", None),
                ("a/b/up", Some("../b/file")),
                ("top", Some("a/b")),
            ],
        );
        let dest = work.path().join("dest");
        assert_eq!(
            extract_zip(&zip, &dest).unwrap(),
            ["a/b/file", "a/b/up", "top"]
        );
        assert_eq!(fs_err::read_to_string(dest.join("top/up")).unwrap(), "x");
        let err = extract_zip(&zip, &dest).unwrap_err();
        assert!(
            matches!(err, CollectError::DestinationNotEmpty { .. }),
            "{err:?}"
        );
    }
}
