//! The presigned URLs of a claim upload to s3-local, each to its own key only.

use aws_sdk_s3::primitives::ByteStream;
use protocol::layout;

use crate::harness::{TestApp, local_config};

async fn put(url: &str, body: &'static [u8]) -> reqwest::StatusCode {
    reqwest::Client::new()
        .put(url)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn object(app: &TestApp, key: &str) -> Option<Vec<u8>> {
    let client = app.bucket.server.client();
    let output = client
        .get_object()
        .bucket(&app.bucket.name)
        .key(key)
        .send()
        .await
        .ok()?;
    let body: ByteStream = output.body;
    Some(body.collect().await.unwrap().into_bytes().to_vec())
}

#[tokio::test]
async fn claimed_urls_upload_the_task_result_and_error() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (task, urls) = app.claim_assigned("local", "local-1cpu", "r").await;
    let result_key = layout::task_result_key(task.run_id, task.id);
    let error_key = layout::task_error_key(task.run_id, task.id);
    assert!(urls.result.starts_with(&app.bucket.server.endpoint));
    assert!(
        urls.result
            .contains(&format!("/{}/{result_key}?", app.bucket.name))
    );

    assert_eq!(
        put(&urls.result, b"result archive").await,
        reqwest::StatusCode::OK
    );
    assert_eq!(
        put(&urls.error, b"error archive").await,
        reqwest::StatusCode::OK
    );
    assert_eq!(object(&app, &result_key).await.unwrap(), b"result archive");
    assert_eq!(object(&app, &error_key).await.unwrap(), b"error archive");
}

#[tokio::test]
async fn a_url_for_one_key_cannot_write_another() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (mine, urls) = app.claim_assigned("local", "local-1cpu", "r-1").await;
    let (theirs, _) = app.claim_assigned("local", "local-1cpu", "r-2").await;
    let my_key = layout::task_result_key(mine.run_id, mine.id);
    let their_key = layout::task_result_key(theirs.run_id, theirs.id);
    let my_error_key = layout::task_error_key(mine.run_id, mine.id);

    for other_key in [&their_key, &my_error_key] {
        let forged = urls.result.replacen(&my_key, other_key, 1);
        assert_ne!(forged, urls.result);
        let status = put(&forged, b"forged").await;
        assert!(status.is_client_error(), "{other_key}: {status}");
        assert!(
            object(&app, other_key).await.is_none(),
            "{other_key} was written"
        );
    }
    // The URL is for PUT only: a GET with it is refused too.
    let status = reqwest::get(&urls.result).await.unwrap().status();
    assert!(status.is_client_error(), "{status}");
}
