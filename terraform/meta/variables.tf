variable "run_id" {
  description = "The run's id (Unix seconds from the master script); names and tags every resource."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-z]{1,20}$", var.run_id))
    error_message = "run_id must be 1 to 20 lowercase letters or digits (the master script sends Unix seconds)."
  }
}

variable "region" {
  description = "AWS region of the orchestrator, bastion and results bucket."
  type        = string
}

variable "allowed_ssh_cidr" {
  description = "The only network that may reach the bastion over SSH, e.g. your office's address as 203.0.113.7/32."
  type        = string

  validation {
    condition = (
      can(regex("^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+/[0-9]+$", var.allowed_ssh_cidr))
      && can(cidrhost(var.allowed_ssh_cidr, 0))
      && !contains(["0.0.0.0/0", "::/0"], var.allowed_ssh_cidr)
      && try(tonumber(split("/", var.allowed_ssh_cidr)[1]) >= 8, false)
    )
    error_message = "allowed_ssh_cidr must be an IPv4 CIDR narrower than /8 (e.g. 203.0.113.7/32), never 0.0.0.0/0."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the meta VPC; must not overlap the AWS runner VPC, which is peered with it."
  type        = string
  default     = "10.60.0.0/16"
}

variable "domain" {
  description = "DNS name of the orchestrator. When set, Caddy on the host serves HTTPS with a Let's Encrypt certificate; the name must resolve to the orchestrator_public_ip output."
  type        = string
  default     = ""
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone in which to create the A record for domain. Empty: create the record yourself, pointing at orchestrator_public_ip."
  type        = string
  default     = ""
}

variable "acme_email" {
  description = "Contact address given to Let's Encrypt (optional)."
  type        = string
  default     = ""
}

variable "allow_plain_http" {
  description = "Serve the orchestrator over plain HTTP when no domain is set. The API key and the operator password then cross the internet in clear text: for throwaway test runs only."
  type        = bool
  default     = false

  validation {
    condition     = var.domain != "" || var.allow_plain_http
    error_message = "Set domain (HTTPS through Caddy and Let's Encrypt), or allow_plain_http = true for a throwaway run whose API key may cross the internet in clear text."
  }
}

variable "orchestrator_image_url" {
  description = "Presigned GET URL of the `docker save` tarball of rcb/orchestrator:deploy-<arch> in the results bucket. Empty on the first apply, which creates the bucket; the orchestrator host is created once both image URLs are set."
  type        = string
  default     = ""
  sensitive   = true
}

variable "postgres_image_url" {
  description = "Presigned GET URL of the `docker save` tarball of rcb/postgres:15 in the results bucket (see orchestrator_image_url)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "orchestrator_instance_type" {
  description = "Instance type of the orchestrator host; its architecture must match the orchestrator and Postgres images."
  type        = string
  default     = "t3.small"
}

variable "bastion_instance_type" {
  description = "Instance type of the SSH bastion."
  type        = string
  default     = "t3.micro"
}

variable "bucket_expiry_days" {
  description = "Objects in the results bucket expire after this many days, in case the nuke script never runs."
  type        = number
  default     = 14

  validation {
    condition     = var.bucket_expiry_days >= 1 && floor(var.bucket_expiry_days) == var.bucket_expiry_days
    error_message = "bucket_expiry_days must be a whole number of days, at least 1."
  }
}

variable "ssh_private_key_path" {
  description = "Where the run's SSH private key is written (mode 0600). Empty: ~/.ssh/rcb-<run_id>."
  type        = string
  default     = ""
}

variable "heartbeat_timeout_secs" {
  description = "HEARTBEAT_TIMEOUT_SECS of the orchestrator: a claimed task without a heartbeat for this long fails."
  type        = number
  default     = 120
}

variable "heartbeat_check_interval_secs" {
  description = "HEARTBEAT_CHECK_INTERVAL_SECS of the orchestrator."
  type        = number
  default     = 60
}

variable "no_runner_timeout_secs" {
  description = "NO_RUNNER_TIMEOUT_SECS of the orchestrator: pending tasks of a type no runner was seen for this long (from the run's start) fail as no_runner, so the run can finish."
  type        = number
  default     = 1200
}

variable "presign_ttl_secs" {
  description = "PRESIGN_TTL_SECS of the orchestrator; null keeps the orchestrator's default."
  type        = number
  default     = null
}
