//! The archive builder: layout of `results.tar.gz`, one builder per run, failures of S3 and of
//! the orchestrator itself.

use axum::http::StatusCode;
use orchestrator::Storage;
use orchestrator::db::{RunId, TaskId, runs, tasks};
use orchestrator::jobs::{build_if_finished, retake_orphaned_build};
use protocol::{ArchiveState, ClaimedTask, ErrorType, PresignedUrls, RunState, layout};
use serde_json::json;

use crate::harness::{TestApp, tar_gz, upload};

const RUN_ID: i64 = 1_800_000_000;

fn result_files(run: u32) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            layout::OUTPUT_TXT,
            format!("ruby-bench output of run {run}\n").into_bytes(),
        ),
        (
            layout::RUBY_BENCH_TXT,
            b"bench  yjit (ms)\nfib    1.0\n".to_vec(),
        ),
        (layout::RUBY_BENCH_JSON, br#"{"raw_data": {}}"#.to_vec()),
        (layout::RUBY_BENCH_CSV, b"bench,yjit\nfib,1.0\n".to_vec()),
        (
            layout::META_JSON,
            format!(r#"{{"run": {run}}}"#).into_bytes(),
        ),
    ]
}

fn packed(files: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (*n, c.as_slice())).collect();
    tar_gz(&borrowed)
}

async fn claim(app: &TestApp) -> (ClaimedTask, PresignedUrls) {
    app.claim_assigned("local", "local-1cpu", "runner").await
}

async fn complete(app: &TestApp, task: &ClaimedTask) {
    let key = layout::task_result_key(task.run_id, task.id);
    let response = app
        .post(
            &format!("/tasks/{}/complete", task.id),
            &json!({"runner_id": "runner", "s3_result_key": key}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
}

async fn fail(app: &TestApp, task: &ClaimedTask, with_archive: bool) {
    let mut body = json!({
        "runner_id": "runner", "error_type": ErrorType::RubyBenchFailed, "error_message": "exit status 1"
    });
    if with_archive {
        body["s3_error_key"] = json!(layout::task_error_key(task.run_id, task.id));
    }
    let response = app.post(&format!("/tasks/{}/fail", task.id), &body).await;
    assert_eq!(response.status, StatusCode::OK);
}

fn config(runs: u32) -> serde_json::Value {
    json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": runs, "run_id": RUN_ID,
        "local": ["local-1cpu"]
    })
}

#[tokio::test]
async fn the_archive_has_a_folder_per_task_with_its_files_or_an_error_json() {
    let app = TestApp::new().await;
    app.start_run(&config(5)).await;

    // Run 1 completes with a full result.
    let (t1, urls) = claim(&app).await;
    let files1 = result_files(1);
    upload(&urls.result, packed(&files1)).await;
    complete(&app, &t1).await;
    // Run 2 fails with an error archive (./-prefixed names, as `tar -C dir .` writes them).
    let (t2, urls) = claim(&app).await;
    let error_json = format!(
        r#"{{"error_type": "{}", "error_message": "exit status 1", "exit_code": 1}}"#,
        ErrorType::RubyBenchFailed
    );
    let error_files: Vec<(&str, &[u8])> = vec![
        ("./error.json", error_json.as_bytes()),
        ("./output.txt", b"partial output\n"),
        ("./stderr.txt", b"Segmentation fault\n"),
        ("./meta.json", b"{}"),
    ];
    upload(&urls.error, tar_gz(&error_files)).await;
    fail(&app, &t2, true).await;
    // Run 3 fails without uploading anything.
    let (t3, _) = claim(&app).await;
    fail(&app, &t3, false).await;
    // Run 4 completes, but its result never reached S3.
    let (t4, _) = claim(&app).await;
    complete(&app, &t4).await;
    // Run 5 completes with an upload that is not a tar.gz.
    let (t5, urls) = claim(&app).await;
    upload(&urls.result, b"this is not gzip".to_vec()).await;
    complete(&app, &t5).await;

    app.wait_for_jobs().await;
    let archive = app.download_archive().await;
    assert_eq!(
        archive.dirs,
        [
            "local-1cpu-1",
            "local-1cpu-2",
            "local-1cpu-3",
            "local-1cpu-4",
            "local-1cpu-5"
        ]
    );
    assert_eq!(
        archive.paths(),
        [
            "local-1cpu-1/meta.json",
            "local-1cpu-1/output.txt",
            "local-1cpu-1/ruby-bench.csv",
            "local-1cpu-1/ruby-bench.json",
            "local-1cpu-1/ruby-bench.txt",
            "local-1cpu-2/error.json",
            "local-1cpu-2/meta.json",
            "local-1cpu-2/output.txt",
            "local-1cpu-2/stderr.txt",
            "local-1cpu-3/error.json",
            "local-1cpu-4/error.json",
            "local-1cpu-5/error.json",
        ]
    );
    for (name, content) in &files1 {
        assert_eq!(&archive.files[&format!("local-1cpu-1/{name}")], content);
    }
    assert_eq!(
        archive.files["local-1cpu-2/error.json"],
        error_json.as_bytes()
    );
    assert_eq!(
        archive.files["local-1cpu-2/stderr.txt"],
        b"Segmentation fault\n"
    );
    assert_eq!(
        archive.json("local-1cpu-3/error.json"),
        json!({"error_type": ErrorType::RubyBenchFailed, "error_message": "exit status 1", "exit_code": null})
    );
    let missing = archive.json("local-1cpu-4/error.json");
    assert_eq!(missing["error_type"], ErrorType::ArchiveMissing.as_str());
    assert!(
        missing["error_message"]
            .as_str()
            .unwrap()
            .contains("result.tar.gz is not in S3")
    );
    let unreadable = archive.json("local-1cpu-5/error.json");
    assert_eq!(
        unreadable["error_type"],
        ErrorType::ArchiveUnreadable.as_str()
    );
}

