#!/usr/bin/env bash
# Runs every test of the workspace (unit, property and end-to-end).
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo test --workspace -j2 --locked
