#!/usr/bin/env node
// Browser test: examples/chat_server's page (examples/chat_server/web/) in headless Chromium.
//
//   node tests/browser/chat_server.mjs --chat-server build/.../chat_server \
//        [--chromium /usr/bin/chromium] [--artifacts DIR] [--readme-shot FILE]
//
// Scenarios: two pages chat and see each other's names; the online count and member list
// follow pages opening and closing; the nickname prompt; `<script>` shown as text; the
// server killed and restarted (retry banner, reconnection, a message typed while offline
// sent after reconnecting); the back-off schedule; a frozen server noticed by the page's
// heartbeat; a phone-sized window (the room strip, the count and member list visible, the message box
// labelled, stale marks while offline); with --deflate, the chat compressed
// (permessage-deflate negotiated by Chromium). Rooms, history and resume: chat_rooms.mjs.
// Screenshots go to --artifacts; --readme-shot copies the two-page one there
// (the README's picture: examples/chat_server/screenshot.png).

import { copyFile } from 'node:fs/promises';

import {
  finish, launchBrowser, loadChromium, parseArgs, scenario, screenshot, short, sleep,
  startChatServer, step, StepFailed, until,
} from './harness.mjs';
import { deadline } from '../support/processes.mjs';

deadline(200, 'chat_server.mjs');

const SCRIPT = 'chat_server.mjs';
const args = parseArgs(SCRIPT, {
  chatServer: process.env.WSCHAT_CHAT_SERVER || '', chromium: '/usr/bin/chromium',
  artifacts: 'tests/artifacts', readmeShot: '', deflate: '',
}, ['chatServer']);
const chromium = loadChromium(SCRIPT);

/// What a page shows, for assertions.
const stateOf = (page) => page.evaluate(() => ({
  banner: document.getElementById('banner').textContent,
  online: document.getElementById('online').textContent,
  members: [...document.querySelectorAll('#members li')].map((li) => li.textContent),
  bubbles: [...document.querySelectorAll('#messages .bubble')].map((li) => ({
    meta: li.querySelector('.meta').textContent,
    text: li.querySelector('.text').textContent,
    html: li.querySelector('.text').innerHTML,
    mine: li.classList.contains('mine'),
    pending: li.classList.contains('pending'),
  })),
  notices: [...document.querySelectorAll('#messages .notice')].map((li) => li.textContent),
  stale: document.getElementById('people').classList.contains('stale'),
  peopleStatus: document.querySelector('#people-status:not([hidden])')?.textContent ?? '',
  membersOpacity: Number(getComputedStyle(document.getElementById('members')).opacity),
}));

const count = (list, x) => list.filter((y) => y === x).length;
/// The count and list as live: no stale mark, no status, full opacity.
const live = (s) => !s.stale && s.peopleStatus === '' && s.membersOpacity === 1;
/// The count and list marked stale: "—", dimmed, "reconnecting…" shown.
const stale = (s) => s.stale && s.online === '—' && s.peopleStatus === 'reconnecting…' && s.membersOpacity < 1;

