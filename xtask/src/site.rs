//! `cargo xtask site`: builds the results website from `results/` into `public/`.
//! `cargo xtask site bench` is kept as another name of `cargo xtask bench site`.

use std::path::PathBuf;

use anyhow::Context;
use xshell::{Shell, cmd};

/// Build the results website (the `site` crate's binary, dev profile).
#[derive(clap::Args)]
pub struct Site {
    #[command(subcommand)]
    command: Option<SiteCommand>,
    /// The results tree: <run-id>/<instance_type>-<run>/ folders.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Where to write the site.
    #[arg(long, default_value = "public")]
    out: PathBuf,
    /// Hourly prices, CSV: provider,instance_type,region,usd_per_hour.
    #[arg(long)]
    prices: Option<PathBuf>,
    /// An instance type every other is also compared with.
    #[arg(long)]
    baseline: Option<String>,
}

#[derive(clap::Subcommand)]
enum SiteCommand {
    /// Time a build of 1,000 synthetic task folders × 80 benchmarks (release profile; the
    /// first run compiles the site's dependencies in release, about a minute on 2 cores).
    /// The same as `cargo xtask bench site`.
    Bench {
        /// Passed to the benchmark, e.g. `--tasks 100 --repeat 1`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

impl Site {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        if let Some(SiteCommand::Bench { args }) = self.command {
            return crate::bench::run_benchmark(sh, "site", &args, crate::bench::Profile::Release);
        }
        let (results, out) = (self.results, self.out);
        let mut args = vec![
            "--results".into(),
            results.into_os_string(),
            "--out".into(),
            out.into_os_string(),
        ];
        if let Some(prices) = self.prices {
            args.extend(["--prices".into(), prices.into_os_string()]);
        }
        if let Some(baseline) = self.baseline {
            args.extend(["--baseline".into(), baseline.into()]);
        }
        cmd!(sh, "cargo run --quiet -p site -- build {args...}")
            .run()
            .context("the site build failed")
    }
}
