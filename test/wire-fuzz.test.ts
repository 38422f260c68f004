/**
 * Every decoder of bytes a peer (or a file a user was handed) controls, fuzzed: what it takes
 * re-encodes to the very bytes it was given, and anything else is refused with its typed error,
 * never with a RangeError or TypeError that a handler might not expect (test/encoding.test.ts does
 * the same for the ledger's own encodings). Deeper by hand: CAIRN_FUZZ_SCALE=50 CAIRN_FUZZ_SEED=7 (test/helpers/fuzz.ts).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Writer, concatBytes, fromHex } from '../ledger/bytes.ts';
import { DecodeError } from '../ledger/errors.ts';
import { sha256 } from '../ledger/hash.ts';
import { makeBlock, makeHeader, type Block } from '../ledger/block.ts';
import { genesisBlock } from '../ledger/genesis.ts';
import { EMPTY_HASH } from '../ledger/smt.ts';
import { decodeAccountProof, encodeAccountProof } from '../ledger/smt-proof.ts';
import { positionsAt, type ChunkEntry, type ChunkProof } from '../ledger/smt-range.ts';
import { decodeTxProof, encodeTxProof, proveTransaction } from '../ledger/tx-proof.ts';
import { SNAPSHOT_HEAD_BYTES, SnapshotFileError, decodeFileChunk, decodeSnapshotHead, encodeFileChunk, encodeSnapshotHead } from '../consensus/snapshot-file.ts';
import { decodeCompactBlock, decodeGetBlockTxs, encodeCompactBlock, encodeGetBlockTxs, type CompactBlock } from '../node/compact.ts';
import { decodeBusy, encodeBusy } from '../node/transport.ts';
import { decodeGetSnapshotChunk, decodeSnapshotChunk, encodeGetSnapshotChunk, encodeSnapshotChunk } from '../node/snapshot-wire.ts';
import { decodeGetProofs, decodeProofs, encodeGetProofs, encodeProofs } from '../node/light/wire.ts';
import {
  WIRE_VERSION,
  decodeGetBlocks,
  decodeGetHeaderRange,
  decodeGetHeaders,
  decodeHeaders,
  decodeStatus,
  decodeTxBatch,
  encodeGetBlocks,
  encodeGetHeaderRange,
  encodeGetHeaders,
  encodeHeaders,
  encodeStatus,
  encodeTxBatch,
} from '../node/wire.ts';
import { testKey, testParams, transfer } from './helpers/fixtures.ts';
import { FUZZ_SEED as SEED, arbByteEdit, editBytes, fuzzRuns as runs } from './helpers/fuzz.ts';

const h = (n: number) => sha256(Uint8Array.of(n));
const [k0, k1] = [testKey(0), testKey(1)];
const TXS = [transfer(k0, k1.address, 5n, 1n), transfer(k1, k0.address, 7n, 2n, 3n)];
const header = (height: number) =>
  makeHeader({ version: 3, height, prevHash: h(1), merkleRoot: h(2), stateRoot: h(3), timestamp: 1_700_000_000 + height, target: (1n << 250n) - 1n, nonce: 42n });
const BLOCK: Block = makeBlock(header(12), { to: k0.address, amount: 50n }, TXS);
const ACCOUNT = { balance: 1_000_000n, nonce: 4n };
const POSITION = positionsAt(3)[5]!;
const ENTRIES: ChunkEntry[] = [
  { address: k0.address, account: ACCOUNT },
  { address: k1.address, account: { balance: 1n, nonce: 0n } },
];
const CHUNK_PROOF: ChunkProof = { siblings: [h(4), EMPTY_HASH, h(5)], end: { kind: 'other', key: h(6), account: ACCOUNT } };
const PARAMS = testParams();
const GENESIS = genesisBlock(PARAMS).header.hash;

function encodeCompact(c: CompactBlock): Uint8Array {
  const w = new Writer(256).u8(WIRE_VERSION).bytes(c.header.bytes).bytes(c.coinbase.to, 20).u64(c.coinbase.amount).varint(c.shortIds.length);
  for (const id of c.shortIds) w.bytes(fromHex(id));
  return w.finish();
}

interface Codec {
  readonly name: string;
  readonly samples: readonly Uint8Array[];
  /** Decodes, then re-encodes from the decoded value. */
  readonly roundTrip: (bytes: Uint8Array) => Uint8Array;
  /** The errors a refusal may take: DecodeError, and for files, their own. */
  readonly refusals?: readonly (new (...a: never[]) => Error)[];
}

