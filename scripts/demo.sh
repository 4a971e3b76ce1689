#!/usr/bin/env bash
# The pxsync demo: both simulators with a generated salon of about 60 orders, the demo mask,
# `pxsync enable`, `pxsync run`, then a scripted sequence of Planexpo changes with, after each,
# what inwink now holds and what was refused. `--smoke` checks the final state and exits;
# otherwise it keeps syncing until Ctrl-C.
# Expects PXSYNC_DATABASE_URL and PXSYNC_NATS_URL (make demo / make demo-smoke provide them).
set -euo pipefail
cd "$(dirname "$0")/.."
SMOKE=""
[[ "${1:-}" == "--smoke" ]] && SMOKE="--smoke"

: "${PXSYNC_DATABASE_URL:?run through make demo (it starts the services)}"
: "${PXSYNC_NATS_URL:?run through make demo (it starts the services)}"
command -v python3 >/dev/null || { echo "demo: installing python3"; apt-get install -y -qq python3 >/dev/null; }

BIN=target/debug
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pxsync-demo.XXXXXX")
export PXSYNC_NAMESPACE="demo${SMOKE:+_smoke}_$$"
EVENT=salon-sante-2026
PIDS=()
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 && -f "$WORK/pxsync-run.log" ]]; then
    echo "demo: failed; the last lines of the pxsync log ($WORK/pxsync-run.log):" >&2
    tail -n 30 "$WORK/pxsync-run.log" >&2
  fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$BIN/pxsync" reset --yes >/dev/null 2>&1 || true
  [[ -n "$SMOKE" && $rc -eq 0 ]] && rm -rf "$WORK"
  return 0
}
trap cleanup EXIT
trap 'echo; echo "demo stopped (Ctrl-C): cleaning up"; exit 0' INT TERM

start_sim() { # kind -> prints base url
  local log="$WORK/sim-$1.log"
  "$BIN/pxsync-sim" "$1" --addr 127.0.0.1:0 >"$WORK/sim-$1.out" 2>"$log" &
  PIDS+=($!)
  for _ in $(seq 100); do
    if grep -q '^listening on ' "$WORK/sim-$1.out" 2>/dev/null; then
      sed -n 's/^listening on //p' "$WORK/sim-$1.out" | head -1
      return
    fi
    sleep 0.1
  done
  echo "demo: the $1 simulator did not start; see $log" >&2
  exit 1
}

echo "== Starting the Planexpo and inwink simulators"
PX=$(start_sim planexpo)
IW=$(start_sim inwink)
echo "   Planexpo: $PX   inwink: $IW"

export PXSYNC_PLANEXPO_BASE_URL="$PX" PXSYNC_PLANEXPO_API_KEY=px-sim-key PXSYNC_PLANEXPO_EVENT=$EVENT
export PXSYNC_PLANEXPO_POLL_INTERVAL=500ms
export PXSYNC_INWINK_BASE_URL="$IW" PXSYNC_INWINK_TOKEN_URL="$IW/oauth/token"
export PXSYNC_INWINK_CLIENT_ID=pxsync-sim PXSYNC_INWINK_CLIENT_SECRET=inwink-sim-secret
export PXSYNC_INWINK_EVENT_ID=8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b
export PXSYNC_DATABASE_POOL_SIZE=10 RUST_LOG="${RUST_LOG:-warn}"

echo "== Generating a salon of 60 orders on Planexpo (French exhibitors, co-exhibitors, options, drafts)"
curl -fsS -X POST "$PX/_sim/generate" -H 'content-type: application/json' -d '{"orders": 60, "seed": 2026}'; echo
curl -fsS -X PUT "$IW/_sim/products" -H 'content-type: application/json' --data-binary @scripts/demo/inwink-products.json >/dev/null

echo "== The mask: drafted from both catalogues (.xlsx), validated, imported (namespace $PXSYNC_NAMESPACE)"
"$BIN/pxsync" migrate
"$BIN/pxsync" mask draft --event $EVENT "$WORK/mask.xlsx"
"$BIN/pxsync" mask validate "$WORK/mask.xlsx" 2>&1 | tail -n 3
"$BIN/pxsync" mask import --event $EVENT "$WORK/mask.xlsx" 2>/dev/null

echo "== pxsync run (ingestor + projector + emitter)"
"$BIN/pxsync" run >"$WORK/pxsync-run.log" 2>&1 &
PIDS+=($!)
export PXSYNC_RUN_PID=$!
HELPER=(python3 scripts/demo/demo.py "$PX" "$IW" "$BIN/pxsync" "$EVENT" scripts/demo/mask.csv)
"${HELPER[@]}" projected
echo
echo "== The salon is still disabled: orders are in the event log, nothing is written. The dry run:"
"$BIN/pxsync" dry-run --event $EVENT | head -n 14
echo "   ..."
echo
echo "== pxsync enable (the preflight runs first)"
"$BIN/pxsync" enable --event $EVENT
"${HELPER[@]}" wait
echo
"$BIN/pxsync" status --event $EVENT | head -25

"${HELPER[@]}" scenario $SMOKE

if [[ -z "$SMOKE" ]]; then
  echo
  echo "pxsync keeps syncing. Change orders on the Planexpo simulator, e.g.:"
  echo "  curl -s $PX/_sim/state | python3 -m json.tool | less"
  echo "  $BIN/pxsync status --event $EVENT      (with the environment of this script)"
  echo "Logs: $WORK/pxsync-run.log. Ctrl-C stops the demo and removes its namespace."
  wait "${PIDS[@]}"
fi
