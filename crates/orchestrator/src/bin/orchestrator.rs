//! The orchestrator binary: settings from flags or the environment, then the library's server.

use clap::Parser;
use orchestrator::Settings;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    orchestrator::serve(Settings::parse()).await
}
