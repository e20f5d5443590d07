"""Creates in the AWS emulator (moto's server, at AWS_ENDPOINT_URL) what the stacks create
for one run (and the Route 53 record meta makes with route53_zone_id), and prints what nuke.fish should find of it, one "REGION KIND ID" line each
("-" for the global kinds), in the words of its dry run.

    seed.py RUN_ID REGION tagged      the run's resources, tagged Project and RunId
    seed.py RUN_ID REGION untagged    look-alikes: the run's names, no tags (not the run's)

With boto3 (moto's own dependency) rather than one aws call per resource: one process seeds
a run in about a second, where the aws CLI would take a minute.
"""

import json
import sys

import boto3

PROJECT = "ruby-cross-cloud-bench"


def main():
    run_id, region, mode = sys.argv[1:4]
    tagged = mode == "tagged"
    # The names the stacks give (terraform/meta, terraform/aws: "rcb-<run id>").
    name = f"rcb-{run_id}" if tagged else f"rcb-{run_id}-lookalike"
    tags = [{"Key": "Name", "Value": name}]
    if tagged:
        tags += [{"Key": "Project", "Value": PROJECT}, {"Key": "RunId", "Value": run_id}]
    ec2 = boto3.client("ec2", region_name=region)
    found = []

    def spec(kind):
        return [{"ResourceType": kind, "Tags": tags}]

    def add(kind, resource_id):
        if tagged:
            found.append(f"{region} {kind} {resource_id}")

    # Two VPCs, as meta (orchestrator, bastion) and aws (runners) have, peered.
    vpcs = []
    for cidr in ["10.60.0.0/16", "10.61.0.0/16"]:
        vpc = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=spec("vpc"))["Vpc"]["VpcId"]
        add("vpc", vpc)
        vpcs.append(vpc)
    peering = ec2.create_vpc_peering_connection(
        VpcId=vpcs[1], PeerVpcId=vpcs[0], TagSpecifications=spec("vpc-peering-connection")
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peering)
    add("vpc-peering-connection", peering)

    key = ec2.create_key_pair(KeyName=name, TagSpecifications=spec("key-pair"))["KeyName"]
    add("key-pair", key)

    instance_subnets = []
    for index, vpc in enumerate(vpcs):
        public = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.{60 + index}.0.0/24", TagSpecifications=spec("subnet")
        )["Subnet"]["SubnetId"]
        private = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.{60 + index}.1.0/24", TagSpecifications=spec("subnet")
        )["Subnet"]["SubnetId"]
        add("subnet", public)
        add("subnet", private)
        igw = ec2.create_internet_gateway(TagSpecifications=spec("internet-gateway"))[
            "InternetGateway"
        ]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        add("internet-gateway", igw)
        table = ec2.create_route_table(VpcId=vpc, TagSpecifications=spec("route-table"))[
            "RouteTable"
        ]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=table, SubnetId=public)
        add("route-table", table)

        # Two groups that refer to each other, as the orchestrator's and the runners' do.
        groups = []
        for role in ["a", "b"]:
            group = ec2.create_security_group(
                GroupName=f"{name}-{index}{role}",
                Description="rcb",
                VpcId=vpc,
                TagSpecifications=spec("security-group"),
            )["GroupId"]
            add("security-group", group)
            groups.append(group)
        for group, other in [(groups[0], groups[1]), (groups[1], groups[0])]:
            ec2.authorize_security_group_ingress(
                GroupId=group,
                IpPermissions=[
                    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                     "UserIdGroupPairs": [{"GroupId": other}]}
                ],
            )
        instance_subnets.append((public, groups[0]))

        address = ec2.allocate_address(Domain="vpc", TagSpecifications=spec("elastic-ip"))[
            "AllocationId"
        ]
        add("address", address)
        if index == 1:
            # The runners' way out: a NAT gateway on its own address, in a route table of
            # the private subnet.
            nat = ec2.create_nat_gateway(
                SubnetId=public, AllocationId=address, TagSpecifications=spec("natgateway")
            )["NatGateway"]["NatGatewayId"]
            add("nat-gateway", nat)
            private_table = ec2.create_route_table(
                VpcId=vpc, TagSpecifications=spec("route-table")
            )["RouteTable"]["RouteTableId"]
            ec2.create_route(
                RouteTableId=private_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat
            )
            ec2.associate_route_table(RouteTableId=private_table, SubnetId=private)
            add("route-table", private_table)
        else:
            orchestrator_address = address

    instances = []
    for subnet, group in instance_subnets:
        instance = ec2.run_instances(
            ImageId="ami-12c6146b",
            InstanceType="t3.small",
            MinCount=1,
            MaxCount=1,
            KeyName=key,
            SubnetId=subnet,
            SecurityGroupIds=[group],
            TagSpecifications=spec("instance"),
        )["Instances"][0]["InstanceId"]
        add("instance", instance)
        instances.append(instance)
    ec2.associate_address(AllocationId=orchestrator_address, InstanceId=instances[0])
    # A volume left over (detached), as a failed destroy leaves one.
    zone = ec2.describe_subnets(SubnetIds=[instance_subnets[0][0]])["Subnets"][0]["AvailabilityZone"]
    volume = ec2.create_volume(AvailabilityZone=zone, Size=8, TagSpecifications=spec("volume"))["VolumeId"]
    add("volume", volume)

    # moto lists a NAT gateway's interface as available (AWS: in use), so nuke's dry run
    # finds it among the leftover interfaces of the run's VPCs.
    if tagged:
        interfaces = ec2.describe_network_interfaces(
            Filters=[{"Name": "vpc-id", "Values": vpcs}, {"Name": "status", "Values": ["available"]}]
        )["NetworkInterfaces"]
        for interface in interfaces:
            add("network-interface", interface["NetworkInterfaceId"])

    # The results bucket with the images and a result in it.
    s3 = boto3.client("s3", region_name=region)
    bucket = f"{name}-results-ab12"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    if tagged:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
        found.append(f"- bucket {bucket}")
    for key_name in ["images/orchestrator.tar.gz", "images/runner-x86_64.tar.gz", "results/1/1.tar"]:
        s3.put_object(Bucket=bucket, Key=key_name, Body=b"object")

    # The hosts' secrets, SecureString parameters (meta: the orchestrator's two files; aws:
    # the runners' key).
    ssm = boto3.client("ssm", region_name=region)
    prefix = f"/rcb/{run_id}" if tagged else f"/rcb/{run_id}-lookalike"
    parameter_tags = [tag for tag in tags if tag["Key"] != "Name"] or [{"Key": "Name", "Value": name}]
    for file in ["orchestrator.env", "postgres.env", "runner.env"]:
        parameter = f"{prefix}/{file}"
        ssm.put_parameter(Name=parameter, Value="SECRET=seeded\n", Type="SecureString", Tags=parameter_tags)
        add("parameter", parameter)

    # The orchestrator's and the runners' roles: an inline policy, an instance profile each.
    iam = boto3.client("iam", region_name=region)
    assume = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                       "Action": "sts:AssumeRole"}],
    }
    policies = {
        "orchestrator": {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                         "Resource": f"arn:aws:s3:::{bucket}/*"},
        "runner": {"Effect": "Allow", "Action": ["ssm:GetParameter"],
                   "Resource": f"arn:aws:ssm:{region}:123456789012:parameter{prefix}/runner.env"},
    }
    for part, statement in policies.items():
        role = f"{name}-{part}"
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(assume), Tags=tags)
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        iam.put_role_policy(RoleName=role, PolicyName="own", PolicyDocument=json.dumps(policy))
        iam.create_instance_profile(InstanceProfileName=role, Tags=tags)
        iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
        if tagged:
            found.append(f"- instance-profile {role}")
            found.append(f"- role {role}")

    # The orchestrator's name, in a zone the runs share (meta's route53_zone_id and domain).
    if tagged:
        route53 = boto3.client("route53", region_name=region)
        zones = route53.list_hosted_zones_by_name(DNSName="example.com")["HostedZones"]
        zones = [zone for zone in zones if zone["Name"] == "example.com."]
        if zones:
            zone = zones[0]["Id"]
        else:
            zone = route53.create_hosted_zone(Name="example.com", CallerReference="rcb")[
                "HostedZone"
            ]["Id"]
        zone = zone.removeprefix("/hostedzone/")
        public_ip = ec2.describe_addresses(AllocationIds=[orchestrator_address])["Addresses"][0][
            "PublicIp"
        ]
        domain = f"bench-{run_id}.example.com"
        route53.change_resource_record_sets(
            HostedZoneId=zone,
            ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
                "Name": domain, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": public_ip}],
            }}]},
        )
        found.append(f"- dns-record {zone}:{domain}")

    print("\n".join(found))


main()
