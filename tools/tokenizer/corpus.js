// The text corpus behind whale's tokenizer fixtures: hand-written sentences in several scripts and a
// deterministic stream of random strings built to hit the edges of the pre-tokenizer regexes.
// `specials` lists added-token strings to splice in (each tokenizer passes its own).
'use strict';

const handWritten = [
  // English, contractions, casing
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  "It's a truth universally acknowledged, isn't it? I'd say we'll see; they've gone, you're here.",
  "IT'S LOUD. WE'LL SEE. THEY'RE HERE. I'M DONE. YOU'VE WON. HE'D KNOW.",
  "It'S ok's x'ſy x'ﬆy 'll 'LL",
  'Mr. Smith paid $1,234.56 (approx. €1.1k) on 2024-03-15 at 09:45:07 UTC.',
  'e.g. i.e. etc. -- "quoted" \'single\' `backtick` «guillemets» „German“ ‘curly’',
  'Hello, World! How are you?? Fine!!! ...and you... ---',
  'café naïve résumé façade coöperate Ångström',
  'cafe\u0301 nai\u0308ve re\u0301sume\u0301 A\u030angstro\u0308m',
  'e\u0301t\u00e9 \u212b \u2126 \u1e9b\u0323 \ufb01 \u2460 \uff21 \u338f \u00bd',
  // Korean
  '안녕하세요, 세계! 오늘 날씨가 정말 좋네요.',
  '한국어 형태소 분석은 어렵습니다. 토크나이저가 잘 처리할까요?',
  '대한민국의 수도는 서울이고, 인구는 약 9,400,000명입니다.',
  '\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af',
  // Chinese
  '我们今天去公园散步，天气很好。',
  '自然语言处理是人工智能的一个重要分支，它研究人与计算机之间用自然语言进行有效通信的各种理论和方法。',
  '中華民國（臺灣）的繁體中文與簡體中文有所不同。',
  '罕见字：龘靐齉爩 鿏鿐鿑 㐀㐁 𠀀𠀁𪚥 〇',
  '数字123和字母abc混合，还有标点：“引号”、《书名》……',
  // Japanese
  '今日は良い天気ですね。散歩に行きましょう！',
  'カタカナとひらがなと漢字が混ざった文章です。コンピューター、インターネット。',
  'ｶﾀｶﾅ ﾊﾝｶｸ ｱｲｳｴｵ ｰ ･ 「」',
  '東京都渋谷区1-2-3 ０３－１２３４－５６７８',
  'ゝゞヽヾ ー〜 ゟヿ ㇰㇱㇲ',
  // other scripts
  'Ελληνικά: Η γρήγορη καφέ αλεπού. ΣΊΣΥΦΟΣ ΟΔΥΣΣΕΥΣ',
  'Русский текст: Съешь же ещё этих мягких французских булок, да выпей чаю.',
  'العربية: مرحبا بالعالم ١٢٣٤٥ ٣.١٤',
  'עברית: שלום עולם',
  'हिन्दी: नमस्ते दुनिया, यह एक परीक्षण है। ०१२३',
  'ภาษาไทย: สวัสดีชาวโลก',
  'Tiếng Việt: Xin chào thế giới. Việt Nam',
  'Türkçe: İstanbul ıı İİ; Deutsch: Straße STRASSE ẞ',
  // emoji
  'I love 🍕 and 🍣! 😀😃😄😁',
  'Family: 👨‍👩‍👧‍👦 couple: 👩‍❤️‍💋‍👨 rainbow: 🏳️‍🌈 pirate: 🏴‍☠️',
  'Skin tones: 👍🏻👍🏼👍🏽👍🏾👍🏿 flags: 🇰🇷🇯🇵🇨🇳🇺🇸 keycaps: 1️⃣#️⃣*️⃣',
  'Emoji in text:😀no space😀 and ❤️ vs ❤ and ☺︎',
  // code
  'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
  '#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\tfor (auto& x : v) x *= 2;\n\treturn 0;\n}\n',
  '{"name": "whale", "version": [1, 2, 3], "nested": {"ok": true, "null": null}}',
  '<html><body><p class="x">Hi</p><br/></body></html>',
  'x=1;y++ <b>Hi</b> don\'t E=mc² ½ 3.14159 \'ll',
  'SELECT * FROM users WHERE id = 42 AND name LIKE \'%o%\';',
  'fn main() { let s: &str = "hé"; println!("{s:?}"); }',
  '$ ls -la | grep ".txt" > out.log 2>&1 && echo $?',
  'https://example.com/path?query=1&other=two#frag user@example.org',
  // numbers
  '0 1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890',
  '12345678901234567890123456789012345678901234567890',
  '3.14159 2.71828 -42 +7 1e10 6.02e23 0x1F 0b1010 1,000,000 1.000.000,00',
  '¹²³ ⁴⁵ ½ ⅓ ¾ Ⅻ ⅷ ١٢٣ ۴۵۶ ०१२ １２３ ①②③ 𝟙𝟚𝟛',
  'Version 2.0.1-beta.3 released on 2025/01/31; build #4521.',
  // whitespace
  'a b  c   d    e     f      g       h        i         j          k',
  '  leading spaces',
  'trailing spaces   ',
  '\ttab\tseparated\t\tvalues\t',
  'line one\nline two\n\nline four\n\n\n\nline eight',
  'windows\r\nline\r\nendings\r\n\r\nend',
  'old mac\rline\rendings',
  'mixed \t \n \r\n  \t\t\n  x',
  'a\u00a0\u00a0b non\u00a0breaking \u3000ideographic\u3000space',
  'x\u2028y\u2029z\u0085w\u180ev\u200bu\ufeffv\u001cw\u001fz',
  '  x  \n\n y',
  'hello  123',
  ' ',
  '\n',
  '\t',
  '   \n   ',
  '',
  // long repeats
  'a'.repeat(600),
  ' '.repeat(300),
  '\n'.repeat(120),
  'ab'.repeat(250),
  '한'.repeat(150),
  '字'.repeat(150),
  '😀'.repeat(80),
  '-'.repeat(200),
  '9'.repeat(100),
  '=+'.repeat(120),
  'abc '.repeat(100),
  '\t'.repeat(50) + 'x',
];

