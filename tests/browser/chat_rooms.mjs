#!/usr/bin/env node
// Browser test: examples/chat_server's rooms, history and resume (chat::lobby) in headless
// Chromium.
//
//   node tests/browser/chat_rooms.mjs --chat-server build/.../chat_server \
//        [--chromium /usr/bin/chromium] [--artifacts DIR]
//
// Scenarios: (a) a page whose network drops for 10 s while the other chats gets every missed
// message exactly once and in order, keeps its name, and the online count stays right; what
// it typed meanwhile is delivered once; (b) a reloaded page shows the recent history under
// the same name, and sends what was typed offline before the reload, once; (c) a server restart (history lost) is shown, not hidden; (d) the room list:
// join, switch, unread counts, leave; (e) the typing indicator; (f) a room left while offline
// is left on the server once back; a page retries at once when the browser is online again.
//
// The network drop: Playwright's context.setOffline(true) does not close an open WebSocket
// in headless Chromium (checked: the page stays "connected" and keeps receiving). So page B
// loads the chat through a TCP relay in this script, and "offline" cuts the browser's side
// of every relayed connection and refuses new ones, while the server's side stays open and
// unanswered: the server sees nothing, as with a phone that switched networks.

import net from 'node:net';

import {
  finish, launchBrowser, loadChromium, parseArgs, scenario, screenshot, short, sleep,
  startChatServer, step, StepFailed, until,
} from './harness.mjs';
import { deadline } from '../support/processes.mjs';

deadline(220, 'chat_rooms.mjs');

const SCRIPT = 'chat_rooms.mjs';
const args = parseArgs(SCRIPT, {
  chatServer: process.env.WSCHAT_CHAT_SERVER || '', chromium: '/usr/bin/chromium', artifacts: 'tests/artifacts',
}, ['chatServer']);
const chromium = loadChromium(SCRIPT);

/// A TCP relay to 127.0.0.1:`target` whose browser side can be cut.
class Relay {
  constructor(target) {
    this.target = target;
    this.pairs = new Set();
    this.offline = false;
  }

  async start() {
    this.server = net.createServer((client) => this.accept(client));
    await new Promise((res, rej) => this.server.listen(0, '127.0.0.1', res).once('error', rej));
    this.port = this.server.address().port;
    return this;
  }

