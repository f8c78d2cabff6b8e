// End-to-end, in headless Chromium against a fleet whose backends ask every
// join for a proof of work (`instantchat --pow always`, 16 bits): the page
// solves the puzzle by itself and joins, with nothing for the person to do;
// and the abuse defences' refusals reach the person in words.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, send, ui, uniqueRoom, expectMessageCount } from './support.mjs';

const suite = browserSuite({ fleetArgs: ['--pow', 'always'] });

/** Records when each challenge and welcome frame reached the page. */
function watchJoins(page) {
  const seen = [];
  page.on('websocket', (ws) => {
    ws.on('framereceived', ({ payload }) => {
      if (typeof payload !== 'string') return;
      const f = JSON.parse(payload);
      if (f.type === 'welcome' || (f.type === 'error' && f.code === 'challenge')) {
        seen.push({ kind: f.type === 'welcome' ? 'welcome' : 'challenge', at: Date.now(), bits: f.challenge?.bits });
      }
    });
  });
  return seen;
}

describe('web UI: abuse defences', () => {
  test('a challenged join is solved by the page, well under a second', async (t) => {
    const room = uniqueRoom('pow');
    const alice = await suite.newPerson();
    const seen = watchJoins(alice.page);
    await suite.join(alice, room, 'alice');
    const challenge = seen.find((s) => s.kind === 'challenge');
    const welcome = seen.find((s) => s.kind === 'welcome');
    assert.ok(challenge, 'the server asked for a proof of work');
    assert.equal(challenge.bits, 16);
    assert.ok(welcome && welcome.at >= challenge.at, 'and let the page in after it');
    const took = welcome.at - challenge.at;
    t.diagnostic(`challenge (16 bits) to welcome: ${took} ms`);
    assert.ok(took < 1000, `solved in ${took} ms`);
    assert.equal(await alice.page.getByText(/puzzle|challenge|went wrong/i).count(), 0, 'nothing to see for the person');

    // The solver's own speed, on 10 fresh 16-bit puzzles in this page.
    const times = await alice.page.evaluate(async () => {
      const { solveChallenge } = await import('/pow.js');
      const out = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        await solveChallenge({ token: `${Date.now()}.16.${Math.random().toString(16).slice(2)}`, bits: 16 });
        out.push(performance.now() - started);
      }
      return out;
    });
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    t.diagnostic(`16-bit puzzles: mean ${mean.toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms`);
    assert.ok(mean < 1000, `mean ${mean} ms`);

    const bob = await suite.joined(room, 'bob');
    await send(alice.page, 'hello through the puzzle');
    await ui.messages(bob.page, 'hello through the puzzle').waitFor();
    suite.assertCleanPages();
  });

  test('the same text sent again and again is refused in words', async () => {
    const { people: [alice] } = await suite.inRoom('spam', 'alice');
    for (let i = 0; i < 3; i++) await send(alice.page, 'Buy now!');
    await expectMessageCount(alice.page, 'Buy now!', 3);
    await send(alice.page, 'buy NOW!');
    await alice.page.getByText('You sent that same text several times already').waitFor();
    assert.equal(await ui.composer(alice.page).inputValue(), 'buy NOW!', 'the text is given back to edit');
    await expectMessageCount(alice.page, /buy now!/i, 3);
    suite.assertCleanPages();
  });
});
