//! Checks of the Nix flake that need no nixpkgs: every Nix file parses, and the images
//! `nix/` describes agree with what `cargo xtask images` builds from the same description.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

use crate::images::{Description, ImageSpec};

/// An image as `nix/image-configs.nix` evaluates it.
#[derive(Debug, Deserialize)]
struct NixImage {
    name: String,
    tag: String,
    binary: String,
    config: NixImageConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NixImageConfig {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    exposed_ports: BTreeMap<String, serde_json::Value>,
    labels: BTreeMap<String, String>,
    stop_signal: String,
}

/// Parses every Nix file and compares the Nix image configs with the description.
pub fn check(sh: &Shell) -> anyhow::Result<()> {
    let mut files = vec!["flake.nix".to_owned()];
    for entry in sh.read_dir("nix")? {
        if entry.extension().is_some_and(|ext| ext == "nix") {
            files.push(entry.to_string_lossy().into_owned());
        }
    }
    for file in &files {
        cmd!(sh, "nix-instantiate --parse {file}")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("{file} does not parse"))?;
    }
    let evaluated = cmd!(
        sh,
        "nix-instantiate --eval --strict --json nix/image-configs.nix"
    )
    .quiet()
    .read()
    .context("nix/image-configs.nix does not evaluate")?;
    let nix: BTreeMap<String, NixImage> = serde_json::from_str(&evaluated)?;
    let description = Description::load(sh)?;
    let mismatches = compare(&description, &nix);
    if !mismatches.is_empty() {
        bail!(
            "nix/ and xtask/images/images.toml disagree:\n  {}",
            mismatches.join("\n  ")
        );
    }
    eprintln!(
        "xtask nix: {} files parse; {} images agree with images.toml",
        files.len(),
        nix.len()
    );
    Ok(())
}

/// What differs between the images xtask builds and those Nix builds.
fn compare(description: &Description, nix: &BTreeMap<String, NixImage>) -> Vec<String> {
    let mut mismatches = Vec::new();
    let expected: Vec<&ImageSpec> = description
        .image
        .iter()
        .filter(|image| image.binary.is_some())
        .collect();
    for image in &expected {
        let Some(built) = nix.get(&image.name) else {
            mismatches.push(format!("image {} is missing from nix/", image.name));
            continue;
        };
        let mut check = |what: &str, ours: String, theirs: String| {
            if ours != theirs {
                mismatches.push(format!(
                    "image {} {what}: xtask {ours}, nix {theirs}",
                    image.name
                ));
            }
        };
        check(
            "name",
            format!("{}/{}", description.prefix, image.name),
            built.name.clone(),
        );
        check(
            "tag",
            format!("{:?}", image.tag),
            format!("{:?}", Some(&built.tag)),
        );
        check(
            "binary",
            format!("{:?}", image.binary),
            format!("{:?}", Some(&built.binary)),
        );
        check(
            "entrypoint",
            format!("{:?}", image.entrypoint.clone().unwrap_or_default()),
            format!("{:?}", built.config.entrypoint),
        );
        check(
            "cmd",
            format!("{:?}", image.cmd.clone().unwrap_or_default()),
            format!("{:?}", built.config.cmd),
        );
        let env: Vec<String> = image
            .env
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let mut nix_env = built.config.env.clone();
        nix_env.sort();
        check("env", format!("{env:?}"), format!("{nix_env:?}"));
        let ports: Vec<String> = image
            .ports
            .iter()
            .map(|port| format!("{port}/tcp"))
            .collect();
        let nix_ports: Vec<String> = built.config.exposed_ports.keys().cloned().collect();
        check("ports", format!("{ports:?}"), format!("{nix_ports:?}"));
        check(
            "project label",
            format!("{:?}", Some(&description.project)),
            format!("{:?}", built.config.labels.get(&description.label)),
        );
        check(
            "stop signal",
            image
                .stop_signal
                .clone()
                .unwrap_or_else(|| "SIGTERM".to_owned()),
            built.config.stop_signal.clone(),
        );
    }
    for name in nix.keys() {
        if !expected.iter().any(|image| &image.name == name) {
            mismatches.push(format!(
                "nix/ builds image {name}, which images.toml does not describe"
            ));
        }
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description() -> Description {
        toml::from_str(
            r#"
            prefix = "rcb"
            label = "rcb.project"
            project = "p"
            [rootfs.base]
            suite = "bookworm"
            variant = "minbase"
            mirror = "http://deb.debian.org/debian"
            packages = []
            [[image]]
            name = "s3-local"
            tag = "latest"
            rootfs = "base"
            binary = "s3-local"
            entrypoint = ["/usr/local/bin/s3-local"]
            env = { A = "1" }
            ports = [9000]
            "#,
        )
        .unwrap()
    }

    fn nix_image(env: &str) -> BTreeMap<String, NixImage> {
        let json = format!(
            r#"{{"s3-local": {{"name": "rcb/s3-local", "tag": "latest", "binary": "s3-local", "config": {{
                "Entrypoint": ["/usr/local/bin/s3-local"], "Cmd": [], "Env": ["{env}"],
                "ExposedPorts": {{"9000/tcp": {{}}}}, "Labels": {{"rcb.project": "p"}}, "StopSignal": "SIGTERM"}}}}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn agreeing_descriptions_have_no_mismatch() {
        assert_eq!(
            compare(&description(), &nix_image("A=1")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn drift_is_reported() {
        let mismatches = compare(&description(), &nix_image("A=2"));
        assert_eq!(
            mismatches,
            [r#"image s3-local env: xtask ["A=1"], nix ["A=2"]"#]
        );
        let missing = compare(&description(), &BTreeMap::new());
        assert_eq!(missing, ["image s3-local is missing from nix/"]);
    }
}
