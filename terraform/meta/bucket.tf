# The results bucket: new for every run, private, encrypted, and emptied by a lifecycle
# rule in case the nuke script never runs. Runners reach it only through presigned URLs.

resource "random_id" "bucket" {
  byte_length = 4
}

resource "aws_s3_bucket" "results" {
  bucket = "${local.name}-results-${random_id.bucket.hex}"
  # The bucket lives as long as the run: the master script downloads the archive before
  # the nuke script destroys the stack, objects and all.
  force_destroy = true
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "results" {
  bucket = aws_s3_bucket.results.id

  # ACLs are disabled altogether: access is decided by IAM and presigned URLs only.
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  # SSE-S3: presigned uploads from runners need no KMS permissions.
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    id     = "expire-run-data"
    status = "Enabled"

    filter {}

    expiration {
      days = var.bucket_expiry_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "results_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.results.arn,
      "${aws_s3_bucket.results.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "results" {
  bucket = aws_s3_bucket.results.id
  policy = data.aws_iam_policy_document.results_bucket.json

  # The public access block must exist first, or a policy could briefly be evaluated
  # without it.
  depends_on = [aws_s3_bucket_public_access_block.results]
}
