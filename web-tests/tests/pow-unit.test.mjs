// Unit tests of the join puzzle's solver (web/pow.js), against node's own
// SHA-256.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';

import { leadingZeroBits, sha256, solveChallenge } from '../../web/pow.js';

const hex = (bytes) => Buffer.from(bytes).toString('hex');

test("the page's SHA-256 agrees with node's for every length around the block edges", () => {
  for (let n = 0; n < 200; n++) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
    assert.equal(hex(sha256(data)), createHash('sha256').update(data).digest('hex'), `length ${n}`);
  }
});

test('leading zero bits', () => {
  assert.equal(leadingZeroBits(new Uint8Array([0, 0x10, 0xff])), 11);
  assert.equal(leadingZeroBits(new Uint8Array([0x80])), 0);
  assert.equal(leadingZeroBits(new Uint8Array([0, 0])), 16);
});

test('a solved challenge has the bits asked for', async () => {
  const token = '1900000000.12.00112233445566778899aabbccddeeff';
  const answer = await solveChallenge({ token, bits: 12 });
  assert.equal(answer.challenge, token);
  const hash = createHash('sha256').update(`${token}:${answer.nonce}`).digest();
  assert.ok(leadingZeroBits(hash) >= 12, hex(hash));
});

test('the per-nonce work function agrees with a full hash', async () => {
  const { workFor } = await import('../../web/pow.js');
  const token = '1900000000.16.00112233445566778899aabbccddeeff';
  const work = workFor(token);
  for (const n of [0, 7, 12345678, 9876543210]) {
    const hash = createHash('sha256').update(`${token}:${n}`).digest();
    assert.equal(work(n), leadingZeroBits(hash), `nonce ${n}`);
  }
});
