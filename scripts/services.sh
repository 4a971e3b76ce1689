#!/usr/bin/env bash
# Make sure the services the tests and the demo need are up, and say where.
#
#   scripts/services.sh [up]     reuse or start Postgres and NATS JetStream, write target/services.env
#   scripts/services.sh stop     stop only the servers that this script started (pid files in the state dir)
#   scripts/services.sh status   show what target/services.env points at and what this script started
#
# Ports: Postgres ${PGPORT:-5432}, NATS ${NATS_PORT:-4222}. Only those ports are probed for reuse.
#   Postgres is reused when `select 1` works there (user postgres, no password); else the Debian
#   cluster configured on that port is started (pg_ctlcluster); else a throwaway cluster of our own
#   is created in the state dir (on the wanted port if free, else a free port from 55432 on).
#   NATS is reused when JetStream answers there (scripts/js-probe.sh); else our own
#   `nats-server -js` is started (on the wanted port if free, else 4333 or a free port after it).
# Missing Debian packages (postgresql-client, postgresql, nats-server) are installed with apt-get.
# Servers that were already running are never stopped or restarted.
#
# State dir: ${PXSYNC_SERVICES_DIR:-${TMPDIR:-/tmp}/pxsync-services} (data, logs, pid files).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${PXSYNC_SERVICES_DIR:-${TMPDIR:-/tmp}/pxsync-services}"
ENV_FILE="$ROOT/target/services.env"
PG_WANT="${PGPORT:-5432}"
NATS_WANT="${NATS_PORT:-4222}"
WAIT_SECS="${PXSYNC_SERVICES_WAIT:-30}"
MIN_CONNECTIONS=100

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }
die() {
  printf 'services: ERROR: %s\n' "$*" >&2
  exit 1
}

for p in "$PG_WANT" "$NATS_WANT"; do
  [[ "$p" =~ ^[0-9]+$ ]] || die "port '$p' is not a number (PGPORT / NATS_PORT)"
done

# ---------------------------------------------------------------------------------------------
# helpers

