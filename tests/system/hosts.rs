//! The hosts' boot scripts for real: each host's user data rendered from the Terraform
//! stacks as Terraform would (`infra_checks::user_data`), from the variables the master
//! script writes, and booted by Debian's cloud-init in a container standing in for the host
//! (`rcb/host:bookworm`: systemd as PID 1, its own Docker engine, all capabilities but one).
//!
//! The network is the clouds' in miniature, each part on addresses of its own:
//!
//! - "internet": s3-local (the S3 endpoint the URLs are signed for), the git server of
//!   ruby-bench-mini, the stand-in of the clouds' APIs the hosts call (Resource Manager,
//!   SSM, Key Vault: `hosts/clouds.py`, at their names, with a certificate the hosts
//!   trust), the meta VPC's metadata service, and the orchestrator host's public address
//!   (its Elastic IP: Caddy on port 80, nothing else);
//! - "aws" and "azure": one runner host each, routed to the internet through a NAT
//!   container, which also serves the cloud's metadata service on 169.254.169.254 (off the
//!   host, as on a cloud).
//!
//! Nothing leaves this machine: the internet is an internal network, and the runner hosts'
//! only route out is their NAT (see `Lab::network`). The hosts' packages were installed from
//! Debian's archive when the image was made, and their apt sources are empty.
//! Runners reach the orchestrator only at its public URL and S3 only at the signed endpoint.
//!
//! What differs from the clouds: the orchestrator's S3 endpoint and keys are added to its
//! env file (an instance role and the SDK's default endpoint give them on AWS); benchmark
//! images are loaded into the runner hosts' Docker by the test (Docker Hub there); the
//! instance types' facts are given (the provider's data sources); variable validations are
//! not evaluated (the TTL is a fraction of a minute here, the stacks require 10). Powering
//! off stops the container (systemd's poweroff ends PID 1); Azure's deallocation is asked
//! of the ARM stand-in, after which the test stops the host as Azure would.

use std::process::Command;
use std::time::Duration;

use infra_checks::user_data::{HostInputs, render_user_data, resource_argument, template_call};
use serde_json::{Value, json};

use crate::lab::{
    BOOT_TIMEOUT, Bucket, HOST_IMAGE, Lab, docker, load_bench_image, ruby_bench_repository,
    saved_image, stack, stand_ins_mount,
};

/// The Azure runner's TTL backstop, in minutes: longer than its boot and failed task take,
/// short enough not to wait long for it.
const AZURE_TTL_MINUTES: f64 = 1.5;

/// The AWS runner's TTL backstop, in minutes: never reached here.
const AWS_TTL_MINUTES: u64 = 30;

/// The client id of the Azure runners' identity, which reads the run's Key Vault.
const RUNNER_IDENTITY: &str = "00000000-0000-0000-0000-0000000000c1";

/// The instance types of the run, and their runner instances' `for_each` keys.
const AWS_TYPE: &str = "c7i.large";
const AZURE_TYPE: &str = "Standard_F2als_v6";

/// The provider stacks' variables in the shape master.fish's `cloud_up` writes them.
fn runner_tfvars(
    run_id: &str,
    orchestrator_url: &str,
    runner_api_key: &str,
    image_url: &str,
    commit: &str,
    git_url: &str,
    ttl: Value,
) -> Value {
    json!({
        "run_id": run_id, "runs_per_instance_type": 1, "ruby_bench_commit": commit,
        "runner_image_urls": {"x86_64": image_url}, "ttl_minutes": ttl,
        "orchestrator_url": orchestrator_url, "runner_api_key": runner_api_key,
        "ssh_public_key": "ssh-rsa AAAAB3NzaC1yc2E stand-in", "bench_image_repo": "rcb/ruby",
        // Not a master flag: the stacks' variable for where ruby-bench is fetched from.
        "ruby_bench_git_url": git_url,
        // The stand-in hosts have no way to Debian's mirror: the benchmark image is used as
        // it is (the runner's tests derive one with packages).
        "bench_packages": "none",
    })
}

