// The pure timing rules of the connection, kept apart from the DOM and the
// socket so they can be unit-tested (web-tests/tests/pacing.test.mjs):
// reconnect backoff, and pacing frames to the server's rate limit.

export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 30_000;

/** Delay before reconnect attempt `n` (0-based): doubling, capped, with "equal jitter"
 * (half the ceiling fixed, half random), so a fleet of pages that lost one
 * server does not come back all in the same instant. */
export function backoffDelay(n, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** n);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** The server's token bucket, mirrored (a little stricter) so the page does
 * not provoke `rate_limited` when someone pastes and sends in quick bursts. */
export class Pacer {
  /**
   * @param {{rate_per_sec?: number, rate_burst?: number} | null} limits from `welcome.limits`
   * @param {() => number} now milliseconds on a monotonic clock
   */
  constructor(limits, now = () => performance.now()) {
    this.now = now;
    this.rate = Math.max(1, (limits?.rate_per_sec ?? 10) * 0.9);
    this.burst = Math.max(1, (limits?.rate_burst ?? 20) - 2);
    this.tokens = this.burst;
    this.at = now();
  }

  refill() {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
  }

  /** Milliseconds until a frame may go (0: now). */
  wait() {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }

  take() {
    this.refill();
    this.tokens -= 1;
  }

  /** The server said `rate_limited` with `retry_after_ms`: nothing goes out for that long. */
  pause(ms) {
    this.refill();
    this.tokens = Math.min(this.tokens, 0) - (ms / 1000) * this.rate;
  }
}
