// Members keep who they are, and rooms move between backends: real headless
// Chromium against the real local fleet (two backends in one process).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, editMessage, eventually, expectEachOnceInOrder, expectMessageCount, send, ui, waitConnected,
} from './support.mjs';

const suite = browserSuite();

describe('member identity', () => {
  test('after a reload a member is the same member and can still edit its old messages', async () => {
    const { people: [alice, bob] } = await suite.inRoom('reload', 'alice', 'bob');
    await send(alice.page, 'typo befor reload');
    await ui.messages(bob.page, 'typo befor reload').waitFor();

    await alice.page.reload();
    await waitConnected(alice.page);
    await editMessage(alice.page, 'typo befor reload', 'fixed after reload');
    await ui.messages(bob.page, 'fixed after reload').filter({ hasText: '(edited)' }).waitFor();
    // Bob's list still shows alice once: the same member came back.
    await eventually(async () => (await ui.members(bob.page).filter({ hasText: 'alice' }).count()) === 1, 'alice listed once');
    await expectMessageCount(bob.page, 'fixed after reload', 1);
    suite.assertCleanPages();
  });
});

describe('rooms move between backends', () => {
  test('two people keep chatting while their room moves: history intact, nothing twice, no error', async () => {
    const { room, people: [alice, bob] } = await suite.inRoom('move', 'alice', 'bob');
    const before = ['one', 'two', 'three'].map((w) => `before ${w}`);
    for (const text of before) await send(alice.page, text);
    await ui.messages(bob.page, 'before three').waitFor();
    const socketsBefore = alice.sockets.length;
    const lookupsBefore = [alice.lookups.length, bob.lookups.length];

    // The operators move the room while Bob is typing away.
    const moving = suite.fleet.admin('POST', `/admin/rooms/${room}/move`, {});
    const during = ['during one', 'during two', 'during three'];
    for (const text of during) await send(bob.page, text);
    const answer = await moving;
    const body = await answer.text();
    assert.equal(answer.status, 200, body);
    const moved = JSON.parse(body);
    assert.notEqual(moved.from, moved.to);

    await waitConnected(alice.page);
    await waitConnected(bob.page);
    await send(alice.page, 'after the move');
    await ui.messages(bob.page, 'after the move').waitFor();
    for (const text of during) await ui.messages(alice.page, text).waitFor();
    assert.ok(alice.sockets.length > socketsBefore, 'alice followed the room to a new websocket');
    assert.notEqual(alice.sockets.at(-1), alice.sockets[socketsBefore - 1], 'on the other backend');
    // They went where `closing moved` said, without asking aux-srv, and the
    // new backend did not send them the member list again: they kept theirs.
    assert.deepEqual([alice.lookups.length, bob.lookups.length], lookupsBefore, 'no room lookup for the move');
    for (const p of [alice, bob]) {
      assert.equal(p.welcomes.at(-1).membersUnchanged, true, 'the welcome after the move kept the list');
      await eventually(async () => (await ui.members(p.page).count()) === 2, 'both still listed');
    }
    await expectEachOnceInOrder([alice.page, bob.page], [...before, ...during, 'after the move']);
    for (const p of [alice.page, bob.page]) {
      assert.equal(await p.getByRole('alert').filter({ hasText: /./ }).count(), 0, 'no error shown');
    }
    // Nobody was shown leaving or joining because of the move: Alice saw Bob
    // join once, before it.
    const notes = (p, text) => p.locator('p.note', { hasText: text }).count();
    assert.equal(await notes(alice.page, 'bob joined'), 1, 'bob joined once, before the move');
    for (const p of [alice.page, bob.page]) {
      assert.equal(await notes(p, / left$/), 0, 'nobody shown leaving');
    }
    assert.equal(await notes(bob.page, 'alice joined'), 0, 'alice was there before bob');
    // Still the same member: Alice can edit what she wrote before the move.
    await editMessage(alice.page, 'before one', 'before one, edited after the move');
    await ui.messages(bob.page, 'edited after the move').waitFor();
    suite.assertCleanPages();
  });
});
