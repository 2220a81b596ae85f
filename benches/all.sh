#!/usr/bin/env bash
# The benchmark set in one run, on both engines, and one table of ratios from it (issues #16, #31):
#   lookups  benches/lookup.sh: each lookup mode as a fraction of the same engine's plain
#            `Organization/{id}` read (the yardstick: this stack's cheapest FHIR answer, same
#            token, same clients, same run), PostgreSQL as a fraction of SQLite, each audited
#            mode as a fraction of the read-only lookup (what recording adds), the server's
#            peak RSS, database bytes per recorded access;
#   mixed    benches/mixed.sh: 16 clients of audited lookups quiet, then during a first
#            100,000-plan upload and during a re-send of the same file (p99 and throughput
#            during ÷ quiet, errors);
#   uploads  benches/upload.sh: 100,000 plans over HTTP, then the same file again, on this
#            build and on BASELINE (the previous build, built from a git worktree with its own
#            target directory), each on a fresh database, UPLOAD_ROUNDS times (default 3) with
#            the builds alternated: their medians are compared;
#   soak     benches/soak.sh on SQLite at full load (LOAD=full: 6 clients flat out, SOAK_S
#            seconds, an upload a minute): the largest WAL over samples twice a second, RSS
#            growth after the first minute;
#   viewer   benches/viewer.sh on SQLite: 16 signed-in users through the clinician viewer's
#            journey, each page's p50/p99 beside the API lookup's.
# Then it checks #31's bounds and says which hold.
# PostgreSQL: PG_URL names a server's maintenance database (e.g.
# postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=verify-full&sslrootcert=…);
# databases cpis_bench_* are created there and dropped again. Without PG_URL the run fails,
# unless SQLITE_ONLY=1. The uploads on PostgreSQL go through its Unix socket (PG_SOCKET, peer
# authentication, the server run as the OS user `postgres`) for both builds alike: the baseline
# build has no TLS. The table goes to stdout and to $WORK/table.md. Bounded; loopback only.
#
#   PG_URL=postgres://… bash benches/all.sh
#   SQLITE_ONLY=1 SKIP_BASELINE=1 bash benches/all.sh      # the quick part
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
BASELINE=${BASELINE:-c32de36}
SOAK_S=${SOAK_S:-360}
export UPLOAD_ROUNDS=${UPLOAD_ROUNDS:-3}
BASELINE_DIR=${BASELINE_DIR:-target/baseline-src}
BASELINE_BIN=target/baseline/release/cpis
PG_SOCKET=${PG_SOCKET:-/var/run/postgresql}
ENGINES="sqlite postgres"
if [ -n "${SQLITE_ONLY:-}" ]; then
    ENGINES=sqlite
elif [ -z "${PG_URL:-}" ]; then
    echo "PG_URL is not set (a PostgreSQL maintenance database URL); SQLITE_ONLY=1 runs SQLite alone" >&2
    exit 1
fi
command -v psql >/dev/null || [ -n "${SQLITE_ONLY:-}" ] || { echo "psql is needed for PostgreSQL" >&2; exit 1; }

cargo build --release --bin cpis
if [ -z "${SKIP_BASELINE:-}" ]; then
    [ -d "$BASELINE_DIR" ] || git worktree add --detach "$BASELINE_DIR" "$BASELINE"
    (target="$PWD/target/baseline" && cd "$BASELINE_DIR" && git checkout -q --detach "$BASELINE" &&
        CARGO_TARGET_DIR="$target" cargo build --release --bin cpis)
fi

