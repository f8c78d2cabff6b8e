// What the browser tests stand on: the real local fleet (the `instantchat`
// binary on ephemeral ports), headless Chromium through playwright-core, and
// a few waiting helpers that poll the page with a deadline.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const ARTIFACTS = process.env.INSTANTCHAT_ARTIFACTS || path.join(REPO, 'test-artifacts');
const BIN = process.env.INSTANTCHAT_BIN || path.join(REPO, 'target/debug/instantchat');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const START_TIMEOUT_MS = 30_000;
export const WAIT_MS = 10_000;

/**
 * Starts the whole fleet in one process on 127.0.0.1:0 ports and serving this
 * repo's web/ folder. Answers `{aux, files, stop()}` once it printed its addresses.
 * `extraArgs` go to the `instantchat` binary (e.g. `['--pow', 'always']`).
 */
export async function startFleet(extraArgs = []) {
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} is missing: build it with \`cargo build -p instantchat-aux-srv --bin instantchat\` or set INSTANTCHAT_BIN`);
  }
  const adminToken = randomBytes(16).toString('hex');
  const args = ['--ephemeral', '--web-root', path.join(REPO, 'web'), '--admin-token', adminToken, ...extraArgs];
  const child = spawn(BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  // However this process ends, the fleet must not outlive it.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  let output = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the fleet did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk) => {
      output += chunk;
      const line = output.split('\n').find((l) => l.startsWith('instantchat: listening'));
      if (!line) return;
      clearTimeout(timer);
      const field = (name) => (line.match(new RegExp(`\\b${name}=(\\S+)`)) || [])[1];
      resolve({ aux: field('aux'), files: field('files'), admin: field('admin') });
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', (chunk) => {
      output += chunk;
      if (process.env.INSTANTCHAT_TEST_LOGS) process.stderr.write(chunk);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the fleet exited early (${code}):\n${output}`));
    });
  });
  const addresses = await ready;
  if (!addresses.aux || !addresses.aux.startsWith('http://127.0.0.1:')) {
    child.kill('SIGKILL');
    throw new Error(`unexpected start-up line:\n${output}`);
  }
  return {
    ...addresses,
    admin: adminClient(addresses.admin, adminToken),
    async stop() {
      process.removeListener('exit', reap);
      await terminate(child, 10_000);
    },
  };
}

/** Calls the admin API at `base` (the operators' side) with `token`. */
function adminClient(base, token) {
  return (method, pathname, body) => fetch(base + pathname, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A port of 127.0.0.1 that nothing listens on right now (the OS picks it). */
async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Starts one service binary (a sibling of the `instantchat` binary) configured
 * by `env` alone: the tests' own INSTANTCHAT_* variables would be taken for
 * configuration keys, and refused.
 */
function launch(name, env) {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('INSTANTCHAT_')));
  const child = spawn(path.join(path.dirname(BIN), name), [], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...inherited, RUST_LOG: process.env.RUST_LOG || 'warn', ...env },
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    if (process.env.INSTANTCHAT_TEST_LOGS) process.stderr.write(`${name}: ${chunk}`);
  });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  return child;
}

/** Ends `child` with SIGTERM, SIGKILL after `graceMs`; resolves once it is gone. */
async function terminate(child, graceMs = 30_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * The fleet as separate processes — two `backend`s and `aux-srv` (no
 * file-srv), as in production, so that one backend can be stopped alone:
 * `fleet.backends[i].terminate()` sends it SIGTERM, and it moves its rooms
 * to the other before it exits. Answers what `startFleet` does, plus
 * `backends: [{id, wsBase, terminate()}]`.
 */
export async function startSeparateFleet() {
  const adminToken = randomBytes(16).toString('hex');
  const controlToken = randomBytes(16).toString('hex');
  const [auxPort, adminPort] = [await freePort(), await freePort()];
  const aux = `http://127.0.0.1:${auxPort}`;
  const backends = [];
  for (const id of ['b1', 'b2']) {
    const [port, controlPort] = [await freePort(), await freePort()];
    const wsBase = `ws://127.0.0.1:${port}`;
    const child = launch('backend', {
      INSTANTCHAT_ID: id,
      INSTANTCHAT_LISTEN: `127.0.0.1:${port}`,
      INSTANTCHAT_CONTROL_LISTEN: `127.0.0.1:${controlPort}`,
      INSTANTCHAT_PUBLIC_URL: wsBase,
      INSTANTCHAT_CONTROL_TOKEN: controlToken,
      INSTANTCHAT_ALLOWED_ORIGINS: `["${aux}"]`,
      INSTANTCHAT_SHUTDOWN_GRACE_MS: '1000',
    });
    backends.push({ id, wsBase, controlPort, child, terminate: () => terminate(child) });
  }
  const list = backends.map((b) => `{id = "${b.id}", control_addr = "127.0.0.1:${b.controlPort}"}`);
  const auxChild = launch('aux-srv', {
    INSTANTCHAT_LISTEN: `127.0.0.1:${auxPort}`,
    INSTANTCHAT_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    INSTANTCHAT_ADMIN_TOKEN: adminToken,
    INSTANTCHAT_CONTROL_TOKEN: controlToken,
    INSTANTCHAT_BACKENDS: `[${list.join(', ')}]`,
    INSTANTCHAT_WEB_ROOT: path.join(REPO, 'web'),
    INSTANTCHAT_POLL_INTERVAL_MS: '200',
    INSTANTCHAT_SHUTDOWN_DRAIN_MS: '0',
  });
  const admin = adminClient(`http://127.0.0.1:${adminPort}`, adminToken);
  // Ready once aux-srv serves and sees both backends up.
  await eventually(async () => {
    const answer = await admin('GET', '/admin/backends');
    const up = (await answer.json()).backends?.filter((b) => b.state === 'up') || [];
    return up.length === 2;
  }, 'aux-srv and both backends up', START_TIMEOUT_MS);
  return {
    aux,
    admin,
    backends,
    async stop() {
      await Promise.all(backends.map((b) => b.terminate()));
      await terminate(auxChild, 10_000);
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    // launch() gives every run a fresh, temporary user data dir.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A person: their own browser context (own storage), one page, and a record
 * of uncaught page errors, dialogs (an `alert` would mean script injection),
 * websockets opened, welcome frames received and room lookups asked of aux-srv.
 */
export async function person(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, ...options });
  const page = await context.newPage();
  const problems = [];
  const dialogs = [];
  const sockets = [];
  page.on('pageerror', (e) => problems.push(e.message));
  // Console errors too (a CSP violation shows only there), but not the
  // browser's own notes on failed requests: a 404 for a new room, a refused
  // websocket while the test holds the network down.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|WebSocket connection to/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  const lookups = []; // each request to /api/rooms/{room} (no deeper path): where is the room?
  page.on('request', (r) => {
    if (/\/api\/rooms\/[^/?]+(\?|$)/.test(new URL(r.url()).pathname)) lookups.push(r.method());
  });
  const welcomes = []; // {resumed, seqs, membersUnchanged} of each welcome frame, to see resumes happen
  page.on('websocket', (ws) => {
    sockets.push(ws.url());
    ws.on('framereceived', ({ payload }) => {
      if (typeof payload !== 'string' || !payload.startsWith('{"type":"welcome"')) return;
      const w = JSON.parse(payload);
      welcomes.push({ resumed: w.resumed, seqs: w.messages.map((m) => m.seq), membersUnchanged: w.members_unchanged === true });
    });
  });
  page.setDefaultTimeout(WAIT_MS);
  return { context, page, problems, dialogs, sockets, welcomes, lookups };
}

/**
 * What every browser test file shares: one fleet and one browser for all its
 * tests (started before, stopped after), people as separate browser contexts
 * (closed at the end), and the check that no page had an uncaught error or
 * opened an alert. Call it at the top of the file; `fleetArgs` go to the
 * fleet binary.
 */
export function browserSuite({ fleetArgs = [], start = startFleet } = {}) {
  const suite = {
    fleet: null,
    browser: null,
    people: [],
    async newPerson(options) {
      const p = await person(suite.browser, options);
      suite.people.push(p);
      return p;
    },
    /**
     * A fresh room named after `prefix`, and one new person per nick who has
     * joined it (in that order): `{ room, people }`.
     */
    async inRoom(prefix, ...nicks) {
      const room = uniqueRoom(prefix);
      const people = [];
      for (const nick of nicks) people.push(await suite.joined(room, nick));
      return { room, people };
    },
    /** A new person (`options` for their browser context) who has joined `room` as `nick`. */
    async joined(room, nick, options) {
      const p = await suite.newPerson(options);
      await suite.join(p, room, nick);
      return p;
    },
    /** `p` opens `room` on this suite's fleet and joins as `nick`; resolves once connected. */
    async join(p, room, nick, joinOptions) {
      await joinRoom(p.page, suite.fleet.aux, room, nick, joinOptions);
    },
    /** No uncaught script error and no alert() on any page so far. */
    assertCleanPages() {
      for (const p of suite.people) {
        assert.deepEqual(p.problems, [], 'uncaught errors in a page');
        assert.deepEqual(p.dialogs, [], 'a page opened a dialog (alert/confirm)');
      }
    },
  };
  before(async () => {
    [suite.fleet, suite.browser] = await Promise.all([start(fleetArgs), launchBrowser()]);
  });
  after(async () => {
    await Promise.all(suite.people.map((p) => p.context.close().catch(() => {})));
    await suite.browser?.close();
    await suite.fleet?.stop();
  });
  return suite;
}

/** Polls `check` (sync or async, truthy = done) until it holds or the deadline passes. */
export async function eventually(check, what, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function saveScreenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file });
  return file;
}

