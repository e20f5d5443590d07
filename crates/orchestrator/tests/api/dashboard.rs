//! The dashboard in-process: login, sessions, the Origin and CSRF checks of its forms, pages
//! as HTML snapshots (timestamps, tokens and signatures redacted), the event stream, and the
//! turbo.js it serves (which the repository must not hold a copy of).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use futures::StreamExt;
use orchestrator::create_app;
use orchestrator::dashboard::assets::TURBO_JS;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::{TestApp, TestResponse, local_config};

/// The operator password of the test dashboards.
pub const PASSWORD: &str = "operator-password-0123";

const HOST: &str = "dashboard.test";
const ORIGIN: &str = "http://dashboard.test";

/// A test app whose dashboard accepts [`PASSWORD`].
pub async fn dashboard_app() -> TestApp {
    let mut app = TestApp::new().await;
    app.state = app
        .state
        .clone()
        .with_operator_password(Some(PASSWORD.parse().unwrap()));
    app.router = create_app(app.state.clone());
    app
}

/// A logged-in browser: its cookie and the CSRF token of its forms.
struct Operator {
    cookie: String,
    csrf_token: String,
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TestResponse {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if !body.is_empty() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    TestResponse {
        status,
        headers,
        body,
    }
}

fn text(response: &TestResponse) -> String {
    String::from_utf8(response.body.to_vec()).unwrap()
}

fn location(response: &TestResponse) -> &str {
    response.headers[header::LOCATION].to_str().unwrap()
}

async fn log_in(app: &TestApp) -> Operator {
    let response = send(
        app,
        Method::POST,
        "/login",
        &[("origin", ORIGIN)],
        &format!("password={PASSWORD}"),
    )
    .await;
    assert_eq!(
        response.status,
        StatusCode::SEE_OTHER,
        "{}",
        text(&response)
    );
    assert_eq!(location(&response), "/");
    let set_cookie = response.headers[header::SET_COOKIE].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let page = send(app, Method::GET, "/", &[("cookie", &cookie)], "").await;
    assert_eq!(page.status, StatusCode::OK);
    let page = text(&page);
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    let csrf_token = page[start..start + 64].to_owned();
    Operator { cookie, csrf_token }
}

/// The page with what changes from run to run replaced: `<time>` elements, the CSRF token and
/// presigned URLs.
fn redact(html: &str, app: &TestApp, operator: &Operator) -> String {
    let mut out = String::new();
    let mut rest = html.replace(&operator.csrf_token, "[csrf-token]");
    while let Some(start) = rest.find("<time ") {
        let end = rest[start..].find("</time>").unwrap() + start + "</time>".len();
        out.push_str(&rest[..start]);
        out.push_str("<time>[time]</time>");
        rest = rest[end..].to_owned();
    }
    out.push_str(&rest);
    let prefix = format!("{}/{}/", app.bucket.server.endpoint, app.bucket.name);
    while let Some(start) = out.find(&prefix) {
        let end = out[start..].find('"').unwrap() + start;
        let url = &out[start..end];
        let key = url[prefix.len()..].split('?').next().unwrap().to_owned();
        assert!(url.contains("X-Amz-Signature="), "unsigned URL: {url}");
        out.replace_range(
            start..end,
            &format!("[endpoint]/[bucket]/{key}?[signature]"),
        );
    }
    out
}

async fn heartbeat(app: &TestApp, task: i64, runner: &str, benchmark: &str, pct: u8) {
    let response = app
        .post(
            &format!("/tasks/{task}/heartbeat"),
            &json!({"runner_id": runner, "status": "running", "current_benchmark": benchmark, "progress_pct": pct}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
}

async fn run_status(app: &TestApp) -> Value {
    app.get("/run").await.json()
}

#[tokio::test]
async fn without_a_session_every_page_leads_to_the_login_page() {
    let app = dashboard_app().await;
    for path in ["/", "/dashboard/stream", "/dashboard/runs/1"] {
        let response = send(&app, Method::GET, path, &[], "").await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), "/login", "{path}");
    }
    let forged = send(
        &app,
        Method::GET,
        "/",
        &[("cookie", "rcb_session=0123456789abcdef")],
        "",
    )
    .await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    let response = send(
        &app,
        Method::POST,
        "/dashboard/stop",
        &[("origin", ORIGIN)],
        "",
    )
    .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);

