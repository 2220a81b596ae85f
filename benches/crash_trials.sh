#!/usr/bin/env bash
# Crash trials (issue #10): TRIALS SIGKILLs of a release server during audited lookups,
# transaction uploads and notification deliveries; see benches/crash_trials.py. Bounded (each
# trial lasts at most a few seconds), loopback only.
#
#   bash benches/crash_trials.sh                  # SQLite, 50 trials
#   TRIALS=20 DB=postgres://postgres:postgres@127.0.0.1/cpis_crash bash benches/crash_trials.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-50}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
DB=${DB:-sqlite://$WORK/crash.db}
BIN=${BIN:-target/release/cpis}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis
python3 benches/crash_trials.py "$BIN" "$DB" "$TRIALS"
