//! The master script's cloud path and the nuke script, with `terraform`, `aws`, `az`, `docker`
//! and `cargo` replaced on PATH by the recorders in `recorders/` (they log every call and
//! answer from a `world.json` the test writes). Past "infra is up", the recorded meta outputs
//! point the master script at the real local stack's orchestrator, and the test plays the
//! cloud runners over the task API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::{
    ClaimRequest, ClaimResponse, CompleteRequest, ErrorType, FailRequest, Provider, archive, layout,
};
use serde_json::{Value, json};

use crate::harness::*;

/// The `runner_api_key` output of the recorded meta stack.
const RUNNER_KEY_OUTPUT: &str = "runner-secret-of-the-meta-stack";

/// One line of the recorders' log.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    time: f64,
    tool: String,
    event: String,
    argv: String,
}

impl Call {
    /// The stack of a terraform call (`-chdir=.../terraform/<stack>`).
    fn stack(&self) -> &str {
        self.argv
            .split(' ')
            .find_map(|arg| arg.strip_prefix("-chdir="))
            .and_then(|dir| dir.rsplit('/').next())
            .unwrap_or("")
    }

    /// The terraform subcommand (`init`, `apply`, ...).
    fn subcommand(&self) -> &str {
        self.argv
            .split(' ')
            .find(|arg| !arg.starts_with('-'))
            .unwrap_or("")
    }

    pub(crate) fn is(&self, tool: &str, event: &str, subcommand: &str, stack: &str) -> bool {
        self.tool == tool
            && self.event == event
            && self.subcommand() == subcommand
            && self.stack() == stack
    }
}

/// A scratch directory with the recorders' world, log, state and logs roots.
pub(crate) struct Recorders {
    pub(crate) dir: tempfile::TempDir,
    fail: String,
    /// Directories before the recorders on PATH: real tools that replace recorders.
    path_first: Vec<PathBuf>,
    /// More environment for the scripts.
    env: Vec<(String, String)>,
}

impl Recorders {
    pub(crate) fn new() -> Self {
        let recorders = Self {
            dir: tempfile::tempdir().unwrap(),
            fail: String::new(),
            path_first: Vec::new(),
            env: Vec::new(),
        };
        recorders.set_world(json!({}));
        recorders
    }

