data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  account    = "arn:${local.partition}:iam::${local.account_id}:root"
}

################################################################################
# The key that encrypts the state (SSE-KMS, bucket default)
################################################################################

data "aws_iam_policy_document" "state_key" {
  # checkov:skip=CKV_AWS_109: a key policy: "*" is this key, and the account root is how IAM policies get to grant its use (AWS's default key policy)
  # checkov:skip=CKV_AWS_111: a key policy: "*" is this key, and the account root is how IAM policies get to grant its use (AWS's default key policy)
  # checkov:skip=CKV_AWS_356: a key policy: "*" is this key, and the account root is how IAM policies get to grant its use (AWS's default key policy)
  # The account administers and uses the key through IAM: the roles' policies grant what they need.
  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account]
    }
  }
}

resource "aws_kms_key" "state" {
  description             = "Terraform state of nat-asg-hook ${var.environment}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.state_key.json

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "state" {
  name          = "alias/${var.state_bucket}"
  target_key_id = aws_kms_key.state.key_id
}

################################################################################
# State bucket: versioned, SSE-KMS by default, never public, TLS only. The stack's backend locks with
# a lock file next to the state (use_lockfile = true): no DynamoDB table.
################################################################################

resource "aws_s3_bucket" "state" {
  # checkov:skip=CKV_AWS_18: access logging needs a second bucket per account, which the bootstrap does not create: state reads are not audited unless the account's CloudTrail records this bucket's S3 data events (docs/threat-model.md)
  # checkov:skip=CKV_AWS_144: cross-region replication doubles the bootstrap for a file that versioning already protects; recreate from the versions if a region is lost
  # checkov:skip=CKV2_AWS_62: nothing consumes state-change events
  bucket = var.state_bucket

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-replaced-state"
    status = "Enabled"

    filter {
      prefix = "" # every object; S3 answers an empty filter as this prefix
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_state_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

data "aws_iam_policy_document" "state_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]

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

  # The state is written with this key only: a request naming another encryption (SSE-S3) or another
  # key is refused. A request that names none gets the bucket's default, this key.
  statement {
    sid       = "DenyOtherEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  statement {
    sid       = "DenyOtherKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    # The key as the backend files name it (its alias), or by ARN (the bootstrap's backend_config).
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values = [
        aws_kms_key.state.arn,
        aws_kms_alias.state.name,
        aws_kms_alias.state.arn,
      ]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state_bucket.json

  # S3 refuses a bucket policy while the public access block is being written.
  depends_on = [aws_s3_bucket_public_access_block.state]
}
