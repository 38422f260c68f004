import { auditChainDB } from '../ledger/audit.ts';
import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { STORED_TREE_DEPTH } from '../ledger/tree-store.ts';
import { layout } from '../ledger/layout.ts';
import { addressIndexPuts } from '../ledger/address-index.ts';
import { positionBytes, stateKey } from '../ledger/smt.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import type { CairnNode } from '../node/node.ts';
import { InlineVerifier } from '../node/inline-verifier.ts';
import { TxSignatureVerifier } from '../node/tx-signatures.ts';
import { DEFAULT_ORPHAN_LIMITS } from '../consensus/orphans.ts';
import type { BlockIndexEntry } from '../consensus/block-index.ts';
import type { MempoolEntry } from '../ledger/mempool.ts';
import { DEFAULT_MEMPOOL_POLICY } from '../ledger/mempool-rules.ts';
import { firstMissing } from '../ledger/pending-set.ts';
import { EMPTY_ACCOUNT } from '../ledger/state.ts';
import type { World } from './world.ts';
import type { SimNode } from './sim-node.ts';
import { addressGroup } from '../node/address-groups.ts';
import { SIM_EPOCH_MS } from './world.ts';
import { Liveness } from './liveness.ts';

export const INVARIANTS = [
  /** No honest node has an invalid block (or transaction) on its main chain, walked whole at the end, or an invalid transaction in its mempool. */
  'no-invalid-accepted',
  /** Each honest node's stored state equals a replay of its own chain (signatures checked again). */
  'state-equals-replay',
  /** Each honest node's stored state tree is its accounts' tree node by node, as stored and as it reads it, and its root is what its tip's header carries. */
  'state-root',
  /** Total supply equals the genesis allocations plus the rewards of the chain. */
  'supply',
  /** A node's tip only ever moves to a chain with strictly more work (first seen wins a tie). */
  'most-work',
  /** After the faults stop and a quiet period, all honest nodes share one tip and one state. */
  'convergence',
  /** No honest node penalises or bans an honest node. */
  'no-honest-penalised',
  /** No node's code throws (an unhandled rejection or exception), and no node stalls. */
  'no-throw-or-stall',
  /** Mempools and orphan pools stay within their bounds. */
  'pools-bounded',
  /** No honest node holds more inbound connections from one IP, or one subnet, than its limits allow. */
  'slots-bounded',
  /** A node's address index, once built, holds exactly the records of its main chain's blocks. */
  'address-index-exact',
  /** The simulator's own promise: after the faults end no message is lost or duplicated and no node goes down. */
  'quiet-period-quiet',
  /** A block an honest node mines in calm reaches every honest node connected to it within the time gossip takes (sim/liveness.ts). */
  'blocks-propagate',
  /** Each user's transaction a node admitted is mined by the end, or its nonce spent by another (sim/liveness.ts). */
  'txs-confirm',
  /** Each light client connected to an honest node ends on the honest tip, proves the honest nodes' accounts there, and never penalised an honest node (sim/light-clients.ts). */
  'light-clients',
] as const;

export type InvariantName = (typeof INVARIANTS)[number];

/** Blocks and transactions an adversary made invalid on purpose: no honest node may keep one. */
export class InvalidRegistry {
  readonly blocks = new Set<string>();
  readonly txs = new Set<string>();
}

/**
 * The checkers, kept apart from the world they watch (as TigerBeetle's state checker is):
 * events are checked as they happen (penalties), the pools and the invalid registry every few
 * simulated seconds, and the rest once the network has been quiet.
 */
export class Checker {
  private readonly world: World;
  readonly invalid = new InvalidRegistry();
  readonly violations = new Map<InvariantName, string[]>();
  readonly liveness: Liveness;
  /** Penalties honest nodes gave, by the role of the node that earned them (its own identities' included). */
  readonly penalised: Record<string, number> = {};

