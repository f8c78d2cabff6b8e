// Who is in the room: the dialog that asks for your nickname (and a room's
// password), the members list, and the "… is typing" line.

import { $, el, charCount } from './app.js';

/**
 * Shows the join dialog and resolves with what the person entered, or null
 * when they cancelled a rename.
 * @param {HTMLDialogElement} d
 * @param {object} o
 * @param {string} o.roomName
 * @param {string|null} o.nick prefilled
 * @param {boolean} o.askNick
 * @param {'required'|'optional'|null} o.passwordMode optional: the room is new
 * @param {string} [o.error] why we ask again
 * @param {boolean} [o.rename] a nickname change rather than a join
 * @returns {Promise<{nick?: string, password?: string} | null>}
 */
export function askJoin(d, { roomName, nick, askNick, passwordMode = null, error = '', rename = false }) {
  const nickInput = $('#nick-input', d);
  const pwInput = $('#password-input', d);
  const errorLine = $('#join-error', d);
  $('#join-title', d).textContent = rename ? 'Change nickname' : `Join ${roomName}`;
  $('#join-intro', d).textContent = rename ? 'Everyone in the room will see the new name.'
    : passwordMode === 'optional' ? 'This room is new: you are creating it. Anyone with its link can join.'
      : passwordMode === 'required' ? 'This room is protected by a password.'
        : 'Pick the name others will see. It is remembered in this browser.';
  $('#nick-field', d).hidden = !askNick;
  nickInput.value = nick || '';
  nickInput.placeholder = rename ? '' : 'leave empty for a random one';
  $('#password-field', d).hidden = !passwordMode;
  $('#password-label', d).textContent = passwordMode === 'optional' ? 'Password (optional)' : 'Room password';
  $('#password-hint', d).textContent =
    passwordMode === 'optional' ? 'Set one to keep the room private to those you tell it.' : '';
  pwInput.value = '';
  errorLine.textContent = error;
  $('#join-submit', d).textContent = rename ? 'Save' : 'Join';
  const cancel = $('#join-cancel', d);
  cancel.hidden = !rename;

  return new Promise((resolve) => {
    const form = $('#join-form', d);
    const finish = (answer) => {
      form.removeEventListener('submit', onSubmit);
      d.removeEventListener('cancel', onCancel);
      cancel.onclick = null;
      d.close();
      resolve(answer);
    };
    const onCancel = (e) => {
      if (rename) finish(null);
      else e.preventDefault(); // joining needs an answer
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const problem = askNick ? nickProblem(nickInput.value, rename) : null;
      if (problem) {
        errorLine.textContent = problem;
        nickInput.focus();
        return;
      }
      if (passwordMode === 'required' && !pwInput.value) {
        errorLine.textContent = 'Enter the room password.';
        pwInput.focus();
        return;
      }
      const answer = {};
      if (askNick) answer.nick = nickInput.value.trim();
      if (passwordMode && pwInput.value) answer.password = pwInput.value;
      finish(answer);
    };
    form.addEventListener('submit', onSubmit);
    d.addEventListener('cancel', onCancel);
    cancel.onclick = () => finish(null);
    d.showModal();
    (askNick ? nickInput : pwInput).focus();
  });
}

/** The server's nickname rules, checked first so the person hears at once. */
export function nickProblem(raw, required) {
  const value = raw.trim();
  if (!value) return required ? 'Type a nickname.' : null;
  if (charCount(value) > 32) return 'A nickname has at most 32 characters.';
  if (/[\p{Cc}\u202A-\u202E\u2066-\u2069]/u.test(value)) return 'A nickname cannot hold control characters.';
  if (['system', 'admin'].includes(value.toLowerCase())) return 'That nickname is reserved. Pick another one.';
  return null;
}

/** The list of members (you first, then by name) and its counts. */
export class MemberList {
  /** @param {{list: HTMLElement, counts: HTMLElement[], actions?: (m: object, isMe: boolean) => Node|null}} o */
  constructor({ list, counts, actions = () => null }) {
    this.list = list;
    this.counts = counts;
    this.actions = actions; // per-member controls (an owner's "Kick")
    this.members = new Map();
    this.me = null;
  }

  reset(members, me) {
    this.me = me;
    this.members = new Map(members.map((m) => [m.id, m]));
    this.render();
  }

  /** Adds or renames one. */
  set(member) {
    if (this.me && member.id === this.me.id) this.me = member;
    this.members.set(member.id, member);
    this.render();
  }

  remove(id) {
    this.members.delete(id);
    this.render();
  }

  render() {
    const meId = this.me?.id;
    const sorted = [...this.members.values()].sort((a, b) =>
      (b.id === meId) - (a.id === meId) || a.nick.localeCompare(b.nick));
    this.list.replaceChildren(...sorted.map((m) =>
      el('li', { class: m.id === meId ? 'me' : undefined }, m.nick,
        m.id === meId ? el('span', { class: 'muted' }, ' (you)') : null,
        this.actions(m, m.id === meId))));
    for (const c of this.counts) c.textContent = String(sorted.length);
  }
}

const TYPING_SHOWN_MS = 5000;

/** "ada is typing…": each typing frame shows its member for a few seconds. */
export class TypingLine {
  constructor(line) {
    this.line = line;
    this.typing = new Map(); // member id → {nick, timer}
  }

  start(member) {
    clearTimeout(this.typing.get(member.id)?.timer);
    this.typing.set(member.id, { nick: member.nick, timer: setTimeout(() => this.stop(member.id), TYPING_SHOWN_MS) });
    this.render();
  }

  stop(id) {
    const t = this.typing.get(id);
    if (!t) return;
    clearTimeout(t.timer);
    this.typing.delete(id);
    this.render();
  }

  render() {
    const names = [...this.typing.values()].map((t) => t.nick);
    this.line.textContent =
      names.length === 0 ? ''
        : names.length === 1 ? `${names[0]} is typing…`
          : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
            : `${names.length} people are typing…`;
  }
}
