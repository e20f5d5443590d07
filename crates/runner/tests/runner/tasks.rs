//! Whole tasks: claim, pinned benchmark containers, heartbeats, upload, complete or fail.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use protocol::{Category, ErrorType, FailedBy, Mode, Provider, layout};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::*;

fn selection() -> serde_json::Value {
    json!({ "benchmarks": ["fib", "liquid-render"], "warmup": 1, "bench": 2, "modes": ["interp", "yjit"] })
}

#[tokio::test]
async fn two_instance_types_two_runs_two_slots_all_complete() {
    let orchestrator = Orchestrator::start().await;
    let started = orchestrator
        .start_run(json!({
            "ruby_version": RUBY_VERSION, "runs_per_instance_type": 2,
            "local": ["rt-alpha", "rt-beta"], "ruby_bench": selection(),
        }))
        .await;
    assert_eq!(started.tasks_created, 4);

    let mini = ruby_bench_mini();
    let alpha = runner::run(
        runner_settings(&orchestrator, "rt-alpha", "0-1", &mini),
        CancellationToken::new(),
    );
    let beta = runner::run(
        runner_settings(&orchestrator, "rt-beta", "0-1", &mini),
        CancellationToken::new(),
    );
    let (alpha, beta) = tokio::join!(alpha, beta);
    assert_eq!(alpha.unwrap(), runner::EXIT_DONE);
    assert_eq!(beta.unwrap(), runner::EXIT_DONE);

    let status = orchestrator.run_status().await;
    assert_eq!(
        (
            status.tasks.completed,
            status.tasks.failed,
            status.tasks.total
        ),
        (4, 0, 4)
    );

    for instance_type in ["rt-alpha", "rt-beta"] {
        let mut cpusets_by_runner = Vec::new();
        for task in started
            .tasks
            .iter()
            .filter(|task| task.instance_type == instance_type)
        {
            let files = orchestrator
                .archive(&layout::task_result_key(started.run_id, task.id))
                .await;
            let names: BTreeSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(
                names,
                BTreeSet::from([
                    layout::OUTPUT_TXT,
                    layout::RUBY_BENCH_TXT,
                    layout::RUBY_BENCH_JSON,
                    layout::RUBY_BENCH_CSV,
                    layout::META_JSON
                ]),
                "result.tar.gz is flat with exactly the promised files"
            );
            let output = String::from_utf8_lossy(file_of(&files, layout::OUTPUT_TXT));
            assert!(output.contains("Running benchmark \"fib\""), "{output}");
            let report = String::from_utf8_lossy(file_of(&files, layout::RUBY_BENCH_TXT));
            assert!(report.contains("interp/yjit"), "{report}");
            let json: serde_json::Value =
                serde_json::from_slice(file_of(&files, layout::RUBY_BENCH_JSON)).unwrap();
            assert!(
                json["raw_data"]["yjit"]["fib"]["bench"].is_array(),
                "{json}"
            );

            let meta = meta_of(&files);
            assert_eq!(
                (meta.run_id, meta.task_id, meta.run),
                (started.run_id, task.id, task.run)
            );
            assert_eq!(
                (meta.provider, meta.instance_type.as_str()),
                (Provider::Local, instance_type)
            );
            assert!(
                meta.ruby_description.starts_with("ruby 3.1.2"),
                "{}",
                meta.ruby_description
            );
            assert_eq!(meta.modes, [Mode::Interp, Mode::Yjit]);
            assert_eq!(meta.image, "rcb/ruby:3.1.2");
            let runner_image = meta
                .runner_image
                .as_ref()
                .expect("runner_image in meta.json");
            assert_eq!(runner_image.reference, "rcb/runner:latest");
            assert!(
                runner_image
                    .id
                    .as_deref()
                    .is_some_and(|id| id.starts_with("sha256:")),
                "{runner_image:?}"
            );
            assert!(
                meta.image_id
                    .as_deref()
                    .is_some_and(|id| id.starts_with("sha256:")),
                "{:?}",
                meta.image_id
            );
            assert_eq!(meta.benchmark_categories.get("fib"), Some(&Category::Micro));
            assert_eq!(
                meta.benchmark_categories.get("liquid-render"),
                Some(&Category::Headline)
            );
            assert!(meta.failed_benchmarks.is_empty());
            assert!(meta.kernel.is_some() && meta.cpu_model.is_some());
            assert!(meta.finished_at >= meta.started_at);
            // The kernel's cpuset of the benchmark container is the slot's CPU.
            let pinned = meta.pinned_cpu.expect("a pinned CPU").to_string();
            assert_eq!(meta.cgroup_cpuset.as_deref(), Some(pinned.as_str()));
            assert!(meta.smt_siblings.contains(&meta.pinned_cpu.unwrap()));
            cpusets_by_runner.push((meta.runner_id.clone(), pinned));
        }
        // Two slots shared the two runs; each slot's containers had a CPU of its own.
        let runners: BTreeSet<_> = cpusets_by_runner
            .iter()
            .map(|(runner, _)| runner.clone())
            .collect();
        let cpusets: BTreeSet<_> = cpusets_by_runner
            .iter()
            .map(|(_, cpuset)| cpuset.clone())
            .collect();
        assert_eq!(runners.len(), cpusets.len(), "{cpusets_by_runner:?}");
    }
    assert_eq!(
        runner_containers("test-rt-"),
        Vec::<String>::new(),
        "containers left behind"
    );
    // The run may be finished: its archive build must end before the orchestrator goes.
    orchestrator.wait_for_jobs().await;
}

