// Search and export of a room's messages. Search narrows the log to the
// messages whose text or sender holds the words typed (all of them, in any
// case), first among those the page holds, then among older ones it asks the
// server for. Export downloads the room's messages as plain text, one
// `[time] nick: text` line each, drawings as their addresses.

import { $, el } from './app.js';

const SEARCH_DELAY_MS = 150;
/** How long Export waits for older messages before it saves what it has. */
const EXPORT_WAIT_MS = 10_000;

/** The words of a search, folded the way message text is compared. */
export function searchWords(query) {
  return fold(query).split(/\s+/).filter(Boolean);
}

function fold(text) {
  return text.normalize('NFKC').toLocaleLowerCase();
}

/** True when every word is in the message's text or its sender's nick. */
export function messageMatches(m, words) {
  if (m.deleted || !words.length) return false;
  const haystack = fold(`${m.from?.nick ?? ''}\n${m.text ?? ''}`);
  return words.every((w) => haystack.includes(w));
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** `2026-03-01 14:03` in the reader's time zone. */
export function exportTime(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * The transcript: one `[time] nick: text` line per message, oldest first;
 * further lines of a message indented by two spaces; a drawing as its
 * address on file-srv; deleted messages left out.
 */
export function transcript(messages, filesUrl) {
  const lines = [];
  for (const m of [...messages].sort((a, b) => a.seq - b.seq)) {
    if (m.deleted) continue;
    const parts = [];
    if (m.text) parts.push(m.text.replace(/\r\n?/g, '\n').replace(/\n/g, '\n  '));
    if (m.drawing) parts.push(`${filesUrl}/files/${m.drawing}.png`);
    lines.push(`[${exportTime(m.ts)}] ${m.from.nick}: ${parts.join(' ')}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** A file name for the export: `Team-Chat-2026-03-01-1403.txt`. */
export function exportFileName(roomName, now = Date.now()) {
  const stamp = exportTime(now).replace(' ', '-').replace(':', '');
  return `${roomName.replace(/[^\p{L}\p{N}._-]/gu, '_')}-${stamp}.txt`;
}

/** How many matches are shown at most (the newest ones). */
const MATCHES_SHOWN = 200;
/** Pages of older messages one search asks the server for, at most. */
const SEARCH_PAGES = 10;

/**
 * The log narrowed to a search: while words are set, the log's own lists are
 * hidden and copies of the matching messages shown instead (the log keeps
 * its notes, scroll place and paging for when the search is cleared).
 */
class SearchView {
  constructor(log) {
    this.log = log;
    this.words = [];
    this.results = $('#search-results');
    this.status = $('#search-status');
    log.onChange = () => {
      if (this.words.length) this.show();
    };
  }

  set(words) {
    const was = this.words.join(' ');
    this.words = words;
    const active = words.length > 0;
    this.log.list.hidden = active;
    this.log.pendingList.hidden = active;
    this.log.top.hidden = active;
    this.results.hidden = !active;
    if (!active) {
      this.results.replaceChildren();
      this.status.textContent = '';
      if (was) this.log.toBottom();
      return;
    }
    if (words.join(' ') !== was) {
      // Older messages may hold it too: ask the server for them (the view
      // follows through onChange as they arrive).
      this.log.loadAll(SEARCH_PAGES).then(() => this.show());
    }
    this.show();
  }

  show() {
    if (!this.words.length) return;
    const matches = this.log.known().filter((m) => messageMatches(m, this.words));
    const shown = matches.slice(-MATCHES_SHOWN);
    this.results.replaceChildren(...shown.map((m) => this.log.render(m, null, { register: false })));
    const more = this.log.asking ? ' Searching older messages…' : '';
    const count = matches.length === 1 ? '1 message matches' : `${matches.length || 'No'} messages match`;
    const limited = matches.length > shown.length ? ` (the newest ${shown.length} shown)` : '';
    this.status.textContent = `${count}${limited}.${more}`;
    this.log.toBottom();
  }
}

/**
 * Wires the "Search messages" box and the "Export" button to the log.
 * @param {object} o
 * @param {import('./messages.js').MessageLog} o.log
 * @param {() => string} o.roomName
 * @param {() => string} o.filesUrl
 * @param {(text: string) => void} o.toast
 */
export function setupSearch({ log, roomName, filesUrl, toast }) {
  const view = new SearchView(log);
  const box = $('#search');
  let timer = null;
  // type="search" clears itself on Escape and with its × button: both fire `input`.
  box.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => view.set(searchWords(box.value)), SEARCH_DELAY_MS);
  });

  const button = $('#export');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const messages = await Promise.race([
        log.loadAll(),
        new Promise((resolve) => setTimeout(() => resolve(log.known()), EXPORT_WAIT_MS)),
      ]);
      const text = transcript(messages, filesUrl());
      if (!text) {
        toast('There are no messages to export yet.');
        return;
      }
      const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
      const link = el('a', { href: url, download: exportFileName(roomName()), hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } finally {
      button.disabled = false;
    }
  });
}
