// One message as the log shows it: the article with its sender and time,
// the quote it replies to, its text (as text nodes: nothing a member typed
// becomes HTML), drawing, link preview, buttons and vote bar; the form that
// edits it in place; and an unsent message of the outbox. The log (messages.js)
// decides which messages are shown and where; this module only builds them.

import { el, excerpt, formatTime, linkify, mentions, nickHue } from './app.js';
import { previewCard } from './preview.js';
import { voteBar } from './votes.js';

const CONSECUTIVE_MS = 5 * 60_000;
const FILE_ID = /^[0-9a-f]{32}$/;

/**
 * The article for `m`, which follows `prev` in the log (null for none).
 * `log` is the MessageLog it is shown by: who "me" is, the known messages a
 * reply quotes, and the callbacks of its buttons.
 */
export function messageArticle(log, m, prev) {
  const me = log.me();
  const mine = me && m.from.id === me.id && m.from.id !== 0;
  const consecutive = prev && !prev.deleted && prev.from.id === m.from.id &&
    prev.from.nick === m.from.nick && m.ts - prev.ts < CONSECUTIVE_MS;
  const classes = ['msg'];
  if (consecutive) classes.push('cont');
  if (mine) classes.push('mine');
  if (m.deleted) classes.push('deleted');
  if (!mine && me && !m.deleted && mentions(m.text, me.nick)) classes.push('mention');

  const nick = el('span', { class: 'nick' }, m.from.nick);
  nick.style.setProperty('--hue', nickHue(m.from.nick));
  const time = el('time', { datetime: new Date(m.ts).toISOString(), title: new Date(m.ts).toLocaleString() },
    formatTime(m.ts));
  const article = el('article', {
    class: classes.join(' '),
    id: `m${m.seq}`,
    dataset: { seq: m.seq },
    tabindex: -1, // a tap focuses it, which shows its buttons on touch screens
  },
  el('header', { class: 'meta' }, nick, ' ', time, m.edited && !m.deleted ? el('span', { class: 'edited' }, ' (edited)') : null),
  m.reply_to ? quote(log, m.reply_to) : null,
  m.deleted ? el('p', { class: 'text muted' }, 'This message was deleted.') : null,
  !m.deleted && m.text ? el('p', { class: 'text' }, ...linkify(m.text)) : null,
  !m.deleted && m.drawing ? drawing(log, m) : null,
  !m.deleted && m.preview ? previewCard(m.preview, log.filesUrl()) : null,
  // The vote bar after the actions: Tab from a message reaches "Reply" first.
  m.deleted ? null : actions(log, m, mine),
  m.deleted ? null : voteBar(m, log.myVote(m.seq), log.onVote));
  for (const control of article.querySelectorAll('a, button')) control.tabIndex = -1; // see MessageLog.keyboard()
  return article;
}

/** An unsent message of the outbox (`f` its send frame), with its "Discard" button. */
export function pendingArticle(f, { nick, online, onDiscard }) {
  return el('article', { class: 'msg mine pending', tabindex: -1, dataset: { clientId: f.client_id } },
    el('header', { class: 'meta' }, el('span', { class: 'nick' }, nick),
      el('span', { class: 'state' }, online ? 'sending…' : 'not sent yet — it goes out when you are back online')),
    f.text ? el('p', { class: 'text' }, f.text) : null,
    f.drawing ? el('p', { class: 'text muted' }, '(a drawing)') : null,
    el('div', { class: 'actions' },
      el('button', { type: 'button', tabindex: -1, onclick: () => onDiscard(f.client_id) }, 'Discard')));
}

function quote(log, seq) {
  const original = log.bySeq.get(seq);
  const label = original
    ? [original.from.nick, ': ', original.deleted ? '(deleted)' : excerpt(original.text || '(a drawing)')]
    : ['an earlier message'];
  return el('button', {
    type: 'button',
    class: 'quote',
    title: 'Show the message this replies to',
    onclick: () => log.reveal(seq),
  }, '↪ ', ...label);
}

function drawing(log, m) {
  if (!FILE_ID.test(m.drawing)) return el('p', { class: 'text muted' }, '(a drawing that cannot be shown)');
  const url = `${log.filesUrl()}/files/${m.drawing}.png`;
  const alt = `Drawing by ${m.from.nick}`;
  return el('a', {
    class: 'drawing',
    href: url,
    target: '_blank',
    rel: 'noopener noreferrer',
    title: 'Open full size',
    onclick: (e) => {
      if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      log.onOpenImage(url, alt);
    },
  }, el('img', { src: url, alt, width: 800, height: 600, decoding: 'async' }));
}

function actions(log, m, mine) {
  const bar = el('div', { class: 'actions' },
    el('button', { type: 'button', onclick: () => log.onReply(m) }, 'Reply'));
  if (!mine && log.onReport) {
    bar.append(el('button', { type: 'button', onclick: () => log.onReport(m) }, 'Report'));
  }
  if (mine || log.isOwner()) {
    if (mine && m.text) {
      bar.append(el('button', { type: 'button', onclick: (e) => startEdit(log, m, e.currentTarget) }, 'Edit'));
    }
    bar.append(deleteButton(() => log.onDelete(m)));
  }
  return bar;
}

/** "Delete" asks for a second press within 4 s ("Confirm delete") before it acts. */
function deleteButton(onDelete) {
  const del = el('button', { type: 'button', class: 'danger' }, 'Delete');
  let armed = null;
  del.addEventListener('click', () => {
    if (armed) {
      clearTimeout(armed);
      onDelete();
      return;
    }
    del.textContent = 'Confirm delete';
    armed = setTimeout(() => {
      armed = null;
      del.textContent = 'Delete';
    }, 4000);
  });
  return del;
}

/** Puts an edit form in place of `m`'s text; saving or cancelling renders the message again. */
function startEdit(log, m, button) {
  const article = button.closest('article');
  const text = article.querySelector('.text');
  const box = el('textarea', { 'aria-label': 'Edit message', rows: 2 });
  box.value = m.text;
  const done = () => log.rerender(m.seq);
  const save = () => {
    const value = box.value;
    if (value.trim() && value !== m.text) log.onEdit(m, value);
    done();
  };
  const form = el('form', { class: 'edit', onsubmit: (e) => { e.preventDefault(); save(); } },
    box,
    el('div', { class: 'edit-buttons' },
      el('button', { type: 'submit' }, 'Save'),
      el('button', { type: 'button', onclick: done }, 'Cancel')));
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') done();
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      save();
    }
  });
  text.replaceWith(form);
  article.querySelector('.actions').hidden = true;
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}
