/**
 * The JSON the REST API answers with, in Esplora's shapes where an account model allows (its
 * field names, snake_case): a block, a transaction with its status, an address line. Amounts,
 * fees and nonces are decimal strings of base units, as everywhere in Cairn's APIs.
 */
import { toHex } from '../../ledger/bytes.ts';
import { encodeAddress } from '../../ledger/keys.ts';
import { COINBASE_BYTES, type Block, type BlockHeader } from '../../ledger/block.ts';
import type { Transaction } from '../../ledger/transaction.ts';
import { ROLE_COINBASE, ROLE_RECEIVED, ROLE_SENT, type AddressEntry } from '../../ledger/address-index.ts';
import { blockWork } from '../../consensus/pow.ts';

export interface TxStatus {
  confirmed: boolean;
  block_height: number | null;
  block_hash: string | null;
  block_time: number | null;
}

export const UNCONFIRMED: TxStatus = { confirmed: false, block_height: null, block_hash: null, block_time: null };

export function confirmedIn(block: Block): TxStatus {
  return { confirmed: true, block_height: block.header.height, block_hash: toHex(block.header.hash), block_time: block.header.timestamp };
}

/** `mediantime`: the block's median time past (rest.ts medianTimes), null where the node cannot tell it. */
export function blockJson(block: Block, mediantime: number | null) {
  const h = block.header;
  return {
    id: toHex(h.hash),
    height: h.height,
    version: h.version,
    timestamp: h.timestamp,
    mediantime,
    tx_count: block.txs.length,
    size: block.bytes.length,
    merkle_root: toHex(h.merkleRoot),
    previousblockhash: h.height === 0 ? null : toHex(h.prevHash),
    nonce: h.nonce.toString(),
    target: h.target.toString(16).padStart(64, '0'),
    /** Expected hashes to find a block at this target. */
    difficulty: blockWork(h.target).toString(),
    miner: h.height === 0 ? null : encodeAddress(block.coinbase.to),
    reward: block.coinbase.amount.toString(),
    fees: block.txs.reduce((s, tx) => s + tx.fee, 0n).toString(),
  };
}

/**
 * A transfer in Esplora's shape, where a client reads `vin[0].is_coinbase` (undefined for a
 * transfer until it had one) and the payer from `vin[].prevout.scriptpubkey_address`: one input,
 * the sender's account, which spends no earlier output (no `txid` or `vout`) and gives the amount
 * plus the fee (`prevout.value`, a decimal string as every amount here).
 */
export function txJson(tx: Transaction, status: TxStatus) {
  const from = encodeAddress(tx.from);
  return {
    txid: tx.idHex,
    version: 1,
    chain_id: tx.chainId,
    vin: [{ is_coinbase: false, prevout: { scriptpubkey_address: from, value: (tx.amount + tx.fee).toString() } }],
    from,
    to: encodeAddress(tx.to),
    amount: tx.amount.toString(),
    fee: tx.fee.toString(),
    nonce: tx.nonce.toString(),
    size: tx.bytes.length,
    status,
  };
}

/**
 * A main-chain block's coinbase as a transaction object, under its block's hash (a coinbase has no
 * id of its own: its address line's `txid`): Esplora marks one `vin: [{ is_coinbase: true, prevout: null }]`; no
 * sender, fee or nonce; `amount` the reward plus the block's fees; `size` its bytes in the block.
 */
export function coinbaseJson(block: Block, chainId: number) {
  return {
    txid: toHex(block.header.hash),
    version: 1,
    chain_id: chainId,
    vin: [{ is_coinbase: true, prevout: null }],
    from: null,
    to: block.header.height === 0 ? null : encodeAddress(block.coinbase.to),
    amount: block.coinbase.amount.toString(),
    fee: '0',
    nonce: null,
    size: COINBASE_BYTES,
    status: confirmedIn(block),
  };
}

export type AddressTxKind = 'sent' | 'received' | 'self' | 'coinbase';

export function kindOf(roles: number): AddressTxKind {
  if (roles & ROLE_COINBASE) return 'coinbase';
  if (roles & ROLE_SENT && roles & ROLE_RECEIVED) return 'self';
  return roles & ROLE_SENT ? 'sent' : 'received';
}

/** The cursor of an address line: the next page starts after it. */
export function cursorOf(e: Pick<AddressEntry, 'height' | 'position'>): string {
  return `${e.height}-${e.position}`;
}

export function parseCursor(text: string): { height: number; position: number } | undefined {
  const m = /^(\d{1,10})-(\d{1,10})$/.exec(text);
  if (!m) return undefined;
  const height = Number(m[1]);
  const position = Number(m[2]);
  return height <= 0xffffffff && position <= 0xffffffff ? { height, position } : undefined;
}

/**
 * One line of an address's history: a transfer it sent or received, or a coinbase that paid it.
 * A coinbase has no transaction id: its line's `txid` is its block's hash, what the address index
 * keeps for it, unique among lines, and what an Esplora client pages after (`last_seen_txid`).
 */
export function addressLine(address: string, kind: AddressTxKind, block: Block | undefined, tx: Transaction | undefined, cursor: string | null) {
  return {
    cursor,
    kind,
    txid: tx ? tx.idHex : toHex(block!.header.hash),
    from: tx ? encodeAddress(tx.from) : null,
    to: tx ? encodeAddress(tx.to) : address,
    amount: (tx ? tx.amount : block!.coinbase.amount).toString(),
    fee: tx ? tx.fee.toString() : '0',
    status: block ? confirmedIn(block) : UNCONFIRMED,
  };
}

/**
 * A line of an address's history in a block a pruned node no longer has the body of: what the
 * address index knows (kind, transaction id, the block), `pruned: true`, and nulls for the rest.
 */
export function prunedAddressLine(address: string, kind: AddressTxKind, header: BlockHeader, txid: Uint8Array | undefined, cursor: string) {
  return {
    cursor,
    kind,
    txid: toHex(txid ?? header.hash),
    from: null,
    to: kind === 'coinbase' ? address : null,
    amount: null,
    fee: null,
    status: { confirmed: true, block_height: header.height, block_hash: toHex(header.hash), block_time: header.timestamp },
    pruned: true,
  };
}
