#!/usr/bin/env bash
# Real FHIR clients against a throw-away sandbox server (issue #14), as a new integrator would
# use them: fhirpy (PyPI) and fhir-kit-client (npm) call the server, every distinct resource
# they receive is validated with @medplum/core's validateResource (on Node 22, the `node`
# package from npm), and headless Chromium (Debian's package) opens a page served from another
# origin that reads the CapabilityStatement and runs a lookup with a bearer token (CORS).
#
#   bash .ci/clients.sh [path/to/cpis]      (from the repository root)
#
# Loopback only; exits non-zero on any client error or invalid resource.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cpis="${1:-$root/target/debug/cpis}"
cpis="$(cd "$(dirname "$cpis")" && pwd)/$(basename "$cpis")"
work="${CARGO_TARGET_DIR:-$root/target}"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
page_port=$(free_port)

# The clients, pinned: a venv for fhirpy, an npm prefix for fhir-kit-client, @medplum/core and
# Node 22; Chromium from Debian's packages.
# shellcheck source=venv.sh
source "$here/venv.sh"
ensure_venv "$work/clients-venv" "$here/clients/requirements.txt"
node_dir="$work/clients-node"
ensure_node_packages "$here/clients" "$node_dir"
node22="$node_dir/node_modules/.bin/node"
echo "clients: fhirpy $("$work/clients-venv/bin/python" -c 'import importlib.metadata as m; print(m.version("fhirpy"))'), node $("$node22" --version)"
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

export CPIS_CORS_ORIGINS="http://127.0.0.1:$page_port"
# shellcheck source=sandbox_server.sh
source "$here/sandbox_server.sh"
start_sandbox_server "$cpis" "$port" clients
page_pid=""
trap 'kill $page_pid 2>/dev/null || true; stop_sandbox_server' EXIT INT TERM

health=$("$cpis" token --role health-care --org RJ1 --name "Dr Jane Smith" --job-role "Staff Nurse")
social=$("$cpis" token --role social-care --org E09000030)
ops=$("$cpis" token --role operations --org X26)
received="$tmp/received"
status=0

echo "== fhirpy"
"$work/clients-venv/bin/python" "$here/clients/fhirpy_check.py" "$base/FHIR/R4" "$health" "$social" "$ops" "$received" || status=1

echo "== fhir-kit-client"
"$node22" "$node_dir/fhirkit_check.mjs" "$base/FHIR/R4" "$health" "$social" "$ops" "$received" || status=1

echo "== @medplum/core validateResource on every resource received"
"$node22" "$node_dir/medplum_validate.mjs" "$received" || status=1

echo "== a browser page on another origin (headless Chromium)"
python3 -m http.server "$page_port" --bind 127.0.0.1 --directory "$here/clients" >/dev/null 2>&1 &
page_pid=$!
for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$page_port/cors.html" 2>/dev/null && break; sleep 0.1; done
page="http://127.0.0.1:$page_port/cors.html?base=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$base/FHIR/R4")&token=$health"
dom=$(timeout 120 chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --virtual-time-budget=20000 --dump-dom "$page" 2>/dev/null || true)
result=$(printf '%s' "$dom" | sed -n 's/.*<pre id="result">\([^<]*\)<\/pre>.*/\1/p')
echo "browser: ${result:-no result}"
[[ "$result" == PASS* ]] || status=1

if [[ "$status" != 0 ]]; then
    echo "clients: failures; the server log ends:" >&2
    tail -n 30 "$tmp/server.log" >&2
fi
exit "$status"
