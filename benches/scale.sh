#!/usr/bin/env bash
# Scale (issue #16): the lookup figures on a register of SMALL plans and again on one of LARGE
# plans (default 100,000 and 1,000,000 of 150 LAs), each a fresh database filled through the API
# (benches/lookup.sh seeds it with batch uploads), the large one also holding AUDIT_FILL recorded
# accesses (default 5,000,000) before it is measured. Prints each mode's req/s at both sizes and
# large ÷ small (from one run), then how the database grows: bytes per plan of the register's
# tables and bytes per access of the audit tables, each with its indexes. Writes $WORK/scale.md.
# Bounded: each wrk run stops by itself, the fill runs in rounds until the count is reached, the
# servers are stopped on exit. Loopback only.
#
#   bash benches/scale.sh                                        # SQLite
#   PG_URL=postgres://…/postgres?… bash benches/scale.sh         # PostgreSQL (cpis_scale_* databases)
#   SMALL=20000 LARGE=200000 AUDIT_FILL=500000 bash benches/scale.sh   # a quicker look
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-100000}
LARGE=${LARGE:-1000000}
AUDIT_FILL=${AUDIT_FILL:-5000000}
LAS=${LAS:-150}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
MODES="health audited-patient audited-subject"

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis

# A fresh database named $1: its URL.
fresh_db() {
    if [ -n "${PG_URL:-}" ]; then
        psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >&2
        python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$1"
    else
        rm -f "$WORK/$1.db"*
        echo "sqlite://$WORK/$1.db"
    fi
}

# Bytes of each table with its indexes (and TOAST on PostgreSQL): "table bytes" lines.
table_bytes() { # $1 = database URL
    case "$1" in
        sqlite://*) python3 - "${1#sqlite://}" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
owner = dict(c.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
sizes = {}
for name, size in c.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
    table = owner.get(name, name)
    sizes[table] = sizes.get(table, 0) + size
for table, size in sorted(sizes.items()):
    print(table, size)
print("recorded-accesses", c.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0])
PY
        ;;
        *) psql -tA -F' ' "$1" -c "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY relname" \
               -c "SELECT 'recorded-accesses', COUNT(*) FROM audit_events" ;;
    esac
}

ENGINE=sqlite
[ -z "${PG_URL:-}" ] || ENGINE=postgres
for size in "$SMALL" "$LARGE"; do
    fill=
    [ "$size" != "$LARGE" ] || fill=$AUDIT_FILL
    echo "=== $ENGINE: $size plans${fill:+, $fill accesses recorded first}"
    DB=$(fresh_db "cpis_scale_$size")
    rm -f "$WORK/$size/nhs.txt" # lookup.sh seeds only when this list is absent
    WORK="$WORK/$size" DB="$DB" PLANS="$size" LAS="$LAS" MODES="$MODES" AUDIT_FILL="$fill" \
        SKIP_ANALYSED=1 SKIP_BUILD=1 bash benches/lookup.sh
    table_bytes "$DB" > "$WORK/$size/tables.txt"
    [ -z "${PG_URL:-}" ] || [ "$size" = "$LARGE" ] || psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS cpis_scale_$size" >&2
done

python3 - "$WORK" "$SMALL" "$LARGE" "$ENGINE" <<'PY' | tee "$WORK/scale.md"
import json, sys
work, small, large, engine = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runs = {n: json.load(open(f"{work}/{n}/summary.json")) for n in (small, large)}
print(f"\n{engine}: lookups at {int(small):,} and {int(large):,} plans (one run)\n")
print(f"| mode | {int(small):,} plans req/s | {int(large):,} plans req/s | large ÷ small | p99 ms (small → large) |")
print("|---|---|---|---|---|")
for mode in runs[small]["modes"]:
    a, b = runs[small]["modes"][mode], runs[large]["modes"].get(mode)
    if b:
        print(f"| {mode} | {a['rps']} | {b['rps']} | {b['rps'] / a['rps']:.2f} | {a['p99']} → {b['p99']} |")
tables = {}
for line in open(f"{work}/{large}/tables.txt"):
    name, size = line.split()
    tables[name] = int(size)
plans = int(large)
recorded = tables.pop("recorded-accesses", 0)


def growth(kind, names, per, count):
    """A table of `names`' bytes, and per `per` (`count` of them), with their total."""
    print(f"\n| {kind} table | bytes | per {per} |")
    print("|---|---|---|")
    for t in names:
        if t in tables:
            print(f"| {t} | {tables[t]:,} | {tables[t] / count:,.0f} |")
    total = sum(tables.get(t, 0) for t in names)
    print(f"| {kind}, all | {total:,} | {total / count:,.0f} |")


print(f"\nGrowth at {plans:,} plans and {recorded:,} recorded accesses (tables with their indexes):")
growth("register", ["resources", "resource_versions", "search_tokens", "search_dates",
                    "unique_identifiers"], "plan", plans)
if recorded:
    growth("audit", ["audit_events", "audit_las", "notification_outbox"], "access", recorded)
PY
