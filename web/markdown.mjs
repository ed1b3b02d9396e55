// A small Markdown renderer for chat messages. Safety first: every piece of source text is
// HTML-escaped before it is placed in the output, and the only tags produced are the ones
// written below, so model output can never inject markup or script. Links keep only http(s),
// mailto and relative targets.
//
// It covers what chat answers use: paragraphs (single newlines become <br>), ATX headings,
// fenced code blocks (an unclosed fence runs to the end, which is what a half-streamed answer
// looks like), bullet and numbered lists with nesting, block quotes, rules, pipe tables, and
// inline code, bold, italic, strikethrough, links and bare URLs.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Inline placeholders use private-use characters, which source text cannot smuggle in: they
// are replaced on input.
const HOLE_OPEN = '\uE000';
const HOLE_CLOSE = '\uE001';
const HOLE_RE = /\uE000(\d+)\uE001/g;

function safeHref(url) {
  const trimmed = url.trim();
  if (/^(https?:|mailto:)/i.test(trimmed)) return trimmed;
  // Relative targets, but not protocol-relative ones ("//host") nor anything with a scheme.
  if (/^(\/(?!\/)|#|\.{1,2}\/)/.test(trimmed)) return trimmed;
  return null;
}

function link(href, labelHtml) {
  return `<a href="${escapeHtml(href)}" target="_blank" rel="noopener noreferrer">${labelHtml}</a>`;
}

// Emphasis on already-escaped text that contains no code spans or links.
function emphasis(html) {
  return html
    .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, '$1<strong>$2</strong>')
    .replace(/(^|[^*\w])\*(?=[^\s*])([^*]*?[^\s*])\*(?!\*)/g, '$1<em>$2</em>')
    .replace(/(^|[^\w])_(?=[^\s_])([^_]*?[^\s_])_(?!\w)/g, '$1<em>$2</em>')
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, '<del>$1</del>');
}

export function renderInline(text) {
  const holes = [];
  const hole = (html) => `${HOLE_OPEN}${holes.push(html) - 1}${HOLE_CLOSE}`;
  let src = String(text).replace(/[\uE000\uE001]/g, '\uFFFD');

  // Code spans first: their content is literal. A run of N backticks closes only on N.
  src = src.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (m, ticks, body) => {
    const inner = body.length > 1 && body.startsWith(' ') && body.endsWith(' ') ? body.slice(1, -1) : body;
    return hole(`<code>${escapeHtml(inner)}</code>`);
  });
  // [label](url): the label may hold emphasis; an unsafe target is left as plain text.
  src = src.replace(/\[([^\]\n]+)\]\(\s*<?([^()\s<>]+)>?(?:\s+"[^"]*")?\s*\)/g, (m, label, url) => {
    const href = safeHref(url);
    return href ? hole(link(href, emphasis(escapeHtml(label)))) : m;
  });
  // Bare URLs, without trailing punctuation that usually ends the sentence.
  src = src.replace(/\bhttps?:\/\/[^\s<>"'`]+/g, (url) => {
    const m = /[.,;:!?)\]]+$/.exec(url);
    const tail = m ? m[0] : '';
    const core = url.slice(0, url.length - tail.length);
    return hole(link(core, escapeHtml(core))) + tail;
  });

  let html = emphasis(escapeHtml(src));
  // Holes may nest (a link label is emphasis only, but keep restoring until none is left).
  while (HOLE_RE.test(html)) {
    HOLE_RE.lastIndex = 0;
    html = html.replace(HOLE_RE, (m, i) => holes[Number(i)]);
  }
  return html;
}

const FENCE_RE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/;
const HEADING_RE = /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/;
const RULE_RE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE_RE = /^ {0,3}> ?(.*)$/;
const ITEM_RE = /^( *)([-*+]|\d{1,9}[.)])(?:\s+(.*)|$)/;
const TABLE_DIVIDER_RE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function isBlank(line) {
  return /^\s*$/.test(line);
}

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

function startsBlock(lines, i) {
  const line = lines[i];
  return (
    FENCE_RE.test(line) ||
    HEADING_RE.test(line) ||
    RULE_RE.test(line) ||
    QUOTE_RE.test(line) ||
    ITEM_RE.test(line) ||
    (line.includes('|') && i + 1 < lines.length && TABLE_DIVIDER_RE.test(lines[i + 1]))
  );
}

function renderCode(lang, body) {
  const cls = lang ? ` class="language-${escapeHtml(lang)}"` : '';
  const label = lang ? `<span class="code-lang">${escapeHtml(lang)}</span>` : '<span class="code-lang"></span>';
  return (
    `<div class="code-block"><div class="code-head">${label}` +
    `<button type="button" class="copy-code" title="Copy code">Copy</button></div>` +
    `<pre><code${cls}>${escapeHtml(body)}</code></pre></div>`
  );
}

