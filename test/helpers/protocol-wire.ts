/**
 * The checks of docs/PROTOCOL.md's network message and difficulty vectors (kinds `message` and
 * `target`), and the decoders its malformed message vectors name, for
 * test/protocol-vectors.test.ts: the code of node/ and consensus/ against the document, as the
 * rest of that suite holds ledger/ to it. A review found the messages had no vector at all, so an
 * implementation from the text alone had only the prose tables to go on.
 */
import assert from 'node:assert/strict';
import { Reader, bytesToBigInt, toHex } from '../../ledger/bytes.ts';
import { decodeBlock, decodeHeader, HEADER_BYTES, type BlockHeader } from '../../ledger/block.ts';
import type { ChainParams } from '../../ledger/genesis.ts';
import { decodeTransaction } from '../../ledger/transaction.ts';
import { encodeChunkPosition, readChunkPosition, readChunkProof } from '../../ledger/smt-range.ts';
import { nextTarget } from '../../consensus/difficulty.ts';
import { blockWork } from '../../consensus/pow.ts';
import {
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
} from '../../node/wire.ts';
import { decodeCompactBlock, decodeGetBlockTxs, encodeCompactBlock, encodeGetBlockTxs } from '../../node/compact.ts';
import { decodeGetProofs, decodeProofs, encodeGetProofs, encodeProofs, type ProofsAnswer } from '../../node/light/wire.ts';
import { decodeGetSnapshotChunk, decodeSnapshotChunk, encodeGetSnapshotChunk, encodeSnapshotChunk } from '../../node/snapshot-wire.ts';
import { decodeBusy, encodeBusy } from '../../node/transport.ts';
import { named, type Vector } from './protocol-doc.ts';

const hex = toHex;
const hexList = (list: readonly Uint8Array[]) => list.map(hex);
const headerOf = (name: string): BlockHeader => {
  const v = named(name);
  return decodeHeader(v.kind === 'header' ? v.peekHex('encoded') : v.peekHex('encoded').subarray(0, HEADER_BYTES));
};

/** The devnet's maxBlockTxs: what a compact block's short ids are bounded by there. */
const DEVNET_MAX_BLOCK_TXS = 5000;

/** Decoders of network messages, for the `malformed` vectors (the proofs answer to one address asked). */
export const WIRE_DECODERS: Record<string, (bytes: Uint8Array) => unknown> = {
  status: decodeStatus,
  getHeaders: decodeGetHeaders,
  headers: decodeHeaders,
  getBlocks: decodeGetBlocks,
  transactions: decodeTxBatch,
  getBlockTxs: decodeGetBlockTxs,
  getHeaderRange: decodeGetHeaderRange,
  getProofs: decodeGetProofs,
  proofs: (bytes) => decodeProofs(bytes, 1),
  getSnapshotChunk: decodeGetSnapshotChunk,
  snapshotChunk: decodeSnapshotChunk,
  compactBlock: (bytes) => decodeCompactBlock(bytes, DEVNET_MAX_BLOCK_TXS),
};

