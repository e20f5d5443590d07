//! All Docker calls of the runner, behind one small client. Each operation has its own
//! error, because raw engine errors do not say what the runner was trying to do.
//! Every container the runner creates is tracked until removed, so a panic, a cancelled
//! task or SIGTERM never leaves one behind.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

/// Requests to the engine may last as long as a benchmark run (hours): waiting for a
/// container and following its logs are single requests.
const DOCKER_REQUEST_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Label that marks a container as the runner's, with the slot's runner id as value.
pub const RUNNER_LABEL: &str = "rcb.runner";

/// Label every container of the project carries.
pub const PROJECT_LABEL: (&str, &str) = ("rcb.project", "ruby-cross-cloud-bench");

/// Label of a derived benchmark image: the image it was derived from.
pub const DERIVED_FROM_LABEL: &str = "rcb.bench-image.base";

/// A failed Docker operation.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("building the benchmark image {image} from {base} failed: {message}")]
    Build {
        image: String,
        base: String,
        message: String,
    },
    #[error("failed to connect to the Docker engine: {0}")]
    Connect(#[source] bollard::errors::Error),
    #[error("image {image} is not available locally and could not be pulled: {source}")]
    Pull {
        image: String,
        source: bollard::errors::Error,
    },
    #[error("failed to inspect image {image}: {source}")]
    InspectImage {
        image: String,
        source: bollard::errors::Error,
    },
    #[error("failed to create a container: {0}")]
    Create(#[source] bollard::errors::Error),
    #[error("failed to copy files into the container: {0}")]
    Upload(#[source] bollard::errors::Error),
    #[error("failed to start the container: {0}")]
    Start(#[source] bollard::errors::Error),
    #[error("failed to read the container's output: {0}")]
    Logs(#[source] bollard::errors::Error),
    #[error("failed to wait for the container: {0}")]
    Wait(#[source] bollard::errors::Error),
    #[error("failed to copy files out of the container: {0}")]
    Download(#[source] bollard::errors::Error),
    #[error("failed to stop the container: {0}")]
    Stop(#[source] bollard::errors::Error),
    #[error("failed to remove the container: {0}")]
    Remove(#[source] bollard::errors::Error),
}

/// What a benchmark container is made of.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Image reference.
    pub image: String,
    /// Command and arguments.
    pub cmd: Vec<String>,
    /// Working directory inside the container.
    pub working_dir: Option<String>,
    /// CPUs the container is pinned to (cpuset list).
    pub cpuset: String,
    /// Whether the container gets a network at all.
    pub network: bool,
    /// Runner id of the slot, for the runner label.
    pub runner_id: String,
}

/// The runner's Docker client.
#[derive(Clone)]
pub struct DockerClient {
    docker: Docker,
    live: Arc<Mutex<HashSet<String>>>,
    /// One derived image is built at a time: the slots of a host share it.
    deriving: Arc<tokio::sync::Mutex<()>>,
}

impl DockerClient {
    /// Connects to the local engine (DOCKER_HOST or the default socket) and agrees on an
    /// API version it supports.
    pub async fn connect() -> Result<Self, DockerError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(DockerError::Connect)?
            .with_timeout(DOCKER_REQUEST_TIMEOUT)
            .negotiate_version()
            .await
            .map_err(DockerError::Connect)?;
        docker.ping().await.map_err(DockerError::Connect)?;
        Ok(Self {
            docker,
            live: Arc::default(),
            deriving: Arc::default(),
        })
    }

    /// Makes sure `image` exists locally, pulling it when it does not. Returns its id.
    pub async fn ensure_image(&self, image: &str) -> Result<String, DockerError> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => return Ok(inspect.id.unwrap_or_default()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(source) => {
                return Err(DockerError::InspectImage {
                    image: image.to_owned(),
                    source,
                });
            }
        }
        let (repository, tag) = split_reference(image);
        let options = CreateImageOptionsBuilder::default()
            .from_image(repository)
            .tag(tag)
            .build();
        self.docker
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|source| DockerError::Pull {
                image: image.to_owned(),
                source,
            })?;
        Ok(self.inspect(image).await?.id.unwrap_or_default())
    }

    /// `docker image inspect` of `image`.
    async fn inspect(&self, image: &str) -> Result<bollard::models::ImageInspect, DockerError> {
        self.docker
            .inspect_image(image)
            .await
            .map_err(|source| DockerError::InspectImage {
                image: image.to_owned(),
                source,
            })
    }

    /// The benchmark image derived from `base` (whose id is `base_id`) with the Debian
    /// `packages` installed, built once per host: its tag holds a hash of the base's id and
    /// the packages, so a second task finds it. Returns its reference and id.
    pub async fn ensure_derived_image(
        &self,
        base: &str,
        base_id: &str,
        packages: &[String],
    ) -> Result<(String, String), DockerError> {
        let _one_at_a_time = self.deriving.lock().await;
        let reference = derived_reference(base, base_id, packages);
        if let Ok(inspect) = self.docker.inspect_image(&reference).await {
            return Ok((reference, inspect.id.unwrap_or_default()));
        }
        let failed = |message: String| DockerError::Build {
            image: reference.clone(),
            base: base.to_owned(),
            message,
        };
        let context =
            derived_build_context(base, packages).map_err(|err| failed(err.to_string()))?;
        let labels = HashMap::from([
            (PROJECT_LABEL.0, PROJECT_LABEL.1),
            (DERIVED_FROM_LABEL, base),
        ]);
        let options = BuildImageOptionsBuilder::default()
            .t(&reference)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .build();
        let mut output = self.docker.build_image(
            options,
            None,
            Some(bollard::body_full(Bytes::from(context))),
        );
        let mut last_lines: Vec<String> = Vec::new();
        while let Some(item) = output.next().await {
            let info = item.map_err(|err| failed(err.to_string()))?;
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "no message".to_owned());
                return Err(failed(format!(
                    "{message}; last output: {}",
                    last_lines.join(" | ")
                )));
            }
            if let Some(line) = info
                .stream
                .as_deref()
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                last_lines.push(line.to_owned());
                if last_lines.len() > 5 {
                    last_lines.remove(0);
                }
            }
        }
        let inspect = self
            .docker
            .inspect_image(&reference)
            .await
            .map_err(|err| failed(format!("the built image is not there: {err}")))?;
        Ok((reference, inspect.id.unwrap_or_default()))
    }

    /// The identity of `image` (the runner's own): its id and build labels.
    pub async fn image_identity(&self, image: &str) -> Result<protocol::RunnerImage, DockerError> {
        let inspect = self.inspect(image).await?;
        let labels = inspect
            .config
            .and_then(|config| config.labels)
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(protocol::RunnerImage::from_labels(
            image, inspect.id, &labels,
        ))
    }

    /// Creates a container (not started), tracked until removed.
    pub async fn create(&self, spec: &ContainerSpec) -> Result<ContainerGuard, DockerError> {
        let labels = HashMap::from([
            (PROJECT_LABEL.0.to_owned(), PROJECT_LABEL.1.to_owned()),
            (RUNNER_LABEL.to_owned(), spec.runner_id.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.cmd.clone()),
            working_dir: spec.working_dir.clone(),
            labels: Some(labels),
            network_disabled: Some(!spec.network),
            host_config: Some(HostConfig {
                cpuset_cpus: Some(spec.cpuset.clone()),
                network_mode: Some(if spec.network { "bridge" } else { "none" }.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(DockerError::Create)?;
        self.live
            .lock()
            .expect("the container set is never poisoned")
            .insert(created.id.clone());
        Ok(ContainerGuard {
            client: self.clone(),
            id: created.id,
            removed: false,
        })
    }

    /// Removes every container this runner still tracks (on shutdown).
    pub async fn remove_all(&self) {
        let ids: Vec<String> = self
            .live
            .lock()
            .expect("the container set is never poisoned")
            .drain()
            .collect();
        for id in ids {
            if let Err(err) = self.remove_by_id(&id).await {
                tracing::warn!("{err}");
            }
        }
    }

    async fn remove_by_id(&self, id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                self.live
                    .lock()
                    .expect("the container set is never poisoned")
                    .remove(id);
                Ok(())
            }
            Err(err) => Err(DockerError::Remove(err)),
        }
    }
}

/// A container of the runner's. Removed by `remove`, or in the background if dropped.
pub struct ContainerGuard {
    client: DockerClient,
    id: String,
    removed: bool,
}

impl ContainerGuard {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Copies a tar archive into the container, unpacked at `path`.
    pub async fn upload(&self, path: &str, tar: Bytes) -> Result<(), DockerError> {
        let options = UploadToContainerOptionsBuilder::default()
            .path(path)
            .build();
        self.client
            .docker
            .upload_to_container(&self.id, Some(options), bollard::body_full(tar))
            .await
            .map_err(DockerError::Upload)
    }

    /// Starts the container.
    pub async fn start(&self) -> Result<(), DockerError> {
        self.client
            .docker
            .start_container(&self.id, None)
            .await
            .map_err(DockerError::Start)
    }

    /// Follows the container's stdout and stderr until it exits.
    pub fn logs(&self) -> impl Stream<Item = Result<LogOutput, DockerError>> + use<> {
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        self.client
            .docker
            .logs(&self.id, Some(options))
            .map_err(DockerError::Logs)
    }

    /// Waits for the container to exit and returns its exit code.
    pub async fn wait(&self) -> Result<i64, DockerError> {
        let mut waits = self.client.docker.wait_container(&self.id, None);
        match waits.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // The engine reports a non-zero exit as an error of the wait call.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(err)) => Err(DockerError::Wait(err)),
            None => {
                let inspect = self
                    .client
                    .docker
                    .inspect_container(&self.id, None)
                    .await
                    .map_err(DockerError::Wait)?;
                Ok(inspect
                    .state
                    .and_then(|state| state.exit_code)
                    .unwrap_or(-1))
            }
        }
    }

    /// Copies `path` out of the container as a tar archive.
    pub async fn download(&self, path: &str) -> Result<Bytes, DockerError> {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let chunks: Vec<Bytes> = self
            .client
            .docker
            .download_from_container(&self.id, Some(options))
            .try_collect()
            .await
            .map_err(DockerError::Download)?;
        Ok(chunks.concat().into())
    }

    /// Stops the container: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&self, grace: Duration) -> Result<(), DockerError> {
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        match self
            .client
            .docker
            .stop_container(&self.id, Some(options))
            .await
        {
            // 304: it had already stopped.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(err) => Err(DockerError::Stop(err)),
        }
    }

    /// Removes the container (forcibly, with its anonymous volumes).
    pub async fn remove(mut self) -> Result<(), DockerError> {
        self.removed = true;
        self.client.remove_by_id(&self.id).await
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // Dropped without `remove` (a panic or a cancelled future): remove it in the
        // background; `DockerClient::remove_all` catches it at shutdown otherwise.
        let client = self.client.clone();
        let id = std::mem::take(&mut self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = client.remove_by_id(&id).await {
                    tracing::warn!("container {id}: {err}");
                }
            });
        }
    }
}

