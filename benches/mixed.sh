#!/usr/bin/env bash
# Mixed load, as on a Monday morning: CLIENTS wrk clients of audited lookups
# (Flag?patient:identifier=…&_include=Flag:author as health-care, unscheduled) first on a quiet
# server for DURATION, then while an LA uploads a daily file of PLANS plans (`cpis import`,
# 1,000-entry batch Bundles over HTTP) for the first time (every plan new), then while it sends
# the same file again (every plan unchanged). Prints the lookups' p50/p99, throughput and errors
# in each phase, the uploads' times, and checks every 200 is backed by a committed AuditEvent
# (counted through the API).
# Writes $WORK/mixed.json (for benches/all.sh). Reuses a database seeded by benches/lookup.sh
# in the same WORK (or seeds SEED_PLANS plans of LAS LAs through the API). Bounded: the
# lookups stop when the upload ends; the server is stopped on exit. Loopback only.
#
#   bash benches/mixed.sh
#   DB=postgres://postgres:postgres@127.0.0.1/cpis_mixed bash benches/mixed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
PLANS=${PLANS:-100000}
SEED_PLANS=${SEED_PLANS:-20000}
LAS=${LAS:-150}
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-10s}
PORT=${PORT:-18184}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
DB=${DB:-sqlite://$WORK/bench.db}
BIN=${BIN:-target/release/cpis}
LA=B00000
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis

export CPIS_JWT_SECRET=bench-secret-of-at-least-thirty-two-bytes CPIS_DATABASE_URL="$DB"
export CPIS_BIND="127.0.0.1:$PORT" RUST_LOG=warn CPIS_MAX_BODY_BYTES=$((64 * 1024 * 1024))
BASE="http://127.0.0.1:$PORT/FHIR/R4"
"$BIN" serve & SERVER=$!
WRK=
trap 'kill $SERVER $WRK 2>/dev/null || true' EXIT
await_health "$PORT" "$SERVER"
[ -s "$WORK/nhs.txt" ] || python3 benches/seed_api.py "$BASE" "$SEED_PLANS" "$LAS" "$WORK/nhs.txt" "$BIN"
# Plans the seeded ones do not share a number with (the seed starts at 500,000,000).
[ -s "$WORK/mixed-plans.csv" ] || python3 benches/plans_csv.py "$PLANS" 300000000 > "$WORK/mixed-plans.csv"

token() { "$BIN" token --ttl 3600 "$@"; }
HEALTH=$(token --role health-care --org RJ1 --name "Bench Clinician" --job-role "Staff Nurse")
OPS=$(token --role operations --org X26)
UPLOADER=$(token --role social-care --org $LA)
register_la "$BASE" "$OPS" $LA
audit_count() { audit_total "$BASE" "$OPS"; }

cat > "$WORK/mixed.lua" <<LUA
local numbers = {}
for line in io.lines("$WORK/nhs.txt") do numbers[#numbers + 1] = line:match("(%d+)") end
math.randomseed(11)
request = function()
  return wrk.format("GET", "/FHIR/R4/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|" .. numbers[math.random(#numbers)] .. "&_include=Flag:author",
    {["Authorization"] = "Bearer $HEALTH"})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA
lookups() { wrk -t2 -c"$CLIENTS" -d"$1" --latency -s "$WORK/mixed.lua" "http://127.0.0.1:$PORT"; }

lookups 3s >/dev/null
before=$(audit_count)
QUIET=$(lookups "$DURATION" | grep RESULT)
echo "quiet:             $QUIET"
# The same lookups for as long as an upload of the file takes: wrk stops and reports on
# SIGINT. $1 names the phase; prints wrk's RESULT line and the upload's seconds.
during_upload() {
    wrk -t2 -c"$CLIENTS" -d900s --latency -s "$WORK/mixed.lua" "http://127.0.0.1:$PORT" > "$WORK/mixed-wrk-$1.txt" & WRK=$!
    sleep 1
    local start end
    start=$(date +%s.%N)
    "$BIN" import --file "$WORK/mixed-plans.csv" --org $LA --url "$BASE" --token "$UPLOADER" --chunk 1000 | head -n 1 >&2
    end=$(date +%s.%N)
    kill -INT $WRK; wait $WRK || true; WRK=
    echo "$(grep RESULT "$WORK/mixed-wrk-$1.txt") upload_s=$(python3 -c "print($end - $start)")"
}
# A first upload (every plan new), then the same file again (every plan unchanged).
FIRST=$(during_upload first)
echo "during first upload: $FIRST"
AGAIN=$(during_upload again)
echo "during a re-send:    $AGAIN"
after=$(audit_count)
python3 - "$QUIET" "$FIRST" "$AGAIN" "$((after - before))" "$PLANS" "${DB%%:*}" "$WORK/mixed.json" <<'PY'
import json, re, sys
def parse(line):
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}
quiet, first, again = parse(sys.argv[1]), parse(sys.argv[2]), parse(sys.argv[3])
audited, plans = int(sys.argv[4]), int(sys.argv[5])
answered = sum(p["requests"] - p["errors"] for p in (quiet, first, again))
for name, p in (("first upload", first), ("re-send", again)):
    print(f"{name} of {plans} plans during the lookups: {p['upload_s']:.1f} s ({plans / p['upload_s']:.0f} plans/s); "
          f"lookup p99 during / quiet {p['p99_ms'] / quiet['p99_ms']:.2f}, throughput during / quiet "
          f"{p['rps'] / quiet['rps']:.2f}, errors {p['errors']:.0f}")
print(f"AuditEvents added {audited} for {answered:.0f} lookups answered 200")
json.dump({"engine": sys.argv[6], "quiet": quiet, "during": first, "first": first, "again": again,
           "upload_s": first["upload_s"], "plans": plans, "audited": audited, "answered": answered},
          open(sys.argv[7], "w"), indent=1)
PY