    /// The recorders with `dir`'s tools before them on PATH and `env` added.
    pub(crate) fn with_tools(mut self, dir: &Path, env: Vec<(String, String)>) -> Self {
        self.path_first.push(dir.to_owned());
        self.env.extend(env);
        self
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn state_root(&self) -> PathBuf {
        self.path("state")
    }

    fn set_world(&self, world: Value) {
        std::fs::write(self.path("world.json"), world.to_string()).unwrap();
    }

    fn world(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path("world.json")).unwrap()).unwrap()
    }

    /// The meta outputs `terraform output -json` answers with: the operator key `api_key`,
    /// and the runners' key [`RUNNER_KEY_OUTPUT`].
    pub(crate) fn set_meta_outputs(&self, orchestrator_url: &str, api_key: &str) {
        let values = json!({
            "orchestrator_url": orchestrator_url, "api_key": api_key, "runner_api_key": RUNNER_KEY_OUTPUT,
            "operator_password": "operator-secret",
            "bucket": "rcb-test-results-ab12", "region": "eu-west-1", "bastion_address": "203.0.113.9",
            "bastion_private_ip": "10.60.0.5", "ssh_private_key_path": "/tmp/rcb-test-key", "ssh_user": "ubuntu",
            "ssh_public_key": "ssh-rsa AAAA", "meta_region": "eu-west-1", "meta_vpc_id": "vpc-meta",
            "meta_vpc_cidr": "10.60.0.0/16", "meta_route_table_id": "rtb-meta", "orchestrator_public_ip": "203.0.113.8",
        });
        let outputs: serde_json::Map<String, Value> = values
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| {
                let sensitive =
                    ["api_key", "runner_api_key", "operator_password"].contains(&name.as_str());
                (
                    name.clone(),
                    json!({ "value": value, "sensitive": sensitive, "type": "string" }),
                )
            })
            .collect();
        std::fs::write(
            self.path("meta-outputs.json"),
            Value::Object(outputs).to_string(),
        )
        .unwrap();
    }

    /// Changes one of the meta outputs.
    fn set_meta_output(&self, name: &str, value: &str) {
        let path = self.path("meta-outputs.json");
        let mut outputs: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        outputs[name]["value"] = json!(value);
        std::fs::write(path, outputs.to_string()).unwrap();
    }

    /// A Fish script of the project with the recorders first on PATH and no terminal.
    pub(crate) async fn run(
        &self,
        script: &str,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Output {
        self.command(script, args, extra_env)
            .output()
            .await
            .expect("fish runs; install it with apt-get install -y fish")
    }

    /// [`Recorders::run`], started: the test may signal it.
    fn spawn(&self, script: &str, args: &[&str]) -> tokio::process::Child {
        self.command(script, args, &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("fish runs; install it with apt-get install -y fish")
    }

    fn command(
        &self,
        script: &str,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> tokio::process::Command {
        let recorders = project_root().join("tests/system/recorders");
        let path = std::env::join_paths(self.path_first.iter().cloned().chain([recorders]).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let mut command = tokio::process::Command::new("fish");
        command
            .arg(project_root().join("fish").join(script))
            .args(args)
            .current_dir(project_root())
            .env("PATH", path)
            .env("RCB_RECORDER_LOG", self.path("calls.log"))
            .env("RCB_RECORDER_DIR", self.dir.path())
            .env("RCB_RECORDER_FAIL", &self.fail)
            .env("RCB_STATE_ROOT", self.state_root())
            .env("RCB_LOGS_ROOT", self.path("logs"))
            .env("NUKE_WAIT_SECS", "5")
            .env_remove("ORCHESTRATOR_URL")
            .env_remove("API_KEY")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            // Only the credentials a test gives count (the moto tests' real aws CLI).
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        for (name, value) in extra_env {
            command.env(name, value);
        }
        command
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        let text = std::fs::read_to_string(self.path("calls.log")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let fields: Vec<&str> = line.splitn(5, '\t').collect();
                Call {
                    time: fields[0].parse().unwrap(),
                    tool: fields[1].to_owned(),
                    event: fields[2].to_owned(),
                    argv: fields[4].to_owned(),
                }
            })
            .collect()
    }
}

/// The common arguments of a cloud run of the master script.
pub(crate) fn cloud_args<'a>(config: &'a str, results: &'a str) -> Vec<&'a str> {
    vec![
        "--config",
        config,
        "--results-dir",
        results,
        "--aws-region",
        "eu-west-1",
        "--allowed-ssh-cidr",
        "203.0.113.7/32",
        "--allow-plain-http",
        "--ruby-bench-commit",
        "0123abcd",
        "--poll-secs",
        "1",
    ]
}

fn position(calls: &[Call], what: impl Fn(&Call) -> bool) -> usize {
    calls
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("no such call in {calls:#?}"))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Claims a task as a cloud runner would and completes it with a one-file result.
async fn complete_one(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    provider: Provider,
    instance_type: &str,
) {
    let runner_id = format!("recorded-{instance_type}");
    let claim = ClaimRequest {
        provider,
        instance_type: instance_type.to_owned(),
        runner_id: runner_id.clone(),
    };
    let response = client
        .post(format!("{url}/tasks/claim"))
        .bearer_auth(key)
        .json(&claim)
        .send()
        .await
        .unwrap();
    let (task, urls) = match response.json::<ClaimResponse>().await.unwrap() {
        ClaimResponse::Assigned {
            task,
            presigned_urls,
        } => (task, presigned_urls),
        other => panic!("expected a task of {instance_type}, got {other:?}"),
    };
    let report = b"bench  yjit (ms)\nfib    10.0\n";
    let archive = archive::pack(&[(layout::OUTPUT_TXT, report)], 0);
    let upload = client.put(&urls.result).body(archive).send().await.unwrap();
    assert!(upload.status().is_success(), "upload: {}", upload.status());
    let complete = CompleteRequest {
        runner_id,
        s3_result_key: layout::task_result_key(task.run_id, task.id),
    };
    let response = client
        .post(format!("{url}/tasks/{}/complete", task.id))
        .bearer_auth(key)
        .json(&complete)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "complete: {}",
        response.status()
    );
}

#[tokio::test]
async fn a_cloud_run_applies_meta_then_both_providers_at_once_then_runs_and_destroys() {
    let stack = stack().await;
    let recorders = Recorders::new();
    recorders.set_meta_outputs(&stack.orchestrator_url, &stack.api_key);
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": ["c7i.large"], "azure": ["Standard_D2als_v6"] }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    let mut args = cloud_args(&config, &results);
    args.push("--yes");

    let master = async { recorders.run("master.fish", &args, &[]).await };
    let runner = async {
        // Play the runners once the run exists; note when that was first seen.
        let client = reqwest::Client::new();
        let mut seen = None;
        for _ in 0..600 {
            let response = client
                .get(format!("{}/run", stack.orchestrator_url))
                .bearer_auth(&stack.api_key)
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                seen = Some(unix_now());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = seen.expect("the master script started no run");
        complete_one(
            &client,
            &stack.orchestrator_url,
            &stack.runner_api_key,
            Provider::Aws,
            "c7i.large",
        )
        .await;
        complete_one(
            &client,
            &stack.orchestrator_url,
            &stack.runner_api_key,
            Provider::Azure,
            "Standard_D2als_v6",
        )
        .await;
        seen
    };
    let (output, run_seen_at) = tokio::join!(master, runner);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");

    let calls = recorders.calls();
    let terraform: Vec<&Call> = calls.iter().filter(|c| c.tool == "terraform").collect();
    // meta twice (bucket first, the orchestrator host once the images are in), then the providers.
    let meta_applies: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].is("terraform", "end", "apply", "meta"))
        .collect();
    assert_eq!(meta_applies.len(), 2, "{terraform:#?}");
    let outputs = position(&calls, |c| c.is("terraform", "call", "output", "meta"));
    assert!(
        meta_applies[0] < outputs && outputs < meta_applies[1],
        "{terraform:#?}"
    );
    let uploads: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].tool == "aws" && calls[i].argv.starts_with("s3 cp "))
        .collect();
    assert_eq!(
        uploads.len(),
        3,
        "orchestrator, postgres, runner-x86_64: {calls:#?}"
    );
    assert!(
        uploads.iter().all(|&i| outputs < i && i < meta_applies[1]),
        "{calls:#?}"
    );
    for name in [
        "orchestrator.tar.gz",
        "postgres.tar.gz",
        "runner-x86_64.tar.gz",
    ] {
        let bytes = std::fs::read(recorders.path("uploads").join(name)).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "{name} is gzip");
    }
    // The images were checked for in the preflight and built before anything was applied,
    // for the one architecture of the types; the deployed ones are saved, not the tests'.
    let check = position(&calls, |c| {
        c.tool == "cargo" && c.argv == "xtask deploy-images --check --arch x86_64"
    });
    let build = position(&calls, |c| {
        c.tool == "cargo" && c.argv == "xtask deploy-images --arch x86_64"
    });
    assert!(check < build && build < meta_applies[0], "{calls:#?}");
    for image in [
        "rcb/orchestrator:deploy-x86_64",
        "rcb/postgres:15",
        "rcb/runner:deploy-x86_64",
    ] {
        assert!(
            calls
                .iter()
                .any(|c| c.tool == "docker" && c.argv == format!("save {image}")),
            "docker save {image}: {calls:#?}"
        );
    }
    let start =
        |stack| calls[position(&calls, |c| c.is("terraform", "start", "apply", stack))].time;
    let end = |stack| calls[position(&calls, |c| c.is("terraform", "end", "apply", stack))].time;
    let meta_done = calls[meta_applies[1]].time;
    assert!(
        start("aws") >= meta_done && start("azure") >= meta_done,
        "{terraform:#?}"
    );
    assert!(
        start("aws") < end("azure") && start("azure") < end("aws"),
        "the provider applies overlap: {terraform:#?}"
    );
    // The run exists before the runners' stacks are applied: runners never find "no run yet"
    // for long (they wait for one, but only until their host's TTL).
    assert!(
        run_seen_at >= meta_done && run_seen_at < end("aws").min(end("azure")),
        "POST while the provider stacks apply: {run_seen_at} {terraform:#?}"
    );
    // azurerm 4.x gets the subscription of `az account show`.
    assert!(
        calls.iter().any(|c| c.tool == "terraform"
            && c.event == "env"
            && c.argv == "ARM_SUBSCRIPTION_ID=00000000-0000-0000-0000-000000000000"),
        "{terraform:#?}"
    );
    assert!(
        stderr.contains("ARM_SUBSCRIPTION_ID is unset: using the az CLI's subscription"),
        "{stderr}"
    );

    // The variable files carried the meta wiring and the presigned runner URL (the recorder
    // kept what each stack was applied with: the run's own files are deleted once it is
    // destroyed).
    let run_id = std::fs::read_dir(recorders.path("results"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    let run_dir = recorders.path("applied");
    assert!(
        !recorders.state_root().join(&run_id).exists(),
        "the run's state and variable files are deleted once it is destroyed: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "deleted the state and variable files of run {run_id}"
        )),
        "{stderr}"
    );
    let aws_vars: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("aws.tfvars.json")).unwrap()).unwrap();
    assert_eq!(aws_vars["meta_vpc_id"], "vpc-meta");
    assert_eq!(aws_vars["instance_types"], json!(["c7i.large"]));
    assert_eq!(aws_vars["run_id"], run_id.as_str());
    assert!(
        aws_vars["runner_image_urls"]["x86_64"]
            .as_str()
            .unwrap()
            .contains("runner-x86_64")
    );
    let azure_vars: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("azure.tfvars.json")).unwrap()).unwrap();
    assert_eq!(azure_vars["allowed_ssh_cidr"], "203.0.113.7/32");
    assert!(azure_vars.get("meta_vpc_id").is_none());
    assert_eq!(azure_vars["self_deallocate"], true);
    assert_eq!(aws_vars["bench_image_repo"], "ruby");
    // Runner hosts get the runner key, never the operator's.
    for vars in [&aws_vars, &azure_vars] {
        assert_eq!(vars["runner_api_key"], RUNNER_KEY_OUTPUT);
        assert!(vars.get("api_key").is_none(), "{vars}");
        assert!(!vars.to_string().contains(&stack.api_key), "{vars}");
    }

    // Results, then the run destroyed: providers before meta, then the sweep.
    assert!(
        recorders
            .path("results")
            .join(&run_id)
            .join("c7i.large-1")
            .is_dir(),
        "{stderr}"
    );
    let destroy = |stack| position(&calls, |c| c.is("terraform", "end", "destroy", stack));
    assert!(
        destroy("aws") < destroy("meta") && destroy("azure") < destroy("meta"),
        "{terraform:#?}"
    );
    let sweep = position(&calls, |c| {
        c.tool == "aws" && c.argv.starts_with("ec2 describe-instances")
    });
    assert!(destroy("meta") < sweep);
    assert!(
        stderr.contains(&format!("nothing of run {run_id} remains")),
        "{stderr}"
    );
    // Secrets stay out of the output; how to get them is said.
    assert!(
        !stderr.contains(&stack.api_key)
            && !stderr.contains(RUNNER_KEY_OUTPUT)
            && !stderr.contains("operator-secret"),
        "{stderr}"
    );
    assert!(stderr.contains("-raw operator_password"), "{stderr}");
    // Once the run is destroyed, nothing the master and nuke leave (state, logs, results)
    // keeps a secret, and no command they ran had one in its argv (the recorders' log).
    let secrets = [stack.api_key.as_str(), RUNNER_KEY_OUTPUT, "operator-secret"];
    for kept in ["state", "logs", "results", "calls.log"] {
        for file in files_under(&recorders.path(kept)) {
            let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
            for secret in secrets {
                assert!(
                    !text.contains(secret),
                    "{} keeps a secret: {text}",
                    file.display()
                );
            }
        }
    }
}

