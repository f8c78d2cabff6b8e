// Unit tests of the pure parts of search, export and alerts (web/search.js,
// web/alerts.js): plain node, no browser.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { exportFileName, exportTime, messageMatches, searchWords, transcript } from '../../web/search.js';
import { readSettings, titleText, writeSettings } from '../../web/alerts.js';

const at = new Date(2026, 2, 1, 14, 3).getTime(); // local time, as the export writes it
const msg = (seq, nick, text, extra = {}) => ({ seq, ts: at, from: { id: 1, nick }, text, ...extra });

describe('search', () => {
  test('every word, in text or nick, any case, compatibility forms folded', () => {
    const m = msg(1, 'Alice', 'An Apple tart, please');
    assert.ok(messageMatches(m, searchWords('apple')));
    assert.ok(messageMatches(m, searchWords('  APPLE   alice ')));
    assert.ok(messageMatches(m, searchWords('ＡＰＰＬＥ')), 'fullwidth');
    assert.ok(!messageMatches(m, searchWords('apple pie')), 'every word must be there');
    assert.ok(!messageMatches(m, searchWords('')), 'no words match nothing');
    assert.ok(!messageMatches({ ...m, deleted: true, text: '' }, searchWords('alice')), 'deleted messages never');
    assert.ok(messageMatches(msg(2, 'bob', '', { drawing: 'ab'.repeat(16) }), searchWords('bob')), 'a drawing by its sender');
  });
});

describe('export', () => {
  test('one [time] nick: text line per message, oldest first; drawings as URLs; deleted left out', () => {
    const id = '0123456789abcdef0123456789abcdef';
    const text = transcript([
      msg(3, 'bob', '', { drawing: id }),
      msg(1, 'alice', 'hello'),
      msg(2, 'alice', 'gone', { deleted: true }),
      msg(4, 'carol', 'two\r\nlines\nand three'),
      msg(5, 'dave', 'look', { drawing: id }),
    ], 'http://files.example');
    assert.equal(text, [
      '[2026-03-01 14:03] alice: hello',
      `[2026-03-01 14:03] bob: http://files.example/files/${id}.png`,
      '[2026-03-01 14:03] carol: two',
      '  lines',
      '  and three',
      `[2026-03-01 14:03] dave: look http://files.example/files/${id}.png`,
      '',
    ].join('\n'));
    assert.equal(transcript([], ''), '');
  });

  test('times and file names', () => {
    assert.equal(exportTime(at), '2026-03-01 14:03');
    assert.equal(exportFileName('Team-Chat', at), 'Team-Chat-2026-03-01-1403.txt');
    assert.equal(exportFileName('Café.日本', at), 'Café.日本-2026-03-01-1403.txt');
  });
});

describe('alerts', () => {
  test('the title counts unread messages', () => {
    assert.equal(titleText('Team-Chat', 0), 'Team-Chat — instantchat');
    assert.equal(titleText('Team-Chat', 3), '(3) Team-Chat — instantchat');
  });

  test('settings: off by default, kept, and damaged storage falls back', () => {
    const store = new Map();
    const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
    assert.deepEqual(readSettings(storage), { notify: false, sound: false });
    writeSettings(storage, { notify: true, sound: false, extra: 1 });
    assert.deepEqual(readSettings(storage), { notify: true, sound: false });
    store.set('instantchat.alerts', '{not json');
    assert.deepEqual(readSettings(storage), { notify: false, sound: false });
    store.set('instantchat.alerts', '{"notify":"yes","sound":true}');
    assert.deepEqual(readSettings(storage), { notify: false, sound: true });
    const broken = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('full'); } };
    assert.deepEqual(readSettings(broken), { notify: false, sound: false });
    writeSettings(broken, { notify: true, sound: true }); // does not throw
  });
});
