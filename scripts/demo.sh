#!/usr/bin/env bash
# Main job: the sync server on embedded SQLite with the demo territory, and an
# inspector's device connected to it (the device CLI until the app's screens land).
# Usage: bash scripts/demo.sh    (Ctrl-C stops the server)
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
DEV=bilan-device-demo
./target/release/bilan-device --data "$DEV" login --server "http://$ADDR" --user inspecteur1 --password bilan-demo
./target/release/bilan-device --data "$DEV" complexes
echo
echo "Serveur : http://$ADDR — appareil de démonstration : ./target/release/bilan-device --data $DEV --help"
echo "Ctrl-C pour arrêter."
wait $SERVER
