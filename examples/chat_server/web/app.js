// wschat page: a nickname prompt, bubbles, the member list and the connection banner.
// Every text from the network goes in with textContent: never as HTML.
// While the socket is down, the count and the member list are marked stale; after a
// reconnection the page says so once instead of announcing everyone as newly joined.
import { ChatClient } from './chat-client.js';

const $ = (id) => document.getElementById(id);
const messages = $('messages');
const banner = $('banner');
const input = $('text');
const people = $('people');
const peopleStatus = $('people-status');
const params = new URLSearchParams(location.search);
let myName = '';
let client = null;
let members = [];                  // the list as the server last sent it
let returning = new Set();         // who was there when the connection was lost
let returningUntil = 0;            // their joins until then are reconnections, not news
const RETURN_WINDOW_MS = 60000;    // longer than the longest back-off (30 s + 20 %)

function scrollDown() { messages.scrollTop = messages.scrollHeight; }

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function addNotice(text) {
  const li = document.createElement('li');
  li.className = 'notice';
  li.textContent = text;
  messages.appendChild(li);
  scrollDown();
}

function addBubble({ from, text, time, mine, pending }) {
  const li = document.createElement('li');
  li.className = 'bubble' + (mine ? ' mine' : '') + (pending ? ' pending' : '');
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.textContent = pending ? `${from} · waiting to send` : `${from} · ${timeOf(time)}`;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(meta, body);
  messages.appendChild(li);
  scrollDown();
  return li;
}

const pending = []; // bubbles of texts typed while offline, replaced when they come back

function showPresence({ online, members: names }) {
  members = names;
  $('online').textContent = String(online);
  const list = $('members');
  list.replaceChildren(...names.map((name) => {
    const li = document.createElement('li');
    li.textContent = name;
    if (name === myName) li.className = 'me';
    return li;
  }));
  const more = $('more-members');
  more.hidden = online <= names.length;
  more.textContent = `and ${online - names.length} more`;
  people.classList.remove('stale');
  peopleStatus.hidden = true;
}

// The connection is down: what the list shows is only what was true when it was up.
function markStale() {
  if (people.classList.contains('stale')) return;
  people.classList.add('stale');
  $('online').textContent = '—';
  returning = new Set(members);
  if (myName) {
    peopleStatus.textContent = 'reconnecting…';
    peopleStatus.hidden = false;
  }
}

function onEnvelope(e) {
  switch (e.type) {
    case 'welcome':
      if (!myName) {
        addNotice(`You joined as ${e.name}`);
      } else {
        addNotice(e.name === myName ? 'Reconnected' : `Reconnected as ${e.name}`);
        returningUntil = Date.now() + RETURN_WINDOW_MS;
      }
      myName = e.name;
      $('online').textContent = String(e.online);
      break;
    case 'message': {
      const mine = e.from === myName;
      if (mine && pending.length && pending[0].text === e.text) pending.shift().bubble.remove();
      addBubble({ from: e.from, text: e.text, time: e.time, mine });
      break;
    }
    case 'join':
      for (const name of e.names) {
        if (name === myName) continue;
        if (Date.now() < returningUntil && returning.delete(name)) continue; // back, not new
        addNotice(`${name} joined`);
      }
      break;
    case 'leave':
      for (const name of e.names) addNotice(`${name} left`);
      break;
    case 'presence':
      showPresence(e);
      break;
    case 'error':
      addNotice(`Not sent: ${e.message}`);
      break;
  }
}

function onState({ state, retryIn }) {
  if (state !== 'connected') markStale();
  banner.className = 'banner ' + state;
  banner.textContent = state === 'offline' ? `offline — retrying in ${retryIn} s`
                     : state === 'connected' ? 'connected' : 'connecting…';
}

function start(name) {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const url = `${scheme}${location.host}/chat?name=${encodeURIComponent(name)}`;
  const options = {};
  // Tests shorten the heartbeat: ?ping_ms=…&dead_ms=…
  if (params.has('ping_ms')) options.pingEvery = Number(params.get('ping_ms'));
  if (params.has('dead_ms')) options.deadAfter = Number(params.get('dead_ms'));
  client = new ChatClient(url, options);
  client.addEventListener('envelope', (ev) => onEnvelope(ev.detail));
  client.addEventListener('state', (ev) => onState(ev.detail));
  client.connect();
  window.chat = client; // for the console and the tests
  input.focus();
}

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value;
  if (!text.trim() || !client) return;
  input.value = '';
  if (!client.send(text))
    pending.push({ text, bubble: addBubble({ from: myName || 'me', text, mine: true, pending: true }) });
});

// The nickname: ?name=… skips the prompt; otherwise ask, remembering the last one.
const dialog = $('nickname-dialog');
const given = params.get('name');
if (given) {
  start(given);
} else {
  $('nickname').value = localStorage.getItem('wschat-name') || '';
  dialog.addEventListener('close', () => {
    const name = $('nickname').value.trim() || 'guest';
    localStorage.setItem('wschat-name', name);
    start(name);
  });
  dialog.showModal();
}