#[tokio::test]
async fn the_benchmark_runs_in_an_image_derived_once_with_the_packages_ruby_bench_needs() {
    let orchestrator = Orchestrator::start().await;
    let started = orchestrator
        .start_run(json!({
            "ruby_version": RUBY_VERSION, "runs_per_instance_type": 2,
            "local": ["rt-derived"], "ruby_bench": selection(),
        }))
        .await;
    let mini = ruby_bench_mini();
    let mut settings = runner_settings(&orchestrator, "rt-derived", "0", &mini);
    // A small package from Debian's mirror (the cloud's list is larger; see
    // protocol::CLOUD_BENCH_PACKAGES): `tree` is in no Ruby image.
    settings.bench_packages = Some("tree".to_owned());
    assert_eq!(
        runner::run(settings, CancellationToken::new())
            .await
            .unwrap(),
        runner::EXIT_DONE
    );

    let mut derived = Vec::new();
    for task in &started.tasks {
        assert_eq!(orchestrator.task_row(task.id).await.0, "completed");
        let files = orchestrator
            .archive(&layout::task_result_key(started.run_id, task.id))
            .await;
        let meta = meta_of(&files);
        let image = meta
            .derived_image
            .clone()
            .expect("a derived image in meta.json");
        assert_eq!(image.packages, ["tree"]);
        assert!(image.id.starts_with("sha256:"), "{image:?}");
        assert!(meta.ruby_description.starts_with("ruby "), "{meta:?}");
        derived.push(image);
    }
    // Built once, for both tasks; the base image is recorded as well.
    assert_eq!(derived[0], derived[1]);
    let inspect = std::process::Command::new("docker")
        .args(["run", "--rm", &derived[0].reference, "tree", "--version"])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    orchestrator.wait_for_jobs().await;
}

