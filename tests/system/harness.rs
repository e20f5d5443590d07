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
    run_master(args, None, None).await
}

/// The master script run to its end, with `API_KEY` set to `api_key` when given, and `bin`
/// ahead of everything else on PATH (stand-ins for tools) when given.
async fn run_master(args: &[&str], api_key: Option<&str>, bin: Option<&Path>) -> Output {
    let mut command = tokio::process::Command::new("fish");
    command
        .arg(project_root().join("fish/master.fish"))
        .args(args)
        .current_dir(project_root())
        .env_remove("ORCHESTRATOR_URL")
        .env_remove("API_KEY")
        .kill_on_drop(true);
    if let Some(key) = api_key {
        command.env("API_KEY", key);
    }
    if let Some(bin) = bin {
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", bin.display()));
    }
    command
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
    master_attached_on_path(stack, config, results, extra, None)
}

/// [`master_attached_with`], with `bin` ahead on PATH.
pub fn master_attached_on_path(
    stack: &LocalStack,
    config: &Path,
    results: &Path,
    extra: &[&str],
    bin: Option<PathBuf>,
) -> tokio::task::JoinHandle<Output> {
    let mut args: Vec<String> = vec![
        "--config".into(),
        config.display().to_string(),
        "--orchestrator-url".into(),
        stack.orchestrator_url.clone(),
        "--results-dir".into(),
        results.display().to_string(),
        "--poll-secs".into(),
        "1".into(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    // The key through the environment, as the README says: a flag shows in `ps`.
    let api_key = stack.api_key.clone();
    tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_master(&args, Some(&api_key), bin.as_deref()).await
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
