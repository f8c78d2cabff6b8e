// The room page at /{room}: opens (or creates) the room, asks once for a
// nickname, then runs the chat — messages, composer, members, typing,
// replies, edits, drawings, search, alerts — over a RoomConnection that
// survives drops. Each of those lives in its own module; this one wires them.

import { $, el, roomApi, errorText, mentions, remember, roomFromLocation, roomPath } from './app.js';
import { Alerts } from './alerts.js';
import { Composer } from './composer.js';
import { RoomConnection } from './connection.js';
import { MessageLog } from './messages.js';
import { setupSearch } from './search.js';
import { ConnectionStatus } from './status.js';
import { setupDrawing, uploadDrawing } from './draw.js';
import { askJoin, MemberList, TypingLine } from './people.js';
import { MyVotes, TopPanel, VOTE_ERRORS } from './votes.js';
import { OwnerTools, takeOwnerKeyFromUrl } from './owner.js';

const roomName = roomFromLocation();
takeOwnerKeyFromUrl(roomName);
const ui = {
  title: $('#room-title'),
  typing: $('#typing'),
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
let justCreated = false; // this page's PUT created the room
let lastEpoch = null; // of the last welcome, to tell a room that started over
const owner = new OwnerTools({
  roomName: () => info?.name || roomName,
  act: (frame) => act(frame),
  toast: (text) => toast(text),
  onOwnerChange: () => {
    members.render();
    log.refreshAll();
  },
});
const members = new MemberList({
  list: $('#members'),
  counts: [$('#member-count'), $('#member-count-short')],
  actions: (m, isMe) => owner.memberActions(m, isMe),
});
const typing = new TypingLine(ui.typing);
const myVotes = new MyVotes();

const log = new MessageLog({
  scroller: $('#log'),
  list: $('#messages'),
  pendingList: $('#pending'),
  top: $('#history-top'),
  jump: $('#jump'),
  me: () => me,
  filesUrl: () => info?.files_url || '',
  onReply: (m) => composer.startReply(m),
  onEdit: (m, text) => act({ type: 'edit', seq: m.seq, text }),
  onDelete: (m) => act({ type: 'delete', seq: m.seq }),
  onOlder: (before) => conn.sendFrame({ type: 'history', before, limit: 100 }),
  onOpenImage: openImage,
  onDiscard: (clientId) => conn.discard(clientId),
  myVote: (seq) => myVotes.get(seq),
  onVote: vote,
  onReport: (m) => act({ type: 'report', seq: m.seq }),
  isOwner: () => owner.owner,
});

const conn = new RoomConnection({
  resolve: openRoom,
  credentials: () => ({ nick, password, owner_key: remember.ownerKey(roomName) }),
  onFrame,
  onState,
  onOutbox: (list) => {
    remember.setOutbox(roomName, list);
    log.setPending(list, { online: conn.isOnline });
  },
  outbox: remember.outbox(roomName),
  token: remember.memberToken(roomName),
  onToken: (token) => remember.setMemberToken(roomName, token),
});

const connStatus = new ConnectionStatus({
  line: $('#conn'),
  banner: $('#banner'),
  reconnect: () => conn.reconnect(),
  restart: () => conn.restart(),
});

const composer = new Composer({
  roomName,
  limits: () => limits,
  onSend: (text, replyTo) => conn.sendMessage({ text, reply_to: replyTo?.seq }),
  onTyping: () => conn.typing(),
});
const alerts = new Alerts(() => info?.name || roomName);
setupSearch({ log, roomName: () => info?.name || roomName, filesUrl: () => info?.files_url || '', toast });
const topPanel = new TopPanel($('#top-list'), $('#top-empty'), () => log.known(), (seq) => log.reveal(seq));
{
  const searchOnChange = log.onChange; // the search view follows the log too
  log.onChange = () => {
    searchOnChange();
    topPanel.update();
  };
}

/** Upvote (1) or Downvote (-1) pressed on `m`: pressing my current vote takes it back. */
function vote(m, button) {
  if (!conn.isOnline) {
    composer.showError('You are offline right now. Try again once connected.');
    return;
  }
  const value = myVotes.toggle(m.seq, button);
  conn.sendFrame({ type: 'vote', seq: m.seq, value });
  log.votes(m.seq, null); // shows the pressed button now; counts follow in `votes`
}

// ---------------------------------------------------------------- opening the room

async function openRoom() {
  try {
    const { data } = await roomApi.open(roomName, newRoomPassword);
    info = data;
    // Only the answer that created the room carries its owner key.
    if (data.owner_key) remember.setOwnerKey(roomName, data.owner_key);
  } catch (e) {
    if (e.status === 400) {
      connStatus.notARoom(e);
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

async function main() {
  showTitle(roomName);
  log.setPending(conn.pending(), { online: false });
  let exists = null;
  try {
    info = (await roomApi.get(roomName)).data;
    exists = true;
  } catch (e) {
    if (e.code === 'room_not_found') exists = false;
    else if (e.status === 400) {
      connStatus.notARoom(e);
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
      owner.welcome(f);
      // Back after a move with the list it kept: nobody came or went.
      members.reset(f.members_unchanged ? [...members.members.values()] : f.members || [], me);
      myVotes.joined(f.epoch, me.id);
      if (f.resumed) {
        for (const m of f.messages) log.upsert(m);
        log.refreshAll(); // the member id may differ (a token the room forgot)
      } else {
        log.replaceAll(f.messages || []);
        if (startedOver) log.note('This room started over: earlier messages are gone.', 'notice');
        else if (justCreated) log.note('You created this room. Invite people by sharing its link.', 'notice');
      }
      justCreated = false;
      // Ready to type — except on touch screens, where focus pops up the keyboard.
      if (!ui.join.open) composer.focusIfDesktop();
      log.setPending(conn.pending(), { online: true });
      composer.changed(false);
      break;
    }
    case 'message': {
      typing.stop(f.from.id);
      const mine = f.from.id === me?.id;
      const isNew = !log.bySeq.has(f.seq);
      log.upsert(f, { mine });
      if (isNew) alerts.message(f, { mine, mention: !mine && mentions(f.text, me?.nick) });
      break;
    }
    case 'edited':
      log.edited(f.seq, f.text);
      break;
    case 'deleted':
      log.deleted(f.seq);
      break;
    case 'votes':
      log.votes(f.seq, { up: f.up, down: f.down });
      break;
    case 'preview':
      log.preview(f.seq, f);
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
      // A moderation notice ("olive set the topic") is the room's own news.
      log.note(f.moderation ? f.text : `Announcement: ${f.text}`, 'notice');
      toast(f.moderation ? f.text : `Announcement: ${f.text}`);
      break;
    case 'topic':
      owner.setTopic(f.text);
      break;
    case 'settings':
      owner.setRules(f);
      break;
    case 'closing':
      if (f.reason === 'shutdown') connStatus.serverRestarting();
      break;
    case 'error':
      onError(f);
      break;
  }
}

function onError(f) {
  if (VOTE_ERRORS.has(f.code)) {
    const seq = myVotes.refused();
    if (seq !== null) log.votes(seq, null);
  }
  if (f.refused) composer.restore(f.refused.text);
  let text = errorText(f.code, f.message);
  if (f.code === 'text_too_long') text = composer.tooLongText();
  if (f.code === 'rate_limited' && f.willRetry) text = 'You are sending very fast; the rest goes out in a moment.';
  if (f.code === 'slow_mode' && f.willRetry) {
    text = `Slow mode is on: your message goes out in ${Math.ceil((f.retry_after_ms || 1000) / 1000)} s.`;
  }
  composer.showError(text);
}

// ---------------------------------------------------------------- connection state

function onState(state, detail = {}) {
  connStatus.show(state, detail);
  if (state === 'needs-input') {
    const passwordIssue = ['password_required', 'wrong_password', 'too_many_attempts'].includes(detail.code);
    ask({
      askNick: !passwordIssue,
      passwordMode: passwordIssue ? 'required' : null,
      error: errorText(detail.code, detail.message),
    }).then(() => conn.start());
  }
  log.setPending(conn.pending(), { online: state === 'online' });
}

/** Sends a frame that only makes sense while connected. */
function act(frame) {
  if (!conn.sendFrame(frame)) composer.showError('You are offline right now. Try again once connected.');
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
    conn.sendMessage({ text: '', drawing: id, reply_to: composer.replyTo?.seq });
    composer.cancelReply();
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
  alerts.showTitle();
}
addEventListener('pagehide', (e) => {
  if (!e.persisted) conn.stop();
});

main();
