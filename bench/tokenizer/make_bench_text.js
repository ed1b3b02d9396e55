#!/usr/bin/env node
// Writes the benchmark text: about 1 MB (default) of multilingual text mixed from the fixture
// corpus's scripts. Words are drawn with a Zipf-like distribution and CJK runs are recombined from
// characters, so the text has the long tail of unseen words and long CJK pieces real text has (a
// repeated paragraph would be all cache hits). Deterministic for a given size.
//
//   node bench/tokenizer/make_bench_text.js OUT_FILE [BYTES]
'use strict';

const fs = require('fs');
const path = require('path');
const {handWritten, rng} = require(path.join(__dirname, '..', '..', 'tools', 'tokenizer', 'corpus.js'));

const out = process.argv[2];
const target = Number(process.argv[3] || 1 << 20);
if (!out) {
  console.error('usage: make_bench_text.js OUT_FILE [BYTES]');
  process.exit(2);
}
const next = rng(20250101);

const sentences = handWritten.filter((t) => t.length > 8 && t.length < 400 && new Set(t).size > 6);
const isCjk = (c) => /[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]/u.test(c);
const words = [];
const cjkChars = [];
for (const s of sentences) {
  for (const w of s.split(/\s+/)) if (w) words.push(w);
  for (const c of Array.from(s)) if (isCjk(c)) cjkChars.push(c);
}
// Invented words from syllables give the long tail of rare words.
const syllables = ['ka', 'lo', 'mi', 'tran', 'sub', 'ver', 'ing', 'tion', 'al', 'er', 'pre', 'ox',
                   'ства', 'ние', 'λογ', 'ία', 'ung', 'keit', 'ção', 'ment'];
const zipf = (n) => Math.min(n - 1, Math.floor(n * Math.pow(next(), 2.5)));

function latinSentence() {
  const n = 5 + Math.floor(next() * 15);
  const parts = [];
  for (let i = 0; i < n; i++) {
    const r = next();
    if (r < 0.1) {
      parts.push(String(Math.floor(next() * Math.pow(10, 1 + Math.floor(next() * 7)))));
    } else if (r < 0.25) {
      let w = '';
      const k = 1 + Math.floor(next() * 3);
      for (let j = 0; j < k; j++) w += syllables[Math.floor(next() * syllables.length)];
      parts.push(next() < 0.2 ? w[0].toUpperCase() + w.slice(1) : w);
    } else {
      parts.push(words[zipf(words.length)]);
    }
  }
  return parts.join(' ') + (next() < 0.3 ? '\n' : ' ');
}

function cjkRun() {
  const n = 8 + Math.floor(next() * 40);
  let s = '';
  for (let i = 0; i < n; i++) {
    s += cjkChars[zipf(cjkChars.length)];
    if (next() < 0.08) s += '，';
  }
  return s + (next() < 0.5 ? '。' : '。\n');
}

function codeBlock() {
  const s = sentences.filter((t) => t.includes('\n') || t.includes('{'));
  return s[Math.floor(next() * s.length)].replace(/\d+/g, () => String(Math.floor(next() * 1000))) + '\n';
}

let text = '';
while (Buffer.byteLength(text, 'utf8') < target) {
  const r = next();
  if (r < 0.5) text += latinSentence();
  else if (r < 0.75) text += cjkRun();
  else if (r < 0.85) text += codeBlock();
  else text += sentences[Math.floor(next() * sentences.length)] + '\n';
}
// Trim to a character boundary at the target size.
let bytes = Buffer.from(text, 'utf8').subarray(0, target);
while (bytes.length && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes = bytes.subarray(0, bytes.length - 1);
if (bytes.length && bytes[bytes.length - 1] >= 0xc0) bytes = bytes.subarray(0, bytes.length - 1);
fs.writeFileSync(out, bytes);
console.error(`wrote ${out}: ${bytes.length} bytes`);
