// Shared by the home and room pages: building DOM from text (never from
// HTML), the HTTP API, what the browser remembers, and errors in words.

/** Builds an element. Children are nodes or strings; strings become text nodes,
 * so nothing a member typed is ever parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** `$('#id')` shorthand that fails loudly when the page lacks the element. */
export function $(selector, root = document) {
  const found = root.querySelector(selector);
  if (!found) throw new Error(`missing element ${selector}`);
  return found;
}

// ---------------------------------------------------------------- names

const ROOM_CHARS = /^[\p{Alphabetic}\p{N}._-][\p{Alphabetic}\p{N}\p{M}._-]*$/u;

/** Characters as the server counts them (Unicode scalar values of the NFC form). */
export function charCount(text) {
  let n = 0;
  for (const _ of text.normalize('NFC')) n++;
  return n;
}

/** A first, friendly check of a room name; the server has the last word. */
export function roomNameProblem(raw) {
  const name = raw.trim().normalize('NFC');
  if (!name) return 'Type a room name.';
  const n = charCount(name);
  if (n < 3 || n > 64) return 'A room name has 3 to 64 characters.';
  if (!ROOM_CHARS.test(name)) return 'Use letters, digits, "-", "_" and "." only (no spaces).';
  return null;
}

export function roomPath(name) {
  return '/' + encodeURIComponent(name);
}

/** The room name in this page's address (`/Team-Chat` → `Team-Chat`). */
export function roomFromLocation(loc = location) {
  const segment = loc.pathname.replace(/^\/+/, '').split('/')[0] || '';
  try {
    return decodeURIComponent(segment).normalize('NFC');
  } catch {
    return segment;
  }
}

/** The case-folded key two room names share when they are the same room. */
export function roomKey(name) {
  return name.normalize('NFC').toLowerCase().normalize('NFC');
}

// ---------------------------------------------------------------- HTTP API

export class ApiError extends Error {
  constructor(status, code, message, body = {}, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

/** Calls the JSON API; answers the parsed body or throws an `ApiError`. */
export async function api(method, path, body, headers = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.');
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    // A proxy's HTML error page, say: the status still tells the story.
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    const retry = Number(response.headers.get('retry-after')) || null;
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || response.statusText || 'The server refused.', data, retry);
  }
  return { status: response.status, data };
}

export const roomApi = {
  get: (name) => api('GET', `/api/rooms/${encodeURIComponent(name)}`),
  open: (name, password) =>
    api('PUT', `/api/rooms/${encodeURIComponent(name)}`, password ? { password } : {}),
  create: (name, password) => api('POST', '/api/rooms', password ? { name, password } : { name }),
};

// ---------------------------------------------------------------- errors in words

const WORDS = {
  network: 'Cannot reach the server. Check your connection.',
  bad_room_name: 'A room name has 3 to 64 letters, digits, "-", "_" or ".".',
  reserved_room_name: 'That name is reserved; pick another one.',
  room_exists: 'That room already exists.',
  room_not_found: 'This room does not exist (any more).',
  no_backend: 'No chat server is available right now. Try again in a moment.',
  backend_unavailable: 'The chat server for this room is not answering. Try again in a moment.',
  bad_password: 'That password cannot be used.',
  rate_limited: 'You are going too fast. Wait a moment and try again.',
  bad_nick: 'A nickname has 1 to 32 characters and no control characters.',
  reserved_nick: 'That nickname is reserved. Pick another one.',
  password_required: 'This room is protected. Enter its password.',
  wrong_password: 'That password is wrong. Try again.',
  room_full: 'This room is full right now. Try again later.',
  text_too_long: 'That message is too long.',
  empty_message: 'Type something first.',
  bad_drawing: 'The drawing could not be attached.',
  bad_reply_to: 'The message you replied to is no longer available.',
  no_such_message: 'That message is no longer available.',
  not_your_message: 'You can only change your own messages.',
  message_deleted: 'That message was deleted.',
  bad_vote: 'That vote could not be counted.',
  too_many_votes: 'This room holds as many votes as it can. Take one of yours back first.',
  join_timeout: 'Joining took too long; trying again.',
  repeated: 'You sent that same text several times already. Say something else.',
  slow_mode: 'Slow mode is on: wait a few seconds between messages.',
  too_many_attempts: 'Too many wrong passwords. Wait a while, then try again.',
  too_many_connections: 'Too many open connections from your network. Close some tabs and try again.',
  payload_too_large: 'That is too large to send.',
  too_large: 'That is too large to send.',
  unsupported_media_type: 'Only PNG drawings can be sent.',
  not_owner: 'Only the room\'s owners can do that.',
  banned: 'You are banned from this room for now.',
  room_locked: 'This room is locked: it takes no new members right now.',
  slow_mode: 'Slow mode is on: wait a little before your next message.',
  no_such_member: 'That person is no longer in the room.',
  already_reported: 'You reported that message already.',
  too_many_reports: 'You have made as many reports as one person may here.',
};

