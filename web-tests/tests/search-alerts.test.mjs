// End-to-end, in headless Chromium against the real fleet: searching the
// log, exporting it as text, the unread count in the tab title, and the
// notification settings kept by the browser. Controls are found by role and
// accessible name ("Search messages", "Export", "Notifications", …).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  browserSuite, eventually, expectMessageCount, send, ui, uniqueRoom,
} from './support.mjs';

const suite = browserSuite();

/** Makes the page believe its tab went to the background (or came back), as
 * the browser reports it: `visibilityState`, `hasFocus()` and their events. */
async function setTabHidden(page, hidden) {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
    document.hasFocus = () => !hidden;
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event(hidden ? 'blur' : 'focus'));
  }, hidden);
}

describe('web UI: search, export, alerts', () => {
  test('search narrows the log to matching messages; clearing it brings all back', async () => {
    const { room, people: [alice, bob] } = await suite.inRoom('search', 'alice', 'bob');
    const carol = await suite.joined(room, 'carol');
    await bob.page.getByText('carol joined').waitFor();
    const texts = ['apple pie for dinner', 'banana split', 'an Apple tart, please', 'cherry on top'];
    for (const text of texts) await send(alice.page, text);
    await send(bob.page, 'bob likes plums');
    await expectMessageCount(bob.page, /./, texts.length + 1);

    const search = bob.page.getByRole('searchbox', { name: 'Search messages' });
    await search.fill('apple');
    await eventually(async () => (await ui.messages(bob.page).count()) === 2, 'two apple messages');
    assert.deepEqual(await ui.messages(bob.page).locator('.text').allTextContents(),
      ['apple pie for dinner', 'an Apple tart, please'], 'case-insensitive, oldest first');
    await bob.page.getByText('2 messages match').waitFor();

    // Every word must match, in the text or the sender's nick.
    await search.fill('alice tart');
    await eventually(async () => (await ui.messages(bob.page).count()) === 1, 'one message by alice with "tart"');
    await search.fill('bob plums');
    await eventually(async () => (await ui.messages(bob.page).locator('.text').allTextContents()).join() === 'bob likes plums', 'by nick');
    await search.fill('durian');
    await bob.page.getByText('No messages match').waitFor();
    assert.equal(await ui.messages(bob.page).count(), 0);
    assert.equal(await bob.page.getByText('carol joined').isVisible(), false, 'notes are not search results');

    // A message arriving during a search shows if it matches.
    await search.fill('cherry');
    await eventually(async () => (await ui.messages(bob.page).count()) === 1, 'one cherry');
    await send(alice.page, 'more cherry please');
    await eventually(async () => (await ui.messages(bob.page).count()) === 2, 'the new cherry joins the results');

    await search.fill('');
    await expectMessageCount(bob.page, /./, texts.length + 2);
    await bob.page.getByText('carol joined').waitFor({ timeout: 1000 }); // the log's notes are kept
    assert.equal(await bob.page.getByText(/messages? match/).count(), 0, 'no search status left');
    suite.assertCleanPages();
  });

  test('Export downloads the room as text: [time] nick: text, drawings as their URLs', async () => {
    const { room, people: [alice] } = await suite.inRoom('export', 'alice');
    await send(alice.page, 'first line of the day');
    await alice.page.getByRole('textbox', { name: 'Message' }).fill('two\nlines');
    await alice.page.getByRole('button', { name: 'Send' }).click();
    // A drawing, through the page's own upload to file-srv.
    await alice.page.getByRole('button', { name: 'Draw' }).click();
    const canvas = alice.page.getByLabel('Drawing area');
    const box = await canvas.boundingBox();
    await alice.page.mouse.move(box.x + 50, box.y + 50);
    await alice.page.mouse.down();
    await alice.page.mouse.move(box.x + 200, box.y + 150);
    await alice.page.mouse.up();
    await alice.page.getByRole('button', { name: 'Send drawing' }).click();
    const image = ui.messages(alice.page).getByRole('img', { name: 'Drawing by alice' });
    await image.waitFor();
    const drawingUrl = await image.getAttribute('src');

    const [download] = await Promise.all([
      alice.page.waitForEvent('download'),
      alice.page.getByRole('button', { name: 'Export' }).click(),
    ]);
    assert.match(download.suggestedFilename(), new RegExp(`^${room}-\\d{4}-\\d\\d-\\d\\d-\\d{4}\\.txt$`));
    const text = await readFile(await download.path(), 'utf8');
    const lines = text.trimEnd().split('\n');
    const stamp = String.raw`\[\d{4}-\d\d-\d\d \d\d:\d\d\]`;
    assert.equal(lines.length, 4, text);
    assert.match(lines[0], new RegExp(`^${stamp} alice: first line of the day$`));
    assert.match(lines[1], new RegExp(`^${stamp} alice: two$`));
    assert.equal(lines[2], '  lines');
    assert.match(lines[3], new RegExp(`^${stamp} alice: ${drawingUrl.replace(/[.]/g, '\\.')}$`));
    assert.ok(drawingUrl.startsWith(`${suite.fleet.files}/files/`), drawingUrl);
    suite.assertCleanPages();
  });

  test('unread messages show in the title while the tab is hidden', async () => {
    const { room, people: [alice, bob] } = await suite.inRoom('unread', 'alice', 'bob');
    assert.equal(await bob.page.title(), `${room} — instantchat`);

    await setTabHidden(bob.page, true);
    await send(alice.page, 'are you there?');
    await send(alice.page, 'hello?');
    await eventually(async () => (await bob.page.title()) === `(2) ${room} — instantchat`, 'two unread in the title');
    // Bob's own messages are not unread to him.
    await send(bob.page, 'my own words');
    await ui.messages(alice.page, 'my own words').waitFor();
    await ui.messages(bob.page, 'my own words').waitFor();
    assert.equal(await bob.page.title(), `(2) ${room} — instantchat`);
    await setTabHidden(bob.page, false);
    await eventually(async () => (await bob.page.title()) === `${room} — instantchat`, 'the count goes when the tab is back');
    await send(alice.page, 'seen live');
    await ui.messages(bob.page, 'seen live').waitFor();
    assert.equal(await bob.page.title(), `${room} — instantchat`, 'no count while looking');
    suite.assertCleanPages();
  });

  test('notification settings are kept by the browser; a mention notifies when hidden', async () => {
    const room = uniqueRoom('notify');
    const alice = await suite.newPerson();
    const bob = await suite.newPerson();
    await bob.context.grantPermissions(['notifications'], { origin: suite.fleet.aux });
    // Record the notifications the page shows (the real ones are still shown).
    await bob.context.addInitScript(() => {
      const Real = window.Notification;
      window.shownNotifications = [];
      window.Notification = class extends Real {
        constructor(title, options) {
          super(title, options);
          window.shownNotifications.push({ title, body: options?.body });
        }
      };
    });
    await suite.join(alice, room, 'alice');
    await suite.join(bob, room, 'bob');

    const toggle = bob.page.getByRole('button', { name: 'Notifications' });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    const settings = bob.page.getByRole('group', { name: 'Notification settings' });
    const notify = settings.getByRole('checkbox', { name: 'Show a desktop notification' });
    const sound = settings.getByRole('checkbox', { name: 'Play a sound' });
    assert.equal(await notify.isChecked(), false, 'off until asked for');
    await notify.check();
    await sound.check();

    await bob.page.reload();
    await bob.page.getByRole('status', { name: 'Connection' }).filter({ hasText: /^Connected$/ }).waitFor();
    await bob.page.getByRole('button', { name: 'Notifications' }).click();
    assert.equal(await notify.isChecked(), true, 'notifications kept after a reload');
    assert.equal(await sound.isChecked(), true, 'sound kept after a reload');

    await setTabHidden(bob.page, true);
    await send(alice.page, 'no mention here');
    await send(alice.page, 'hey bob, look at this');
    await eventually(() => bob.page.evaluate(() => window.shownNotifications.length === 1), 'one notification');
    assert.deepEqual(await bob.page.evaluate(() => window.shownNotifications),
      [{ title: `alice in ${room}`, body: 'hey bob, look at this' }]);

    // Turned off, it stays off.
    await setTabHidden(bob.page, false);
    await sound.uncheck();
    await notify.uncheck();
    await bob.page.reload();
    await bob.page.getByRole('button', { name: 'Notifications' }).click();
    assert.equal(await notify.isChecked(), false);
    assert.equal(await sound.isChecked(), false);
    suite.assertCleanPages();
  });
});
