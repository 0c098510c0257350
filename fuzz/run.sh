#!/usr/bin/env bash
# Builds a libFuzzer target with clang-19 (ASan+UBSan) into build-fuzz/ and
# runs it on its seed corpus.
# Usage: fuzz/run.sh [TARGET] [RUNS] [extra libFuzzer args]
#   TARGET: gguf (default), http (request framing), request (OpenAI/Ollama
#           request parsers), template (chat templates, sandbox limits on)
#   RUNS defaults to 20000 (a short CI run); `fuzz/run.sh http 0 -max_total_time=600`
#   runs for 10 minutes. Findings go to fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=gguf
if [[ $# -gt 0 && ! $1 =~ ^[0-9]+$ ]]; then TARGET=$1; shift; fi
RUNS=${1:-20000}
[[ $RUNS == 0 ]] && RUNS=-1  # 0 = until -max_total_time (libFuzzer: -1 is unlimited)
shift || true
CXX=${FUZZ_CXX:-clang++-19}
OUT=build-fuzz
mkdir -p "$OUT/obj" fuzz/findings
FLAGS=(-std=c++2b -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc)
case $TARGET in
  gguf) srcs=(src/gguf/*.cc src/tensor/*.cc src/base/*.cc); libs=(-lfmt); max_len=8192 ;;
  http) srcs=(src/server/http_parse.cc src/base/*.cc); libs=(-lfmt -lz); max_len=4096 ;;
  # config.cc resolves model references (path: hf.co/...) through store, which reads GGUF headers (gguf)
  # and downloads with net (libcurl, libcrypto).
  request) srcs=(src/server/requests.cc src/server/api.cc src/runtime/config.cc src/runtime/status.cc src/store/*.cc src/net/*.cc src/gguf/*.cc src/tensor/*.cc src/chat/*.cc src/base/*.cc); libs=(-lfmt -lyaml-cpp -lcurl -lcrypto); max_len=4096 ;;
  template) srcs=(src/chat/*.cc src/base/*.cc); libs=(-lfmt); max_len=4096 ;;
  *) echo "fuzz/run.sh: unknown target '$TARGET' (gguf, http, request, template)" >&2; exit 2 ;;
esac
# One object per source, rebuilt when the source or any header is newer
# (the targets share them; a lock keeps parallel runs from building one
# object twice at once).
exec 8>"$OUT/.build.lock"
flock 8
newest_header=$(ls -t include/codey/*.h src/*/*.h | head -1)
objs=()
for s in fuzz/${TARGET}_fuzz.cc "${srcs[@]}"; do
  o="$OUT/obj/${s//\//_}.o"
  if [[ ! -f $o || $s -nt $o || $newest_header -nt $o ]]; then
    "$CXX" "${FLAGS[@]}" -c "$s" -o "$o"
  fi
  objs+=("$o")
done
bin="$OUT/${TARGET}_fuzz"
if [[ ! -x $bin ]] || [[ -n $(find "${objs[@]}" -newer "$bin" | head -1) ]]; then
  "$CXX" -fsanitize=fuzzer,address,undefined "${objs[@]}" "${libs[@]}" -o "$bin"
fi
exec 8>&-
corpus=fuzz/corpus/$TARGET
[[ $TARGET == gguf ]] && python3 fuzz/make_seeds.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seeds=("$corpus")
# The real templates beside the repository are the best template seeds.
if [[ $TARGET == template && -d ../shared/testdata/templates ]]; then
  mkdir -p "$work/shared" && cp ../shared/testdata/templates/*.jinja "$work/shared/" && seeds+=("$work/shared")
fi
mkdir -p "$work/corpus"
"$bin" -runs="$RUNS" -max_len=$max_len -timeout=20 -rss_limit_mb=2048 -artifact_prefix=fuzz/findings/ \
  "$@" "$work/corpus" "${seeds[@]}"
