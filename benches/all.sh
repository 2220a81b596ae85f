#!/usr/bin/env bash
# The benchmark set in one run, on both engines, and one table of ratios from it (issue #16):
#   lookups  benches/lookup.sh: the ceilings (/_health, a plain Organization/{id} read), each
#            lookup mode as a fraction of /_health, PostgreSQL as a fraction of SQLite, the
#            server's peak RSS, database bytes per recorded access;
#   mixed    benches/mixed.sh: 16 clients of audited lookups quiet, then during a 100,000-plan
#            upload (p99 during ÷ quiet, errors);
#   uploads  benches/upload.sh: 100,000 plans over HTTP, then the same file again, on this
#            build and on BASELINE (default cb45214, built from a git worktree with its own
#            target directory), each on a fresh database.
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
BASELINE=${BASELINE:-cb45214}
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
    WORK="$WORK/$ENGINE-lookup" DB="$DB" SKIP_BUILD=1 bash benches/lookup.sh
    echo "=== $ENGINE: lookups during an upload"
    WORK="$WORK/$ENGINE-lookup" DB="$DB" SKIP_BUILD=1 bash benches/mixed.sh
    drop_db cpis_bench_lookup
    for build in current baseline; do
        [ "$build" = current ] || [ -z "${SKIP_BASELINE:-}" ] || continue
        bin=target/release/cpis; [ "$build" = current ] || bin=$BASELINE_BIN
        echo "=== $ENGINE: upload, $build build"
        DB=$(fresh_db cpis_bench_upload)
        serve_as=
        if [ "$ENGINE" = postgres ]; then DB="postgres:///cpis_bench_upload?host=$PG_SOCKET"; serve_as=postgres; fi
        mkdir -p "$WORK/$ENGINE-upload-$build"
        cp "$WORK/plans.csv" "$WORK/$ENGINE-upload-$build/" 2>/dev/null || true
        WORK="$WORK/$ENGINE-upload-$build" DB="$DB" BIN="$bin" SERVE_AS="$serve_as" SKIP_BUILD=1 SKIP_DIRECT=1 bash benches/upload.sh
        [ -s "$WORK/plans.csv" ] || cp "$WORK/$ENGINE-upload-$build/plans.csv" "$WORK/"
        drop_db cpis_bench_upload
    done
done

python3 - "$WORK" "$BASELINE" <<'PY' | tee "$WORK/table.md"
import json, os, sys
work, baseline = sys.argv[1], sys.argv[2]
def load(name):
    path = os.path.join(work, name)
    return json.load(open(path)) if os.path.exists(path) else None
engines = [e for e in ("sqlite", "postgres") if load(f"{e}-lookup/summary.json")]
lookup = {e: load(f"{e}-lookup/summary.json") for e in engines}
mixed = {e: load(f"{e}-lookup/mixed.json") for e in engines}
upload = {(e, b): load(f"{e}-upload-{b}/upload.json") for e in engines for b in ("current", "baseline")}
names = {"health": "`/_health` (ceiling)", "organization": "`Organization/{id}` read (second ceiling)",
         "read-only": "read-only lookup (the child's LA)", "audited-patient": "audited `patient:identifier` + `_include`",
         "audited-subject": "audited `subject:identifier`", "audited-patient+analysed": "audited `patient`, after a hand-run ANALYZE",
         "audited-subject+analysed": "audited `subject`, after a hand-run ANALYZE"}
print("\n## Lookups (req/s; fraction of that engine's `/_health`)\n")
print("| mode | " + " | ".join(engines) + (" | PostgreSQL ÷ SQLite |" if len(engines) == 2 else " |"))
print("|---" * (len(engines) + 1 + (len(engines) == 2)) + "|")
for mode in names:
    cells, rates = [], []
    for e in engines:
        m = lookup[e]["modes"].get(mode)
        ceiling = lookup[e]["modes"]["health"]["rps"]
        rates.append(m["rps"] if m else None)
        cells.append(f"{m['rps']:,} ({m['rps'] / ceiling:.3f}), p99 {m['p99']} ms" if m else "-")
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
print("\n## Audited lookups during a 100,000-plan upload (16 clients)\n")
print("| engine | quiet p50 / p99 ms | during p50 / p99 ms | p99 during ÷ quiet | errors | upload s |")
print("|---|---|---|---|---|---|")
for e in engines:
    m = mixed[e]
    if m:
        q, d = m["quiet"], m["during"]
        print(f"| {e} | {q['p50_ms']:.1f} / {q['p99_ms']:.1f} | {d['p50_ms']:.1f} / {d['p99_ms']:.1f} | "
              f"{d['p99_ms'] / q['p99_ms']:.2f} | {q['errors'] + d['errors']:.0f} | {m['upload_s']:.1f} |")
print(f"\n## 100,000-plan upload over HTTP (s; this build against {baseline})\n")
print(f"| engine | this build, first | same file again | {baseline}, first | {baseline}, again | speed-up (first) | server peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
for e in engines:
    c, b = upload[(e, "current")], upload[(e, "baseline")]
    if c:
        bf = f"{b['seconds']['first']:.1f}" if b else "-"
        ba = f"{b['seconds']['again']:.1f}" if b else "-"
        speed = f"{b['seconds']['first'] / c['seconds']['first']:.2f}×" if b else "-"
        print(f"| {e} | {c['seconds']['first']:.1f} | {c['seconds']['again']:.1f} | {bf} | {ba} | {speed} | {c['peak_rss_kib'] / 1024:.0f} |")
PY