#[tokio::test]
async fn a_benchmark_failing_inside_a_report_completes_the_task() {
    let broken = ruby_bench_mini_copy();
    std::fs::write(
        broken.path().join("benchmarks/fib.rb"),
        "raise 'fib is broken on purpose'\n",
    )
    .unwrap();
    let orchestrator = Orchestrator::start().await;
    let started = orchestrator
        .start_run(json!({
            "ruby_version": RUBY_VERSION, "runs_per_instance_type": 1,
            "local": ["rt-na"], "ruby_bench": selection(),
        }))
        .await;

    let settings = runner_settings(&orchestrator, "rt-na", "0", broken.path());
    assert_eq!(
        runner::run(settings, CancellationToken::new())
            .await
            .unwrap(),
        runner::EXIT_DONE
    );

    let task = &started.tasks[0];
    assert_eq!(orchestrator.task_row(task.id).await.0, "completed");
    let files = orchestrator
        .archive(&layout::task_result_key(started.run_id, task.id))
        .await;
    let meta = meta_of(&files);
    assert_eq!(meta.failed_benchmarks, ["fib"]);
    let report = String::from_utf8_lossy(file_of(&files, layout::RUBY_BENCH_TXT));
    assert!(report.contains("N/A"), "{report}");
    assert_eq!(runner_containers("test-rt-na"), Vec::<String>::new());
    // The run may be finished: its archive build must end before the orchestrator goes.
    orchestrator.wait_for_jobs().await;
}

#[tokio::test]
async fn ruby_bench_crashing_without_a_report_fails_the_task_with_its_error() {
    let broken = ruby_bench_mini_copy();
    std::fs::write(
        broken.path().join("run_benchmarks.rb"),
        "puts 'Running benchmark \"fib\" (1/2)'\n$stderr.puts 'harness exploded on purpose'\nexit 2\n",
    )
    .unwrap();
    let orchestrator = Orchestrator::start().await;
    let started = orchestrator
        .start_run(json!({ "ruby_version": RUBY_VERSION, "runs_per_instance_type": 1, "local": ["rt-crash"] }))
        .await;

    let settings = runner_settings(&orchestrator, "rt-crash", "1", broken.path());
    assert_eq!(
        runner::run(settings, CancellationToken::new())
            .await
            .unwrap(),
        runner::EXIT_DONE
    );

    let task = &started.tasks[0];
    let (state, _, error_type) = orchestrator.task_row(task.id).await;
    assert_eq!(
        (state.as_str(), error_type.as_deref()),
        ("failed", Some(ErrorType::RubyBenchFailed.as_str()))
    );
    let files = orchestrator
        .archive(&layout::task_error_key(started.run_id, task.id))
        .await;
    let error: protocol::ErrorInfo =
        serde_json::from_slice(file_of(&files, layout::ERROR_JSON)).unwrap();
    assert_eq!(error.error_type, ErrorType::RubyBenchFailed.as_str());
    assert_eq!(error.exit_code, Some(2));
    assert!(
        error.error_message.contains("harness exploded on purpose"),
        "{}",
        error.error_message
    );
    assert!(
        String::from_utf8_lossy(file_of(&files, layout::OUTPUT_TXT)).contains("Running benchmark")
    );
    assert_eq!(meta_of(&files).instance_type, "rt-crash");
    assert_eq!(runner_containers("test-rt-crash"), Vec::<String>::new());
    // The run may be finished: its archive build must end before the orchestrator goes.
    orchestrator.wait_for_jobs().await;
}

