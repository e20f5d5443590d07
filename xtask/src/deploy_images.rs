//! `cargo xtask deploy-images --arch x86_64 --arch arm64`: the images a cloud run deploys,
//! built on this one machine for every architecture its instance types need: no second
//! machine, and no binary of another architecture run to build them.
//!
//! - Binaries: the `deploy` cargo profile (optimised, stripped). This machine's own
//!   architecture is built by plain cargo when this is Linux with a glibc no newer than the
//!   images' ([`IMAGE_GLIBC`]), as the tests build; every other target by `cargo zigbuild`,
//!   with zig as the cross linker and the images' glibc as the target's
//!   (`aarch64-unknown-linux-gnu.2.36`). Zig and cargo-zigbuild come from PyPI
//!   ([`DEPLOY_TOOLS_REQUIREMENTS`]) into the project's venv: one pinned command, no root,
//!   no system cross toolchain, and the same on Linux and macOS.
//! - Root file systems: this machine's architecture with debootstrap, as the tests' images;
//!   another with `debootstrap --foreign` and dpkg-deb (`images::foreign_rootfs`), which
//!   unpack Debian's packages of that architecture and run none of their code.
//! - Images: this machine's architecture as the tests' images (`docker import`, a legacy
//!   build that copies files); another's assembled as a `docker save` archive whose config
//!   names its architecture, and `docker load`ed (`images::archive_image`: Docker 20.10's
//!   `import --platform` and legacy builder record the engine's architecture whatever the
//!   files are). Nothing of a foreign image runs. Labels record
//!   the git commit, profile and target ([`protocol::RunnerImage`] names them); the runner
//!   image names itself in `RUNNER_IMAGE`, so each `meta.json` carries its id and labels.
//! - Checks after the build: each binary is an ELF of its architecture, each image has its
//!   architecture, and each binary of this machine's architecture starts (`--version`)
//!   inside its image. A foreign binary is started only where an emulator is registered for
//!   it (binfmt_misc); otherwise the build says what it checked instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use protocol::RunnerImage;
use xshell::{Shell, cmd};

use crate::images::{self, Description, Variant, foreign_rootfs};
use crate::setup;

/// The glibc of the images' root file systems: Debian bookworm's libc6 (the `base` and
/// `runner` root file systems of `images.toml`). Binaries linked against a newer glibc fail
/// to start there, so cross builds target exactly this one.
pub const IMAGE_GLIBC: &str = "2.36";

/// The cargo profile of deployed binaries (`[profile.deploy]` in the workspace manifest).
pub const DEPLOY_PROFILE: &str = "deploy";

/// The default tag prefix: images are `rcb/<name>:deploy-<arch>`.
pub const DEFAULT_TAG: &str = "deploy";

/// The pinned PyPI packages of cross builds (zig and cargo-zigbuild), relative to the
/// workspace root.
pub const DEPLOY_TOOLS_REQUIREMENTS: &str = "xtask/deploy-tools.txt";

/// The images a cloud run deploys, by name in `images.toml`: a runner per architecture,
/// the orchestrator and Postgres for this machine's (the orchestrator host's type follows it).
const RUNNER_IMAGE: &str = "runner";
const HOST_IMAGES: &[&str] = &["orchestrator", "postgres"];

/// An architecture of cloud hosts, named as the master script names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Arch {
    /// amd64 (Intel and AMD).
    #[value(name = "x86_64")]
    X86_64,
    /// aarch64 (AWS Graviton, Azure Cobalt, Apple silicon).
    #[value(name = "arm64")]
    Arm64,
}

