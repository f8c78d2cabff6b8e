// Keyboard use and layouts, in real headless Chromium: the log is one Tab stop,
// no horizontal overflow on a phone or a desktop (with screenshots).
//
// People are separate browser contexts (own storage, own network switch); every
// control is found by its role and accessible name (docs/WEB.md lists them).
// Run: `npm test --prefix web-tests` after `npm ci --prefix web-tests` and building
// the `instantchat` binary (INSTANTCHAT_BIN overrides where it is).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, ARTIFACTS, saveScreenshot, send, ui, uniqueRoom } from './support.mjs';

const suite = browserSuite();

describe('web UI: keyboard and layouts', () => {
  test('keyboard: the log is one Tab stop, arrows pick a message, Tab reaches its buttons', async () => {
    const { room, people: [alice, bob] } = await suite.inRoom('keys', 'alice', 'bob');
    await send(bob.page, 'first from bob');
    await send(bob.page, 'second from bob');
    await ui.messages(alice.page, 'second from bob').waitFor();

    const page = alice.page;
    await ui.composer(page).focus();
    await page.keyboard.press('Shift+Tab'); // Draw
    await page.keyboard.press('Shift+Tab'); // past every message button, to the log
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('role')), 'log');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    assert.match(await page.evaluate(() => document.activeElement.textContent), /first from bob/);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Reply');
    await page.keyboard.press('Enter');
    await page.getByText('Replying to').waitFor();
    // The reply starts in the composer: type and send without touching the mouse.
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Message');
    await page.keyboard.type('answered by keyboard');
    await page.keyboard.press('Enter');
    const reply = ui.messages(bob.page, 'answered by keyboard');
    await reply.waitFor();
    assert.match(await reply.textContent(), /bob: first from bob/);
    suite.assertCleanPages();
  });

  test('phone and desktop layouts: no horizontal overflow; screenshots', async () => {
    const room = uniqueRoom('layout');
    const phone = await suite.newPerson({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const desktop = await suite.newPerson({ viewport: { width: 1280, height: 800 } });
    const dark = await suite.newPerson({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
    await suite.join(desktop, room, 'desktop-dana');
    await suite.join(phone, room, 'phone-pat');
    await suite.join(dark, room, 'night-owl');
    await send(desktop.page, 'Hi from a wide screen! https://example.com/a/very/long/link/that/should/wrap/rather/than/overflow/the/layout');
    await send(phone.page, 'And hello from a phone 👋');
    await send(phone.page, 'Averyveryveryveryveryveryveryveryveryveryveryveryverylongwordwithoutanyspaces');
    await send(dark.page, 'Dark mode here.');
    await ui.messages(phone.page, 'Dark mode here.').waitFor();
    await ui.composer(phone.page).fill('A draft that stays…');

    const noOverflow = (page) => page.evaluate(() => document.documentElement.scrollWidth <= innerWidth);
    for (const p of [phone, desktop, dark]) {
      await ui.messages(p.page, 'Dark mode here.').waitFor();
      assert.ok(await noOverflow(p.page), 'no horizontal overflow');
    }
    await saveScreenshot(phone.page, 'room-phone-390x844.png');
    await saveScreenshot(desktop.page, 'room-desktop-1280x800.png');
    await saveScreenshot(dark.page, 'room-desktop-dark.png');

    // The members list opens over the chat on a phone.
    await phone.page.getByRole('button', { name: /Members/ }).click();
    await ui.members(phone.page).filter({ hasText: 'night-owl' }).waitFor();
    assert.ok(await noOverflow(phone.page));
    await saveScreenshot(phone.page, 'room-phone-members.png');

    await phone.page.getByRole('button', { name: /Members/ }).click();
    await phone.page.getByRole('button', { name: 'Draw' }).click();
    await phone.page.getByLabel('Drawing area').waitFor();
    assert.ok(await noOverflow(phone.page));
    await saveScreenshot(phone.page, 'draw-phone.png');

    await phone.page.goto(`${suite.fleet.aux}/`);
    await phone.page.getByRole('textbox', { name: 'Room name' }).waitFor();
    assert.ok(await noOverflow(phone.page));
    await saveScreenshot(phone.page, 'home-phone.png');
    await desktop.page.goto(`${suite.fleet.aux}/`);
    await saveScreenshot(desktop.page, 'home-desktop.png');
    console.log(`screenshots in ${ARTIFACTS}`);
    suite.assertCleanPages();
  });
});
