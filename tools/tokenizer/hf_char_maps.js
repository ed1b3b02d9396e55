// Prints, as JSON on stdout, what Hugging Face tokenizers (the Rust library through its official
// Node binding) does to every Unicode scalar value on its own: NFD, NFKD, Lowercase, StripAccents.
// unicode_tables.py turns this into whale's normalization tables, so that whale normalizes with
// the same Unicode data version as the reference instead of whatever Python or PCRE2 ship.
'use strict';
const tk = require('tokenizers');

const forms = {nfd: tk.nfdNormalizer(), nfkd: tk.nfkdNormalizer(), lower: tk.lowercase(),
               strip_accents: tk.stripAccentsNormalizer()};
const out = {};
for (const [name, normalizer] of Object.entries(forms)) {
  const changed = {};
  // Chars are joined with '\n' (a starter that nothing composes with or reorders across), in
  // chunks to keep each call small.
  const chunk = 4096;
  for (let base = 0; base < 0x110000; base += chunk) {
    const cps = [];
    for (let cp = base; cp < Math.min(base + chunk, 0x110000); cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      if (cp === 0x0a) continue;
      cps.push(cp);
    }
    const joined = cps.map((cp) => String.fromCodePoint(cp)).join('\n');
    const parts = normalizer.normalizeString(joined).split('\n');
    if (parts.length !== cps.length) throw new Error(`${name}: split mismatch near U+${base.toString(16)}`);
    for (let i = 0; i < cps.length; i++) {
      const mapped = Array.from(parts[i]).map((c) => c.codePointAt(0));
      if (mapped.length !== 1 || mapped[0] !== cps[i]) changed[cps[i]] = mapped;
    }
  }
  out[name] = changed;
}
process.stdout.write(JSON.stringify(out));
