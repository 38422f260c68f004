/**
 * Canonical encoding: every value has exactly one byte string, decoders give back exactly what
 * encoders wrote, and anything else (short, long, non-minimal, out of range, garbage) is refused
 * with a DecodeError, never with some other exception a peer could use to crash a caller.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bech32m } from '@scure/base';
import { Reader, Writer, bigIntToBytes, concatBytes, fromHex } from '../ledger/bytes.ts';
import { DecodeError, TxRuleError } from '../ledger/errors.ts';
import { sha256 } from '../ledger/hash.ts';
import { merkleRoot } from '../ledger/merkle.ts';
import {
  AddressError,
  CURVE_ORDER,
  addressOf,
  decodeAddress,
  encodeAddress,
  isCanonicalSignature,
  isValidPrivateKey,
  publicKeyOf,
} from '../ledger/keys.ts';
import { MAX_AMOUNT, isValidAmount, parseAmount } from '../ledger/amount.ts';
import {
  TX_BYTES,
  UNSIGNED_TX_BYTES,
  checkTxSignature,
  decodeTransaction,
  decodeTransactionHex,
  encodeUnsignedTransaction,
  signTransaction,
  type Transaction,
} from '../ledger/transaction.ts';
import {
  COINBASE_BYTES,
  HEADER_BYTES,
  MAX_BLOCK_BYTES_LIMIT,
  decodeBlock,
  decodeHeader,
  encodeBlock,
  makeBlock,
  makeHeader,
  transactionBytesAt,
  type Block,
  type BlockHeader,
  type HeaderFields,
} from '../ledger/block.ts';
import { decodeAccount, decodeUndo, encodeAccount, encodeUndo, type UndoRecord } from '../ledger/state.ts';
import { decodeCompactBlock, encodeCompactBlock } from '../node/compact.ts';
import { testKey, transfer } from './helpers/fixtures.ts';
import { arbByteEdit, editBytes } from './helpers/fuzz.ts';

const U64_MAX = (1n << 64n) - 1n;
const SEED = 42;

// Byte offsets inside a transaction, from the layout in ledger/transaction.ts.
const TX_AMOUNT_AT = 1 + 4 + 20 + 20;
const TX_FEE_AT = TX_AMOUNT_AT + 8;
const TX_PUBKEY_AT = UNSIGNED_TX_BYTES;
const TX_R_AT = TX_PUBKEY_AT + 33;
const TX_S_AT = TX_R_AT + 32;
const BLOCK_COUNT_AT = HEADER_BYTES + COINBASE_BYTES;
const HEADER_TIMESTAMP_AT = 4 + 4 + 32 + 32 + 32;

function decodeFails(fn: () => unknown, code: string | readonly string[], cls: new (...a: never[]) => Error = DecodeError): void {
  const codes = typeof code === 'string' ? [code] : code;
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    assert.ok(codes.includes((err as DecodeError).code), `expected ${codes.join('|')}, got ${(err as DecodeError).code}`);
    return true;
  });
}

function withBytes(bytes: Uint8Array, at: number, replacement: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out.set(replacement, at);
  return out;
}

// Re-encoders built only from decoded fields, so "re-encodes to the same bytes" is a real check
// rather than a comparison of the input with a slice of itself.
function reencodeTx(tx: Transaction): Uint8Array {
  return concatBytes(encodeUnsignedTransaction(tx), tx.publicKey, tx.signature);
}
function headerFields(h: BlockHeader): HeaderFields {
  return { version: h.version, height: h.height, prevHash: h.prevHash, merkleRoot: h.merkleRoot, stateRoot: h.stateRoot, timestamp: h.timestamp, target: h.target, nonce: h.nonce };
}
function reencodeHeader(h: BlockHeader): Uint8Array {
  return makeHeader(headerFields(h)).bytes;
}
function reencodeBlock(b: Block): Uint8Array {
  const txs = b.txs.map((tx) => ({ ...tx, bytes: reencodeTx(tx) }));
  return encodeBlock(makeHeader(headerFields(b.header)), { to: b.coinbase.to, amount: b.coinbase.amount }, txs);
}

const arbBytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const arbAmount = fc.bigInt({ min: 0n, max: MAX_AMOUNT });
const arbU64 = fc.bigInt({ min: 0n, max: U64_MAX });
const arbU32 = fc.integer({ min: 0, max: 0xffffffff });
const arbPrivateKey = arbBytes(32).filter(isValidPrivateKey);
const arbHeaderFields: fc.Arbitrary<HeaderFields> = fc.record({
  version: arbU32,
  height: arbU32,
  prevHash: arbBytes(32),
  merkleRoot: arbBytes(32),
  stateRoot: arbBytes(32),
  timestamp: fc.maxSafeNat(),
  target: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
  nonce: arbU64,
});

// A small pool of signed transactions, so block properties need no signing of their own.
const [k0, k1, k2] = [testKey(0), testKey(1), testKey(2)];
const TX_POOL: Transaction[] = [
  transfer(k0, k1.address, 1n, 0n),
  transfer(k0, k2.address, MAX_AMOUNT, U64_MAX, 0n),
  transfer(k1, k0.address, 0n, 7n, MAX_AMOUNT, 0xffffffff),
  transfer(k2, k2.address, 123_456_789n, 1n, 3n, 0),
  transfer(k1, new Uint8Array(20), 5n, 2n),
];
const arbBlock: fc.Arbitrary<Block> = fc
  .record({
    fields: arbHeaderFields,
    to: arbBytes(20),
    amount: arbAmount,
    txs: fc.array(fc.constantFrom(...TX_POOL), { maxLength: 3 }),
  })
  .map(({ fields, to, amount, txs }) => makeBlock(makeHeader(fields), { to, amount }, txs));

const SAMPLE_TX = TX_POOL[0]!;
const SAMPLE_HEADER = makeHeader({
  version: 2,
  height: 12,
  prevHash: sha256(Uint8Array.of(1)),
  merkleRoot: sha256(Uint8Array.of(2)),
  stateRoot: sha256(Uint8Array.of(3)),
  timestamp: 1_700_000_120,
  target: (1n << 255n) - 1n,
  nonce: 99n,
});
const SAMPLE_BLOCK_0 = makeBlock(SAMPLE_HEADER, { to: k0.address, amount: 50n }, []);
const SAMPLE_BLOCK_2 = makeBlock(SAMPLE_HEADER, { to: k0.address, amount: 52n }, [TX_POOL[0]!, TX_POOL[4]!]);
const SAMPLE_UNDO: UndoRecord[] = [
  { address: k0.address, previous: { balance: 1_000_000n, nonce: 3n } },
  { address: k1.address, previous: undefined },
];
const SAMPLE_UNDO_BYTES = encodeUndo(SAMPLE_UNDO);
const SAMPLE_ACCOUNT_BYTES = encodeAccount({ balance: MAX_AMOUNT, nonce: 5n });

interface Codec {
  readonly name: string;
  readonly sample: Uint8Array;
  /** Decodes, then re-encodes from the decoded value. */
  readonly roundTrip: (bytes: Uint8Array) => Uint8Array;
}
const CODECS: Codec[] = [
  { name: 'transaction', sample: SAMPLE_TX.bytes, roundTrip: (b) => reencodeTx(decodeTransaction(b)) },
  { name: 'header', sample: SAMPLE_HEADER.bytes, roundTrip: (b) => reencodeHeader(decodeHeader(b)) },
  { name: 'block without txs', sample: SAMPLE_BLOCK_0.bytes, roundTrip: (b) => reencodeBlock(decodeBlock(b)) },
  { name: 'block with 2 txs', sample: SAMPLE_BLOCK_2.bytes, roundTrip: (b) => reencodeBlock(decodeBlock(b)) },
  { name: 'undo', sample: SAMPLE_UNDO_BYTES, roundTrip: (b) => encodeUndo(decodeUndo(b)) },
  { name: 'account', sample: SAMPLE_ACCOUNT_BYTES, roundTrip: (b) => encodeAccount(decodeAccount(b)) },
];

