#!/bin/sh
# First boot of the orchestrator host (cloud-init runcmd): reads its secrets from SSM into
# the env files, loads the images from the presigned URLs cloud-init wrote to /etc/rcb,
# starts Postgres and the orchestrator with host networking on 127.0.0.1, and puts Caddy
# in front of them. Output goes to /var/log/cloud-init-output.log.
set -eu

project=$(cat /etc/rcb/project)

# First, so that a host without its secrets stops before installing anything.
/usr/local/sbin/rcb-secrets

# Ubuntu's archive, retried: mirrors hiccup, and unattended-upgrades may hold the dpkg
# lock for a while after first boot.
install_packages() {
    attempt=1
    while [ "$attempt" -le 10 ]; do
        if apt-get -q update \
            && DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
                -o Dpkg::Options::=--force-confold install "$@"; then
            return 0
        fi
        attempt=$((attempt + 1))
        sleep 15
    done
    return 1
}

# Loads image NAME from its presigned URL and prints the reference it was saved as
# (rcb/orchestrator:deploy-<arch>, rcb/postgres:15), which docker load reports.
load_image() {
    name=$1
    url=$(cat "/etc/rcb/$name-image.url")
    tarball=/var/lib/rcb/$name.tar
    install -d -m 0700 /var/lib/rcb
    echo "rcb: downloading the $name image" >&2
    curl -fsS --retry 10 --retry-all-errors --retry-delay 5 --max-time 1800 -o "$tarball" "$url"
    docker load -i "$tarball" >"$tarball.loaded"
    rm -f "$tarball"
    sed -n 's/^Loaded image: //p' "$tarball.loaded" | tail -n 1
    rm -f "$tarball.loaded"
}

# The host serves nothing but the orchestrator: Ubuntu's caddy package starts at install
# with its default site (a placeholder page on :80) unless our Caddyfile is already in
# place, and --force-confold keeps ours over the package's. Until the orchestrator is up,
# Caddy answers 502, which the master script reads as "not up yet".
install -d -m 0755 /etc/caddy
install -m 0644 /etc/rcb/Caddyfile /etc/caddy/Caddyfile
install_packages docker.io caddy
systemctl enable --now docker
postgres_image=$(load_image postgres)
orchestrator_image=$(load_image orchestrator)
[ -n "$postgres_image" ] && [ -n "$orchestrator_image" ] || { echo "rcb: an image named no reference when loaded" >&2; exit 1; }

docker volume create --label "rcb.project=$project" rcb-pgdata >/dev/null
docker run -d --name rcb-postgres --restart unless-stopped \
    --label "rcb.project=$project" \
    --env-file /etc/rcb/postgres.env \
    --volume rcb-pgdata:/var/lib/postgresql/data \
    --publish 127.0.0.1:5432:5432 \
    "$postgres_image"

# The orchestrator retries its database connection through Docker's restart policy while
# Postgres initialises its cluster.
docker run -d --name rcb-orchestrator --restart unless-stopped \
    --label "rcb.project=$project" \
    --network host \
    --env-file /etc/rcb/orchestrator.env \
    "$orchestrator_image"

systemctl enable caddy
systemctl restart caddy
echo "rcb: orchestrator host ready"
