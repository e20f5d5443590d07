//! One rehearsal of a whole cloud run: `fish/master.fish`'s cloud path for real, from the
//! preflight to the teardown, on this machine (`cargo xtask rehearse`).
//!
//! Real: the master and nuke scripts, the aws CLI against moto's AWS emulator (preflight,
//! the bucket's uploads and presigned URLs, nuke's sweep), Docker (the master saves the
//! images), and the hosts: each booted by cloud-init from the user data its stack renders
//! (`infra_checks::user_data`) from the variable files the master wrote, in the lab of
//! `lab.rs` (the hosts test's networks, NATs, metadata and cloud API stand-ins).
//!
//! Stand-ins: `terraform` (`rehearsal/terraform`) hands each call to this test, which
//! "applies" a stack by creating what it creates here (meta: the bucket in moto, the
//! secrets, the orchestrator host at its public address; aws and azure: a runner host
//! behind its cloud's NAT), answers `output -json` in terraform's shape, and "destroys" by
//! removing it; `az` is the recorder of `recorders/` (Azure has no emulator here).
//!
//! S3 is moto's, for everything: the master uploads the images with `aws s3 cp` and
//! presigns their URLs with `aws s3 presign` for moto's address on the lab's internet (the
//! internet network's gateway, an address of this machine); the hosts download them from
//! there, the orchestrator signs the runners' upload URLs and the results archive's URL
//! for the same endpoint, and the master downloads the archive from it. Hosts reach S3
//! only there. moto checks no signature (`moto.rs`'s head): that the signatures hold is
//! the hosts test's part, on s3-local.
//!
//! What differs from the clouds beyond the hosts test's list (`hosts.rs`): the benchmark
//! image is loaded into each runner host by the test once its Docker runs (a runner that
//! claims first retries its preparation); the runner stacks get `ruby_bench_git_url` (the
//! lab's git server) and `bench_packages = "none"` (no Debian mirror), which the master
//! does not write; the images deployed are the tests' (`rcb/orchestrator:latest` tagged
//! `rcb/orchestrator:<tag>-x86_64` for the run, `RCB_DEPLOY_TAG`; the runner's as
//! `--runner-tarball`), not release builds; moto holds the bucket and the SSM parameters
//! alone (the VPCs, instances and roles the stacks create are the lab's stand-ins here,
//! and `moto.rs` seeds them for nuke's sweep).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infra_checks::user_data::{HostInputs, render_user_data, resource_argument, template_call};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::harness::project_root;
use crate::lab::{
    BOOT_TIMEOUT, Clouds, HOST_IMAGE, Lab, Network, docker, docker_output, load_bench_image,
    ruby_bench_repository, saved_image, stack, stand_ins_mount,
};
use crate::moto::AwsEmulator;

/// The region of the run's AWS part, and of the Azure runners.
const AWS_REGION: &str = "eu-west-1";
const AZURE_REGION: &str = "westeurope";

/// The instance types of the run: one of each cloud.
const AWS_TYPE: &str = "c7i.large";
const AZURE_TYPE: &str = "Standard_F2als_v6";

/// The client id of the Azure runners' identity, which reads the run's Key Vault.
const RUNNER_IDENTITY: &str = "00000000-0000-0000-0000-0000000000c1";

/// How long the whole master script may take: the rehearsal takes some 5 minutes.
const MASTER_TIMEOUT: Duration = Duration::from_secs(12 * 60);

/// A call of the stand-in terraform.
struct Call {
    /// Its files' path without extension.
    base: PathBuf,
    stack: String,
    subcommand: String,
    state: Option<PathBuf>,
    vars: Option<PathBuf>,
}

