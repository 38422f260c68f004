import { Reader, Writer, bytesEqual, toHex } from '../ledger/bytes.ts';
import { BlockRuleError, DecodeError } from '../ledger/errors.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import { checkBlockSanity, type SaneBlock } from '../consensus/sanity.ts';
import { ADDRESS_BYTES } from '../ledger/keys.ts';
import { COINBASE_BYTES, HASH_BYTES, HEADER_BYTES, decodeHeader, makeBlock, readCoinbase, transactionBytesAt, type Block, type BlockHeader } from '../ledger/block.ts';
import { SHORT_ID_BYTES, type Mempool } from '../ledger/mempool.ts';
import { TX_BYTES, decodeTransaction, type Transaction } from '../ledger/transaction.ts';
import type { Transport } from './transport.ts';
import type { NetworkNames } from './protocols.ts';
import { WIRE_VERSION } from './wire.ts';
import type { Serve } from './serving.ts';

/**
 * Compact block relay, after Bitcoin's BIP 152: a new block travels as its header, coinbase and
 * an 8-byte short id per transaction (the first 8 bytes of its id). Peers rebuild it from their
 * mempools and ask the peer that forwarded it for the few transactions they lack; that peer has
 * the block, because gossip forwards only what its validator accepted.
 *
 * Short ids are unsalted: a collision (found by grinding, or by chance) only costs a fallback to
 * fetching the transactions, since the rebuilt block must still match the header's Merkle root.
 */
export { SHORT_ID_BYTES };

export interface CompactBlock {
  readonly header: BlockHeader;
  readonly coinbase: { readonly to: Uint8Array; readonly amount: bigint };
  readonly shortIds: readonly string[];
}

export function shortId(txid: Uint8Array): string {
  return toHex(txid.subarray(0, SHORT_ID_BYTES));
}

export function encodeCompactBlock(block: Block): Uint8Array {
  const w = new Writer(HEADER_BYTES + COINBASE_BYTES + 10 + block.txs.length * SHORT_ID_BYTES)
    .u8(WIRE_VERSION)
    .bytes(block.header.bytes)
    .bytes(block.coinbase.to, ADDRESS_BYTES)
    .u64(block.coinbase.amount)
    .varint(block.txs.length);
  for (const tx of block.txs) w.bytes(tx.id.subarray(0, SHORT_ID_BYTES));
  return w.finish();
}

export function decodeCompactBlock(bytes: Uint8Array, maxTxs: number): CompactBlock {
  const r = new Reader(bytes);
  const version = r.u8('compact block version');
  if (version !== WIRE_VERSION) throw new DecodeError('DECODE_BAD_VERSION', `compact block version ${version}`);
  const header = decodeHeader(r.bytes(HEADER_BYTES, 'header'));
  const coinbase = readCoinbase(r);
  const n = r.varint('short id count', maxTxs);
  // One hex string for all of them, cut up: a conversion per id was most of the decode.
  const hex = toHex(r.bytes(n * SHORT_ID_BYTES, 'short ids'));
  const shortIds: string[] = new Array(n);
  for (let i = 0; i < n; i++) shortIds[i] = hex.slice(i * SHORT_ID_BYTES * 2, (i + 1) * SHORT_ID_BYTES * 2);
  r.end('compact block');
  return { header, coinbase, shortIds };
}

/**
 * Result of matching a compact block against the mempool: the transactions found, and the gaps.
 * A lookup per short id, never a walk over the pool, whose size the block does not bound.
 */
export function matchMempool(compact: CompactBlock, mempool: Pick<Mempool, 'byShortId'>): { txs: (Transaction | undefined)[]; missing: number[] } {
  const txs = compact.shortIds.map((id) => mempool.byShortId(id));
  const missing: number[] = [];
  txs.forEach((tx, i) => tx === undefined && missing.push(i));
  return { txs, missing };
}

/**
 * The full block, checked for sanity, if the transactions found rebuild exactly what the header
 * commits to; undefined if they do not (a short-id collision, or a peer's wrong transactions).
 * Any other rule the block breaks is thrown, as for a block that travelled whole.
 */
export function assemble(compact: CompactBlock, txs: readonly Transaction[], params: ChainParams): SaneBlock | undefined {
  try {
    return checkBlockSanity(makeBlock(compact.header, compact.coinbase, txs), params);
  } catch (err) {
    if (err instanceof BlockRuleError && err.code === 'BLOCK_BAD_MERKLE_ROOT') return undefined;
    throw err;
  }
}

export const MAX_REQUESTED = 100_000;
/**
 * A node serves getBlockTxs for blocks at most this far below its tip (and for one it is
 * importing), as BIP 152 serves only recent blocks: the request exists for a block just
 * announced, and would otherwise be a way to download old blocks around the blocks protocol's
 * budgets.
 */