impl Arch {
    /// This machine's architecture, if it is one of ours.
    pub fn host() -> Option<Self> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Self::X86_64),
            "aarch64" => Some(Self::Arm64),
            _ => None,
        }
    }

    /// The master script's name: `x86_64` or `arm64`.
    pub fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// Debian's and Docker's name: `amd64` or `arm64`.
    pub fn debian(self) -> &'static str {
        match self {
            Self::X86_64 => "amd64",
            Self::Arm64 => "arm64",
        }
    }

    /// The Docker platform, e.g. `linux/arm64`.
    pub fn platform(self) -> String {
        format!("linux/{}", self.debian())
    }

    /// The Rust target triple.
    pub fn rust_target(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-linux-gnu",
            Self::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The ELF header's `e_machine` of this architecture's binaries.
    fn elf_machine(self) -> u16 {
        match self {
            Self::X86_64 => 62,
            Self::Arm64 => 183,
        }
    }

    /// The binfmt_misc entry that runs this architecture's binaries under an emulator.
    fn binfmt_entry(self) -> &'static str {
        match self {
            Self::X86_64 => "/proc/sys/fs/binfmt_misc/qemu-x86_64",
            Self::Arm64 => "/proc/sys/fs/binfmt_misc/qemu-aarch64",
        }
    }
}

/// Build the images a cloud run deploys: a runner image for each architecture, the
/// orchestrator and Postgres for this machine's.
#[derive(clap::Args)]
pub struct DeployImages {
    /// An architecture the run's runners need: x86_64 or arm64 (repeatable). None builds only
    /// the orchestrator and Postgres.
    #[arg(long = "arch", value_enum)]
    pub arches: Vec<Arch>,
    /// Only check that this machine has what the build needs: print the command that
    /// installs whatever it lacks and exit non-zero, build nothing.
    #[arg(long)]
    pub check: bool,
    /// Print the plan (each image, how its binaries are compiled and its root file system
    /// made) and build nothing.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// The tag prefix: the images are rcb/<name>:<TAG>-<arch> (tests use one of their own).
    #[arg(long, default_value = DEFAULT_TAG, hide = true)]
    pub tag: String,
}

impl DeployImages {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let description = Description::load(sh)?;
        let host = Host::detect(sh)?;
        let plan = Plan::new(&host, &self.arches, &self.tag)?;
        if self.dry_run {
            for line in plan.describe(&description)? {
                println!("{line}");
            }
            return Ok(());
        }
        let missing = plan.missing(sh, &description)?;
        if !missing.is_empty() {
            bail!(
                "this machine cannot build the images of this run yet:\n  {}",
                missing.join("\n  ")
            );
        }
        if self.check {
            eprintln!(
                "xtask deploy-images: this machine can build {}",
                plan.summary()
            );
            return Ok(());
        }
        plan.build(sh, &description)
    }
}

/// What the build depends on about this machine.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its architecture.
    pub arch: Arch,
    /// Its glibc version when it is Linux (`getconf GNU_LIBC_VERSION`).
    pub linux_glibc: Option<String>,
}

impl Host {
    fn detect(sh: &Shell) -> anyhow::Result<Self> {
        let arch = Arch::host().with_context(|| {
            format!(
                "this machine is {}: images are built on x86_64 or aarch64 (arm64)",
                std::env::consts::ARCH
            )
        })?;
        let linux_glibc = (std::env::consts::OS == "linux")
            .then(|| cmd!(sh, "getconf GNU_LIBC_VERSION").quiet().read().ok())
            .flatten()
            .and_then(|answer| answer.split_whitespace().nth(1).map(str::to_owned));
        Ok(Self { arch, linux_glibc })
    }

    /// Whether binaries for `arch` link with this machine's own toolchain: the same
    /// architecture on Linux with a glibc the images have too.
    fn links_natively(&self, arch: Arch) -> bool {
        arch == self.arch
            && self
                .linux_glibc
                .as_deref()
                .is_some_and(|glibc| version_at_most(glibc, IMAGE_GLIBC))
    }

    /// Whether root file systems of `arch` are made with a full debootstrap here.
    fn makes_rootfs_natively(&self, arch: Arch) -> bool {
        arch == self.arch && self.linux_glibc.is_some()
    }
}

/// Whether dotted version `version` is at most `limit` (`2.31` ≤ `2.36`).
fn version_at_most(version: &str, limit: &str) -> bool {
    let parse = |text: &str| -> Vec<u32> {
        text.split('.')
            .map(|part| part.parse().unwrap_or(u32::MAX))
            .collect()
    };
    parse(version) <= parse(limit)
}

/// How the binaries of one architecture are compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linker {
    /// cargo with this machine's linker, against its glibc (the version).
    Host(String),
    /// cargo zigbuild against [`IMAGE_GLIBC`].
    Zig,
}