impl Call {
    fn read(request: &Path) -> Self {
        let text = std::fs::read_to_string(request).unwrap();
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}: {text}", request.display()));
        let argv: Vec<String> = body["argv"]
            .as_array()
            .unwrap_or_else(|| panic!("no argv in {text}"))
            .iter()
            .map(|arg| arg.as_str().unwrap().to_owned())
            .collect();
        let flag = |name: &str| {
            argv.iter()
                .find_map(|arg| arg.strip_prefix(&format!("-{name}=")))
                .map(str::to_owned)
        };
        Self {
            base: request.with_extension(""),
            stack: flag("chdir")
                .and_then(|dir| dir.rsplit('/').next().map(str::to_owned))
                .unwrap_or_default(),
            subcommand: argv
                .iter()
                .find(|arg| !arg.starts_with('-'))
                .cloned()
                .unwrap_or_default(),
            state: flag("state").map(PathBuf::from),
            vars: flag("var-file").map(PathBuf::from),
        }
    }

    /// Writes the answer; the status last, which the stand-in waits for.
    fn answer(&self, status: i32, stdout: &str, stderr: &str) {
        let file = |extension: &str| self.base.with_extension(extension);
        std::fs::write(file("stdout"), stdout).unwrap();
        std::fs::write(file("stderr"), stderr).unwrap();
        std::fs::write(file("status.partial"), status.to_string()).unwrap();
        std::fs::rename(file("status.partial"), file("status")).unwrap();
    }

    fn vars(&self) -> Result<Value, String> {
        let path = self
            .vars
            .as_ref()
            .ok_or_else(|| format!("terraform {} needs -var-file", self.subcommand))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
    }

    fn write_state(&self, state: &Value) -> Result<(), String> {
        let path = self
            .state
            .as_ref()
            .ok_or_else(|| format!("terraform {} needs -state", self.subcommand))?;
        std::fs::write(path, state.to_string())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// A string variable of a stack's variable file, or the error terraform would give.
fn required<'a>(vars: &'a Value, name: &str) -> Result<&'a str, String> {
    vars[name]
        .as_str()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| format!("Error: No value for required variable \"{name}\""))
}

/// What the stand-in terraform has applied, and what it needs to apply more.
struct Cloud {
    lab: Lab,
    internet: Network,
    /// The runner networks, until their stack is destroyed.
    networks: BTreeMap<String, Network>,
    emulator_env: Vec<(String, String)>,
    s3_endpoint: String,
    git_url: String,
    clouds: Option<Clouds>,
    secrets: Value,
    /// meta's outputs, in the shape of `terraform output -json`.
    outputs: Option<Value>,
    /// The containers each stack created.
    hosts: BTreeMap<String, Vec<String>>,
    /// The SSM parameters each stack created in moto: (region, name).
    parameters: BTreeMap<String, Vec<(String, String)>>,
    /// When each apply was asked for and answered (stack, seconds since the start).
    applies: Vec<(String, f64, f64)>,
    bench_image: PathBuf,
    loaders: Vec<std::thread::JoinHandle<()>>,
    keys: Keys,
    started: Instant,
}

/// The secrets meta's random_password resources make.
struct Keys {
    api_key: String,
    runner_api_key: String,
    operator_password: String,
    postgres_password: String,
}

