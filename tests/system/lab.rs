//! The lab of the tests that boot hosts (`hosts.rs`, `rehearsal.rs`): Docker networks
//! standing in for the clouds' networks, containers standing in for their hosts and
//! services, each labelled with the project and the lab's id and removed when the lab is
//! dropped; the stand-in services the hosts call (`hosts/`); the images and the ruby-bench
//! repository the hosts fetch.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use infra_checks::Stack;

use crate::harness::project_root;

/// The image every stand-in host boots.
pub(crate) const HOST_IMAGE: &str = "rcb/host:bookworm";

/// How long a host may take to boot to the point a test waits for.
pub(crate) const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// The lab: networks and containers of one test, removed on drop.
pub(crate) struct Lab {
    pub(crate) id: String,
    pub(crate) dir: tempfile::TempDir,
    containers: Vec<String>,
    networks: Vec<String>,
}

/// A Docker network of the lab and its /24 prefix ("10.123.45").
pub(crate) struct Network {
    pub(crate) name: String,
    pub(crate) prefix: String,
}

impl Network {
    pub(crate) fn ip(&self, host: u8) -> String {
        format!("{}.{host}", self.prefix)
    }
}

pub(crate) fn docker_output(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs; install Docker Engine")
}

/// Runs `docker` with `args`, failing the test with its stderr; its stdout, trimmed.
pub(crate) fn docker(args: &[&str]) -> String {
    let output = docker_output(args);
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Runs a shell pipeline (`docker save | gzip`), failing the test when it fails.
pub(crate) fn shell(script: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("set -e; {script}")])
        .status()
        .expect("sh runs");
    assert!(status.success(), "{script}");
}

impl Lab {
    pub(crate) fn new() -> Self {
        for image in [
            HOST_IMAGE,
            "rcb/s3-local:latest",
            "rcb/runner:latest",
            "rcb/orchestrator:latest",
            "rcb/postgres:15",
            "rcb/ruby:3.1.2",
        ] {
            local_stack::check_docker(image).unwrap_or_else(|e| panic!("{e}"));
        }
        let id = format!("{:08x}", rand_u32());
        Self {
            id,
            dir: tempfile::tempdir().expect("a temporary directory"),
            containers: Vec::new(),
            networks: Vec::new(),
        }
    }

    pub(crate) fn name(&self, part: &str) -> String {
        format!("rcb-host-{}-{part}", self.id)
    }

    pub(crate) fn labels(&self) -> Vec<String> {
        let catalog = local_stack::catalog();
        vec![
            "--label".to_owned(),
            format!("{}={}", catalog.label, catalog.project),
            "--label".to_owned(),
            format!("rcb.hosts={}", self.id),
        ]
    }

    /// A network on a free 10.x.y.0/24 (tried until Docker finds no overlap). `internal`
    /// networks carry only traffic within their subnet (Docker drops the rest, even between
    /// two of its containers); a cloud's private network needs its NAT to forward to other
    /// subnets, so it is a plain bridge whose way out through this machine (a default route
    /// Docker gives, without masquerading) is replaced by the NAT at once.
    pub(crate) fn network(&mut self, part: &str, internal: bool) -> Network {
        let name = self.name(part);
        for _ in 0..20 {
            let seed = rand_u32();
            let prefix = format!("10.{}.{}", 100 + seed % 150, (seed >> 8) % 256);
            let subnet = format!("{prefix}.0/24");
            let mut args = vec!["network", "create", "--subnet", subnet.as_str()];
            if internal {
                args.push("--internal");
            } else {
                args.extend(["-o", "com.docker.network.bridge.enable_ip_masquerade=false"]);
            }
            let labels = self.labels();
            args.extend(labels.iter().map(String::as_str));
            args.push(name.as_str());
            if docker_output(&args).status.success() {
                self.networks.push(name.clone());
                return Network { name, prefix };
            }
        }
        panic!("no free 10.x.y.0/24 for network {name}");
    }

    /// Creates (not starts) a container on `network` at `ip`; `args` go before the image.
    pub(crate) fn create(
        &mut self,
        part: &str,
        network: &Network,
        ip: &str,
        args: &[&str],
        image_and_cmd: &[&str],
    ) -> String {
        let name = self.name(part);
        let labels = self.labels();
        let mut all = vec![
            "create",
            "--name",
            name.as_str(),
            "--hostname",
            part,
            "--network",
            network.name.as_str(),
            "--ip",
            ip,
        ];
        all.extend(labels.iter().map(String::as_str));
        all.extend_from_slice(args);
        all.extend_from_slice(image_and_cmd);
        docker(&all);
        self.containers.push(name.clone());
        name
    }

