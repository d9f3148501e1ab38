#!/usr/bin/env node
// examples/iot_gateway on a Unix socket behind nginx (examples/nginx/iot_gateway.conf, with
// this test's socket and port), 200 simulated devices (examples/iot_devices) and a Chromium
// dashboard that subscribes to some of them:
//
//   node tests/examples/iot_dashboard.mjs --iot-gateway PATH --iot-devices PATH
//        [--nginx /usr/sbin/nginx] [--chromium /usr/bin/chromium]
//
// - the dashboard, loaded through nginx, subscribes to four devices from its URL and one
//   more by ticking its box; once the devices have sent their last reading, it shows for
//   each of those five exactly the last values the device printed, received every reading
//   from its subscription on (consecutive seqs, none twice), shows the device offline after
//   it left, and never received a frame of any other device;
// - malformed telemetry through nginx is refused with 1007 and a reason naming the problem,
//   text with 1003; a bad device id gets HTTP 404;
// - a second connection of a device replaces the first, closed with 1008;
// - the gateway restarted under running devices: they reconnect by themselves (ws::client's
//   backoff), the page reconnects and subscribes again, and the readings go on;
// - the gateway exits 0 on SIGTERM and removes its socket file.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Child, StepFailed, finish, launchBrowser, loadChromium, parseArgs, scenario, short, sleep, step, until,
} from '../browser/harness.mjs';
import { deadline } from '../support/processes.mjs';

const SCRIPT = 'iot_dashboard.mjs';
deadline(55, SCRIPT);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = parseArgs(SCRIPT, {
  iotGateway: '', iotDevices: '', nginx: '/usr/sbin/nginx', chromium: '/usr/bin/chromium',
}, ['iotGateway', 'iotDevices']);
const chromium = loadChromium(SCRIPT);
const WebSocket = createRequire(join(ROOT, 'package.json'))('ws');

const DEVICES = 200;
const READINGS = 30;
const INTERVAL_MS = 250;
const FROM_URL = ['dev-0003', 'dev-0042', 'dev-0117', 'dev-0200'];
const BY_CLICK = 'dev-0150';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port) {
  for (const until = Date.now() + 5000; Date.now() < until; await sleep(50)) {
    const open = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (open) return;
  }
  throw new StepFailed(`nothing listens on 127.0.0.1:${port} after 5 s`);
}

/// Opens a WebSocket through nginx, sends `message`, resolves with the close code and reason
/// (or the HTTP status of a refused upgrade).
function refusal(url, message) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => { ws.terminate(); resolve({ timeout: true }); }, 5000);
    ws.on('open', () => ws.send(message));
    ws.on('unexpected-response', (_req, res) => { clearTimeout(timer); resolve({ status: res.statusCode }); ws.terminate(); });
    ws.on('close', (code, reason) => { clearTimeout(timer); resolve({ code, reason: reason.toString() }); });
    ws.on('error', () => {});
  });
}

/// The devices' lines: id -> { seq, temperature, humidity, battery } (as the page shows them).
function finalReadings(lines) {
  const out = {};
  for (const line of lines) {
    const m = /^device (\S+) readings (\d+) last seq (\d+) temperature (\S+) humidity (\S+) battery (\S+) ok$/.exec(line);
    if (m) out[m[1]] = { seq: m[3], temperature: m[4], humidity: m[5], battery: m[6] };
  }
  return out;
}

