// The message log: keeps every message the page knows in seq order, renders
// the newest window of them, pages older ones in as the reader scrolls up
// (first from memory, then with `history` frames), and shows unsent ones.
// How one message looks is message-article.js.

import { el } from './app.js';
import { messageArticle, pendingArticle } from './message-article.js';
import { voteBar } from './votes.js';

const WINDOW = 100; // messages rendered at first
const PAGE = 50; // more per scroll to the top

export class MessageLog {
  /**
   * @param {object} o
   * @param {HTMLElement} o.scroller the element with role="log" that scrolls
   * @param {HTMLElement} o.list where message articles go
   * @param {HTMLElement} o.pendingList where unsent messages go
   * @param {HTMLElement} o.top the "older messages" bar
   * @param {HTMLElement} o.jump the "new messages below" button
   * @param {() => void} [o.onChange] the messages the page knows changed
   * @param {(seq: number) => number} [o.myVote] this member's vote on a message (1, -1, 0)
   * @param {(m: object, button: number) => void} [o.onVote] Upvote (1) or Downvote (-1) pressed
   * @param {(m: object) => void} [o.onReport] "Report" on someone else's message
   * @param {() => boolean} [o.isOwner] owners may delete anyone's message
   */
  constructor(o) {
    Object.assign(this, o);
    this.all = []; // sorted by seq
    this.bySeq = new Map();
    this.nodes = new Map(); // seq → rendered article
    this.firstRendered = 0; // index into `all`
    this.serverHasMore = false;
    this.asking = false;
    this.afterHistory = []; // callbacks waiting for the next `history` answer
    this.onChange ??= () => {};
    this.myVote ??= () => 0;
    this.onVote ??= () => {};
    this.isOwner ??= () => false;
    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.keyboard();
    this.jump.addEventListener('click', () => this.toBottom());
    this.top.querySelector('button')?.addEventListener('click', () => this.older());
  }

  // ------------------------------------------------------------ model updates

  /** A fresh view (first join, or a resume the server could not honour). */
  replaceAll(messages) {
    this.all = [...messages].sort((a, b) => a.seq - b.seq);
    this.bySeq = new Map(this.all.map((m) => [m.seq, m]));
    this.nodes.clear();
    this.list.replaceChildren();
    this.firstRendered = Math.max(0, this.all.length - WINDOW);
    this.serverHasMore = this.all.length > 0 && this.all[0].seq > 1;
    this.asking = false; // an answer on the old connection will not come
    this.list.append(...this.all.slice(this.firstRendered).map((m, i) => this.render(m, this.all[this.firstRendered + i - 1])));
    this.updateTop();
    this.toBottom();
    this.fillScreen();
    this.onChange();
  }

  /** A message frame (new, or one the page has seen and now knows better). */
  upsert(message, { mine = false } = {}) {
    const known = this.bySeq.get(message.seq);
    if (known) {
      // The server's copy is the truth: no counts means nobody votes any more.
      if (!('up' in message)) Object.assign(known, { up: undefined, down: undefined });
      Object.assign(known, message);
      this.rerender(message.seq);
      this.onChange();
      return;
    }
    const stick = this.atBottom() || mine;
    this.bySeq.set(message.seq, message);
    const last = this.all[this.all.length - 1];
    if (!last || message.seq > last.seq) {
      this.all.push(message);
      this.list.append(this.render(message, last));
    } else {
      const at = this.all.findIndex((m) => m.seq > message.seq);
      this.all.splice(at, 0, message);
      if (at >= this.firstRendered) {
        const next = this.nodes.get(this.all[at + 1].seq);
        this.list.insertBefore(this.render(message, this.all[at - 1]), next || null);
        this.rerender(this.all[at + 1].seq);
      } else {
        this.firstRendered += 1;
      }
    }
    if (this.all.length === 1) this.updateTop();
    if (stick) this.toBottom();
    else this.jump.hidden = false;
    this.onChange();
  }

  edited(seq, text) {
    const m = this.bySeq.get(seq);
    if (!m) return;
    m.text = text;
    m.edited = true;
    this.rerender(seq);
    this.onChange();
  }

  deleted(seq) {
    const m = this.bySeq.get(seq);
    if (!m) return;
    Object.assign(m, { deleted: true, text: '', drawing: undefined, preview: undefined, up: undefined, down: undefined });
    this.rerender(seq);
    this.onChange();
  }

