#!/usr/bin/env bash
# Runs the Postman collection against a throw-away sandbox server.
#
#   bash postman/run.sh [path/to/cpis]      (from the repository root)
#
# The binary defaults to target/release/cpis, else target/debug/cpis; it is not built here.
# A sandbox server (CPIS_SANDBOX=1: seeded LAs and plans, development JWT secret) is started on
# 127.0.0.1 with a fresh SQLite file in a temporary directory, tokens for the four callers are
# minted with `cpis token`, newman runs the collection, and the server is always stopped.
# The exit code is newman's. PORT (default 18080) and NEWMAN_ARGS may be set in the environment.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

cpis="${1:-}"
if [[ -z "$cpis" ]]; then
    if [[ -x "$root/target/release/cpis" ]]; then
        cpis="$root/target/release/cpis"
    else
        cpis="$root/target/debug/cpis"
    fi
fi
if [[ ! -x "$cpis" ]]; then
    echo "run.sh: no cpis binary at $cpis (build it first, or pass its path)" >&2
    exit 2
fi
cpis="$(cd "$(dirname "$cpis")" && pwd)/$(basename "$cpis")"

port="${PORT:-18080}"
base="http://127.0.0.1:$port"
if curl -fsS -o /dev/null "$base/_health" 2>/dev/null; then
    echo "run.sh: something already answers on $base; set PORT to a free port" >&2
    exit 2
fi

# shellcheck source=../.ci/sandbox_server.sh
source "$(dirname "${BASH_SOURCE[0]}")/../.ci/sandbox_server.sh"
start_sandbox_server "$cpis" "$port" postman

health_token="$("$cpis" token --role health-care --org RJ1 --name "Dr Jane Smith" --job-role "Staff Nurse")"
social_token="$("$cpis" token --role social-care --org E09000030)"
other_la_token="$("$cpis" token --role social-care --org E08000025)"
ops_token="$("$cpis" token --role operations --org X26)"
governance_token="$("$cpis" token --role governance --org X26 --name "Pat Officer" --job-role "Privacy Officer")"

if [[ -n "${NEWMAN:-}" ]]; then
    read -r -a newman <<<"$NEWMAN"
elif command -v newman >/dev/null 2>&1 && newman --version 2>/dev/null | grep -q '^6\.'; then
    newman=(newman)
else
    # newman 6 from the npm registry (npx installs it into its cache on first use).
    newman=(npx --yes newman@6)
fi

cd "$root"
set +e
# shellcheck disable=SC2086
"${newman[@]}" run postman/cpis.postman_collection.json \
    -e postman/cpis.postman_environment.json \
    --env-var "baseUrl=$base" \
    --env-var "healthToken=$health_token" \
    --env-var "socialToken=$social_token" \
    --env-var "otherLaToken=$other_la_token" \
    --env-var "opsToken=$ops_token" \
    --env-var "governanceToken=$governance_token" \
    ${NEWMAN_ARGS:-}
status=$?
set -e

if [[ "$status" != 0 ]]; then
    echo "run.sh: newman failed ($status); the server log is below" >&2
    tail -n 50 "$tmp/server.log" >&2
fi
exit "$status"