  constructor(world: World) {
    this.world = world;
    this.liveness = new Liveness(world, (name, message) => this.fail(name, message));
    world.observe({
      onNode: (sim, node) => {
        if (!sim.honest) return;
        node.peers.on('penalty', (peer, score, reason) => {
          const offender = this.ownerOf(peer);
          if (offender?.honest) this.fail('no-honest-penalised', `${sim.id} penalised honest ${peer} by ${score}: ${reason}`);
          else if (offender) this.penalised[offender.spec.role] = (this.penalised[offender.spec.role] ?? 0) + 1;
        });
        // A ban need not follow a penalty (a peer taken for another network is banned outright).
        node.peers.on('ban', (peer, reason) => {
          if (this.ownerOf(peer)?.honest) this.fail('no-honest-penalised', `${sim.id} banned honest ${peer}: ${reason}`);
        });
        // A reorganisation that fails part-way settles elsewhere, or goes back: judge where the
        // import ends against where the first reorganisation since the chain was last idle began.
        let from: BlockIndexEntry | undefined;
        node.chain.on('tip', (e) => {
          if (e.disconnected.length === 0 || from !== undefined) return;
          const left = e.from;
          from = left;
          void node.chain.idle().then(() => {
            from = undefined;
            const now = node.chain.tip;
            if (now !== left && now.totalWork <= left.totalWork) {
              this.fail('most-work', `${sim.id} left ${left.hashHex.slice(0, 16)} (work ${left.totalWork}) for ${now.hashHex.slice(0, 16)} (work ${now.totalWork})`);
            }
          });
        });
      },
    });
  }

  /** The node `peer` is, or whose identity it is (an adversary's identities are named after it). */
  private ownerOf(peer: string): SimNode | undefined {
    return this.world.nodes.find((n) => n.id === peer || peer.startsWith(`${n.id}-`));
  }

  fail(name: InvariantName, message: string): void {
    const list = this.violations.get(name) ?? [];
    if (list.length < 5) list.push(`t=${((this.world.scheduler.now - SIM_EPOCH_MS) / 1000).toFixed(1)}s ${message}`);
    this.violations.set(name, list);
  }

  /** What is checked all the time, every `everyMs` of simulated time. */
  schedule(everyMs: number): void {
    const tick = () => {
      this.checkNow();
      this.world.scheduler.after(everyMs, tick);
    };
    this.world.scheduler.after(everyMs, tick);
  }

  checkNow(): void {
    for (const sim of this.world.nodes) {
      const node = sim.node;
      if (!node || !sim.honest) continue;
      const policy = { ...DEFAULT_MEMPOOL_POLICY, ...this.world.o.mempool };
      if (node.mempool.bytes > policy.maxBytes) this.fail('pools-bounded', `${sim.id} mempool holds ${node.mempool.bytes} bytes, limit ${policy.maxBytes}`);
      const orphans = node.chain.orphans;
      if (orphans.size > DEFAULT_ORPHAN_LIMITS.maxCount || orphans.bytes > DEFAULT_ORPHAN_LIMITS.maxBytes) this.fail('pools-bounded', `${sim.id} holds ${orphans.size} orphans`);
      for (const hash of this.invalid.blocks) {
        const entry = node.chain.getEntry(Buffer.from(hash, 'hex'));
        if (entry && entry.isValid && node.chain.isMain(entry)) this.fail('no-invalid-accepted', `${sim.id} has invalid block ${hash.slice(0, 16)} on its main chain`);
      }
      for (const id of this.invalid.txs) {
        if (node.mempool.has(Buffer.from(id, 'hex'))) this.fail('no-invalid-accepted', `${sim.id} holds invalid transaction ${id.slice(0, 16)}`);
      }
      this.checkSlots(sim.id, node);
    }
  }