  /** A `votes` frame (or this member's own vote, shown before the answer). */
  votes(seq, counts) {
    const m = this.bySeq.get(seq);
    if (!m) return;
    if (counts) Object.assign(m, { up: counts.up, down: counts.down });
    this.refreshVotes(seq);
    this.onChange();
  }

  /** Replaces only the vote bar of a rendered message, keeping the focus on its button. */
  refreshVotes(seq) {
    const node = this.nodes.get(seq);
    const bar = node?.querySelector(':scope > .votes');
    const m = this.bySeq.get(seq);
    if (!bar || !m) return;
    const focused = bar.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
    const fresh = voteBar(m, this.myVote(seq), this.onVote);
    for (const b of fresh.querySelectorAll('button')) b.tabIndex = bar.querySelector('button')?.tabIndex ?? -1;
    bar.replaceWith(fresh);
    if (focused) fresh.querySelector(`button[aria-label="${focused}"]`)?.focus();
  }

  /** A `preview` frame: message `seq`'s first link has its card. */
  preview(seq, p) {
    const m = this.bySeq.get(seq);
    if (!m || m.deleted) return;
    m.preview = { url: p.url, title: p.title, description: p.description, image: p.image };
    this.rerender(seq);
    this.onChange();
  }

  /** The answer to a `history` request: older messages, oldest first. */
  history(messages, hasMore) {
    this.asking = false;
    const oldest = this.all[0]?.seq ?? Infinity;
    const older = messages.filter((m) => m.seq < oldest && !this.bySeq.has(m.seq)).sort((a, b) => a.seq - b.seq);
    this.serverHasMore = hasMore && older.length > 0;
    if (older.length) {
      for (const m of older) this.bySeq.set(m.seq, m);
      this.all = [...older, ...this.all];
      // Render everything before what is shown: the new ones, and any still
      // only in memory (none, normally: history is asked for when all are shown).
      const before = this.firstRendered + older.length;
      this.firstRendered = 0;
      this.renderOlder(before);
    }
    this.updateTop();
    this.onChange();
    for (const next of this.afterHistory.splice(0)) next();
  }

  /** Every message the page knows, oldest first. */
  known() {
    return this.all;
  }

  /** Asks the server, page by page, for the older messages it still has (at
   * most `pages` pages); resolves with every message the page then knows. */
  loadAll(pages = 50) {
    return new Promise((resolve) => {
      const step = () => {
        if (!this.serverHasMore || !this.all.length || pages-- <= 0) return resolve(this.all);
        if (!this.asking) {
          if (!this.onOlder(this.all[0].seq)) return resolve(this.all); // offline: what we have
          this.asking = true;
          this.updateTop();
        }
        this.afterHistory.push(step);
      };
      step();
    });
  }

  /** Everyone's own-message buttons depend on who "me" is (a reconnect changes the id). */
  refreshAll() {
    for (const seq of [...this.nodes.keys()]) this.rerender(seq);
  }

  /** Shows the outbox: messages typed but not yet confirmed by the server. */
  setPending(frames, { online }) {
    const shown = { nick: this.me()?.nick || 'you', online, onDiscard: (clientId) => this.onDiscard(clientId) };
    this.pendingList.replaceChildren(...frames.map((f) => pendingArticle(f, shown)));
    if (frames.length) this.toBottom();
  }

  /** A line about the room (joins, leaves, renames, announcements). */
  note(text, kind = 'note') {
    const stick = this.atBottom();
    this.list.append(el('p', { class: `note ${kind}` }, text));
    if (stick) this.toBottom();
  }

  // ------------------------------------------------------------ rendering

  rerender(seq) {
    const old = this.nodes.get(seq);
    if (!old) return;
    const i = this.all.findIndex((m) => m.seq === seq);
    const fresh = this.render(this.all[i], this.all[i - 1]);
    old.replaceWith(fresh);
  }

  /** The article for `m`; `register: false` for a copy shown elsewhere (search results). */
  render(m, prev, { register = true } = {}) {
    const article = messageArticle(this, m, prev);
    if (register) this.nodes.set(m.seq, article);
    return article;
  }

