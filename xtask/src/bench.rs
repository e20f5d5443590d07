//! `cargo xtask bench`: benchmarks of the orchestrator (see BENCHMARKS.md). They need Docker
//! and the images of `cargo xtask images`; Postgres and s3-local are started and removed by the
//! benchmark itself (test-support's labelled containers on 127.0.0.1).

use anyhow::Context;
use xshell::{Shell, cmd};

/// Benchmarks of the orchestrator: task claims and the results archive.
#[derive(clap::Args)]
pub struct Bench {
    #[command(subcommand)]
    command: BenchCommand,
    /// Build with the dev profile instead of release (quicker to build, far slower to run;
    /// the targets in BENCHMARKS.md are for release).
    #[arg(long, global = true)]
    dev: bool,
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
}

impl Bench {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let (name, args) = match self.command {
            BenchCommand::Claims { args } => ("claims", args),
            BenchCommand::Archive { args } => ("archive", args),
        };
        // The benchmark is an example of the orchestrator crate: it uses test-support, a
        // dev-dependency, for its containers. The first release run compiles the dependency
        // tree in release (several minutes on 2 cores); CI never runs it.
        let profile: &[&str] = if self.dev { &[] } else { &["--release"] };
        cmd!(
            sh,
            "cargo run {profile...} --quiet -p orchestrator --example bench -- {name} {args...}"
        )
        .run()
        .with_context(|| format!("the {name} benchmark failed"))
    }
}
