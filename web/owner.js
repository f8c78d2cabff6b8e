// Room owners in the page: the owner key (kept per room in this browser,
// taken from an owner link's #owner=… fragment), the topic everyone sees,
// and for owners the "Room settings" panel (topic, slow mode, lock, the
// owner link) and the "Kick" dialog. The server decides who is an owner
// (`welcome.you.owner`); these controls only appear for them.

import { $, el, remember, roomPath } from './app.js';

/**
 * Takes `#owner=<key>` from the address: keeps the key for `room` and
 * removes the fragment from the address bar (and history), so that it is
 * not shared by accident along with the page's link.
 */
export function takeOwnerKeyFromUrl(room) {
  const match = /(?:^#|&)owner=([0-9A-Za-z_-]{1,64})/.exec(location.hash);
  if (!match) return;
  remember.setOwnerKey(room, match[1]);
  history.replaceState(history.state, '', location.pathname + location.search);
}

/** The owner link of a room: `/{room}#owner=<key>`. */
export function ownerLink(room, key) {
  return `${location.origin}${roomPath(room)}#owner=${key}`;
}

/** "30 s", "2 min" — how a slow-mode interval reads. */
function interval(secs) {
  return secs < 120 ? `${secs} s` : `${Math.round(secs / 60)} min`;
}

export class OwnerTools {
  /**
   * @param {object} o
   * @param {() => string} o.roomName the room's name as created
   * @param {(frame: object) => void} o.act sends an owner frame
   * @param {(text: string) => void} o.toast
   * @param {() => void} o.onOwnerChange the member list redraws its Kick buttons
   */
  constructor({ roomName, act, toast, onOwnerChange }) {
    Object.assign(this, { roomName, act, toast, onOwnerChange });
    this.owner = false;
    this.rules = { slow_mode_secs: 0, locked: false };
    this.topicLine = $('#topic');
    this.toggle = $('#settings-toggle');
    this.panel = $('#settings-panel');
    this.kickDialog = $('#kick-dialog');
    this.toggle.addEventListener('click', () => this.showPanel(this.panel.hidden));
    $('#topic-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.act({ type: 'topic', text: $('#topic-input').value });
    });
    $('#slow-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const secs = Math.max(0, Math.min(3600, Number($('#slow-input').value) || 0));
      this.act({ type: 'slow_mode', secs });
    });
    $('#lock-input').addEventListener('change', (e) => this.act({ type: 'lock', locked: e.target.checked }));
    $('#copy-owner-link').addEventListener('click', () => this.copyOwnerLink());
  }

  /** From `welcome`: who I am, the topic, the settings. */
  welcome(f) {
    const owner = Boolean(f.you?.owner);
    this.setTopic(f.topic || '');
    if (f.settings) this.setRules(f.settings);
    if (owner !== this.owner) {
      this.owner = owner;
      this.toggle.hidden = !owner;
      if (!owner) this.showPanel(false);
      this.onOwnerChange();
    }
    if (owner) $('#owner-link').value = ownerLink(this.roomName(), remember.ownerKey(this.roomName()) || '');
  }

  setTopic(text) {
    this.topicLine.textContent = text;
    this.topicLine.hidden = !text;
    if (document.activeElement !== $('#topic-input')) $('#topic-input').value = text;
  }

  setRules(rules) {
    this.rules = rules;
    $('#lock-input').checked = rules.locked;
    if (document.activeElement !== $('#slow-input')) $('#slow-input').value = String(rules.slow_mode_secs);
    const state = [];
    if (rules.locked) state.push('Locked: no new members');
    if (rules.slow_mode_secs) state.push(`Slow mode: one message every ${interval(rules.slow_mode_secs)}`);
    $('#room-rules').textContent = state.join(' · ');
  }

  showPanel(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute('aria-expanded', String(open));
    if (open) $('#topic-input').focus();
  }

  async copyOwnerLink() {
    const link = $('#owner-link').value;
    try {
      await navigator.clipboard.writeText(link);
      this.toast('Owner link copied. Whoever opens it can moderate this room.');
    } catch {
      $('#owner-link').select();
      this.toast('Select the owner link and copy it.');
    }
  }

  /** The member list's per-member controls: "Kick", for owners, on others. */
  memberActions(member, isMe) {
    if (!this.owner || isMe) return null;
    return el('button', {
      type: 'button', class: 'kick', title: `Remove ${member.nick} from the room`,
      onclick: () => this.askKick(member),
    }, 'Kick');
  }

  /** Asks for an optional ban length and reason, then kicks. */
  askKick(member) {
    const d = this.kickDialog;
    $('#kick-title', d).textContent = `Remove ${member.nick}`;
    $('#kick-minutes', d).value = '';
    $('#kick-reason', d).value = '';
    const form = $('#kick-form', d);
    form.onsubmit = (e) => {
      e.preventDefault();
      const minutes = Number($('#kick-minutes', d).value) || 0;
      const reason = $('#kick-reason', d).value.trim();
      const frame = { type: 'kick', member: member.id };
      if (minutes > 0) frame.ban_secs = Math.round(minutes * 60);
      if (reason) frame.reason = reason;
      this.act(frame);
      d.close();
    };
    $('#kick-cancel', d).onclick = () => d.close();
    d.showModal();
    $('#kick-minutes', d).focus();
  }
}
