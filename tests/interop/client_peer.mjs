#!/usr/bin/env node
// A Node `ws` server for ws::client's interop test (tests/integration/client_interop.cpp).
//
// Prints its port, then, on every connection: echoes text and binary messages as they came,
// except for these text commands:
//   fragment          answers "fragmented" as three frames ("frag", "men", "ted")
//   ping-me           pings the client with "probe" and, once the pong is in, sends "pong:probe"
//   close:CODE:REASON closes with that code and reason
// Needs `npm ci` at the repository root (the pinned `ws`). Node 18+.
import { createRequire } from 'node:module';

const { WebSocketServer } = createRequire(new URL('../../package.json', import.meta.url))('ws');

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: 2 * 1024 * 1024,
  perMessageDeflate: false,
});
server.on('listening', () => console.log(String(server.address().port)));
server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    if (text === 'fragment') {
      ws.send('frag', { fin: false });
      ws.send('men', { fin: false });
      ws.send('ted', { fin: true });
    } else if (text === 'ping-me') {
      ws.once('pong', (payload) => ws.send(`pong:${payload.toString()}`));
      ws.ping('probe');
    } else if (text !== null && text.startsWith('close:')) {
      const [, code, ...reason] = text.split(':');
      ws.close(Number(code), reason.join(':'));
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
