//! `cargo xtask local up|down`: the local stack, detached, for operators and for the
//! master script's local path.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use local_stack::{LocalStack, STACK_LABEL, StackOptions, plan_runners};
use protocol::RunConfig;
use xshell::Shell;

use crate::images::{self, Description};
use crate::{setup, suite};

/// The run config of `local up` and `e2e-local` when none is given, on ruby-bench-mini.
pub const DEFAULT_CONFIG: &str = "fixtures/run.local.json";

/// The run config when none is given, on the real ruby-bench: benchmarks that need no gems.
pub const DEFAULT_CONFIG_RUBY_BENCH: &str = "fixtures/run.local-ruby-bench.json";

/// The default run on Debian bookworm's Ruby (3.1.2): the test suite's e2e-local run, which
/// needs no Ruby compiled from source.
pub const BOOKWORM_RUBY_CONFIG: &str = "fixtures/run.local-two-rubies.json";

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
        /// The run config whose `local` instance types get a runner each (default:
        /// fixtures/run.local.json on ruby-bench-mini, fixtures/run.local-ruby-bench.json on
        /// the real suite).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The ruby-bench runners use: `auto` (the pinned commit, fetched once per machine,
        /// else the stand-in), `mini` (the stand-in), or a ruby-bench checkout.
        #[arg(long, default_value = suite::AUTO)]
        ruby_bench: String,
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
                let Prepared { options, .. } = prepare_stack(sh, config.as_deref(), &ruby_bench)?;
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

/// A local stack ready to start, and the run config it was planned for.
pub struct Prepared {
    /// What `LocalStack::up` starts.
    pub options: StackOptions,
    /// The run config (the default one for the suite when none was given).
    pub config: PathBuf,
    /// True when the runners measure with ruby-bench-mini, the stand-in.
    pub stand_in: bool,
}

/// Picks the ruby-bench and the run config, makes sure the images exist, picks the
/// benchmark image, and plans the runners.
pub fn prepare_stack(
    sh: &Shell,
    config_path: Option<&Path>,
    ruby_bench: &str,
) -> anyhow::Result<Prepared> {
    setup::ensure_docker(sh)?;
    let ruby_bench = suite::ruby_bench(sh, ruby_bench)?;
    let stand_in = ruby_bench.is_mini;
    let config_path = match config_path {
        Some(path) => path.to_owned(),
        None if ruby_bench.is_mini => PathBuf::from(DEFAULT_CONFIG),
        None => PathBuf::from(DEFAULT_CONFIG_RUBY_BENCH),
    };
    let config = read_config(&config_path)?;
    if config.local.is_empty() {
        bail!(
            "{} has no local instance types: the local stack runs only the \"local\" provider",
            config_path.display()
        );
    }
    // The Rubies compiled from source only when the config asks for a Ruby the others lack.
    images::Images {
        rebuild_rootfs: false,
        skip_ruby_builds: true,
    }
    .run(sh)?;
    let description = Description::load(sh)?;
    let local_ruby = format!("{}/ruby:{}", description.prefix, config.ruby_version);
    let official = format!("ruby:{}", config.ruby_version);
    if !images::image_exists(sh, &local_ruby) && !images::image_exists(sh, &official) {
        images::Images {
            rebuild_rootfs: false,
            skip_ruby_builds: false,
        }
        .run(sh)?;
    }
    let bench_image_repo = suite::bench_image_repo(
        sh,
        &format!("{}/ruby", description.prefix),
        &config.ruby_version,
        &config_path,
    )?;
    let cpus: Vec<u32> = (0..available_cpus()).collect();
    let runners = plan_runners(&config.local, &cpus)?;
    Ok(Prepared {
        options: StackOptions {
            runners,
            ruby_bench_dir: ruby_bench.dir,
            bench_image_repo,
            heartbeat_interval_secs: LOCAL_HEARTBEAT_INTERVAL_SECS,
            orchestrator_env: Vec::new(),
        },
        config: config_path,
        stand_in,
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
