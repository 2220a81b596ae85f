#!/usr/bin/env bash
# Database outage trial (issue #10): PostgreSQL is stopped for ~6 s under audited lookups and
# started again; one server process throughout. See benches/outage.py. Needs root (it stops and
# starts the local cluster). Bounded (about 20 s), loopback only.
#
#   DB=postgres://postgres:postgres@127.0.0.1/postgres bash benches/outage.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${DB:?set DB to a postgres:// URL of the local cluster}
PG_VERSION=${PG_VERSION:-$(ls /usr/lib/postgresql | sort -n | tail -n 1)}
BIN=${BIN:-target/release/cpis}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin cpis
python3 benches/outage.py "$BIN" "$DB" "pg_ctlcluster $PG_VERSION main stop -m fast" "pg_ctlcluster $PG_VERSION main start"
