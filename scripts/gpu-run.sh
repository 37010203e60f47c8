#!/usr/bin/env bash
# On a GPU server (CUDA, CMake, a compiler; .deps/ from scripts/gpu-deps.sh): build without Qt
# or OpenCV, check every kernel, run the sanitizers over the quick check, and benchmark.
# Results go to ${OUT:-gpu-results}/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
cmake -S . -B build/gpu -DCMAKE_BUILD_TYPE=Release -DQMPP_WITH_QT=OFF -DQMPP_WITH_CUDA=ON \
  -DQMPP_CUDA_ARCHITECTURES="${ARCHS:-90a}" > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
cmake --build build/gpu -j "$(nproc)" > "$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
q=./build/gpu/app/cli/qmpp
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv > "$out/device.txt" 2>&1
cat "$out/device.txt"
if [ "${CHECK:-1}" = 1 ]; then
  echo "== check"
  $q check > "$out/check.txt" 2>&1; echo "check rc=$?"; grep -E "FAIL|pipeline|uniforms|passed" "$out/check.txt" | head -40
fi
if [ "${SANITIZE:-1}" = 1 ]; then
  for tool in memcheck racecheck synccheck; do
    compute-sanitizer --tool $tool $q check --quick --backend cuda-basic > "$out/sanitizer-$tool.txt" 2>&1
    echo "== $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.txt" | tail -1)"
  done
fi
if [ "${BENCH:-1}" = 1 ]; then
  echo "== bench"
  $q bench --backend "${BENCH_BACKEND:-cuda}" ${BENCH_ARGS:-} --json "$out/gpu-bench.json" > "$out/bench.txt" 2>&1
  echo "bench rc=$?"; grep -E "pipeline|entropy|cublas|ceilings|verified" "$out/bench.txt" | head -60
fi
