//! `fish/master.fish` following a run to its results: downloads, unpacking, exit codes.

use std::path::Path;

use protocol::layout;
use serde_json::json;

use crate::harness::*;
use crate::scripted_runner::ScriptedRunner;

/// The folders under `results/<run-id>/`, with their files.
fn unpacked(run_dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut folders: Vec<(String, Vec<String>)> = std::fs::read_dir(run_dir)
        .unwrap_or_else(|err| panic!("{}: {err}", run_dir.display()))
        .map(|entry| {
            let entry = entry.unwrap();
            let mut files: Vec<String> = std::fs::read_dir(entry.path())
                .unwrap()
                .map(|file| file.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            (entry.file_name().to_string_lossy().into_owned(), files)
        })
        .collect();
    folders.sort();
    folders
}

const RESULT_FILES: [&str; 5] = [
    layout::META_JSON,
    layout::OUTPUT_TXT,
    layout::RUBY_BENCH_CSV,
    layout::RUBY_BENCH_JSON,
    layout::RUBY_BENCH_TXT,
];

#[tokio::test]
async fn a_finished_run_is_downloaded_into_results_and_exits_0() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let config = write_config(
        dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "local": ["one", "two"] }),
    );
    let master = master_attached(&stack, &config, &results);

    let runner = ScriptedRunner::new(&stack);
    let run = runner.wait_for_run().await;
    for instance_type in ["one", "two"] {
        let (task, urls) = runner.claim(instance_type).await;
        runner.complete(&task, &urls).await;
    }

    let output = master.await.unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("[100%] 2/2 done · 0 running · 0 failed"),
        "{stderr}"
    );
    let expected: Vec<(String, Vec<String>)> = ["one-1", "two-1"]
        .into_iter()
        .map(|folder| (folder.to_owned(), RESULT_FILES.map(str::to_owned).to_vec()))
        .collect();
    assert_eq!(unpacked(&results.join(run.run_id.to_string())), expected);
    let leftovers: Vec<_> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only the run's folder, no partial download: {leftovers:?}"
    );
}

#[tokio::test]
async fn a_run_with_a_failed_task_exits_2_with_the_others_unpacked() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let config = write_config(
        dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 3, "local": ["mixed"] }),
    );
    let master = master_attached(&stack, &config, &results);

    let runner = ScriptedRunner::new(&stack);
    let run = runner.wait_for_run().await;
    let (first, urls) = runner.claim("mixed").await;
    runner.complete(&first, &urls).await;
    let (second, urls) = runner.claim("mixed").await;
    runner.fail(&second, &urls).await;
    let (third, urls) = runner.claim("mixed").await;
    runner.complete(&third, &urls).await;

    let output = master.await.unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2 completed, 1 failed"), "{stderr}");
    let folders = unpacked(&results.join(run.run_id.to_string()));
    assert_eq!(folders.len(), 3, "{folders:?}");
    assert_eq!(
        folders[0],
        (
            "mixed-1".to_owned(),
            RESULT_FILES.map(str::to_owned).to_vec()
        )
    );
    assert!(
        folders[1].0 == "mixed-2" && folders[1].1.contains(&layout::ERROR_JSON.to_owned()),
        "{folders:?}"
    );
    assert_eq!(
        folders[2],
        (
            "mixed-3".to_owned(),
            RESULT_FILES.map(str::to_owned).to_vec()
        )
    );
}

#[tokio::test]
async fn a_run_ended_early_exits_2() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let config = write_config(
        dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 3, "local": ["stopped"] }),
    );
    let master = master_attached(&stack, &config, &results);

    let runner = ScriptedRunner::new(&stack);
    let run = runner.wait_for_run().await;
    let (first, urls) = runner.claim("stopped").await;
    runner.complete(&first, &urls).await;
    // One task still held by its runner, one never claimed.
    let _held = runner.claim("stopped").await;
    runner.stop_run().await;

    let output = master.await.unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ended early"), "{stderr}");
    let folders = unpacked(&results.join(run.run_id.to_string()));
    let names: Vec<&str> = folders.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["stopped-1", "stopped-2"],
        "the pending task left nothing; the held one failed"
    );
    assert_eq!(folders[0].1, RESULT_FILES.map(str::to_owned).to_vec());
    assert!(
        folders[1].1.contains(&layout::ERROR_JSON.to_owned()),
        "{folders:?}"
    );
}

#[tokio::test]
async fn ctrl_c_says_how_to_follow_the_run_again() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "local": ["slow"] }),
    );
    let child = tokio::process::Command::new("fish")
        .arg(project_root().join("fish/master.fish"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--orchestrator-url",
            &stack.orchestrator_url,
        ])
        .args([
            "--api-key",
            &stack.api_key,
            "--results-dir",
            dir.path().join("results").to_str().unwrap(),
        ])
        .args(["--poll-secs", "1"])
        .current_dir(project_root())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    ScriptedRunner::new(&stack).wait_for_run().await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );

    let output = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the master script ends on Ctrl-C")
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("the run goes on without this script"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("--orchestrator-url {}", stack.orchestrator_url))
            && stderr.contains("--resume"),
        "{stderr}"
    );
    // The run itself is untouched.
    assert_eq!(
        ScriptedRunner::new(&stack)
            .wait_for_run()
            .await
            .tasks
            .pending,
        1
    );
}