/// Every file under `path` (itself when it is one; none when it does not exist).
fn files_under(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    entries
        .flat_map(|entry| files_under(&entry.unwrap().path()))
        .collect()
}

#[tokio::test]
async fn a_failed_provider_apply_waits_for_the_other_then_destroys_the_run() {
    let mut recorders = Recorders::new();
    recorders.fail = "terraform:apply:azure".to_owned();
    // An orchestrator that never answers: the failed stack, not the start's 15 minutes,
    // ends the wait.
    recorders.set_meta_outputs("http://127.0.0.1:9", "key");
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 2, "aws": ["c7i.large"], "azure": ["Standard_D2als_v6"] }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    let mut args = cloud_args(&config, &results);
    args.push("--yes");
    let output = recorders.run("master.fish", &args, &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("terraform/azure failed; its log is ") && stderr.contains("/azure.log"),
        "{stderr}"
    );
    assert!(
        stderr.contains("failed: destroying what it created (--keep keeps it)"),
        "{stderr}"
    );
    let calls = recorders.calls();
    let aws_applied = position(&calls, |c| c.is("terraform", "end", "apply", "aws"));
    let destroy = |stack| position(&calls, |c| c.is("terraform", "end", "destroy", stack));
    // aws finished applying before anything was destroyed; azure, which has no state, is not
    // destroyed, and what was destroyed is said.
    assert!(aws_applied < destroy("aws") && destroy("aws") < destroy("meta"));
    assert!(
        !calls
            .iter()
            .any(|c| c.is("terraform", "end", "destroy", "azure"))
    );
    assert!(
        stderr.contains("terraform destroy of terraform/aws") && stderr.contains("nothing of run "),
        "{stderr}"
    );
    assert!(!recorders.path("results").exists());
}

#[tokio::test]
async fn with_keep_a_failed_provider_apply_destroys_nothing_and_gives_the_nuke_command() {
    let mut recorders = Recorders::new();
    recorders.fail = "terraform:apply:azure".to_owned();
    recorders.set_meta_outputs("http://127.0.0.1:9", "key");
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 2, "aws": ["c7i.large"], "azure": ["Standard_D2als_v6"] }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    let mut args = cloud_args(&config, &results);
    args.extend(["--yes", "--keep"]);
    let output = recorders.run("master.fish", &args, &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("terraform/azure failed; its log is ") && stderr.contains("/azure.log"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing was destroyed; run fish/nuke.fish --run-id "),
        "{stderr}"
    );
    let calls = recorders.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.is("terraform", "end", "apply", "aws")),
        "aws was waited for: {calls:#?}"
    );
    assert!(
        !calls.iter().any(|c| c.subcommand() == "destroy"),
        "{calls:#?}"
    );
    assert!(!recorders.path("results").exists());
}

#[tokio::test]
async fn at_its_deadline_a_cloud_run_is_ended_early_collected_and_destroyed() {
    let stack = stack().await;
    let recorders = Recorders::new();
    recorders.set_meta_outputs(&stack.orchestrator_url, &stack.api_key);
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": ["c7i.large"] }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    // With a domain whose name (here: the local stack's address) leads to the orchestrator.
    recorders.set_meta_output("orchestrator_public_ip", "127.0.0.1");
    // No runner ever claims: the deadline (7.2 s after the start) ends the run.
    let mut args = cloud_args(&config, &results);
    args.extend([
        "--yes",
        "--max-hours",
        "0.002",
        "--domain",
        "orchestrator.example.test",
        "--bench-image-repo",
        "public.ecr.aws/docker/library/ruby",
    ]);
    let output = recorders.run("master.fish", &args, &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let aws_vars: Value =
        serde_json::from_slice(&std::fs::read(recorders.path("applied/aws.tfvars.json")).unwrap())
            .unwrap();
    assert_eq!(
        aws_vars["bench_image_repo"], "public.ecr.aws/docker/library/ruby",
        "the mirror reaches the runners"
    );
    let record = stderr
        .find("create this DNS record now: orchestrator.example.test A 127.0.0.1")
        .expect(&stderr);
    let healthy = stderr
        .find("answers with the orchestrator's health")
        .expect(&stderr);
    let runners = stderr.find("terraform/aws: runners").expect(&stderr);
    assert!(record < healthy && healthy < runners, "{stderr}");
    assert!(
        stderr.contains("the run's deadline") && stderr.contains("ending run "),
        "{stderr}"
    );
    assert!(stderr.contains("the run was ended early at"), "{stderr}");
    let calls = recorders.calls();
    let destroy = |stack| position(&calls, |c| c.is("terraform", "end", "destroy", stack));
    assert!(destroy("aws") < destroy("meta"), "{calls:#?}");
    assert!(stderr.contains("nothing of run "), "{stderr}");
    // What completed (nothing here: the stop dropped the pending task) was collected.
    assert!(
        stderr.contains("0 completed, 0 failed") && recorders.path("results").is_dir(),
        "{stderr}"
    );
    let collected = stderr.find("results of run ").unwrap();
    assert!(collected < stderr.find("destroying the infrastructure").unwrap());
}

#[tokio::test]
async fn a_domain_that_never_leads_to_the_orchestrator_creates_no_runner_and_is_destroyed() {
    let recorders = Recorders::new();
    recorders.set_meta_outputs("http://orchestrator.example.invalid", "key");
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": ["c7i.large"] }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    let mut args = cloud_args(&config, &results);
    args.extend([
        "--yes",
        "--domain",
        "orchestrator.example.invalid",
        "--dns-wait-mins",
        "0.05",
    ]);
    let output = recorders.run("master.fish", &args, &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("create this DNS record now: orchestrator.example.invalid A 203.0.113.8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("orchestrator.example.invalid does not resolve yet; 0 min left"),
        "{stderr}"
    );
    assert!(
        stderr.contains("did not lead to the orchestrator within 0.1 min"),
        "{stderr}"
    );
    let calls = recorders.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.is("terraform", "start", "apply", "aws")),
        "no runner before the name works: {calls:#?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.is("terraform", "end", "destroy", "meta")),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn ctrl_c_during_the_dns_wait_destroys_the_run() {
    let recorders = Recorders::new();
    recorders.set_meta_outputs("http://orchestrator.example.invalid", "key");
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": ["c7i.large"] }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    let mut args = cloud_args(&config, &results);
    args.extend(["--yes", "--domain", "orchestrator.example.invalid"]);
    let master = recorders.spawn("master.fish", &args);
    // Once meta is applied twice the wait has begun: Ctrl-C a moment later.
    for _ in 0..200 {
        let applied = recorders
            .calls()
            .iter()
            .filter(|c| c.is("terraform", "end", "apply", "meta"))
            .count();
        if applied == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = master.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = tokio::time::timeout(Duration::from_secs(60), master.wait_with_output())
        .await
        .expect("the master script ends on Ctrl-C")
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("does not resolve yet") && stderr.contains("interrupted before run "),
        "{stderr}"
    );
    let calls = recorders.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.is("terraform", "end", "destroy", "meta")),
        "{calls:#?}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| c.is("terraform", "start", "apply", "aws"))
    );
}

