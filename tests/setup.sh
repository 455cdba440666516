#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) for the demo and the tests:
# system packages, a running Docker engine, the base images built without a
# registry, and a virtualenv with unitgen and its test tools. Idempotent and
# cached: a second run only checks.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
state=${WORMHOLE_LAB_STATE:-/var/tmp/wormhole-lab}
mkdir -p "$state"

need=()
for pair in dockerd:docker.io debootstrap:debootstrap ignition-validate:ignition \
            iptables:iptables ssh:openssh-client ip:iproute2 hyperfine:hyperfine; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  # -f: dockerd runs in its own session, never a job of this script.
  setsid -f dockerd --pidfile "$state/dockerd.pid" >/var/log/dockerd.log 2>&1 </dev/null
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start, see /var/log/dockerd.log" >&2; exit 1; }
fi

mirror() {
  local f=/etc/apt/sources.list.d/debian.sources
  if [[ -f $f ]]; then
    awk '/^URIs:/ {print $2; exit}' "$f"
  else
    awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list
  fi
}

# debootstrap ROOTFS_NAME TAG IMPORT_CHANGE [debootstrap options...]
bootstrap_image() {
  local tag=$1 change=$2; shift 2
  docker image inspect "$tag" >/dev/null 2>&1 && return 0
  local dir
  dir=$(mktemp -d "$state/rootfs.XXXXXX")
  echo "setup: debootstrap for $tag"
  debootstrap --variant=minbase "$@" bookworm "$dir" "$(mirror)" >"$dir.log" 2>&1 \
    || { tail -20 "$dir.log" >&2; exit 1; }
  rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"*
  if [[ -n $change ]]; then
    tar -C "$dir" -c . | docker import -c "$change" - "$tag" >/dev/null
  else
    tar -C "$dir" -c . | docker import - "$tag" >/dev/null
  fi
  rm -rf "$dir" "$dir.log"
}

host_pkgs=systemd,systemd-sysv,dbus,docker.io,iptables,iproute2,openssh-client,procps,kmod,ca-certificates
bootstrap_image debian:bookworm-slim "" &
slim=$!
bootstrap_image wormhole-lab/host-base:1 'CMD ["/sbin/init"]' --include="$host_pkgs" &
base=$!
wait "$slim" && wait "$base"

# The admin's host: the same systemd host with python3 to run unitgen on it; and a host as
# close to Fedora CoreOS as this machine allows: no python3, /usr/local and /opt into /var,
# dockerd with Fedora's flags (rebuilt from the layer cache in a second when unchanged).
for pair in host:image fcos:fcos; do
  out=$(docker build -q -t "wormhole-lab/${pair%%:*}:1" "$top/tests/lab/${pair#*:}" 2>&1) \
    || { echo "$out" >&2; exit 1; }
done

if [[ ! -x $top/.venv/bin/unitgen ]]; then
  echo "setup: creating .venv"
  python3 -m venv "$top/.venv"
  "$top/.venv/bin/pip" install -q --upgrade pip
fi
"$top/.venv/bin/pip" install -q -e "$top[test]"
