#!/usr/bin/env bash
# The pure core (pxsync-core) must stay free of I/O, clocks and randomness.
# Fails, naming the offender, when its normal dependency tree contains a banned crate, or when
# uuid is built with the `v4` (random) feature for it.
#
# cargo tree runs with `-p pxsync-core` alone, so features are resolved for that package only
# (not unified with the rest of the workspace, where the I/O crates may well enable more).
# Clock/env/fs calls inside the core's own code are caught by clippy (crates/pxsync-core/clippy.toml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CORE="${PXSYNC_CORE_PACKAGE:-pxsync-core}"
BANNED=(tokio reqwest async-nats tokio-postgres deadpool-postgres anyhow hyper rand getrandom fastrand mio)

tree="$(cargo tree -p "$CORE" -e normal --prefix none)" ||
  { echo "check-pure: cargo tree -p $CORE failed" >&2; exit 1; }

fail=0
# Lines look like `name vX.Y.Z [(path)] [(*)]`; compare the crate name exactly.
while read -r name version; do
  for bad in "${BANNED[@]}"; do
    if [[ "$name" == "$bad" ]]; then
      by="$(cargo tree -p "$CORE" -e normal -i "$name@${version#v}" --depth 1 --prefix none 2>/dev/null |
        sed -n '2,$p' | awk '{print $1}' | sort -u | tr '\n' ' ')"
      echo "check-pure: FAIL: $CORE depends on $name $version (pulled in by: ${by:-?}); the core must have no I/O, clock or randomness" >&2
      fail=1
    fi
  done
done < <(awk '{print $1, $2}' <<<"$tree" | sort -u)

if grep -q '^uuid ' <<<"$tree"; then
  feats="$(cargo tree -p "$CORE" -e features,normal -i uuid --prefix none)" ||
    { echo "check-pure: cargo tree -i uuid failed" >&2; exit 1; }
  if grep -q 'uuid feature "v4"' <<<"$feats"; then
    echo "check-pure: FAIL: uuid is built with feature \"v4\" (random ids) for $CORE; who enables it:" >&2
    cargo tree -p "$CORE" -e features,normal -i uuid -f '{p} {f}' 2>/dev/null | grep -B1 -A3 '"v4"' >&2 || true
    fail=1
  fi
fi

if ((fail)); then
  exit 1
fi
echo "check-pure: ok: $CORE has none of: ${BANNED[*]}; uuid without v4"
