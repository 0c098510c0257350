#!/usr/bin/env bash
# Builds the GGUF libFuzzer target with clang-19 (ASan+UBSan) into build-fuzz/
# and runs it on the seed corpus. Usage: fuzz/run.sh [RUNS] [extra libFuzzer args]
# RUNS defaults to 20000 (a short CI run); `fuzz/run.sh 0 -max_total_time=600`
# runs for 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20000}
[[ $RUNS == 0 ]] && RUNS=-1  # 0 = until -max_total_time (libFuzzer: -1 is unlimited)
shift || true
CXX=${FUZZ_CXX:-clang++-19}
OUT=build-fuzz
mkdir -p "$OUT" fuzz/findings
srcs=(fuzz/gguf_fuzz.cc src/gguf/*.cc src/tensor/*.cc src/base/*.cc)
newest=$(ls -t "${srcs[@]}" include/codey/*.h | head -1)
if [[ ! -x $OUT/gguf_fuzz || $newest -nt $OUT/gguf_fuzz ]]; then
  "$CXX" -std=c++2b -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Iinclude -Isrc "${srcs[@]}" -lfmt -o "$OUT/gguf_fuzz"
fi
python3 fuzz/make_seeds.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$OUT/gguf_fuzz" -runs="$RUNS" -max_len=8192 -artifact_prefix=fuzz/findings/ "$@" "$work" fuzz/corpus/gguf
