# The SSH bastion and the orchestrator host, both Ubuntu 24.04 in the public subnet.

resource "aws_security_group" "bastion" {
  name        = "${local.name}-bastion"
  description = "SSH to the bastion from the allowed network only"
  vpc_id      = aws_vpc.meta.id
}

resource "aws_vpc_security_group_ingress_rule" "bastion_ssh" {
  security_group_id = aws_security_group.bastion.id
  description       = "SSH from the allowed network"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.allowed_ssh_cidr
}

resource "aws_vpc_security_group_egress_rule" "bastion_all" {
  security_group_id = aws_security_group.bastion.id
  description       = "SSH onwards to the hosts of the run, package mirrors"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "orchestrator" {
  name        = "${local.name}-orchestrator"
  description = "HTTP(S) to the orchestrator from anywhere, SSH from the bastion"
  vpc_id      = aws_vpc.meta.id
}

# Runners on both clouds reach the orchestrator through NAT addresses that do not exist
# when this stack is applied, so the web ports are open to the internet. The API needs
# the API key, the dashboard the operator login.
resource "aws_vpc_security_group_ingress_rule" "orchestrator_http" {
  security_group_id = aws_security_group.orchestrator.id
  description       = local.https ? "ACME challenges and the redirect to HTTPS" : "orchestrator over plain HTTP"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "orchestrator_https" {
  count = local.https ? 1 : 0

  security_group_id = aws_security_group.orchestrator.id
  description       = "orchestrator over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "orchestrator_ssh" {
  security_group_id            = aws_security_group.orchestrator.id
  description                  = "SSH from the bastion"
  ip_protocol                  = "tcp"
  from_port                    = 22
  to_port                      = 22
  referenced_security_group_id = aws_security_group.bastion.id
}

resource "aws_vpc_security_group_egress_rule" "orchestrator_all" {
  security_group_id = aws_security_group.orchestrator.id
  description       = "S3, package mirrors, Let's Encrypt"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_instance" "bastion" {
  ami                         = local.host_ami[var.bastion_instance_type]
  instance_type               = var.bastion_instance_type
  subnet_id                   = aws_subnet.public.id
  vpc_security_group_ids      = [aws_security_group.bastion.id]
  key_name                    = aws_key_pair.run.key_name
  associate_public_ip_address = true
  volume_tags                 = local.tags

  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 8
    encrypted   = true
  }

  # A newer Ubuntu image must not replace the bastion in the middle of a run.
  lifecycle {
    ignore_changes = [ami]
  }

  tags = { Name = "${local.name}-bastion" }
}

# The orchestrator's address exists from the first apply, so the DNS record (and with it
# the certificate) can be in place before the host boots.
resource "aws_eip" "orchestrator" {
  domain = "vpc"

  tags = { Name = "${local.name}-orchestrator" }
}

resource "aws_route53_record" "orchestrator" {
  count = local.https && var.route53_zone_id != "" ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain
  type    = "A"
  ttl     = 60
  records = [aws_eip.orchestrator.public_ip]
  # The name of an earlier run (destroyed, or left behind) points at an address that is
  # gone: this run takes the name over instead of failing on the existing record.
  allow_overwrite = true
}

locals {
  # What is not secret; the rest is in SSM (secrets.tf).
  orchestrator_env = {
    LISTEN_ADDR                   = "127.0.0.1:8080"
    S3_BUCKET                     = aws_s3_bucket.results.bucket
    AWS_REGION                    = var.region
    HEARTBEAT_TIMEOUT_SECS        = tostring(var.heartbeat_timeout_secs)
    HEARTBEAT_CHECK_INTERVAL_SECS = tostring(var.heartbeat_check_interval_secs)
    NO_RUNNER_TIMEOUT_SECS        = tostring(var.no_runner_timeout_secs)
    PRESIGN_TTL_SECS              = var.presign_ttl_secs == null ? null : tostring(var.presign_ttl_secs)
  }
  postgres_env = {
    POSTGRES_DB = "rcb"
  }

  # Caddy terminates TLS with a Let's Encrypt certificate when a domain is given, and
  # otherwise (allow_plain_http) only proxies port 80.
  caddyfile = local.https ? join("\n", [
    var.acme_email != "" ? "{\n\temail ${var.acme_email}\n}\n" : "",
    "${var.domain} {",
    "\theader Strict-Transport-Security \"max-age=31536000\"",
    "\treverse_proxy 127.0.0.1:8080",
    "}",
    "",
    ]) : join("\n", [
    ":80 {",
    "\treverse_proxy 127.0.0.1:8080",
    "}",
    "",
  ])
}

resource "aws_instance" "orchestrator" {
  count = local.orchestrator_enabled ? 1 : 0

  ami                    = local.host_ami[var.orchestrator_instance_type]
  instance_type          = var.orchestrator_instance_type
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.orchestrator.id]
  key_name               = aws_key_pair.run.key_name
  iam_instance_profile   = aws_iam_instance_profile.orchestrator.name
  volume_tags            = local.tags
  # Internet access from the first second of boot (packages, images); the Elastic IP
  # replaces this address once it is associated.
  associate_public_ip_address = true

  # The orchestrator and Postgres run with host networking, so one hop keeps IMDS (and
  # the role's credentials) away from any bridged container.
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 30
    encrypted   = true
  }

  user_data = templatefile("${path.module}/cloud-init/orchestrator.yaml.tftpl", {
    orchestrator_env       = join("", [for k in sort(keys(local.orchestrator_env)) : "${k}=${local.orchestrator_env[k]}\n" if local.orchestrator_env[k] != null])
    postgres_env           = join("", [for k in sort(keys(local.postgres_env)) : "${k}=${local.postgres_env[k]}\n"])
    orchestrator_image_url = var.orchestrator_image_url
    postgres_image_url     = var.postgres_image_url
    caddyfile              = local.caddyfile
    setup_script           = file("${path.module}/cloud-init/orchestrator-setup.sh")
    secrets                = local.orchestrator_secrets
    secrets_script         = file("${path.module}/../shared/rcb-secrets.sh")
    project                = local.tags.Project
  })

  lifecycle {
    # Presigned URLs are minted afresh for every apply and cloud-init reads user data only
    # at first boot: a re-apply must neither restart nor replace the orchestrator mid-run.
    ignore_changes = [ami, user_data]
  }

  tags = { Name = "${local.name}-orchestrator" }

  # What the host reads at boot exists before it boots.
  depends_on = [
    aws_ssm_parameter.orchestrator_env,
    aws_ssm_parameter.postgres_env,
    aws_iam_role_policy.orchestrator_secrets,
  ]
}

resource "aws_eip_association" "orchestrator" {
  count = local.orchestrator_enabled ? 1 : 0

  allocation_id = aws_eip.orchestrator.id
  instance_id   = aws_instance.orchestrator[0].id
}
