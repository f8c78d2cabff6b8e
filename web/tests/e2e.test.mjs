// End-to-end: real headless Chromium against the real local fleet. People
// are separate browser contexts (own storage, own network switch); every
// control is found by its role and accessible name, as CONTRACT.md lists them.
//
// Run: node --test web/tests/   (after `npm ci --prefix web` and building
// the `instantchat` binary; INSTANTCHAT_BIN overrides where it is).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ARTIFACTS, eventually, expectMessageCount, joinRoom, launchBrowser, person, saveScreenshot,
  send, startFleet, ui, uniqueRoom, waitConnected,
} from './support.mjs';

let fleet;
let browser;
const people = [];

async function newPerson(options) {
  const p = await person(browser, options);
  people.push(p);
  return p;
}

/** No uncaught script error and no alert() on any page so far. */
function assertCleanPages() {
  for (const p of people) {
    assert.deepEqual(p.problems, [], 'uncaught errors in a page');
    assert.deepEqual(p.dialogs, [], 'a page opened a dialog (alert/confirm)');
  }
}

before(async () => {
  [fleet, browser] = await Promise.all([startFleet(), launchBrowser()]);
});

after(async () => {
  await Promise.all(people.map((p) => p.context.close().catch(() => {})));
  await browser?.close();
  await fleet?.stop();
});