#[tokio::test]
async fn resume_of_a_cloud_run_finds_its_state_follows_it_and_destroys_it() {
    let stack = stack().await;
    let recorders = Recorders::new();
    recorders.set_meta_outputs(&stack.orchestrator_url, &stack.api_key);
    write_run_state(&recorders, "4242");
    let run_config =
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": ["c7i.large"] });
    let config = write_config(recorders.dir.path(), run_config.clone());
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    // The run a master script started before it was cut off.
    let client = reqwest::Client::new();
    let mut body = run_config;
    body["run_id"] = json!(4242);
    let started = client
        .post(format!("{}/run/start", stack.orchestrator_url))
        .bearer_auth(&stack.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201);

    let args = [
        "--config",
        &config,
        "--results-dir",
        &results,
        "--resume",
        "--poll-secs",
        "1",
    ];
    let master = recorders.run("master.fish", &args, &[]);
    let runner = complete_one(
        &client,
        &stack.orchestrator_url,
        &stack.runner_api_key,
        Provider::Aws,
        "c7i.large",
    );
    let (output, ()) = tokio::join!(master, runner);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("resuming cloud run 4242"), "{stderr}");
    assert!(
        recorders.path("results").join("4242/c7i.large-1").is_dir(),
        "{stderr}"
    );
    let calls = recorders.calls();
    assert!(
        !calls.iter().any(|c| c.subcommand() == "apply"),
        "{calls:#?}"
    );
    let destroy = |stack| position(&calls, |c| c.is("terraform", "end", "destroy", stack));
    assert!(destroy("aws") < destroy("meta") && destroy("azure") < destroy("meta"));
    assert!(stderr.contains("nothing of run 4242 remains"), "{stderr}");
}

#[tokio::test]
async fn before_applying_it_checks_architectures_prices_and_consent() {
    let recorders = Recorders::new();
    recorders.set_meta_outputs("http://127.0.0.1:9", "key");
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 3, "aws": ["c7g.medium", "c7i.large"], "azure": ["Standard_D2als_v6"] }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    let prices = recorders.path("prices.csv");
    std::fs::write(
        &prices,
        "provider,instance_type,region,usd_per_hour\naws,c7g.medium,eu-west-1,0.04\naws,c7i.large,us-east-1,0.10\nazure,Standard_D2als_v6,eastus2,0.08\n",
    )
    .unwrap();
    let prices = prices.display().to_string();
    let applied = |recorders: &Recorders| recorders.calls().iter().any(|c| c.tool == "terraform");

    // Graviton and an Intel type: the preflight asks this machine whether it can build a
    // runner image for each architecture (AWS named them), before anything is created; a
    // machine that cannot is refused with what the check printed.
    let output = recorders
        .run(
            "master.fish",
            &cloud_args(&config, &results),
            &[("RCB_RECORDER_FAIL", "cargo:deploy-images:--check")],
        )
        .await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("this machine cannot build the images of this run (nothing was created)")
            && stderr.contains("failing deploy-images --check as told"),
        "{stderr}"
    );
    let cargo: Vec<String> = recorders
        .calls()
        .into_iter()
        .filter(|c| c.tool == "cargo" && c.event == "call")
        .map(|c| c.argv)
        .collect();
    assert_eq!(
        cargo,
        ["xtask deploy-images --check --arch arm64 --arch x86_64"]
    );
    assert!(!applied(&recorders));

    // A machine that can: the estimate, and no confirmation without a terminal, so nothing
    // is built either.
    std::fs::remove_file(recorders.path("calls.log")).unwrap();
    let output = recorders
        .run("master.fish", &cloud_args(&config, &results), &[])
        .await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("confirm on a terminal, or pass --yes"),
        "{stderr}"
    );
    assert!(stderr.contains(", arm64, eu-west-1)"), "{stderr}");
    let cargo: Vec<String> = recorders
        .calls()
        .into_iter()
        .filter(|c| c.tool == "cargo" && c.event == "call")
        .map(|c| c.argv)
        .collect();
    assert_eq!(
        cargo,
        ["xtask deploy-images --check --arch arm64 --arch x86_64"]
    );
    assert!(!applied(&recorders));

    // With --no-image-build the images built before are checked instead: an arm64 runner image
    // that is not there is a refusal that says how to build it.
    recorders.set_world(json!({ "docker missing": ["rcb/runner:deploy-arm64"] }));
    let mut args = cloud_args(&config, &results);
    args.push("--no-image-build");
    let output = recorders.run("master.fish", &args, &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no local image rcb/runner:deploy-arm64")
            && stderr.contains("cargo xtask deploy-images --arch arm64 --arch x86_64"),
        "{stderr}"
    );
    assert!(!applied(&recorders));

    // With a tarball for arm64: the estimate, and no confirmation without a terminal.
    let tarball = recorders.path("runner-arm64.tar.gz");
    std::fs::write(&tarball, b"\x1f\x8b fake").unwrap();
    let tarball = format!("arm64={}", tarball.display());
    let mut args = cloud_args(&config, &results);
    args.extend([
        "--runner-tarball",
        &tarball,
        "--prices",
        &prices,
        "--max-hours",
        "2",
    ]);
    let output = recorders.run("master.fish", &args, &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // The tarball stands in for the arm64 image: only x86_64 is to be built here.
    let last_cargo = recorders
        .calls()
        .into_iter()
        .rfind(|c| c.tool == "cargo")
        .map(|c| c.argv);
    assert_eq!(
        last_cargo.as_deref(),
        Some("xtask deploy-images --check --arch x86_64")
    );
    // c7g.medium: 3 instances × 0.04 × 2 h; c7i.large: 2 × 0.10 (us-east-1, the only row) × 2;
    // Standard_D2als_v6: 2 × 0.08 × 2.
    assert!(
        stderr.contains("3 × $0.04/h (eu-west-1) × 2 h = $0.24"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 × $0.10/h (us-east-1) × 2 h = $0.40"),
        "{stderr}"
    );
    assert!(
        stderr.contains("estimate: at most $0.96 for 2 h"),
        "{stderr}"
    );
    assert!(
        stderr.contains("confirm on a terminal, or pass --yes"),
        "{stderr}"
    );
    assert!(!applied(&recorders));
    assert!(!recorders.state_root().exists());

    // A prices.csv as prices.fish records it (and the site ships it): comments, and columns
    // after usd_per_hour, are read past.
    let recorded = recorders.path("recorded-prices.csv");
    std::fs::write(
        &recorded,
        "# recorded at deploy\nprovider,instance_type,region,usd_per_hour,currency,source,as_of\n\
         aws,c7g.medium,eu-west-1,0.04,USD,AWS Price List API,2026-11-30\n\
         aws,c7i.large,us-east-1,0.10,USD,AWS Price List API,2026-11-30\n\
         azure,Standard_D2als_v6,eastus2,0.08,USD,Azure Retail Prices API,2026-11-30\n",
    )
    .unwrap();
    let recorded = recorded.display().to_string();
    let prices_at = args.iter().position(|arg| *arg == prices).unwrap();
    args[prices_at] = &recorded;
    let output = recorders.run("master.fish", &args, &[]).await;
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("estimate: at most $0.96 for 2 h"),
        "{stderr}"
    );
    assert!(!applied(&recorders));
}

