//! s3-local over HTTP, in the container `cargo xtask images` built: SigV4 is enforced on
//! every object request, and the binary shuts down cleanly on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use test_support::{TestBucket, fresh_bucket};

const BODY: &[u8] = b"interp: ruby 3.1.2p20\nyjit: ruby 3.1.2p20 +YJIT\n";

async fn presign_put(
    bucket: &TestBucket,
    key: &str,
    secret: &str,
    config: PresigningConfig,
) -> PresignedRequest {
    bucket
        .server
        .client_with_secret(secret)
        .put_object()
        .bucket(&bucket.name)
        .key(key)
        .presigned(config)
        .await
        .expect("presigning needs no network")
}

async fn presign_get(
    bucket: &TestBucket,
    key: &str,
    secret: &str,
    config: PresigningConfig,
) -> PresignedRequest {
    bucket
        .server
        .client_with_secret(secret)
        .get_object()
        .bucket(&bucket.name)
        .key(key)
        .presigned(config)
        .await
        .expect("presigning needs no network")
}

fn valid_for_a_minute() -> PresigningConfig {
    PresigningConfig::expires_in(Duration::from_secs(60)).unwrap()
}

/// Puts `BODY` at `key` through a correctly presigned URL.
async fn put_object(bucket: &TestBucket, key: &str) {
    let url = presign_put(bucket, key, &bucket.server.secret_key, valid_for_a_minute()).await;
    let response = reqwest::Client::new()
        .put(url.uri())
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn presigned_put_then_get_round_trips_the_bytes() {
    let bucket = fresh_bucket().await;
    put_object(&bucket, "runs/1/tasks/1/result.tar.gz").await;

    let url = presign_get(
        &bucket,
        "runs/1/tasks/1/result.tar.gz",
        &bucket.server.secret_key,
        valid_for_a_minute(),
    )
    .await;
    let response = reqwest::get(url.uri()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), BODY);
}

#[tokio::test]
async fn a_url_signed_with_the_wrong_secret_is_refused() {
    let bucket = fresh_bucket().await;
    put_object(&bucket, "object").await;

    let put = presign_put(&bucket, "other", "not-the-secret", valid_for_a_minute()).await;
    let response = reqwest::Client::new()
        .put(put.uri())
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let get = presign_get(&bucket, "object", "not-the-secret", valid_for_a_minute()).await;
    assert_eq!(reqwest::get(get.uri()).await.unwrap().status(), 403);
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let bucket = fresh_bucket().await;
    put_object(&bucket, "object").await;

    let url = presign_get(
        &bucket,
        "object",
        &bucket.server.secret_key,
        valid_for_a_minute(),
    )
    .await;
    let url = url.uri().to_owned();
    let (head, signature) = url
        .split_once("X-Amz-Signature=")
        .expect("a presigned URL carries its signature");
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    let tampered = format!("{head}X-Amz-Signature={flipped}{}", &signature[1..]);
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);

    // The signature covers the key too: the same signature for another object fails.
    let other_key = url.replacen("/object?", "/other?", 1);
    assert_ne!(other_key, url);
    assert_eq!(reqwest::get(&other_key).await.unwrap().status(), 403);
}

#[tokio::test]
async fn an_expired_url_is_refused() {
    let bucket = fresh_bucket().await;
    put_object(&bucket, "object").await;

    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    let expired = PresigningConfig::builder()
        .start_time(two_hours_ago)
        .expires_in(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = presign_get(&bucket, "object", &bucket.server.secret_key, expired).await;
    let response = reqwest::get(url.uri()).await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn anonymous_requests_are_refused() {
    let bucket = fresh_bucket().await;
    put_object(&bucket, "object").await;
    let base = format!("{}/{}", bucket.server.endpoint, bucket.name);
    let client = reqwest::Client::new();

    assert_eq!(
        client
            .get(format!("{base}/object"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        client
            .put(format!("{base}/new"))
            .body(BODY)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        client.get(&base).send().await.unwrap().status(),
        403,
        "listing"
    );
    assert_eq!(
        client
            .put(format!("{}/anonymous-bucket", bucket.server.endpoint))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // Nothing was written by the refused PUT.
    let listed = bucket
        .server
        .client()
        .list_objects_v2()
        .bucket(&bucket.name)
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed
        .contents()
        .iter()
        .filter_map(|object| object.key())
        .collect();
    assert_eq!(keys, ["object"]);
}

#[tokio::test]
async fn the_health_endpoint_needs_no_credentials() {
    let server = test_support::s3_server().await;
    let response = reqwest::get(format!("{}{}", server.endpoint, s3_local::HEALTH_PATH))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

/// The binary itself: `--bucket` creates the bucket directory, SIGTERM ends it with
/// status 0 after it stopped listening.
#[test]
fn the_binary_creates_buckets_and_stops_cleanly_on_sigterm() {
    let root = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3-local"))
        .args([
            "--listen",
            &address.to_string(),
            "--access-key",
            "k",
            "--secret-key",
            "s",
        ])
        .arg("--root")
        .arg(root.path())
        .args(["--bucket", "rcb-results"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(address).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "s3-local did not listen on {address}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(root.path().join("rcb-results").is_dir());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "s3-local ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "s3-local exited with {exit}");
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "still listening after exit"
    );
}

#[test]
fn bad_settings_fail_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_s3-local"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--access-key",
            "k",
            "--secret-key",
            "s",
            "--root",
            "/tmp",
            "--bucket",
            "Bad_Name",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid bucket name \"Bad_Name\""),
        "{stderr}"
    );
}