async function open(context, port, name, extra = '') {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/?name=${encodeURIComponent(name)}${extra}`);
  await until(`${name} connected`, () => stateOf(page), (s) => s.banner === 'connected');
  return page;
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter'); // Enter sends
}

const hasBubble = (s, from, text, mine) =>
  s.bubbles.some((b) => b.meta.startsWith(`${from} · `) && b.text === text && b.mine === mine && !b.pending);

// --------------------------------------------------------------------------------------------

await scenario('1 two pages chat, presence follows pages, text is never HTML', async (cleanups) => {
  const server = await startChatServer(args.chatServer);
  cleanups.push(() => server.stop());
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  let a, b;

  await step('alice and bob open the page; both see "2 online" and both names', async () => {
    a = await open(context, server.port, 'alice');
    b = await open(context, server.port, 'bob');
    for (const page of [a, b])
      await until('2 online, alice and bob', () => stateOf(page),
        (s) => s.online === '2' && short(s.members) === short(['alice', 'bob']));
  });
  await step('each sees the other\'s message with the name, own bubbles on the right', async () => {
    await say(a, 'Hello from alice 你好 😀');
    await say(b, 'Hi alice — bob here 🎉');
    await until('both messages on A', () => stateOf(a),
      (s) => hasBubble(s, 'alice', 'Hello from alice 你好 😀', true) && hasBubble(s, 'bob', 'Hi alice — bob here 🎉', false));
    await until('both messages on B', () => stateOf(b),
      (s) => hasBubble(s, 'alice', 'Hello from alice 你好 😀', false) && hasBubble(s, 'bob', 'Hi alice — bob here 🎉', true));
    const left = await a.evaluate(() => ({
      own: document.querySelector('#messages .bubble.mine').getBoundingClientRect().left,
      other: document.querySelector('#messages .bubble:not(.mine)').getBoundingClientRect().left,
    }));
    if (!(left.own > left.other)) throw new StepFailed(`own bubble not right of the other: ${short(left)}`);
  });
  await step('a message containing <script> is shown as text on both pages', async () => {
    const evil = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>bold?</b>';
    await say(a, evil);
    for (const page of [a, b]) {
      const s = await until('the script text', () => stateOf(page), (st) => st.bubbles.some((x) => x.text === evil));
      const bubble = s.bubbles.find((x) => x.text === evil);
      if (!bubble.html.startsWith('&lt;script&gt;')) throw new StepFailed(`inserted as HTML: ${short(bubble.html)}`);
      const found = await page.evaluate(() => ({
        pwned: window.pwned, scripts: document.querySelectorAll('#messages script, #messages img, #messages b').length,
      }));
      if (found.pwned !== undefined || found.scripts !== 0) throw new StepFailed(`executed or parsed: ${short(found)}`);
    }
  });
  let c;
  await step('a third page (a second "alice") joins: names resolved, 3 online everywhere', async () => {
    c = await open(context, server.port, 'alice');
    for (const page of [a, b, c])
      await until('3 online', () => stateOf(page),
        (s) => s.online === '3' && short(s.members) === short(['alice', 'alice (2)', 'bob']));
    await until('"alice (2) joined" on A', () => stateOf(a), (s) => s.notices.includes('alice (2) joined'));
  });
  await screenshot(a, args.artifacts, 'chat_server_1_alice');
  const shotB = await screenshot(b, args.artifacts, 'chat_server_1_bob');
  if (args.readmeShot) await copyFile(shotB, args.readmeShot);
  await step('closing the third page: 2 online, "alice (2) left", the list shrinks', async () => {
    await c.close();
    for (const page of [a, b])
      await until('2 online', () => stateOf(page),
        (s) => s.online === '2' && short(s.members) === short(['alice', 'bob']) && s.notices.includes('alice (2) left'));
  });
  await step('the server logged the joins and leaves with names', async () => {
    await until('log lines', async () => server.lines, (l) =>
      ['join alice from 127.0.0.1', 'join bob from 127.0.0.1', 'join alice (2) from 127.0.0.1'].every((x) => l.includes(x)) &&
      l.some((x) => x.startsWith('leave alice (2) from 127.0.0.1')));
  });
  await step('no uncaught errors on the pages', async () => {
    const errors = [...a.errors, ...b.errors, ...c.errors];
    if (errors.length) throw new StepFailed(short(errors));
  });
});

await scenario('2 the nickname prompt', async (cleanups) => {
  const server = await startChatServer(args.chatServer);
  cleanups.push(() => server.stop());
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  await step('without ?name the page asks for a name; Enter joins with it', async () => {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.waitForSelector('#nickname-dialog[open]');
    await page.fill('#nickname', '小明');
    await page.press('#nickname', 'Enter');
    await until('joined as 小明', () => stateOf(page),
      (s) => s.banner === 'connected' && s.notices.includes('You joined as 小明') && s.members.includes('小明'));
    await screenshot(page, args.artifacts, 'chat_server_2_nickname');
  });
  await step('back-off: 1 s, 2 s, 4 s … capped at 30 s, each with at most ±20 % jitter', async () => {
    const page = context.pages().at(-1);
    const delays = await page.evaluate(() =>
      [0, 1, 2, 3, 4, 5, 6, 10].map((n) => Array.from({ length: 200 }, () => window.chat.delayFor(n))));
    const bases = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
    delays.forEach((samples, i) => {
      const base = bases[i];
      const [lo, hi] = [Math.min(...samples), Math.max(...samples)];
      if (lo < Math.min(base * 0.8, 30000) - 1 || hi > Math.min(base * 1.2, 30000) + 1 || lo === hi)
        throw new StepFailed(`attempt ${i}: ${lo}..${hi} ms around ${base}`);
    });
  });
  await step('a deliberate close() does not reconnect', async () => {
    const page = context.pages().at(-1);
    await page.evaluate(() => window.chat.close());
    await sleep(2500); // longer than the first back-off
    const state = await stateOf(page);
    const joins = server.lines.filter((l) => l.startsWith('join 小明')).length;
    if (state.banner === 'connected' || joins !== 1) throw new StepFailed(`banner ${state.banner}, ${joins} joins`);
  });
});

await scenario('3 server killed and restarted: retry banner, reconnection, offline message delivered', async (cleanups) => {
  let server = await startChatServer(args.chatServer);
  const port = server.port;
  cleanups.push(() => server.stop());
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  const a = await open(context, port, 'alice');
  const b = await open(context, port, 'bob');
  const offlineText = 'typed while offline 离线 📴';

  await step('both pages see 2 online, live', async () => {
    for (const page of [a, b])
      await until('2 online, live', () => stateOf(page), (s) => s.online === '2' && live(s));
  });
  await step('SIGKILL: both pages show "offline — retrying in N s", the count "—" and the list dimmed, "reconnecting…"', async () => {
    await server.kill9();
    for (const page of [a, b])
      await until('retry banner, stale presence', () => stateOf(page),
        (s) => /^offline — retrying in \d+ s$/.test(s.banner) && stale(s) && short(s.members) === short(['alice', 'bob']));
  });
  await step('the input stays usable offline: a message typed now waits as a pending bubble', async () => {
    await say(a, offlineText);
    await until('pending bubble', () => stateOf(a), (s) => s.bubbles.some((x) => x.text === offlineText && x.pending));
  });
  await screenshot(a, args.artifacts, 'chat_server_3_offline');
  await step(`a new chat_server on port ${port}: both pages reconnect by themselves`, async () => {
    server = await startChatServer(args.chatServer, port);
    for (const page of [a, b])
      await until('connected again', () => stateOf(page), (s) => s.banner === 'connected', 10000);
  });
  await step('the count and list are live again; each page says "Reconnected" once and replays no join', async () => {
    for (const page of [a, b])
      await until('2 online, live', () => stateOf(page), (s) => s.online === '2' && live(s));
    const [sa, sb] = [await stateOf(a), await stateOf(b)];
    // alice saw bob arrive once, before the restart; bob found alice there.
    const expected = [[sa, 'alice', 1, 'bob'], [sb, 'bob', 0, 'alice']];
    for (const [s, me, othersJoins, other] of expected) {
      if (count(s.notices, `You joined as ${me}`) !== 1 || count(s.notices, 'Reconnected') !== 1 ||
          count(s.notices, `${other} joined`) !== othersJoins || s.notices.some((n) => n.startsWith('You joined as') && n !== `You joined as ${me}`))
        throw new StepFailed(`${me}'s notices: ${short(s.notices)}`);
    }
  });
  await step('the offline message is sent after the reconnection: the room echoes it back', async () => {
    // The pending bubble gives way to the room's own copy (name and server time). Bob may
    // reconnect after alice's queue is flushed, and a room keeps no history, so the proof
    // of delivery is the room's echo to the sender.
    await until('delivered on A', () => stateOf(a), (s) => hasBubble(s, 'alice', offlineText, true) && !s.bubbles.some((x) => x.pending));
  });
  await step('after the reconnection the two pages chat again', async () => {
    await until('2 online on A', () => stateOf(a), (s) => s.online === '2');
    await say(a, 'back again 又见面了');
    await until('on B', () => stateOf(b), (s) => hasBubble(s, 'alice', 'back again 又见面了', false));
  });
  await screenshot(a, args.artifacts, 'chat_server_3_reconnected');
});