/// A host that cannot pull the benchmark image tries again, then gives the task back (it
/// never ran) and stops claiming, exiting with its own code.
#[tokio::test]
async fn a_host_that_cannot_pull_the_image_gives_its_task_back_and_exits_4() {
    let orchestrator = Orchestrator::start().await;
    let started = orchestrator
        .start_run(json!({ "ruby_version": RUBY_VERSION, "runs_per_instance_type": 2, "local": ["rt-noimage"] }))
        .await;
    let mut settings = runner_settings(&orchestrator, "rt-noimage", "0", &ruby_bench_mini());
    settings.bench_image_repo = "127.0.0.1:9/no-such-ruby".to_owned();
    assert_eq!(
        runner::run(settings, CancellationToken::new())
            .await
            .unwrap(),
        runner::EXIT_NOT_PREPARED
    );
    let released: Vec<(String, i32, Option<String>)> = sqlx::query_as(
        "SELECT state, release_count, release_message FROM tasks WHERE run_id = $1 ORDER BY id",
    )
    .bind(started.run_id)
    .fetch_all(orchestrator.pool())
    .await
    .unwrap();
    let (state, count, message) = &released[0];
    assert_eq!((state.as_str(), *count), ("pending", 1), "{released:?}");
    let message = message.as_deref().unwrap();
    assert!(message.starts_with("image_pull: "), "{message}");
    assert!(message.contains("127.0.0.1:9/no-such-ruby"), "{message}");
    assert_eq!(
        (released[1].0.as_str(), released[1].1),
        ("pending", 0),
        "the slot claimed no more"
    );
    assert_eq!(runner_containers("test-rt-noimage"), Vec::<String>::new());
}

#[tokio::test]
async fn a_failure_in_debug_mode_keeps_the_host_up() {
    let broken = ruby_bench_mini_copy();
    std::fs::write(broken.path().join("run_benchmarks.rb"), "exit 3\n").unwrap();
    let orchestrator = Orchestrator::start().await;
    orchestrator
        .start_run(json!({
            "ruby_version": RUBY_VERSION, "runs_per_instance_type": 2, "local": ["rt-debug"], "debug_mode": true,
        }))
        .await;
    let mut settings = runner_settings(&orchestrator, "rt-debug", "0", broken.path());
    settings.slots = Some(1);
    assert_eq!(
        runner::run(settings, CancellationToken::new())
            .await
            .unwrap(),
        runner::EXIT_HOLD_FOR_DEBUG
    );
    // The held slot stopped claiming: the second run is still pending.
    let status = orchestrator.run_status().await;
    assert_eq!((status.tasks.failed, status.tasks.pending), (1, 1));
    // The run may be finished: its archive build must end before the orchestrator goes.
    orchestrator.wait_for_jobs().await;
}

/// A selection that keeps ruby-bench busy for minutes.
fn long_selection() -> serde_json::Value {
    json!({ "benchmarks": ["binarytrees"], "warmup": 0, "bench": 100000, "modes": ["interp"] })
}

#[tokio::test]
async fn a_task_taken_away_mid_benchmark_stops_its_container_and_the_slot_gets_done() {
    let orchestrator = Orchestrator::start().await;
    let started = orchestrator
        .start_run(json!({
            "ruby_version": RUBY_VERSION, "runs_per_instance_type": 1,
            "local": ["rt-stop"], "ruby_bench": long_selection(),
        }))
        .await;
    let task_id = started.tasks[0].id;
    let settings = runner_settings(&orchestrator, "rt-stop", "1", &ruby_bench_mini());
    let runner = tokio::spawn(runner::run(settings, CancellationToken::new()));

    eventually(Duration::from_secs(60), "the benchmark to run", || async {
        orchestrator.task_row(task_id).await.1.as_deref() == Some("running")
    })
    .await;
    assert_eq!(
        runner_containers("test-rt-stop").len(),
        1,
        "one benchmark container runs"
    );
    // What an early stop does to a claimed task: its runner learns it from the next heartbeat.
    sqlx::query(
        "UPDATE tasks SET state = 'failed', failed_at = now(), failed_by = $2, \
         error_type = $3, error_message = 'the run was ended early', lock_version = lock_version + 1 \
         WHERE id = $1",
    )
    .bind(task_id)
    .bind(FailedBy::Orchestrator.as_str())
    .bind(ErrorType::RunStopped.as_str())
    .execute(&orchestrator.state.db)
    .await
    .unwrap();
    let stopped_at = Instant::now();

    let exit = tokio::time::timeout(Duration::from_secs(30), runner)
        .await
        .expect("the runner ends")
        .unwrap();
    assert_eq!(exit.unwrap(), runner::EXIT_DONE);
    assert!(
        stopped_at.elapsed() < Duration::from_secs(15),
        "took {:?}",
        stopped_at.elapsed()
    );
    assert_eq!(runner_containers("test-rt-stop"), Vec::<String>::new());
    // The runner did not overwrite the stop.
    let (state, _, error_type) = orchestrator.task_row(task_id).await;
    assert_eq!(
        (state.as_str(), error_type.as_deref()),
        ("failed", Some(ErrorType::RunStopped.as_str()))
    );
    // The run may be finished: its archive build must end before the orchestrator goes.
    orchestrator.wait_for_jobs().await;
}

