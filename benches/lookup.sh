#!/usr/bin/env bash
# Lookup load test on a database as production has it: PLANS plans of LAS local authorities,
# uploaded through the API as batch Bundles (benches/seed_api.py), never analysed by hand.
# On one server and one database, CONNECTIONS wrk clients for DURATION per mode:
#   health            GET /_health: the ceiling the lookups are measured against;
#   organization      GET Organization/{id} as health-care: a second ceiling, a plain read
#                     through authentication and the database (nothing recorded);
#   read-only         Flag?patient:identifier=…&_include=Flag:author by the child's own LA
#                     (social-care): nothing is recorded;
#   audited-patient   the same search as health-care, unscheduled: every 200 is backed by a
#                     committed AuditEvent (counted through the API before and after);
#   audited-subject   Flag?subject:identifier=… as health-care, without _include.
# It reports the server's peak RSS under this load and the database bytes per recorded access
# (audit tables, grown over the audited modes). Then, for comparison only, the database is
# analysed by hand (ANALYZE) and the audited modes run again: the server must not need it.
# Writes the figures to $WORK/summary.json (for benches/all.sh). Bounded: wrk stops after
# DURATION; the server is stopped on exit. Loopback only.
#
#   bash benches/lookup.sh                         # SQLite, 20,000 plans of 150 LAs, 32 clients, 10 s
#   PLANS=100000 DURATION=20s bash benches/lookup.sh
#   DB=postgres://postgres:postgres@127.0.0.1/cpis_bench bash benches/lookup.sh   # an empty database
#   AUDIT_FILL=5000000 …       # first record that many audited lookups (benches/scale.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
PLANS=${PLANS:-20000}
LAS=${LAS:-150}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10s}
PORT=${PORT:-18181}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
DB=${DB:-sqlite://$WORK/bench.db}
MODES=${MODES:-health organization read-only audited-patient audited-subject}
BIN=${BIN:-target/release/cpis}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis
export CPIS_JWT_SECRET=bench-secret-of-at-least-thirty-two-bytes CPIS_DATABASE_URL="$DB"
export CPIS_BIND="127.0.0.1:$PORT" RUST_LOG=warn CPIS_MAX_BODY_BYTES=$((64 * 1024 * 1024))
SERVER=
start_server() {
    "$BIN" serve & SERVER=$!
    await_health "$PORT" "$SERVER"
}
stop_server() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
trap stop_server EXIT
start_server

if [ ! -s "$WORK/nhs.txt" ]; then
    python3 benches/seed_api.py "http://127.0.0.1:$PORT/FHIR/R4" "$PLANS" "$LAS" "$WORK/nhs.txt" "$BIN"
fi
token() { "$BIN" token --ttl 3600 "$@"; }
HEALTH=$(token --role health-care --org RJ1 --name "Bench Clinician" --job-role "Staff Nurse")
OPS=$(token --role operations --org X26)
: > "$WORK/la_tokens.txt"
for i in $(seq 0 $((LAS - 1))); do token --role social-care --org "$(printf 'L%05d' "$i")" >> "$WORK/la_tokens.txt"; done

ORG_ID=$(curl -sf -H "Authorization: Bearer $OPS" "http://127.0.0.1:$PORT/FHIR/R4/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|L00000" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')

audit_count() { audit_total "http://127.0.0.1:$PORT/FHIR/R4" "$OPS"; }

script() { # $1 = mode, $2 = label
    cat <<LUA
local numbers, owners, la_tokens = {}, {}, {}
for line in io.lines("$WORK/nhs.txt") do
  local nhs, la = line:match("(%d+) (%d+)")
  numbers[#numbers + 1] = nhs; owners[#owners + 1] = tonumber(la)
end
for line in io.lines("$WORK/la_tokens.txt") do la_tokens[#la_tokens + 1] = line end
local mode = "$1"
math.randomseed(42)
request = function()
  if mode == "health" then return wrk.format("GET", "/_health") end
  if mode == "organization" then return wrk.format("GET", "/FHIR/R4/Organization/$ORG_ID", {["Authorization"] = "Bearer $HEALTH"}) end
  local i = math.random(#numbers)
  local token, path = "$HEALTH", "/FHIR/R4/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|" .. numbers[i] .. "&_include=Flag:author"
  if mode == "read-only" then token = la_tokens[owners[i] + 1] end
  if mode == "audited-subject" then path = "/FHIR/R4/Flag?subject:identifier=https://fhir.nhs.uk/Id/nhs-number|" .. numbers[i] end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT mode=%s requests=%d errors=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    "$2", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA
}

run_modes() { # $1 = label suffix, then modes
    local suffix=$1; shift
    for mode in "$@"; do
        local label="$mode$suffix"
        script "$mode" "$label" > "$WORK/lookup-$label.lua"
        wrk -t2 -c"$CONNECTIONS" -d3s -s "$WORK/lookup-$label.lua" "http://127.0.0.1:$PORT" >/dev/null
        local before after
        before=$(audit_count)
        wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/lookup-$label.lua" "http://127.0.0.1:$PORT" |
            grep RESULT | tee -a "$WORK/results.txt"
        after=$(audit_count)
        echo "AUDIT mode=$label audit_events_added=$((after - before))" | tee -a "$WORK/results.txt"
    done
}

: > "$WORK/results.txt"
echo "engine: ${DB%%:*}, $PLANS plans of $LAS LAs (uploaded through the API), $CONNECTIONS clients, $DURATION a mode"
# AUDIT_FILL: audited lookups recorded before the measurement (a register with a history of
# accesses), in bounded rounds of FILL_ROUND until the server holds that many AuditEvents.
if [ -n "${AUDIT_FILL:-}" ]; then
    script audited-patient fill > "$WORK/lookup-fill.lua"
    while [ "$(audit_count)" -lt "$AUDIT_FILL" ]; do
        wrk -t2 -c"$CONNECTIONS" -d"${FILL_ROUND:-60s}" -s "$WORK/lookup-fill.lua" "http://127.0.0.1:$PORT" >/dev/null
        echo "filled: $(audit_count) AuditEvents"
    done
fi
BYTES_BEFORE=$(audit_bytes "$DB"); ACCESSES_BEFORE=$(audit_count)
run_modes "" $MODES
BYTES_AFTER=$(audit_bytes "$DB"); ACCESSES_AFTER=$(audit_count)
PEAK_RSS_KIB=$(peak_rss_kib "$SERVER")

# For comparison only (SKIP_ANALYSED=1 leaves it out): the same audited lookups after a
# hand-run ANALYZE.
if [ -z "${SKIP_ANALYSED:-}" ]; then
    stop_server
    case "$DB" in
        sqlite://*) python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("ANALYZE"); c.commit()' "${DB#sqlite://}" ;;
        postgres*) psql -q "$DB" -c ANALYZE ;;
    esac
    start_server
    run_modes "+analysed" audited-patient audited-subject
fi

python3 - "$WORK/results.txt" "$PEAK_RSS_KIB" "$((BYTES_AFTER - BYTES_BEFORE))" "$((ACCESSES_AFTER - ACCESSES_BEFORE))" "${DB%%:*}" "$WORK/summary.json" <<'PY'
import json, re, sys
peak_rss_kib, grown, accesses = map(int, sys.argv[2:5])
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"RESULT mode=(\S+) requests=(\d+) errors=(\d+) rps=(\d+) p50_ms=(\S+) p99_ms=(\S+)", line)
    if m:
        rows[m[1]] = dict(requests=int(m[2]), errors=int(m[3]), rps=int(m[4]), p50=m[5], p99=m[6])
    m = re.match(r"AUDIT mode=(\S+) audit_events_added=(\d+)", line)
    if m and m[1] in rows:
        rows[m[1]]["audited"] = int(m[2])
ceiling = rows.get("health", {}).get("rps")
print("\n| mode | req/s | of /_health | p50 ms | p99 ms | errors | AuditEvents added |")
print("|---|---|---|---|---|---|---|")
for mode, r in rows.items():
    share = f"{r['rps'] / ceiling:.3f}" if ceiling else "-"
    print(f"| {mode} | {r['rps']} | {share} | {r['p50']} | {r['p99']} | {r['errors']} | {r.get('audited', 0) if mode.startswith('audited') else '-'} |")
for mode in ("audited-patient", "audited-subject"):
    if mode in rows and mode + "+analysed" in rows:
        print(f"{mode}: never analysed / analysed by hand = {rows[mode]['rps'] / rows[mode + '+analysed']['rps']:.2f}")
per_access = grown / accesses if accesses else None
print(f"peak RSS under the lookup load: {peak_rss_kib / 1024:.1f} MiB")
if per_access:
    print(f"database bytes per recorded access: {per_access:.0f} ({grown} bytes over {accesses} accesses)")
json.dump({"engine": sys.argv[5], "modes": rows, "peak_rss_kib": peak_rss_kib,
           "bytes_per_access": per_access, "accesses": accesses}, open(sys.argv[6], "w"), indent=1)
PY
