#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, and merge the bundled sample photo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
out="${1:-sample-output}"
./build/dev/app/cli/qmpp run resources/samples/chelsea.png --out "$out" --force
echo "Open $out/clusters.png, $out/merged.png and $out/saliency.png; numbers in $out/report.json"
