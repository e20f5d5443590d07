#!/usr/bin/env fish
# The nuke script: removes everything a run (or every run) of the project left in the clouds
# and in the local Docker engine. First `terraform destroy` of every stack the master script
# applied (providers first, then meta), then a sweep by tag with the clouds' CLIs for
# whatever Terraform did not know or failed to remove, then a last look at what remains.
#
# Idempotent: nothing found is not an error. A failing delete is reported and the sweep goes
# on; a resource whose tags could not be read is reported as "could not check", never taken
# for not ours. Once nothing of a run remains, its state and variable files (API key,
# passwords, presigned URLs), their backups and its SSH key are deleted.
# Exit status: 0 nothing of the project (or of the run) remains; 1 something remains or
# could not be checked, a destroy or a listing failed, or the operator said no.

set -g script_name nuke.fish
set -g project_root (path resolve (status dirname)/..)
set -g project_tag ruby-cross-cloud-bench

function usage
    echo "usage: fish/nuke.fish [--run-id N] [options]

  --run-id N           only run N: its Terraform stacks and the resources tagged RunId=N;
                       without it: every run under terraform/state/, every resource tagged
                       Project=$project_tag, and the project's local Docker containers
                       (asks first unless --yes)
  --dry-run            list what would be destroyed and deleted; change nothing
  --yes                do not ask
  --aws-region REGION  sweep this AWS region too (repeatable); the runs' own regions and
                       \$AWS_REGION/\$AWS_DEFAULT_REGION are always swept
  --all-regions        sweep every AWS region the account has enabled
  -h, --help           this help

State and variable files are read from \$RCB_STATE_ROOT (default terraform/state), logs go to
\$RCB_LOGS_ROOT/<run-id>/nuke-*.log (default logs/). NUKE_WAIT_SECS (default 900) bounds the
waits for instances to terminate and NAT gateways to go."
end

function log
    echo "$script_name: $argv" >&2
end

function die
    log $argv
    exit 1
end

argparse --name=$script_name run-id= dry-run yes aws-region=+ all-regions h/help -- $argv
or begin
    usage >&2
    exit 1
end
if set -q _flag_help
    usage
    exit 0
end

set -g run_id ""
if set -q _flag_run_id
    set run_id $_flag_run_id
    string match -qr '^[0-9a-z]{1,20}$' -- $run_id
    or die "--run-id must be a run id such as 1733945123"
end
set -g dry_run 0
set -q _flag_dry_run; and set dry_run 1
set -g wait_secs 900
set -q NUKE_WAIT_SECS; and string match -qr '^[0-9]+$' -- "$NUKE_WAIT_SECS"; and set wait_secs $NUKE_WAIT_SECS

set -g state_root $project_root/terraform/state
set -q RCB_STATE_ROOT; and test -n "$RCB_STATE_ROOT"; and set state_root (path resolve $RCB_STATE_ROOT)
set -g logs_root $project_root/logs
set -q RCB_LOGS_ROOT; and test -n "$RCB_LOGS_ROOT"; and set logs_root (path resolve $RCB_LOGS_ROOT)

# Problems met on the way (failed destroys, deletes, listings): the exit status says so.
set -g problems 0
function problem
    log "FAILED: $argv"
    set problems (math $problems + 1)
end

# Resources that may be ours but whose tags could not be read: "KIND ID (why)", each once.
set -g unchecked
function could_not_check --argument-names kind id why
    set -l entry "$kind $id ($why)"
    contains -- $entry $unchecked; and return 0
    set -a unchecked $entry
    log "could not check $kind $id: $why"
end

# --- scope ---------------------------------------------------------------------------
set -g runs
if test -n "$run_id"
    set runs $run_id