/** Either a clean decode that re-encodes to the very same bytes, or a DecodeError: nothing else. */
function decodesCanonicallyOrRefuses(codec: Codec, bytes: Uint8Array): void {
  let again: Uint8Array;
  try {
    again = codec.roundTrip(bytes);
  } catch (err) {
    if (err instanceof DecodeError) return;
    throw new Error(`${codec.name}: ${String(err)} is not a DecodeError (input ${Buffer.from(bytes).toString('hex')})`);
  }
  assert.deepEqual(again, bytes, `${codec.name} decoded but re-encodes differently`);
}

describe('encoding', () => {
  describe('transactions', () => {
    it('decoded values own their bytes, even when decoded from a Buffer that is reused', () => {
      const buf = Buffer.from(SAMPLE_TX.bytes);
      const tx = decodeTransaction(buf);
      buf.fill(0);
      assert.deepEqual(tx.bytes, SAMPLE_TX.bytes);
      assert.deepEqual(tx.to, SAMPLE_TX.to);
      assert.ok(!Buffer.isBuffer(tx.bytes));
    });

    it('decodeTransactionHex reads what decodeTransaction reads from the same hex, and refuses what it refuses, with the same errors', () => {
      const hex = Buffer.from(SAMPLE_TX.bytes).toString('hex');
      assert.deepEqual(decodeTransactionHex(hex), decodeTransaction(SAMPLE_TX.bytes));
      const highS = Buffer.from(SAMPLE_TX.bytes);
      highS.fill(0xff, TX_BYTES - 32);
      for (const bad of [hex.slice(1), `${hex.slice(0, -2)}zz`, `${hex}00`, hex.slice(0, -2), highS.toString('hex'), `00${hex.slice(2)}`]) {
        const expected = (() => {
          try {
            decodeTransaction(fromHex(bad));
          } catch (err) {
            return err as DecodeError;
          }
          assert.fail(`${bad} decoded`);
        })();
        assert.throws(() => decodeTransactionHex(bad), (err: unknown) => err instanceof DecodeError && err.code === expected.code && err.message === expected.message);
      }
    });

    it('signTransaction → decodeTransaction gives back the same fields, bytes and id (property)', () => {
      fc.assert(
        fc.property(arbPrivateKey, arbU32, arbBytes(20), arbAmount, arbAmount, arbU64, (key, chainId, to, amount, fee, nonce) => {
          const tx = signTransaction({ chainId, to, amount, fee, nonce }, key);
          assert.equal(tx.bytes.length, TX_BYTES);
          assert.deepEqual(tx.from, addressOf(publicKeyOf(key)));
          const decoded = decodeTransaction(tx.bytes);
          assert.deepEqual(decoded, tx);
          assert.deepEqual(decoded.id, sha256(tx.bytes));
          assert.deepEqual(decoded.sighash, sha256(tx.bytes.subarray(0, UNSIGNED_TX_BYTES)));
          assert.deepEqual(reencodeTx(decoded), tx.bytes);
          checkTxSignature(decoded); // what was signed is what verifies
        }),
        { seed: SEED, numRuns: 100 },
      );
    });

    it('refuses to sign an amount or fee above MAX_AMOUNT', () => {
      const fields = { chainId: 7, to: k1.address, nonce: 0n };
      for (const [amount, fee] of [[MAX_AMOUNT + 1n, 0n], [0n, MAX_AMOUNT + 1n], [-1n, 0n]] as const) {
        assert.throws(() => signTransaction({ ...fields, amount, fee }, k0.privateKey), (e: unknown) => e instanceof TxRuleError && e.code === 'TX_AMOUNT_OVER_LIMIT');
      }
    });
  });

  describe('headers and blocks', () => {
    it('makeHeader → decodeHeader round-trips arbitrary fields (property)', () => {
      fc.assert(
        fc.property(arbHeaderFields, (fields) => {
          const header = makeHeader(fields);
          assert.equal(header.bytes.length, HEADER_BYTES);
          const decoded = decodeHeader(header.bytes);
          assert.deepEqual(decoded, header);
          assert.deepEqual(decoded.hash, sha256(header.bytes));
        }),
        { seed: SEED, numRuns: 500 },
      );
    });

    it('makeBlock → decodeBlock round-trips blocks of 0 to 3 txs (property)', () => {
      fc.assert(
        fc.property(arbBlock, (block) => {
          const decoded = decodeBlock(block.bytes);
          assert.deepEqual(decoded.header, block.header);
          assert.deepEqual(decoded.coinbase, block.coinbase);
          assert.deepEqual(decoded.txs, block.txs);
          assert.deepEqual(decoded.bytes, block.bytes);
          assert.equal(block.bytes.length, HEADER_BYTES + COINBASE_BYTES + 1 + TX_BYTES * block.txs.length);
        }),
        { seed: SEED, numRuns: 300 },
      );
    });

    it('refuses a timestamp or coinbase amount out of range', () => {
      decodeFails(() => decodeHeader(withBytes(SAMPLE_HEADER.bytes, HEADER_TIMESTAMP_AT, bigIntToBytes(2n ** 53n, 8))), 'DECODE_OVER_LIMIT');
      // 2^53 - 1 is the largest timestamp, and is accepted.
      const maxTs = withBytes(SAMPLE_HEADER.bytes, HEADER_TIMESTAMP_AT, bigIntToBytes(2n ** 53n - 1n, 8));
      assert.equal(decodeHeader(maxTs).timestamp, Number.MAX_SAFE_INTEGER);
      const amountAt = HEADER_BYTES + 20;
      decodeFails(() => decodeBlock(withBytes(SAMPLE_BLOCK_0.bytes, amountAt, bigIntToBytes(MAX_AMOUNT + 1n, 8))), 'DECODE_OVER_LIMIT');
      assert.equal(decodeBlock(withBytes(SAMPLE_BLOCK_0.bytes, amountAt, bigIntToBytes(MAX_AMOUNT, 8))).coinbase.amount, MAX_AMOUNT);
      // A compact block's coinbase too (from a review: it was read as any u64, and refused only after
      // a pass over the mempool and a round trip for the missing transactions).
      const compact = encodeCompactBlock(SAMPLE_BLOCK_0);
      const compactAmountAt = 1 + HEADER_BYTES + 20;
      decodeFails(() => decodeCompactBlock(withBytes(compact, compactAmountAt, bigIntToBytes(MAX_AMOUNT + 1n, 8)), 10), 'DECODE_OVER_LIMIT');
      assert.equal(decodeCompactBlock(withBytes(compact, compactAmountAt, bigIntToBytes(MAX_AMOUNT, 8)), 10).coinbase.amount, MAX_AMOUNT);
    });
  });

  describe('varints', () => {
    function encodeVarint(v: number): Uint8Array {
      return new Writer().varint(v).finish();
    }
    function readVarint(bytes: Uint8Array, max?: number): number {
      const r = new Reader(bytes);
      const v = r.varint('v', max);
      r.end('varint');
      return v;
    }
    function raw(tag: number, width: 2 | 4 | 8, value: bigint): Uint8Array {
      return concatBytes(Uint8Array.of(tag), bigIntToBytes(value, width));
    }

    it('round-trips every safe integer in its shortest form (property and boundaries)', () => {
      const expectLength = (v: number) => (v < 0xfd ? 1 : v <= 0xffff ? 3 : v <= 0xffffffff ? 5 : 9);
      const check = (v: number) => {
        const bytes = encodeVarint(v);
        assert.equal(bytes.length, expectLength(v), `length of ${v}`);
        assert.equal(readVarint(bytes), v);
      };
      for (const v of [0, 1, 0xfc, 0xfd, 0xfe, 0xff, 0xffff, 0x10000, 0xffffffff, 0x100000000, Number.MAX_SAFE_INTEGER]) check(v);
      fc.assert(fc.property(fc.oneof(fc.integer({ min: 0, max: 0x1ffff }), fc.maxSafeNat()), check), { seed: SEED, numRuns: 2000 });
    });

    it('refuses every non-minimal form', () => {
      // 0xfd followed by any value below 0xfd: all 253 of them.
      for (let v = 0; v < 0xfd; v++) decodeFails(() => readVarint(raw(0xfd, 2, BigInt(v))), 'DECODE_NON_CANONICAL');
      for (const v of [0n, 0xfcn, 0xfdn, 0xffffn]) decodeFails(() => readVarint(raw(0xfe, 4, v)), 'DECODE_NON_CANONICAL');
      for (const v of [0n, 0xfcn, 0xffffn, 0x10000n, 0xffffffffn]) decodeFails(() => readVarint(raw(0xff, 8, v)), 'DECODE_NON_CANONICAL');
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 0xffff }), fc.bigInt({ min: 0n, max: 0xffffffffn }), (small, medium) => {
          decodeFails(() => readVarint(raw(0xfe, 4, BigInt(small))), 'DECODE_NON_CANONICAL');
          decodeFails(() => readVarint(raw(0xff, 8, medium)), 'DECODE_NON_CANONICAL');
        }),
        { seed: SEED, numRuns: 2000 },
      );
      // The smallest value of each width is accepted.
      assert.equal(readVarint(raw(0xfd, 2, 0xfdn)), 0xfd);
      assert.equal(readVarint(raw(0xfe, 4, 0x10000n)), 0x10000);
      assert.equal(readVarint(raw(0xff, 8, 0x100000000n)), 0x100000000);
    });

    it('refuses values over the safe-integer range or over the caller\'s limit, and truncated forms', () => {
      for (const v of [2n ** 53n, 2n ** 63n, U64_MAX]) decodeFails(() => readVarint(raw(0xff, 8, v)), 'DECODE_OVER_LIMIT');
      assert.equal(readVarint(raw(0xff, 8, 2n ** 53n - 1n)), Number.MAX_SAFE_INTEGER);
      decodeFails(() => readVarint(encodeVarint(11), 10), 'DECODE_OVER_LIMIT');
      decodeFails(() => readVarint(encodeVarint(0x10000), 0xffff), 'DECODE_OVER_LIMIT');
      assert.equal(readVarint(encodeVarint(10), 10), 10);
      for (const bytes of [new Uint8Array(0), Uint8Array.of(0xfd, 1), Uint8Array.of(0xfe, 0, 1, 0), Uint8Array.of(0xff, 1, 0, 0, 0, 0, 0, 0)]) {
        decodeFails(() => readVarint(bytes), 'DECODE_TRUNCATED');
      }
      for (const v of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Infinity]) assert.throws(() => encodeVarint(v), RangeError);
    });
  });

  describe('malformed bytes', () => {
    it('refuses every truncation of a transaction and a header as DECODE_TRUNCATED', () => {
      for (let n = 0; n < SAMPLE_TX.bytes.length; n++) decodeFails(() => decodeTransaction(SAMPLE_TX.bytes.subarray(0, n)), 'DECODE_TRUNCATED');
      for (let n = 0; n < SAMPLE_HEADER.bytes.length; n++) decodeFails(() => decodeHeader(SAMPLE_HEADER.bytes.subarray(0, n)), 'DECODE_TRUNCATED');
    });

    it('refuses every truncation of a block, undo record and account', () => {
      for (const block of [SAMPLE_BLOCK_0, SAMPLE_BLOCK_2]) {
        for (let n = 0; n < block.bytes.length; n++) {
          // Past the count, a count that cannot fit in what is left is refused before reading any tx.
          const left = n - BLOCK_COUNT_AT;
          const code = left > 0 && block.txs.length > Math.floor(left / TX_BYTES) ? 'DECODE_OVER_LIMIT' : 'DECODE_TRUNCATED';
          decodeFails(() => decodeBlock(block.bytes.subarray(0, n)), code);
        }
      }
      for (let n = 0; n < SAMPLE_UNDO_BYTES.length; n++) {
        // Same for the undo count: each record takes at least 21 bytes.
        const code = n > 0 && SAMPLE_UNDO.length > Math.floor(n / 21) ? 'DECODE_OVER_LIMIT' : 'DECODE_TRUNCATED';
        decodeFails(() => decodeUndo(SAMPLE_UNDO_BYTES.subarray(0, n)), code);
      }
      for (let n = 0; n < SAMPLE_ACCOUNT_BYTES.length; n++) decodeFails(() => decodeAccount(SAMPLE_ACCOUNT_BYTES.subarray(0, n)), 'DECODE_TRUNCATED');
    });

    it('refuses every appended byte as DECODE_TRAILING_BYTES', () => {
      for (const codec of CODECS) {
        assert.deepEqual(codec.roundTrip(codec.sample), codec.sample, `${codec.name} sample round-trips`);
        for (let b = 0; b < 256; b++) {
          decodeFails(() => codec.roundTrip(concatBytes(codec.sample, Uint8Array.of(b))), 'DECODE_TRAILING_BYTES');
        }
      }
    });

    it('random mutations of valid encodings decode canonically or throw DecodeError (property)', () => {
      fc.assert(
        fc.property(fc.constantFrom(...CODECS), fc.array(arbByteEdit, { minLength: 1, maxLength: 4 }), (codec, edits) => {
          decodesCanonicallyOrRefuses(codec, editBytes(codec.sample, edits));
        }),
        { seed: SEED, numRuns: 5000 },
      );
    });

    it('random garbage of random lengths is refused with DecodeError or decodes canonically (property)', () => {
      fc.assert(
        fc.property(fc.constantFrom(...CODECS), fc.uint8Array({ maxLength: 700 }), (codec, bytes) => decodesCanonicallyOrRefuses(codec, bytes)),
        { seed: SEED, numRuns: 3000 },
      );
      // Garbage of exactly the right length reaches the field checks rather than stopping at the size.
      fc.assert(
        fc.property(fc.constantFrom(...CODECS), fc.nat(), (codec, seed) => {
          const bytes = new Uint8Array(codec.sample.length);
          let s = seed;
          for (let i = 0; i < bytes.length; i++) bytes[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
          decodesCanonicallyOrRefuses(codec, bytes);
        }),
        { seed: SEED, numRuns: 3000 },
      );
    });

    it('refuses a high-S signature (s replaced by n - s) as DECODE_NON_CANONICAL', () => {
      const s = BigInt('0x' + Buffer.from(SAMPLE_TX.signature.subarray(32)).toString('hex'));
      decodeFails(() => decodeTransaction(withBytes(SAMPLE_TX.bytes, TX_S_AT, bigIntToBytes(CURVE_ORDER - s, 32))), 'DECODE_NON_CANONICAL');
    });

    it('refuses r or s of 0 and r or s of at least n as DECODE_NON_CANONICAL', () => {
      const zero = new Uint8Array(32);
      for (const [at, value] of [
        [TX_R_AT, zero],
        [TX_S_AT, zero],
        [TX_R_AT, bigIntToBytes(CURVE_ORDER, 32)],
        [TX_R_AT, bigIntToBytes(CURVE_ORDER + 1n, 32)],
        [TX_R_AT, bigIntToBytes((1n << 256n) - 1n, 32)],
        [TX_S_AT, bigIntToBytes(CURVE_ORDER, 32)],
        [TX_S_AT, bigIntToBytes((CURVE_ORDER >> 1n) + 1n, 32)], // smallest high s
      ] as const) {
        decodeFails(() => decodeTransaction(withBytes(SAMPLE_TX.bytes, at, value)), 'DECODE_NON_CANONICAL');
      }
      // The largest accepted values still decode (they will not verify, which is a rule, not a form).
      decodeTransaction(withBytes(SAMPLE_TX.bytes, TX_R_AT, bigIntToBytes(CURVE_ORDER - 1n, 32)));
      decodeTransaction(withBytes(SAMPLE_TX.bytes, TX_S_AT, bigIntToBytes(CURVE_ORDER >> 1n, 32)));
    });

    it('judges r and s byte by byte exactly as their definition over integers (1 <= r < n, 1 <= s <= n/2)', () => {
      const n = CURVE_ORDER;
      // Values at and around every bound, and anything else.
      const near = fc.oneof(
        fc.constantFrom(0n, 1n, n >> 1n, n - 1n, n, (1n << 256n) - 1n).chain((b) => fc.bigInt({ min: -3n, max: 3n }).map((d) => b + d)),
        fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
      ).filter((v) => v >= 0n && v < 1n << 256n);
      fc.assert(
        fc.property(near, near, (r, s) => {
          const sig = concatBytes(bigIntToBytes(r, 32), bigIntToBytes(s, 32));
          assert.equal(isCanonicalSignature(sig), r >= 1n && r < n && s >= 1n && s <= n >> 1n);
        }),
        { seed: SEED, numRuns: 5000 },
      );
    });

    it('refuses a public key without a compressed prefix as DECODE_NON_CANONICAL', () => {
      for (const prefix of [0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0xff]) {
        decodeFails(() => decodeTransaction(withBytes(SAMPLE_TX.bytes, TX_PUBKEY_AT, Uint8Array.of(prefix))), 'DECODE_NON_CANONICAL');
      }
      for (const prefix of [0x02, 0x03]) decodeTransaction(withBytes(SAMPLE_TX.bytes, TX_PUBKEY_AT, Uint8Array.of(prefix)));
    });

    it('refuses an amount or fee above MAX_AMOUNT as DECODE_OVER_LIMIT', () => {
      for (const at of [TX_AMOUNT_AT, TX_FEE_AT]) {
        for (const v of [MAX_AMOUNT + 1n, U64_MAX]) {
          decodeFails(() => decodeTransaction(withBytes(SAMPLE_TX.bytes, at, bigIntToBytes(v, 8))), 'DECODE_OVER_LIMIT');
        }
        assert.ok(decodeTransaction(withBytes(SAMPLE_TX.bytes, at, bigIntToBytes(MAX_AMOUNT, 8))));
      }
    });

    it('refuses a transaction version other than 1 as DECODE_BAD_VERSION', () => {
      for (const v of [0, 2, 0x7f, 0xff]) decodeFails(() => decodeTransaction(withBytes(SAMPLE_TX.bytes, 0, Uint8Array.of(v))), 'DECODE_BAD_VERSION');
      // Inside a block too.
      const at = BLOCK_COUNT_AT + 1 + TX_BYTES; // version byte of the second tx
      decodeFails(() => decodeBlock(withBytes(SAMPLE_BLOCK_2.bytes, at, Uint8Array.of(2))), 'DECODE_BAD_VERSION');
    });

    it('refuses a tx count claiming more txs than the bytes hold as DECODE_OVER_LIMIT', () => {
      for (const [block, count] of [
        [SAMPLE_BLOCK_0, Uint8Array.of(1)],
        [SAMPLE_BLOCK_2, Uint8Array.of(3)],
        [SAMPLE_BLOCK_2, Uint8Array.of(0xfc)],
      ] as const) {
        decodeFails(() => decodeBlock(withBytes(block.bytes, BLOCK_COUNT_AT, count)), 'DECODE_OVER_LIMIT');
      }
      // Wide counts: the rest of the block is replaced by the count itself.
      const head = SAMPLE_BLOCK_0.bytes.subarray(0, BLOCK_COUNT_AT);
      for (const count of [fromHex('fe00010000'), fromHex('feffffffff'), fromHex('ff0000000100000000'), fromHex('ffffffffffffffffff')]) {
        decodeFails(() => decodeBlock(concatBytes(head, count)), 'DECODE_OVER_LIMIT');
      }
      // A count of 0 in a wider form than needed is not canonical.
      decodeFails(() => decodeBlock(concatBytes(head, fromHex('fd0000'))), 'DECODE_NON_CANONICAL');
      // A count too small leaves trailing bytes.
      decodeFails(() => decodeBlock(withBytes(SAMPLE_BLOCK_2.bytes, BLOCK_COUNT_AT, Uint8Array.of(1))), 'DECODE_TRAILING_BYTES');
    });

    it('refuses a block larger than MAX_BLOCK_BYTES_LIMIT before reading it', () => {
      decodeFails(() => decodeBlock(new Uint8Array(MAX_BLOCK_BYTES_LIMIT + 1)), 'DECODE_OVER_LIMIT');
      // At exactly the limit the size is fine and decoding proceeds (all-zero: an empty block, then trailing zeros).
      decodeFails(() => decodeBlock(new Uint8Array(MAX_BLOCK_BYTES_LIMIT)), 'DECODE_TRAILING_BYTES');
    });

    it('refuses undo records and accounts out of form', () => {
      const flagAt = 1 + 20;
      decodeFails(() => decodeUndo(withBytes(SAMPLE_UNDO_BYTES, flagAt, Uint8Array.of(2))), 'DECODE_NON_CANONICAL');
      decodeFails(() => decodeUndo(withBytes(SAMPLE_UNDO_BYTES, 0, Uint8Array.of(9))), 'DECODE_OVER_LIMIT');
      assert.deepEqual(decodeUndo(Uint8Array.of(0)), []);
      decodeFails(() => decodeAccount(concatBytes(bigIntToBytes(MAX_AMOUNT + 1n, 8), new Uint8Array(8))), 'DECODE_OVER_LIMIT');
      assert.deepEqual(decodeAccount(concatBytes(bigIntToBytes(MAX_AMOUNT, 8), bigIntToBytes(U64_MAX, 8))), { balance: MAX_AMOUNT, nonce: U64_MAX });
    });
  });

  describe('hex', () => {
    it('reads every byte in either case, and refuses odd lengths and any other character', () => {
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      const lower = Buffer.from(all).toString('hex');
      assert.deepEqual(fromHex(lower), all);
      assert.deepEqual(fromHex(lower.toUpperCase()), all);
      assert.deepEqual(fromHex(''), new Uint8Array(0));
      // U+0130 and U+0161 have the low bytes of "0" and "a": Buffer's own decoder would take them.
      for (const bad of ['0', 'abc', '0g', 'g0', ' 00', '00 ', '+1', '0x00', '\u01300', '0\u0161', 'é0', '\u0000\u0000']) {
        assert.throws(() => fromHex(bad), (err: unknown) => err instanceof DecodeError && err.code === 'DECODE_NON_CANONICAL', JSON.stringify(bad));
      }
      assert.throws(() => fromHex('00', 2), /expected 2 bytes of hex, got 1/);
    });
  });

  describe('addresses', () => {
    const BECH32_CHARS = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
    const SUBSTITUTES = [...new Set([...BECH32_CHARS, ...'abcdefghijklmnopqrstuvwxyz0123456789', 'Q', '-', ' '])];

    function rejected(text: string): void {
      assert.throws(() => decodeAddress(text), (e: unknown) => {
        assert.ok(e instanceof AddressError, `${JSON.stringify(text)}: expected AddressError, got ${String(e)}`);
        assert.equal(e.code, 'DECODE_NON_CANONICAL');
        return true;
      });
    }

    it('round-trips any 20 bytes (property)', () => {
      fc.assert(
        fc.property(arbBytes(20), (bytes) => {
          const text = encodeAddress(bytes);
          assert.match(text, /^cairn1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{38}$/);
          assert.deepEqual(decodeAddress(text), bytes);
        }),
        { seed: SEED, numRuns: 500 },
      );
    });

    it('rejects every single-character substitution (bech32m checksum)', () => {
      let checked = 0;
      for (const bytes of [new Uint8Array(20), new Uint8Array(20).fill(0xff), k0.address, k1.address, k2.address]) {
        const text = encodeAddress(bytes);
        for (let i = 0; i < text.length; i++) {
          for (const c of SUBSTITUTES) {
            if (c === text[i]) continue;
            rejected(text.slice(0, i) + c + text.slice(i + 1));
            checked++;
          }
        }
      }
      assert.ok(checked > 5 * 44 * 36);
    });

    it('rejects a wrong prefix, upper or mixed case, a wrong length and non-addresses', () => {
      const text = encodeAddress(k0.address);
      const words = bech32m.toWords(k0.address);
      for (const prefix of ['bc', 'cairm', 'cairnx', 'cair', 'tcairn']) rejected(bech32m.encode(prefix, words));
      rejected(text.toUpperCase()); // valid bech32m, but Cairn addresses are lower case only
      rejected(text.slice(0, 10) + text.slice(10, 11).toUpperCase() + text.slice(11));
      rejected('C' + text.slice(1));
      for (const length of [0, 1, 19, 21, 32]) rejected(bech32m.encode('cairn', bech32m.toWords(new Uint8Array(length).fill(7))));
      for (const junk of ['', 'cairn', 'cairn1', '1', text + 'q', text.slice(0, -1), ' ' + text, text + ' ']) rejected(junk);
      assert.throws(() => encodeAddress(new Uint8Array(19)), RangeError);
      assert.throws(() => encodeAddress(new Uint8Array(21)), RangeError);
    });
  });

  describe('amounts', () => {
    it('parses plain decimal strings from 0 to MAX_AMOUNT', () => {
      assert.equal(parseAmount('0'), 0n);
      assert.equal(parseAmount('1'), 1n);
      assert.equal(parseAmount('1500'), 1500n);
      assert.equal(parseAmount(MAX_AMOUNT.toString()), MAX_AMOUNT);
      fc.assert(
        fc.property(arbAmount, (v) => {
          assert.equal(parseAmount(v.toString()), v);
        }),
        { seed: SEED, numRuns: 1000 },
      );
    });

    it('rejects signs, leading zeros, points, exponents, spaces, empty, over MAX_AMOUNT and non-strings', () => {
      for (const text of [
        '-1', '+1', '01', '00', '-0', '1.5', '1.0', '1e3', '1E3', ' 1', '1 ', '', '0x10', '1_000', '1,000', '١', 'Infinity', 'NaN',
        (MAX_AMOUNT + 1n).toString(), U64_MAX.toString(), '99999999999999999999', '1' + '0'.repeat(19),
      ]) {
        assert.equal(parseAmount(text), undefined, JSON.stringify(text));
      }
      for (const value of [1, 0, 1n, null, undefined, {}, ['1'], true]) {
        assert.equal(parseAmount(value as unknown as string), undefined, String(value));
      }
      assert.equal(isValidAmount(-1n), false);
      assert.equal(isValidAmount(MAX_AMOUNT + 1n), false);
    });
  });
});

