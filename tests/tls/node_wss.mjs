// wss:// with the Node `ws` client, trusting only the dev certificate (`ca:`): echo of 0 B to
// 1 MiB through echo_server at the address it printed, and two clients chatting through
// minimal_chat at wss://localhost (the server listening where `localhost` resolves first, so
// the certificate's name is checked too).
//   node tests/tls/node_wss.mjs --minimal-chat PATH --echo-server PATH
import WebSocket from 'ws';
import { deadline } from '../support/processes.mjs';
import { checker, devCert, flag, localhostAddress, startTls } from './start_tls_server.mjs';

deadline(120, 'node_wss.mjs');
const { check, finish } = checker();
const tls = devCert();
const servers = [];

function open(host, port) {
  const ws = new WebSocket(`wss://${host}:${port}/`, { ca: tls.ca, minVersion: 'TLSv1.2' });
  ws.inbox = [];
  ws.waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = isBinary ? data : data.toString();
    const w = ws.waiters.shift();
    w ? w(m) : ws.inbox.push(m);
  });
  ws.next = () => (ws.inbox.length ? Promise.resolve(ws.inbox.shift()) : new Promise((r, j) => {
    const t = setTimeout(() => j(new Error('no message within 10 s')), 10000);
    ws.waiters.push((m) => { clearTimeout(t); r(m); });
  }));
  return new Promise((resolve, reject) => { ws.once('open', () => resolve(ws)); ws.once('error', reject); });
}

try {
  const echo = await startTls(flag('--echo-server'), tls);
  servers.push(echo);
  const ws = await open(echo.host, echo.port);
  check(['TLSv1.2', 'TLSv1.3'].includes(ws._socket.getProtocol()), `echo_server negotiates ${ws._socket.getProtocol()}`);
  for (const size of [0, 1, 125, 126, 65535, 65536, 1 << 20]) {
    const text = 'κόσμε wss '.repeat(size / 10 + 1).slice(0, size);
    ws.send(text);
    check((await ws.next()) === text, `text of ${size} characters echoed over wss`);
    const bytes = Buffer.alloc(size, 0xa5);
    ws.send(bytes);
    check(Buffer.compare(await ws.next(), bytes) === 0, `binary of ${size} bytes echoed over wss`);
  }
  ws.close(1000);
  check((await echo.stop()) === 0, 'echo_server exits 0 after SIGTERM');

  const address = await localhostAddress();
  const chat = await startTls(flag('--minimal-chat'), tls, address);
  servers.push(chat);
  check(true, `minimal_chat listens on ${chat.host}, where localhost resolves first`);
  const a = await open('localhost', chat.port);
  check((await a.next()) === 'Welcome to the chat room!', 'A is welcomed over wss');
  check((await a.next()) === 'Online users: 1', 'A sees 1 online');
  const b = await open('localhost', chat.port);
  await b.next();
  check((await b.next()) === 'Online users: 2', 'B sees 2 online');
  check((await a.next()) === 'Online users: 2', 'A sees B arrive');
  a.send('hello from node over TLS');
  check((await b.next()) === 'hello from node over TLS', 'B gets A\'s line');
  const closed = new Promise((r) => a.once('close', (code) => r(code)));
  const stopped = chat.stop();
  check((await closed) === 1001, 'A gets 1001 when the server stops');
  check((await stopped) === 0, 'minimal_chat exits 0 after SIGTERM');
} catch (e) {
  check(false, 'scenario', e.stack);
} finally {
  await Promise.all(servers.map((server) => server.stop()));
  tls.cleanup();
}
finish();
