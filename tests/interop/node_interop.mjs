#!/usr/bin/env node
// Interop test: the independent `ws` (Node.js) client against wschat's example servers.
//
//   npm ci   # once, at the repo root: installs the pinned `ws` from package-lock.json
//   node tests/interop/node_interop.mjs \
//       --minimal-chat build/.../minimal_chat --echo-server build/.../echo_server
//
// With `--deflate shared` or `--deflate per-connection` the servers are started with that flag
// and the client offers permessage-deflate, compressing everything it sends: every connection
// must have negotiated the extension as that mode says, and every scenario runs compressed.
//
// Each server is started here with `--address 127.0.0.1 --port 0`; the script waits for its
// `listening on ws://HOST:PORT/` line, runs its scenario, then stops it with SIGTERM and
// expects exit status 0. One line is printed per check, then `N passed, M failed`; exit
// status 1 on any failure. Needs Node 18+.

import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { deadline, track } from '../support/processes.mjs';

const LISTEN_TIMEOUT_MS = 10000; // wait for the "listening on" line
const STOP_TIMEOUT_MS = 5000; // wait for exit after SIGTERM
const RECV_TIMEOUT_MS = 5000; // wait for an expected message
const QUIET_PERIOD_MS = 300; // silence used to detect duplicate / unexpected messages

const LISTEN_RE = /^listening on (ws:\/\/\S+:(\d+)\/)$/;
const WELCOME = 'Welcome to the chat room!';
const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1048576];

let WebSocket;
try {
  // Resolved from the repo root's node_modules (npm ci), wherever the script is run from.
  WebSocket = createRequire(new URL('../../package.json', import.meta.url))('ws');
} catch (e) {
  process.stderr.write(
    `node_interop.mjs: cannot load 'ws' (${e.message}). Run 'npm ci' at the repository root.\n`
  );
  process.exit(2);
}
const wsVersion = (() => {
  try {
    return createRequire(new URL('../../package.json', import.meta.url))('ws/package.json').version;
  } catch {
    return '?';
  }
})();

const CLIENT_OPTS = { perMessageDeflate: false, maxPayload: 1 << 30, handshakeTimeout: 10000 };
// The server's Sec-WebSocket-Extensions answer to `ws`'s default offer ("permessage-deflate;
// client_max_window_bits") in each mode of the examples' --deflate.
const DEFLATE_ANSWERS = {
  shared: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
  'per-connection': 'permessage-deflate; server_max_window_bits=11; client_max_window_bits=11',
};
let deflateMode = null; // from --deflate

class CheckFailed extends Error {}

const results = { passed: 0, failed: 0 };
function check(ok, name, detail = '') {
  if (ok) {
    results.passed++;
    console.log(`PASS ${name}`);
  } else {
    results.failed++;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}

function short(value, limit = 80) {
  let text;
  if (Buffer.isBuffer(value)) text = `<binary ${value.length} bytes>`;
  else text = JSON.stringify(value);
  if (text === undefined) text = String(value);
  return text.length <= limit ? text : `${text.slice(0, limit)}...(len ${value.length})`;
}

// ---------------------------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------------------------

class Server {
  constructor(name, path) {
    this.name = name;
    this.path = path;
    this.proc = null;
    this.url = null;
    this.exitInfo = null; // { code, signal } once exited
    this.exited = null; // promise
  }

  start() {
    return new Promise((resolve, reject) => {
      const flags = deflateMode ? ['--deflate', deflateMode] : [];
      const proc = track(spawn(this.path, [...flags, '--address', '127.0.0.1', '--port', '0'], {
        stdio: ['ignore', 'pipe', 'inherit'], // stderr inherited: diagnostics show up here
      }));
      this.proc = proc;
      this.exited = new Promise((res) => {
        proc.on('exit', (code, signal) => {
          this.exitInfo = { code, signal };
          res(this.exitInfo);
        });
      });
      const seen = [];
      let done = false;
      const fail = (why) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(new CheckFailed(`${this.name} ${why} (stdout so far: ${JSON.stringify(seen)})`));
      };
      const timer = setTimeout(
        () => fail(`did not print 'listening on ws://HOST:PORT/' within ${LISTEN_TIMEOUT_MS / 1000} s`),
        LISTEN_TIMEOUT_MS
      );
      proc.on('error', (e) => fail(`could not be started: ${e.message}`));
      proc.on('exit', (code, signal) =>
        fail(`exited (code ${code}, signal ${signal}) before printing the listening line`)
      );
      const rl = createInterface({ input: proc.stdout, crlfDelay: Infinity });
      rl.on('line', (raw) => {
        const line = raw.replace(/\r$/, '');
        if (done) {
          // Keep draining so a chatty server never blocks on a full pipe.
          console.log(`[${this.name} stdout] ${line}`);
          return;
        }
        seen.push(line);
        const m = LISTEN_RE.exec(line);
        if (m) {
          done = true;
          clearTimeout(timer);
          this.url = m[1];
          resolve(this.url);
        }
      });
    });
  }

  // SIGTERM, wait up to STOP_TIMEOUT_MS, SIGKILL if still running. Returns [ok, detail].
  async stop() {
    if (!this.proc || this.proc.pid === undefined) return [true, 'not started'];
    if (this.exitInfo) {
      return [false, `had already exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal})`];
    }
    this.proc.kill('SIGTERM');
    let timer;
    const timeout = new Promise((res) => {
      timer = setTimeout(() => res(null), STOP_TIMEOUT_MS);
    });
    const info = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (!info) {
      this.proc.kill('SIGKILL');
      await this.exited;
      return [false, `did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM; killed`];
    }
    if (info.code !== 0) {
      return [false, `exit code ${info.code}, signal ${info.signal} after SIGTERM`];
    }
    return [true, 'exit status 0'];
  }
}

