#!/usr/bin/env bash
# Copies the header-only libraries (nlohmann/json, CLI11) into .deps/include, for GPU servers
# that have a compiler, CMake and CUDA but not these packages. Carry .deps to the server;
# CMake finds it through QMPP_DEPS_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/include
cp -r /usr/include/nlohmann .deps/include/
cp -r /usr/include/CLI .deps/include/
echo "copied to .deps/include: $(ls .deps/include | tr '\n' ' ')"