await scenario('4 a frozen server is noticed by the heartbeat', async (cleanups) => {
  const server = await startChatServer(args.chatServer);
  cleanups.push(() => server.stop());
  cleanups.push(() => server.proc.kill('SIGCONT'));
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  // A short heartbeat for the test: ping every 300 ms, dead after 1.5 s of silence.
  const page = await open(context, server.port, 'alice', '&ping_ms=300&dead_ms=1500');
  await step('SIGSTOP (TCP stays open, nothing answers): the page goes offline by itself', async () => {
    await sleep(1000); // pongs keep it connected meanwhile
    if ((await stateOf(page)).banner !== 'connected') throw new StepFailed('dropped while the server was alive');
    server.proc.kill('SIGSTOP');
    const started = Date.now();
    await until('offline banner', () => stateOf(page), (s) => s.banner.startsWith('offline'), 5000);
    return `after ${Date.now() - started} ms`;
  });
  await step('SIGCONT: it reconnects', async () => {
    server.proc.kill('SIGCONT');
    await until('connected', () => stateOf(page), (s) => s.banner === 'connected', 10000);
  });
});

if (args.deflate) {
  await scenario(`5 the chat compressed (--deflate ${args.deflate})`, async (cleanups) => {
    const server = await startChatServer(args.chatServer, 0, ['--deflate', args.deflate]);
    cleanups.push(() => server.stop());
    const context = await launchBrowser(chromium, args.chromium, cleanups);
    // The handshake's response headers, as Chromium's network layer saw them.
    const answers = [];
    const watch = async (page) => {
      const cdp = await context.newCDPSession(page);
      cdp.on('Network.webSocketHandshakeResponseReceived', (e) => answers.push(e.response.headers));
      await cdp.send('Network.enable');
    };
    const openWatched = async (name) => {
      const page = await context.newPage();
      page.errors = [];
      page.on('pageerror', (e) => page.errors.push(e.message));
      await watch(page);
      await page.goto(`http://127.0.0.1:${server.port}/?name=${name}`);
      await until(`${name} connected`, () => stateOf(page), (s) => s.banner === 'connected');
      return page;
    };
    let a, b;
    await step('Chromium offers permessage-deflate and the server agrees', async () => {
      a = await openWatched('alice');
      b = await openWatched('bob');
      const extensions = answers.map((h) =>
        Object.entries(h).find(([k]) => k.toLowerCase() === 'sec-websocket-extensions')?.[1]);
      if (extensions.length !== 2 || !extensions.every((x) => x && x.startsWith('permessage-deflate')))
        throw new StepFailed(`Sec-WebSocket-Extensions answers: ${short(extensions)}`);
    });
    await step('long and short messages, compressed both ways, arrive intact on both pages', async () => {
      const long = 'compressible chat line '.repeat(40) + '你好 😀';
      await say(a, long);
      await say(b, 'short 🎉');
      for (const [page, mineLong] of [[a, true], [b, false]])
        await until('both messages', () => stateOf(page),
          (s) => hasBubble(s, 'alice', long, mineLong) && hasBubble(s, 'bob', 'short 🎉', !mineLong));
    });
    await step('no uncaught errors on the pages', async () => {
      const errors = [...a.errors, ...b.errors];
      if (errors.length) throw new StepFailed(short(errors));
    });
  });
}

