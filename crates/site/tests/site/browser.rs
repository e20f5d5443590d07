//! The built site in headless Chromium over WebDriver: the index renders with no console errors
//! and its script sorts a table; the run page shows the verdict at the top, the
//! price-performance ranking and the labelled scatter with its Pareto front; the benchmark page
//! has its strip plots. Screenshots of the index, run, benchmark and type pages are kept as
//! test artifacts (`$CARGO_TARGET_DIR/test-artifacts/site-{index,run,bench,type}.png`, else
//! `target/test-artifacts/`).
//!
//! Needs Debian's `chromium` and `chromium-driver`; when either is missing the test fails with
//! the command that installs them. chromedriver listens on a free port of 127.0.0.1 and the site
//! is served by a tiny static server on 127.0.0.1; both are stopped when the test ends, passed
//! or failed (the guards' `Drop`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use test_support::browser::Browser;

/// A static file server on 127.0.0.1, stopped when dropped.
struct StaticServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StaticServer {
    fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                // One thread per connection: Chromium opens speculative connections that may
                // never send a request, and those must not hold up the real ones.
                if let Ok(stream) = stream {
                    let root = root.clone();
                    std::thread::spawn(move || serve(&root, stream));
                }
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(root: &Path, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut request_line = String::new();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = path
        .split('?')
        .next()
        .unwrap_or("/")
        .trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let file = root.join(path);
    let (status, body, kind) = match (path.contains(".."), std::fs::read(&file)) {
        (false, Ok(body)) => {
            let kind = match file.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("css") => "text/css",
                Some("js") => "text/javascript",
                Some("json") => "application/json",
                Some("csv") => "text/csv",
                _ => "application/octet-stream",
            };
            ("200 OK", body, kind)
        }
        _ => ("404 Not Found", b"not found".to_vec(), "text/plain"),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
}

#[tokio::test]
async fn pages_render_in_chromium_with_the_verdict_and_price_performance() {
    let dir = tempfile::tempdir().unwrap();
    crate::build::build_into(&crate::build::fixture_results(), dir.path());
    let server = StaticServer::start(dir.path().join("public"));
    let browser = Browser::start().await;
    let result = check_pages(&browser, server.port).await;
    browser.close().await;
    drop(server);
    result.unwrap();
}

async fn open(browser: &Browser, port: u16, path: &str) -> Result<(), String> {
    browser
        .client
        .goto(&format!("http://127.0.0.1:{port}/{path}"))
        .await
        .map_err(|e| format!("{path}: {e}"))
}

async fn check_pages(browser: &Browser, port: u16) -> Result<(), String> {
    check_index(browser, port).await?;
    check_run(browser, port).await?;
    for (path, shot) in [
        ("runs/1762251123/bench/fib.html", "site-bench.png"),
        ("runs/1762251123/type/c8g.medium.html", "site-type.png"),
    ] {
        open(browser, port, path).await?;
        browser.screenshot(shot).await;
    }
    let strips = browser
        .client
        .execute(
            "return document.querySelectorAll('svg.chart path.strip').length;",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    let errors = browser.console_errors().await;
    if !errors.is_empty() {
        return Err(format!("console errors: {errors:#?}"));
    }
    // The type page has no strip plot; the bench page had one per type and mode.
    if strips.as_u64() != Some(0) {
        return Err(format!("unexpected strips on the type page: {strips}"));
    }
    open(browser, port, "runs/1762251123/bench/fib.html").await?;
    let strips = browser
        .client
        .execute(
            "return document.querySelectorAll('svg.chart path.strip').length;",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    // 5 types in interp, 4 in yjit... every type with fib has a strip: 5 + 5 (the crashed
    // c8g.medium task leaves its other two runs).
    if strips.as_u64() != Some(10) {
        return Err(format!(
            "one strip per type and mode on the fib page: {strips}"
        ));
    }
    Ok(())
}

async fn check_index(browser: &Browser, port: u16) -> Result<(), String> {
    let client = &browser.client;
    open(browser, port, "index.html").await?;
    let facts = client
        .execute(
            "const th = document.querySelector('table.sortable thead th');
             th.click();
             return {
               title: document.title,
               charts: document.querySelectorAll('svg.chart').length,
               rows: document.querySelectorAll('table.matrix tbody tr').length,
               styled: getComputedStyle(document.body).marginTop,
               sorted: th.getAttribute('data-order')
             };",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    browser.screenshot("site-index.png").await;
    let errors = browser.console_errors().await;
    if !errors.is_empty() {
        return Err(format!("console errors: {errors:#?}"));
    }
    let expect = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what}: {facts}"))
        }
    };
    expect(
        facts["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Run 1762251123")),
        "the latest run's index",
    )?;
    expect(
        facts["charts"].as_u64() == Some(5),
        "per mode a ranking chart and a scatter, and the YJIT gains",
    )?;
    expect(facts["rows"].as_u64() == Some(8), "4 benchmarks × 2 modes")?;
    expect(facts["styled"] == "0px", "style.css applied")?;
    expect(facts["sorted"] == "asc", "site.js sorts tables")
}

