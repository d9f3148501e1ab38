// wschat page: a nickname prompt, rooms (join, switch, leave, unread counts), bubbles, recent
// history on join, who is online per room, a typing indicator and the connection banner.
// It speaks chat::lobby's envelopes (README, "Rooms, history and resume").
//
// Resume: the page keeps the `token` of its last welcome and, per room, the last (epoch, seq)
// it showed, also in sessionStorage so that a reload comes back as the same member. After a
// reconnection it sends `resume` first: the server answers with exactly the missed messages,
// or says why it cannot (then the page reloads the room's recent history and, when the epoch
// changed, says plainly that the server lost its history). Messages are shown once per
// (room, epoch, seq); what you send carries an id and stays in an outbox until acknowledged,
// resent with the same id after a reconnection (the server drops a duplicate).
//
// Every text from the network goes in with textContent: never as HTML.
import { ChatClient } from './chat-client.js';

const $ = (id) => document.getElementById(id);
const messages = $('messages');
const banner = $('banner');
const input = $('text');
const people = $('people');
const peopleStatus = $('people-status');
const params = new URLSearchParams(location.search);

const DEFAULT_ROOM = 'general';
const HISTORY = 50;               // messages asked for on join
const TYPING_EVERY_MS = 2000;     // at most one `typing` per this while typing
const TYPING_SHOWN_MS = 4000;     // how long "bob is typing…" stays without news
const RETURN_WINDOW_MS = 60000;   // after a reconnection, joins of known names are returns
const STORE = 'wschat-session';   // sessionStorage: token, name, rooms and positions
const ROOM_NAME = /^[A-Za-z0-9._-]{1,64}$/;

let myName = '';
let token = '';
let client = null;
let everConnected = false;   // this page has had a welcome (a reconnection, not a first join)
let resuming = false;        // `resume` sent, its welcome not yet come
let provisional = null;      // the welcome of this connection before the resume's answer
let lastTyping = 0;
const rooms = new Map();     // name -> room (in list order)
let active = null;           // the room shown
const outbox = new Map();    // client id -> { room, text, bubble }
const idPrefix = Math.random().toString(36).slice(2, 10);
let nextId = 1;

// --- storage ------------------------------------------------------------------------------

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE)) || null;
  } catch {
    return null;
  }
}

function save() {
  const list = [...rooms.values()].map((r) => ({ room: r.name, epoch: r.epoch, seq: r.seq }));
  // Unacknowledged messages too: a reload sends them again, with the same ids.
  const unsent = [...outbox].map(([id, e]) => ({ id, room: e.room, text: e.text }));
  sessionStorage.setItem(STORE, JSON.stringify({ token, name: myName, rooms: list, active: active?.name, outbox: unsent }));
}

// --- rooms ---------------------------------------------------------------------------------

/// A room of the list (its log, its entry), not yet joined: `epoch` is the one last shown.
function makeRoom(name, epoch = '') {
  const log = document.createElement('ol');
  log.className = 'room-log';
  log.dataset.room = name;
  log.hidden = true;
  messages.appendChild(log);
  const li = document.createElement('li');
  const open = document.createElement('button');
  open.type = 'button';
  open.className = 'room-open';
  const label = document.createElement('span');
  label.className = 'room-name';
  label.textContent = `#${name}`;
  const unread = document.createElement('span');
  unread.className = 'unread';
  unread.hidden = true;
  open.append(label, unread);
  open.addEventListener('click', () => show(name));
  const leave = document.createElement('button');
  leave.type = 'button';
  leave.className = 'room-leave';
  leave.textContent = '×';
  leave.setAttribute('aria-label', `Leave ${name}`);
  leave.addEventListener('click', () => leaveRoom(name));
  li.append(open, leave);
  $('room-list').appendChild(li);
  const room = {
    name, epoch, seq: 0, log, li, unreadBadge: unread, unread: 0,
    members: [], online: 0, known: false, // known: a roster came on this connection
    ready: false,                         // joined or resumed on this connection
    seen: new Set(),                      // "epoch:seq" shown
    historyLeft: 0,                       // history messages still to come after `joined`
    returning: new Set(), returningUntil: 0,
    typing: new Map(),                    // name -> timer
  };
  rooms.set(name, room);
  return room;
}

