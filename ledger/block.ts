import { Reader, Writer, bytesEqual, bytesToBigInt, bigIntToBytes, toHex } from './bytes.ts';
import { BlockRuleError, DecodeError } from './errors.ts';
import { sha256 } from './hash.ts';
import { ADDRESS_BYTES } from './keys.ts';
import { MAX_AMOUNT, isValidAmount } from './amount.ts';
import { merkleLeaf, merkleRootOfLeaves } from './merkle.ts';
import { TX_BYTES, readTransaction, type Transaction } from './transaction.ts';

/** 3 since inner nodes of the state tree hash without their prefix; 2 hashed them with it, and version 1 headers had no state root. */
export const BLOCK_VERSION = 3;
export const HASH_BYTES = 32;
/** version + height + prevHash + merkleRoot + stateRoot + timestamp + target + nonce */
export const HEADER_BYTES = 4 + 4 + HASH_BYTES * 3 + 8 + 32 + 8;
/** Where the target sits in a header's bytes (proof of work is judged on them, byte by byte). */
export const TARGET_OFFSET = 4 + 4 + HASH_BYTES * 3 + 8;
export const COINBASE_BYTES = ADDRESS_BYTES + 8;
/** No network may allow bigger blocks than this; decoding refuses anything larger before reading it. */
export const MAX_BLOCK_BYTES_LIMIT = 32 * 1024 * 1024;
/** Timestamps are seconds; keeping them below 2^53 lets them be plain numbers everywhere. */
const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

export interface HeaderFields {
  readonly version: number;
  readonly height: number;
  readonly prevHash: Uint8Array;
  readonly merkleRoot: Uint8Array;
  /** The root of the state tree (ledger/smt.ts) after applying the block: every account, committed. */
  readonly stateRoot: Uint8Array;
  /** Seconds since the Unix epoch. */
  readonly timestamp: number;
  /** The proof-of-work target: the header hash, as a 256-bit number, must not exceed it. */
  readonly target: bigint;
  readonly nonce: bigint;
}

export interface BlockHeader extends HeaderFields {
  readonly bytes: Uint8Array;
  readonly hash: Uint8Array;
}

/** The miner's payment: reward plus the fees of the block's transactions. */
export interface Coinbase {
  readonly to: Uint8Array;
  readonly amount: bigint;
}

export interface Block {
  readonly header: BlockHeader;
  readonly coinbase: Coinbase;
  readonly txs: readonly Transaction[];
  readonly bytes: Uint8Array;
}

function writeHeader(w: Writer, h: HeaderFields): Writer {
  if (!Number.isSafeInteger(h.timestamp) || h.timestamp < 0) throw new RangeError(`bad timestamp ${h.timestamp}`);
  return w
    .u32(h.version)
    .u32(h.height)
    .bytes(h.prevHash, HASH_BYTES)
    .bytes(h.merkleRoot, HASH_BYTES)
    .bytes(h.stateRoot, HASH_BYTES)
    .u64(BigInt(h.timestamp))
    .bytes(bigIntToBytes(h.target, 32))
    .u64(h.nonce);
}

export function makeHeader(fields: HeaderFields): BlockHeader {
  const bytes = writeHeader(new Writer(HEADER_BYTES), fields).finish();
  return { ...fields, bytes, hash: sha256(bytes) };
}

/** The height an encoded header, or a block that begins with one, gives: read alone, nothing else decoded. */
export function encodedHeight(bytes: Uint8Array): number {
  const r = new Reader(bytes);
  r.u32('header version');
  return r.u32('header height');
}

function readHeader(r: Reader): BlockHeader {
  const start = r.offset;
  const version = r.u32('header version');
  const height = r.u32('header height');
  const prevHash = r.bytes(HASH_BYTES, 'header prevHash');
  const root = r.bytes(HASH_BYTES, 'header merkleRoot');
  const stateRoot = r.bytes(HASH_BYTES, 'header stateRoot');
  const timestamp = r.u64('header timestamp');
  if (timestamp > BigInt(MAX_TIMESTAMP)) throw new DecodeError('DECODE_OVER_LIMIT', 'header timestamp too large');
  const target = bytesToBigInt(r.bytes(32, 'header target'));
  const nonce = r.u64('header nonce');
  const bytes = r.bytesBetween(start, r.offset);
  return { version, height, prevHash, merkleRoot: root, stateRoot, timestamp: Number(timestamp), target, nonce, bytes, hash: sha256(bytes) };
}

export function decodeHeader(bytes: Uint8Array): BlockHeader {
  const r = new Reader(new Uint8Array(bytes), { views: true });
  const header = readHeader(r);
  r.end('header');
  return header;
}

/**
 * `count` headers laid end to end (a headers message): one copy of the input, every header a
 * view into it, where decoding each alone would copy it twice. A sync decodes millions.
 */
