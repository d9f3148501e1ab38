#!/usr/bin/env node
// Browser test: minimal_chat's own page, and a page in the style of the classic tutorial,
// driven in a real headless Chromium (the system /usr/bin/chromium) through playwright-core.
//
//   npm ci   # once, at the repo root: installs the pinned playwright-core from package-lock.json
//   node tests/browser/chat_page.mjs --minimal-chat build/.../minimal_chat [--chromium PATH]
//
// Never run `npx playwright install`: the system Chromium is used (apt-get install chromium).
// Each scenario starts its own minimal_chat (`--address 127.0.0.1 --port 0`), waits for its
// `listening on ws://HOST:PORT/` line, and stops it with SIGTERM in `finally`, expecting exit
// status 0. Each scenario launches its own browser with a fresh temporary user-data dir and
// closes it in `finally`. Screenshots go to tests/artifacts/ (gitignored). One PASS/FAIL line
// per step, then `N passed, M failed`; exit status 1 on any failure. Needs Node 18+.
// Everything listens and connects on 127.0.0.1 only.

import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import {
  StepFailed,
  finish,
  launchBrowser as launchChromium,
  loadChromium,
  report,
  short,
  step,
  until,
} from './harness.mjs';
import { deadline, track } from '../support/processes.mjs';

deadline(200, 'chat_page.mjs');
const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = resolve(HERE, '..', 'artifacts');
const SEED_PAGE = join(HERE, 'seed_style_page.html');

const LISTEN_TIMEOUT_MS = 10000; // wait for the "listening on" line
const STOP_TIMEOUT_MS = 5000; // wait for exit after SIGTERM
const RECONNECT_LIMIT_MS = 10000; // the page must reconnect within this after the restart

const LISTEN_RE = /^listening on (ws:\/\/(\S+):(\d+)\/)$/;
const WELCOME = 'Welcome to the chat room!';
const XSS = '<script>window.pwned=1</script><b>x</b>';


// ---------------------------------------------------------------------------------------------
// Command line, playwright-core
// ---------------------------------------------------------------------------------------------

function usage(message) {
  process.stderr.write(
    `chat_page.mjs: ${message}\n` +
      'usage: node tests/browser/chat_page.mjs --minimal-chat PATH [--chromium PATH]\n'
  );
  process.exit(2);
}

const args = { minimalChat: process.env.WSCHAT_MINIMAL_CHAT || null, chromium: '/usr/bin/chromium' };
for (let i = 2; i < process.argv.length; i++) {
  const flag = process.argv[i];
  const value = process.argv[i + 1];
  if (value === undefined) usage(`missing value after ${flag}`);
  if (flag === '--minimal-chat') args.minimalChat = value;
  else if (flag === '--chromium') args.chromium = value;
  else usage(`unknown flag ${flag}`);
  i++;
}
if (!args.minimalChat) usage('--minimal-chat PATH is required');
for (const [what, path] of [
  ['minimal_chat', args.minimalChat],
  ['chromium', args.chromium],
]) {
  try {
    accessSync(path, fsConstants.X_OK);
  } catch {
    usage(`${what} is not an executable file: ${path}`);
  }
}

const chromium = loadChromium('chat_page.mjs');

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

class Server {
  constructor(path) {
    this.path = path;
    this.proc = null;
    this.exitInfo = null;
    this.exited = null;
    this.stderr = '';
    this.url = null;
    this.port = null;
  }

