//! [`Executor`] on the Docker Engine API, through bollard.
//!
//! Containers are never privileged and never see the Docker socket unless the spec asks. Images
//! that are missing are pulled; building images from `runners/` lives in [`super::images`].
//! With a [`WarmPool`], `create` hands out an idle container of the same shape when there is one
//! and `start` tells it to go.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use tracing::{debug, info, warn};

use super::pool::{self, Shape, Warmer};
use super::{ContainerSpec, DockerSocket, Executor, ExecutorError, ImageInfo, WarmPool};

/// The Docker Engine, reached through its local socket (or `DOCKER_HOST`).
#[derive(Debug, Clone)]
pub struct DockerExecutor {
    docker: Docker,
    pool: Option<Arc<WarmPool>>,
}

impl DockerExecutor {
    /// Connects to the local engine and negotiates the API version.
    pub async fn connect() -> Result<Self, ExecutorError> {
        let docker = Docker::connect_with_defaults().map_err(ExecutorError::Connect)?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(ExecutorError::Connect)?;
        Ok(Self { docker, pool: None })
    }

    /// Serves builds from `pool` when it has an idle container of their shape.
    #[must_use]
    pub fn with_warm_pool(mut self, pool: WarmPool) -> Self {
        self.pool = Some(Arc::new(pool));
        self
    }

    /// Removes the pool's idle containers and stops making new ones (for shutdown).
    pub async fn drain_warm_pool(&self) {
        if let Some(pool) = &self.pool {
            pool.drain(&self.without_pool()).await;
        }
    }

    /// Removes the containers a previous owner's pool left (idle, or claimed by a build that
    /// died with it); returns how many.
    pub async fn sweep_warm_pool(&self, owner: &str) -> Result<usize, ExecutorError> {
        let left = self.list_labelled(super::LABEL_POOL, owner).await?;
        for id in &left {
            self.remove(id).await?;
        }
        Ok(left.len())
    }

    /// This engine as the pool's [`Warmer`]: its calls must not go through the pool again.
    fn without_pool(&self) -> Self {
        Self {
            docker: self.docker.clone(),
            pool: None,
        }
    }

    /// The underlying client, for image building.
    pub(crate) fn client(&self) -> &Docker {
        &self.docker
    }

    async fn pull(&self, image: &str) -> Result<(), bollard::errors::Error> {
        let options = CreateImageOptionsBuilder::new().from_image(image).build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            let step = step?;
            if let Some(status) = step.status {
                debug!(image, status, "pull");
            }
        }
        Ok(())
    }
}

fn container_error(
    operation: &'static str,
    container_id: &str,
) -> impl FnOnce(bollard::errors::Error) -> ExecutorError {
    let container_id = container_id.to_owned();
    move |source| ExecutorError::Container {
        operation,
        container_id,
        source,
    }
}

fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Executor for DockerExecutor {
    async fn ensure_image(&self, image: &str) -> Result<ImageInfo, ExecutorError> {
        if let Some(info) = self.inspect_image(image).await? {
            return Ok(info);
        }
        info!(image, "pulling image");
        self.pull(image)
            .await
            .map_err(|source| ExecutorError::ImageMissing {
                image: image.to_owned(),
                source,
            })?;
        self.inspect_image(image)
            .await?
            .ok_or_else(|| ExecutorError::ImageBuild {
                image: image.to_owned(),
                message: "the image is still missing after a successful pull".into(),
            })
    }

    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>, ExecutorError> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(ImageInfo {
                id: inspect.id.unwrap_or_default(),
                labels: inspect
                    .config
                    .and_then(|config| config.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            })),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(source) => Err(ExecutorError::ImageMissing {
                image: image.to_owned(),
                source,
            }),
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, ExecutorError> {
        if let (Some(pool), Some(shape)) = (&self.pool, Shape::of(spec)) {
            let engine = self.without_pool();
            let claimed = pool.claim(&engine, &shape, spec).await;
            // No await between the claim and its return: a cancelled build loses nothing.
            pool.refill(&engine, &shape);
            if let Some(id) = claimed {
                return Ok(id);
            }
        }
        create_container(&self.docker, spec, false).await
    }

    async fn upload(
        &self,
        container_id: &str,
        path: &str,
        tar: Bytes,
    ) -> Result<(), ExecutorError> {
        let options = UploadToContainerOptionsBuilder::new().path(path).build();
        self.docker
            .upload_to_container(container_id, Some(options), bollard::body_full(tar))
            .await
            .map_err(container_error("upload to", container_id))
    }

    async fn start(&self, container_id: &str) -> Result<(), ExecutorError> {
        if let Some(archive) = self
            .pool
            .as_ref()
            .and_then(|pool| pool.take_claimed(container_id))
        {
            // Bounded: a go that hangs must not outlive the build's own timeout unnoticed.
            let go = pool::go(&self.docker, container_id, &archive);
            return match tokio::time::timeout(Duration::from_secs(60), go).await {
                Ok(result) => result.map_err(container_error("start", container_id)),
                Err(_) => Err(container_error("start", container_id)(
                    bollard::errors::Error::RequestTimeoutError,
                )),
            };
        }
        self.docker
            .start_container(
                container_id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(container_error("start", container_id))
    }

    fn output(&self, container_id: &str) -> BoxStream<'static, Result<Bytes, ExecutorError>> {
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let id = container_id.to_owned();
        self.docker
            .logs(container_id, Some(options))
            .map_ok(bollard::container::LogOutput::into_bytes)
            .map_err(move |source| ExecutorError::Container {
                operation: "read the output of",
                container_id: id.clone(),
                source,
            })
            .boxed()
    }

    async fn wait(&self, container_id: &str) -> Result<i64, ExecutorError> {
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut stream = self.docker.wait_container(container_id, Some(options));
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard reports a non-zero exit as an error; it is an outcome, not a failure.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(source)) => Err(container_error("wait for", container_id)(source)),
            None => Ok(0),
        }
    }

    async fn stop(&self, container_id: &str, grace: Duration) -> Result<(), ExecutorError> {
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        match self
            .docker
            .stop_container(container_id, Some(options))
            .await
        {
            // 304: already stopped; 404: already gone. Both mean the container is not running.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(source) => Err(container_error("stop", container_id)(source)),
        }
    }

    fn download(
        &self,
        container_id: &str,
        path: &str,
    ) -> BoxStream<'static, Result<Bytes, ExecutorError>> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let id = container_id.to_owned();
        self.docker
            .download_from_container(container_id, Some(options))
            .map_err(move |source| ExecutorError::Container {
                operation: "download from",
                container_id: id.clone(),
                source,
            })
            .boxed()
    }

    async fn remove(&self, container_id: &str) -> Result<(), ExecutorError> {
        if let Some(pool) = &self.pool {
            pool.take_claimed(container_id);
        }
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self
            .docker
            .remove_container(container_id, Some(options))
            .await
        {
            Err(error) if is_not_found(&error) => Ok(()),
            other => other.map_err(container_error("remove", container_id)),
        }
    }

    async fn list_labelled(&self, label: &str, value: &str) -> Result<Vec<String>, ExecutorError> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{label}={value}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(container_error("list", label))?;
        Ok(containers.into_iter().filter_map(|c| c.id).collect())
    }
}

/// Creates a container of `spec`; `open_stdin` keeps its stdin open for a warm pool's go line.
async fn create_container(
    docker: &Docker,
    spec: &ContainerSpec,
    open_stdin: bool,
) -> Result<String, ExecutorError> {
    let mut binds: Vec<String> = spec
        .read_only_mounts
        .iter()
        .map(|(host, container)| format!("{}:{container}:ro", host.display()))
        .collect();
    if spec.docker_socket == DockerSocket::Mounted {
        binds.push("/var/run/docker.sock:/var/run/docker.sock".to_owned());
    }
    let host_config = HostConfig {
        network_mode: Some(spec.network.as_docker().to_owned()),
        privileged: Some(false),
        binds: (!binds.is_empty()).then_some(binds),
        tmpfs: (!spec.tmpfs.is_empty()).then(|| {
            spec.tmpfs
                .iter()
                .map(|path| (path.clone(), "rw,exec,nosuid,mode=1777".to_owned()))
                .collect()
        }),
        ..HostConfig::default()
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(spec.command.clone()),
        env: Some(
            spec.env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        ),
        user: spec.user.clone(),
        labels: Some(spec.labels.clone().into_iter().collect::<HashMap<_, _>>()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        attach_stdin: Some(open_stdin),
        open_stdin: Some(open_stdin),
        stdin_once: Some(open_stdin),
        tty: Some(false),
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    };
    let options = CreateContainerOptionsBuilder::new().build();
    let created = docker
        .create_container(Some(options), body)
        .await
        .map_err(container_error("create", &spec.image))?;
    Ok(created.id)
}

/// The Docker calls of the warm pool, on a [`DockerExecutor`] without one.
impl Warmer for DockerExecutor {
    async fn image_id(&self, image: &str) -> Result<Option<String>, ExecutorError> {
        Ok(self.inspect_image(image).await?.map(|info| info.id))
    }

    async fn running(&self, id: &str) -> bool {
        let inspect = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await;
        inspect.is_ok_and(|container| {
            container
                .state
                .and_then(|state| state.running)
                .unwrap_or(false)
        })
    }

    async fn create_idle(&self, spec: &ContainerSpec) -> Result<String, ExecutorError> {
        let id = create_container(&self.docker, spec, true).await?;
        if let Err(error) = self.start(&id).await {
            self.discard(&id).await;
            return Err(error);
        }
        Ok(id)
    }

    async fn discard(&self, id: &str) {
        if let Err(error) = self.remove(id).await {
            warn!(container_id = id, error = %error, "could not remove a warm container");
        }
    }
}
