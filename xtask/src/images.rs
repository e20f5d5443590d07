//! `cargo xtask images`: every image the tests and the local provider use, built with no
//! image registry. A Debian root file system made with debootstrap is brought in with
//! `docker import`; thin images add workspace binaries (dev profile, as the tests use)
//! and files on top. Everything is keyed by a hash of its inputs, so a second run with
//! nothing changed only compares labels.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::setup;
use ruby_build::RubySourceSpec;

mod archive_image;
pub mod foreign_rootfs;
mod ruby_build;

/// Where the image description lives, relative to the workspace root.
const DESCRIPTION_PATH: &str = "xtask/images/images.toml";

/// Bumped when the way a root file system is made changes, so caches are rebuilt.
const ROOTFS_RECIPE_VERSION: u32 = 1;

/// Bumped when the way thin images are assembled changes (the Dockerfile does not show
/// everything, e.g. file modes), so images are rebuilt.
const IMAGE_RECIPE_VERSION: u32 = 2;

/// Label holding the hash of everything an image was built from.
const INPUT_HASH_LABEL: &str = "rcb.input-hash";

/// Label naming which image of the description an image is.
const IMAGE_NAME_LABEL: &str = "rcb.image";

/// Build every image the tests and the local provider use.
#[derive(clap::Args)]
pub struct Images {
    /// Make the root file systems again even when a cached one exists.
    #[arg(long)]
    pub rebuild_rootfs: bool,
    /// Leave out the Ruby images compiled from source (`ruby_source` in images.toml): their
    /// first build takes 5 to 15 minutes, and the test suite runs on Debian's Ruby.
    #[arg(long)]
    pub skip_ruby_builds: bool,
}

impl Images {
    /// Every image (`skip_ruby_builds`: but those whose Ruby is compiled here).
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let description = Description::load(sh)?;
        build_all(sh, &description, self.rebuild_rootfs, self.skip_ruby_builds)
    }
}

/// The image description in `xtask/images/images.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    pub prefix: String,
    pub label: String,
    pub project: String,
    pub rootfs: BTreeMap<String, RootfsSpec>,
    pub image: Vec<ImageSpec>,
}

/// A Debian root file system made with debootstrap.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootfsSpec {
    pub suite: String,
    pub variant: String,
    pub mirror: String,
    pub packages: Vec<String>,
}

/// A thin image on a root file system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub name: String,
    pub tag: Option<String>,
    #[serde(default)]
    pub tag_from_ruby_version: bool,
    pub rootfs: String,
    pub binary: Option<String>,
    #[serde(default)]
    pub files: Vec<FileSpec>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<u16>,
    pub stop_signal: Option<String>,
    /// A Ruby compiled from source into `/opt/ruby` (see `ruby_build`).
    pub ruby_source: Option<RubySourceSpec>,
}

/// A file of the repository copied into an image.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub src: String,
    pub dest: String,
}

impl Description {
    pub fn load(sh: &Shell) -> anyhow::Result<Self> {
        let text = sh.read_file(DESCRIPTION_PATH)?;
        let description: Self =
            toml::from_str(&text).with_context(|| format!("failed to parse {DESCRIPTION_PATH}"))?;
        for image in &description.image {
            if !description.rootfs.contains_key(&image.rootfs) {
                bail!(
                    "{DESCRIPTION_PATH}: image {} uses unknown rootfs {}",
                    image.name,
                    image.rootfs
                );
            }
            if image.tag.is_some() == image.tag_from_ruby_version {
                bail!(
                    "{DESCRIPTION_PATH}: image {} needs exactly one of tag and tag_from_ruby_version",
                    image.name
                );
            }
        }
        Ok(description)
    }

    /// The image repository of `name`, e.g. `rcb/runner`.
    pub fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }
}

