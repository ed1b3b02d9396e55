// Unit tests of the web UI's Markdown renderer (web/markdown.mjs). No server, no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, renderInline, renderMarkdown } from '../../web/markdown.mjs';

test('escapes HTML in every context', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  assert.equal(renderMarkdown('<script>alert(1)</script>'), '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>');
  assert.equal(renderMarkdown('# <img src=x onerror=alert(1)>'), '<h1>&lt;img src=x onerror=alert(1)&gt;</h1>');
  assert.match(renderMarkdown('```\n<b>x</b>\n```'), /<code>&lt;b&gt;x&lt;\/b&gt;<\/code>/);
  assert.equal(renderInline('`<i>`'), '<code>&lt;i&gt;</code>');
  assert.equal(renderMarkdown('- <b>x</b>'), '<ul><li>&lt;b&gt;x&lt;/b&gt;</li></ul>');
  assert.match(renderMarkdown('| <a> |\n|---|\n| <b> |'), /<th>&lt;a&gt;<\/th>.*<td>&lt;b&gt;<\/td>/);
});

test('no tag survives from any input: fuzz with markup-heavy random strings', () => {
  // Every '<' in the output must start one of the tags the renderer itself writes.
  const allowed =
    /^<\/?(p|br|h[1-6]|strong|em|del|code|pre|ul|ol|li|blockquote|hr|table|thead|tbody|tr|th|td|div|span|button|a)[\s>]/;
  const pieces = ['<', '>', '"', "'", '&', '`', '*', '_', '~', '[', ']', '(', ')', '|', '-', '#', '\n', ' ',
    'javascript:', 'http://x.y/', 'onerror=', 'script', 'a', '1.', '>', ':--', '\uE000', '\uE001', '0'];
  let seed = 12345;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let k = 0; k < 3000; k++) {
    let src = '';
    const len = rand(40);
    for (let j = 0; j < len; j++) src += pieces[rand(pieces.length)];
    const html = renderMarkdown(src);
    for (const m of html.matchAll(/</g)) {
      assert.match(html.slice(m.index, m.index + 16), allowed, `input ${JSON.stringify(src)} -> ${html}`);
    }
    assert.doesNotMatch(html, /href="(?!https?:|mailto:|\/|#|\.)/i, `unsafe href from ${JSON.stringify(src)}`);
    assert.doesNotMatch(html, /[\uE000\uE001]/, `placeholder leaked from ${JSON.stringify(src)}`);
  }
});

