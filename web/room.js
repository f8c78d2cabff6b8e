// The room page at /{room}: opens (or creates) the room, asks once for a
// nickname, then runs the chat — messages, composer, members, typing,
// replies, edits, drawings — over a RoomConnection that survives drops.

import { $, el, roomApi, errorText, remember, roomFromLocation, roomPath, charCount } from './app.js';
import { RoomConnection } from './connection.js';
import { MessageLog } from './messages.js';
import { setupDrawing, uploadDrawing } from './draw.js';
import { askJoin, MemberList, TypingLine } from './people.js';

const roomName = roomFromLocation();
const ui = {
  title: $('#room-title'),
  conn: $('#conn'),
  connText: $('#conn .conn-text'),
  banner: $('#banner'),
  typing: $('#typing'),
  composer: $('#composer'),
  message: $('#message'),
  send: $('#send'),
  counter: $('#counter'),
  composerError: $('#composer-error'),
  replyBar: $('#reply-bar'),
  membersPanel: $('#members-panel'),
  membersToggle: $('#members-toggle'),
  toast: $('#toast'),
  join: $('#join-dialog'),
  image: $('#image-dialog'),
};

let info = null; // the API's answer: {name, ws_url, files_url, created, has_password}
let me = null; // {id, nick} once joined
let nick = remember.nick(); // null: never asked in this browser
let password = remember.password(roomName);
let newRoomPassword = null; // set when this page is about to create the room
let limits = { max_text_chars: 4000 };
let replyTo = null;
let unread = 0;
let justCreated = false; // this page's PUT created the room
let lastEpoch = null; // of the last welcome, to tell a room that started over
const members = new MemberList({ list: $('#members'), counts: [$('#member-count'), $('#member-count-short')] });
const typing = new TypingLine(ui.typing);

const log = new MessageLog({
  scroller: $('#log'),
  list: $('#messages'),
  pendingList: $('#pending'),
  top: $('#history-top'),
  jump: $('#jump'),
  me: () => me,
  filesUrl: () => info?.files_url || '',
  onReply: startReply,
  onEdit: (m, text) => act({ type: 'edit', seq: m.seq, text }),
  onDelete: (m) => act({ type: 'delete', seq: m.seq }),
  onOlder: (before) => conn.sendFrame({ type: 'history', before, limit: 100 }),
  onOpenImage: openImage,
  onDiscard: (clientId) => conn.discard(clientId),
});

const conn = new RoomConnection({
  resolve: openRoom,
  credentials: () => ({ nick, password }),
  onFrame,
  onState,
  onOutbox: (list) => {
    remember.setOutbox(roomName, list);
    log.setPending(list, { online: conn.isOnline });
  },
  outbox: remember.outbox(roomName),
});

// ---------------------------------------------------------------- opening the room

async function openRoom() {
  try {
    const { data } = await roomApi.open(roomName, newRoomPassword);
    info = data;
  } catch (e) {
    if (e.status === 400) {
      notARoom(e);
      e.fatal = true; // no point in retrying
    }
    throw e;
  }
  if (newRoomPassword) {
    password = newRoomPassword;
    remember.setPassword(roomName, password);
    newRoomPassword = null;
  }
  showTitle(info.name);
  justCreated = info.created;
  return info;
}

function notARoom(e) {
  showBanner(`This address is not a room: ${errorText(e.code, e.message)}`, 'Go to the home page', () => {
    location.href = '/';
  });
  setConn('ended', 'Not a room');
}

async function main() {
  showTitle(roomName);
  ui.message.value = remember.draft(roomName);
  composerChanged(false);
  log.setPending([...conn.outbox.values()], { online: false });
  let exists = null;
  try {
    info = (await roomApi.get(roomName)).data;
    exists = true;
  } catch (e) {
    if (e.code === 'room_not_found') exists = false;
    else if (e.status === 400) {
      notARoom(e);
      return;
    }
  }
  const needPassword = exists && info.has_password && !password;
  if (nick === null || needPassword || exists === false) {
    await ask({
      askNick: nick === null,
      passwordMode: needPassword ? 'required' : exists === false ? 'optional' : null,
    });
  }
  conn.start();
}

/** Asks what the join needs (nickname, password) and keeps the answers. */
async function ask(options) {
  const answer = await askJoin(ui.join, { roomName: info?.name || roomName, nick, ...options });
  if (!answer) return;
  if (answer.nick !== undefined) {
    nick = answer.nick;
    remember.setNick(nick);
  }
  if (options.passwordMode === 'required') {
    password = answer.password;
    remember.setPassword(roomName, password);
  } else if (answer.password) {
    newRoomPassword = answer.password; // used when this page creates the room
  }
}

async function rename() {
  const answer = await askJoin(ui.join, { roomName, nick: me?.nick ?? nick, askNick: true, rename: true });
  if (!answer || answer.nick === (me?.nick ?? nick)) return;
  if (conn.isOnline) {
    conn.sendFrame({ type: 'nick', nick: answer.nick });
  } else {
    nick = answer.nick; // used at the next join
    remember.setNick(nick);
  }
}

