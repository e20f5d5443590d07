//! Settings of the runner, from flags or the environment names of docs/decisions.md.

use std::path::PathBuf;
use std::time::Duration;

use protocol::Provider;

/// How slots map onto CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SlotMode {
    /// One slot per CPU the runner may use (a vCPU, often a hyperthread).
    Vcpu,
    /// One slot per physical core, pinned to its first hyperthread; the sibling stays idle.
    Core,
}

/// Command-line and environment settings of the runner.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "runner",
    version,
    about = "Claims benchmark tasks from the orchestrator and runs ruby-bench in pinned Docker containers"
)]
pub struct RunnerSettings {
    /// Base URL of the orchestrator, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "ORCHESTRATOR_URL")]
    pub orchestrator_url: String,
    /// The runner key of the orchestrator's API (its `RUNNER_API_KEY`): it claims tasks and
    /// reports on them, and opens nothing else.
    #[arg(long, env = "RUNNER_API_KEY", hide_env_values = true)]
    pub runner_api_key: String,
    /// Provider this host belongs to: aws, azure or local.
    #[arg(long, env = "PROVIDER")]
    pub provider: Provider,
    /// Instance type this host is, as named in the run config.
    #[arg(long, env = "INSTANCE_TYPE")]
    pub instance_type: String,
    /// Runner id; default: the cloud instance id from the metadata service, else the host name.
    /// Each slot appends `-<slot>`.
    #[arg(long, env = "RUNNER_ID")]
    pub runner_id: Option<String>,
    /// Number of slots; default: one per CPU (or core) in the CPU set.
    #[arg(long, env = "SLOTS")]
    pub slots: Option<usize>,
    /// One slot per vCPU, or one per physical core.
    #[arg(long, env = "SLOT_MODE", value_enum, default_value = "vcpu")]
    pub slot_mode: SlotMode,
    /// CPUs this runner may use, as a cpuset list (e.g. `0-3` or `2,3`); default: the CPUs
    /// this process may run on.
    #[arg(long, env = "CPUSET")]
    pub cpuset: Option<String>,
    /// Repository of benchmark images; the tag is the task's Ruby version.
    #[arg(long, env = "BENCH_IMAGE_REPO", default_value = "ruby")]
    pub bench_image_repo: String,
    /// Debian packages to add to the benchmark image, once per host, as a comma-separated
    /// list, `none`, or `default`: `protocol::CLOUD_BENCH_PACKAGES` on aws and azure, none on
    /// local (the local images are used as they are, and a local run may be offline).
    #[arg(long, env = "BENCH_PACKAGES")]
    pub bench_packages: Option<String>,
    /// Git URL of ruby-bench, fetched once per host when no directory is given.
    #[arg(
        long,
        env = "RUBY_BENCH_GIT_URL",
        default_value = "https://github.com/ruby/ruby-bench.git"
    )]
    pub ruby_bench_git_url: String,
    /// Pinned ruby-bench commit to check out (full or abbreviated). The default is the
    /// commit whose output formats the site builder and ruby-bench-mini follow
    /// (`protocol::RUBY_BENCH_COMMIT`).
    #[arg(long, env = "RUBY_BENCH_COMMIT", default_value = protocol::RUBY_BENCH_COMMIT)]
    pub ruby_bench_commit: String,
    /// The runner's own image, e.g. `rcb/runner:deploy-arm64` (set in the image by the build):
    /// its id and build labels go into every task's `meta.json` (`runner_image`).
    #[arg(long, env = protocol::RunnerImage::ENV)]
    pub runner_image: Option<String>,
    /// A local ruby-bench directory to use instead of the git checkout (tests, offline hosts).
    #[arg(long, env = "RUBY_BENCH_DIR")]
    pub ruby_bench_dir: Option<PathBuf>,
    /// Where the git checkout of ruby-bench is cached.
    #[arg(
        long,
        env = "RUNNER_CACHE_DIR",
        default_value = "/var/cache/rcb-runner"
    )]
    pub cache_dir: PathBuf,
    /// Seconds between heartbeats.
    #[arg(long, env = "HEARTBEAT_INTERVAL_SECS", default_value_t = 30)]
    pub heartbeat_interval_secs: u64,
    /// For how long to keep retrying the orchestrator when it cannot be reached.
    #[arg(long, env = "CLAIM_RETRY_SECS", default_value_t = 600)]
    pub claim_retry_secs: u64,
    /// How often a task is tried to be prepared (ruby-bench, the benchmark image, the
    /// container) before it is given back and the slot stops claiming.
    #[arg(long, env = "PREPARE_ATTEMPTS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub prepare_attempts: u32,
    /// Seconds before the second attempt to prepare a task; each further one waits twice as
    /// long.
    #[arg(long, env = "PREPARE_RETRY_SECS", default_value_t = 15)]
    pub prepare_retry_secs: u64,
    /// Base URL of the cloud metadata service (tests point it at a stand-in).
    #[arg(
        long,
        env = "METADATA_URL",
        default_value = "http://169.254.169.254",
        hide = true
    )]
    pub metadata_url: String,
}

impl RunnerSettings {
    /// The heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval_secs.max(1))
    }

    /// The pause before the second attempt to prepare a task.
    pub fn prepare_retry(&self) -> Duration {
        Duration::from_secs(self.prepare_retry_secs)
    }

    /// The packages the benchmark image gets ([`Self::bench_packages`]): none means the image
    /// runs as it is.
    pub fn bench_packages(&self) -> Vec<String> {
        match self.bench_packages.as_deref().map(str::trim) {
            Some("none") => Vec::new(),
            Some(list) if list != "default" => list
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
            _ if self.provider == Provider::Local => Vec::new(),
            _ => protocol::CLOUD_BENCH_PACKAGES
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
        }
    }

    /// How long the orchestrator may be unreachable before the runner gives up.
    pub fn claim_retry(&self) -> Duration {
        Duration::from_secs(self.claim_retry_secs)
    }
}
