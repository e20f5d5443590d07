//! Set-up a fresh machine lacks: Debian packages and a reachable Docker engine.

use anyhow::bail;
use xshell::{Shell, cmd};

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
];

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
