#!/usr/bin/env bash
# Runs every test: unit, component, property and end-to-end tests of the
# workspace, then the desktop end-to-end test (real window under Xvfb), then
# the browser tests of the review pages (playwright-core + Debian's chromium).
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo test --workspace -j2 --locked
cargo build --workspace -j2 --locked
bash tests/desktop/e2e.sh
(cd tests/browser && npm ci --no-audit --no-fund && npm test)
