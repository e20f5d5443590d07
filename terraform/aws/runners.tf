resource "aws_key_pair" "run" {
  key_name   = "${local.name}-runners"
  public_key = var.ssh_public_key
}

resource "aws_security_group" "runner" {
  name        = "${local.name}-runner"
  description = "Runners: SSH from the bastion only, nothing else inbound"
  vpc_id      = aws_vpc.runners.id
}

resource "aws_vpc_security_group_ingress_rule" "runner_ssh" {
  security_group_id = aws_security_group.runner.id
  description       = "SSH from the bastion in the peered meta VPC"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = "${var.bastion_private_ip}/32"
}

resource "aws_vpc_security_group_egress_rule" "runner_all" {
  security_group_id = aws_security_group.runner.id
  description       = "Orchestrator, S3, Docker Hub, rubygems.org, git, package mirrors"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# RUNNER_API_KEY is added at boot from SSM (secrets.tf).
locals {
  runner_env = {
    for key, r in local.runners : key => {
      ORCHESTRATOR_URL        = var.orchestrator_url
      PROVIDER                = "aws"
      INSTANCE_TYPE           = r.type
      RUNNER_ID               = "${local.name}-${key}" # the instance's Name tag
      SLOTS                   = tostring(local.slots[r.type])
      SLOT_MODE               = var.slot_mode
      BENCH_IMAGE_REPO        = var.bench_image_repo
      BENCH_PACKAGES          = var.bench_packages
      RUBY_BENCH_GIT_URL      = var.ruby_bench_git_url
      RUBY_BENCH_COMMIT       = var.ruby_bench_commit
      HEARTBEAT_INTERVAL_SECS = tostring(var.heartbeat_interval_secs)
      CLAIM_RETRY_SECS        = tostring(var.claim_retry_secs)
      # The runner's ruby-bench checkout: bind-mounted into benchmark containers, so the
      # host script mounts it at the same path (it reads the path from this file).
      RUNNER_CACHE_DIR = "/var/cache/rcb-runner"
    }
  }
}

resource "aws_instance" "runner" {
  for_each = local.runners

  ami                    = data.aws_ssm_parameter.ubuntu[local.arch[each.value.type]].insecure_value
  instance_type          = each.value.type
  subnet_id              = try(aws_subnet.private[local.zones_by_type[each.value.type][0]].id, null)
  vpc_security_group_ids = [aws_security_group.runner.id]
  key_name               = aws_key_pair.run.key_name
  iam_instance_profile   = aws_iam_instance_profile.runner.name

  # Powering off (the runner's wrapper on exit 0, the TTL backstop) ends the instance and
  # its billing.
  instance_initiated_shutdown_behavior = "terminate"

  # default_tags do not reach the volumes an instance creates.
  volume_tags = merge(local.tags, { Name = "${local.name}-${each.key}" })

  # The runner container uses host networking; one hop (and the host's firewall) keeps
  # IMDS, the role's credentials and the user data away from the benchmark containers.
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_gb
    encrypted             = true
    delete_on_termination = true
  }

  user_data = templatefile("${path.module}/cloud-init/runner.yaml.tftpl", {
    runner_env       = join("", [for k in sort(keys(local.runner_env[each.key])) : "${k}=${local.runner_env[each.key][k]}\n"])
    runner_image_url = lookup(var.runner_image_urls, local.arch[each.value.type], "")
    ttl_minutes      = var.ttl_minutes
    project          = local.tags.Project
    host_script      = file("${path.module}/../shared/runner-host.sh")
    poweroff_script  = file("${path.module}/cloud-init/rcb-poweroff.sh")
    secrets          = local.runner_secrets
    secrets_script   = file("${path.module}/../shared/rcb-secrets.sh")
  })

  lifecycle {
    # Presigned URLs and AMIs change between applies; a re-apply must not replace runners
    # in the middle of a run (cloud-init reads user data at first boot only).
    ignore_changes = [ami, user_data]

    precondition {
      condition     = length(local.zones_by_type[each.value.type]) > 0
      error_message = "No available zone of ${var.region} offers ${each.value.type}."
    }

    precondition {
      condition     = lookup(var.runner_image_urls, local.arch[each.value.type], "") != ""
      error_message = "runner_image_urls has no ${local.arch[each.value.type]} image, which ${each.value.type} needs."
    }
  }

  tags = { Name = "${local.name}-${each.key}" }

  # The runners need the NAT gateway, and their key readable, from their first boot.
  depends_on = [
    aws_route_table_association.private,
    aws_ssm_parameter.runner_env,
    aws_iam_role_policy.runner_secret,
  ]
}