/// The run page as a buyer sees it: the verdict first, the price-performance ranking beside
/// the speed ranking, and a labelled scatter with its Pareto front.
async fn check_run(browser: &Browser, port: u16) -> Result<(), String> {
    open(browser, port, "runs/1762251123/index.html").await?;
    let facts = browser
        .client
        .execute(
            "const verdict = document.querySelector('#verdict');
             const scatter = document.querySelector('svg#scatter-yjit');
             const value = document.querySelector('#mode-yjit table.value-ranking');
             const box = verdict.getBoundingClientRect();
             return {
               verdict: verdict.innerText,
               verdict_top: box.top,
               verdict_visible: box.height > 0,
               value_rows: value.querySelectorAll('tbody tr').length,
               best_value: value.querySelector('tbody tr td:nth-child(2)').innerText,
               labels: [...scatter.querySelectorAll('text.point-label')].map(t => t.textContent),
               front: scatter.querySelectorAll('circle.front-point').length,
               front_line: scatter.querySelectorAll('path.front').length,
               scatter_width: scatter.getBoundingClientRect().width
             };",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    browser.screenshot("site-run.png").await;
    let expect = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what}: {facts:#}"))
        }
    };
    let verdict = facts["verdict"].as_str().unwrap_or_default();
    for topic in [
        "Fastest",
        "Best value",
        "Best of each provider",
        "Tied",
        "YJIT",
        "Careful",
    ] {
        expect(
            verdict.contains(topic),
            &format!("the verdict says {topic}"),
        )?;
    }
    expect(
        verdict.contains("c8g.medium")
            && verdict.contains("shared cores (SMT) on Standard_D2als_v6, c7i.large"),
        "the verdict names the fastest type and the shared cores",
    )?;
    expect(
        facts["verdict_visible"] == true
            && facts["verdict_top"].as_f64().is_some_and(|t| t < 400.0),
        "the verdict is at the top of the page",
    )?;
    expect(
        facts["value_rows"].as_u64() == Some(5),
        "every priced type is ranked by value",
    )?;
    expect(
        facts["best_value"] == "c8g.medium",
        "the best value comes first",
    )?;
    let labels: Vec<&str> = facts["labels"]
        .as_array()
        .map(|l| l.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    expect(labels.len() == 5, "every point of the scatter is labelled")?;
    expect(
        facts["front"].as_u64().is_some_and(|n| n >= 1) && facts["front_line"].as_u64() == Some(1),
        "the scatter draws its Pareto front",
    )?;
    expect(
        facts["scatter_width"].as_f64().is_some_and(|w| w > 300.0),
        "the scatter is rendered",
    )
}
