//! Builds runner images from `runners/NAME/`, offline: the route for machines with no registry.
//!
//! A directory holds either `rootfs.conf` (a base image: debootstrap a Debian rootfs, then
//! `docker import` it) or a `Dockerfile` (layered on another image, itself built from `runners/`
//! first when missing). An image reference maps to `runners/<last path segment>/`, so
//! `runner/test` and `aws/codebuild/standard:7.0` map to `runners/test` and `runners/standard`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;
use tracing::{info, instrument};

use super::{DockerExecutor, Executor, ExecutorError};

/// The directory under `runners/` that builds `image`, if there is one.
pub fn runner_dir(runners: &Path, image: &str) -> Option<PathBuf> {
    let repository = image.split('@').next().unwrap_or(image);
    let repository = match repository.rfind(':') {
        Some(colon) if !repository[colon..].contains('/') => &repository[..colon],
        _ => repository,
    };
    let name = repository.rsplit('/').next()?;
    let dir = runners.join(name);
    (dir.join("rootfs.conf").is_file() || dir.join("Dockerfile").is_file()).then_some(dir)
}

/// The tag an image directory builds when asked for by name (`runner images build NAME`).
pub fn default_tag(dir: &Path) -> Result<String, ExecutorError> {
    if dir.join("rootfs.conf").is_file() {
        let conf = RootfsConf::read(dir)?;
        return Ok(conf.tag);
    }
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok(format!("runner/{name}"))
}

/// Label holding the digest of the `runners/` definition an image was built from.
pub const LABEL_DEFINITION: &str = "runner.definition";

/// Makes sure `image` exists locally: present, built from `runners/`, or pulled.
///
/// An image that we built from `runners/` (it carries [`LABEL_DEFINITION`]) is rebuilt when its
/// definition changed since, so a warm machine never tests against a stale image.
#[instrument(skip_all, fields(image))]
pub async fn ensure(
    executor: &DockerExecutor,
    runners: &Path,
    image: &str,
) -> Result<super::ImageInfo, ExecutorError> {
    let present = executor.inspect_image(image).await?;
    let Some(dir) = runner_dir(runners, image) else {
        return match present {
            Some(info) => Ok(info),
            None => executor.ensure_image(image).await,
        };
    };
    if let Some(info) = &present {
        let built_by_us = info.labels.contains_key(LABEL_DEFINITION);
        if !built_by_us || is_current(info, &definition_digest(runners, &dir)?) {
            return Ok(info.clone());
        }
        info!(image, "the runners/ definition changed: rebuilding");
    }
    Box::pin(build(executor, runners, &dir, image)).await?;
    executor.ensure_image(image).await
}

/// Whether `info` was built from the definition whose digest is `digest`.
pub fn is_current(info: &super::ImageInfo, digest: &str) -> bool {
    info.labels.get(LABEL_DEFINITION).map(String::as_str) == Some(digest)
}

/// A digest of every file in `dir`, and of the `runners/` definitions its `FROM` images come from.
pub fn definition_digest(runners: &Path, dir: &Path) -> Result<String, ExecutorError> {
    use sha2::{Digest as _, Sha256};
    let fail = |message: String| ExecutorError::ImageBuild {
        image: dir.display().to_string(),
        message,
    };
    let mut hasher = Sha256::new();
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect();
    files.sort();
    for file in &files {
        let relative = file.strip_prefix(dir).unwrap_or(file);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(fs_err::read(file).map_err(|e| fail(e.to_string()))?);
        hasher.update([0]);
    }
    for base in from_images(dir) {
        if let Some(base_dir) = runner_dir(runners, &base).filter(|d| d != dir) {
            hasher.update(definition_digest(runners, &base_dir)?.as_bytes());
        }
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(12).fold(String::new(), |mut hex, byte| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
        hex
    }))
}

