#!/usr/bin/env bash
# The clinician viewer in a real browser (issue #27, acceptance point 2): Debian's Chromium
# driven by Playwright for Python against a throw-away sandbox server, every journey with
# JavaScript on and again off (sign in, Find a child with an unscheduled and a planned visit, an
# invalid NHS number and no answer, a child without a plan, sign out, the 403 page for another
# role), axe-core with the WCAG 2.2 AA tags on every page (0 violations), one keyboard-only pass
# with focus visible, and a full-page screenshot of each page. Then .ci/viewer_oidc.sh: sign-in
# through a real OpenID Connect provider (authorization code + PKCE, client_secret_basic and
# private_key_jwt) and a lookup, in the same browser.
#
#   bash .ci/viewer_browser.sh [path/to/cpis]      (from the repository root)
#
# Screenshots go to $VIEWER_SCREENSHOTS (default target/viewer-screenshots); with
# VIEWER_README_SCREENSHOT=1 the result page is also written to docs/viewer.png. Loopback only;
# exits non-zero on any failed check or axe violation.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cpis="${1:-$root/target/debug/cpis}"
cpis="$(cd "$(dirname "$cpis")" && pwd)/$(basename "$cpis")"
work="${CARGO_TARGET_DIR:-$root/target}"
shots="${VIEWER_SCREENSHOTS:-$root/target/viewer-screenshots}"
readme_shot=""
if [[ "${VIEWER_README_SCREENSHOT:-}" == 1 ]]; then
    readme_shot="$root/docs/viewer.png"
fi

# Playwright and axe-playwright-python, pinned, in a venv; Chromium from Debian's packages.
# shellcheck source=venv.sh
source "$here/venv.sh"
ensure_venv "$work/viewer-venv" "$here/viewer/requirements.txt"
if [[ ! -x /usr/bin/chromium ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck source=sandbox_server.sh
source "$here/sandbox_server.sh"
start_sandbox_server "$cpis" "$port" viewer

rm -rf "$shots"
# No __pycache__ beside the scripts (suite.py is imported).
export PYTHONDONTWRITEBYTECODE=1
mkdir -p "$shots"
status=0
# Each page action has its own timeout (10 s); the whole suite is bounded here too.
timeout --kill-after=10 240 "$work/viewer-venv/bin/python" "$here/viewer/viewer_check.py" "$base" "$shots" "$readme_shot" || status=$?
if [[ "$status" != 0 ]]; then
    [[ "$status" == 124 ]] && echo "viewer: the browser suite took longer than 240 s" >&2
    echo "viewer: failures; the server log ends:" >&2
    tail -n 30 "$tmp/server.log" >&2
fi
oidc_status=0
VIEWER_SCREENSHOTS="$shots" bash "$here/viewer_oidc.sh" "$cpis" || oidc_status=$?
[[ "$status" != 0 ]] || status=$oidc_status
exit "$status"
