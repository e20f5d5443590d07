//! `cargo xtask bench`: benchmarks of the project's own tools (see BENCHMARKS.md), the
//! `crates/bench` binary. The orchestrator's need Docker and the images of `cargo xtask
//! images`; Postgres and s3-local are started and removed by the benchmark itself
//! (test-support's labelled containers on 127.0.0.1).

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::suite;

/// Benchmarks: task claims, the results archive, the site build.
#[derive(clap::Args)]
pub struct Bench {
    #[command(subcommand)]
    command: BenchCommand,
    /// Build with the dev profile instead of release (quicker to build, far slower to run;
    /// the targets in BENCHMARKS.md are for release).
    #[arg(long, global = true)]
    dev: bool,
    /// Build with the deploy profile, the one the cloud images' binaries are built with
    /// (release, stripped) instead of release.
    #[arg(long, global = true, conflicts_with = "dev")]
    deploy: bool,
}

#[derive(clap::Subcommand)]
enum BenchCommand {
    /// Claims/s and p50/p99 of POST /tasks/claim at 16 and 64 claimers, alternating with a
    /// FOR UPDATE SKIP LOCKED reference (10,000 tasks a round; `-- --help` for options).
    Claims {
        /// Passed to the benchmark, e.g. `--tasks 2000 --claimers 64 --rounds 1`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Time and peak RSS of building results.tar.gz from 1,000 results of 1 MiB, side by side
    /// with `tar czf` of the same files (`-- --help` for options).
    Archive {
        /// Passed to the benchmark, e.g. `--results 100 --rounds 1`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Time a build of the website from 1,000 synthetic task folders × 80 benchmarks
    /// (`-- --help` for options).
    Site {
        /// Passed to the benchmark, e.g. `--tasks 100 --repeat 1`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// What parallel slots do to the numbers: the same benchmarks in pinned containers, one
    /// slot alone, every CPU a slot, one slot per physical core (`-- --help` for options).
    Slots {
        /// The ruby-bench: `auto` (the pinned checkout, fetched once, else ruby-bench-mini),
        /// `mini`, or a directory.
        #[arg(long, default_value = suite::AUTO)]
        ruby_bench: String,
        /// Passed to the benchmark, e.g. `--benchmarks fib,nbody --rounds 5`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

impl Bench {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let (name, args) = match self.command {
            BenchCommand::Claims { args } => ("claims", args),
            BenchCommand::Archive { args } => ("archive", args),
            BenchCommand::Site { args } => ("site", args),
            BenchCommand::Slots { ruby_bench, args } => {
                let ruby_bench = suite::ruby_bench(sh, &ruby_bench)?;
                let mut all = vec![
                    "--ruby-bench".to_owned(),
                    ruby_bench.dir.display().to_string(),
                ];
                all.extend(args);
                ("slots", all)
            }
        };
        let profile = match (self.dev, self.deploy) {
            (true, _) => Profile::Dev,
            (_, true) => Profile::Deploy,
            _ => Profile::Release,
        };
        run_benchmark(sh, name, &args, profile)
    }
}

/// Runs `bench <name> <args>` with only the feature of the crate it measures, so that a
/// release build of the site's benchmark does not compile the orchestrator's dependencies.
/// The first release run of the orchestrator's compiles its dependency tree in release
/// (several minutes on 2 cores); CI never runs them.
/// The cargo profile a benchmark is built with.
#[derive(Clone, Copy)]
pub enum Profile {
    Dev,
    Release,
    Deploy,
}

pub fn run_benchmark(
    sh: &Shell,
    name: &str,
    args: &[String],
    profile: Profile,
) -> anyhow::Result<()> {
    // The slots benchmark needs neither crate: the site's is the lighter build.
    let feature = if matches!(name, "site" | "slots") {
        "site"
    } else {
        "orchestrator"
    };
    let profile: &[&str] = match profile {
        Profile::Dev => &[],
        Profile::Release => &["--release"],
        Profile::Deploy => &["--profile", "deploy"],
    };
    cmd!(
        sh,
        "cargo run {profile...} --quiet -p bench --no-default-features --features {feature} -- {name} {args...}"
    )
    .run()
    .with_context(|| format!("the {name} benchmark failed"))
}