#[tokio::test]
async fn preflight_refuses_each_capacity_gap_before_anything_is_created() {
    let recorders = Recorders::new();
    recorders.set_meta_outputs("http://127.0.0.1:9", "key");
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 3, "aws": ["c7i.large"], "azure": ["Standard_D2als_v6"] }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    let refusal = |world: Value, extra: &'static [&'static str]| {
        let recorders = &recorders;
        let args = cloud_args(&config, &results);
        async move {
            recorders.set_world(world);
            let mut args = args;
            args.extend(extra);
            let output = recorders.run("master.fish", &args, &[]).await;
            let stderr = stderr_of(&output);
            assert_eq!(output.status.code(), Some(1), "{stderr}");
            assert!(
                !recorders.calls().iter().any(|c| c.tool == "terraform"),
                "nothing applied: {stderr}"
            );
            stderr
        }
    };

    // AWS: c7i.large needs 2 instances × 2 vCPUs, the orchestrator and bastion 4 each (as
    // the recorder describes t3 sizes): 12 against a quota of 8.
    let stderr = refusal(
        json!({ "service-quotas get-service-quota": { "Quota": { "Value": 8.0 } } }),
        &[],
    )
    .await;
    assert!(
        stderr.contains(
            "this run needs 12 on-demand Standard (A, C, D, H, I, M, R, T, Z) vCPUs in eu-west-1"
        ) && stderr.contains("quota (L-1216C47A) is 8")
            && stderr.contains("request-service-quota-increase"),
        "{stderr}"
    );
    let stderr = refusal(
        json!({ "ec2 describe-instance-type-offerings": { "InstanceTypeOfferings": [
            { "InstanceType": "t3.small" }, { "InstanceType": "t3.micro" }] } }),
        &[],
    )
    .await;
    assert!(
        stderr.contains("c7i.large is not offered in any zone of eu-west-1"),
        "{stderr}"
    );

    // Azure: a size restricted for the subscription, a family quota, the regional quota.
    let stderr = refusal(
        json!({ "az vm list-skus Standard_D2als_v6": [{ "name": "Standard_D2als_v6", "family": "standardDalsv6Family",
            "capabilities": [{ "name": "vCPUs", "value": "2" }],
            "restrictions": [{ "type": "Location", "reasonCode": "NotAvailableForSubscription" }] }] }),
        &[],
    )
    .await;
    assert!(
        stderr.contains("Standard_D2als_v6 is restricted for this subscription in eastus2 (NotAvailableForSubscription)"),
        "{stderr}"
    );
    let stderr = refusal(
        json!({ "az vm list-usage": [
            { "name": { "value": "cores" }, "currentValue": 0, "limit": 100 },
            { "name": { "value": "standardDFamily" }, "currentValue": 2, "limit": 5 }] }),
        &[],
    )
    .await;
    // Standard_D2als_v6: 2 VMs × 2 vCPUs.
    assert!(
        stderr.contains("this run needs 4 vCPUs of the standardDFamily family in eastus2, and only 3 of 5 are free (2 in use)"),
        "{stderr}"
    );
    let stderr = refusal(
        json!({ "az vm list-usage": [{ "name": { "value": "cores" }, "currentValue": 4, "limit": 6 }] }),
        &[],
    )
    .await;
    assert!(
        stderr.contains("this run needs 6 vCPUs of the region (Total Regional vCPUs) in eastus2, and only 2 of 6 are free"),
        "{stderr}"
    );

    // No right to create the run's Key Vault (Contributor has it): refused, naming what lacks.
    let no_vault = json!({ "az rest": { "value": [{ "actions": ["*"], "notActions": ["Microsoft.KeyVault/*"] }] } });
    let stderr = refusal(no_vault, &["--no-self-deallocate"]).await;
    assert!(
        stderr.contains("may not create the run's Key Vault and the runners' identity")
            && stderr.contains(
                "(Microsoft.KeyVault/vaults/write, Microsoft.KeyVault/locations/deletedVaults/purge/action)"
            )
            && stderr.contains("get Contributor"),
        "{stderr}"
    );
    // No right to create the role and its assignments: refused, with the flag that does without.
    let no_rights = json!({ "az rest": { "value": [{ "actions": [
        "Microsoft.Compute/*", "Microsoft.Network/*", "Microsoft.KeyVault/*", "Microsoft.ManagedIdentity/*",
    ], "notActions": [] }] } });
    let stderr = refusal(no_rights.clone(), &[]).await;
    assert!(
        stderr.contains(
            "may not create role definitions and assignments (Microsoft.Authorization/roleDefinitions/write and roleAssignments/write)"
        ) && stderr.contains("--no-self-deallocate"),
        "{stderr}"
    );
    // With the flag: a warning of what it costs, and on to the confirmation.
    let stderr = refusal(no_rights, &["--no-self-deallocate"]).await;
    assert!(
        stderr.contains("--no-self-deallocate: Azure runner VMs cannot deallocate themselves")
            && stderr.contains("stays allocated, and billed")
            && stderr.contains("confirm on a terminal, or pass --yes"),
        "{stderr}"
    );
    assert!(!recorders.state_root().exists());
}

