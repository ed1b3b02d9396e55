// Helpers shared by the end-to-end tests: make a tiny random checkpoint with the whale binary,
// start `whale serve` on a free loopback port, wait until it answers, read its memory, stop it.
//
// Environment (set by tests/e2e/CMakeLists.txt; defaults suit a manual run from the repo root):
//   WHALE_BIN       the whale binary            (build/apps/whale/whale)
//   WHALE_E2E_OUT   a scratch folder for checkpoints, logs and screenshots (build/tests/e2e)
//   WHALE_TEST_DATA tests/data                  (for the serving test tokenizer)
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const REPO_DIR = repo;
export const WHALE_BIN = process.env.WHALE_BIN ?? path.join(repo, 'build', 'apps', 'whale', 'whale');
export const OUT_DIR = process.env.WHALE_E2E_OUT ?? path.join(repo, 'build', 'tests', 'e2e');
export const TEST_DATA = process.env.WHALE_TEST_DATA ?? path.join(repo, 'tests', 'data');

export function outDir(name) {
  const dir = path.join(OUT_DIR, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// A tiny random DeepSeek-V3 checkpoint with the R1-style test tokenizer, made once per folder.
export function makeCheckpoint(dir, { seed = 1, dtype = 'bf16', preset = 'tiny-v3' } = {}) {
  const model = path.join(dir, `model-${preset}-${dtype}-${seed}`);
  if (!fs.existsSync(path.join(model, 'config.json'))) {
    execFileSync(WHALE_BIN, ['init', '--preset', preset, '--dtype', dtype, '--seed', String(seed), '--tokenizer',
      path.join(TEST_DATA, 'serve'), '--out', model], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return model;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The name the tests serve their checkpoint under (whale serve --name).
export const MODEL = 'whale-e2e-tiny';

// Starts `whale serve`; resolves once GET /health answers 200. `args` are extra flags. Without a
// `model` it serves the embedded default model (whale-tiny-r1).
export async function startServer({ model, args = [], logName = 'server.log', readyTimeoutMs = 120000 } = {}) {
  const port = await freePort();
  const log = path.join(OUT_DIR, logName);
  fs.mkdirSync(path.dirname(log), { recursive: true });
  const logFd = fs.openSync(log, 'w');
  const child = spawn(WHALE_BIN, ['serve', ...(model ? ['--model', model] : []), '--name', MODEL, '--host',
    '127.0.0.1', '--port', String(port), ...args], {
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) {
      throw new Error(`whale serve exited (${JSON.stringify(exited)}) before it was ready; log ${log}:\n` +
        fs.readFileSync(log, 'utf8').slice(-2000));
    }
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`whale serve did not answer /health within ${readyTimeoutMs} ms; log ${log}`);
    }
    await sleep(100);
  }
  return {
    url,
    port,
    pid: child.pid,
    log,
    alive: () => exited === null,
    exitStatus: () => exited,
    async stop() {
      if (exited) return exited;
      const done = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const status = await done;
      clearTimeout(timer);
      return status;
    },
  };
}

// Resident memory of a process in KiB (VmRSS from /proc/PID/status).
export function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(m[1]);
}

// The /metrics series the tests read.
export const METRIC = Object.freeze({
  running: 'whale_num_sequences_running',
  waiting: 'whale_num_requests_waiting',
  generated: 'whale_generation_tokens_total',
});

// Prometheus text from /metrics as {name -> value} (labels kept in the name).
export async function metrics(url, headers = {}) {
  const r = await fetch(`${url}/metrics`, { headers });
  if (!r.ok) throw new Error(`GET /metrics: ${r.status}`);
  const out = {};
  for (const line of (await r.text()).split('\n')) {
    const m = /^([A-Za-z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// Raw SSE events of a streamed POST (for checks below what the openai client exposes).
export async function sseEvents(url, body, headers = {}) {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text,
    events: text.split(/\n\n/).filter((e) => e.trim()).map((e) => e.split('\n')) };
}

// Whether the tools the e2e tests need are present: node_modules (npm ci) and Chromium.
export const CHROMIUM = process.env.WHALE_CHROMIUM ?? '/usr/bin/chromium';
export function skipReason({ browser = false } = {}) {
  const modules = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules');
  if (!fs.existsSync(path.join(modules, 'openai')) || !fs.existsSync(path.join(modules, 'playwright-core'))) {
    return `tests/e2e/node_modules is missing: run scripts/install-deps.sh (npm ci in tests/e2e)`;
  }
  if (browser && !fs.existsSync(CHROMIUM)) return `${CHROMIUM} is missing: run scripts/install-deps.sh (Debian chromium)`;
  // A missing whale binary is a broken build, not a missing tool: fail rather than skip.
  if (!fs.existsSync(WHALE_BIN)) throw new Error(`the whale binary ${WHALE_BIN} is missing: build it first`);
  return null;
}