  /** Inbound connections by IP and subnet, against the node's own limits. */
  private checkSlots(id: string, node: CairnNode): void {
    const limits = node.guard.slots.limits;
    const byIp = new Map<string, number>();
    const bySubnet = new Map<string, number>();
    for (const peer of node.transport.peers()) {
      const info = node.transport.connectionInfo(peer);
      const group = info?.direction === 'inbound' ? addressGroup(info.remoteAddr) : undefined;
      if (!group || (group.loopback && !limits.limitLoopback)) continue;
      byIp.set(group.ip, (byIp.get(group.ip) ?? 0) + 1);
      bySubnet.set(group.subnet, (bySubnet.get(group.subnet) ?? 0) + 1);
    }
    for (const [ip, n] of byIp) if (n > limits.maxInboundPerIp) this.fail('slots-bounded', `${id} holds ${n} inbound connections from ${ip}, limit ${limits.maxInboundPerIp}`);
    for (const [subnet, n] of bySubnet) if (n > limits.maxInboundPerSubnet) this.fail('slots-bounded', `${id} holds ${n} inbound connections from ${subnet}, limit ${limits.maxInboundPerSubnet}`);
  }

  /** After the quiet period: one tip, one state, each equal to a replay of its chain. */
  async final(): Promise<void> {
    this.checkNow();
    for (const crash of this.world.crashes) this.fail('no-throw-or-stall', crash);
    for (const broken of this.world.faults.quietViolations()) this.fail('quiet-period-quiet', broken);
    const honest = this.world.nodes.filter((n) => n.honest && !n.gone);
    const down = honest.filter((n) => !n.up);
    for (const n of down) this.fail('no-throw-or-stall', `${n.id} is not running at the end`);
    const up = honest.filter((n) => n.node);
    const digests = new Map<string, string[]>();
    // One checker for every node's replay: each transaction's signature is checked again once,
    // independently of the nodes' own caches.
    const signatures = new TxSignatureVerifier(new InlineVerifier());
    const drive = <T>(work: Promise<T>) => this.world.scheduler.drive(work, 60_000);
    for (const sim of up) {
      const node = sim.node!;
      if (!(await drive(node.chain.idle()))) {
        this.fail('no-throw-or-stall', `${sim.id} is still importing a minute after the quiet period (a stuck or endless import)`);
        continue;
      }
      const accepted = await drive(node.chain.withImportsPaused(() => invalidOnMainChain(node, this.invalid)));
      if (!accepted) this.fail('no-throw-or-stall', `${sim.id}: the walk of its main chain did not finish`);
      else if (accepted.value) this.fail('no-invalid-accepted', `${sim.id}: ${accepted.value}`);
      const root = await drive(node.chain.withImportsPaused(() => stateRootCheck(node)));
      if (!root) this.fail('state-root', `${sim.id}: the state root check did not finish`);
      else if (root.value) this.fail('state-root', `${sim.id}: ${root.value}`);
      try {
        const done = await drive(node.chain.withImportsPaused(() => auditChainDB(node.db, { signatures })));
        if (!done) throw new Error('the replay did not finish');
        const report = done.value;
        const key = `${node.chain.tip.hashHex.slice(0, 16)} ${report.digest.slice(0, 16)}`;
        digests.set(key, [...(digests.get(key) ?? []), sim.id]);
        const expected = node.params.alloc.reduce((s, a) => s + a.balance, 0n) + node.params.reward * BigInt(report.height);
        if (report.supply !== expected) this.fail('supply', `${sim.id} supply ${report.supply}, expected ${expected}`);
      } catch (err) {
        this.fail('state-equals-replay', `${sim.id}: ${(err as Error).message}`);
      }
      if (node.addressIndex) {
        const checked = await drive(node.chain.withImportsPaused(() => addressIndexMismatch(node)));
        if (!checked) this.fail('no-throw-or-stall', `${sim.id}: the address index check did not finish`);
        else if (checked.value) this.fail('address-index-exact', `${sim.id}: ${checked.value}`);
      }
      const pool = await drive(node.chain.withImportsPaused(() => mempoolMismatch(node)));
      if (!pool) this.fail('no-throw-or-stall', `${sim.id}: the mempool check did not finish`);
      else if (pool.value) this.fail('no-invalid-accepted', `${sim.id}: ${pool.value}`);
      // An honest network's history is valid: a snapshot-joined node's background check must never say otherwise.
      const verdict = node.db.history.historyVerdict;
      if (verdict && !verdict.valid) this.fail('state-equals-replay', `${sim.id}: its history check found block ${verdict.height} invalid: ${verdict.reason}`);
      if (node.transport.peers().length === 0 && up.length > 1) this.fail('no-throw-or-stall', `${sim.id} has no peer at the end`);
    }
    await this.liveness.final(up, drive);
    if (digests.size > 1) {
      const groups = [...digests.entries()].map(([k, ids]) => `${ids.join(',')} at ${k}`);
      this.fail('convergence', `${digests.size} different tips/states: ${groups.join(' | ')}`);
    }
  }

