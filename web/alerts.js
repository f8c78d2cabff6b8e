// Getting a person's attention when they look elsewhere: the unread count in
// the tab title while the tab is hidden or unfocused, and — only if they
// asked for it, and only while the tab is hidden — a desktop notification
// and a short sound when someone mentions their nickname. The choices are
// kept per browser (localStorage) and set in a small panel by the header.

import { $ } from './app.js';

const SETTINGS_KEY = 'instantchat.alerts';
const DEFAULTS = Object.freeze({ notify: false, sound: false });

/** The tab title: `(3) Team-Chat — instantchat` with 3 unread messages. */
export function titleText(roomName, unread) {
  return `${unread > 0 ? `(${unread}) ` : ''}${roomName} — instantchat`;
}

/** The saved choices, with anything unreadable or missing at its default. */
export function readSettings(storage) {
  let saved = {};
  try {
    saved = JSON.parse(storage.getItem(SETTINGS_KEY) || '{}') || {};
  } catch {
    // Damaged or inaccessible storage: the defaults.
  }
  return {
    notify: typeof saved.notify === 'boolean' ? saved.notify : DEFAULTS.notify,
    sound: typeof saved.sound === 'boolean' ? saved.sound : DEFAULTS.sound,
  };
}

export function writeSettings(storage, settings) {
  try {
    storage.setItem(SETTINGS_KEY, JSON.stringify({ notify: settings.notify, sound: settings.sound }));
  } catch {
    // Private mode or a full quota: the choice lasts for this page only.
  }
}

export class Alerts {
  /** @param {() => string} roomName the name to show in the title */
  constructor(roomName) {
    this.roomName = roomName;
    this.unread = 0;
    this.settings = readSettings(localStorage);
    this.toggle = $('#alerts-toggle');
    this.panel = $('#alerts-panel');
    this.notifyBox = $('#alert-notify');
    this.soundBox = $('#alert-sound');
    this.hint = $('#alerts-hint');
    this.notifyBox.checked = this.settings.notify;
    this.soundBox.checked = this.settings.sound;

    this.toggle.addEventListener('click', () => this.showPanel(this.panel.hidden));
    this.notifyBox.addEventListener('change', () => this.choseNotify());
    this.soundBox.addEventListener('change', () => {
      this.save({ sound: this.soundBox.checked });
      if (this.soundBox.checked) this.beep(); // what it will sound like
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !this.panel.hidden) {
        this.showPanel(false);
        this.toggle.focus();
      }
    });
    const attentionChanged = () => {
      if (this.attentive() && this.unread) {
        this.unread = 0;
        this.showTitle();
      }
    };
    document.addEventListener('visibilitychange', attentionChanged);
    addEventListener('focus', attentionChanged);
  }

  /** True while the person can see the page: the tab is shown and has focus. */
  attentive() {
    return document.visibilityState === 'visible' && document.hasFocus();
  }

  showTitle() {
    document.title = titleText(this.roomName(), this.unread);
  }

  /** A new message arrived; `mention` when it names this person. */
  message(m, { mine, mention }) {
    if (mine || this.attentive()) return;
    this.unread += 1;
    this.showTitle();
    if (!mention || document.visibilityState !== 'hidden') return;
    if (this.settings.notify && typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      const body = m.text ? m.text.slice(0, 200) : '(a drawing)';
      const note = new Notification(`${m.from.nick} in ${this.roomName()}`, { body, tag: `instantchat-${this.roomName()}` });
      note.onclick = () => {
        focus();
        note.close();
      };
    }
    if (this.settings.sound) this.beep();
  }

  showPanel(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute('aria-expanded', String(open));
  }

  save(change) {
    Object.assign(this.settings, change);
    writeSettings(localStorage, this.settings);
  }

  /** Turning notifications on asks the browser's permission; a refusal is said, not kept. */
  async choseNotify() {
    this.hint.textContent = '';
    if (!this.notifyBox.checked) {
      this.save({ notify: false });
      return;
    }
    if (typeof Notification === 'undefined') {
      this.notifyBox.checked = false;
      this.hint.textContent = 'This browser cannot show notifications.';
      return;
    }
    const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
    if (permission !== 'granted') {
      this.notifyBox.checked = false;
      this.hint.textContent = 'The browser blocks notifications for this site; allow them in its site settings.';
      return;
    }
    this.save({ notify: true });
  }

  /** A short two-tone chime, made on the spot (no sound file to load). */
  beep() {
    try {
      this.audio ??= new AudioContext();
      const ctx = this.audio;
      const gain = ctx.createGain();
      gain.connect(ctx.destination);
      gain.gain.setValueAtTime(0.0001, ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.15, ctx.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.35);
      for (const [freq, at] of [[880, 0], [1320, 0.12]]) {
        const tone = ctx.createOscillator();
        tone.frequency.value = freq;
        tone.connect(gain);
        tone.start(ctx.currentTime + at);
        tone.stop(ctx.currentTime + at + 0.2);
      }
    } catch {
      // No audio here (or not yet allowed): the notification is enough.
    }
  }
}
