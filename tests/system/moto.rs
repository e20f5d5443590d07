//! The aws CLI for real, against moto's AWS emulator in server mode: the master's preflight,
//! the image uploads and their presigned URLs, and nuke's whole sweep. Only `aws` is real;
//! `terraform`, `az`, `docker` and `cargo` stay the recorders of `recorders/`. Each test has
//! an emulator of its own (`moto_server` on a free 127.0.0.1 port, killed on drop), seeded
//! with boto3 by `moto/seed.py` and read back by `moto/census.py`.
//!
//! Where moto differs from AWS (moto 5.2.5, awscli 1.46.3, `requirements.txt`), and
//! what the tests do about it:
//!
//! - IAM `ListInstanceProfileTags` is not implemented (moto answers 500), so nuke reads an
//!   instance profile's tags from `GetInstanceProfile`, which returns them on AWS and in moto.
//!   The tests' case of an emulator error on a listing never taken for "not ours": a region
//!   moto does not know fails every EC2 listing in it.
//! - Service Quotas knows only the `vpc` service: `get-service-quota` of an EC2 vCPU quota
//!   answers NoSuchResourceException, and the preflight goes on with "could not read the
//!   on-demand ... vCPU quota" (its path for an account without the permission). The quota
//!   arithmetic itself is covered by the recorders' tests in `cloud.rs`.
//! - A NAT gateway's network interface is listed as `available` with type `interface` (AWS:
//!   `in-use`, type `nat_gateway`, not deletable). nuke's dry run lists it among the run's
//!   leftover interfaces, so `seed.py` counts it as the run's.
//! - Instances terminate, and NAT gateways are deleted, at once: nuke's waits return on
//!   their first look. Dependencies are not all enforced (AWS refuses to delete a VPC with
//!   subnets, a subnet with interfaces, an internet gateway still attached); the order of
//!   nuke's sweep is held by the recorders' test of it in `cloud.rs`.
//! - awscli v1 presigns SigV2 URLs (`AWSAccessKeyId`, `Signature`, `Expires`) in regions that
//!   still accept SigV2, such as eu-west-1; the AWS CLI v2 the README asks for signs SigV4.
//!   moto checks no signature at all (nor credentials): a presigned URL is proven to name
//!   the object and to carry a signature and a lifetime, not that AWS would accept it.
//! - awscli v1 takes an unambiguous prefix of an option (`--filter` for `--filters`), as
//!   Python's argparse does; a misspelt option fails, as it would on AWS.
//! - SSM Parameter Store: `describe-parameters` honours the `tag:` filters nuke lists the
//!   hosts' secrets by, as AWS does; a SecureString is stored as given (no KMS key is used
//!   or checked), so the tests prove the names, tags and deletion, not the encryption.
//! - Route 53 answers at once (no PENDING change), and any zone name is accepted.
//! - Everything is in one account, no permission is ever refused, and nothing is billed.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use test_support::python::{install_command, venv_bin};

use crate::cloud::{Recorders, cloud_args};
use crate::harness::*;

/// The region the tests' runs live in.
const REGION: &str = "eu-west-1";

/// How long moto's server may take to listen.
const MOTO_START_TIMEOUT: Duration = Duration::from_secs(30);

/// moto's server on a free loopback port (or at an address of the rehearsal's lab), and the
/// real aws CLI pointed at it. Killed on drop.
pub(crate) struct AwsEmulator {
    server: Child,
    /// The address it listens on.
    host: String,
    pub(crate) port: u16,
    /// The aws CLI alone (a link to the venv's), to put before the recorders on PATH, and
    /// empty config and credentials files so that the user's never count.
    dir: tempfile::TempDir,
}

impl AwsEmulator {
    fn start() -> Self {
        Self::start_at("127.0.0.1")
    }

