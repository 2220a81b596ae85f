#!/usr/bin/env bash
# Backup drill (issue #30), on SQLite: a server filled through its API (PLANS plans of LAS LAs,
# benches/seed_api.py) answers CLIENTS wrk clients of audited lookups in ROUNDS pairs of WINDOW
# seconds, quiet then while `cpis backup` runs back to back (the p99 of each). Then a tracked client (benches/backup_drill.py drive) makes audited lookups and batch
# uploads while one more backup is taken; that one is restored into a new file and served on a
# second port, and the drill checks
# (backup_drill.py check) that every plan acknowledged (2xx) and every tracked lookup answered 200
# before that backup began is in the restored database, and that the restored server answers the
# control children's lookups and the LAs' pull up to that moment exactly as the original does.
# Last, a backup is SIGKILLed mid-copy: no file under its name may be left, and what is left must
# be refused by `cpis restore`. Prints the database size, the backup time, the lookups' p99 during
# the backups against quiet, and the restored counts against the acknowledged ones.
# Bounded (each wrk and loop stops after its window; every process is stopped on exit);
# loopback only.
#
#   bash benches/backup_drill.sh                # 20,000 plans of 20 LAs, 16 clients, 3 x (4 s + 4 s)
#   PLANS=100000 ROUNDS=5 bash benches/backup_drill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
PLANS=${PLANS:-20000}
LAS=${LAS:-20}
CLIENTS=${CLIENTS:-16}
ROUNDS=${ROUNDS:-3}
WINDOW=${WINDOW:-4}
PORT=${PORT:-18186}
PORT2=$((PORT + 1))
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK/backups"
DB="$WORK/drill.db"
BIN=${BIN:-target/release/cpis}
SECRET=bench-secret-of-at-least-thirty-two-bytes
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis

