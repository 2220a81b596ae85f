# Shell helpers the bench scripts share (sourced, not run).

# The database bytes the audit tables hold (accesses, the LAs they concern, notifications):
# SQLite's dbstat pages, or PostgreSQL's relation sizes with their indexes and TOAST.
audit_bytes() { # $1 = database URL
    case "$1" in
        sqlite://*) python3 - "${1#sqlite://}" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
tables = ("audit_events", "audit_las", "notification_outbox")
try:
    names = [r[0] for r in c.execute(
        "SELECT name FROM sqlite_master WHERE tbl_name IN (%s)" % ",".join("?" * len(tables)), tables)]
    print(c.execute("SELECT SUM(pgsize) FROM dbstat WHERE name IN (%s)" % ",".join("?" * len(names)),
                    names).fetchone()[0] or 0)
except sqlite3.OperationalError:  # no dbstat: the whole file
    print(c.execute("PRAGMA page_count").fetchone()[0] * c.execute("PRAGMA page_size").fetchone()[0])
PY
        ;;
        *) psql -tA "$1" -c "SELECT pg_total_relation_size('audit_events') + pg_total_relation_size('audit_las') + pg_total_relation_size('notification_outbox')" ;;
    esac
}

# A process's peak resident set (VmHWM), KiB.
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# Waits until the server on $1 answers /_health (10 s at most); with $2, only while that
# process (the server started) is alive and only if it is the one listening: another server
# left on the port (which the new one then fails to bind) must not be measured.
await_health() {
    for _ in $(seq 1 100); do
        [ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || { echo "the server (pid $2) exited" >&2; return 1; }
        if curl -sf "http://127.0.0.1:$1/_health" >/dev/null; then
            [ -z "${2:-}" ] || ss -ltnpH "sport = :$1" | grep -q "pid=$2," ||
                { echo "another process listens on port $1" >&2; return 1; }
            return
        fi
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2; return 1
}

# How many AuditEvents the server at base URL $1 holds (asked as operations, token $2).
audit_total() {
    curl -sf -H "Authorization: Bearer $2" "$1/AuditEvent?_count=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}

# Registers LA $3 (ODS code) at base URL $1 as operations (token $2); an LA already there is left.
register_la() {
    curl -s -o /dev/null -X POST "$1/Organization" -H "Authorization: Bearer $2" -H 'Content-Type: application/fhir+json' \
        -d "{\"resourceType\":\"Organization\",\"identifier\":[{\"system\":\"https://fhir.nhs.uk/Id/ods-organization-code\",\"value\":\"$3\"}],\"active\":true,\"name\":\"Bench LA $3\",\"telecom\":[{\"system\":\"phone\",\"value\":\"020 7000 0001\",\"use\":\"work\"},{\"system\":\"phone\",\"value\":\"020 7000 0999\",\"use\":\"mobile\"}]}"
}
