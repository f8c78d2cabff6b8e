// The websocket to a room's backend, kept alive: reconnects with exponential
// backoff and jitter, resumes by epoch and last seq so nothing is missed or
// shown twice, and keeps an outbox of sends that carry a client_id, so a
// message typed while offline goes out once the room is back.

import { randomId } from './app.js';

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** A join the server refuses for a reason the person must fix. */
const ASK_AGAIN = new Set(['password_required', 'wrong_password', 'bad_nick', 'reserved_nick']);
/** Error codes that refuse a `send` (the oldest unanswered one: the server answers in order). */
const SEND_REFUSED = new Set(['text_too_long', 'empty_message', 'bad_drawing', 'bad_reply_to', 'bad_client_id']);
const TYPING_EVERY_MS = 3000;
const ECHO_TIMEOUT_MS = 15_000;
const ECHO_CHECK_MS = 5000;

/** Delay before reconnect attempt `n` (0-based): doubling, capped, with "equal jitter". */
export function backoffDelay(n, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** n);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * States reported through `onState(state, detail)`:
 * - `connecting`: opening the socket or waiting for `welcome`;
 * - `online`: joined;
 * - `waiting`: lost, retrying at `detail.retryAt`;
 * - `offline`: the browser says there is no network (retries when it is back);
 * - `needs-input`: the join was refused with `detail.code` (nickname or password);
 * - `ended`: the room closed for good (`detail.reason`: `room_expired`, `room_deleted`).
 */
