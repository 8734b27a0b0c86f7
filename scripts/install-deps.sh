#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build and test Bilan
# (Rust itself comes from rustup): C toolchain, the WebKitGTK stack of the
# Dioxus desktop window, and for the desktop end-to-end test a virtual X
# server, xdotool, ImageMagick and the desktop portal (file chooser); for the
# browser tests of the review pages, Debian's chromium and Node.js; for the
# photo-store tests, an S3-compatible server (moto, from PyPI); for the
# PostgreSQL backend's tests, Debian's postgresql (the tests start their own
# throwaway clusters, never the system one); for the PDF report test,
# poppler-utils (pdftotext, pdftoppm).
# Packages are installed without their recommendations, so the ones WebKitGTK
# cannot start without are named: libgl1-mesa-dri (with no Mesa driver WebKit
# aborts with "Could not create surfaceless EGL display"), fonts and xauth.
set -euo pipefail
pkgs=(build-essential pkg-config curl libwebkit2gtk-4.1-dev libgtk-3-dev libxdo-dev libsoup-3.0-dev
  libjavascriptcoregtk-4.1-dev libssl-dev xvfb xdotool imagemagick x11-utils dbus dbus-x11
  xdg-desktop-portal xdg-desktop-portal-gtk chromium libgl1-mesa-dri fonts-dejavu-core librsvg2-common xauth
  postgresql poppler-utils)
command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "Rust est requis : installez-le avec rustup (https://rustup.rs) puis relancez." >&2; exit 1; }
# The S3-compatible store of the photo-store tests: moto's server, from PyPI.
python3 -c "import moto.server, flask_cors" 2>/dev/null || python3 -m pip install -q 'moto[server]'
