//! S3: [`Storage`], the one way to the bucket: presigned URLs, per task and per object key,
//! signed for the endpoint runners and the master script reach (`S3_PUBLIC_ENDPOINT_URL`, see
//! [`Presigner`]), and the orchestrator's own reads and multipart uploads through
//! `S3_ENDPOINT_URL`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::sync::{Mutex, OnceCell};

use crate::settings::S3Settings;

/// The region signed for when neither `AWS_REGION` nor the AWS default chain names one
/// (s3-local accepts any region).
const FALLBACK_REGION: &str = "us-east-1";

/// Signs URLs for one bucket with one client, built once at start.
///
/// A claim signs two URLs, so signing is on the claim's path. Going through the SDK's request
/// pipeline (endpoint rules, interceptors, identity resolution) took 31 µs a URL; the signer
/// here asks the SDK once for the bucket's URL and then signs each object's URL itself with
/// the SDK's own SigV4 signer ([`aws_sigv4`]), with the client's region and the credentials
/// the client was built with. The URLs are the SDK's, byte for byte (a test compares them).
#[derive(Debug, Clone)]
pub struct Presigner {
    client: aws_sdk_s3::Client,
    credentials: Option<SharedCredentialsProvider>,
    bucket: String,
    ttl: Duration,
    signer: Arc<OnceCell<UrlSigner>>,
}

impl Presigner {
    /// A presigner using `client`, whose endpoint is the one URLs are signed for, and
    /// `credentials`, the ones the client signs with (the SDK does not hand them out).
    pub fn new(
        client: aws_sdk_s3::Client,
        credentials: impl ProvideCredentials + 'static,
        bucket: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self::with_credentials(
            client,
            Some(SharedCredentialsProvider::new(credentials)),
            bucket,
            ttl,
        )
    }

    fn with_credentials(
        client: aws_sdk_s3::Client,
        credentials: Option<SharedCredentialsProvider>,
        bucket: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            client,
            credentials,
            bucket: bucket.into(),
            ttl,
            signer: Arc::default(),
        }
    }

    /// A presigner for the settings' bucket and public endpoint, with credentials and region
    /// from the AWS default chain.
    pub async fn from_settings(settings: &S3Settings, ttl: Duration) -> Self {
        let (client, credentials) = client_for(settings, settings.presign_endpoint()).await;
        Self::with_credentials(client, credentials, &settings.s3_bucket, ttl)
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
        self.url(Method::Put, key, SystemTime::now())
            .await
            .with_context(|| format!("failed to presign a PUT of {key}"))
    }

    /// A URL that lets its holder GET exactly this key, until the TTL runs out.
    pub async fn get_url(&self, key: &str) -> anyhow::Result<String> {
        self.url(Method::Get, key, SystemTime::now())
            .await
            .with_context(|| format!("failed to presign a GET of {key}"))
    }

    async fn url(&self, method: Method, key: &str, now: SystemTime) -> anyhow::Result<String> {
        let signer = self
            .signer
            .get_or_try_init(|| {
                UrlSigner::for_bucket(
                    &self.client,
                    self.credentials.clone(),
                    &self.bucket,
                    self.ttl,
                )
            })
            .await?;
        let credentials = signer.credentials.get().await?;
        signer.sign(method, key, &credentials, self.ttl, now)
    }

    /// The URL the SDK itself signs, for comparison in tests.
    #[cfg(test)]
    async fn sdk_url(&self, method: Method, key: &str, now: SystemTime) -> String {
        let config = PresigningConfig::builder()
            .start_time(now)
            .expires_in(self.ttl)
            .build()
            .unwrap();
        let request = match method {
            Method::Get => {
                let get = self.client.get_object().bucket(&self.bucket).key(key);
                get.presigned(config).await.unwrap()
            }
            Method::Put => {
                let put = self.client.put_object().bucket(&self.bucket).key(key);
                put.presigned(config).await.unwrap()
            }
        };
        request.uri().to_owned()
    }
}