impl Cloud {
    fn phase(&self, what: &str) {
        eprintln!(
            "rehearsal: {what} at {:.0}s",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// The aws CLI against the emulator; its stdout, or its stderr as the error.
    fn aws(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(test_support::python::venv_bin().join("aws"))
            .args(args)
            .envs(self.emulator_env.iter().cloned())
            .output()
            .map_err(|e| format!("aws: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "aws {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// An SSM parameter of `stack` in moto, tagged as the stacks' default tags do. The
    /// hosts read the same value from the clouds' stand-in (HTTPS at SSM's name, SigV4
    /// checked), which moto cannot be.
    fn put_parameter(
        &mut self,
        stack: &str,
        run_id: &str,
        region: &str,
        name: &str,
        value: &str,
    ) -> Result<(), String> {
        self.aws(&[
            "ssm",
            "put-parameter",
            "--region",
            region,
            "--name",
            name,
            "--type",
            "SecureString",
            "--value",
            value,
            "--tags",
            "Key=Project,Value=ruby-cross-cloud-bench",
            &format!("Key=RunId,Value={run_id}"),
        ])?;
        self.parameters
            .entry(stack.to_owned())
            .or_default()
            .push((region.to_owned(), name.to_owned()));
        Ok(())
    }

    fn public_ip(&self) -> String {
        self.internet.ip(20)
    }

    fn meta_inputs(&self, vars: &Value) -> Result<HostInputs, String> {
        let run_id = required(vars, "run_id")?;
        Ok(HostInputs {
            tfvars: vars.clone(),
            known: json!({
                "random_password": {
                    "api_key": {"result": self.keys.api_key},
                    "runner_api_key": {"result": self.keys.runner_api_key},
                    "operator_password": {"result": self.keys.operator_password},
                    "postgres": {"result": self.keys.postgres_password},
                },
                "aws_s3_bucket": {"results": {"bucket": bucket_name(run_id)}},
                "aws_eip": {"orchestrator": {"public_ip": self.public_ip()}},
            }),
        })
    }

    /// meta's first apply: the bucket and the secrets' parameters (in moto, and in the
    /// clouds' stand-in for the hosts), the address and key; its outputs.
    fn apply_meta_network(&mut self, call: &Call, vars: &Value) -> Result<(), String> {
        let run_id = required(vars, "run_id")?.to_owned();
        let region = required(vars, "region")?.to_owned();
        if vars["allow_plain_http"] != json!(true) {
            return Err("the rehearsal serves the orchestrator over plain HTTP: the master must pass allow_plain_http".into());
        }
        let bucket = bucket_name(&run_id);
        self.aws(&[
            "s3api",
            "create-bucket",
            "--bucket",
            &bucket,
            "--create-bucket-configuration",
            &format!("LocationConstraint={region}"),
        ])?;
        self.aws(&[
            "s3api",
            "put-bucket-tagging",
            "--bucket",
            &bucket,
            "--tagging",
            &format!(
                "TagSet=[{{Key=Project,Value=ruby-cross-cloud-bench}},{{Key=RunId,Value={run_id}}},{{Key=Name,Value=rcb-{run_id}}}]"
            ),
        ])?;
        // The clouds' APIs the hosts call, with the run's vault among their names.
        let vault_host = format!("{}.vault.azure.net", vault_name(&run_id));
        let names = [
            "management.azure.com",
            &format!("ssm.{region}.amazonaws.com"),
            &vault_host,
        ];
        let internet_ip = self.internet.ip(12);
        let clouds = self.lab.clouds(&self.internet, &internet_ip, &names);
        let inputs = self.meta_inputs(vars)?;
        for parameter in [
            "aws_ssm_parameter.orchestrator_env",
            "aws_ssm_parameter.postgres_env",
        ] {
            let [name, value] = ["name", "value"].map(|argument| {
                resource_argument(&stack("meta"), parameter, None, argument, &inputs)
                    .map(|value| value.as_str().unwrap_or_default().to_owned())
                    .map_err(|e| format!("{e:#}"))
            });
            let (name, value) = (name?, value?);
            self.put_parameter("meta", &run_id, &region, &name, &value)?;
            self.secrets["ssm"][&region][name] = json!(value);
        }
        std::fs::write(&clouds.secrets_file, self.secrets.to_string()).unwrap();
        self.clouds = Some(clouds);

        let key = self.lab.dir.path().join(format!("ssh/rcb-{run_id}.pem"));
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        std::fs::write(&key, "stand-in private key\n").unwrap();
        let values = json!({
            "orchestrator_url": format!("http://{}", self.public_ip()),
            "orchestrator_public_ip": self.public_ip(),
            "api_key": self.keys.api_key, "runner_api_key": self.keys.runner_api_key,
            "operator_password": self.keys.operator_password,
            "bucket": bucket, "region": region, "bastion_address": "203.0.113.9",
            "bastion_private_ip": "10.60.0.5", "ssh_private_key_path": key.display().to_string(),
            "ssh_public_key": "ssh-rsa AAAAB3NzaC1yc2E stand-in", "ssh_user": "ubuntu",
            "meta_region": region, "meta_vpc_id": "vpc-stand-in", "meta_vpc_cidr": "10.60.0.0/16",
            "meta_route_table_id": "rtb-stand-in",
        });
        let outputs: serde_json::Map<String, Value> = values
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| {
                let sensitive =
                    ["api_key", "runner_api_key", "operator_password"].contains(&name.as_str());
                let output = json!({"sensitive": sensitive, "type": "string", "value": value});
                (name.clone(), output)
            })
            .collect();
        let outputs = Value::Object(outputs);
        call.write_state(&json!({
            "version": 4,
            "outputs": outputs,
            "resources": [
                {"mode": "managed", "type": "aws_s3_bucket", "name": "results", "instances": [{}]},
                {"mode": "managed", "type": "aws_eip", "name": "orchestrator", "instances": [{}]},
            ],
        }))?;
        self.outputs = Some(outputs);
        Ok(())
    }

    /// meta's second apply: the orchestrator host, booted from its user data, with the
    /// meta VPC's metadata service.
    fn apply_meta_host(&mut self, call: &Call, vars: &Value) -> Result<(), String> {
        required(vars, "orchestrator_image_url")?;
        required(vars, "postgres_image_url")?;
        let inputs = self.meta_inputs(vars)?;
        let (template, mut template_vars) =
            template_call(&stack("meta"), "aws_instance.orchestrator", None, &inputs)
                .map_err(|e| format!("{e:#}"))?;
        // What the instance role and the SDK's endpoint give the orchestrator on AWS.
        let env = template_vars["orchestrator_env"]
            .as_str()
            .ok_or("orchestrator_env is not text")?
            .to_owned();
        let credentials: BTreeMap<&str, &str> = self
            .emulator_env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        template_vars.insert(
            "orchestrator_env".to_owned(),
            hcl::Value::from(format!(
                "{env}S3_ENDPOINT_URL={}\nAWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
                self.s3_endpoint,
                credentials["AWS_ACCESS_KEY_ID"],
                credentials["AWS_SECRET_ACCESS_KEY"],
            )),
        );
        let user_data = infra_checks::templates::render(&template, template_vars)
            .map_err(|e| format!("{e:#}"))?;
        let imds_ip = self.internet.ip(13);
        let imds = self.lab.create(
            "meta-imds",
            &self.internet,
            &imds_ip,
            &["-v", &stand_ins_mount(), "--entrypoint", "python3"],
            &[
                HOST_IMAGE,
                "-u",
                "/stand-ins/metadata.py",
                "none",
                RUNNER_IDENTITY,
                "0.0.0.0",
            ],
        );
        self.lab.start(&imds);
        let args: Vec<String> = self
            .clouds
            .as_ref()
            .ok_or("meta's second apply before its first")?
            .host_args()
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let public_ip = self.public_ip();
        let host = self.lab.host(
            "orchestrator",
            &self.internet,
            &public_ip,
            &user_data,
            &args,
        );
        self.lab.start(&host);
        // The internet network is internal: the host's own NAT table sends what it addresses
        // to the metadata service to the stand-in, as the VPC would route it.
        let (ok, out) = self.lab.exec(
            &host,
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
                &format!("{imds_ip}:80"),
            ],
        );
        if !ok {
            return Err(format!(
                "the orchestrator host's route to its metadata: {out}"
            ));
        }
        self.hosts
            .entry("meta".into())
            .or_default()
            .extend([imds, host]);
        let mut state: Value = serde_json::from_slice(
            &std::fs::read(call.state.as_ref().ok_or("no -state")?).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        state["resources"].as_array_mut().unwrap().push(
            json!({"mode": "managed", "type": "aws_instance", "name": "orchestrator", "instances": [{}]}),
        );
        call.write_state(&state)
    }

    /// A provider stack: its runner host behind its cloud's NAT, booted from its user data;
    /// the benchmark image loaded once its Docker runs.
    fn apply_runners(&mut self, call: &Call, vars: &Value) -> Result<(), String> {
        let cloud = call.stack.clone();
        let run_id = required(vars, "run_id")?.to_owned();
        let types: Vec<String> = vars["instance_types"]
            .as_array()
            .ok_or("Error: No value for required variable \"instance_types\"")?
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let [instance_type] = &types[..] else {
            return Err(format!(
                "the rehearsal boots one host per stack, not {types:?}"
            ));
        };
        if vars["runs_per_instance_type"] != json!(1) {
            return Err("the rehearsal boots one host per type: runs_per_instance_type 1".into());
        }
        // Not master flags: where ruby-bench comes from, and no packages (no mirror).
        let mut tfvars = vars.clone();
        tfvars["ruby_bench_git_url"] = json!(self.git_url);
        tfvars["bench_packages"] = json!("none");
        let vault = vault_name(&run_id);
        let vm_name = format!(
            "rcb-{run_id}-{}-0",
            instance_type.to_lowercase().replace('_', "-")
        );
        let resource_id = format!(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rcb-{run_id}/providers/Microsoft.Compute/virtualMachines/{vm_name}"
        );
        let (address, known, secret) = if cloud == "aws" {
            (
                "aws_instance.runner",
                json!({"data": {"aws_ec2_instance_type": {"runner": {(instance_type.as_str()): {
                    "default_vcpus": 2, "default_threads_per_core": 2,
                    "supported_architectures": ["i386", "x86_64"],
                }}}}}),
                "aws_ssm_parameter.runner_env",
            )
        } else {
            (
                "azurerm_linux_virtual_machine.runner",
                json!({
                    "azurerm_key_vault": {"run": {"name": vault}},
                    "azurerm_key_vault_secret": {"runner_env": {"name": "runner-env"}},
                    "azurerm_user_assigned_identity": {"runner": {"client_id": RUNNER_IDENTITY}},
                }),
                "azurerm_key_vault_secret.runner_env",
            )
        };
        let inputs = HostInputs { tfvars, known };
        let key = format!("{instance_type}-0");
        let user_data = render_user_data(&stack(&cloud), address, Some(&key), &inputs)
            .map_err(|e| format!("{e:#}"))?;
        let argument = |argument: &str| {
            resource_argument(&stack(&cloud), secret, None, argument, &inputs)
                .map(|value| value.as_str().unwrap_or_default().to_owned())
                .map_err(|e| format!("{e:#}"))
        };
        let value = argument("value")?;
        if cloud == "aws" {
            let region = required(vars, "region")?.to_owned();
            let name = argument("name")?;
            self.put_parameter("aws", &run_id, &region, &name, &value)?;
            self.secrets["ssm"][region][name] = json!(value);
        } else {
            self.secrets["keyvault"][&vault] = json!({ argument("name")?: value });
        }
        let clouds = self.clouds.as_ref().ok_or("a provider stack before meta")?;
        std::fs::write(&clouds.secrets_file, self.secrets.to_string()).unwrap();
        let mut args: Vec<String> = clouds.host_args().iter().map(|a| (*a).to_owned()).collect();
        if cloud == "azure" {
            let ip = self.internet.ip(12);
            args.extend([
                "--add-host".to_owned(),
                format!("{vault}.vault.azure.net:{ip}"),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();

        let net = self.lab.network(&cloud, false);
        let nat_ip = self.internet.ip(if cloud == "aws" { 30 } else { 31 });
        let nat = self.lab.nat(
            &cloud,
            &self.internet,
            &nat_ip,
            &net,
            &resource_id,
            RUNNER_IDENTITY,
        );
        let host = self.lab.host(
            &format!("{cloud}-runner"),
            &net,
            &net.ip(10),
            &user_data,
            &args,
        );
        self.lab.start(&host);
        // The subnet's route table: everything through the NAT.
        let (ok, out) = self.lab.exec(
            &host,
            &["ip", "route", "replace", "default", "via", &net.ip(5)],
        );
        if !ok {
            return Err(format!("{host}: the route through the NAT: {out}"));
        }
        self.networks.insert(cloud.clone(), net);
        self.hosts
            .entry(cloud.clone())
            .or_default()
            .extend([nat, host.clone()]);
        // Docker Hub's part: the benchmark image, once the host's Docker answers.
        let tarball = self.bench_image.clone();
        self.loaders.push(std::thread::spawn(move || {
            let deadline = Instant::now() + BOOT_TIMEOUT;
            while !docker_output(&["exec", &host, "docker", "info"])
                .status
                .success()
            {
                if Instant::now() > deadline {
                    eprintln!("rehearsal: {host}: Docker did not start within {BOOT_TIMEOUT:?}");
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            load_bench_image(&tarball, &host);
            eprintln!("rehearsal: the benchmark image is in {host}");
        }));
        let name = if cloud == "aws" {
            json!({"tags": {"Name": vm_name}})
        } else {
            json!({"name": vm_name})
        };
        let resource_type = address.split('.').next().unwrap();
        call.write_state(&json!({"version": 4, "resources": [
            {"mode": "managed", "type": resource_type, "name": "runner",
             "instances": [{"index_key": key, "attributes": name}]},
        ]}))
    }

    /// Removes what the stack created; meta's bucket goes too (force_destroy), emptied.
    fn destroy(&mut self, call: &Call, vars: &Value) -> Result<(), String> {
        if let Some(hosts) = self.hosts.remove(&call.stack) {
            for host in hosts.iter().rev() {
                self.lab.remove(host);
            }
        }
        if let Some(net) = self.networks.remove(&call.stack) {
            self.lab.remove_network(&net);
        }
        for (region, name) in self.parameters.remove(&call.stack).unwrap_or_default() {
            self.aws(&[
                "ssm",
                "delete-parameter",
                "--region",
                &region,
                "--name",
                &name,
            ])?;
        }
        if call.stack == "meta" {
            let bucket = bucket_name(required(vars, "run_id")?);
            let listed = self.aws(&["s3api", "list-buckets", "--output", "json"])?;
            if listed.contains(&format!("\"{bucket}\"")) {
                self.aws(&["s3", "rb", &format!("s3://{bucket}"), "--force"])?;
            }
        }
        call.write_state(&json!({"version": 4, "resources": []}))
    }

    /// Answers one terraform call.
    fn handle(&mut self, call: &Call) -> Result<String, String> {
        match call.subcommand.as_str() {
            "init" => Ok("Terraform has been successfully initialized! (rehearsal)\n".into()),
            "apply" => {
                let vars = call.vars()?;
                match call.stack.as_str() {
                    "meta" if vars.get("orchestrator_image_url").is_none() => {
                        self.apply_meta_network(call, &vars)?
                    }
                    "meta" => self.apply_meta_host(call, &vars)?,
                    "aws" | "azure" => self.apply_runners(call, &vars)?,
                    other => return Err(format!("no stack terraform/{other}")),
                }
                Ok("Apply complete! (rehearsal)\n".into())
            }
            "output" => {
                let outputs = self
                    .outputs
                    .as_ref()
                    .ok_or("No outputs found: terraform/meta was not applied")?;
                Ok(format!("{outputs}\n"))
            }
            "destroy" => {
                let vars = call.vars()?;
                self.destroy(call, &vars)?;
                Ok("Destroy complete! (rehearsal)\n".into())
            }
            other => Err(format!(
                "the rehearsal's terraform does not stand in for {other:?}"
            )),
        }
    }
}

fn bucket_name(run_id: &str) -> String {
    format!("rcb-{run_id}-results")
}

fn vault_name(run_id: &str) -> String {
    format!("rcb-{run_id}-ab12c")
}

/// Serves the stand-in terraform's calls in `dir` until `done`: each call in a thread of
/// its own, as the master makes them (the provider stacks at once).
fn serve_terraform(
    dir: PathBuf,
    cloud: Arc<Mutex<Cloud>>,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = cloud.lock().unwrap().started;
        let mut seen = std::collections::BTreeSet::new();
        let mut calls = Vec::new();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            // The directory goes with the test's lab when the test fails.
            let Ok(entries) = std::fs::read_dir(&dir) else {
                break;
            };
            let mut requests: Vec<PathBuf> = entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|e| e == "request"))
                .filter(|path| !seen.contains(path))
                .collect();
            requests.sort();
            for request in requests {
                seen.insert(request.clone());
                let cloud = Arc::clone(&cloud);
                calls.push(std::thread::spawn(move || {
                    let call = Call::read(&request);
                    let asked = started.elapsed().as_secs_f64();
                    let mut cloud = cloud.lock().unwrap_or_else(|e| e.into_inner());
                    cloud.phase(&format!("terraform {} {}", call.subcommand, call.stack));
                    // A panic (a stack that does not render) is the call's failure: the
                    // master hears of it instead of waiting.
                    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        cloud.handle(&call)
                    }))
                    .unwrap_or_else(|panic| {
                        Err(panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_else(|| "the stand-in panicked".to_owned()))
                    });
                    if call.subcommand == "apply" {
                        let answered = cloud.started.elapsed().as_secs_f64();
                        cloud.applies.push((call.stack.clone(), asked, answered));
                    }
                    match answer {
                        Ok(stdout) => call.answer(0, &stdout, ""),
                        Err(error) => {
                            eprintln!(
                                "rehearsal: terraform {} {}: {error}",
                                call.subcommand, call.stack
                            );
                            call.answer(1, "", &format!("{error}\n"))
                        }
                    }
                }));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for call in calls {
            call.join().expect("a terraform call's thread");
        }
    })
}

/// The master's cloud path from the preflight to the teardown, with the hosts booted from
/// the user data of the variables it wrote: it ends with the run's results in
/// `results/<run-id>/`, nothing of the run in moto, and no host in Docker.
#[tokio::test(flavor = "multi_thread")]
async fn a_whole_cloud_run_rehearsed_with_booted_hosts_and_the_aws_cli_against_moto() {
    // Not beside a fault test or the hosts test: the boots would stretch their timeouts.
    let _one = crate::faults::ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let phase = |what: &str| {
        eprintln!(
            "rehearsal: {what} at {:.0}s",
            started.elapsed().as_secs_f64()
        )
    };
    let mut lab = Lab::new();
    let internet = lab.network("internet", true);
    // moto on this machine's address on the lab's internet: the master, the orchestrator
    // host and the runner hosts (through their NATs) reach it there.
    let emulator = AwsEmulator::start_at(&internet.ip(1));
    // What moto holds before the run: its default VPC of the region, with its subnets.
    let before = emulator.census();
    let dir = lab.dir.path().to_owned();
    let (commit, _) = ruby_bench_repository(&dir);
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
    // The deployed images: the tests' orchestrator under a tag of this run's own, and the
    // runner's saved image as a --runner-tarball.
    let deploy_tag = format!("rehearsal-{}", lab.id);
    let orchestrator_image = format!("rcb/orchestrator:{deploy_tag}-x86_64");
    docker(&["tag", "rcb/orchestrator:latest", &orchestrator_image]);
    let _untag = Untag(orchestrator_image.clone());
    let runner_tarball = saved_image("rcb/runner:latest");
    let bench_image = saved_image("rcb/ruby:3.1.2");
    phase("the lab's internet is up");

    let id = lab.id.clone();
    let terraform_dir = dir.join("terraform-calls");
    std::fs::create_dir_all(&terraform_dir).unwrap();
    let cloud = Arc::new(Mutex::new(Cloud {
        lab,
        internet,
        networks: BTreeMap::new(),
        emulator_env: emulator.env(),
        s3_endpoint: emulator.endpoint(),
        git_url: format!("http://{git_ip}/ruby-bench.git"),
        clouds: None,
        secrets: json!({"ssm": {}, "keyvault": {}}),
        outputs: None,
        hosts: BTreeMap::new(),
        parameters: BTreeMap::new(),
        applies: Vec::new(),
        bench_image,
        loaders: Vec::new(),
        keys: Keys {
            api_key: format!("apikey{id}"),
            runner_api_key: format!("runnerkey{id}"),
            operator_password: format!("operator{id}"),
            postgres_password: format!("postgres{id}"),
        },
        started,
    }));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve_terraform(terraform_dir.clone(), Arc::clone(&cloud), Arc::clone(&done));

    // The tools: the stand-in terraform, the real aws CLI, the az recorder.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let recorders = project_root().join("tests/system/recorders");
    for (name, target) in [
        (
            "terraform",
            project_root().join("tests/system/rehearsal/terraform"),
        ),
        ("aws", emulator.bin().join("aws")),
        ("az", recorders.join("az")),
        ("common.sh", recorders.join("common.sh")),
    ] {
        std::os::unix::fs::symlink(target, bin.join(name)).unwrap();
    }
    let recorder_dir = dir.join("recorder");
    std::fs::create_dir_all(&recorder_dir).unwrap();
    let config = dir.join("run.json");
    std::fs::write(
        &config,
        json!({
            "ruby_version": "3.1.2", "runs_per_instance_type": 1, "aws": [AWS_TYPE], "azure": [AZURE_TYPE],
            "ruby_bench": {"benchmarks": ["fib"], "modes": ["interp"], "warmup": 1, "bench": 2},
        })
        .to_string(),
    )
    .unwrap();
    let results = dir.join("results");
    let state_root = dir.join("state");
    let path = std::env::join_paths([bin.clone()].into_iter().chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let mut master = tokio::process::Command::new("fish");
    master
        .arg(project_root().join("fish/master.fish"))
        .args([
            "--config",
            &config.display().to_string(),
            "--results-dir",
            &results.display().to_string(),
            "--aws-region",
            AWS_REGION,
            "--azure-region",
            AZURE_REGION,
            "--allowed-ssh-cidr",
            "203.0.113.7/32",
            "--allow-plain-http",
            "--ruby-bench-commit",
            &commit,
            "--bench-image-repo",
            "rcb/ruby",
            "--no-image-build",
            "--runner-tarball",
            &format!("x86_64={}", runner_tarball.display()),
            "--poll-secs",
            "2",
            "--yes",
        ])
        .current_dir(project_root())
        .env("PATH", path)
        .envs(emulator.env())
        .env("RCB_DEPLOY_TAG", &deploy_tag)
        .env("RCB_REHEARSAL_DIR", &terraform_dir)
        .env("RCB_RECORDER_LOG", recorder_dir.join("calls.log"))
        .env("RCB_RECORDER_DIR", &recorder_dir)
        .env("RCB_STATE_ROOT", &state_root)
        .env("RCB_LOGS_ROOT", dir.join("logs"))
        .env("NUKE_WAIT_SECS", "30")
        .env_remove("ORCHESTRATOR_URL")
        .env_remove("API_KEY")
        .env_remove("AWS_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("ARM_SUBSCRIPTION_ID")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = master
        .spawn()
        .expect("fish runs; install it with apt-get install -y fish");
    // The master's lines as they come, with the time: the phases of the run.
    let stderr = child.stderr.take().unwrap();
    let lines = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut all = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!(
                "rehearsal: [{:.0}s] {line}",
                started.elapsed().as_secs_f64()
            );
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let status = tokio::time::timeout(MASTER_TIMEOUT, child.wait()).await;
    let stderr = lines.await.unwrap();
    phase("the master script ended");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().expect("the stand-in terraform's server");
    let mut cloud = Arc::try_unwrap(cloud)
        .ok()
        .expect("no terraform call is left")
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let status = match status {
        Ok(status) => status.unwrap(),
        Err(_) => panic!(
            "the master script did not end within {MASTER_TIMEOUT:?}:\n{stderr}{}",
            cloud.lab.report()
        ),
    };
    assert_eq!(
        status.code(),
        Some(0),
        "the master script failed:\n{stderr}{}{}",
        logs_of(&dir.join("logs")),
        cloud.lab.report()
    );
    for loader in std::mem::take(&mut cloud.loaders) {
        loader.join().expect("a benchmark image load");
    }

    // The run's results, each task's, in results/<run-id>/.
    let run_id = stderr
        .lines()
        .find_map(|line| line.strip_prefix("master.fish: results of run "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no results line:\n{stderr}"))
        .to_owned();
    assert!(stderr.contains(": 2 completed, 0 failed"), "{stderr}");
    let run_dir = results.join(&run_id);
    let tasks: Vec<String> = std::fs::read_dir(&run_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", run_dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| run_dir.join(name).is_dir())
        .collect();
    for instance_type in [AWS_TYPE, AZURE_TYPE] {
        let task = tasks
            .iter()
            .find(|name| name.contains(instance_type))
            .unwrap_or_else(|| panic!("no task of {instance_type} in {tasks:?}"));
        let task = run_dir.join(task);
        let meta: Value =
            serde_json::from_slice(&std::fs::read(task.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["instance_type"], instance_type, "{meta}");
        assert!(!task.join("error.json").exists(), "{}", task.display());
        assert!(
            std::fs::read_dir(&task).unwrap().count() > 1,
            "{}: the task's results",
            task.display()
        );
    }
    // The provider stacks were applied at once: each was asked for before the other was
    // answered.
    let providers: Vec<&(String, f64, f64)> = cloud
        .applies
        .iter()
        .filter(|(stack, _, _)| stack != "meta")
        .collect();
    assert_eq!(providers.len(), 2, "{:?}", cloud.applies);
    assert!(
        providers[0].1 < providers[1].2 && providers[1].1 < providers[0].2,
        "the provider stacks were applied one after the other: {:?}",
        cloud.applies
    );
    // The teardown: nuke destroyed every stack, swept moto with the real aws CLI and found
    // nothing left; the run's state, variables and SSH key are gone.
    assert!(
        stderr.contains(&format!("nuke.fish: nothing of run {run_id} remains")),
        "{stderr}"
    );
    assert!(!state_root.join(&run_id).exists());
    assert!(
        !cloud
            .lab
            .dir
            .path()
            .join(format!("ssh/rcb-{run_id}.pem"))
            .exists()
    );
    let census = emulator.census();
    assert_eq!(
        census.difference(&before).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "left in moto"
    );
    // No host is left: the lab's internet alone (git, the clouds' APIs) remains for its
    // drop to remove.
    assert!(cloud.hosts.is_empty(), "{:?}", cloud.hosts);
    assert!(cloud.parameters.is_empty(), "{:?}", cloud.parameters);
    let label = format!("label=rcb.hosts={}", cloud.lab.id);
    let left = docker(&["ps", "--all", "--format", "{{.Names}}", "--filter", &label]);
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(
        left,
        [cloud.lab.name("clouds"), cloud.lab.name("git")],
        "containers left"
    );
    let networks = docker(&["network", "ls", "--format", "{{.Name}}", "--filter", &label]);
    assert_eq!(networks, cloud.lab.name("internet"), "networks left");
    phase("the run is torn down");
    drop(cloud);
    drop(emulator);
    let left = docker(&["ps", "--all", "--quiet", "--filter", &label]);
    let networks = docker(&["network", "ls", "--quiet", "--filter", &label]);
    assert!(
        left.is_empty() && networks.is_empty(),
        "left behind: {left} {networks}"
    );
}

/// The logs the master and nuke scripts wrote under `root`, each file's last lines.
fn logs_of(root: &Path) -> String {
    let mut text = String::new();
    let runs = std::fs::read_dir(root).into_iter().flatten().flatten();
    for run in runs {
        for file in std::fs::read_dir(run.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let content = std::fs::read_to_string(file.path()).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            text.push_str(&format!("\n===== {} =====\n{tail}", file.path().display()));
        }
    }
    text
}

/// Removes the run's image tag when the test ends, however it ends.
struct Untag(String);

impl Drop for Untag {
    fn drop(&mut self) {
        let _ = docker_output(&["rmi", &self.0]);
    }
}
