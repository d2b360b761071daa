#!/usr/bin/env bash
# Installs the programs the integration tests drive (Docker engine, skopeo, podman, buildah,
# umoci, static busybox, and CNCF distribution as `docker-registry`), skipping those already
# installed. Maintainer scripts must not start daemons: there is no init system to own them,
# and the tests start private ones (dockerd, docker-registry) on their own sockets and ports.
set -euo pipefail

packages=(docker.io busybox-static skopeo podman umoci docker-registry buildah wrk nginx-light openssl)
# reporting tests: the SMTP relay that receives log.hooks mail (for /usr/bin/python3)
packages+=(python3-aiosmtpd)
packages+=(pebble) # ACME test CA for it/acme.rs
packages+=(redis-server) # redis cache and scale-out tests
# it/connections.rs: `ss` reads keep-alive timers, `kill` stops and resumes a server, `prlimit`
# sets its open-file limits
packages+=(iproute2 procps util-linux)
# A single-node OpenStack Swift for the swift backend's tests (started by the tests themselves).
packages+=(swift swift-proxy swift-object swift-container swift-account memcached)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "already installed: ${packages[*]}"
    exit 0
fi
echo "installing: ${missing[*]}"

# policy-rc.d exit 101 = "action forbidden": invoke-rc.d and deb-systemd-invoke then start
# nothing (docker, containerd, docker-registry). Only ours is removed afterwards.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

# Retries a command a few times: a mirror hiccup should not fail a CI run.
retry() {
    local attempt
    for attempt in 1 2 3; do
        "$@" && return 0
        echo "attempt $attempt of: $* failed; retrying in $((attempt * 10))s" >&2
        sleep $((attempt * 10))
    done
    "$@"
}

export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l
retry apt-get update -q
# Recommends are not needed: the tests use no container networking beyond `--network none`,
# no rootless mode and no fuse-overlayfs (every store is vfs).
retry apt-get install -y -q --no-install-recommends "${missing[@]}"

# The docker-registry package ships a service for a registry on :5000; it is not wanted here
# and cannot run without systemd. Make sure nothing from it (or from docker.io) is running.
for unit in docker-registry docker containerd; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
        systemctl stop "$unit" || true
    fi
done
