#!/usr/bin/env bash
# Independent validation of the server's output: starts a throw-away sandbox server, mints
# tokens with `cpis token`, and validates sample responses with the `fhir.resources` R4B models
# (.ci/fhir_resources_check.py), installed from PyPI into a venv under the target directory.
#
#   bash .ci/fhir_resources_check.sh [path/to/cpis]      (from the repository root)
#
# The binary defaults to target/debug/cpis; it is not built here. The server gets a free
# 127.0.0.1 port and a fresh SQLite file in a temporary directory, and is always stopped.
# Exits non-zero if any response is not valid FHIR R4B (or the server does not start).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

cpis="${1:-$root/target/debug/cpis}"
if [[ ! -x "$cpis" ]]; then
    echo "fhir_resources_check: no cpis binary at $cpis (build it first, or pass its path)" >&2
    exit 2
fi
cpis="$(cd "$(dirname "$cpis")" && pwd)/$(basename "$cpis")"

# The validator, pinned (fhir.resources 8.x has the R4B models under fhir.resources.R4B).
venv="${CARGO_TARGET_DIR:-$root/target}/fhir-resources-venv"
# shellcheck source=venv.sh
source "$here/venv.sh"
ensure_venv "$venv" "$here/fhir-resources-requirements.txt"
echo "fhir_resources_check: $("$venv/bin/python" -c 'import fhir.resources as f; print("fhir.resources", f.__version__)')"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# shellcheck source=sandbox_server.sh
source "$here/sandbox_server.sh"
start_sandbox_server "$cpis" "$port" fhir_resources_check

set +e
CPIS_BASE="$base/FHIR/R4" \
    HEALTH_TOKEN="$("$cpis" token --role health-care --org RJ1 --name "Dr Jane Smith" --job-role "Staff Nurse")" \
    SOCIAL_TOKEN="$("$cpis" token --role social-care --org E09000030)" \
    OPS_TOKEN="$("$cpis" token --role operations --org X26)" \
    "$venv/bin/python" "$here/fhir_resources_check.py"
status=$?
set -e
if [[ "$status" != 0 ]]; then
    echo "fhir_resources_check: failed ($status); the server log ends:" >&2
    tail -n 30 "$tmp/server.log" >&2
fi
exit "$status"