/// One cargo invocation: the binaries of one architecture.
#[derive(Debug, Clone)]
pub struct BinaryBuild {
    pub arch: Arch,
    pub linker: Linker,
    pub packages: Vec<String>,
}

impl BinaryBuild {
    /// The target with the glibc it links against, as the `rcb.target` label records it.
    pub fn target_label(&self) -> String {
        let glibc = match &self.linker {
            Linker::Host(glibc) => glibc.as_str(),
            Linker::Zig => IMAGE_GLIBC,
        };
        format!("{}.{glibc}", self.arch.rust_target())
    }

    /// cargo's arguments.
    pub fn cargo_args(&self) -> Vec<String> {
        let (subcommand, target) = match self.linker {
            Linker::Host(_) => ("build", self.arch.rust_target().to_owned()),
            Linker::Zig => ("zigbuild", self.target_label()),
        };
        let mut args = vec![
            subcommand.to_owned(),
            "--profile".to_owned(),
            DEPLOY_PROFILE.to_owned(),
            "--target".to_owned(),
            target,
        ];
        for package in &self.packages {
            args.extend(["--package".to_owned(), package.clone()]);
        }
        args
    }

    /// Where cargo leaves binary `name` (zigbuild drops the glibc suffix from the directory).
    fn output(&self, target_dir: &Path, name: &str) -> PathBuf {
        target_dir
            .join(self.arch.rust_target())
            .join(DEPLOY_PROFILE)
            .join(name)
    }
}

/// One image to build.
#[derive(Debug, Clone)]
pub struct PlannedImage {
    /// Its name in `images.toml`.
    pub name: String,
    pub arch: Arch,
    /// Its tag; `None` for Postgres, which is the tests' image as it is (no binary of ours).
    pub tag: Option<String>,
}

/// Everything one `deploy-images` builds.
#[derive(Debug, Clone)]
pub struct Plan {
    pub host: Host,
    pub builds: Vec<BinaryBuild>,
    pub images: Vec<PlannedImage>,
}

