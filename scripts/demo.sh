#!/usr/bin/env bash
# Main job: the sync server on embedded SQLite with the demo territory, and the
# inspector's app window connected to it (log in as inspecteur1 / bilan-demo).
# Usage: bash scripts/demo.sh    (closing the window stops everything)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --workspace -j2 --release --locked
DATA=${BILAN_DATA_DIR:-bilan-data}
ADDR=${BILAN_LISTEN:-127.0.0.1:8080}
./target/release/bilan-server --data-dir "$DATA" demo
./target/release/bilan-server --data-dir "$DATA" --listen "$ADDR" serve &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do curl -fsS "http://$ADDR/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "Serveur : http://$ADDR — connectez-vous dans l'application avec inspecteur1 / bilan-demo."
BILAN_SERVER_URL="http://$ADDR" BILAN_DEVICE_DIR=${BILAN_DEVICE_DIR:-bilan-app-data} ./target/release/bilan-app
