//! One s3-local server per test process, a fresh bucket per test that asks.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use testcontainers::core::WaitFor;
use tokio::sync::OnceCell;

use crate::containers::{self, ContainerSpec};
use local_stack::catalog;

/// How long s3-local may take to answer its health endpoint.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

/// The shared s3-local server and the keys it accepts.
#[derive(Debug, Clone)]
pub struct S3Server {
    /// Endpoint URL, e.g. `http://127.0.0.1:32768`.
    pub endpoint: String,
    /// Access key id the server accepts.
    pub access_key: String,
    /// Secret key the server accepts.
    pub secret_key: String,
    /// Region to sign for.
    pub region: String,
}

/// A bucket of its own for one test.
#[derive(Debug, Clone)]
pub struct TestBucket {
    /// The server holding the bucket.
    pub server: S3Server,
    /// Name of the bucket.
    pub name: String,
}

impl S3Server {
    /// The accepted keys, as AWS credentials (what [`S3Server::client`] signs with).
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "test-support",
        )
    }

    /// An S3 client for this server with the accepted keys, path-style addressing.
    pub fn client(&self) -> aws_sdk_s3::Client {
        self.client_with_secret(&self.secret_key)
    }

    /// An S3 client signing with another secret key (to test refusals).
    pub fn client_with_secret(&self, secret_key: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(self.region.clone()))
            .credentials_provider(Credentials::new(
                &self.access_key,
                secret_key,
                None,
                None,
                "test-support",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// The shared s3-local server, started on first use.
pub async fn s3_server() -> &'static S3Server {
    static SERVER: OnceCell<S3Server> = OnceCell::const_new();
    SERVER
        .get_or_init(|| async {
            let access_key = "test-access-key".to_owned();
            let secret_key = "test-secret-key".to_owned();
            let started = containers::start(ContainerSpec {
                image: catalog().reference("s3-local", "latest"),
                port: 9000,
                ready_message: WaitFor::message_on_stdout("s3-local listening"),
                env: vec![
                    ("S3_LOCAL_ACCESS_KEY", access_key.clone()),
                    ("S3_LOCAL_SECRET_KEY", secret_key.clone()),
                ],
                cmd: Vec::new(),
            })
            .await;
            let server = S3Server {
                endpoint: format!("http://127.0.0.1:{}", started.host_port),
                access_key,
                secret_key,
                region: "us-east-1".to_owned(),
            };
            wait_healthy(&server.endpoint).await;
            server
        })
        .await
}

/// Creates a new, empty bucket on the shared s3-local server.
pub async fn fresh_bucket() -> TestBucket {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let server = s3_server().await.clone();
    let name = format!(
        "test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    server
        .client()
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|err| panic!("failed to create bucket {name}: {err:?}"));
    TestBucket { server, name }
}

async fn wait_healthy(endpoint: &str) {
    let url = format!("{endpoint}/_health");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + HEALTH_TIMEOUT;
    loop {
        match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => return,
            _ if tokio::time::Instant::now() >= deadline => {
                panic!("s3-local at {endpoint} was not healthy within {HEALTH_TIMEOUT:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