/// Waits until `stack`'s orchestrator answers its health check again.
async fn wait_healthy(stack: &local_stack::LocalStack) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        let health = client
            .get(format!("{}/health", stack.orchestrator_url))
            .send()
            .await;
        if health.is_ok_and(|response| response.status() == 200) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the orchestrator did not come back");
}

#[tokio::test]
async fn the_master_waits_out_an_unreachable_orchestrator() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let config = write_config(
        dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "local": ["one", "two"] }),
    );
    let master = master_attached(&stack, &config, &results);

    let runner = ScriptedRunner::new(&stack);
    let run = runner.wait_for_run().await;
    let one = runner.claim("one").await;
    let two = runner.claim("two").await;
    // Longer than the master used to wait (30 failed polls, 1 s apart), shorter than the
    // local stack's heartbeat timeout (60 s) since the claims.
    let container = container_of(&stack, "rcb/orchestrator:latest");
    docker(&["stop", "--time", "5", &container]);
    tokio::time::sleep(std::time::Duration::from_secs(40)).await;
    docker(&["start", &container]);
    wait_healthy(&stack).await;
    for (task, urls) in [one, two] {
        runner.complete(&task, &urls).await;
    }

    let output = master.await.unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("is unreachable since").count(),
        1,
        "one line when it went away, none per poll: {stderr}"
    );
    assert_eq!(
        stderr.matches("answers again").count(),
        1,
        "one line when it came back: {stderr}"
    );
    assert!(!stderr.contains("stopped answering"), "{stderr}");
    let folders = unpacked(&results.join(run.run_id.to_string()));
    let names: Vec<&str> = folders.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["one-1", "two-1"]);
}

#[tokio::test]
async fn the_master_gives_up_only_at_the_deadline_and_says_how_to_resume() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let config = write_config(
        dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "local": ["held"] }),
    );
    // 0.004 h = 14.4 s from the run's start.
    let master = master_attached_with(&stack, &config, &results, &["--max-hours", "0.004"]);

    let runner = ScriptedRunner::new(&stack);
    runner.wait_for_run().await;
    let _held = runner.claim("held").await;
    let container = container_of(&stack, "rcb/orchestrator:latest");
    docker(&["stop", "--time", "5", &container]);

    let output = tokio::time::timeout(std::time::Duration::from_secs(60), master)
        .await
        .expect("the master gives up at the deadline")
        .unwrap();
    docker(&["start", &container]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("deadline"), "{stderr}");
    assert!(
        stderr.contains("last seen: the orchestrator unreachable since"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--resume --max-hours 0.008"),
        "how to follow it again: {stderr}"
    );
    assert!(
        !results.exists() || std::fs::read_dir(&results).unwrap().next().is_none(),
        "nothing unpacked"
    );
}

#[tokio::test]
async fn the_master_says_why_the_archive_is_late_and_waits_for_its_retry() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let config = write_config(
        dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "local": ["one"] }),
    );
    let master = master_attached(&stack, &config, &results);
    let runner = ScriptedRunner::new(&stack);
    let run = runner.wait_for_run().await;
    let (task, urls) = runner.claim("one").await;
    runner.upload_result(&task, &urls).await;
    // The bucket goes away just before the last task completes: the archive build fails.
    let s3 = container_of(&stack, "rcb/s3-local:latest");
    docker(&["stop", "--time", "1", &s3]);
    runner.report_complete(&task).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    docker(&["start", &s3]);

    // The orchestrator builds it again after its backoff (10 s).
    let output = tokio::time::timeout(std::time::Duration::from_secs(90), master)
        .await
        .expect("the master finishes once the archive is built")
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("results archive: 1 failed build(s), retrying: "),
        "{stderr}"
    );
    let folders = unpacked(&results.join(run.run_id.to_string()));
    assert_eq!(folders.len(), 1, "{folders:?}");
}

#[tokio::test]
async fn the_api_key_never_shows_on_curls_command_line() {
    let stack = stack().await;
    let dir = tempfile::tempdir().unwrap();
    // A curl that writes down its arguments, then is the real one.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let argv_log = dir.path().join("curl-argv.log");
    let real_curl = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v curl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(
        bin.join("curl"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >>'{}'\nexec {} \"$@\"\n",
            argv_log.display(),
            real_curl.trim()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", &bin.join("curl").display().to_string()])
        .status()
        .unwrap();
    let results = dir.path().join("results");
    let config = write_config(
        dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "local": ["one"] }),
    );
    let master = master_attached_on_path(&stack, &config, &results, &[], Some(bin));
    let runner = ScriptedRunner::new(&stack);
    runner.wait_for_run().await;
    let (task, urls) = runner.claim("one").await;
    runner.complete(&task, &urls).await;

    let output = master.await.unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let argv = std::fs::read_to_string(&argv_log).unwrap();
    assert!(
        argv.lines().filter(|line| line.contains("-H @")).count() >= 2,
        "curl read the key's header from a file: {argv}"
    );
    assert!(
        !argv.contains(&stack.api_key),
        "the API key is on curl's command line: {argv}"
    );
    // The header file is gone with the master.
    for line in argv.lines() {
        if let Some(file) = line.split(' ').find_map(|arg| arg.strip_prefix('@')) {
            assert!(!Path::new(file).exists(), "{file} was left behind");
        }
    }
}
