# The master script's cloud path, sourced by fish/master.fish: functions only.
#
# Order (docs/development.md, "Infrastructure" and "Cloud runs"): preflight (tools, accounts,
# architectures, cost estimate and confirmation) → terraform/meta (first apply: bucket,
# network, bastion, key, secrets) → its outputs, read once → image tarballs into the bucket,
# presigned → terraform/meta again (the orchestrator host) → terraform/aws and
# terraform/azure in parallel, while the run is started (runners wait for it; the seed's
# 10 minutes are for an orchestrator that does not answer). State and variable files of a run live in
# $RCB_STATE_ROOT/<run-id>/ (default terraform/state/<run-id>/, never committed), logs in
# $RCB_LOGS_ROOT/<run-id>/ (default logs/<run-id>/). fish/nuke.fish reads the same files.

source $project_root/fish/prices.fish

# Project tag values, as in every stack's `locals.tags`.
set -g cloud_project_tag ruby-cross-cloud-bench

# Lifetime of the presigned image URLs: hosts download the images at boot, minutes after
# the apply that passed the URLs.
set -g cloud_image_url_secs 21600

# 1 once the run's infrastructure may exist: a failure then destroys it.
set -g cloud_armed 0
set -g cloud_stacks
# Provider stacks whose failure was reported.
set -g cloud_reported_stacks

function cloud_usage
    echo "