/// Splits `repo:tag` (a registry host may carry a port: `host:5000/repo:tag`).
/// `rcb-bench/<repository's last part>:<tag>-<hash>` of a derived image: the hash (FNV-1a,
/// 64 bits) covers the base image's id and the packages.
fn derived_reference(base: &str, base_id: &str, packages: &[String]) -> String {
    let (repository, tag) = split_reference(base);
    let name = repository.rsplit('/').next().unwrap_or(repository);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in base_id
        .bytes()
        .chain(packages.iter().flat_map(|p| p.bytes().chain([0])))
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("rcb-bench/{name}:{tag}-{:012x}", hash >> 16)
}

/// The build context of a derived image: a Dockerfile that installs `packages` on `base`.
fn derived_build_context(base: &str, packages: &[String]) -> std::io::Result<Vec<u8>> {
    // Debian's package names; anything else would be shell in the RUN line.
    let debian_name = |name: &str| {
        name.len() >= 2
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
    };
    if let Some(bad) = packages.iter().find(|name| !debian_name(name)) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{bad:?} is not a Debian package name (BENCH_PACKAGES)"),
        ));
    }
    let dockerfile = format!(
        "FROM {base}\n\
         RUN apt-get update \\\n \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {} \\\n \
         && rm -rf /var/lib/apt/lists/*\n",
        packages.join(" ")
    );
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    builder.into_inner()
}

