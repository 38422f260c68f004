import { bytesEqual, toHex } from './bytes.ts';
import { CairnError, StoreError } from './errors.ts';
import { createHash } from 'node:crypto';
import type { ChainDB } from './chaindb.ts';
import { STORED_TREE_DEPTH } from './tree-store.ts';
import { stateKey } from './smt.ts';
import { MemoryStateTree } from './smt-memory.ts';
import {
  applyBlock,
  encodeAccount,
  inlineSignatureChecker,
  type Account,
  type AccountSource,
  type SignatureChecker,
} from './state.ts';

/** Accounts held in memory: the state a replay builds. */
export class MemoryAccounts implements AccountSource {
  readonly map = new Map<string, Account>();

  async getAccount(address: Uint8Array): Promise<Account | undefined> {
    return this.map.get(toHex(address));
  }

  set(address: Uint8Array, account: Account): void {
    this.map.set(toHex(address), account);
  }
}

export interface AuditReport {
  readonly height: number;
  /**
   * Whether the state was replayed from genesis and compared. A pruned store (bodies deleted
   * below its pruning mark) cannot be: its headers' links, the bodies it keeps, its supply and
   * its digest are checked instead; comparing the digest with an unpruned node's does the rest.
   */
  readonly replayed: boolean;
  readonly accounts: number;
  /** Sum of all balances: the genesis allocations plus every block's reward (fees only move). */
  readonly supply: bigint;
  readonly digest: string;
  /** The state root of the replayed state: the tip's header commits to it, and the stored tree holds it. */
  readonly stateRoot: string;
}

const noSignatures: SignatureChecker = { async checkBlockSignatures() {} };

/**
 * A digest of the whole state at the tip: SHA-256 over every (address, account) in address order.
 * Two nodes at the same tip must produce the same digest.
 */
export async function stateDigest(db: ChainDB): Promise<string> {
  // Incremental: spreading every account into one call overflows the stack past ~60k accounts.
  const h = createHash('sha256');
  for await (const { address, account } of db.accounts()) h.update(address).update(encodeAccount(account));
  return toHex(h.digest());
}

export interface AuditOptions {
  readonly checkSignatures?: boolean;
  readonly signatures?: SignatureChecker;
  /**
   * True once whoever asked no longer waits for the answer (the node is stopping): the replay ends
   * there (AUDIT_STOPPED) rather than at the chain's top, which on a long chain is hours away and
   * holds the import lock throughout.
   */
  readonly stopped?: () => boolean;
}

function checkNotStopped(stopped: (() => boolean) | undefined, height: number): void {
  if (stopped?.()) throw new CairnError('AUDIT_STOPPED', `the audit stopped at height ${height}: the node is stopping`);
}

/**
 * Replays the main chain from genesis in memory and compares the result with the stored state,
 * height index, tip and state tree (the replay's root must be the tip header's state root, and the
 * store must hold exactly the nodes of that tree). Throws StoreError('STORE_CORRUPT') naming the
 * first disagreement. Signatures were checked when the blocks were connected; re-checking them is
 * optional.
 */
export async function auditChainDB(db: ChainDB, options: AuditOptions = {}): Promise<AuditReport> {
  if (db.history.prunedHeight > 0) return auditPrunedChainDB(db, options.stopped);
  const signatures = options.signatures ?? (options.checkSignatures ? inlineSignatureChecker : noSignatures);
  const replay = new MemoryAccounts();
  for (const a of db.params.alloc) replay.set(a.address, { balance: a.balance, nonce: 0n });
  const tip = await db.storedTip();
  let prev = db.genesis.header.hash;
  const stored0 = await db.getHashAtHeight(0);
  if (!stored0 || !bytesEqual(stored0, prev)) throw new StoreError('STORE_CORRUPT', 'height 0 is not the genesis block');
  let expectedSupply = db.params.alloc.reduce((s, a) => s + a.balance, 0n);
  let tipStateRoot = db.genesis.header.stateRoot;

  for (let height = 1; height <= tip.height; height++) {
    checkNotStopped(options.stopped, height);
    const block = await db.getBlockAtHeight(height);
    if (!block) throw new StoreError('STORE_CORRUPT', `no main-chain block at height ${height}`);
    if (!bytesEqual(block.header.prevHash, prev) || block.header.height !== height) {
      throw new StoreError('STORE_CORRUPT', `block at height ${height} does not link to the one below`);
    }
    const effects = await applyBlock(replay, block, db.params, signatures);
    for (const { address, account } of effects.accounts) replay.set(address, account);
    expectedSupply += db.params.reward;
    prev = block.header.hash;
    tipStateRoot = block.header.stateRoot;
  }
  if (!bytesEqual(prev, tip.hash)) throw new StoreError('STORE_CORRUPT', 'the tip is not the top of the height index');

  let accounts = 0;
  let supply = 0n;
  for await (const { address, account } of db.accounts()) {
    const expected = replay.map.get(toHex(address));
    if (!expected || expected.balance !== account.balance || expected.nonce !== account.nonce) {
      throw new StoreError('STORE_CORRUPT', `account ${toHex(address)} differs from the replay of the chain`);
    }
    accounts++;
    supply += account.balance;
  }
  if (accounts !== replay.map.size) {
    throw new StoreError('STORE_CORRUPT', `store has ${accounts} accounts, replay has ${replay.map.size}`);
  }
  if (supply !== expectedSupply) {
    throw new StoreError('STORE_CORRUPT', `supply ${supply} is not genesis + rewards = ${expectedSupply}`);
  }
  const stateRoot = await auditStateTree(db, replay, tipStateRoot);
  return { height: tip.height, accounts, supply, replayed: true, digest: await stateDigest(db), stateRoot };
}

