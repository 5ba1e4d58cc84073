#!/usr/bin/env bash
# Builds the local stand-ins for the upstream images the production files name, which no
# registry here can provide (see shared docs/docker.md):
#   chaintape-test/trixie:1          Debian trixie minbase root filesystem (debootstrap)
#   chaintape-test/python:3.13       trixie's python3 + venv, as `python`, pip trusting the host CA
#   chaintape-test/timescaledb:pg17  PostgreSQL 17 + TimescaleDB (Apache edition), with the
#                                    timescale/timescaledb image's environment interface
# Idempotent: the debootstrap step is skipped when its image exists; the two builds are cached
# by the engine. Usage: bash tests/docker/build_images.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BASE_IMAGE=chaintape-test/trixie:1
PYTHON_STANDIN=chaintape-test/python:3.13
TIMESCALEDB_STANDIN=chaintape-test/timescaledb:pg17
log() { printf '[build-images] %s\n' "$*"; }

mirror() {
  # The host's Debian mirror (deb822 sources first, then sources.list).
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [ -z "$uri" ]; then
    uri=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install -y debootstrap)" >&2; exit 1; }
  root=$(mktemp -d /var/tmp/chaintape-trixie.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  log "debootstrap trixie from $(mirror)"
  debootstrap --variant=minbase trixie "$root" "$(mirror)" >"$root.log" 2>&1 || { tail -30 "$root.log"; exit 1; }
  rm -f "$root.log"
  # Packages come from the same mirror inside builds; no recommends keep the stand-ins small.
  printf 'deb %s trixie main\n' "$(mirror)" >"$root/etc/apt/sources.list"
  printf 'APT::Install-Recommends "false";\n' >"$root/etc/apt/apt.conf.d/99no-recommends"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
  trap - EXIT
  log "imported $BASE_IMAGE"
else
  log "$BASE_IMAGE present"
fi

# The Python stand-in trusts the host's CA bundle for pip (PIP_CERT), as the guide's builds do.
cp /etc/ssl/certs/ca-certificates.crt "$here/python-standin/host-ca.crt"
log "building $PYTHON_STANDIN"
docker build -q --network host --build-arg "BASE=$BASE_IMAGE" -t "$PYTHON_STANDIN" "$here/python-standin" >/dev/null
rm -f "$here/python-standin/host-ca.crt"
log "building $TIMESCALEDB_STANDIN"
docker build -q --network host --build-arg "BASE=$BASE_IMAGE" -t "$TIMESCALEDB_STANDIN" "$here/timescaledb-standin" >/dev/null
log "done: $PYTHON_STANDIN $TIMESCALEDB_STANDIN"
