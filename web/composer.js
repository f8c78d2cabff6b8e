// The composer: the message box with its counter against the server's limit,
// Enter to send (Shift+Enter for a new line), the reply bar, the draft kept
// per tab, and the line under it that says what went wrong.

import { $, el, charCount, remember } from './app.js';

const ERROR_SHOWN_MS = 8000;

export class Composer {
  /**
   * @param {object} o
   * @param {string} o.roomName the draft is kept per room
   * @param {() => {max_text_chars: number}} o.limits the server's, from `welcome`
   * @param {(text: string, replyTo: object | null) => void} o.onSend
   * @param {() => void} o.onTyping the person typed something
   */
  constructor({ roomName, limits, onSend, onTyping }) {
    Object.assign(this, { roomName, limits, onSend, onTyping });
    this.form = $('#composer');
    this.box = $('#message');
    this.sendButton = $('#send');
    this.counter = $('#counter');
    this.errorLine = $('#composer-error');
    this.replyBar = $('#reply-bar');
    this.replyTo = null;
    this.errorTimer = null;

    this.box.value = remember.draft(roomName);
    this.box.addEventListener('input', () => this.changed(true));
    this.box.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.form.requestSubmit();
      } else if (e.key === 'Escape' && this.replyTo) {
        this.cancelReply();
      }
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    $('#cancel-reply').addEventListener('click', () => {
      this.cancelReply();
      this.box.focus();
    });
    this.changed(false);
  }

  submit() {
    const text = this.box.value;
    if (!text.trim()) {
      this.box.focus();
      return;
    }
    if (charCount(text) > this.limits().max_text_chars) {
      this.showError(this.tooLongText());
      return;
    }
    this.onSend(text, this.replyTo);
    this.box.value = '';
    remember.setDraft(this.roomName, '');
    this.cancelReply();
    this.changed(false);
    this.showError('');
    this.box.focus();
  }

  /** Counter, send button and height follow the text; typed text is kept as the draft. */
  changed(typed) {
    const n = charCount(this.box.value);
    const max = this.limits().max_text_chars;
    this.counter.textContent = `${n} / ${max}`;
    this.counter.classList.toggle('over', n > max);
    this.sendButton.disabled = n > max;
    this.box.setAttribute('aria-invalid', String(n > max));
    // Grow with the text, up to a limit (then it scrolls).
    this.box.style.height = 'auto';
    this.box.style.height = `${Math.min(this.box.scrollHeight + 2, 180)}px`;
    if (typed) {
      remember.setDraft(this.roomName, this.box.value);
      if (this.box.value.trim()) this.onTyping();
    }
  }

  /** Gives a refused message's text back, so nothing typed is lost. */
  restore(text) {
    if (this.box.value || !text) return;
    this.box.value = text;
    remember.setDraft(this.roomName, text);
    this.changed(false);
  }

  tooLongText() {
    return `That message is too long: at most ${this.limits().max_text_chars} characters.`;
  }

  startReply(m) {
    this.replyTo = m;
    const excerpt = m.text ? m.text.replace(/\s+/g, ' ').slice(0, 80) : '(a drawing)';
    $('.reply-text', this.replyBar).replaceChildren('Replying to ', el('strong', {}, m.from.nick), `: ${excerpt}`);
    this.replyBar.hidden = false;
    this.box.focus();
  }

  cancelReply() {
    this.replyTo = null;
    this.replyBar.hidden = true;
  }

  showError(text) {
    this.errorLine.textContent = text;
    clearTimeout(this.errorTimer);
    if (text) this.errorTimer = setTimeout(() => { this.errorLine.textContent = ''; }, ERROR_SHOWN_MS);
  }

  /** Focuses the box unless that would pop a touch keyboard up uninvited. */
  focusIfDesktop() {
    if (document.activeElement === document.body && matchMedia('(hover: hover)').matches) this.box.focus();
  }
}
