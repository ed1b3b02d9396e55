#!/bin/sh
# `whale bench --json --profile` on a random tiny-v3 checkpoint: every documented field is there
# and consistent (README, "Speed and whale bench"). The figures themselves are not checked: speed is
# measured by benchmarks, not by tests.
# Usage: bench_json_test.sh PATH/TO/whale [PATH/TO/node]
set -u
whale=$1
node=${2:-node}
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
"$whale" init --preset tiny-v3 --dtype bf16 --out "$dir/model" >/dev/null || exit 1
if ! "$whale" bench --model "$dir/model" -p 8 -n 4 -b 4 -t 2 --bandwidth-mib 64 --peak-tokens 4 --repeat 3 --warmup 0.2 --json --profile \
    >"$dir/bench.json"; then
  echo "FAIL: whale bench exited with an error"
  exit 1
fi
cat "$dir/bench.json"
if "$whale" bench --model "$dir/model" -b 0 >/dev/null 2>"$dir/err"; then
  echo "FAIL: -b 0 was accepted"
  exit 1
fi
grep -q -- "--batch 0" "$dir/err" || { echo "FAIL: -b 0 gave no clear error:"; cat "$dir/err"; exit 1; }
if "$whale" bench --model "$dir/model" --warmup -1 >/dev/null 2>"$dir/err"; then
  echo "FAIL: --warmup -1 was accepted"
  exit 1
fi
grep -q -- "--warmup -1" "$dir/err" || { echo "FAIL: --warmup -1 gave no clear error:"; cat "$dir/err"; exit 1; }
if "$whale" bench --model "$dir/model" --peak-tokens 0 >/dev/null 2>"$dir/err"; then
  echo "FAIL: --peak-tokens 0 was accepted"
  exit 1
fi
grep -q -- "--peak-tokens 0" "$dir/err" ||
  { echo "FAIL: --peak-tokens 0 gave no clear error:"; cat "$dir/err"; exit 1; }
# WHALE_STREAM_PREFETCH overrides the CPU's default, shows in the JSON, and a bad value is an error
# that names it.
for setting in on off; do
  expected=$([ "$setting" = on ] && echo true || echo false)
  WHALE_STREAM_PREFETCH=$setting "$whale" bench --model "$dir/model" -p 2 -n 1 -t 1 \
      --bandwidth-mib 8 --peak-tokens 1 --json >"$dir/prefetch.json" || { echo "FAIL: bench with $setting"; exit 1; }
  grep -Eq "\"stream_prefetch\": ?$expected" "$dir/prefetch.json" ||
    { echo "FAIL: WHALE_STREAM_PREFETCH=$setting did not give stream_prefetch $expected"; exit 1; }
done
if WHALE_STREAM_PREFETCH=maybe "$whale" bench --model "$dir/model" -p 2 -n 1 -t 1 \
    --bandwidth-mib 8 --peak-tokens 1 >/dev/null 2>"$dir/err"; then
  echo "FAIL: WHALE_STREAM_PREFETCH=maybe was accepted"
  exit 1
fi
grep -q "WHALE_STREAM_PREFETCH='maybe'" "$dir/err" ||
  { echo "FAIL: WHALE_STREAM_PREFETCH=maybe gave no clear error:"; cat "$dir/err"; exit 1; }
if ! command -v "$node" >/dev/null; then
  echo "SKIP: node is not installed (scripts/install-deps.sh installs it); the JSON went unchecked"
  exit 77
fi
"$node" - "$dir/bench.json" "$dir/model/config.json" <<'JS'
const fs = require('fs');
const j = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const c = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const fail = (m) => { console.log('FAIL: ' + m); process.exit(1); };
const positive = ['prefill_tok_s', 'decode_tok_s', 'read_bandwidth_gb_s', 'matmul_peak_gflop_s',
  'decode_weight_bytes_per_token', 'decode_kv_bytes_per_token', 'prefill_flop_per_token',
  'decode_roofline', 'prefill_roofline', 'batch_decode_tok_s', 'batch_decode_speedup',
  'batch_decode_roofline', 'batch_experts_per_moe_layer', 'batch_decode_bytes_per_step',
  'batch_decode_bound_roofline', 'peak_rss_mib'];
for (const k of positive)
  if (!(typeof j[k] === 'number' && Number.isFinite(j[k]) && j[k] > 0)) fail(k + ' = ' + j[k]);
if (j.batch !== 4 || j.threads !== 2 || j.prompt_tokens !== 8 || j.decode_tokens !== 4 ||
    j.repeat !== 3 || j.matmul_peak_tokens !== 4)
  fail('the run settings are not echoed');
