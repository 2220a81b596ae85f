#!/usr/bin/env bash
# Read-side load test (issue #2): `Flag?patient:identifier=<random seeded NHS number>
# &_include=Flag:author` as health-care, against PLANS plans, CONNECTIONS clients, DURATION.
# Bounded: wrk stops after DURATION; the server is stopped on exit. Loopback only.
#
#   bash benches/lookup.sh                      # SQLite, 100,000 plans, 32 clients, 20 s
#   DB=postgres://postgres:postgres@127.0.0.1/cpis_bench bash benches/lookup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PLANS=${PLANS:-100000}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-20s}
PORT=${PORT:-18181}
WORK=${WORK:-$(mktemp -d)}
DB=${DB:-sqlite://$WORK/bench.db}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

cargo build --release --bin cpis
if [ ! -s "$WORK/nhs.txt" ]; then
    cargo bench --bench seed_plans -- "$DB" "$PLANS" "$WORK/nhs.txt"
fi
export CPIS_JWT_SECRET=bench-secret CPIS_DATABASE_URL="$DB" CPIS_BIND="127.0.0.1:$PORT" RUST_LOG=warn
target/release/cpis serve & SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/_health" >/dev/null && break; sleep 0.2; done
TOKEN=$(target/release/cpis token --role health-care --org RJ1 --name "Bench Clinician" --ttl 3600)

cat > "$WORK/lookup.lua" <<LUA
local numbers = {}
for line in io.lines("$WORK/nhs.txt") do numbers[#numbers + 1] = line end
math.randomseed(42)
request = function()
  local nhs = numbers[math.random(#numbers)]
  return wrk.format("GET", "/FHIR/R4/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|" .. nhs .. "&_include=Flag:author", {["Authorization"] = "Bearer $TOKEN"})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA
echo "warm-up"; wrk -t2 -c"$CONNECTIONS" -d5s -s "$WORK/lookup.lua" "http://127.0.0.1:$PORT" >/dev/null
echo "measuring: $PLANS plans, $CONNECTIONS clients, $DURATION, $(echo "$DB" | cut -d: -f1)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/lookup.lua" "http://127.0.0.1:$PORT"
