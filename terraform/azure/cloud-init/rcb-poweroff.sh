#!/bin/sh
# Ends this runner VM. A VM powered off from inside stays allocated and Azure keeps
# billing it, so it first asks Azure to deallocate it, with its managed identity (allowed
# to do that to this VM only); powering off is the fallback when that fails.
set -u

imds=http://169.254.169.254/metadata
attempt=1
while [ "$attempt" -le 5 ]; do
    token=$(curl -fsS --max-time 10 -H Metadata:true \
        "$imds/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') \
        && id=$(curl -fsS --max-time 10 -H Metadata:true \
            "$imds/instance/compute/resourceId?api-version=2021-02-01&format=text") \
        && curl -fsS --max-time 30 -X POST -H "Authorization: Bearer $token" -H "Content-Length: 0" \
            "https://management.azure.com$id/deallocate?api-version=2024-07-01" >/dev/null \
        && {
            echo "rcb: deallocation requested"
            # Azure stops the VM from outside; wait for it rather than racing it.
            sleep 600
        }
    attempt=$((attempt + 1))
    sleep 30
done
echo "rcb: deallocation failed; powering off (the VM stays allocated until the nuke script)"
exec systemctl poweroff
