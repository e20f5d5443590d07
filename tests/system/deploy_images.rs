//! `cargo xtask deploy-images`, the real command: its plan per architecture, its check of
//! what this machine lacks, and (ignored by default: it compiles two release trees, half an
//! hour on 2 busy cores the first time) the deploy-profile binaries starting in their images.

use std::path::PathBuf;
use std::process::Output;

use crate::harness::*;

/// The architecture this machine builds natively, and the other one, in the master
/// script's names.
fn arches() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "x86_64"),
        _ => ("x86_64", "arm64"),
    }
}

fn rust_target(arch: &str) -> &'static str {
    if arch == "arm64" {
        "aarch64-unknown-linux-gnu"
    } else {
        "x86_64-unknown-linux-gnu"
    }
}

fn platform(arch: &str) -> &'static str {
    if arch == "arm64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    }
}

/// `cargo xtask ARGS` in the workspace, with `env` added.
fn xtask(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .arg("xtask")
        .args(args)
        .current_dir(project_root())
        .stdin(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("cargo runs")
}

#[test]
fn the_plan_cross_compiles_and_unpacks_the_other_architecture_and_runs_nothing_of_it() {
    let (native, foreign) = arches();
    let output = xtask(
        &[
            "deploy-images",
            "--dry-run",
            "--arch",
            "arm64",
            "--arch",
            "x86_64",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let lines: Vec<&str> = stdout.lines().collect();
    let line = |start: &str| {
        lines
            .iter()
            .find(|line| line.starts_with(start))
            .copied()
            .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{stdout}"))
    };

    // The other architecture: zig links against the images' glibc, Debian's packages of
    // that architecture are unpacked, the image only gets files copied in.
    assert_eq!(
        line(&format!("binaries runner ({foreign})")),
        format!(
            "binaries runner ({foreign}): cargo zigbuild --profile deploy --target {}.2.36 --package runner",
            rust_target(foreign)
        )
    );
    let foreign_runner = line(&format!("image rcb/runner:deploy-{foreign} "));
    for part in [
        format!("({})", platform(foreign)),
        "debootstrap --foreign".to_owned(),
        format!(
            "--arch={}",
            if foreign == "arm64" { "arm64" } else { "amd64" }
        ),
        "--include=ca-certificates,git".to_owned(),
        "dpkg-deb --fsys-tarfile".to_owned(),
        format!(
            "a docker save archive of architecture {} (that root file system and a layer of files), docker load",
            if foreign == "arm64" { "arm64" } else { "amd64" }
        ),
    ] {
        assert!(
            foreign_runner.contains(&part),
            "{part:?} in {foreign_runner}"
        );
    }

    // This machine's: its own cargo (this machine's glibc is bookworm's here, else zig too)
    // builds the runner and the orchestrator; Postgres is the tests' image.
    let native_build = line(&format!("binaries runner, orchestrator ({native})"));
    assert!(
        native_build.contains("--profile deploy")
            && native_build.contains(rust_target(native))
            && native_build.ends_with("--package runner --package orchestrator"),
        "{native_build}"
    );
    for image in [
        format!("image rcb/runner:deploy-{native} ({})", platform(native)),
        format!(
            "image rcb/orchestrator:deploy-{native} ({})",
            platform(native)
        ),
        format!("image rcb/postgres:15 ({})", platform(native)),
    ] {
        let found = line(&image);
        assert!(!found.contains("--foreign"), "{found}");
    }
    assert_eq!(lines.len(), 6, "{stdout}");
}

#[test]
fn a_machine_without_the_cross_linker_is_told_how_to_install_it() {
    let (_, foreign) = arches();
    // An empty cache (no venv) and no zig or cargo-zigbuild on PATH.
    let cache = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| !dir.join("zig").exists() && !dir.join("cargo-zigbuild").exists())
        .collect();
    let path = std::env::join_paths(kept).unwrap();
    let output = xtask(
        &["deploy-images", "--check", "--arch", foreign],
        &[
            ("XDG_CACHE_HOME", cache.path().as_os_str()),
            ("PATH", path.as_os_str()),
        ],
    );
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let install = format!(
        "python3 -m venv {venv} && {venv}/bin/pip install -r xtask/deploy-tools.txt",
        venv = cache.path().join("rcb/venv").display()
    );
    assert!(
        stderr.contains("this machine cannot build the images of this run yet")
            && stderr.contains(&format!(
                "cargo-zigbuild (the cross linker's cargo front end): {install}"
            ))
            && stderr.contains(&format!("zig (the cross linker): {install}")),
        "{stderr}"
    );
}

/// Removes the images of a test's tag when dropped.
struct TestImages(Vec<String>);

impl Drop for TestImages {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = std::process::Command::new("docker")
                .args(["rmi", image])
                .output();
        }
    }
}

