//! A warm pool: build containers created and started ahead of time, idle until a build claims
//! one, so the first command of a build runs without waiting for Docker's create and start
//! (what GitLab Runner's `IdleCount` and Buildkite's waiting agents buy).
//!
//! An idle container runs `sh`, blocked in `tar -x` reading its stdin. A build whose container
//! spec has the same [`Shape`] (image, network, socket, user, tmpfs) claims it, and "starting"
//! it writes one tar archive to its stdin and closes it: a script holding the build's
//! environment and command, and copies of the host paths the spec would bind-mount read-only
//! (at most [`MAX_COPIED`] bytes, else the build gets a cold container). Once unpacked, the
//! script points stdin at `/dev/null`, exports the environment, deletes itself and `exec`s the
//! command, as a cold container's PID 1 would run. (Stdin, not Docker's archive upload: that
//! costs 50–70 ms per call on fuse-overlayfs, about as much as the rest of a warm start.)
//! A claimed container is removed after its build like any other; a new idle one replaces it
//! in the background. Idle containers carry [`LABEL_POOL`] with the owner (the data directory),
//! so a restarted owner removes what a crashed one left behind.
//!
//! Differences from a cold container, on purpose: the build's labels are not on it (Docker
//! cannot relabel a container), and its environment is set by the shell rather than by Docker
//! (`docker inspect` does not show it), and what a cold container would see through a read-only
//! bind mount is a writable copy. A spec whose variable names are not shell names always gets
//! a cold container.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bollard::Docker;
use bollard::query_parameters::AttachContainerOptionsBuilder;
use bytes::Bytes;
use tokio::io::AsyncWriteExt as _;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::{ContainerSpec, DockerSocket, ExecutorError, NetworkMode};
use crate::buildspec::script::quote;

/// Label on every warm-pool container, holding its owner (the data directory of the daemon).
pub const LABEL_POOL: &str = "runner.pool";

/// Where the claim puts the build's start script (deleted by the script as it runs).
const GO_SCRIPT: &str = "/.runner-go.sh";

/// PID 1 of an idle container: unpack the archive its stdin brings, then run the start script.
/// A stdin closed without one ends the container, which the build reports as an early exit,
/// never a hang. (Every CodeBuild image, and busybox, has `sh` and `tar`.)
const WAITER: &str = "tar -xf - -C / || { echo 'runner: no start archive on stdin' >&2; exit 1; }; \
                      exec /bin/sh /.runner-go.sh";

/// What must match for a build to use an idle container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Shape {
    image: String,
    network: NetworkMode,
    docker_socket: DockerSocket,
    user: Option<String>,
    tmpfs: Vec<String>,
}

impl Shape {
    /// The shape of `spec`, or `None` when `spec` must get a cold container.
    pub(super) fn of(spec: &ContainerSpec) -> Option<Self> {
        let settable = spec.env.iter().all(|(name, _)| is_settable(name));
        // Unpacking at `/` needs root; builds run as root (CodeBuild's default).
        let root = spec
            .user
            .as_deref()
            .is_none_or(|user| user == "0" || user == "root");
        (settable && root && !spec.command.is_empty()).then(|| Self {
            image: spec.image.clone(),
            network: spec.network.clone(),
            docker_socket: spec.docker_socket,
            user: spec.user.clone(),
            tmpfs: spec.tmpfs.clone(),
        })
    }

    /// The spec of an idle container of this shape.
    pub(super) fn idle_spec(&self, owner: &str) -> ContainerSpec {
        ContainerSpec {
            image: self.image.clone(),
            env: Vec::new(),
            command: vec!["/bin/sh".into(), "-c".into(), WAITER.into()],
            user: self.user.clone(),
            labels: BTreeMap::from([(LABEL_POOL.to_owned(), owner.to_owned())]),
            network: self.network.clone(),
            docker_socket: self.docker_socket,
            tmpfs: self.tmpfs.clone(),
            read_only_mounts: Vec::new(),
        }
    }
}