/// Claims a task as the runner `runner_id` (a host name plus "-<slot>") and fails it with an
/// error archive whose meta.json names that runner.
async fn fail_one(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    instance_type: &str,
    runner_id: &str,
) {
    let claim = ClaimRequest {
        provider: Provider::Aws,
        instance_type: instance_type.to_owned(),
        runner_id: runner_id.to_owned(),
    };
    let response = client
        .post(format!("{url}/tasks/claim"))
        .bearer_auth(key)
        .json(&claim)
        .send()
        .await
        .unwrap();
    let (task, urls) = match response.json::<ClaimResponse>().await.unwrap() {
        ClaimResponse::Assigned {
            task,
            presigned_urls,
        } => (task, presigned_urls),
        other => panic!("expected a task of {instance_type}, got {other:?}"),
    };
    let error = json!({
        "error_type": ErrorType::RubyBenchFailed,
        "error_message": "no report",
    })
    .to_string();
    let meta = json!({ "runner_id": runner_id }).to_string();
    let archive = archive::pack(
        &[
            (layout::ERROR_JSON, error.as_bytes()),
            (layout::META_JSON, meta.as_bytes()),
        ],
        1_733_945_123,
    );
    let upload = client.put(&urls.error).body(archive).send().await.unwrap();
    assert!(upload.status().is_success(), "upload: {}", upload.status());
    let fail = FailRequest {
        runner_id: runner_id.to_owned(),
        error_type: ErrorType::RubyBenchFailed.to_string(),
        error_message: "no report".to_owned(),
        s3_error_key: Some(layout::task_error_key(task.run_id, task.id)),
        debug_mode: Some(true),
    };
    let response = client
        .post(format!("{url}/tasks/{}/fail", task.id))
        .bearer_auth(key)
        .json(&fail)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "fail: {}",
        response.status()
    );
}

#[tokio::test]
async fn debug_mode_keeps_only_the_hosts_of_failed_tasks() {
    let stack = stack().await;
    let recorders = Recorders::new();
    recorders.set_meta_outputs(&stack.orchestrator_url, &stack.api_key);
    // What the applies leave: two runner hosts, and the orchestrator host.
    let runner = |key: &str| json!({ "index_key": key, "attributes": { "tags": { "Name": format!("rcb-@RUN_ID@-{key}") } } });
    let aws_state = json!({ "version": 4, "resources": [{ "mode": "managed", "type": "aws_instance", "name": "runner",
        "instances": [runner("c7i.large-0"), runner("c7i.large-1")] }] });
    std::fs::write(recorders.path("aws-state.json"), aws_state.to_string()).unwrap();
    let meta_state = json!({ "version": 4, "resources": [{ "mode": "managed", "type": "aws_instance", "name": "orchestrator",
        "instances": [{ "index_key": 0, "attributes": {} }] }] });
    std::fs::write(recorders.path("meta-state.json"), meta_state.to_string()).unwrap();
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 2, "aws": ["c7i.large"], "debug_mode": true }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    let mut args = cloud_args(&config, &results);
    args.push("--yes");

    let master = recorders.run("master.fish", &args, &[]);
    let runners = async {
        let client = reqwest::Client::new();
        let run_id = loop {
            let response = client
                .get(format!("{}/run", stack.orchestrator_url))
                .bearer_auth(&stack.api_key)
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                break response.json::<Value>().await.unwrap()["run_id"].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        complete_one(
            &client,
            &stack.orchestrator_url,
            &stack.runner_api_key,
            Provider::Aws,
            "c7i.large",
        )
        .await;
        let failed_runner = format!("rcb-{run_id}-c7i.large-1-0");
        fail_one(
            &client,
            &stack.orchestrator_url,
            &stack.runner_api_key,
            "c7i.large",
            &failed_runner,
        )
        .await;
        run_id
    };
    let (output, run_id) = tokio::join!(master, runners);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "a task failed: {stderr}");
    let calls = recorders.calls();
    let destroys: Vec<&Call> = calls
        .iter()
        .filter(|c| c.tool == "terraform" && c.event == "end" && c.subcommand() == "destroy")
        .collect();
    assert_eq!(destroys.len(), 2, "{destroys:#?}");
    let aws = destroys
        .iter()
        .find(|c| c.stack() == "aws")
        .expect("the other runner goes");
    assert!(
        aws.argv
            .contains(r#"-target=aws_instance.runner["c7i.large-0"]"#)
            && !aws.argv.contains("c7i.large-1"),
        "{aws:#?}"
    );
    let meta = destroys
        .iter()
        .find(|c| c.stack() == "meta")
        .expect("the orchestrator goes");
    assert!(
        meta.argv.ends_with("-target=aws_instance.orchestrator"),
        "{meta:#?}"
    );
    assert!(
        stderr.contains(&format!(
            "debug mode: kept up for inspection: rcb-{run_id}-c7i.large-1;"
        )),
        "{stderr}"
    );
    assert!(
        recorders
            .state_root()
            .join(run_id.to_string())
            .join("aws.tfstate")
            .exists(),
        "the run stays known to nuke"
    );
}

/// State of a finished run as the master script leaves it: meta, aws and azure.
fn write_run_state(recorders: &Recorders, run_id: &str) {
    let dir = recorders.state_root().join(run_id);
    std::fs::create_dir_all(&dir).unwrap();
    // The run's SSH key, which meta wrote and names in its outputs.
    let key = recorders.path(&format!("rcb-{run_id}-key"));
    std::fs::write(&key, "-----BEGIN RSA PRIVATE KEY-----").unwrap();
    for (stack, region) in [
        ("meta", "eu-west-1"),
        ("aws", "eu-central-1"),
        ("azure", "eastus2"),
    ] {
        let state = json!({
            "version": 4,
            "resources": [
                { "mode": "data", "type": "aws_ami", "name": "ubuntu", "instances": [{}] },
                { "mode": "managed", "type": format!("{stack}_host"), "name": "runner", "instances": [{}, {}] },
            ],
            "outputs": if stack == "meta" {
                json!({ "ssh_private_key_path": { "value": key }, "orchestrator_public_ip": { "value": "203.0.113.8" } })
            } else {
                json!({})
            },
        });
        std::fs::write(dir.join(format!("{stack}.tfstate")), state.to_string()).unwrap();
        std::fs::write(
            dir.join(format!("{stack}.tfstate.backup")),
            state.to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{stack}.tfvars.json")),
            json!({ "run_id": run_id, "region": region, "route53_zone_id": "Z0RCB", "domain": "bench.example.com" }).to_string(),
        )
        .unwrap();
    }
}

fn tags(run_id: &str) -> Value {
    json!([{ "Key": "Project", "Value": "ruby-cross-cloud-bench" }, { "Key": "RunId", "Value": run_id }])
}

