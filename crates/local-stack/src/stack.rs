//! Starting and stopping the local stack.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::distr::{Alphanumeric, SampleString};
use testcontainers::core::{AccessMode, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::docker::check_docker;
use crate::images::catalog;
use crate::plan::RunnerPlan;

/// Label naming the stack a container belongs to.
pub const STACK_LABEL: &str = "rcb.stack";

/// The bucket results go to.
const BUCKET: &str = "rcb-local";

/// How long a service may take to become healthy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

/// What the stack is made of.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The runners: one container per local instance type.
    pub runners: Vec<RunnerPlan>,
    /// The ruby-bench directory runners mount (read-only) and copy into benchmark containers.
    pub ruby_bench_dir: PathBuf,
    /// Repository of benchmark images (`<repo>:<ruby_version>`).
    pub bench_image_repo: String,
    /// Heartbeat interval of the runners, in seconds.
    pub heartbeat_interval_secs: u64,
    /// Settings of the orchestrator beyond the stack's, or instead of them (tests: short
    /// timeouts and URL lifetimes).
    pub orchestrator_env: Vec<(String, String)>,
}

impl StackOptions {
    /// The orchestrator's timeouts for a local run, which is watched closely: dead runners
    /// are found within a minute. [`StackOptions::orchestrator_env`] overrides them.
    fn orchestrator_settings(&self) -> Vec<(String, String)> {
        let mut settings: Vec<(String, String)> = [
            ("HEARTBEAT_TIMEOUT_SECS", "60"),
            ("HEARTBEAT_CHECK_INTERVAL_SECS", "10"),
            ("CLAIM_RETRY_AFTER_SECS", "2"),
            ("NO_RUNNER_TIMEOUT_SECS", "300"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        for (name, value) in &self.orchestrator_env {
            settings.retain(|(known, _)| known != name);
            settings.push((name.clone(), value.clone()));
        }
        settings
    }
}

/// A running local stack.
pub struct LocalStack {
    /// Its id, the value of its containers' `rcb.stack` label.
    pub stack_id: String,
    /// Base URL of the orchestrator's API.
    pub orchestrator_url: String,
    /// The orchestrator's operator key (`API_KEY`): start, stop and read runs.
    pub api_key: String,
    /// The runners' key (`RUNNER_API_KEY`): claim tasks and report on them.
    pub runner_api_key: String,
    /// The dashboard's operator password.
    pub operator_password: String,
    /// The s3-local endpoint.
    pub s3_endpoint: String,
    /// The Postgres database of the orchestrator (tests read tasks there).
    pub database_url: String,
    containers: Vec<ContainerAsync<GenericImage>>,
    /// The instance type of every runner started, in order.
    runner_types: Vec<String>,
    detached: bool,
}

impl LocalStack {
    /// Starts Postgres, s3-local, the orchestrator and the runners, each on free
    /// 127.0.0.1 ports with host networking, and waits until the orchestrator is healthy.
    /// On failure, whatever started is removed.
    pub async fn up(options: &StackOptions) -> anyhow::Result<Self> {
        let stack_id = format!("local-{}", random_token(8).to_lowercase());
        let mut stack = Self {
            orchestrator_url: String::new(),
            api_key: random_token(32),
            runner_api_key: random_token(32),
            operator_password: random_token(20),
            s3_endpoint: String::new(),
            database_url: String::new(),
            stack_id,
            containers: Vec::new(),
            runner_types: Vec::new(),
            detached: false,
        };
        match stack.start_all(options).await {
            Ok(()) => Ok(stack),
            Err(err) => {
                stack.down().await;
                Err(err)
            }
        }
    }

    async fn start_all(&mut self, options: &StackOptions) -> anyhow::Result<()> {
        let postgres_port = free_port()?;
        let s3_port = free_port()?;
        let orchestrator_port = free_port()?;
        let postgres_password = random_token(24);
        let (s3_access_key, s3_secret_key) = (random_token(16), random_token(32));
        self.s3_endpoint = format!("http://127.0.0.1:{s3_port}");
        self.orchestrator_url = format!("http://127.0.0.1:{orchestrator_port}");
        self.database_url =
            format!("postgres://postgres:{postgres_password}@127.0.0.1:{postgres_port}/postgres");

        let postgres = self
            .image(
                "postgres",
                "15",
                WaitFor::message_on_stderr("database system is ready to accept connections"),
            )?
            .with_env_var("POSTGRES_PASSWORD", &postgres_password)
            .with_cmd([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                &format!("port={postgres_port}"),
            ]);
        self.start("postgres", postgres).await?;

        let s3 = self
            .image(
                "s3-local",
                "latest",
                WaitFor::message_on_stdout("s3-local listening"),
            )?
            .with_env_var("S3_LOCAL_LISTEN", format!("127.0.0.1:{s3_port}"))
            .with_env_var("S3_LOCAL_ACCESS_KEY", &s3_access_key)
            .with_env_var("S3_LOCAL_SECRET_KEY", &s3_secret_key)
            .with_env_var("S3_LOCAL_BUCKETS", BUCKET);
        self.start("s3-local", s3).await?;

        let mut orchestrator = self
            .image(
                "orchestrator",
                "latest",
                WaitFor::message_on_stderr("orchestrator listening"),
            )?
            .with_env_var("DATABASE_URL", &self.database_url)
            .with_env_var("API_KEY", &self.api_key)
            .with_env_var("RUNNER_API_KEY", &self.runner_api_key)
            .with_env_var("OPERATOR_PASSWORD", &self.operator_password)
            .with_env_var("LISTEN_ADDR", format!("127.0.0.1:{orchestrator_port}"))
            .with_env_var("S3_BUCKET", BUCKET)
            .with_env_var("S3_ENDPOINT_URL", &self.s3_endpoint)
            .with_env_var("AWS_REGION", "us-east-1")
            .with_env_var("AWS_ACCESS_KEY_ID", &s3_access_key)
            .with_env_var("AWS_SECRET_ACCESS_KEY", &s3_secret_key);
        for (name, value) in options.orchestrator_settings() {
            orchestrator = orchestrator.with_env_var(name, value);
        }
        self.start("orchestrator", orchestrator).await?;
        wait_healthy(&format!("{}/health", self.orchestrator_url)).await?;

        for plan in &options.runners {
            self.add_runner(options, plan).await?;
        }
        Ok(())
    }

    /// Starts one more runner container, of `plan`, with the stack's runner settings (tests:
    /// a runner that comes late). The first runner of an instance type is
    /// `<stack id>-<instance type>`, the n-th `<stack id>-<instance type>-<n>`.
    pub async fn add_runner(
        &mut self,
        options: &StackOptions,
        plan: &RunnerPlan,
    ) -> anyhow::Result<()> {
        let ruby_bench_dir = options.ruby_bench_dir.canonicalize().with_context(|| {
            format!(
                "ruby-bench directory {} not found",
                options.ruby_bench_dir.display()
            )
        })?;
        self.runner_types.push(plan.instance_type.clone());
        let nth = self
            .runner_types
            .iter()
            .filter(|started| **started == plan.instance_type)
            .count();
        let runner_id = if nth == 1 {
            format!("{}-{}", self.stack_id, plan.instance_type)
        } else {
            format!("{}-{}-{nth}", self.stack_id, plan.instance_type)
        };
        let cpuset = plan.cpuset.clone();
        let mut runner = self
            .image(
                "runner",
                "latest",
                WaitFor::message_on_stdout("slot(s) on CPUs"),
            )?
            .with_mount(Mount::bind_mount(
                "/var/run/docker.sock",
                "/var/run/docker.sock",
            ))
            .with_mount(
                Mount::bind_mount(ruby_bench_dir.to_string_lossy(), "/ruby-bench")
                    .with_access_mode(AccessMode::ReadOnly),
            )
            .with_env_var("ORCHESTRATOR_URL", &self.orchestrator_url)
            .with_env_var("RUNNER_API_KEY", &self.runner_api_key)
            .with_env_var("PROVIDER", "local")
            .with_env_var("INSTANCE_TYPE", &plan.instance_type)
            .with_env_var("RUNNER_ID", runner_id)
            .with_env_var("CPUSET", &plan.cpuset)
            .with_env_var("BENCH_IMAGE_REPO", &options.bench_image_repo)
            .with_env_var("RUBY_BENCH_DIR", "/ruby-bench")
            // Its own image, whose id goes into every meta.json (`runner_image`).
            .with_env_var(
                protocol::RunnerImage::ENV,
                catalog().reference("runner", "latest"),
            )
            .with_env_var(
                "HEARTBEAT_INTERVAL_SECS",
                options.heartbeat_interval_secs.to_string(),
            )
            .with_host_config_modifier(move |host_config| {
                // The runner itself stays on its instance's CPUs too.
                host_config.cpuset_cpus = Some(cpuset.clone());
            });
        for (name, value) in &plan.env {
            runner = runner.with_env_var(name, value);
        }
        self.start(&format!("runner {}", plan.instance_type), runner)
            .await
    }

    /// One of the project's images, labelled with the project and this stack, on the
    /// host's network.
    fn image(
        &self,
        name: &str,
        tag: &str,
        ready: WaitFor,
    ) -> anyhow::Result<testcontainers::ContainerRequest<GenericImage>> {
        let catalog = catalog();
        let reference = catalog.reference(name, tag);
        check_docker(&reference).map_err(anyhow::Error::msg)?;
        Ok(
            GenericImage::new(format!("{}/{name}", catalog.prefix), tag.to_owned())
                .with_wait_for(ready)
                .with_network("host")
                .with_label(&catalog.label, &catalog.project)
                .with_label(STACK_LABEL, &self.stack_id)
                .with_startup_timeout(HEALTH_TIMEOUT),
        )
    }

    async fn start(
        &mut self,
        what: &str,
        request: testcontainers::ContainerRequest<GenericImage>,
    ) -> anyhow::Result<()> {
        let container = request
            .start()
            .await
            .with_context(|| format!("failed to start {what}"))?;
        self.containers.push(container);
        Ok(())
    }

    /// Leaves the containers running after this process ends (`cargo xtask local up`);
    /// `cargo xtask local down` removes them by label.
    pub fn detach(mut self) {
        self.detached = true;
    }

    /// Removes every container of the stack, also those started outside this process.
    pub async fn down(self) {
        // Removal is synchronous, in `Drop`, so that a panicking test or an early return
        // tears the stack down as surely as a call to `down`.
        drop(self);
    }

    /// The lines `cargo xtask local up` prints for `eval`/`source`.
    pub fn exports(&self) -> String {
        format!(
            "export ORCHESTRATOR_URL={}\nexport API_KEY={}\nexport DASHBOARD_URL={}/\nexport OPERATOR_PASSWORD={}\nexport RCB_STACK_ID={}\n",
            self.orchestrator_url,
            self.api_key,
            self.orchestrator_url,
            self.operator_password,
            self.stack_id
        )
    }
}

fn random_token(length: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), length)
}

/// A port nothing listens on now (the kernel's choice for port 0).
fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("failed to find a free port")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_healthy(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + HEALTH_TIMEOUT;
    loop {
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            _ if tokio::time::Instant::now() >= deadline => {
                bail!("{url} was not healthy within {HEALTH_TIMEOUT:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let containers = std::mem::take(&mut self.containers);
        if !self.detached
            && let Err(err) =
                crate::docker::remove_labelled(&format!("{STACK_LABEL}={}", self.stack_id))
        {
            eprintln!("local stack {}: {err:#}", self.stack_id);
        }
        // Removed above (or kept on purpose): their own drop would try again.
        for container in containers {
            std::mem::forget(container);
        }
    }
}
