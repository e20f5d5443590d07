//! The local stack without runners, and the master script as a process.

use std::path::{Path, PathBuf};
use std::process::Output;

use local_stack::{LocalStack, StackOptions};

/// The workspace root, where `fish/master.fish` lives.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace root")
        .to_owned()
}

/// Postgres, s3-local and the orchestrator, as `cargo xtask local up` starts them, with no
/// runner: the tests play the runner.
pub async fn stack() -> LocalStack {
    let options = StackOptions {
        runners: Vec::new(),
        ruby_bench_dir: project_root().join("fixtures/ruby-bench-mini"),
        bench_image_repo: "rcb/ruby".to_owned(),
        heartbeat_interval_secs: 5,
        orchestrator_env: Vec::new(),
    };
    LocalStack::up(&options)
        .await
        .unwrap_or_else(|err| panic!("the local stack did not come up: {err:#}"))
}

/// The master script, run to its end.
pub async fn master(args: &[&str]) -> Output {
    tokio::process::Command::new("fish")
        .arg(project_root().join("fish/master.fish"))
        .args(args)
        .current_dir(project_root())
        .env_remove("ORCHESTRATOR_URL")
        .env_remove("API_KEY")
        .kill_on_drop(true)
        .output()
        .await
        .expect("fish runs; install it with apt-get install -y fish")
}

/// The master script attached to `stack`, following a run of `config` into `results`.
pub fn master_attached(
    stack: &LocalStack,
    config: &Path,
    results: &Path,
) -> tokio::task::JoinHandle<Output> {
    master_attached_with(stack, config, results, &[])
}

/// [`master_attached`] with more arguments.
pub fn master_attached_with(
    stack: &LocalStack,
    config: &Path,
    results: &Path,
    extra: &[&str],
) -> tokio::task::JoinHandle<Output> {
    let mut args: Vec<String> = vec![
        "--config".into(),
        config.display().to_string(),
        "--orchestrator-url".into(),
        stack.orchestrator_url.clone(),
        "--api-key".into(),
        stack.api_key.clone(),
        "--results-dir".into(),
        results.display().to_string(),
        "--poll-secs".into(),
        "1".into(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        master(&args).await
    })
}

/// Writes a run config into `dir`.
pub fn write_config(dir: &Path, config: serde_json::Value) -> PathBuf {
    let path = dir.join("run.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

/// The master script's stderr, as text.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `docker` with `args`; its standard output, trimmed.
pub fn docker(args: &[&str]) -> String {
    let output = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs; install Docker Engine");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The ids of `stack`'s containers made from `image`, running or not.
pub fn containers_of(stack: &LocalStack, image: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label={}={}", local_stack::STACK_LABEL, stack.stack_id),
        "--filter",
        &format!("ancestor={image}"),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The one container of `stack` made from `image`.
pub fn container_of(stack: &LocalStack, image: &str) -> String {
    let ids = containers_of(stack, image);
    assert_eq!(ids.len(), 1, "one {image} container: {ids:?}");
    ids[0].clone()
}