/// The requests URLs are signed for.
#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Put,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
        }
    }

    /// The operation name the SDK puts into its URLs (`x-id`), and is signed with them.
    fn operation(self) -> &'static str {
        match self {
            Method::Get => "GetObject",
            Method::Put => "PutObject",
        }
    }
}

/// The key the SDK is asked to sign once, to learn the bucket's URL.
const PROBE_KEY: &str = "rcb-probe";

/// Credentials are fetched again this long before they expire.
const CREDENTIALS_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// What signing needs that does not change from URL to URL.
#[derive(Debug)]
struct UrlSigner {
    /// The bucket's URL with its trailing slash, as the SDK resolves it (path-style for
    /// s3-local, a virtual host on AWS): an object's URL is this and its encoded key.
    bucket_url: String,
    region: String,
    credentials: CredentialsCache,
}

impl UrlSigner {
    async fn for_bucket(
        client: &aws_sdk_s3::Client,
        credentials: Option<SharedCredentialsProvider>,
        bucket: &str,
        ttl: Duration,
    ) -> anyhow::Result<Self> {
        let region = client
            .config()
            .region()
            .context("the S3 client has no region")?
            .to_string();
        let provider = credentials
            .context("no AWS credentials: set them in the environment or the AWS default chain")?;
        let probe = client
            .get_object()
            .bucket(bucket)
            .key(PROBE_KEY)
            // The SDK's own check of the lifetime (at most a week): a signer is only made
            // for a lifetime it accepts, so every URL of a longer one fails here.
            .presigned(PresigningConfig::expires_in(ttl).context("invalid presigned URL lifetime")?)
            .await
            .context("failed to resolve the bucket's URL")?;
        let uri = probe.uri();
        let without_query = uri.split_once('?').map_or(uri, |(url, _)| url);
        let bucket_url = without_query
            .strip_suffix(PROBE_KEY)
            .filter(|url| url.ends_with('/'))
            .with_context(|| format!("unexpected presigned URL shape: {without_query}"))?
            .to_owned();
        Ok(Self {
            bucket_url,
            region,
            credentials: CredentialsCache::new(provider),
        })
    }

    fn sign(
        &self,
        method: Method,
        key: &str,
        credentials: &Credentials,
        ttl: Duration,
        now: SystemTime,
    ) -> anyhow::Result<String> {
        // A URL signed with temporary credentials stops working when they expire, whatever
        // its lifetime says; like the SDK, the lifetime is left as configured.
        let mut url = format!(
            "{}{}?x-id={}",
            self.bucket_url,
            utf8_percent_encode(key, KEY),
            method.operation()
        );
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(ttl);
        // S3 signs the path as sent: no second encoding, no normalisation of `.` or `//`.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = Identity::from(credentials.clone());
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()?
            .into();
        let request = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )?;
        let (instructions, _signature) = sign(request, &params)?.into_parts();
        for (name, value) in instructions.params() {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.extend(utf8_percent_encode(value, QUERY_VALUE));
        }
        Ok(url)
    }
}

/// What an object key keeps unencoded in a URL path: RFC 3986's unreserved characters and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// What a query value keeps unencoded: the unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The client's credentials, fetched once and again shortly before they expire (instance
/// roles' credentials do; static ones never).
#[derive(Debug)]
struct CredentialsCache {
    provider: SharedCredentialsProvider,
    current: RwLock<Option<Credentials>>,
    refreshing: Mutex<()>,
}

impl CredentialsCache {
    fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            current: RwLock::new(None),
            refreshing: Mutex::new(()),
        }
    }

    async fn get(&self) -> anyhow::Result<Credentials> {
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        let _refreshing = self.refreshing.lock().await;
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .context("failed to load AWS credentials")?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(credentials.clone());
        Ok(credentials)
    }

    fn fresh(&self) -> Option<Credentials> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|credentials| {
                credentials
                    .expiry()
                    .is_none_or(|expiry| expiry > SystemTime::now() + CREDENTIALS_REFRESH_MARGIN)
            })
            .cloned()
    }
}

