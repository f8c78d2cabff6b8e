// End-to-end, in headless Chromium against the real fleet: room owners.
// The browser that creates a room is its owner; the owner sets the topic
// and kicks a member from the member list (the guest is told in words); a
// guest has no owner controls; an owner link makes a co-owner; a guest
// reports a message. Controls are found by role and accessible name
// ("Room settings", "Topic", "Kick", "Report", …).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, eventually, send, ui } from './support.mjs';

const suite = browserSuite();

const topicOf = (page) => page.getByRole('status', { name: 'Topic' });

/** Alice creates the room (so she owns it), Bob joins it. */
async function ownerAndGuest(prefix) {
  const { room, people: [alice, bob] } = await suite.inRoom(prefix, 'alice', 'bob');
  await alice.page.getByText('bob joined').waitFor();
  return { room, alice, bob };
}

describe('web UI: room owners', () => {
  test('the owner sets the topic; everyone sees it; a guest has no owner controls', async () => {
    const { alice, bob } = await ownerAndGuest('topic');
    const settings = alice.page.getByRole('button', { name: 'Room settings' });
    await settings.click();
    await alice.page.getByRole('textbox', { name: 'Topic' }).fill('Release party on Friday');
    await alice.page.getByRole('button', { name: 'Set topic' }).click();
    await topicOf(bob.page).filter({ hasText: 'Release party on Friday' }).waitFor();
    await topicOf(alice.page).filter({ hasText: 'Release party on Friday' }).waitFor();
    await ui.log(bob.page).getByText('alice set the topic').waitFor();

    assert.equal(await bob.page.getByRole('button', { name: 'Room settings' }).count(), 0, 'no settings for a guest');
    assert.equal(await bob.page.getByRole('button', { name: 'Kick' }).count(), 0, 'no Kick for a guest');
    assert.equal(await bob.page.getByRole('textbox', { name: 'Topic' }).count(), 0);

    // Lock and slow mode from the same panel, shown to everyone.
    await alice.page.getByRole('checkbox', { name: /Lock the room/ }).check();
    await bob.page.getByRole('status', { name: 'Room rules' }).filter({ hasText: 'Locked' }).waitFor();
    await ui.log(bob.page).getByText('alice locked the room').waitFor();
    await alice.page.getByRole('spinbutton', { name: /Slow mode/ }).fill('20');
    await alice.page.getByRole('button', { name: 'Set slow mode' }).click();
    await bob.page.getByRole('status', { name: 'Room rules' })
      .filter({ hasText: 'Slow mode: one message every 20 s' }).waitFor();
    await send(bob.page, 'first under slow mode');
    await ui.messages(alice.page, 'first under slow mode').waitFor();
    await send(bob.page, 'too soon');
    await bob.page.getByRole('alert').filter({ hasText: 'Slow mode is on' }).waitFor();
    suite.assertCleanPages();
  });

  test('the owner kicks a member from the member list with a ban; the guest is told in words', async () => {
    const { alice, bob } = await ownerAndGuest('kick');
    const bobInList = ui.members(alice.page).filter({ hasText: 'bob' });
    assert.equal(await ui.members(alice.page).filter({ hasText: 'alice' }).getByRole('button', { name: 'Kick' }).count(), 0,
      'no Kick on oneself');
    await bobInList.getByRole('button', { name: 'Kick' }).click();
    await alice.page.getByRole('spinbutton', { name: /Ban for/ }).fill('5');
    await alice.page.getByRole('textbox', { name: /Reason/ }).fill('spamming links');
    await alice.page.getByRole('button', { name: 'Remove from room' }).click();

    await bob.page.getByRole('alert').filter({ hasText: 'You were removed from this room by an owner.' }).waitFor();
    await ui.log(bob.page)
      .getByText('alice removed you from this room and banned you for 5 minutes: spamming links').waitFor();
    await ui.connection(bob.page).filter({ hasText: 'Removed' }).waitFor();
    await ui.log(alice.page).getByText('bob was removed by alice and banned for 5 minutes: spamming links').waitFor();
    await eventually(async () => (await ui.members(alice.page).count()) === 1, 'bob gone from the member list');

    // Trying again while banned: refused, in words, no reconnect loop.
    await bob.page.getByRole('button', { name: 'Try again' }).click();
    await bob.page.getByRole('alert').filter({ hasText: /You are banned from this room for about 5 more minutes/ }).waitFor();
    assert.match(await bob.page.getByRole('alert').textContent(), /spamming links/);
    suite.assertCleanPages();
  });

  test('an owner link makes a co-owner and leaves the address bar; guests report messages', async () => {
    const { room, alice, bob } = await ownerAndGuest('link');
    await alice.page.getByRole('button', { name: 'Room settings' }).click();
    const link = await alice.page.getByRole('textbox', { name: 'Owner link' }).inputValue();
    assert.match(link, new RegExp(`/${room}#owner=[0-9a-f]{32}$`));

    const carol = await suite.newPerson();
    await carol.page.goto(link);
    await carol.page.getByRole('textbox', { name: 'Nickname' }).fill('carol');
    await carol.page.getByRole('button', { name: 'Join' }).click();
    await carol.page.getByRole('button', { name: 'Room settings' }).waitFor();
    assert.ok(!carol.page.url().includes('#owner'), `the key left the address bar: ${carol.page.url()}`);
    await ui.members(carol.page).filter({ hasText: 'bob' }).getByRole('button', { name: 'Kick' }).waitFor();

    await send(alice.page, 'a message worth reporting');
    const message = ui.messages(bob.page, 'a message worth reporting');
    await message.hover();
    await message.getByRole('button', { name: 'Report' }).click();
    await ui.log(bob.page).getByText(/was reported to the operators/).waitFor();
    assert.equal(await ui.messages(alice.page, 'a message worth reporting').getByRole('button', { name: 'Report' }).count(), 0,
      'no Report on one\'s own message');
    const reports = await (await suite.fleet.admin('GET', '/admin/reports')).json();
    const listed = reports.reports.find((r) => r.room === room);
    assert.equal(listed?.text, 'a message worth reporting');
    assert.equal(listed?.count, 1);
    suite.assertCleanPages();
  });
});
