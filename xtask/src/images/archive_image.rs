//! An image of another architecture than the Docker engine's, assembled here as a `docker
//! save` archive (a root file system layer, a layer of our files, a config that names the
//! architecture) and brought in with `docker load`. Neither `docker import --platform` nor
//! the legacy builder records a foreign architecture on Docker 20.10 (both write the
//! engine's own), and `docker load` takes the config as it is on every engine. Nothing of
//! the image runs.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

/// What goes into the image besides its root file system.
pub struct ArchiveImage<'a> {
    /// The reference it is loaded as, e.g. `rcb/runner:deploy-arm64`.
    pub reference: &'a str,
    /// Docker's architecture name, e.g. `arm64`.
    pub architecture: &'a str,
    /// The root file system, an uncompressed tar: the first layer as it is.
    pub rootfs: &'a Path,
    /// Files of the second layer: (absolute path in the image, bytes), all executable.
    pub files: Vec<(String, Vec<u8>)>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<u16>,
    pub stop_signal: Option<String>,
}

impl ArchiveImage<'_> {
    /// The image's config with its layers' digests: everything the image is, so its hash
    /// keys the image (`rcb.input-hash`). The caller adds that label, then loads.
    pub fn config(&self) -> anyhow::Result<Value> {
        let rootfs_digest = file_digest(self.rootfs)?;
        let files_digest = hex::encode(Sha256::digest(self.files_layer()?));
        let exposed: serde_json::Map<String, Value> = self
            .ports
            .iter()
            .map(|port| (format!("{port}/tcp"), json!({})))
            .collect();
        Ok(json!({
            "architecture": self.architecture,
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Env": self.env,
                "Entrypoint": self.entrypoint,
                "Cmd": self.cmd,
                "Labels": self.labels,
                "ExposedPorts": exposed,
                "StopSignal": self.stop_signal,
            },
            "rootfs": {
                "type": "layers",
                "diff_ids": [format!("sha256:{rootfs_digest}"), format!("sha256:{files_digest}")],
            },
            "history": [
                {"created": "1970-01-01T00:00:00Z", "created_by": "root file system (cargo xtask deploy-images)"},
                {"created": "1970-01-01T00:00:00Z", "created_by": "files (cargo xtask deploy-images)"},
            ],
        }))
    }

    /// Writes the `docker save` archive with `config` (from [`ArchiveImage::config`], labels
    /// completed) and loads it.
    pub fn load(&self, sh: &Shell, config: &Value) -> anyhow::Result<()> {
        let scratch = sh.create_temp_dir()?;
        let archive_path = scratch.path().join("image.tar");
        let config_bytes = serde_json::to_vec(config)?;
        let config_name = format!("{}.json", hex::encode(Sha256::digest(&config_bytes)));
        let layer_name = |index: usize| -> anyhow::Result<String> {
            let digest = config["rootfs"]["diff_ids"][index]
                .as_str()
                .and_then(|id| id.strip_prefix("sha256:"))
                .context("the config names its layers")?;
            Ok(format!("{digest}/layer.tar"))
        };
        let layers = [layer_name(0)?, layer_name(1)?];
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": [self.reference],
            "Layers": layers,
        }]);
        {
            let file = std::fs::File::create(&archive_path)?;
            let mut archive = tar::Builder::new(std::io::BufWriter::new(file));
            let mut rootfs = std::fs::File::open(self.rootfs)
                .with_context(|| format!("failed to open {}", self.rootfs.display()))?;
            let size = rootfs.metadata()?.len();
            append(&mut archive, &layers[0], size, &mut rootfs)?;
            let files_layer = self.files_layer()?;
            append(
                &mut archive,
                &layers[1],
                files_layer.len() as u64,
                &mut files_layer.as_slice(),
            )?;
            append(
                &mut archive,
                &config_name,
                config_bytes.len() as u64,
                &mut config_bytes.as_slice(),
            )?;
            let manifest = serde_json::to_vec(&manifest)?;
            append(
                &mut archive,
                "manifest.json",
                manifest.len() as u64,
                &mut manifest.as_slice(),
            )?;
            archive.into_inner()?.flush()?;
        }
        cmd!(sh, "docker load --quiet --input {archive_path}")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("docker load of {} failed", self.reference))?;
        Ok(())
    }

    /// The second layer: our files, owned by root, executable, dated 1970 (reproducible).
    fn files_layer(&self) -> anyhow::Result<Vec<u8>> {
        let mut layer = tar::Builder::new(Vec::new());
        for (path, bytes) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o755);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            layer.append_data(&mut header, path.trim_start_matches('/'), bytes.as_slice())?;
        }
        Ok(layer.into_inner()?)
    }
}

fn append(
    archive: &mut tar::Builder<impl std::io::Write>,
    name: &str,
    size: u64,
    data: &mut impl std::io::Read,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    archive.append_data(&mut header, name, data)?;
    Ok(())
}

fn file_digest(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}
