// The websocket to a room's backend, kept alive: reconnects with exponential
// backoff and jitter, resumes by epoch and last seq so nothing is missed or
// shown twice, and keeps an outbox of sends that carry a client_id, so a
// message typed while offline goes out once the room is back.

import { randomId } from './app.js';
import { Pacer, backoffDelay } from './pacing.js';
import { solveChallenge } from './pow.js';

/** A join the server refuses for a reason the person must fix. */
const ASK_AGAIN = new Set(['password_required', 'wrong_password', 'too_many_attempts', 'bad_nick', 'reserved_nick']);
/** Error codes that refuse a `send` (the oldest unanswered one: the server answers in order). */
const SEND_REFUSED = new Set(['text_too_long', 'empty_message', 'bad_drawing', 'bad_reply_to', 'bad_client_id', 'repeated']);
/** Error codes that hold sends back for `retry_after_ms`; they go out again after it. */
const SEND_LATER = new Set(['rate_limited', 'slow_mode']);
/** A join refused by the room's moderation: trying again would not help. */
const KEPT_OUT = new Set(['banned', 'room_locked']);
const TYPING_EVERY_MS = 3000;
const ECHO_TIMEOUT_MS = 15_000;
const ECHO_CHECK_MS = 5000;
/** Close code of a room that moved to another backend (RFC 6455 "service restart"). */
const MOVED_CODE = 1012;

/**
 * States reported through `onState(state, detail)`:
 * - `connecting`: opening the socket or waiting for `welcome`;
 * - `online`: joined;
 * - `waiting`: lost, retrying at `detail.retryAt`;
 * - `offline`: the browser says there is no network (retries when it is back);
 * - `needs-input`: the join was refused with `detail.code` (nickname or password);
 * - `ended`: the room closed for good (`detail.reason`: `room_expired`, `room_deleted`),
 *   keeps this person out (`kicked`, `banned`, `room_locked`; `detail.message`),
 *   or another tab took this member over (`replaced`; `reconnect()` takes it back).
 *
 * A room that moves to another backend (`closing moved`, close 1012) is
 * followed at once: to the `ws_url` the `closing` frame names (aux-srv is
 * asked only if that fails, or if it names none), with `resume` and
 * `reclaim`; sends refused with `room_moving` are sent again after the move.
 * A resume after `closing moved` says the page kept its member list
 * (`has_members`), so the new backend's welcome need not repeat it
 * (`members_unchanged`).
 */
export class RoomConnection {
  // The connection's state is its own: the page learns it through
  // `onState`, `onFrame`, `onOutbox`, `isOnline` and `pending()` only.
  #ws = null;
  #wsUrl = null;
  #connecting = false;
  #joined = false;
  #epoch = null;
  #lastSeq = 0;
  #limits = null;
  #attempt = 0;
  #timer = null;
  #closingReason = null;
  /** Where the last `closing moved` said the room went. */
  #movedTo = null;
  /** The page's member list is the room's as of a `closing moved` (no welcome since). */
  #listAtMove = false;
  #stopped = false;
  #lastTyping = 0;
  /** client_id → send frame, in the order they were typed. */
  #outbox;
  /** client_ids sent on this connection and not yet confirmed. */
  #inFlight = new Set();
  /** client_id → when it went out on this socket. */
  #sentAt = new Map();
  #pacer = new Pacer(null);
  #flushTimer = null;
  /** This member's token in the room (`welcome.you.token`), sent as `reclaim`. */
  #token = null;

