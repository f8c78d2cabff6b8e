// A backend restarts and nobody notices: real headless Chromium against the
// fleet as separate processes (two backends, aux-srv), one backend stopped
// with SIGTERM while two people talk in a room it holds. It moves its rooms
// to the other backend before it exits (docs/OPERATIONS.md, "Upgrade a
// backend and nobody notices").

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, expectEachOnceInOrder, send, startSeparateFleet, ui, waitConnected,
} from './support.mjs';

const suite = browserSuite({ start: startSeparateFleet });

describe('a backend restarts', () => {
  test('two people keep chatting while the backend holding their room gets SIGTERM: history intact, nothing twice, no error', async () => {
    const { people: [alice, bob] } = await suite.inRoom('restart', 'alice', 'bob');
    const before = ['before one', 'before two', 'before three'];
    for (const text of before) await send(alice.page, text);
    await ui.messages(bob.page, 'before three').waitFor();
    const { backends } = suite.fleet;
    const holder = backends.find((b) => alice.sockets.at(-1).startsWith(`${b.wsBase}/`));
    assert.ok(holder, `the room is on one of the backends: ${alice.sockets.at(-1)}`);
    const other = backends.find((b) => b !== holder);

    // SIGTERM the room's backend while Bob goes on typing.
    const stopping = holder.terminate();
    const during = ['during one', 'during two', 'during three'];
    for (const text of during) await send(bob.page, text);
    await stopping;
    assert.equal(holder.child.exitCode, 0, 'the backend exited cleanly after moving its rooms');

    await waitConnected(alice.page);
    await waitConnected(bob.page);
    await send(alice.page, 'after the restart');
    await ui.messages(bob.page, 'after the restart').waitFor();
    for (const text of during) await ui.messages(alice.page, text).waitFor();
    for (const p of [alice, bob]) {
      assert.ok(p.sockets.at(-1).startsWith(`${other.wsBase}/`), `now on the other backend: ${p.sockets.at(-1)}`);
    }
    await expectEachOnceInOrder([alice.page, bob.page], [...before, ...during, 'after the restart']);
    for (const p of [alice.page, bob.page]) {
      assert.equal(await p.getByRole('alert').filter({ hasText: /./ }).count(), 0, 'no error shown');
      assert.equal(await p.locator('p.note', { hasText: / left$/ }).count(), 0, 'nobody shown leaving');
      assert.equal(await ui.members(p).count(), 2, 'both still listed');
    }
    suite.assertCleanPages();
  });
});
