// The chat page over https:// in headless Chromium, chatting over wss:// (minimal_chat with
// --tls-cert/--tls-key): two pages, Chinese and emoji, the online count.
//   node tests/tls/browser_https.mjs --minimal-chat PATH --chromium /usr/bin/chromium
//
// The dev certificate is self-signed for localhost. Chromium trusts only its NSS database,
// which a throw-away profile cannot easily be given a CA in (it needs certutil and $HOME), so
// this test tells the browser to accept certificate errors (Playwright's ignoreHTTPSErrors).
// That is acceptable for a localhost dev certificate only; the Python, Node and openssl tests
// verify the same certificate strictly.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { browserEnv, deadline } from '../support/processes.mjs';
import { checker, devCert, flag, startTls } from './start_tls_server.mjs';

deadline(120, 'browser_https.mjs');
const { chromium } = createRequire(import.meta.url)('playwright-core');
const { check, finish } = checker();
const tls = devCert();
const profile = mkdtempSync(join(tmpdir(), 'wschat-chromium-'));
let server;
let context;

const until = async (what, probe, ok, ms = 10000) => {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await probe();
    if (ok(last)) return check(true, what);
    await new Promise((r) => setTimeout(r, 50));
  }
  check(false, what, JSON.stringify(last));
};
const texts = (page) => page.$$eval('#messages li', (items) => items.map((li) => li.textContent));
const text = (page, sel) => page.$eval(sel, (el) => el.textContent);

try {
  server = await startTls(flag('--minimal-chat'), tls);
  context = await chromium.launchPersistentContext(profile, {
    executablePath: flag('--chromium'),
    headless: true,
    ignoreHTTPSErrors: true,
    env: browserEnv(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const url = `https://${server.host}:${server.port}/`;
  const errors = [];
  const [a, b] = [await context.newPage(), await context.newPage()];
  for (const page of [a, b]) {
    page.on('pageerror', (e) => errors.push(e.message));
    const response = await page.goto(url);
    check(response.ok() && response.url().startsWith('https://'), `page loads over ${response.url()}`);
    const protocol = (await response.securityDetails())?.protocol;
    check(/^TLS 1\.[23]$/.test(protocol ?? ''), `page uses ${protocol}`);
  }
  await until('both pages connected over wss:// and see 2 online', async () =>
    [await text(a, '#status'), await text(b, '#status'), await text(a, '#online'), await text(b, '#online')],
  (v) => v[0] === 'connected' && v[1] === 'connected' && v[2] === 'Online users: 2' && v[3] === 'Online users: 2');
  const line = '你好，世界 🎉 over wss';
  await a.fill('#message', line);
  await a.click('#send');
  await until('B shows A\'s line', () => texts(b), (l) => l.includes(line));
  await until('A shows its own line', () => texts(a), (l) => l.includes(line));
  check(errors.length === 0, 'no page errors', errors.join('; '));
} catch (e) {
  check(false, 'scenario', e.stack);
} finally {
  if (context) await context.close();
  if (server) check((await server.stop()) === 0, 'minimal_chat exits 0 after SIGTERM');
  rmSync(profile, { recursive: true, force: true });
  tls.cleanup();
}
finish();
