#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
QT_QPA_PLATFORM=offscreen ctest --test-dir build/dev --output-on-failure