function dropRoom(room) {
  room.log.remove();
  room.li.remove();
  for (const timer of room.typing.values()) clearTimeout(timer);
  rooms.delete(room.name);
  for (const [id, entry] of outbox) if (entry.room === room.name) outbox.delete(id);
  if (active === room) {
    active = null;
    const next = rooms.values().next().value;
    if (next) show(next.name);
    else renderRoom();
  }
  save();
}

function show(name) {
  const room = rooms.get(name);
  if (!room) return;
  if (active) {
    active.log.hidden = true;
    active.li.classList.remove('active');
    active.li.querySelector('.room-open').removeAttribute('aria-current');
  }
  active = room;
  room.log.hidden = false;
  room.li.classList.add('active');
  room.li.querySelector('.room-open').setAttribute('aria-current', 'true');
  setUnread(room, 0);
  renderRoom();
  scrollDown();
  save();
}

function setUnread(room, n) {
  room.unread = n;
  room.unreadBadge.hidden = n === 0;
  const said = document.createElement('span');
  said.className = 'visually-hidden';
  said.textContent = ' unread';
  room.unreadBadge.replaceChildren(String(n), said);
}

/// The title, who is online and who is typing, for the room shown.
function renderRoom() {
  $('room-title').textContent = active ? `#${active.name}` : 'no room: join one';
  renderPeople();
  renderTyping();
}

function joinRoom(name) {
  if (!ROOM_NAME.test(name)) {
    addNotice(active, `"${name}" is not a room name (1 to 64 of A-Z a-z 0-9 . _ -)`);
    return;
  }
  if (!rooms.has(name)) {
    makeRoom(name);
    // While a resume is under way this goes after it; if the resume is refused, the page
    // joins every room again anyway and the history is shown once.
    if (client && client.state === 'connected') client.send({ type: 'join', room: name, history: HISTORY });
  }
  show(name);
}

function leaveRoom(name) {
  const room = rooms.get(name);
  if (!room) return;
  // Gone from the page at once; the server's `left` (or nothing, offline) changes no more.
  if (client) client.send({ type: 'leave', room: name });
  dropRoom(room);
}

// --- the message list ----------------------------------------------------------------------

function scrollDown() { messages.scrollTop = messages.scrollHeight; }

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function addNotice(room, text, kind = '') {
  if (!room) return;
  const li = document.createElement('li');
  li.className = 'notice' + (kind ? ` ${kind}` : '');
  li.textContent = text;
  room.log.appendChild(li);
  if (room === active) scrollDown();
}

/// A message's bubble; `pending` is 'sending' or 'waiting' for one not yet back from the room.
function bubble({ from, text, time, mine, pending }) {
  const li = document.createElement('li');
  li.className = 'bubble' + (mine ? ' mine' : '') + (pending ? ' pending' : '');
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.textContent = pending === 'waiting' ? `${from} · waiting to send`
                   : pending ? `${from} · sending…` : `${from} · ${timeOf(time)}`;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(meta, body);
  return li;
}

/// A numbered message of a room: shown once per (epoch, seq), in the order they come.
function onMessage(e) {
  const room = rooms.get(e.room);
  if (!room) return;
  const key = `${e.epoch}:${e.seq}`;
  const fromHistory = room.historyLeft > 0;
  if (fromHistory) room.historyLeft--;
  if (room.seen.has(key)) return;
  room.seen.add(key);
  if (e.epoch === room.epoch && e.seq > room.seq) room.seq = e.seq;
  const mine = e.from === myName;
  const sent = e.id !== undefined && outbox.get(e.id);
  if (sent && sent.bubble) sent.bubble.remove();
  const li = bubble({ from: e.from, text: e.text, time: e.time, mine });
  li.dataset.seq = key;
  if (e.id !== undefined) li.dataset.id = e.id;
  room.log.appendChild(li);
  if (room === active) scrollDown();
  else if (!fromHistory) setUnread(room, room.unread + 1);
  clearTyping(room, e.from);
  save();
}

// --- sending -------------------------------------------------------------------------------

