//! Set-up a fresh machine lacks: Debian packages, the Python tools of the tests and a
//! reachable Docker engine.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::images;

/// A command the project needs on the host, and the Debian package that provides it.
pub struct HostTool {
    pub command: &'static str,
    pub package: &'static str,
}

/// Host tools `cargo xtask images` needs.
pub const IMAGE_TOOLS: &[HostTool] = &[HostTool {
    command: "debootstrap",
    package: "debootstrap",
}];

/// Host tools a root file system of another architecture needs (`deploy-images`).
pub const FOREIGN_ROOTFS_TOOLS: &[HostTool] = &[
    HostTool {
        command: "debootstrap",
        package: "debootstrap",
    },
    HostTool {
        command: "dpkg-deb",
        package: "dpkg",
    },
];

/// Host tools a local end-to-end run needs.
pub const E2E_TOOLS: &[HostTool] = &[
    HostTool {
        command: "debootstrap",
        package: "debootstrap",
    },
    HostTool {
        command: "fish",
        package: "fish",
    },
    HostTool {
        command: "jq",
        package: "jq",
    },
    HostTool {
        command: "curl",
        package: "curl",
    },
];

/// Host tools the test suite needs.
pub const TEST_TOOLS: &[HostTool] = &[
    HostTool {
        command: "debootstrap",
        package: "debootstrap",
    },
    HostTool {
        command: "fish",
        package: "fish",
    },
    HostTool {
        command: "jq",
        package: "jq",
    },
    HostTool {
        command: "curl",
        package: "curl",
    },
    HostTool {
        command: "ruby",
        package: "ruby",
    },
    HostTool {
        command: "chromium",
        package: "chromium",
    },
    HostTool {
        command: "chromedriver",
        package: "chromium-driver",
    },
    // The Nix checks parse and evaluate the flake's files without nixpkgs.
    HostTool {
        command: "nix-instantiate",
        package: "nix-bin",
    },
    // The venv of moto, the aws CLI and schemathesis (`ensure_python_tools`).
    HostTool {
        command: "python3",
        package: "python3-venv",
    },
];

/// The pinned PyPI tools of the tests (moto's AWS emulator, the aws CLI, schemathesis),
/// relative to the workspace root.
pub const PYTHON_REQUIREMENTS: &str = "tests/system/requirements.txt";

/// Installs the tests' PyPI tools into `~/.cache/rcb/venv`, where the tests look for them:
/// a venv of their own, so that no system Python package is touched. pip does nothing when
/// the pinned versions are there.
pub fn ensure_python_tools(sh: &Shell) -> anyhow::Result<()> {
    let venv = images::cache_dir()?.join("venv");
    let python = venv.join("bin/python");
    if !python.is_file() {
        eprintln!("xtask: creating the venv {}", venv.display());
        // Debian's python3 has no venv module without python3-venv.
        if cmd!(sh, "python3 -m venv {venv}").run().is_err() {
            if !is_root(sh) {
                bail!(
                    "python3 -m venv failed; install Debian's venv module with: sudo apt-get install -y python3-venv"
                );
            }
            cmd!(sh, "apt-get install -y -q python3-venv")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .run()?;
            cmd!(sh, "python3 -m venv {venv}").run()?;
        }
    }
    cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check -r {PYTHON_REQUIREMENTS}"
    )
    .run()
    .with_context(|| {
        format!(
            "installing moto and the aws CLI into {} failed (PyPI must be reachable once); by hand: {} -m pip install -r {PYTHON_REQUIREMENTS}",
            venv.display(),
            python.display()
        )
    })?;
    Ok(())
}

/// Installs the Debian packages of missing tools when running as root; otherwise fails
/// with the exact command to run.
pub fn ensure_host_tools(sh: &Shell, tools: &[HostTool]) -> anyhow::Result<()> {
    let mut missing: Vec<&str> = tools
        .iter()
        .filter(|tool| which(tool.command).is_none())
        .map(|tool| tool.package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get update && apt-get install -y {}", missing.join(" "));
    if !is_root(sh) {
        bail!(
            "missing packages: {}; install them with: sudo sh -c '{install}'",
            missing.join(", ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(", "));
    cmd!(sh, "apt-get update -q").run()?;
    cmd!(sh, "apt-get install -y -q {missing...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    Ok(())
}

/// Fails with a fix when the Docker engine cannot be reached.
pub fn ensure_docker(sh: &Shell) -> anyhow::Result<()> {
    if which("docker").is_none() {
        bail!(
            "the docker command is missing; install Docker Engine (Debian: apt-get install -y docker.io) and start it"
        );
    }
    if cmd!(sh, "docker info --format '{{.ServerVersion}}'")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        bail!(
            "the Docker engine is not reachable; start it (systemctl start docker, or dockerd &) and check that this user may use /var/run/docker.sock"
        );
    }
    Ok(())
}

/// Whether the current user is root, so packages can be installed without sudo.
pub fn is_root(sh: &Shell) -> bool {
    cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0")
}

/// The path of `command` on PATH, if any.
pub fn which(command: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
}
