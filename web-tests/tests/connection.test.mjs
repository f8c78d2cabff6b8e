// The connection under strain, in real headless Chromium: a dropped network,
// scrolling back through history, quick bursts, a server shutting down.
//
// People are separate browser contexts (own storage, own network switch); every
// control is found by its role and accessible name (docs/WEB.md lists them).
// Run: `npm test --prefix web-tests` after `npm ci --prefix web-tests` and building
// the `instantchat` binary (INSTANTCHAT_BIN overrides where it is).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, eventually, expectEachOnceInOrder, joinRoom, send, startFleet, ui, uniqueRoom, waitConnected,
} from './support.mjs';

const suite = browserSuite();

describe('web UI: the connection: drops, history, pacing, shutdown', () => {
  test('after the network drops and returns, every message shows exactly once', async () => {
    const { room, people: [alice, bob] } = await suite.inRoom('drop', 'alice', 'bob');
    await send(bob.page, 'before the drop');
    await ui.messages(alice.page, 'before the drop').waitFor();
    const socketsBefore = alice.sockets.length;

    // Cut Alice's network. Her page notices and says so.
    await alice.context.setOffline(true);
    await ui.connection(alice.page).filter({ hasText: /Offline|Reconnecting/ }).waitFor();

    const missed = ['missed one', 'missed two', 'missed three'];
    for (const text of missed) await send(bob.page, text);
    await ui.messages(bob.page, 'missed three').waitFor();

    // What Alice writes while offline is kept and goes out later.
    await send(alice.page, 'written offline');
    await ui.messages(alice.page, 'written offline').filter({ hasText: 'not sent yet' }).waitFor();
    await ui.composer(alice.page).fill('an unsent draft');

    await alice.context.setOffline(false);
    await waitConnected(alice.page);
    assert.ok(alice.sockets.length > socketsBefore, 'a new websocket was opened');
    const resume = alice.welcomes.at(-1);
    assert.equal(resume.resumed, true, 'the join resumed where it left off');
    assert.equal(resume.seqs.length, missed.length, 'only what was missed came with it');

    // A message after the reconnect: once it is there, everything before is too.
    await send(bob.page, 'after the drop');
    await ui.messages(alice.page, 'after the drop').waitFor();
    await ui.messages(bob.page, 'written offline').waitFor();
    await expectEachOnceInOrder([alice.page, bob.page], [...missed, 'before the drop', 'after the drop', 'written offline']);
    assert.equal(await ui.messages(alice.page).count(), await ui.messages(bob.page).count(), 'both see the same messages');
    assert.equal(await ui.composer(alice.page).inputValue(), 'an unsent draft', 'the draft survived');
    suite.assertCleanPages();
  });

  test('older history appears when scrolling up', async () => {
    const room = uniqueRoom('history');
    const bot = await suite.newPerson();
    // A room page (whose CSP lets scripts open websockets) left at its nickname question.
    await bot.page.goto(`${suite.fleet.aux}/${room}`);
    await bot.page.getByRole('textbox', { name: 'Nickname' }).waitFor();
    // 130 messages from a few quick websocket clients (each within its burst).
    const total = 130;
    await bot.page.evaluate(async ({ room, total }) => {
      const answer = await fetch(`/api/rooms/${room}`, { method: 'PUT', body: '{}' }).then((r) => r.json());
      let next = 1;
      const client = (n) => new Promise((resolve, reject) => {
        const ws = new WebSocket(answer.ws_url);
        let stored = 0;
        ws.onopen = () => ws.send(JSON.stringify({ type: 'join', nick: 'bot' }));
        ws.onerror = reject;
        ws.onmessage = (e) => {
          const f = JSON.parse(e.data);
          if (f.type === 'welcome') for (let i = 0; i < n; i++) ws.send(JSON.stringify({ type: 'send', text: `old message ${next++}` }));
          if (f.type === 'error') reject(new Error(f.code));
          if (f.type === 'message' && ++stored === n) resolve(ws.close());
        };
      });
      // One after the other: each waits for its own messages, so seqs follow the numbers.
      for (let sent = 0; sent < total; sent += 18) await client(Math.min(18, total - sent));
    }, { room, total });

    const reader = await suite.joined(room, 'reader');
    await ui.messages(reader.page, `old message ${total}`).waitFor();
    const first = await ui.messages(reader.page).count();
    assert.ok(first < total, `only the newest are rendered at first (${first})`);
    const oldest = ui.log(reader.page).locator('.text').filter({ hasText: /^old message 1$/ });
    assert.equal(await oldest.count(), 0, 'the oldest is not rendered yet');
    await eventually(async () => {
      await ui.log(reader.page).evaluate((log) => { log.scrollTop = 0; });
      return (await ui.messages(reader.page).count()) === total;
    }, 'all history after scrolling up');
    await reader.page.getByText('This is the beginning of the room.').waitFor();
    await oldest.waitFor();
    suite.assertCleanPages();
  });

  test('quick bursts are paced: every message arrives once, in order', async () => {
    const { room, people: [alice, bob] } = await suite.inRoom('burst', 'alice', 'bob');
    const n = 30; // more than the server's burst of 20 frames
    for (let i = 1; i <= n; i++) await send(alice.page, `burst ${i}.`);
    await ui.messages(bob.page, `burst ${n}.`).waitFor();
    const texts = await ui.messages(bob.page).locator('.text').allTextContents();
    assert.deepEqual(texts, Array.from({ length: n }, (_, i) => `burst ${i + 1}.`));
    assert.equal(await alice.page.getByText('going too fast').count(), 0, 'no rate_limited from the server');
    suite.assertCleanPages();
  });

  test('a server shutting down is announced, and the page keeps trying', async () => {
    const doomed = await startFleet(); // a fleet of its own, to stop
    try {
      const alice = await suite.newPerson();
      await joinRoom(alice.page, doomed.aux, uniqueRoom('shutdown'), 'alice');
      await doomed.stop();
      await alice.page.getByRole('alert').filter({ hasText: 'The server is restarting' }).waitFor();
      await ui.connection(alice.page).filter({ hasText: /Reconnecting|Connecting/ }).waitFor();
      suite.assertCleanPages();
    } finally {
      await doomed.stop();
    }
  });

  test('no page raised a script error or opened a dialog', () => {
    suite.assertCleanPages();
  });
});
