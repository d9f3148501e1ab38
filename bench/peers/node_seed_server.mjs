// The seed's chat server (the classic Node.js `ws` chat room) as a benchmark peer: every
// message goes to every client, sender included; each newcomer gets a welcome line; the
// online count is announced on every join and leave — the same texts as wschat's text policy.
//
//     node bench/peers/node_seed_server.mjs --port 0    prints `listening on ws://127.0.0.1:PORT/`
//
// `ws` comes from the repository's node_modules (npm ci).
import { WebSocketServer, WebSocket } from 'ws';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
};

const wss = new WebSocketServer({ host: flag('--address', '127.0.0.1'), port: Number(flag('--port', '8080')) });

function broadcast(data, isBinary) {
  for (const client of wss.clients) {
    if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
  }
}

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => broadcast(data, isBinary));
  ws.on('close', () => broadcast(`Online users: ${wss.clients.size}`, false));
  ws.send('Welcome to the chat room!');
  broadcast(`Online users: ${wss.clients.size}`, false);
});

wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`listening on ws://${address}:${port}/`);
});

const stop = () => wss.close(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