/** The replayed state's tree against the tip header's state root and against every stored node. */
async function auditStateTree(db: ChainDB, replay: MemoryAccounts, headerRoot: Uint8Array): Promise<string> {
  const tree = MemoryStateTree.EMPTY.with([...replay.map].map(([address, account]) => ({ key: stateKey(Buffer.from(address, 'hex')), account })));
  if (!bytesEqual(tree.root, headerRoot)) {
    throw new StoreError('STORE_CORRUPT', `the replayed state hashes to ${toHex(tree.root)}, the tip's header says ${toHex(headerRoot)}`);
  }
  if (!bytesEqual(await db.stateRoot(), tree.root)) throw new StoreError('STORE_CORRUPT', "the store's state tree does not hash to the replayed state's root");
  let stored = 0;
  for await (const { id, node } of db.stateNodes()) {
    stored++;
    const expected = tree.nodeAt(id);
    if (!expected || !bytesEqual(expected, node)) {
      throw new StoreError('STORE_CORRUPT', `the stored state tree node at depth ${id.charCodeAt(0)} is not the replayed state's`);
    }
  }
  const expected = tree.storedNodeCount(STORED_TREE_DEPTH);
  if (stored !== expected) throw new StoreError('STORE_CORRUPT', `the store holds ${stored} state tree nodes, the replayed state's tree ${expected}`);
  return toHex(tree.root);
}

/** What can be checked of a pruned store: see AuditReport.replayed. */
async function auditPrunedChainDB(db: ChainDB, stopped: (() => boolean) | undefined): Promise<AuditReport> {
  const tip = await db.storedTip();
  const pruned = db.history.prunedHeight;
  let prev = db.genesis.header.hash;
  for (let from = 1; from <= tip.height; from += AUDIT_RANGE) {
    checkNotStopped(stopped, from);
    const hashes = await db.history.mainHashes(from, Math.min(tip.height + 1, from + AUDIT_RANGE));
    const records = await db.history.mainRecords(from, hashes.length);
    if (records.length !== hashes.length) throw new StoreError('STORE_CORRUPT', `main-chain index records missing between heights ${from} and ${from + hashes.length}`);
    for (const r of records) {
      // The index record begins with the header: height (bytes 4-8) and prevHash (8-40).
      if (!bytesEqual(r.record.subarray(8, 40), prev)) throw new StoreError('STORE_CORRUPT', `block at height ${r.height} does not link to the one below`);
      prev = r.hash;
    }
    const bodies = await db.getBlocksBytes(hashes);
    bodies.forEach((body, i) => {
      const height = from + i;
      if ((body !== undefined) !== height > pruned) throw new StoreError('STORE_CORRUPT', `block ${height} ${body ? 'has a body below' : 'lacks its body above'} the pruning mark ${pruned}`);
    });
  }
  if (!bytesEqual(prev, tip.hash)) throw new StoreError('STORE_CORRUPT', 'the tip is not the top of the height index');
  // No replay, but the stored accounts must still be the tree the tip's header commits to.
  const state = new MemoryAccounts();
  let supply = 0n;
  for await (const { address, account } of db.accounts()) {
    state.set(address, account);
    supply += account.balance;
  }
  const expected = db.params.alloc.reduce((s, a) => s + a.balance, 0n) + db.params.reward * BigInt(tip.height);
  if (supply !== expected) throw new StoreError('STORE_CORRUPT', `supply ${supply} is not genesis + rewards = ${expected}`);
  const tipHeader = (await db.getBlock(tip.hash))!.header;
  const stateRoot = await auditStateTree(db, state, tipHeader.stateRoot);
  return { height: tip.height, accounts: state.map.size, supply, replayed: false, digest: await stateDigest(db), stateRoot };
}

const AUDIT_RANGE = 10_000;
