#!/usr/bin/env node
// Encode throughput of Hugging Face's Rust tokenizers (official Node binding, npm `tokenizers`,
// installed under tools/tokenizer) on one text: the first (cold-cache) encode, then the mean of
// repeated whole-text encodes, of line-by-line encodes (the same measurements as tokenizer_bench),
// and of encodeBatch over the lines. Run with RAYON_NUM_THREADS=1 (run.sh does) so the library uses one thread.
//
//   node bench/tokenizer/hf_bench.js TOKENIZER.json TEXT_FILE [SECONDS]
'use strict';

const fs = require('fs');
const path = require('path');
const {Tokenizer} = require(path.join(__dirname, '..', '..', 'tools', 'tokenizer', 'node_modules', 'tokenizers'));

async function main() {
  const [tokenizerPath, textPath, secondsArg] = process.argv.slice(2);
  if (!tokenizerPath || !textPath) {
    console.error('usage: hf_bench.js TOKENIZER.json TEXT_FILE [SECONDS]');
    process.exit(2);
  }
  const seconds = Number(secondsArg || 3);
  const loadStart = process.hrtime.bigint();
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  const loadS = Number(process.hrtime.bigint() - loadStart) / 1e9;
  const text = fs.readFileSync(textPath, 'utf8');
  const bytes = Buffer.byteLength(text, 'utf8');
  const mb = bytes / 1e6;

  let start = process.hrtime.bigint();
  const first = await tokenizer.encode(text, null, {addSpecialTokens: false});
  const coldS = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`hf tokenizers: load ${loadS.toFixed(3)} s; first encode of ${bytes} bytes: ` +
              `${first.getLength()} tokens in ${coldS.toFixed(3)} s = ${(mb / coldS).toFixed(2)} MB/s`);

  let runs = 0;
  start = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - start) / 1e9 < seconds || runs < 2) {
    await tokenizer.encode(text, null, {addSpecialTokens: false});
    runs++;
  }
  const wholeS = Number(process.hrtime.bigint() - start) / 1e9 / runs;
  console.log(`hf tokenizers: whole text (warm, ${runs} runs): ${(wholeS * 1e3).toFixed(1)} ms = ` +
              `${(mb / wholeS).toFixed(2)} MB/s`);

  const lines = text.split(/(?<=\n)/);
  runs = 0;
  start = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - start) / 1e9 < seconds || runs < 2) {
    for (const line of lines) await tokenizer.encode(line, null, {addSpecialTokens: false});
    runs++;
  }
  const linesS = Number(process.hrtime.bigint() - start) / 1e9 / runs;
  console.log(`hf tokenizers: line by line (${lines.length} lines, ${runs} runs): ` +
              `${(linesS * 1e3).toFixed(1)} ms = ${(mb / linesS).toFixed(2)} MB/s`);

  // encodeBatch amortizes the binding's per-call overhead; with RAYON_NUM_THREADS=1 it still uses
  // one thread. This is the library's best single-thread rate here.
  runs = 0;
  start = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - start) / 1e9 < seconds || runs < 2) {
    await tokenizer.encodeBatch(lines, {addSpecialTokens: false});
    runs++;
  }
  const batchS = Number(process.hrtime.bigint() - start) / 1e9 / runs;
  console.log(`hf tokenizers: encodeBatch of the lines (${runs} runs): ` +
              `${(batchS * 1e3).toFixed(1)} ms = ${(mb / batchS).toFixed(2)} MB/s`);

  if (process.env.WHALE_BENCH_CHECK_IDS) {
    fs.writeFileSync(process.env.WHALE_BENCH_CHECK_IDS, JSON.stringify(first.getIds()));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
