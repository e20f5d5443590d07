"""Prints everything the AWS emulator holds of the kinds nuke.fish sweeps, one sorted
"REGION KIND ID" line each ("-" for the global kinds), in the words of nuke's dry run:
what a test compares before and after a nuke. Ended things (terminated instances, deleted
NAT gateways and peerings) are left out, as AWS lists them for a while after.

    census.py REGION
"""

import sys

import boto3


def main():
    region = sys.argv[1]
    ec2 = boto3.client("ec2", region_name=region)
    lines = []

    def add(kind, ids):
        lines.extend(f"{region} {kind} {resource_id}" for resource_id in ids)

    add("instance", [
        instance["InstanceId"]
        for reservation in ec2.describe_instances()["Reservations"]
        for instance in reservation["Instances"]
        if instance["State"]["Name"] != "terminated"
    ])
    add("nat-gateway", [
        nat["NatGatewayId"] for nat in ec2.describe_nat_gateways()["NatGateways"]
        if nat["State"] not in ("deleted", "deleting")
    ])
    add("address", [address["AllocationId"] for address in ec2.describe_addresses()["Addresses"]])
    add("vpc-peering-connection", [
        peering["VpcPeeringConnectionId"]
        for peering in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
        if peering["Status"]["Code"] not in ("deleted", "rejected", "failed", "expired")
    ])
    # Interfaces in use go with their instance (or NAT gateway); available ones are left over.
    add("network-interface", [
        interface["NetworkInterfaceId"]
        for interface in ec2.describe_network_interfaces()["NetworkInterfaces"]
        if interface["Status"] == "available"
    ])
    # A VPC's default group and main route table go with it: "(default of VPC)", "(main of
    # VPC)" say whose they are.
    add("security-group", [
        group["GroupId"] + (f" (default of {group['VpcId']})" if group["GroupName"] == "default" else "")
        for group in ec2.describe_security_groups()["SecurityGroups"]
    ])
    add("subnet", [subnet["SubnetId"] for subnet in ec2.describe_subnets()["Subnets"]])
    add("route-table", [
        table["RouteTableId"]
        + (f" (main of {table['VpcId']})" if any(a.get("Main") for a in table["Associations"]) else "")
        for table in ec2.describe_route_tables()["RouteTables"]
    ])
    add("internet-gateway", [
        gateway["InternetGatewayId"]
        for gateway in ec2.describe_internet_gateways()["InternetGateways"]
    ])
    add("vpc", [vpc["VpcId"] for vpc in ec2.describe_vpcs()["Vpcs"]])
    # Root volumes go with their instance too.
    add("volume", [
        volume["VolumeId"] for volume in ec2.describe_volumes()["Volumes"]
        if volume["State"] == "available"
    ])
    add("key-pair", [pair["KeyName"] for pair in ec2.describe_key_pairs()["KeyPairs"]])
    ssm = boto3.client("ssm", region_name=region)
    add("parameter", [
        parameter["Name"]
        for page in ssm.get_paginator("describe_parameters").paginate()
        for parameter in page["Parameters"]
    ])

    s3 = boto3.client("s3", region_name=region)
    for bucket in s3.list_buckets()["Buckets"]:
        lines.append(f"- bucket {bucket['Name']}")
        for item in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            lines.append(f"- object {bucket['Name']}/{item['Key']}")
    iam = boto3.client("iam", region_name=region)
    for profile in iam.list_instance_profiles()["InstanceProfiles"]:
        name = profile["InstanceProfileName"]
        lines.append(f"- instance-profile {name}")
        lines.extend(f"- instance-profile-role {name}/{role['RoleName']}" for role in profile["Roles"])
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        lines.append(f"- role {name}")
        lines.extend(
            f"- role-policy {name}/{policy}"
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
        )

    route53 = boto3.client("route53", region_name=region)
    for zone in route53.list_hosted_zones()["HostedZones"]:
        records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
        lines.extend(
            f"- record {record['Name']} A {value['Value']}"
            for record in records
            if record["Type"] == "A"
            for value in record["ResourceRecords"]
        )

    print("\n".join(sorted(lines)))


main()