impl Plan {
    /// The plan for runners of `arches` on `host`, with tags `<tag>-<arch>`.
    pub fn new(host: &Host, arches: &[Arch], tag: &str) -> anyhow::Result<Self> {
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            bail!("--tag must be letters, digits and dashes, not {tag:?}");
        }
        let mut runner_arches = arches.to_vec();
        runner_arches.sort();
        runner_arches.dedup();
        let mut packages: BTreeMap<Arch, Vec<String>> = BTreeMap::new();
        let mut images = Vec::new();
        for &arch in &runner_arches {
            packages
                .entry(arch)
                .or_default()
                .push(RUNNER_IMAGE.to_owned());
            images.push(PlannedImage {
                name: RUNNER_IMAGE.to_owned(),
                arch,
                tag: Some(format!("{tag}-{}", arch.name())),
            });
        }
        for name in HOST_IMAGES {
            let binary = *name != "postgres";
            if binary {
                packages
                    .entry(host.arch)
                    .or_default()
                    .push((*name).to_owned());
            }
            images.push(PlannedImage {
                name: (*name).to_owned(),
                arch: host.arch,
                tag: binary.then(|| format!("{tag}-{}", host.arch.name())),
            });
        }
        let builds = packages
            .into_iter()
            .map(|(arch, packages)| BinaryBuild {
                arch,
                linker: if host.links_natively(arch) {
                    Linker::Host(host.linux_glibc.clone().unwrap_or_default())
                } else {
                    Linker::Zig
                },
                packages,
            })
            .collect();
        Ok(Self {
            host: host.clone(),
            builds,
            images,
        })
    }

    fn summary(&self) -> String {
        self.images
            .iter()
            .map(|image| format!("{} ({})", image.name, image.arch.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn build_of(&self, arch: Arch) -> Option<&BinaryBuild> {
        self.builds.iter().find(|build| build.arch == arch)
    }

    /// The plan in words and commands, one line each (`--dry-run`).
    pub fn describe(&self, description: &Description) -> anyhow::Result<Vec<String>> {
        let mut lines = Vec::new();
        for build in &self.builds {
            lines.push(format!(
                "binaries {} ({}): cargo {}",
                build.packages.join(", "),
                build.arch.name(),
                build.cargo_args().join(" ")
            ));
        }
        for image in &self.images {
            let spec = image_spec(description, &image.name)?;
            let rootfs = &description.rootfs[&spec.rootfs];
            let how = if self.host.makes_rootfs_natively(image.arch) {
                format!(
                    "debootstrap --variant={} --include={} {}",
                    rootfs.variant,
                    rootfs.packages.join(","),
                    rootfs.suite
                )
            } else {
                let (_, tarball) = foreign_rootfs::locate(description, &spec.rootfs, image.arch)?;
                let args = foreign_rootfs::debootstrap_args(
                    rootfs,
                    image.arch,
                    Path::new("DEBS"),
                    Path::new("TARGET"),
                );
                format!(
                    "debootstrap {}, then dpkg-deb --fsys-tarfile of the rest, cached as {}",
                    args.join(" "),
                    tarball.display()
                )
            };
            let reference = image_reference(description, image, spec)?;
            let build = match (&image.tag, self.host.makes_rootfs_natively(image.arch)) {
                (None, _) => "the tests' image as it is".to_owned(),
                (Some(_), true) => "docker import, docker build (COPY, ENV, LABEL)".to_owned(),
                (Some(_), false) => format!(
                    "a docker save archive of architecture {} (that root file system and a layer of files), docker load",
                    image.arch.debian()
                ),
            };
            lines.push(format!(
                "image {reference} ({}): root file system {} by {how}; {build}",
                image.arch.platform(),
                spec.rootfs
            ));
        }
        Ok(lines)
    }

    /// What this machine lacks for the plan, each with the command that installs it.
    pub fn missing(&self, sh: &Shell, description: &Description) -> anyhow::Result<Vec<String>> {
        let mut missing = Vec::new();
        if let Err(err) = setup::ensure_docker(sh) {
            missing.push(format!("{err:#}"));
        }
        let sysroot = cmd!(sh, "rustc --print sysroot").quiet().read().ok();
        for build in &self.builds {
            let target = build.arch.rust_target();
            let installed = sysroot.as_deref().is_some_and(|sysroot| {
                Path::new(sysroot.trim())
                    .join("lib/rustlib")
                    .join(target)
                    .join("lib")
                    .is_dir()
            });
            if !installed {
                missing.push(format!(
                    "the Rust standard library for {target} ({} binaries): rustup target add {target}",
                    build.arch.name()
                ));
            }
        }
        if self.builds.iter().any(|build| build.linker == Linker::Zig) {
            let tools = zig_tools()?;
            let install = format!(
                "python3 -m venv {venv} && {venv}/bin/pip install -r {DEPLOY_TOOLS_REQUIREMENTS}",
                venv = tools.venv.display()
            );
            if tools.find("cargo-zigbuild").is_none() {
                missing.push(format!(
                    "cargo-zigbuild (the cross linker's cargo front end): {install}"
                ));
            }
            if tools.find("zig").is_none() && !tools.venv_has_ziglang() {
                missing.push(format!("zig (the cross linker): {install}"));
            }
        }
        let mut rootfs_needed = false;
        let mut foreign_needed = false;
        for image in &self.images {
            let spec = image_spec(description, &image.name)?;
            if self.host.makes_rootfs_natively(image.arch) {
                rootfs_needed |= !images::rootfs_cached(sh, description, &spec.rootfs)?;
            } else {
                let (_, tarball) = foreign_rootfs::locate(description, &spec.rootfs, image.arch)?;
                let cached = tarball.exists();
                foreign_needed |= !cached;
                rootfs_needed |= !cached;
            }
        }
        if rootfs_needed {
            if self.host.linux_glibc.is_none() {
                missing.push(
                    "root file systems are made with Debian's debootstrap, which runs on Linux only: build the images once on a Linux machine (or a Linux VM), then this machine uses them from ~/.cache/rcb/rootfs".to_owned(),
                );
            } else {
                let tools: Vec<&setup::HostTool> = setup::IMAGE_TOOLS
                    .iter()
                    .chain(if foreign_needed {
                        setup::FOREIGN_ROOTFS_TOOLS
                    } else {
                        &[]
                    })
                    .collect();
                let mut packages: Vec<&str> = tools
                    .iter()
                    .filter(|tool| setup::which(tool.command).is_none())
                    .map(|tool| tool.package)
                    .collect();
                packages.sort();
                packages.dedup();
                if !packages.is_empty() {
                    missing.push(format!(
                        "{} (root file systems): sudo apt-get install -y {}",
                        packages.join(", "),
                        packages.join(" ")
                    ));
                }
                if !setup::is_root(sh) {
                    let arches: Vec<String> = self
                        .images
                        .iter()
                        .filter(|image| image.name == RUNNER_IMAGE)
                        .map(|image| format!("--arch {}", image.arch.name()))
                        .collect();
                    missing.push(format!(
                        "root to run debootstrap once (later runs use the cache): sudo -E cargo xtask deploy-images {}",
                        arches.join(" ")
                    ));
                }
            }
        }
        Ok(missing)
    }

    /// Builds every binary and image of the plan, then checks them.
    fn build(&self, sh: &Shell, description: &Description) -> anyhow::Result<()> {
        let commit = git_commit(sh);
        let target_dir = images::target_dir(sh)?;
        let tools = zig_tools()?;
        let mut binaries: BTreeMap<Arch, BTreeMap<String, PathBuf>> = BTreeMap::new();
        for build in &self.builds {
            let args = build.cargo_args();
            eprintln!(
                "xtask deploy-images: cargo {} ({})",
                args.join(" "),
                build.arch.name()
            );
            let mut command = cmd!(sh, "cargo {args...}");
            if build.linker == Linker::Zig {
                command = command.env("PATH", tools.path()?);
            }
            command
                .run()
                .with_context(|| format!("failed to build the {} binaries", build.arch.name()))?;
            for package in &build.packages {
                let path = build.output(&target_dir, package);
                check_elf(&path, build.arch)?;
                binaries
                    .entry(build.arch)
                    .or_default()
                    .insert(package.clone(), path);
            }
        }
        for image in &self.images {
            let spec = image_spec(description, &image.name)?;
            let native = self.host.makes_rootfs_natively(image.arch);
            let variant = match &image.tag {
                None => Variant::default(),
                Some(tag) => {
                    let build = self
                        .build_of(image.arch)
                        .context("every image with a binary has a build")?;
                    let mut env = Vec::new();
                    if image.name == RUNNER_IMAGE {
                        env.push((
                            RunnerImage::ENV.to_owned(),
                            image_reference(description, image, spec)?,
                        ));
                    }
                    Variant {
                        tag: Some(tag.clone()),
                        labels: vec![
                            (RunnerImage::GIT_COMMIT_LABEL.to_owned(), commit.clone()),
                            (
                                RunnerImage::PROFILE_LABEL.to_owned(),
                                DEPLOY_PROFILE.to_owned(),
                            ),
                            (RunnerImage::TARGET_LABEL.to_owned(), build.target_label()),
                        ],
                        env,
                    }
                }
            };
            let no_binaries = BTreeMap::new();
            let binaries = binaries.get(&image.arch).unwrap_or(&no_binaries);
            let (reference, built) = if native {
                let rootfs = images::ensure_rootfs(sh, description, &spec.rootfs, false)?;
                images::build_image(sh, description, spec, &rootfs, binaries, false, &variant)?
            } else {
                let rootfs = foreign_rootfs::ensure(sh, description, &spec.rootfs, image.arch)?;
                images::build_foreign_image(
                    sh,
                    description,
                    spec,
                    &rootfs,
                    binaries,
                    &variant,
                    image.arch.debian(),
                )?
            };
            let checked = check_image(sh, &reference, image.arch, spec.binary.as_deref())?;
            let status = if built { "built" } else { "up to date" };
            eprintln!("xtask deploy-images: {reference:<32} {status}; {checked}");
        }
        Ok(())
    }
}

fn image_spec<'a>(
    description: &'a Description,
    name: &str,
) -> anyhow::Result<&'a images::ImageSpec> {
    description
        .image
        .iter()
        .find(|image| image.name == name)
        .with_context(|| format!("xtask/images/images.toml has no image {name}"))
}