cloud runs (aws and/or azure instance types, no --orchestrator-url):
  --aws-region REGION        region of the orchestrator, bastion, bucket and AWS runners
                             (default: \$AWS_REGION, \$AWS_DEFAULT_REGION, else us-east-1)
  --azure-region REGION      region of the Azure runners (default: \$AZURE_REGION, else eastus2)
  --allowed-ssh-cidr CIDR    the only network that may SSH to the bastion and jump host
                             (required; your address: curl -s https://checkip.amazonaws.com)
  --domain NAME              HTTPS for the orchestrator (Caddy + Let's Encrypt); the name
                             must point at the orchestrator's address (or give --route53-zone-id)
  --route53-zone-id ID       create the domain's A record in this hosted zone (an old
                             record of that name is overwritten; nuke removes it)
  --dns-wait-mins M          with --domain: how long to wait for the name to point at the
                             orchestrator and HTTPS to answer before giving up (default 30)
  --allow-plain-http         no domain: the API key crosses the internet in clear text
  --ruby-bench-commit SHA    the ruby-bench commit every runner uses (default: the one the
                             results parsers are tested against, crates/protocol/ruby-bench.commit)
  --runner-tarball ARCH=FILE a docker save of a runner image for ARCH (x86_64 or arm64) to
                             deploy instead of building one here (repeatable)
  --no-image-build           deploy the images built before (cargo xtask deploy-images) as
                             they are, without building them again
  --prices FILE              CSV provider,instance_type,region,usd_per_hour[,...]: cost estimate
                             (a recorded results/<run-id>/prices.csv or the site's table too)
  --max-hours H              (above) the estimate assumes every instance lives that long
  --bench-image-repo REPO    where runners pull the benchmark image REPO:<ruby_version> from
                             (default: ruby, Docker Hub's; e.g. public.ecr.aws/docker/library/ruby
                             when Docker Hub rate-limits the runners' shared NAT address)
  --no-self-deallocate       Azure: no role assignment letting each VM deallocate itself (for
                             accounts that may not create one); a finished VM then stays
                             allocated, and billed, until the run is destroyed
  --yes                      do not ask before creating resources (needed without a terminal)
  --keep                     leave the infrastructure up: after the results are downloaded,
                             and after a failure (by default a failed run is destroyed)
  --resume                   (above) with a cloud config and no --orchestrator-url: follows the
                             newest run under terraform/state/ and tears it down at its end

images (cargo xtask deploy-images, run by this script after the confirmation): release
binaries (cargo profile deploy, stripped) in a runner image for every architecture the
types need, as the clouds' APIs report it, and the orchestrator's and Postgres's for this
machine's. This machine's own architecture compiles with cargo; another cross-compiles with
cargo zigbuild against the images' glibc (Debian bookworm's 2.36), and its root file system
is unpacked from Debian's packages of that architecture (debootstrap --foreign, dpkg-deb):
no foreign binary runs. The preflight names what is missing (rustup target add ..., zig and
cargo-zigbuild from xtask/deploy-tools.txt, debootstrap) before anything is created. Each
image is labelled with its git commit, profile and target, and each meta.json names the
runner image it ran from."
end

# terraform in one stack: cloud_tf STACK ARGS...
function cloud_tf --argument-names stack
    command terraform -chdir=$project_root/terraform/$stack $argv[2..-1]
end

# Runs `terraform init` and `apply` of STACK with its variable file, output into LOG.
# Returns terraform's status.
function cloud_apply --argument-names stack log
    begin
        cloud_tf $stack init -input=false -no-color
        and cloud_tf $stack apply -input=false -auto-approve -no-color \
            -state=$cloud_state_dir/$stack.tfstate -var-file=$cloud_state_dir/$stack.tfvars.json
    end >>$log 2>&1
end

# Reports a failed step with its log; the run is torn down (unless --keep); exits 1.
function cloud_fail --argument-names what log
    log "$what failed; its log is $log; last lines:"
    tail -n 15 $log | sed 's/^/    /' >&2
    cloud_teardown_after_failure
    exit 1
end

# After a failure, once infrastructure may exist: destroys the run (fish/nuke.fish, which
# lists what it destroys), or with --keep says how to. Does nothing before anything was
# created, and only once.
function cloud_teardown_after_failure
    test "$cloud_armed" = 1; or return 0
    set -g cloud_armed 0
    # Provider stacks still applying finish first: their state must be complete.
    cloud_wait_applies
    if set -q _flag_keep
        log "--keep: nothing was destroyed; run fish/nuke.fish --run-id $run_id"
        return 0
    end
    log "run $run_id failed: destroying what it created (--keep keeps it)"
    if fish $project_root/fish/nuke.fish --run-id $run_id --yes
        return 0
    end
    log "some resources of run $run_id remain (see above): run fish/nuke.fish --run-id $run_id again"
    return 1
end

# Writes a JSON variable file readable only by its owner (it holds secrets).
function cloud_write_vars --argument-names file json
    # Only for this file: results and logs keep the operator's umask.
    set -l saved (umask)
    umask 077
    echo $json >$file.partial; and mv $file.partial $file
    set -l written $status
    umask $saved
    test $written = 0; or die "cannot write $file"
end

# Parses the cloud flags (set by master.fish's argparse) into globals.
function cloud_settings
    set -g cloud_aws_types (echo $config | jq -r '(.aws // [])[]')
    set -g cloud_azure_types (echo $config | jq -r '(.azure // [])[]')
    set -g cloud_runs (echo $config | jq -r '.runs_per_instance_type // empty')
    string match -qr '^[1-9][0-9]*$' -- $cloud_runs
    or die "runs_per_instance_type in $config_file must be a whole number, at least 1"
    echo $config | jq -e '(.ruby_version | type) == "string"' >/dev/null
    or die "ruby_version in $config_file must be a string such as \"3.4.7\""

    set -g cloud_aws_region us-east-1
    set -q AWS_DEFAULT_REGION; and test -n "$AWS_DEFAULT_REGION"; and set cloud_aws_region $AWS_DEFAULT_REGION
    set -q AWS_REGION; and test -n "$AWS_REGION"; and set cloud_aws_region $AWS_REGION
    set -q _flag_aws_region; and set cloud_aws_region $_flag_aws_region
    set -g cloud_azure_region eastus2
    set -q AZURE_REGION; and test -n "$AZURE_REGION"; and set cloud_azure_region $AZURE_REGION
    set -q _flag_azure_region; and set cloud_azure_region $_flag_azure_region

    set -q _flag_allowed_ssh_cidr
    or die "a cloud run needs --allowed-ssh-cidr (your address as a /32: curl -s https://checkip.amazonaws.com)"
    set -g cloud_ssh_cidr $_flag_allowed_ssh_cidr
    string match -qr '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$' -- $cloud_ssh_cidr
    or die "--allowed-ssh-cidr must be an IPv4 CIDR such as 203.0.113.7/32"

    set -g cloud_domain ""
    set -q _flag_domain; and set cloud_domain $_flag_domain
    set -g cloud_zone ""
    set -q _flag_route53_zone_id; and set cloud_zone $_flag_route53_zone_id
    if test -z "$cloud_domain"; and not set -q _flag_allow_plain_http
        die "a cloud run needs --domain NAME (HTTPS), or --allow-plain-http for a throwaway run whose API key crosses the internet in clear text"
    end

    set -g cloud_dns_wait_secs 1800
    if set -q _flag_dns_wait_mins
        string match -qr '^[0-9]+(\.[0-9]+)?$' -- $_flag_dns_wait_mins
        or die "--dns-wait-mins must be a number of minutes, e.g. 30"
        set cloud_dns_wait_secs (math --scale 0 "ceil($_flag_dns_wait_mins * 60)")
    end

    # master.fish has checked --max-hours (default 12, the runners' TTL backstop).
    set -g cloud_max_hours $max_hours
    set -g cloud_ttl_minutes (math --scale 0 "max(10, ceil($cloud_max_hours * 60))")

    set -g cloud_tarballs
    for spec in $_flag_runner_tarball
        set -l parts (string split -m 1 = -- $spec)
        test (count $parts) = 2; and contains -- $parts[1] x86_64 arm64
        or die "--runner-tarball takes ARCH=FILE with ARCH x86_64 or arm64, not $spec"
        test -f "$parts[2]"; or die "runner tarball $parts[2] does not exist"
        set -a cloud_tarballs $parts[1] (path resolve $parts[2])
    end

    set -g cloud_bench_repo ruby
    set -q _flag_bench_image_repo; and set cloud_bench_repo $_flag_bench_image_repo
    # A repository, not an image: the runners add :<ruby_version> (a registry may have a port).
    string match -qr '^[A-Za-z0-9][A-Za-z0-9._/:-]*$' -- $cloud_bench_repo; and not string match -qr ':[^/]*$' -- $cloud_bench_repo
    or die "--bench-image-repo must be an image repository without a tag, e.g. public.ecr.aws/docker/library/ruby"

    cloud_paths
end

# Where the run's state and logs live; the stacks of the config.
function cloud_paths
    set -g cloud_state_root $project_root/terraform/state
    set -q RCB_STATE_ROOT; and test -n "$RCB_STATE_ROOT"; and set cloud_state_root (path resolve $RCB_STATE_ROOT)
    set -g cloud_logs_root $project_root/logs
    set -q RCB_LOGS_ROOT; and test -n "$RCB_LOGS_ROOT"; and set cloud_logs_root (path resolve $RCB_LOGS_ROOT)
    set -g cloud_state_dir $cloud_state_root/$run_id
    set -g cloud_log_dir $cloud_logs_root/$run_id
    set -g cloud_stacks
    echo $config | jq -e '(.aws // []) | length > 0' >/dev/null; and set -a cloud_stacks aws
    echo $config | jq -e '(.azure // []) | length > 0' >/dev/null; and set -a cloud_stacks azure
end

# The tarball given for ARCH with --runner-tarball, if any.
function cloud_given_tarball --argument-names arch
    # $cloud_tarballs holds pairs: ARCH FILE.
    for i in (seq 1 2 (count $cloud_tarballs))
        if test "$cloud_tarballs[$i]" = $arch
            echo $cloud_tarballs[(math $i + 1)]
            return 0
        end
    end
    return 1
end

# Checks tools and accounts; learns each type's architecture and vCPUs. Creates nothing.
function cloud_preflight
    set -l tools terraform aws docker gzip
    contains azure $cloud_stacks; and set -a tools az
    for tool in $tools
        command -q $tool
        or die "$tool is missing: a cloud run needs terraform, the aws CLI, docker and gzip (and the az CLI for azure); see README.md, \"Cloud runs\""
    end
    aws sts get-caller-identity --output json >/dev/null 2>&1
    or die "the aws CLI has no working credentials (aws sts get-caller-identity failed): run aws configure or aws sso login"
    if contains azure $cloud_stacks
        set -l account (az account show --output json 2>/dev/null)
        or die "the az CLI is not logged in (az account show failed): run az login"
        cloud_azure_subscription "$account"
    end

    # The orchestrator's image is built for this machine's architecture (and its host's
    # instance type follows it); runner images for every architecture the types need.
    switch (uname -m)
        case x86_64 amd64
            set -g cloud_local_arch x86_64
        case aarch64 arm64
            set -g cloud_local_arch arm64
        case '*'
            die "this machine is "(uname -m)": images are built on x86_64 or arm64 (aarch64)"
    end

    # Each type as "provider type arch vcpus".
    set -g cloud_types
    if test (count $cloud_aws_types) -gt 0
        set -l described (aws ec2 describe-instance-types --region $cloud_aws_region --instance-types $cloud_aws_types --output json 2>&1)
        or die "AWS does not know every type of $config_file in $cloud_aws_region: $described"
        for type in $cloud_aws_types
            set -l info (string join \n -- $described | jq -r --arg t $type '.InstanceTypes[] | select(.InstanceType == $t) | ((if (.ProcessorInfo.SupportedArchitectures | index("arm64")) then "arm64" else "x86_64" end), .VCpuInfo.DefaultVCpus)')
            test (count $info) = 2; or die "AWS does not offer $type in $cloud_aws_region"
            set -a cloud_types "aws $type $info[1] $info[2]"
        end
    end
    for type in $cloud_azure_types
        # Azure's naming: Standard_<family><vCPUs><features>_v<n>; feature "p" is an Arm CPU.
        set -l parts (string match -r '^Standard_[A-Za-z]+([0-9]+)([a-z]*)_' -- $type)
        or die "$type does not look like an Azure VM size (Standard_D2als_v6)"
        set -l arch x86_64
        string match -q '*p*' -- $parts[3]; and set arch arm64
        set -a cloud_types "azure $type $arch $parts[2]"
    end

    cloud_preflight_aws_capacity
    contains azure $cloud_stacks; and cloud_preflight_azure_capacity

    # Runner images: this machine builds one for each architecture of the types (cargo xtask
    # deploy-images cross-compiles); --runner-tarball stands in for one built elsewhere.
    set -g cloud_arches
    for entry in $cloud_types
        set -l f (string split ' ' -- $entry)
        contains -- $f[3] $cloud_arches; or set -a cloud_arches $f[3]
    end
    set -g cloud_build_arches
    for arch in $cloud_arches
        cloud_given_tarball $arch >/dev/null; or set -a cloud_build_arches $arch
    end
    if set -q _flag_no_image_build
        cloud_check_images
    else
        # What this machine lacks for the build (a Rust target, the cross linker, debootstrap)
        # is found now, before anything is created, with the command that installs it.
        set -l found (cloud_cargo xtask deploy-images --check (cloud_arch_args) 2>&1)
        or die "this machine cannot build the images of this run (nothing was created):"\n(string join \n -- $found)
    end

    set -g cloud_commit ""
    set -q _flag_ruby_bench_commit; and set cloud_commit $_flag_ruby_bench_commit
    if test -z "$cloud_commit"
        # The commit the parsers are tested against, as for local runs (its one home).
        set cloud_commit (string trim -- (cat $project_root/crates/protocol/ruby-bench.commit))
        test -n "$cloud_commit"
        or die "crates/protocol/ruby-bench.commit is empty; pass --ruby-bench-commit SHA"
        log "ruby-bench commit $cloud_commit (the pinned one); --ruby-bench-commit SHA takes another"
    end
end

# The hosts every run has on AWS, with the stacks' default sizes: "type count role".
function cloud_aws_hosts
    if test "$cloud_local_arch" = arm64
        echo "t4g.small 1 orchestrator"
    else
        echo "t3.small 1 orchestrator"
    end
    echo "t3.micro 1 bastion"
end

# The Service Quotas code of the on-demand vCPU limit of an EC2 instance type's family.
function cloud_aws_quota_code --argument-names type
    set -l family (string match -r '^[a-z]+' -- $type)
    switch $family
        case a c d h i m r t z
            echo L-1216C47A "Standard (A, C, D, H, I, M, R, T, Z)"
        case f
            echo L-74FC7D96 F
        case g vt
            echo L-DB2E81BA "G and VT"
        case inf
            echo L-1945791B Inf
        case p
            echo L-417A185B P
        case x
            echo L-7295265B X
        case dl
            echo L-6E869C2A DL
        case trn
            echo L-2C3B7624 Trn
        case hpc
            echo L-F7808C92 HPC
        case '*'
            return 1
    end
end

# AWS, before anything is created: every type (runners, orchestrator, bastion) offered in a
# zone of the region, and the account's on-demand vCPU quotas against what the run needs.
function cloud_preflight_aws_capacity
    set -l region $cloud_aws_region
    set -l hosts (cloud_aws_hosts)
    set -l host_types (string split -f 1 ' ' -- $hosts)
    set -l all_types (printf '%s\n' $cloud_aws_types $host_types | sort -u)

    set -l offered (aws ec2 describe-instance-type-offerings --region $region --location-type availability-zone \
        --filters Name=instance-type,Values=(string join , -- $all_types) --output json 2>&1)
    or die "cannot list the instance types offered in $region (aws ec2 describe-instance-type-offerings): $offered"
    set -l offered_types (string join \n -- $offered | jq -r '.InstanceTypeOfferings[]?.InstanceType' | sort -u)
    for type in $all_types
        contains -- $type $offered_types
        or die "$type is not offered in any zone of $region: pick another region (--aws-region) or another type (aws ec2 describe-instance-type-offerings --location-type availability-zone --region $region lists them)"
    end

    # vCPUs each type needs, summed per quota: "code vcpus what".
    set -l host_vcpus (aws ec2 describe-instance-types --region $region --instance-types $host_types --output json 2>/dev/null \
        | jq -r '.InstanceTypes[]? | "\(.InstanceType) \(.VCpuInfo.DefaultVCpus)"')
    set -l needs
    for host in $hosts
        set -l f (string split ' ' -- $host)
        set -l vcpus (string match -r -- "^$f[1] ([0-9]+)\$" $host_vcpus)[2]
        test -n "$vcpus"; or set vcpus 2
        set -a needs "$f[1] "(math $f[2] \* $vcpus)" $f[3]"
    end
    for entry in $cloud_types
        set -l f (string split ' ' -- $entry)
        test $f[1] = aws; or continue
        set -l instances (cloud_instances $f[4])
        set -a needs "$f[2] "(math $instances \* $f[4])" $instances × $f[2]"
    end

    set -l codes
    for need in $needs
        set -l f (string split ' ' -- $need)
        set -l quota (cloud_aws_quota_code $f[1])
        or begin
            log "no known vCPU quota for $f[1]'s family: not checked (Service Quotas in the console)"
            continue
        end
        set -l q (string split -m 1 ' ' -- $quota)
        contains -- $q[1] $codes; or set -a codes $q[1]
    end
    for code in $codes
        set -l total 0
        set -l parts
        set -l name
        for need in $needs
            set -l f (string split -m 2 ' ' -- $need)
            set -l q (string split -m 1 ' ' -- (cloud_aws_quota_code $f[1]))
            test "$q[1]" = $code; or continue
            set name $q[2]
            set total (math $total + $f[2])
            set -a parts "$f[3] $f[2]"
        end
        set -l answer (aws service-quotas get-service-quota --service-code ec2 --quota-code $code --region $region --output json 2>&1)
        set -l limit (string join \n -- $answer | jq -r '.Quota.Value // empty' 2>/dev/null | string split -f 1 .)
        if test -z "$limit"
            log "could not read the on-demand $name vCPU quota of $region ($code; servicequotas:GetServiceQuota): this run needs $total vCPUs of it; check it in the Service Quotas console"
            continue
        end
        test $total -le $limit
        or die "this run needs $total on-demand $name vCPUs in $region ("(string join ', ' -- $parts)"), and the account's quota ($code) is $limit, instances already running included: request an increase (aws service-quotas request-service-quota-increase --service-code ec2 --quota-code $code --desired-value $total --region $region), or run fewer or smaller types"
    end
end

# Whether ACTION is granted by the permissions PERMISSIONS... (the JSON lines of az rest
# .../Microsoft.Authorization/permissions): some grant's actions match it and that grant's
# notActions do not.
function cloud_azure_allows --argument-names action
    for grant in (string join \n -- $argv[2..-1] | jq -c '.value[]?')
        set -l granted 0
        for pattern in (echo $grant | jq -r '.actions[]?')
            string match -qi -- $pattern $action; and set granted 1
        end
        for pattern in (echo $grant | jq -r '.notActions[]?')
            string match -qi -- $pattern $action; and set granted 0
        end
        test $granted = 1; and return 0
    end
    return 1
end

# Azure, before anything is created: every size available and unrestricted for the
# subscription in the region, the family and regional vCPU quotas against the need, the
# right to create the run's Key Vault and the runners' identity, and the right to create
# the role assignment that lets a runner VM deallocate itself.
function cloud_preflight_azure_capacity
    set -l region $cloud_azure_region
    # "size count role", the jump host included.
    set -l hosts "Standard_B2ats_v2 1 jump host"
    for entry in $cloud_types
        set -l f (string split ' ' -- $entry)
        test $f[1] = azure; and set -a hosts "$f[2] "(cloud_instances $f[4])" runners"
    end
    set -l usage (az vm list-usage --location $region --output json 2>&1)
    or die "cannot read the vCPU quotas of $region (az vm list-usage): $usage"
    set usage (string join \n -- $usage | jq -c .)
    set -l families
    set -l family_needs
    set -l total 0
    for host in $hosts
        set -l f (string split -m 2 ' ' -- $host)
        set -l skus (az vm list-skus --location $region --size $f[1] --resource-type virtualMachines --all --output json 2>&1)
        or die "cannot read the size $f[1] in $region (az vm list-skus): $skus"
        set -l sku (string join \n -- $skus | jq -c --arg size $f[1] '[.[]? | select(.name == $size)][0] // empty')
        test -n "$sku"
        or die "$f[1] is not offered in $region: pick another region (--azure-region) or size (az vm list-skus --location $region --resource-type virtualMachines)"
        set -l restriction (echo $sku | jq -r '[.restrictions[]? | select(.type == "Location") | .reasonCode][0] // empty')
        test -z "$restriction"
        or die "$f[1] is restricted for this subscription in $region ($restriction): request access to it (Azure support, \"quota\" request for region or size access), or pick another region (--azure-region) or size"
        set -l family (echo $sku | jq -r '.family // empty')
        set -l vcpus (echo $sku | jq -r '[.capabilities[]? | select(.name == "vCPUs") | .value][0] // empty')
        string match -qr '^[0-9]+$' -- "$vcpus"; or continue
        set -l need (math $f[2] \* $vcpus)
        set total (math $total + $need)
        if set -l at (contains -i -- $family $families)
            set family_needs[$at] (math $family_needs[$at] + $need)
        else
            set -a families $family
            set -a family_needs $need
        end
    end
    # Each family, then the region's total (0).
    for i in (seq (count $families)) 0
        set -l name cores
        set -l need $total
        if test $i != 0
            set name $families[$i]
            set need $family_needs[$i]
        end
        set -l entry (echo $usage | jq -r --arg n $name '[.[]? | select((.name.value | ascii_downcase) == ($n | ascii_downcase))][0] // empty | "\(.limit) \(.currentValue)"')
        if test -z "$entry"
            log "no vCPU quota of $name in $region in az vm list-usage: not checked"
            continue
        end
        set -l q (string split ' ' -- $entry)
        set -l free (math $q[1] - $q[2])
        set -l what "the $name family"
        test $name = cores; and set what "the region (Total Regional vCPUs)"
        test $need -le $free
        or die "this run needs $need vCPUs of $what in $region, and only $free of $q[1] are free ($q[2] in use): request an increase (Azure portal, Quotas, or az quota update), or run fewer or smaller sizes"
    end

    # The run's Key Vault and the runners' identity that reads it (the runner key), and the
    # run's own role (deallocate, nothing else) with its assignment on each runner VM.
    set -l subscription $cloud_azure_subscription_id
    set -l permissions (az rest --method get --url "https://management.azure.com/subscriptions/$subscription/providers/Microsoft.Authorization/permissions?api-version=2022-04-01" --output json 2>&1)
    set -l may_assign unknown
    if test $status = 0
        set -l missing
        for action in Microsoft.KeyVault/vaults/write Microsoft.KeyVault/locations/deletedVaults/purge/action \
            Microsoft.ManagedIdentity/userAssignedIdentities/write Microsoft.ManagedIdentity/userAssignedIdentities/assign/action
            cloud_azure_allows $action $permissions; or set -a missing $action
        end
        test (count $missing) = 0
        or die "this account may not create the run's Key Vault and the runners' identity that reads the runner key from it ("(string join ', ' -- $missing)") in subscription $subscription: get Contributor there"
        set may_assign yes
        for action in Microsoft.Authorization/roleDefinitions/write Microsoft.Authorization/roleAssignments/write
            cloud_azure_allows $action $permissions; or set may_assign no
        end
    end
    set -l cost "a finished runner VM then stays allocated, and billed for its size, until fish/nuke.fish destroys the run"
    if set -q _flag_no_self_deallocate
        log "--no-self-deallocate: Azure runner VMs cannot deallocate themselves; $cost"
    else if test $may_assign = no
        die "this account may not create role definitions and assignments (Microsoft.Authorization/roleDefinitions/write and roleAssignments/write) in subscription $subscription, which let each Azure runner VM deallocate itself when its tasks are done: get Owner or User Access Administrator, or pass --no-self-deallocate ($cost)"
    else if test $may_assign = unknown
        log "could not read this account's permissions (az rest .../Microsoft.Authorization/permissions): if terraform/azure fails on its role definition or assignments, run again with --no-self-deallocate"
    end
end

# azurerm 4.x needs the subscription in ARM_SUBSCRIPTION_ID: when unset, the az CLI's
# current one (ACCOUNT, the JSON of az account show) is used and exported.
function cloud_azure_subscription --argument-names account
    set -g cloud_azure_subscription_id (echo $account | jq -r '.id // empty')
    if set -q ARM_SUBSCRIPTION_ID; and test -n "$ARM_SUBSCRIPTION_ID"
        set cloud_azure_subscription_id $ARM_SUBSCRIPTION_ID
        return 0
    end
    test -n "$cloud_azure_subscription_id"
    or die "ARM_SUBSCRIPTION_ID is unset and az account show names no subscription: export ARM_SUBSCRIPTION_ID=<subscription id>"
    set -gx ARM_SUBSCRIPTION_ID $cloud_azure_subscription_id
    log "ARM_SUBSCRIPTION_ID is unset: using the az CLI's subscription $cloud_azure_subscription_id (az account show; export ARM_SUBSCRIPTION_ID to pick another)"
end

# Instances per type: ceil(runs / vCPUs), as the stacks compute with slot_mode vcpu.
function cloud_instances --argument-names vcpus
    math --scale 0 "ceil($cloud_runs / $vcpus)"
end

# The hourly price of a type from the prices file: the row of REGION, else the
# alphabetically first region's row (as the site builder reads it). Prints "price region".
function cloud_price --argument-names provider type region
    set -l rows (string match -r -- "^$provider,"(string escape --style=regex -- $type)",[^,]*,[^,]*\$" $cloud_price_rows)
    test (count $rows) -gt 0; or return 1
    for row in $rows
        set -l f (string split , -- $row)
        if test "$f[3]" = "$region"
            echo $f[4] $f[3]
            return 0
        end
    end
    set -l f (string split , -- (printf '%s\n' $rows | sort -t , -k 3,3 | head -n 1))
    echo $f[4] $f[3]
end

# What will be created, the cost estimate when --prices is given, and the confirmation.
function cloud_confirm
    set -g cloud_price_rows
    if set -q _flag_prices
        test -f "$_flag_prices"; or die "prices file $_flag_prices does not exist"
        # Comment lines (#) are skipped, and columns after the fourth are ignored, so a
        # recorded prices.csv (prices.fish) and the site's shipped table are read as they are.
        set -l lines (string trim -- (cat $_flag_prices) | string match -rv '^(#.*)?$')
        contains -- "$(string replace -a ' ' '' -- $lines[1])" provider,instance_type,region,usd_per_hour $prices_header
        or die "prices file $_flag_prices must start with the header provider,instance_type,region,usd_per_hour (more columns may follow, as in a recorded prices.csv: $prices_header)"
        for line in $lines[2..-1]
            set -l fields (string split , -- (string replace -a ' ' '' -- $line))
            set -l row (string join , -- $fields[1..4])
            string match -qr '^[a-z]+,[^,]+,[^,]*,[0-9]+(\.[0-9]+)?$' -- $row
            or die "prices file $_flag_prices: bad row \"$line\" (provider,instance_type,region,usd_per_hour)"
            set -a cloud_price_rows $row
        end
    end

    set -l hours $cloud_max_hours
    log "run $run_id will create (state in $cloud_state_dir):"
    set -l total 0
    set -l unpriced
    # The hosts every cloud run has, with the stacks' default sizes.
    set -l rows "aws t3.small 1 orchestrator ($cloud_aws_region)" "aws t3.micro 1 bastion"
    test "$cloud_local_arch" = arm64; and set rows[1] "aws t4g.small 1 orchestrator ($cloud_aws_region)"
    contains azure $cloud_stacks; and set -a rows "azure Standard_B2ats_v2 1 jump host ($cloud_azure_region)"
    for entry in $cloud_types
        set -l f (string split ' ' -- $entry)
        set -l region $cloud_aws_region
        test $f[1] = azure; and set region $cloud_azure_region
        set -a rows "$f[1] $f[2] "(cloud_instances $f[4])" runners ($f[4] vCPUs each, $f[3], $region)"
    end
    for row in $rows
        set -l f (string split ' ' -- $row)
        set -l region $cloud_aws_region
        test $f[1] = azure; and set region $cloud_azure_region
        set -l cost ""
        if set -q _flag_prices
            set -f priced (cloud_price $f[1] $f[2] $region)
            if test -n "$priced"
                set -l price (string split ' ' -- $priced)
                set -l amount (printf '%.2f' (math "$f[3] * $price[1] * $hours"))
                set total (printf '%.2f' (math "$total + $amount"))
                set cost "  $f[3] × \$$price[1]/h ($price[2]) × $hours h = \$$amount"
            else
                set -a unpriced $f[2]
                set cost "  no price in $_flag_prices"
            end
        end
        printf '  %-6s %-20s %s%s\n' $f[1] $f[2] "$f[3..-1]" $cost >&2
    end
    if set -q _flag_prices
        log "estimate: at most \$$total for $hours h (--max-hours: runner hosts end themselves by then, and sooner when their tasks are done; the orchestrator, bastion and jump host live until destroyed)"
        log "not included: NAT gateways, public addresses, disks, traffic, the bucket"
        test (count $unpriced) -gt 0; and log "no price for "(string join ', ' -- $unpriced)" in $_flag_prices: not in the estimate"
    else
        log "no cost estimate: pass --prices FILE (provider,instance_type,region,usd_per_hour)"
    end

    set -q _flag_yes; and return 0
    isatty stdin
    or die "this creates cloud resources that cost money: confirm on a terminal, or pass --yes"
    read -l -P "Create these resources (they cost money until destroyed)? [y/N] " answer
    string match -qir '^y(es)?$' -- "$answer"
    or die "nothing was created"
end

# The tag prefix of the deployed images: RCB_DEPLOY_TAG (cargo xtask deploy-images --tag;
# the rehearsal deploys images of its own), else deploy.
function cloud_deploy_tag
    if set -q RCB_DEPLOY_TAG; and test -n "$RCB_DEPLOY_TAG"
        echo $RCB_DEPLOY_TAG
    else
        echo deploy
    end
end

# The deployed image NAME for ARCH (x86_64, arm64), as cargo xtask deploy-images tags it.
function cloud_image --argument-names name arch
    echo rcb/$name:(cloud_deploy_tag)-$arch
end

# --arch ARCH for each runner architecture this machine builds (and --tag TAG for
# RCB_DEPLOY_TAG).
function cloud_arch_args
    set -l tag (cloud_deploy_tag)
    if test $tag != deploy
        echo --tag
        echo $tag
    end
    for arch in $cloud_build_arches
        echo --arch
        echo $arch
    end
end

# cargo in the workspace root, wherever the master was started from.
function cloud_cargo
    sh -c 'cd "$1" && shift && exec cargo "$@"' sh $project_root $argv
end

# Builds the images the run deploys (release binaries; a runner per architecture). Nothing
# exists in a cloud yet: a failure only ends the script.
function cloud_build_images
    set -q _flag_no_image_build; and return 0
    log "building the images: cargo xtask deploy-images "(string join ' ' -- (cloud_arch_args))
    cloud_cargo xtask deploy-images (cloud_arch_args)
    or die "building the images failed (above); nothing was created"
    cloud_check_images
end

# Checks that the images the run uploads exist, each of its architecture.
function cloud_check_images
    set -l wanted (cloud_image orchestrator $cloud_local_arch) $cloud_local_arch rcb/postgres:15 $cloud_local_arch
    for arch in $cloud_build_arches
        set -a wanted (cloud_image runner $arch) $arch
    end
    set -l build "cargo xtask deploy-images "(string join ' ' -- (cloud_arch_args))
    for i in (seq 1 2 (count $wanted))
        set -l image $wanted[$i]
        set -l want amd64
        test $wanted[(math $i + 1)] = arm64; and set want arm64
        set -l found (docker image inspect --format '{{.Architecture}}' $image 2>/dev/null)
        or die "no local image $image: build the images with $build (or leave out --no-image-build)"
        test "$found" = $want
        or die "$image is built for $found, not $want: build it again with $build"
    end
end

# Saves IMAGE gzipped into FILE.
function cloud_save_image --argument-names image file
    docker save $image | gzip -1 >$file
    and test "$pipestatus" = "0 0"
end

# Uploads FILE to the bucket as images/NAME; prints a presigned GET URL for it.
function cloud_upload --argument-names file name log
    set -l object s3://$cloud_bucket/images/$name
    aws s3 cp $file $object --region $cloud_bucket_region --only-show-errors >>$log 2>&1
    or return 1
    aws s3 presign $object --expires-in $cloud_image_url_secs --region $cloud_bucket_region 2>>$log
end

# Stands up a cloud run; sets orchestrator_url and api_key.
function cloud_up
    cloud_settings
    cloud_preflight
    cloud_confirm
    cloud_build_images

    mkdir -p $cloud_log_dir; or die "cannot create $cloud_log_dir"
    mkdir -p -m 700 $cloud_state_dir; or die "cannot create $cloud_state_dir"
    chmod 700 $cloud_state_dir
    set -g teardown_hint "destroy everything of this run with: fish/nuke.fish --run-id $run_id"
    # The types' on-demand prices for the site; cloud_down puts them beside the results.
    prices_record $cloud_log_dir/prices.csv (prices_cloud_entries)
    # From the first apply on, a failure destroys what exists (cloud_teardown_after_failure).
    set -g cloud_armed 1

    # --- meta, first apply: bucket, network, bastion, key, secrets ---------------------
    set -l meta_vars (jq -n -c --arg run_id $run_id --arg region $cloud_aws_region --arg cidr $cloud_ssh_cidr \
        --arg domain $cloud_domain --arg zone $cloud_zone --argjson plain (set -q _flag_allow_plain_http; and echo true; or echo false) \
        '{run_id: $run_id, region: $region, allowed_ssh_cidr: $cidr, domain: $domain, route53_zone_id: $zone, allow_plain_http: $plain}')
    test "$cloud_local_arch" = arm64
    and set meta_vars (echo $meta_vars | jq -c '.orchestrator_instance_type = "t4g.small"')
    cloud_write_vars $cloud_state_dir/meta.tfvars.json $meta_vars
    set -l meta_log $cloud_log_dir/meta.log
    log "terraform/meta: bucket, network, bastion, key (log: $meta_log)"
    cloud_apply meta $meta_log; or cloud_fail terraform/meta $meta_log

    set -l outputs_log $cloud_log_dir/meta-outputs.log
    set -l outputs (cloud_tf meta output -json -no-color -state=$cloud_state_dir/meta.tfstate 2>$outputs_log)
    or cloud_fail "reading the outputs of terraform/meta" $outputs_log
    set -g cloud_outputs (string join \n -- $outputs | jq -c 'with_entries(.value = .value.value)' 2>>$outputs_log)
    or cloud_fail "reading the outputs of terraform/meta" $outputs_log
    set -g cloud_bucket (echo $cloud_outputs | jq -r '.bucket // empty')
    set -g cloud_bucket_region (echo $cloud_outputs | jq -r '.region // empty')
    test -n "$cloud_bucket" -a -n "$cloud_bucket_region"
    or cloud_fail "terraform/meta has no bucket output" $outputs_log

    # The address exists from the first apply: the name can be pointed at it while the
    # images upload and the orchestrator host boots.
    set -g cloud_public_ip (echo $cloud_outputs | jq -r '.orchestrator_public_ip // empty')
    if test -n "$cloud_domain"
        if test -n "$cloud_zone"
            log "Route 53 zone $cloud_zone has the record $cloud_domain A $cloud_public_ip (an older record of that name was overwritten)"
        else
            log "create this DNS record now: $cloud_domain A $cloud_public_ip (TTL 60); runners are created once the name resolves there and HTTPS answers"
        end
    end

    # --- images into the bucket ---------------------------------------------------------
    set -l images_log $cloud_log_dir/images.log
    set -l scratch $cloud_state_dir/images
    mkdir -p $scratch
    log "saving the images into s3://$cloud_bucket/images/ (log: $images_log)"
    set -l orchestrator_image (cloud_image orchestrator $cloud_local_arch)
    cloud_save_image $orchestrator_image $scratch/orchestrator.tar.gz 2>>$images_log
    or cloud_fail "docker save $orchestrator_image" $images_log
    cloud_save_image rcb/postgres:15 $scratch/postgres.tar.gz 2>>$images_log
    or cloud_fail "docker save rcb/postgres:15" $images_log
    set -l orchestrator_image_url (cloud_upload $scratch/orchestrator.tar.gz orchestrator.tar.gz $images_log)
    or cloud_fail "uploading the orchestrator image" $images_log
    set -l postgres_image_url (cloud_upload $scratch/postgres.tar.gz postgres.tar.gz $images_log)
    or cloud_fail "uploading the Postgres image" $images_log
    set -l runner_urls '{}'
    for arch in $cloud_arches
        set -l file (cloud_given_tarball $arch)
        if test -z "$file"
            set file $scratch/runner-$arch.tar.gz
            cloud_save_image (cloud_image runner $arch) $file 2>>$images_log
            or cloud_fail "docker save "(cloud_image runner $arch) $images_log
        end
        set -l name runner-$arch.tar
        string match -q '*.gz' -- $file; and set name $name.gz
        set -l url (cloud_upload $file $name $images_log)
        or cloud_fail "uploading the $arch runner image" $images_log
        set runner_urls (echo $runner_urls | jq -c --arg arch $arch --arg url "$url" '.[$arch] = $url')
    end
    rm -rf $scratch

    # --- meta, second apply: the orchestrator host ---------------------------------------
    cloud_write_vars $cloud_state_dir/meta.tfvars.json (echo $meta_vars | jq -c --arg o "$orchestrator_image_url" --arg p "$postgres_image_url" \
        '.orchestrator_image_url = $o | .postgres_image_url = $p')
    log "terraform/meta: the orchestrator host (log: $meta_log)"
    cloud_apply meta $meta_log; or cloud_fail terraform/meta $meta_log

    set -g orchestrator_url (echo $cloud_outputs | jq -r .orchestrator_url)
    set -g api_key (echo $cloud_outputs | jq -r .api_key)
    # With a domain, runners would only fail against a name that does not lead to the
    # orchestrator yet: they are created once it does.
    test -n "$cloud_domain"; and cloud_wait_for_orchestrator

    # --- provider stacks in parallel -----------------------------------------------------
    set -l common (jq -n -c --arg run_id $run_id --argjson runs $cloud_runs --arg commit $cloud_commit \
        --argjson urls $runner_urls --argjson ttl $cloud_ttl_minutes --argjson meta $cloud_outputs --arg repo $cloud_bench_repo \
        '{run_id: $run_id, runs_per_instance_type: $runs, ruby_bench_commit: $commit, runner_image_urls: $urls,
          ttl_minutes: $ttl, orchestrator_url: $meta.orchestrator_url, runner_api_key: $meta.runner_api_key,
          ssh_public_key: $meta.ssh_public_key, bench_image_repo: $repo}')
    if contains aws $cloud_stacks
        cloud_write_vars $cloud_state_dir/aws.tfvars.json (echo $common | jq -c --arg region $cloud_aws_region \
            --argjson meta $cloud_outputs --argjson types (printf '%s\n' $cloud_aws_types | jq -R . | jq -s -c .) \
            '. + {region: $region, instance_types: $types} + ($meta | {meta_region, meta_vpc_id, meta_vpc_cidr, meta_route_table_id, bastion_private_ip})')
    end
    if contains azure $cloud_stacks
        cloud_write_vars $cloud_state_dir/azure.tfvars.json (echo $common | jq -c --arg region $cloud_azure_region \
            --arg cidr $cloud_ssh_cidr --argjson types (printf '%s\n' $cloud_azure_types | jq -R . | jq -s -c .) \
            --argjson deallocate (set -q _flag_no_self_deallocate; and echo false; or echo true) \
            '. + {region: $region, allowed_ssh_cidr: $cidr, instance_types: $types, self_deallocate: $deallocate}')
    end
    for stack in $cloud_stacks
        set -l stack_log $cloud_log_dir/$stack.log
        rm -f $cloud_log_dir/$stack.status
        log "terraform/$stack: runners (log: $stack_log)"
        # A child shell per stack, so that they run at once; each leaves its exit status.
        env RCB_STACK_DIR=$project_root/terraform/$stack RCB_STACK_STATE=$cloud_state_dir/$stack.tfstate \
            RCB_STACK_VARS=$cloud_state_dir/$stack.tfvars.json RCB_STACK_LOG=$stack_log RCB_STACK_STATUS=$cloud_log_dir/$stack.status \
            sh -c '{ terraform -chdir="$RCB_STACK_DIR" init -input=false -no-color &&
                    terraform -chdir="$RCB_STACK_DIR" apply -input=false -auto-approve -no-color \
                        -state="$RCB_STACK_STATE" -var-file="$RCB_STACK_VARS"; } >>"$RCB_STACK_LOG" 2>&1
                   echo $? >"$RCB_STACK_STATUS"' &
    end
    set -g start_attempts 450
    set -l get_output "terraform -chdir=terraform/meta output -state=$cloud_state_dir/meta.tfstate -raw"
    log "the orchestrator of run $run_id is being created; the run starts as soon as it answers, while the runners are created"
    log "dashboard: $orchestrator_url/ (operator password: $get_output operator_password)"
    log "API key: $get_output api_key; SSH key: "(echo $cloud_outputs | jq -r '.ssh_private_key_path // "?"')", bastion ubuntu@"(echo $cloud_outputs | jq -r '.bastion_address // "?"')
end

# Waits, for up to --dns-wait-mins, until the domain resolves to the orchestrator's address
# and its /health answers {"status": "ok"} over HTTPS (the certificate is Let's Encrypt's,
# issued once the name resolves). Progress is one line per change and one a minute;
# Ctrl-C or the end of the wait tears the run down (nothing has run on it yet).
function cloud_wait_for_orchestrator
    set -l deadline (math (date +%s) + $cloud_dns_wait_secs)
    set -l started (date +%s)
    set -l last_state ""
    set -l last_line_at $started
    log "waiting (up to "(math --scale 1 $cloud_dns_wait_secs / 60)" min) for $cloud_domain to resolve to $cloud_public_ip and $orchestrator_url/health to answer"
    while true
        stop_if_interrupted
        set -l answer (curl -sS --max-time 10 -w '\n%{http_code} %{remote_ip}' $orchestrator_url/health 2>/dev/null)
        set -l code $status
        set -l seen (string split ' ' -- "$answer[-1]")
        set -l body (string join \n -- $answer[1..-2])
        set -l state
        if test $code = 6
            set state "$cloud_domain does not resolve yet"
        else if test -n "$seen[2]" -a "$seen[2]" != "$cloud_public_ip"
            set state "$cloud_domain resolves to $seen[2], not $cloud_public_ip yet (an old record, or a cache: the TTL passes)"
        else if test $code = 0 -a "$seen[1]" = 200; and echo $body | jq -e '.status == "ok"' >/dev/null 2>&1
            log "$orchestrator_url answers with the orchestrator's health, after "(math (date +%s) - $started)" s"
            return 0
        else if test $code = 0
            set state "$orchestrator_url/health answers $seen[1], not the orchestrator's health yet (it boots and loads its images)"
        else
            set state "$orchestrator_url does not answer over HTTPS yet (curl exit $code: the host boots, or the certificate is not issued yet)"
        end
        set -l now (date +%s)
        if test "$state" != "$last_state" -o (math $now - $last_line_at) -ge 60
            log "$state; "(math --scale 0 "($deadline - $now) / 60")" min left"
            set last_state $state
            set last_line_at $now
        end
        test $now -lt $deadline
        or die "$cloud_domain did not lead to the orchestrator within "(math --scale 1 $cloud_dns_wait_secs / 60)" min (last: $state): check the record $cloud_domain A $cloud_public_ip"
        sleep (math "max(0, min(5, $deadline - $now))")
    end
end

# Waits for the provider stacks applying in the background (nothing when none is).
function cloud_wait_applies
    wait
end

# Whether no provider stack has failed so far (those still applying count as fine); a
# failed one is reported with its log, once.
function cloud_providers_ok
    set -l ok 0
    for stack in $cloud_stacks
        set -l code (cat $cloud_log_dir/$stack.status 2>/dev/null)
        test -n "$code" -a "$code" != 0; or continue
        set ok 1
        contains -- $stack $cloud_reported_stacks; and continue
        set -ga cloud_reported_stacks $stack
        log "terraform/$stack failed; its log is $cloud_log_dir/$stack.log; last lines:"
        tail -n 15 $cloud_log_dir/$stack.log | sed 's/^/    /' >&2
    end
    return $ok
end

# Waits for the provider stacks to finish applying; a failed one ends the run (torn down).
function cloud_wait_providers
    log "waiting for the runners' stacks ("(string join ', ' -- $cloud_stacks)") to finish applying"
    cloud_wait_applies
    cloud_providers_ok; or die "run $run_id cannot run without its runners"
    log "infrastructure of run $run_id is up: the runners boot and start claiming tasks"
end

# Finds the state of the cloud run to --resume (the newest under the state root), its
# orchestrator and API key; a failure or the end of the run tears it down like a fresh run.
function cloud_resume
    cloud_paths
    set -l runs (for dir in $cloud_state_root/*/
            test -s $dir/meta.tfstate; and path basename $dir
        end | sort -n)
    test (count $runs) -gt 0
    or die "no cloud run to resume: nothing under $cloud_state_root has terraform/meta state (pass --orchestrator-url to follow a run elsewhere)"
    set -g run_id $runs[-1]
    cloud_paths
    test (count $runs) -gt 1
    and log "several runs have state under $cloud_state_root ("(string join ', ' -- $runs)"): resuming the newest, $run_id"
    mkdir -p $cloud_log_dir
    set -l outputs_log $cloud_log_dir/meta-outputs.log
    set -l outputs (cloud_tf meta output -json -no-color -state=$cloud_state_dir/meta.tfstate 2>>$outputs_log)
    or die "reading the outputs of terraform/meta of run $run_id failed (log: $outputs_log)"
    set -g cloud_outputs (string join \n -- $outputs | jq -c 'with_entries(.value = .value.value)' 2>>$outputs_log)
    or die "the outputs of terraform/meta of run $run_id are unreadable (log: $outputs_log)"
    set -g orchestrator_url (echo $cloud_outputs | jq -r '.orchestrator_url // empty')
    set -g api_key (echo $cloud_outputs | jq -r '.api_key // empty')
    set -g teardown_hint "destroy everything of this run with: fish/nuke.fish --run-id $run_id"
    # master.fish arms the teardown once the orchestrator confirms the run: an orchestrator
    # that does not answer yet must not get a live run destroyed.
    log "resuming cloud run $run_id (state in $cloud_state_dir)"
end

# The runner hosts of the run's failed tasks, from the results in DIR (each task's
# meta.json names its runner, a host name plus "-<slot>"). Prints "?" for a failed task
# that names none.
function cloud_failed_hosts --argument-names dir
    for task in $dir/*/
        test -f $task/error.json; or continue
        set -l runner (jq -r '.runner_id // empty' $task/meta.json 2>/dev/null)
        if test -z "$runner"
            echo "?"
        else
            string replace -r -- '-[0-9]+$' '' $runner
        end
    end | sort -u
end

# Debug mode after the results are in: only the hosts of failed tasks stay up (with what
# reaching them over SSH needs); the orchestrator host and every other runner are
# destroyed. Returns 1 when the whole run should go instead (no task failed, or a
# targeted destroy failed).
function cloud_debug_down
    set -l keep (cloud_failed_hosts $results_dir/$run_id)
    if test (count $keep) = 0
        log "debug mode: no task failed, nothing to inspect"
        return 1
    end
    if contains -- "?" $keep
        log "debug mode: a failed task names no runner: every runner host stays up"
    end
    set -l destroyed
    for stack in aws azure meta
        set -l state $cloud_state_dir/$stack.tfstate
        test -s $state; or continue
        # The runner hosts not to keep, as resource addresses; for meta the orchestrator.
        set -l targets
        if test $stack = meta
            set targets (jq -r '.resources[]? | select(.mode == "managed" and .type == "aws_instance" and .name == "orchestrator") | "aws_instance.orchestrator"' $state | sort -u)
        else if not contains -- "?" $keep
            set targets (jq -r --args '.resources[]? | select(.mode == "managed" and .name == "runner" and (.type | IN("aws_instance", "azurerm_linux_virtual_machine")))
                | .type as $type | .instances[]? | select((.attributes.tags.Name // .attributes.name) as $name | $ARGS.positional | index($name) | not)
                | "\($type).runner[\(.index_key | tojson)]"' $keep <$state)
        end
        test (count $targets) -gt 0; or continue
        set -l stack_log $cloud_log_dir/debug-$stack.log
        log "debug mode: destroying "(string join ', ' -- $targets)" (log: $stack_log)"
        begin
            cloud_tf $stack init -input=false -no-color
            and cloud_tf $stack destroy -input=false -auto-approve -no-color -state=$state \
                -var-file=$cloud_state_dir/$stack.tfvars.json -target=$targets
        end >>$stack_log 2>&1
        or begin
            log "a targeted destroy of terraform/$stack failed (log: $stack_log): destroying the whole run"
            return 1
        end
        set -a destroyed $targets
    end
    log "debug mode: kept up for inspection: "(string join ', ' -- $keep)"; when done: fish/nuke.fish --run-id $run_id"
    log "SSH: ssh -i "(echo $cloud_outputs | jq -r '.ssh_private_key_path // "<key>"')" -J ubuntu@"(echo $cloud_outputs | jq -r '.bastion_address // "<bastion>"')" ubuntu@<runner address> (AWS; Azure through its jump host), terraform output of terraform/aws or terraform/azure has the addresses"
    return 0
end

# After the results are in: destroy the run (unless --keep or debug mode). Returns 1 when
# something remains.
function cloud_down
    set -g cloud_armed 0
    prices_install $cloud_log_dir/prices.csv $results_dir/$run_id
    if set -q _flag_keep
        log "--keep: the infrastructure stays up; $teardown_hint"
        return 0
    end
    if echo $config | jq -e '.debug_mode == true' >/dev/null
        cloud_debug_down
        and return 0
    end
    log "destroying the infrastructure of run $run_id"
    fish $project_root/fish/nuke.fish --run-id $run_id --yes
    and return 0
    log "some resources of run $run_id remain (see above): run fish/nuke.fish --run-id $run_id again"
    return 1
end