function sendMessage(text) {
  if (!active) return;
  const id = `${idPrefix}-${nextId++}`;
  const sent = active.ready && client.send({ type: 'message', room: active.name, text, id });
  // Shown at once, greyed, until the room's own copy takes its place.
  const entry = { room: active.name, text, bubble: bubble({ from: myName || 'me', text, mine: true, pending: sent ? 'sending' : 'waiting' }) };
  outbox.set(id, entry);
  active.log.appendChild(entry.bubble);
  scrollDown();
  save();
}

/// Resends what `room` has not acknowledged, in the order it was typed, with the same ids.
function flushOutbox(room) {
  for (const [id, entry] of outbox)
    if (entry.room === room.name) client.send({ type: 'message', room: room.name, text: entry.text, id });
}

function onAck(e) {
  const entry = outbox.get(e.id);
  outbox.delete(e.id);
  if (entry && entry.bubble) entry.bubble.remove(); // its message is shown (or was, before)
  const room = rooms.get(e.room);
  const shown = room && room.log.querySelector(`.bubble[data-seq="${CSS.escape(`${room.epoch}:${e.seq}`)}"]`);
  if (shown) shown.classList.add('delivered');
  save();
}

// --- who is online, who is typing ----------------------------------------------------------

function renderPeople() {
  const room = active;
  const list = $('members');
  if (!room || !room.known) {
    $('online').textContent = '—';
    list.replaceChildren(...(room ? room.members : []).map(memberItem));
    return;
  }
  $('online').textContent = String(room.online);
  // Sorted for the eye; the server lists them in join order.
  list.replaceChildren(...[...room.members].sort((x, y) => x.localeCompare(y)).map(memberItem));
  const more = $('more-members');
  more.hidden = room.online <= room.members.length;
  more.textContent = `and ${room.online - room.members.length} more`;
  if (people.classList.contains('stale') && client.state === 'connected') {
    people.classList.remove('stale');
    peopleStatus.hidden = true;
  }
}

function memberItem(name) {
  const li = document.createElement('li');
  li.textContent = name;
  if (name === myName) li.className = 'me';
  return li;
}

function onRoster(room, e) {
  if (e.offset === 0) room.members = [];
  room.members.push(...e.members.filter((n) => !room.members.includes(n)));
  room.online = e.online;
  room.known = true;
  if (e.more) client.send({ type: 'roster', room: room.name, offset: e.offset + e.members.length });
}

/// A coalesced delta. A name in both lists came and went (or went and came back) within one
/// interval, in an order the envelope does not give: it gets no notice, and it stays listed
/// only if the count says so.
function onPresence(e) {
  const room = rooms.get(e.room);
  if (!room) return;
  const both = e.joined.filter((n) => e.left.includes(n));
  room.members = room.members.filter((n) => !e.left.includes(n));
  for (const name of e.joined) if (!room.members.includes(name)) room.members.push(name);
  if (room.members.length > e.online) room.members = room.members.filter((n) => !both.includes(n));
  for (const name of e.joined) {
    if (name === myName || both.includes(name)) continue;
    if (Date.now() < room.returningUntil && room.returning.delete(name)) continue; // back, not new
    addNotice(room, `${name} joined`);
  }
  for (const name of e.left) if (name !== myName && !both.includes(name)) addNotice(room, `${name} left`);
  room.online = e.online;
  if (room === active) renderPeople();
}

// The connection is down: what the list shows is only what was true when it was up.
function markStale() {
  for (const room of rooms.values()) {
    room.ready = false;
    room.known = false; // the list stays shown, marked stale, until a roster or delta
  }
  if (people.classList.contains('stale')) return;
  people.classList.add('stale');
  $('online').textContent = '—';
  if (myName) {
    peopleStatus.textContent = 'reconnecting…';
    peopleStatus.hidden = false;
  }
  // Who was there: their joins after the reconnection are returns, not news.
  for (const room of rooms.values()) room.returning = new Set(room.members);
}

function onTyping(e) {
  const room = rooms.get(e.room);
  if (!room || e.from === myName) return;
  clearTimeout(room.typing.get(e.from));
  room.typing.set(e.from, setTimeout(() => clearTyping(room, e.from), TYPING_SHOWN_MS));
  if (room === active) renderTyping();
}

