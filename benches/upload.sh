#!/usr/bin/env bash
# Upload load test: PLANS plans of one LA uploaded with `cpis import` as CHUNK-entry batch
# Bundles over HTTP to a live server, then the same file again (idempotent: nothing changes),
# then the CSV imported straight into a fresh database. Prints the times and the server's peak
# RSS, and writes them to $WORK/upload.json (for benches/all.sh). BIN picks the build (its own
# `cpis token` and `cpis import` are used, so an older build can be measured the same way).
# Bounded: one pass each; the server is stopped on exit. Loopback only.
#
#   bash benches/upload.sh                                  # SQLite, 100,000 plans, 1,000 a batch
#   DB=postgres://postgres:postgres@127.0.0.1/cpis_upload bash benches/upload.sh   # an empty database
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
PLANS=${PLANS:-100000}
CHUNK=${CHUNK:-1000}
PORT=${PORT:-18182}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
DB=${DB:-sqlite://$WORK/upload.db}
DIRECT_DB=${DIRECT_DB:-sqlite://$WORK/direct.db}
BIN=${BIN:-target/release/cpis}
LA=B00000

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis
[ -s "$WORK/plans.csv" ] || python3 benches/plans_csv.py "$PLANS" > "$WORK/plans.csv"
echo "csv: $(($(wc -l < "$WORK/plans.csv") - 1)) plans"

export CPIS_JWT_SECRET=bench-secret-of-at-least-thirty-two-bytes CPIS_DATABASE_URL="$DB" CPIS_BIND="127.0.0.1:$PORT" RUST_LOG=warn
export CPIS_MAX_BODY_BYTES=$((64 * 1024 * 1024))
SERVER=
trap '[ -z "$SERVER" ] || kill $SERVER 2>/dev/null || true' EXIT
OPS=$("$BIN" token --role operations --org X26)
serve() { # exec'd as SERVE_AS (no process in between), so that $! is the server
    if [ -n "${SERVE_AS:-}" ]; then exec setpriv --reuid="$SERVE_AS" --regid="$SERVE_AS" --clear-groups "$BIN" serve; else exec "$BIN" serve; fi
}
serve & SERVER=$!
await_health "$PORT" "$SERVER"
register_la "http://127.0.0.1:$PORT/FHIR/R4" "$OPS" $LA
TOKEN=$("$BIN" token --role social-care --org $LA --ttl 3600)

: > "$WORK/upload.txt"
timed() { # key, label, command...
    local key=$1 label=$2; shift 2
    local start end
    start=$(date +%s.%N)
    "$@" | head -n 1
    end=$(date +%s.%N)
    python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'RESULT {sys.argv[3]}: {s:.1f} s, {int(sys.argv[4])/s:.0f} plans/s')" "$start" "$end" "$label" "$PLANS"
    echo "$key $start $end" >> "$WORK/upload.txt"
}
echo "engine: ${DB%%:*}, $PLANS plans, $CHUNK per batch, $BIN"
timed first "upload over HTTP (first time)" "$BIN" import --file "$WORK/plans.csv" --org $LA --url "http://127.0.0.1:$PORT/FHIR/R4" --token "$TOKEN" --chunk "$CHUNK"
timed again "upload over HTTP (same file again)" "$BIN" import --file "$WORK/plans.csv" --org $LA --url "http://127.0.0.1:$PORT/FHIR/R4" --token "$TOKEN" --chunk "$CHUNK"
PEAK_RSS_KIB=$(peak_rss_kib "$SERVER")
echo "peak RSS of the server: $((PEAK_RSS_KIB / 1024)) MiB"
kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=
if [ -z "${SKIP_DIRECT:-}" ]; then
    CPIS_DATABASE_URL="$DIRECT_DB" "$BIN" migrate
    CPIS_DATABASE_URL="$DIRECT_DB" serve & SERVER=$!
    await_health "$PORT" "$SERVER"
    register_la "http://127.0.0.1:$PORT/FHIR/R4" "$OPS" $LA
    kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=
    CPIS_DATABASE_URL="$DIRECT_DB" timed direct "CSV import straight into the database" "$BIN" import --file "$WORK/plans.csv" --org $LA --chunk "$CHUNK"
fi
python3 - "$WORK/upload.txt" "$PLANS" "$PEAK_RSS_KIB" "${DB%%:*}" "$WORK/upload.json" <<'PY'
import json, sys
seconds = {key: float(end) - float(start) for key, start, end in (line.split() for line in open(sys.argv[1]))}
json.dump({"engine": sys.argv[4], "plans": int(sys.argv[2]), "seconds": seconds,
           "peak_rss_kib": int(sys.argv[3])}, open(sys.argv[5], "w"), indent=1)
PY
