import { Reader, Writer, toHex } from './bytes.ts';
import { BlockRuleError, DecodeError, TxRuleError } from './errors.ts';
import { ADDRESS_BYTES } from './keys.ts';
import { MAX_AMOUNT } from './amount.ts';
import type { Block } from './block.ts';
import { checkTxSignature, type Transaction } from './transaction.ts';

export interface Account {
  readonly balance: bigint;
  readonly nonce: bigint;
}

export const EMPTY_ACCOUNT: Account = { balance: 0n, nonce: 0n };
export const ACCOUNT_BYTES = 16;

/** Where the state transition reads accounts from: the store, or an overlay on top of it. */
export interface AccountSource {
  getAccount(address: Uint8Array): Promise<Account | undefined>;
  /**
   * The same answers as `getAccount` for each, in one round trip to the store where it has one.
   * `keys` are the addresses in hex, which the caller has already made.
   */
  getAccounts?(addresses: readonly Uint8Array[], keys: readonly string[]): Promise<(Account | undefined)[]>;
}

/** `source`'s answers for each of `addresses` (`keys`: the same in hex), in one round trip where it can. */
export function readAccounts(source: AccountSource, addresses: readonly Uint8Array[], keys: readonly string[]): Promise<(Account | undefined)[]> {
  return source.getAccounts ? source.getAccounts(addresses, keys) : Promise.all(addresses.map((address) => source.getAccount(address)));
}

/** `source`'s accounts of `addresses` (by hex key; none: EMPTY_ACCOUNT), by key, in one round trip where it can. */
export async function readAccountsByKey(source: AccountSource, addresses: ReadonlyMap<string, Uint8Array>): Promise<Map<string, Account>> {
  const keys = [...addresses.keys()];
  const found = await readAccounts(source, [...addresses.values()], keys);
  return new Map(keys.map((key, i) => [key, found[i] ?? EMPTY_ACCOUNT]));
}

/** An account as it was before a block touched it; `undefined` means it did not exist. */
export interface UndoRecord {
  readonly address: Uint8Array;
  readonly previous: Account | undefined;
}

/** What connecting a block does to state, computed in memory before anything is written. */
export interface BlockEffects {
  /** Every touched account with its new value, in the order first touched; `key` is the address in hex. */
  readonly accounts: ReadonlyArray<{ readonly address: Uint8Array; readonly key: string; readonly account: Account }>;
  /** The same accounts with their previous values: enough to disconnect the block exactly. */
  readonly undo: readonly UndoRecord[];
  readonly fees: bigint;
}

/**
 * Verifies transaction signatures in a batch. A parameter so the import path can swap in a
 * worker pool or a cache of signatures already checked at mempool admission.
 */
export interface SignatureChecker {
  checkBlockSignatures(txs: readonly Transaction[]): Promise<void>;
}

export const inlineSignatureChecker: SignatureChecker = {
  async checkBlockSignatures(txs) {
    txs.forEach((tx, i) => checkTxSignature(tx, i));
  },
};

export interface StateRules {
  readonly chainId: number;
}

/**
 * The stateful rules for one transaction against the sender's and recipient's current accounts.
 * Shared by block connection and mempool admission, so both judge a transaction alike.
 */
export function checkTxAgainstState(tx: Transaction, sender: Account, rules: StateRules, txIndex?: number): void {
  if (tx.chainId !== rules.chainId) {
    throw new TxRuleError('TX_WRONG_CHAIN', `chainId ${tx.chainId}, expected ${rules.chainId}`, 100, txIndex);
  }
  if (tx.nonce !== sender.nonce) {
    throw new TxRuleError('TX_BAD_NONCE', `nonce ${tx.nonce}, expected ${sender.nonce}`, 0, txIndex);
  }
  const cost = tx.amount + tx.fee;
  if (cost > MAX_AMOUNT) {
    throw new TxRuleError('TX_AMOUNT_OVER_LIMIT', 'amount + fee exceeds MAX_AMOUNT', 100, txIndex);
  }
  if (sender.balance < cost) {
    throw new TxRuleError('TX_INSUFFICIENT_BALANCE', `balance ${sender.balance} < amount + fee ${cost}`, 0, txIndex);
  }
}

interface OverlayEntry {
  readonly address: Uint8Array;
  readonly key: string;
  before: Account | undefined;
  after: Account;
}

/**
 * A read-through overlay: reads each account once from the source, then works on its own copy.
 * A block's accounts are all read up front (`preload`), so applying its transactions is
 * synchronous: no await, and no store round trip, per transaction. Accounts are keyed by their
 * address in hex (Transaction.fromKey / toKey).
 */
export class StateOverlay implements AccountSource {
  private readonly source: AccountSource;
  private readonly entries = new Map<string, OverlayEntry>();

  constructor(source: AccountSource) {
    this.source = source;
  }

  async getAccount(address: Uint8Array): Promise<Account | undefined> {
    const entry = this.entries.get(toHex(address));
    return entry ? entry.after : this.source.getAccount(address);
  }

  /**
   * Reads every account in `addresses` (hex `keys`) not yet in the overlay, in one batch where the
   * source can. Not to be called again before it resolves.
   */
  async preload(addresses: readonly Uint8Array[], keys: readonly string[]): Promise<void> {
    const fresh: OverlayEntry[] = [];
    const freshAddresses: Uint8Array[] = [];
    const freshKeys: string[] = [];
    for (let i = 0; i < addresses.length; i++) {
      const key = keys[i]!;
      if (this.entries.has(key)) continue;
      const entry: OverlayEntry = { address: addresses[i]!, key, before: undefined, after: EMPTY_ACCOUNT };
      this.entries.set(key, entry);
      fresh.push(entry);
      freshAddresses.push(entry.address);
      freshKeys.push(key);
    }
    const found = await readAccounts(this.source, freshAddresses, freshKeys);
    for (let i = 0; i < fresh.length; i++) {
      const account = found[i];
      fresh[i]!.before = account;
      fresh[i]!.after = account ?? EMPTY_ACCOUNT;
    }
  }

