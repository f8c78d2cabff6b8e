// Votes: the Upvote/Downvote buttons under each message, what this member
// voted (the server tells everyone the counts, not who voted what), and the
// "Top messages" region: the most up-voted messages the page holds, kept
// current, each a button that scrolls to its message.

import { el, excerpt } from './app.js';

const TOP_SHOWN = 5;
/** Error codes that mean the last vote did not count. */
export const VOTE_ERRORS = new Set(['bad_vote', 'too_many_votes', 'no_such_message', 'message_deleted']);

/**
 * This member's votes, by seq. The server keys votes by member id, so they
 * are forgotten when the id changes (a new member) or the room starts over.
 */
export class MyVotes {
  constructor() {
    this.bySeq = new Map();
    this.owner = null; // `${epoch}/${member id}` the votes belong to
    this.last = null; // {seq, before}: the vote in flight, undone if refused
  }

  /** Called on every `welcome`. */
  joined(epoch, memberId) {
    const owner = `${epoch}/${memberId}`;
    if (owner !== this.owner) this.bySeq.clear();
    this.owner = owner;
  }

  get(seq) {
    return this.bySeq.get(seq) || 0;
  }

  /** The value to send when `button` (1 up, -1 down) is pressed: pressing my current vote takes it back. */
  toggle(seq, button) {
    const before = this.get(seq);
    const value = before === button ? 0 : button;
    this.set(seq, value);
    this.last = { seq, before };
    return value;
  }

  set(seq, value) {
    if (value) this.bySeq.set(seq, value);
    else this.bySeq.delete(seq);
  }

  /** The server refused the last vote: show what was true before it. Returns its seq. */
  refused() {
    const last = this.last;
    this.last = null;
    if (!last) return null;
    this.set(last.seq, last.before);
    return last.seq;
  }
}

/**
 * The vote bar of message `m`: two toggle buttons (aria-pressed shows this
 * member's vote) and the counts beside them.
 */
export function voteBar(m, mine, onVote) {
  const up = m.up || 0;
  const down = m.down || 0;
  const button = (value, label, symbol) => el('button', {
    type: 'button',
    class: `vote ${value > 0 ? 'up' : 'down'}`,
    'aria-label': label,
    'aria-pressed': String(mine === value),
    title: mine === value ? `${label}d — press again to take it back` : label,
    onclick: () => onVote(m, value),
  }, symbol);
  // Without votes the bar shows on hover or focus only (style.css), so an
  // unvoted log stays as compact as before.
  return el('div', { class: up || down ? 'votes' : 'votes none', dataset: { seq: m.seq } },
    button(1, 'Upvote', '▲'),
    el('span', { class: 'vote-count up-count', title: `${up} up` }, String(up)),
    button(-1, 'Downvote', '▼'),
    el('span', { class: 'vote-count down-count', title: `${down} down` }, String(down)));
}

/** The most up-voted messages first (then the newest), deleted ones never. */
export function topMessages(messages, n = TOP_SHOWN) {
  return messages
    .filter((m) => !m.deleted && (m.up || 0) > 0)
    .sort((a, b) => (b.up - a.up) || ((b.up - (b.down || 0)) - (a.up - (a.down || 0))) || (b.seq - a.seq))
    .slice(0, n);
}

/** The "Top messages" region. */
export class TopPanel {
  /**
   * @param {HTMLElement} list where the entries go
   * @param {HTMLElement} empty shown while no message has an up-vote
   * @param {() => object[]} messages every message the page holds
   * @param {(seq: number) => void} reveal scrolls to a message
   */
  constructor(list, empty, messages, reveal) {
    Object.assign(this, { list, empty, messages, reveal });
    this.shown = '';
  }

  update() {
    const top = topMessages(this.messages());
    const key = top.map((m) => `${m.seq}:${m.up}:${m.down || 0}:${m.text}`).join('|');
    if (key === this.shown) return; // most changes do not touch the top
    this.shown = key;
    this.empty.hidden = top.length > 0;
    this.list.replaceChildren(...top.map((m) => el('li', {},
      el('button', { type: 'button', class: 'top-entry', onclick: () => this.reveal(m.seq) },
        el('span', { class: 'top-score' }, `▲ ${m.up}`), ' ',
        el('span', { class: 'nick' }, m.from.nick), ': ',
        m.text ? excerpt(m.text, 60) : '(a drawing)'))));
  }
}