function renderTable(lines, start) {
  const header = splitRow(lines[start]);
  const aligns = splitRow(lines[start + 1]).map((cell) => {
    if (cell.startsWith(':') && cell.endsWith(':')) return 'center';
    if (cell.endsWith(':')) return 'right';
    if (cell.startsWith(':')) return 'left';
    return '';
  });
  const cellHtml = (tag, cell, k) => {
    const align = aligns[k] ? ` style="text-align:${aligns[k]}"` : '';
    return `<${tag}${align}>${renderInline(cell)}</${tag}>`;
  };
  let html = '<table><thead><tr>' + header.map((c, k) => cellHtml('th', c, k)).join('') + '</tr></thead><tbody>';
  let i = start + 2;
  for (; i < lines.length && !isBlank(lines[i]) && lines[i].includes('|'); i++) {
    const cells = splitRow(lines[i]);
    html += '<tr>' + header.map((h, k) => cellHtml('td', cells[k] ?? '', k)).join('') + '</tr>';
  }
  return { html: html + '</tbody></table>', next: i };
}

// A list starts at lines[start]; items are the lines at the list's indent with the same kind
// of marker (bullet or number); deeper-indented lines belong to the item above them.
function renderList(lines, start) {
  const first = ITEM_RE.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const items = [];
  let i = start;
  let loose = false;
  while (i < lines.length) {
    const m = ITEM_RE.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const contentIndent = indent + m[2].length + 1;
    const body = [m[3] ?? ''];
    i++;
    while (i < lines.length) {
      const line = lines[i];
      if (isBlank(line)) {
        // A blank line continues the item only if indented content follows it.
        let j = i;
        while (j < lines.length && isBlank(lines[j])) j++;
        if (j < lines.length && lines[j].search(/\S/) > indent) {
          loose = true;
          for (; i < j; i++) body.push('');
          continue;
        }
        break;
      }
      const lead = line.search(/\S/);
      if (lead > indent) {
        body.push(line.slice(Math.min(lead, contentIndent)));
        i++;
        continue;
      }
      // A lazy continuation of the item's paragraph (not a new item or block).
      if (lead <= indent && !startsBlock(lines, i) && !isBlank(body[body.length - 1])) {
        body.push(line.trim());
        i++;
        continue;
      }
      break;
    }
    items.push(body);
    // Blank lines between two items of the same list make the list loose.
    let j = i;
    while (j < lines.length && isBlank(lines[j])) j++;
    const next = j < lines.length ? ITEM_RE.exec(lines[j]) : null;
    if (j > i && next && next[1].length === indent && /\d/.test(next[2]) === ordered) {
      loose = true;
      i = j;
    }
  }
  const tag = ordered ? 'ol' : 'ul';
  const startNum = ordered ? parseInt(first[2], 10) : 1;
  const startAttr = ordered && startNum !== 1 ? ` start="${startNum}"` : '';
  const inner = items
    .map((body) => {
      let html = renderBlocks(body);
      if (!loose) html = html.replace(/^<p>([\s\S]*?)<\/p>/, '$1');
      return `<li>${html}</li>`;
    })
    .join('');
  return { html: `<${tag}${startAttr}>${inner}</${tag}>`, next: i };
}

function renderBlocks(lines) {
  let html = '';
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }
    let m = FENCE_RE.exec(line);
    if (m) {
      const fence = m[1];
      const body = [];
      i++;
      while (i < lines.length) {
        const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(lines[i]);
        if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break;
        body.push(lines[i]);
        i++;
      }
      i++;  // the closing fence (or past the end when the fence is still open)
      html += renderCode(m[2], body.join('\n'));
      continue;
    }
    m = HEADING_RE.exec(line);
    if (m) {
      const level = m[1].length;
      html += `<h${level}>${renderInline(m[2] ?? '')}</h${level}>`;
      i++;
      continue;
    }
    if (RULE_RE.test(line)) {
      html += '<hr>';
      i++;
      continue;
    }
    if (QUOTE_RE.test(line)) {
      const body = [];
      while (i < lines.length && !isBlank(lines[i])) {
        const q = QUOTE_RE.exec(lines[i]);
        body.push(q ? q[1] : lines[i]);
        i++;
      }
      html += `<blockquote>${renderBlocks(body)}</blockquote>`;
      continue;
    }
    if (ITEM_RE.test(line)) {
      const list = renderList(lines, i);
      html += list.html;
      i = list.next;
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_DIVIDER_RE.test(lines[i + 1])) {
      const table = renderTable(lines, i);
      html += table.html;
      i = table.next;
      continue;
    }
    const para = [line.trim()];
    i++;
    while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines, i)) {
      para.push(lines[i].trim());
      i++;
    }
    html += `<p>${para.map(renderInline).join('<br>')}</p>`;
  }
  return html;
}

// Renders a whole message. Tabs count as four spaces for indentation.
export function renderMarkdown(text) {
  const lines = String(text ?? '')
    .replace(/\r\n?/g, '\n')
    .replace(/\t/g, '    ')
    .split('\n');
  return renderBlocks(lines);
}
