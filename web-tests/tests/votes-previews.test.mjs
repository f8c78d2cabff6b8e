// End-to-end, in headless Chromium against the real fleet: votes reach the
// other person ("Upvote"/"Downvote" buttons, their counts, aria-pressed),
// the "Top messages" region lists the voted message and jumps to it; and a
// link gets its preview card, whose image comes from file-srv while the
// browser loads nothing from the linked site (a site on loopback that
// records who asked it for what; the fleet lets file-srv reach it).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { browserSuite, eventually, expectMessageCount, saveScreenshot, send, ui, uniqueRoom } from './support.mjs';

// A 40×20 red PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAACgAAAAUCAIAAABwJOjsAAAAJElEQVR4nGM4ISc3IIhh1OJRi0ctHrV41OJRi0ctHrV45FgMAFLhLK5mrmiuAAAAAElFTkSuQmCC', 'base64');
const PAGE = `<!doctype html><html><head><title>Release notes</title>
<meta name="description" content="What changed in this release.">
<meta property="og:image" content="/picture.png"></head><body>hello</body></html>`;

/** The linked site: every request it gets, with its user agent. */
const site = { requests: [] };
const server = createServer((req, res) => {
  site.requests.push({ url: req.url, agent: req.headers['user-agent'] || '' });
  if (req.url === '/picture.png') {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
    res.end(PNG);
  } else {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  }
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
site.port = server.address().port;
server.unref();

const suite = browserSuite({ fleetArgs: ['--preview-private-port', String(site.port)] });

/** The vote bar of the message holding `text`: its buttons and its counts. */
function votesOf(page, text) {
  const message = ui.messages(page, text);
  return {
    up: message.getByRole('button', { name: 'Upvote' }),
    down: message.getByRole('button', { name: 'Downvote' }),
    counts: async () => (await message.locator('.vote-count').allTextContents()).join('/'),
  };
}

describe('web UI: votes, top messages, link previews', () => {
  test('two people vote; counts reach both; "Top messages" lists and reveals the voted message', async () => {
    const { room, people: [alice, bob] } = await suite.inRoom('votes', 'alice', 'bob');
    const texts = ['first, not voted', 'the best idea', 'a fine idea'];
    for (const text of texts) await send(alice.page, text);
    for (let i = 0; i < 30; i++) await send(bob.page, `filler ${i}`);
    await expectMessageCount(alice.page, /filler 29/, 1);
    await expectMessageCount(bob.page, /filler 29/, 1);

    const top = (page) => page.getByRole('region', { name: 'Top messages' });
    assert.equal(await top(bob.page).getByRole('listitem').count(), 0);
    await top(bob.page).getByText('No up-voted messages yet.').waitFor();

    // Both up-vote "the best idea"; bob up-votes "a fine idea" too.
    const best = { alice: votesOf(alice.page, 'the best idea'), bob: votesOf(bob.page, 'the best idea') };
    await best.bob.up.click();
    await eventually(async () => (await best.alice.counts()) === '1/0', 'alice sees bob\'s up-vote');
    assert.equal(await best.bob.up.getAttribute('aria-pressed'), 'true');
    assert.equal(await best.alice.up.getAttribute('aria-pressed'), 'false', 'alice did not vote');
    await best.alice.up.click();
    await eventually(async () => (await best.bob.counts()) === '2/0', 'bob sees two up-votes');
    const fine = votesOf(bob.page, 'a fine idea');
    await fine.up.click();
    await eventually(async () => (await votesOf(alice.page, 'a fine idea').counts()) === '1/0', 'a fine idea: 1 up');

    // The region lists the most up-voted first, on both pages.
    for (const page of [alice.page, bob.page]) {
      const entries = top(page).getByRole('listitem');
      await eventually(async () => (await entries.count()) === 2, 'two top messages');
      assert.match(await entries.nth(0).textContent(), /▲ 2 alice: the best idea/);
      assert.match(await entries.nth(1).textContent(), /▲ 1 alice: a fine idea/);
    }

    // Changing a vote: bob turns his up-vote into a down-vote, then takes it back.
    await fine.down.click();
    await eventually(async () => (await votesOf(alice.page, 'a fine idea').counts()) === '0/1', 'changed to down');
    assert.equal(await fine.up.getAttribute('aria-pressed'), 'false');
    assert.equal(await fine.down.getAttribute('aria-pressed'), 'true');
    await eventually(async () => (await top(alice.page).getByRole('listitem').count()) === 1, 'no longer on top');
    await fine.down.click();
    await eventually(async () => (await votesOf(alice.page, 'a fine idea').counts()) === '0/0', 'taken back');
    assert.equal(await fine.down.getAttribute('aria-pressed'), 'false');

    // A click on the entry scrolls the (far up) message into view.
    const target = ui.messages(alice.page, 'the best idea');
    await ui.log(alice.page).evaluate((log) => { log.scrollTop = log.scrollHeight; });
    await top(alice.page).getByRole('button', { name: /the best idea/ }).click();
    await eventually(async () => {
      const [box, view] = await Promise.all([target.boundingBox(), ui.log(alice.page).boundingBox()]);
      return box && box.y >= view.y && box.y + box.height <= view.y + view.height;
    }, 'the message scrolled into view');

    // Someone joining later sees the counts.
    const carol = await suite.joined(room, 'carol');
    await eventually(async () => (await votesOf(carol.page, 'the best idea').counts()) === '2/0', 'carol sees 2 up');
    await top(carol.page).getByRole('button', { name: /the best idea/ }).waitFor();
    await saveScreenshot(alice.page, 'room-votes-desktop.png');
    suite.assertCleanPages();
  });

  test('a link gets a preview card; the image comes from file-srv, nothing from the site', async () => {
    const room = uniqueRoom('preview');
    const alice = await suite.newPerson();
    const bob = await suite.newPerson();
    const fromSite = [];
    for (const p of [alice, bob]) {
      p.page.on('request', (r) => {
        if (new URL(r.url()).port === String(site.port)) fromSite.push(r.url());
      });
    }
    await suite.join(alice, room, 'alice');
    await suite.join(bob, room, 'bob');
    const link = `http://127.0.0.1:${site.port}/notes`;
    await send(alice.page, `read ${link} please`);

    for (const p of [alice, bob]) {
      const card = ui.messages(p.page, 'please').getByRole('group', { name: 'Link preview: Release notes' });
      await card.waitFor();
      const title = card.getByRole('link', { name: 'Release notes' });
      assert.equal(await title.getAttribute('href'), link);
      assert.equal(await title.getAttribute('target'), '_blank');
      assert.equal(await title.getAttribute('rel'), 'noopener noreferrer nofollow');
      await card.getByText('What changed in this release.').waitFor();
      const image = card.locator('img');
      const src = await image.getAttribute('src');
      assert.ok(src.startsWith(`${suite.fleet.files}/`), `image from file-srv: ${src}`);
      await eventually(() => image.evaluate((img) => img.complete && img.naturalWidth > 0), 'the image loaded');
    }
    // A late joiner gets the card from the welcome.
    const carol = await suite.joined(room, 'carol');
    await ui.messages(carol.page, 'please').getByRole('group', { name: 'Link preview: Release notes' }).waitFor();
    await saveScreenshot(carol.page, 'room-preview-desktop.png');

    // The site was asked by file-srv only (the page and its picture), never by a browser.
    assert.deepEqual(fromSite, [], 'the browser loaded nothing from the linked site');
    assert.ok(site.requests.some((r) => r.url === '/notes'), 'file-srv fetched the page');
    assert.ok(site.requests.every((r) => !/Chrome/.test(r.agent)), JSON.stringify(site.requests));
    suite.assertCleanPages();
  });

  test('the room page only allows images from itself and file-srv', async () => {
    const response = await fetch(`${suite.fleet.aux}/${uniqueRoom('csp')}`);
    const policy = response.headers.get('content-security-policy');
    assert.equal(policy, `img-src 'self' data: blob: ${new URL(suite.fleet.files).origin}`);
  });
});