fn image_reference(
    description: &Description,
    image: &PlannedImage,
    spec: &images::ImageSpec,
) -> anyhow::Result<String> {
    let tag = image
        .tag
        .as_deref()
        .or(spec.tag.as_deref())
        .with_context(|| format!("image {} has no fixed tag", image.name))?;
    Ok(format!("{}:{tag}", description.repository(&image.name)))
}

/// Where zig and cargo-zigbuild are found: PATH, then the project's venv.
struct ZigTools {
    venv: PathBuf,
}

fn zig_tools() -> anyhow::Result<ZigTools> {
    Ok(ZigTools {
        venv: images::cache_dir()?.join("venv"),
    })
}

impl ZigTools {
    fn find(&self, command: &str) -> Option<PathBuf> {
        setup::which(command).or_else(|| {
            let candidate = self.venv.join("bin").join(command);
            candidate.is_file().then_some(candidate)
        })
    }

    /// PyPI's ziglang, which cargo-zigbuild runs as `python3 -m ziglang` (the venv's python3
    /// comes first on [`ZigTools::path`]).
    fn venv_has_ziglang(&self) -> bool {
        self.venv.join("bin/python-zig").is_file()
    }

    /// PATH with the venv's bin directory first.
    fn path(&self) -> anyhow::Result<std::ffi::OsString> {
        let current = std::env::var_os("PATH").unwrap_or_default();
        Ok(std::env::join_paths(
            std::iter::once(self.venv.join("bin")).chain(std::env::split_paths(&current)),
        )?)
    }
}

