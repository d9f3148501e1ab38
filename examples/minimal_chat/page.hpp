// minimal_chat — the chat page served on the WebSocket's own port: the classic tutorial page
// (a message list, an input, a send button) with an online count and reconnection.
#pragma once

namespace minimal_chat {

inline constexpr const char* page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wschat — minimal chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #status { color: #666; }
  #messages { list-style: none; padding: 0; min-height: 10rem; border: 1px solid #ccc;
              border-radius: 6px; padding: .5rem; overflow-y: auto; max-height: 60vh; }
  #messages li { padding: .2rem 0; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  #message { flex: 1; padding: .4rem; }
</style>
</head>
<body>
<h1>Chat</h1>
<p><span id="online">Online users: 0</span> · <span id="status">connecting…</span></p>
<ul id="messages"></ul>
<form id="form">
  <input id="message" type="text" autocomplete="off" placeholder="Say something" autofocus>
  <button id="send" type="submit">Send</button>
</form>
<script>
  // The page talks to the server that served it, over ws:// or wss:// to match the page.
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
  const list = document.getElementById('messages');
  const online = document.getElementById('online');
  const status = document.getElementById('status');
  const input = document.getElementById('message');
  let socket = null;
  let attempts = 0; // reconnect back-off: 1 s, 2 s, 4 s … capped at 30 s, reset on open

  function show(text) {
    const item = document.createElement('li');
    item.textContent = text; // never as HTML
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }

  function connect() {
    status.textContent = 'connecting…';
    socket = new WebSocket(url);
    socket.onopen = () => { attempts = 0; status.textContent = 'connected'; };
    socket.onmessage = (event) => {
      if (event.data.startsWith('Online users: ')) online.textContent = event.data;
      else show(event.data);
    };
    socket.onclose = () => {
      const delay = Math.min(30000, 1000 * 2 ** attempts++);
      status.textContent = 'offline — retrying in ' + delay / 1000 + ' s';
      setTimeout(connect, delay);
    };
    socket.onerror = () => socket.close();
  }

  document.getElementById('form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (input.value && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(input.value);
      input.value = '';
    }
  });
  connect();
</script>
</body>
</html>
)html";

} // namespace minimal_chat
