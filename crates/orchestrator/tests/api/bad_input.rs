//! Malformed bodies, wrong types, oversized bodies, unknown and non-numeric ids, unknown routes:
//! always a 4xx with a JSON error, never a 500.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{TestApp, key_for, local_config};

const TASK_ACTIONS: [&str; 3] = ["heartbeat", "complete", "fail"];

async fn post_raw(
    app: &TestApp,
    path: &str,
    body: impl Into<axum::body::Body>,
) -> crate::harness::TestResponse {
    app.send(Method::POST, path, Some(&key_for(path)), body)
        .await
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_message() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let bodies: [&[u8]; 8] = [
        b"",
        b"{",
        b"not json",
        b"[1, 2]",
        b"null",
        b"\"a string\"",
        b"{\"runner_id\": \"r\",}",
        b"\xff\xfe",
    ];
    let mut paths = vec!["/run/start".to_owned(), "/tasks/claim".to_owned()];
    paths.extend(TASK_ACTIONS.map(|action| format!("/tasks/1/{action}")));
    let mut messages = Vec::new();
    for path in &paths {
        for body in bodies {
            let response = post_raw(&app, path, body.to_vec()).await;
            let message = response.expect_error(StatusCode::BAD_REQUEST);
            if path == "/tasks/claim" {
                messages.push(json!({"body": String::from_utf8_lossy(body), "error": message}));
            }
        }
    }
    insta::assert_json_snapshot!(messages);
}

#[tokio::test]
async fn wrong_types_are_400() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (task, _) = app.claim_assigned("local", "local-1cpu", "r").await;
    let id = task.id;
    let cases = [
        (
            format!("/tasks/{id}/heartbeat"),
            json!({"runner_id": 1, "status": "boot"}),
        ),
        (
            format!("/tasks/{id}/heartbeat"),
            json!({"runner_id": "r", "status": "done"}),
        ),
        (
            format!("/tasks/{id}/heartbeat"),
            json!({"runner_id": "r", "status": "running", "progress_pct": "45"}),
        ),
        (
            format!("/tasks/{id}/heartbeat"),
            json!({"runner_id": "r", "status": "running", "progress_pct": 1000}),
        ),
        (
            format!("/tasks/{id}/complete"),
            json!({"runner_id": "r", "s3_result_key": ["k"]}),
        ),
        (
            format!("/tasks/{id}/fail"),
            json!({"runner_id": "r", "error_type": "t", "error_message": "m", "debug_mode": "yes"}),
        ),
        (
            "/tasks/claim".to_owned(),
            json!({"provider": ["local"], "instance_type": "local-1cpu", "runner_id": "r"}),
        ),
        (
            "/run/start".to_owned(),
            json!({"ruby_version": 3.4, "runs_per_instance_type": 1, "local": ["x"]}),
        ),
        // Postgres text cannot hold NUL: found by schemathesis as a 500.
        (
            format!("/tasks/{id}/release"),
            json!({"runner_id": "r", "error_type": "image_pull", "error_message": "a\u{0}b"}),
        ),
        (
            format!("/tasks/{id}/heartbeat"),
            json!({"runner_id": "r", "status": "running", "extra": {"k\u{0}": 1}}),
        ),
    ];
    let mut messages = Vec::new();
    for (path, body) in cases {
        let response = app.post(&path, &body).await;
        messages.push(
            json!({"path": path.replace(&id.to_string(), "{id}"), "body": body,
                             "error": response.expect_error(StatusCode::BAD_REQUEST)}),
        );
    }
    insta::assert_json_snapshot!(messages);
}

#[tokio::test]
async fn oversized_bodies_are_413_after_authentication() {
    let app = TestApp::new().await;
    // Valid JSON, padded past the limit.
    let padding = "x".repeat(orchestrator::extract::MAX_BODY_BYTES);
    let body = json!({"ruby_version": "3.4.7", "runs_per_instance_type": 1, "local": ["x"],
                      "padding": padding})
    .to_string();
    for path in [
        "/run/start",
        "/tasks/claim",
        "/tasks/1/heartbeat",
        "/tasks/abc/fail",
    ] {
        let response = post_raw(&app, path, body.clone()).await;
        assert_eq!(
            response.expect_error(StatusCode::PAYLOAD_TOO_LARGE),
            "request body is larger than the limit of 65536 bytes"
        );
        let unauthenticated = app
            .send(Method::POST, path, Some("Bearer wrong"), body.clone())
            .await;
        unauthenticated.expect_error(StatusCode::UNAUTHORIZED);
    }
    // A body without Content-Length (streamed) is cut off at the limit too.
    let stream = futures::stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let response = post_raw(&app, "/tasks/claim", axum::body::Body::from_stream(stream)).await;
    response.expect_error(StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_and_non_numeric_task_ids_are_404() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let mut messages = Vec::new();
    for id in [
        "999999",
        "0",
        "-1",
        "abc",
        "1.5",
        "+1",
        "99999999999999999999",
        "%FF",
        "%20",
    ] {
        for action in TASK_ACTIONS {
            let body = match action {
                "heartbeat" => json!({"runner_id": "r", "status": "boot"}),
                "complete" => json!({"runner_id": "r", "s3_result_key": "k"}),
                _ => json!({"runner_id": "r", "error_type": "t", "error_message": "m"}),
            };
            let response = app.post(&format!("/tasks/{id}/{action}"), &body).await;
            let message = response.expect_error(StatusCode::NOT_FOUND);
            if action == "heartbeat" {
                messages.push(json!({"id": id, "error": message}));
            }
        }
    }
    insta::assert_json_snapshot!(messages);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::new().await;
    let cases = [
        (Method::GET, "/nope", StatusCode::NOT_FOUND),
        (Method::POST, "/tasks/1", StatusCode::NOT_FOUND),
        (Method::GET, "/tasks/claim", StatusCode::METHOD_NOT_ALLOWED),
        (Method::POST, "/run", StatusCode::METHOD_NOT_ALLOWED),
        (Method::DELETE, "/health", StatusCode::METHOD_NOT_ALLOWED),
    ];
    let mut messages = Vec::new();
    for (method, path, status) in cases {
        let response = app
            .send(method.clone(), path, Some(&key_for(path)), "")
            .await;
        messages.push(
            json!({"request": format!("{method} {path}"), "error": response.expect_error(status)}),
        );
    }
    insta::assert_json_snapshot!(messages);
}

#[tokio::test]
async fn a_bad_body_is_400_even_without_a_run() {
    let app = TestApp::new().await;
    app.post("/tasks/claim", &json!({"provider": "local"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST);
    app.post(
        "/tasks/claim",
        &json!({"provider": "local", "instance_type": "x", "runner_id": "r"}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND);
}
