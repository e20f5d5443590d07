variable "run_id" {
  description = "The run's id (Unix seconds from the master script); names and tags every resource."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-z]{1,20}$", var.run_id))
    error_message = "run_id must be 1 to 20 lowercase letters or digits (the master script sends Unix seconds)."
  }
}

variable "region" {
  description = "AWS region of the runners."
  type        = string
}

variable "instance_types" {
  description = "The run config's \"aws\" instance types, e.g. [\"c8g.medium\", \"c7i.large\"]."
  type        = list(string)

  validation {
    condition     = length(var.instance_types) == length(distinct(var.instance_types))
    error_message = "instance_types must not repeat a type."
  }
}

variable "runs_per_instance_type" {
  description = "The run config's runs_per_instance_type: tasks per instance type."
  type        = number

  validation {
    condition     = var.runs_per_instance_type >= 1 && floor(var.runs_per_instance_type) == var.runs_per_instance_type
    error_message = "runs_per_instance_type must be a whole number, at least 1."
  }
}

variable "slot_mode" {
  description = "SLOT_MODE of the runners: \"vcpu\" runs one slot per vCPU, \"core\" one per physical core (half as many on SMT types)."
  type        = string
  default     = "vcpu"

  validation {
    condition     = contains(["vcpu", "core"], var.slot_mode)
    error_message = "slot_mode must be \"vcpu\" or \"core\"."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the runner VPC; must not overlap the meta VPC it is peered with."
  type        = string
  default     = "10.61.0.0/16"
}

variable "runner_image_urls" {
  description = "Presigned GET URLs of the `docker save` tarball of a runner image (rcb/runner:deploy-<arch>), by architecture: { x86_64 = \"...\", arm64 = \"...\" }. Only the architectures of instance_types are needed."
  type        = map(string)
  sensitive   = true
}

variable "orchestrator_url" {
  description = "ORCHESTRATOR_URL of the runners (meta output orchestrator_url)."
  type        = string
}

variable "runner_api_key" {
  description = "RUNNER_API_KEY of the runners (meta output runner_api_key): it claims and reports on tasks, nothing else."
  type        = string
  sensitive   = true
}

variable "ssh_public_key" {
  description = "Public half of the run's SSH key (meta output ssh_public_key)."
  type        = string
}

variable "meta_region" {
  description = "Region of the meta VPC (meta output meta_region)."
  type        = string
}

variable "meta_vpc_id" {
  description = "The meta VPC to peer with (meta output meta_vpc_id)."
  type        = string
}

variable "meta_vpc_cidr" {
  description = "CIDR of the meta VPC (meta output meta_vpc_cidr)."
  type        = string
}

variable "meta_route_table_id" {
  description = "Route table of the bastion's subnet (meta output meta_route_table_id)."
  type        = string
}

variable "bastion_private_ip" {
  description = "Private address of the bastion, the only SSH source of the runners (meta output bastion_private_ip)."
  type        = string
}

variable "bench_packages" {
  description = "BENCH_PACKAGES of the runners: \"default\" (the runner's protocol::CLOUD_BENCH_PACKAGES), a comma-separated list, or \"none\"."
  type        = string
  default     = "default"
}

variable "bench_image_repo" {
  description = "BENCH_IMAGE_REPO of the runners: benchmark images are <repo>:<ruby_version>."
  type        = string
  default     = "ruby"
}

variable "ruby_bench_git_url" {
  description = "RUBY_BENCH_GIT_URL of the runners."
  type        = string
  default     = "https://github.com/ruby/ruby-bench.git"
}

variable "ruby_bench_commit" {
  description = "RUBY_BENCH_COMMIT of the runners: the pinned ruby-bench commit."
  type        = string
}

variable "heartbeat_interval_secs" {
  description = "HEARTBEAT_INTERVAL_SECS of the runners."
  type        = number
  default     = 30
}

variable "claim_retry_secs" {
  description = "CLAIM_RETRY_SECS of the runners: how long a runner keeps trying an unreachable orchestrator."
  type        = number
  default     = 600
}

variable "ttl_minutes" {
  description = "Backstop: a runner host powers itself off (and so terminates) this many minutes after boot, whatever it is doing."
  type        = number
  default     = 720

  validation {
    condition     = var.ttl_minutes >= 10 && floor(var.ttl_minutes) == var.ttl_minutes
    error_message = "ttl_minutes must be a whole number of minutes, at least 10."
  }
}

variable "root_volume_gb" {
  description = "Size of each runner's root volume (Docker images of Ruby and ruby-bench's gems)."
  type        = number
  default     = 30
}