/// The images a directory's Dockerfile builds `FROM`.
fn from_images(dir: &Path) -> Vec<String> {
    let Ok(dockerfile) = fs_err::read_to_string(dir.join("Dockerfile")) else {
        return Vec::new();
    };
    dockerfile
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words
                .next()
                .filter(|w| w.eq_ignore_ascii_case("FROM"))
                .and_then(|_| words.next())
                .map(str::to_owned)
        })
        .collect()
}

/// Builds the image described by `dir` and tags it `tag`.
#[instrument(skip_all, fields(dir = %dir.display(), tag))]
pub async fn build(
    executor: &DockerExecutor,
    runners: &Path,
    dir: &Path,
    tag: &str,
) -> Result<(), ExecutorError> {
    if dir.join("rootfs.conf").is_file() {
        build_rootfs(executor, runners, dir, tag).await
    } else {
        build_dockerfile(executor, runners, dir, tag).await
    }
}

/// `rootfs.conf`: `KEY=value` lines describing a debootstrap base image.
#[derive(Debug, Clone)]
struct RootfsConf {
    tag: String,
    suite: String,
    variant: String,
    include: String,
    mirror: Option<String>,
    cmd: String,
}

impl RootfsConf {
    fn read(dir: &Path) -> Result<Self, ExecutorError> {
        let path = dir.join("rootfs.conf");
        let text = fs_err::read_to_string(&path).map_err(|error| ExecutorError::ImageBuild {
            image: dir.display().to_string(),
            message: error.to_string(),
        })?;
        let mut values = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                values.insert(key.trim().to_owned(), value.trim().to_owned());
            }
        }
        let get = |key: &str| values.get(key).cloned().filter(|v| !v.is_empty());
        let missing = |key: &str| ExecutorError::ImageBuild {
            image: path.display().to_string(),
            message: format!("missing key {key}"),
        };
        Ok(Self {
            tag: get("TAG").ok_or_else(|| missing("TAG"))?,
            suite: get("SUITE").ok_or_else(|| missing("SUITE"))?,
            variant: get("VARIANT").unwrap_or_else(|| "minbase".into()),
            include: get("INCLUDE").unwrap_or_default(),
            mirror: get("MIRROR"),
            cmd: get("CMD").unwrap_or_else(|| "/bin/sh".into()),
        })
    }
}

/// The Debian mirror the host's apt uses, so debootstrap goes where apt already can.
fn host_mirror() -> Option<String> {
    let mut candidates = Vec::new();
    if let Ok(entries) = fs_err::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            candidates.push(entry.path());
        }
    }
    candidates.sort();
    candidates.insert(0, PathBuf::from("/etc/apt/sources.list"));
    for path in candidates {
        let Ok(text) = fs_err::read_to_string(&path) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            let url = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|word| word.contains("://"))
            } else {
                None
            };
            if let Some(url) = url.filter(|url| url.trim_end_matches('/').ends_with("/debian")) {
                return Some(url.to_owned());
            }
        }
    }
    None
}

