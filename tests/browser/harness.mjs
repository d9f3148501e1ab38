// Shared by the chat_server browser and nginx tests: steps with PASS/FAIL lines, polling,
// child processes that announce "listening on …", headless Chromium through playwright-core.
//
// Never run `npx playwright install`: the system Chromium (apt-get install chromium) is used.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { browserEnv, track } from '../support/processes.mjs';

export const WAIT_MS = 5000;

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/// Flags `--name value` into an object; `required` names must be present.
export function parseArgs(script, defaults, required) {
  const args = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in defaults) || argv[i + 1] === undefined) {
      process.stderr.write(`${script}: unknown flag or missing value: ${argv[i]}\n`);
      process.exit(2);
    }
    args[key] = argv[i + 1];
  }
  for (const key of required)
    if (!args[key]) {
      process.stderr.write(`${script}: --${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required\n`);
      process.exit(2);
    }
  return args;
}

export function loadChromium(script) {
  try {
    // Resolved from the repo root's node_modules (npm ci), wherever the script is run from.
    return createRequire(new URL('../../package.json', import.meta.url))('playwright-core').chromium;
  } catch (e) {
    process.stderr.write(`${script}: cannot load 'playwright-core' (${e.message}). Run 'npm ci' at the repository root.\n`);
    process.exit(2);
  }
}

// --- results ------------------------------------------------------------------------------

export const results = { passed: 0, failed: 0 };
export class StepFailed extends Error {}

export function report(ok, name, detail = '') {
  if (ok) results.passed++;
  else results.failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
  return ok;
}

/// One step; a failure is reported and ends the scenario (later steps build on it).
export async function step(name, fn) {
  let detail;
  try {
    detail = await fn();
  } catch (e) {
    report(false, name, e instanceof StepFailed ? e.message : (e && e.stack) || String(e));
    throw new StepFailed('(step failed)');
  }
  report(true, name, typeof detail === 'string' ? detail : '');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const short = (v, limit = 300) => {
  const s = JSON.stringify(v);
  return s.length <= limit ? s : `${s.slice(0, limit)}...`;
};

/// Polls `probe` until `ok(state)`; on timeout fails with `what` and the last state.
export async function until(what, probe, ok, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await probe();
    if (ok(state)) return state;
    if (Date.now() >= deadline) throw new StepFailed(`${what} not seen within ${timeoutMs} ms; last state ${short(state, 500)}`);
    await sleep(50);
  }
}

/// Runs a scenario; its cleanups (newest first) run whatever happens.
export async function scenario(name, fn) {
  console.log(`# ${name}`);
  const cleanups = [];
  try {
    await fn(cleanups);
  } catch (e) {
    if (!(e instanceof StepFailed)) report(false, `${name}: unexpected error`, (e && e.stack) || String(e));
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        report(false, `${name}: cleanup`, e.message);
      }
    }
  }
}

export function finish() {
  console.log(`${results.passed} passed, ${results.failed} failed`);
  process.exitCode = results.failed === 0 && results.passed > 0 ? 0 : 1;
}

// --- processes --------------------------------------------------------------------------------

/// A child process (killed if the script ends first) whose stdout lines are kept; `started` resolves with the first line
/// matching `ready` (e.g. /listening on ws:\/\/.*:(\d+)\//).
export class Child {
  constructor(path, argv, ready, timeoutMs = 10000) {
    this.name = path.split('/').pop();
    this.lines = [];
    this.stderr = '';
    this.proc = track(spawn(path, argv, { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.exited = new Promise((res) =>
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        res(this.exitInfo);
      }));
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    const lines = createInterface({ input: this.proc.stdout });
    this.started = new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new StepFailed(`${this.name}: no ready line within ${timeoutMs} ms; stderr ${short(this.stderr)}`)), timeoutMs);
      lines.on('line', (line) => {
        this.lines.push(line);
        const m = ready && ready.exec(line);
        if (m) {
          clearTimeout(timer);
          res(m);
        }
      });
      this.proc.on('error', (e) => rej(new StepFailed(`cannot start ${path}: ${e.message}`)));
      this.exited.then((info) => {
        clearTimeout(timer);
        rej(new StepFailed(`${this.name} exited (${short(info)}) before it was ready; stderr ${short(this.stderr)}`));
      });
    });
    this.started.catch(() => {});
  }

  /// SIGTERM; it must exit with status 0 within 5 s.
  async stop() {
    if (!this.exitInfo) {
      this.proc.kill('SIGTERM');
      const info = await Promise.race([this.exited, sleep(5000).then(() => null)]);
      if (!info) {
        this.proc.kill('SIGKILL');
        await this.exited;
        throw new StepFailed(`${this.name} still running 5 s after SIGTERM (killed)`);
      }
    }
    if (this.exitInfo.code !== 0) throw new StepFailed(`${this.name}: exit ${short(this.exitInfo)}; stderr ${short(this.stderr)}`);
  }

  async kill9() {
    this.proc.kill('SIGKILL');
    return this.exited;
  }
}

/// Starts chat_server on 127.0.0.1 (port 0: a free one) and waits for its listening line.
export async function startChatServer(path, port = 0, extra = []) {
  const child = new Child(path, ['--address', '127.0.0.1', '--port', String(port), ...extra],
    /^listening on ws:\/\/127\.0\.0\.1:(\d+)\/$/);
  const m = await child.started;
  child.port = Number(m[1]);
  return child;
}

// --- the browser ------------------------------------------------------------------------------

/// A fresh headless Chromium (its own temp profile), closed by the scenario's cleanups.
export async function launchBrowser(chromium, executablePath, cleanups) {
  const dir = await mkdtemp(join(tmpdir(), 'wschat-chromium-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath, headless: true, args: CHROMIUM_ARGS, env: browserEnv(),
  });
  cleanups.push(() => context.close());
  context.setDefaultTimeout(WAIT_MS);
  return context;
}

export async function screenshot(page, dir, name) {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`  screenshot ${file}`);
  return file;
}