  /**
   * @param {object} o
   * @param {() => Promise<{ws_url: string}>} o.resolve asks aux-srv where the room lives
   * @param {() => {nick?: string, password?: string, owner_key?: string}} o.credentials for each join
   * @param {(frame: object) => void} o.onFrame every server frame, after bookkeeping
   * @param {(state: string, detail?: object) => void} o.onState
   * @param {(list: object[]) => void} o.onOutbox the unsent messages changed
   * @param {string|null} o.token the member token kept from an earlier join
   * @param {(token: string) => void} o.onToken the server gave a member token
   */
  constructor({ resolve, credentials, onFrame, onState, onOutbox, outbox = [], token = null, onToken = () => {} }) {
    Object.assign(this, { resolve, credentials, onFrame, onState, onOutbox, onToken });
    this.#token = token;
    this.#outbox = new Map(outbox.map((f) => [f.client_id, f]));

    addEventListener('online', () => this.connectNow());
    addEventListener('offline', () => this.drop());
    // A socket can die without a word (a NAT forgets it, Wi-Fi changes): if a
    // message we sent is not echoed in time, assume the worst and reconnect.
    setInterval(() => this.checkEchoes(), ECHO_CHECK_MS);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.#timer) this.connectNow();
    });
  }

  get isOnline() {
    return this.#joined && this.#ws?.readyState === WebSocket.OPEN;
  }

  /** The messages typed and not yet confirmed by the server, oldest first. */
  pending() {
    return [...this.#outbox.values()];
  }

  /** Connects unless already connected or connecting. */
  async start() {
    this.#stopped = false;
    if (this.#ws || this.#connecting) return;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#connecting = true;
    this.onState('connecting');
    try {
      if (!this.#wsUrl || this.#attempt >= 2) {
        // Where the room lives may have changed (a backend restarted, the
        // room moved): ask aux-srv again, which also re-creates a vanished room.
        const info = await this.resolve();
        this.#wsUrl = info.ws_url;
      }
    } catch (error) {
      this.#connecting = false;
      if (error && error.fatal) return; // the page shows why
      this.retryLater(error);
      return;
    }
    this.#connecting = false;
    if (this.#stopped || this.#ws) return;
    this.open();
  }

  open() {
    const ws = new WebSocket(this.#wsUrl);
    this.#ws = ws;
    this.#joined = false;
    this.#closingReason = null;
    this.#movedTo = null;
    ws.onopen = () => this.sendJoin(ws);
    ws.onmessage = (event) => {
      if (this.#ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === 'string') this.receive(frame);
    };
    ws.onclose = (event) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#joined = false;
      this.afterClose(event.code);
    };
  }

  /** The `join` frame, with `pow` when answering a challenge. */
  sendJoin(ws, pow = null) {
    const { nick, password, owner_key: ownerKey } = this.credentials();
    const join = { type: 'join' };
    if (nick) join.nick = nick;
    if (password) join.password = password;
    if (ownerKey) join.owner_key = ownerKey;
    if (this.#epoch !== null) {
      join.resume = { epoch: this.#epoch, after_seq: this.#lastSeq };
      // The page keeps the member list it was given and every change since;
      // after a `closing moved` it is known to be whole.
      if (this.#listAtMove) join.resume.has_members = true;
    }
    if (this.#token) join.reclaim = this.#token;
    if (pow) join.pow = pow;
    ws.send(JSON.stringify(join));
  }

  /**
   * A room under attack asks joins for a proof of work: solve it (well under
   * a second) and join again on the same socket. The person sees nothing
   * but "Connecting…".
   */
  async answerChallenge(challenge) {
    const ws = this.#ws;
    const pow = await solveChallenge(challenge);
    if (this.#ws === ws && ws.readyState === WebSocket.OPEN) this.sendJoin(ws, pow);
  }

  receive(frame) {
    switch (frame.type) {
      case 'welcome': {
        const sameEpoch = frame.epoch === this.#epoch;
        this.#epoch = frame.epoch;
        this.#joined = true;
        this.#attempt = 0;
        this.#limits = frame.limits || this.#limits;
        this.#pacer = new Pacer(this.#limits);
        this.#inFlight.clear();
        this.#sentAt.clear();
        if (!frame.resumed || !sameEpoch) this.#lastSeq = 0;
        for (const m of frame.messages || []) this.noteMessage(m);
        this.#lastSeq = Math.max(this.#lastSeq, frame.last_seq || 0);
        if (frame.you?.token && frame.you.token !== this.#token) {
          this.#token = frame.you.token;
          this.onToken(this.#token);
        }
        this.onFrame(frame);
        this.#listAtMove = false;
        this.onState('online');
        this.flush();
        return;
      }
      case 'message':
        this.noteMessage(frame);
        break;
      case 'error':
        if (!this.#joined && frame.code === 'challenge' && frame.challenge) {
          this.answerChallenge(frame.challenge);
          return;
        }
        if (!this.#joined && ASK_AGAIN.has(frame.code)) {
          // Ask the person, then come back with a fresh socket (the server
          // would time the join out while they type). The refusal reaches
          // the page once, as this state, not a second time as a frame.
          this.#stopped = true;
          this.#ws?.close(1000);
          this.#ws = null;
          this.onState('needs-input', { code: frame.code, message: frame.message });
          return;
        }
        if (!this.#joined && KEPT_OUT.has(frame.code)) {
          // The server closes with 4403 next; no reconnecting into a wall.
          this.#stopped = true;
          this.onState('ended', { reason: frame.code, message: frame.message, retryAfterMs: frame.retry_after_ms });
          return;
        }
        if (SEND_REFUSED.has(frame.code)) {
          const oldest = [...this.#outbox.values()].find((f) => this.#inFlight.has(f.client_id));
          if (oldest) {
            this.#outbox.delete(oldest.client_id);
            this.#inFlight.delete(oldest.client_id);
            this.onOutbox(this.pending());
            frame = { ...frame, refused: oldest };
          }
        } else if (frame.code === 'room_moving') {
          // The room is moving to another backend: the close (1012) follows,
          // and the send goes out again (same client_id) after the move. Not
          // the person's business.
          this.#inFlight.clear();
          this.#pacer.pause(frame.retry_after_ms || 500);
          this.flushLater(frame.retry_after_ms || 500);
          return;
        } else if (SEND_LATER.has(frame.code)) {
          // Which frame was refused is not said; sending the unconfirmed ones
          // again is safe (the server keeps one copy per client_id).
          this.#inFlight.clear();
          this.#pacer.pause(frame.retry_after_ms || 1000);
          this.flushLater(frame.retry_after_ms || 1000);
          if (this.#outbox.size) frame = { ...frame, willRetry: true };
        }
        break;
      case 'closing':
        this.#closingReason = frame.reason;
        if (frame.reason === 'moved') {
          this.#listAtMove = true;
          if (typeof frame.ws_url === 'string') this.#movedTo = frame.ws_url;
        }
        break;
    }
    this.onFrame(frame);
  }

  noteMessage(m) {
    if (typeof m.seq === 'number') this.#lastSeq = Math.max(this.#lastSeq, m.seq);
    if (m.client_id && this.#outbox.delete(m.client_id)) {
      this.#inFlight.delete(m.client_id);
      this.onOutbox(this.pending());
    }
  }

  afterClose(code) {
    if (this.#stopped) return;
    const reason = this.#closingReason;
    const over = ['room_expired', 'room_deleted', 'replaced', 'kicked'];
    if (over.includes(reason) || code === 4403) {
      this.#stopped = true;
      this.onState('ended', { reason: reason || 'refused' });
      return;
    }
    if (reason === 'moved' || code === MOVED_CODE) {
      // The room is on another backend now: go there right away (asking
      // aux-srv where, if the server did not say).
      this.#wsUrl = this.#movedTo;
      this.#attempt = 0;
      this.start();
      return;
    }
    if (code === 4404 || reason === 'shutdown') {
      // The room is not (or no longer) on that backend: ask aux-srv again.
      this.#wsUrl = null;
    }
    this.retryLater(null, reason === 'shutdown' ? 'shutdown' : null);
  }

  retryLater(error, why = null) {
    if (this.#stopped) return;
    const delay = backoffDelay(this.#attempt);
    this.#attempt += 1;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.start();
    }, delay);
    const offline = navigator.onLine === false;
    this.onState(offline ? 'offline' : 'waiting', { retryAt: Date.now() + delay, error, why });
  }

  /** Reconnects right away (the network came back, or the person asked). */
  connectNow() {
    if (this.#stopped || this.#ws || this.#connecting) return;
    this.#attempt = Math.min(this.#attempt, 1);
    this.start();
  }

  checkEchoes() {
    if (!this.isOnline) return;
    const now = performance.now();
    for (const [id, at] of this.#sentAt) {
      if (!this.#inFlight.has(id)) this.#sentAt.delete(id);
      else if (now - at > ECHO_TIMEOUT_MS) {
        this.drop();
        return;
      }
    }
  }

  /** Gives up on the socket now (the network is gone, or it stopped answering):
   * its close handshake could take minutes to fail. */
  drop() {
    if (this.#stopped || !this.#ws) return;
    const ws = this.#ws;
    this.#ws = null;
    this.#joined = false;
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
    this.retryLater(null);
  }

  /** Connects again after `ended` (`replaced`: this tab takes the member back). */
  reconnect() {
    this.#stopped = false;
    this.#attempt = 0;
    this.start();
  }

  /** Starts over in a room that was created anew (no resume: a new epoch). */
  restart() {
    this.stop();
    this.#epoch = null;
    this.#lastSeq = 0;
    this.#wsUrl = null;
    this.#attempt = 0;
    this.start();
  }

  /** Stops for good (the page is leaving or the room ended). */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#ws?.close(1000);
    this.#ws = null;
  }

  /** Sends a frame now if joined; answers whether it went out. */
  sendFrame(frame) {
    if (!this.isOnline) return false;
    this.#pacer.take();
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  /** Queues a chat message; it goes out now or after the next (re)join. */
  sendMessage({ text, drawing, reply_to }) {
    const frame = { type: 'send', text, client_id: randomId() };
    if (drawing) frame.drawing = drawing;
    if (reply_to) frame.reply_to = reply_to;
    this.#outbox.set(frame.client_id, frame);
    this.onOutbox(this.pending());
    this.flush();
    return frame;
  }

  /** Gives up on an unsent message. */
  discard(clientId) {
    this.#inFlight.delete(clientId);
    if (this.#outbox.delete(clientId)) this.onOutbox(this.pending());
  }

  /** Sends what the outbox holds and this connection has not sent yet, no
   * faster than the server's rate limit allows (the rest a little later). */
  flush() {
    for (const frame of this.#outbox.values()) {
      if (this.#inFlight.has(frame.client_id)) continue;
      if (!this.isOnline) return;
      const wait = this.#pacer.wait();
      if (wait > 0) {
        this.flushLater(wait);
        return;
      }
      this.sendFrame(frame);
      this.#inFlight.add(frame.client_id);
      this.#sentAt.set(frame.client_id, performance.now());
    }
  }

  flushLater(ms) {
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      this.flush();
    }, ms);
  }

  typing() {
    const now = Date.now();
    if (now - this.#lastTyping < TYPING_EVERY_MS || this.#pacer.wait() > 0) return;
    if (this.sendFrame({ type: 'typing' })) this.#lastTyping = now;
  }
}
