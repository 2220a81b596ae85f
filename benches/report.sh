#!/usr/bin/env bash
# Governance reports at scale (issue #29): a User Access report by organisation over ACCESSES
# recorded accesses (default 1,000,000), all recorded through the API as audited lookups
# (benches/lookup.sh with AUDIT_FILL), then read back as CSV two ways:
#   http    GET AuditEvent?agent-organization=RJ1&date=ge…&date=le…&_format=csv as governance,
#           streamed: rows per second, and the server's peak RSS before and after the report;
#   cli     cpis report --org RJ1 …: rows per second and the command's own peak RSS.
# Constant memory means the peak RSS does not grow with the report (the CSV itself is ~130 MB).
# Bounded: the fill stops at ACCESSES, each report ends with its rows; the server is stopped on
# exit; loopback only.
#
#   bash benches/report.sh                      # SQLite, 1,000,000 accesses
#   ACCESSES=100000 bash benches/report.sh      # a quicker look
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
ACCESSES=${ACCESSES:-1000000}
PORT=${PORT:-18185}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
DB=${DB:-sqlite://$WORK/bench.db}
BIN=${BIN:-target/release/cpis}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis

# The register and its history of accesses, filled through the API (a clinician at RJ1).
if [ ! -s "$WORK/filled" ]; then
    PLANS=${PLANS:-2000} LAS=${LAS:-20} AUDIT_FILL=$ACCESSES MODES=health DURATION=1s \
        SKIP_ANALYSED=1 SKIP_BUILD=1 PORT=$PORT WORK=$WORK DB=$DB BIN=$BIN \
        bash benches/lookup.sh > "$WORK/fill.log"
    touch "$WORK/filled"
fi

export CPIS_JWT_SECRET=bench-secret-of-at-least-thirty-two-bytes CPIS_DATABASE_URL="$DB"
export CPIS_BIND="127.0.0.1:$PORT" RUST_LOG=warn
"$BIN" serve & SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
await_health "$PORT" "$SERVER"
OFFICER=$("$BIN" token --ttl 3600 --role governance --org X26 --name "Bench Officer")
FROM=$(date -u -d '-1 day' +%F)
TO=$(date -u -d '+1 day' +%F)
URL="http://127.0.0.1:$PORT/FHIR/R4/AuditEvent?agent-organization=RJ1&date=ge$FROM&date=le$TO&_format=csv"

# A small report first, so that the baseline RSS is of a server that has answered one.
curl -sf -H "Authorization: Bearer $OFFICER" "${URL/RJ1/NOSUCH}" > /dev/null
RSS_BEFORE=$(peak_rss_kib "$SERVER")
START=$(date +%s.%N)
curl -sf -H "Authorization: Bearer $OFFICER" "$URL" > "$WORK/report.csv"
END=$(date +%s.%N)
RSS_AFTER=$(peak_rss_kib "$SERVER")
HTTP_ROWS=$(($(wc -l < "$WORK/report.csv") - 1))
HTTP_SECONDS=$(python3 -c "print(round($END - $START, 2))")
HTTP_BYTES=$(stat -c %s "$WORK/report.csv")

CLI_STATS=$( { /usr/bin/time -f '%e %M' "$BIN" report --org RJ1 --from "$FROM" --to "$TO" \
    --out "$WORK/cli.csv" 2> "$WORK/cli.err"; } 2>&1 | tail -n 1 )
[ -s "$WORK/cli.csv" ] || { cat "$WORK/cli.err"; exit 1; }
read -r CLI_SECONDS CLI_RSS_KIB <<< "$(tail -n 1 "$WORK/cli.err")"
CLI_ROWS=$(($(wc -l < "$WORK/cli.csv") - 1))
: "$CLI_STATS"

python3 - "$HTTP_ROWS" "$HTTP_SECONDS" "$HTTP_BYTES" "$RSS_BEFORE" "$RSS_AFTER" \
    "$CLI_ROWS" "$CLI_SECONDS" "$CLI_RSS_KIB" <<'PY'
import sys
rows, secs, size, before, after, cli_rows, cli_secs, cli_rss = sys.argv[1:]
rows, secs, cli_rows, cli_secs = int(rows), float(secs), int(cli_rows), float(cli_secs)
print(f"| report | rows | seconds | rows/s | peak RSS |")
print(f"|---|---|---|---|---|")
print(f"| HTTP CSV (governance, streamed; {int(size) / 1e6:.0f} MB) | {rows:,} | {secs:.2f} | "
      f"{rows / secs:,.0f} | server {int(before) / 1024:.0f} MiB before, {int(after) / 1024:.0f} MiB after |")
print(f"| cpis report | {cli_rows:,} | {cli_secs:.2f} | {cli_rows / cli_secs:,.0f} | "
      f"{int(cli_rss) / 1024:.0f} MiB |")
PY