describe('web UI', () => {
  test('two people chat by URL: nicks, typing, membership, replies, edits, deletes', async () => {
    const room = uniqueRoom('chat');
    const alice = await newPerson();
    const bob = await newPerson();

    // Alice opens a new room by its address; the nickname dialog offers a
    // password because she is creating it.
    await alice.page.goto(`${fleet.aux}/${room}`);
    await alice.page.getByText('This room is new').waitFor();
    await alice.page.getByRole('textbox', { name: 'Nickname' }).fill('alice');
    await alice.page.getByRole('button', { name: 'Join' }).click();
    await waitConnected(alice.page);
    assert.equal(await alice.page.getByRole('heading', { level: 1 }).textContent(), room);

    await joinRoom(bob.page, fleet.aux, room, 'bob');
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
    const mine = ui.messages(alice.page, 'hello wrold');
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit' }).click();
    const editor = alice.page.getByRole('textbox', { name: 'Edit message' });
    await editor.fill('hello world');
    await editor.press('Enter');
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
    people.splice(people.indexOf(bob), 1);
    await eventually(async () => (await ui.members(alice.page).filter({ hasText: 'bob' }).count()) === 0, 'bob left');
    assertCleanPages();
  });

  test('what members type is text, never HTML', async () => {
    const room = uniqueRoom('xss');
    const alice = await newPerson();
    const mallory = await newPerson();
    await joinRoom(alice.page, fleet.aux, room, 'alice');
    const evilNick = '<img src=y onerror=alert(2)>';
    await joinRoom(mallory.page, fleet.aux, room, evilNick);

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
    assertCleanPages();
  });

  test('a drawing is uploaded to file-srv and shown to the other member', async () => {
    const room = uniqueRoom('draw');
    const alice = await newPerson();
    const bob = await newPerson();
    await joinRoom(alice.page, fleet.aux, room, 'alice');
    await joinRoom(bob.page, fleet.aux, room, 'bob');

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
    assert.ok(src.startsWith(`${fleet.files}/files/`) && src.endsWith('.png'), `served by file-srv: ${src}`);
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
    assertCleanPages();
  });

  test('after the network drops and returns, every message shows exactly once', async () => {
    const room = uniqueRoom('drop');
    const alice = await newPerson();
    const bob = await newPerson();
    await joinRoom(alice.page, fleet.aux, room, 'alice');
    await joinRoom(bob.page, fleet.aux, room, 'bob');
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
    for (const text of [...missed, 'before the drop', 'after the drop', 'written offline']) {
      await expectMessageCount(alice.page, text, 1);
      await expectMessageCount(bob.page, text, 1);
    }
    assert.equal(await ui.messages(alice.page).count(), await ui.messages(bob.page).count(), 'both see the same messages');
    const seqs = await ui.messages(alice.page).evaluateAll((nodes) => nodes.map((n) => Number(n.dataset.seq)));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in order');
    assert.equal(new Set(seqs).size, seqs.length, 'no seq twice');
    assert.equal(await ui.composer(alice.page).inputValue(), 'an unsent draft', 'the draft survived');
    assertCleanPages();
  });

  test('older history appears when scrolling up', async () => {
    const room = uniqueRoom('history');
    const bot = await newPerson();
    // A room page (whose CSP lets scripts open websockets) left at its nickname question.
    await bot.page.goto(`${fleet.aux}/${room}`);
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

    const reader = await newPerson();
    await joinRoom(reader.page, fleet.aux, room, 'reader');
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
    assertCleanPages();
  });

  test('quick bursts are paced: every message arrives once, in order', async () => {
    const room = uniqueRoom('burst');
    const alice = await newPerson();
    const bob = await newPerson();
    await joinRoom(alice.page, fleet.aux, room, 'alice');
    await joinRoom(bob.page, fleet.aux, room, 'bob');
    const n = 30; // more than the server's burst of 20 frames
    for (let i = 1; i <= n; i++) await send(alice.page, `burst ${i}.`);
    await ui.messages(bob.page, `burst ${n}.`).waitFor();
    const texts = await ui.messages(bob.page).locator('.text').allTextContents();
    assert.deepEqual(texts, Array.from({ length: n }, (_, i) => `burst ${i + 1}.`));
    assert.equal(await alice.page.getByText('going too fast').count(), 0, 'no rate_limited from the server');
    assertCleanPages();
  });

  test('limits and refusals are shown in words', async () => {
    const room = uniqueRoom('limits');
    const alice = await newPerson();
    await joinRoom(alice.page, fleet.aux, room, 'alice');
    const counter = alice.page.getByText('0 / 4000');
    await counter.waitFor();
    await ui.composer(alice.page).fill('x'.repeat(4001));
    await alice.page.getByText('4001 / 4000').waitFor();
    assert.equal(await alice.page.getByRole('button', { name: 'Send' }).isDisabled(), true);

    // The composer keeps to the limit, but an edit can ask for more: the
    // server's error frame comes back and is shown in words.
    await send(alice.page, 'short');
    await ui.composer(alice.page).fill('');
    const mine = ui.messages(alice.page, 'short');
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit' }).click();
    await alice.page.getByRole('textbox', { name: 'Edit message' }).fill('y'.repeat(4001));
    await alice.page.getByRole('button', { name: 'Save' }).click();
    await alice.page.getByRole('alert').filter({ hasText: 'That message is too long: at most 4000 characters.' }).waitFor();
    assertCleanPages();
  });

  test('keyboard: the log is one Tab stop, arrows pick a message, Tab reaches its buttons', async () => {
    const room = uniqueRoom('keys');
    const alice = await newPerson();
    const bob = await newPerson();
    await joinRoom(alice.page, fleet.aux, room, 'alice');
    await joinRoom(bob.page, fleet.aux, room, 'bob');
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
    assertCleanPages();
  });

  test('operators: an announcement shows; a deleted room says so and can be opened again', async () => {
    const room = uniqueRoom('ops');
    const alice = await newPerson();
    await joinRoom(alice.page, fleet.aux, room, 'alice');
    await send(alice.page, 'soon gone');
    await ui.messages(alice.page, 'soon gone').waitFor();

    const announced = await fleet.admin('POST', '/admin/announce', { text: 'Maintenance at noon' });
    assert.equal(announced.status, 200);
    await ui.log(alice.page).getByText('Announcement: Maintenance at noon').waitFor();

    const deleted = await fleet.admin('DELETE', `/admin/rooms/${room}`);
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
    assertCleanPages();
  });

  test('a password-protected room asks for its password', async () => {
    const room = uniqueRoom('secret');
    const owner = await newPerson();
    await owner.page.goto(`${fleet.aux}/`);
    await owner.page.getByRole('textbox', { name: 'Room name' }).fill(room);
    await owner.page.getByText('Protect a new room with a password').click();
    await owner.page.getByLabel('Password (optional)').fill('hunter2');
    await owner.page.getByRole('button', { name: 'Create new room' }).click();
    await owner.page.waitForURL(`${fleet.aux}/${room}`);
    await owner.page.getByRole('textbox', { name: 'Nickname' }).fill('owner');
    await owner.page.getByRole('button', { name: 'Join' }).click();
    await waitConnected(owner.page);
    await send(owner.page, 'for members only');

    const guest = await newPerson();
    await guest.page.goto(`${fleet.aux}/${room}`);
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
    assertCleanPages();
  });

  test('home page: a taken name offers free ones; recent rooms are remembered', async () => {
    const room = uniqueRoom('taken');
    const visitor = await newPerson({ permissions: ['clipboard-read', 'clipboard-write'] });
    await joinRoom(visitor.page, fleet.aux, room, 'visitor');
    await visitor.page.getByRole('button', { name: 'Copy link' }).click();
    await visitor.page.getByText('Link copied').waitFor();
    assert.equal(await visitor.page.evaluate(() => navigator.clipboard.readText()), `${fleet.aux}/${room}`);

    await visitor.page.goto(`${fleet.aux}/`);
    await visitor.page.getByText('Instant, anonymous chat rooms').waitFor();
    await visitor.page.getByRole('link', { name: room }).waitFor(); // recent rooms
    await visitor.page.getByRole('textbox', { name: 'Room name' }).fill(room);
    await visitor.page.getByRole('button', { name: 'Create new room' }).click();
    await visitor.page.getByText('already exists').waitFor();
    const free = visitor.page.getByRole('list', { name: 'Free room names' }).getByRole('button');
    assert.equal(await free.count(), 3);
    const pick = await free.first().textContent();
    await free.first().click();
    await visitor.page.waitForURL(`${fleet.aux}/${encodeURIComponent(pick)}`);
    await waitConnected(visitor.page); // the nickname is remembered: no question
    assert.equal(await visitor.page.getByRole('heading', { level: 1 }).textContent(), pick);

    await visitor.page.goto(`${fleet.aux}/`);
    await visitor.page.getByRole('textbox', { name: 'Room name' }).fill('no spaces please');
    await visitor.page.getByRole('button', { name: 'Open room' }).click();
    await visitor.page.getByRole('alert').filter({ hasText: 'no spaces' }).waitFor();
    assertCleanPages();
  });

  test('a server shutting down is announced, and the page keeps trying', async () => {
    const doomed = await startFleet(); // a fleet of its own, to stop
    try {
      const alice = await newPerson();
      await joinRoom(alice.page, doomed.aux, uniqueRoom('shutdown'), 'alice');
      await doomed.stop();
      await alice.page.getByRole('alert').filter({ hasText: 'The server is restarting' }).waitFor();
      await ui.connection(alice.page).filter({ hasText: /Reconnecting|Connecting/ }).waitFor();
      assertCleanPages();
    } finally {
      await doomed.stop();
    }
  });

  test('phone and desktop layouts: no horizontal overflow; screenshots', async () => {
    const room = uniqueRoom('layout');
    const phone = await newPerson({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const desktop = await newPerson({ viewport: { width: 1280, height: 800 } });
    const dark = await newPerson({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
    await joinRoom(desktop.page, fleet.aux, room, 'desktop-dana');
    await joinRoom(phone.page, fleet.aux, room, 'phone-pat');
    await joinRoom(dark.page, fleet.aux, room, 'night-owl');
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

    await phone.page.goto(`${fleet.aux}/`);
    await phone.page.getByRole('textbox', { name: 'Room name' }).waitFor();
    assert.ok(await noOverflow(phone.page));
    await saveScreenshot(phone.page, 'home-phone.png');
    await desktop.page.goto(`${fleet.aux}/`);
    await saveScreenshot(desktop.page, 'home-desktop.png');
    console.log(`screenshots in ${ARTIFACTS}`);
    assertCleanPages();
  });
});