function clearTyping(room, name) {
  if (!room.typing.has(name)) return;
  clearTimeout(room.typing.get(name));
  room.typing.delete(name);
  if (room === active) renderTyping();
}

function renderTyping() {
  const names = active ? [...active.typing.keys()] : [];
  $('typing').textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
    : names.length <= 3 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are typing…`
    : 'several people are typing…';
}

// --- the envelopes -------------------------------------------------------------------------

/// Asks for every room of the list afresh, with its recent history.
function joinAll() {
  for (const room of rooms.values()) client.send({ type: 'join', room: room.name, history: HISTORY });
}

function onWelcome(e) {
  if (resuming && !e.resumed) {
    provisional = e; // who this connection is unless the resume succeeds
    return;
  }
  const before = myName;
  myName = e.name;
  token = e.token;
  resuming = false;
  if (e.resumed) {
    addNotice(active, everConnected ? (before === e.name ? 'Reconnected' : `Reconnected as ${e.name}`)
                                    : `Welcome back, ${e.name}`);
    for (const room of rooms.values()) room.returningUntil = Date.now() + RETURN_WINDOW_MS;
  } else {
    addNotice(active, `You joined as ${e.name}`);
    joinAll();
  }
  everConnected = true;
  save();
}

/// The resume was refused (the server forgot the token: restarted, or too long away): this
/// connection stays the member its first welcome named, and joins the rooms again.
function resumeRefused() {
  resuming = false;
  const e = provisional;
  provisional = null;
  if (!e) return;
  const before = myName;
  myName = e.name;
  token = e.token;
  addNotice(active, before === e.name ? 'Reconnected' : `Reconnected as ${e.name}`);
  for (const room of rooms.values()) room.returningUntil = Date.now() + RETURN_WINDOW_MS;
  joinAll();
  save();
}

function onJoined(e) {
  const room = rooms.get(e.room);
  if (!room) return client.send({ type: 'leave', room: e.room }); // left meanwhile
  if (room.epoch && room.epoch !== e.epoch)
    addNotice(room, 'The server restarted or made this room anew: its history was lost, so messages from before may be missing.', 'warning');
  room.epoch = e.epoch;
  room.seq = e.seq; // the history that follows is at or before it
  room.historyLeft = e.history;
  room.ready = true;
  onRoster(room, e);
  if (room === active) renderPeople();
  flushOutbox(room);
  save();
}

function onResumed(e) {
  const room = rooms.get(e.room);
  if (!room) return;
  if (e.recovered) {
    room.ready = true;
    // The roster is not resent: ask for it, the list may have changed while away.
    client.send({ type: 'roster', room: room.name, offset: 0 });
    flushOutbox(room);
    return;
  }
  if (e.reason === 'too_many' || e.reason === 'too_old')
    addNotice(room, 'Too much happened while you were away: showing the recent messages only.', 'warning');
  client.send({ type: 'join', room: room.name, history: HISTORY }); // `joined` tells the epoch
}

function onError(e) {
  if (e.code === 'bad_token') return resumeRefused();
  const room = e.room !== undefined ? rooms.get(e.room) : active;
  if (e.id !== undefined) {
    const entry = outbox.get(e.id);
    // Not a member (yet): the message waits for its room to be back. Otherwise it is refused.
    if (entry && (e.code === 'not_member' || e.code === 'no_room')) return;
    if (entry) {
      outbox.delete(e.id);
      if (entry.bubble) entry.bubble.remove();
    }
    return addNotice(room, `Not sent: ${e.message}`);
  }
  // A room the member was not in on the server (joined while offline): join it now.
  if (room && e.code === 'not_member') return client.send({ type: 'join', room: room.name, history: HISTORY });
  const joining = ['bad_room_name', 'too_many_joined', 'too_many_rooms', 'room_full', 'banned', 'history_too_large'];
  if (room && e.room !== undefined && joining.includes(e.code)) {
    dropRoom(room);
    return addNotice(active, `Cannot join #${room.name}: ${e.message}`);
  }
  addNotice(room, `Error: ${e.message}`);
}

