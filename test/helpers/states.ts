/**
 * The state after each block a test builds, so that a block built on it can carry the state root
 * consensus expects. Blocks built here (fixtures.ts childBlock, mining.ts mineChild) and blocks a
 * TipHarness connects record their state by hash; a genesis state comes from its params. The
 * trees are persistent (ledger/smt-memory.ts), so a state costs only what its block changed; the
 * oldest are forgotten past a bound, which no test's fork reaches back beyond.
 */
import { toHex } from '../../ledger/bytes.ts';
import { MAX_AMOUNT } from '../../ledger/amount.ts';
import type { Coinbase } from '../../ledger/block.ts';
import { genesisBlock, genesisChanges, type ChainParams } from '../../ledger/genesis.ts';
import type { Account } from '../../ledger/state.ts';
import { stateKey, type StateChange } from '../../ledger/smt.ts';
import { MemoryStateTree } from '../../ledger/smt-memory.ts';
import type { Transaction } from '../../ledger/transaction.ts';

/**
 * States kept: each costs only the nodes its block changed, but a benchmark's 500-transaction
 * blocks change a thousand paths, and a kept state is heap the measured code then shares.
 */
const KEEP = 32;
/** A state, or how to make it from its parent's when someone asks (a TipHarness's blocks: benchmarks connect many and ask for none). */
type Known = MemoryStateTree | { readonly parent: string; readonly changes: () => readonly StateChange[] };
const states = new Map<string, Known>();

function remember(key: string, state: Known): void {
  states.delete(key);
  states.set(key, state);
  if (states.size > KEEP) states.delete(states.keys().next().value!);
}

/** Forgets every state: for a benchmark, once its chain is built, so that what it measures does not share a heap with them. */
export function forgetStates(): void {
  states.clear();
}

export function rememberState(blockHash: Uint8Array, tree: MemoryStateTree): void {
  remember(toHex(blockHash), tree);
}

/** The state after `blockHash` is its parent's with `changes`, both worked out only if asked for. */
export function rememberChanges(blockHash: Uint8Array, parentHash: Uint8Array, changes: () => readonly StateChange[]): void {
  remember(toHex(blockHash), { parent: toHex(parentHash), changes });
}

function resolve(key: string): MemoryStateTree | undefined {
  const pending: { key: string; changes: () => readonly StateChange[] }[] = [];
  let at = key;
  let state = touch(at);
  while (state && !(state instanceof MemoryStateTree)) {
    pending.push({ key: at, changes: state.changes });
    at = state.parent;
    state = touch(at);
  }
  if (!state) return undefined;
  let tree = state;
  for (const p of pending.reverse()) {
    tree = tree.with(p.changes());
    states.set(p.key, tree);
  }
  return tree;
}

/** The entry at `key`, made the most recent: a state in use is the last to be forgotten. */
function touch(key: string): Known | undefined {
  const state = states.get(key);
  if (state !== undefined) {
    states.delete(key);
    states.set(key, state);
  }
  return state;
}

/** Whether the state after `blockHash` is known here (without working it out). */
export function knowsState(blockHash: Uint8Array): boolean {
  return touch(toHex(blockHash)) !== undefined;
}

/** The state after block `hash`, if a block built or connected in this process left it; a genesis from its params. */
export function stateAfter(parent: { hash: Uint8Array; height: number }, params?: ChainParams): MemoryStateTree | undefined {
  const known = resolve(toHex(parent.hash));
  if (known || parent.height !== 0 || !params) return known;
  const tree = MemoryStateTree.EMPTY.with(genesisChanges(params));
  if (toHex(genesisBlock(params).header.hash) !== toHex(parent.hash)) return undefined;
  rememberState(parent.hash, tree);
  return tree;
}

const U64_MAX = (1n << 64n) - 1n;
const clamp = (v: bigint) => (v < 0n ? 0n : v > MAX_AMOUNT ? MAX_AMOUNT : v);

/**
 * The state after a block of `txs` and `coinbase`, by the rules of "Applying a block" without their
 * checks: a block that breaks one fails on that rule before its state root is looked at, so what
 * it claims there does not matter (balances are clamped so that any block gets some root).
 */
export function applyLoosely(tree: MemoryStateTree, txs: readonly Transaction[], coinbase: Coinbase): MemoryStateTree {
  const touched = new Map<string, { key: Uint8Array; account: Account }>();
  const get = (address: Uint8Array) => {
    const hex = toHex(address);
    let entry = touched.get(hex);
    if (!entry) {
      const key = stateKey(address);
      entry = { key, account: tree.get(key) ?? { balance: 0n, nonce: 0n } };
      touched.set(hex, entry);
    }
    return entry;
  };
  for (const tx of txs) {
    const sender = get(tx.from);
    const nonce = sender.account.nonce < U64_MAX ? sender.account.nonce + 1n : U64_MAX;
    sender.account = { balance: clamp(sender.account.balance - tx.amount - tx.fee), nonce };
    const recipient = get(tx.to);
    recipient.account = { balance: clamp(recipient.account.balance + tx.amount), nonce: recipient.account.nonce };
  }
  const miner = get(coinbase.to);
  miner.account = { balance: clamp(miner.account.balance + coinbase.amount), nonce: miner.account.nonce };
  const changes: StateChange[] = [...touched.values()].map((e) => ({ key: e.key, account: e.account }));
  return tree.with(changes);
}

/** The state a store holds at its tip, as a tree (every account read: for test-sized stores). */
export async function stateOfStore(db: { accounts(): AsyncIterable<{ address: Uint8Array; account: Account }> }): Promise<MemoryStateTree> {
  const changes: StateChange[] = [];
  for await (const { address, account } of db.accounts()) changes.push({ key: stateKey(address), account });
  return MemoryStateTree.EMPTY.with(changes);
}
