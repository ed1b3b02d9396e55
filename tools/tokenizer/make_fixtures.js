#!/usr/bin/env node
// Regenerates whale's tokenizer fixtures in tests/data/tokenizer from the reference: Hugging Face's
// Rust `tokenizers` library through its official Node binding (npm `tokenizers`).
//
//   cd tools/tokenizer && npm install && node make_fixtures.js
//
// Writes, for DeepSeek-V3 (real files) and each tokenizer built in tokenizers.js:
//   <name>/tokenizer.json            (DeepSeek-V3: copied with its tokenizer_config.json)
//   <name>/encode.json               [{text, ids, ids_plain?, decoded?, decoded_skip?}]
//   <name>/decode.json               [{ids, text, text_skip}]
// and components.json with probes of single components (Split regexes and behaviours, every
// pre-tokenizer and normalizer type, decoders).
'use strict';

const fs = require('fs');
const path = require('path');
const tk = require('tokenizers');
const {corpus, handWritten, randomStrings, rng} = require('./corpus');
const {DEEPSEEK_DIR, constructed, readDeepSeek, QWEN_PATTERN, LLAMA3_PATTERN} = require('./tokenizers');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'tests', 'data', 'tokenizer');

// One JSON value per line inside a top-level array, so diffs stay readable.
function writeLines(file, items) {
  const body = items.map((item) => JSON.stringify(item)).join(',\n');
  fs.writeFileSync(file, '[\n' + body + '\n]\n');
}

function specialsOf(json) {
  return json.added_tokens.map((t) => t.content);
}

async function encodeFixtures(tokenizer, texts) {
  const cases = [];
  for (const text of texts) {
    const withSpecial = await tokenizer.encode(text, null, {addSpecialTokens: true});
    const plain = await tokenizer.encode(text, null, {addSpecialTokens: false});
    const ids = withSpecial.getIds();
    const idsPlain = plain.getIds();
    const decoded = await tokenizer.decode(ids, false);
    const decodedSkip = await tokenizer.decode(ids, true);
    const item = {text, ids};
    if (JSON.stringify(idsPlain) !== JSON.stringify(ids)) item.ids_plain = idsPlain;
    if (decoded !== text) item.decoded = decoded;
    if (decodedSkip !== decoded) item.decoded_skip = decodedSkip;
    cases.push(item);
  }
  return cases;
}

// Random id sequences (including ids that split multi-byte characters, special ids and ids outside
// the vocabulary) and their decodings.
async function decodeFixtures(tokenizer, json, count, seed) {
  const next = rng(seed);
  const vocabSize = tokenizer.getVocabSize(true);
  const specialIds = json.added_tokens.map((t) => tokenizer.tokenToId(t.content));
  const cases = [];
  for (let i = 0; i < count; i++) {
    const length = 1 + Math.floor(next() * 12);
    const ids = [];
    for (let j = 0; j < length; j++) {
      const r = next();
      if (r < 0.1 && specialIds.length) ids.push(specialIds[Math.floor(next() * specialIds.length)]);
      else if (r < 0.13) ids.push(vocabSize + 5 + Math.floor(next() * 100));
      else if (r < 0.5) ids.push(Math.floor(next() * Math.min(vocabSize, 400)));
      else ids.push(Math.floor(next() * vocabSize));
    }
    cases.push({ids, text: await tokenizer.decode(ids, false), text_skip: await tokenizer.decode(ids, true)});
  }
  return cases;
}

async function writeTokenizerFixtures(name, json, tokenizer, randomCount) {
  const dir = path.join(OUT, name);
  const texts = corpus(specialsOf(json), {randomCount});
  writeLines(path.join(dir, 'encode.json'), await encodeFixtures(tokenizer, texts));
  writeLines(path.join(dir, 'decode.json'), await decodeFixtures(tokenizer, json, 120, 99));
  console.log(`${name}: ${texts.length} texts`);
}

function preTokenizeWith(config, text) {
  const t = tk.Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: config, post_processor: null, decoder: null,
    model: {type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
            end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: {}, merges: []}}));
  return t.getPreTokenizer().preTokenizeString(text).map(([piece]) => piece);
}

function normalizeWith(config, text) {
  const t = tk.Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: config,
    pre_tokenizer: null, post_processor: null, decoder: null,
    model: {type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
            end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: {}, merges: []}}));
  return t.getNormalizer().normalizeString(text);
}

function decodeWith(config, tokens) {
  const t = tk.Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: null, post_processor: null, decoder: config,
    model: {type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
            end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: {}, merges: []}}));
  return t.getDecoder().decode(tokens);
}