/** A sentence for a person, from an error code and the server's own message. */
export function errorText(code, message) {
  if (code === 'rate_limited') return WORDS.rate_limited;
  return WORDS[code] || (message ? `Something went wrong: ${message}` : 'Something went wrong.');
}

// ---------------------------------------------------------------- what the browser remembers

function readJson(storage, key, fallback) {
  try {
    const raw = storage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function writeJson(storage, key, value) {
  try {
    if (value === null || value === undefined) storage.removeItem(key);
    else storage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or a full quota: remembering is a convenience only.
  }
}

export const remember = {
  /** The nickname last used in this browser, or null if it was never asked. */
  nick: () => readJson(localStorage, 'instantchat.nick', null),
  setNick: (nick) => writeJson(localStorage, 'instantchat.nick', nick),

  recentRooms: () => {
    const list = readJson(localStorage, 'instantchat.recent', []);
    return Array.isArray(list) ? list.filter((r) => r && typeof r.name === 'string') : [];
  },
  addRecentRoom(name) {
    const key = roomKey(name);
    const list = remember.recentRooms().filter((r) => roomKey(r.name) !== key);
    list.unshift({ name, at: Date.now() });
    writeJson(localStorage, 'instantchat.recent', list.slice(0, 12));
  },
  forgetRecentRooms: () => writeJson(localStorage, 'instantchat.recent', null),

  // Per tab (session storage): a room's password, the unsent draft, the outbox.
  password: (room) => readJson(sessionStorage, `instantchat.pw.${roomKey(room)}`, null),
  setPassword: (room, pw) => writeJson(sessionStorage, `instantchat.pw.${roomKey(room)}`, pw || null),
  draft: (room) => readJson(sessionStorage, `instantchat.draft.${roomKey(room)}`, ''),
  setDraft: (room, text) => writeJson(sessionStorage, `instantchat.draft.${roomKey(room)}`, text || null),
  /** The member token of this tab in `room` (`welcome.you.token`): sent as
   * `reclaim` so a reload or a move keeps the member's id and rights. */
  memberToken: (room) => readJson(sessionStorage, `instantchat.token.${roomKey(room)}`, null),
  setMemberToken: (room, token) => writeJson(sessionStorage, `instantchat.token.${roomKey(room)}`, token || null),
  // Per browser (local storage): the owner key of each room this browser
  // created or opened through an owner link.
  ownerKey: (room) => readJson(localStorage, `instantchat.owner.${roomKey(room)}`, null),
  setOwnerKey: (room, key) => writeJson(localStorage, `instantchat.owner.${roomKey(room)}`, key || null),

  outbox: (room) => readJson(sessionStorage, `instantchat.outbox.${roomKey(room)}`, []),
  setOutbox: (room, list) =>
    writeJson(sessionStorage, `instantchat.outbox.${roomKey(room)}`, list.length ? list : null),
};

// ---------------------------------------------------------------- small things

/** A random id for de-duplicating resends; works outside secure contexts too. */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});

/** "14:03" today, "Mar 3, 14:03" before. */
export function formatTime(ms) {
  const when = new Date(ms);
  const today = new Date();
  return when.toDateString() === today.toDateString() ? timeFormat.format(when) : dateTimeFormat.format(when);
}

export function ago(ms) {
  const minutes = Math.round((Date.now() - ms) / 60000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return `${Math.round(hours / 24)} d ago`;
}

/** A stable hue per nickname, so a name keeps its colour. */
export function nickHue(nick) {
  let h = 0;
  for (const ch of nick) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

// ---------------------------------------------------------------- message text

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]}]/giu;

/** One line of at most `max` characters, for quotes. */
export function excerpt(text, max = 80) {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

/** True when `text` names `nick` (in any case). */
export function mentions(text, nick) {
  if (!text || !nick) return false;
  return text.toLocaleLowerCase().includes(nick.toLocaleLowerCase());
}

/** Text with web addresses as links: strings and <a> nodes, never parsed HTML. */
export function linkify(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push(el('a', { href: match[0], target: '_blank', rel: 'noopener noreferrer nofollow ugc' }, match[0]));
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}
