#!/usr/bin/env bash
# A real OpenID Connect provider against cpis (issue #15): oidc-provider (npm) on loopback issues
# JWT access tokens; cpis finds its keys by discovery from CPIS_JWT_ISSUER, maps Keycloak-style
# claims, survives the provider going down and picks up a rotated key. See oidc/oidc_check.mjs.
#
#   bash .ci/oidc.sh [path/to/cpis]      (from the repository root)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cpis="${1:-$root/target/debug/cpis}"
cpis="$(cd "$(dirname "$cpis")" && pwd)/$(basename "$cpis")"
node_dir="${CARGO_TARGET_DIR:-$root/target}/oidc-node"
# shellcheck source=venv.sh
source "$here/venv.sh"
ensure_node_packages "$here/oidc" "$node_dir"
"$node_dir/node_modules/.bin/node" "$node_dir/oidc_check.mjs" "$cpis"