export function uniqueRoom(prefix) {
  return `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

// ------------------------------------------------------------ the page, found by role and name

export const ui = {
  log: (page) => page.getByRole('log', { name: 'Messages' }),
  /** Message articles holding `text` (a string or RegExp). */
  messages: (page, text) => {
    const all = page.getByRole('log', { name: 'Messages' }).getByRole('article');
    return text === undefined ? all : all.filter({ hasText: text });
  },
  members: (page) => page.getByRole('list', { name: 'Members' }).getByRole('listitem'),
  connection: (page) => page.getByRole('status', { name: 'Connection' }),
  typing: (page) => page.getByRole('status', { name: 'Typing' }),
  composer: (page) => page.getByRole('textbox', { name: 'Message' }),
};

/** Opens /{room} and joins as `nick`; resolves once connected. */
export async function joinRoom(page, aux, room, nick, { password } = {}) {
  await page.goto(`${aux}/${encodeURIComponent(room)}`);
  await page.getByRole('textbox', { name: 'Nickname' }).fill(nick);
  if (password) await page.getByLabel('Room password').fill(password);
  await page.getByRole('button', { name: 'Join' }).click();
  await waitConnected(page);
}

export async function waitConnected(page) {
  await ui.connection(page).filter({ hasText: /^Connected$/ }).waitFor();
}

/** Opens the editor of this person's own message holding `text`: answers its textbox. */
export async function openEditor(page, text) {
  const mine = ui.messages(page, text);
  await mine.hover();
  await mine.getByRole('button', { name: 'Edit' }).click();
  return page.getByRole('textbox', { name: 'Edit message' });
}

/** Edits this person's own message holding `text` to `newText` (saved with Enter). */
export async function editMessage(page, text, newText) {
  const editor = await openEditor(page, text);
  await editor.fill(newText);
  await editor.press('Enter');
}

export async function send(page, text) {
  await ui.composer(page).fill(text);
  await ui.composer(page).press('Enter');
}

/** Waits until exactly `n` message articles hold `text`. */
export async function expectMessageCount(page, text, n) {
  await eventually(async () => (await ui.messages(page, text).count()) === n, `${n} × "${text}"`);
}

/** On every one of `pages`: each of `texts` shows exactly once, and the messages are in seq order, none twice. */
export async function expectEachOnceInOrder(pages, texts) {
  for (const text of texts) {
    for (const page of pages) await expectMessageCount(page, text, 1);
  }
  for (const page of pages) {
    const seqs = await ui.messages(page).evaluateAll((nodes) => nodes.map((n) => Number(n.dataset.seq)));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in order');
    assert.equal(new Set(seqs).size, seqs.length, 'no seq twice');
  }
}