# A fresh database of this engine named $1: its URL.
fresh_db() {
    case "$ENGINE" in
        sqlite) rm -f "$WORK/$1.db"*; echo "sqlite://$WORK/$1.db" ;;
        postgres)
            psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >&2
            python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$1"
            ;;
    esac
}
drop_db() { [ "$ENGINE" = sqlite ] || psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $1" >&2; }

for ENGINE in $ENGINES; do
    echo "=== $ENGINE: lookups"
    DB=$(fresh_db cpis_bench_lookup)
    rm -f "$WORK/$ENGINE-lookup/nhs.txt" # a fresh database: lookup.sh fills it again
    WORK="$WORK/$ENGINE-lookup" DB="$DB" SKIP_BUILD=1 bash benches/lookup.sh
    echo "=== $ENGINE: lookups during an upload"
    WORK="$WORK/$ENGINE-lookup" DB="$DB" SKIP_BUILD=1 bash benches/mixed.sh
    drop_db cpis_bench_lookup
    # Each build's uploads UPLOAD_ROUNDS times, the builds alternated (a re-send takes a few
    # seconds, and one run of each moved by ±20% on this machine): the medians are compared.
    for round in $(seq 1 "$UPLOAD_ROUNDS"); do
        builds="current baseline"; [ $((round % 2)) = 1 ] || builds="baseline current"
        for build in $builds; do
            [ "$build" = current ] || [ -z "${SKIP_BASELINE:-}" ] || continue
            bin=target/release/cpis; [ "$build" = current ] || bin=$BASELINE_BIN
            echo "=== $ENGINE: upload, $build build, round $round of $UPLOAD_ROUNDS"
            DB=$(fresh_db cpis_bench_upload)
            serve_as=
            if [ "$ENGINE" = postgres ]; then DB="postgres:///cpis_bench_upload?host=$PG_SOCKET"; serve_as=postgres; fi
            dir="$WORK/$ENGINE-upload-$build-$round"
            mkdir -p "$dir"
            cp "$WORK/plans.csv" "$dir/" 2>/dev/null || true
            WORK="$dir" DB="$DB" BIN="$bin" SERVE_AS="$serve_as" SKIP_BUILD=1 SKIP_DIRECT=1 bash benches/upload.sh
            [ -s "$WORK/plans.csv" ] || cp "$dir/plans.csv" "$WORK/"
            drop_db cpis_bench_upload
        done
    done
done

echo "=== sqlite: soak at full load"
WORK="$WORK/soak" DB="sqlite://$WORK/soak/soak.db" LOAD=full DURATION="$SOAK_S" WARM=60 SKIP_BUILD=1 bash benches/soak.sh || true
if [ -f benches/viewer.sh ]; then
    echo "=== sqlite: the viewer"
    mkdir -p "$WORK/viewer"
    WORK="$WORK/viewer" SKIP_BUILD=1 bash benches/viewer.sh || true
fi

python3 - "$WORK" "$BASELINE" <<'PY' | tee "$WORK/table.md"
import json, os, statistics, sys
work, baseline = sys.argv[1], sys.argv[2]
def load(name):
    path = os.path.join(work, name)
    return json.load(open(path)) if os.path.exists(path) else None
engines = [e for e in ("sqlite", "postgres") if load(f"{e}-lookup/summary.json")]
lookup = {e: load(f"{e}-lookup/summary.json") for e in engines}
mixed = {e: load(f"{e}-lookup/mixed.json") for e in engines}
def median_upload(e, b):
    """The build's uploads over its rounds: the median time of each kind, the peak RSS."""
    runs = [u for r in range(1, int(os.environ.get("UPLOAD_ROUNDS", "3")) + 1) if (u := load(f"{e}-upload-{b}-{r}/upload.json"))]
    if not runs:
        return None
    return {"rounds": len(runs), "peak_rss_kib": max(u["peak_rss_kib"] for u in runs),
            "seconds": {k: statistics.median(u["seconds"][k] for u in runs) for k in runs[0]["seconds"]}}
upload = {(e, b): median_upload(e, b) for e in engines for b in ("current", "baseline")}
soak, viewer = load("soak/soak.json"), load("viewer/viewer.json")
YARDSTICK = "organization"
names = {"health": "`/_health` (a database ping)", "organization": "`Organization/{id}` read (the yardstick)",
         "read-only": "read-only lookup (the child's LA)", "audited-patient": "audited `patient:identifier` + `_include`",
         "audited-subject": "audited `subject:identifier`", "audited-patient+analysed": "audited `patient`, after a hand-run ANALYZE",
         "audited-subject+analysed": "audited `subject`, after a hand-run ANALYZE"}
checks = []
def check(label, ok, figure):
    checks.append((label, ok, figure))
def rate(e, mode):
    m = lookup[e]["modes"].get(mode)
    return m["rps"] if m else None
print("\n## Lookups (req/s; fraction of that engine's `Organization/{id}` read)\n")
print("| mode | " + " | ".join(engines) + (" | PostgreSQL ÷ SQLite |" if len(engines) == 2 else " |"))
print("|---" * (len(engines) + 1 + (len(engines) == 2)) + "|")
for mode in names:
    cells, rates = [], []
    for e in engines:
        m = lookup[e]["modes"].get(mode)
        yard = rate(e, YARDSTICK)
        rates.append(m["rps"] if m else None)
        cells.append(f"{m['rps']:,} ({m['rps'] / yard:.2f}), p99 {m['p99']} ms" if m and yard else "-")
    ratio = f" | {rates[1] / rates[0]:.2f}" if len(engines) == 2 and all(rates) else (" | -" if len(engines) == 2 else "")
    print(f"| {names[mode]} | " + " | ".join(cells) + ratio + " |")
print()
for e in engines:
    s = lookup[e]
    audited = sum(m.get("audited", 0) for k, m in s["modes"].items() if k.startswith("audited") and "+" not in k)
    answered = sum(m["requests"] - m["errors"] for k, m in s["modes"].items() if k.startswith("audited") and "+" not in k)
    print(f"- {e}: peak RSS under the lookup load {s['peak_rss_kib'] / 1024:.0f} MiB; "
          f"{s['bytes_per_access']:.0f} database bytes per recorded access ({s['accesses']:,} accesses); "
          f"AuditEvents added {audited:,} for {answered:,} audited lookups answered")
    for mode in ("audited-patient", "audited-subject"):
        if rate(e, mode) and rate(e, YARDSTICK):
            share = rate(e, mode) / rate(e, YARDSTICK)
            check(f"{e}: {mode} ÷ read by id ≥ 0.35", share >= 0.35, f"{share:.2f}")
    check(f"{e}: every audited 200 backed by a committed AuditEvent", audited >= answered, f"{audited:,} for {answered:,}")
    # What recording an access costs, apart from the lookup itself (no bound: #31's question).
    if rate(e, "read-only"):
        print(f"- {e}: audited ÷ read-only lookup: " + ", ".join(
            f"{mode.removeprefix('audited-')} {rate(e, mode) / rate(e, 'read-only'):.2f}"
            for mode in ("audited-patient", "audited-subject") if rate(e, mode)))
if len(engines) == 2 and rate("sqlite", "audited-patient") and rate("postgres", "audited-patient"):
    share = rate("postgres", "audited-patient") / rate("sqlite", "audited-patient")
    check("PostgreSQL audited patient ÷ SQLite's ≥ 0.6", share >= 0.6, f"{share:.2f}")
print("\n## Audited lookups during a 100,000-plan upload (16 clients)\n")
print("| engine | quiet p50 / p99 ms, req/s | upload | during p50 / p99 ms, req/s | p99 during ÷ quiet | req/s during ÷ quiet | errors | upload s |")
print("|---|---|---|---|---|---|---|---|")
for e in engines:
    m = mixed[e]
    if not m:
        continue
    q = m["quiet"]
    for phase, label in (("first", "first (new plans)"), ("again", "re-send (unchanged)")):
        d = m.get(phase)
        if not d:
            continue
        p99, thr = d["p99_ms"] / q["p99_ms"], d["rps"] / q["rps"]
        print(f"| {e} | {q['p50_ms']:.1f} / {q['p99_ms']:.1f}, {q['rps']:.0f} | {label} | {d['p50_ms']:.1f} / {d['p99_ms']:.1f}, {d['rps']:.0f} | "
              f"{p99:.2f} | {thr:.2f} | {q['errors'] + d['errors']:.0f} | {d['upload_s']:.1f} |")
        if phase == "first":
            check(f"{e}: first upload, lookup p99 ≤ 3× quiet", p99 <= 3, f"{p99:.2f}")
            check(f"{e}: first upload, lookup throughput ≥ 0.5 of quiet", thr >= 0.5, f"{thr:.2f}")
            check(f"{e}: no lookup error during the uploads", q["errors"] + d["errors"] + m["again"]["errors"] == 0 if m.get("again") else q["errors"] + d["errors"] == 0,
                  f"{q['errors'] + d['errors'] + (m['again']['errors'] if m.get('again') else 0):.0f}")
print(f"\n## 100,000-plan upload over HTTP (s, the median of each build's rounds, builds alternated; this build against {baseline})\n")
print(f"| engine | this build, first | same file again | {baseline}, first | {baseline}, again | this ÷ {baseline} (first) | server peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
for e in engines:
    c, b = upload[(e, "current")], upload[(e, "baseline")]
    if c:
        bf = f"{b['seconds']['first']:.1f}" if b else "-"
        ba = f"{b['seconds']['again']:.1f}" if b else "-"
        slower = c['seconds']['first'] / b['seconds']['first'] if b else None
        print(f"| {e} | {c['seconds']['first']:.1f} | {c['seconds']['again']:.1f} | {bf} | {ba} | {f'{slower:.2f}' if b else '-'} | {c['peak_rss_kib'] / 1024:.0f} |")
        if b:
            check(f"{e}: upload not more than 10% slower than {baseline}", slower <= 1.10, f"{slower:.2f}× the time")
            again = c['seconds']['again'] / b['seconds']['again']
            check(f"{e}: re-send not more than 10% slower than {baseline}", again <= 1.10, f"{again:.2f}× the time")
if soak:
    print(f"\n## Soak on SQLite at full load ({soak['duration_s']} s, 6 clients flat out, an upload a minute)\n")
    r = soak["rss_mib"]
    print(f"- {soak['accesses']:,} audited lookups ({soak['lookups_per_s']:.0f}/s), {soak['lookup_errors']} errors, "
          f"{soak['uploads']} uploads ({soak['upload_errors']} failed)")
    print(f"- largest WAL {soak['largest_wal_bytes'] / 2**20:.1f} MiB over {soak['wal_samples']} samples (twice a second)")
    print(f"- RSS MiB: start {r['start']:.0f}, after the first minute {r['warm']:.0f}, middle {r['middle']:.0f}, end {r['end']:.0f} "
          f"(growth after the first minute {soak['rss_growth'] * 100:.1f}%)")
    check("soak: WAL ≤ 64 MiB at every sample", soak["largest_wal_bytes"] <= 64 * 2**20, f"{soak['largest_wal_bytes'] / 2**20:.1f} MiB")
    check("soak: RSS growth after the first minute < 10%", soak["rss_growth"] < 0.10, f"{soak['rss_growth'] * 100:.1f}%")
    check("soak: no error", soak["lookup_errors"] == 0 and soak["upload_errors"] == 0, f"{soak['lookup_errors']} + {soak['upload_errors']}")
if viewer:
    print("\n## The viewer on SQLite (16 signed-in users)\n")
    print("| page | p50 ms | p99 ms | per s |")
    print("|---|---|---|---|")
    for page, f in viewer.get("pages", {}).items():
        print(f"| {page} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f.get('per_s', 0):.0f} |")
    api = viewer.get("api_lookup")
    if api:
        print(f"| API audited lookup, same 16 clients | {api['p50_ms']:.1f} | {api['p99_ms']:.1f} | {api.get('per_s', 0):.0f} |")
    worst = max((f["p99_ms"] for f in viewer.get("pages", {}).values()), default=None)
    if worst is not None:
        check("viewer: every page's p99 ≤ 50 ms at 16 users", worst <= 50, f"{worst:.1f} ms")
print("\n## Bounds (issue #31, and #27's viewer)\n")
for label, ok, figure in checks:
    print(f"- {'holds' if ok else 'MISSED'}: {label} ({figure})")
PY