describe('Merkle tree', () => {
  /** RFC 6962 §2.1 as written: split at the largest power of two below n, recursively. */
  function rfc6962(ids: readonly Uint8Array[]): Uint8Array {
    if (ids.length === 1) return sha256(concatBytes(Uint8Array.of(0), ids[0]!));
    let k = 1;
    while (k * 2 < ids.length) k *= 2;
    return sha256(concatBytes(Uint8Array.of(1), rfc6962(ids.slice(0, k)), rfc6962(ids.slice(k))));
  }

  it('the bottom-up computation equals RFC 6962 recursive definition for every size up to 300', () => {
    for (let n = 1; n <= 300; n++) {
      const ids = Array.from({ length: n }, (_, i) => sha256(Uint8Array.of(n & 0xff, i & 0xff, i >> 8)));
      assert.deepEqual(merkleRoot(ids), rfc6962(ids), `${n} leaves`);
    }
  });

  it('refuses an empty list', () => {
    assert.throws(() => merkleRoot([]), RangeError);
  });
});

describe('transactionBytesAt: the transactions of an encoded block, read off their places', () => {
  it('gives the encoding of each transaction asked for, and none past the end', () => {
    const txs = Array.from({ length: 3 }, (_, i) => transfer(testKey(1), testKey(2).address, 1n + BigInt(i), BigInt(i)));
    const bytes = encodeBlock(SAMPLE_HEADER, { to: testKey(3).address, amount: 50n }, txs);
    const got = transactionBytesAt(bytes, [2, 0, 3, -1, 1.5]);
    assert.deepEqual(got.slice(0, 2).map((b) => Buffer.from(b!).toString('hex')), [txs[2]!, txs[0]!].map((tx) => Buffer.from(tx.bytes).toString('hex')));
    assert.deepEqual(got.slice(2), [undefined, undefined, undefined]);
    assert.deepEqual(transactionBytesAt(encodeBlock(SAMPLE_HEADER, { to: testKey(3).address, amount: 50n }, []), [0]), [undefined]);
  });
});