// ---------------------------------------------------------------------------------------------
// Client with a receive queue
// ---------------------------------------------------------------------------------------------

class Client {
  constructor(name, ws) {
    this.name = name;
    this.ws = ws;
    this.queue = []; // { data: Buffer, isBinary }
    this.waiters = [];
    this.closeInfo = null; // { code, reason }
    this.closed = new Promise((res) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        res(this.closeInfo);
        this._wake();
      });
    });
    ws.on('message', (data, isBinary) => {
      this.queue.push({ data, isBinary });
      this._wake();
    });
    ws.on('error', (e) => {
      this.error = e;
      this._wake();
    });
  }

  static connect(name, url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, CLIENT_OPTS);
      // Attach handlers before 'open' so nothing sent right after the handshake is lost.
      const client = new Client(name, ws);
      const onError = (e) => reject(new CheckFailed(`${name} could not connect: ${e.message}`));
      ws.once('error', onError);
      let answer = null; // the server's Sec-WebSocket-Extensions
      ws.once('upgrade', (res) => { answer = res.headers['sec-websocket-extensions'] ?? null; });
      ws.once('open', () => {
        ws.off('error', onError);
        if (deflateMode) {
          if (!check(answer === DEFLATE_ANSWERS[deflateMode] && ws.extensions === 'permessage-deflate',
            `deflate ${deflateMode}: ${name} negotiated`,
            `Sec-WebSocket-Extensions ${JSON.stringify(answer)}, ws.extensions ${JSON.stringify(ws.extensions)}`)) {
            ws.terminate();
            reject(new CheckFailed('permessage-deflate not negotiated as expected'));
            return;
          }
        }
        resolve(client);
      });
    });
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  // Next message, or null on timeout / connection closed.
  async next(timeoutMs = RECV_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.queue.length) return this.queue.shift();
      if (this.closeInfo || this.error) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  // Next message as text; describes what arrived instead when it is not a text message.
  async nextText(timeoutMs = RECV_TIMEOUT_MS) {
    const m = await this.next(timeoutMs);
    if (!m) return this.closeInfo ? `<connection closed, code ${this.closeInfo.code}>` : '<nothing within timeout>';
    if (m.isBinary) return `<binary message ${m.data.length} bytes>`;
    return m.data.toString('utf8');
  }

  // Everything arriving within the quiet period.
  async drainQuiet(periodMs = QUIET_PERIOD_MS) {
    const got = [];
    for (;;) {
      const m = await this.next(periodMs);
      if (!m) return got;
      got.push(m);
    }
  }

  async close(code, reason) {
    if (this.closeInfo) return this.closeInfo;
    this.ws.close(code, reason);
    let timer;
    const timeout = new Promise((res) => {
      timer = setTimeout(() => res(null), 5000);
    });
    const info = await Promise.race([this.closed, timeout]);
    clearTimeout(timer);
    if (!info) {
      this.ws.terminate();
      await this.closed;
      return { code: `<no close handshake within 5 s; terminated, ${this.closeInfo.code}>`, reason: '' };
    }
    return info;
  }
}

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

