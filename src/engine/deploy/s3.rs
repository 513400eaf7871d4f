//! `s3-deploy`: the input artifact's files synced to a bucket and prefix.
//!
//! Only changed files are uploaded: a file is unchanged when an object of the same size has its
//! MD5 as `ETag`, or carries its SHA-256 in the `sha256` metadata this action sets on every upload
//! (the `ETag` of an SSE-KMS object is not its MD5). `Content-Type` comes from the extension,
//! `Cache-Control` from the first matching `cache_control` pattern. With `delete: true`, objects
//! under the prefix the artifact no longer has are deleted. Output variables: `Uploaded`,
//! `Unchanged`, `Deleted`, `Bytes`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt as _;
use md5::Md5;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::{DeployError, Job, aws_config, work_dir};
use crate::artifacts::ArtifactStore;
use crate::aws::{ListedObject, ObjectUpload, S3Client};
use crate::engine::event::ActionOutputs;
use crate::pipeline::{Deletions, S3DeployAction};

/// How many objects are compared and uploaded at once.
const CONCURRENCY: usize = 8;
/// The user metadata that holds an uploaded file's SHA-256 (hex).
const SHA256_METADATA: &str = "sha256";

/// `Content-Type` by file extension (lowercase, without the dot).
const CONTENT_TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("ico", "image/x-icon"),
    ("txt", "text/plain; charset=utf-8"),
    ("xml", "application/xml"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
];

/// The type of files whose extension is not in the table.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The `Content-Type` of the file at `path`.
pub(crate) fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, extension)) = name.rsplit_once('.') else {
        return DEFAULT_CONTENT_TYPE;
    };
    let extension = extension.to_ascii_lowercase();
    CONTENT_TYPES
        .iter()
        .find(|(known, _)| *known == extension)
        .map_or(DEFAULT_CONTENT_TYPE, |(_, content_type)| content_type)
}

/// What happened to one file.
enum Synced {
    Uploaded(u64),
    Unchanged,
}

/// Where the files go and how.
struct Target<'a> {
    s3: S3Client,
    bucket: String,
    prefix: String,
    deploy: &'a S3DeployAction,
    remote: BTreeMap<String, ListedObject>,
}

pub(super) async fn run<E, S: ArtifactStore>(
    job: &Job<'_, E, S>,
    deploy: &S3DeployAction,
    cancel: &CancellationToken,
) -> Result<ActionOutputs, DeployError> {
    let work = work_dir()?;
    let root = job.unpack_input(work.path()).await?;
    let bucket = job.resolve(&deploy.bucket)?;
    let mut prefix = job.resolve(&deploy.prefix)?;
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let files = files(&root)?;
    let config = aws_config(deploy.region.as_deref()).await?;
    let s3 = config.s3();
    let remote = s3
        .list_objects(&bucket, &prefix)
        .await?
        .into_iter()
        .map(|object| (object.key.clone(), object))
        .collect();
    let target = Target {
        s3,
        bucket,
        prefix,
        deploy,
        remote,
    };
    // The futures are made first: a closure inside the stream trips the `Send` check of the
    // spawned action job.
    let syncs: Vec<_> = files
        .iter()
        .map(|path| sync_file(&target, &root, path, cancel))
        .collect();
    let results: Vec<Result<Synced, DeployError>> = futures_util::stream::iter(syncs)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let (mut uploaded, mut unchanged, mut bytes) = (0_u64, 0_u64, 0_u64);
    for result in results {
        match result? {
            Synced::Uploaded(size) => {
                uploaded += 1;
                bytes += size;
            }
            Synced::Unchanged => unchanged += 1,
        }
    }
    let mut deleted = 0_u64;
    if deploy.deletions == Deletions::Delete {
        let keep: BTreeSet<String> = files
            .iter()
            .map(|path| format!("{}{path}", target.prefix))
            .collect();
        for key in target.remote.keys().filter(|key| !keep.contains(*key)) {
            if cancel.is_cancelled() {
                return Err(DeployError::Stopped);
            }
            target.s3.delete_object(&target.bucket, key).await?;
            deleted += 1;
        }
    }
    job.log(&format!(
        "s3-deploy s3://{}/{}: {uploaded} uploaded, {unchanged} unchanged, {deleted} deleted, {bytes} bytes",
        target.bucket, target.prefix
    ));
    let mut outputs = ActionOutputs::default();
    for (name, value) in [
        ("Uploaded", uploaded),
        ("Unchanged", unchanged),
        ("Deleted", deleted),
        ("Bytes", bytes),
    ] {
        outputs.variables.insert(name.to_owned(), value.to_string());
    }
    Ok(outputs)
}

