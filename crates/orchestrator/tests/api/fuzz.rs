//! schemathesis (PyPI) against the served app's own `/openapi.json`, with both keys: no 5xx,
//! every status and body as documented (so every 4xx with the JSON error envelope), bad input
//! refused and good input taken. Bounded by a fixed seed and a fixed number of examples per
//! operation; `schemathesis.toml` beside this file says which key each endpoint gets and the
//! two checks it turns off, and why.

use std::path::Path;

use test_support::TestOrchestrator;
use test_support::python::venv_tool;

use crate::harness::{API_KEY, RUNNER_KEY, TestApp};

/// Examples per operation and phase.
const EXAMPLES: &str = "20";

/// The seed of every run.
const SEED: &str = "1";

#[tokio::test]
async fn schemathesis_finds_nothing_the_document_does_not_say() {
    let app = TestApp::serve(TestOrchestrator::builder()).await;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/schemathesis.toml");
    let scratch = tempfile::tempdir().unwrap();
    let report = test_support::browser::artifact_path("schemathesis-junit.xml");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    let output = tokio::process::Command::new(venv_tool("st"))
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", app.url())])
        .args(["--max-examples", EXAMPLES, "--seed", SEED])
        .args(["--workers", "1", "--no-color", "--report", "junit"])
        .arg("--report-junit-path")
        .arg(&report)
        .env("RCB_OPERATOR_KEY", API_KEY)
        .env("RCB_RUNNER_KEY", RUNNER_KEY)
        .current_dir(scratch.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found failures (report: {}):\n{stdout}\n{stderr}",
        report.display()
    );
    // It tested every endpoint of both kinds of key.
    let junit = std::fs::read_to_string(&report).unwrap();
    for (method, path, _) in orchestrator::router::keyed_endpoints() {
        assert!(
            junit.contains(&format!("testcase name=\"{method} {path}\"")),
            "{method} {path} untested: {junit}"
        );
    }
    // Runs started and stopped by the fuzzer build their archives: let them end.
    app.wait_for_jobs().await;
}