    /// moto's server on a free port of `host`, an address of this machine.
    pub(crate) fn start_at(host: &str) -> Self {
        let bin = venv_bin();
        for tool in ["moto_server", "aws", "python"] {
            assert!(
                bin.join(tool).is_file(),
                "{} is missing; install moto and the aws CLI with: {}",
                bin.join(tool).display(),
                install_command()
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(bin.join("aws"), dir.path().join("bin/aws")).unwrap();
        std::fs::write(dir.path().join("config"), "").unwrap();
        std::fs::write(dir.path().join("credentials"), "").unwrap();

        let port = std::net::TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let server = Command::new(bin.join("moto_server"))
            .args(["-H", host, "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("moto_server starts");
        let mut emulator = Self {
            server,
            host: host.to_owned(),
            port,
            dir,
        };
        emulator.wait_until_listening();
        emulator
    }

    fn wait_until_listening(&mut self) {
        let started = Instant::now();
        while TcpStream::connect((self.host.as_str(), self.port)).is_err() {
            if let Some(status) = self.server.try_wait().unwrap() {
                panic!(
                    "moto_server exited ({status}) before listening on port {}:\n{}",
                    self.port,
                    self.log()
                );
            }
            assert!(
                started.elapsed() < MOTO_START_TIMEOUT,
                "moto_server did not listen on port {} within {MOTO_START_TIMEOUT:?}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// The environment that points the aws CLI and boto3 at the emulator, and only there.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let dir = self.dir.path();
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_CONFIG_FILE", dir.join("config").display().to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.join("credentials").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// Where the emulator answers (every service, S3 path-style).
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// A directory holding the aws CLI alone (a link to the venv's).
    pub(crate) fn bin(&self) -> std::path::PathBuf {
        self.dir.path().join("bin")
    }

    /// Recorders for everything but `aws`, which is the real one against this emulator.
    fn recorders(&self) -> Recorders {
        Recorders::new().with_tools(&self.dir.path().join("bin"), self.env())
    }

    /// Runs one of `moto/`'s Python scripts; its stdout, as lines.
    fn python(&self, script: &str, args: &[&str]) -> Vec<String> {
        let output = Command::new(venv_bin().join("python"))
            .arg(project_root().join("tests/system/moto").join(script))
            .args(args)
            .envs(self.env())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{script} {args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Creates what the stacks create for run `run_id`, tagged; what nuke should find of it.
    fn seed_run(&self, run_id: &str) -> BTreeSet<String> {
        self.python("seed.py", &[run_id, REGION, "tagged"])
            .into_iter()
            .collect()
    }

    /// Creates look-alikes of run `run_id`: its names, no tags.
    fn seed_look_alikes(&self, run_id: &str) {
        self.python("seed.py", &[run_id, REGION, "untagged"]);
    }

    /// Everything the emulator holds of the kinds nuke sweeps.
    pub(crate) fn census(&self) -> BTreeSet<String> {
        self.python("census.py", &[REGION]).into_iter().collect()
    }
}

impl Drop for AwsEmulator {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// What a nuke's dry run said it would delete, as "REGION KIND ID" ("-" for global kinds).
fn would_delete(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("nuke.fish: would delete "))
        .map(|rest| match rest.split_once(" in ") {
            Some((what, region)) => format!("{region} {what}"),
            None => format!("- {rest}"),
        })
        .collect()
}

/// The lines of `census` that belong to run `run_id`'s resources `of_run`: the resources
/// themselves, the bucket's objects, the roles' inline policies and their places in the
/// instance profiles, the VPCs' default groups and main route tables, its Route 53 record.
fn owned_by(
    census: &BTreeSet<String>,
    of_run: &BTreeSet<String>,
    run_id: &str,
) -> BTreeSet<String> {
    let parts = [
        format!("- object rcb-{run_id}-results-ab12/"),
        format!("- role-policy rcb-{run_id}-orchestrator/"),
        format!("- instance-profile-role rcb-{run_id}-orchestrator/"),
        format!("- role-policy rcb-{run_id}-runner/"),
        format!("- instance-profile-role rcb-{run_id}-runner/"),
        format!("- record bench-{run_id}.example.com. "),
    ];
    let vpcs = of_run
        .iter()
        .filter_map(|line| line.strip_prefix(&format!("{REGION} vpc ")));
    let of_vpcs: Vec<String> = vpcs
        .flat_map(|vpc| [format!(" (default of {vpc})"), format!(" (main of {vpc})")])
        .collect();
    census
        .iter()
        .filter(|line| {
            of_run.contains(*line)
                || parts.iter().any(|part| line.starts_with(part.as_str()))
                || of_vpcs.iter().any(|suffix| line.ends_with(suffix.as_str()))
        })
        .cloned()
        .collect()
}

/// The meta stack's variables and state of run `run_id` as the master leaves them: the
/// Route 53 zone and name of the run's record `seeded`, and the address it points at.
fn write_meta_state(
    recorders: &Recorders,
    seeded: &BTreeSet<String>,
    census: &BTreeSet<String>,
    run_id: &str,
) {
    let record = seeded
        .iter()
        .find_map(|line| line.strip_prefix("- dns-record "))
        .expect("seed.py made a record");
    let (zone, domain) = record.split_once(':').unwrap();
    let address = census
        .iter()
        .find_map(|line| line.strip_prefix(&format!("- record {domain}. A ")))
        .expect("the census lists the record");
    let dir = recorders.state_root().join(run_id);
    std::fs::create_dir_all(&dir).unwrap();
    let vars =
        json!({ "run_id": run_id, "region": REGION, "route53_zone_id": zone, "domain": domain });
    std::fs::write(dir.join("meta.tfvars.json"), vars.to_string()).unwrap();
    let state = json!({
        "version": 4,
        "outputs": { "orchestrator_public_ip": { "value": address, "type": "string" } },
        "resources": [{ "mode": "managed", "type": "aws_route53_record", "name": "orchestrator" }],
    });
    std::fs::write(dir.join("meta.tfstate"), state.to_string()).unwrap();
}

#[tokio::test]
async fn nuke_in_the_aws_emulator_takes_exactly_the_runs_resources_and_a_second_nuke_is_a_no_op() {
    let emulator = AwsEmulator::start();
    let run = emulator.seed_run("42");
    let other_run = emulator.seed_run("43");
    emulator.seed_look_alikes("42");
    assert!(run.len() > 20 && other_run.len() == run.len(), "{run:#?}");
    let before = emulator.census();
    let recorders = emulator.recorders();
    write_meta_state(&recorders, &run, &before, "42");

    // The dry run lists the run's resources, and nothing else; it changes nothing.
    let output = recorders
        .run("nuke.fish", &["--run-id", "42", "--dry-run"], &[])
        .await;
    let stderr = stderr_of(&output);
    // Found resources: exit 1, "run again without --dry-run".
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(would_delete(&stderr), run, "{stderr}");
    assert!(!stderr.contains("could not check"), "{stderr}");
    assert!(!stderr.contains("rcb-43"), "{stderr}");
    assert_eq!(emulator.census(), before, "the dry run changed nothing");

    // The nuke takes everything of run 42 and nothing else.
    let output = recorders
        .run("nuke.fish", &["--run-id", "42", "--yes"], &[])
        .await;
    let stderr = stderr_of(&output);
    let after = emulator.census();
    let expected: BTreeSet<String> = before
        .difference(&owned_by(&before, &run, "42"))
        .cloned()
        .collect();
    assert_eq!(after, expected, "{stderr}");
    // Run 43's record is in the census by its name, like its other resources by their ids.
    assert!(
        other_run
            .iter()
            .filter(|line| !line.starts_with("- dns-record "))
            .all(|line| after.contains(line))
            && after
                .iter()
                .any(|line| line.starts_with("- record bench-43.example.com. A ")),
        "run 43 untouched: {stderr}"
    );
    assert!(
        !after
            .iter()
            .any(|line| line.starts_with("- record bench-42.")),
        "run 42's record deleted: {stderr}"
    );
    assert!(stderr.contains("nothing of run 42 remains"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("FAILED"), "{stderr}");

    // A second nuke deletes nothing and finds nothing of the run.
    let output = recorders
        .run("nuke.fish", &["--run-id", "42", "--yes"], &[])
        .await;
    let stderr = stderr_of(&output);
    assert!(!stderr.contains("nuke.fish: deleting "), "{stderr}");
    assert!(stderr.contains("nothing of run 42 remains"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(emulator.census(), after, "{stderr}");
}

#[tokio::test]
async fn a_listing_the_aws_emulator_fails_is_reported_and_never_taken_for_not_ours() {
    let emulator = AwsEmulator::start();
    let run = emulator.seed_run("42");
    let recorders = emulator.recorders();
    // moto answers 500 to EC2 calls in a region it does not know.
    let output = recorders
        .run(
            "nuke.fish",
            &[
                "--run-id",
                "42",
                "--dry-run",
                "--aws-region",
                "xx-nowhere-1",
            ],
            &[],
        )
        .await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for kind in ["instance", "security-group", "vpc", "key-pair"] {
        assert!(
            stderr.contains(&format!("FAILED: listing {kind} in xx-nowhere-1")),
            "{stderr}"
        );
    }
    assert!(!stderr.contains("nothing of run 42 found"), "{stderr}");
    // The region that answers is still listed in full.
    let listed = would_delete(&stderr);
    assert!(
        run.iter()
            .filter(|line| line.starts_with(REGION))
            .all(|line| listed.contains(line)),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_masters_preflight_uploads_and_presigned_urls_work_with_the_real_aws_cli() {
    let emulator = AwsEmulator::start();
    let recorders = emulator.recorders();
    // The bucket meta "applied". Its name is outside the run's prefix (rcb-<run id>-), so
    // the nuke after the failure leaves it and the test can fetch the presigned URLs after.
    let bucket = "rcb-test-results-ab12";
    let create = Command::new(venv_bin().join("aws"))
        .args(["s3api", "create-bucket", "--bucket", bucket])
        .args([
            "--create-bucket-configuration",
            &format!("LocationConstraint={REGION}"),
        ])
        .envs(emulator.env())
        .output()
        .unwrap();
    assert!(
        create.status.success(),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );
    recorders.set_meta_outputs("http://orchestrator.example.invalid", "key");
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": ["c7i.large"] }),
    );
    let (config, results) = (
        config.display().to_string(),
        recorders.path("results").display().to_string(),
    );
    // A name that never resolves ends the run after meta's second apply: past the
    // preflight, the uploads and the presigning, before any runner.
    let mut args = cloud_args(&config, &results);
    args.extend([
        "--yes",
        "--domain",
        "orchestrator.example.invalid",
        "--dns-wait-mins",
        "0.02",
    ]);
    let output = recorders.run("master.fish", &args, &[]).await;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not lead to the orchestrator"),
        "{stderr}"
    );
    // Preflight: credentials, types and offerings answered; the EC2 quota moto lacks.
    assert!(
        stderr.contains(
            "could not read the on-demand Standard (A, C, D, H, I, M, R, T, Z) vCPU quota of eu-west-1 (L-1216C47A"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("AWS does not"), "{stderr}");
    // The teardown's nuke swept the emulator with the real CLI and found nothing left.
    assert!(
        stderr.contains("nuke.fish: nothing of run ") && !stderr.contains("FAILED"),
        "{stderr}"
    );

    let census = emulator.census();
    for image in [
        "orchestrator.tar.gz",
        "postgres.tar.gz",
        "runner-x86_64.tar.gz",
    ] {
        assert!(
            census.contains(&format!("- object {bucket}/images/{image}")),
            "{census:#?}\n{stderr}"
        );
    }
    // meta's second apply got presigned URLs that fetch the images.
    let applied: serde_json::Value =
        serde_json::from_slice(&std::fs::read(recorders.path("applied/meta.tfvars.json")).unwrap())
            .unwrap();
    let client = reqwest::Client::new();
    // The deployed orchestrator image, built for this machine's architecture.
    let orchestrator = match std::env::consts::ARCH {
        "aarch64" => "rcb/orchestrator:deploy-arm64",
        _ => "rcb/orchestrator:deploy-x86_64",
    };
    for (field, image) in [
        ("orchestrator_image_url", orchestrator),
        ("postgres_image_url", "rcb/postgres:15"),
    ] {
        let url = applied[field].as_str().unwrap();
        assert!(
            url.starts_with(&format!("http://127.0.0.1:{}/", emulator.port)),
            "{url}"
        );
        let response = client.get(url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        let body = response.bytes().await.unwrap();
        assert_eq!(
            gunzip(&body),
            format!("docker save of {image} (recorded)\n"),
            "{url}"
        );
        // moto checks no signature: that the URL carries one with its lifetime is all.
        assert!(
            url.contains("Signature=") && url.contains("Expires="),
            "{url}"
        );
    }
}

/// The text `bytes` hold gzipped.
fn gunzip(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let output: Output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn the_masters_preflight_refuses_a_type_the_aws_emulator_does_not_know() {
    let emulator = AwsEmulator::start();
    let recorders = emulator.recorders();
    let config = write_config(
        recorders.dir.path(),
        json!({ "ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": ["c7i.nonesuch"] }),
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
        stderr.contains("AWS does not know every type of")
            && stderr.contains("InvalidInstanceType"),
        "{stderr}"
    );
    assert!(
        !recorders
            .calls()
            .iter()
            .any(|call| call.is("terraform", "start", "apply", "meta")),
        "nothing applied"
    );
}
