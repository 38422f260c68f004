/**
 * The JavaScript SHA-256 that hashes the state tree, Merkle nodes and ids (ledger/sha256.ts): the
 * FIPS 180-2 examples, and agreement with node:crypto at every length across the block and
 * padding boundaries and on both sides of the length where `sha256` hands over to node:crypto.
 */
import assert from 'node:assert/strict';
import { hash } from 'node:crypto';
import fc from 'fast-check';
import { sha256 } from '../ledger/hash.ts';
import { sha256Js, sha256JsInto } from '../ledger/sha256.ts';
import { toHex } from '../ledger/bytes.ts';

const text = (s: string) => new TextEncoder().encode(s);

describe('SHA-256 in JavaScript', () => {
  it('gives the FIPS 180-2 example digests, one and two blocks long', () => {
    const examples: [string, string][] = [
      ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
      ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
      // 56 bytes: the length no longer fits the first block, so the padding takes a second.
      ['abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'],
      [
        'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
        'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
      ],
    ];
    for (const [message, digest] of examples) {
      assert.equal(toHex(sha256Js(text(message))), digest, JSON.stringify(message));
      assert.equal(toHex(sha256(text(message))), digest, JSON.stringify(message));
    }
  });

  it('agrees with node:crypto at every length from 0 to 600 bytes', () => {
    for (let n = 0; n <= 600; n++) {
      const message = new Uint8Array(n).map((_, i) => (i * 167 + n * 13) & 0xff);
      const expected = toHex(hash('sha256', message, 'buffer'));
      assert.equal(toHex(sha256Js(message)), expected, `length ${n}`);
      assert.equal(toHex(sha256(message)), expected, `length ${n}`);
    }
  });

  it('agrees with node:crypto on random messages, a view into a larger buffer among them', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(16), (bytes, skip) => {
        const view = bytes.subarray(Math.min(skip, bytes.length));
        assert.equal(toHex(sha256Js(view)), toHex(hash('sha256', view, 'buffer')));
        assert.equal(toHex(sha256(view)), toHex(hash('sha256', view, 'buffer')));
      }),
      { numRuns: 2000 },
    );
  });

  it('writes a digest into a buffer at an offset, and nothing else there', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(68), (bytes, offset) => {
        const out = new Uint8Array(100).fill(0xaa);
        sha256JsInto(bytes, out, offset);
        assert.equal(toHex(out.subarray(offset, offset + 32)), toHex(hash('sha256', bytes, 'buffer')));
        assert.ok(out.subarray(0, offset).every((b) => b === 0xaa) && out.subarray(offset + 32).every((b) => b === 0xaa));
      }),
      { numRuns: 500 },
    );
  });

  it('returns a digest of its own each call, not a view of shared scratch', () => {
    const a = sha256Js(text('a'));
    const b = sha256Js(text('b'));
    assert.notEqual(toHex(a), toHex(b));
    assert.equal(toHex(a), toHex(hash('sha256', text('a'), 'buffer')));
    assert.equal(a.byteOffset, 0);
    assert.equal(a.buffer.byteLength, 32);
  });
});
