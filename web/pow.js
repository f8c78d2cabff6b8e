// The proof-of-work puzzle a room under attack asks of joins (the server's
// `error {code: "challenge", challenge: {token, bits}}`): find a nonce such
// that SHA-256(token ":" nonce) starts with `bits` zero bits.
//
// The hashing is done here in plain JavaScript, into buffers allocated once:
// the token is sized so that `token:nonce` fits one SHA-256 block, and a hash
// costs no allocation. crypto.subtle.digest was measured slower for this
// (one promise per 50-byte hash: ~29 µs each in headless Chromium, against
// a few µs here; docs/BENCHMARKS.md), and it does not exist on plain-http
// pages off localhost. The search yields to the page every few milliseconds.

const encoder = new TextEncoder();
/** Hashes between yields to the event loop. */
const CHUNK = 4096;

/** Leading zero bits of a hash. */
export function leadingZeroBits(bytes) {
  let bits = 0;
  for (const byte of bytes) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const INITIAL = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const W = new Int32Array(64);

const rotr = (x, n) => (x >>> n) | (x << (32 - n));

/** One SHA-256 compression of the 64 bytes at `off` into `state`. */
function compress(state, view, off) {
  const w = W;
  for (let i = 0; i < 16; i++) w[i] = view.getInt32(off + i * 4);
  for (let i = 16; i < 64; i++) {
    const a = w[i - 15];
    const b = w[i - 2];
    const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
    const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = state[0], b = state[1], c = state[2], d = state[3];
  let e = state[4], f = state[5], g = state[6], h = state[7];
  for (let i = 0; i < 64; i++) {
    const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

/** Pads `buf[0..len]` in place (it must have room) and hashes it into `state`. */
function hashPadded(state, buf, view, len) {
  const blocks = Math.ceil((len + 9) / 64);
  buf.fill(0, len, blocks * 64);
  buf[len] = 0x80;
  view.setUint32(blocks * 64 - 8, Math.floor(len / 2 ** 29));
  view.setUint32(blocks * 64 - 4, (len * 8) >>> 0);
  state.set(INITIAL);
  for (let off = 0; off < blocks * 64; off += 64) compress(state, view, off);
}

/** SHA-256 of `data` (a Uint8Array). */
export function sha256(data) {
  const buf = new Uint8Array(Math.ceil((data.length + 9) / 64) * 64);
  buf.set(data);
  const state = new Int32Array(8);
  hashPadded(state, buf, new DataView(buf.buffer), data.length);
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) outView.setInt32(i * 4, state[i]);
  return out;
}

/**
 * A function of a nonce (a non-negative integer) giving the leading zero
 * bits of SHA-256(`token` ":" nonce), allocating nothing per call.
 */
export function workFor(token) {
  const prefix = encoder.encode(`${token}:`);
  const buf = new Uint8Array(Math.ceil((prefix.length + 16 + 9) / 64) * 64);
  buf.set(prefix);
  const view = new DataView(buf.buffer);
  const state = new Int32Array(8);
  return (nonce) => {
    let len = prefix.length;
    const digits = String(nonce);
    for (let i = 0; i < digits.length; i++) buf[len++] = digits.charCodeAt(i);
    hashPadded(state, buf, view, len);
    return state[0] !== 0 ? Math.clz32(state[0]) : 32 + Math.clz32(state[1]);
  };
}

/**
 * Solves `challenge`; resolves to the `pow` field of the next `join`.
 * @param {{token: string, bits: number}} challenge
 */
export async function solveChallenge({ token, bits }) {
  const work = workFor(token);
  for (let start = 0; ; start += CHUNK) {
    for (let n = start; n < start + CHUNK; n++) {
      if (work(n) >= bits) return { challenge: token, nonce: String(n) };
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