  /// Starts `minimal_chat --address 127.0.0.1 --port <port>` and waits for its listening line.
  async start(port = 0) {
    this.proc = track(spawn(this.path, ['--address', '127.0.0.1', '--port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }));
    this.exited = new Promise((res) => {
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        res(this.exitInfo);
      });
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    const lines = createInterface({ input: this.proc.stdout });
    const listening = new Promise((res, rej) => {
      let seen = false;
      lines.on('line', (line) => {
        const m = LISTEN_RE.exec(line);
        if (!seen && m) {
          seen = true;
          res(m);
        } else if (!seen) {
          rej(new StepFailed(`unexpected first stdout line ${short(line)}`));
        }
      });
      this.proc.on('error', (e) => rej(new StepFailed(`cannot start ${this.path}: ${e.message}`)));
    });
    const died = this.exited.then((info) => {
      throw new StepFailed(
        `minimal_chat exited before listening (code ${info.code}, signal ${info.signal}); stderr ${short(this.stderr.trim())}`
      );
    });
    let timer;
    const timeout = new Promise((_, rej) => {
      timer = setTimeout(
        () => rej(new StepFailed(`no "listening on" line within ${LISTEN_TIMEOUT_MS} ms`)),
        LISTEN_TIMEOUT_MS
      );
    });
    try {
      const m = await Promise.race([listening, died, timeout]);
      this.url = m[1];
      this.port = Number(m[3]);
      if (m[2] !== '127.0.0.1') throw new StepFailed(`listening on ${m[2]}, expected 127.0.0.1`);
      if (port !== 0 && this.port !== port) throw new StepFailed(`asked for port ${port}, got ${this.port}`);
    } finally {
      clearTimeout(timer);
      died.catch(() => {});
    }
    return this;
  }

  /// SIGTERM, then the exit status must be 0 within STOP_TIMEOUT_MS.
  async stop() {
    if (!this.proc) return;
    if (!this.exitInfo) {
      this.proc.kill('SIGTERM');
      let timer;
      const t = new Promise((r) => (timer = setTimeout(r, STOP_TIMEOUT_MS, null)));
      const info = await Promise.race([this.exited, t]);
      clearTimeout(timer);
      if (!info) {
        this.proc.kill('SIGKILL');
        await this.exited;
        throw new StepFailed(`still running ${STOP_TIMEOUT_MS} ms after SIGTERM (killed)`);
      }
    }
    const { code, signal } = this.exitInfo;
    if (code !== 0)
      throw new StepFailed(`exit code ${code}, signal ${signal}; stderr ${short(this.stderr.trim())}`);
  }

  async kill9() {
    this.proc.kill('SIGKILL');
    return this.exited;
  }
}

// ---------------------------------------------------------------------------------------------
// Browser and page helpers
// ---------------------------------------------------------------------------------------------

const launchBrowser = (cleanups) => launchChromium(chromium, args.chromium, cleanups);

async function openPage(context, url, errors, label) {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${label}: ${e.message}`));
  await page.goto(url);
  return page;
}

const listTexts = (page) => page.$$eval('#messages li', (items) => items.map((li) => li.textContent));
const textOf = (page, sel) => page.$eval(sel, (el) => el.textContent);
const count = (arr, value) => arr.filter((x) => x === value).length;

async function screenshot(page, name) {
  if (!page || page.isClosed()) return;
  try {
    await mkdir(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`  screenshot ${file}`);
  } catch (e) {
    console.log(`  (screenshot ${name} failed: ${e.message})`);
  }
}

/// Runs a scenario with a cleanup stack (browser, static server, ...); the minimal_chat servers
/// it registers are stopped with SIGTERM first and must exit 0.
async function scenario(name, fn) {
  console.log(`# ${name}`);
  const cleanups = [];
  const servers = [];
  const ctx = { cleanups, servers, shots: [] };
  try {
    await fn(ctx);
  } catch (e) {
    if (!(e instanceof StepFailed)) report(false, `${name}: unexpected error`, e && e.stack ? e.stack : String(e));
  } finally {
    for (const [page, shot] of ctx.shots) await screenshot(page, shot);
    for (const s of servers) {
      if (s.killedOnPurpose) continue;
      try {
        await s.stop();
        report(true, `${name}: minimal_chat on port ${s.port} exits 0 on SIGTERM`);
      } catch (e) {
        report(false, `${name}: minimal_chat on port ${s.port} exits 0 on SIGTERM`, e.message);
      }
    }
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        console.log(`  (cleanup: ${e.message})`);
      }
    }
  }
}

async function startServer(ctx, port = 0) {
  const s = new Server(args.minimalChat);
  ctx.servers.push(s);
  await s.start(port);
  return s;
}

// ---------------------------------------------------------------------------------------------
// 1. minimal_chat's own page
// ---------------------------------------------------------------------------------------------

async function ownPage() {
  await scenario('1 minimal_chat page', async (ctx) => {
    const server = await startServer(ctx);
    const context = await launchBrowser(ctx.cleanups);
    const errors = [];
    const pageUrl = `http://127.0.0.1:${server.port}/`;
    let a, b;

    await step(`page A loads ${pageUrl}, connects and shows the welcome line`, async () => {
      a = await openPage(context, pageUrl, errors, 'A');
      ctx.shots.push([a, 'chat_page_1_page_a']);
      await until('A: welcome + status "connected"', async () => ({ list: await listTexts(a), status: await textOf(a, '#status') }),
        (s) => s.list.includes(WELCOME) && s.status === 'connected');
    });
    await step('page B loads, connects and shows the welcome line', async () => {
      b = await openPage(context, pageUrl, errors, 'B');
      await until('B: welcome + status "connected"', async () => ({ list: await listTexts(b), status: await textOf(b, '#status') }),
        (s) => s.list.includes(WELCOME) && s.status === 'connected');
    });
    await step('#online shows "Online users: 2" on both pages', async () => {
      await until('"Online users: 2" on A and B', async () => [await textOf(a, '#online'), await textOf(b, '#online')],
        (s) => s[0] === 'Online users: 2' && s[1] === 'Online users: 2');
    });

    const msgA = '你好，世界！来自 A 的消息 😀👍🏽 🇨🇳';
    const msgB = 'B 按回车发送：emoji 🎉 与中文 ✔';
    await step('A types Chinese + emoji and clicks Send: both pages show it, input cleared', async () => {
      await a.fill('#message', msgA);
      await a.click('#send');
      await until('A\'s message on A and B', async () => [await listTexts(a), await listTexts(b)],
        (s) => s[0].includes(msgA) && s[1].includes(msgA));
      const left = await a.inputValue('#message');
      if (left !== '') throw new StepFailed(`#message not cleared after sending: ${short(left)}`);
    });
    await step('B types another and presses Enter: both pages show both, in the same order', async () => {
      await b.fill('#message', msgB);
      await b.press('#message', 'Enter');
      const [la, lb] = await until('B\'s message on A and B', async () => [await listTexts(a), await listTexts(b)],
        (s) => s[0].includes(msgB) && s[1].includes(msgB));
      const order = (l) => l.filter((t) => t === msgA || t === msgB);
      if (short(order(la)) !== short([msgA, msgB]) || short(order(lb)) !== short([msgA, msgB]))
        throw new StepFailed(`chat lines: A ${short(order(la))}, B ${short(order(lb))}`);
      if (count(la, msgA) !== 1 || count(lb, msgB) !== 1) throw new StepFailed(`duplicates: A ${short(la)}, B ${short(lb)}`);
    });
    await step('a message with <script> and <b> is shown as literal text, nothing runs or renders', async () => {
      await a.fill('#message', XSS);
      await a.click('#send');
      await until('the HTML message as text on A and B', async () => [await listTexts(a), await listTexts(b)],
        (s) => s[0].includes(XSS) && s[1].includes(XSS));
      for (const [label, p] of [['A', a], ['B', b]]) {
        const state = await p.evaluate(() => ({
          pwned: typeof window.pwned,
          b: document.querySelectorAll('#messages b').length,
          script: document.querySelectorAll('#messages script').length,
          lastHtml: document.querySelector('#messages li:last-child').innerHTML,
        }));
        if (state.pwned !== 'undefined' || state.b !== 0 || state.script !== 0)
          throw new StepFailed(`${label}: ${short(state)}`);
      }
    });
    await step('A sends "Online users: 999": B\'s count stays 2, A is told why, both chat on', async () => {
      const forged = 'Online users: 999';
      const after = 'after the forgery 之后';
      await a.fill('#message', forged);
      await a.click('#send');
      await a.fill('#message', after);
      await a.click('#send');
      // The room relays in order: once B has the next line, the forged one would have come.
      const [la, lb] = await until('the next line on A and B', async () => [await listTexts(a), await listTexts(b)],
        (st) => st[0].includes(after) && st[1].includes(after));
      const counts = [await textOf(a, '#online'), await textOf(b, '#online')];
      if (counts[0] !== 'Online users: 2' || counts[1] !== 'Online users: 2') throw new StepFailed(`counts ${short(counts)}`);
      if (lb.some((t) => t.includes('999'))) throw new StepFailed(`B heard it: ${short(lb, 400)}`);
      const told = la.filter((t) => t.startsWith('Not sent: ') && t.includes('"Online users: "'));
      if (told.length !== 1) throw new StepFailed(`A's list: ${short(la, 400)}`);
      if (await textOf(a, '#status') !== 'connected') throw new StepFailed('A was disconnected');
    });
    await step('each page shows the welcome line once and no "Online users:" line in the list', async () => {
      for (const [label, p] of [['A', a], ['B', b]]) {
        const l = await listTexts(p);
        if (count(l, WELCOME) !== 1 || l[0] !== WELCOME || l.some((t) => t.startsWith('Online users: ')))
          throw new StepFailed(`${label}: ${short(l, 400)}`);
      }
    });
    await screenshot(b, 'chat_page_1_page_b');
    await step('closing page B makes page A show "Online users: 1"', async () => {
      await b.close();
      await until('"Online users: 1" on A', () => textOf(a, '#online'), (s) => s === 'Online users: 1');
    });
    await step('no uncaught errors on the pages', async () => {
      if (errors.length) throw new StepFailed(short(errors, 400));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 2. The seed tutorial's classic page, served elsewhere, talking to minimal_chat
// ---------------------------------------------------------------------------------------------

async function startStaticServer(cleanups) {
  const html = await readFile(SEED_PAGE);
  const http = createServer((req, res) => {
    const path = new URL(req.url, 'http://127.0.0.1').pathname;
    if (req.method === 'GET' && (path === '/' || path === '/seed_style_page.html')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' });
      res.end(html);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
    }
  });
  await new Promise((res, rej) => {
    http.once('error', rej);
    http.listen(0, '127.0.0.1', res);
  });
  cleanups.push(() => new Promise((r) => { http.closeAllConnections?.(); http.close(() => r()); }));
  return http.address().port;
}

async function seedPage() {
  await scenario('2 seed-style page', async (ctx) => {
    const server = await startServer(ctx);
    const httpPort = await startStaticServer(ctx.cleanups);
    const context = await launchBrowser(ctx.cleanups);
    const errors = [];
    const pageUrl = `http://127.0.0.1:${httpPort}/seed_style_page.html?ws=${encodeURIComponent(server.url)}`;
    let p1, p2;

    await step(`seed page 1 (${pageUrl}) connects and gets the welcome line first`, async () => {
      p1 = await openPage(context, pageUrl, errors, 'seed1');
      ctx.shots.push([p1, 'chat_page_2_seed_page_1']);
      const l = await until('welcome on seed page 1', () => listTexts(p1), (s) => s.includes(WELCOME));
      if (l[0] !== WELCOME) throw new StepFailed(`first line ${short(l[0])}, list ${short(l)}`);
    });
    await step('seed page 2 connects and gets the welcome line first; page 1 sees "Online users: 2"', async () => {
      p2 = await openPage(context, pageUrl, errors, 'seed2');
      ctx.shots.push([p2, 'chat_page_2_seed_page_2']);
      const l = await until('welcome on seed page 2', () => listTexts(p2), (s) => s.includes(WELCOME));
      if (l[0] !== WELCOME) throw new StepFailed(`first line ${short(l[0])}, list ${short(l)}`);
      await until('"Online users: 2" on seed page 1', () => listTexts(p1), (s) => s.includes('Online users: 2'));
    });
    const m1 = '种子页面 1 说：你好 🚀';
    const m2 = 'seed page 2 says hi back 👋 再见';
    await step('page 1 sends with the Send button: both pages show it', async () => {
      await p1.fill('#message', m1);
      await p1.click('button');
      await until('message 1 on both', async () => [await listTexts(p1), await listTexts(p2)],
        (s) => s[0].includes(m1) && s[1].includes(m1));
    });
    await step('page 2 sends with the Send button: both pages show both, once each', async () => {
      await p2.fill('#message', m2);
      await p2.click('button');
      const [l1, l2] = await until('message 2 on both', async () => [await listTexts(p1), await listTexts(p2)],
        (s) => s[0].includes(m2) && s[1].includes(m2));
      for (const [label, l] of [['1', l1], ['2', l2]])
        if (count(l, m1) !== 1 || count(l, m2) !== 1 || count(l, WELCOME) !== 1)
          throw new StepFailed(`page ${label}: ${short(l, 400)}`);
    });
    await step('page 1 sends "Online users: 999": page 2 never shows it, page 1 is told why', async () => {
      for (const text of ['Online users: 999', 'and then this 然后']) {
        await p1.fill('#message', text);
        await p1.click('button');
      }
      const [l1, l2] = await until('the next line on both', async () => [await listTexts(p1), await listTexts(p2)],
        (st) => st[0].includes('and then this 然后') && st[1].includes('and then this 然后'));
      if (l1.includes('Online users: 999') || l2.includes('Online users: 999')) throw new StepFailed(`relayed: ${short(l2, 400)}`);
      if (!l1.some((t) => t.startsWith('Not sent: '))) throw new StepFailed(`page 1 not told: ${short(l1, 400)}`);
    });
    await step('no uncaught errors on the seed pages', async () => {
      if (errors.length) throw new StepFailed(short(errors, 400));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 3. Reconnection after the server dies and comes back on the same port
// ---------------------------------------------------------------------------------------------

async function reconnect() {
  await scenario('3 reconnect', async (ctx) => {
    const first = await startServer(ctx);
    const port = first.port;
    const context = await launchBrowser(ctx.cleanups);
    const errors = [];
    const pageUrl = `http://127.0.0.1:${port}/`;
    let page;
    const state = async () => ({
      status: await textOf(page, '#status'),
      online: await textOf(page, '#online'),
      list: await listTexts(page),
    });

    await step(`page loads ${pageUrl} and connects`, async () => {
      page = await openPage(context, pageUrl, errors, 'page');
      ctx.shots.push([page, 'chat_page_3_reconnected']);
      await until('connected + welcome', state, (s) => s.status === 'connected' && count(s.list, WELCOME) === 1);
      // Record every #status text with a timestamp (also proves later that the page was not reloaded).
      await page.evaluate(() => {
        const el = document.getElementById('status');
        window.__statusLog = [{ t: performance.now(), text: el.textContent }];
        new MutationObserver(() => window.__statusLog.push({ t: performance.now(), text: el.textContent }))
          .observe(el, { childList: true, characterData: true, subtree: true });
      });
    });
    const statusLog = () => page.evaluate(() => window.__statusLog && window.__statusLog.map((e) => e.text));

    await step('server killed with SIGKILL: #status shows "offline…"', async () => {
      first.killedOnPurpose = true;
      const info = await first.kill9();
      if (info.signal !== 'SIGKILL') throw new StepFailed(`server exit ${short(info)}`);
      const s = await until('#status starting with "offline"', state, (st) => st.status.startsWith('offline'));
      return short(s.status);
    });
    await screenshot(page, 'chat_page_3_offline');
    await step('the page retries by itself (offline → connecting… → offline again, back-off grows)', async () => {
      const log = await until(
        'a retry that fails again',
        statusLog,
        (l) => {
          if (!l) return false;
          const i = l.findIndex((t) => t.startsWith('offline'));
          const j = l.findIndex((t, k) => k > i && t.startsWith('connecting'));
          return i >= 0 && j > i && l.some((t, k) => k > j && t.startsWith('offline'));
        },
        6000
      );
      const offline = log.filter((t) => t.startsWith('offline'));
      const delays = offline.map((t) => (/retrying in (\d+(?:\.\d+)?) s/.exec(t) || [])[1]);
      if (delays[0] !== '1' || delays[1] !== '2') throw new StepFailed(`back-off ${short(delays)}; log ${short(log, 400)}`);
      return `status log ${short(log, 300)}`;
    });

    let second, restartedAt;
    await step(`a new minimal_chat starts on the same port ${port}`, async () => {
      second = new Server(args.minimalChat);
      ctx.servers.push(second);
      await second.start(port);
      restartedAt = Date.now();
    });
    await step(`the page reconnects by itself within ${RECONNECT_LIMIT_MS / 1000} s: "connected", a fresh welcome, "Online users: 1"`, async () => {
      const s = await until(
        'reconnection',
        state,
        (st) => st.status === 'connected' && count(st.list, WELCOME) === 2 && st.online === 'Online users: 1',
        RECONNECT_LIMIT_MS
      );
      const log = await statusLog();
      if (!log) throw new StepFailed('the page was reloaded (status log gone); it must reconnect by itself');
      if (s.list[s.list.length - 1] !== WELCOME) throw new StepFailed(`list ${short(s.list)}`);
      return `after ${((Date.now() - restartedAt) / 1000).toFixed(1)} s`;
    });
    await step('the reconnected page still chats', async () => {
      const msg = '重新连接后的消息 🔁';
      await page.fill('#message', msg);
      await page.press('#message', 'Enter');
      await until('own message echoed back', () => listTexts(page), (l) => l.includes(msg));
    });
    await step('no uncaught errors on the page', async () => {
      if (errors.length) throw new StepFailed(short(errors, 400));
    });
  });
}

// ---------------------------------------------------------------------------------------------

try {
  await ownPage();
  await seedPage();
  await reconnect();
} catch (e) {
  report(false, 'unexpected error', e && e.stack ? e.stack : String(e));
}
finish();
