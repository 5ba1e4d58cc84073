#!/bin/sh
# DSM Task Scheduler wrapper for the alert check: runs `python -m scripts.check` in the app
# image of the running stack and passes its exit code through, so Task Scheduler mails the
# output when it is non-zero ("Send run details by email" + "only when the script terminates
# abnormally"). Usage (as root, in a User-defined script task):
#   sh /volume1/docker/chaintape/scripts/dsm-check.sh
# Environment (optional): CHAINTAPE_DIR (the folder with the compose file and .env; default:
# this script's parent), COMPOSE_FILE (default docker-compose-comprehensive.yml),
# COMPOSE_PROJECT_NAME (default chaintape), CHECK_SERVICE (default backup: a running service of
# the app image with BACKUP_DIR, SPOOL_DIR and the Docker socket mounted).
set -u
dir="${CHAINTAPE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
file="${COMPOSE_FILE:-docker-compose-comprehensive.yml}"
project="${COMPOSE_PROJECT_NAME:-chaintape}"
service="${CHECK_SERVICE:-backup}"
if command -v docker >/dev/null 2>&1; then
  docker_bin=docker
elif [ -x /usr/local/bin/docker ]; then
  docker_bin=/usr/local/bin/docker  # DSM's Container Manager puts it here, off Task Scheduler's PATH
else
  echo "chaintape check: docker not found (is Container Manager installed?)"
  exit 3
fi
cd "$dir" || { echo "chaintape check: cannot cd to $dir"; exit 3; }
# `exec` in the running service when it is up (fast); else a one-off container of it.
if [ -n "$("$docker_bin" compose -p "$project" -f "$file" ps -q "$service" 2>/dev/null)" ]; then
  "$docker_bin" compose -p "$project" -f "$file" exec -T "$service" python -m scripts.check
else
  "$docker_bin" compose -p "$project" -f "$file" run --rm --no-deps -T "$service" python -m scripts.check
fi
code=$?
exit "$code"