  /** The current value of an account `preload` has read. */
  loaded(key: string): Account {
    const entry = this.entries.get(key);
    if (!entry) throw new Error(`account ${key} was not preloaded`);
    return entry.after;
  }

  /** The account must have been preloaded. */
  set(key: string, account: Account): void {
    this.entries.get(key)!.after = account;
  }

  effects(fees: bigint): BlockEffects {
    const list = [...this.entries.values()];
    return {
      accounts: list.map((e) => ({ address: e.address, key: e.key, account: e.after })),
      undo: list.map((e) => ({ address: e.address, previous: e.before })),
      fees,
    };
  }
}

/**
 * Applies one transaction to an overlay that has preloaded its sender and recipient. Does not
 * check the signature (see SignatureChecker). Returns the fee it pays.
 */
export function applyTransaction(state: StateOverlay, tx: Transaction, rules: StateRules, txIndex?: number): bigint {
  const sender = state.loaded(tx.fromKey);
  checkTxAgainstState(tx, sender, rules, txIndex);
  state.set(tx.fromKey, { balance: sender.balance - tx.amount - tx.fee, nonce: sender.nonce + 1n });
  const recipient = state.loaded(tx.toKey); // after the debit, so a payment to oneself sees it
  const credited = recipient.balance + tx.amount;
  if (credited > MAX_AMOUNT) {
    throw new TxRuleError('TX_BALANCE_OVERFLOW', 'recipient balance would exceed MAX_AMOUNT', 0, txIndex);
  }
  state.set(tx.toKey, { balance: credited, nonce: recipient.nonce });
  return tx.fee;
}

/**
 * The state transition of a block whose body has passed `checkBlockBody`: every signature, then
 * every transaction in order, then the coinbase. Deterministic, and writes nothing: the caller
 * commits the returned effects in one batch, or drops them.
 */
export async function applyBlock(
  source: AccountSource,
  block: Pick<Block, 'txs' | 'coinbase'>,
  rules: StateRules,
  signatures: SignatureChecker = inlineSignatureChecker,
): Promise<BlockEffects> {
  const state = new StateOverlay(source);
  const addresses: Uint8Array[] = [];
  const keys: string[] = [];
  for (const tx of block.txs) {
    addresses.push(tx.from, tx.to);
    keys.push(tx.fromKey, tx.toKey);
  }
  const minerKey = toHex(block.coinbase.to);
  addresses.push(block.coinbase.to);
  keys.push(minerKey);
  // The store's reads overlap the signature checks (which may be on other threads).
  await Promise.all([signatures.checkBlockSignatures(block.txs), state.preload(addresses, keys)]);
  let fees = 0n;
  for (let i = 0; i < block.txs.length; i++) fees += applyTransaction(state, block.txs[i]!, rules, i);
  const miner = state.loaded(minerKey);
  const paid = miner.balance + block.coinbase.amount;
  if (paid > MAX_AMOUNT) throw new BlockRuleError('BLOCK_BAD_COINBASE', 'coinbase would overflow the miner balance', 0);
  state.set(minerKey, { balance: paid, nonce: miner.nonce });
  return state.effects(fees);
}

export function encodeAccount(account: Account): Uint8Array {
  return new Writer(ACCOUNT_BYTES).u64(account.balance).u64(account.nonce).finish();
}

export function decodeAccount(bytes: Uint8Array): Account {
  const r = new Reader(bytes);
  const account = { balance: r.u64('balance'), nonce: r.u64('nonce') };
  r.end('account');
  if (account.balance > MAX_AMOUNT) throw new DecodeError('DECODE_OVER_LIMIT', 'balance exceeds MAX_AMOUNT');
  return account;
}

export function encodeUndo(undo: readonly UndoRecord[]): Uint8Array {
  const w = new Writer(9 + undo.length * (ADDRESS_BYTES + 1 + ACCOUNT_BYTES)).varint(undo.length);
  for (const u of undo) {
    w.bytes(u.address, ADDRESS_BYTES);
    if (u.previous) w.u8(1).u64(u.previous.balance).u64(u.previous.nonce);
    else w.u8(0);
  }
  return w.finish();
}

export function decodeUndo(bytes: Uint8Array): UndoRecord[] {
  const r = new Reader(bytes);
  const count = r.varint('undo count', Math.floor(r.remaining / (ADDRESS_BYTES + 1)));
  const out: UndoRecord[] = [];
  for (let i = 0; i < count; i++) {
    const address = r.bytes(ADDRESS_BYTES, 'undo address');
    const flag = r.u8('undo flag');
    if (flag > 1) throw new DecodeError('DECODE_NON_CANONICAL', `undo flag ${flag}`);
    let previous: Account | undefined;
    if (flag === 1) {
      previous = { balance: r.u64('undo balance'), nonce: r.u64('undo nonce') };
      if (previous.balance > MAX_AMOUNT) throw new DecodeError('DECODE_OVER_LIMIT', 'undo balance exceeds MAX_AMOUNT');
    }
    out.push({ address, previous });
  }
  r.end('undo');
  return out;
}