  results(): Record<InvariantName, 'pass' | 'fail'> {
    return Object.fromEntries(INVARIANTS.map((name) => [name, this.violations.has(name) ? 'fail' : 'pass'])) as Record<InvariantName, 'pass' | 'fail'>;
  }
}

/**
 * The node's whole main chain, height by height as its store has it, against what adversaries made
 * invalid: the periodic check sees only the blocks its index holds in memory, every few seconds,
 * so an invalid block accepted between two checks and buried below the window by the next went
 * unseen. Transactions too, in the bodies the node still holds. Import lock. What it finds, or
 * undefined.
 */
async function invalidOnMainChain(node: CairnNode, invalid: InvalidRegistry): Promise<string | undefined> {
  for (let h = 1; h <= node.chain.tip.height; h++) {
    const hash = await node.db.getHashAtHeight(h);
    if (hash && invalid.blocks.has(toHex(hash))) return `invalid block ${toHex(hash).slice(0, 16)} on its main chain at ${h}`;
    if (invalid.txs.size === 0 || h <= node.db.history.prunedHeight) continue;
    const tx = (await node.db.getBlockAtHeight(h))?.txs.find((t) => invalid.txs.has(t.idHex));
    if (tx) return `invalid transaction ${tx.idHex.slice(0, 16)} in its main chain's block ${h}`;
  }
  return undefined;
}

/**
 * Finishes the node's address index backfill, then compares every stored X record with the
 * records of its main chain's blocks. Import lock. Returns what differs, or undefined. A pruning
 * node's records at pruned heights cannot be recomputed (the bodies are gone): those are left out,
 * as are a snapshot-synced node's below its pivot (whose body it keeps and indexes).
 */
async function addressIndexMismatch(node: CairnNode): Promise<string | undefined> {
  const index = node.addressIndex!;
  while (!(await index.backfillStep()));
  const pruned = node.db.history.prunedHeight;
  const expected = new Map<string, string>();
  for (let h = pruned + 1; h <= node.chain.tip.height; h++) {
    const block = await node.db.getBlockAtHeight(h);
    if (!block) return `no main-chain block at ${h}`;
    for (const op of addressIndexPuts(block)) if (op.type === 'put') expected.set(toHex(op.key), toHex(op.value));
  }
  let stored = 0;
  for await (const [key, value] of node.db.records(layout.range('X'))) {
    if (new DataView(key.buffer, key.byteOffset).getUint32(21) <= pruned) continue;
    stored++;
    const want = expected.get(toHex(key));
    if (want === undefined) return `a stale record ${toHex(key).slice(0, 60)}… (of a block no longer on the main chain)`;
    if (want !== toHex(value)) return `record ${toHex(key).slice(0, 60)}… differs`;
  }
  return stored === expected.size ? undefined : `${expected.size - stored} of ${expected.size} records missing`;
}

