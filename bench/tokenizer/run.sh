#!/usr/bin/env bash
# Encode benchmark: whale vs Hugging Face's Rust tokenizers (official Node binding), same text, one
# core each, printed together. Also checks that both produce the same ids for the whole text.
#
#   bench/tokenizer/run.sh [BUILD_DIR] [TOKENIZER_JSON] [TEXT_BYTES]
#
# Needs: `npm install` in tools/tokenizer, and tokenizer_bench built in BUILD_DIR (default: build).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
tokenizer="${2:-$root/tests/data/tokenizer/deepseek-v3/tokenizer.json}"
bytes="${3:-1048576}"
bench="$build/bench/tokenizer/tokenizer_bench"
[ -x "$bench" ] || { echo "run.sh: $bench not built (cmake --build $build --target tokenizer_bench)" >&2; exit 1; }
[ -d "$root/tools/tokenizer/node_modules/tokenizers" ] || { echo "run.sh: run 'npm install' in tools/tokenizer first" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
node "$here/make_bench_text.js" "$work/text.txt" "$bytes"

# One core for both: pin with taskset when available; the Rust library's thread pool is limited to 1.
pin=()
command -v taskset > /dev/null && pin=(taskset -c 0)
echo "== tokenizer: $tokenizer"
echo "== Hugging Face tokenizers $(node -p "require('$root/tools/tokenizer/node_modules/tokenizers/package.json').version") (Rust, Node binding), 1 thread"
RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false WHALE_BENCH_CHECK_IDS="$work/hf_ids.json" \
  "${pin[@]}" node "$here/hf_bench.js" "$tokenizer" "$work/text.txt" 3
echo "== whale, 1 thread"
"${pin[@]}" "$bench" --tokenizer "$tokenizer" --text "$work/text.txt" --check-ids "$work/hf_ids.json" \
  --benchmark_filter='Encode' --benchmark_counters_tabular=true
