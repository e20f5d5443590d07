//! The dashboard in headless Chromium, served on a real port: log in, follow a run live over
//! the event stream (no reload), end it early through the confirmation and get its download
//! link. A screenshot of the live dashboard is kept as a test artifact
//! (`$CARGO_TARGET_DIR/test-artifacts/dashboard.png`).
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test fails with the
//! command that installs them.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::browser::Browser;
use test_support::browser::fantoccini::{Client, Locator};

use crate::dashboard::{PASSWORD, dashboard_app};
use crate::harness::{key_for, local_config};

/// How long the page may take to show a change.
const WAIT: Duration = Duration::from_secs(30);

async fn text_of(client: &Client, selector: &str) -> Option<String> {
    let script =
        "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;";
    match client.execute(script, vec![json!(selector)]).await {
        Ok(Value::String(text)) => Some(text),
        _ => None,
    }
}

/// Waits until the element's text is `expected`, and fails with what the page showed.
async fn wait_for_text(client: &Client, selector: &str, expected: &str) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = text_of(client, selector).await;
        if text.as_deref() == Some(expected) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{selector} shows {text:?}, not {expected:?}, after {WAIT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn api(base: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header(reqwest::header::AUTHORIZATION, key_for(path))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    let body = response.bytes().await.unwrap();
    // A heartbeat answers with an empty body.
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_operator_follows_a_run_live_and_ends_it_early() {
    let app = dashboard_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, app.router.clone()).into_future());
    let browser = Browser::start().await;

    let mut result = follow_and_stop(&browser, &base).await;
    if let Err(message) = &result {
        let page = browser
            .client
            .execute("return document.body.innerHTML;", vec![])
            .await;
        result = Err(format!("{message}\nthe page: {page:?}"));
    }
    let errors = browser.console_errors().await;
    browser.close().await;
    server.abort();
    result.unwrap();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    // Ending the run early started its archive build.
    app.wait_for_jobs().await;
}

async fn follow_and_stop(browser: &Browser, base: &str) -> Result<(), String> {
    let client = &browser.client;
    let fail = |what: &str| {
        let what = what.to_owned();
        move |e: test_support::browser::fantoccini::error::CmdError| format!("{what}: {e}")
    };

    // Not logged in: the login page.
    client
        .goto(&format!("{base}/"))
        .await
        .map_err(fail("open /"))?;
    let url = client.current_url().await.map_err(fail("url"))?;
    if url.path() != "/login" {
        return Err(format!(
            "without a session / should lead to /login, not {url}"
        ));
    }
    client
        .find(Locator::Id("password"))
        .await
        .map_err(fail("the password field"))?
        .send_keys(PASSWORD)
        .await
        .map_err(fail("typing the password"))?;
    client
        .find(Locator::Id("log-in"))
        .await
        .map_err(fail("the login button"))?
        .click()
        .await
        .map_err(fail("logging in"))?;
    wait_for_text(client, "#run-status", "idle").await?;
    // Turbo Drive keeps `window` across its visits; a full reload would lose this.
    client
        .execute("window.rcbNoReload = true;", vec![])
        .await
        .map_err(fail("marking the window"))?;

    // A run started through the API appears without a reload.
    let mut config = local_config();
    config["local"] = json!(["local-1cpu"]);
    api(base, "/run/start", config).await;
    wait_for_text(client, "#run-status", "running").await?;

    // A heartbeat through the API shows up in the task list.
    let claim = api(
        base,
        "/tasks/claim",
        json!({"provider": "local", "instance_type": "local-1cpu", "runner_id": "runner-browser"}),
    )
    .await;
    let task = claim["task"]["id"].as_i64().expect("an assigned task");
    api(
        base,
        &format!("/tasks/{task}/heartbeat"),
        json!({"runner_id": "runner-browser", "status": "running", "current_benchmark": "liquid-render", "progress_pct": 35}),
    )
    .await;
    wait_for_text(client, &format!("#task-{task} .benchmark"), "liquid-render").await?;
    wait_for_text(client, &format!("#task-{task} .phase"), "running").await?;
    browser.screenshot("dashboard.png").await;

    // End run early, through Turbo's confirmation.
    // The stream may replace the button between finding and clicking it: try again then.
    let mut attempts = 0;
    loop {
        let clicked = match client.find(Locator::Id("end-run-early")).await {
            Ok(button) => button.click().await,
            Err(e) => Err(e),
        };
        match clicked {
            Ok(()) => break,
            Err(e) if attempts >= 20 => return Err(format!("clicking End run early: {e}")),
            Err(_) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.get_alert_text().await {
            Ok(text) if text.starts_with("End run") => break,
            Ok(text) => return Err(format!("unexpected confirmation {text:?}")),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("no confirmation dialog: {e}")),
        }
    }
    client.accept_alert().await.map_err(fail("confirming"))?;
    wait_for_text(client, "#run-status", "complete (ended early)").await?;
    wait_for_text(client, "#download", "results.tar.gz").await?;
    wait_for_text(
        client,
        &format!("#task-{task} .error"),
        "run_stopped: the run was ended early (POST /run/stop) while the task was running",
    )
    .await?;
    let href = client
        .execute("return document.querySelector('#download').href;", vec![])
        .await
        .map_err(fail("the download link"))?;
    let href = href.as_str().unwrap_or_default().to_owned();
    let download = reqwest::get(&href).await.map_err(|e| e.to_string())?;
    if !download.status().is_success() {
        return Err(format!("the download link answered {}", download.status()));
    }
    let still = client
        .execute("return window.rcbNoReload === true;", vec![])
        .await
        .map_err(fail("reading the mark"))?;
    if still != json!(true) {
        return Err("the page was reloaded: updates must come over the stream".to_owned());
    }
    browser.screenshot("dashboard-stopped.png").await;
    Ok(())
}
