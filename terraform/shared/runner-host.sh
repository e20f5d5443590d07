#!/bin/sh
# The runner's wrapper on a cloud host (rcb-runner.service, started once by cloud-init):
# reads the runner key (rcb-secrets), loads the runner image from its presigned URL, runs
# the runner with the Docker socket, then ends the host through /usr/local/sbin/rcb-poweroff
# unless the runner exited 3 ("debug: keep the host up"); exit 4 (the host could not
# prepare tasks, given back) ends it too. A host that cannot even start the runner ends
# too: nobody pays for a host that does nothing. The TTL backstop ends any host kept up.
# Shared by terraform/aws and terraform/azure; output goes to the journal
# (journalctl -u rcb-runner).
set -u

project=$(cat /etc/rcb/project)
work=/var/lib/rcb

# Ubuntu's archive, retried: mirrors hiccup, and unattended-upgrades may hold the dpkg
# lock for a while after first boot.
install_packages() {
    attempt=1
    while [ "$attempt" -le 10 ]; do
        if apt-get -q update \
            && DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 install "$@"; then
            return 0
        fi
        attempt=$((attempt + 1))
        sleep 15
    done
    return 1
}

end_host() {
    echo "rcb: $1; ending the host"
    /usr/local/sbin/rcb-poweroff
    exit 1
}

# Benchmark containers run third-party code (ruby-bench and the gems it installs): they
# must not reach the cloud's metadata service, which hands out the host's identity (on
# Azure a token that may deallocate this VM) and its user data. Docker's bridged containers
# are routed through the host, so DOCKER-USER (which Docker evaluates before its own rules
# and never flushes) drops what they send to the metadata addresses. The runner uses host
# networking: its packets are the host's own and still reach the service.
block_metadata() {
    iptables -I DOCKER-USER -d 169.254.169.254/32 -j DROP || return 1
    [ -e /proc/net/if_inet6 ] || return 0
    # Docker manages ip6tables only in newer releases; FORWARD holds for IPv6 either way.
    chain=DOCKER-USER
    ip6tables -n -L DOCKER-USER >/dev/null 2>&1 || chain=FORWARD
    ip6tables -I "$chain" -d fd00:ec2::254/128 -j DROP
}

# The runner key, from the cloud's secret store with the host's identity, into runner.env.
/usr/local/sbin/rcb-secrets || end_host "the runner's key could not be read from the secret store"
install_packages docker.io || end_host "Docker could not be installed"
systemctl start docker || end_host "Docker did not start"
block_metadata || end_host "benchmark containers could not be kept from the metadata service"

install -d -m 0700 "$work"
url=$(cat /etc/rcb/runner-image.url)
curl -fsS --retry 10 --retry-all-errors --retry-delay 5 --max-time 1800 -o "$work/runner.tar" "$url" \
    || end_host "the runner image could not be downloaded"
docker load -i "$work/runner.tar" >"$work/runner.loaded" || end_host "the runner image could not be loaded"
rm -f "$work/runner.tar"
# The reference it was saved as (rcb/runner:deploy-<arch>), which docker load reports.
image=$(sed -n 's/^Loaded image: //p' "$work/runner.loaded" | tail -n 1)
[ -n "$image" ] || end_host "the runner image named no reference when loaded"

# Host networking: the runner reaches the orchestrator through the NAT like the host, and
# the metadata service (instance id, zone) with AWS's hop limit of one. Benchmark
# containers are started by the runner through the Docker socket, so what they bind-mount
# must be a host path: the runner's cache (its ruby-bench checkout, RUNNER_CACHE_DIR) has
# the same path inside and outside.
cache=$(sed -n 's/^RUNNER_CACHE_DIR=//p' /etc/rcb/runner.env)
[ -n "$cache" ] || end_host "runner.env sets no RUNNER_CACHE_DIR"
install -d -m 0755 "$cache"
docker run --name rcb-runner \
    --label "rcb.project=$project" \
    --network host \
    --env-file /etc/rcb/runner.env \
    --volume /var/run/docker.sock:/var/run/docker.sock \
    --volume "$cache:$cache" \
    "$image"
status=$?

case $status in
    0) echo "rcb: the runner finished (every slot got done)" ;;
    3)
        echo "rcb: the runner exited 3 (a task failed in debug mode): the host stays up until the TTL backstop; 'sudo systemctl stop rcb-ttl.timer' keeps it longer"
        exit 0
        ;;
    4) echo "rcb: the runner exited 4: this host could not prepare its tasks (image pull, ruby-bench fetch or Docker) and gave them back to other hosts of its type" ;;
    *) echo "rcb: the runner exited $status" ;;
esac
/usr/local/sbin/rcb-poweroff