fn build_all(
    sh: &Shell,
    description: &Description,
    rebuild_rootfs: bool,
    skip_ruby_builds: bool,
) -> anyhow::Result<()> {
    setup::ensure_docker(sh)?;
    let started = Instant::now();
    let binaries = build_binaries(sh, description)?;
    let mut rootfs_refs = BTreeMap::new();
    for image in &description.image {
        if skip_ruby_builds && image.ruby_source.is_some() {
            eprintln!(
                "xtask images: {}/{} on {:<14} left out (a Ruby compiled from source; `cargo xtask images` builds it)",
                description.prefix, image.name, image.rootfs
            );
            continue;
        }
        if !rootfs_refs.contains_key(&image.rootfs) {
            let reference = ensure_rootfs(sh, description, &image.rootfs, rebuild_rootfs)?;
            rootfs_refs.insert(image.rootfs.clone(), reference);
        }
        let step = Instant::now();
        let (reference, built) = build_image(
            sh,
            description,
            image,
            &rootfs_refs[&image.rootfs],
            &binaries,
            rebuild_rootfs,
            &Variant::default(),
        )?;
        let status = if built {
            format!("built in {:.1}s", step.elapsed().as_secs_f64())
        } else {
            "up to date".into()
        };
        eprintln!("xtask images: {reference:<28} {status}");
    }
    eprintln!(
        "xtask images: done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Builds the workspace binaries the images copy, with the profile the tests use.
fn build_binaries(
    sh: &Shell,
    description: &Description,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let names: Vec<&str> = description
        .image
        .iter()
        .filter_map(|image| image.binary.as_deref())
        .collect();
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let packages: Vec<String> = names
        .iter()
        .flat_map(|name| ["--package".to_owned(), (*name).to_owned()])
        .collect();
    cmd!(sh, "cargo build --bins {packages...}")
        .run()
        .context("failed to build the image binaries")?;
    let target_dir = target_dir(sh)?;
    Ok(names
        .iter()
        .map(|name| ((*name).to_owned(), target_dir.join("debug").join(name)))
        .collect())
}

/// Cargo's target directory, honouring CARGO_TARGET_DIR and config files.
pub fn target_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    let metadata = cmd!(sh, "cargo metadata --format-version 1 --no-deps")
        .quiet()
        .read()?;
    let metadata: serde_json::Value = serde_json::from_str(&metadata)?;
    let dir = metadata["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// Makes sure the root file system image exists: from Docker, else from the cached
/// tarball, else with debootstrap. Returns its image reference.
pub fn ensure_rootfs(
    sh: &Shell,
    description: &Description,
    name: &str,
    rebuild: bool,
) -> anyhow::Result<String> {
    let spec = &description.rootfs[name];
    let key = rootfs_key(spec);
    let reference = rootfs_reference(description, name, &key);
    if !rebuild && image_exists(sh, &reference) {
        return Ok(reference);
    }
    let cache = cache_dir()?.join("rootfs");
    sh.create_dir(&cache)?;
    let tarball = cache.join(format!("{name}-{key}.tar"));
    if rebuild || !tarball.exists() {
        let started = Instant::now();
        debootstrap(sh, spec, &cache, name, &tarball)?;
        eprintln!(
            "xtask images: root file system {name} made in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    let label = format!("LABEL {}={}", description.label, description.project);
    cmd!(sh, "docker import --change {label} {tarball} {reference}")
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("failed to import {}", tarball.display()))?;
    Ok(reference)
}

/// The image a root file system is imported as: `<prefix>/rootfs-<name>:<key's first 16>`.
fn rootfs_reference(description: &Description, name: &str, key: &str) -> String {
    format!(
        "{}:{}",
        description.repository(&format!("rootfs-{name}")),
        &key[..16]
    )
}

/// Whether root file system `name` of this machine's architecture is in Docker or cached, so
/// that no debootstrap is needed.
pub fn rootfs_cached(sh: &Shell, description: &Description, name: &str) -> anyhow::Result<bool> {
    let spec = &description.rootfs[name];
    let key = rootfs_key(spec);
    let reference = rootfs_reference(description, name, &key);
    Ok(image_exists(sh, &reference)
        || cache_dir()?
            .join("rootfs")
            .join(format!("{name}-{key}.tar"))
            .exists())
}

/// The cache key of a root file system: a hash of everything it is made from.
pub fn rootfs_key(spec: &RootfsSpec) -> String {
    let mut packages = spec.packages.clone();
    packages.sort();
    sha256_hex(
        format!(
            "recipe {ROOTFS_RECIPE_VERSION}\n{}\n{}\n{}\n{}\n",
            spec.suite,
            spec.variant,
            spec.mirror,
            packages.join(",")
        )
        .as_bytes(),
    )
}

fn debootstrap(
    sh: &Shell,
    spec: &RootfsSpec,
    cache: &Path,
    name: &str,
    tarball: &Path,
) -> anyhow::Result<()> {
    setup::ensure_host_tools(sh, setup::IMAGE_TOOLS)?;
    if !setup::is_root(sh) {
        bail!(
            "debootstrap needs root; run `sudo -E cargo xtask images` once, later runs use the cache"
        );
    }
    let debs = cache.join("debs");
    let target = cache.join(format!("build-{name}"));
    sh.create_dir(&debs)?;
    remove_build_dir(sh, &target)?;
    let RootfsSpec {
        suite,
        variant,
        mirror,
        packages,
    } = spec;
    let include = format!("--include={}", packages.join(","));
    let variant = format!("--variant={variant}");
    let cache_arg = format!("--cache-dir={}", debs.display());
    eprintln!(
        "xtask images: debootstrap {suite} ({}) into {}",
        packages.join(", "),
        target.display()
    );
    let result = cmd!(
        sh,
        "debootstrap {variant} {include} {cache_arg} {suite} {target} {mirror}"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .with_context(|| {
        format!(
            "debootstrap failed; its log is {}/debootstrap/debootstrap.log",
            target.display()
        )
    });
    if let Err(err) = result {
        let log = target.join("debootstrap/debootstrap.log");
        if let Ok(text) = std::fs::read_to_string(&log) {
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        return Err(err);
    }
    // Package caches and lists are only weight in an image.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let dir = target.join(dir);
        for entry in std::fs::read_dir(&dir)? {
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

/// Removes a debootstrap target, unmounting what a failed run may have left mounted
/// inside it first, so that nothing outside it is ever deleted.
pub fn remove_build_dir(sh: &Shell, target: &Path) -> anyhow::Result<()> {
    if !target.exists() {
        return Ok(());
    }
    let mounts = std::fs::read_to_string("/proc/mounts")?;
    let prefix = format!("{}/", target.display());
    let mut inside: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter(|mount_point| mount_point.starts_with(&prefix))
        .collect();
    inside.sort_by_key(|mount_point| std::cmp::Reverse(mount_point.len()));
    for mount_point in inside {
        cmd!(sh, "umount -l {mount_point}").quiet().run()?;
    }
    cmd!(sh, "rm -rf --one-file-system {target}")
        .quiet()
        .run()?;
    Ok(())
}

/// How an image differs from its description: the deployed images (`deploy_images`) have a
/// tag, labels and environment of their own. The default is the description's
/// image as the tests use it.
#[derive(Debug, Default)]
pub struct Variant {
    /// The tag instead of the description's.
    pub tag: Option<String>,
    /// Labels beside the project's, name and input hash.
    pub labels: Vec<(String, String)>,
    /// Environment beside the description's.
    pub env: Vec<(String, String)>,
}

/// Builds one thin image unless an image with the same input hash exists. Returns its
/// reference and whether it was built.
pub fn build_image(
    sh: &Shell,
    description: &Description,
    image: &ImageSpec,
    rootfs: &str,
    binaries: &BTreeMap<String, PathBuf>,
    rebuild_rootfs: bool,
    variant: &Variant,
) -> anyhow::Result<(String, bool)> {
    let context = sh.create_temp_dir()?;
    let mut dockerfile = format!("FROM {rootfs}\n");
    let mut hasher = Sha256::new();
    hasher.update(format!("recipe {IMAGE_RECIPE_VERSION}\n"));
    // Only a variant adds to the hash: the tests' images keep theirs.
    if let Some(tag) = &variant.tag {
        hasher.update(format!("tag {tag}\n"));
    }
    if let Some(source) = &image.ruby_source {
        let (tree, key) = ruby_build::installed_tree(sh, description, source, rebuild_rootfs)?;
        hasher.update(format!("ruby {key}\n"));
        std::fs::hard_link(&tree, context.path().join("ruby.tar"))
            .or_else(|_| std::fs::copy(&tree, context.path().join("ruby.tar")).map(drop))?;
        // The legacy builder unpacks a local tar given to ADD.
        writeln!(dockerfile, "ADD ruby.tar /")?;
    }
    if let Some(binary) = &image.binary {
        let path = &binaries[binary];
        let bytes =
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        hasher.update(&bytes);
        write_executable(&context.path().join(binary), &bytes)?;
        writeln!(dockerfile, "COPY {binary} /usr/local/bin/{binary}")?;
    }
    for (index, file) in image.files.iter().enumerate() {
        let bytes = sh.read_binary_file(&file.src)?;
        hasher.update(&bytes);
        let name = format!("file-{index}");
        write_executable(&context.path().join(&name), &bytes)?;
        writeln!(dockerfile, "COPY {name} {}", file.dest)?;
    }
    for (key, value) in image
        .env
        .iter()
        .chain(variant.env.iter().map(|(k, v)| (k, v)))
    {
        writeln!(dockerfile, "ENV {key}={}", serde_json::to_string(value)?)?;
    }
    for port in &image.ports {
        writeln!(dockerfile, "EXPOSE {port}")?;
    }
    if let Some(signal) = &image.stop_signal {
        writeln!(dockerfile, "STOPSIGNAL {signal}")?;
    }
    if let Some(entrypoint) = &image.entrypoint {
        writeln!(
            dockerfile,
            "ENTRYPOINT {}",
            serde_json::to_string(entrypoint)?
        )?;
    }
    if let Some(command) = &image.cmd {
        writeln!(dockerfile, "CMD {}", serde_json::to_string(command)?)?;
    }
    for (name, value) in &variant.labels {
        writeln!(dockerfile, "LABEL {name}={}", serde_json::to_string(value)?)?;
    }
    hasher.update(dockerfile.as_bytes());
    let input_hash = hex::encode(hasher.finalize());
    writeln!(
        dockerfile,
        "LABEL {}={} {IMAGE_NAME_LABEL}={} {INPUT_HASH_LABEL}={input_hash}",
        description.label, description.project, image.name
    )?;

    let repository = description.repository(&image.name);
    if let Some(existing) = find_image_by_hash(sh, &repository, &input_hash)? {
        return Ok((existing, false));
    }
    std::fs::write(context.path().join("Dockerfile"), dockerfile)?;
    // A tag of its own per variant: a test build and a deploy build may run at once.
    let building = match &variant.tag {
        Some(tag) => format!("{repository}:building-{tag}"),
        None => format!("{repository}:building"),
    };
    let context_dir = context.path();
    // The legacy builder resolves FROM against local images and never needs buildx.
    let output = cmd!(sh, "docker build --quiet --tag {building} {context_dir}")
        .env("DOCKER_BUILDKIT", "0")
        .quiet()
        .ignore_status()
        .output()?;
    if !output.status.success() {
        bail!(
            "failed to build {repository}:\n{}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let tag = match (&variant.tag, &image.tag) {
        (Some(tag), _) | (None, Some(tag)) => tag.clone(),
        (None, None) => ruby_version(sh, &building)?,
    };
    let reference = format!("{repository}:{tag}");
    cmd!(sh, "docker tag {building} {reference}")
        .quiet()
        .run()?;
    cmd!(sh, "docker rmi {building}")
        .quiet()
        .ignore_stdout()
        .run()?;
    Ok((reference, true))
}

/// Bumped when the way images of another architecture are assembled changes.
const ARCHIVE_RECIPE_VERSION: u32 = 1;

/// The default PATH of Debian's root file systems, for images assembled without a builder
/// (which would inherit it from nothing).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Builds one image of `image` for another architecture than the engine's, on the root file
/// system tarball `rootfs`, as a `docker save` archive (`archive_image`), unless an image
/// with the same input hash exists. Returns its reference and whether it was built.
pub fn build_foreign_image(
    sh: &Shell,
    description: &Description,
    image: &ImageSpec,
    rootfs: &Path,
    binaries: &BTreeMap<String, PathBuf>,
    variant: &Variant,
    architecture: &str,
) -> anyhow::Result<(String, bool)> {
    if image.ruby_source.is_some() {
        bail!(
            "image {} compiles Ruby: it is built for this machine only",
            image.name
        );
    }
    let tag = variant
        .tag
        .as_deref()
        .or(image.tag.as_deref())
        .with_context(|| {
            format!(
                "image {} needs a fixed tag for another architecture",
                image.name
            )
        })?;
    let repository = description.repository(&image.name);
    let reference = format!("{repository}:{tag}");
    let mut files = Vec::new();
    if let Some(binary) = &image.binary {
        let path = &binaries[binary];
        let bytes =
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        files.push((format!("/usr/local/bin/{binary}"), bytes));
    }
    for file in &image.files {
        files.push((file.dest.clone(), sh.read_binary_file(&file.src)?));
    }
    let extra_env = image
        .env
        .iter()
        .chain(variant.env.iter().map(|(k, v)| (k, v)));
    let mut env: Vec<String> = extra_env
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if !env.iter().any(|entry| entry.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    let mut labels: BTreeMap<String, String> = variant.labels.iter().cloned().collect();
    labels.insert(description.label.clone(), description.project.clone());
    labels.insert(IMAGE_NAME_LABEL.to_owned(), image.name.clone());
    let archive = archive_image::ArchiveImage {
        reference: &reference,
        architecture,
        rootfs,
        files,
        env,
        entrypoint: image.entrypoint.clone(),
        cmd: image.cmd.clone(),
        labels,
        ports: image.ports.clone(),
        stop_signal: image.stop_signal.clone(),
    };
    let mut config = archive.config()?;
    let input_hash =
        sha256_hex(format!("archive {ARCHIVE_RECIPE_VERSION}\ntag {tag}\n{config}").as_bytes());
    config["config"]["Labels"][INPUT_HASH_LABEL] = serde_json::Value::String(input_hash.clone());
    if let Some(existing) = find_image_by_hash(sh, &repository, &input_hash)? {
        return Ok((existing, false));
    }
    archive.load(sh, &config)?;
    Ok((reference, true))
}

/// The reference of an image of `repository` built from `input_hash`, if one is tagged.
fn find_image_by_hash(
    sh: &Shell,
    repository: &str,
    input_hash: &str,
) -> anyhow::Result<Option<String>> {
    let reference = format!("reference={repository}");
    let label = format!("label={INPUT_HASH_LABEL}={input_hash}");
    let found = cmd!(
        sh,
        "docker images --filter {reference} --filter {label} --format '{{.Repository}}:{{.Tag}}'"
    )
    .quiet()
    .read()?;
    Ok(found
        .lines()
        .find(|line| !line.contains(":building") && !line.ends_with(":<none>"))
        .map(str::to_owned))
}

/// The Ruby version an image really contains, checked to have YJIT.
fn ruby_version(sh: &Shell, reference: &str) -> anyhow::Result<String> {
    let version = cmd!(
        sh,
        "docker run --rm --network none {reference} ruby -e 'print RUBY_VERSION'"
    )
    .quiet()
    .read()
    .with_context(|| format!("failed to read the Ruby version of {reference}"))?;
    if cmd!(sh, "docker run --rm --network none {reference} ruby --yjit -e 'exit(RubyVM::YJIT.enabled? ? 0 : 1)'")
        .quiet()
        .ignore_stderr()
        .run()
        .is_err()
    {
        bail!("the Ruby in {reference} ({version}) has no YJIT");
    }
    Ok(version.trim().to_owned())
}

/// Writes a file into a build context as executable: the legacy builder has no
/// `COPY --chmod` and keeps the mode of the source.
fn write_executable(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Whether the Docker engine has the image `reference`.
pub fn image_exists(sh: &Shell, reference: &str) -> bool {
    cmd!(sh, "docker image inspect {reference}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

/// The project's cache directory for root file systems and packages.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("rcb"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/rcb"))
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
