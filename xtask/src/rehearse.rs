//! `cargo xtask rehearse`: one rehearsal of a whole cloud run on this machine
//! (`tests/system/rehearsal.rs`), with what it needs set up first.

use std::time::Instant;

use xshell::{Shell, cmd};

use crate::{images, setup};

/// The master script's cloud path from the preflight to the teardown: the aws CLI against
/// moto, Terraform's stacks applied by booting their hosts from their user data.
#[derive(clap::Args)]
pub struct Rehearse {
    /// Use the images as they are, without checking that they are up to date (they must
    /// exist: cargo xtask images).
    #[arg(long)]
    pub skip_images: bool,
}

impl Rehearse {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let started = Instant::now();
        setup::ensure_host_tools(sh, setup::TEST_TOOLS)?;
        setup::ensure_python_tools(sh)?;
        setup::ensure_docker(sh)?;
        // The tests' images: the rehearsal deploys them (the compiled Rubies it does not use).
        if !self.skip_images {
            images::Images {
                rebuild_rootfs: false,
                skip_ruby_builds: true,
            }
            .run(sh)?;
        }
        // Its phases and the master's lines as they come.
        cmd!(
            sh,
            "cargo test --package system-tests --test system -- rehearsal:: --nocapture"
        )
        .run()?;
        eprintln!(
            "xtask rehearse: the rehearsal passed, {:.0}s in all",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