    /// A stand-in host: systemd with the user data as cloud-init's NoCloud seed.
    pub(crate) fn host(
        &mut self,
        part: &str,
        network: &Network,
        ip: &str,
        user_data: &str,
        extra: &[&str],
    ) -> String {
        let root = self.dir.path().join(format!("seed-{part}"));
        let seed = root.join("var/lib/cloud/seed/nocloud");
        std::fs::create_dir_all(&seed).unwrap();
        std::fs::write(seed.join("user-data"), user_data).unwrap();
        std::fs::write(
            seed.join("meta-data"),
            format!("instance-id: {part}\nlocal-hostname: {part}\n"),
        )
        .unwrap();
        // As privileged as this machine's Docker allows (its processes lack
        // CAP_SYS_RESOURCE, so --privileged fails): every other capability, no seccomp or
        // AppArmor profile, every device, and the cgroup hierarchy writable for the host's
        // own Docker engine.
        let mut args = vec![
            "--cap-add",
            "ALL",
            "--cap-drop",
            "SYS_RESOURCE",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "--security-opt",
            "systempaths=unconfined",
            "--device-cgroup-rule",
            "a *:* rwm",
            "--cgroupns",
            "host",
            "--volume",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tty",
            "--tmpfs",
            "/run:rw,exec,mode=755",
            "--tmpfs",
            "/run/lock",
            "--tmpfs",
            "/tmp:rw,exec",
            "--tmpfs",
            "/var/lib/docker:rw,exec,size=6g",
        ];
        args.extend_from_slice(extra);
        let name = self.create(part, network, ip, &args, &[HOST_IMAGE]);
        docker(&["cp", &format!("{}/.", root.display()), &format!("{name}:/")]);
        name
    }

    pub(crate) fn start(&self, name: &str) {
        docker(&["start", name]);
    }