  // ------------------------------------------------------------ keyboard

  /**
   * The log is one Tab stop: arrow keys (and Home/End) move between messages,
   * and Tab then reaches the focused message's links and buttons only (they
   * are rendered out of the Tab order), so a long log does not stand between
   * the keyboard and the composer.
   */
  keyboard() {
    const articles = () => [...this.list.querySelectorAll('article'), ...this.pendingList.querySelectorAll('article')];
    this.scroller.addEventListener('keydown', (e) => {
      if (!['ArrowUp', 'ArrowDown', 'Home', 'End'].includes(e.key)) return;
      if (e.target.closest('textarea, input')) return;
      const all = articles();
      if (!all.length) return;
      const current = e.target.closest('article');
      let i = current ? all.indexOf(current) : all.length;
      if (e.key === 'ArrowUp') i -= 1;
      else if (e.key === 'ArrowDown') i += 1;
      else i = e.key === 'Home' ? 0 : all.length - 1;
      if (i < 0) {
        this.older();
        return;
      }
      e.preventDefault();
      all[Math.min(i, all.length - 1)].focus();
    });
    const buttonsOf = (article) => article.querySelectorAll('a, button');
    this.scroller.addEventListener('focusin', (e) => {
      const article = e.target.closest('article');
      if (article) for (const b of buttonsOf(article)) b.tabIndex = 0;
    });
    this.scroller.addEventListener('focusout', (e) => {
      const article = e.target.closest('article');
      if (article && !article.contains(e.relatedTarget)) for (const b of buttonsOf(article)) b.tabIndex = -1;
    });
  }

  // ------------------------------------------------------------ scrolling and paging

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
  }

  toBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.jump.hidden = true;
  }

  onScroll() {
    if (this.list.hidden) return; // search results are shown instead
    if (this.atBottom()) this.jump.hidden = true;
    if (this.scroller.scrollTop < 150) this.older();
  }

  /** Shows older messages: the ones in memory first, then asks the server. */
  older() {
    if (this.firstRendered > 0) {
      const n = Math.min(PAGE, this.firstRendered);
      this.firstRendered -= n;
      this.renderOlder(n);
      this.updateTop();
      return;
    }
    if (this.serverHasMore && !this.asking && this.all.length && this.onOlder(this.all[0].seq)) {
      this.asking = true;
      this.updateTop();
    }
  }

  /** Renders the `n` messages just before what is shown, keeping the view still. */
  renderOlder(n) {
    const start = this.firstRendered;
    const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
    const slice = this.all.slice(start, start + n);
    const nodes = slice.map((m, i) => this.render(m, this.all[start + i - 1]));
    this.list.prepend(...nodes);
    const after = this.all[start + n];
    if (after) this.rerender(after.seq); // it may now continue the one before
    this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
  }

  /** Pages older messages in while they do not fill the view (no scrolling possible yet). */
  fillScreen() {
    let guard = 20;
    while (guard-- > 0 && this.firstRendered > 0 && this.scroller.scrollHeight <= this.scroller.clientHeight) {
      this.older();
    }
  }

  updateTop() {
    const first = this.all[0];
    let text;
    let button = false;
    if (this.firstRendered > 0) {
      text = '';
      button = true;
    } else if (this.asking) {
      text = 'Loading older messages…';
    } else if (this.serverHasMore) {
      text = '';
      button = true;
    } else if (!first) {
      text = 'No messages yet. Say hello!';
    } else if (first.seq === 1) {
      text = 'This is the beginning of the room.';
    } else {
      text = 'Older messages have expired.';
    }
    this.top.querySelector('.top-text').textContent = text;
    this.top.querySelector('button').hidden = !button;
  }

  /** Scrolls to a message (rendering older ones first if needed) and highlights it. */
  reveal(seq) {
    const i = this.all.findIndex((m) => m.seq === seq);
    if (i < 0) return;
    if (i < this.firstRendered) {
      const n = this.firstRendered - i;
      this.firstRendered = i;
      this.renderOlder(n);
      this.updateTop();
    }
    const node = this.nodes.get(seq);
    if (!node) return;
    node.scrollIntoView({ block: 'center' });
    node.classList.remove('flash');
    void node.offsetWidth; // restart the animation
    node.classList.add('flash');
  }
}