/// The commit of the work tree, with `-dirty` when tracked files have uncommitted changes;
/// `unknown` outside a git checkout.
fn git_commit(sh: &Shell) -> String {
    let Ok(commit) = cmd!(sh, "git rev-parse HEAD")
        .quiet()
        .ignore_stderr()
        .read()
    else {
        return "unknown".to_owned();
    };
    let dirty = cmd!(sh, "git status --porcelain --untracked-files=no")
        .quiet()
        .read()
        .map(|changes| !changes.trim().is_empty())
        .unwrap_or(true);
    if dirty {
        format!("{}-dirty", commit.trim())
    } else {
        commit.trim().to_owned()
    }
}

/// Fails unless `path` is a 64-bit little-endian ELF of `arch`.
fn check_elf(path: &Path, arch: Arch) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    match elf_machine(&bytes) {
        Some(machine) if machine == arch.elf_machine() => Ok(()),
        Some(machine) => bail!(
            "{} is an ELF for machine {machine}, not {} ({}): the build used the wrong target",
            path.display(),
            arch.name(),
            arch.elf_machine()
        ),
        None => bail!("{} is not a 64-bit little-endian ELF", path.display()),
    }
}

/// The `e_machine` of a 64-bit little-endian ELF header.
fn elf_machine(bytes: &[u8]) -> Option<u16> {
    let header = bytes.get(..20)?;
    (header.starts_with(b"\x7fELF") && header[4] == 2 && header[5] == 1)
        .then(|| u16::from_le_bytes([header[18], header[19]]))
}