await scenario('6 a phone-sized window (375×667): rooms and who is online stay visible, the message box is labelled', async (cleanups) => {
  let server = await startChatServer(args.chatServer);
  const port = server.port;
  cleanups.push(() => server.stop());
  const context = await launchBrowser(chromium, args.chromium, cleanups);
  const phone = await context.newPage();
  phone.errors = [];
  phone.on('pageerror', (e) => phone.errors.push(e.message));
  await phone.setViewportSize({ width: 375, height: 667 });
  await phone.goto(`http://127.0.0.1:${port}/?name=alice`);
  await until('alice connected', () => stateOf(phone), (s) => s.banner === 'connected');
  const desk = await open(context, port, 'bob');
  const inView = async (selector) => {
    const locator = phone.locator(selector).first();
    const box = await locator.boundingBox();
    return { visible: await locator.isVisible(), box };
  };
  const within = ({ visible, box }) =>
    visible && box && box.width > 0 && box.height > 0 && box.x >= 0 && box.y >= 0 && box.x + box.width <= 375 && box.y + box.height <= 667;

  await step('the room strip (room, leave, join), the online count and the member list are inside the 375 px viewport', async () => {
    await until('2 online on the phone', () => stateOf(phone), (s) => s.online === '2' && short(s.members) === short(['alice', 'bob']));
    const seen = {
      count: await inView('#online'), list: await inView('#members'), first: await inView('#members li'),
      room: await inView('#room-list .room-open'), leave: await inView('#room-list .room-leave'), join: await inView('#join-room button'),
    };
    if (!Object.values(seen).every(within)) throw new StepFailed(short(seen));
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    if (width > 375) throw new StepFailed(`the page is ${width} px wide: it scrolls sideways`);
  });
  await screenshot(phone, args.artifacts, 'chat_server_6_phone');
  await step('the message box is found by its label, and sends', async () => {
    const box = phone.getByLabel('Message', { exact: true });
    if (!(await box.isVisible())) throw new StepFailed('the box labelled "Message" is not visible');
    await box.fill('from a phone 📱');
    await box.press('Enter');
    await until('on bob\'s page', () => stateOf(desk), (s) => hasBubble(s, 'alice', 'from a phone 📱', false));
    const labelled = await phone.evaluate(() => document.getElementById('text').labels.length);
    if (labelled !== 1) throw new StepFailed(`#text has ${labelled} <label>s`);
  });
  await step('server stopped: the phone shows "reconnecting…", the count "—", the list dimmed but still visible', async () => {
    await server.stop();
    const s = await until('stale presence', () => stateOf(phone), (st) => st.banner.startsWith('offline') && stale(st));
    if (!within(await inView('#people-status')) || !within(await inView('#online')) || !within(await inView('#members')))
      throw new StepFailed('the offline marks are not all in view');
    return `banner ${short(s.banner)}`;
  });
  await screenshot(phone, args.artifacts, 'chat_server_6_phone_offline');
  await step('server restarted: live again, 2 online, one "Reconnected"', async () => {
    server = await startChatServer(args.chatServer, port);
    const s = await until('live again', () => stateOf(phone),
      (st) => st.banner === 'connected' && st.online === '2' && live(st) && short(st.members) === short(['alice', 'bob']), 10000);
    if (count(s.notices, 'Reconnected') !== 1 || count(s.notices, 'You joined as alice') !== 1)
      throw new StepFailed(`notices ${short(s.notices)}`);
  });
  await step('no uncaught errors on the pages', async () => {
    const errors = [...phone.errors, ...desk.errors];
    if (errors.length) throw new StepFailed(short(errors));
  });
});

finish();
