// Unit tests of the pure parts of votes and link previews (web/votes.js,
// web/preview.js): plain node, no browser.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MyVotes, topMessages } from '../../web/votes.js';
import { isFilesUrl } from '../../web/preview.js';

const msg = (seq, up, down, extra = {}) => ({ seq, ts: 0, from: { id: 1, nick: 'a' }, text: `m${seq}`, up, down, ...extra });

describe('votes', () => {
  test('top messages: most up-votes first, then more up than down, then newer; never unvoted or deleted', () => {
    const messages = [
      msg(1, 3, 0), msg(2, 5, 4), msg(3, 5, 0), msg(4, undefined, undefined), msg(5, 0, 2),
      msg(6, 9, 0, { deleted: true }), msg(7, 3, 0), msg(8, 1, 0), msg(9, 1, 0), msg(10, 2, 0),
    ];
    assert.deepEqual(topMessages(messages).map((m) => m.seq), [3, 2, 7, 1, 10]);
    assert.deepEqual(topMessages(messages, 2).map((m) => m.seq), [3, 2]);
    assert.deepEqual(topMessages([msg(1, 0, 0), msg(2, undefined, 1)]), []);
  });

  test('my votes: pressing toggles, the other button changes, a refusal undoes, a new member forgets', () => {
    const mine = new MyVotes();
    mine.joined(1, 7);
    assert.equal(mine.toggle(4, 1), 1);
    assert.equal(mine.get(4), 1);
    assert.equal(mine.toggle(4, -1), -1, 'the other button changes the vote');
    assert.equal(mine.toggle(4, -1), 0, 'pressing my vote again takes it back');
    assert.equal(mine.get(4), 0);
    mine.toggle(4, 1);
    assert.equal(mine.refused(), 4);
    assert.equal(mine.get(4), 0, 'refused: back to what it was');
    assert.equal(mine.refused(), null, 'only the vote in flight is undone');
    mine.toggle(5, 1);
    mine.joined(1, 7);
    assert.equal(mine.get(5), 1, 'the same member keeps its votes across a resume');
    mine.joined(1, 8);
    assert.equal(mine.get(5), 0, 'a new member id has voted nothing');
    mine.toggle(5, 1);
    mine.joined(2, 8);
    assert.equal(mine.get(5), 0, 'a room that started over has no votes');
  });
});

describe('previews', () => {
  test('an image is shown only from file-srv\'s origin', () => {
    const files = 'http://127.0.0.1:8085';
    assert.ok(isFilesUrl('http://127.0.0.1:8085/files/ab.png', files));
    assert.ok(isFilesUrl('https://chat.example/files/ab.png', 'https://chat.example'));
    for (const other of [
      'http://127.0.0.1:8086/files/ab.png', 'https://127.0.0.1:8085/files/ab.png', 'http://evil.example/x.png',
      'data:image/png;base64,AAAA', 'javascript:alert(1)', '//127.0.0.1:8085/files/ab.png', 'not a url',
    ]) {
      assert.ok(!isFilesUrl(other, files), other);
    }
    assert.ok(!isFilesUrl('http://127.0.0.1:8085/files/ab.png', ''), 'no files URL, no image');
  });
});