    let login = send(&app, Method::GET, "/login", &[], "").await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.headers[header::CACHE_CONTROL], "no-store");
    assert!(login.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    insta::assert_snapshot!("login_page", text(&login));
}

#[tokio::test]
async fn get_run_stop_is_405() {
    let app = dashboard_app().await;
    let response = app.get("/run/stop").await;
    response.expect_error(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_login_sets_a_strict_http_only_cookie_and_a_wrong_password_is_refused() {
    let app = dashboard_app().await;
    let wrong = send(
        &app,
        Method::POST,
        "/login",
        &[("origin", ORIGIN)],
        "password=guess",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!wrong.headers.contains_key(header::SET_COOKIE));
    assert!(text(&wrong).contains("wrong password"), "{}", text(&wrong));
    let empty = send(&app, Method::POST, "/login", &[("origin", ORIGIN)], "").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Another site's login form is refused even with the right password.
    let cross = send(
        &app,
        Method::POST,
        "/login",
        &[("origin", "http://evil.test")],
        &format!("password={PASSWORD}"),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(!cross.headers.contains_key(header::SET_COOKIE));

    let plain = send(
        &app,
        Method::POST,
        "/login",
        &[("origin", ORIGIN)],
        &format!("password={PASSWORD}"),
    )
    .await;
    let cookie = plain.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("rcb_session="), "{cookie}");
    assert!(
        cookie.ends_with("; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict"),
        "{cookie}"
    );
    let proxied = send(
        &app,
        Method::POST,
        "/login",
        &[
            ("origin", "https://dashboard.test"),
            ("x-forwarded-proto", "https"),
        ],
        &format!("password={PASSWORD}"),
    )
    .await;
    let cookie = proxied.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");

    // The database holds a hash of the token, never the token.
    let token = plain.headers[header::SET_COOKIE].to_str().unwrap()[12..76].to_owned();
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_sha256 FROM operator_sessions")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(!stored.contains(&token));

    // A logged-in operator who opens /login goes to the dashboard.
    let operator = log_in(&app).await;
    let again = send(
        &app,
        Method::GET,
        "/login",
        &[("cookie", &operator.cookie)],
        "",
    )
    .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&again), "/");
}

