// What the room page says about its connection: the state line in the
// header (with the countdown to the next attempt) and the banner for what
// the person has to know or decide — the server restarting, the room open
// in another tab, expired or deleted, or the person kept out of it.
// RoomConnection decides the states; this module only puts them in words.

import { $, errorText } from './app.js';

export class ConnectionStatus {
  /**
   * @param {object} o
   * @param {HTMLElement} o.line the "Connection" status (its state in `data-state`)
   * @param {HTMLElement} o.banner the alert with `.banner-text` and `.banner-action`
   * @param {() => void} o.reconnect takes the room back from another tab
   * @param {() => void} o.restart opens the room again after it ended
   */
  constructor({ line, banner, reconnect, restart }) {
    this.line = line;
    this.lineText = $('.conn-text', line);
    this.banner = banner;
    this.reconnect = reconnect;
    this.restart = restart;
    this.countdown = null;
  }

  /** Shows one of RoomConnection's states (`onState`). */
  show(state, detail = {}) {
    clearInterval(this.countdown);
    switch (state) {
      case 'connecting':
        this.set('connecting', 'Connecting…');
        break;
      case 'online':
        this.set('online', 'Connected');
        this.hideBanner();
        break;
      case 'offline':
        this.set('offline', 'Offline');
        break;
      case 'waiting': {
        const tick = () => {
          const s = Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000));
          const why = detail.error ? `${errorText(detail.error.code, detail.error.message)} ` : '';
          this.set('waiting', `${why}Reconnecting${s ? ` in ${s} s` : ''}…`);
        };
        tick();
        this.countdown = setInterval(tick, 1000);
        if (detail.why === 'shutdown') this.serverRestarting();
        break;
      }
      case 'needs-input':
        this.set('connecting', 'Waiting for you');
        break;
      case 'ended':
        this.ended(detail);
        break;
    }
  }

  /** The server said it is shutting down: the connection comes back by itself. */
  serverRestarting() {
    this.showBanner('The server is restarting. Reconnecting…');
  }

  /** The address names no room (the API refused the name): nothing to retry. */
  notARoom(e) {
    this.showBanner(`This address is not a room: ${errorText(e.code, e.message)}`, 'Go to the home page', () => {
      location.href = '/';
    });
    this.set('ended', 'Not a room');
  }

  ended(detail) {
    if (detail.reason === 'replaced') {
      this.set('ended', 'Open elsewhere');
      this.offer('You opened this room in another tab or window.', 'Use it here', this.reconnect);
      return;
    }
    if (this.keptOut(detail)) return;
    const text = detail.reason === 'room_deleted'
      ? 'This room was deleted by the operators.'
      : 'This room has expired: it stayed empty and silent too long, and its messages are gone.';
    this.set('ended', 'Room closed');
    this.offer(text, 'Open it again', this.restart);
  }

  /** Kicked, banned, locked out: told in words, with a way back when it makes sense. */
  keptOut({ reason, message, retryAfterMs }) {
    let text;
    if (reason === 'kicked') text = 'You were removed from this room by an owner.';
    else if (reason === 'banned') {
      const minutes = Math.max(1, Math.ceil((retryAfterMs || 0) / 60_000));
      text = `You are banned from this room for about ${minutes} more minute${minutes === 1 ? '' : 's'}.`;
      if (message && /: /.test(message)) text += ` Reason: ${message.slice(message.indexOf(': ') + 2)}`;
    } else if (reason === 'room_locked') text = 'This room is locked: its owners are not letting new people in right now.';
    else if (reason === 'refused') text = 'The room did not let you in.';
    else return false;
    this.set('ended', reason === 'kicked' ? 'Removed' : 'Not admitted');
    this.offer(text, 'Try again', this.restart);
    return true;
  }

  /** A banner whose button puts the banner away and then does `action`. */
  offer(text, actionText, action) {
    this.showBanner(text, actionText, () => {
      this.hideBanner();
      action();
    });
  }

  set(state, text) {
    this.line.dataset.state = state;
    this.lineText.textContent = text;
  }

  showBanner(text, actionText = null, action = null) {
    $('.banner-text', this.banner).textContent = text;
    const button = $('.banner-action', this.banner);
    button.hidden = !actionText;
    button.textContent = actionText || '';
    button.onclick = action;
    this.banner.hidden = false;
  }

  hideBanner() {
    this.banner.hidden = true;
  }
}
