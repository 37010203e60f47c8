#!/usr/bin/env bash
# A/B benchmark of two source trees on one GPU in one sitting: builds A (a tree given as $A,
# e.g. `git archive OLD | tar -x -C .ab/before`) and B (this tree) without Qt, checks B, then
# runs the same bench interleaved A B A B and compares the rows (scripts/bench-compare.py).
# STEP=build|bench|all. Results go to ${OUT:-gpu-results}/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"; mkdir -p "$out" build
A=${A:-.ab/before}
ARGS=${BENCH_ARGS:---tokens-list 196,4096 --layers 1,12 --basic-max-n 196 --hidden-layers 12}
build() { # tree dir
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DQMPP_WITH_QT=OFF -DQMPP_WITH_CUDA=ON \
    -DQMPP_BUILD_TESTS=OFF -DQMPP_DEPS_DIR="$PWD/.deps" -DQMPP_CUDA_ARCHITECTURES=90a > "$2.configure.log" 2>&1 &&
  cmake --build "$2" -j "$(nproc)" --target qmpp > "$2.build.log" 2>&1
}
if [ "${STEP:-all}" != bench ]; then
  build "$A" build/ab-a & pa=$!
  build . build/ab-b & pb=$!
  wait $pa || { echo "A build failed"; tail -30 build/ab-a.build.log; exit 1; }
  wait $pb || { echo "B build failed"; grep -E "error" -A3 build/ab-b.build.log | head -30; exit 1; }
  echo "== check (B)"
  ./build/ab-b/app/cli/qmpp check --backend cuda > "$out/check-b.txt" 2>&1; echo "check rc=$?"
  tail -3 "$out/check-b.txt"
fi
if [ "${STEP:-all}" != build ]; then
  for round in ${ROUNDS:-1 2}; do
    for side in a b; do
      ./build/ab-$side/app/cli/qmpp bench --backend cuda $ARGS --json "$out/ab-$side$round.json" \
        > "build/ab-$side$round.txt" 2>&1 || { echo "bench $side$round failed"; tail -5 "build/ab-$side$round.txt"; }
    done
  done
  python3 scripts/bench-compare.py "$out"/ab-a*.json -- "$out"/ab-b*.json | tee "$out/ab-compare.txt"
fi
