#!/usr/bin/env bash
# Desktop end-to-end: the real app window under Xvfb against a real server
# seeded with the demo. xdotool logs in, rates a component, kills the app with
# SIGKILL right after the rating is saved, relaunches it, adds a finding with a
# photo (through the GTK file chooser of the desktop portal) and syncs; then the
# server's API must hold all of it. Screenshots of every screen go to
# target/screens/. Coordinates are those of the 480x900 window at (0,0) with
# no window manager.
# Usage: bash tests/desktop/e2e.sh   (after cargo build --workspace)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$ROOT/target/debug
SHOTS=$ROOT/target/screens
WORK=$(mktemp -d)
mkdir -p "$SHOTS"
export DISPLAY=:${BILAN_E2E_DISPLAY:-97}
# A UTF-8 locale whatever the caller has (CI runs with none): under the C
# locale xdotool cannot read the window title "Bilan — inspection BSI".
export LC_ALL=C.UTF-8
PORT=${BILAN_E2E_PORT:-18297}
URL=http://127.0.0.1:$PORT
DEV=$WORK/device
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# On failure, what the app and the server printed, so that a CI log tells why.
fail() {
  echo "ÉCHEC : $*" >&2
  # What was running and what the screen showed: tells a slow start from a hang.
  ps -eo pid,etimes,time,args | grep -E 'bilan|portal|WebKit|dbus' | grep -v grep >&2 || true
  import -window root "$SHOTS/echec.png" 2>/dev/null && echo "capture : target/screens/echec.png" >&2
  for log in app server; do
    [ -f "$WORK/$log.log" ] && { echo "--- fin de $log.log ---" >&2; tail -n 40 "$WORK/$log.log" >&2; }
  done
  exit 1
}
# Waits until a command succeeds (up to $3 seconds, 20 by default): readiness by
# condition, not by guess.
wait_for() {
  local i tries=$(( ${3:-20} * 5 ))
  for i in $(seq 1 "$tries"); do if eval "$1" >/dev/null 2>&1; then return 0; fi; sleep 0.2; done
  fail "$2"
}
shot() { import -window root "$SHOTS/$1.png"; echo "capture : target/screens/$1.png"; }
click() { xdotool mousemove "$1" "$2" click 1; sleep 0.6; }
typ() { xdotool type --delay 25 "$1"; }
device() { "$BIN/bilan-device" --data "$DEV" "$@"; }
# Whole output first, then grep (grep -q would close the pipe early).
status_has() { device status >"$WORK/status.txt" 2>&1 && grep -q "$1" "$WORK/status.txt"; }
show_has() { device show "$INSPECTION" >"$WORK/show.json" 2>&1 && grep -q "$1" "$WORK/show.json"; }

Xvfb "$DISPLAY" -screen 0 1280x1024x24 -nolisten tcp >/dev/null 2>&1 & PIDS+=($!); disown
wait_for "xdpyinfo" "Xvfb ne démarre pas"
"$BIN/bilan-server" --data-dir "$WORK/server" demo >/dev/null
"$BIN/bilan-server" --data-dir "$WORK/server" --listen "127.0.0.1:$PORT" serve >"$WORK/server.log" 2>&1 & PIDS+=($!); disown
wait_for "curl -fsS $URL/healthz" "le serveur ne répond pas"
convert -size 1600x1200 gradient:steelblue-sienna "$WORK/fissure.jpg"

launch() {
  export BILAN_WINDOW_SIZE=${BILAN_WINDOW_SIZE:-480x900}
  cat >"$WORK/app.sh" <<INNER
#!/bin/bash
# The portals own their bus names before the app starts: otherwise the app's
# first portal call races them through D-Bus activation (a second portal
# process), which stalled the app's start on a cold CI machine. No
# accessibility bus either: one daemon fewer to start and wait for.
export NO_AT_BRIDGE=1
/usr/libexec/xdg-desktop-portal-gtk >/dev/null 2>&1 &
/usr/libexec/xdg-desktop-portal >/dev/null 2>&1 &
owned() { dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
  org.freedesktop.DBus.NameHasOwner "string:\$1" 2>/dev/null | grep -q 'boolean true'; }
for i in \$(seq 1 300); do
  owned org.freedesktop.portal.Desktop && owned org.freedesktop.impl.portal.desktop.gtk && break
  sleep 0.2
done
echo "portails prêts en \$SECONDS s"
exec env BILAN_DEVICE_DIR=$DEV BILAN_SERVER_URL=$URL BILAN_WINDOW_SIZE=\${BILAN_WINDOW_SIZE:-480x900} $BIN/bilan-app
INNER
  chmod +x "$WORK/app.sh"
  dbus-run-session -- "$WORK/app.sh" >"$WORK/app.log" 2>&1 & PIDS+=($!); disown
  # A cold machine (first WebKit start, portals) can take far longer than a warm one.
  wait_for "xdotool search --onlyvisible --name 'Bilan'" "la fenêtre de l'application n'apparaît pas" 120
  sleep 1.5
}

