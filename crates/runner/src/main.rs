use std::process::ExitCode;

use clap::Parser;
use runner::RunnerSettings;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = RunnerSettings::parse();
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    match runner::run(settings, shutdown).await {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            eprintln!("runner: {err:#}");
            ExitCode::from(runner::EXIT_ERROR)
        }
    }
}

/// SIGTERM (docker stop, host shutdown) and SIGINT stop every slot: benchmark containers
/// are stopped and removed, held tasks are reported failed.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("failed to install the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::warn!("stopping: benchmark containers are stopped and held tasks reported failed");
    shutdown.cancel();
}