fn split_reference(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::{derived_build_context, derived_reference, split_reference};

    #[test]
    fn derived_images_are_named_by_their_base_and_packages() {
        let packages = vec!["libyaml-dev".to_owned(), "git".to_owned()];
        let one = derived_reference("ruby:3.4.7", "sha256:aa", &packages);
        assert!(one.starts_with("rcb-bench/ruby:3.4.7-"), "{one}");
        assert_eq!(one, derived_reference("ruby:3.4.7", "sha256:aa", &packages));
        assert_ne!(one, derived_reference("ruby:3.4.7", "sha256:bb", &packages));
        assert_ne!(
            one,
            derived_reference("ruby:3.4.7", "sha256:aa", &packages[..1])
        );
        let mirrored =
            derived_reference("public.ecr.aws/docker/library/ruby:3.4.7", "x", &packages);
        assert!(mirrored.starts_with("rcb-bench/ruby:3.4.7-"), "{mirrored}");
    }

    #[test]
    fn a_derived_image_installs_debian_packages_only() {
        let context = derived_build_context("ruby:3.4.7", &["libyaml-dev".to_owned()]).unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("Dockerfile"));
        let mut dockerfile = String::new();
        std::io::Read::read_to_string(&mut entry, &mut dockerfile).unwrap();
        assert!(dockerfile.starts_with("FROM ruby:3.4.7\n"), "{dockerfile}");
        assert!(
            dockerfile.contains("--no-install-recommends libyaml-dev"),
            "{dockerfile}"
        );
        let err = derived_build_context("ruby:3.4.7", &["a; rm -rf /".to_owned()]).unwrap_err();
        assert!(
            err.to_string().contains("not a Debian package name"),
            "{err}"
        );
    }

    #[test]
    fn references_split_at_the_tag() {
        assert_eq!(split_reference("ruby:3.4.7"), ("ruby", "3.4.7"));
        assert_eq!(split_reference("rcb/ruby:3.1.2"), ("rcb/ruby", "3.1.2"));
        assert_eq!(
            split_reference("registry:5000/ruby"),
            ("registry:5000/ruby", "latest")
        );
        assert_eq!(split_reference("ruby"), ("ruby", "latest"));
    }
}
