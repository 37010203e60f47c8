#!/usr/bin/env bash
# Copies the header-only libraries (nlohmann/json, CLI11; pybind11 with its CMake files and
# DLPack for the Python module) into .deps, for GPU servers that have a compiler, CMake and CUDA
# but not these packages. Carry .deps to the server; CMake finds it through QMPP_DEPS_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/include
cp -r /usr/include/nlohmann .deps/include/
cp -r /usr/include/CLI .deps/include/
if [ -d /usr/include/pybind11 ] && [ -d /usr/lib/cmake/pybind11 ]; then
  cp -r /usr/include/pybind11 .deps/include/
  mkdir -p .deps/share/cmake
  cp -r /usr/lib/cmake/pybind11 .deps/share/cmake/ # its prefix is three folders up: .deps
fi
if [ -d /usr/include/dlpack ]; then cp -r /usr/include/dlpack .deps/include/; fi
echo "copied to .deps/include: $(ls .deps/include | tr '\n' ' ')"