/// Every file under `root`, as `/`-separated relative paths, sorted.
fn files(root: &Path) -> Result<Vec<String>, DeployError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|error| DeployError::Read {
            path: error.path().unwrap_or(root).to_owned(),
            source: error.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let parts: Vec<String> = relative
            .components()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect();
        files.push(parts.join("/"));
    }
    Ok(files)
}

/// Uploads the file at `path` unless the object under its key already holds it.
async fn sync_file(
    target: &Target<'_>,
    root: &Path,
    path: &str,
    cancel: &CancellationToken,
) -> Result<Synced, DeployError> {
    if cancel.is_cancelled() {
        return Err(DeployError::Stopped);
    }
    let full = root.join(path);
    let body = fs_err::tokio::read(&full)
        .await
        .map(Bytes::from)
        .map_err(|source| DeployError::Read { path: full, source })?;
    let key = format!("{}{path}", target.prefix);
    let sha256 = hex::encode(Sha256::digest(&body));
    if let Some(object) = target.remote.get(&key) {
        if object.size == body.len() as u64 && is_same(target, object, &body, &sha256).await? {
            return Ok(Synced::Unchanged);
        }
    }
    let upload = ObjectUpload {
        bucket: &target.bucket,
        key: &key,
        content_type: content_type(path),
        cache_control: target.deploy.cache_control_for(path),
        kms_key_id: target.deploy.kms_key_id.as_deref(),
        metadata: &[(SHA256_METADATA, &sha256)],
    };
    let size = body.len() as u64;
    target.s3.upload_object(&upload, body).await?;
    Ok(Synced::Uploaded(size))
}

/// Whether an object of the same size holds `body`: its `ETag` is the MD5, or its `sha256`
/// metadata matches.
async fn is_same(
    target: &Target<'_>,
    object: &ListedObject,
    body: &[u8],
    sha256: &str,
) -> Result<bool, DeployError> {
    if object.e_tag == hex::encode(Md5::digest(body)) {
        return Ok(true);
    }
    let head = target.s3.head_object(&target.bucket, &object.key).await?;
    Ok(head
        .and_then(|head| head.metadata.get(SHA256_METADATA).cloned())
        .is_some_and(|stored| stored == sha256))
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case("index.html", "text/html; charset=utf-8" ; "html")]
    #[test_case("assets/app.3f2a.css", "text/css; charset=utf-8" ; "css")]
    #[test_case("assets/app.3f2a.js", "text/javascript; charset=utf-8" ; "js")]
    #[test_case("manifest.json", "application/json" ; "json")]
    #[test_case("logo.svg", "image/svg+xml" ; "svg")]
    #[test_case("img/a.PNG", "image/png" ; "uppercase extension")]
    #[test_case("photo.jpg", "image/jpeg" ; "jpg")]
    #[test_case("favicon.ico", "image/x-icon" ; "ico")]
    #[test_case("robots.txt", "text/plain; charset=utf-8" ; "txt")]
    #[test_case("assets/app.js.map", "application/json" ; "source map")]
    #[test_case("fonts/inter.woff2", "font/woff2" ; "woff2")]
    #[test_case("LICENSE", "application/octet-stream" ; "no extension")]
    #[test_case("data.bin", "application/octet-stream" ; "unknown extension")]
    #[test_case(".well-known/x", "application/octet-stream" ; "dot directory")]
    fn content_types(path: &str, expected: &str) {
        assert_eq!(content_type(path), expected);
    }
}
