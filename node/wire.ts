import { Reader, Writer, bigIntToBytes, bytesToBigInt } from '../ledger/bytes.ts';
import { DecodeError } from '../ledger/errors.ts';
import { HASH_BYTES, HEADER_BYTES, decodeHeaderList, type BlockHeader } from '../ledger/block.ts';
import { TX_BYTES, decodeTransaction, type Transaction } from '../ledger/transaction.ts';

/**
 * The request-response messages of the sync protocol (docs/PROTOCOL.md, "Network protocol").
 * Every message is one length-prefixed frame; decoding is as strict as for blocks.
 */
export const WIRE_VERSION = 1;
export const MAX_LOCATOR_HASHES = 64;
export const MAX_HEADERS_PER_RESPONSE = 2000;
export const MAX_BLOCKS_PER_REQUEST = 64;
export const MAX_TXS_PER_BATCH = 1000;

export interface Status {
  readonly genesis: Uint8Array;
  readonly height: number;
  readonly tipHash: Uint8Array;
  readonly totalWork: bigint;
  /** Main-chain blocks 1 up to this height have no body at this node (pruned); 0: it has them all. */
  readonly prunedHeight: number;
}

export function encodeStatus(s: Status): Uint8Array {
  return new Writer(1 + 32 + 4 + 32 + 32 + 4)
    .u8(WIRE_VERSION)
    .bytes(s.genesis, HASH_BYTES)
    .u32(s.height)
    .bytes(s.tipHash, HASH_BYTES)
    .bytes(bigIntToBytes(s.totalWork, 32))
    .u32(s.prunedHeight)
    .finish();
}

function version(r: Reader, what: string): void {
  const v = r.u8(`${what} version`);
  if (v !== WIRE_VERSION) throw new DecodeError('DECODE_BAD_VERSION', `${what} version ${v}`);
}

export function decodeStatus(bytes: Uint8Array): Status {
  const r = new Reader(bytes);
  version(r, 'status');
  const s = { genesis: r.bytes(HASH_BYTES), height: r.u32(), tipHash: r.bytes(HASH_BYTES), totalWork: bytesToBigInt(r.bytes(32)), prunedHeight: r.u32() };
  r.end('status');
  if (s.prunedHeight > s.height) throw new DecodeError('DECODE_OVER_LIMIT', `pruned height ${s.prunedHeight} above the tip at ${s.height}`);
  return s;
}

/**
 * Main-chain headers by height, `count` from `from` on (fewer at the tip): `01 ‖ from u32 ‖ count
 * u16`, the encoding the light-client work (branch state) gives the same protocol, so that the
 * two are one message when they meet.
 */
export function encodeGetHeaderRange(from: number, count: number): Uint8Array {
  return new Writer(7).u8(WIRE_VERSION).u32(from).u8(count >>> 8).u8(count & 0xff).finish();
}

export function decodeGetHeaderRange(bytes: Uint8Array): { from: number; count: number } {
  const r = new Reader(bytes);
  version(r, 'getHeaderRange');
  const from = r.u32('from');
  const count = (r.u8('count') << 8) | r.u8('count');
  r.end('getHeaderRange');
  if (count === 0 || count > MAX_HEADERS_PER_RESPONSE) throw new DecodeError('DECODE_OVER_LIMIT', `header count ${count}`);
  return { from, count };
}

export interface GetHeaders {
  /** Main-chain hashes of the asker, newest first, sparser further back. */
  readonly locator: readonly Uint8Array[];
  readonly max: number;
}

export function encodeGetHeaders(m: GetHeaders): Uint8Array {
  const w = new Writer(16 + m.locator.length * HASH_BYTES).u8(WIRE_VERSION).varint(m.locator.length);
  for (const h of m.locator) w.bytes(h, HASH_BYTES);
  return w.u32(m.max).finish();
}

export function decodeGetHeaders(bytes: Uint8Array): GetHeaders {
  const r = new Reader(bytes);
  version(r, 'getHeaders');
  const n = r.varint('locator count', MAX_LOCATOR_HASHES);
  const locator: Uint8Array[] = [];
  for (let i = 0; i < n; i++) locator.push(r.bytes(HASH_BYTES, 'locator hash'));
  const max = r.u32('max headers');
  if (max === 0 || max > MAX_HEADERS_PER_RESPONSE) throw new DecodeError('DECODE_OVER_LIMIT', `max headers ${max}`);
  r.end('getHeaders');
  return { locator, max };
}

export function encodeHeaders(headers: readonly BlockHeader[]): Uint8Array {
  const w = new Writer(10 + headers.length * HEADER_BYTES).u8(WIRE_VERSION).varint(headers.length);
  for (const h of headers) w.bytes(h.bytes, HEADER_BYTES);
  return w.finish();
}

/** The same message from headers' encodings as stored (a node serving ranges from its store decodes nothing). */
export function encodeHeaderBytes(headers: readonly Uint8Array[]): Uint8Array {
  const w = new Writer(10 + headers.length * HEADER_BYTES).u8(WIRE_VERSION).varint(headers.length);
  for (const h of headers) w.bytes(h, HEADER_BYTES);
  return w.finish();
}

export function decodeHeaders(bytes: Uint8Array): BlockHeader[] {
  const r = new Reader(bytes, { views: true });
  version(r, 'headers');
  const n = r.varint('header count', MAX_HEADERS_PER_RESPONSE);
  const list = r.bytes(n * HEADER_BYTES, 'headers');
  r.end('headers');
  return decodeHeaderList(list, n);
}

export function encodeGetBlocks(hashes: readonly Uint8Array[]): Uint8Array {
  const w = new Writer(10 + hashes.length * HASH_BYTES).u8(WIRE_VERSION).varint(hashes.length);
  for (const h of hashes) w.bytes(h, HASH_BYTES);
  return w.finish();
}

export function decodeGetBlocks(bytes: Uint8Array): Uint8Array[] {
  const r = new Reader(bytes);
  version(r, 'getBlocks');
  const n = r.varint('block count', MAX_BLOCKS_PER_REQUEST);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(r.bytes(HASH_BYTES, 'block hash'));
  r.end('getBlocks');
  return out;
}

export function encodeTxBatch(txs: readonly Transaction[]): Uint8Array {
  const w = new Writer(10 + txs.length * TX_BYTES).u8(WIRE_VERSION).varint(txs.length);
  for (const tx of txs) w.bytes(tx.bytes, TX_BYTES);
  return w.finish();
}

/**
 * A batch of transactions: a gossip message, a push, a block of the mempool file. Each decoded
 * transaction owns a copy of its own 166 bytes, so a batch's buffer is not kept alive by the
 * one transaction of it still in the mempool.
 */
export function decodeTxBatch(bytes: Uint8Array): Transaction[] {
  const r = new Reader(bytes, { views: true });
  version(r, 'transaction batch');
  const n = r.varint('tx count', MAX_TXS_PER_BATCH);
  const out: Transaction[] = [];
  for (let i = 0; i < n; i++) out.push(decodeTransaction(r.bytes(TX_BYTES, 'transaction')));
  r.end('transaction batch');
  return out;
}
