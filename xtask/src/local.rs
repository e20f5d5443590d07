//! `cargo xtask local up|down`: the local stack, detached, for operators and for the
//! master script's local path.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use local_stack::{LocalStack, STACK_LABEL, StackOptions, plan_runners};
use protocol::RunConfig;
use xshell::Shell;

use crate::images::{self, Description};
use crate::setup;

/// The run config of `local up` and `e2e-local` when none is given.
pub const DEFAULT_CONFIG: &str = "fixtures/run.local.json";

/// Default ruby-bench of the local stack: the fast stand-in.
pub const DEFAULT_RUBY_BENCH: &str = "fixtures/ruby-bench-mini";

/// Heartbeat interval of local runners: a local run is short and watched.
const LOCAL_HEARTBEAT_INTERVAL_SECS: u64 = 5;

/// Start or remove the local stack (Postgres, s3-local, orchestrator, runners).
#[derive(clap::Args)]
pub struct Local {
    #[command(subcommand)]
    command: LocalCommand,
}

#[derive(clap::Subcommand)]
enum LocalCommand {
    /// Start a stack for a run config's local instance types, detached; prints
    /// `export ORCHESTRATOR_URL=…`, `export API_KEY=…`, `export DASHBOARD_URL=…` on stdout.
    Up {
        /// The run config whose `local` instance types get a runner each.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The ruby-bench directory runners use.
        #[arg(long, default_value = DEFAULT_RUBY_BENCH)]
        ruby_bench: PathBuf,
    },
    /// Remove the containers of one stack, or of every local stack.
    Down {
        /// The stack id (`RCB_STACK_ID` from `local up`); default: every local stack.
        #[arg(long)]
        stack: Option<String>,
    },
}

impl Local {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        match self.command {
            LocalCommand::Up { config, ruby_bench } => {
                let options = prepare_stack(sh, &config, &ruby_bench)?;
                let stack = runtime()?.block_on(LocalStack::up(&options))?;
                eprintln!(
                    "xtask local: stack {} is up: orchestrator {} with {} runner(s); remove it with: cargo xtask local down --stack {}",
                    stack.stack_id,
                    stack.orchestrator_url,
                    options.runners.len(),
                    stack.stack_id
                );
                print!("{}", stack.exports());
                stack.detach();
                Ok(())
            }
            LocalCommand::Down { stack } => {
                let label = match &stack {
                    Some(id) => format!("{STACK_LABEL}={id}"),
                    None => STACK_LABEL.to_owned(),
                };
                let removed = local_stack::remove_labelled(&label)?;
                if removed.is_empty() {
                    eprintln!(
                        "xtask local: no container of {} to remove",
                        stack.as_deref().unwrap_or("any local stack")
                    );
                } else {
                    eprintln!("xtask local: removed {}", removed.join(", "));
                }
                Ok(())
            }
        }
    }
}

/// Reads the run config, makes sure the images exist, and plans the runners.
pub fn prepare_stack(
    sh: &Shell,
    config_path: &Path,
    ruby_bench: &Path,
) -> anyhow::Result<StackOptions> {
    let config = read_config(config_path)?;
    if config.local.is_empty() {
        bail!(
            "{} has no local instance types: the local stack runs only the \"local\" provider",
            config_path.display()
        );
    }
    setup::ensure_docker(sh)?;
    images::Images {
        rebuild_rootfs: false,
    }
    .run(sh)?;
    let description = Description::load(sh)?;
    let bench_image_repo = format!("{}/ruby", description.prefix);
    let bench_image = format!("{bench_image_repo}:{}", config.ruby_version);
    if local_stack::check_docker(&bench_image).is_err() {
        bail!(
            "{} asks for Ruby {}, but there is no local image {bench_image}: the local Ruby image is tagged with the Ruby it really contains (see `docker images {bench_image_repo}`); set ruby_version to that",
            config_path.display(),
            config.ruby_version
        );
    }
    if !ruby_bench.join("run_benchmarks.rb").is_file() {
        bail!(
            "{} is not a ruby-bench directory: it has no run_benchmarks.rb",
            ruby_bench.display()
        );
    }
    let cpus: Vec<u32> = (0..available_cpus()).collect();
    let runners = plan_runners(&config.local, &cpus)?;
    Ok(StackOptions {
        runners,
        ruby_bench_dir: sh.current_dir().join(ruby_bench),
        bench_image_repo,
        heartbeat_interval_secs: LOCAL_HEARTBEAT_INTERVAL_SECS,
    })
}

/// Parses and validates a run config file, with the orchestrator's own rules.
pub fn read_config(path: &Path) -> anyhow::Result<RunConfig> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the run config {}", path.display()))?;
    RunConfig::from_json(&bytes).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

fn available_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |count| count.get() as u32)
}

/// A runtime for the async parts of xtask.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