// A string whose UTF-8 encoding is exactly n bytes, mixing 1-, 2-, 3- and 4-byte characters.
function utf8Text(n) {
  const pattern = ['a', 'é', '€', '中', '😀', 'z', 'ß', '文', '🎉'];
  const parts = [];
  let size = 0;
  for (let i = 0; size < n; i++) {
    let ch = pattern[i % pattern.length];
    let len = Buffer.byteLength(ch, 'utf8');
    if (size + len > n) {
      ch = 'x';
      len = 1;
    }
    parts.push(ch);
    size += len;
  }
  const text = parts.join('');
  if (Buffer.byteLength(text, 'utf8') !== n) throw new Error(`utf8Text(${n}) is wrong`);
  return text;
}

function binaryPayload(n) {
  const buf = Buffer.alloc(n);
  for (let i = 0; i < n; i++) buf[i] = (i * 37 + 11) & 0xff;
  return buf;
}

// ---------------------------------------------------------------------------------------------
// minimal_chat
// ---------------------------------------------------------------------------------------------

async function chatScenario(url) {
  const names = ['alice', 'bob', 'carol'];
  const clients = {};
  try {
    // Join one after another; each sees the welcome then its own count, and every earlier
    // member sees the new count.
    for (let idx = 0; idx < names.length; idx++) {
      const name = names[idx];
      const count = idx + 1;
      const c = await Client.connect(name, url);
      clients[name] = c;
      const first = await c.nextText();
      if (!check(first === WELCOME, `chat: ${name} first receives the welcome`, `got ${short(first)}`)) {
        throw new CheckFailed('no welcome');
      }
      const second = await c.nextText();
      if (!check(second === `Online users: ${count}`, `chat: ${name} then receives 'Online users: ${count}'`,
        `got ${short(second)}`)) {
        throw new CheckFailed('bad count');
      }
      for (const other of names.slice(0, idx)) {
        const got = await clients[other].nextText();
        if (!check(got === `Online users: ${count}`, `chat: ${other} sees 'Online users: ${count}' when ${name} joins`,
          `got ${short(got)}`)) {
          throw new CheckFailed('bad count');
        }
      }
    }

    // Each member sends distinct non-ASCII messages; all are relayed to everyone.
    const perSender = 3;
    const sent = {};
    const sender = new Map();
    for (const name of names) {
      sent[name] = [];
      for (let k = 0; k < perSender; k++) {
        const msg = `${name} #${k}: 你好，世界 🌍🎉 — ünïcödé ✓ ${'ж'.repeat(k)}`;
        sent[name].push(msg);
        sender.set(msg, name);
      }
    }
    for (let k = 0; k < perSender; k++) {
      for (const name of names) clients[name].ws.send(sent[name][k]);
    }
    const expectedTotal = perSender * names.length;

    for (const name of names) {
      const c = clients[name];
      const got = [];
      while (got.length < expectedTotal) {
        const m = await c.next();
        if (!m) break;
        got.push(m);
      }
      got.push(...(await c.drainQuiet()));
      const binary = got.filter((m) => m.isBinary);
      check(binary.length === 0, `chat: ${name} receives the relayed messages as text`,
        `${binary.length} binary message(s)`);
      const texts = got.filter((m) => !m.isBinary).map((m) => m.data.toString('utf8'));
      const countOf = (m) => texts.filter((t) => t === m).length;
      const missing = [...sender.keys()].filter((m) => countOf(m) === 0);
      const dups = [...sender.keys()].filter((m) => countOf(m) > 1);
      const extra = texts.filter((t) => !sender.has(t));
      check(missing.length === 0 && dups.length === 0 && extra.length === 0,
        `chat: ${name} receives all ${expectedTotal} messages exactly once`,
        `missing ${missing.length} ${short(missing.slice(0, 2))}, duplicated ${short(dups.slice(0, 2))}, ` +
          `unexpected ${short(extra.slice(0, 3))}`);
      const orderOk = missing.length === 0 && dups.length === 0 &&
        names.every((s) => JSON.stringify(texts.filter((t) => sender.get(t) === s)) === JSON.stringify(sent[s]));
      check(orderOk, `chat: ${name} sees each sender's messages in send order`,
        'per-sender order differs (or messages missing/duplicated)');
    }

    // Leave one by one (normal close 1000); the remaining members see the new count.
    const remaining = [...names];
    for (const leaver of names.slice(0, 2)) {
      const info = await clients[leaver].close(1000, 'leaving');
      check(info.code === 1000, `chat: ${leaver} closes normally (server answers with 1000)`,
        `observed close code ${info.code}, reason ${short(info.reason)}`);
      remaining.splice(remaining.indexOf(leaver), 1);
      const count = remaining.length;
      for (const other of remaining) {
        const got = await clients[other].nextText();
        check(got === `Online users: ${count}`, `chat: ${other} sees 'Online users: ${count}' after ${leaver} leaves`,
          `got ${short(got)}`);
      }
    }
    const last = remaining[0];
    const info = await clients[last].close(1000);
    check(info.code === 1000, `chat: ${last} closes normally`, `observed close code ${info.code}`);
  } finally {
    for (const c of Object.values(clients)) {
      if (!c.closeInfo) c.ws.terminate();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// echo_server
// ---------------------------------------------------------------------------------------------

async function echoScenario(url) {
  const c = await Client.connect('echo', url);
  try {
    for (const kind of ['text', 'binary']) {
      for (const n of SIZES) {
        const isText = kind === 'text';
        const payload = isText ? utf8Text(n) : binaryPayload(n);
        const wantBytes = isText ? Buffer.from(payload, 'utf8') : payload;
        c.ws.send(payload, { binary: !isText });
        const m = await c.next(10000);
        const name = `echo: ${kind} ${n} bytes`;
        if (!m) {
          check(false, name, c.closeInfo ? `connection closed (code ${c.closeInfo.code}) instead of an echo`
            : 'no echo within 10 s');
          throw new CheckFailed('echo missing');
        }
        if (m.isBinary === isText) {
          check(false, name, `echoed as ${m.isBinary ? 'binary' : 'text'}`);
        } else if (!m.data.equals(wantBytes)) {
          check(false, name, `echo differs (got ${m.data.length} bytes)`);
        } else {
          check(true, name);
        }
      }
    }
    // A message in fragments (compressed as one stream under --deflate, RSV1 on the first
    // frame only) comes back whole.
    const pieces = [utf8Text(3000), utf8Text(1), utf8Text(70000)];
    pieces.forEach((p, i) => c.ws.send(p, { fin: i === pieces.length - 1 }));
    const whole = await c.next(10000);
    check(whole && !whole.isBinary && whole.data.toString('utf8') === pieces.join(''),
      'echo: a text message sent in three fragments', whole ? `got ${whole.data.length} bytes` : 'no echo');
    const extra = await c.drainQuiet();
    check(extra.length === 0, 'echo: no unexpected extra messages', `${extra.length} extra`);
    const info = await c.close(1000, 'bye');
    check(info.code === 1000, `echo: close 1000 'bye' answered with close code 1000 (server reason ${short(info.reason)})`,
      `observed close code ${info.code}, reason ${short(info.reason)}`);
  } finally {
    if (!c.closeInfo) c.ws.terminate();
  }
}

// ---------------------------------------------------------------------------------------------

async function runWithServer(name, path, scenario) {
  const server = new Server(name, path);
  try {
    await server.start();
    check(true, `${name}: started, ${server.url}`);
    await scenario(server.url);
  } catch (e) {
    check(false, `${name}: scenario aborted`, e instanceof CheckFailed ? e.message : String(e && e.stack || e));
  } finally {
    const [ok, detail] = await server.stop();
    check(ok, `${name}: exits with status 0 on SIGTERM`, detail);
  }
}

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if ((a === '--minimal-chat' || a === '--echo-server' || a === '--deflate') && i + 1 < argv.length) {
      args[a] = argv[++i];
    } else if (a.startsWith('--minimal-chat=') || a.startsWith('--echo-server=')) {
      const eq = a.indexOf('=');
      args[a.slice(0, eq)] = a.slice(eq + 1);
    } else {
      return null;
    }
  }
  if (!args['--minimal-chat'] || !args['--echo-server']) return null;
  if (args['--deflate'] !== undefined && !(args['--deflate'] in DEFLATE_ANSWERS)) return null;
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!args) {
    process.stderr.write('usage: node tests/interop/node_interop.mjs --minimal-chat PATH --echo-server PATH' +
      ' [--deflate shared|per-connection]\n');
    return 2;
  }
  if (args['--deflate']) {
    deflateMode = args['--deflate'];
    CLIENT_OPTS.perMessageDeflate = { threshold: 0 }; // compress every message, even empty ones
  }
  deadline(200, 'node_interop.mjs');
  console.log(`node ${process.version}, ws ${wsVersion}`);
  const runs = [
    ['minimal_chat', args['--minimal-chat'], chatScenario],
    ['echo_server', args['--echo-server'], echoScenario],
  ];
  for (const [name, path, scenario] of runs) {
    try {
      accessSync(path, fsConstants.X_OK);
    } catch {
      check(false, `${name}: executable exists`, `${JSON.stringify(path)} is not an executable file`);
      continue;
    }
    await runWithServer(name, path, scenario);
  }
  console.log(`${results.passed} passed, ${results.failed} failed`);
  return results.failed === 0 ? 0 : 1;
}

process.exitCode = await main();
