#!/usr/bin/env node
// Two Chromium pages chat through nginx (started by tests/nginx/nginx_proxy.py):
//   node tests/nginx/browser_via_nginx.mjs --url http://127.0.0.1:PORT/ [--chromium PATH]
import {
  finish, launchBrowser, loadChromium, parseArgs, scenario, step, until,
} from '../browser/harness.mjs';
import { deadline } from '../support/processes.mjs';

deadline(120, 'browser_via_nginx.mjs');

const SCRIPT = 'browser_via_nginx.mjs';
const args = parseArgs(SCRIPT, { url: '', chromium: '/usr/bin/chromium' }, ['url']);
const chromium = loadChromium(SCRIPT);

const texts = (page) => page.$$eval('#messages .bubble', (els) =>
  els.map((el) => `${el.querySelector('.meta').textContent.split(' · ')[0]}: ${el.querySelector('.text').textContent}`));

await scenario('Chromium through nginx', async (cleanups) => {
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  const pages = [];
  await step('two pages load the chat from nginx and connect through it', async () => {
    for (const name of ['carol', 'dave']) {
      const page = await context.newPage();
      await page.goto(`${args.url}?name=${name}`);
      await until(`${name} connected, 2 online`, () => page.$eval('#banner', (el) => el.textContent), (s) => s === 'connected');
      pages.push(page);
    }
    await until('2 online', () => pages[0].$eval('#online', (el) => el.textContent), (s) => s === '2');
  });
  await step('they chat through nginx', async () => {
    await pages[0].fill('#text', 'via nginx 经由代理 🔀');
    await pages[0].press('#text', 'Enter');
    await until('carol\'s line on dave\'s page', () => texts(pages[1]), (l) => l.includes('carol: via nginx 经由代理 🔀'));
  });
});
finish();
