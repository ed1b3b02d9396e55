// whale chat: one page talking to this server's OpenAI-compatible API. The conversation lives in
// this page only; each request sends the whole history. Reasoning (delta.reasoning_content)
// streams into a "thinking" panel that folds away when the answer starts.
import { escapeHtml, renderMarkdown } from './markdown.mjs';

const DEFAULTS = { temperature: 0.6, maxTokens: 1024, seed: '', systemPrompt: '', apiKey: '' };
const SETTINGS_KEY = 'whale.settings';

const $ = (id) => document.getElementById(id);
const ui = {
  chat: $('chat'),
  empty: $('empty'),
  messages: $('messages'),
  form: $('composer'),
  input: $('input'),
  send: $('send'),
  stop: $('stop'),
  status: $('status'),
  modelName: $('model-name'),
  newChat: $('new-chat'),
  settings: $('settings'),
  openSettings: $('open-settings'),
  temperature: $('temperature'),
  temperatureValue: $('temperature-value'),
  maxTokens: $('max-tokens'),
  seed: $('seed'),
  systemPrompt: $('system-prompt'),
  apiKey: $('api-key'),
  resetSettings: $('reset-settings'),
};

let settings = loadSettings();
let model = null;
let history = [];  // [{role, content}] sent with every request
let active = null;  // the generation in flight: {controller, view}

function loadSettings() {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}') };
  } catch {
    return { ...DEFAULTS };
  }
}

function saveSettings() {
  const temperature = Number(ui.temperature.value);
  const maxTokens = Math.round(Number(ui.maxTokens.value));
  const seed = ui.seed.value.trim() === '' ? NaN : Math.round(Number(ui.seed.value));
  settings = {
    temperature: Number.isFinite(temperature) ? Math.min(2, Math.max(0, temperature)) : DEFAULTS.temperature,
    maxTokens: Number.isFinite(maxTokens) && maxTokens >= 1 ? maxTokens : DEFAULTS.maxTokens,
    seed: Number.isFinite(seed) && seed >= 0 ? seed : '',
    systemPrompt: ui.systemPrompt.value,
    apiKey: ui.apiKey.value.trim(),
  };
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    // Storage may be disabled (private mode); the settings still hold for this page.
  }
}

function showSettings() {
  ui.temperature.value = settings.temperature;
  ui.temperatureValue.value = Number(settings.temperature).toFixed(2);
  ui.maxTokens.value = settings.maxTokens;
  ui.seed.value = settings.seed;
  ui.systemPrompt.value = settings.systemPrompt;
  ui.apiKey.value = settings.apiKey;
}

function headers() {
  const h = { 'Content-Type': 'application/json' };
  if (settings.apiKey) h.Authorization = `Bearer ${settings.apiKey}`;
  return h;
}

async function errorMessage(response) {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && body.error) return body.error.message || JSON.stringify(body.error);
  } catch {
    // not JSON: fall through to the raw text
  }
  return `${response.status} ${response.statusText}${text ? `: ${text.slice(0, 300)}` : ''}`;
}

async function loadModel() {
  try {
    const response = await fetch('v1/models', { headers: headers() });
    if (!response.ok) throw new Error(await errorMessage(response));
    const body = await response.json();
    model = body.data && body.data.length ? body.data[0].id : null;
    ui.modelName.textContent = model ?? 'no model';
    ui.modelName.classList.toggle('error', !model);
  } catch (err) {
    ui.modelName.textContent = 'offline';
    ui.modelName.classList.add('error');
    ui.status.textContent = `Could not list models: ${err.message}`;
  }
}

// Server-sent events from a fetch body: yields each event's joined data lines.
async function* sseData(response, signal) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const onAbort = () => reader.cancel().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r\n\r\n|\n\n|\r\r/)) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + (buffer.startsWith('\r\n\r\n', cut) ? 4 : 2));
        const data = event
          .split(/\r\n|\n|\r/)
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(line.startsWith('data: ') ? 6 : 5));
        if (data.length) yield data.join('\n');
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (signal.aborted) throw new DOMException('stopped', 'AbortError');
}