// Random strings of base letters, combining marks of several classes, Hangul jamo and precomposed
// characters, to exercise decomposition, canonical ordering and composition.
function combiningStrings(count, seed) {
  const next = rng(seed);
  const pools = ['aeiouAEOUcnsz', '\u0300\u0301\u0302\u0308\u0323\u0327\u031b\u0345\u05b0\u0e38\u3099\u309a',
                 'áÅéñöǖṩẞ\u212b\u1e9b', '\u1100\u1161\u11a8\u1112\u116e\u11af', '가각깍', 'カがパ\u304b\u3099',
                 '\u0f73\u0f75\u0f81\u0958', 'ﬁ①Ａ㎏½ｶ\u3300'];
  const out = [];
  for (let i = 0; i < count; i++) {
    let s = '';
    const length = 1 + Math.floor(next() * 12);
    for (let j = 0; j < length; j++) {
      const pool = Array.from(pools[Math.floor(next() * pools.length)]);
      s += pool[Math.floor(next() * pool.length)];
    }
    out.push(s);
  }
  return out;
}

function componentFixtures() {
  const textSets = {
    short: handWritten.filter((t) => t.length <= 200),
    random: randomStrings(60, 777, ['<｜User｜>', '<|im_start|>']),
    probe: ['-the-final--countdown-', 'abxxc', 'a b\tc\n\nd  e', "x'ſy x'ﬆy It'S 'S", 'a²b٣4½ Ⅻ',
            '  lead and trail  ', 'aaa bbb', 'x\u180ey\u00a0z\u3000w\u0085v', '', 'éa\u0301b_c', 'ab\r\ncd\re'],
    combining: [...combiningStrings(80, 4242), 'ΣΑΣ ΟΔΥΣΣΕΥΣ İı ẞ ǅ ﬀ', 'aaaab',
                '\u{1F16C}\u{1FBF0}\uA7F2\uA69C \u32FF \u{11938}'],
  };
  const sets = (...names) => names.flatMap((n) => textSets[n]);

  const split = [];
  // DeepSeek-V3's three Split patterns (from its tokenizer.json), Qwen2's, Llama-3's and GPT-2's.
  const realPatterns = [
    ...readDeepSeek().pre_tokenizer.pretokenizers.filter((p) => p.type === 'Split').map((p) => p.pattern.Regex),
    QWEN_PATTERN, LLAMA3_PATTERN,
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  ];
  const splitCase = (pattern, behavior, invert, textSet) => {
    const config = {type: 'Split', pattern, behavior, invert};
    split.push({config, text_set: textSet,
                pieces: textSets[textSet].map((text) => preTokenizeWith(config, text))});
  };
  for (const pattern of realPatterns) {
    for (const textSet of ['short', 'random', 'probe']) splitCase({Regex: pattern}, 'Isolated', false, textSet);
  }
  const probePatterns = [{Regex: '\\s+'}, {Regex: '\\S+'}, {Regex: '\\w+'}, {Regex: '\\d+'}, {Regex: 'x*'},
                         {Regex: "(?i:'s|'t)"}, {Regex: '[^\\s\\p{L}]+'}, {Regex: '\\h+'}, {Regex: 'a{,2}'},
                         {Regex: '$'}, {Regex: '^\\s*'}, {Regex: '(?m:a.)'}, {Regex: '\\p{M}'},
                         {String: '-'}, {String: ' '}, {String: '.*'}, {String: 'ab'}];
  for (const pattern of probePatterns) {
    for (const behavior of ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']) {
      for (const invert of [false, true]) splitCase(pattern, behavior, invert, 'probe');
    }
  }

  const preTokenizerConfigs = [
    {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true},
    {type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true},
    {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false},
    {type: 'Digits', individual_digits: true},
    {type: 'Digits', individual_digits: false},
    {type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true},
    {type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false},
    {type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true},
    {type: 'Metaspace', replacement: '_', add_prefix_space: true},
    {type: 'Whitespace'},
    {type: 'WhitespaceSplit'},
    {type: 'Punctuation', behavior: 'Isolated'},
    {type: 'Punctuation', behavior: 'Contiguous'},
    {type: 'Sequence', pretokenizers: [{type: 'WhitespaceSplit'}, {type: 'Digits', individual_digits: true},
                                       {type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false}]},
    // ByteLevel followed by another step: the byte-level characters must be visible to it.
    {type: 'Sequence', pretokenizers: [{type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true},
                                       {type: 'Split', pattern: {String: 'Ġ'}, behavior: 'MergedWithNext', invert: false}]},
  ];
  const preTokenizers = [];
  for (const config of preTokenizerConfigs) {
    for (const textSet of ['short', 'random', 'probe']) {
      preTokenizers.push({config, text_set: textSet,
                          pieces: textSets[textSet].map((text) => preTokenizeWith(config, text))});
    }
  }

  const normalizerConfigs = [
    {type: 'NFC'}, {type: 'NFD'}, {type: 'NFKC'}, {type: 'NFKD'}, {type: 'Lowercase'},
    {type: 'Sequence', normalizers: [{type: 'NFD'}, {type: 'StripAccents'}]},
    {type: 'Strip', strip_left: true, strip_right: false},
    {type: 'Strip', strip_left: true, strip_right: true},
    {type: 'Replace', pattern: {String: ' '}, content: '▁'},
    {type: 'Replace', pattern: {Regex: '\\s+'}, content: ' '},
    {type: 'Replace', pattern: {String: 'aaa'}, content: 'b'},
    {type: 'Prepend', prepend: '▁'},
    {type: 'ByteLevel'},
    {type: 'Sequence', normalizers: []},
  ];
  const normalizers = [];
  for (const config of normalizerConfigs) {
    for (const textSet of ['short', 'random', 'probe', 'combining']) {
      normalizers.push({config, text_set: textSet,
                        outputs: textSets[textSet].map((text) => normalizeWith(config, text))});
    }
  }

  const decoderCases = [
    [{type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true},
     ['Hello', 'Ġworld', 'Ġæĸ', 'ĩ', 'Ċ', 'caf\u00e9', '<sp> ', 'ĠHi']],
    [{type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true}, ['æĹ¥æľ¬èªŀ', 'Ġð', 'Ł', 'ĺ']],
    [{type: 'ByteFallback'}, ['<0xE4>', '<0xB8>', '<0xAD>', '<0xFF>', 'b', '<0x41>', '<0x0a>', '<0x+F>', '<0xZZ>']],
    [{type: 'Sequence', decoders: [{type: 'Replace', pattern: {String: '▁'}, content: ' '}, {type: 'ByteFallback'},
                                   {type: 'Fuse'}, {type: 'Strip', content: ' ', start: 1, stop: 0}]},
     ['▁Hey', '▁friend', '<0xF0>', '<0x9F>', '<0x98>', '<0x80>', '▁', '▁é']],
    [{type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true}, ['▁▁Hey', '▁friend', '▁']],
    [{type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true}, ['▁▁Hey', '▁friend']],
    [{type: 'Strip', content: 'x', start: 2, stop: 1}, ['xxxaxx', 'xa', 'ax']],
    [{type: 'Replace', pattern: {Regex: 'a+'}, content: '-'}, ['baaac', 'aa', 'x']],
    [{type: 'BPEDecoder', suffix: '</w>'}, ['hel', 'lo</w>', 'wor', 'ld</w>']],
    [{type: 'Fuse'}, ['a', ' b', 'c']],
  ];
  const decoders = decoderCases.map(([config, tokens]) => ({config, tokens, text: decodeWith(config, tokens)}));
  return {text_sets: textSets, split, pre_tokenizers: preTokenizers, normalizers, decoders};
}

