#!/usr/bin/env bash
# Rebuilds whale-tiny-r1 from nothing: the R1 recipe at small scale (training.md sections 5-8).
#
#   recipes/tiny-r1/run.sh [--whale PATH] [--out DIR] [--threads N] [--smoke] [--install]
#
# Stages, each a plain whale command (rerun one by hand to inspect it):
#   1 tokenizer  a byte-level BPE with one token per digit and the R1 chat tokens, trained on
#                sampled worked solutions; the R1 chat template from tokenizer_config.json here
#   2 pretrain   a V3-architecture model (MLA, MoE with a shared expert and bias balancing, MTP)
#                from scratch on worked task conversations (pretrain.json)
#   3 sft        cold start: loss on the assistant's tokens only, conversations isolated (sft.json)
#   4 grpo       GRPO with the tasks' verifiers as rewards, on problems one notch harder (grpo.json)
#   5 eval       held-out pass@1 (greedy, sampled) and pass@K after SFT and after GRPO
# --install copies the GRPO checkpoint and the eval tables into models/whale-tiny-r1.
# Deterministic given the seeds in the configs, the thread count (reductions split by thread) and
# the CPU's SIMD target (another target rounds differently).
# --smoke runs every stage for a few steps (CI), checking that the pipeline holds together.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
whale="$root/build/apps/whale/whale"
out="$root/build/tiny-r1"
threads=2
smoke=0
install=0
while [ $# -gt 0 ]; do
  case "$1" in
    --whale) whale=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --install) install=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -x "$whale" ] || { echo "no whale binary at $whale (build first, or pass --whale)" >&2; exit 2; }
mkdir -p "$out"
log() { printf '\n== %s  (%s)\n' "$1" "$(date -u +%H:%M:%S)" >&2; }
stage_start=$(date +%s)
timing() { echo "$1 $(( $(date +%s) - stage_start ))s" >> "$out/timings.txt"; stage_start=$(date +%s); }
: > "$out/timings.txt"

# Smoke runs override the step counts (and the sizes that only matter for quality).
steps_pretrain=(); steps_sft=(); steps_grpo=(); eval_n=(--n 50 --samples 8)
corpus_n=20000
if [ "$smoke" = 1 ]; then
  steps_pretrain=(--steps 2 --seq-len 128 --batch-tokens 512)
  steps_sft=(--steps 2 --seq-len 256 --batch-tokens 512)
  steps_grpo=(--steps 1 --prompts 2 --group 2 --max-tokens 96)
  eval_n=(--n 2 --samples 2)
  corpus_n=500
fi

log "1 tokenizer"
mkdir -p "$out/tokenizer"
"$whale" tasks sample --tasks add:1-5,sub:1-5,mul:1-3,countdown:3-4,sort:1-6 --n "$corpus_n" \
  --seed 1 --out "$out/tokenizer/corpus.txt"
"$whale" tokenizer train --vocab 512 --split-digits --input "$out/tokenizer/corpus.txt" \
  --out "$out/tokenizer/tokenizer.json" \
  --special "<｜begin▁of▁sentence｜>" --special "<｜end▁of▁sentence｜>" \
  --special "<｜User｜>" --special "<｜Assistant｜>" --special "<think>" --special "</think>"
cp "$here/tokenizer_config.json" "$out/tokenizer/"
timing tokenizer

log "2 pretrain"
"$whale" train --config "$here/pretrain.json" --tokenizer "$out/tokenizer/tokenizer.json" \
  --threads "$threads" --out "$out/pretrain" "${steps_pretrain[@]}"
timing pretrain

log "3 sft"
"$whale" train --config "$here/sft.json" --model "$out/pretrain" \
  --tokenizer "$out/pretrain/tokenizer.json" --threads "$threads" --out "$out/sft" \
  "${steps_sft[@]}"
cp "$here/generation_config.json" "$out/sft/"
timing sft

log "4 grpo"
"$whale" grpo --config "$here/grpo.json" --model "$out/sft" --threads "$threads" \
  --out "$out/grpo" "${steps_grpo[@]}"
timing grpo

log "5 eval"
mkdir -p "$out/eval"
for stage in sft grpo; do
  # TASK:DIFFICULTIES:COMPLETION_BUDGET (long multiplication needs ~700 tokens at 3 digits)
  for spec in add:2-6:256 sub:2-6:256 mul:1-3:768 sort:1-4:384 countdown:3-4:128; do
    IFS=: read -r task range budget <<< "$spec"
    [ "$smoke" = 1 ] && budget=48
    "$whale" eval --model "$out/$stage" --task "$task" --difficulty "$range" "${eval_n[@]}" \
      --max-tokens "$budget" --seed 7 --threads "$threads" --json "$out/eval/$stage-$task.json" \
      --show 2 | tee "$out/eval/$stage-$task.txt"
  done
done
timing eval

if [ "$install" = 1 ]; then
  dest="$root/models/whale-tiny-r1"
  log "install into $dest"
  mkdir -p "$dest/eval"
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json \
    generation_config.json; do
    cp "$out/grpo/$f" "$dest/"
  done
  cp "$out"/eval/*.json "$out"/eval/*.txt "$dest/eval/"
fi
echo "stage timings (s):" >&2
cat "$out/timings.txt" >&2
