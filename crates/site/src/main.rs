//! `site`: builds the results website (`site build`). Its benchmark is `cargo xtask bench site`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "site",
    about = "Build the Ruby Cross Cloud Benchmark results website"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a results tree and write the static site.
    Build {
        /// The results tree: <run-id>/<instance_type>-<run>/ folders.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Where to write the site (replaced when an earlier build wrote it).
        #[arg(long, default_value = "public")]
        out: PathBuf,
        /// Hourly prices that override the run's recorded prices.csv and the shipped table, CSV:
        /// provider,instance_type,region,usd_per_hour[,currency,source,as_of].
        #[arg(long)]
        prices: Option<PathBuf>,
        /// An instance type every other is also compared with.
        #[arg(long)]
        baseline: Option<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("site: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build {
            results,
            out,
            prices,
            baseline,
        } => {
            let report = site::build(&site::BuildSettings {
                results,
                out: out.clone(),
                prices,
                baseline,
                progress: true,
            })?;
            for problem in &report.problems {
                eprintln!("site: warning: {}: {}", problem.path, problem.reason);
            }
            eprintln!(
                "site: built {} runs from {} task folders into {} ({} files, {} unreadable)",
                report.runs,
                report.tasks,
                out.display(),
                report.files,
                report.problems.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
