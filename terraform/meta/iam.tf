# The orchestrator reaches the bucket and reads its secrets with an instance role: no
# static keys anywhere.

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "orchestrator" {
  name               = "${local.name}-orchestrator"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

data "aws_iam_policy_document" "orchestrator_bucket" {
  statement {
    sid       = "ListResultsBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.results.arn]
  }

  statement {
    sid = "ReadWriteRunObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
    ]
    resources = ["${aws_s3_bucket.results.arn}/*"]
  }
}

resource "aws_iam_role_policy" "orchestrator_bucket" {
  name   = "results-bucket"
  role   = aws_iam_role.orchestrator.id
  policy = data.aws_iam_policy_document.orchestrator_bucket.json
}

# Its own two parameters, decrypted with the aws/ssm key (whose key policy lets the
# account's principals use it through SSM): nothing else of Parameter Store.
data "aws_iam_policy_document" "orchestrator_secrets" {
  statement {
    sid       = "ReadOwnSecrets"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.orchestrator_env.arn, aws_ssm_parameter.postgres_env.arn]
  }
}

resource "aws_iam_role_policy" "orchestrator_secrets" {
  name   = "secrets"
  role   = aws_iam_role.orchestrator.id
  policy = data.aws_iam_policy_document.orchestrator_secrets.json
}

resource "aws_iam_instance_profile" "orchestrator" {
  name = "${local.name}-orchestrator"
  role = aws_iam_role.orchestrator.name
}
