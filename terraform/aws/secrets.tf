# The runner key reaches the runner hosts through SSM Parameter Store, read at boot with the
# runners' instance role: user data, which anyone with ec2:DescribeInstanceAttribute reads,
# has only the parameter's name. The value is the runner env file's secret line; the key
# also stays in this stack's state and variable file, which the master script deletes with
# the run.

locals {
  runner_secret_parameter = "/rcb/${var.run_id}/runner.env"
  # /etc/rcb/secrets of a runner host (terraform/shared/rcb-secrets.sh).
  runner_secrets = "runner.env ssm ${var.region} ${local.runner_secret_parameter}\n"
}

resource "aws_ssm_parameter" "runner_env" {
  name        = local.runner_secret_parameter
  description = "The runners' API key (run ${var.run_id})"
  type        = "SecureString"
  value       = "RUNNER_API_KEY=${var.runner_api_key}\n"
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "runner" {
  name               = "${local.name}-runner"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

# The one parameter, decrypted with the aws/ssm key (whose key policy lets the account's
# principals use it through SSM): the role can do nothing else.
data "aws_iam_policy_document" "runner_secret" {
  statement {
    sid       = "ReadRunnerKey"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.runner_env.arn]
  }
}

resource "aws_iam_role_policy" "runner_secret" {
  name   = "runner-key"
  role   = aws_iam_role.runner.id
  policy = data.aws_iam_policy_document.runner_secret.json
}

resource "aws_iam_instance_profile" "runner" {
  name = "${local.name}-runner"
  role = aws_iam_role.runner.name
}