#[tokio::test]
async fn without_an_operator_password_the_login_is_refused_and_says_how_to_set_it() {
    let app = TestApp::new().await;
    let page = send(&app, Method::GET, "/login", &[], "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(text(&page).contains("OPERATOR_PASSWORD"));
    assert!(!text(&page).contains("<form method=\"post\" action=\"/login\">"));
    let response = send(
        &app,
        Method::POST,
        "/login",
        &[("origin", ORIGIN)],
        "password=anything",
    )
    .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert!(text(&response).contains("OPERATOR_PASSWORD"));
    assert!(!response.headers.contains_key(header::SET_COOKIE));
}

#[tokio::test]
async fn stop_and_logout_forms_need_the_token_and_this_origin() {
    let app = dashboard_app().await;
    app.start_run(&local_config()).await;
    let operator = log_in(&app).await;
    let cookie = ("cookie", operator.cookie.as_str());
    let token = format!("csrf_token={}", operator.csrf_token);
    let refused: [(&[(&str, &str)], &str); 5] = [
        (&[cookie, ("origin", "http://evil.test")], ""),
        (&[cookie, ("origin", "http://evil.test")], &token),
        (&[cookie, ("origin", ORIGIN)], ""),
        (&[cookie, ("origin", ORIGIN)], "csrf_token=0000"),
        (&[cookie], &token),
    ];
    for (headers, body) in refused {
        for path in ["/dashboard/stop", "/logout"] {
            let response = send(&app, Method::POST, path, headers, body).await;
            assert_eq!(
                response.status,
                StatusCode::FORBIDDEN,
                "{path} {headers:?} {body}"
            );
            assert!(text(&response).contains("id=\"error-message\""));
        }
    }
    let run = run_status(&app).await;
    assert_eq!(run["status"], "running");
    assert_eq!(run["stopped_at"], Value::Null);
    assert_eq!(run["tasks"]["pending"], 4);

    // The form of the dashboard's own page: same token, Referer of this host when a browser
    // leaves Origin out.
    let response = send(
        &app,
        Method::POST,
        "/dashboard/stop",
        &[cookie, ("referer", "http://dashboard.test/")],
        &token,
    )
    .await;
    assert_eq!(
        response.status,
        StatusCode::SEE_OTHER,
        "{}",
        text(&response)
    );
    assert_eq!(location(&response), "/");
    let run = run_status(&app).await;
    assert_ne!(run["stopped_at"], Value::Null);
    assert_eq!(run["tasks"]["total"], 0, "pending tasks are deleted: {run}");

    // A second stop is refused as POST /run/stop refuses it.
    let again = send(
        &app,
        Method::POST,
        "/dashboard/stop",
        &[cookie, ("origin", ORIGIN)],
        &token,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(
        text(&again).contains("no run is running"),
        "{}",
        text(&again)
    );
    app.wait_for_jobs().await;

    let out = send(
        &app,
        Method::POST,
        "/logout",
        &[cookie, ("origin", ORIGIN)],
        &token,
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/login");
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = send(&app, Method::GET, "/", &[cookie], "").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session ended");
}

#[tokio::test]
async fn the_dashboard_shows_runs_tasks_and_past_runs() {
    let app = dashboard_app().await;
    let operator = log_in(&app).await;
    let cookie = ("cookie", operator.cookie.as_str());
    let idle = send(&app, Method::GET, "/", &[cookie], "").await;
    insta::assert_snapshot!("dashboard_idle", redact(&text(&idle), &app, &operator));

    // A past run, ended early through the API and complete with its archive.
    let mut first = local_config();
    first["run_id"] = json!(1_733_900_000);
    app.start_run(&first).await;
    app.claim_assigned("local", "local-1cpu", "runner-a").await;
    assert_eq!(
        app.post("/run/stop", &Value::Null).await.status,
        StatusCode::OK
    );
    app.wait_for_jobs().await;

    // The latest run: one task running, one failed.
    app.start_run(&local_config()).await;
    let (running, _) = app.claim_assigned("local", "local-1cpu", "runner-b").await;
    heartbeat(&app, running.id, "runner-b", "liquid-render", 40).await;
    let (failing, _) = app.claim_assigned("local", "local-1cpu", "runner-c").await;
    let response = app
        .post(
            &format!("/tasks/{}/fail", failing.id),
            &json!({"runner_id": "runner-c", "error_type": "benchmark_crash", "error_message": "ruby exited with status 1"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);

    let page = send(&app, Method::GET, "/", &[cookie], "").await;
    assert_eq!(page.status, StatusCode::OK);
    insta::assert_snapshot!("dashboard_running", redact(&text(&page), &app, &operator));

    let past = send(
        &app,
        Method::GET,
        "/dashboard/runs/1733900000",
        &[cookie],
        "",
    )
    .await;
    assert_eq!(past.status, StatusCode::OK);
    let past = redact(&text(&past), &app, &operator);
    assert!(
        past.contains("href=\"[endpoint]/[bucket]/"),
        "a download link: {past}"
    );
    insta::assert_snapshot!("past_run", past);
    let missing = send(&app, Method::GET, "/dashboard/runs/42", &[cookie], "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // The /fail offered the run to the archive builder.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn the_stream_sends_a_turbo_stream_after_a_heartbeat() {
    let app = dashboard_app().await;
    let started = app.start_run(&local_config()).await;
    let operator = log_in(&app).await;
    let request = Request::builder()
        .uri("/dashboard/stream")
        .header(header::HOST, HOST)
        .header(header::COOKIE, &operator.cookie)
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body().into_data_stream();
    let mut next_event = async || -> String {
        let mut event = String::new();
        while !event.ends_with("\n\n") || event.starts_with(':') {
            if event.starts_with(':') && event.ends_with("\n\n") {
                event.clear(); // a keep-alive comment
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream goes on")
                .unwrap();
            event.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        event
    };

    let first = next_event().await;
    assert!(
        first.starts_with("data: <turbo-stream action=\"replace\" target=\"run-summary\">"),
        "{first}"
    );
    assert!(
        !first.contains("event:"),
        "Turbo ignores named events: {first}"
    );
    for target in ["run-summary", "task-list", "past-runs"] {
        assert!(first.contains(&format!("target=\"{target}\"")), "{first}");
    }
    assert!(first.contains(&format!("Run {}", started.run_id)));

    let (task, _) = app.claim_assigned("local", "local-2cpu", "runner-s").await;
    // The claim's own change arrives first; the heartbeat's follows.
    heartbeat(&app, task.id, "runner-s", "railsbench", 55).await;
    let mut seen = String::new();
    for _ in 0..3 {
        seen = next_event().await;
        if seen.contains("railsbench") {
            break;
        }
    }
    assert!(seen.contains("railsbench"), "{seen}");
    assert!(seen.contains("runner-s"));
    // The stream's forms carry this session's token.
    assert!(seen.contains(&operator.csrf_token));
}

#[tokio::test]
async fn turbo_js_is_served_with_a_long_cache() {
    let app = dashboard_app().await;
    let response = send(&app, Method::GET, "/assets/turbo-8.0.23.js", &[], "").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        response.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(response.body.as_ref(), TURBO_JS);
    let script = std::str::from_utf8(TURBO_JS).unwrap();
    assert!(script.contains("turbo-stream-source"));
    assert!(script.contains("8.0.23") || TURBO_JS.len() > 100_000);
    let css = send(&app, Method::GET, "/assets/dashboard.css", &[], "").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
}

/// docs/decisions.md: the repository holds no copy of turbo.js. Every file git tracks is searched
/// for pieces of the script the build embeds.
#[test]
fn the_repository_holds_no_copy_of_turbo_js() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["ls-files", "-z"])
        .output()
        .expect("git runs");
    assert!(output.status.success());
    let files = String::from_utf8(output.stdout).unwrap();
    let pieces: Vec<&[u8]> = [0.25, 0.5, 0.75]
        .iter()
        .map(|at| {
            let start = (TURBO_JS.len() as f64 * at) as usize;
            &TURBO_JS[start..start + 200]
        })
        .collect();
    let mut checked = 0;
    for file in files.split('\0').filter(|f| !f.is_empty()) {
        let name = file.rsplit('/').next().unwrap();
        assert!(
            !(name.starts_with("turbo") && name.ends_with(".js")),
            "{file} looks like a copy of turbo.js"
        );
        let Ok(content) = std::fs::read(root.join(file)) else {
            continue;
        };
        for piece in &pieces {
            assert!(
                !content.windows(piece.len()).any(|window| window == *piece),
                "{file} holds part of turbo.js: the build embeds it from the npm tarball (TURBO_TARBALL)"
            );
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} files checked");
}

/// The triggers of `0002_dashboard.sql`: one notification per transaction and run however
/// many rows change, and none for a statement that changed nothing.
#[tokio::test]
async fn changes_notify_the_dashboard_channel_once_per_run() {
    let app = dashboard_app().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(app.pool())
        .await
        .unwrap();
    listener
        .listen(orchestrator::dashboard::stream::CHANNEL)
        .await
        .unwrap();
    let mut next = async || {
        tokio::time::timeout(Duration::from_millis(500), listener.recv())
            .await
            .ok()
            .map(|n| n.unwrap().payload().to_owned())
    };

    let started = app.start_run(&local_config()).await;
    let run = started.run_id.to_string();
    assert_eq!(next().await.as_deref(), Some(run.as_str()), "the start");
    assert_eq!(
        next().await,
        None,
        "one notification for the run and its 4 tasks"
    );

    let (task, _) = app.claim_assigned("local", "local-1cpu", "runner-n").await;
    assert_eq!(next().await.as_deref(), Some(run.as_str()), "the claim");
    heartbeat(&app, task.id, "runner-n", "fib", 10).await;
    assert_eq!(next().await.as_deref(), Some(run.as_str()), "the heartbeat");
    assert_eq!(next().await, None);

    // A heartbeat of another runner changes no row and notifies nothing.
    let response = app
        .post(
            &format!("/tasks/{}/heartbeat", task.id),
            &json!({"runner_id": "someone-else", "status": "running"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert_eq!(next().await, None);
}