  accept(client) {
    if (this.offline) return client.destroy();
    const upstream = net.connect(this.target, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', () => { if (!pair.cut) end(); });
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /// The browser's connections drop; the server's stay open, their data read and dropped.
  cut() {
    this.offline = true;
    for (const pair of this.pairs) {
      pair.cut = true;
      pair.upstream.unpipe(pair.client);
      pair.upstream.on('data', () => {});
      pair.client.destroy();
    }
  }

  restore() { this.offline = false; }

  async close() {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    await new Promise((res) => this.server.close(res));
  }
}

/// What a page shows of the room on screen, for assertions.
const stateOf = (page) => page.evaluate(() => {
  const log = document.querySelector('#messages .room-log:not([hidden])');
  return {
    banner: document.getElementById('banner').textContent,
    title: document.getElementById('room-title').textContent,
    online: document.getElementById('online').textContent,
    members: [...document.querySelectorAll('#members li')].map((li) => li.textContent),
    texts: log ? [...log.querySelectorAll('.bubble:not(.pending) .text')].map((x) => x.textContent) : [],
    pending: log ? [...log.querySelectorAll('.bubble.pending .text')].map((x) => x.textContent) : [],
    delivered: log ? [...log.querySelectorAll('.bubble.delivered .text')].map((x) => x.textContent) : [],
    notices: log ? [...log.querySelectorAll('.notice')].map((li) => li.textContent) : [],
    rooms: [...document.querySelectorAll('#room-list li')].map((li) => ({
      name: li.querySelector('.room-name').textContent,
      unread: li.querySelector('.unread').hidden ? 0 : Number.parseInt(li.querySelector('.unread').textContent, 10),
      active: li.classList.contains('active'),
    })),
    typing: document.getElementById('typing').textContent,
    stale: document.getElementById('people').classList.contains('stale'),
  };
});

const same = (a, b) => short(a, 5000) === short(b, 5000);

async function open(context, port, name) {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/?name=${encodeURIComponent(name)}`);
  await until(`${name} connected in #general`, () => stateOf(page),
    (s) => s.banner === 'connected' && s.title === '#general' && !s.stale);
  return page;
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

async function noErrors(...pages) {
  const errors = pages.flatMap((p) => p.errors);
  if (errors.length) throw new StepFailed(short(errors));
}

// --------------------------------------------------------------------------------------------

await scenario('a, b: offline for 10 s, then every missed message once and in order; a reload shows the history', async (cleanups) => {
  const server = await startChatServer(args.chatServer);
  cleanups.push(() => server.stop());
  const relay = await new Relay(server.port).start();
  cleanups.push(() => relay.close());
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  const a = await open(context, server.port, 'alice');
  let b = await open(context, relay.port, 'bob');
  const expected = [];

  await step('both pages in #general, 2 online, alice and bob', async () => {
    for (const page of [a, b])
      await until('2 online', () => stateOf(page), (s) => s.online === '2' && same(s.members, ['alice', 'bob']));
    await say(a, 'before 1');
    expected.push('before 1');
    await until('"before 1" on B', () => stateOf(b), (s) => same(s.texts, expected));
  });
  await step('bob\'s network drops: his page goes offline, the server notices nothing', async () => {
    relay.cut();
    await until('B offline', () => stateOf(b), (s) => s.banner.startsWith('offline') && s.stale);
    await say(b, 'typed by bob while away 离线');
    await until('pending on B', () => stateOf(b), (s) => same(s.pending, ['typed by bob while away 离线']));
  });
  await step('alice sends 6 messages over 10 s; her page still shows 2 online', async () => {
    for (let i = 1; i <= 6; i++) {
      await say(a, `missed ${i} 😀`);
      expected.push(`missed ${i} 😀`);
      await sleep(1700);
    }
    await until('A shows its 7 messages', () => stateOf(a), (s) => same(s.texts, expected));
    const s = await stateOf(a);
    if (s.online !== '2' || !same(s.members, ['alice', 'bob'])) throw new StepFailed(short(s));
  });
  await step('back online: bob shows every missed message exactly once, in order, then his own', async () => {
    relay.restore();
    const restored = Date.now();
    expected.push('typed by bob while away 离线');
    const s = await until('B reconnected with the missed messages', () => stateOf(b),
      // The back-off may have just missed the restore: its next try is up to 19 s away.
      (st) => st.banner === 'connected' && st.texts.length >= expected.length, 40000);
    await sleep(500); // a duplicate would come right after
    const t = await stateOf(b);
    if (!same(t.texts, expected) || t.pending.length) throw new StepFailed(`B shows ${short(t.texts, 2000)}, pending ${short(t.pending)}`);
    return `${Date.now() - restored} ms after the network came back; notices ${short(s.notices)}`;
  });
  await step('bob kept his name: no "bob (2)", 2 online on both pages, one "Reconnected", no second "You joined"', async () => {
    for (const page of [a, b])
      await until('2 online, alice and bob', () => stateOf(page), (s) => s.online === '2' && same(s.members, ['alice', 'bob']) && !s.stale);
    const [sa, sb] = [await stateOf(a), await stateOf(b)];
    if (sa.notices.some((n) => n.includes('bob (2)')) || sb.notices.filter((n) => n === 'Reconnected').length !== 1 ||
        sb.notices.filter((n) => n.startsWith('You joined as')).length !== 1 || sa.notices.includes('bob left'))
      throw new StepFailed(`A ${short(sa.notices)}, B ${short(sb.notices)}`);
    if (!same(sa.texts, expected)) throw new StepFailed(`A shows ${short(sa.texts, 2000)}`);
    if (!sb.delivered.includes('typed by bob while away 离线')) throw new StepFailed(`not marked delivered on B: ${short(sb.delivered)}`);
    await until('the server logged the resume', async () => server.lines, (l) => l.includes('resume bob from 127.0.0.1'));
    // The old connection, still open on the server, was replaced (closed with 4001), not
    // left to linger as a second bob.
    await until('the old connection closed', async () => server.lines, (l) => l.includes('leave bob from 127.0.0.1 (4001)'), 10000);
    return short(server.lines.filter((l) => / bob( \(\d\))? from /.test(l)));
  });
  await step('the conversation goes on both ways', async () => {
    await say(a, 'after');
    await say(b, 'after too');
    expected.push('after', 'after too');
    for (const page of [a, b]) await until('both', () => stateOf(page), (s) => same(s.texts, expected));
  });
  await step('the history sent again (a second join of #general) is not shown twice', async () => {
    await b.evaluate(() => window.chat.send({ type: 'join', room: 'general', history: 50 }));
    await sleep(700);
    const s = await stateOf(b);
    if (!same(s.texts, expected) || s.rooms[0].unread !== 0) throw new StepFailed(`B shows ${short(s.texts, 2000)}`);
  });
  await screenshot(b, args.artifacts, 'chat_rooms_a_resumed');
  await step('b: bob reloads: the recent history is shown again, once, under his name', async () => {
    await b.reload();
    await until('B shows the history', () => stateOf(b),
      (s) => s.banner === 'connected' && same(s.texts, expected) && same(s.members, ['alice', 'bob']) && !s.stale, 10000);
    await sleep(500);
    const [sa, sb] = [await stateOf(a), await stateOf(b)];
    if (!same(sb.texts, expected) || !sb.notices.includes('Welcome back, bob')) throw new StepFailed(short(sb));
    if (sa.online !== '2' || !same(sa.members, ['alice', 'bob'])) throw new StepFailed(`A: ${short(sa)}`);
  });
  await step('b: a message typed offline survives a reload and is delivered once', async () => {
    relay.cut();
    await until('B offline', () => stateOf(b), (s) => s.banner.startsWith('offline'));
    await say(b, 'typed, then reloaded');
    await until('pending on B', () => stateOf(b), (s) => same(s.pending, ['typed, then reloaded']));
    relay.restore();
    await b.reload(); // before the page's own next try
    expected.push('typed, then reloaded');
    for (const page of [b, a])
      await until('delivered once', () => stateOf(page), (s) => same(s.texts, expected) && !s.pending.length, 10000);
    await sleep(500);
    const [sa, sb] = [await stateOf(a), await stateOf(b)];
    if (!same(sa.texts, expected) || !same(sb.texts, expected)) throw new StepFailed(`A ${short(sa.texts, 2000)}, B ${short(sb.texts, 2000)}`);
  });
  await step('no uncaught errors on the pages', () => noErrors(a, b));
});

await scenario('c: the server restarts (history lost): the page says so', async (cleanups) => {
  let server = await startChatServer(args.chatServer);
  const port = server.port;
  cleanups.push(() => server.stop());
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  const a = await open(context, port, 'alice');
  await say(a, 'said before the restart');
  await until('delivered', () => stateOf(a), (s) => same(s.texts, ['said before the restart']));
  await step('chat_server stopped and started on the same port: a visible notice that history was lost', async () => {
    await server.stop();
    await until('offline', () => stateOf(a), (s) => s.banner.startsWith('offline'));
    server = await startChatServer(args.chatServer, port);
    const s = await until('the restart notice', () => stateOf(a),
      (st) => st.banner === 'connected' && st.notices.some((n) => n.startsWith('The server restarted')), 10000);
    const warning = a.locator('#messages .room-log:not([hidden]) .notice.warning').last();
    if (!(await warning.isVisible())) throw new StepFailed('the notice is not visible');
    if (!same(s.texts, ['said before the restart'])) throw new StepFailed(`texts ${short(s.texts)}`);
    await until('1 online, alice', () => stateOf(a), (st) => st.online === '1' && same(st.members, ['alice']) && !st.stale);
  });
  await screenshot(a, args.artifacts, 'chat_rooms_c_restarted');
  await step('the page chats on in the new epoch', async () => {
    await say(a, 'after the restart');
    await until('delivered', () => stateOf(a), (s) => same(s.texts, ['said before the restart', 'after the restart']));
  });
  await step('no uncaught errors on the page', () => noErrors(a));
});

await scenario('d, e: rooms (join, switch, unread, leave) and the typing indicator', async (cleanups) => {
  const server = await startChatServer(args.chatServer);
  cleanups.push(() => server.stop());
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  const a = await open(context, server.port, 'alice');
  const b = await open(context, server.port, 'bob');
  const joinRoom = async (page, name) => {
    await page.getByLabel('Room to join').fill(name);
    await page.getByLabel('Room to join').press('Enter');
  };

  await step('e: alice types in #general: bob sees "alice is typing…", which goes when her message comes', async () => {
    await a.locator('#text').pressSequentially('hel');
    await until('typing shown on B', () => stateOf(b), (s) => s.typing === 'alice is typing…');
    const sa = await stateOf(a);
    if (sa.typing !== '') throw new StepFailed(`shown to the typist: ${short(sa.typing)}`);
    await a.locator('#text').press('Enter');
    await until('typing gone, message shown on B', () => stateOf(b), (s) => s.typing === '' && same(s.texts, ['hel']));
  });
  await step('d: alice joins #random: it is listed and shown, with 1 online', async () => {
    await joinRoom(a, 'random');
    await until('#random on A', () => stateOf(a), (s) => s.title === '#random' && s.online === '1' &&
      same(s.rooms.map((r) => r.name), ['#general', '#random']) && s.rooms[1].active);
    await say(a, 'first in random');
    await until('delivered', () => stateOf(a), (s) => same(s.texts, ['first in random']));
  });
  await step('d: bob joins #random: he gets its history and 2 online; alice sees him join', async () => {
    await joinRoom(b, 'random');
    await until('history on B', () => stateOf(b), (s) => s.title === '#random' && same(s.texts, ['first in random']) &&
      s.online === '2' && same(s.members, ['alice', 'bob']));
    await until('"bob joined" on A', () => stateOf(a), (s) => s.notices.includes('bob joined') && s.online === '2');
  });
  await step('d: bob switches to #general; messages to #random raise its unread count', async () => {
    await b.getByRole('button', { name: '#general' }).click();
    await until('#general shown on B', () => stateOf(b), (s) => s.title === '#general' && same(s.texts, ['hel']));
    await say(a, 'unread 1');
    await until('1 unread', () => stateOf(b), (s) => s.rooms.find((r) => r.name === '#random').unread === 1);
    await say(a, 'unread 2');
    const s = await until('2 unread', () => stateOf(b), (st) => st.rooms.find((r) => r.name === '#random').unread === 2);
    if (s.rooms.find((r) => r.name === '#general').unread !== 0 || !same(s.texts, ['hel'])) throw new StepFailed(short(s));
  });
  await screenshot(b, args.artifacts, 'chat_rooms_d_unread');
  await step('d: switching to #random clears its count and shows the two messages', async () => {
    await b.getByRole('button', { name: '#random' }).click();
    await until('cleared', () => stateOf(b), (s) => s.title === '#random' && s.rooms.every((r) => r.unread === 0) &&
      same(s.texts, ['first in random', 'unread 1', 'unread 2']));
  });
  await step('d: bob leaves #random: gone from his list, alice sees him leave and 1 online', async () => {
    await b.getByRole('button', { name: 'Leave random' }).click();
    await until('left on B', () => stateOf(b), (s) => same(s.rooms.map((r) => r.name), ['#general']) && s.title === '#general');
    await until('"bob left" on A', () => stateOf(a), (s) => s.notices.includes('bob left') && s.online === '1' && same(s.members, ['alice']));
    await say(a, 'bob is gone');
    await sleep(300);
    const s = await stateOf(b);
    if (s.rooms.some((r) => r.unread) || s.texts.includes('bob is gone')) throw new StepFailed(short(s));
  });
  await step('d: a bad room name is refused on the page with a reason', async () => {
    await joinRoom(b, 'no spaces!');
    await until('a notice', () => stateOf(b), (s) => s.notices.some((n) => n.includes('is not a room name')));
  });
  await step('no uncaught errors on the pages', () => noErrors(a, b));
});


await scenario('f: a room left while offline is left on the server after the reconnection', async (cleanups) => {
  const server = await startChatServer(args.chatServer);
  cleanups.push(() => server.stop());
  const relay = await new Relay(server.port).start();
  cleanups.push(() => relay.close());
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  const a = await open(context, server.port, 'alice');
  const b = await open(context, relay.port, 'bob');
  const joinRoom = async (page, name) => {
    await page.getByLabel('Room to join').fill(name);
    await page.getByLabel('Room to join').press('Enter');
  };
  await step('both in #side, 2 online', async () => {
    await joinRoom(a, 'side');
    await joinRoom(b, 'side');
    await until('2 in #side on A', () => stateOf(a), (s) => s.title === '#side' && s.online === '2');
  });
  await step('bob, offline, leaves #side: gone from his page at once', async () => {
    relay.cut();
    await until('B offline', () => stateOf(b), (s) => s.banner.startsWith('offline'));
    await b.getByRole('button', { name: 'Leave side' }).click();
    await until('left on B', () => stateOf(b), (s) => same(s.rooms.map((r) => r.name), ['#general']));
  });
  await step('back online, the next message to #side makes the page leave it on the server too', async () => {
    relay.restore();
    await until('B connected', () => stateOf(b), (s) => s.banner === 'connected' && !s.stale, 15000);
    await say(a, 'anyone in side?');
    await until('"bob left" on A, 1 online', () => stateOf(a), (s) => s.notices.includes('bob left') && s.online === '1');
    const s = await stateOf(b);
    if (!same(s.rooms.map((r) => r.name), ['#general']) || s.rooms[0].unread !== 0) throw new StepFailed(short(s));
  });
  await step('the browser back online: the page tries at once, not at the end of its back-off', async () => {
    relay.cut();
    await context.setOffline(true); // navigator.onLine false; the relay does the cutting
    const before = await until('a back-off of 5 s or more', () => stateOf(b),
      (s) => Number(/^offline — retrying in (\d+) s$/.exec(s.banner)?.[1]) >= 5, 20000);
    relay.restore();
    const back = Date.now();
    await context.setOffline(false); // fires 'online'
    await until('B connected', () => stateOf(b), (s) => s.banner === 'connected' && !s.stale, 3000);
    return `connected ${Date.now() - back} ms after 'online', where the banner said ${short(before.banner)}`;
  });
  await step('no uncaught errors on the pages', () => noErrors(a, b));
});

finish();
