#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, and open QuickMerge++ Studio on the
# bundled sample photo. Without a display it merges the sample with the CLI instead and says where
# the outputs went. Extra arguments go to qmpp-studio (e.g. a file to open).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec ./build/dev/app/studio/qmpp-studio "$@"
fi
echo "No display found: merging the sample with the CLI instead (start the studio on a desktop,"
echo "or headless with: xvfb-run -a ./build/dev/app/studio/qmpp-studio --screenshot shot.png)."
out="sample-output"
./build/dev/app/cli/qmpp run resources/samples/chelsea.png --out "$out" --force
echo "Open $out/clusters.png, $out/merged.png and $out/saliency.png; numbers in $out/report.json"
