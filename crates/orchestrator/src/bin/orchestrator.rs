//! The orchestrator binary: settings from flags or the environment, then the library's server.

use std::io::IsTerminal;

use clap::Parser;
use orchestrator::Settings;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        // Colours only on a terminal: `docker logs` shows escape codes verbatim.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    orchestrator::serve(Settings::parse()).await
}
