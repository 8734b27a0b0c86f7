#!/usr/bin/env bash
# Runs every test: unit, component, property and end-to-end tests of the
# workspace, then the desktop end-to-end test (real window under Xvfb), then
# the browser tests of the review pages (playwright-core + Debian's chromium).
# The sync benchmark runs once at a small size as a smoke test.
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo test --workspace -j2 --locked
# The full-disk tests mount a tmpfs: run them where that is allowed (root), and
# always under CI, where not being able to set up the fault is a failure.
if [ "${CI:-}" = true ] || [ "$(id -u)" = 0 ]; then
  cargo test -p bilan-e2e --test disk_full -j2 --locked -- --ignored
else
  echo "disk_full: skipped (mounting a tmpfs needs root); run it as root with --ignored" >&2
fi
cargo build --workspace -j2 --locked
# The end-to-end suite once more with every server on PostgreSQL (one test
# body, the backend as parameter: tests/src/backend.rs). Left out: the tests
# that start their own clusters (storage_backends and postgres_e2e cover both
# backends already; migrate_to_postgres moves one to the other), those
# without a server (cli, fuzz), and the one of SQLite's own files
# (disk_full).
on_both=(access annotation backup bsi_over_time compaction convergence faults injection logs photo_store progress recovery refusals review_pages slow_link sync_e2e)
target/debug/e2e-on-postgres cargo test -p bilan-e2e -j2 --locked "${on_both[@]/#/--test=}"
# Sync benchmark smoke run: every scenario at a small size, figures printed, no timing asserted.
target/debug/sync-bench 20 --devices 3 --per-device 2 --photos 2 --photo-mb 1 --slow-photos 1
target/debug/sync-bench 20 --devices 3 --per-device 2 --photos 2 --photo-mb 1 --slow-photos 0 --postgres
bash tests/desktop/e2e.sh
(cd tests/browser && npm ci --no-audit --no-fund && npm test)
