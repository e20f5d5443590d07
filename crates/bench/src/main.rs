//! Benchmarks of the project's own tools, run by `cargo xtask bench claims|archive|site` (see
//! BENCHMARKS.md).
//!
//! - `claims` ([`claims`], [`reference`]): claims per second and latency over HTTP on
//!   127.0.0.1, the optimistic claim of `POST /tasks/claim` in turn with two reference
//!   `FOR UPDATE SKIP LOCKED` claims served by the same process (the run looked up first, and
//!   all in one statement), with double assignments counted.
//! - `archive` ([`archive`]): building `results.tar.gz` from task results in s3-local, in a
//!   child process whose peak RSS is measured, side by side with `tar czf` of the same files.
//! - `site` ([`site_build`]): a build of the results website from a large synthetic results tree.
//! - `slots` ([`slots`]): what parallel benchmark slots do to the numbers (Docker, a Ruby
//!   image, a ruby-bench directory).
//!
//! The orchestrator's benchmarks run test-support's test orchestrator: Postgres and s3-local in
//! labelled containers on 127.0.0.1 from the images of `cargo xtask images`, removed when the
//! process exits. Each feature (`orchestrator`, `site`) brings the benchmarks of one crate.

#[cfg(feature = "orchestrator")]
mod archive;
#[cfg(feature = "orchestrator")]
mod claims;
#[cfg(feature = "orchestrator")]
mod reference;
#[cfg(feature = "site")]
mod site_build;
mod slots;
#[cfg(feature = "orchestrator")]
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmarks of the orchestrator and the site builder")]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Claims per second and latency at several concurrencies, against a SKIP LOCKED reference.
    #[cfg(feature = "orchestrator")]
    Claims {
        /// Tasks per run; each round claims all of them.
        #[arg(long, default_value_t = 10_000)]
        tasks: u32,
        /// Concurrent claimers, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "16,64")]
        claimers: Vec<usize>,
        /// Rounds per concurrency (each round runs both claims once).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Builds the archive of many results and compares with `tar czf`.
    #[cfg(feature = "orchestrator")]
    Archive {
        /// Task results.
        #[arg(long, default_value_t = 1000)]
        results: u32,
        /// Size of each result's `output.txt`, in KiB.
        #[arg(long, default_value_t = 1024)]
        kib: usize,
        /// Builds of each kind.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Internal: builds one archive and prints its time and peak RSS as JSON.
    #[cfg(feature = "orchestrator")]
    #[command(hide = true)]
    ArchiveWorker {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        access_key: String,
        #[arg(long)]
        secret_key: String,
        #[arg(long)]
        bucket: String,
        #[arg(long)]
        run_id: i64,
    },
    /// Generates a synthetic results tree in a temporary folder and times a build of it.
    #[cfg(feature = "site")]
    Site {
        /// Task folders to generate.
        #[arg(long, default_value_t = 1000)]
        tasks: usize,
        /// Benchmarks per task.
        #[arg(long, default_value_t = 80)]
        benchmarks: usize,
        /// Runs per instance type.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Timed builds (the table shows each and the best).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Generate into this folder and keep it, instead of a temporary folder.
        #[arg(long)]
        keep: Option<std::path::PathBuf>,
    },
    /// The same benchmarks in pinned containers: one slot alone, every CPU a slot, one slot
    /// per physical core; each benchmark's median change against the lone slot.
    Slots {
        /// The benchmark image.
        #[arg(long, default_value = "rcb/ruby:3.3.8")]
        image: String,
        /// A ruby-bench directory (`cargo xtask bench slots` passes the pinned checkout when
        /// it is cached, else ruby-bench-mini).
        #[arg(long)]
        ruby_bench: std::path::PathBuf,
        /// Benchmarks, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "fib,nqueens,binarytrees")]
        benchmarks: Vec<String>,
        /// `yjit` or `interp`.
        #[arg(long, default_value = "yjit", value_parser = ["yjit", "interp"])]
        mode: String,
        /// ruby-bench's warm-up iterations.
        #[arg(long, default_value_t = 3)]
        warmup: u32,
        /// ruby-bench's measured iterations.
        #[arg(long, default_value_t = 10)]
        bench: u32,
        /// Rounds of the three configurations, taking turns.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        #[cfg(feature = "orchestrator")]
        BenchCommand::Claims {
            tasks,
            claimers,
            rounds,
        } => runtime()?.block_on(claims::bench_claims(tasks, &claimers, rounds)),
        #[cfg(feature = "orchestrator")]
        BenchCommand::Archive {
            results,
            kib,
            rounds,
        } => runtime()?.block_on(archive::bench_archive(results, kib, rounds)),
        #[cfg(feature = "orchestrator")]
        BenchCommand::ArchiveWorker {
            database_url,
            endpoint,
            access_key,
            secret_key,
            bucket,
            run_id,
        } => {
            let server = test_support::S3Server {
                endpoint,
                access_key,
                secret_key,
                region: "us-east-1".to_owned(),
            };
            runtime()?.block_on(archive::archive_worker(
                &database_url,
                &server,
                &bucket,
                run_id,
            ))
        }
        #[cfg(feature = "site")]
        BenchCommand::Site {
            tasks,
            benchmarks,
            runs,
            repeat,
            keep,
        } => site_build::run_benchmark(&site_build::BenchSettings {
            tasks,
            benchmarks,
            runs,
            repeat,
            keep,
        }),
        BenchCommand::Slots {
            image,
            ruby_bench,
            benchmarks,
            mode,
            warmup,
            bench,
            rounds,
        } => slots::run_benchmark(&slots::SlotsSettings {
            image,
            ruby_bench,
            benchmarks,
            mode,
            warmup,
            bench,
            rounds,
        }),
    }
}

/// The runtime of the orchestrator's benchmarks.
#[cfg(feature = "orchestrator")]
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
