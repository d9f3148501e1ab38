// wschat browser client: one JSON WebSocket that stays connected.
//
// - reconnects with exponential back-off: 1 s, 2 s, 4 s … capped at 30 s, with ±20 % jitter,
//   reset by a successful open; never after close() (a deliberate close);
// - tries again at once when the browser says it is back online;
// - sends {"type":"ping"} every `pingEvery` ms (10 s) and treats a server silent for
//   `deadAfter` ms (35 s) as dead: it closes the socket and reconnects;
// - knows nothing of rooms or resume: the page (app.js) sends `resume` and `join` when the
//   state becomes 'connected' (dispatched before any envelope of the new socket), and keeps
//   its own outbox of unacknowledged messages, resent once their room is back.
//
// Events (listen with addEventListener): 'state' {detail: {state, retryIn}}, 'envelope'
// {detail: envelope object}. States: 'connecting', 'connected', 'offline', and 'replaced'
// (closed by the server with 4001 because the member resumed elsewhere: no reconnect).

/// The close code of a connection whose member resumed on another one (chat::lobby).
const REPLACED = 4001;

export class ChatClient extends EventTarget {
  constructor(url, { pingEvery = 10000, deadAfter = 35000, maxDelay = 30000 } = {}) {
    super();
    this.url = url;
    this.pingEvery = pingEvery;
    this.deadAfter = deadAfter;
    this.maxDelay = maxDelay;
    this.attempts = 0;     // failed opens since the last successful one
    this.closed = false;   // close() was called: no reconnect
    this.socket = null;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    this.state = 'connecting';
    // The device is back on a network (a phone out of a tunnel, a laptop woken up): try now
    // rather than at the end of a back-off that may be 30 s long.
    this.onOnline = () => {
      if (this.closed || this.socket) return;
      clearTimeout(this.retryTimer);
      this.connect();
    };
    window.addEventListener('online', this.onOnline);
  }

  connect() {
    this.closed = false;
    this.setState('connecting');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempts = 0;
      this.lastHeard = Date.now();
      this.setState('connected');
      this.startHeartbeat();
    };
    socket.onmessage = (event) => {
      this.lastHeard = Date.now();
      let envelope;
      try { envelope = JSON.parse(event.data); } catch { return; }
      if (envelope && typeof envelope.type === 'string')
        this.dispatchEvent(new CustomEvent('envelope', { detail: envelope }));
    };
    socket.onerror = () => {}; // a close event always follows; it decides what to do
    socket.onclose = (event) => {
      if (this.socket !== socket) return; // an old socket we already gave up on
      this.stopHeartbeat();
      this.socket = null;
      if (event.code === REPLACED) {
        // This member resumed on another connection (another tab took it over): coming
        // back would only take it away again.
        this.closed = true;
        this.setState('replaced');
        return;
      }
      if (!this.closed) this.scheduleReconnect();
    };
  }

  /// Sends one envelope (an object) now; false when not connected (nothing is queued).
  send(envelope) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(envelope));
    return true;
  }

  /// A deliberate close: no reconnect.
  close() {
    this.closed = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    if (this.socket) this.socket.close(1000, 'bye');
    this.socket = null;
    this.setState('offline');
  }

  // --- internals ------------------------------------------------------------------------

  delayFor(attempt) {
    const base = Math.min(this.maxDelay, 1000 * 2 ** attempt);
    const jitter = base * 0.2 * (Math.random() * 2 - 1);
    return Math.max(500, Math.min(this.maxDelay, Math.round(base + jitter)));
  }

  scheduleReconnect() {
    const delay = this.delayFor(this.attempts++);
    const until = Date.now() + delay;
    this.setState('offline', Math.ceil(delay / 1000));
    clearTimeout(this.retryTimer);
    // Count down once a second so the banner stays truthful.
    const tick = () => {
      const left = until - Date.now();
      if (left <= 0) return this.connect();
      this.setState('offline', Math.ceil(left / 1000));
      this.retryTimer = setTimeout(tick, Math.min(1000, left));
    };
    this.retryTimer = setTimeout(tick, Math.min(1000, delay));
  }

  startHeartbeat() {
    this.stopHeartbeat();
    let lastPing = Date.now();
    // Checked every second, so a dead server is noticed within a second of `deadAfter`.
    this.pingTimer = setInterval(() => {
      const socket = this.socket;
      if (!socket) return;
      const now = Date.now();
      if (now - this.lastHeard > this.deadAfter) {
        // No pong, no message: the server or the path to it is gone (a closed laptop lid,
        // a dropped NAT mapping). The browser may take minutes to notice by itself.
        this.socket = null;
        socket.onclose = null;
        socket.close();
        this.stopHeartbeat();
        if (!this.closed) this.scheduleReconnect();
        return;
      }
      if (now - lastPing >= this.pingEvery && socket.readyState === WebSocket.OPEN) {
        socket.send('{"type":"ping"}');
        lastPing = now;
      }
    }, Math.min(1000, this.pingEvery));
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  setState(state, retryIn = 0) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, retryIn } }));
  }
}
