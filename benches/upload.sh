#!/usr/bin/env bash
# Upload load test (issue #5): PLANS plans of one LA uploaded with `cpis import` as CHUNK-entry
# batch Bundles over HTTP to a live server, then the same file again (idempotent: nothing
# changes), then the CSV imported straight into a fresh database. Prints the times.
# Bounded: one pass each; the server is stopped on exit. Loopback only.
#
#   bash benches/upload.sh                                  # SQLite, 100,000 plans, 1,000 a batch
#   DB=postgres://postgres:postgres@127.0.0.1/cpis_upload bash benches/upload.sh   # an empty database
set -euo pipefail
cd "$(dirname "$0")/.."
PLANS=${PLANS:-100000}
CHUNK=${CHUNK:-1000}
PORT=${PORT:-18182}
WORK=${WORK:-$(mktemp -d)}
DB=${DB:-sqlite://$WORK/upload.db}
DIRECT_DB=${DIRECT_DB:-sqlite://$WORK/direct.db}
LA=B00000

cargo build --release --bin cpis
python3 - "$PLANS" > "$WORK/plans.csv" <<'PY'
import sys
def nhs(stem):  # a 9-digit stem with its Modulus 11 check digit, or None when it has none
    digits = [int(d) for d in f"{stem:09d}"]
    check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1))) % 11
    check = 0 if check == 11 else check
    return None if check == 10 else f"{stem:09d}{check}"
print("nhs_number,plan_type,start,end,plan_reference")
stem, n = 400000000, int(sys.argv[1])
while n:
    number = nhs(stem); stem += 1
    if number:
        kind = ("CPP", "LAC", "UCPP")[n % 3]
        print(f"{number},{kind},2026-01-05,,U-{n}")
        n -= 1
PY
echo "csv: $(($(wc -l < "$WORK/plans.csv") - 1)) plans"

export CPIS_JWT_SECRET=bench-secret-of-at-least-thirty-two-bytes CPIS_DATABASE_URL="$DB" CPIS_BIND="127.0.0.1:$PORT" RUST_LOG=warn
export CPIS_MAX_BODY_BYTES=$((64 * 1024 * 1024))
target/release/cpis serve & SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/_health" >/dev/null && break; sleep 0.2; done
OPS=$(target/release/cpis token --role operations --org X26)
curl -sf -X POST "http://127.0.0.1:$PORT/FHIR/R4/Organization" -H "Authorization: Bearer $OPS" \
    -H 'Content-Type: application/fhir+json' \
    -d "{\"resourceType\":\"Organization\",\"identifier\":[{\"system\":\"https://fhir.nhs.uk/Id/ods-organization-code\",\"value\":\"$LA\"}],\"active\":true,\"name\":\"Bench LA\",\"telecom\":[{\"system\":\"phone\",\"value\":\"020 7000 0001\",\"use\":\"work\"},{\"system\":\"phone\",\"value\":\"020 7000 0999\",\"use\":\"mobile\"}]}" >/dev/null
TOKEN=$(target/release/cpis token --role social-care --org $LA --ttl 3600)

timed() { # label, command...
    local label=$1; shift
    local start end
    start=$(date +%s.%N)
    "$@" | head -n 1
    end=$(date +%s.%N)
    python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'RESULT {sys.argv[3]}: {s:.1f} s, {int(sys.argv[4])/s:.0f} plans/s')" "$start" "$end" "$label" "$PLANS"
}
echo "engine: $(echo "$DB" | cut -d: -f1), $PLANS plans, $CHUNK per batch"
timed "upload over HTTP (first time)" target/release/cpis import --file "$WORK/plans.csv" --org $LA --url "http://127.0.0.1:$PORT/FHIR/R4" --token "$TOKEN" --chunk "$CHUNK"
timed "upload over HTTP (same file again)" target/release/cpis import --file "$WORK/plans.csv" --org $LA --url "http://127.0.0.1:$PORT/FHIR/R4" --token "$TOKEN" --chunk "$CHUNK"
kill $SERVER; wait $SERVER 2>/dev/null || true
if [ -z "${SKIP_DIRECT:-}" ]; then
    CPIS_DATABASE_URL="$DIRECT_DB" target/release/cpis migrate
    CPIS_DATABASE_URL="$DIRECT_DB" target/release/cpis serve & SERVER=$!
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/_health" >/dev/null && break; sleep 0.2; done
    curl -sf -X POST "http://127.0.0.1:$PORT/FHIR/R4/Organization" -H "Authorization: Bearer $OPS" \
        -H 'Content-Type: application/fhir+json' \
        -d "{\"resourceType\":\"Organization\",\"identifier\":[{\"system\":\"https://fhir.nhs.uk/Id/ods-organization-code\",\"value\":\"$LA\"}],\"active\":true,\"name\":\"Bench LA\",\"telecom\":[{\"system\":\"phone\",\"value\":\"020 7000 0001\",\"use\":\"work\"},{\"system\":\"phone\",\"value\":\"020 7000 0999\",\"use\":\"mobile\"}]}" >/dev/null
    kill $SERVER; wait $SERVER 2>/dev/null || true
    CPIS_DATABASE_URL="$DIRECT_DB" timed "CSV import straight into the database" target/release/cpis import --file "$WORK/plans.csv" --org $LA --chunk "$CHUNK"
fi