function formatSeconds(ms) {
  const s = ms / 1000;
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
}

function scrollToEnd(force) {
  const nearBottom = ui.chat.scrollHeight - ui.chat.scrollTop - ui.chat.clientHeight < 120;
  if (force || nearBottom) ui.chat.scrollTop = ui.chat.scrollHeight;
}

function addUserMessage(text) {
  ui.empty.classList.add('hidden');
  const el = document.createElement('div');
  el.className = 'msg user';
  el.innerHTML = `<div class="bubble">${escapeHtml(text)}</div>`;
  ui.messages.append(el);
  scrollToEnd(true);
}

// One assistant turn on screen: an optional thinking panel, the answer, a meta line.
class AssistantView {
  // sentAt: performance.now() when the request left. Durations count from there: a fast model's
  // whole stream can reach the page in one read, and times taken on arrival would then be ~0.
  constructor(sentAt) {
    this.sentAt = sentAt;
    this.el = document.createElement('div');
    this.el.className = 'msg assistant';
    this.el.dataset.state = 'streaming';
    this.answer = document.createElement('div');
    this.answer.className = 'answer cursor';
    this.meta = document.createElement('div');
    this.meta.className = 'meta';
    this.el.append(this.answer, this.meta);
    ui.messages.append(this.el);
    this.reasoning = '';
    this.content = '';
    this.toolCalls = [];
    this.thinking = null;
    this.thinkStart = 0;
    this.thinkEnd = 0;
    this.pending = false;
    this.timer = null;
  }

  addReasoning(text) {
    if (!this.thinking) {
      this.thinkStart = this.sentAt;
      this.thinking = document.createElement('details');
      this.thinking.className = 'thinking live';
      this.thinking.open = true;
      this.thinking.innerHTML = '<summary><span class="label">Thinking</span></summary><div class="thinking-body"></div>';
      this.el.insertBefore(this.thinking, this.answer);
      this.timer = setInterval(() => this.render(), 250);
    }
    this.reasoning += text;
    this.schedule();
  }

  endThinking() {
    if (!this.thinking || this.thinkEnd) return;
    this.thinkEnd = performance.now();
    clearInterval(this.timer);
    this.thinking.classList.remove('live');
    this.thinking.open = false;
  }

  addContent(text) {
    this.endThinking();
    this.content += text;
    this.schedule();
  }

  addToolCall(delta) {
    this.endThinking();
    const index = delta.index ?? 0;
    const call = (this.toolCalls[index] ??= { id: '', name: '', arguments: '' });
    if (delta.id) call.id = delta.id;
    if (delta.function?.name) call.name = delta.function.name;
    if (delta.function?.arguments) call.arguments += delta.function.arguments;
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  render() {
    if (this.thinking) {
      const label = this.thinking.querySelector('.label');
      const elapsed = (this.thinkEnd || performance.now()) - this.thinkStart;
      label.textContent = this.thinkEnd ? `Thought for ${formatSeconds(elapsed)}` : `Thinking ${formatSeconds(elapsed)}`;
      const body = this.thinking.querySelector('.thinking-body');
      if (body.textContent.length !== this.reasoning.trim().length) body.textContent = this.reasoning.trim();
      if (this.thinking.open && !this.thinkEnd) body.scrollTop = body.scrollHeight;
    }
    let md = this.content.replace(/^\s+/, '');
    for (const call of this.toolCalls.filter(Boolean)) {
      md += `\n\n**Tool call** \`${call.name || '?'}\`\n\`\`\`json\n${call.arguments}\n\`\`\`\n`;
    }
    this.answer.innerHTML = renderMarkdown(md);
    scrollToEnd(false);
  }

  finish(state, metaHtml) {
    clearInterval(this.timer);
    if (this.thinking && !this.thinkEnd) {
      // The turn ended inside the reasoning (stopped, or out of tokens): keep it visible.
      this.thinkEnd = performance.now();
      this.thinking.classList.remove('live');
    }
    this.render();
    this.answer.classList.remove('cursor');
    this.el.dataset.state = state;
    this.meta.innerHTML = metaHtml;
    scrollToEnd(false);
  }

  fail(message) {
    this.finish('error', '');
    const err = document.createElement('div');
    err.className = 'error';
    err.textContent = message;
    this.el.append(err);
  }
}

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  ui.status.textContent = '';
}

