#!/usr/bin/env bash
# Soak (issue #10): DURATION of audited lookups at about half of capacity, with an LA upload
# every minute and every shown access delivered to a local receiver, on a release server whose
# database was filled through the API. Samples every 10 s and prints the largest WAL (SQLite),
# the database bytes per recorded access (audit tables), and the server's RSS (mean over a
# minute) at start, after warming up (WARM s), in the middle and at the end, then checks: WAL
# under 64 MiB at every sample, RSS grown less than 10% after warming up, no error. Bounded
# (DURATION), loopback only. LOAD=full runs CONNECTIONS (default 6) clients flat out instead of
# half of capacity (issue #31: the WAL bound at full load). Writes $WORK/soak.json.
#
#   bash benches/soak.sh                                   # SQLite, 30 minutes, half load
#   LOAD=full DURATION=360 WARM=60 bash benches/soak.sh     # 6 clients flat out, 6 minutes
#   DURATION=1800 DB=postgres://postgres:postgres@127.0.0.1/cpis_soak bash benches/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
DURATION=${DURATION:-1800}
LOAD=${LOAD:-half}
WARM=${WARM:-300}
PLANS=${PLANS:-20000}
LAS=${LAS:-150}
PORT=${PORT:-18183}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
DB=${DB:-sqlite://$WORK/soak.db}
BIN=${BIN:-target/release/cpis}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis

export CPIS_JWT_SECRET=soak-secret-of-at-least-thirty-two-bytes CPIS_DATABASE_URL="$DB"
export CPIS_BIND="127.0.0.1:$PORT" RUST_LOG=warn CPIS_MAX_BODY_BYTES=$((64 * 1024 * 1024))
export CPIS_NOTIFY_ALLOW_PRIVATE_NETWORKS=1
"$BIN" serve 2> "$WORK/server.log" & SERVER=$!
RECEIVER=
WATCH=
trap 'kill $SERVER $RECEIVER $WATCH 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/_health" >/dev/null && break; sleep 0.1; done
BASE="http://127.0.0.1:$PORT/FHIR/R4"
python3 benches/seed_api.py "$BASE" "$PLANS" "$LAS" "$WORK/nhs.txt" "$BIN"

# A receiver for every LA's notifications; it counts what arrives.
python3 - "$WORK/received.txt" > "$WORK/receiver.port" <<'PY' & RECEIVER=$!
import http.server, socket, sys, threading
count = [0]; lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            count[0] += 1
            open(sys.argv[1], "w").write(str(count[0]))
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer.request_queue_size = 256
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
for _ in $(seq 1 50); do [ -s "$WORK/receiver.port" ] && break; sleep 0.1; done
RECEIVER_PORT=$(cat "$WORK/receiver.port")
token() { "$BIN" token --ttl $((DURATION + 3600)) "$@"; }
# 300 clinicians: a person's first view of a child in a day is shown to its LA and notified, so
# most lookups stay new accesses to deliver for the whole run.
for n in $(seq 1 300); do token --role health-care --org RJ1 --name "Soak Clinician $n" --sub "soak-$n"; done > "$WORK/health_tokens.txt"
OPS=$(token --role operations --org X26)
for la in $(seq 0 9); do
    curl -sf -X POST "$BASE/Subscription" -H "Authorization: Bearer $(token --role social-care --org "$(printf 'L%05d' "$la")")" \
        -H 'Content-Type: application/fhir+json' -d "{\"resourceType\":\"Subscription\",\"status\":\"requested\",\"reason\":\"soak\",\"criteria\":\"AuditEvent?\",\"channel\":{\"type\":\"rest-hook\",\"endpoint\":\"http://127.0.0.1:$RECEIVER_PORT/n\",\"payload\":\"application/fhir+json\"}}" >/dev/null
done

lookup_script() { # $1 = delay per request per connection, ms (0: as fast as possible)
    cat <<LUA
local numbers, tokens = {}, {}
for line in io.lines("$WORK/nhs.txt") do numbers[#numbers + 1] = line:match("(%d+)") end
for line in io.lines("$WORK/health_tokens.txt") do tokens[#tokens + 1] = line end
math.randomseed(7)
request = function()
  return wrk.format("GET", "/FHIR/R4/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|" .. numbers[math.random(#numbers)],
    {["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]})
end
delay = function() return $1 end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx_or_errors=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
}
# Capacity first (10 s flat out), then half of it: 12 connections, each pausing between requests
# (the pause less about a millisecond of service time). At full load, CONNECTIONS clients
# without a pause.
lookup_script 0 > "$WORK/capacity.lua"
CAPACITY=$(wrk -t2 -c32 -d10s -s "$WORK/capacity.lua" "http://127.0.0.1:$PORT" | sed -n 's/.*rps=\([0-9]*\).*/\1/p')
if [ "$LOAD" = full ]; then
    CONNECTIONS=${CONNECTIONS:-6}
    cp "$WORK/capacity.lua" "$WORK/soak.lua"
    echo "engine: ${DB%%:*}; capacity ${CAPACITY} audited lookups/s; soak at full load, $CONNECTIONS clients, for ${DURATION} s"
else
    CONNECTIONS=${CONNECTIONS:-12}
    TARGET=$((CAPACITY / 2))
    DELAY=$((CONNECTIONS * 1000 / (TARGET > 0 ? TARGET : 1) - 1))
    lookup_script "$DELAY" > "$WORK/soak.lua"
    echo "engine: ${DB%%:*}; capacity ${CAPACITY} audited lookups/s; soak target ~${TARGET}/s for ${DURATION} s"
fi

audit_count() { audit_total "$BASE" "$OPS"; }
wal_bytes() { case "$DB" in sqlite://*) stat -c %s "${DB#sqlite://}-wal" 2>/dev/null || echo 0 ;; *) echo 0 ;; esac; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
# What the RSS is made of, to tell a leak from warm-up: anonymous memory, the part of it in
# transparent huge pages, file pages mapped, and the server's thread count.
memory_parts() {
    awk '/^Anonymous:/ {a=$2} /^AnonHugePages:/ {h=$2} /^Rss:/ {r=$2} END {print a, h, r - a}' "/proc/$SERVER/smaps_rollup"
    ls "/proc/$SERVER/task" | wc -l
}

ACCESSES_BEFORE=$(audit_count); BYTES_BEFORE=$(audit_bytes "$DB")
# The WAL's size twice a second on its own, uploads included (the loop below waits on them).
( while kill -0 "$SERVER" 2>/dev/null; do wal_bytes; sleep 0.5; done ) > "$WORK/wal.txt" & WATCH=$!
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/soak.lua" "http://127.0.0.1:$PORT" > "$WORK/wrk.txt" & WRK=$!
START=$(date +%s); MAX_WAL=0; UPLOADS=0; UPLOAD_ERRORS=0; NEXT_UPLOAD=60
: > "$WORK/samples.txt"
while kill -0 $WRK 2>/dev/null; do
    NOW=$(( $(date +%s) - START ))
    W=$(wal_bytes); [ "$W" -gt "$MAX_WAL" ] && MAX_WAL=$W
    echo "$NOW $(rss_kib) $W" $(memory_parts) >> "$WORK/samples.txt"
    if [ "$NOW" -ge "$NEXT_UPLOAD" ]; then
        NEXT_UPLOAD=$((NEXT_UPLOAD + 60)); UPLOADS=$((UPLOADS + 1))
        LA=$(printf 'L%05d' $((UPLOADS % LAS)))
        python3 -c "
import sys
def nhs(stem):
    while True:
        d=[int(c) for c in f'{stem:09d}']; k=11-sum(a*b for a,b in zip(d,range(10,1,-1)))%11; k=0 if k==11 else k
        if k!=10: return f'{stem:09d}{k}'
        stem+=1
print('nhs_number,plan_type,start,end,plan_reference')
for i in range(2000): print(f'{nhs(700000000+$UPLOADS*100000+i*7)},CPP,2026-01-05,,SOAK-$UPLOADS-{i}')
" > "$WORK/upload.csv"
        "$BIN" import --file "$WORK/upload.csv" --org "$LA" --url "$BASE" --token "$(token --role social-care --org "$LA")" >/dev/null 2>&1 || UPLOAD_ERRORS=$((UPLOAD_ERRORS + 1))
    fi
    sleep 10
done
wait $WRK || true
kill $WATCH 2>/dev/null || true
MAX_WAL=$(sort -n "$WORK/wal.txt" | tail -n 1)
[ "$MAX_WAL" -ge 0 ] 2>/dev/null || MAX_WAL=0
sleep 5
ACCESSES=$(( $(audit_count) - ACCESSES_BEFORE ))
BYTES=$(( $(audit_bytes "$DB") - BYTES_BEFORE ))
RECEIVED=$(cat "$WORK/received.txt" 2>/dev/null || echo 0)
grep RESULT "$WORK/wrk.txt"
python3 - "$WORK/samples.txt" "$MAX_WAL" "$ACCESSES" "$BYTES" "$RECEIVED" "$UPLOADS" "$UPLOAD_ERRORS" "$WORK/wrk.txt" "$DURATION" "$WARM" "$LOAD" "$WORK/soak.json" <<'PY'
import json, re, sys
samples = [tuple(map(int, line.split())) for line in open(sys.argv[1]) if line.strip()]
max_wal, accesses, nbytes, received, uploads, upload_errors = map(int, sys.argv[2:8])
wrk = open(sys.argv[8]).read(); duration, warm = int(sys.argv[9]), int(sys.argv[10])
errors = int(re.search(r"non2xx_or_errors=(\d+)", wrk).group(1))
def rss_at(t):
    """The mean RSS over the minute from `t` (uploads make single samples jump)."""
    window = [s[1] for s in samples if t <= s[0] < t + 60] or [min(samples, key=lambda s: abs(s[0] - t))[1]]
    return sum(window) / len(window) / 1024
start, five, middle, end = rss_at(0), rss_at(warm), rss_at(duration / 2), rss_at(duration - 60)
def parts_at(t):
    s = min(samples, key=lambda s: abs(s[0] - t))
    return f"anon={s[3] / 1024:.0f} huge={s[4] / 1024:.0f} file={s[5] / 1024:.0f} threads={s[6]}" if len(s) > 6 else ""
for label, t in [("start", 0), ("warm", warm), ("middle", duration / 2), ("end", duration - 60)]:
    print(f"memory_mib at {label}: {parts_at(t)}")
growth = (end - five) / five if five else 0
print(f"largest_wal_mib={max_wal / 2**20:.1f} bytes_per_access={nbytes / max(accesses, 1):.0f} accesses={accesses} "
      f"notifications_received={received} uploads={uploads} upload_errors={upload_errors} lookup_errors={errors}")
print(f"rss_mib start={start:.0f} after_{warm}_s={five:.0f} middle={middle:.0f} end={end:.0f} growth_after_{warm}_s={growth * 100:.1f}%")
rps = float(re.search(r"rps=(\d+)", wrk).group(1))
ok = max_wal <= 64 * 2**20 and growth < 0.10 and errors == 0 and upload_errors == 0
json.dump({"load": sys.argv[11], "duration_s": duration, "warm_s": warm, "largest_wal_bytes": max_wal,
           "wal_samples": sum(1 for _ in open(sys.argv[1].replace("samples.txt", "wal.txt"))), "rss_mib": {"start": start, "warm": five, "middle": middle, "end": end},
           "rss_growth": growth, "accesses": accesses, "lookups_per_s": rps, "lookup_errors": errors,
           "uploads": uploads, "upload_errors": upload_errors, "ok": ok}, open(sys.argv[12], "w"), indent=1)
print("SOAK", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