export const BLOCK_TXS_DEPTH = 10;
/** getBlockTxs: 01 ‖ hash ‖ count ‖ 100,000 indexes of 4 bytes, with room to spare. */
export const GET_BLOCK_TXS_MAX_BYTES = 64 + MAX_REQUESTED * 4;

export function encodeGetBlockTxs(blockHash: Uint8Array, indexes: readonly number[]): Uint8Array {
  const w = new Writer(48 + indexes.length * 4).u8(WIRE_VERSION).bytes(blockHash, HASH_BYTES).varint(indexes.length);
  for (const i of indexes) w.u32(i);
  return w.finish();
}

export function decodeGetBlockTxs(bytes: Uint8Array): { blockHash: Uint8Array; indexes: number[] } {
  const r = new Reader(bytes);
  if (r.u8('version') !== WIRE_VERSION) throw new DecodeError('DECODE_BAD_VERSION', 'getBlockTxs version');
  const blockHash = r.bytes(HASH_BYTES, 'block hash');
  const n = r.varint('index count', Math.min(MAX_REQUESTED, Math.floor(r.remaining / 4)));
  const indexes: number[] = [];
  for (let i = 0; i < n; i++) {
    const index = r.u32('index');
    // Strictly ascending, as a receiver asks: an index asked twice was a way to be sent a block's
    // bytes many times over for one request's cost.
    if (i > 0 && index <= indexes[i - 1]!) throw new DecodeError('DECODE_NON_CANONICAL', 'getBlockTxs indexes must be strictly ascending');
    indexes.push(index);
  }
  r.end('getBlockTxs');
  return { blockHash, indexes };
}

/**
 * Serves the transactions of a stored block by position (the answer is a transaction push body),
 * copied out of the stored block's bytes: decoding a 20,000-transaction block for every peer that
 * lacks a few of them was tens of megabytes of garbage each time.
 */
export async function serveBlockTxs(
  serve: Serve,
  names: NetworkNames,
  getBlockBytes: (hash: Uint8Array) => Promise<Uint8Array | undefined>,
  onBadRequest: (peer: string, err: unknown) => void,
): Promise<void> {
  await serve(
    'blockTxs',
    names.blockTxs,
    async (req) => {
      const { blockHash, indexes } = decodeGetBlockTxs(req);
      const stored = await getBlockBytes(blockHash);
      const txs = stored ? transactionBytesAt(stored, indexes).filter((tx): tx is Uint8Array => tx !== undefined) : [];
      const w = new Writer(16 + txs.length * TX_BYTES).u8(WIRE_VERSION).varint(txs.length);
      for (const tx of txs) w.bytes(tx);
      return w.finish();
    },
    { timeoutMs: 5000, maxBytes: GET_BLOCK_TXS_MAX_BYTES, onBadRequest },
  );
}

/**
 * Asks `peer` for the transactions of block `hash` at `indexes`; checks each against its short
 * id. Undefined for an empty answer (an honest peer that no longer serves the block), or for more
 * indexes than one request may carry (MAX_REQUESTED), which are not asked for; a DecodeError
 * for any other answer that is not what was asked: the peer forwarded the compact block, so it
 * holds the block those short ids came from (PROTOCOL.md, Compact blocks).
 */
export async function fetchBlockTxs(transport: Transport, names: NetworkNames, peer: string, compact: CompactBlock, indexes: readonly number[]): Promise<Transaction[] | undefined> {
  // More than a request carries, which the answerer refuses as the asker's offence: the caller
  // syncs such a block whole (only a network of blocks over 16.6 MB has one).
  if (indexes.length > MAX_REQUESTED) return undefined;
  const bytes = await transport.request(peer, names.blockTxs, encodeGetBlockTxs(compact.header.hash, indexes), {
    timeoutMs: 5000,
    maxBytes: 16 + indexes.length * TX_BYTES,
  });
  const r = new Reader(bytes);
  const version = r.u8('block transactions version');
  if (version !== WIRE_VERSION) throw new DecodeError('DECODE_BAD_VERSION', `block transactions version ${version}`);
  const n = r.varint('tx count', indexes.length);
  if (n === 0) return undefined;
  if (n !== indexes.length) throw new DecodeError('DECODE_NON_CANONICAL', `${n} block transactions for ${indexes.length} asked`);
  const txs: Transaction[] = [];
  for (let i = 0; i < n; i++) {
    const tx = decodeTransaction(r.bytes(TX_BYTES, 'transaction'));
    if (shortId(tx.id) !== compact.shortIds[indexes[i]!]) {
      throw new DecodeError('DECODE_NON_CANONICAL', `block transaction ${indexes[i]} is not the one its short id names`);
    }
    txs.push(tx);
  }
  r.end('block txs');
  return txs;
}