launch
shot 01-connexion
click 240 228; typ inspecteur1
click 240 315; typ bilan-demo
click 86 468
wait_for "status_has 'Dernière erreur : aucune'" "connexion ou première synchro impossible"
wait_for "[ \$(device complexes | wc -l) -ge 20 ]" "données de référence absentes"
sleep 1; shot 02-territoire
click 200 264; shot 03-ensemble
click 151 273
wait_for "[ \$(device inspections | wc -l) -ge 1 ]" "l'inspection n'a pas été créée"
INSPECTION=$(device inspections | cut -f1 | sed -n 1p)
shot 04-inspection
click 232 481
wait_for "show_has '\"rating\": \"D\"'" "la cote n'a pas été enregistrée"
shot 05-cote-enregistree
# SIGKILL right after the rating shows as saved, then relaunch.
pkill -9 -f "$BIN/bilan-app" || true
wait_for "! pgrep -f $BIN/bilan-app" "l'application ne s'arrête pas"
show_has '"rating": "D"' || fail "cote perdue après kill -9"
launch
shot 06-relance
click 200 264
click 240 386
shot 07-inspection-relancee
click 110 186
shot 08-nouveau-constat
click 240 255; typ "Fissure dans la fondation"
click 240 342; typ "Coin nord-est"
click 290 430
click 75 552
wait_for "show_has '\"title\": \"Fissure dans la fondation\"'" "le constat n'a pas été enregistré"
shot 09-constat
xdotool key Home; sleep 0.4
WINDOWS=$(xdotool search --onlyvisible --name '' 2>/dev/null | wc -l)
click 80 376
wait_for "[ \$(xdotool search --onlyvisible --name '' 2>/dev/null | wc -l) -gt $WINDOWS ]" "le sélecteur de fichiers ne s'ouvre pas"
sleep 1.5; shot 10-selecteur-photo
xdotool key ctrl+l; sleep 0.3; typ "$WORK/fissure.jpg"; sleep 0.3; xdotool key Return
wait_for "show_has '\"mime\": \"image/jpeg\"'" "la photo n'a pas été jointe"
sleep 1; shot 11-photo-jointe
click 326 868
wait_for "status_has 'Modifications en attente : 0'" "la synchro n'a pas tout envoyé"
wait_for "status_has 'Photos en attente : 0'" "la photo n'a pas été envoyée"
sleep 1; shot 12-synchronise

# The server holds the rating, the finding and the photo.
TOKEN=$(curl -fsS -X POST "$URL/api/v1/login" -H 'content-type: application/json' \
  -d '{"username":"responsable","password":"bilan-demo"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -fsS -H "authorization: Bearer $TOKEN" "$URL/api/v1/inspections/$INSPECTION" > "$WORK/insp.json"
python3 - "$WORK/insp.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["inspection"]
assert d["components"]["A1010"]["rating"] == "D", d["components"]["A1010"]
f = [f for f in d["findings"] if f["title"] == "Fissure dans la fondation"]
assert len(f) == 1 and len(f[0]["photos"]) == 1, f
print("serveur : cote A1010 = D, constat avec 1 photo", f[0]["photos"][0]["hash"])
open(sys.argv[1] + ".hash", "w").write(f[0]["photos"][0]["hash"])
PY
HASH=$(cat "$WORK/insp.json.hash")
curl -fsS -H "authorization: Bearer $TOKEN" "$URL/api/v1/photos/$HASH" -o "$WORK/back.jpg"
cmp -s "$WORK/back.jpg" "$WORK/fissure.jpg" || fail "la photo du serveur diffère de l'originale"
# The phone layout (360 px wide) and the tablet layout (1024 px), for the eye.
for size in 360x740 1024x768; do
  pkill -9 -f "$BIN/bilan-app" || true
  wait_for "! pgrep -f $BIN/bilan-app" "l'application ne s'arrête pas"
  BILAN_WINDOW_SIZE=$size launch
  shot "13-territoire-$size"
done
echo "1 passed, 0 failed"
