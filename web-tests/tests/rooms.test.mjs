// Rooms as a visitor meets them, in real headless Chromium: refusals in words,
// operator announcements and deletions, passwords, the home page.
//
// People are separate browser contexts (own storage, own network switch); every
// control is found by its role and accessible name (docs/WEB.md lists them).
// Run: `npm test --prefix web-tests` after `npm ci --prefix web-tests` and building
// the `instantchat` binary (INSTANTCHAT_BIN overrides where it is).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, openEditor, send, ui, uniqueRoom, waitConnected } from './support.mjs';

const suite = browserSuite();

describe('web UI: rooms: refusals, operators, passwords, the home page', () => {
  test('limits and refusals are shown in words', async () => {
    const { room, people: [alice] } = await suite.inRoom('limits', 'alice');
    const counter = alice.page.getByText('0 / 4000');
    await counter.waitFor();
    await ui.composer(alice.page).fill('x'.repeat(4001));
    await alice.page.getByText('4001 / 4000').waitFor();
    assert.equal(await alice.page.getByRole('button', { name: 'Send' }).isDisabled(), true);

    // The composer keeps to the limit, but an edit can ask for more: the
    // server's error frame comes back and is shown in words.
    await send(alice.page, 'short');
    await ui.composer(alice.page).fill('');
    await (await openEditor(alice.page, 'short')).fill('y'.repeat(4001));
    await alice.page.getByRole('button', { name: 'Save' }).click();
    await alice.page.getByRole('alert').filter({ hasText: 'That message is too long: at most 4000 characters.' }).waitFor();
    suite.assertCleanPages();
  });

  test('operators: an announcement shows; a deleted room says so and can be opened again', async () => {
    const { room, people: [alice] } = await suite.inRoom('ops', 'alice');
    await send(alice.page, 'soon gone');
    await ui.messages(alice.page, 'soon gone').waitFor();

    const announced = await suite.fleet.admin('POST', '/admin/announce', { text: 'Maintenance at noon' });
    assert.equal(announced.status, 200);
    await ui.log(alice.page).getByText('Announcement: Maintenance at noon').waitFor();

    const deleted = await suite.fleet.admin('DELETE', `/admin/rooms/${room}`);
    assert.equal(deleted.status, 200);
    const banner = alice.page.getByRole('alert').filter({ hasText: 'This room was deleted by the operators.' });
    await banner.waitFor();
    await ui.connection(alice.page).filter({ hasText: 'Room closed' }).waitFor();
    await banner.getByRole('button', { name: 'Open it again' }).click();
    await waitConnected(alice.page);
    await banner.waitFor({ state: 'hidden' });
    assert.equal(await ui.messages(alice.page, 'soon gone').count(), 0, 'a new room starts empty');
    await send(alice.page, 'fresh start');
    await ui.messages(alice.page, 'fresh start').waitFor();
    suite.assertCleanPages();
  });

  test('a password-protected room asks for its password', async () => {
    const room = uniqueRoom('secret');
    const owner = await suite.newPerson();
    await owner.page.goto(`${suite.fleet.aux}/`);
    await owner.page.getByRole('textbox', { name: 'Room name' }).fill(room);
    await owner.page.getByText('Protect a new room with a password').click();
    await owner.page.getByLabel('Password (optional)').fill('hunter2');
    await owner.page.getByRole('button', { name: 'Create new room' }).click();
    await owner.page.waitForURL(`${suite.fleet.aux}/${room}`);
    await owner.page.getByRole('textbox', { name: 'Nickname' }).fill('owner');
    await owner.page.getByRole('button', { name: 'Join' }).click();
    await waitConnected(owner.page);
    await send(owner.page, 'for members only');

    const guest = await suite.newPerson();
    await guest.page.goto(`${suite.fleet.aux}/${room}`);
    await guest.page.getByText('This room is protected').waitFor();
    await guest.page.getByRole('textbox', { name: 'Nickname' }).fill('guest');
    await guest.page.getByLabel('Room password').fill('wrong');
    await guest.page.getByRole('button', { name: 'Join' }).click();
    await guest.page.getByText('That password is wrong').waitFor();
    assert.equal(await ui.messages(guest.page, 'for members only').count(), 0);
    await guest.page.getByLabel('Room password').fill('hunter2');
    await guest.page.getByRole('button', { name: 'Join' }).click();
    await waitConnected(guest.page);
    await ui.messages(guest.page, 'for members only').waitFor();
    suite.assertCleanPages();
  });

  test('home page: a taken name offers free ones; recent rooms are remembered', async () => {
    const room = uniqueRoom('taken');
    const visitor = await suite.joined(room, 'visitor', { permissions: ['clipboard-read', 'clipboard-write'] });
    await visitor.page.getByRole('button', { name: 'Copy link' }).click();
    await visitor.page.getByText('Link copied').waitFor();
    assert.equal(await visitor.page.evaluate(() => navigator.clipboard.readText()), `${suite.fleet.aux}/${room}`);

    await visitor.page.goto(`${suite.fleet.aux}/`);
    await visitor.page.getByText('Instant, anonymous chat rooms').waitFor();
    await visitor.page.getByRole('link', { name: room }).waitFor(); // recent rooms
    await visitor.page.getByRole('textbox', { name: 'Room name' }).fill(room);
    await visitor.page.getByRole('button', { name: 'Create new room' }).click();
    await visitor.page.getByText('already exists').waitFor();
    const free = visitor.page.getByRole('list', { name: 'Free room names' }).getByRole('button');
    assert.equal(await free.count(), 3);
    const pick = await free.first().textContent();
    await free.first().click();
    await visitor.page.waitForURL(`${suite.fleet.aux}/${encodeURIComponent(pick)}`);
    await waitConnected(visitor.page); // the nickname is remembered: no question
    assert.equal(await visitor.page.getByRole('heading', { level: 1 }).textContent(), pick);

    await visitor.page.goto(`${suite.fleet.aux}/`);
    await visitor.page.getByRole('textbox', { name: 'Room name' }).fill('no spaces please');
    await visitor.page.getByRole('button', { name: 'Open room' }).click();
    await visitor.page.getByRole('alert').filter({ hasText: 'no spaces' }).waitFor();
    suite.assertCleanPages();
  });

  test('no page raised a script error or opened a dialog', () => {
    suite.assertCleanPages();
  });
});