/// A room the server still has this member in, though the page left it (while offline, when
/// the `leave` could not be sent): leave it now, once per connection.
const strays = new Set();
function stray(name) {
  if (typeof name !== 'string' || rooms.has(name) || strays.has(name)) return;
  strays.add(name);
  client.send({ type: 'leave', room: name });
}

function onEnvelope(e) {
  if (['message', 'presence', 'typing', 'roster', 'resumed'].includes(e.type)) stray(e.room);
  switch (e.type) {
    case 'welcome': return onWelcome(e);
    case 'joined': return onJoined(e);
    case 'resumed': return onResumed(e);
    case 'message': return onMessage(e);
    case 'ack': return onAck(e);
    case 'presence': return onPresence(e);
    case 'roster': {
      const room = rooms.get(e.room);
      if (room) { onRoster(room, e); if (room === active) renderPeople(); }
      return;
    }
    case 'typing': return onTyping(e);
    case 'left': return; // dropped from the page when asked
    case 'kicked': {
      const room = rooms.get(e.room);
      if (room) {
        addNotice(room, `You were removed from #${e.room}${e.reason ? `: ${e.reason}` : ''}`, 'warning');
        room.ready = false;
        room.known = false;
        room.li.classList.add('kicked');
      }
      return;
    }
    case 'error': return onError(e);
  }
}

function onState({ state, retryIn }) {
  if (state !== 'connected') markStale();
  banner.className = 'banner ' + state;
  banner.textContent = state === 'offline' ? `offline — retrying in ${retryIn} s`
                     : state === 'connected' ? 'connected'
                     : state === 'replaced' ? 'opened in another tab or window'
                     : 'connecting…';
  if (state !== 'connected') return;
  strays.clear();
  // Sent before anything else on the new socket: the server handles envelopes in order.
  if (token) {
    resuming = true;
    provisional = null;
    const list = [...rooms.values()].map((r) => (r.seen.size ? { room: r.name, epoch: r.epoch, seq: r.seq } : { room: r.name }));
    // A room this page has shown nothing of (a reload) is loaded with `join` after the
    // resume: its recent history, not just what came since.
    client.send({ type: 'resume', token, rooms: list.filter((r) => r.seq !== undefined) });
    for (const room of rooms.values())
      if (!room.seen.size) client.send({ type: 'join', room: room.name, history: HISTORY });
  }
}

function start(name) {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const url = `${scheme}${location.host}/chat?name=${encodeURIComponent(name)}`;
  const options = {};
  // Tests shorten the heartbeat: ?ping_ms=…&dead_ms=…
  if (params.has('ping_ms')) options.pingEvery = Number(params.get('ping_ms'));
  if (params.has('dead_ms')) options.deadAfter = Number(params.get('dead_ms'));
  // A reload resumes the member this tab was (its name kept), and reloads its rooms' history.
  const stored = load();
  if (stored && stored.name === name && stored.token) {
    token = stored.token;
    myName = stored.name;
    for (const r of stored.rooms || []) if (ROOM_NAME.test(r.room) && !rooms.has(r.room)) makeRoom(r.room, r.epoch || '');
    for (const m of stored.outbox || []) {
      const room = rooms.get(m.room);
      if (!room || typeof m.id !== 'string' || typeof m.text !== 'string') continue;
      const entry = { room: m.room, text: m.text, bubble: bubble({ from: myName, text: m.text, mine: true, pending: 'waiting' }) };
      outbox.set(m.id, entry);
      room.log.appendChild(entry.bubble);
    }
  }
  if (rooms.size === 0) makeRoom(DEFAULT_ROOM);
  show(stored && rooms.has(stored.active) ? stored.active : rooms.keys().next().value);
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
  sendMessage(text);
});

input.addEventListener('input', () => {
  const now = Date.now();
  if (!active || !active.ready || !input.value.trim() || now - lastTyping < TYPING_EVERY_MS) return;
  lastTyping = now;
  client.send({ type: 'typing', room: active.name });
});

$('join-room').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('room-name').value.trim();
  if (!name) return;
  $('room-name').value = '';
  joinRoom(name);
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
