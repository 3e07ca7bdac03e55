#!/usr/bin/env bash
# Citus for Tenantry: build/install the extension from a source tarball, and run a local
# three-node cluster (a coordinator and two workers, private PostgreSQL clusters) for trying
# Tenantry's Citus mode by hand.
#
#   scripts/citus.sh install [TARBALL_DIR]   build + install Citus 13.2.2 when citus.so is missing
#                                             (TARBALL_DIR holds citus-13.2.2.tar.gz and, optionally,
#                                             *.patch files applied with patch -p1; default ../shared/citus)
#   scripts/citus.sh start                    initdb + start coordinator and workers, create the database,
#                                             CREATE EXTENSION citus, register the workers
#   scripts/citus.sh stop                     stop the three nodes (data kept; `start` reuses it)
#   scripts/citus.sh status                   installed? running? the node list
#   scripts/citus.sh destroy                  stop and delete the data directories
#
# Environment: CITUS_DIR (data, default /tmp/tenantry-citus), CITUS_PORT (coordinator port, default
# 9700; workers are +1 and +2), CITUS_DB (database, default tenantry), PG_BIN
# (default /usr/lib/postgresql/15/bin). Nodes run as the `postgres` OS user when started by root.
set -euo pipefail

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONFIG="${PG_CONFIG:-$PG_BIN/pg_config}"
CITUS_VERSION="${CITUS_VERSION:-13.2.2}"
CITUS_DIR="${CITUS_DIR:-/tmp/tenantry-citus}"
CITUS_PORT="${CITUS_PORT:-9700}"
CITUS_DB="${CITUS_DB:-tenantry}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

libdir() { "$PG_CONFIG" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib; }
installed() { [ -e "$(libdir)/citus.so" ]; }

# Runs a command as the postgres OS user when we are root (PostgreSQL refuses to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd_install() {
  local src="${1:-$ROOT/../shared/citus}"
  if installed; then
    echo "citus already installed: $(libdir)/citus.so"
    return 0
  fi
  local tarball="$src/citus-$CITUS_VERSION.tar.gz"
  if [ ! -f "$tarball" ]; then
    echo "citus.sh install: $tarball not found (pass the folder holding citus-$CITUS_VERSION.tar.gz," >&2
    echo "or install Citus from its packages: https://docs.citusdata.com/en/stable/installation/)" >&2
    return 1
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "citus.sh install: run as root (installs build dependencies and the extension)" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local deps=(postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev
    libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev flex bison make gcc patch)
  local missing=()
  for d in "${deps[@]}"; do
    dpkg -s "$d" >/dev/null 2>&1 || missing+=("$d")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  local build
  build="$(mktemp -d /tmp/citus-build.XXXXXX)"
  echo "== building Citus $CITUS_VERSION in $build"
  tar -xzf "$tarball" -C "$build"
  local dir
  dir="$(find "$build" -mindepth 1 -maxdepth 1 -type d | head -n1)"
  shopt -s nullglob
  for p in "$src"/*.patch; do
    echo "== patch $p"
    (cd "$dir" && patch -p1 --forward < "$p") || true
  done
  shopt -u nullglob
  (cd "$dir" && ./configure PG_CONFIG="$PG_CONFIG" >/dev/null && make -j"$(nproc)" >/dev/null && make install >/dev/null)
  rm -rf "$build"
  installed || { echo "citus.sh install: build finished but citus.so is missing" >&2; return 1; }
  echo "citus installed: $(libdir)/citus.so"
  # Installing server-dev may have upgraded and restarted the main PostgreSQL: wait for it.
  for _ in $(seq 1 30); do "$PG_BIN/pg_isready" -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
}

node_port() { echo $((CITUS_PORT + $1)); }
node_dir() { echo "$CITUS_DIR/node$1"; }
psql_node() {
  local port="$1"; shift
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

cmd_start() {
  installed || { echo "citus is not installed: run scripts/citus.sh install [TARBALL_DIR] first" >&2; return 1; }
  mkdir -p "$CITUS_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$CITUS_DIR"
  local i
  for i in 0 1 2; do
    local dir port
    dir="$(node_dir $i)"
    port="$(node_port $i)"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
      cat >> "$dir/postgresql.conf" <<CONF
shared_preload_libraries = 'citus'
wal_level = logical
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
citus.local_hostname = '127.0.0.1'
max_worker_processes = 32
max_wal_senders = 20
max_replication_slots = 20
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    fi
    if ! as_pg "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/log" -w start >/dev/null
    fi
    if ! psql_node "$port" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$CITUS_DB'" | grep -q 1; then
      psql_node "$port" -d postgres -c "CREATE DATABASE \"$CITUS_DB\""
    fi
    psql_node "$port" -d "$CITUS_DB" -c "CREATE EXTENSION IF NOT EXISTS citus"
  done
  local c
  c="$(node_port 0)"
  psql_node "$c" -d "$CITUS_DB" -c "SELECT citus_set_coordinator_host('127.0.0.1', $c)" >/dev/null
  for i in 1 2; do
    local w
    w="$(node_port $i)"
    if ! psql_node "$c" -d "$CITUS_DB" -tAc "SELECT 1 FROM pg_dist_node WHERE nodeport = $w" | grep -q 1; then
      psql_node "$c" -d "$CITUS_DB" -c "SELECT citus_add_node('127.0.0.1', $w)" >/dev/null
    fi
  done
  echo "Citus cluster up: coordinator 127.0.0.1:$c, workers $(node_port 1) and $(node_port 2)"
  echo "DATABASE_URL=postgres://postgres@127.0.0.1:$c/$CITUS_DB"
}

cmd_stop() {
  local i
  for i in 2 1 0; do
    local dir
    dir="$(node_dir $i)"
    [ -f "$dir/PG_VERSION" ] || continue
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
  done
  echo "Citus cluster stopped (data in $CITUS_DIR)"
}

cmd_status() {
  if installed; then echo "citus installed: $(libdir)/citus.so"; else echo "citus not installed"; fi
  local i
  for i in 0 1 2; do
    local port
    port="$(node_port $i)"
    if "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$port" -q; then
      echo "node$i 127.0.0.1:$port up"
    else
      echo "node$i 127.0.0.1:$port down"
    fi
  done
  if "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$(node_port 0)" -q; then
    psql_node "$(node_port 0)" -d "$CITUS_DB" -c \
      "SELECT nodename, nodeport, noderole, isactive FROM pg_dist_node ORDER BY nodeid" || true
  fi
}

cmd_destroy() {
  cmd_stop
  rm -rf "$CITUS_DIR"
  echo "removed $CITUS_DIR"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  destroy) cmd_destroy ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