export function decodeHeaderList(bytes: Uint8Array, count: number): BlockHeader[] {
  const r = new Reader(new Uint8Array(bytes), { views: true });
  const out: BlockHeader[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = readHeader(r);
  r.end('headers');
  return out;
}

/** Coinbase ids include the height, so two blocks paying the same miner the same amount differ. */
export function coinbaseId(height: number, coinbase: Coinbase): Uint8Array {
  return sha256(new Writer(4 + COINBASE_BYTES).u32(height).bytes(coinbase.to, ADDRESS_BYTES).u64(coinbase.amount).finish());
}

/** The Merkle root commits to the coinbase (first leaf) and every transaction id, in order. */
export function computeMerkleRoot(height: number, coinbase: Coinbase, txs: readonly Transaction[]): Uint8Array {
  const leaves: Uint8Array[] = new Array(txs.length + 1);
  leaves[0] = merkleLeaf(coinbaseId(height, coinbase));
  for (let i = 0; i < txs.length; i++) leaves[i + 1] = txs[i]!.merkleLeaf;
  return merkleRootOfLeaves(leaves);
}

/** The Merkle root of a block's own coinbase and transactions. */
export function blockMerkleRoot(block: Block): Uint8Array {
  return computeMerkleRoot(block.header.height, block.coinbase, block.txs);
}

export function encodeBlock(header: BlockHeader, coinbase: Coinbase, txs: readonly Transaction[]): Uint8Array {
  const w = new Writer(HEADER_BYTES + COINBASE_BYTES + 9 + txs.length * TX_BYTES)
    .bytes(header.bytes, HEADER_BYTES)
    .bytes(coinbase.to, ADDRESS_BYTES)
    .u64(coinbase.amount)
    .varint(txs.length);
  for (const tx of txs) w.bytes(tx.bytes);
  return w.finish();
}

export function makeBlock(header: BlockHeader, coinbase: Coinbase, txs: readonly Transaction[]): Block {
  return { header, coinbase, txs, bytes: encodeBlock(header, coinbase, txs) };
}

export function decodeBlock(bytes: Uint8Array): Block {
  if (bytes.length > MAX_BLOCK_BYTES_LIMIT) {
    throw new DecodeError('DECODE_OVER_LIMIT', `block of ${bytes.length} bytes exceeds ${MAX_BLOCK_BYTES_LIMIT}`);
  }
  // One copy of the input; header, coinbase and every transaction are views into it, so a block
  // of 10,000 transactions is one allocation rather than tens of thousands.
  const r = new Reader(new Uint8Array(bytes), { views: true });
  const header = readHeader(r);
  const coinbase = readCoinbase(r);
  // Transactions have a fixed size, so the count can be checked against what is left before reading any.
  const count = r.varint('tx count', Math.floor(r.remaining / TX_BYTES));
  const txs: Transaction[] = new Array(count);
  for (let i = 0; i < count; i++) txs[i] = readTransaction(r);
  r.end('block');
  return { header, coinbase, txs, bytes: r.bytesBetween(0, r.offset) };
}

/** A coinbase as a block and a compact block carry it: its recipient, and an amount of at most MAX_AMOUNT. */
export function readCoinbase(r: Reader): Coinbase {
  const to = r.bytes(ADDRESS_BYTES, 'coinbase recipient');
  const amount = r.u64('coinbase amount');
  if (!isValidAmount(amount)) throw new DecodeError('DECODE_OVER_LIMIT', 'coinbase amount exceeds MAX_AMOUNT');
  return { to, amount };
}

/**
 * The encodings of the transactions at `indexes` in an encoded block, read off their fixed places
 * without decoding the block (a peer asking for a few of a large block's transactions); an index
 * past the end has none. For blocks from our own store, which only holds blocks that decoded.
 */
export function transactionBytesAt(blockBytes: Uint8Array, indexes: readonly number[]): (Uint8Array | undefined)[] {
  const r = new Reader(blockBytes, { views: true });
  r.bytes(HEADER_BYTES + COINBASE_BYTES, 'header and coinbase');
  const count = r.varint('tx count', Math.floor(r.remaining / TX_BYTES));
  const first = r.offset;
  return indexes.map((i) => (Number.isInteger(i) && i >= 0 && i < count ? blockBytes.subarray(first + i * TX_BYTES, first + (i + 1) * TX_BYTES) : undefined));
}

export interface BlockLimits {
  readonly maxBlockBytes: number;
  readonly maxBlockTxs: number;
  readonly reward: bigint;
}

/**
 * Checks that need nothing but the block itself and the network's limits: version, Merkle root,
 * size, count, duplicate ids and the coinbase amount. A failure of the Merkle root says
 * nothing about the header (a peer can pair a good header with a bad body), which consensus
 * must remember before marking a header invalid. Consensus runs it once per block, on arrival
 * (consensus/sanity.ts), and its type says so from then on.
 */
export function checkBlockBody(block: Block, limits: BlockLimits): void {
  const { header, coinbase, txs } = block;
  if (header.version !== BLOCK_VERSION) {
    throw new BlockRuleError('BLOCK_BAD_VERSION', `unknown block version ${header.version}`);
  }
  // The body must be the header's before any rule judges it: a block that breaks a rule says the
  // header's chain is bad only if the header commits to that body. Anyone can pair a good header
  // with an oversized body, and a sync that blamed the header's sender for it could be made to
  // drop, and ban, the honest peer whose chain it was fetching.
  if (!bytesEqual(blockMerkleRoot(block), header.merkleRoot)) {
    throw new BlockRuleError('BLOCK_BAD_MERKLE_ROOT', 'Merkle root does not match the transactions');
  }
  if (block.bytes.length > limits.maxBlockBytes) {
    throw new BlockRuleError('BLOCK_TOO_LARGE', `block is ${block.bytes.length} bytes, limit ${limits.maxBlockBytes}`);
  }
  if (txs.length > limits.maxBlockTxs) {
    throw new BlockRuleError('BLOCK_TOO_MANY_TXS', `block has ${txs.length} txs, limit ${limits.maxBlockTxs}`);
  }
  const seen = new Set<string>();
  let fees = 0n;
  for (const tx of txs) {
    const id = tx.idHex;
    if (seen.has(id)) throw new BlockRuleError('BLOCK_DUPLICATE_TX', `transaction ${id} appears twice`);
    seen.add(id);
    fees += tx.fee;
  }
  const expected = limits.reward + fees;
  if (expected > MAX_AMOUNT || coinbase.amount !== expected) {
    throw new BlockRuleError('BLOCK_BAD_COINBASE', `coinbase pays ${coinbase.amount}, expected reward + fees = ${expected}`);
  }
}
