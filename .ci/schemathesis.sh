#!/usr/bin/env bash
# Hostile input at volume: schemathesis (from PyPI, pinned) generates requests from openapi.yaml
# against a throw-away sandbox server, once with a token of each role, bounded in time. Checks:
# no 5xx, every status is one the contract documents for that operation, and every documented
# response body conforms to its schema.
#
#   bash .ci/schemathesis.sh [path/to/cpis]      (from the repository root; default target/debug/cpis)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cpis="${1:-$root/target/debug/cpis}"
cpis="$(cd "$(dirname "$cpis")" && pwd)/$(basename "$cpis")"
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-60}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-15}

venv="${CARGO_TARGET_DIR:-$root/target}/schemathesis-venv"
# shellcheck source=venv.sh
source "$here/venv.sh"
ensure_venv "$venv" "$here/schemathesis-requirements.txt"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# shellcheck source=sandbox_server.sh
source "$here/sandbox_server.sh"
start_sandbox_server "$cpis" "$port" schemathesis

status=0
for role in ${SCHEMATHESIS_ROLES:-health-care social-care operations governance}; do
    case $role in
        health-care) token=$("$cpis" token --role health-care --org RJ1 --name "Dr Jane Smith" --job-role "Staff Nurse") ;;
        social-care) token=$("$cpis" token --role social-care --org E09000030) ;;
        operations) token=$("$cpis" token --role operations --org X26) ;;
        governance) token=$("$cpis" token --role governance --org X26 --name "Pat Officer" --job-role "Privacy Officer") ;;
    esac
    echo "== schemathesis as $role"
    # One worker: with two, CPython 3.11 sometimes fails inside schemathesis itself ("AST
    # constructor recursion depth mismatch" while compiling a generator), a flaky runtime error
    # that says nothing about the server.
    "$venv/bin/schemathesis" run "$root/openapi.yaml" --url "$base" \
        -H "Authorization: Bearer $token" \
        --checks not_a_server_error,status_code_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" \
        --seed 42 --workers 1 --suppress-health-check all --warnings off --no-color || status=1
done
if [[ "$status" != 0 ]]; then
    echo "schemathesis: failures; the server log ends:" >&2
    tail -n 30 "$tmp/server.log" >&2
fi
exit "$status"
