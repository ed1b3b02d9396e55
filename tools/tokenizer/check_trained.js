// Checks the tokenizers `whale tokenizer train` writes against Hugging Face `tokenizers` (the Rust
// library through its official Node binding) and records the reference ids the C++ test compares
// with: for every tests/data/train_data/<case>/tokenizer.json, encodes texts.json's texts and
// writes encode.json ({text, ids, decoded}).
//
//   cd tools/tokenizer && npm ci && node check_trained.js
// Rerun after changing the trainer or the corpus (and regenerate the tokenizers first: see
// tests/data/train_data/README.md).
const fs = require('fs');
const path = require('path');
const tk = require('tokenizers');

const DATA = path.join(__dirname, '..', '..', 'tests', 'data', 'train_data');

async function main() {
  const texts = JSON.parse(fs.readFileSync(path.join(DATA, 'texts.json'), 'utf8'));
  const cases = fs.readdirSync(DATA).filter((d) => fs.existsSync(path.join(DATA, d, 'tokenizer.json')));
  if (cases.length === 0) throw new Error(`no <case>/tokenizer.json under ${DATA}`);
  for (const name of cases) {
    const file = path.join(DATA, name, 'tokenizer.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const tokenizer = tk.Tokenizer.fromFile(file);
    // The vocabulary Hugging Face sees must be the one in the file (ids are not reassigned).
    for (const t of json.added_tokens) {
      if (tokenizer.tokenToId(t.content) !== t.id) throw new Error(`${name}: ${t.content} id moved`);
    }
    const out = [];
    for (const text of texts) {
      const encoding = await tokenizer.encode(text, null, {addSpecialTokens: true});
      const ids = encoding.getIds();
      const decoded = await tokenizer.decode(ids, false);
      // Byte-level BPE is lossless: decoding must give the text back.
      if (decoded !== text) throw new Error(`${name}: decode(encode(${JSON.stringify(text)})) = ${JSON.stringify(decoded)}`);
      out.push({text, ids});
    }
    const body = out.map((item) => JSON.stringify(item)).join(',\n');
    fs.writeFileSync(path.join(DATA, name, 'encode.json'), '[\n' + body + '\n]\n');
    console.log(`${name}: vocab ${tokenizer.getVocabSize(true)}, ${out.length} texts round-trip`);
  }
  console.log(`reference: tokenizers ${require('tokenizers/package.json').version}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