test('links keep only safe targets', () => {
  assert.equal(
    renderInline('[docs](https://example.com/a?b=1&c=2)'),
    '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">docs</a>',
  );
  assert.equal(renderInline('[x](javascript:alert(1))'), '[x](javascript:alert(1))');
  assert.equal(renderInline('[x](//evil.example)'), '[x](//evil.example)');
  assert.equal(renderInline('[x](data:text/html,hi)'), '[x](data:text/html,hi)');
  assert.match(renderInline('[**b**](/v1/models)'), /^<a href="\/v1\/models"[^>]*><strong>b<\/strong><\/a>$/);
  assert.equal(
    renderInline('see https://a.b/c.'),
    'see <a href="https://a.b/c" target="_blank" rel="noopener noreferrer">https://a.b/c</a>.',
  );
  // A quote in the URL cannot break out of the attribute.
  assert.doesNotMatch(renderInline('[x](https://a.b/"onmouseover=1)'), /"onmouseover/);
});

test('inline formatting', () => {
  assert.equal(renderInline('**bold** and *it* and _it2_ and ~~gone~~'),
    '<strong>bold</strong> and <em>it</em> and <em>it2</em> and <del>gone</del>');
  assert.equal(renderInline('snake_case_name stays'), 'snake_case_name stays');
  assert.equal(renderInline('2 * 3 * 4'), '2 * 3 * 4');
  assert.equal(renderInline('`**not bold**`'), '<code>**not bold**</code>');
  assert.equal(renderInline('``a ` b``'), '<code>a ` b</code>');
  assert.equal(renderInline('unclosed `tick'), 'unclosed `tick');
});

test('blocks: headings, paragraphs, rules, quotes', () => {
  assert.equal(renderMarkdown('## Title ##\ntext'), '<h2>Title</h2><p>text</p>');
  assert.equal(renderMarkdown('a\nb\n\nc'), '<p>a<br>b</p><p>c</p>');
  assert.equal(renderMarkdown('a\n\n---\n\nb'), '<p>a</p><hr><p>b</p>');
  assert.equal(renderMarkdown('> quoted\n> **more**'), '<blockquote><p>quoted<br><strong>more</strong></p></blockquote>');
  assert.equal(renderMarkdown(''), '');
  assert.equal(renderMarkdown('\r\n\r\nx\r\n'), '<p>x</p>');
});

test('fenced code: language label, literal body, unclosed fence while streaming', () => {
  const html = renderMarkdown('```python\ndef f(x):\n    return x * 2  # *not em*\n```\nafter');
  assert.match(html, /<span class="code-lang">python<\/span>/);
  assert.match(html, /<code class="language-python">def f\(x\):\n    return x \* 2  # \*not em\*<\/code>/);
  assert.match(html, /<p>after<\/p>$/);
  const open = renderMarkdown('text\n```js\nlet a = 1;\nlet b');
  assert.match(open, /<code class="language-js">let a = 1;\nlet b<\/code><\/pre><\/div>$/);
  assert.match(renderMarkdown('~~~\n```\n~~~'), /<code>```<\/code>/);
});

test('lists: bullets, numbers, nesting, start number, loose items', () => {
  assert.equal(renderMarkdown('- a\n- b'), '<ul><li>a</li><li>b</li></ul>');
  assert.equal(renderMarkdown('3. x\n4. y'), '<ol start="3"><li>x</li><li>y</li></ol>');
  assert.equal(renderMarkdown('1. one\n   - sub\n   - sub2\n2. two'),
    '<ol><li>one<ul><li>sub</li><li>sub2</li></ul></li><li>two</li></ol>');
  assert.equal(renderMarkdown('- a\n\n- b'), '<ul><li><p>a</p></li><li><p>b</p></li></ul>');
  assert.equal(renderMarkdown('- a\n  continued\nlazy'), '<ul><li>a<br>continued<br>lazy</li></ul>');
  assert.equal(renderMarkdown('- a\n- b\n\n1. c'), '<ul><li>a</li><li>b</li></ul><ol><li>c</li></ol>');
  assert.equal(renderMarkdown('-\n- x'), '<ul><li></li><li>x</li></ul>');
  assert.match(renderMarkdown('- item\n  ```\n  code\n  ```'), /<li>item<div class="code-block">.*<code>code<\/code>/s);
});

test('tables with alignment and escaped pipes', () => {
  const html = renderMarkdown('| a | b |\n|:--|--:|\n| 1 | x \\| y |\n| 2 |');
  assert.equal(html,
    '<table><thead><tr><th style="text-align:left">a</th><th style="text-align:right">b</th></tr></thead>' +
    '<tbody><tr><td style="text-align:left">1</td><td style="text-align:right">x | y</td></tr>' +
    '<tr><td style="text-align:left">2</td><td style="text-align:right"></td></tr></tbody></table>');
});

// A guard against catastrophic regex backtracking (which would take minutes here), not a speed test.
test('finishes on long and adversarial input', { timeout: 60000 }, () => {
  const inputs = ['*'.repeat(20000), '_a'.repeat(10000), '`'.repeat(5000) + 'x', '[a]('.repeat(5000),
    '- '.repeat(5000), '|'.repeat(3000) + '\n|---|', 'x '.repeat(50000)];
  for (const src of inputs) {
    assert.equal(typeof renderMarkdown(src), 'string');
  }
});
