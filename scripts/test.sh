#!/usr/bin/env bash
# Every test of the workspace: the unit and integration tests under cargo-nextest, each with a
# time limit (.config/nextest.toml), then the documentation examples.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${NEXTEST_PROFILE:-default}"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --profile "$profile"
else
    echo "cargo-nextest is not installed (cargo install cargo-nextest --locked);" >&2
    echo "running the tests with cargo test, without per-test time limits" >&2
    cargo test --workspace --all-targets
fi
# Documentation examples: nextest does not run them. One limit for all of them.
timeout --kill-after=10s 20m cargo test --workspace --doc
