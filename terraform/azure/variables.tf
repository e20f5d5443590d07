variable "run_id" {
  description = "The run's id (Unix seconds from the master script); names and tags every resource."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-z]{1,20}$", var.run_id))
    error_message = "run_id must be 1 to 20 lowercase letters or digits (the master script sends Unix seconds)."
  }
}

variable "subscription_id" {
  description = "Azure subscription; null reads ARM_SUBSCRIPTION_ID."
  type        = string
  default     = null
}

variable "region" {
  description = "Azure region (location) of the run, e.g. \"eastus2\"."
  type        = string
}

variable "instance_types" {
  description = "The run config's \"azure\" VM sizes, e.g. [\"Standard_D2pls_v6\"]. Each must be described in vm_sizes."
  type        = list(string)

  validation {
    condition     = length(var.instance_types) == length(distinct(var.instance_types))
    error_message = "instance_types must not repeat a size."
  }

  validation {
    condition     = alltrue([for t in var.instance_types : contains(keys(var.vm_sizes), t)])
    error_message = "Describe every size of instance_types in vm_sizes (vcpus, threads_per_core, arch): missing ${join(", ", [for t in var.instance_types : t if !contains(keys(var.vm_sizes), t)])}."
  }
}

# azurerm has no data source for a VM size's vCPUs and architecture, so they are
# described here: from Azure's size documentation, and checked on the host by the runner
# (meta.json records the CPUs and their SMT siblings).
variable "vm_sizes" {
  description = "What each VM size is: vcpus, threads_per_core (2 where SMT is on), arch (x86_64 or arm64), nvme (the size takes NVMe disks; false for sizes older than v6). Add sizes beyond the defaults here."
  type = map(object({
    vcpus            = number
    threads_per_core = number
    arch             = string
    nvme             = optional(bool, true)
  }))
  default = {
    Standard_D2pls_v6 = { vcpus = 2, threads_per_core = 1, arch = "arm64" }  # Cobalt 100, no SMT
    Standard_D2als_v6 = { vcpus = 2, threads_per_core = 2, arch = "x86_64" } # AMD Genoa, SMT
    Standard_D2ls_v6  = { vcpus = 2, threads_per_core = 2, arch = "x86_64" } # Intel Emerald Rapids, SMT
    Standard_F2als_v6 = { vcpus = 2, threads_per_core = 1, arch = "x86_64" } # AMD Genoa, no SMT
  }

  validation {
    condition = alltrue([
      for s in values(var.vm_sizes) : s.vcpus >= 1 && contains([1, 2], s.threads_per_core) && contains(["x86_64", "arm64"], s.arch)
    ])
    error_message = "Each vm_sizes entry needs vcpus >= 1, threads_per_core 1 or 2 and arch \"x86_64\" or \"arm64\"."
  }
}

variable "runs_per_instance_type" {
  description = "The run config's runs_per_instance_type: tasks per VM size."
  type        = number

  validation {
    condition     = var.runs_per_instance_type >= 1 && floor(var.runs_per_instance_type) == var.runs_per_instance_type
    error_message = "runs_per_instance_type must be a whole number, at least 1."
  }
}

variable "slot_mode" {
  description = "SLOT_MODE of the runners: \"vcpu\" runs one slot per vCPU, \"core\" one per physical core (half as many on SMT sizes)."
  type        = string
  default     = "vcpu"

  validation {
    condition     = contains(["vcpu", "core"], var.slot_mode)
    error_message = "slot_mode must be \"vcpu\" or \"core\"."
  }
}

variable "allowed_ssh_cidr" {
  description = "The only network that may reach the jump host over SSH, e.g. 203.0.113.7/32."
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

variable "vnet_cidr" {
  description = "Address space of the runner VNet."
  type        = string
  default     = "10.62.0.0/16"
}

variable "jump_vm_size" {
  description = "VM size of the SSH jump host (x86_64)."
  type        = string
  default     = "Standard_B2ats_v2"
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
  description = "Backstop: a runner host ends itself (deallocates, else powers off) this many minutes after boot, whatever it is doing."
  type        = number
  default     = 720

  validation {
    condition     = var.ttl_minutes >= 10 && floor(var.ttl_minutes) == var.ttl_minutes
    error_message = "ttl_minutes must be a whole number of minutes, at least 10."
  }
}

variable "self_deallocate" {
  description = "Give each runner a managed identity allowed to deallocate its own VM (a custom role of the run with only Microsoft.Compute/virtualMachines/deallocate/action, assigned on that VM). A VM powered off from inside stays allocated and billed; without this the nuke script must remove the runners. Needs permission to create role definitions and role assignments."
  type        = bool
  default     = true
}

variable "os_disk_gb" {
  description = "Size of each runner's OS disk (Docker images of Ruby and ruby-bench's gems)."
  type        = number
  default     = 30
}