async function send(text) {
  if (active || !text.trim()) return;
  addUserMessage(text);
  history.push({ role: 'user', content: text });
  const t0 = performance.now();
  const view = new AssistantView(t0);
  const controller = new AbortController();
  active = { controller, view };
  setBusy(true);

  const messages = settings.systemPrompt.trim()
    ? [{ role: 'system', content: settings.systemPrompt }, ...history]
    : history;
  const body = {
    model: model ?? 'default',
    messages,
    stream: true,
    stream_options: { include_usage: true },
    temperature: settings.temperature,
    max_tokens: settings.maxTokens,
  };
  if (settings.seed !== '') body.seed = settings.seed;
  let usage = null;
  let finishReason = null;
  try {
    const response = await fetch('v1/chat/completions', {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    for await (const data of sseData(response, controller.signal)) {
      if (data === '[DONE]') break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message || 'error from the server');
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices ?? []) {
        const delta = choice.delta ?? {};
        if (delta.reasoning_content) view.addReasoning(delta.reasoning_content);
        if (delta.content) view.addContent(delta.content);
        for (const call of delta.tool_calls ?? []) view.addToolCall(call);
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
    }
    const parts = [];
    if (usage) {
      // Tokens over the whole wait, the prompt's processing included, as the user saw it.
      const seconds = (performance.now() - t0) / 1000;
      parts.push(`${usage.completion_tokens} tokens`);
      if (seconds > 0) parts.push(`${(usage.completion_tokens / seconds).toFixed(1)} tok/s`);
    }
    if (finishReason === 'length') parts.push('stopped at the token limit');
    view.el.dataset.finishReason = finishReason ?? '';
    view.finish('done', parts.map(escapeHtml).join(' · '));
    history.push({ role: 'assistant', content: view.content.trim() });
  } catch (err) {
    if (err.name === 'AbortError') {
      view.finish('stopped', '<span class="stopped">Stopped</span>');
      history.push({ role: 'assistant', content: view.content.trim() });
    } else {
      view.fail(err.message);
      history.pop();  // the failed user turn stays on screen but is not resent
    }
  } finally {
    active = null;
    setBusy(false);
    ui.input.focus();
  }
}

function stop() {
  if (active) active.controller.abort();
}

function newChat() {
  stop();
  history = [];
  ui.messages.replaceChildren();
  ui.empty.classList.remove('hidden');
  ui.status.textContent = '';
  ui.input.value = '';
  autosize();
  ui.input.focus();
}

function autosize() {
  ui.input.style.height = 'auto';
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 200)}px`;
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.input.value;
  if (!text.trim() || active) return;
  ui.input.value = '';
  autosize();
  send(text);
});
ui.input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});
ui.input.addEventListener('input', autosize);
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && active && !ui.settings.open) stop();
});
ui.stop.addEventListener('click', stop);
ui.newChat.addEventListener('click', newChat);
ui.openSettings.addEventListener('click', () => {
  showSettings();
  ui.settings.showModal();
});
ui.temperature.addEventListener('input', () => {
  ui.temperatureValue.value = Number(ui.temperature.value).toFixed(2);
});
ui.resetSettings.addEventListener('click', () => {
  settings = { ...DEFAULTS, apiKey: settings.apiKey };
  showSettings();
});
ui.settings.addEventListener('close', () => {
  const keyChanged = ui.apiKey.value.trim() !== settings.apiKey;
  saveSettings();
  if (keyChanged || !model) loadModel();
});
ui.messages.addEventListener('click', async (event) => {
  const button = event.target.closest('.copy-code');
  if (!button) return;
  const code = button.closest('.code-block').querySelector('code').textContent;
  try {
    await navigator.clipboard.writeText(code);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed';
  }
  setTimeout(() => (button.textContent = 'Copy'), 1500);
});

loadModel();
ui.input.focus();