/// What the clouds hold: run 7's leftovers, one of run 8's, and things that are not ours.
fn leftovers() -> Value {
    json!({
        "ec2 describe-instances": { "Reservations": [{ "ReservationId": "r-1", "Instances": [
            { "InstanceId": "i-run7", "State": { "Name": "running" }, "Tags": tags("7") },
            { "InstanceId": "i-run8", "State": { "Name": "running" }, "Tags": tags("8") },
            { "InstanceId": "i-untagged", "State": { "Name": "running" }, "Tags": [{ "Key": "Name", "Value": "prod" }] },
        ]}]},
        "ec2 describe-nat-gateways": { "NatGateways": [{ "NatGatewayId": "nat-run7", "State": "available", "Tags": tags("7") }] },
        "ec2 describe-addresses": { "Addresses": [{ "AllocationId": "eipalloc-run7", "Tags": tags("7") }] },
        "ec2 describe-vpc-peering-connections": { "VpcPeeringConnections": [
            { "VpcPeeringConnectionId": "pcx-run7", "Status": { "Code": "active" }, "Tags": tags("7") }] },
        "ec2 describe-network-interfaces": { "NetworkInterfaces": [
            { "NetworkInterfaceId": "eni-run7", "VpcId": "vpc-run7", "Status": "available" },
            { "NetworkInterfaceId": "eni-elsewhere", "VpcId": "vpc-prod", "Status": "available" }] },
        "ec2 describe-security-groups": { "SecurityGroups": [
            { "GroupId": "sg-run7", "GroupName": "rcb-7-runners", "Tags": tags("7") },
            { "GroupId": "sg-default", "GroupName": "default", "Tags": tags("7") }] },
        "ec2 describe-subnets": { "Subnets": [{ "SubnetId": "subnet-run7", "Tags": tags("7") }] },
        "ec2 describe-route-tables": { "RouteTables": [{ "RouteTableId": "rtb-run7", "Associations": [
            { "RouteTableAssociationId": "rtbassoc-run7", "SubnetId": "subnet-untagged", "Main": false }], "Tags": tags("7") }] },
        "ec2 describe-internet-gateways": { "InternetGateways": [{ "InternetGatewayId": "igw-run7", "Attachments": [], "Tags": tags("7") }] },
        "ec2 describe-vpcs": { "Vpcs": [{ "VpcId": "vpc-run7", "Tags": tags("7") }, { "VpcId": "vpc-prod" }] },
        "ec2 describe-volumes": { "Volumes": [] },
        "ec2 describe-key-pairs": { "KeyPairs": [{ "KeyName": "rcb-7", "Tags": tags("7") }] },
        "s3api list-buckets": { "Buckets": [{ "Name": "rcb-7-results-ab" }, { "Name": "rcb-8-results-cd" }, { "Name": "rcb-lookalike" }] },
        "s3api get-bucket-tagging rcb-7-results-ab": { "TagSet": tags("7") },
        "s3api get-bucket-tagging rcb-8-results-cd": { "TagSet": tags("8") },
        "iam list-roles": { "Roles": [{ "RoleName": "rcb-7-orchestrator" }] },
        "iam list-role-tags rcb-7-orchestrator": { "Tags": tags("7") },
        "iam list-instance-profiles": { "InstanceProfiles": [{ "InstanceProfileName": "rcb-7-orchestrator-profile" }] },
        "iam get-instance-profile rcb-7-orchestrator-profile": {
            "InstanceProfile": { "InstanceProfileName": "rcb-7-orchestrator-profile", "Roles": [], "Tags": tags("7") } },
        "route53 list-resource-record-sets": { "ResourceRecordSets": [
            { "Name": "bench.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{ "Value": "203.0.113.8" }] }] },
        "ssm describe-parameters": { "Parameters": [{ "Name": "/rcb/7/orchestrator.env", "Type": "SecureString" }] },
        "az keyvault list-deleted": [
            { "name": "rcb-7-ab12c", "properties": { "location": "eastus2", "tags": { "Project": "ruby-cross-cloud-bench", "RunId": "7" } } },
            { "name": "rcb-8-cd34e", "properties": { "location": "eastus2", "tags": { "Project": "ruby-cross-cloud-bench", "RunId": "8" } } }],
        "az group list": [
            { "name": "rcb-7", "tags": { "Project": "ruby-cross-cloud-bench", "RunId": "7" } },
            { "name": "rcb-8", "tags": { "Project": "ruby-cross-cloud-bench", "RunId": "8" } },
            { "name": "prod", "tags": {} }],
        "docker ps": ["c-local-stack"],
    })
}

/// The ids `aws`/`az`/`docker` were asked to delete, in order.
fn deletions(calls: &[Call]) -> Vec<String> {
    let id_flags = [
        "--instance-ids",
        "--nat-gateway-id",
        "--allocation-id",
        "--vpc-peering-connection-id",
        "--network-interface-id",
        "--group-id",
        "--subnet-id",
        "--route-table-id",
        "--internet-gateway-id",
        "--vpc-id",
        "--key-name",
        "--bucket",
        "--instance-profile-name",
        "--role-name",
        "--name",
    ];
    calls
        .iter()
        .filter(|c| c.event == "call")
        .filter(|c| {
            let op = c.argv.split(' ').nth(1).unwrap_or("");
            ["terminate-", "delete-", "release-"]
                .iter()
                .any(|p| op.starts_with(p))
                && op != "delete-role-policy"
                || (c.tool == "docker" && c.argv.starts_with("rm "))
                || (c.tool == "az" && c.argv.starts_with("group delete "))
                || (c.tool == "az" && c.argv.starts_with("keyvault purge "))
        })
        .map(|c| {
            let words: Vec<&str> = c.argv.split(' ').collect();
            if c.tool == "docker" {
                return words.last().unwrap().to_string();
            }
            let at = words.iter().position(|w| id_flags.contains(w)).unwrap();
            words[at + 1].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn nuke_destroys_providers_then_meta_then_sweeps_the_runs_tagged_leftovers() {
    let recorders = Recorders::new();
    write_run_state(&recorders, "7");
    recorders.set_world(leftovers());

    // --dry-run lists and changes nothing.
    let output = recorders
        .run("nuke.fish", &["--run-id", "7", "--dry-run"], &[])
        .await;
    let stderr = stderr_of(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "something was found: {stderr}"
    );
    assert!(
        stderr.contains("would delete instance i-run7 in eu-central-1")
            && stderr.contains("would delete bucket rcb-7-results-ab"),
        "{stderr}"
    );
    assert!(
        stderr.contains("would run terraform destroy of terraform/meta for run 7"),
        "{stderr}"
    );
    assert_eq!(recorders.world(), leftovers());
    assert!(deletions(&recorders.calls()).is_empty());
    assert!(!recorders.calls().iter().any(|c| c.tool == "terraform"));

    let output = recorders.run("nuke.fish", &["--run-id", "7"], &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let calls = recorders.calls();
    let destroy = |stack| position(&calls, |c| c.is("terraform", "end", "destroy", stack));
    assert!(destroy("aws") < destroy("meta") && destroy("azure") < destroy("meta"));
    let first_sweep = position(&calls, |c| {
        c.tool == "aws"
            && c.argv.starts_with("ec2 describe-instances")
            && c.time > calls[destroy("meta")].time
    });
    assert!(destroy("meta") < first_sweep);
    // Both regions of the run (meta's and the runners'), once each kind; the order follows
    // the dependencies; only run 7's tagged resources.
    let deleted = deletions(&calls);
    let per_region = [
        "i-run7",
        "nat-run7",
        "eipalloc-run7",
        "pcx-run7",
        "eni-run7",
        "sg-run7",
        "subnet-run7",
        "rtb-run7",
        "igw-run7",
        "vpc-run7",
        "rcb-7",
        "/rcb/7/orchestrator.env",
    ];
    let mut expected: Vec<&str> = per_region.to_vec();
    expected.extend([
        "rcb-7-results-ab",
        "rcb-7-orchestrator-profile",
        "rcb-7-orchestrator",
        "rcb-7",
        "rcb-7-ab12c",
    ]);
    assert_eq!(deleted, expected, "{calls:#?}");
    for region in ["eu-central-1", "eu-west-1"] {
        assert!(calls.iter().any(|c| c.argv.starts_with("ec2 describe-vpcs")
            && c.argv.contains(&format!("--region {region}"))));
    }
    assert!(
        !calls
            .iter()
            .any(|c| c.tool == "docker" || c.tool == "cargo"),
        "a run's nuke leaves local Docker alone"
    );
    assert!(stderr.contains("nothing of run 7 remains"), "{stderr}");
    // What each destroy takes is said; route tables are disassociated before their deletion.
    assert!(
        stderr.contains("destroying: aws_host.runner ×2") && !stderr.contains("aws_ami"),
        "{stderr}"
    );
    let disassociated = position(&calls, |c| {
        c.argv
            .starts_with("ec2 disassociate-route-table --association-id rtbassoc-run7")
    });
    let route_table_deleted = position(&calls, |c| {
        c.argv
            .starts_with("ec2 delete-route-table --route-table-id rtb-run7")
    });
    assert!(disassociated < route_table_deleted, "{calls:#?}");
    // The run's DNS record, left behind, went too.
    assert!(
        calls.iter().any(|c| c
            .argv
            .starts_with("route53 change-resource-record-sets --hosted-zone-id Z0RCB")),
        "{calls:#?}"
    );
    assert!(!recorders.world().to_string().contains("bench.example.com"));
    // Fully destroyed: the run's state, variables, backups and SSH key are gone.
    assert!(!recorders.state_root().join("7").exists());
    assert!(!recorders.path("rcb-7-key").exists());
    assert!(
        stderr.contains("deleted the state and variable files of run 7"),
        "{stderr}"
    );
    let world = recorders.world().to_string();
    for untouched in [
        "i-run8",
        "i-untagged",
        "eni-elsewhere",
        "vpc-prod",
        "rcb-8-results-cd",
        "rcb-lookalike",
        "\"prod\"",
        "sg-default",
        "rcb-8-cd34e",
    ] {
        assert!(world.contains(untouched), "{untouched} must stay: {world}");
    }

    // A second nuke finds nothing and says so.
    let before = recorders.calls().len();
    let output = recorders.run("nuke.fish", &["--run-id", "7"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(deletions(&recorders.calls()[before..]).is_empty());
}

#[tokio::test]
async fn nuke_goes_on_past_a_failing_destroy_and_a_failing_delete_and_reports_what_remains() {
    let mut recorders = Recorders::new();
    write_run_state(&recorders, "7");
    recorders.set_world(leftovers());
    recorders.fail = "terraform:destroy:aws aws:ec2:delete-subnet".to_owned();

    let output = recorders.run("nuke.fish", &["--run-id", "7"], &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("FAILED: terraform destroy of terraform/aws for run 7")
            && stderr.contains("nuke-aws.log"),
        "{stderr}"
    );
    assert!(
        stderr.contains("FAILED: deleting subnet subnet-run7 in eu-central-1"),
        "{stderr}"
    );
    let calls = recorders.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.is("terraform", "end", "destroy", "meta")),
        "meta destroyed after the failure"
    );
    let deleted = deletions(&calls);
    assert!(
        deleted.contains(&"vpc-run7".to_owned())
            && deleted.contains(&"rcb-7-results-ab".to_owned()),
        "{deleted:?}"
    );
    assert!(
        stderr.contains("what remains of run 7:")
            && stderr.contains("eu-central-1 subnet subnet-run7"),
        "{stderr}"
    );

    // Once the clouds stop refusing, a second nuke finishes the job.
    recorders.fail = String::new();
    let output = recorders.run("nuke.fish", &["--run-id", "7"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
}

#[tokio::test]
async fn nuke_reports_what_it_could_not_check_and_keeps_the_runs_files() {
    let mut recorders = Recorders::new();
    write_run_state(&recorders, "7");
    let mut world = leftovers();
    world["s3api list-buckets"]["Buckets"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "Name": "rcb-7-unreadable" }));
    recorders.set_world(world);
    recorders.fail = "aws:s3api:get-bucket-tagging:rcb-7-unreadable".to_owned();

    let output = recorders
        .run("nuke.fish", &["--run-id", "7", "--dry-run"], &[])
        .await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("could not check bucket rcb-7-unreadable: its tags could not be read"),
        "{stderr}"
    );

    let output = recorders.run("nuke.fish", &["--run-id", "7"], &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("could not check whether these are of run 7")
            && stderr.contains("  bucket rcb-7-unreadable (its tags could not be read"),
        "{stderr}"
    );
    assert!(
        !deletions(&recorders.calls()).contains(&"rcb-7-unreadable".to_owned()),
        "never deleted unseen"
    );
    assert!(
        stderr.contains("1 could not be checked") && !stderr.contains("nothing of run 7 remains"),
        "{stderr}"
    );
    assert!(recorders.state_root().join("7/meta.tfvars.json").exists());
}

#[tokio::test]
async fn nuke_without_a_run_id_asks_first_then_takes_every_run_and_local_docker() {
    let recorders = Recorders::new();
    write_run_state(&recorders, "7");
    recorders.set_world(leftovers());

    let output = recorders.run("nuke.fish", &[], &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("confirm on a terminal, or pass --yes"),
        "{stderr}"
    );
    assert!(recorders.calls().is_empty(), "nothing was even listed");

    let output = recorders.run("nuke.fish", &["--yes"], &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let calls = recorders.calls();
    let deleted: BTreeMap<String, ()> = deletions(&calls).into_iter().map(|id| (id, ())).collect();
    for id in [
        "i-run7",
        "i-run8",
        "rcb-8-results-cd",
        "rcb-8",
        "c-local-stack",
    ] {
        assert!(deleted.contains_key(id), "{id}: {deleted:?}");
    }
    for id in ["i-untagged", "rcb-lookalike", "prod"] {
        assert!(!deleted.contains_key(id), "{id}: {deleted:?}");
    }
    assert!(
        calls
            .iter()
            .any(|c| c.tool == "cargo" && c.argv == "xtask local down"),
        "{calls:#?}"
    );
    assert!(
        stderr.contains("nothing of every run of the project remains"),
        "{stderr}"
    );
}

/// The recorders are shell scripts: they must stay valid `sh`.
#[test]
fn the_recorders_are_valid_sh() {
    let dir = project_root().join("tests/system/recorders");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let status = std::process::Command::new("sh")
            .arg("-n")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "{}", Path::new(&path).display());
    }
}
