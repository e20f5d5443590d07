//! The few Docker CLI calls that need no client: checks with a fix in the message, and
//! removal by label.

use std::process::{Command, Stdio};

/// Fails with the command that fixes it when Docker or an image is missing.
pub fn check_docker(image: &str) -> Result<(), String> {
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    match docker(&["info"]) {
        Err(_) => {
            return Err("the docker command is missing: install Docker Engine (Debian: apt-get install -y docker.io), start it, then run `cargo xtask images`".into());
        }
        Ok(status) if !status.success() => {
            return Err("the Docker engine is not reachable: start it (systemctl start docker) and check access to /var/run/docker.sock".into());
        }
        Ok(_) => {}
    }
    match docker(&["image", "inspect", image]) {
        Ok(status) if status.success() => Ok(()),
        _ => Err(format!(
            "image {image} is missing: build it with `cargo xtask images` (no registry is used)"
        )),
    }
}

/// Removes every container carrying `label` (`key` or `key=value`); returns their names.
pub fn remove_labelled(label: &str) -> anyhow::Result<Vec<String>> {
    let output = Command::new("docker")
        .args([
            "ps",
            "--all",
            "--filter",
            &format!("label={label}"),
            "--format",
            "{{.ID}} {{.Names}}",
        ])
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "docker ps failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    let (ids, names): (Vec<&str>, Vec<String>) = listed
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(id, name)| (id, name.to_owned()))
        .unzip();
    if !ids.is_empty() {
        let status = Command::new("docker")
            .args(["rm", "--force", "--volumes"])
            .args(&ids)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(
            status.success(),
            "docker rm failed for {}",
            names.join(", ")
        );
    }
    Ok(names)
}