// ---------------------------------------------------------------- server frames

function onFrame(f) {
  switch (f.type) {
    case 'welcome': {
      const startedOver = lastEpoch !== null && f.epoch !== lastEpoch;
      lastEpoch = f.epoch;
      me = f.you;
      nick = me.nick;
      remember.setNick(nick);
      if (password) remember.setPassword(roomName, password);
      limits = f.limits || limits;
      showTitle(f.room);
      remember.addRecentRoom(f.room);
      members.reset(f.members || [], me);
      if (f.resumed) {
        for (const m of f.messages) log.upsert(m);
        log.refreshAll(); // a new connection means a new member id
      } else {
        log.replaceAll(f.messages || []);
        if (startedOver) log.note('This room started over: earlier messages are gone.', 'notice');
        else if (justCreated) log.note('You created this room. Invite people by sharing its link.', 'notice');
      }
      justCreated = false;
      // Ready to type — except on touch screens, where focus pops up the keyboard.
      if (!ui.join.open && document.activeElement === document.body && matchMedia('(hover: hover)').matches) ui.message.focus();
      log.setPending([...conn.outbox.values()], { online: true });
      composerChanged(false);
      break;
    }
    case 'message':
      typing.stop(f.from.id);
      log.upsert(f, { mine: f.from.id === me?.id });
      if (document.visibilityState === 'hidden') {
        unread += 1;
        showTitle(info?.name || roomName);
      }
      break;
    case 'edited':
      log.edited(f.seq, f.text);
      break;
    case 'deleted':
      log.deleted(f.seq);
      break;
    case 'joined':
      members.set(f.member);
      log.note(`${f.member.nick} joined`);
      break;
    case 'left':
      members.remove(f.member.id);
      typing.stop(f.member.id);
      log.note(`${f.member.nick} left`);
      break;
    case 'typing':
      if (f.member.id !== me?.id) typing.start(f.member);
      break;
    case 'nick':
      if (f.member.id === me?.id) {
        me = f.member;
        nick = me.nick;
        remember.setNick(nick);
      }
      members.set(f.member);
      log.note(`${f.old} is now ${f.member.nick}`);
      break;
    case 'history':
      log.history(f.messages || [], f.has_more);
      break;
    case 'notice':
      log.note(`Announcement: ${f.text}`, 'notice');
      toast(`Announcement: ${f.text}`);
      break;
    case 'closing':
      if (f.reason === 'shutdown') showBanner('The server is restarting. Reconnecting…');
      break;
    case 'error':
      onError(f);
      break;
  }
}

function onError(f) {
  if (['password_required', 'wrong_password', 'bad_nick', 'reserved_nick'].includes(f.code) && !conn.joined) return;
  if (f.refused && !ui.message.value && f.refused.text) {
    // Give the refused text back so nothing typed is lost.
    ui.message.value = f.refused.text;
    remember.setDraft(roomName, f.refused.text);
    composerChanged(false);
  }
  let text = errorText(f.code, f.message);
  if (f.code === 'text_too_long') text = `That message is too long: at most ${limits.max_text_chars} characters.`;
  if (f.code === 'rate_limited' && f.willRetry) text = 'You are sending very fast; the rest goes out in a moment.';
  showError(text);
}

// ---------------------------------------------------------------- connection state

let countdown = null;

function onState(state, detail = {}) {
  clearInterval(countdown);
  switch (state) {
    case 'connecting':
      setConn('connecting', 'Connecting…');
      break;
    case 'online':
      setConn('online', 'Connected');
      hideBanner();
      break;
    case 'offline':
      setConn('offline', 'Offline');
      break;
    case 'waiting': {
      const tick = () => {
        const s = Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000));
        const why = detail.error ? `${errorText(detail.error.code, detail.error.message)} ` : '';
        setConn('waiting', `${why}Reconnecting${s ? ` in ${s} s` : ''}…`);
      };
      tick();
      countdown = setInterval(tick, 1000);
      if (detail.why === 'shutdown') showBanner('The server is restarting. Reconnecting…');
      break;
    }
    case 'needs-input': {
      setConn('connecting', 'Waiting for you');
      const passwordIssue = detail.code === 'password_required' || detail.code === 'wrong_password';
      ask({
        askNick: !passwordIssue,
        passwordMode: passwordIssue ? 'required' : null,
        error: errorText(detail.code, detail.message),
      }).then(() => conn.start());
      break;
    }
    case 'ended': {
      const text = detail.reason === 'room_deleted'
        ? 'This room was deleted by the operators.'
        : 'This room has expired: it stayed empty and silent too long, and its messages are gone.';
      setConn('ended', 'Room closed');
      showBanner(text, 'Open it again', () => {
        hideBanner();
        conn.restart();
      });
      break;
    }
  }
  log.setPending([...conn.outbox.values()], { online: state === 'online' });
}

function setConn(state, text) {
  ui.conn.dataset.state = state;
  ui.connText.textContent = text;
}

function showBanner(text, actionText = null, action = null) {
  $('.banner-text', ui.banner).textContent = text;
  const button = $('.banner-action', ui.banner);
  button.hidden = !actionText;
  button.textContent = actionText || '';
  button.onclick = action;
  ui.banner.hidden = false;
}

