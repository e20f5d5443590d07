//! `fish/master.fish` refusing bad configs.

use serde_json::json;

use crate::harness::*;

/// Runs the master script on a config file's text; returns its exit code and stderr.
async fn master_on(config_text: Option<&str>) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    if let Some(text) = config_text {
        std::fs::write(&path, text).unwrap();
    }
    let output = master(&["--config", path.to_str().unwrap()]).await;
    (output.status.code(), stderr_of(&output))
}

#[tokio::test]
async fn a_bad_config_is_one_clear_line_and_exit_1() {
    let cases = [
        (None, "config file", "does not exist"),
        (Some("{\"ruby_version\": "), "is not valid JSON", ""),
        (Some("[]"), "must hold a JSON object", ""),
        (
            Some(r#"{"ruby_version": "3.1.2", "runs_per_instance_type": 1, "gcp": ["n2"]}"#),
            "unknown field \"gcp\"",
            "providers are aws, azure, local",
        ),
        (
            Some(r#"{"ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": []}"#),
            "no instance types",
            "",
        ),
    ];
    for (text, expected, also) in cases {
        let (code, stderr) = master_on(text).await;
        assert_eq!(code, Some(1), "{text:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{text:?}: one line, got {stderr:?}"
        );
        assert!(
            stderr.starts_with("master.fish: ")
                && stderr.contains(expected)
                && stderr.contains(also),
            "{stderr}"
        );
    }
    let output = master(&[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("missing --config FILE"),
        "{}",
        stderr_of(&output)
    );
}

#[tokio::test]
async fn a_config_the_orchestrator_refuses_is_its_message_and_exit_1() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 0, "local": ["x"] }),
    );
    let output = master_attached(&stack, &config, &dir.path().join("results"))
        .await
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the orchestrator refused") && stderr.contains("runs_per_instance_type"),
        "{stderr}"
    );
    assert!(!dir.path().join("results").exists());
}
