//! The tests' PyPI tools (moto, the aws CLI, schemathesis): pinned in
//! `tests/system/requirements.txt` and installed by `cargo xtask test` into a venv of the
//! project's cache directory (`$XDG_CACHE_HOME/rcb/venv`, else `~/.cache/rcb/venv`).

use std::path::{Path, PathBuf};

/// The requirements file, relative to the workspace root.
pub const REQUIREMENTS: &str = "tests/system/requirements.txt";

/// The venv's `bin` directory.
pub fn venv_bin() -> PathBuf {
    let cache = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(&std::env::var_os("HOME").expect("HOME is set")).join(".cache"),
    };
    cache.join("rcb/venv/bin")
}

/// The command that installs the pinned tools, for a missing-tool message.
pub fn install_command() -> String {
    let venv = venv_bin().parent().unwrap().display().to_string();
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(REQUIREMENTS);
    format!(
        "python3 -m venv {venv} && {venv}/bin/pip install -r {} (cargo xtask test does this)",
        requirements.display()
    )
}

/// The venv's `name` (an executable); panics with the command that installs it when missing.
pub fn venv_tool(name: &str) -> PathBuf {
    let tool = venv_bin().join(name);
    assert!(
        tool.is_file(),
        "{} is missing; install the tests' PyPI tools with: {}",
        tool.display(),
        install_command()
    );
    tool
}