/// The `e_machine` of the ELF at `bytes` (64-bit little-endian), and whether its symbol
/// versions ask for a glibc newer than bookworm's 2.36.
fn elf_facts(bytes: &[u8]) -> (u16, bool) {
    assert_eq!(&bytes[..4], b"\x7fELF");
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    let newer = (37..=60).any(|minor| {
        let name = format!("GLIBC_2.{minor}\0");
        bytes
            .windows(name.len())
            .any(|window| window == name.as_bytes())
    });
    (machine, newer)
}

#[test]
#[ignore = "builds the deploy profile for two architectures (half an hour on 2 cores the first time): cargo test -p system-tests deploy_images -- --ignored"]
fn deploy_profile_binaries_start_in_their_images() {
    let (native, foreign) = arches();
    let tag = format!("test-{}", std::process::id());
    let image = |name: &str, arch: &str| format!("rcb/{name}:{tag}-{arch}");
    let _cleanup = TestImages(vec![
        image("runner", native),
        image("runner", foreign),
        image("orchestrator", native),
    ]);
    let output = xtask(
        &[
            "deploy-images",
            "--arch",
            native,
            "--arch",
            foreign,
            "--tag",
            &tag,
        ],
        &[],
    );
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");

    let commit = String::from_utf8(
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(project_root())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for (name, arch) in [
        ("runner", native),
        ("runner", foreign),
        ("orchestrator", native),
    ] {
        let reference = image(name, arch);
        let facts = docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Architecture}} {{index .Config.Labels \"rcb.profile\"}} {{index .Config.Labels \"rcb.target\"}} {{index .Config.Labels \"rcb.git-commit\"}}",
            &reference,
        ]);
        let facts: Vec<&str> = facts.split(' ').collect();
        let docker_arch = if arch == "arm64" { "arm64" } else { "amd64" };
        assert_eq!(facts[..2], [docker_arch, "deploy"], "{reference}");
        assert!(facts[2].starts_with(rust_target(arch)), "{facts:?}");
        assert!(facts[3].starts_with(commit.trim()), "{facts:?}");

        // The binary, copied out without running the image.
        let container = docker(&[
            "create",
            "--label",
            "rcb.project=ruby-cross-cloud-bench",
            &reference,
        ]);
        let out = tempfile::tempdir().unwrap();
        let copied = out.path().join(name);
        let copy = std::process::Command::new("docker")
            .args(["cp", &format!("{container}:/usr/local/bin/{name}")])
            .arg(&copied)
            .output()
            .unwrap();
        docker(&["rm", &container]);
        assert!(
            copy.status.success(),
            "{}",
            String::from_utf8_lossy(&copy.stderr)
        );
        let bytes = std::fs::read(&copied).unwrap();
        let (machine, newer_glibc) = elf_facts(&bytes);
        assert_eq!(
            machine,
            if arch == "arm64" { 183 } else { 62 },
            "{reference}"
        );
        assert!(
            !newer_glibc,
            "{reference}'s {name} needs a glibc newer than 2.36"
        );

        if arch == native {
            let version = docker(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--label",
                "rcb.project=ruby-cross-cloud-bench",
                "--entrypoint",
                &format!("/usr/local/bin/{name}"),
                &reference,
                "--version",
            ]);
            assert!(version.starts_with(name), "{version}");
        }
    }
    // The runner names its own image, whose id and labels go into each meta.json.
    let env = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        &image("runner", foreign),
    ]);
    assert!(
        env.contains(&format!("RUNNER_IMAGE={}", image("runner", foreign))),
        "{env}"
    );
    // The build checked each image itself: this machine's started, the other's started only
    // where an emulator is registered, and said so otherwise.
    let report = |reference: &str| {
        stderr
            .lines()
            .find(|line| line.contains(&format!(" {reference} ")))
            .unwrap_or_else(|| panic!("no report of {reference} in {stderr}"))
            .to_owned()
    };
    assert!(
        report(&image("runner", native)).contains("`runner --version` inside it: runner"),
        "{stderr}"
    );
    let foreign_report = report(&image("runner", foreign));
    assert!(
        foreign_report.contains("`runner --version` inside it: runner")
            || foreign_report.contains("not started: no emulator"),
        "{foreign_report}"
    );
}