    /// What a container printed (a host's console: systemd and the journal).
    pub(crate) fn logs(&self, name: &str) -> String {
        let output = docker_output(&["logs", name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    pub(crate) fn running(&self, name: &str) -> bool {
        docker(&["inspect", "--format", "{{.State.Running}}", name]) == "true"
    }

    /// Runs `command` in the running container `name`; its success and output.
    pub(crate) fn exec(&self, name: &str, command: &[&str]) -> (bool, String) {
        let mut args = vec!["exec", name];
        args.extend_from_slice(command);
        let output = docker_output(&args);
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// Everything worth reading when a test fails.
    pub(crate) fn report(&self) -> String {
        let mut text = String::new();
        for name in &self.containers {
            let logs = self.logs(name);
            let tail: Vec<&str> = logs.lines().rev().take(120).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            text.push_str(&format!("\n===== {name} =====\n{}", tail.join("\n")));
            if self.running(name) && self.exec(name, &["test", "-d", "/run/systemd/system"]).0 {
                let (_, journal) = self.exec(
                    name,
                    &[
                        "journalctl",
                        "--no-pager",
                        "-n",
                        "80",
                        "-u",
                        "rcb-runner",
                        "-u",
                        "cloud-final",
                    ],
                );
                text.push_str(&format!("\n----- {name}: journal -----\n{journal}"));
            }
        }
        text
    }

    /// Waits until `check` holds, failing the test with the lab's report after `timeout`.
    pub(crate) async fn wait_for<F: FnMut() -> bool>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: F,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !check() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {timeout:?}{}",
                self.report()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The stand-in of the clouds' APIs the hosts call (`hosts/clouds.py`: Resource Manager,
/// SSM, Key Vault), its certificate and the secrets it serves.
pub(crate) struct Clouds {
    /// Its container.
    pub(crate) name: String,
    /// The secrets it serves (`{"ssm": {REGION: {NAME: VALUE}}, "keyvault": {VAULT: {...}}}`),
    /// read at each request.
    pub(crate) secrets_file: PathBuf,
    /// `docker create` arguments for a host that calls the APIs.
    host_args: Vec<String>,
}

impl Clouds {
    /// The arguments that make a host trust the stand-in's certificate (and nothing else:
    /// hosts reach no other TLS server) and find the APIs at its address, as DNS would.
    pub(crate) fn host_args(&self) -> Vec<&str> {
        self.host_args.iter().map(String::as_str).collect()
    }
}

impl Lab {
    /// Starts the clouds' API stand-in at `ip` of `internet`, answering for `names` with a
    /// certificate of its own, with no secrets yet.
    pub(crate) fn clouds(&mut self, internet: &Network, ip: &str, names: &[&str]) -> Clouds {
        let certs = self.dir.path().join("clouds");
        std::fs::create_dir_all(&certs).unwrap();
        let secrets_file = certs.join("secrets.json");
        std::fs::write(&secrets_file, "{}").unwrap();
        let certs_mount = format!("{}:/certs", certs.display());
        let labels = self.labels();
        let mut openssl = vec!["run", "--rm", "--network", "none"];
        openssl.extend(labels.iter().map(String::as_str));
        let alt_names = format!(
            "subjectAltName={}",
            names
                .iter()
                .map(|name| format!("DNS:{name}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        docker(
            &[
                &openssl[..],
                &[
                    "-v",
                    &certs_mount,
                    "--entrypoint",
                    "openssl",
                    HOST_IMAGE,
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=management.azure.com",
                    "-addext",
                    &alt_names,
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-keyout",
                    "/certs/clouds.key",
                    "-out",
                    "/certs/clouds.pem",
                ],
            ]
            .concat(),
        );
        let stand_ins_mount = stand_ins_mount();
        let name = self.create(
            "clouds",
            internet,
            ip,
            &[
                "-v",
                &stand_ins_mount,
                "-v",
                &certs_mount,
                "--entrypoint",
                "python3",
            ],
            &[
                HOST_IMAGE,
                "-u",
                "/stand-ins/clouds.py",
                "/certs/clouds.pem",
                "/certs/clouds.key",
                "/certs/secrets.json",
            ],
        );
        self.start(&name);
        let mut host_args = vec![
            "-v".to_owned(),
            format!(
                "{}:/etc/ssl/certs/ca-certificates.crt:ro",
                certs.join("clouds.pem").display()
            ),
        ];
        for api in names {
            host_args.extend(["--add-host".to_owned(), format!("{api}:{ip}")]);
        }
        Clouds {
            name,
            secrets_file,
            host_args,
        }
    }

    /// A cloud's NAT for the private network `net` (at its .5), at `ip` of `internet`; it
    /// serves the cloud's metadata service on 169.254.169.254 (off the host, as on a
    /// cloud) for the VM `resource_id` (Azure's) and the identity `identity`. Started.
    pub(crate) fn nat(
        &mut self,
        cloud: &str,
        internet: &Network,
        ip: &str,
        net: &Network,
        resource_id: &str,
        identity: &str,
    ) -> String {
        let script = format!(
            "set -e; iptables -t nat -A POSTROUTING -s {0}.0/24 ! -d {0}.0/24 -j MASQUERADE; \
             ip addr add 169.254.169.254/32 dev lo; exec python3 -u /stand-ins/metadata.py {resource_id} {identity}",
            net.prefix
        );
        let stand_ins_mount = stand_ins_mount();
        let nat = self.create(
            &format!("{cloud}-nat"),
            internet,
            ip,
            &[
                "--cap-add",
                "NET_ADMIN",
                "--sysctl",
                "net.ipv4.ip_forward=1",
                "-v",
                &stand_ins_mount,
                "--entrypoint",
                "sh",
            ],
            &[HOST_IMAGE, "-c", &script],
        );
        docker(&["network", "connect", "--ip", &net.ip(5), &net.name, &nat]);
        self.start(&nat);
        nat
    }

    /// Removes the container `name` of the lab (a destroyed host), with its volumes.
    pub(crate) fn remove(&mut self, name: &str) {
        docker(&["rm", "--force", "--volumes", name]);
        self.containers.retain(|container| container != name);
    }

    /// Removes the network of the lab `network`; its containers must be gone.
    pub(crate) fn remove_network(&mut self, network: &Network) {
        docker(&["network", "rm", &network.name]);
        self.networks.retain(|name| name != &network.name);
    }
}

/// The stand-in services of `hosts/`, mounted read-only at `/stand-ins`.
pub(crate) fn stand_ins_mount() -> String {
    format!(
        "{}:/stand-ins:ro",
        project_root().join("tests/system/hosts").display()
    )
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.containers.iter().rev() {
            let _ = Command::new("docker")
                .args(["rm", "--force", "--volumes", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for name in self.networks.iter().rev() {
            let _ = Command::new("docker")
                .args(["network", "rm", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub(crate) fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish() as u32
}

/// ruby-bench-mini as a git repository served over plain HTTP: a good commit, and on top
/// of it one whose `run_benchmarks.rb` fails at once (no report: the task fails). Returns
/// (good, broken) commits.
pub(crate) fn ruby_bench_repository(root: &Path) -> (String, String) {
    let work = root.join("ruby-bench");
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(args)
            .current_dir(&work)
            .env("GIT_AUTHOR_NAME", "rcb")
            .env("GIT_AUTHOR_EMAIL", "rcb@example.invalid")
            .env("GIT_COMMITTER_NAME", "rcb")
            .env("GIT_COMMITTER_EMAIL", "rcb@example.invalid")
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    std::fs::create_dir_all(&work).unwrap();
    shell(&format!(
        "cp -a {}/. {}",
        project_root().join("fixtures/ruby-bench-mini").display(),
        work.display()
    ));
    git(&["init", "--quiet", "--initial-branch=main"]);
    git(&["add", "--all"]);
    git(&["commit", "--quiet", "-m", "ruby-bench-mini"]);
    let good = git(&["rev-parse", "HEAD"]);
    std::fs::write(
        work.join("run_benchmarks.rb"),
        "abort 'broken on purpose by tests/system/hosts.rs'\n",
    )
    .unwrap();
    git(&["commit", "--quiet", "--all", "-m", "broken"]);
    let broken = git(&["rev-parse", "HEAD"]);
    let bare = root.join("git/ruby-bench.git");
    let output = Command::new("git")
        .args(["clone", "--quiet", "--bare"])
        .arg(&work)
        .arg(&bare)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Command::new("git")
        .args(["update-server-info"])
        .current_dir(&bare)
        .output()
        .unwrap();
    assert!(output.status.success());
    (good, broken)
}

/// The test's S3 client and presigner for the run's bucket on s3-local.
pub(crate) struct Bucket {
    client: aws_sdk_s3::Client,
    presigner: orchestrator::Presigner,
    pub(crate) name: String,
}

impl Bucket {
    pub(crate) async fn create(
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        name: &str,
    ) -> Self {
        let credentials = Credentials::new(access_key, secret_key, None, None, "hosts-test");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials.clone())
            .force_path_style(true)
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Err(err) = client.create_bucket().bucket(name).send().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "s3-local at {endpoint}: {err:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let presigner = orchestrator::Presigner::new(
            client.clone(),
            credentials,
            name,
            Duration::from_secs(6 * 3600),
        );
        Self {
            client,
            presigner,
            name: name.to_owned(),
        }
    }

    /// The saved image into the bucket, as the master script uploads images; the presigned
    /// GET URL.
    pub(crate) async fn upload_image(&self, image: &str, key: &str) -> String {
        let file = saved_image(image);
        let body = aws_sdk_s3::primitives::ByteStream::from_path(&file)
            .await
            .unwrap();
        self.client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload of {key}: {e:?}"));
        self.presigner.get_url(key).await.unwrap()
    }
}

/// `docker save IMAGE | gzip -1`, as the master script saves images, cached by the image's
/// id in `~/.cache/rcb/saved-images/` (saving is most of the time this test would take
/// otherwise); an older save of the same image is removed.
pub(crate) fn saved_image(image: &str) -> PathBuf {
    let id = docker(&["image", "inspect", "--format", "{{.Id}}", image]);
    let id = id.trim_start_matches("sha256:");
    let name = image.replace(['/', ':'], "-");
    let home = std::env::var_os("HOME").expect("HOME is set");
    let cache = Path::new(&home).join(".cache/rcb/saved-images");
    std::fs::create_dir_all(&cache).unwrap();
    let file = cache.join(format!("{name}-{}.tar.gz", &id[..16]));
    if !file.exists() {
        for entry in std::fs::read_dir(&cache).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&format!("{name}-")))
            {
                std::fs::remove_file(path).unwrap();
            }
        }
        let partial = file.with_extension("partial");
        shell(&format!(
            "docker save {image} | gzip -1 > {}",
            partial.display()
        ));
        std::fs::rename(&partial, &file).unwrap();
    }
    file
}

pub(crate) fn stack(name: &str) -> Stack {
    Stack::load_named(name).unwrap_or_else(|e| panic!("terraform/{name}: {e:#}"))
}

/// Loads the benchmark image (`docker save`d into `tarball`) into a runner host's own Docker
/// engine: Docker Hub's part.
pub(crate) fn load_bench_image(tarball: &Path, host: &str) {
    shell(&format!(
        "docker exec -i {host} docker load < {} >/dev/null",
        tarball.display()
    ));
}
