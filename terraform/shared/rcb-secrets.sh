#!/bin/sh
# Reads the host's secrets from its cloud's secret store, with the host's own identity, and
# appends them to its env files (/usr/local/sbin/rcb-secrets, run once at first boot before
# anything that needs them). User data carries only where they are: each line of
# /etc/rcb/secrets is
#
#   <env file in /etc/rcb> ssm <region> <parameter name>             (AWS: SSM SecureString)
#   <env file in /etc/rcb> keyvault <vault> <secret> <client id>     (Azure: Key Vault)
#
# and each secret's value is the env file's lines that hold secrets ("API_KEY=...\n").
# Credentials and tokens never reach a command line (ps would show them): curl reads them
# from a config on its standard input. Shared by terraform/meta, terraform/aws and
# terraform/azure; output goes to the caller's log.
set -eu

imds=http://169.254.169.254

# The instance role's temporary credentials as curl config lines (user, session token).
aws_credentials() {
    token=$(curl -fsS --max-time 10 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" \
        "$imds/latest/api/token") || return 1
    role=$(printf 'header = "X-aws-ec2-metadata-token: %s"\n' "$token" \
        | curl -fsS --max-time 10 -K - "$imds/latest/meta-data/iam/security-credentials/" | head -n 1) \
        || return 1
    [ -n "$role" ] || return 1
    printf 'header = "X-aws-ec2-metadata-token: %s"\n' "$token" \
        | curl -fsS --max-time 10 -K - "$imds/latest/meta-data/iam/security-credentials/$role" \
        | python3 -c '
import json, sys
c = json.load(sys.stdin)
print("user = " + json.dumps(c["AccessKeyId"] + ":" + c["SecretAccessKey"]))
print("header = " + json.dumps("X-Amz-Security-Token: " + c["Token"]))'
}

# SSM GetParameter of NAME in REGION, decrypted, signed with the instance role (SigV4).
ssm_get() {
    region=$1 name=$2
    credentials=$(aws_credentials) || return 1
    body=$(python3 -c 'import json, sys; print(json.dumps({"Name": sys.argv[1], "WithDecryption": True}))' "$name")
    printf '%s\n' "$credentials" \
        | curl -fsS --max-time 20 -K - --aws-sigv4 "aws:amz:$region:ssm" \
            -H "X-Amz-Target: AmazonSSM.GetParameter" \
            -H "Content-Type: application/x-amz-json-1.1" \
            --data "$body" "https://ssm.$region.amazonaws.com/" \
        | python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin)["Parameter"]["Value"])'
}

# Key Vault secret NAME of VAULT, with the managed identity CLIENT_ID's token.
keyvault_get() {
    vault=$1 name=$2 client=$3
    token=$(curl -fsS --max-time 10 -H Metadata:true \
        "$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=$client" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') || return 1
    printf 'header = "Authorization: Bearer %s"\n' "$token" \
        | curl -fsS --max-time 20 -K - "https://$vault.vault.azure.net/secrets/$name?api-version=7.4" \
        | python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin)["value"])'
}

# A new identity's permissions and credentials take a while to reach every endpoint:
# each secret is tried for five minutes.
fetch() {
    attempt=1
    while [ "$attempt" -le 30 ]; do
        case $1 in
            ssm) value=$(ssm_get "$2" "$3") && return 0 ;;
            keyvault) value=$(keyvault_get "$2" "$3" "$4") && return 0 ;;
            *) echo "rcb: unknown secret store $1" >&2; return 1 ;;
        esac
        attempt=$((attempt + 1))
        sleep 10
    done
    return 1
}

while read -r file store a b c; do
    [ -n "$file" ] || continue
    case $file in */* | .*) echo "rcb: /etc/rcb/secrets names $file, not a file of /etc/rcb" >&2; exit 1 ;; esac
    fetch "$store" "$a" "$b" "$c" || { echo "rcb: the secret $b ($store) for $file could not be read" >&2; exit 1; }
    # The value's lines, each ended (a value without its last newline would join the next).
    printf '%s\n' "$value" | sed '/^$/d' >>"/etc/rcb/$file"
    echo "rcb: read the secrets of $file from $store"
done </etc/rcb/secrets
