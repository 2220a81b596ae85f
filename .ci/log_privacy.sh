#!/usr/bin/env bash
# Log privacy (issue #15): runs the whole integration suite with its logs kept (the in-process
# servers at debug level as JSON, and every `cpis serve` process a test starts), then fails if
# any line holds an NHS number, a name or token from the tests' tokens, any bearer token, or a
# request body (.ci/log_privacy.py). On SQLite; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
log="$PWD/target/suite-log.jsonl"
mkdir -p target
rm -f "$log" "$log.secrets" "$log.processes"
touch "$log.processes"
CPIS_TEST_LOG_FILE="$log" RUST_LOG=debug cargo test --test api -q
python3 .ci/log_privacy.py "$log" "$log.processes" --secrets "$log.secrets"
