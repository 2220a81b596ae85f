# Sourced by postman/run.sh and .ci/fhir_resources_check.sh: starts a throw-away sandbox
# server (fixed development secret, fresh SQLite file in a temporary directory) and stops it,
# and removes its directory, when the calling script exits.
#
#   start_sandbox_server <cpis binary> <port> <label>
#
# Sets `base` (http://127.0.0.1:<port>), `tmp` and `server_pid`; exits 2 with the server's log
# if it does not become healthy within 60 s.

server_pid=""

stop_sandbox_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}

start_sandbox_server() {
    local cpis=$1 port=$2 label=$3
    base="http://127.0.0.1:$port"
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/cpis-$label.XXXXXX")"
    trap stop_sandbox_server EXIT INT TERM
    export CPIS_SANDBOX=1
    # The sandbox's fixed development secret: no key from the caller's shell.
    unset CPIS_JWT_SECRET CPIS_JWT_PUBLIC_KEY_FILE CPIS_JWT_ALG CPIS_JWT_ISSUER CPIS_BASE_URL || true
    echo "$label: starting $cpis on $base (database $tmp/cpis.db)"
    CPIS_DATABASE_URL="sqlite://$tmp/cpis.db" CPIS_BIND="127.0.0.1:$port" \
        "$cpis" serve >"$tmp/server.log" 2>&1 &
    server_pid=$!
    for i in $(seq 1 120); do
        if curl -fsS -o /dev/null "$base/_health" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null || [[ "$i" == 120 ]]; then
            echo "$label: the server did not become healthy; its log:" >&2
            cat "$tmp/server.log" >&2
            exit 2
        fi
        sleep 0.5
    done
}