export CPIS_JWT_SECRET=$SECRET RUST_LOG=warn CPIS_MAX_BODY_BYTES=$((64 * 1024 * 1024))
BASE="http://127.0.0.1:$PORT/FHIR/R4"
BASE2="http://127.0.0.1:$PORT2/FHIR/R4"
SERVER= RESTORED= WRK= DRIVER= KILLED= LOOP=
cleanup() {
    touch "$WORK/stop" "$WORK/stop-backups"
    for p in $WRK $LOOP $DRIVER $KILLED $RESTORED $SERVER; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
CPIS_DATABASE_URL="sqlite://$DB" CPIS_BIND="127.0.0.1:$PORT" "$BIN" serve & SERVER=$!
await_health "$PORT" "$SERVER"
[ -s "$WORK/nhs.txt" ] || python3 benches/seed_api.py "$BASE" "$PLANS" "$LAS" "$WORK/nhs.txt" "$BIN"

HEALTH=$(CPIS_DATABASE_URL="sqlite://$DB" "$BIN" token --ttl 3600 --role health-care --org RJ1 --name "Bench Clinician")
# wrk's children: all but the last 50 (the control children, compared after the restore).
head -n -50 "$WORK/nhs.txt" > "$WORK/load.txt"
cat > "$WORK/drill.lua" <<LUA
local numbers = {}
for line in io.lines("$WORK/load.txt") do numbers[#numbers + 1] = line:match("(%d+)") end
math.randomseed(13)
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
lookups() { wrk -t2 -c"$CLIENTS" -d"$1" --latency -s "$WORK/drill.lua" "http://127.0.0.1:$PORT"; }

# The lookups' p99 quiet and during backups, in ROUNDS pairs of WINDOW-second windows (quiet,
# then with `cpis backup` running back to back), so that whatever else the machine does weighs
# on both alike.
lookups 3s >/dev/null
DB_BYTES=$(( $(stat -c %s "$DB") + $(stat -c %s "$DB-wal" 2>/dev/null || echo 0) ))
: > "$WORK/rounds.txt"; : > "$WORK/backup_ms.txt"
for round in $(seq 1 "$ROUNDS"); do
    echo "quiet $(lookups "${WINDOW}s" | grep RESULT)" | tee -a "$WORK/rounds.txt"
    rm -f "$WORK/stop-backups"
    (
        while [ ! -e "$WORK/stop-backups" ]; do
            one=$(date +%s%3N)
            CPIS_DATABASE_URL="sqlite://$DB" "$BIN" backup --to "$WORK/backups/again.db" > "$WORK/again.txt"
            echo $(( $(date +%s%3N) - one )) >> "$WORK/backup_ms.txt"
        done
    ) & LOOP=$!
    sleep 0.2
    echo "during $(lookups "${WINDOW}s" | grep RESULT)" | tee -a "$WORK/rounds.txt"
    touch "$WORK/stop-backups"; wait $LOOP; LOOP=
done

# The backup that is restored: taken while the tracked client makes audited lookups and batch
# uploads (it runs 3 s before and 2 s after); T0 is the moment the command starts.
rm -f "$WORK/stop" "$WORK/driver.log"
python3 benches/backup_drill.py drive "$BASE" "$SECRET" "$WORK/driver.log" "$WORK/stop" & DRIVER=$!
sleep 3
T0=$(date +%s%3N)
CPIS_DATABASE_URL="sqlite://$DB" "$BIN" backup --to "$WORK/backups/first.db" | tee "$WORK/first-backup.txt"
FIRST_MS=$(( $(date +%s%3N) - T0 ))
sleep 2
touch "$WORK/stop"; wait $DRIVER || true; DRIVER=

# Restore the first backup into a new file and serve it beside the original.
"$BIN" restore --from "$WORK/backups/first.db" --to "sqlite://$WORK/restored.db" | tee "$WORK/restore.txt"
CPIS_DATABASE_URL="sqlite://$WORK/restored.db" CPIS_BIND="127.0.0.1:$PORT2" "$BIN" serve & RESTORED=$!
await_health "$PORT2" "$RESTORED"
CHECK=0
python3 benches/backup_drill.py check "$WORK" "$T0" "$BASE" "$BASE2" "$SECRET" "$LAS" || CHECK=$?

# A backup SIGKILLed as soon as its copy is being written.
CPIS_DATABASE_URL="sqlite://$DB" "$BIN" backup --to "$WORK/backups/killed.db" >/dev/null & KILLED=$!
for _ in $(seq 1 20000); do
    partial=$(find "$WORK/backups" -name '.killed.db.partial-*' ! -name '*-journal' -size +1M | head -n 1)
    [ -z "$partial" ] || break
    sleep 0.001
done
kill -9 $KILLED 2>/dev/null || true; wait $KILLED 2>/dev/null || true; KILLED=
KILL_OK=1
if [ -e "$WORK/backups/killed.db" ]; then
    echo "SIGKILL: killed.db exists (the kill came after the rename)"; KILL_OK=0
fi
left=$(find "$WORK/backups" -name '.killed.db.partial-*' ! -name '*-journal' | head -n 1)
if [ -n "$left" ]; then
    if "$BIN" restore --from "$left" --to "sqlite://$WORK/from-partial.db" 2> "$WORK/partial-refused.txt"; then
        echo "SIGKILL: the partial copy was restored"; KILL_OK=0
    fi
    echo "SIGKILL mid-copy: no killed.db; left $(basename "$left") ($(stat -c %s "$left") bytes), refused by restore: $(cat "$WORK/partial-refused.txt")"
else
    echo "SIGKILL: no partial copy was seen"; KILL_OK=0
fi

python3 - "$WORK" "$DB_BYTES" "$FIRST_MS" "$(cat "$WORK/first-backup.txt")" "$(head -n 1 "$WORK/restore.txt")" <<'PY'
import re, statistics, sys
work, db_bytes, first_ms, first, restored = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
field = lambda line, name: re.search(rf"\b{name}=(\S+)", line)[1]
rounds = {"quiet": [], "during": []}
for line in open(f"{work}/rounds.txt"):
    kind = line.split()[0]
    rounds[kind].append({k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)})
quiet, during = rounds["quiet"], rounds["during"]
ratios = [d["p99_ms"] / q["p99_ms"] for q, d in zip(quiet, during)]
times = [int(t) / 1000 for t in open(f"{work}/backup_ms.txt").read().split()]
again = open(f"{work}/again.txt").read()
print(f"database: {db_bytes / 1e6:.1f} MB (file and WAL); a backup: {int(field(again, 'bytes')) / 1e6:.1f} MB in "
      f"{min(times):.2f}-{max(times):.2f} s, median {statistics.median(times):.2f} s (the command, checks included; "
      f"{len(times)} taken under the lookups)")
print("lookup p99 per round, quiet -> during backups: " + ", ".join(
    f"{q['p99_ms']:.1f} -> {d['p99_ms']:.1f} ms ({r:.2f}x)" for q, d, r in zip(quiet, during, ratios)))
print(f"lookup p99 during backups / quiet: median {statistics.median(ratios):.2f}x, of the means "
      f"{statistics.mean(d['p99_ms'] for d in during) / statistics.mean(q['p99_ms'] for q in quiet):.2f}x "
      f"(p50 {statistics.mean(q['p50_ms'] for q in quiet):.2f} -> {statistics.mean(d['p50_ms'] for d in during):.2f} ms; "
      f"{statistics.mean(q['rps'] for q in quiet):.0f} -> {statistics.mean(d['rps'] for d in during):.0f} lookups/s; "
      f"errors {sum(q['errors'] for q in quiet):.0f} / {sum(d['errors'] for d in during):.0f})")
print(f"the restored backup (taken in {first_ms / 1000:.2f} s during uploads and tracked lookups): "
      f"plans={field(first, 'plans')} accesses={field(first, 'accesses')}; restored: plans={field(restored, 'plans')} "
      f"accesses={field(restored, 'accesses')} newest_access={field(restored, 'newest_access')}")
PY
echo "checks: restored content and answers $([ "$CHECK" = 0 ] && echo ok || echo FAILED), SIGKILL $([ "$KILL_OK" = 1 ] && echo ok || echo FAILED)"
[ "$CHECK" = 0 ] && [ "$KILL_OK" = 1 ]
