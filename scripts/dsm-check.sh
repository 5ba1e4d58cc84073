#!/bin/sh
# DSM Task Scheduler wrapper for the alert check: runs `python -m scripts.check` in the app
# image of the running stack and passes its exit code through, so Task Scheduler mails the
# output when it is non-zero (Task Settings: "Send run details by email" and "only when the
# script terminates abnormally"). As root, in a User-defined script task:
#   sh /volume1/docker/chaintape/scripts/dsm-check.sh
# Optional environment: CHAINTAPE_DIR (the folder with the compose file and .env; default this
# script's parent folder), COMPOSE_FILE (default docker-compose-comprehensive.yml; several
# files separated by ':'), COMPOSE_PROJECT_NAME (default chaintape), CHECK_SERVICE (default
# backup: the service with BACKUP_DIR, the spool and the database volume mounted).
# Exit codes: the check's (0 all well, 1 problems, 2 configuration error), 3 when docker or the
# folder is missing.
set -u
dir="${CHAINTAPE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
export COMPOSE_FILE="${COMPOSE_FILE:-docker-compose-comprehensive.yml}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-chaintape}"
service="${CHECK_SERVICE:-backup}"
docker_bin="$(command -v docker || true)"
if [ -z "$docker_bin" ] && [ -x /usr/local/bin/docker ]; then
  docker_bin=/usr/local/bin/docker  # DSM's Container Manager; not on Task Scheduler's PATH
fi
if [ -z "$docker_bin" ]; then
  echo "chaintape check: docker not found (is Container Manager installed?)"
  exit 3
fi
cd "$dir" || { echo "chaintape check: cannot cd to $dir"; exit 3; }
# In the running service when it is up (fast); else in a one-off container of it.
if [ -n "$("$docker_bin" compose ps -q "$service" 2>/dev/null)" ]; then
  "$docker_bin" compose exec -T "$service" python -m scripts.check
else
  "$docker_bin" compose run --rm --no-deps -T "$service" python -m scripts.check
fi
exit $?
