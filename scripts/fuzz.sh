#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) and fuzzes each for SECONDS (default 60)
# from the committed seed corpora: bash scripts/fuzz.sh [SECONDS]. Needs clang-14 and
# libclang-rt-14-dev (Debian). Exits non-zero on any finding (crash, leak, timeout, out of
# memory); the input is kept in build/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQMPP_WITH_PYTHON=OFF -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_C_COMPILER=clang-14 -DQMPP_BUILD_FUZZERS=ON -DQMPP_WITH_QT=OFF -DQMPP_WITH_CUDA=OFF \
  -DQMPP_BUILD_TESTS=OFF -DCMAKE_CXX_COMPILER_LAUNCHER="$(command -v ccache || true)" > build-fuzz.log 2>&1 \
  || { tail -30 build-fuzz.log; exit 1; }
cmake --build build/fuzz --target fuzz_npy fuzz_safetensors fuzz_image fuzz_report >> build-fuzz.log 2>&1 || { grep -E "error" -A3 build-fuzz.log | head -30; exit 1; }
for f in npy safetensors image report; do
  [ -x build/fuzz/tests/fuzz/fuzz_$f ] || continue
  work="build/fuzz/corpus-$f"
  mkdir -p "$work"
  echo "== fuzz_$f for ${secs}s"
  (cd build/fuzz && ./tests/fuzz/fuzz_$f -max_total_time="$secs" -max_len=65536 -rss_limit_mb=8192 \
     -print_final_stats=1 "../../$work" "../../tests/fuzz/corpus/$f" 2>&1 | grep -E "^(stat::number_of_executed_units|stat::new_units_added)|ERROR: (AddressSanitizer|libFuzzer|UndefinedBehavior)|runtime error|SUMMARY" || true)
  ls build/fuzz/crash-* build/fuzz/leak-* build/fuzz/timeout-* build/fuzz/oom-* 2>/dev/null && { echo "fuzz_$f: finding kept in build/fuzz"; exit 1; }
done
echo "fuzzing: no findings"
