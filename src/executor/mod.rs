//! Runs containers: the one port through which builds touch a container runtime.
//!
//! [`Executor`] is the interface; [`DockerExecutor`] implements it with bollard. A cluster backend
//! (Swarm, Kubernetes) slots in by implementing the same trait. This module knows nothing of
//! buildspecs or pipelines: it creates, feeds, starts, watches, stops and removes containers.

mod docker;
pub mod images;
mod pool;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;

pub use docker::DockerExecutor;
pub use pool::{LABEL_POOL, WarmPool};

/// Label put on every container we create, holding the run (build or execution) id.
pub const LABEL_RUN_ID: &str = "runner.run-id";
/// Label put on every container we create, holding the job (action or project) name.
pub const LABEL_JOB: &str = "runner.job";
/// Label put on the containers of a pipeline execution, holding the execution id.
pub const LABEL_EXECUTION: &str = "runner.execution";
/// Image label listing the runtimes an image provides, e.g. `python=3.11 java=17`.
pub const LABEL_RUNTIMES: &str = "runner.runtimes";

/// Which network a container joins.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum NetworkMode {
    /// Docker's default bridge.
    #[default]
    Bridge,
    /// The host's network namespace (reaches servers on 127.0.0.1).
    Host,
    /// No network at all.
    None,
}

impl NetworkMode {
    /// Parses `bridge`, `host` or `none`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "bridge" => Some(Self::Bridge),
            "host" => Some(Self::Host),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    fn as_docker(&self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Host => "host",
            Self::None => "none",
        }
    }
}

/// Whether the Docker socket is mounted into the container (never unless asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DockerSocket {
    /// Not mounted: the default.
    #[default]
    Hidden,
    /// `/var/run/docker.sock` is bind-mounted.
    Mounted,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Image reference.
    pub image: String,
    /// Environment, in order; later entries win.
    pub env: Vec<(String, String)>,
    /// Command and arguments.
    pub command: Vec<String>,
    /// User to run the command as (`0` for root).
    pub user: Option<String>,
    /// Labels (our `runner.*` labels among them).
    pub labels: BTreeMap<String, String>,
    /// Network.
    pub network: NetworkMode,
    /// Docker socket access.
    pub docker_socket: DockerSocket,
    /// Directories mounted as an empty, container-private tmpfs.
    pub tmpfs: Vec<String>,
    /// Host directories bind-mounted read-only (only for an engine on this host).
    pub read_only_mounts: Vec<(std::path::PathBuf, String)>,
}

/// What an image says about itself.
#[derive(Debug, Clone, Default)]
pub struct ImageInfo {
    /// Image id.
    pub id: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Errors from the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The runtime could not be reached at all.
    #[error("connect to the docker engine")]
    Connect(#[source] bollard::errors::Error),
    /// The image is not present and could not be pulled.
    #[error("find image `{image}` (not present locally and the pull failed)")]
    ImageMissing {
        /// Image reference.
        image: String,
        /// Why the pull failed.
        #[source]
        source: bollard::errors::Error,
    },
    /// An image could not be built or imported.
    #[error("build image `{image}`: {message}")]
    ImageBuild {
        /// Image reference.
        image: String,
        /// What the builder said.
        message: String,
    },
    /// A call about one container failed.
    #[error("{operation} container {container_id}")]
    Container {
        /// What we were doing (`create`, `start`, `upload to`...).
        operation: &'static str,
        /// Container id (or image, for create).
        container_id: String,
        /// The runtime's error.
        #[source]
        source: bollard::errors::Error,
    },
}

/// A container runtime.
///
/// Every method is cancel-safe in the sense that dropping it leaves at worst a container that
/// [`Executor::remove`] (or the orphan sweep by label) cleans up.
pub trait Executor: Send + Sync {
    /// Makes sure `image` is present (pulling it if needed) and describes it.
    fn ensure_image(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<ImageInfo, ExecutorError>> + Send;

    /// Describes a local image, or `None` if it is not present.
    fn inspect_image(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, ExecutorError>> + Send;

    /// Creates (but does not start) a container; returns its id.
    fn create(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, ExecutorError>> + Send;

    /// Extracts a tar archive into the container at `path`.
    fn upload(
        &self,
        container_id: &str,
        path: &str,
        tar: Bytes,
    ) -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Starts a created container.
    fn start(&self, container_id: &str) -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Streams the container's stdout and stderr, merged, from its start until it exits.
    fn output(&self, container_id: &str) -> BoxStream<'static, Result<Bytes, ExecutorError>>;

    /// Waits for the container to exit and returns its exit code.
    fn wait(&self, container_id: &str) -> impl Future<Output = Result<i64, ExecutorError>> + Send;

    /// Sends SIGTERM, then SIGKILL after `grace`.
    fn stop(
        &self,
        container_id: &str,
        grace: Duration,
    ) -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Streams a tar archive of `path` inside the container (a file or a directory).
    fn download(
        &self,
        container_id: &str,
        path: &str,
    ) -> BoxStream<'static, Result<Bytes, ExecutorError>>;

    /// Removes the container and its anonymous volumes, running or not.
    fn remove(&self, container_id: &str) -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Ids of containers that carry `label=value`.
    fn list_labelled(
        &self,
        label: &str,
        value: &str,
    ) -> impl Future<Output = Result<Vec<String>, ExecutorError>> + Send;
}
