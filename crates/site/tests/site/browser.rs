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
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fantoccini::ClientBuilder;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

const INSTALL: &str = "apt-get update && apt-get install -y chromium chromium-driver (or run `cargo xtask test` as root, which installs missing host packages)";

fn find_in_path(command: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(command))
        .find(|p| p.is_file())
}

/// Kills and reaps chromedriver when dropped.
struct DriverGuard(Child);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// chromedriver's log endpoint (outside the W3C standard), for the browser console.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

fn artifact_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("test-artifacts/site-index.png")
}

#[tokio::test]
async fn index_renders_in_chromium_without_console_errors() {
    let chromium = find_in_path("chromium")
        .unwrap_or_else(|| panic!("chromium is missing; install it: {INSTALL}"));
    let chromedriver = find_in_path("chromedriver")
        .unwrap_or_else(|| panic!("chromedriver is missing; install it: {INSTALL}"));

    let dir = tempfile::tempdir().unwrap();
    crate::build::build_into(&crate::build::fixture_results(), dir.path());
    let server = StaticServer::start(dir.path().join("public"));

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = DriverGuard(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display())),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on 127.0.0.1:{port} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,2400"]
        }),
    );
    caps.insert("goog:loggingPrefs".to_owned(), json!({"browser": "ALL"}));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with headless Chromium");

    let result = check_index(&client, server.port).await;
    let _ = client.close().await;
    drop(server);
    result.unwrap();
}

async fn check_index(client: &fantoccini::Client, port: u16) -> Result<(), String> {
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
    let png = client.screenshot().await.map_err(|e| e.to_string())?;
    let artifact = artifact_path();
    std::fs::create_dir_all(artifact.parent().unwrap()).unwrap();
    std::fs::write(&artifact, png).unwrap();
    eprintln!("screenshot: {}", artifact.display());

    let log = client
        .issue_cmd(BrowserLog)
        .await
        .map_err(|e| format!("reading the browser log: {e}"))?;
    let errors: Vec<&Value> = log
        .as_array()
        .map(|entries| entries.iter().filter(|e| e["level"] == "SEVERE").collect())
        .unwrap_or_default();
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
