#!/usr/bin/env bash
# Regenerates tests/data/forward/*: random tiny checkpoints from `whale init`, then the independent
# PyTorch reference's logits and MTP draft logits for fixed token sequences.
#
#   tools/reference/make_forward_fixtures.sh path/to/whale
#
# Builds nothing. Needs Debian's /usr/bin/python3 (torch, numpy). Overwrites the four case folders.
set -euo pipefail

if [[ $# -ne 1 || ! -x "$1" ]]; then
  echo "usage: $0 path/to/built/whale" >&2
  exit 2
fi
whale=$(realpath "$1")
repo=$(cd "$(dirname "$0")/../.." && pwd)
ref="$repo/tools/reference"
out_root="$repo/tests/data/forward"
python=/usr/bin/python3

# Ids spread over the 512-token vocabulary, both ends included, one id repeated (identical keys).
sequences=(
  --tokens 0,17,511,256,3,498,100
  --tokens 5,510,1,2,300,301,77,42,509,128,64,77,400,450,33,511
  --tokens 508,0,255
)

cases=(tiny-v3-f32 tiny-v3-bf16 tiny-v3-fp8 tiny-v2-f32)
mkdir -p "$out_root"
for case in "${cases[@]}"; do
  preset=${case%-*}
  dtype=${case##*-}
  rm -rf "${out_root:?}/$case"
  "$whale" init --preset "$preset" --dtype "$dtype" --seed 7 --out "$out_root/$case"
done

# The BF16 and FP8 checkpoints should be roundings of the F32 one (same seed); report, do not stop:
# the fixtures are valid for whatever weights the checkpoints hold.
status=0
for dtype in bf16 fp8; do
  if ! "$python" "$ref/quant_check.py" --f32 "$out_root/tiny-v3-f32" --other "$out_root/tiny-v3-$dtype" --kind "$dtype"; then
    echo "WARNING: tiny-v3-$dtype is not the $dtype rounding of tiny-v3-f32 (see failures above)" >&2
    status=3
  fi
done

for case in "${cases[@]}"; do
  echo "== $case"
  "$python" "$ref/deepseek_ref.py" --model "$out_root/$case" --out "$out_root/$case" "${sequences[@]}"
done

# The checkpoints are not committed: the test regenerates them with `whale init` (deterministic
# for a seed) and checks this FNV-1a-64 digest first, so a change in `whale init` is reported as
# such instead of as a logits mismatch.
for case in "${cases[@]}"; do
  "$python" - "$out_root/$case" "${case%-*}" "${case##*-}" <<'PY'
import json, sys
folder, preset, dtype = sys.argv[1:4]
digest = 0xCBF29CE484222325
with open(f"{folder}/model.safetensors", "rb") as f:
    for byte in f.read():
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
path = f"{folder}/fixture.json"
fixture = json.load(open(path))
fixture["checkpoint"] = {"command": f"whale init --preset {preset} --dtype {dtype} --seed 7",
                         "preset": preset, "dtype": dtype, "seed": 7,
                         "model_safetensors_fnv1a64": f"{digest:016x}"}
json.dump(fixture, open(path, "w"), indent=1)
PY
  rm "$out_root/$case/model.safetensors"
done
exit $status
