use clap::Parser;
use s3_local::S3LocalSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,s3s=warn".into()),
        )
        .init();
    let settings = S3LocalSettings::parse();
    s3_local::run(settings, s3_local::shutdown_signal()).await
}