/// The orchestrator host, an AWS and an Azure runner host, booted from their stacks' user
/// data, doing a run: the AWS task completes and its host powers off; the Azure task fails
/// in debug mode, its host stays up until the TTL backstop asks Azure to deallocate it.
/// On both runner hosts a container on Docker's bridge cannot reach the metadata service,
/// and one with the runner's host networking can.
#[tokio::test(flavor = "multi_thread")]
async fn hosts_boot_from_their_user_data_and_run_a_cloud_run() {
    // Not beside a fault test: the hosts' boots and image loads would stretch its short
    // heartbeat timeouts.
    let _one = crate::faults::ONE_AT_A_TIME.lock().await;
    let mut lab = Lab::new();
    let started = std::time::Instant::now();
    let phase = |what: &str| eprintln!("hosts: {what} at {:.0}s", started.elapsed().as_secs_f64());
    let internet = lab.network("internet", true);
    let aws_net = lab.network("aws", false);
    let azure_net = lab.network("azure", false);
    let run_id = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let dir = lab.dir.path().to_owned();
    let stand_ins_mount = stand_ins_mount();

    // --- the internet: S3, git, Azure Resource Manager -----------------------------------
    let (access_key, secret_key) = (format!("access{}", lab.id), format!("secret{}", lab.id));
    let s3_ip = internet.ip(10);
    let s3 = lab.create(
        "s3",
        &internet,
        &s3_ip,
        &[
            "-e",
            &format!("S3_LOCAL_ACCESS_KEY={access_key}"),
            "-e",
            &format!("S3_LOCAL_SECRET_KEY={secret_key}"),
            // The bucket in memory: the images are 450 MB, written once and read once.
            "--tmpfs",
            "/data:rw,size=2g",
        ],
        &["rcb/s3-local:latest"],
    );
    lab.start(&s3);
    let s3_endpoint = format!("http://{s3_ip}:9000");

    let (good_commit, broken_commit) = ruby_bench_repository(&dir);
    let git_ip = internet.ip(11);
    let git_mount = format!("{}:/srv:ro", dir.join("git").display());
    let git = lab.create(
        "git",
        &internet,
        &git_ip,
        &["-v", &git_mount, "--entrypoint", "python3"],
        &[HOST_IMAGE, "-m", "http.server", "--directory", "/srv", "80"],
    );
    lab.start(&git);
    let git_url = format!("http://{git_ip}/ruby-bench.git");

    // The clouds' APIs the hosts call (Resource Manager, SSM, Key Vault), at their names.
    let vault = format!("rcb-{run_id}-ab12c");
    let vault_host = format!("{vault}.vault.azure.net");
    let api_names = [
        "management.azure.com",
        "ssm.eu-west-1.amazonaws.com",
        &vault_host,
    ];
    let clouds = lab.clouds(&internet, &internet.ip(12), &api_names);
    let secrets_file = clouds.secrets_file.clone();
    let api_args = clouds.host_args();
    let clouds = clouds.name.clone();

    phase("the internet is up");
    // --- meta: the bucket and the images in it, then the orchestrator host --------------
    let bench_image = std::thread::spawn(|| saved_image("rcb/ruby:3.1.2"));
    let bucket = Bucket::create(
        &s3_endpoint,
        &access_key,
        &secret_key,
        &format!("rcb-{run_id}-results"),
    )
    .await;
    let orchestrator_image_url = bucket
        .upload_image("rcb/orchestrator:latest", "images/orchestrator.tar.gz")
        .await;
    let postgres_image_url = bucket
        .upload_image("rcb/postgres:15", "images/postgres.tar.gz")
        .await;
    let runner_image_url = bucket
        .upload_image("rcb/runner:latest", "images/runner-x86_64.tar.gz")
        .await;

    let public_ip = internet.ip(20);
    let api_key = format!("apikey{}", lab.id);
    let runner_api_key = format!("runnerkey{}", lab.id);
    let operator_password = format!("operator{}", lab.id);
    let postgres_password = format!("postgres{}", lab.id);
    let meta_inputs = HostInputs {
        tfvars: json!({
            "run_id": run_id, "region": "eu-west-1", "allowed_ssh_cidr": "203.0.113.7/32", "domain": "",
            "route53_zone_id": "", "allow_plain_http": true,
            "orchestrator_image_url": orchestrator_image_url, "postgres_image_url": postgres_image_url,
        }),
        known: json!({
            "random_password": {
                "api_key": {"result": api_key}, "runner_api_key": {"result": runner_api_key},
                "operator_password": {"result": operator_password},
                "postgres": {"result": postgres_password},
            },
            "aws_s3_bucket": {"results": {"bucket": bucket.name}},
            "aws_eip": {"orchestrator": {"public_ip": public_ip}},
        }),
    };
    let (template, mut vars) = template_call(
        &stack("meta"),
        "aws_instance.orchestrator",
        None,
        &meta_inputs,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    // The stand-in's addition: what the instance role and the SDK's own endpoint give the
    // orchestrator on AWS.
    let env = vars["orchestrator_env"]
        .as_str()
        .expect("orchestrator_env is text")
        .to_owned();
    vars.insert("orchestrator_env".to_owned(), hcl::Value::from(format!(
        "{env}S3_ENDPOINT_URL={s3_endpoint}\nAWS_ACCESS_KEY_ID={access_key}\nAWS_SECRET_ACCESS_KEY={secret_key}\n"
    )));
    let orchestrator_user_data = infra_checks::templates::render(&template, vars).unwrap();
    // The user data says where the secrets are, and holds none.
    for secret in [
        &api_key,
        &runner_api_key,
        &operator_password,
        &postgres_password,
    ] {
        assert!(
            !orchestrator_user_data.contains(secret.as_str()),
            "{orchestrator_user_data}"
        );
    }
    // SSM holds what the meta stack stores there.
    let mut ssm = serde_json::Map::new();
    for parameter in [
        "aws_ssm_parameter.orchestrator_env",
        "aws_ssm_parameter.postgres_env",
    ] {
        let [name, value] = ["name", "value"].map(|argument| {
            let value = resource_argument(&stack("meta"), parameter, None, argument, &meta_inputs)
                .unwrap_or_else(|e| panic!("{e:#}"));
            value.as_str().expect("a string").to_owned()
        });
        ssm.insert(name, json!(value));
    }
    let mut secrets = json!({"ssm": {"eu-west-1": ssm}, "keyvault": {}});
    std::fs::write(&secrets_file, secrets.to_string()).unwrap();
    // The instance metadata service of the meta VPC, with the orchestrator role's
    // credentials. The internet network is internal (Docker drops what is addressed
    // outside its subnet), so the orchestrator host's own NAT table sends what it
    // addresses to 169.254.169.254 there instead of a route, as the VPC would.
    let imds_ip = internet.ip(13);
    let imds = lab.create(
        "meta-imds",
        &internet,
        &imds_ip,
        &["-v", &stand_ins_mount, "--entrypoint", "python3"],
        &[
            HOST_IMAGE,
            "-u",
            "/stand-ins/metadata.py",
            "none",
            RUNNER_IDENTITY,
            "0.0.0.0",
        ],
    );
    lab.start(&imds);
    phase("the images are in the bucket");
    let orchestrator = lab.host(
        "orchestrator",
        &internet,
        &public_ip,
        &orchestrator_user_data,
        &api_args,
    );
    lab.start(&orchestrator);
    let to_imds = format!("{imds_ip}:80");
    let (ok, out) = lab.exec(
        &orchestrator,
        &[
            "iptables",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-d",
            "169.254.169.254/32",
            "-p",
            "tcp",
            "--dport",
            "80",
            "-j",
            "DNAT",
            "--to-destination",
            &to_imds,
        ],
    );
    assert!(ok, "{out}");
    let orchestrator_url = format!("http://{public_ip}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let health = format!("{orchestrator_url}/health");
    let deadline = tokio::time::Instant::now() + BOOT_TIMEOUT;
    loop {
        if let Ok(response) = http.get(&health).send().await
            && response.status() == 200
        {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["status"], "ok", "{body}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the orchestrator host did not answer {health} through Caddy{}",
            lab.report()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    phase("the orchestrator host answers /health");
    // Nothing but Caddy answers on the public address.
    for port in [8080, 5432] {
        assert!(
            std::net::TcpStream::connect_timeout(
                &format!("{public_ip}:{port}").parse().unwrap(),
                Duration::from_secs(2)
            )
            .is_err(),
            "port {port} of the orchestrator host is reachable"
        );
    }

    // --- the runner hosts, each behind its cloud's NAT and metadata service ---------------
    let vm_name = format!(
        "rcb-{run_id}-{}-0",
        AZURE_TYPE.to_lowercase().replace('_', "-")
    );
    let resource_id = format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rcb-{run_id}/providers/Microsoft.Compute/virtualMachines/{vm_name}"
    );
    let mut nats = Vec::new();
    for (cloud, net, nat_ip) in [
        ("aws", &aws_net, internet.ip(30)),
        ("azure", &azure_net, internet.ip(31)),
    ] {
        let nat = lab.nat(
            cloud,
            &internet,
            &nat_ip,
            net,
            &resource_id,
            RUNNER_IDENTITY,
        );
        nats.push(nat);
    }

    let aws_inputs = HostInputs {
        tfvars: {
            let mut vars = runner_tfvars(
                &run_id,
                &orchestrator_url,
                &runner_api_key,
                &runner_image_url,
                &good_commit,
                &git_url,
                json!(AWS_TTL_MINUTES),
            );
            vars["region"] = json!("eu-west-1");
            vars["instance_types"] = json!([AWS_TYPE]);
            for key in [
                "meta_region",
                "meta_vpc_id",
                "meta_vpc_cidr",
                "meta_route_table_id",
                "bastion_private_ip",
            ] {
                vars[key] = json!("stand-in");
            }
            vars
        },
        known: json!({"data": {"aws_ec2_instance_type": {"runner": {(AWS_TYPE): {
            "default_vcpus": 2, "default_threads_per_core": 2, "supported_architectures": ["i386", "x86_64"],
        }}}}}),
    };
    let aws_user_data = render_user_data(
        &stack("aws"),
        "aws_instance.runner",
        Some(&format!("{AWS_TYPE}-0")),
        &aws_inputs,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let azure_inputs = HostInputs {
        tfvars: {
            let mut vars = runner_tfvars(
                &run_id,
                &orchestrator_url,
                &runner_api_key,
                &runner_image_url,
                &broken_commit,
                &git_url,
                json!(AZURE_TTL_MINUTES),
            );
            vars["region"] = json!("westeurope");
            vars["instance_types"] = json!([AZURE_TYPE]);
            vars["allowed_ssh_cidr"] = json!("203.0.113.7/32");
            vars["self_deallocate"] = json!(true);
            vars
        },
        known: json!({
            "azurerm_key_vault": {"run": {"name": vault}},
            "azurerm_key_vault_secret": {"runner_env": {"name": "runner-env"}},
            "azurerm_user_assigned_identity": {"runner": {"client_id": RUNNER_IDENTITY}},
        }),
    };
    let azure_user_data = render_user_data(
        &stack("azure"),
        "azurerm_linux_virtual_machine.runner",
        Some(&format!("{AZURE_TYPE}-0")),
        &azure_inputs,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    // Runner hosts' user data holds no key; the secret stores hold the runner key (as the
    // provider stacks store it), never the operator's.
    for user_data in [&aws_user_data, &azure_user_data] {
        assert!(!user_data.contains(&runner_api_key), "{user_data}");
        assert!(!user_data.contains(&api_key), "{user_data}");
    }
    let argument = |name: &str, address: &str, argument: &str, inputs: &HostInputs| {
        let value = resource_argument(&stack(name), address, None, argument, inputs)
            .unwrap_or_else(|e| panic!("{e:#}"));
        value.as_str().expect("a string").to_owned()
    };
    let aws_secret = argument("aws", "aws_ssm_parameter.runner_env", "value", &aws_inputs);
    let azure_secret = argument(
        "azure",
        "azurerm_key_vault_secret.runner_env",
        "value",
        &azure_inputs,
    );
    for secret in [&aws_secret, &azure_secret] {
        assert_eq!(secret, &format!("RUNNER_API_KEY={runner_api_key}\n"));
    }
    secrets["ssm"]["eu-west-1"]
        [argument("aws", "aws_ssm_parameter.runner_env", "name", &aws_inputs)] = json!(aws_secret);
    secrets["keyvault"][&vault] = json!({ "runner-env": azure_secret });
    std::fs::write(&secrets_file, secrets.to_string()).unwrap();

    let aws_host = lab.host(
        "aws-runner",
        &aws_net,
        &aws_net.ip(10),
        &aws_user_data,
        &api_args,
    );
    let azure_host = lab.host(
        "azure-runner",
        &azure_net,
        &azure_net.ip(10),
        &azure_user_data,
        &api_args,
    );
    for (host, net) in [(&aws_host, &aws_net), (&azure_host, &azure_net)] {
        lab.start(host);
        // The subnet's route table: everything through the NAT.
        let (ok, out) = lab.exec(
            host,
            &["ip", "route", "replace", "default", "via", &net.ip(5)],
        );
        assert!(ok, "{out}");
    }
    for host in [&aws_host, &azure_host] {
        lab.wait_for(&format!("{host}: Docker inside"), BOOT_TIMEOUT, || {
            lab.exec(host, &["docker", "info"]).0
        })
        .await;
    }
    phase("Docker runs in both runner hosts");
    let bench_image = bench_image.join().expect("docker save rcb/ruby:3.1.2");
    std::thread::scope(|scope| {
        for host in [&aws_host, &azure_host] {
            scope.spawn(|| load_bench_image(&bench_image, host));
        }
    });

    phase("the benchmark image is in both runner hosts");
    // The firewall of both runner hosts, once the runner waits for the run (the host script
    // set it before starting the runner).
    for (host, nat) in [(&aws_host, &nats[0]), (&azure_host, &nats[1])] {
        lab.wait_for(
            &format!("{host}: the runner container"),
            BOOT_TIMEOUT,
            || lab.exec(host, &["docker", "inspect", "rcb-runner"]).0,
        )
        .await;
        let probe = "require 'net/http'; http = Net::HTTP.new('169.254.169.254', 80); http.open_timeout = 3; print http.get('/probe').body";
        let bridged_probe = [
            "docker",
            "run",
            "--rm",
            "rcb/ruby:3.1.2",
            "ruby",
            "-e",
            probe,
        ];
        let (bridged, out) = lab.exec(host, &bridged_probe);
        assert!(
            !bridged,
            "{host}: a container on Docker's bridge reached the metadata service: {out}"
        );
        let (hosted, out) = lab.exec(
            host,
            &[
                "docker",
                "run",
                "--rm",
                "--network",
                "host",
                "rcb/ruby:3.1.2",
                "ruby",
                "-e",
                probe,
            ],
        );
        assert!(
            hosted && out.contains("stand-in metadata"),
            "{host}: host networking (the runner's) did not reach the metadata service: {out}"
        );
        let (_, rules) = lab.exec(host, &["iptables", "-S", "DOCKER-USER"]);
        assert!(rules.contains("-d 169.254.169.254/32 -j DROP"), "{rules}");
        // The rule is what stops the bridged container: without it, the same probe gets
        // through (and then the rule goes back).
        let rule = ["DOCKER-USER", "-d", "169.254.169.254/32", "-j", "DROP"];
        let without = [&["iptables", "-D"][..], &rule[..]].concat();
        assert!(lab.exec(host, &without).0);
        let (open, out) = lab.exec(host, &bridged_probe);
        assert!(
            open,
            "{host}: without the rule the probe still failed: {out}"
        );
        let with = [&["iptables", "-I"][..], &rule[..]].concat();
        assert!(lab.exec(host, &with).0);
        let requests = lab.logs(nat);
        assert!(requests.contains("GET /probe"), "{requests}");
    }

    phase("the firewall holds on both runner hosts");
    // --- the run ----------------------------------------------------------------------------
    let config = json!({
        "ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": [AWS_TYPE], "azure": [AZURE_TYPE],
        "debug_mode": true,
        "ruby_bench": {"benchmarks": ["fib"], "modes": ["interp"], "warmup": 1, "bench": 2},
    });
    let response = http
        .post(format!("{orchestrator_url}/run/start"))
        .bearer_auth(&api_key)
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());

    // The AWS host: its task completes, the runner exits 0 and the host powers off.
    lab.wait_for("the AWS runner host powered off", BOOT_TIMEOUT, || {
        !lab.running(&aws_host)
    })
    .await;
    let console = lab.logs(&aws_host);
    assert!(
        console.contains("rcb: the runner finished (every slot got done)"),
        "{console}"
    );

    phase("the AWS runner host powered off");
    // The Azure host: its task fails in debug mode, the runner exits 3, the host stays up.
    lab.wait_for("the Azure runner exited 3", BOOT_TIMEOUT, || {
        lab.exec(
            &azure_host,
            &["journalctl", "--no-pager", "-u", "rcb-runner"],
        )
        .1
        .contains("the runner exited 3")
    })
    .await;
    assert!(lab.running(&azure_host));

    phase("the Azure runner exited 3");
    // The run is complete: the AWS task's results and the Azure task's failure in the archive.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status: Value = http
            .get(format!("{orchestrator_url}/run"))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["status"] == "complete" {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not complete: {status}{}",
            lab.report()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let archive = status["gzip_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no archive: {status}"));
    let bytes = http
        .get(archive)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(dir.join("results.tar.gz"), &bytes).unwrap();
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(dir.join("results.tar.gz"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains(&format!("{AWS_TYPE}-1/meta.json")),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("{AZURE_TYPE}-1/error.json")),
        "{listing}"
    );

    phase("the run is complete");
    // Each host read its secrets from its cloud's store with its own identity: the
    // orchestrator's two files and the AWS runner's key from SSM (SigV4-signed with the
    // instance role's credentials), the Azure runner's from Key Vault (with its identity's
    // token); nothing was refused.
    let api_log = lab.logs(&clouds);
    for read in [
        format!("ssm: GetParameter /rcb/{run_id}/orchestrator.env in eu-west-1"),
        format!("ssm: GetParameter /rcb/{run_id}/postgres.env in eu-west-1"),
        format!("ssm: GetParameter /rcb/{run_id}/runner.env in eu-west-1"),
        format!("keyvault: get {vault}/runner-env"),
    ] {
        assert!(api_log.contains(&read), "{read}: {api_log}");
    }
    assert!(!api_log.contains("refused"), "{api_log}");
    // The TTL backstop: the Azure host asks Azure to deallocate it, and "Azure" stops it.
    lab.wait_for(
        "the Azure host asked to be deallocated",
        Duration::from_secs(120),
        || {
            lab.logs(&clouds)
                .contains(&format!("arm: accepted POST {resource_id}/deallocate"))
        },
    )
    .await;
    let (_, journal) = lab.exec(&azure_host, &["journalctl", "--no-pager", "-u", "rcb-ttl"]);
    assert!(journal.contains("rcb: deallocation requested"), "{journal}");
    eprintln!("hosts: the Azure host's TTL backstop:\n{journal}");
    phase("the TTL backstop asked to deallocate the Azure host");
    docker(&["stop", "--time", "5", &azure_host]);
    let label = format!("label=rcb.hosts={}", lab.id);
    drop(lab);
    let left = docker(&["ps", "--all", "--quiet", "--filter", &label]);
    let networks = docker(&["network", "ls", "--quiet", "--filter", &label]);
    assert!(
        left.is_empty() && networks.is_empty(),
        "left behind: {left} {networks}"
    );
}
