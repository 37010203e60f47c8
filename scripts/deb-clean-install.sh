#!/usr/bin/env bash
# Installs a qmpp-studio .deb on an empty Debian 12 (a minbase debootstrap: no compiler, no Qt,
# no OpenCV, nothing of ours) with apt resolving the package's declared dependencies, then runs
# both front ends there on the bundled sample. Needs root and Debian's package registry.
#   scripts/deb-clean-install.sh build/cpu/qmpp-studio_*_amd64.deb [ROOT]
set -euo pipefail
deb=$(realpath "$1")
root=${2:-/tmp/qmpp-clean-bookworm}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v debootstrap > /dev/null || apt-get install -y -q debootstrap > /dev/null
if [ ! -x "$root/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian > "$root.log" 2>&1
fi
# the host's package sources (its snapshot and security updates), in place of debootstrap's
if ls /etc/apt/sources.list.d/*.sources > /dev/null 2>&1; then
  rm -f "$root/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/"
else
  cp /etc/apt/sources.list "$root/etc/apt/"
fi
mkdir -p "$root/pkg" "$root/sample"
cp "$deb" "$root/pkg/"
cp "$here/resources/samples/chelsea.png" "$root/sample/"
for d in proc sys dev; do mountpoint -q "$root/$d" || mount --bind "/$d" "$root/$d"; done
trap 'for d in proc sys dev; do umount "$root/$d" 2>/dev/null || true; done' EXIT
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
echo "clean root: $(in_root dpkg -l | grep -c '^ii') packages before"
in_root dpkg -s libqt6widgets6 > /dev/null 2>&1 && { echo "not clean: Qt is already there"; exit 1; }
in_root apt-get update -q > /dev/null
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "/pkg/$(basename "$deb")" > "$root.install.log" 2>&1 || { tail -20 "$root.install.log"; exit 1; }
echo "installed with $(grep -c '^Setting up' "$root.install.log") packages set up"
in_root qmpp --version
in_root rm -rf /tmp/run
in_root qmpp run /sample/chelsea.png --out /tmp/run --quiet
in_root ls /tmp/run
in_root env QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=/tmp qmpp-studio /sample/chelsea.png \
  --screenshot /tmp/studio.png 2>&1 | grep -v "propagateSizeHints" || true
in_root test -s /tmp/studio.png && echo "the studio ran and saved a screenshot"
cp "$root/tmp/studio.png" "${SHOT:-/dev/null}" 2>/dev/null || true