/**
 * The node's mempool against its tip's state, once the tip's mempool update is done: no sender's
 * transaction below its state nonce, no sender's pending total beyond its balance, and the share
 * of those waiting for a missing nonce what their nonces say, and within the policy's. Import
 * lock. What differs, or undefined.
 */
async function mempoolMismatch(node: CairnNode): Promise<string | undefined> {
  await node.mempool.settled();
  const bySender = new Map<string, MempoolEntry[]>();
  for (const e of node.mempool.entries()) bySender.set(e.tx.fromKey, [...(bySender.get(e.tx.fromKey) ?? []), e]);
  let gapped = 0;
  for (const [key, entries] of bySender) {
    const account = (await node.db.getAccount(entries[0]!.tx.from)) ?? EMPTY_ACCOUNT;
    const byNonce = new Map(entries.map((e) => [e.tx.nonce, e]));
    const stale = entries.find((e) => e.tx.nonce < account.nonce);
    if (stale) return `its mempool holds ${stale.idHex.slice(0, 16)}, nonce ${stale.tx.nonce} of ${key.slice(0, 16)}, whose state nonce is ${account.nonce}`;
    const committed = entries.reduce((sum, e) => sum + e.tx.amount + e.tx.fee, 0n);
    if (committed > account.balance) return `its mempool holds ${committed} pending from ${key.slice(0, 16)}, whose balance is ${account.balance}`;
    const executableBelow = firstMissing(byNonce, account.nonce);
    for (const e of entries) if (e.tx.nonce > executableBelow) gapped += e.tx.bytes.length;
  }
  if (gapped !== node.mempool.gappedBytes) return `its mempool counts ${node.mempool.gappedBytes} bytes waiting for a missing nonce, its entries ${gapped}`;
  if (gapped > node.mempool.policy.maxGappedBytes) return `its mempool holds ${gapped} bytes waiting for a missing nonce, over their share of ${node.mempool.policy.maxGappedBytes}`;
  return undefined;
}

/**
 * The tree a node stores against its accounts, recomputed from scratch, and the root its tip's
 * header commits to: undefined when all three agree, else what differs. Below the root, node by
 * node: what the store holds, and what the node itself reads there (its top, commit queue and
 * cache), so a cache that kept a node the store has since replaced shows here, not only in a
 * later block's root.
 */
async function stateRootCheck(node: CairnNode): Promise<string | undefined> {
  const changes = [];
  for await (const { address, account } of node.db.accounts()) changes.push({ key: stateKey(address), account });
  const tree = MemoryStateTree.EMPTY.with(changes);
  const recomputed = toHex(tree.root);
  const stored = toHex(await node.db.stateRoot());
  const header = toHex(node.chain.tip.header.stateRoot);
  if (stored !== recomputed) return `its stored tree's root ${stored.slice(0, 16)} is not its accounts' ${recomputed.slice(0, 16)}`;
  if (header !== recomputed) return `its tip's header says ${header.slice(0, 16)}, its accounts hash to ${recomputed.slice(0, 16)}`;
  await node.db.flushed();
  const ids: string[] = [];
  const nodes: Uint8Array[] = [];
  for await (const { id, node: bytes } of node.db.stateNodes()) {
    ids.push(id);
    nodes.push(bytes);
  }
  const where = (id: string) => `at depth ${id.charCodeAt(0)} (${toHex(positionBytes(id).subarray(1))})`;
  const wanted = tree.storedNodeCount(STORED_TREE_DEPTH);
  if (ids.length !== wanted) return `its store holds ${ids.length} tree nodes, its accounts' tree ${wanted}`;
  const read = await node.db.readNodes(ids);
  for (const [i, id] of ids.entries()) {
    const want = tree.nodeAt(id);
    if (!want || !bytesEqual(want, nodes[i]!)) return `its stored tree node ${where(id)} is not its accounts' tree's`;
    if (!read[i] || !bytesEqual(want, read[i]!)) return `it reads a tree node ${where(id)} that is not the one its store holds`;
  }
  return undefined;
}
