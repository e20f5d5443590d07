//! Bearer authentication on every API endpoint, with the operator's and the runners' keys;
//! none on `/health`.

use axum::http::{Method, StatusCode, header};
use orchestrator::auth::KeyKind;
use serde_json::json;

use crate::harness::{API_KEY, RUNNER_KEY, TestApp, key_for, local_config};

/// Every API endpoint with a body that would otherwise be accepted.
fn endpoints() -> Vec<(Method, &'static str, String)> {
    let claim = json!({"provider": "local", "instance_type": "local-1cpu", "runner_id": "r"});
    vec![
        (Method::POST, "/run/start", local_config().to_string()),
        (Method::GET, "/run", String::new()),
        (Method::POST, "/run/stop", String::new()),
        (Method::POST, "/tasks/claim", claim.to_string()),
        (
            Method::POST,
            "/tasks/1/heartbeat",
            json!({"runner_id": "r", "status": "boot"}).to_string(),
        ),
        (
            Method::POST,
            "/tasks/1/complete",
            json!({"runner_id": "r", "s3_result_key": "k"}).to_string(),
        ),
        (
            Method::POST,
            "/tasks/1/fail",
            json!({"runner_id": "r", "error_type": "t", "error_message": "m"}).to_string(),
        ),
        (
            Method::POST,
            "/tasks/1/upload-urls",
            json!({"runner_id": "r"}).to_string(),
        ),
        (
            Method::POST,
            "/tasks/1/release",
            json!({"runner_id": "r", "message": "m"}).to_string(),
        ),
    ]
}

/// The key of each kind.
fn key_of(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Operator => API_KEY,
        KeyKind::Runner => RUNNER_KEY,
    }
}

#[tokio::test]
async fn every_api_endpoint_refuses_requests_without_the_key() {
    let app = TestApp::new().await;
    let mut messages = Vec::new();
    for (method, path, body) in endpoints() {
        let key = key_for(path);
        let key = key.strip_prefix("Bearer ").unwrap();
        let prefix = format!("Bearer {}", &key[..key.len() - 1]);
        let superset = format!("Bearer {key}x");
        let basic = format!("Basic {key}");
        let two_spaces = format!("Bearer  {key}");
        let cases: [(&str, Option<&str>); 9] = [
            ("missing", None),
            ("empty", Some("")),
            ("scheme only", Some("Bearer")),
            ("wrong key", Some("Bearer not-the-key")),
            ("prefix of the key", Some(&prefix)),
            ("superset of the key", Some(&superset)),
            ("other scheme", Some(&basic)),
            ("extra space", Some(&two_spaces)),
            ("no scheme", Some(key)),
        ];
        for (case, authorization) in cases {
            let response = app
                .send(method.clone(), path, authorization, body.clone())
                .await;
            let message = response.expect_error(StatusCode::UNAUTHORIZED);
            assert_eq!(
                response.headers.get(header::WWW_AUTHENTICATE).unwrap(),
                "Bearer"
            );
            if path == "/run/start" || path == "/tasks/claim" {
                messages.push(json!({"path": path, "case": case, "error": message}));
            }
        }
    }
    insta::assert_json_snapshot!(messages);
    // Nothing was created by any of them.
    app.get("/run").await.expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_api_endpoint_takes_only_its_own_kind_of_key() {
    let app = TestApp::new().await;
    let keyed = orchestrator::router::keyed_endpoints();
    let bodies = endpoints();
    assert_eq!(keyed.len(), bodies.len(), "an endpoint without a case here");
    let mut messages = Vec::new();
    for (method, path, kind) in keyed {
        let body = bodies
            .iter()
            .find(|(m, p, _)| *m == method && p.replace('1', "{id}") == path)
            .map(|(_, _, body)| body.clone())
            .unwrap_or_else(|| panic!("no case for {method} {path}"));
        let uri = path.replace("{id}", "1");
        assert_eq!(key_for(&uri), format!("Bearer {}", key_of(kind)), "{path}");
        let other = match kind {
            KeyKind::Operator => KeyKind::Runner,
            KeyKind::Runner => KeyKind::Operator,
        };
        let response = app
            .send(
                method.clone(),
                &uri,
                Some(&format!("Bearer {}", key_of(other))),
                body,
            )
            .await;
        let message = response.expect_error(StatusCode::FORBIDDEN);
        assert!(response.headers.get(header::WWW_AUTHENTICATE).is_none());
        messages.push(json!({"endpoint": format!("{method} {path}"), "error": message}));
    }
    insta::assert_json_snapshot!(messages);
    // The runner key started nothing.
    app.get("/run").await.expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_scheme_is_case_insensitive_and_the_key_is_not() {
    let app = TestApp::new().await;
    let lower = app
        .send(
            Method::POST,
            "/run/start",
            Some(&format!("bearer {API_KEY}")),
            local_config().to_string(),
        )
        .await;
    assert_eq!(lower.status, StatusCode::CREATED);
    let upper = app
        .send(Method::GET, "/run", Some(&format!("BEARER {API_KEY}")), "")
        .await;
    assert_eq!(upper.status, StatusCode::OK);
    let key_case = app
        .send(
            Method::GET,
            "/run",
            Some(&format!("Bearer {}", API_KEY.to_uppercase())),
            "",
        )
        .await;
    key_case.expect_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn health_needs_no_key_and_checks_the_database() {
    let app = TestApp::new().await;
    let response = app.send(Method::GET, "/health", None, "").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({"status": "ok"}));

    app.pool().close().await;
    let response = app.send(Method::GET, "/health", None, "").await;
    assert_eq!(
        response.expect_error(StatusCode::SERVICE_UNAVAILABLE),
        "the database is not answering"
    );
}