await scenario('iot_gateway behind nginx on a Unix socket, 200 devices, a Chromium dashboard', async (cleanups) => {
  const dir = await mkdtemp(join(tmpdir(), 'wschat-iot-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const socket = join(dir, 'gateway.sock');
  let gateway;
  let port;
  let devices;

  await step('iot_gateway listens on its Unix socket', async () => {
    gateway = new Child(args.iotGateway, ['--unix', socket], /^listening on unix:(.+)$/);
    cleanups.push(async () => {
      await gateway.stop();
      if (existsSync(socket)) throw new StepFailed('the socket file is still there after the gateway stopped');
    });
    const m = await gateway.started;
    if (m[1] !== socket) throw new StepFailed(`announced ${m[1]}`);
  });

  await step('nginx (examples/nginx/iot_gateway.conf) proxies 127.0.0.1 to the socket', async () => {
    port = await freePort();
    const conf = readFileSync(join(ROOT, 'examples', 'nginx', 'iot_gateway.conf'), 'utf8')
      .replace('unix:/tmp/wschat-iot/gateway.sock', `unix:${socket}`)
      .replace('listen 127.0.0.1:8082;', `listen 127.0.0.1:${port};`);
    if (!conf.includes(socket) || !conf.includes(`:${port};`)) throw new StepFailed('the config no longer has the lines this test adapts');
    // As root, nginx's workers would be `nobody`, who may not open a socket in root's temp dir.
    const user = process.getuid && process.getuid() === 0 ? 'user root;\n' : '';
    await mkdir(join(dir, 'tmp'), { recursive: true });
    await writeFile(join(dir, 'nginx.conf'), user + conf);
    const nginx = new Child(args.nginx, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], null);
    cleanups.push(async () => {
      nginx.proc.kill('SIGQUIT');
      await Promise.race([nginx.exited, sleep(5000)]);
    });
    await waitForPort(port);
  });

  await step(`${DEVICES} devices connect through nginx`, async () => {
    devices = new Child(args.iotDevices, ['--url', `ws://127.0.0.1:${port}/`, '--devices', String(DEVICES),
      '--interval-ms', String(INTERVAL_MS), '--readings', String(READINGS)], /^all (\d+) devices connected$/, 15000);
    cleanups.push(() => devices.stop().catch(() => {}));
    await devices.started;
  });

  const context = await launchBrowser(chromium, args.chromium, cleanups);
  const page = await context.newPage();
  const subscribed = [...FROM_URL, BY_CLICK].sort();

  await step('the dashboard loads through nginx and subscribes to the devices in its URL', async () => {
    await page.goto(`http://127.0.0.1:${port}/?devices=${FROM_URL.join(',')}`);
    await until('connected', () => page.$eval('#status', (el) => el.textContent), (s) => s === 'connected');
    await until('the subscription answered', () => page.evaluate(() => window.dashboard.texts),
      (t) => t.includes(`subscribed ${FROM_URL.join(' ')}`));
  });

  await step(`ticking ${BY_CLICK}'s box subscribes to it`, async () => {
    await page.check(`#devices input[value="${BY_CLICK}"]`);
    await until(`${BY_CLICK} subscribed`, () => page.evaluate(() => window.dashboard.texts), (t) => t.includes(`subscribed ${BY_CLICK}`));
  });

  let finals;
  await step('every device sends its readings and iot_devices exits 0', async () => {
    const info = await Promise.race([devices.exited, sleep(READINGS * INTERVAL_MS + 15000).then(() => null)]);
    if (!info || info.code !== 0) throw new StepFailed(`iot_devices: ${short(info)}; last lines ${short(devices.lines.slice(-3))}`);
    finals = finalReadings(devices.lines);
    if (Object.keys(finals).length !== DEVICES) throw new StepFailed(`${Object.keys(finals).length} device lines`);
  });

  await step('the dashboard shows each subscribed device\'s last reading as the device sent it', async () => {
    const shown = () => page.$$eval('#readings tr', (rows) => Object.fromEntries(rows.map((tr) => [tr.dataset.device, {
      state: tr.querySelector('.state').textContent,
      seq: tr.querySelector('.seq').textContent,
      temperature: tr.querySelector('.temperature').textContent,
      humidity: tr.querySelector('.humidity').textContent,
      battery: tr.querySelector('.battery').textContent,
    }])));
    const expected = Object.fromEntries(subscribed.map((id) => [id, { state: 'offline', ...finals[id] }]));
    await until('the last readings, devices offline', shown, (s) => JSON.stringify(s) === JSON.stringify(expected));
    return Object.entries(expected).map(([id, r]) => `${id} #${r.seq} ${r.temperature} °C`).join(', ');
  });

  await step('every reading from the subscription on arrived once, in order; no other device\'s', async () => {
    const received = await page.evaluate(() => window.dashboard.received);
    const ids = Object.keys(received).sort();
    if (JSON.stringify(ids) !== JSON.stringify(subscribed)) throw new StepFailed(`frames from ${short(ids)}`);
    for (const id of ids) {
      const seqs = received[id];
      const last = Number(finals[id].seq);
      const consecutive = seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1);
      if (!consecutive || seqs[seqs.length - 1] !== last) throw new StepFailed(`${id}: seqs ${short(seqs)}, device's last ${last}`);
    }
    return ids.map((id) => `${id}: ${received[id][0]}..${received[id].at(-1)}`).join(', ');
  });

  await step('malformed telemetry through nginx: 1007 with the reason; text: 1003; a bad id: 404', async () => {
    const base = `ws://127.0.0.1:${port}`;
    const short5 = await refusal(`${base}/device/bad-1`, Buffer.from([1, 1, 0, 0, 7]));
    if (short5.code !== 1007 || !short5.reason.includes('5 bytes')) throw new StepFailed(`5 bytes: ${short(short5)}`);
    const hot = Buffer.alloc(24);
    hot.writeUInt8(1, 0); hot.writeUInt8(1, 1); hot.writeUInt32LE(1, 4); hot.writeInt16LE(20000, 8);
    const tooHot = await refusal(`${base}/device/bad-2`, hot);
    if (tooHot.code !== 1007 || !tooHot.reason.includes('temperature')) throw new StepFailed(`200 °C: ${short(tooHot)}`);
    const text = await refusal(`${base}/device/bad-3`, 'temperature=21');
    if (text.code !== 1003) throw new StepFailed(`text: ${short(text)}`);
    const badId = await refusal(`${base}/device/no%20spaces`, 'x');
    if (badId.status !== 404) throw new StepFailed(`bad id: ${short(badId)}`);
    return `${short5.code} "${short5.reason}", ${tooHot.code} "${tooHot.reason}"`;
  });

  await step('a second connection of a device replaces the first, which is closed with 1008', async () => {
    const first = new WebSocket(`ws://127.0.0.1:${port}/device/twice`);
    const closed = new Promise((resolve) => first.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    first.on('error', () => {});
    await new Promise((resolve, reject) => { first.once('open', resolve); first.once('error', reject); });
    const second = await refusal(`ws://127.0.0.1:${port}/device/twice`, Buffer.alloc(3));
    const old = await Promise.race([closed, sleep(5000).then(() => ({ timeout: true }))]);
    if (old.code !== 1008 || !old.reason.includes('replaced')) throw new StepFailed(`first: ${short(old)}`);
    if (second.code !== 1007) throw new StepFailed(`second (then malformed): ${short(second)}`);
    return `"${old.reason}"`;
  });

  await step('the gateway restarted under running devices: they come back, and so do the page\'s readings', async () => {
    const running = new Child(args.iotDevices, ['--url', `ws://127.0.0.1:${port}/`, '--devices', '20', '--prefix', 'rs',
      '--interval-ms', '100'], /^all (\d+) devices connected$/);
    cleanups.push(() => running.stop().catch(() => {}));
    await running.started;
    const watcher = await context.newPage();
    await watcher.goto(`http://127.0.0.1:${port}/?devices=rs-0007`);
    const seq = () => watcher.evaluate(() => window.dashboard.latest['rs-0007']?.seq ?? 0);
    const before = await until('rs-0007 reporting', seq, (n) => n >= 3);
    await gateway.stop();
    gateway = new Child(args.iotGateway, ['--unix', socket], /^listening on unix:(.+)$/);
    await gateway.started;
    const state = () => watcher.$eval('tr[data-device="rs-0007"] .state', (el) => el.textContent);
    const after = await until('rs-0007 reporting again', seq, (n) => n >= before + 10, 10000);
    await until('rs-0007 online again', state, (s) => s === 'online');
    await running.stop();
    const failed = running.lines.find((l) => l.startsWith('devices '));
    if (failed !== 'devices 20, failed 0') throw new StepFailed(`iot_devices: ${short(running.lines.slice(-3))}`);
    return `seq ${before} before the restart, ${after} after`;
  });
});
finish();