function hideBanner() {
  ui.banner.hidden = true;
}

// ---------------------------------------------------------------- composer

function composerChanged(typed) {
  const n = charCount(ui.message.value);
  const max = limits.max_text_chars;
  ui.counter.textContent = `${n} / ${max}`;
  ui.counter.classList.toggle('over', n > max);
  ui.send.disabled = n > max;
  ui.message.setAttribute('aria-invalid', String(n > max));
  // Grow with the text, up to a limit (then it scrolls).
  ui.message.style.height = 'auto';
  ui.message.style.height = `${Math.min(ui.message.scrollHeight + 2, 180)}px`;
  if (typed) {
    remember.setDraft(roomName, ui.message.value);
    if (ui.message.value.trim()) conn.typing();
  }
}

ui.message.addEventListener('input', () => composerChanged(true));
ui.message.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
    e.preventDefault();
    ui.composer.requestSubmit();
  } else if (e.key === 'Escape' && replyTo) {
    cancelReply();
  }
});
ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.message.value;
  if (!text.trim()) {
    ui.message.focus();
    return;
  }
  if (charCount(text) > limits.max_text_chars) {
    showError(`That message is too long: at most ${limits.max_text_chars} characters.`);
    return;
  }
  conn.sendMessage({ text, reply_to: replyTo?.seq });
  ui.message.value = '';
  remember.setDraft(roomName, '');
  cancelReply();
  composerChanged(false);
  showError('');
  ui.message.focus();
});

function startReply(m) {
  replyTo = m;
  const excerpt = m.text ? m.text.replace(/\s+/g, ' ').slice(0, 80) : '(a drawing)';
  $('.reply-text', ui.replyBar).replaceChildren('Replying to ', el('strong', {}, m.from.nick), `: ${excerpt}`);
  ui.replyBar.hidden = false;
  ui.message.focus();
}

function cancelReply() {
  replyTo = null;
  ui.replyBar.hidden = true;
}
$('#cancel-reply').addEventListener('click', () => {
  cancelReply();
  ui.message.focus();
});

/** Sends a frame that only makes sense while connected. */
function act(frame) {
  if (!conn.sendFrame(frame)) showError('You are offline right now. Try again once connected.');
}

let errorTimer = null;
function showError(text) {
  ui.composerError.textContent = text;
  clearTimeout(errorTimer);
  if (text) errorTimer = setTimeout(() => { ui.composerError.textContent = ''; }, 8000);
}

// ---------------------------------------------------------------- the members panel on phones

function showMembers(open) {
  ui.membersPanel.classList.toggle('open', open);
  ui.membersToggle.setAttribute('aria-expanded', String(open));
}
ui.membersToggle.addEventListener('click', () => showMembers(!ui.membersPanel.classList.contains('open')));
// On a phone the list lies over the chat: a tap elsewhere or Escape puts it away.
document.addEventListener('pointerdown', (e) => {
  if (ui.membersPanel.classList.contains('open') && !ui.membersPanel.contains(e.target) && !ui.membersToggle.contains(e.target)) {
    showMembers(false);
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && ui.membersPanel.classList.contains('open')) {
    showMembers(false);
    ui.membersToggle.focus();
  }
});

// ---------------------------------------------------------------- header actions, drawings, images

$('#copy-link').addEventListener('click', async () => {
  const url = location.origin + roomPath(info?.name || roomName);
  try {
    await navigator.clipboard.writeText(url);
    toast('Link copied. Send it to whoever you want to invite.');
  } catch {
    const box = el('textarea', { class: 'offscreen', readonly: true });
    box.value = url;
    document.body.append(box);
    box.select();
    const copied = document.execCommand && document.execCommand('copy');
    box.remove();
    toast(copied ? 'Link copied. Send it to whoever you want to invite.' : `Copy this link: ${url}`);
  }
});

$('#change-nick').addEventListener('click', rename);

const drawing = setupDrawing({
  dialog: $('#draw-dialog'),
  onSend: async (png) => {
    const id = await uploadDrawing(info?.files_url, png);
    conn.sendMessage({ text: '', drawing: id, reply_to: replyTo?.seq });
    cancelReply();
  },
});
$('#draw').addEventListener('click', () => drawing.open());

function openImage(url, alt) {
  const img = $('#image-full');
  img.src = url;
  img.alt = alt;
  $('#image-open').href = url;
  ui.image.showModal();
}
ui.image.addEventListener('click', (e) => {
  if (e.target === ui.image) ui.image.close(); // a click on the backdrop
});

let toastTimer = null;
function toast(text) {
  ui.toast.textContent = text;
  ui.toast.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => ui.toast.classList.remove('show'), 4000);
}

function showTitle(name) {
  ui.title.textContent = name;
  document.title = `${unread ? `(${unread}) ` : ''}${name} — instantchat`;
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && unread) {
    unread = 0;
    showTitle(info?.name || roomName);
  }
});
addEventListener('pagehide', (e) => {
  if (!e.persisted) conn.stop();
});

main();
