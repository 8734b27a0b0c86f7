#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build Bilan (needs Rust via rustup).
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
command -v cargo >/dev/null || { echo "Rust est requis : installez-le avec rustup (https://rustup.rs) puis relancez." >&2; exit 1; }
