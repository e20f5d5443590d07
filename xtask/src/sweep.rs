//! Removal of every container, network and volume that carries the project's label.

use xshell::{Shell, cmd};

use crate::images::Description;

/// Removes the project's containers, networks and volumes; returns a line for each
/// resource that was found (and removed).
pub fn sweep_project_resources(
    sh: &Shell,
    description: &Description,
) -> anyhow::Result<Vec<String>> {
    let filter = format!("label={}", description.label);
    let mut found = Vec::new();

    let containers = cmd!(sh, "docker ps -aq --filter {filter}").quiet().read()?;
    let containers: Vec<&str> = containers.split_whitespace().collect();
    if !containers.is_empty() {
        let ids = containers.as_slice();
        let names = cmd!(
            sh,
            "docker inspect --format '{{.Name}} ({{.Config.Image}})' {ids...}"
        )
        .quiet()
        .read()?;
        found.extend(
            names
                .lines()
                .map(|name| format!("container {}", name.trim_start_matches('/'))),
        );
        cmd!(sh, "docker rm -fv {containers...}")
            .quiet()
            .ignore_stdout()
            .run()?;
    }

    let networks = cmd!(sh, "docker network ls -q --filter {filter}")
        .quiet()
        .read()?;
    let networks: Vec<&str> = networks.split_whitespace().collect();
    if !networks.is_empty() {
        found.extend(networks.iter().map(|id| format!("network {id}")));
        cmd!(sh, "docker network rm {networks...}")
            .quiet()
            .ignore_stdout()
            .run()?;
    }

    let volumes = cmd!(sh, "docker volume ls -q --filter {filter}")
        .quiet()
        .read()?;
    let volumes: Vec<&str> = volumes.split_whitespace().collect();
    if !volumes.is_empty() {
        found.extend(volumes.iter().map(|name| format!("volume {name}")));
        cmd!(sh, "docker volume rm -f {volumes...}")
            .quiet()
            .ignore_stdout()
            .run()?;
    }
    Ok(found)
}
