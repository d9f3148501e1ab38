// iot_gateway — the dashboard page served on the gateway's own socket: the known devices
// (GET /devices) with a box each to subscribe, and a table of the latest reading of every
// device subscribed to, decoded from the binary frames of telemetry.hpp.
//
// /?devices=ID,ID,... subscribes to those at load, and again whenever one is missing (not
// known yet, or the gateway restarted). For tests, `window.dashboard` holds what
// the page received: per device the seqs in order, the latest reading, and every text line.
#pragma once

namespace iot_gateway {

inline constexpr const char* page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wschat — IoT dashboard</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; }
  #status { color: #666; }
  #devices { columns: 10rem; margin: .5rem 0 1rem; max-height: 12rem; overflow-y: auto;
             border: 1px solid #ccc; border-radius: 6px; padding: .5rem; }
  #devices label { display: block; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: right; padding: .2rem .6rem; border-bottom: 1px solid #eee; }
  th:first-child, td:first-child { text-align: left; }
  tr.offline td { color: #999; }
</style>
</head>
<body>
<h1>Devices</h1>
<p id="status">connecting…</p>
<div id="devices"></div>
<table>
  <thead><tr><th>device</th><th>state</th><th>seq</th><th>temperature °C</th>
    <th>humidity %</th><th>battery V</th><th>device time</th></tr></thead>
  <tbody id="readings"></tbody>
</table>
<script>
'use strict';
const wanted = new Set((new URLSearchParams(location.search).get('devices') || '')
  .split(',').filter(Boolean));
const dashboard = window.dashboard = { received: {}, latest: {}, texts: [], frames: 0 };
// What the gateway confirmed on this connection: a wanted device missing here (not known yet,
// or the gateway restarted) is asked for again when the device list shows it.
let subscribed = new Set();
const status = document.getElementById('status');
const list = document.getElementById('devices');
const rows = document.getElementById('readings');
let socket = null;

function send(line) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(line);
}

function row(id) {
  let tr = rows.querySelector(`tr[data-device="${id}"]`);
  if (!tr) {
    tr = document.createElement('tr');
    tr.dataset.device = id;
    for (const name of ['id', 'state', 'seq', 'temperature', 'humidity', 'battery', 'time']) {
      const td = document.createElement('td');
      td.className = name;
      tr.appendChild(td);
    }
    tr.querySelector('.id').textContent = id;
    const after = [...rows.children].find((other) => other.dataset.device > id);
    rows.insertBefore(tr, after || null);
  }
  return tr;
}

function show(id, online) {
  const tr = row(id);
  tr.className = online ? 'online' : 'offline';
  tr.querySelector('.state').textContent = online ? 'online' : 'offline';
}

// Frames of telemetry.hpp: 0x81 a reading, 0x82 a device's status.
function received(buffer) {
  const view = new DataView(buffer);
  const type = view.getUint8(0);
  const idLength = view.getUint8(2);
  const online = view.getUint8(3) === 1;
  const head = type === 0x81 ? 32 : 4;
  const id = new TextDecoder().decode(new Uint8Array(buffer, head, idLength));
  dashboard.frames++;
  if (type === 0x82) return show(id, online);
  const r = {
    seq: view.getUint32(4, true),
    temperature: view.getInt16(8, true) / 100,
    humidity: view.getUint16(10, true) / 100,
    battery: view.getUint16(12, true) / 1000,
    time: Number(view.getBigUint64(16, true)),
  };
  (dashboard.received[id] ||= []).push(r.seq);
  dashboard.latest[id] = r;
  show(id, true);
  const tr = row(id);
  tr.querySelector('.seq').textContent = r.seq;
  tr.querySelector('.temperature').textContent = r.temperature.toFixed(2);
  tr.querySelector('.humidity').textContent = r.humidity.toFixed(2);
  tr.querySelector('.battery').textContent = r.battery.toFixed(3);
  tr.querySelector('.time').textContent = new Date(r.time).toISOString().slice(11, 23);
}

function toggled(box) {
  const id = box.value;
  if (box.checked) {
    wanted.add(id);
    send(`subscribe ${id}`);
  } else {
    wanted.delete(id);
    send(`unsubscribe ${id}`);
    rows.querySelector(`tr[data-device="${id}"]`)?.remove();
  }
}

async function refreshList() {
  try {
    const answer = await fetch('/devices', { cache: 'no-store' });
    const { devices } = await answer.json();
    const missing = devices.map((d) => d.id).filter((id) => wanted.has(id) && !subscribed.has(id));
    if (missing.length) send(`subscribe ${missing.join(' ')}`);
    for (const d of devices) {
      if (list.querySelector(`input[value="${d.id}"]`)) continue;
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.value = d.id;
      box.checked = wanted.has(d.id);
      box.addEventListener('change', () => toggled(box));
      label.append(box, ` ${d.id}`);
      list.appendChild(label);
    }
  } catch (e) {
    status.textContent = `device list: ${e.message}`;
  }
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  socket = new WebSocket(`${scheme}://${location.host}/dashboard`);
  socket.binaryType = 'arraybuffer';
  socket.onopen = () => {
    status.textContent = 'connected';
    subscribed = new Set();
    if (wanted.size) send(`subscribe ${[...wanted].join(' ')}`);
  };
  socket.onmessage = (event) => {
    if (typeof event.data === 'string') {
      dashboard.texts.push(event.data);
      const [word, ...ids] = event.data.split(' ');
      if (word === 'subscribed') ids.forEach((id) => subscribed.add(id));
      if (word === 'unsubscribed') ids.forEach((id) => subscribed.delete(id));
      if (event.data.startsWith('error:')) status.textContent = event.data;
      return;
    }
    received(event.data);
  };
  socket.onclose = (event) => {
    status.textContent = `disconnected (${event.code}); reconnecting…`;
    setTimeout(connect, 1000);
  };
}

refreshList();
setInterval(refreshList, 2000);
connect();
</script>
</body>
</html>
)html";

} // namespace iot_gateway
