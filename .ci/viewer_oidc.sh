#!/usr/bin/env bash
# The viewer's sign-in through a real OpenID Connect provider, in a real browser (issue #27,
# acceptance point 2; called by .ci/viewer_browser.sh): oidc-provider (npm, pinned, as
# .ci/oidc.sh runs it) on loopback with its own login and consent pages, and two cpis servers
# signing in through it with the authorization code flow and PKCE (S256) — one as a
# client_secret_basic client reading Keycloak-shaped claims, one as a private_key_jwt client
# reading NHS CIS2-shaped claims. Debian's Chromium (Playwright) signs in on each, with
# JavaScript on and off, and looks a child up; the provider's request log shows what was sent.
#
#   bash .ci/viewer_oidc.sh [path/to/cpis]      (from the repository root)
#
# Screenshots go to $VIEWER_SCREENSHOTS (default target/viewer-screenshots), named oidc-*.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cpis="${1:-$root/target/debug/cpis}"
cpis="$(cd "$(dirname "$cpis")" && pwd)/$(basename "$cpis")"
work="${CARGO_TARGET_DIR:-$root/target}"
shots="${VIEWER_SCREENSHOTS:-$root/target/viewer-screenshots}"
node_dir="$work/oidc-node"

# shellcheck source=venv.sh
source "$here/venv.sh"
ensure_venv "$work/viewer-venv" "$here/viewer/requirements.txt"
ensure_node_packages "$here/oidc" "$node_dir"
if [[ ! -x /usr/bin/chromium ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
provider_port=$(free_port)
secret_port=$(free_port)
key_port=$(free_port)
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cpis-viewer-oidc.XXXXXX")"
pids=()
stop_all() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap stop_all EXIT INT TERM

echo "viewer-oidc: the provider on http://127.0.0.1:$provider_port"
"$node_dir/node_modules/.bin/node" "$node_dir/viewer_provider.mjs" "$provider_port" \
    "http://127.0.0.1:$secret_port/viewer/callback" "http://127.0.0.1:$key_port/viewer/callback" \
    "$tmp" >"$tmp/provider.log" 2>&1 &
pids+=($!)
for i in $(seq 1 100); do
    [[ -s "$tmp/ready" ]] && break
    if ! kill -0 "${pids[0]}" 2>/dev/null || [[ "$i" == 100 ]]; then
        echo "viewer-oidc: the provider did not start; its log:" >&2
        cat "$tmp/provider.log" >&2
        exit 2
    fi
    sleep 0.1
done
issuer=$(cat "$tmp/ready")

# cpis <label> <port> <env…>: a throw-away sandbox server (fresh SQLite, the sandbox's children)
# whose viewer signs in through the provider.
start_cpis() {
    local label=$1 port=$2
    shift 2
    echo "viewer-oidc: cpis ($label) on http://127.0.0.1:$port"
    env -u CPIS_JWT_SECRET -u CPIS_JWT_PUBLIC_KEY_FILE -u CPIS_JWT_ALG -u CPIS_JWT_ISSUER -u CPIS_BASE_URL \
        CPIS_SANDBOX=1 CPIS_DATABASE_URL="sqlite://$tmp/$label.db" CPIS_BIND="127.0.0.1:$port" \
        CPIS_VIEWER_OIDC_ISSUER="$issuer" RUST_LOG=info "$@" \
        "$cpis" serve >"$tmp/$label.log" 2>&1 &
    pids+=($!)
    local pid=$!
    for i in $(seq 1 120); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/_health" 2>/dev/null && return 0
        if ! kill -0 "$pid" 2>/dev/null || [[ "$i" == 120 ]]; then
            echo "viewer-oidc: cpis ($label) did not become healthy; its log:" >&2
            cat "$tmp/$label.log" >&2
            exit 2
        fi
        sleep 0.5
    done
}

# client_secret_basic, claims where Keycloak puts them (docs/viewer.md's Keycloak example).
start_cpis secret "$secret_port" \
    CPIS_VIEWER_OIDC_CLIENT_ID=cpis-viewer CPIS_VIEWER_OIDC_CLIENT_SECRET=cpis-viewer-secret \
    CPIS_JWT_CLAIM_ROLE='$.realm_access.roles' CPIS_JWT_CLAIM_ORG=ods \
    CPIS_JWT_ROLE_MAP='cpis-clinician=health-care,cpis-social-worker=social-care'
# private_key_jwt, claims where NHS CIS2 puts them (docs/viewer.md's CIS2 example).
selected='$.nhsid_nrbac_roles[?@.person_roleid == $.selected_roleid]'
start_cpis key "$key_port" \
    CPIS_VIEWER_OIDC_CLIENT_ID=cpis-viewer-cis2 CPIS_VIEWER_OIDC_PRIVATE_KEY_FILE="$tmp/client-key.pem" \
    CPIS_VIEWER_OIDC_KEY_ID=viewer-key-1 CPIS_VIEWER_OIDC_SCOPES=nationalrbacaccess \
    CPIS_JWT_CLAIM_ROLE="$selected.role_code" CPIS_JWT_CLAIM_ORG="$selected.org_code" \
    CPIS_JWT_CLAIM_JOB_ROLE="$selected.role_name" \
    CPIS_JWT_ROLE_MAP='S8000:G8000:R8001=health-care,S0080:G0450:R9999=social-care'

mkdir -p "$shots"
# No __pycache__ beside the scripts (suite.py is imported).
export PYTHONDONTWRITEBYTECODE=1
status=0
timeout --kill-after=10 180 "$work/viewer-venv/bin/python" "$here/viewer/viewer_oidc_check.py" \
    "$issuer" "$tmp/requests.jsonl" "$shots" \
    "secret=http://127.0.0.1:$secret_port" "key=http://127.0.0.1:$key_port" || status=$?
if [[ "$status" != 0 ]]; then
    [[ "$status" == 124 ]] && echo "viewer-oidc: the browser suite took longer than 180 s" >&2
    for log in provider secret key; do
        echo "viewer-oidc: failures; the $log log ends:" >&2
        tail -n 20 "$tmp/$log.log" >&2
    done
fi
exit "$status"
