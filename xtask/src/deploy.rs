//! `cargo xtask deploy --config run.json`: builds the images, then hands over to the Fish
//! master script, which stands up the cloud infrastructure and runs the benchmark. Nothing
//! of the master script is reimplemented here.

use std::path::PathBuf;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::images;

/// Build the images, then run `fish fish/master.fish --config FILE [ARGS...]`.
#[derive(clap::Args)]
pub struct Deploy {
    /// The run config (JSON) for the master script.
    #[arg(long)]
    pub config: PathBuf,
    /// Skip building the images (use the ones already in the local Docker engine).
    #[arg(long)]
    pub no_images: bool,
    /// Passed on to the master script, e.g. `-- --allowed-ssh-cidr 203.0.113.7/32 --yes`
    /// (see `fish fish/master.fish --help`).
    #[arg(last = true)]
    pub master_args: Vec<String>,
}

impl Deploy {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        if !self.no_images {
            images::Images {
                rebuild_rootfs: false,
                skip_ruby_builds: true,
            }
            .run(sh)
            .context("building the images failed; the master script was not started")?;
        }
        // The shell runs in the workspace root; the config path is the caller's.
        let config = std::path::absolute(&self.config)
            .with_context(|| format!("{}: not a usable path", self.config.display()))?;
        let args = &self.master_args;
        // The master script talks to the operator (cost estimate, confirmation, progress):
        // it inherits the terminal, and its exit status is ours.
        cmd!(sh, "fish fish/master.fish --config {config} {args...}")
            .quiet()
            .run()
            .context("the master script failed (its messages are above)")?;
        Ok(())
    }
}
