//! Build script of the orchestrator.
//!
//! 1. `sqlx::migrate!` embeds the migrations at compile time; rebuild when they change.
//! 2. The dashboard serves Hotwire Turbo itself, and the repository holds no copy of it: this
//!    script takes `package/dist/turbo.es2017-esm.js` out of the npm tarball of
//!    `@hotwired/turbo` [`TURBO_VERSION`], after checking the tarball against the integrity
//!    npm publishes for it ([`TURBO_INTEGRITY`]), and writes it to `OUT_DIR` for
//!    `include_bytes!`. The tarball is, in order:
//!    - the file named by `TURBO_TARBALL` (an error when that file is missing);
//!    - [`SHARED_TARBALL`], or the same path beside the repository, where the project's
//!      machines keep it;
//!    - downloaded from the npm registry with `curl`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha512};

/// The pinned version of `@hotwired/turbo`.
const TURBO_VERSION: &str = "8.0.23";

/// The `dist.integrity` of the npm tarball of that version.
const TURBO_INTEGRITY: &str = "sha512-GZ7cijxEZ6Ig71u7rD6LHaRv/wcE/hNsc+nEfiWOkLNqUgLOwo5MNGWOy5ZV9ZUDSiQx1no7YxjTNnT4O6//cQ==";

/// The one file of the tarball the dashboard needs.
const TURBO_FILE: &str = "package/dist/turbo.es2017-esm.js";

/// Where the project's machines keep the tarball when `TURBO_TARBALL` is unset.
const SHARED_TARBALL: &str = "/work/shared/vendor/npm/hotwired-turbo-8.0.23.tgz";

/// The tarball on the npm registry.
const REGISTRY_URL: &str = "https://registry.npmjs.org/@hotwired/turbo/-/turbo-8.0.23.tgz";

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TURBO_TARBALL");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(message) = embed_turbo(&out_dir) {
        panic!(
            "\n\nturbo.js {TURBO_VERSION} is needed to build the dashboard: {message}.\n\
             Set TURBO_TARBALL to the npm tarball of @hotwired/turbo {TURBO_VERSION} \
             ({REGISTRY_URL}, integrity {TURBO_INTEGRITY}).\n\n"
        );
    }
}

fn embed_turbo(out_dir: &Path) -> Result<(), String> {
    let tarball = read_tarball(out_dir)?;
    let integrity = format!("sha512-{}", base64(&Sha512::digest(&tarball)));
    if integrity != TURBO_INTEGRITY {
        return Err(format!(
            "the tarball's integrity is {integrity}, not the pinned {TURBO_INTEGRITY}"
        ));
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball.as_slice()));
    let entries = archive
        .entries()
        .map_err(|e| format!("cannot read the tarball: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("cannot read the tarball: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("cannot read the tarball: {e}"))?
            .to_string_lossy()
            .into_owned();
        if path == TURBO_FILE {
            let mut script = Vec::new();
            entry
                .read_to_end(&mut script)
                .map_err(|e| format!("cannot read {TURBO_FILE}: {e}"))?;
            let target = out_dir.join("turbo.es2017-esm.js");
            return std::fs::write(&target, script)
                .map_err(|e| format!("cannot write {}: {e}", target.display()));
        }
    }
    Err(format!("the tarball has no {TURBO_FILE}"))
}

fn read_tarball(out_dir: &Path) -> Result<Vec<u8>, String> {
    if let Some(path) = std::env::var_os("TURBO_TARBALL") {
        let path = PathBuf::from(path);
        println!("cargo:rerun-if-changed={}", path.display());
        return std::fs::read(&path)
            .map_err(|e| format!("TURBO_TARBALL={} cannot be read: {e}", path.display()));
    }
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let beside_repository =
        manifest_dir.join("../../../shared/vendor/npm/hotwired-turbo-8.0.23.tgz");
    for candidate in [PathBuf::from(SHARED_TARBALL), beside_repository] {
        if candidate.is_file() {
            println!("cargo:rerun-if-changed={}", candidate.display());
            return std::fs::read(&candidate)
                .map_err(|e| format!("{} cannot be read: {e}", candidate.display()));
        }
    }
    let download = out_dir.join("turbo-download.tgz");
    let status = Command::new("curl")
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--max-time",
            "60",
        ])
        .arg("--output")
        .arg(&download)
        .arg(REGISTRY_URL)
        .status();
    match status {
        Ok(status) if status.success() => std::fs::read(&download)
            .map_err(|e| format!("cannot read the download {}: {e}", download.display())),
        Ok(status) => Err(format!(
            "TURBO_TARBALL is unset, {SHARED_TARBALL} does not exist, and curl {REGISTRY_URL} failed ({status})"
        )),
        Err(e) => Err(format!(
            "TURBO_TARBALL is unset, {SHARED_TARBALL} does not exist, and curl could not run ({e})"
        )),
    }
}

/// Standard base64 with padding, as npm writes integrity strings.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
