#!/bin/bash
# The environment interface of the postgres / timescale/timescaledb images, for tests:
# first start initialises PGDATA as POSTGRES_USER (a superuser) with POSTGRES_PASSWORD, creates
# POSTGRES_DB with the timescaledb extension, preloads timescaledb (sized by TS_TUNE_MEMORY and
# TS_TUNE_NUM_CPUS when given), runs /docker-entrypoint-initdb.d, then runs the server.
set -euo pipefail
if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

port="${PGPORT:-5432}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "Error: Database is uninitialized and superuser password is not specified." >&2
    echo "       You must specify POSTGRES_PASSWORD to a non-empty value for the superuser." >&2
    exit 1
  fi
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  # shellcheck disable=SC2086
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --auth-local=trust --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  {
    echo "listen_addresses = '*'"
    echo "shared_preload_libraries = 'timescaledb'"
    echo "timescaledb.telemetry_level = off"
    if [ -n "${TS_TUNE_MEMORY:-}" ]; then
      # timescaledb-tune is not packaged in Debian: the same two figures it derives most from.
      mem_mb=$(echo "$TS_TUNE_MEMORY" | awk '{ v=$1+0; u=toupper($1); if (u ~ /GB$/) v*=1024; else if (u ~ /KB$/) v/=1024; print int(v) }')
      echo "shared_buffers = $((mem_mb / 4))MB"
      echo "effective_cache_size = $((mem_mb * 3 / 4))MB"
    fi
    if [ -n "${TS_TUNE_NUM_CPUS:-}" ]; then
      echo "max_worker_processes = $((TS_TUNE_NUM_CPUS + 11))"
      echo "timescaledb.max_background_workers = 8"
    fi
  } >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p $port" -w start >/dev/null
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -p "$port" -U "$user" -d postgres -q -c "CREATE DATABASE \"$db\""
  fi
  for target in template1 "$db"; do
    psql -v ON_ERROR_STOP=1 -p "$port" -U "$user" -d "$target" -q -c "CREATE EXTENSION IF NOT EXISTS timescaledb"
  done
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "running $f"; . "$f" ;;
      *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 -p "$port" -U "$user" -d "$db" -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@" -p "$port"
