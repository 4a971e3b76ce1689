#!/usr/bin/env bash
# Probe a NATS server for JetStream over the raw NATS text protocol (bash /dev/tcp only).
#
#   scripts/js-probe.sh [PORT] [HOST]     (defaults: ${NATS_PORT:-4222} 127.0.0.1)
#
# Exit status:
#   0  a NATS server answers and JetStream is enabled for the (default) account
#   1  a NATS server answers, but JetStream is off / not usable (reason on stderr)
#   2  nothing (or nothing speaking NATS) answers on HOST:PORT
# PXSYNC_PROBE_TIMEOUT (seconds, default 3) bounds the whole probe.
# shellcheck disable=SC2016,SC2317 # probe() runs in a child bash; $JS is literal
set -uo pipefail

port="${1:-${NATS_PORT:-4222}}"
host="${2:-127.0.0.1}"
limit="${PXSYNC_PROBE_TIMEOUT:-3}"

probe() {
  # Runs inside `timeout`; prints one diagnostic line on failure.
  local host="$1" port="$2" line payload n deadline
  { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || { echo "connect refused"; return 2; }
  IFS= read -r -t 2 line <&3 || { echo "no INFO line"; return 2; }
  line="${line%$'\r'}"
  [[ "$line" == INFO\ * ]] || { echo "not a NATS server (got: ${line:0:60})"; return 2; }
  printf 'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\nSUB _INBOX.pxprobe 1\r\nPUB $JS.API.INFO _INBOX.pxprobe 0\r\n\r\nPING\r\n' >&3
  # The JetStream reply is asynchronous and may come after our PONG: once PONG is in,
  # allow ~1 s of silence; overall at most ~2.5 s.
  local pong=0 idle=0
  deadline=$((SECONDS + 2))
  while ((SECONDS <= deadline)); do
    if ! IFS= read -r -t 0.5 line <&3; then
      ((pong)) && ((++idle >= 2)) && break
      continue
    fi
    line="${line%$'\r'}"
    case "$line" in
      MSG\ _INBOX.pxprobe\ *)
        n="${line##* }"
        payload=""
        if [[ "$n" =~ ^[0-9]+$ ]] && ((n > 0)); then
          LC_ALL=C IFS= read -r -N "$n" -t 1 payload <&3 || true
        fi
        if [[ "$payload" == *io.nats.jetstream.api.v1.account_info_response* && "$payload" != *'"error"'* ]]; then
          echo "$payload"
          return 0
        fi
        echo "JetStream not enabled: ${payload:0:200}"
        return 1
        ;;
      PONG) pong=1 ;;
      -ERR*) echo "server error: $line"; return 1 ;;
      PING) printf 'PONG\r\n' >&3 ;;
      *) ;; # +OK, INFO updates: keep reading until the reply or the deadline
    esac
  done
  echo "no reply to \$JS.API.INFO (JetStream off?)"
  return 1
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

export -f probe
msg="$(timeout --kill-after=1 "$limit" bash -c 'probe "$@"' _ "$host" "$port")"
rc=$?
case "$rc" in
  0) [[ -n "${PXSYNC_PROBE_VERBOSE:-}" ]] && echo "$msg"; exit 0 ;;
  1) echo "js-probe $host:$port: $msg" >&2; exit 1 ;;
  124 | 137)
    # Timed out: if the port accepted a connection it is some kind of server.
    echo "js-probe $host:$port: timed out${msg:+ ($msg)}" >&2
    if timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; then exit 1; else exit 2; fi
    ;;
  *) echo "js-probe $host:$port: ${msg:-nothing answers}" >&2; exit 2 ;;
esac
