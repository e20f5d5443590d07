//! An S3-compatible server for local runs and tests: s3s-fs storage behind SigV4
//! authentication with one configured key pair, plus an unauthenticated health endpoint.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;

mod health;

pub use health::HEALTH_PATH;

/// How long open connections may take to finish after a shutdown signal.
const GRACEFUL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Command-line and environment settings of the s3-local server.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "s3-local", version, about)]
pub struct S3LocalSettings {
    /// Address to listen on.
    #[arg(long, env = "S3_LOCAL_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Directory holding the buckets (one sub-directory each); created if missing.
    #[arg(long, env = "S3_LOCAL_ROOT")]
    pub root: PathBuf,
    /// Access key id that requests must be signed with.
    #[arg(long, env = "S3_LOCAL_ACCESS_KEY")]
    pub access_key: String,
    /// Secret key that requests must be signed with.
    #[arg(long, env = "S3_LOCAL_SECRET_KEY", hide_env_values = true)]
    pub secret_key: String,
    /// Bucket to create at start if it does not exist (repeatable).
    #[arg(long = "bucket", env = "S3_LOCAL_BUCKETS", value_delimiter = ',')]
    pub buckets: Vec<String>,
}

/// Builds the S3 service: file-system storage, SigV4 auth with the configured keys,
/// anonymous requests refused.
pub fn build_service(settings: &S3LocalSettings) -> anyhow::Result<S3Service> {
    std::fs::create_dir_all(&settings.root).with_context(|| {
        format!(
            "failed to create the root directory {}",
            settings.root.display()
        )
    })?;
    for bucket in &settings.buckets {
        validate_bucket_name(bucket)?;
        std::fs::create_dir_all(settings.root.join(bucket))
            .with_context(|| format!("failed to create bucket {bucket}"))?;
    }
    let storage = s3s_fs::FileSystem::new(&settings.root).map_err(|err| {
        anyhow::anyhow!(
            "failed to open {} as storage: {err:?}",
            settings.root.display()
        )
    })?;
    let mut builder = S3ServiceBuilder::new(storage);
    builder.set_auth(SimpleAuth::from_single(
        settings.access_key.clone(),
        settings.secret_key.clone(),
    ));
    Ok(builder.build())
}

/// Binds the listen address and serves until `shutdown` resolves.
pub async fn run(
    settings: S3LocalSettings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("failed to listen on {}", settings.listen))?;
    serve(listener, &settings, shutdown).await
}

/// Serves S3 on an already bound listener until `shutdown` resolves, then lets open
/// connections finish for a bounded time.
pub async fn serve(
    listener: TcpListener,
    settings: &S3LocalSettings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let service = health::WithHealth(build_service(settings)?);
    let local_addr = listener.local_addr()?;
    let http = ConnBuilder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tracing::info!(
        "s3-local listening on http://{local_addr}, storing in {}",
        settings.root.display()
    );

    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(err) => {
                    tracing::warn!("failed to accept a connection: {err}");
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        let conn = http.serve_connection(TokioIo::new(socket), service.clone());
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!("connection ended with an error: {err}");
            }
        });
    }

    tracing::info!("shutting down");
    if tokio::time::timeout(GRACEFUL_SHUTDOWN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish in time; closing them");
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT, so `docker stop` ends the server cleanly.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("failed to install the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Checks a bucket name against S3's rules before it becomes a directory name.
fn validate_bucket_name(name: &str) -> anyhow::Result<()> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let valid_ends = name
        .bytes()
        .next()
        .zip(name.bytes().last())
        .is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric());
    if (3..=63).contains(&name.len()) && valid_chars && valid_ends {
        Ok(())
    } else {
        anyhow::bail!(
            "invalid bucket name {name:?}: use 3 to 63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::validate_bucket_name;

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(validate_bucket_name("rcb-results").is_ok());
        for bad in ["", "ab", "Upper", "-lead", "trail-", "a/b", "x_y"] {
            assert!(validate_bucket_name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