const CODECS: Codec[] = [
  {
    name: 'status',
    samples: [encodeStatus({ genesis: h(7), height: 100, tipHash: h(8), totalWork: 123_456_789n, prunedHeight: 7 })],
    roundTrip: (b) => encodeStatus(decodeStatus(b)),
  },
  { name: 'getHeaderRange', samples: [encodeGetHeaderRange(5, 300)], roundTrip: (b) => { const m = decodeGetHeaderRange(b); return encodeGetHeaderRange(m.from, m.count); } },
  { name: 'getHeaders', samples: [encodeGetHeaders({ locator: [h(1), h(2), h(3)], max: 2000 })], roundTrip: (b) => encodeGetHeaders(decodeGetHeaders(b)) },
  { name: 'headers', samples: [encodeHeaders([header(1), header(2)]), encodeHeaders([])], roundTrip: (b) => encodeHeaders(decodeHeaders(b)) },
  { name: 'getBlocks', samples: [encodeGetBlocks([h(1), h(2)])], roundTrip: (b) => encodeGetBlocks(decodeGetBlocks(b)) },
  { name: 'transaction batch', samples: [encodeTxBatch(TXS)], roundTrip: (b) => encodeTxBatch(decodeTxBatch(b)) },
  { name: 'compact block', samples: [encodeCompactBlock(BLOCK)], roundTrip: (b) => encodeCompact(decodeCompactBlock(b, 1000)) },
  {
    name: 'getBlockTxs',
    samples: [encodeGetBlockTxs(h(9), [0, 3, 70_000])],
    roundTrip: (b) => { const m = decodeGetBlockTxs(b); return encodeGetBlockTxs(m.blockHash, m.indexes); },
  },
  { name: 'getSnapshotChunk', samples: [encodeGetSnapshotChunk({ height: 9, hash: h(9), position: POSITION })], roundTrip: (b) => encodeGetSnapshotChunk(decodeGetSnapshotChunk(b)) },
  {
    name: 'snapshot chunk',
    samples: [encodeSnapshotChunk({ kind: 'chunk', entries: ENTRIES, proof: CHUNK_PROOF }), encodeSnapshotChunk({ kind: 'split' })],
    roundTrip: (b) => encodeSnapshotChunk(decodeSnapshotChunk(b)),
  },
  { name: 'getProofs', samples: [encodeGetProofs(h(9), [k0.address, k1.address])], roundTrip: (b) => { const m = decodeGetProofs(b); return encodeGetProofs(m.blockHash, m.addresses); } },
  {
    name: 'proofs',
    samples: [encodeProofs({ kind: 'proofs', proofs: [Uint8Array.of(1, 2, 3), new Uint8Array(40)] }), encodeProofs({ kind: 'too-deep' })],
    roundTrip: (b) => encodeProofs(decodeProofs(b, 2)),
  },
  {
    name: 'account proof',
    samples: [encodeAccountProof({ siblings: [h(1), EMPTY_HASH, EMPTY_HASH, h(2)], end: { kind: 'leaf', account: ACCOUNT } }), encodeAccountProof({ siblings: [h(1)], end: { kind: 'other', key: h(3), account: ACCOUNT } })],
    roundTrip: (b) => encodeAccountProof(decodeAccountProof(b)),
  },
  { name: 'transaction proof', samples: [encodeTxProof(proveTransaction(BLOCK, 1))], roundTrip: (b) => encodeTxProof(decodeTxProof(b)) },
  {
    name: 'snapshot file chunk',
    samples: [encodeFileChunk(POSITION, ENTRIES, CHUNK_PROOF)],
    roundTrip: (b) => { const c = decodeFileChunk(b); return encodeFileChunk(c.position, c.entries, c.proof); },
    refusals: [DecodeError, SnapshotFileError],
  },
  {
    name: 'snapshot file head',
    samples: [encodeSnapshotHead(GENESIS, 5000)],
    // The head is the start of a file: what follows it is the chunks' business.
    roundTrip: (b) => concatBytes(encodeSnapshotHead(GENESIS, decodeSnapshotHead(b, PARAMS)), b.subarray(SNAPSHOT_HEAD_BYTES)),
    refusals: [SnapshotFileError],
  },
];

/** Either a clean decode that re-encodes to the very same bytes, or one of the codec's typed refusals: nothing else. */
function decodesCanonicallyOrRefuses(codec: Codec, bytes: Uint8Array): void {
  let again: Uint8Array;
  try {
    again = codec.roundTrip(bytes);
  } catch (err) {
    if ((codec.refusals ?? [DecodeError]).some((cls) => err instanceof cls)) return;
    throw new Error(`${codec.name}: ${String(err)} is not a typed refusal (input ${Buffer.from(bytes).toString('hex')})`);
  }
  assert.deepEqual(again, bytes, `${codec.name} decoded but re-encodes differently`);
}

const arbCase = fc.constantFrom(...CODECS.flatMap((codec) => codec.samples.map((sample) => ({ codec, sample }))));

describe('peer and file decoders under fuzzing', () => {
  it('every sample decodes and re-encodes to itself', () => {
    for (const codec of CODECS) for (const sample of codec.samples) assert.deepEqual(codec.roundTrip(sample), sample, codec.name);
  });

  it('random edits of valid messages decode canonically or are refused with a typed error (property)', () => {
    fc.assert(
      fc.property(arbCase, fc.array(arbByteEdit, { minLength: 1, maxLength: 4 }), ({ codec, sample }, edits) => decodesCanonicallyOrRefuses(codec, editBytes(sample, edits))),
      { seed: SEED, numRuns: runs(20_000) },
    );
  });

  it('random garbage, of random lengths and of each sample\'s length behind its first byte, is refused with a typed error or decodes canonically (property)', () => {
    fc.assert(
      fc.property(arbCase, fc.uint8Array({ maxLength: 600 }), ({ codec }, bytes) => decodesCanonicallyOrRefuses(codec, bytes)),
      { seed: SEED, numRuns: runs(5000) },
    );
    // Garbage behind a valid version byte (and for files their magic) gets past the first check.
    fc.assert(
      fc.property(arbCase, fc.nat(), fc.nat({ max: 12 }), ({ codec, sample }, seed, keep) => {
        const bytes = sample.slice();
        let s = seed;
        for (let i = Math.min(keep, bytes.length - 1); i < bytes.length; i++) bytes[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
        decodesCanonicallyOrRefuses(codec, bytes);
      }),
      { seed: SEED, numRuns: runs(5000) },
    );
  });

  it('a busy frame is read from exactly its five bytes, and any other frame is not one, whatever its bytes', () => {
    assert.equal(decodeBusy(encodeBusy(1500)), 1500);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (frame) => {
        const retry = decodeBusy(frame);
        if (frame.length === 5 && frame[0] === 0xff) assert.equal(retry, Buffer.from(frame).readUInt32BE(1));
        else assert.equal(retry, undefined);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});