/** Per message: encode the vector's fields, and decode `encoded` back to them. */
const MESSAGES: Record<string, (v: Vector, encoded: Uint8Array) => void> = {
  status(v, encoded) {
    const status = { genesis: v.hex('genesis'), height: v.num('height'), tipHash: v.hex('tipHash'), totalWork: v.big('totalWork'), prunedHeight: v.num('prunedHeight') };
    assert.equal(hex(encodeStatus(status)), hex(encoded));
    const got = decodeStatus(encoded);
    assert.deepEqual({ ...got, genesis: hex(got.genesis), tipHash: hex(got.tipHash) }, { ...status, genesis: hex(status.genesis), tipHash: hex(status.tipHash) });
  },
  getHeaders(v, encoded) {
    const locator = v.list('locator').map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
    assert.equal(hex(encodeGetHeaders({ locator, max: v.num('max') })), hex(encoded));
    const got = decodeGetHeaders(encoded);
    assert.deepEqual({ locator: hexList(got.locator), max: got.max }, { locator: hexList(locator), max: v.num('max') });
  },
  headers(v, encoded) {
    const headers = v.list('header').map(headerOf);
    assert.equal(hex(encodeHeaders(headers)), hex(encoded));
    assert.deepEqual(hexList(decodeHeaders(encoded).map((h) => h.hash)), hexList(headers.map((h) => h.hash)));
  },
  getBlocks(v, encoded) {
    const hashes = v.list('hash').map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
    assert.equal(hex(encodeGetBlocks(hashes)), hex(encoded));
    assert.deepEqual(hexList(decodeGetBlocks(encoded)), hexList(hashes));
  },
  transactions(v, encoded) {
    const txs = v.list('tx').map((name) => decodeTransaction(named(name).peekHex('signed')));
    assert.equal(hex(encodeTxBatch(txs)), hex(encoded));
    assert.deepEqual(decodeTxBatch(encoded).map((tx) => tx.idHex), txs.map((tx) => tx.idHex));
  },
  getBlockTxs(v, encoded) {
    const blockHash = v.hex('blockHash');
    const indexes = v.list('index').map(Number);
    assert.equal(hex(encodeGetBlockTxs(blockHash, indexes)), hex(encoded));
    const got = decodeGetBlockTxs(encoded);
    assert.deepEqual({ blockHash: hex(got.blockHash), indexes: got.indexes }, { blockHash: hex(blockHash), indexes });
  },
  getHeaderRange(v, encoded) {
    const from = v.num('from');
    const count = v.num('count');
    assert.equal(hex(encodeGetHeaderRange(from, count)), hex(encoded));
    assert.deepEqual(decodeGetHeaderRange(encoded), { from, count });
  },
  getProofs(v, encoded) {
    const blockHash = v.hex('blockHash');
    const addresses = v.list('address').map((a) => Uint8Array.from(Buffer.from(a, 'hex')));
    assert.equal(hex(encodeGetProofs(blockHash, addresses)), hex(encoded));
    const got = decodeGetProofs(encoded);
    assert.deepEqual({ blockHash: hex(got.blockHash), addresses: hexList(got.addresses) }, { blockHash: hex(blockHash), addresses: hexList(addresses) });
  },
  proofs(v, encoded) {
    const code = v.num('answer');
    const proofs = code === 0 ? v.list('proof').map((name) => named(name).peekHex('proof')) : [];
    const answer: ProofsAnswer = code === 0 ? { kind: 'proofs', proofs } : { kind: code === 1 ? 'unknown-block' : 'too-deep' };
    assert.equal(hex(encodeProofs(answer)), hex(encoded));
    const got = decodeProofs(encoded, proofs.length);
    assert.deepEqual(got.kind === 'proofs' ? { ...got, proofs: hexList(got.proofs) } : got, code === 0 ? { kind: 'proofs', proofs: hexList(proofs) } : answer);
  },
  getSnapshotChunk(v, encoded) {
    const position = readChunkPosition(new Reader(v.hex('position')));
    const m = { height: v.num('height'), hash: v.hex('blockHash'), position };
    assert.equal(hex(encodeGetSnapshotChunk(m)), hex(encoded));
    const got = decodeGetSnapshotChunk(encoded);
    assert.deepEqual({ ...got, hash: hex(got.hash), position: hex(encodeChunkPosition(got.position)) }, { ...m, hash: hex(m.hash), position: hex(encodeChunkPosition(position)) });
  },
  snapshotChunk(v, encoded) {
    const code = v.num('answer');
    if (code !== 2) {
      const kind = code === 0 ? 'none' : 'split';
      assert.equal(hex(encodeSnapshotChunk({ kind })), hex(encoded));
      assert.deepEqual(decodeSnapshotChunk(encoded), { kind });
      return;
    }
    const chunk = named(v.text('chunk'));
    const entries = chunk.peekList('account').map((line) => {
      const [address, balance, nonce] = line.split(' ') as [string, string, string];
      return { address: Uint8Array.from(Buffer.from(address, 'hex')), account: { balance: BigInt(balance), nonce: BigInt(nonce) } };
    });
    const proof = readChunkProof(new Reader(chunk.peekHex('proof')));
    assert.equal(hex(encodeSnapshotChunk({ kind: 'chunk', entries, proof })), hex(encoded));
    const got = decodeSnapshotChunk(encoded);
    assert.ok(got.kind === 'chunk');
    assert.deepEqual(got.entries.map((e) => [hex(e.address), e.account.balance, e.account.nonce]), entries.map((e) => [hex(e.address), e.account.balance, e.account.nonce]));
    assert.deepEqual(hexList(got.proof.siblings), hexList(proof.siblings));
    assert.equal(got.proof.end.kind, proof.end.kind);
  },
  compactBlock(v, encoded) {
    const block = decodeBlock(named(v.text('block')).peekHex('encoded'));
    assert.equal(hex(encodeCompactBlock(block)), hex(encoded));
    const got = decodeCompactBlock(encoded, DEVNET_MAX_BLOCK_TXS);
    assert.equal(hex(got.header.hash), hex(block.header.hash));
    assert.deepEqual([hex(got.coinbase.to), got.coinbase.amount], [hex(block.coinbase.to), block.coinbase.amount]);
    assert.deepEqual(got.shortIds, block.txs.map((tx) => tx.idHex.slice(0, 16)));
  },
  busy(v, encoded) {
    assert.equal(hex(encodeBusy(v.num('retryAfter'))), hex(encoded));
    assert.equal(decodeBusy(encoded), v.num('retryAfter'));
  },
};

export const WIRE_CHECKS: Record<string, (v: Vector, network: (v: Vector) => ChainParams) => void> = {
  message(v) {
    const check = MESSAGES[v.text('message')];
    assert.ok(check, `${v.name}: unknown message "${v.peekText('message')}"`);
    check(v, v.hex('encoded'));
  },

  target(v, network) {
    const params = network(v);
    const parent = { height: v.num('parentHeight'), timestamp: v.num('parentTimestamp') };
    const anchor = v.has('block1Timestamp') ? v.num('block1Timestamp') : undefined;
    const target = nextTarget(params, parent, anchor);
    assert.equal(target.toString(16).padStart(64, '0'), hex(v.hex('target')));
    assert.equal(blockWork(bytesToBigInt(v.hex('target'))), v.big('work'));
  },
};

/** Every message the vectors must show at least once. */
export const MESSAGE_NAMES = Object.keys(MESSAGES);
