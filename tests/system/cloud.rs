//! The master script's cloud path and the nuke script, with `terraform`, `aws`, `az`, `docker`
//! and `cargo` replaced on PATH by the recorders in `recorders/` (they log every call and
//! answer from a `world.json` the test writes). Past "infra is up", the recorded meta outputs
//! point the master script at the real local stack's orchestrator, and the test plays the
//! cloud runners over the task API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::{ClaimRequest, ClaimResponse, CompleteRequest, Provider, archive, layout};
use serde_json::{Value, json};

use crate::harness::*;

/// One line of the recorders' log.
#[derive(Debug, Clone)]
struct Call {
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

    fn is(&self, tool: &str, event: &str, subcommand: &str, stack: &str) -> bool {
        self.tool == tool
            && self.event == event
            && self.subcommand() == subcommand
            && self.stack() == stack
    }
}

/// A scratch directory with the recorders' world, log, state and logs roots.
struct Recorders {
    dir: tempfile::TempDir,
    fail: String,
}

impl Recorders {
    fn new() -> Self {
        let recorders = Self {
            dir: tempfile::tempdir().unwrap(),
            fail: String::new(),
        };
        recorders.set_world(json!({}));
        recorders
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state_root(&self) -> PathBuf {
        self.path("state")
    }

    fn set_world(&self, world: Value) {
        std::fs::write(self.path("world.json"), world.to_string()).unwrap();
    }

    fn world(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path("world.json")).unwrap()).unwrap()
    }

    /// The meta outputs `terraform output -json` answers with.
    fn set_meta_outputs(&self, orchestrator_url: &str, api_key: &str) {
        let values = json!({
            "orchestrator_url": orchestrator_url, "api_key": api_key, "operator_password": "operator-secret",
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
                let sensitive = ["api_key", "operator_password"].contains(&name.as_str());
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

    /// A Fish script of the project with the recorders first on PATH and no terminal.
    async fn run(&self, script: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let recorders = project_root().join("tests/system/recorders");
        let path = format!(
            "{}:{}",
            recorders.display(),
            std::env::var("PATH").unwrap_or_default()
        );
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
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        command
            .output()
            .await
            .expect("fish runs; install it with apt-get install -y fish")
    }

    fn calls(&self) -> Vec<Call> {
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
fn cloud_args<'a>(config: &'a str, results: &'a str) -> Vec<&'a str> {
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
            &stack.api_key,
            Provider::Aws,
            "c7i.large",
        )
        .await;
        complete_one(
            &client,
            &stack.orchestrator_url,
            &stack.api_key,
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
    assert!(
        run_seen_at >= end("aws").max(end("azure")),
        "POST after the infrastructure: {run_seen_at} {terraform:#?}"
    );

    // The variable files carry the meta wiring and the presigned runner URL.
    let run_dir = std::fs::read_dir(recorders.state_root())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let run_id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
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
        !stderr.contains(&stack.api_key) && !stderr.contains("operator-secret"),
        "{stderr}"
    );
    assert!(stderr.contains("-raw operator_password"), "{stderr}");
}

#[tokio::test]
async fn a_failed_provider_apply_waits_for_the_other_and_exits_1_with_the_nuke_command() {
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
    args.push("--yes");
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

    // Graviton needs an arm64 runner image, and only an x86_64 one exists here.
    let output = recorders
        .run("master.fish", &cloud_args(&config, &results), &[])
        .await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("only a x86_64 runner image exists here")
            && stderr.contains("c7g.medium")
            && stderr.contains("--runner-tarball arm64="),
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
}

/// State of a finished run as the master script leaves it: meta, aws and azure.
fn write_run_state(recorders: &Recorders, run_id: &str) {
    let dir = recorders.state_root().join(run_id);
    std::fs::create_dir_all(&dir).unwrap();
    for (stack, region) in [
        ("meta", "eu-west-1"),
        ("aws", "eu-central-1"),
        ("azure", "eastus2"),
    ] {
        std::fs::write(
            dir.join(format!("{stack}.tfstate")),
            r#"{"version": 4, "resources": [{}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{stack}.tfvars.json")),
            json!({ "run_id": run_id, "region": region }).to_string(),
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
        "ec2 describe-route-tables": { "RouteTables": [{ "RouteTableId": "rtb-run7", "Associations": [], "Tags": tags("7") }] },
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
        "iam list-instance-profile-tags rcb-7-orchestrator-profile": { "Tags": tags("7") },
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
    ];
    let mut expected: Vec<&str> = per_region.to_vec();
    expected.extend([
        "rcb-7-results-ab",
        "rcb-7-orchestrator-profile",
        "rcb-7-orchestrator",
        "rcb-7",
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
