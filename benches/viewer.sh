#!/usr/bin/env bash
# The clinician viewer under load (issue #27, acceptance point 3: pages within 50 ms p99 under 16
# concurrent users), beside the API's audited lookup under the same concurrency, from the same
# run. The release server on a database filled as production is (PLANS plans of LAS local
# authorities uploaded through the API: benches/seed_api.py); USERS clinicians sign in through
# the sandbox form and go through the whole journey without pause for DURATION seconds (Find a
# child, the search posted with its CSRF token and the visit answer, the redirect's result page),
# then USERS clients of `Flag?patient:identifier=…&_include=Flag:author` (health-care,
# unscheduled) for DURATION seconds: benches/viewer_load.py, one client for both. Prints p50/p99
# per page, pages/s and the lookup's p50/p99, and the AuditEvents the run added; writes
# $WORK/viewer.json (for benches/all.sh). Searches per session are not limited here
# (CPIS_VIEWER_SEARCHES_PER_MINUTE=10000): a clinician searches 20 times a minute at most, these
# users hundreds. Bounded: each part stops after DURATION; the server is stopped on exit.
# Loopback only.
#
#   bash benches/viewer.sh                       # SQLite, 20,000 plans of 150 LAs, 16 users, 10 s
#   DURATION=30 DB=postgres://postgres:postgres@127.0.0.1/cpis_viewer bash benches/viewer.sh
#   BIN=target/debug/cpis SKIP_BUILD=1 PLANS=300 LAS=3 DURATION=5 bash benches/viewer.sh  # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
PLANS=${PLANS:-20000}
LAS=${LAS:-150}
USERS=${USERS:-16}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
PORT=${PORT:-18186}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
DB=${DB:-sqlite://$WORK/bench.db}
BIN=${BIN:-target/release/cpis}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis

# The sandbox sign-in form (CPIS_SANDBOX=1), tokens signed with the bench secret.
export CPIS_JWT_SECRET=bench-secret-of-at-least-thirty-two-bytes CPIS_DATABASE_URL="$DB"
export CPIS_BIND="127.0.0.1:$PORT" RUST_LOG=warn CPIS_MAX_BODY_BYTES=$((64 * 1024 * 1024))
export CPIS_SANDBOX=1 CPIS_VIEWER=on CPIS_VIEWER_SEARCHES_PER_MINUTE=10000
BASE="http://127.0.0.1:$PORT/FHIR/R4"
"$BIN" serve & SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
await_health "$PORT" "$SERVER"
[ -s "$WORK/nhs.txt" ] || python3 benches/seed_api.py "$BASE" "$PLANS" "$LAS" "$WORK/nhs.txt" "$BIN"

token() { "$BIN" token --ttl 3600 "$@"; }
HEALTH=$(token --role health-care --org RJ1 --name "Bench Clinician" --job-role "Staff Nurse")
OPS=$(token --role operations --org X26)
before=$(audit_total "$BASE" "$OPS")
echo "engine: ${DB%%:*}, $PLANS plans of $LAS LAs (uploaded through the API), $USERS users, ${DURATION} s a part"
python3 benches/viewer_load.py "http://127.0.0.1:$PORT" "$WORK/nhs.txt" "$HEALTH" "$WORK/viewer.json" \
    "$USERS" "$DURATION" "$WARMUP"
after=$(audit_total "$BASE" "$OPS")
PEAK_RSS_KIB=$(peak_rss_kib "$SERVER")
python3 - "$WORK/viewer.json" "$((after - before))" "$PEAK_RSS_KIB" "${DB%%:*}" <<'PY'
import json, sys
path, added, rss, engine = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
result = json.load(open(path))
result.update(engine=engine, audit_events_added=added, peak_rss_kib=rss)
json.dump(result, open(path, "w"), indent=1)
print(f"AuditEvents added: {added} (searches and API lookups, warm-ups included); server peak RSS {rss / 1024:.0f} MiB")
print(f"figures: {path}")
PY
