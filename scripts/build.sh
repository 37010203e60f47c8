#!/usr/bin/env bash
# Configures and builds the dev preset (RelWithDebInfo, tests on) into build/dev.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset dev -DCMAKE_CXX_COMPILER_LAUNCHER="$(command -v ccache || true)"
cmake --build --preset dev