#[tokio::test]
async fn a_run_has_one_builder() {
    let app = TestApp::new().await;
    app.start_run(&config(2)).await;
    for _ in 0..2 {
        let (task, _) = claim(&app).await;
        // Finished in the database, so that no request starts a build.
        assert!(
            tasks::update_task_completed(
                app.pool(),
                TaskId(task.id),
                "runner",
                &layout::task_result_key(task.run_id, task.id)
            )
            .await
            .unwrap()
        );
    }
    let builds =
        futures::future::join_all((0..4).map(|_| build_if_finished(&app.state, RunId(RUN_ID))))
            .await;
    let built = builds
        .into_iter()
        .filter(|b| b.as_ref().unwrap().is_some())
        .count();
    assert_eq!(built, 1);
    assert_eq!(app.download_archive().await.dirs.len(), 2);
    // A complete run is never built again.
    assert!(
        build_if_finished(&app.state, RunId(RUN_ID))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_unfinished_run_is_not_built() {
    let app = TestApp::new().await;
    app.start_run(&config(2)).await;
    let (task, _) = claim(&app).await;
    complete(&app, &task).await;
    app.wait_for_jobs().await;
    assert!(
        build_if_finished(&app.state, RunId(RUN_ID))
            .await
            .unwrap()
            .is_none()
    );
    let run = runs::get_latest_run(app.pool()).await.unwrap().unwrap();
    assert_eq!(run.state, RunState::Running);
    assert_eq!(run.archive_state, ArchiveState::None);
}

#[tokio::test]
async fn a_build_that_s3_refused_is_retried() {
    let app = TestApp::new().await;
    app.start_run(&config(1)).await;
    let (task, _) = claim(&app).await;
    assert!(
        tasks::update_task_completed(
            app.pool(),
            TaskId(task.id),
            "runner",
            &layout::task_result_key(task.run_id, task.id)
        )
        .await
        .unwrap()
    );
    // S3 refuses the orchestrator's credentials for a while.
    let broken = app.state.clone().with_storage(Storage::new(
        app.bucket.server.client_with_secret("a-wrong-secret"),
        app.state.storage.presigner().clone(),
    ));
    let err = build_if_finished(&broken, RunId(RUN_ID)).await.unwrap_err();
    assert!(format!("{err:#}").contains("multipart upload"), "{err:#}");
    let run = runs::get_latest_run(app.pool()).await.unwrap().unwrap();
    assert_eq!(run.state, RunState::Running);
    assert_eq!(run.archive_state, ArchiveState::Failed);
    let status = app.get("/run").await.json();
    assert_eq!(status["archive"]["state"], "failed", "{status}");
    assert_eq!(status["archive"]["attempts"], 1, "{status}");
    let error = status["archive"]["error"].as_str().unwrap();
    assert!(error.contains("multipart upload"), "{error}");
    assert!(status["archive"]["retry_at"].is_string(), "{status}");

    // Not before its backoff (10 s after the first failure)...
    assert!(
        build_if_finished(&app.state, RunId(RUN_ID))
            .await
            .unwrap()
            .is_none()
    );
    // ...and then the next check builds it.
    sqlx::query("UPDATE runs SET archive_retry_at = archive_retry_at - interval '10 seconds'")
        .execute(app.pool())
        .await
        .unwrap();
    let report = build_if_finished(&app.state, RunId(RUN_ID)).await.unwrap();
    assert_eq!(report.unwrap().tasks, 1);
    assert_eq!(
        app.download_archive().await.paths(),
        ["local-1cpu-1/error.json"]
    );
}

#[tokio::test]
async fn a_build_cut_short_by_a_crash_is_finished_at_the_next_start() {
    let app = TestApp::new().await;
    app.start_run(&config(3)).await;
    let mut expected = Vec::new();
    for run in 1..=3 {
        let (task, urls) = claim(&app).await;
        let files = result_files(run);
        upload(&urls.result, packed(&files)).await;
        assert!(
            tasks::update_task_completed(
                app.pool(),
                TaskId(task.id),
                "runner",
                &layout::task_result_key(task.run_id, task.id)
            )
            .await
            .unwrap()
        );
        expected.extend(
            files
                .iter()
                .map(|(name, _)| format!("local-1cpu-{run}/{name}")),
        );
    }
    // What a process killed mid-build leaves: the run claimed for building, and a multipart
    // upload with a part that is never completed.
    sqlx::query("UPDATE runs SET archive_state = 'building'")
        .execute(app.pool())
        .await
        .unwrap();
    let client = app.bucket.server.client();
    let key = layout::run_archive_key(RUN_ID);
    let upload_id = client
        .create_multipart_upload()
        .bucket(&app.bucket.name)
        .key(&key)
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();
    client
        .upload_part()
        .bucket(&app.bucket.name)
        .key(&key)
        .upload_id(&upload_id)
        .part_number(1)
        .body(b"half an archive".to_vec().into())
        .send()
        .await
        .unwrap();

    // While the process that claimed it lives, nobody else builds it.
    assert!(
        build_if_finished(&app.state, RunId(RUN_ID))
            .await
            .unwrap()
            .is_none()
    );
    // A new process (or a check that finds no build of the run running) takes it back.
    let run = runs::get_latest_run(app.pool()).await.unwrap().unwrap();
    assert!(retake_orphaned_build(&app.state, &run).await.unwrap());
    let report = build_if_finished(&app.state, RunId(RUN_ID))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.tasks, 3);
    assert_eq!(report.files, 15);
    let archive = app.download_archive().await;
    expected.sort();
    assert_eq!(archive.paths(), expected);
}