/// Checks a built image: its architecture, and its binary started with `--version` where
/// this machine can run it. Returns what was checked, for the build's report.
fn check_image(
    sh: &Shell,
    reference: &str,
    arch: Arch,
    binary: Option<&str>,
) -> anyhow::Result<String> {
    let architecture = cmd!(
        sh,
        "docker image inspect --format '{{.Architecture}}' {reference}"
    )
    .quiet()
    .read()
    .with_context(|| format!("failed to inspect {reference}"))?;
    if architecture.trim() != arch.debian() {
        bail!(
            "{reference} was built for {}, not {}",
            architecture.trim(),
            arch.debian()
        );
    }
    let Some(binary) = binary else {
        return Ok(format!("architecture {}", arch.debian()));
    };
    let runnable = Arch::host() == Some(arch) || Path::new(arch.binfmt_entry()).exists();
    if !runnable {
        return Ok(format!(
            "architecture {}, {binary} an {} ELF; not started: no emulator for {} is registered here ({})",
            arch.debian(),
            arch.rust_target(),
            arch.name(),
            arch.binfmt_entry()
        ));
    }
    let entrypoint = format!("/usr/local/bin/{binary}");
    let label = "rcb.project=ruby-cross-cloud-bench";
    let version = cmd!(
        sh,
        "docker run --rm --network none --label {label} --entrypoint {entrypoint} {reference} --version"
    )
    .quiet()
    .read()
    .with_context(|| format!("{binary} did not start inside {reference}"))?;
    if !version.starts_with(binary) {
        bail!("{binary} --version inside {reference} printed {version:?}");
    }
    Ok(format!(
        "architecture {}, `{binary} --version` inside it: {}",
        arch.debian(),
        version.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(arch: Arch, glibc: Option<&str>) -> Host {
        Host {
            arch,
            linux_glibc: glibc.map(str::to_owned),
        }
    }

    #[test]
    fn an_x86_64_linux_host_builds_its_own_natively_and_arm64_with_zig() {
        let plan = Plan::new(
            &host(Arch::X86_64, Some("2.36")),
            &[Arch::Arm64, Arch::X86_64, Arch::Arm64],
            "deploy",
        )
        .unwrap();
        let commands: Vec<String> = plan
            .builds
            .iter()
            .map(|build| build.cargo_args().join(" "))
            .collect();
        assert_eq!(
            commands,
            [
                "build --profile deploy --target x86_64-unknown-linux-gnu --package runner --package orchestrator",
                "zigbuild --profile deploy --target aarch64-unknown-linux-gnu.2.36 --package runner",
            ]
        );
        assert_eq!(
            plan.builds[0].target_label(),
            "x86_64-unknown-linux-gnu.2.36"
        );
        let images: Vec<(String, Arch, Option<String>)> = plan
            .images
            .iter()
            .map(|image| (image.name.clone(), image.arch, image.tag.clone()))
            .collect();
        assert_eq!(
            images,
            [
                ("runner".into(), Arch::X86_64, Some("deploy-x86_64".into())),
                ("runner".into(), Arch::Arm64, Some("deploy-arm64".into())),
                (
                    "orchestrator".into(),
                    Arch::X86_64,
                    Some("deploy-x86_64".into())
                ),
                ("postgres".into(), Arch::X86_64, None),
            ]
        );
    }

    #[test]
    fn a_newer_glibc_or_a_mac_cross_builds_every_target_against_the_images_glibc() {
        for glibc in [Some("2.41"), None] {
            let plan = Plan::new(&host(Arch::X86_64, glibc), &[Arch::X86_64], "deploy").unwrap();
            assert_eq!(
                plan.builds[0].cargo_args().join(" "),
                "zigbuild --profile deploy --target x86_64-unknown-linux-gnu.2.36 --package runner --package orchestrator"
            );
        }
        let mac = Plan::new(&host(Arch::Arm64, None), &[Arch::X86_64], "deploy").unwrap();
        let targets: Vec<String> = mac.builds.iter().map(BinaryBuild::target_label).collect();
        assert_eq!(
            targets,
            [
                "x86_64-unknown-linux-gnu.2.36",
                "aarch64-unknown-linux-gnu.2.36"
            ]
        );
        assert!(!mac.host.makes_rootfs_natively(Arch::Arm64));
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(version_at_most("2.36", "2.36"));
        assert!(version_at_most("2.31", "2.36"));
        assert!(!version_at_most("2.40", "2.36"));
        assert!(!version_at_most("3.1", "2.36"));
    }

    #[test]
    fn a_bad_tag_is_refused() {
        let err = Plan::new(&host(Arch::X86_64, Some("2.36")), &[], "a b").unwrap_err();
        assert!(err.to_string().contains("--tag"), "{err}");
    }

    #[test]
    fn elf_headers_name_their_machine() {
        let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        header.resize(18, 0);
        header.extend(183u16.to_le_bytes());
        assert_eq!(elf_machine(&header), Some(183));
        header[4] = 1;
        assert_eq!(elf_machine(&header), None, "32-bit");
        assert_eq!(elf_machine(b"#!/bin/sh\n"), None);
    }
}
