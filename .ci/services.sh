#!/usr/bin/env bash
# Makes sure Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, trust auth for the user
# postgres, a database named test) are up for the distributed batch tests, on this machine or a
# fresh Debian one: installs the Debian packages when absent, starts the servers when stopped,
# allows trust auth from loopback, then waits until both answer. Idempotent; safe to run twice.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

have_postgres() { ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; }

packages=()
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || packages+=(redis-tools)
have_postgres || packages+=(postgresql)
command -v pg_isready >/dev/null 2>&1 || packages+=(postgresql-client)
if [ "${#packages[@]}" -gt 0 ]; then
  echo "services: installing ${packages[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}"
fi

# Redis: without persistence (the tests that need AOF start a private server of their own).
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting redis-server on 127.0.0.1:6379"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

# PostgreSQL: the newest installed version's cluster "main" (created if the package made none).
version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$version" ]; then
  version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
  echo "services: creating the PostgreSQL $version cluster main"
  $SUDO pg_createcluster "$version" main
fi
hba="/etc/postgresql/$version/main/pg_hba.conf"
reload=0
# First match wins in pg_hba.conf: trust for loopback goes on top (a fresh install says
# peer/scram there). Only loopback: nothing else is opened.
for rule in "host all all 127.0.0.1/32 trust" "host all all ::1/128 trust"; do
  if ! $SUDO grep -Eq "^${rule// /[[:space:]]+}[[:space:]]*$" "$hba"; then
    echo "services: pg_hba.conf: adding '$rule'"
    $SUDO sed -i "1i $rule" "$hba"
    reload=1
  fi
done
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "services: starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
elif [ "$reload" -eq 1 ]; then
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi

wait_for() {
  local what="$1"
  shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "services: $what did not come up" >&2
  return 1
}
wait_for "Redis" redis-cli -h 127.0.0.1 -p 6379 ping
wait_for "PostgreSQL" pg_isready -h 127.0.0.1 -p 5432
# Trust may take a reload to apply: wait until a password-less login works.
wait_for "PostgreSQL trust auth" psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1"
if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != "1" ]; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test"
fi
echo "services: Redis $(redis-cli -h 127.0.0.1 -p 6379 info server | sed -n 's/^redis_version://p' | tr -d '\r') and PostgreSQL $version are up on 127.0.0.1"