else
    for dir in $state_root/*/
        set -a runs (path basename $dir)
    end
end

set -g scope "run $run_id"
test -z "$run_id"; and set scope "every run of the project"
if test $dry_run = 1
    log "dry run: listing what $scope left; nothing is changed"
else if test -z "$run_id"; and not set -q _flag_yes
    isatty stdin
    or die "without --run-id this destroys every resource tagged Project=$project_tag and the project's local containers: confirm on a terminal, or pass --yes"
    read -l -P "Destroy every resource of the project (runs: $(string join ", " -- $runs); all tagged resources; local containers)? [y/N] " answer
    string match -qir '^y(es)?$' -- "$answer"
    or die "nothing was changed"
end

# --- terraform destroy ---------------------------------------------------------------
# Which stacks of RUN have state and variables; providers first, then meta.
function stacks_of --argument-names run
    for stack in aws azure meta
        test -s $state_root/$run/$stack.tfstate -a -f $state_root/$run/$stack.tfvars.json
        and echo $stack
    end
end

# What a state holds, for the operator: "aws_instance.runner ×2, aws_vpc.runners, ...".
function state_summary --argument-names file
    jq -r '[.resources[]? | select(.mode != "data") | "\(.type // "?").\(.name // "?")" + (if ((.instances // []) | length) > 1 then " ×\(.instances | length)" else "" end)] | join(", ")' $file 2>/dev/null
end

# The SSH private keys the runs' meta stacks wrote, read before their state is destroyed.
set -g ssh_keys
for run in $runs
    set -l key (jq -r '.outputs.ssh_private_key_path.value // empty' $state_root/$run/meta.tfstate 2>/dev/null)
    test -n "$key"; and set -a ssh_keys "$run $key"
end

# The runs' Route 53 records (meta's, with route53_zone_id): "ZONE:NAME:ADDRESS", read before
# the destroy empties the state; the sweep removes a record left behind that still points
# at the run's address.
set -g dns_records
for run in $runs
    set -l zone (jq -r '.route53_zone_id // empty' $state_root/$run/meta.tfvars.json 2>/dev/null)
    set -l domain (jq -r '.domain // empty' $state_root/$run/meta.tfvars.json 2>/dev/null)
    set -l address (jq -r '.outputs.orchestrator_public_ip.value // empty' $state_root/$run/meta.tfstate 2>/dev/null)
    test -n "$zone" -a -n "$domain" -a -n "$address"; and set -a dns_records "$zone:$domain:$address"
end

set -g tf_available 1
command -q terraform; or set tf_available 0
for run in $runs
    set -l stacks (stacks_of $run)
    if test (count $stacks) = 0
        test -n "$run_id"; and log "run $run: no Terraform state under $state_root/$run; sweeping by tag only"
        continue
    end
    if test $dry_run = 1
        for stack in $stacks
            log "would run terraform destroy of terraform/$stack for run $run"
        end
        continue
    end
    if test $tf_available = 0
        problem "terraform is missing: the stacks of run $run ("(string join ', ' -- $stacks)") were not destroyed"
        continue
    end
    mkdir -p $logs_root/$run
    for stack in $stacks
        set -l stack_log $logs_root/$run/nuke-$stack.log
        log "run $run: terraform destroy of terraform/$stack (log: $stack_log)"
        set -l summary (state_summary $state_root/$run/$stack.tfstate)
        test -n "$summary"; and log "  destroying: $summary"
        # azurerm 4.x needs the subscription; the az CLI knows the current one.
        if test $stack = azure; and not set -q ARM_SUBSCRIPTION_ID; and command -q az
            set -l subscription (command az account show --output json 2>>$logs_root/$run/nuke-$stack.log | jq -r '.id // empty')
            test -n "$subscription"; and set -gx ARM_SUBSCRIPTION_ID $subscription
        end
        begin
            command terraform -chdir=$project_root/terraform/$stack init -input=false -no-color
            and command terraform -chdir=$project_root/terraform/$stack destroy -input=false -auto-approve -no-color \
                -state=$state_root/$run/$stack.tfstate -var-file=$state_root/$run/$stack.tfvars.json
        end >>$stack_log 2>&1
        or problem "terraform destroy of terraform/$stack for run $run (log: $stack_log); the sweep goes on"
    end
end

# --- the sweep -----------------------------------------------------------------------
set -g sweep_log /dev/null
if test -n "$run_id"
    mkdir -p $logs_root/$run_id; and set sweep_log $logs_root/$run_id/nuke-sweep.log
else
    mkdir -p $logs_root; and set sweep_log $logs_root/nuke-sweep.log
end

set -g tag_filters Name=tag:Project,Values=$project_tag
test -n "$run_id"; and set -a tag_filters Name=tag:RunId,Values=$run_id
# The names the stacks give to what AWS lists without tags (buckets, IAM).
# The same for SSM's DescribeParameters, whose filters are spelt differently.
set -g parameter_filters Key=tag:Project,Values=$project_tag
test -n "$run_id"; and set -a parameter_filters Key=tag:RunId,Values=$run_id
set -g name_prefix rcb-
test -n "$run_id"; and set name_prefix rcb-$run_id-
# A resource is ours only when its tags say so, whatever the server-side filter did.
set -g jq_ours 'def tag($k): [(.Tags // .TagSet // [])[] | select(.Key == $k) | .Value][0];
    def ours: tag("Project") == $project and ($run == "" or tag("RunId") == $run);'

# aws with JSON output, its errors into the sweep log.
function aws_json --argument-names region
    set -l args $argv[2..-1] --output json
    test -n "$region"; and set -a args --region $region
    command aws $args 2>>$sweep_log
end

# The tags of a resource that lists without them (bucket, IAM): aws ARGS... printed as JSON.
# Fails when they could not be read; then $tags_problem is "none" (it has no tags), "gone"
# (deleted meanwhile) or the error.
function aws_tags
    set -l errors (mktemp)
    set -l json (command aws $argv --output json 2>$errors)
    set -l code $status
    set -g tags_problem (string join ' ' -- (head -c 300 $errors))
    cat $errors >>$sweep_log
    rm -f $errors
    if test $code = 0
        string join \n -- $json
        return 0
    end
    if string match -q '*NoSuchTagSet*' -- $tags_problem
        set tags_problem none
    else if string match -qr 'NoSuchBucket|NoSuchEntity' -- $tags_problem
        set tags_problem gone
    end
    return 1
end

# Prints the tags of KIND ID for jq_ours; reports it as "could not check" when they could
# not be read, and fails then too (a resource without tags or gone is not ours, silently).
function tags_of --argument-names kind id
    aws_tags $argv[3..-1]; and return 0
    contains -- $tags_problem none gone
    or could_not_check $kind $id "its tags could not be read: $tags_problem"
    return 1
end

# jq over stdin with the project and run bound.
function jq_ours --argument-names program
    jq -r --arg project $project_tag --arg run "$run_id" $argv[2..-1] "$jq_ours $program"
end

# Prints the ids of KIND in REGION that are ours. Fails when the listing failed.
function list_kind --argument-names region kind
    set -l json
    switch $kind
        case instance
            set json (aws_json $region ec2 describe-instances --filters $tag_filters Name=instance-state-name,Values=pending,running,shutting-down,stopping,stopped)
            or return 1
            string join \n -- $json | jq_ours '.Reservations[]?.Instances[]? | select(ours and .State.Name != "terminated") | .InstanceId'
        case nat-gateway
            set json (aws_json $region ec2 describe-nat-gateways --filter $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.NatGateways[]? | select(ours and .State != "deleted") | .NatGatewayId'
        case address
            set json (aws_json $region ec2 describe-addresses --filters $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.Addresses[]? | select(ours) | .AllocationId'
        case vpc-peering-connection
            set json (aws_json $region ec2 describe-vpc-peering-connections --filters $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.VpcPeeringConnections[]? | select(ours and (.Status.Code | IN("deleted", "rejected", "failed", "expired") | not)) | .VpcPeeringConnectionId'
        case network-interface
            # The interfaces AWS makes for instances carry no tags: those left over in our
            # VPCs block their deletion.
            set -l vpcs (list_kind $region vpc); or return 1
            test (count $vpcs) -gt 0; or return 0
            set json (aws_json $region ec2 describe-network-interfaces --filters Name=vpc-id,Values=(string join , -- $vpcs))
            or return 1
            string join \n -- $json | jq -r --args '.NetworkInterfaces[]? | select(.VpcId as $v | $ARGS.positional | index($v)) | select(.Status == "available") | .NetworkInterfaceId' $vpcs
        case security-group
            set json (aws_json $region ec2 describe-security-groups --filters $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.SecurityGroups[]? | select(ours and .GroupName != "default") | .GroupId'
        case subnet
            set json (aws_json $region ec2 describe-subnets --filters $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.Subnets[]? | select(ours) | .SubnetId'
        case route-table
            set json (aws_json $region ec2 describe-route-tables --filters $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.RouteTables[]? | select(ours and all(.Associations[]?; .Main != true)) | .RouteTableId'
        case internet-gateway
            set json (aws_json $region ec2 describe-internet-gateways --filters $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.InternetGateways[]? | select(ours) | .InternetGatewayId'
        case vpc
            set json (aws_json $region ec2 describe-vpcs --filters $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.Vpcs[]? | select(ours) | .VpcId'
        case volume
            set json (aws_json $region ec2 describe-volumes --filters $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.Volumes[]? | select(ours) | .VolumeId'
        case key-pair
            set json (aws_json $region ec2 describe-key-pairs --filters $tag_filters)
            or return 1
            string join \n -- $json | jq_ours '.KeyPairs[]? | select(ours) | .KeyName'
        case parameter
            # The hosts' secrets (SSM SecureString). DescribeParameters filters by tag but
            # does not return the tags: the filter is all there is to go by.
            set json (aws_json $region ssm describe-parameters --parameter-filters $parameter_filters)
            or return 1
            string join \n -- $json | jq -r '.Parameters[]? | .Name'
        case bucket
            set json (aws_json "" s3api list-buckets)
            or return 1
            for bucket in (string join \n -- $json | jq -r --arg prefix $name_prefix '.Buckets[]? | .Name | select(startswith($prefix))')
                # A bucket without tags (or gone meanwhile) is not ours.
                set -l tags (tags_of bucket $bucket s3api get-bucket-tagging --bucket $bucket); or continue
                string join \n -- $tags | jq_ours 'select(ours) | $b' --arg b $bucket
            end
        case instance-profile
            set json (aws_json "" iam list-instance-profiles)
            or return 1
            for name in (string join \n -- $json | jq -r --arg prefix $name_prefix '.InstanceProfiles[]? | .InstanceProfileName | select(startswith($prefix))')
                # GetInstanceProfile returns the tags (ListInstanceProfileTags is not in every
                # emulator); a profile gone meanwhile is not ours.
                set -l profile (tags_of instance-profile $name iam get-instance-profile --instance-profile-name $name); or continue
                string join \n -- $profile | jq_ours '.InstanceProfile | select(ours) | $n' --arg n $name
            end
        case role
            set json (aws_json "" iam list-roles)
            or return 1
            for name in (string join \n -- $json | jq -r --arg prefix $name_prefix '.Roles[]? | .RoleName | select(startswith($prefix))')
                set -l tags (tags_of role $name iam list-role-tags --role-name $name); or continue
                string join \n -- $tags | jq_ours 'select(ours) | $n' --arg n $name
            end
        case dns-record
            # "ZONE:NAME" for each of the runs' A records that still points at its address.
            for record in $dns_records
                set -l f (string split : -- $record)
                set json (aws_json "" route53 list-resource-record-sets --hosted-zone-id $f[1] --start-record-name $f[2] --start-record-type A --max-items 1)
                or return 1
                string join \n -- $json | jq -r --arg zone $f[1] --arg name $f[2] --arg address $f[3] \
                    '.ResourceRecordSets[]? | select((.Name | ascii_downcase | rtrimstr(".")) == ($name | ascii_downcase | rtrimstr(".")) and .Type == "A")
                     | select(any(.ResourceRecords[]?; .Value == $address)) | "\($zone):\($name)"'
            end
        case resource-group
            set json (command az group list --tag Project=$project_tag --output json 2>>$sweep_log)
            or return 1
            string join \n -- $json | jq -r --arg project $project_tag --arg run "$run_id" \
                '.[]? | select(.tags.Project == $project and ($run == "" or .tags.RunId == $run)) | .name'
        case deleted-key-vault
            # A deleted resource group soft-deletes its Key Vault, secrets and all: "NAME
            # LOCATION" of each of ours, for the purge.
            set json (command az keyvault list-deleted --resource-type vault --output json 2>>$sweep_log)
            or return 1
            string join \n -- $json | jq -r --arg project $project_tag --arg run "$run_id" \
                '.[]? | select(.properties.tags.Project == $project and ($run == "" or .properties.tags.RunId == $run)) | "\(.name):\(.properties.location)"'
        case container
            docker ps -aq --filter label=rcb.project 2>>$sweep_log
        case '*'
            log "unknown kind $kind"
            return 1
    end
end

# Deletes one resource. Fails when the provider refused.
function delete_kind --argument-names region kind id
    switch $kind
        case instance
            aws_json $region ec2 terminate-instances --instance-ids $id >/dev/null
        case nat-gateway
            aws_json $region ec2 delete-nat-gateway --nat-gateway-id $id >/dev/null
        case address
            set -l association (aws_json $region ec2 describe-addresses --allocation-ids $id | jq -r '.Addresses[0].AssociationId // empty')
            test -n "$association"; and aws_json $region ec2 disassociate-address --association-id $association >/dev/null
            aws_json $region ec2 release-address --allocation-id $id >/dev/null
        case vpc-peering-connection
            aws_json $region ec2 delete-vpc-peering-connection --vpc-peering-connection-id $id >/dev/null
        case network-interface
            aws_json $region ec2 delete-network-interface --network-interface-id $id >/dev/null
        case security-group
            aws_json $region ec2 delete-security-group --group-id $id >/dev/null
        case subnet
            aws_json $region ec2 delete-subnet --subnet-id $id >/dev/null
        case route-table
            # A route table still associated with a subnet cannot be deleted.
            set -l associations (aws_json $region ec2 describe-route-tables --route-table-ids $id | jq -r --arg id $id '.RouteTables[]? | select(.RouteTableId == $id) | .Associations[]? | select(.Main != true) | .RouteTableAssociationId // empty')
            for association in $associations
                aws_json $region ec2 disassociate-route-table --association-id $association >/dev/null
            end
            aws_json $region ec2 delete-route-table --route-table-id $id >/dev/null
        case internet-gateway
            set -l vpcs (aws_json $region ec2 describe-internet-gateways --internet-gateway-ids $id | jq -r '.InternetGateways[0].Attachments[]?.VpcId')
            for vpc in $vpcs
                aws_json $region ec2 detach-internet-gateway --internet-gateway-id $id --vpc-id $vpc >/dev/null
            end
            aws_json $region ec2 delete-internet-gateway --internet-gateway-id $id >/dev/null
        case vpc
            aws_json $region ec2 delete-vpc --vpc-id $id >/dev/null
        case volume
            aws_json $region ec2 delete-volume --volume-id $id >/dev/null
        case key-pair
            aws_json $region ec2 delete-key-pair --key-name $id >/dev/null
        case bucket
            set -l location (aws_json "" s3api get-bucket-location --bucket $id | jq -r '.LocationConstraint // "us-east-1"')
            test -n "$location"; or set location us-east-1
            # Empty first (every version too, should versioning ever be turned on), then delete.
            command aws s3 rm s3://$id --recursive --only-show-errors --region $location 2>>$sweep_log
            and aws_json $location s3api delete-bucket --bucket $id >/dev/null
        case instance-profile
            for role in (aws_json "" iam get-instance-profile --instance-profile-name $id | jq -r '.InstanceProfile.Roles[]?.RoleName')
                aws_json "" iam remove-role-from-instance-profile --instance-profile-name $id --role-name $role >/dev/null
            end
            aws_json "" iam delete-instance-profile --instance-profile-name $id >/dev/null
        case role
            for profile in (aws_json "" iam list-instance-profiles-for-role --role-name $id | jq -r '.InstanceProfiles[]?.InstanceProfileName')
                aws_json "" iam remove-role-from-instance-profile --instance-profile-name $profile --role-name $id >/dev/null
            end
            for policy in (aws_json "" iam list-role-policies --role-name $id | jq -r '.PolicyNames[]?')
                aws_json "" iam delete-role-policy --role-name $id --policy-name $policy >/dev/null
            end
            for arn in (aws_json "" iam list-attached-role-policies --role-name $id | jq -r '.AttachedPolicies[]?.PolicyArn')
                aws_json "" iam detach-role-policy --role-name $id --policy-arn $arn >/dev/null
            end
            aws_json "" iam delete-role --role-name $id >/dev/null
        case dns-record
            set -l f (string split : -- $id)
            set -l record (aws_json "" route53 list-resource-record-sets --hosted-zone-id $f[1] --start-record-name $f[2] --start-record-type A --max-items 1 | jq -c '.ResourceRecordSets[0] // empty')
            test -n "$record"; or return 0
            aws_json "" route53 change-resource-record-sets --hosted-zone-id $f[1] \
                --change-batch (jq -n -c --argjson record $record '{Changes: [{Action: "DELETE", ResourceRecordSet: $record}]}') >/dev/null
        case parameter
            aws_json $region ssm delete-parameter --name $id >/dev/null
        case resource-group
            command az group delete --name $id --yes 2>>$sweep_log >/dev/null
        case deleted-key-vault
            set -l f (string split : -- $id)
            command az keyvault purge --name $f[1] --location $f[2] 2>>$sweep_log >/dev/null
        case container
            docker rm -f $id >/dev/null 2>>$sweep_log
    end
end

# What to sweep, in dependency order; each entry is "REGION KIND" ("-" for global ones).
set -g aws_kinds instance nat-gateway address vpc-peering-connection network-interface security-group \
    subnet route-table internet-gateway vpc volume key-pair parameter
set -g regions $_flag_aws_region
for run in $runs
    for stack in meta aws
        set -l file $state_root/$run/$stack.tfvars.json
        test -f $file; or continue
        set -l region (jq -r '.region // empty' $file 2>/dev/null)
        test -n "$region"; and set -a regions $region
    end
end
set -q AWS_REGION; and test -n "$AWS_REGION"; and set -a regions $AWS_REGION
set -q AWS_DEFAULT_REGION; and test -n "$AWS_DEFAULT_REGION"; and set -a regions $AWS_DEFAULT_REGION

set -g targets
if command -q aws
    if set -q _flag_all_regions
        set -l all (aws_json us-east-1 ec2 describe-regions | jq -r '.Regions[]?.RegionName')
        or problem "listing the AWS regions (aws ec2 describe-regions)"
        set -a regions $all
    end
    set regions (printf '%s\n' $regions | sort -u)
    test (count $regions) -gt 0
    or log "no AWS region known (no run state, no --aws-region, no AWS_REGION): only global AWS resources are swept"
    for region in $regions
        for kind in $aws_kinds
            set -a targets "$region $kind"
        end
    end
    set -a targets "- bucket" "- instance-profile" "- role"
    test (count $dns_records) -gt 0; and set -a targets "- dns-record"
else
    problem "the aws CLI is missing: AWS was not swept (install it, see README.md)"
end
if command -q az
    set -a targets "- resource-group" "- deleted-key-vault"
else
    log "the az CLI is missing: Azure was not swept"
    for run in $runs
        test -f $state_root/$run/azure.tfvars.json
        and problem "run $run used Azure, and the az CLI is missing: Azure was not swept"
    end
end
if test -z "$run_id"
    command -q docker; and set -a targets "- container"
end

# Lists TARGET; prints "REGION KIND ID" lines; a failed listing is a problem.
function list_target --argument-names target
    set -l t (string split ' ' -- $target)
    set -l ids (list_kind (string replace -r '^-$' '' -- $t[1]) $t[2])
    or begin
        problem "listing $t[2] in $t[1] (see $sweep_log)"
        return 1
    end
    for id in $ids
        test -n "$id"; and echo "$t[1] $t[2] $id"
    end
end

# Waits for KIND in REGION to be gone (terminating instances, deleting NAT gateways).
function wait_gone --argument-names region kind
    set -l deadline (math (date +%s) + $wait_secs)
    while test (date +%s) -lt $deadline
        set -l left (list_kind $region $kind)
        or return 1
        if test $kind = nat-gateway
            # Listing keeps "deleting" gateways: wait for them to finish.
            set left (aws_json $region ec2 describe-nat-gateways --filter $tag_filters | jq_ours '.NatGateways[]? | select(ours and .State != "deleted") | .NatGatewayId')
        end
        test (count $left) = 0; and return 0
        sleep 10
    end
    log "$kind in $region still there after $wait_secs s; going on"
end

if test $dry_run = 0
    set -l tags Project=$project_tag
    test -n "$run_id"; and set tags "$tags RunId=$run_id"
    log "sweeping $scope by tag $tags (log: $sweep_log)"
end
set -g found
for target in $targets
    set -l t (string split ' ' -- $target)
    set -l region (string replace -r '^-$' '' -- $t[1])
    set -l where ""
    test -n "$region"; and set where " in $region"
    set -l items (list_target $target)
    for item in $items
        set -l f (string split ' ' -- $item)
        set -a found $item
        if test $dry_run = 1
            log "would delete $f[2] $f[3]$where"
            continue
        end
        log "deleting $f[2] $f[3]$where"
        delete_kind "$region" $f[2] $f[3]
        or begin
            # Security groups may refer to each other: one more try after the others.
            if test $f[2] = security-group
                set -a retry_later $item
            else
                problem "deleting $f[2] $f[3]$where (see $sweep_log); going on"
            end
        end
    end
    if test $dry_run = 0 -a (count $items) -gt 0
        switch $t[2]
            case instance nat-gateway
                wait_gone $region $t[2]
        end
    end
    if test $t[2] = security-group
        for item in $retry_later
            set -l f (string split ' ' -- $item)
            delete_kind "$region" $f[2] $f[3]
            or problem "deleting security-group $f[3] in $f[1] (see $sweep_log); going on"
        end
        set -e retry_later
    end
end

if test $dry_run = 0 -a -z "$run_id"; and command -q cargo; and test -f $project_root/xtask/Cargo.toml
    log "cargo xtask local down"
    begin
        cd $project_root; and command cargo xtask local down
    end >>$sweep_log 2>&1
    or problem "cargo xtask local down (see $sweep_log)"
end

# --- what remains ----------------------------------------------------------------------
if test $dry_run = 1
    if test (count $unchecked) -gt 0
        log "could not check whether these are of $scope (their tags could not be read; see $sweep_log):"
        for item in $unchecked
            echo "  $item" >&2
        end
    end
    if test (count $found) = 0 -a $problems = 0 -a (count $unchecked) = 0
        log "nothing of $scope found"
        exit 0
    end
    log "found "(count $found)" resources of $scope; run again without --dry-run to delete them"
    exit 1
end
set -g remaining
for target in $targets
    set -a remaining (list_target $target)
end
if test (count $remaining) -gt 0
    log "what remains of $scope:"
    for item in $remaining
        echo "  $item" >&2
    end
end
if test (count $unchecked) -gt 0
    log "could not check whether these are of $scope (their tags could not be read; see $sweep_log):"
    for item in $unchecked
        echo "  $item" >&2
    end
end
if test (count $remaining) -gt 0 -o $problems -gt 0 -o (count $unchecked) -gt 0
    log (count $remaining)" resources remain, "(count $unchecked)" could not be checked, $problems problems (see above and $sweep_log): run fish/nuke.fish again, or remove them in the console"
    log "the state and variable files stay in $state_root for the next try"
    exit 1
end
log "nothing of $scope remains"

# Nothing remains: the runs' secrets go (state, variable files, backups, SSH keys).
for run in $runs
    test -d $state_root/$run; or continue
    rm -rf $state_root/$run
    or begin
        log "could not delete $state_root/$run (it holds the run's API key and passwords): delete it by hand"
        exit 1
    end
    for entry in $ssh_keys
        set -l f (string split -m 1 ' ' -- $entry)
        test $f[1] = $run -a -f "$f[2]"; and rm -f $f[2] $f[2].pub
    end
    log "deleted the state and variable files of run $run (API key, passwords, SSH key)"
end
exit 0