if (typeof j.stream_prefetch !== 'boolean') fail('stream_prefetch = ' + j.stream_prefetch);
if (!(j.warmup_seconds >= 0.2 && j.warmup_rounds >= 1))
  fail('warm-up ' + j.warmup_seconds + ' s, ' + j.warmup_rounds + ' rounds');
// The rounds behind the medians: one entry per round, the reported figures their medians, and
// each round's roofline its own decode against its own bandwidth.
const r = j.rounds;
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
for (const k of ['prefill_tok_s', 'decode_tok_s', 'read_bandwidth_gb_s', 'decode_roofline']) {
  if (!Array.isArray(r[k]) || r[k].length !== 3 || !r[k].every((x) => x > 0))
    fail('rounds.' + k + ' = ' + JSON.stringify(r[k]));
  const top = k === 'read_bandwidth_gb_s' ? j.read_bandwidth_gb_s : j[k];
  if (median(r[k]) !== top) fail(k + ' is not the median of its rounds');
}
const perToken = j.decode_weight_bytes_per_token + j.decode_kv_bytes_per_token;
for (let i = 0; i < 3; ++i) {
  const ratio = perToken * r.decode_tok_s[i] / (r.read_bandwidth_gb_s[i] * 1e9);
  if (Math.abs(ratio - r.decode_roofline[i]) > 1e-9 * ratio) fail('round ' + i + ' roofline');
}
// Each MoE layer of a step reads at least one sequence's top-k and at most all its experts.
const e = j.batch_experts_per_moe_layer;
if (e < c.num_experts_per_tok || e > c.n_routed_experts) fail('experts per layer ' + e);
// A step of 4 sequences reads at least what one token does, and at most 4 times that.
const one = j.decode_weight_bytes_per_token + j.decode_kv_bytes_per_token;
if (j.batch_decode_bytes_per_step < one || j.batch_decode_bytes_per_step > 4 * one)
  fail('bytes per step ' + j.batch_decode_bytes_per_step + ' against ' + one + ' per token');
if (!['memory', 'compute'].includes(j.batch_decode_bound)) fail('bound ' + j.batch_decode_bound);
// The bound is the larger of the memory and compute times, so never below the compute share.
if (j.batch_decode_bound_roofline < j.batch_decode_roofline * (1 - 1e-9))
  fail('bound roofline below the peak share');
if (Math.abs(j.batch_decode_speedup - j.batch_decode_tok_s / j.decode_tok_s) > 1e-9 * j.batch_decode_speedup)
  fail('speedup is not batched / batch-1');
// The decode profile: every stage in order; the stages split the decode's time and its bytes.
const names = ['attention_projections', 'attention_core', 'router', 'experts', 'dense_ffn', 'head',
  'other'];
const p = j.decode_profile;
if (!Array.isArray(p) || p.map((s) => s.stage).join() !== names.join())
  fail('decode_profile stages ' + JSON.stringify(p));
const close = (a, b) => Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b));
const sum = (key) => p.reduce((total, s) => total + s[key], 0);
for (const s of p) {
  if (!(s.ms_per_token >= 0 && s.share >= 0 && s.bytes_per_token >= 0)) fail('stage ' + s.stage);
  if (s.bytes_per_token > 0 && !(s.ms_per_token > 0)) fail(s.stage + ' reads but takes no time');
  if (!close(s.read_bandwidth_fraction, s.read_gb_s / j.read_bandwidth_gb_s))
    fail(s.stage + ' fraction of the read bandwidth');
}
if (!close(sum('share'), 1)) fail('shares sum to ' + sum('share'));
// The profile covers every round: its stages add up to the mean time of a decoded token.
const meanMs = r.decode_tok_s.reduce((total, rate) => total + 1000 / rate, 0) / 3;
if (!close(sum('ms_per_token'), meanMs))
  fail('stages sum to ' + sum('ms_per_token') + ' ms against ' + meanMs);
if (!close(sum('bytes_per_token'), one)) fail('stage bytes sum to ' + sum('bytes_per_token'));
const stage = (name) => p[names.indexOf(name)];
if ((stage('dense_ffn').bytes_per_token > 0) !== (c.first_k_dense_replace > 0))
  fail('dense FFN bytes against first_k_dense_replace ' + c.first_k_dense_replace);
if (!(stage('experts').bytes_per_token > 0 && stage('router').bytes_per_token > 0))
  fail('no expert or router bytes');
console.log('ok');
JS