/// The bucket as the orchestrator uses it: URLs presigned for runners and the master script
/// ([`Presigner`], for the public endpoint), and its own reads and writes (the archive builder
/// reads task uploads and writes run archives) through `S3_ENDPOINT_URL`, the address the
/// orchestrator reaches, which may differ from the public one.
#[derive(Debug, Clone)]
pub struct Storage {
    client: aws_sdk_s3::Client,
    bucket: String,
    presigner: Presigner,
}

impl Storage {
    /// Storage of the presigner's bucket, read and written through `client`.
    pub fn new(client: aws_sdk_s3::Client, presigner: Presigner) -> Self {
        Self {
            client,
            bucket: presigner.bucket().to_owned(),
            presigner,
        }
    }

    /// Storage of the settings' bucket through `S3_ENDPOINT_URL` (AWS when unset), with URLs
    /// signed by `presigner`.
    pub async fn from_settings(settings: &S3Settings, presigner: Presigner) -> Self {
        let client = client_for(settings, settings.s3_endpoint_url.as_deref())
            .await
            .0;
        Self::new(client, presigner)
    }

    /// What signs the URLs.
    pub fn presigner(&self) -> &Presigner {
        &self.presigner
    }

    /// A presigned URL that lets its holder PUT exactly this key ([`Presigner::put_url`]).
    pub async fn put_url(&self, key: &str) -> anyhow::Result<String> {
        self.presigner.put_url(key).await
    }

    /// A presigned URL that lets its holder GET exactly this key ([`Presigner::get_url`]).
    pub async fn get_url(&self, key: &str) -> anyhow::Result<String> {
        self.presigner.get_url(key).await
    }

    /// Opens the object at `key` for reading; `None` when there is none.
    pub async fn open_object(&self, key: &str) -> anyhow::Result<Option<ObjectBody>> {
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match response {
            Ok(output) => Ok(Some(ObjectBody(output.body))),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                Ok(None)
            }
            Err(err) => Err(anyhow::anyhow!(
                "failed to read {key} from S3: {}",
                DisplayErrorContext(err)
            )),
        }
    }

    /// Whether an object is at `key`.
    pub async fn object_exists(&self, key: &str) -> anyhow::Result<bool> {
        let response = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match response {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_not_found()) =>
            {
                Ok(false)
            }
            Err(err) => Err(anyhow::anyhow!(
                "failed to look for {key} in S3: {}",
                DisplayErrorContext(err)
            )),
        }
    }

    /// Starts a multipart upload to `key` of an object of `content_type`, its parts
    /// checksummed with CRC32.
    pub async fn start_multipart_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> anyhow::Result<MultipartUpload> {
        let upload_id = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("{}", DisplayErrorContext(err)))
            .with_context(|| format!("failed to start the multipart upload of {key}"))?
            .upload_id
            .context("S3 started a multipart upload without an upload id")?;
        Ok(MultipartUpload {
            key: key.to_owned(),
            upload_id,
            parts: Vec::new(),
        })
    }

    /// Uploads the next part of `upload`.
    pub async fn upload_part(
        &self,
        upload: &mut MultipartUpload,
        part: Bytes,
    ) -> anyhow::Result<()> {
        let key = &upload.key;
        let number = i32::try_from(upload.parts.len() + 1).context("too many parts")?;
        let output = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload.upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("{}", DisplayErrorContext(err)))
            .with_context(|| format!("failed to upload part {number} of {key}"))?;
        upload.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(output.e_tag)
                .set_checksum_crc32(output.checksum_crc32)
                .build(),
        );
        Ok(())
    }

    /// Completes `upload` from the parts uploaded: the object appears at its key.
    pub async fn complete_multipart_upload(&self, upload: MultipartUpload) -> anyhow::Result<()> {
        let MultipartUpload {
            key,
            upload_id,
            parts,
        } = upload;
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("{}", DisplayErrorContext(err)))
            .with_context(|| format!("failed to complete the multipart upload of {key}"))?;
        Ok(())
    }

    /// Aborts `upload`: S3 drops its parts.
    pub async fn abort_multipart_upload(&self, upload: MultipartUpload) -> anyhow::Result<()> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("{}", DisplayErrorContext(err)))
            .with_context(|| format!("failed to abort the multipart upload of {}", upload.key))?;
        Ok(())
    }
}

