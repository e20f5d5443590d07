//! `cargo xtask deploy --config run.json`: hands over to the Fish master script, which
//! stands up the infrastructure and runs the benchmark. Nothing of the master script is
//! reimplemented here. A cloud config's images are built by the master script itself, once
//! its preflight has read from the clouds which architectures the types need (`cargo xtask
//! deploy-images`); a local config's are the tests' images, built here first.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::images;

/// Run `fish fish/master.fish --config FILE [ARGS...]`, with the local images built first
/// for a local config.
#[derive(clap::Args)]
pub struct Deploy {
    /// The run config (JSON) for the master script.
    #[arg(long)]
    pub config: PathBuf,
    /// Skip building the images (use the ones already in the local Docker engine; for a
    /// cloud config the master script's --no-image-build).
    #[arg(long)]
    pub no_images: bool,
    /// Passed on to the master script, e.g. `-- --allowed-ssh-cidr 203.0.113.7/32 --yes`
    /// (see `fish fish/master.fish --help`).
    #[arg(last = true)]
    pub master_args: Vec<String>,
}

impl Deploy {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        // The shell runs in the workspace root; the config path is the caller's.
        let config = std::path::absolute(&self.config)
            .with_context(|| format!("{}: not a usable path", self.config.display()))?;
        let cloud = is_cloud_config(&config)?;
        if !self.no_images && !cloud {
            // A local config may ask for the Ruby compiled from source.
            images::Images {
                rebuild_rootfs: false,
                skip_ruby_builds: false,
            }
            .run(sh)
            .context("building the images failed; the master script was not started")?;
        }
        let mut args = self.master_args.clone();
        if self.no_images && cloud {
            args.push("--no-image-build".to_owned());
        }
        // The master script talks to the operator (cost estimate, confirmation, progress):
        // it inherits the terminal, and its exit status is ours.
        cmd!(sh, "fish fish/master.fish --config {config} {args...}")
            .quiet()
            .run()
            .context("the master script failed (its messages are above)")?;
        Ok(())
    }
}

/// Whether the run config names cloud instance types (`aws` or `azure`). The master script
/// checks the rest of the config.
fn is_cloud_config(path: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the run config {}", path.display()))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the run config {} is not valid JSON", path.display()))?;
    Ok(["aws", "azure"].iter().any(|provider| {
        config[provider]
            .as_array()
            .is_some_and(|types| !types.is_empty())
    }))
}