export class RoomConnection {
  /**
   * @param {object} o
   * @param {() => Promise<{ws_url: string}>} o.resolve asks aux-srv where the room lives
   * @param {() => {nick?: string, password?: string}} o.credentials for each join
   * @param {(frame: object) => void} o.onFrame every server frame, after bookkeeping
   * @param {(state: string, detail?: object) => void} o.onState
   * @param {(list: object[]) => void} o.onOutbox the unsent messages changed
   */
  constructor({ resolve, credentials, onFrame, onState, onOutbox, outbox = [] }) {
    Object.assign(this, { resolve, credentials, onFrame, onState, onOutbox });
    this.ws = null;
    this.wsUrl = null;
    this.joined = false;
    this.epoch = null;
    this.lastSeq = 0;
    this.attempt = 0;
    this.timer = null;
    this.closingReason = null;
    this.stopped = false;
    this.lastTyping = 0;
    /** client_id → send frame, in the order they were typed. */
    this.outbox = new Map(outbox.map((f) => [f.client_id, f]));
    /** client_ids sent on this connection and not yet confirmed. */
    this.inFlight = new Set();
    this.pacer = new Pacer(null);
    this.flushTimer = null;

    addEventListener('online', () => this.connectNow());
    addEventListener('offline', () => this.drop());
    // A socket can die without a word (a NAT forgets it, Wi-Fi changes): if a
    // message we sent is not echoed in time, assume the worst and reconnect.
    this.sentAt = new Map(); // client_id → when it went out on this socket
    setInterval(() => this.checkEchoes(), ECHO_CHECK_MS);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.timer) this.connectNow();
    });
  }

  get isOnline() {
    return this.joined && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Connects unless already connected or connecting. */
  async start() {
    this.stopped = false;
    if (this.ws || this.connecting) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.connecting = true;
    this.onState('connecting');
    try {
      if (!this.wsUrl || this.attempt >= 2) {
        // Where the room lives may have changed (a backend restarted, the
        // room moved): ask aux-srv again, which also re-creates a vanished room.
        const info = await this.resolve();
        this.wsUrl = info.ws_url;
      }
    } catch (error) {
      this.connecting = false;
      if (error && error.fatal) return; // the page shows why
      this.retryLater(error);
      return;
    }
    this.connecting = false;
    if (this.stopped || this.ws) return;
    this.open();
  }

  open() {
    const ws = new WebSocket(this.wsUrl);
    this.ws = ws;
    this.joined = false;
    this.closingReason = null;
    ws.onopen = () => {
      const { nick, password } = this.credentials();
      const join = { type: 'join' };
      if (nick) join.nick = nick;
      if (password) join.password = password;
      if (this.epoch !== null) join.resume = { epoch: this.epoch, after_seq: this.lastSeq };
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === 'string') this.receive(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.joined = false;
      this.afterClose(event.code);
    };
  }

  receive(frame) {
    switch (frame.type) {
      case 'welcome': {
        const sameEpoch = frame.epoch === this.epoch;
        this.epoch = frame.epoch;
        this.joined = true;
        this.attempt = 0;
        this.limits = frame.limits || this.limits;
        this.pacer = new Pacer(this.limits);
        this.inFlight.clear();
        this.sentAt.clear();
        if (!frame.resumed || !sameEpoch) this.lastSeq = 0;
        for (const m of frame.messages || []) this.noteMessage(m);
        this.lastSeq = Math.max(this.lastSeq, frame.last_seq || 0);
        this.onFrame(frame);
        this.onState('online');
        this.flush();
        return;
      }
      case 'message':
        this.noteMessage(frame);
        break;
      case 'error':
        if (!this.joined && ASK_AGAIN.has(frame.code)) {
          // Ask the person, then come back with a fresh socket (the server
          // would time the join out while they type).
          this.stopped = true;
          this.ws?.close(1000);
          this.ws = null;
          this.onState('needs-input', { code: frame.code, message: frame.message });
        } else if (SEND_REFUSED.has(frame.code)) {
          const oldest = [...this.outbox.values()].find((f) => this.inFlight.has(f.client_id));
          if (oldest) {
            this.outbox.delete(oldest.client_id);
            this.inFlight.delete(oldest.client_id);
            this.onOutbox([...this.outbox.values()]);
            frame = { ...frame, refused: oldest };
          }
        } else if (frame.code === 'rate_limited') {
          // Which frame was refused is not said; sending the unconfirmed ones
          // again is safe (the server keeps one copy per client_id).
          this.inFlight.clear();
          this.pacer.pause(frame.retry_after_ms || 1000);
          this.flushLater(frame.retry_after_ms || 1000);
          if (this.outbox.size) frame = { ...frame, willRetry: true };
        }
        break;
      case 'closing':
        this.closingReason = frame.reason;
        break;
    }
    this.onFrame(frame);
  }

  noteMessage(m) {
    if (typeof m.seq === 'number') this.lastSeq = Math.max(this.lastSeq, m.seq);
    if (m.client_id && this.outbox.delete(m.client_id)) {
      this.inFlight.delete(m.client_id);
      this.onOutbox([...this.outbox.values()]);
    }
  }

  afterClose(code) {
    if (this.stopped) return;
    const reason = this.closingReason;
    if (reason === 'room_expired' || reason === 'room_deleted') {
      this.stopped = true;
      this.onState('ended', { reason });
      return;
    }
    if (code === 4404 || reason === 'shutdown') {
      // The room is not (or no longer) on that backend: ask aux-srv again.
      this.wsUrl = null;
    }
    this.retryLater(null, reason === 'shutdown' ? 'shutdown' : null);
  }

  retryLater(error, why = null) {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.start();
    }, delay);
    const offline = navigator.onLine === false;
    this.onState(offline ? 'offline' : 'waiting', { retryAt: Date.now() + delay, error, why });
  }

  /** Reconnects right away (the network came back, or the person asked). */
  connectNow() {
    if (this.stopped || this.ws || this.connecting) return;
    this.attempt = Math.min(this.attempt, 1);
    this.start();
  }

  checkEchoes() {
    if (!this.isOnline) return;
    const now = performance.now();
    for (const [id, at] of this.sentAt) {
      if (!this.inFlight.has(id)) this.sentAt.delete(id);
      else if (now - at > ECHO_TIMEOUT_MS) {
        this.drop();
        return;
      }
    }
  }

  /** Gives up on the socket now (the network is gone, or it stopped answering):
   * its close handshake could take minutes to fail. */
  drop() {
    if (this.stopped || !this.ws) return;
    const ws = this.ws;
    this.ws = null;
    this.joined = false;
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
    this.retryLater(null);
  }

  /** Starts over in a room that was created anew (no resume: a new epoch). */
  restart() {
    this.stop();
    this.epoch = null;
    this.lastSeq = 0;
    this.wsUrl = null;
    this.attempt = 0;
    this.start();
  }

  /** Stops for good (the page is leaving or the room ended). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close(1000);
    this.ws = null;
  }

  /** Sends a frame now if joined; answers whether it went out. */
  sendFrame(frame) {
    if (!this.isOnline) return false;
    this.pacer.take();
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Queues a chat message; it goes out now or after the next (re)join. */
  sendMessage({ text, drawing, reply_to }) {
    const frame = { type: 'send', text, client_id: randomId() };
    if (drawing) frame.drawing = drawing;
    if (reply_to) frame.reply_to = reply_to;
    this.outbox.set(frame.client_id, frame);
    this.onOutbox([...this.outbox.values()]);
    this.flush();
    return frame;
  }

  /** Gives up on an unsent message. */
  discard(clientId) {
    this.inFlight.delete(clientId);
    if (this.outbox.delete(clientId)) this.onOutbox([...this.outbox.values()]);
  }

  /** Sends what the outbox holds and this connection has not sent yet, no
   * faster than the server's rate limit allows (the rest a little later). */
  flush() {
    for (const frame of this.outbox.values()) {
      if (this.inFlight.has(frame.client_id)) continue;
      if (!this.isOnline) return;
      const wait = this.pacer.wait();
      if (wait > 0) {
        this.flushLater(wait);
        return;
      }
      this.sendFrame(frame);
      this.inFlight.add(frame.client_id);
      this.sentAt.set(frame.client_id, performance.now());
    }
  }

  flushLater(ms) {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush();
    }, ms);
  }

  typing() {
    const now = Date.now();
    if (now - this.lastTyping < TYPING_EVERY_MS || this.pacer.wait() > 0) return;
    if (this.sendFrame({ type: 'typing' })) this.lastTyping = now;
  }
}

/** The server's token bucket, mirrored (a little stricter) so the page does
 * not provoke `rate_limited` when someone pastes and sends in quick bursts. */
class Pacer {
  constructor(limits) {
    this.rate = Math.max(1, (limits?.rate_per_sec ?? 10) * 0.9);
    this.burst = Math.max(1, (limits?.rate_burst ?? 20) - 2);
    this.tokens = this.burst;
    this.at = performance.now();
  }

  refill() {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
  }

  /** Milliseconds until a frame may go (0: now). */
  wait() {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }

  take() {
    this.refill();
    this.tokens -= 1;
  }

  pause(ms) {
    this.refill();
    this.tokens = Math.min(this.tokens, 0) - (ms / 1000) * this.rate;
  }
}
