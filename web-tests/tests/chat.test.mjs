// Two people in real headless Chromium chat by URL: messages, replies, edits,
// deletes, typing, what members type staying text, and drawings.
//
// People are separate browser contexts (own storage, own network switch); every
// control is found by its role and accessible name (docs/WEB.md lists them).
// Run: `npm test --prefix web-tests` after `npm ci --prefix web-tests` and building
// the `instantchat` binary (INSTANTCHAT_BIN overrides where it is).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, editMessage, eventually, saveScreenshot, send, ui, uniqueRoom, waitConnected } from './support.mjs';

const suite = browserSuite();

describe('web UI: chatting: messages, text safety, drawings', () => {
  test('two people chat by URL: nicks, typing, membership, replies, edits, deletes', async () => {
    const room = uniqueRoom('chat');
    const alice = await suite.newPerson();

    // Alice opens a new room by its address; the nickname dialog offers a
    // password because she is creating it.
    await alice.page.goto(`${suite.fleet.aux}/${room}`);
    await alice.page.getByText('This room is new').waitFor();
    await alice.page.getByRole('textbox', { name: 'Nickname' }).fill('alice');
    await alice.page.getByRole('button', { name: 'Join' }).click();
    await waitConnected(alice.page);
    assert.equal(await alice.page.getByRole('heading', { level: 1 }).textContent(), room);

    const bob = await suite.joined(room, 'bob');
    await ui.members(alice.page).filter({ hasText: 'bob' }).waitFor();
    await ui.members(bob.page).filter({ hasText: 'alice' }).waitFor();
    assert.equal(await ui.members(bob.page).count(), 2);

    // Typing shows on the other side.
    await ui.composer(alice.page).pressSequentially('hello wrold');
    await ui.typing(bob.page).filter({ hasText: 'alice is typing' }).waitFor();
    await ui.composer(alice.page).press('Enter');
    const onBob = ui.messages(bob.page, 'hello wrold');
    await onBob.waitFor();
    assert.match(await onBob.textContent(), /alice/, 'the message shows its sender');
    assert.equal(await ui.composer(alice.page).inputValue(), '', 'Enter sent and emptied the composer');
    await eventually(async () => (await ui.typing(bob.page).textContent()) === '', 'typing cleared by the message');

    // Shift+Enter is a newline, not a send.
    await ui.composer(bob.page).pressSequentially('line one');
    await ui.composer(bob.page).press('Shift+Enter');
    await ui.composer(bob.page).pressSequentially('line two');
    assert.equal(await ui.composer(bob.page).inputValue(), 'line one\nline two');
    await bob.page.getByRole('button', { name: 'Send' }).click();
    await ui.messages(alice.page, 'line two').waitFor();
    assert.equal(await ui.messages(alice.page, 'line two').locator('.text').innerText(), 'line one\nline two');

    // Alice fixes her typo; Bob sees the edit.
    await editMessage(alice.page, 'hello wrold', 'hello world');
    await ui.messages(bob.page, 'hello world').filter({ hasText: '(edited)' }).waitFor();
    assert.equal(await ui.messages(bob.page, 'hello world').getByRole('button', { name: 'Edit' }).count(), 0,
      'no edit button on others\' messages');

    // Bob replies to it; the reply quotes the original.
    const original = ui.messages(bob.page, 'hello world');
    await original.hover();
    await original.getByRole('button', { name: 'Reply' }).click();
    await bob.page.getByText('Replying to').waitFor();
    await send(bob.page, 'welcome!');
    const reply = ui.messages(alice.page, 'welcome!');
    await reply.waitFor();
    assert.match(await reply.getByRole('button').first().textContent(), /alice: hello world/);

    // Alice deletes her message (two clicks: delete, confirm).
    const toDelete = ui.messages(alice.page, 'hello world').first(); // the reply quotes it too
    await toDelete.hover();
    await toDelete.getByRole('button', { name: 'Delete' }).click();
    await toDelete.getByRole('button', { name: 'Confirm delete' }).click();
    await ui.messages(bob.page, 'This message was deleted.').waitFor();

    // A new nickname reaches the other member's list.
    await alice.page.getByRole('button', { name: 'Change nickname' }).click();
    await alice.page.getByRole('textbox', { name: 'Nickname' }).fill('alicia');
    await alice.page.getByRole('button', { name: 'Save' }).click();
    await ui.members(bob.page).filter({ hasText: 'alicia' }).waitFor();

    // The nickname is remembered: a reload joins without asking.
    await alice.page.reload();
    await waitConnected(alice.page);
    assert.equal(await alice.page.getByRole('textbox', { name: 'Nickname' }).isVisible(), false);
    await ui.members(alice.page).filter({ hasText: 'alicia' }).waitFor();

    // Leaving shows up in the list.
    await bob.context.close();
    suite.people.splice(suite.people.indexOf(bob), 1);
    await eventually(async () => (await ui.members(alice.page).filter({ hasText: 'bob' }).count()) === 0, 'bob left');
    suite.assertCleanPages();
  });

  test('what members type is text, never HTML', async () => {
    const evilNick = '<img src=y onerror=alert(2)>';
    const { people: [alice, mallory] } = await suite.inRoom('xss', 'alice', evilNick);

    const evil = '<img src=x onerror=alert(1)>';
    await send(mallory.page, evil);
    await send(mallory.page, '<script>alert(3)</script><b>bold?</b>');
    const shown = ui.messages(alice.page, evil);
    await shown.waitFor();
    await ui.messages(alice.page, '<b>bold?</b>').waitFor();
    assert.equal(await shown.locator('.text').textContent(), evil);
    assert.equal(await ui.log(alice.page).locator('img, script, b').count(), 0, 'no element came from message text');
    await ui.members(alice.page).filter({ hasText: evilNick }).waitFor();
    assert.equal(await alice.page.getByRole('list', { name: 'Members' }).locator('img').count(), 0);
    assert.match(await shown.textContent(), /<img src=y onerror=alert\(2\)>/, 'the nick shows as text');
    suite.assertCleanPages();
  });

  test('a drawing is uploaded to file-srv and shown to the other member', async () => {
    const { room, people: [alice, bob] } = await suite.inRoom('draw', 'alice', 'bob');

    await alice.page.getByRole('button', { name: 'Draw' }).click();
    const canvas = alice.page.getByLabel('Drawing area');
    await canvas.waitFor();
    await alice.page.getByRole('radio', { name: 'Red' }).check();
    const box = await canvas.boundingBox();
    await alice.page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.3);
    await alice.page.mouse.down();
    for (let i = 1; i <= 12; i++) {
      await alice.page.mouse.move(box.x + box.width * (0.2 + i * 0.05), box.y + box.height * (0.3 + (i % 2) * 0.3));
    }
    await alice.page.mouse.up();
    await alice.page.getByRole('button', { name: 'Send drawing' }).click();
    await canvas.waitFor({ state: 'hidden' });

    const image = ui.messages(bob.page).getByRole('img', { name: 'Drawing by alice' });
    await image.waitFor();
    const src = await image.getAttribute('src');
    assert.ok(src.startsWith(`${suite.fleet.files}/files/`) && src.endsWith('.png'), `served by file-srv: ${src}`);
    await eventually(() => image.evaluate((img) => img.complete && img.naturalWidth === 800), 'the image loaded');
    const png = await fetch(src);
    assert.equal(png.status, 200);
    assert.equal(png.headers.get('content-type'), 'image/png');
    // Some pixels are red: the drawing is what Alice drew, not a blank sheet.
    // (Read through a CORS fetch: an <img> from another origin cannot be read back.)
    const reds = await bob.page.evaluate(async (url) => {
      const bitmap = await createImageBitmap(await (await fetch(url)).blob());
      const c = new OffscreenCanvas(bitmap.width, bitmap.height);
      const ctx = c.getContext('2d');
      ctx.drawImage(bitmap, 0, 0);
      const data = ctx.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] > 180 && data[i + 1] < 90 && data[i + 2] < 110) n++;
      return n;
    }, src);
    assert.ok(reds > 100, `the drawing has red strokes (${reds} red pixels)`);

    await saveScreenshot(bob.page, 'room-drawing-desktop.png');

    // It opens full size.
    await image.click();
    const full = bob.page.getByRole('dialog', { name: 'Drawing, full size' });
    await full.waitFor();
    await full.getByRole('button', { name: 'Close' }).click();
    await full.waitFor({ state: 'hidden' });
    suite.assertCleanPages();
  });

  test('no page raised a script error or opened a dialog', () => {
    suite.assertCleanPages();
  });
});
