//! A root file system of another architecture than this machine's, made without running any
//! of its code: `debootstrap --foreign` downloads the packages (checked against Debian's
//! signed release files) and unpacks the required ones; the rest are unpacked here with
//! dpkg-deb, and the two files their maintainer scripts would have written (users and
//! groups, the CA bundle) are written from the files the packages ship. No package is
//! configured: the images only run our binaries and git, which need files, not scripts.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use super::{Description, RootfsSpec, cache_dir, remove_build_dir, rootfs_key};
use crate::deploy_images::Arch;
use crate::setup;

/// Bumped when the way a foreign root file system is made changes, so caches are rebuilt.
const FOREIGN_RECIPE_VERSION: u32 = 1;

/// The cache key of root file system `name` for `arch`, and its cached tarball.
pub fn locate(
    description: &Description,
    name: &str,
    arch: Arch,
) -> anyhow::Result<(String, std::path::PathBuf)> {
    let spec = &description.rootfs[name];
    let key = super::sha256_hex(
        format!(
            "foreign {FOREIGN_RECIPE_VERSION}\n{}\n{}\n",
            arch.debian(),
            rootfs_key(spec)
        )
        .as_bytes(),
    );
    let tarball = cache_dir()?
        .join("rootfs")
        .join(format!("{name}-{}-{key}.tar", arch.debian()));
    Ok((key, tarball))
}

/// Makes sure the tarball of root file system `name` for `arch` is cached, making it when it
/// is not. Returns its path: the first layer of the images on it (`archive_image`).
pub fn ensure(
    sh: &Shell,
    description: &Description,
    name: &str,
    arch: Arch,
) -> anyhow::Result<std::path::PathBuf> {
    let (_, tarball) = locate(description, name, arch)?;
    if !tarball.exists() {
        let started = Instant::now();
        make(sh, &description.rootfs[name], name, arch, &tarball)?;
        eprintln!(
            "xtask deploy-images: root file system {name} ({}) made in {:.1}s",
            arch.debian(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(tarball)
}

/// The debootstrap command of the first stage, as `make` runs it.
pub fn debootstrap_args(spec: &RootfsSpec, arch: Arch, debs: &Path, target: &Path) -> Vec<String> {
    vec![
        "--foreign".to_owned(),
        format!("--arch={}", arch.debian()),
        format!("--variant={}", spec.variant),
        format!("--include={}", spec.packages.join(",")),
        format!("--cache-dir={}", debs.display()),
        spec.suite.clone(),
        target.display().to_string(),
        spec.mirror.clone(),
    ]
}

fn make(
    sh: &Shell,
    spec: &RootfsSpec,
    name: &str,
    arch: Arch,
    tarball: &Path,
) -> anyhow::Result<()> {
    setup::ensure_host_tools(sh, setup::FOREIGN_ROOTFS_TOOLS)?;
    if !setup::is_root(sh) {
        bail!(
            "debootstrap needs root; run `sudo -E cargo xtask deploy-images --arch {}` once, later runs use the cache",
            arch.name()
        );
    }
    let cache = tarball.parent().context("the tarball has a directory")?;
    let debs = cache.join("debs");
    let target = cache.join(format!("build-{name}-{}", arch.debian()));
    sh.create_dir(&debs)?;
    remove_build_dir(sh, &target)?;
    eprintln!(
        "xtask deploy-images: debootstrap --foreign {} {} ({}) into {}",
        arch.debian(),
        spec.suite,
        spec.packages.join(", "),
        target.display()
    );
    let args = debootstrap_args(spec, arch, &debs, &target);
    cmd!(sh, "debootstrap {args...}")
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| {
            format!(
                "debootstrap --foreign failed; its log is {}/debootstrap/debootstrap.log",
                target.display()
            )
        })?;

    // The first stage unpacked the required packages only; the others (the variant's base
    // and the listed ones) wait for a second stage that would run inside the target.
    let state = target.join("debootstrap");
    let base = std::fs::read_to_string(state.join("base"))
        .context("debootstrap left no list of base packages")?;
    let debpaths = std::fs::read_to_string(state.join("debpaths"))
        .context("debootstrap left no list of downloaded packages")?;
    for package in base.split_whitespace() {
        let path = debpaths
            .lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(name, _)| *name == package)
            .map(|(_, path)| target.join(path.trim_start_matches('/')))
            .with_context(|| format!("debootstrap did not download {package}"))?;
        unpack(&path, &target).with_context(|| format!("failed to unpack {package}"))?;
    }
    write_script_outputs(&target)?;

    std::fs::remove_dir_all(&state)?;
    // Package caches and lists are only weight in an image.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        for entry in std::fs::read_dir(target.join(dir))? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::remove_file(path)?;
            }
        }
    }
    let partial = tarball.with_extension("tar.partial");
    cmd!(sh, "tar --numeric-owner -C {target} -cf {partial} .")
        .quiet()
        .run()?;
    std::fs::rename(&partial, tarball)?;
    remove_build_dir(sh, &target)
}

/// Unpacks a .deb's files into `target` as debootstrap does, keeping the merged-/usr links
/// (`/lib` -> `usr/lib`) that a package's own `./lib/` directory would otherwise replace.
fn unpack(deb: &Path, target: &Path) -> anyhow::Result<()> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to start dpkg-deb")?;
    let data = dpkg.stdout.take().context("dpkg-deb has no output")?;
    let tar = Command::new("tar")
        .args(["--keep-directory-symlink", "-xf", "-", "-C"])
        .arg(target)
        .stdin(data)
        .status()
        .context("failed to start tar")?;
    let dpkg = dpkg.wait()?;
    if !dpkg.success() || !tar.success() {
        bail!("dpkg-deb --fsys-tarfile {} | tar -x failed", deb.display());
    }
    Ok(())
}

/// Writes what two maintainer scripts would have: base-passwd's users and groups (from the
/// master files it ships) and ca-certificates' bundle (every certificate it ships, which is
/// what update-ca-certificates selects by default), which git and rustls read.
fn write_script_outputs(target: &Path) -> anyhow::Result<()> {
    let masters = target.join("usr/share/base-passwd");
    for (master, file) in [("passwd.master", "passwd"), ("group.master", "group")] {
        let destination = target.join("etc").join(file);
        if !destination.exists() && masters.join(master).exists() {
            std::fs::copy(masters.join(master), destination)?;
        }
    }
    let shipped = target.join("usr/share/ca-certificates");
    if shipped.is_dir() {
        let mut certificates = Vec::new();
        collect_certificates(&shipped, &mut certificates)?;
        certificates.sort();
        let certs = target.join("etc/ssl/certs");
        std::fs::create_dir_all(&certs)?;
        let mut bundle = std::fs::File::create(certs.join("ca-certificates.crt"))?;
        for certificate in &certificates {
            let pem = std::fs::read(certificate)?;
            bundle.write_all(&pem)?;
            if !pem.ends_with(b"\n") {
                bundle.write_all(b"\n")?;
            }
        }
        if certificates.is_empty() {
            bail!("ca-certificates shipped no certificate");
        }
    }
    Ok(())
}

fn collect_certificates(dir: &Path, found: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_certificates(&path, found)?;
        } else if path.extension().is_some_and(|extension| extension == "crt") {
            found.push(path);
        }
    }
    Ok(())
}
