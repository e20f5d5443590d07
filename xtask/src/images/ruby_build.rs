//! A Ruby compiled from a Debian source package, for an image whose Ruby Debian's binary
//! package cannot give: Debian builds Ruby 3.3 and later without YJIT (no rustc among their
//! build dependencies), and a benchmark of YJIT needs it. The source is the package's
//! `.orig` tarball, which is Ruby's release tarball, fetched from Debian's mirror and checked
//! against the sha256 of the package's `Sources` entry. It is compiled in a container of a
//! build root file system (no network), installed under `/opt/ruby`, and the installed tree
//! is cached as a tarball keyed by everything it was built from.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use super::Description;
use crate::images;

/// Bumped when the way a Ruby is built changes, so cached builds are made again.
const RUBY_BUILD_RECIPE_VERSION: u32 = 1;

/// Where the built Ruby lives in the image.
pub const PREFIX: &str = "/opt/ruby";

/// A Ruby built from source, in `images.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RubySourceSpec {
    /// The source tarball (a Debian `.orig.tar.xz`).
    pub url: String,
    /// Its sha256, from the package's `Sources` entry.
    pub sha256: String,
    /// The root file system with the compiler and the `-dev` packages.
    pub build_rootfs: String,
    /// Arguments to `./configure` besides `--prefix`.
    pub configure: Vec<String>,
}

/// The cache key of a build: the recipe, the source and its arguments, the build root
/// file system.
pub fn key(spec: &RubySourceSpec, build_rootfs_reference: &str) -> String {
    let text = format!(
        "recipe {RUBY_BUILD_RECIPE_VERSION}\n{}\n{}\n{}\n{build_rootfs_reference}\n",
        spec.url,
        spec.sha256,
        spec.configure.join(" ")
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The tarball of the installed Ruby (`opt/ruby/...`), built when it is not cached.
pub fn installed_tree(
    sh: &Shell,
    description: &Description,
    spec: &RubySourceSpec,
    rebuild_rootfs: bool,
) -> anyhow::Result<(PathBuf, String)> {
    if !description.rootfs.contains_key(&spec.build_rootfs) {
        bail!(
            "images.toml: ruby_source uses unknown rootfs {}",
            spec.build_rootfs
        );
    }
    let build_rootfs = images::ensure_rootfs(sh, description, &spec.build_rootfs, rebuild_rootfs)?;
    let key = key(spec, &build_rootfs);
    let cache = images::cache_dir()?.join("ruby-build");
    sh.create_dir(&cache)?;
    let tree = cache.join(format!("ruby-{}.tar", &key[..16]));
    if tree.exists() {
        return Ok((tree, key));
    }
    let source = fetch_source(sh, &cache, spec)?;
    let started = Instant::now();
    eprintln!(
        "xtask images: building Ruby from {} (a few minutes, once per machine)",
        spec.url
    );
    let work = sh.create_temp_dir()?;
    let out = work.path().to_owned();
    let source_mount = format!("{}:/src.tar.xz:ro", source.display());
    let out_mount = format!("{}:/out", out.display());
    let configure = spec.configure.join(" ");
    let script = format!(
        "set -e; mkdir /build; tar -xJf /src.tar.xz -C /build --strip-components=1; cd /build; \
         ./configure --prefix={PREFIX} {configure} >/out/configure.log 2>&1 || {{ tail -n 40 /out/configure.log; exit 1; }}; \
         make -j\"$(nproc)\" >/out/make.log 2>&1 || {{ tail -n 40 /out/make.log; exit 1; }}; \
         make install >/out/install.log 2>&1 || {{ tail -n 40 /out/install.log; exit 1; }}; \
         tar --numeric-owner -C / -cf /out/ruby.tar {prefix}",
        prefix = PREFIX.trim_start_matches('/')
    );
    let label = format!("{}={}", description.label, description.project);
    cmd!(
        sh,
        "docker run --rm --network none --label {label} -v {source_mount} -v {out_mount} {build_rootfs} sh -c {script}"
    )
    .quiet()
    .run()
    .with_context(|| format!("building Ruby from {} failed (see above)", spec.url))?;
    let partial = tree.with_extension("tar.partial");
    std::fs::copy(out.join("ruby.tar"), &partial)?;
    std::fs::rename(&partial, &tree)?;
    eprintln!(
        "xtask images: Ruby built in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok((tree, key))
}

/// The source tarball in the cache, downloaded and checked when it is not there yet.
fn fetch_source(sh: &Shell, cache: &Path, spec: &RubySourceSpec) -> anyhow::Result<PathBuf> {
    let name = spec
        .url
        .rsplit('/')
        .next()
        .filter(|name| !name.is_empty())
        .with_context(|| format!("images.toml: {} names no file", spec.url))?;
    let path = cache.join(name);
    if !path.exists() {
        let partial = cache.join(format!("{name}.partial"));
        let url = &spec.url;
        cmd!(sh, "curl -fsSL --retry 3 -o {partial} {url}")
            .quiet()
            .run()
            .with_context(|| format!("downloading {url} failed"))?;
        std::fs::rename(&partial, &path)?;
    }
    let bytes = std::fs::read(&path)?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != spec.sha256 {
        std::fs::remove_file(&path)?;
        bail!(
            "{} has sha256 {actual}, not the {} images.toml expects; it was removed",
            spec.url,
            spec.sha256
        );
    }
    Ok(path)
}