async function main() {
  fs.mkdirSync(OUT, {recursive: true});

  const dsDir = path.join(OUT, 'deepseek-v3');
  fs.mkdirSync(dsDir, {recursive: true});
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
    fs.copyFileSync(path.join(DEEPSEEK_DIR, file), path.join(dsDir, file));
  }
  const dsJson = JSON.parse(fs.readFileSync(path.join(dsDir, 'tokenizer.json'), 'utf8'));
  // Only DeepSeek-V3's role and tool tokens go into the corpus (not its 800 placeholders).
  dsJson.added_tokens = dsJson.added_tokens.filter((t) => !t.content.includes('place▁holder'));
  await writeTokenizerFixtures('deepseek-v3', dsJson, tk.Tokenizer.fromFile(path.join(dsDir, 'tokenizer.json')), 400);

  for (const [name, build] of Object.entries(constructed)) {
    const json = build();
    const dir = path.join(OUT, name);
    fs.mkdirSync(dir, {recursive: true});
    const text = JSON.stringify(json);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), text + '\n');
    await writeTokenizerFixtures(name, json, tk.Tokenizer.fromString(text), 150);
  }

  const components = componentFixtures();
  fs.writeFileSync(path.join(OUT, 'components.json'),
                   '{\n' + Object.entries(components).map(([k, v]) =>
                     JSON.stringify(k) + ': ' + (Array.isArray(v)
                       ? '[\n' + v.map((x) => JSON.stringify(x)).join(',\n') + '\n]'
                       : '{\n' + Object.entries(v).map(([n, x]) => JSON.stringify(n) + ': ' + JSON.stringify(x)).join(',\n') + '\n}'))
                     .join(',\n') + '\n}\n');
  console.log(`components: ${Object.entries(components).map(([k, v]) => `${k} ${Object.keys(v).length}`).join(', ')}`);
  console.log(`reference: tokenizers ${require('tokenizers/package.json').version}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
