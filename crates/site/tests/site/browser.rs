//! The built index in headless Chromium over WebDriver: it renders with no console errors, its
//! script sorts a table, and a screenshot is kept as a test artifact
//! (`$CARGO_TARGET_DIR/test-artifacts/site-index.png`, else `target/test-artifacts/`).
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
async fn index_renders_in_chromium_without_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    crate::build::build_into(&crate::build::fixture_results(), dir.path());
    let server = StaticServer::start(dir.path().join("public"));
    let browser = Browser::start().await;
    let result = check_index(&browser, server.port).await;
    browser.close().await;
    drop(server);
    result.unwrap();
}

async fn check_index(browser: &Browser, port: u16) -> Result<(), String> {
    let client = &browser.client;
    client
        .goto(&format!("http://127.0.0.1:{port}/index.html"))
        .await
        .map_err(|e| e.to_string())?;
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
        facts["charts"].as_u64() == Some(2),
        "one ranking chart per mode",
    )?;
    expect(facts["rows"].as_u64() == Some(8), "4 benchmarks × 2 modes")?;
    expect(facts["styled"] == "0px", "style.css applied")?;
    expect(facts["sorted"] == "asc", "site.js sorts tables")
}
