#!/usr/bin/env bash
# The main job until the embedded model exists: make a tiny DeepSeek-V3-architecture checkpoint
# (FP8 weights, MTP, YaRN), describe it, and generate from it.
#   scripts/demo.sh path/to/whale OUT_DIR
set -euo pipefail
whale=${1:?usage: $0 path/to/whale OUT_DIR}
out=${2:?usage: $0 path/to/whale OUT_DIR}
model="$out/tiny-v3-fp8"

"$whale" init --preset tiny-v3 --dtype fp8 --seed 1 --out "$model"
echo
"$whale" inspect --model "$model"
echo
echo "whale run --tokens 0,17,42 -n 24 --temp 0.8 --seed 5 (random weights: the ids are noise, the speed is real)"
"$whale" run --model "$model" --tokens 0,17,42 -n 24 --temp 0.8 --seed 5