/// Names a shell's `export` sets: shell names, except those bash (an image's `/bin/sh` may be
/// bash) holds read-only, which Docker sets but `export` would fail on.
fn is_settable(name: &str) -> bool {
    const READ_ONLY: [&str; 7] = [
        "UID",
        "EUID",
        "PPID",
        "SHELLOPTS",
        "BASHOPTS",
        "BASH_VERSINFO",
        "GROUPS",
    ];
    is_shell_name(name) && !READ_ONLY.contains(&name)
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One idle container.
#[derive(Debug)]
struct Idle {
    id: String,
    /// The image id it was created from: a retagged image must not be served stale.
    image_id: String,
}

/// Creates and starts idle containers: the Docker calls the pool needs, made by a
/// [`super::DockerExecutor`] without a pool, so this module stays free of the create body's
/// details.
pub(super) trait Warmer: Clone + Send + Sync + 'static {
    /// The id of the local image `image`, `None` if it is not present.
    fn image_id(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<Option<String>, ExecutorError>> + Send;
    /// Whether the container is running (an engine restart stops idle containers).
    fn running(&self, id: &str) -> impl Future<Output = bool> + Send;
    /// Creates (with an open stdin) and starts a container of `spec`.
    fn create_idle(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, ExecutorError>> + Send;
    /// Removes the container.
    fn discard(&self, id: &str) -> impl Future<Output = ()> + Send;
}

/// Idle containers by shape, and the claimed ones not yet told to go (with what to send them).
#[derive(Debug)]
pub struct WarmPool {
    /// Idle containers kept per shape.
    size: usize,
    owner: String,
    idle: Mutex<HashMap<Shape, Vec<Idle>>>,
    /// Idle containers being made, per shape.
    filling: Mutex<HashMap<Shape, usize>>,
    claimed: Mutex<HashMap<String, Bytes>>,
    closed: AtomicBool,
    tasks: Mutex<JoinSet<()>>,
}

impl WarmPool {
    /// A pool keeping `size` idle containers per shape in use, labelled with `owner`.
    pub fn new(size: usize, owner: impl Into<String>) -> Self {
        Self {
            size,
            owner: owner.into(),
            idle: Mutex::default(),
            filling: Mutex::default(),
            claimed: Mutex::default(),
            closed: AtomicBool::new(false),
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    /// Hands an idle container of `shape` to `spec`, ready to go, or `None` if there is none.
    pub(super) async fn claim<W: Warmer>(
        &self,
        warmer: &W,
        shape: &Shape,
        spec: &ContainerSpec,
    ) -> Option<String> {
        // With nothing idle of this shape (a cold create), no Docker call at all.
        if lock(&self.idle).get(shape).is_none_or(Vec::is_empty) {
            return None;
        }
        let image_id = match warmer.image_id(&spec.image).await {
            Ok(Some(id)) => id,
            Ok(None) => return None,
            Err(error) => {
                debug!(error = %error, "no warm container: the image cannot be inspected");
                return None;
            }
        };
        while let Some(idle) = self.pop(shape) {
            let (id, stale) = (idle.id.clone(), idle.image_id != image_id);
            // Back in the pool if this claim is dropped (its build cancelled) before it decides.
            let mut taken = Taken {
                pool: self,
                shape,
                idle: Some(idle),
            };
            if stale {
                debug!(
                    container_id = id,
                    "warm container of an older image: removed"
                );
                warmer.discard(&id).await;
                taken.forget();
                continue;
            }
            if !warmer.running(&id).await {
                debug!(
                    container_id = id,
                    "warm container no longer running: removed"
                );
                warmer.discard(&id).await;
                taken.forget();
                continue;
            }
            // Only now, with a container to send it to: the copy may be large.
            let owned = spec.clone();
            let archive = tokio::task::spawn_blocking(move || claim_archive(&owned, MAX_COPIED))
                .await
                .unwrap_or_else(|panic| Err(std::io::Error::other(panic.to_string())));
            let archive = match archive {
                Ok(archive) => archive,
                Err(error) => {
                    debug!(error = %error, "no warm container: the mounted paths cannot be copied");
                    return None;
                }
            };
            lock(&self.claimed).insert(id.clone(), archive);
            taken.forget();
            debug!(container_id = id, "warm container claimed");
            return Some(id);
        }
        None
    }

    fn pop(&self, shape: &Shape) -> Option<Idle> {
        lock(&self.idle).get_mut(shape).and_then(Vec::pop)
    }

    /// What to send `id` if it was claimed and not yet told to go (forgetting it: go happens
    /// once, and a container removed before it went is forgotten the same way).
    pub(super) fn take_claimed(&self, id: &str) -> Option<Bytes> {
        lock(&self.claimed).remove(id)
    }

    /// Makes idle containers of `shape` in the background until `size` are idle or being made.
    pub(super) fn refill<W: Warmer>(self: &Arc<Self>, warmer: &W, shape: &Shape) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let missing = {
            // Both counts under their locks at once (in `make_one`'s order: idle, then filling).
            let idle_list = lock(&self.idle);
            let idle = idle_list.get(shape).map_or(0, Vec::len);
            let mut filling = lock(&self.filling);
            let making = filling.entry(shape.clone()).or_default();
            let missing = self.size.saturating_sub(idle + *making);
            *making += missing;
            missing
        };
        let mut tasks = lock(&self.tasks);
        // Checked again under the lock `drain` takes, so every task spawned is one it joins.
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        while tasks.try_join_next().is_some() {}
        for _ in 0..missing {
            let (pool, warmer, shape) = (Arc::clone(self), warmer.clone(), shape.clone());
            tasks.spawn(async move { pool.make_one(&warmer, shape).await });
        }
    }

    async fn make_one<W: Warmer>(&self, warmer: &W, shape: Shape) {
        let made = async {
            let Some(image_id) = warmer.image_id(&shape.image).await? else {
                return Ok(None);
            };
            let id = warmer.create_idle(&shape.idle_spec(&self.owner)).await?;
            Ok::<_, ExecutorError>(Some(Idle { id, image_id }))
        }
        .await;
        // Pushed and no longer counted as being made in one step, so a refill never counts it
        // twice or not at all.
        let mut idle_list = lock(&self.idle);
        if let Some(making) = lock(&self.filling).get_mut(&shape) {
            *making = making.saturating_sub(1);
        }
        let made = match made {
            Ok(Some(idle)) if !self.closed.load(Ordering::Acquire) => {
                debug!(
                    container_id = idle.id,
                    image = shape.image,
                    "warm container ready"
                );
                idle_list.entry(shape).or_default().push(idle);
                return;
            }
            other => other,
        };
        drop(idle_list);
        match made {
            Ok(Some(idle)) => warmer.discard(&idle.id).await,
            Ok(None) => debug!(image = shape.image, "not warming: the image is gone"),
            Err(error) => warn!(image = shape.image, error = %error, "could not warm a container"),
        }
    }

    /// Stops refilling, waits for containers being made, and removes every idle container.
    pub(super) async fn drain<W: Warmer>(&self, warmer: &W) {
        self.closed.store(true, Ordering::Release);
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
        while tasks.join_next().await.is_some() {}
        let idle: Vec<Idle> = lock(&self.idle)
            .drain()
            .flat_map(|(_, list)| list)
            .collect();
        for container in idle {
            warmer.discard(&container.id).await;
        }
    }
}

/// An idle container a claim took out of the pool and has not yet claimed or removed: put back
/// when dropped before [`Taken::forget`], so a claim cancelled between its awaits loses nothing
/// (a container that meanwhile stopped is found out and removed by the next claim).
struct Taken<'a> {
    pool: &'a WarmPool,
    shape: &'a Shape,
    idle: Option<Idle>,
}

impl Taken<'_> {
    /// The container is claimed or removed: the pool no longer holds it.
    fn forget(&mut self) {
        self.idle = None;
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(idle) = self.idle.take() {
            lock(&self.pool.idle)
                .entry(self.shape.clone())
                .or_default()
                .push(idle);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tells a claimed container to go: its start archive on its stdin, then end of file.
pub(super) async fn go(
    docker: &Docker,
    id: &str,
    archive: &[u8],
) -> Result<(), bollard::errors::Error> {
    let options = AttachContainerOptionsBuilder::new()
        .stdin(true)
        .stream(true)
        .build();
    let mut attached = docker.attach_container(id, Some(options)).await?;
    attached.input.write_all(archive).await?;
    attached.input.flush().await?;
    attached.input.shutdown().await?;
    Ok(())
}

/// The start script of a claimed container: what Docker would have done for a cold one.
fn go_script(spec: &ContainerSpec) -> String {
    // Deleted first (sh holds it open): the build's PATH or LD_* must not keep it from going.
    let mut script = format!("exec </dev/null\nrm -f {GO_SCRIPT}\n");
    for (name, value) in &spec.env {
        let _ = writeln!(script, "export {name}={}", quote(value));
    }
    script.push_str("exec");
    for arg in &spec.command {
        script.push(' ');
        script.push_str(&quote(arg));
    }
    script.push('\n');
    script
}

/// At most this many bytes of mounted host paths are copied into a warm container.
pub(super) const MAX_COPIED: usize = 64 * 1024 * 1024;

/// A tar archive, to extract at `/`, of the start script at [`GO_SCRIPT`] and of each host path
/// `spec` would bind-mount, at its container path; an error past `cap` bytes.
fn claim_archive(spec: &ContainerSpec, cap: usize) -> std::io::Result<Bytes> {
    let script = go_script(spec);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o700);
    header.set_size(script.len() as u64);
    let mut builder = tar::Builder::new(Capped(Vec::new(), cap));
    builder.follow_symlinks(false);
    builder.append_data(
        &mut header,
        GO_SCRIPT.trim_start_matches('/'),
        script.as_bytes(),
    )?;
    for (host, container) in &spec.read_only_mounts {
        let at = container.trim_start_matches('/');
        // A bind mount follows a symlink at its root (a CA bundle often is one); inside, links
        // stay links, as the mount shows them.
        let host = &std::fs::canonicalize(host).unwrap_or_else(|_| host.clone());
        let copied = if host.is_dir() {
            builder.append_dir_all(at, host)
        } else {
            builder.append_path_with_name(host, at)
        };
        copied.map_err(|error| {
            std::io::Error::new(error.kind(), format!("copy {}: {error}", host.display()))
        })?;
    }
    Ok(Bytes::from(builder.into_inner()?.0))
}

/// A buffer that refuses to grow past its cap.
struct Capped(Vec<u8>, usize);

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > self.1 {
            let cap = self.1;
            return Err(std::io::Error::other(format!(
                "more than {cap} bytes to copy"
            )));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(env: &[(&str, &str)]) -> ContainerSpec {
        ContainerSpec {
            image: "runner/test".into(),
            env: env
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            command: vec!["/bin/sh".into(), "/codebuild/output/agent/driver.sh".into()],
            user: Some("0".into()),
            ..ContainerSpec::default()
        }
    }

    #[test]
    fn the_script_exports_every_value_quoted_in_order_then_runs_the_command() {
        let script = go_script(&spec(&[("A", "it's $HOME\nline"), ("A", "later")]));
        assert_eq!(
            script,
            "exec </dev/null\nrm -f /.runner-go.sh\nexport A='it'\\''s $HOME\nline'\n\
             export A='later'\nexec '/bin/sh' '/codebuild/output/agent/driver.sh'\n"
        );
    }

    #[test]
    fn specs_with_odd_variable_names_get_cold_containers() {
        assert!(Shape::of(&spec(&[("CODEBUILD_X", "1"), ("_y2", "")])).is_some());
        assert!(Shape::of(&spec(&[("a-b", "1")])).is_none());
        assert!(Shape::of(&spec(&[("1A", "1")])).is_none());
        assert!(
            Shape::of(&spec(&[("UID", "1")])).is_none(),
            "read-only in bash"
        );
        let mut user = spec(&[]);
        user.user = Some("1000".into());
        assert!(Shape::of(&user).is_none(), "unpacking at / needs root");
    }

    #[test]
    fn the_claim_copies_mounted_paths_where_they_would_be_mounted() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs_err::create_dir_all(dir.path().join("src/sub")).expect("mkdir");
        fs_err::write(dir.path().join("src/sub/a.txt"), "a").expect("write");
        fs_err::write(dir.path().join("real.pem"), "ca").expect("write");
        std::os::unix::fs::symlink(dir.path().join("real.pem"), dir.path().join("ca.pem"))
            .expect("symlink");
        let mut mounted = spec(&[]);
        mounted.read_only_mounts = vec![
            (dir.path().join("src"), "/codebuild/input/src".into()),
            (dir.path().join("ca.pem"), "/etc/ca.pem".into()),
        ];
        let archive = claim_archive(&mounted, MAX_COPIED).expect("archive");
        let mut names = Vec::new();
        for entry in tar::Archive::new(archive.as_ref())
            .entries()
            .expect("entries")
        {
            let entry = entry.expect("entry");
            let name = entry.path().expect("path").display().to_string();
            if name == "etc/ca.pem" {
                let kind = entry.header().entry_type();
                assert!(
                    kind.is_file(),
                    "a symlinked mount root is copied as its target"
                );
            }
            names.push(name);
        }
        names.sort();
        assert_eq!(
            names,
            [
                ".runner-go.sh",
                "codebuild/input/src/",
                "codebuild/input/src/sub",
                "codebuild/input/src/sub/a.txt",
                "etc/ca.pem"
            ]
        );
    }

    #[test]
    fn too_much_to_copy_means_a_cold_container() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs_err::write(dir.path().join("big"), vec![7; 4096]).expect("write");
        let mut mounted = spec(&[]);
        mounted.read_only_mounts = vec![(dir.path().to_path_buf(), "/in".into())];
        assert!(claim_archive(&mounted, 4096).is_err());
        assert!(claim_archive(&mounted, 16 * 1024).is_ok());
    }

    #[test]
    fn an_idle_container_waits_for_its_stdin_and_is_labelled_with_its_owner() {
        let shape = Shape::of(&spec(&[("A", "1")])).expect("poolable");
        let idle = shape.idle_spec("/var/lib/runner");
        assert!(
            idle.env.is_empty(),
            "the build's environment comes with the claim"
        );
        assert_eq!(idle.command.last().map(String::as_str), Some(WAITER));
        assert_eq!(idle.labels[LABEL_POOL], "/var/lib/runner");
        assert_eq!(Shape::of(&idle).map(|s| s.image), Some(shape.image));
    }

    /// The real engine, except that a claim asking whether a container runs waits for ever:
    /// a build cancelled at that await.
    #[derive(Clone)]
    struct StuckAtRunning(crate::executor::DockerExecutor);

    impl Warmer for StuckAtRunning {
        async fn image_id(&self, image: &str) -> Result<Option<String>, ExecutorError> {
            self.0.image_id(image).await
        }
        async fn running(&self, _id: &str) -> bool {
            std::future::pending().await
        }
        async fn create_idle(&self, spec: &ContainerSpec) -> Result<String, ExecutorError> {
            self.0.create_idle(spec).await
        }
        async fn discard(&self, id: &str) {
            self.0.discard(id).await;
        }
    }

    fn idle_ids(pool: &WarmPool, shape: &Shape) -> Vec<String> {
        lock(&pool.idle)
            .get(shape)
            .map(|list| list.iter().map(|idle| idle.id.clone()).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_claim_dropped_halfway_puts_its_container_back() {
        use crate::executor::Executor as _;
        let docker = crate::executor::DockerExecutor::connect()
            .await
            .expect("the tests need Docker");
        let owner = format!("pool-unit-{}", std::process::id());
        let pool = Arc::new(WarmPool::new(1, owner.clone()));
        let build = spec(&[("A", "1")]);
        let shape = Shape::of(&build).expect("poolable");
        pool.refill(&docker, &shape);
        let mut ready = Vec::new();
        for _ in 0..600 {
            ready = idle_ids(&pool, &shape);
            if !ready.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(ready.len(), 1, "one idle container within 60 s");

        let stuck = StuckAtRunning(docker.clone());
        let dropped = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            pool.claim(&stuck, &shape, &build),
        )
        .await;
        assert!(
            dropped.is_err(),
            "the claim waits at `running` until dropped"
        );
        assert_eq!(
            idle_ids(&pool, &shape),
            ready,
            "the container is idle again"
        );

        let claimed = pool.claim(&docker, &shape, &build).await;
        assert_eq!(
            claimed.as_ref(),
            ready.first(),
            "and the next build gets it"
        );
        assert!(pool.take_claimed(&ready[0]).is_some());

        pool.drain(&docker).await;
        let swept = docker.sweep_warm_pool(&owner).await.expect("sweep");
        assert_eq!(
            swept, 1,
            "only the claimed container was left, for its build to remove"
        );
        assert!(
            docker
                .list_labelled(LABEL_POOL, &owner)
                .await
                .expect("list")
                .is_empty()
        );
    }
}
