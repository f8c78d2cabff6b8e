// Unit tests of the connection's pure timing rules (web/pacing.js): they
// need no browser, so they run in plain node next to the browser tests.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKOFF_FIRST_MS, BACKOFF_MAX_MS, Pacer, backoffDelay } from '../../web/pacing.js';

describe('reconnect backoff', () => {
  test('doubles from 0.5 s and stops at 30 s', () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffDelay(n, () => 1));
    assert.deepEqual(ceilings, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  test('equal jitter: between half the ceiling and the ceiling', () => {
    assert.equal(backoffDelay(0, () => 0), BACKOFF_FIRST_MS / 2);
    assert.equal(backoffDelay(3, () => 0.5), 3000);
    assert.equal(backoffDelay(99, () => 0), BACKOFF_MAX_MS / 2);
    for (let n = 0; n < 12; n++) {
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** n);
      const delay = backoffDelay(n);
      assert.ok(delay >= ceiling / 2 && delay <= ceiling, `attempt ${n}: ${delay}`);
    }
  });
});

/** A Pacer on a clock the test moves by hand. */
function pacerAt(limits) {
  const clock = { ms: 0 };
  return { clock, pacer: new Pacer(limits, () => clock.ms) };
}

describe('pacing to the rate limit', () => {
  test('a burst a little under the server\'s goes out at once, then one frame per 1/(0.9·rate) s', () => {
    const { clock, pacer } = pacerAt({ rate_per_sec: 10, rate_burst: 20 });
    let sent = 0;
    while (pacer.wait() === 0) {
      pacer.take();
      sent += 1;
    }
    assert.equal(sent, 18, 'burst 20, two kept in reserve');
    assert.equal(pacer.wait(), 112, 'the next token in 1000/9 ms');
    clock.ms += 111;
    assert.ok(pacer.wait() > 0);
    clock.ms += 1;
    assert.equal(pacer.wait(), 0);
  });

  test('over a long run it stays under the server\'s rate', () => {
    const { clock, pacer } = pacerAt({ rate_per_sec: 5, rate_burst: 10 });
    let sent = 0;
    for (clock.ms = 0; clock.ms <= 60_000; clock.ms += 10) {
      while (pacer.wait() === 0) {
        pacer.take();
        sent += 1;
      }
    }
    // The server allows its burst of 10 plus 5 per second: 310 in 60 s.
    assert.ok(sent <= 10 + 5 * 60, `${sent} frames`);
    assert.ok(sent >= 8 + 4.5 * 60 - 1, `${sent} frames`);
  });

  test('rate_limited pauses for retry_after_ms even with tokens left', () => {
    const { clock, pacer } = pacerAt({ rate_per_sec: 10, rate_burst: 20 });
    pacer.pause(2000);
    assert.ok(pacer.wait() >= 2000, `waits ${pacer.wait()} ms`);
    clock.ms += 2000;
    assert.ok(pacer.wait() > 0 && pacer.wait() <= 112);
    clock.ms += 112;
    assert.equal(pacer.wait(), 0);
  });

  test('without limits it assumes the server\'s defaults; odd limits still allow a frame', () => {
    const { pacer } = pacerAt(null);
    assert.equal(pacer.burst, 18);
    const tiny = pacerAt({ rate_per_sec: 0, rate_burst: 0 }).pacer;
    assert.equal(tiny.wait(), 0);
  });
});