// A small deterministic PRNG (mulberry32), so the corpus is the same on every run.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Character classes that matter to the pre-tokenizer regexes.
const alphabet = [
  'abcxyzABCXYZ', '0123456789', ' ', ' ', '\t', '\n', '\r', '\r\n',
  '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', "'s't're've'm'll'd'S'T'RE'ſ",
  'éàüßñøÉ', 'e\u0301a\u0308', '안녕한국어', '我们中文字龘鿏', '㐀𠀀', 'ひらがなカタカナー', 'ｶﾀ',
  'ΑΣσςαβ', 'абвЖЯ', 'مرحبا', 'नमस्ते', '¹²½Ⅻ٣۴０１', '😀👍🏽👨‍👩‍👧', '❤️', '\u00a0\u3000\u2028\u0085\u180e\u200b\ufeff\u001c',
  '｜▁', '«»“”‘’…—–',
];

function randomStrings(count, seed, specials) {
  const next = rng(seed);
  const pick = (s) => {
    const chars = Array.from(s);
    return chars[Math.floor(next() * chars.length)];
  };
  const out = [];
  for (let i = 0; i < count; i++) {
    const length = 1 + Math.floor(next() * 40);
    let s = '';
    for (let j = 0; j < length; j++) {
      const r = next();
      if (specials.length && r < 0.04) {
        s += specials[Math.floor(next() * specials.length)];
      } else if (r < 0.25) {
        // runs of one class
        const cls = alphabet[Math.floor(next() * alphabet.length)];
        const run = 1 + Math.floor(next() * 6);
        for (let k = 0; k < run; k++) s += pick(cls);
      } else {
        s += pick(alphabet[Math.floor(next() * alphabet.length)]);
      }
    }
    out.push(s);
  }
  return out;
}

// The corpus for one tokenizer: hand-written texts, the same texts with the tokenizer's special
// tokens spliced in, and random strings.
function corpus(specials, {randomCount = 250, seed = 1234} = {}) {
  const texts = [...handWritten];
  if (specials.length) {
    const s = specials;
    texts.push(
      `${s[0]}Hello${s[s.length - 1]}`,
      `${s[0]} Hello ${s[0]}  world${s[0]}`,
      `text before${s[1 % s.length]}text after`,
      `${s[0]}${s[0]}${s[1 % s.length]}`,
      `a ${s[0]} b ${s[1 % s.length]}\n${s[2 % s.length]}\n\nc`,
      `${s[0].slice(0, -1)} partial special ${s[0].slice(1)}`,
      `中文${s[0]}한국어${s[1 % s.length]}日本語`,
      `  ${s.join('  ')}  `,
    );
  }
  texts.push(...randomStrings(randomCount, seed, specials));
  return texts;
}

module.exports = {corpus, handWritten, randomStrings, rng};