async fn build_rootfs(
    executor: &DockerExecutor,
    runners: &Path,
    dir: &Path,
    tag: &str,
) -> Result<(), ExecutorError> {
    let conf = RootfsConf::read(dir)?;
    let digest = definition_digest(runners, dir)?;
    let fail = |message: String| ExecutorError::ImageBuild {
        image: tag.to_owned(),
        message,
    };
    let mirror = conf
        .mirror
        .clone()
        .or_else(host_mirror)
        .unwrap_or_else(|| "http://deb.debian.org/debian".into());
    let work = tempfile::Builder::new()
        .prefix("runner-rootfs-")
        .tempdir_in(std::env::temp_dir())
        .map_err(|error| fail(format!("create a temporary directory: {error}")))?;
    let rootfs = work.path().join("rootfs");
    info!(suite = conf.suite, mirror, "debootstrap");
    let mut debootstrap = tokio::process::Command::new("debootstrap");
    debootstrap.arg(format!("--variant={}", conf.variant));
    if !conf.include.is_empty() {
        debootstrap.arg(format!("--include={}", conf.include));
    }
    let status = debootstrap
        .arg(&conf.suite)
        .arg(&rootfs)
        .arg(&mirror)
        .stdout(Stdio::null())
        .status()
        .await
        .map_err(|error| fail(format!("run debootstrap (is it installed?): {error}")))?;
    if !status.success() {
        return Err(fail(format!("debootstrap exited with {status}")));
    }
    for junk in [
        "var/lib/apt/lists",
        "var/cache/apt",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
    ] {
        let path = rootfs.join(junk);
        if path.is_dir() {
            fs_err::remove_dir_all(&path).map_err(|error| fail(error.to_string()))?;
            fs_err::create_dir_all(&path).map_err(|error| fail(error.to_string()))?;
        }
    }
    let mut tar = tokio::process::Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| fail(format!("run tar: {error}")))?;
    let stdout = tar
        .stdout
        .take()
        .ok_or_else(|| fail("tar has no stdout".into()))?;
    let (repo, image_tag) = split_tag(tag);
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(image_tag)
        .changes(vec![
            format!("CMD [\"{}\"]", conf.cmd),
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            format!("LABEL runner.image={name} {LABEL_DEFINITION}={digest}"),
        ])
        .build();
    let body = bollard::body_try_stream(ReaderStream::new(stdout));
    let mut progress = executor
        .client()
        .create_image(Some(options), Some(body), None);
    while let Some(step) = progress.next().await {
        step.map_err(|error| fail(format!("docker import: {error}")))?;
    }
    let status = tar.wait().await.map_err(|error| fail(error.to_string()))?;
    if !status.success() {
        return Err(fail(format!("tar exited with {status}")));
    }
    Ok(())
}

fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rfind(':') {
        Some(colon) if !reference[colon..].contains('/') => {
            (&reference[..colon], &reference[colon + 1..])
        }
        _ => (reference, "latest"),
    }
}

async fn build_dockerfile(
    executor: &DockerExecutor,
    runners: &Path,
    dir: &Path,
    tag: &str,
) -> Result<(), ExecutorError> {
    let fail = |message: String| ExecutorError::ImageBuild {
        image: tag.to_owned(),
        message,
    };
    for base in from_images(dir) {
        let Some(base_dir) = runner_dir(runners, &base) else {
            continue;
        };
        let stale = match executor.inspect_image(&base).await? {
            None => true,
            Some(info) => {
                info.labels.contains_key(LABEL_DEFINITION)
                    && !is_current(&info, &definition_digest(runners, &base_dir)?)
            }
        };
        if stale {
            Box::pin(build(executor, runners, &base_dir, &base)).await?;
        }
    }
    let digest = definition_digest(runners, dir)?;
    let labels = std::collections::HashMap::from([(LABEL_DEFINITION.to_owned(), digest)]);
    let mut context = tar::Builder::new(Vec::new());
    context
        .append_dir_all(".", dir)
        .map_err(|error| fail(format!("pack the build context: {error}")))?;
    let context = context
        .into_inner()
        .map_err(|error| fail(format!("pack the build context: {error}")))?;
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .labels(&labels)
        .build();
    let mut progress =
        executor
            .client()
            .build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = progress.next().await {
        let step = step.map_err(|error| fail(error.to_string()))?;
        if let Some(error) = step.error {
            return Err(fail(error));
        }
        if let Some(line) = step.stream {
            let line = line.trim_end();
            if !line.is_empty() {
                info!(image = tag, "{line}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_reference_maps_to_runner_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("standard")).unwrap();
        fs_err::write(dir.path().join("standard/Dockerfile"), "FROM x\n").unwrap();
        let found = runner_dir(dir.path(), "aws/codebuild/standard:7.0").unwrap();
        assert_eq!(found, dir.path().join("standard"));
        assert!(runner_dir(dir.path(), "ubuntu:22.04").is_none());
        assert_eq!(
            split_tag("runner/base:bookworm"),
            ("runner/base", "bookworm")
        );
        assert_eq!(
            split_tag("localhost:5000/x"),
            ("localhost:5000/x", "latest")
        );
    }
}