/// A multipart upload under way: its key, its id and the parts uploaded so far, in order.
#[derive(Debug)]
pub struct MultipartUpload {
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

/// The body of an object being read.
#[derive(Debug)]
pub struct ObjectBody(ByteStream);

impl ObjectBody {
    /// The next bytes of the body, in the chunks the HTTP client reads; `None` at its end.
    pub async fn next_chunk(&mut self) -> anyhow::Result<Option<Bytes>> {
        Ok(self.0.try_next().await?)
    }
}

/// A client for `endpoint` (AWS S3 when `None`), with credentials and region from the AWS
/// default chain, and the chain's credentials provider.
async fn client_for(
    settings: &S3Settings,
    endpoint: Option<&str>,
) -> (aws_sdk_s3::Client, Option<SharedCredentialsProvider>) {
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
    (
        aws_sdk_s3::Client::from_conf(config.build()),
        shared.credentials_provider(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use aws_credential_types::Credentials;
    use aws_sdk_s3::config::Region;

    use super::{Method, Presigner};

    /// The time URLs are signed at.
    const NOW: u64 = 1_764_547_200;

    fn presigner(endpoint: Option<&str>, session_token: Option<&str>) -> Presigner {
        temporary_presigner(endpoint, session_token, None)
    }

    fn temporary_presigner(
        endpoint: Option<&str>,
        session_token: Option<&str>,
        expiry: Option<SystemTime>,
    ) -> Presigner {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token.map(str::to_owned),
            expiry,
            "test",
        );
        let mut config = aws_sdk_s3::config::Builder::new()
            .behavior_version_latest()
            .region(Region::new("eu-central-1"))
            .credentials_provider(credentials.clone());
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint).force_path_style(true);
        }
        let client = aws_sdk_s3::Client::from_conf(config.build());
        Presigner::new(
            client,
            credentials,
            "rcb-results",
            Duration::from_secs(43200),
        )
    }

    #[tokio::test]
    async fn urls_are_the_sdks_byte_for_byte() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
        for presigner in [
            presigner(Some("http://127.0.0.1:9000"), None),
            presigner(
                Some("https://s3.example.net:8443/prefix"),
                Some("token/with+odd=chars"),
            ),
            presigner(None, Some("FwoGZXIvYXdzEJr//////////wEaDOf+token==")),
            // Instance-role credentials: a session token, and an expiry within the lifetime.
            temporary_presigner(
                None,
                Some("role-token"),
                Some(now + Duration::from_secs(3600)),
            ),
        ] {
            for key in [
                "runs/1733945123/tasks/42/result.tar.gz",
                "runs/1/results.tar.gz",
            ] {
                for method in [Method::Put, Method::Get] {
                    assert_eq!(
                        presigner.url(method, key, now).await.unwrap(),
                        presigner.sdk_url(method, key, now).await,
                        "{method:?} {key}"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn a_lifetime_beyond_a_week_is_refused() {
        let mut presigner = presigner(None, None);
        presigner.ttl = Duration::from_secs(8 * 24 * 3600);
        let error = presigner.put_url("k").await.unwrap_err();
        assert!(format!("{error:#}").contains("lifetime"), "{error:#}");
    }
}
