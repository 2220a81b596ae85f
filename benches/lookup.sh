#!/usr/bin/env bash
# Lookup load test (issues #2 and #4): `Flag?patient:identifier=<random seeded NHS number>
# &_include=Flag:author` against PLANS plans, CONNECTIONS clients, DURATION per run. Two runs on
# the same server and data:
#   read-only  the same search by the child's own LA (social-care): nothing is recorded;
#   audited    as health-care, unscheduled (no IsUnscheduledAccessEvent header): every 200 is
#              backed by a committed AuditEvent, checked by counting them before and after.
# Bounded: wrk stops after DURATION; the server is stopped on exit. Loopback only.
#
#   bash benches/lookup.sh                      # SQLite, 100,000 plans, 32 clients, 20 s
#   DB=postgres://postgres:postgres@127.0.0.1/cpis_bench bash benches/lookup.sh
#   WORK=/tmp/bench-sqlite bash benches/lookup.sh   # reuse a seeded database
set -euo pipefail
cd "$(dirname "$0")/.."
PLANS=${PLANS:-100000}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-20s}
PORT=${PORT:-18181}
WORK=${WORK:-$(mktemp -d)}
DB=${DB:-sqlite://$WORK/bench.db}
MODES=${MODES:-read-only audited}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

cargo build --release --bin cpis
if [ ! -s "$WORK/nhs.txt" ]; then
    cargo bench --bench seed_plans -- "$DB" "$PLANS" "$WORK/nhs.txt"
fi
export CPIS_JWT_SECRET=bench-secret-of-at-least-thirty-two-bytes CPIS_DATABASE_URL="$DB" CPIS_BIND="127.0.0.1:$PORT" RUST_LOG=warn
target/release/cpis serve & SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/_health" >/dev/null && break; sleep 0.2; done
token() { target/release/cpis token --ttl 3600 "$@"; }
HEALTH=$(token --role health-care --org RJ1 --name "Bench Clinician" --job-role "Staff Nurse")
OPS=$(token --role operations --org X26)
# The seed gives plan i to LA B{i / 1000}: one social-care token per LA, in that order.
LA_COUNT=$(( ($(wc -l < "$WORK/nhs.txt") + 999) / 1000 ))
: > "$WORK/la_tokens.txt"
for i in $(seq 0 $((LA_COUNT - 1))); do token --role social-care --org "$(printf 'B%05d' "$i")" >> "$WORK/la_tokens.txt"; done

audit_count() {
    curl -sf -H "Authorization: Bearer $OPS" "http://127.0.0.1:$PORT/FHIR/R4/AuditEvent?_count=0" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}

script() { # $1 = read-only | audited
    cat <<LUA
local numbers, la_tokens = {}, {}
for line in io.lines("$WORK/nhs.txt") do numbers[#numbers + 1] = line end
for line in io.lines("$WORK/la_tokens.txt") do la_tokens[#la_tokens + 1] = line end
local mode = "$1"
math.randomseed(42)
request = function()
  local i = math.random(#numbers)
  local token = "$HEALTH"
  if mode == "read-only" then token = la_tokens[math.floor((i - 1) / 1000) + 1] end
  return wrk.format("GET", "/FHIR/R4/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|" .. numbers[i] .. "&_include=Flag:author", {["Authorization"] = "Bearer " .. token})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT mode=%s requests=%d errors=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    mode, summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA
}

for mode in $MODES; do
    script "$mode" > "$WORK/lookup-$mode.lua"
    wrk -t2 -c"$CONNECTIONS" -d5s -s "$WORK/lookup-$mode.lua" "http://127.0.0.1:$PORT" >/dev/null
    before=$(audit_count)
    echo "measuring $mode: $PLANS plans, $CONNECTIONS clients, $DURATION, $(echo "$DB" | cut -d: -f1)"
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/lookup-$mode.lua" "http://127.0.0.1:$PORT" | tee "$WORK/result-$mode.txt" | grep -E "RESULT|Latency|requests in"
    after=$(audit_count)
    echo "AUDIT mode=$mode audit_events_added=$((after - before))"
done
