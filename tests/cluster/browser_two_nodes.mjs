#!/usr/bin/env node
// Two Chromium pages on two different chat_server nodes of one Redis chat: each page loads
// from its own node and connects to it, yet they see each other in the room's member list and
// count, and chat both ways. redis-server (on a Unix socket in a temp dir) and the nodes are
// started and stopped here.
//
//   node tests/cluster/browser_two_nodes.mjs --chat-server PATH [--redis-server PATH] [--chromium PATH]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  Child, finish, launchBrowser, loadChromium, parseArgs, scenario, startChatServer, step, until,
} from '../browser/harness.mjs';
import { deadline } from '../support/processes.mjs';

deadline(120, 'browser_two_nodes.mjs');

const SCRIPT = 'browser_two_nodes.mjs';
const args = parseArgs(SCRIPT, {
  chatServer: '', redisServer: '/usr/bin/redis-server', chromium: '/usr/bin/chromium',
}, ['chatServer']);
const chromium = loadChromium(SCRIPT);

const stateOf = (page) => page.evaluate(() => ({
  banner: document.getElementById('banner').textContent,
  online: document.getElementById('online').textContent,
  members: [...document.querySelectorAll('#members li')].map((li) => li.textContent),
  bubbles: [...document.querySelectorAll('#messages .bubble')].map((li) =>
    `${li.querySelector('.meta').textContent.split(' · ')[0]}: ${li.querySelector('.text').textContent}`),
}));

await scenario('two pages on two nodes of one Redis', async (cleanups) => {
  const dir = await mkdtemp(join(tmpdir(), 'wschat-cluster-browser-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const socket = join(dir, 'redis.sock');
  const nodes = [];
  await step('redis-server on a Unix socket and two chat_server nodes on it start', async () => {
    const redis = new Child(args.redisServer, ['--port', '0', '--unixsocket', socket, '--save', '',
      '--appendonly', 'no', '--daemonize', 'no'], /ready to accept connections/i);
    cleanups.push(() => redis.stop());
    await redis.started;
    for (let i = 0; i < 2; i++) {
      const node = await startChatServer(args.chatServer, 0, ['--redis', `unix://${socket}`]);
      cleanups.push(() => node.stop());
      nodes.push(node);
    }
  });
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  const pages = [];
  await step('erin loads the page from node1 and frank from node2, each connected to its node', async () => {
    for (const [name, node] of [['erin', nodes[0]], ['frank', nodes[1]]]) {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${node.port}/?name=${name}`);
      await until(`${name} connected`, () => stateOf(page), (s) => s.banner === 'connected');
      pages.push(page);
    }
    await until('node1 logs erin and node2 frank', () => nodes.map((n) => n.lines.join('\n')),
      ([one, two]) => /^join erin /m.test(one) && /^join frank /m.test(two) && !/^join frank /m.test(one));
  });
  await step('each page counts 2 online and lists both names, across the nodes', async () => {
    for (const page of pages)
      await until('2 online, erin and frank listed', () => stateOf(page),
        (s) => s.online === '2' && ['erin', 'frank'].every((n) => s.members.some((m) => m.startsWith(n))));
  });
  await step('they chat both ways', async () => {
    await pages[0].fill('#text', 'hello from node1 👋');
    await pages[0].press('#text', 'Enter');
    await until('erin\'s line on frank\'s page', () => stateOf(pages[1]), (s) => s.bubbles.includes('erin: hello from node1 👋'));
    await pages[1].fill('#text', 'and back from node2 ↩');
    await pages[1].press('#text', 'Enter');
    await until('frank\'s line on erin\'s page', () => stateOf(pages[0]), (s) => s.bubbles.includes('frank: and back from node2 ↩'));
    const [a, b] = await Promise.all(pages.map(stateOf));
    if (a.bubbles.join('\n') !== b.bubbles.join('\n'))
      throw new Error(`the pages show different conversations: ${JSON.stringify([a.bubbles, b.bubbles])}`);
  });
  await step('frank closes his page: erin\'s count falls to 1', async () => {
    await pages[1].close();
    await until('1 online', () => stateOf(pages[0]), (s) => s.online === '1' && !s.members.some((m) => m.startsWith('frank')));
  });
});
finish();
