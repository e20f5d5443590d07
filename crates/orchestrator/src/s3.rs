//! S3: presigned URLs, per task and per object key, signed for the endpoint runners and the
//! master script reach (`S3_PUBLIC_ENDPOINT_URL`); and [`Storage`], the orchestrator's own
//! access to the bucket through `S3_ENDPOINT_URL`.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::presigning::PresigningConfig;

use crate::settings::S3Settings;

/// The region signed for when neither `AWS_REGION` nor the AWS default chain names one
/// (s3-local accepts any region).
const FALLBACK_REGION: &str = "us-east-1";

/// Signs URLs for one bucket with one client, built once at start.
#[derive(Debug, Clone)]
pub struct Presigner {
    client: aws_sdk_s3::Client,
    bucket: String,
    ttl: Duration,
}

impl Presigner {
    /// A presigner using `client`, whose endpoint is the one URLs are signed for.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, ttl: Duration) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            ttl,
        }
    }

    /// A presigner for the settings' bucket and public endpoint, with credentials and region
    /// from the AWS default chain.
    pub async fn from_settings(settings: &S3Settings, ttl: Duration) -> Self {
        let client = client_for(settings, settings.presign_endpoint()).await;
        Self::new(client, &settings.s3_bucket, ttl)
    }

    /// The client URLs are signed with.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The bucket URLs point into.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A URL that lets its holder PUT exactly this key, until the TTL runs out.
    pub async fn put_url(&self, key: &str) -> anyhow::Result<String> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(self.presigning_config()?)
            .await
            .with_context(|| format!("failed to presign a PUT of {key}"))?;
        Ok(request.uri().to_owned())
    }

    /// A URL that lets its holder GET exactly this key, until the TTL runs out.
    pub async fn get_url(&self, key: &str) -> anyhow::Result<String> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(self.presigning_config()?)
            .await
            .with_context(|| format!("failed to presign a GET of {key}"))?;
        Ok(request.uri().to_owned())
    }

    fn presigning_config(&self) -> anyhow::Result<PresigningConfig> {
        PresigningConfig::expires_in(self.ttl).context("invalid presigned URL lifetime")
    }
}

/// The orchestrator's own access to the bucket (the archive builder reads task uploads and
/// writes run archives), through `S3_ENDPOINT_URL`: the address the orchestrator reaches, which
/// may differ from the public one URLs are signed for.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The client.
    pub client: aws_sdk_s3::Client,
    /// The bucket.
    pub bucket: String,
}

impl Storage {
    /// Storage for the settings' bucket through `S3_ENDPOINT_URL` (AWS when unset).
    pub async fn from_settings(settings: &S3Settings) -> Self {
        Self {
            client: client_for(settings, settings.s3_endpoint_url.as_deref()).await,
            bucket: settings.s3_bucket.clone(),
        }
    }
}

/// A client for `endpoint` (AWS S3 when `None`), with credentials and region from the AWS
/// default chain.
async fn client_for(settings: &S3Settings, endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    match (&settings.aws_region, endpoint) {
        (Some(region), _) => loader = loader.region(Region::new(region.clone())),
        // An S3-compatible server does not care about the region; asking the chain would
        // end in the instance metadata service, which only answers inside AWS.
        (None, Some(_)) => loader = loader.region(Region::new(FALLBACK_REGION)),
        (None, None) => {}
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        config = config.region(Region::new(FALLBACK_REGION));
    }
    if let Some(endpoint) = endpoint {
        // S3-compatible servers such as s3-local serve buckets as paths, not host names.
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}