#[tokio::test]
async fn sigterm_mid_benchmark_stops_the_container_and_reports_the_task_failed() {
    let orchestrator = Orchestrator::start().await;
    let started = orchestrator
        .start_run(json!({
            "ruby_version": RUBY_VERSION, "runs_per_instance_type": 1,
            "local": ["rt-term"], "ruby_bench": long_selection(),
        }))
        .await;
    let task_id = started.tasks[0].id;
    let shutdown = CancellationToken::new();
    let settings = runner_settings(&orchestrator, "rt-term", "0", &ruby_bench_mini());
    let runner = tokio::spawn(runner::run(settings, shutdown.clone()));
    eventually(Duration::from_secs(60), "the benchmark to run", || async {
        orchestrator.task_row(task_id).await.1.as_deref() == Some("running")
    })
    .await;

    shutdown.cancel();
    let exit = tokio::time::timeout(Duration::from_secs(30), runner)
        .await
        .expect("the runner ends")
        .unwrap();
    assert_eq!(exit.unwrap(), runner::EXIT_INTERRUPTED);
    let (state, _, error_type) = orchestrator.task_row(task_id).await;
    assert_eq!(
        (state.as_str(), error_type.as_deref()),
        ("failed", Some(ErrorType::RunnerStopped.as_str()))
    );
    assert_eq!(runner_containers("test-rt-term"), Vec::<String>::new());
    // The run may be finished: its archive build must end before the orchestrator goes.
    orchestrator.wait_for_jobs().await;
}

#[tokio::test]
async fn the_run_completes_through_30_seconds_without_the_orchestrator() {
    let mut orchestrator = Orchestrator::start().await;
    let started = orchestrator
        .start_run(json!({
            "ruby_version": RUBY_VERSION, "runs_per_instance_type": 2,
            "local": ["rt-outage"], "ruby_bench": selection(),
        }))
        .await;
    let mut settings = runner_settings(&orchestrator, "rt-outage", "1", &ruby_bench_mini());
    settings.slots = Some(1);
    let runner = tokio::spawn(runner::run(settings, CancellationToken::new()));
    let first = started.tasks[0].id;
    eventually(Duration::from_secs(60), "the first task to run", || async {
        orchestrator.task_row(first).await.1.as_deref() == Some("running")
    })
    .await;

    orchestrator.stop_serving().await;
    let refused = reqwest::get(format!("{}/health", orchestrator.url())).await;
    assert!(refused.is_err(), "the orchestrator still answers");
    tokio::time::sleep(Duration::from_secs(30)).await;
    orchestrator.serve_again().await;

    let exit = tokio::time::timeout(Duration::from_secs(120), runner)
        .await
        .expect("the runner ends")
        .unwrap();
    assert_eq!(exit.unwrap(), runner::EXIT_DONE);
    // The last `/complete` started the archive build, which may or may not have finished
    // (the run `running` or `complete`); the tasks are what this test is about.
    let status = orchestrator.run_status().await;
    assert_eq!((status.tasks.completed, status.tasks.failed), (2, 0));
    // The run may be finished: its archive build must end before the orchestrator goes.
    orchestrator.wait_for_jobs().await;
}