# True when something accepts TCP connections on 127.0.0.1:PORT.
# shellcheck disable=SC2016 # $1 expands in the inner bash
port_open() { timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

# First port of the arguments that nobody listens on.
pick_port() {
  local p
  for p in "$@"; do
    port_open "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# Find an executable on PATH or in the usual sbin/bin folders.
find_exe() {
  local name="$1" d
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin /sbin /bin; do
    [[ -x "$d/$name" ]] && { echo "$d/$name"; return 0; }
  done
  return 1
}

APT_UPDATED=0
apt_install() {
  [[ "$(id -u)" == 0 ]] || die "need root to apt-get install $*; install it by hand"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: cannot install $*"
  mkdir -p "$STATE_DIR"
  local log="$STATE_DIR/apt.log"
  if ((APT_UPDATED == 0)); then
    say "services: apt-get update"
    apt-get update -q >>"$log" 2>&1 9>&- || { tail -n 20 "$log" >&2; die "apt-get update failed (log: $log)"; }
    APT_UPDATED=1
  fi
  say "services: apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$log" 2>&1 9>&- ||
    { tail -n 20 "$log" >&2; die "apt-get install $* failed (log: $log)"; }
}

# Run a command as the postgres OS user (initdb refuses root).
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# ---------------------------------------------------------------------------------------------
# Postgres

PSQL=""
ensure_psql() {
  PSQL="$(find_exe psql)" || {
    apt_install postgresql-client
    PSQL="$(find_exe psql)" || die "psql still missing after installing postgresql-client"
  }
}

# `select 1` as user postgres without a password on 127.0.0.1:PORT.
pg_probe() {
  local out
  out="$(PGCONNECT_TIMEOUT=2 timeout 3 "$PSQL" -X -w -q -h 127.0.0.1 -p "$1" -U postgres -d postgres \
    -tAc 'select 1' 2>/dev/null)" || return 1
  [[ "$out" == 1 ]]
}

pg_sql() { PGCONNECT_TIMEOUT=2 timeout 5 "$PSQL" -X -w -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -tAc "$2"; }

# Wait until pg_probe passes. Fails early when the server accepts connections but refuses us.
pg_wait() {
  local port="$1" secs="$2" refused=0 isready
  isready="$(find_exe pg_isready || true)"
  local deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    pg_probe "$port" && return 0
    if [[ -n "$isready" ]] && "$isready" -q -h 127.0.0.1 -p "$port" -t 1 >/dev/null 2>&1; then
      ((++refused >= 3)) && { warn "postgres: 127.0.0.1:$port is up but refuses user postgres without password"; return 1; }
    fi
    sleep 0.3
  done
  return 1
}

pg_bindir() {
  local initdb d
  if initdb="$(command -v initdb 2>/dev/null)"; then dirname "$(readlink -f "$initdb")"; return 0; fi
  # shellcheck disable=SC2012
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$d" && -x "$d/initdb" ]] && { echo "$d"; return 0; }
  return 1
}

ensure_pg_server() {
  pg_bindir >/dev/null || {
    apt_install postgresql
    pg_bindir >/dev/null || die "initdb not found after installing postgresql"
  }
}

pg_check_connections() {
  local port="$1" n
  n="$(pg_sql "$port" 'show max_connections' 2>/dev/null || echo '?')"
  if [[ "$n" =~ ^[0-9]+$ ]] && ((n < MIN_CONNECTIONS)); then
    return 1
  fi
  return 0
}

# Start the Debian cluster `<ver>/main` when it is configured on the wanted port and down.
try_debian_cluster() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  local ver name port status datadir rest pid log want_name="${PXSYNC_PG_CLUSTER:-main}"
  while read -r -u 8 ver name port status _ datadir rest; do
    [[ "$name" == "$want_name" && "$port" == "$PG_WANT" && -d "/etc/postgresql/$ver/$name" ]] || continue
    [[ "$status" == down* ]] || continue
    port_open "$PG_WANT" && return 1 # something else holds the port
    log="$STATE_DIR/pg-$PG_WANT.debian.log"
    say "postgres: starting Debian cluster $ver/$name (pg_ctlcluster) on port $PG_WANT"
    if ! pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >>"$log" 2>&1 9>&-; then
      warn "postgres: pg_ctlcluster $ver $name start failed (log: $log)"
      return 1
    fi
    pid="$(pg_cluster_pid "$datadir")"
    printf '%s\ndebian %s %s\n' "$pid" "$ver" "$name" >"$STATE_DIR/pg-$PG_WANT.pid"
    if ! pg_wait "$PG_WANT" "$WAIT_SECS"; then
      warn "postgres: Debian cluster $ver/$name does not accept us; stopping it again"
      pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop >>"$log" 2>&1 9>&- || true
      rm -f "$STATE_DIR/pg-$PG_WANT.pid"
      return 1
    fi
    if ! pg_check_connections "$PG_WANT"; then
      say "postgres: raising max_connections to $MIN_CONNECTIONS on the cluster we started"
      pg_sql "$PG_WANT" "alter system set max_connections = $MIN_CONNECTIONS" >/dev/null
      pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" restart >>"$log" 2>&1 9>&-
      pg_wait "$PG_WANT" "$WAIT_SECS" || die "postgres: Debian cluster $ver/$name did not come back"
      printf '%s\ndebian %s %s\n' "$(pg_cluster_pid "$datadir")" "$ver" "$name" >"$STATE_DIR/pg-$PG_WANT.pid"
    fi
    PG_PORT="$PG_WANT"
    say "postgres: started Debian cluster $ver/$name on 127.0.0.1:$PG_PORT (stop: make services-stop)"
    return 0
  done 8< <(pg_lsclusters -h 2>/dev/null)
  return 1
}

pg_cluster_pid() {
  head -n 1 "$1/postmaster.pid" 2>/dev/null || echo 0
}

start_own_pg() {
  ensure_pg_server
  local bindir port base data log candidates
  bindir="$(pg_bindir)"
  # shellcheck disable=SC2207
  candidates=("$PG_WANT" $(seq 55432 55531))
  port="$(pick_port "${candidates[@]}")" || die "postgres: no free port for a local cluster"
  if [[ "$port" != "$PG_WANT" ]]; then
    say "postgres: 127.0.0.1:$PG_WANT is taken by something we cannot use"
    # A cluster that an earlier run started on a fallback port is just as good.
    local f p
    for f in "$STATE_DIR"/pg-*.pid; do
      [[ -f "$f" && "$(sed -n 2p "$f")" == own* ]] || continue
      p="${f##*/pg-}"
      p="${p%.pid}"
      if pid_is "$(sed -n 1p "$f")" postgres && pg_probe "$p"; then
        PG_PORT="$p"
        say "postgres: reusing our local cluster on 127.0.0.1:$p (started earlier by services.sh)"
        return 0
      fi
    done
    say "postgres: using port $port instead"
  fi
  base="$STATE_DIR/pg-$port"
  data="$base/data"
  log="$base/postgres.log"
  if [[ "$(id -u)" == 0 ]] && ! runuser -u postgres -- test -x "$STATE_DIR" 2>/dev/null; then
    die "postgres: user postgres cannot enter $STATE_DIR; set PXSYNC_SERVICES_DIR to a folder it can reach"
  fi
  mkdir -p "$base"
  [[ "$(id -u)" == 0 ]] && chown postgres: "$base"
  if [[ ! -s "$data/PG_VERSION" ]]; then
    rm -rf "$data"
    say "postgres: initdb $data"
    as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 ||
      as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >"$base/initdb.log" 2>&1 ||
      { tail -n 20 "$base/initdb.log" >&2; die "postgres: initdb failed (log: $base/initdb.log)"; }
    as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF

# --- pxsync throwaway test cluster (scripts/services.sh) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$base'
max_connections = $MIN_CONNECTIONS
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi
  if ! as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w -t "$WAIT_SECS" start >/dev/null 2>&1 9>&-; then
    tail -n 20 "$log" >&2 || true
    die "postgres: could not start the local cluster in $data (log: $log)"
  fi
  printf '%s\nown %s\n' "$(head -n 1 "$data/postmaster.pid")" "$data" >"$STATE_DIR/pg-$port.pid"
  pg_wait "$port" "$WAIT_SECS" || die "postgres: local cluster on port $port does not answer (log: $log)"
  PG_PORT="$port"
  say "postgres: started local cluster in $data on port $PG_PORT (log: $log; stop: make services-stop)"
}

pg_up() {
  ensure_psql
  if pg_probe "$PG_WANT"; then
    PG_PORT="$PG_WANT"
    say "postgres: reusing 127.0.0.1:$PG_PORT"
    return 0
  fi
  say "postgres: nothing usable on 127.0.0.1:$PG_WANT"
  try_debian_cluster && return 0
  if ! pg_bindir >/dev/null; then
    ensure_pg_server
    # The package may have created and started its own cluster on the wanted port.
    if pg_probe "$PG_WANT"; then
      PG_PORT="$PG_WANT"
      say "postgres: reusing 127.0.0.1:$PG_PORT (started by the postgresql package)"
      return 0
    fi
    try_debian_cluster && return 0
  fi
  start_own_pg
}

# ---------------------------------------------------------------------------------------------
# NATS

js_probe() { "$ROOT/scripts/js-probe.sh" "$1" 127.0.0.1; }

nats_up() {
  local rc=0 why
  why="$(js_probe "$NATS_WANT" 2>&1)" || rc=$?
  if ((rc == 0)); then
    NATS_PORT_USED="$NATS_WANT"
    say "nats: reusing 127.0.0.1:$NATS_PORT_USED (JetStream enabled)"
    return 0
  elif ((rc == 1)); then
    say "nats: 127.0.0.1:$NATS_WANT answers but JetStream is not usable (${why#js-probe *: }); using one of our own"
  else
    say "nats: nothing answers on 127.0.0.1:$NATS_WANT; using one of our own"
  fi

  local exe port dir log pidf pid candidates
  exe="$(find_exe nats-server)" || {
    apt_install nats-server
    exe="$(find_exe nats-server)" || die "nats-server still missing after installing it"
  }
  # shellcheck disable=SC2207
  candidates=("$NATS_WANT" 4333 $(seq 4334 4399))
  port="$(pick_port "${candidates[@]}")" || die "nats: no free port for a local nats-server"
  if [[ "$port" != "$NATS_WANT" ]]; then
    # A nats-server that an earlier run started on a fallback port is just as good.
    local f p
    for f in "$STATE_DIR"/nats-*.pid; do
      [[ -f "$f" ]] || continue
      p="${f##*/nats-}"
      p="${p%.pid}"
      if pid_is "$(sed -n 1p "$f")" nats-server && js_probe "$p" 2>/dev/null; then
        NATS_PORT_USED="$p"
        say "nats: reusing our local nats-server on 127.0.0.1:$p (started earlier by services.sh)"
        return 0
      fi
    done
  fi
  dir="$STATE_DIR/nats-$port"
  log="$STATE_DIR/nats-$port.log"
  pidf="$STATE_DIR/nats-$port.pid"
  mkdir -p "$dir"
  rm -f "$pidf"
  setsid nohup "$exe" -a 127.0.0.1 -p "$port" -js -sd "$dir" -P "$pidf" -l "$log" \
    </dev/null >>"$STATE_DIR/nats-$port.out" 2>&1 9>&- &
  pid=$!
  local deadline=$((SECONDS + WAIT_SECS))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$log" "$STATE_DIR/nats-$port.out" >&2 2>/dev/null || true
      die "nats: nats-server exited right away (log: $log)"
    fi
    if js_probe "$port" 2>/dev/null; then
      [[ -s "$pidf" ]] || echo "$pid" >"$pidf"
      NATS_PORT_USED="$port"
      say "nats: started local nats-server (JetStream) in $dir on port $port (pid $pid, log: $log; stop: make services-stop)"
      return 0
    fi
    sleep 0.2
  done
  kill "$pid" 2>/dev/null || true
  rm -f "$pidf"
  die "nats: local nats-server on port $port did not get JetStream ready in ${WAIT_SECS}s (log: $log)"
}

# ---------------------------------------------------------------------------------------------
# stop / status

# True when PID is alive and its command line contains WORD.
pid_is() {
  local pid="$1" word="$2"
  [[ "$pid" =~ ^[0-9]+$ ]] && ((pid > 0)) && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$word"
}

stopped_ports=()
stop_all() {
  local f pid how kind arg1 arg2 port bindir n=0
  shopt -s nullglob
  for f in "$STATE_DIR"/pg-*.pid; do
    port="${f##*/pg-}"
    port="${port%.pid}"
    pid="$(sed -n 1p "$f")"
    how="$(sed -n 2p "$f")"
    read -r kind arg1 arg2 _ <<<"$how"
    if ! pid_is "$pid" postgres; then
      say "postgres: port $port: pid $pid from $f is not running; forgetting it"
    elif [[ "$kind" == own ]]; then
      bindir="$(pg_bindir)"
      as_pg "$bindir/pg_ctl" -D "$arg1" -m fast -w stop >/dev/null
      say "postgres: stopped local cluster $arg1 on port $port (pid $pid)"
    elif [[ "$kind" == debian ]]; then
      pg_ctlcluster --skip-systemctl-redirect "$arg1" "${arg2:-main}" stop
      say "postgres: stopped Debian cluster $arg1/${arg2:-main} on port $port (pid $pid), which services.sh had started"
    else
      warn "postgres: $f: unknown kind '$kind'; not touching pid $pid"
      continue
    fi
    rm -f "$f"
    stopped_ports+=("$port")
    n=$((n + 1))
  done
  for f in "$STATE_DIR"/nats-*.pid; do
    port="${f##*/nats-}"
    port="${port%.pid}"
    pid="$(sed -n 1p "$f")"
    if pid_is "$pid" nats-server; then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        warn "nats: pid $pid did not stop after 10 s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      say "nats: stopped local nats-server on port $port (pid $pid)"
      stopped_ports+=("$port")
      n=$((n + 1))
    else
      say "nats: port $port: pid $pid from $f is not running; forgetting it"
    fi
    rm -f "$f"
  done
  ((n > 0)) || say "services: nothing to stop (no running server was started by services.sh)"
  # Drop the env file when it points at something we just stopped.
  if [[ -f "$ENV_FILE" ]] && ((${#stopped_ports[@]} > 0)); then
    for port in "${stopped_ports[@]}"; do
      if grep -q "127.0.0.1:$port\b" "$ENV_FILE"; then
        rm -f "$ENV_FILE"
        say "services: removed ${ENV_FILE#"$ROOT"/} (it pointed at a stopped server)"
        break
      fi
    done
  fi
}

status() {
  if [[ -f "$ENV_FILE" ]]; then
    say "services: ${ENV_FILE#"$ROOT"/}:"
    sed 's/^/  /' "$ENV_FILE"
  else
    say "services: no ${ENV_FILE#"$ROOT"/} (run make services)"
  fi
  local f
  shopt -s nullglob
  for f in "$STATE_DIR"/pg-*.pid "$STATE_DIR"/nats-*.pid; do
    say "services: started by us: ${f##*/} pid $(sed -n 1p "$f") $(sed -n 2p "$f")"
  done
}

# ---------------------------------------------------------------------------------------------

cmd="${1:-up}"
mkdir -p "$STATE_DIR"
# One services.sh at a time (parallel make targets all depend on `services`).
exec 9>"$STATE_DIR/lock"
flock -w 120 9 || die "another services.sh holds $STATE_DIR/lock"

case "$cmd" in
  up | start)
    PG_PORT=""
    NATS_PORT_USED=""
    pg_up
    nats_up
    mkdir -p "$(dirname "$ENV_FILE")"
    tmp="$ENV_FILE.tmp.$$"
    cat >"$tmp" <<EOF
# Written by scripts/services.sh; source with: set -a; . target/services.env; set +a
PXSYNC_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
PXSYNC_NATS_URL=nats://127.0.0.1:$NATS_PORT_USED
EOF
    mv -f "$tmp" "$ENV_FILE"
    say "services: wrote ${ENV_FILE#"$ROOT"/} (PXSYNC_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres PXSYNC_NATS_URL=nats://127.0.0.1:$NATS_PORT_USED)"
    ;;
  stop) stop_all ;;
  status) status ;;
  -h | --help | help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$cmd' (use: up | stop | status)" ;;
esac
