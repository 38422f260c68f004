import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stateDigest } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { genesisBlock, type ChainParams } from '../ledger/genesis.ts';
import { checkTxSignature, type Transaction } from '../ledger/transaction.ts';
import type { Block } from '../ledger/block.ts';
import { Chain } from '../consensus/chain.ts';
import type { CairnNode } from '../node/node.ts';
import { FUNDED_KEYS, seededRandom, testKey, transfer, uncheckedSignatures } from '../test/helpers/fixtures.ts';
import { asParent, mineChild, stateRootOnTip } from '../test/helpers/mining.ts';
import { verifyPoolOf, libp2pHost, mineOn, networkParams, stopAll, waitFor, type TestNode } from '../test/helpers/network.ts';
import { startBenchNode, stopNodes, untilQuiet, within } from './nodes.ts';
import { measureRate, median, metric, type Metric, type Suite, type SuiteContext, type TempDir } from './report.ts';

/** The chain the syncing node downloads: long enough for several header and body batches. */
const SYNC_BLOCKS = 300;
const SYNC_TXS_PER_BLOCK = 10;
const SYNC_TIMEOUT_MS = 60_000;
const PROPAGATION_NODES = 5;
/** Coinbase-only blocks timed per run of `ctx.runs`: 100 at the default 5 runs. */
const BLOCKS_PER_RUN = 20;
/** Blocks of `HEAVY_TXS` transfers timed per run; each costs every receiving node ~100 signature checks. */
const HEAVY_BLOCKS_PER_RUN = 2;
const HEAVY_TXS = 100;
const WARMUP_BLOCKS = 3;
/** Between blocks, once all nodes have the last: lets gossipsub's sends and the nodes' tip handlers settle. */
const PAUSE_MS = 50;
const PROPAGATION_TIMEOUT_MS = 15_000;
const SETUP_TIMEOUT_MS = 20_000;
/** How long the nodes' connections and gossip meshes must stay unchanged before blocks are timed. */
const SETTLE_MS = 2_000;

/** Coinbases go to a key that no transfer sends from or to. */
const MINER = testKey(97).address;

/** The pre-built chain's store is filled with signatures unchecked: only the syncing node pays for them. */

/**
 * Signed transfers from the funded keys in turn, each sender's nonces in order, to other funded
 * keys or new addresses. Any run of consecutive ones is valid on top of genesis in that order, so
 * the same list fills both the sync chain's blocks and the propagation suite's large blocks.
 */
function signTransfers(params: ChainParams, count: number): Transaction[] {
  const random = seededRandom(21);
  const nonces = FUNDED_KEYS.map(() => 0n);
  const out: Transaction[] = [];
  for (let i = 0; i < count; i++) {
    const s = i % FUNDED_KEYS.length;
    const to = random.int(2) === 0 ? FUNDED_KEYS[random.int(FUNDED_KEYS.length)]!.address : random.bytes(20);
    const nonce = nonces[s]!;
    nonces[s] = nonce + 1n;
    out.push(transfer(FUNDED_KEYS[s]!, to, 1n + BigInt(random.int(100)), nonce, 1n + BigInt(random.int(10)), params.chainId));
  }
  return out;
}

/** On schedule (a block time apart), so the target stays where genesis put it. */
function buildSyncChain(params: ChainParams, txs: readonly Transaction[]): Block[] {
  const blocks: Block[] = [];
  let parent = asParent(genesisBlock(params));
  for (let b = 0; b < SYNC_BLOCKS; b++) {
    const block = mineChild(params, parent, txs.slice(b * SYNC_TXS_PER_BLOCK, (b + 1) * SYNC_TXS_PER_BLOCK), { miner: MINER });
    blocks.push(block);
    parent = asParent(block);
  }
  return blocks;
}

/** Writes `blocks` into the store a CairnNode on `datadir` will open (node/node.ts: `<datadir>/chain`). */
async function prefillStore(datadir: string, params: ChainParams, blocks: readonly Block[]): Promise<void> {
  const db = await ChainDB.open(join(datadir, 'chain'), params);
  try {
    const chain = await Chain.open(db, { clock: () => Math.floor(Date.now() / 1000), signatures: uncheckedSignatures });
    for (const block of blocks) {
      const outcome = await chain.processBlock(block);
      if (outcome !== 'connected') throw new Error(`pre-built block ${block.header.height} was ${outcome}`);
    }
  } finally {
    await db.close();
  }
}


interface SyncRun {
  readonly ms: number;
  /** From the node's start to its first connected block: start-up, dial, handshake, first headers and bodies. */
  readonly firstBlockMs: number;
}

/** A fresh node B with A as its only bootstrap peer, timed from before its start until its tip is A's. */
async function syncRun(ctx: SuiteContext, params: ChainParams, a: TestNode, digest: string, live: TestNode[]): Promise<SyncRun> {
  const target = a.node.chain.tip.hashHex;
  const dir = ctx.tempDir('cairn-bench-sync-');
  const start = performance.now();
  const b = await startBenchNode(dir, params, live, { bootstrap: [a.addr] });
  try {
    let firstBlockAt: number | undefined;
    let doneAt: number | undefined;
    const done = new Promise<void>((resolve) => {
      b.node.chain.on('connect', (_block, entry) => {
        firstBlockAt ??= performance.now();
        if (entry.hashHex === target) {
          doneAt = performance.now();
          resolve();
        }
      });
    });
    if (b.node.chain.tip.hashHex !== target) {
      await within(done, SYNC_TIMEOUT_MS, () => `B at height ${b.node.chain.tip.height} of ${SYNC_BLOCKS}, syncing: ${b.node.sync.syncing}, peers: ${b.node.transport.peers().length}`);
    }
    if (doneAt === undefined || firstBlockAt === undefined) throw new Error('B reached the tip before it was watched');
    // Outside the timing: the same tip must mean the same state.
    if ((await stateDigest(b.node.db)) !== digest) throw new Error("B's state differs from A's at the same tip");
    return { ms: doneAt - start, firstBlockMs: firstBlockAt - start };
  } finally {
    await stopNodes(live, [b]);
  }
}

/** How the node checks signatures (node/verify-pool.ts), for the notes. */
function verifierOf(node: CairnNode): string {
  const { backend, threads } = verifyPoolOf(node);
  return threads === 0 ? `${backend} on the main thread` : `${backend} on ${threads} worker thread${threads === 1 ? '' : 's'}`;
}

/** When each node connected each block (performance.now()), from the chains' own 'connect' events. */
class Arrivals {
  private readonly count: number;
  private readonly times = new Map<string, number[]>();
  private readonly waiters = new Map<string, () => void>();

  constructor(nodes: readonly TestNode[]) {
    this.count = nodes.length;
    nodes.forEach((t, i) => t.node.chain.on('connect', (_block, entry) => this.arrive(entry.hashHex, i)));
  }

  private arrive(hash: string, node: number): void {
    const now = performance.now();
    let times = this.times.get(hash);
    if (!times) this.times.set(hash, (times = new Array<number>(this.count).fill(Number.NaN)));
    if (Number.isNaN(times[node])) times[node] = now;
    if (times.every(Number.isFinite)) this.waiters.get(hash)?.();
  }

  /** Each node's arrival time of `hash`, once every node has it. */
  async all(hash: string, timeoutMs: number, nodes: readonly TestNode[]): Promise<number[]> {
    const complete = () => this.times.get(hash)?.every(Number.isFinite) === true;
    if (!complete()) {
      const arrived = new Promise<void>((resolve) => this.waiters.set(hash, resolve));
      try {
        await within(arrived, timeoutMs, () => `block ${hash.slice(0, 12)} reached ${this.times.get(hash)?.filter(Number.isFinite).length ?? 0} of ${this.count} nodes; heights ${nodes.map((t) => t.node.chain.tip.height).join('/')}`);
      } finally {
        this.waiters.delete(hash);
      }
    }
    return this.times.get(hash)!;
  }
}

interface Propagation {
  /** Last node's arrival minus the origin's connect, per block. */
  readonly totalMs: number;
  /** Each node's arrival minus the origin's, in line order (index 0, the origin, is 0). */
  readonly perNodeMs: readonly number[];
}

/** Times one block from the origin's own connect (just before it gossips the block) to the last node's. */
async function propagate(arrivals: Arrivals, nodes: readonly TestNode[], produce: () => Promise<Block>): Promise<Propagation> {
  const block = await produce();
  const times = await arrivals.all(toHex(block.header.hash), PROPAGATION_TIMEOUT_MS, nodes);
  const origin = times[0]!;
  const perNodeMs = times.map((t) => t - origin);
  return { totalMs: Math.max(...perNodeMs), perNodeMs };
}

/** What mineOn does, with the block's transactions given rather than taken from the mempool. */
async function mineWith(t: TestNode, txs: readonly Transaction[]): Promise<Block> {
  const stateRoot = await stateRootOnTip(t.node.chain, MINER, txs);
  const block = mineChild(t.node.chain.params, t.node.chain.tip, txs, { spacing: 1, miner: MINER, stateRoot });
  const outcome = await t.node.importAndAnnounce(block);
  if (outcome !== 'connected') throw new Error(`block ${block.header.height} was ${outcome} on its own miner`);
  return block;
}

/** Nearest rank: the smallest sample with at least p% of the samples at or below it. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const NAMES = 'ABCDEFGHIJ';

/** Which pairs of nodes are connected: the DHT may have added links to the bootstrap line. */
function links(nodes: readonly TestNode[]): string {
  const missing: string[] = [];
  let pairs = 0;
  for (let i = 0; i < nodes.length; i++) {
    const peers = new Set(nodes[i]!.node.transport.peers());
    for (let j = i + 1; j < nodes.length; j++) {
      pairs++;
      if (!peers.has(nodes[j]!.node.transport.peerId)) missing.push(`${NAMES[i]}–${NAMES[j]}`);
    }
  }
  return `${pairs - missing.length} of ${pairs} pairs connected${missing.length > 0 ? ` (not ${missing.join(', ')})` : ''}`;
}

/**
 * Resolves once no node has opened or closed a connection, or changed its gossip mesh, for
 * `quietMs`. About a second after start the DHT's first queries dial every peer they learn of,
 * turning the bootstrap line into (nearly) a full mesh; a block sent meanwhile competes with
 * those handshakes and takes a hundred milliseconds or more, which is start-up, not propagation.
 */
function settled(nodes: readonly TestNode[], quietMs: number, timeoutMs: number): Promise<void> {
  return untilQuiet(() => nodes.map((t) => `${libp2pHost(t.node).getConnections().map((c) => c.id).sort().join(',')}:${meshPeers(t)}`).join('|'), quietMs, timeoutMs);
}

const meshPeers = (t: TestNode): number => libp2pHost(t.node).services.pubsub.getMeshPeers(t.node.names.blockTopic).length;
const ms1 = (value: number): string => value.toFixed(1);

export const networkSuite: Suite = {
  name: 'network',
  description: 'sync of a fresh node from one peer, block propagation across 5 nodes (in-process, 127.0.0.1)',
  async run(ctx) {
    const metrics: Metric[] = [];
    const params = networkParams({ name: 'cairn-bench-network' });
    const live: TestNode[] = [];
    try {
      const setupStart = performance.now();
      const txs = signTransfers(params, SYNC_BLOCKS * SYNC_TXS_PER_BLOCK);
      const chain = buildSyncChain(params, txs);
      const aDir = ctx.tempDir('cairn-bench-sync-source-');
      await prefillStore(aDir.path, params, chain);
      ctx.log(`network: signed ${txs.length} transfers into ${chain.length} blocks, stored for node A in ${((performance.now() - setupStart) / 1000).toFixed(1)} s (not timed)`);

      // The same machine's verify rate, to say how much of a sync is signature checking.
      let v = 0;
      const verifyRate = median(await measureRate(() => (checkTxSignature(txs[v++ % txs.length]!), 1), { runs: 3, minMs: 150, warmupMs: 50 }));

      ctx.log('network: syncSmallBlocksPerSec, syncSmallTxPerSec');
      const a = await startBenchNode(aDir, params, live);
      const verifier = verifierOf(a.node);
      const digest = await stateDigest(a.node.db);
      const syncs: SyncRun[] = [];
      for (let r = 0; r < ctx.runs; r++) {
        const run = await syncRun(ctx, params, a, digest, live);
        syncs.push(run);
        ctx.log(`network:   sync run ${r + 1}: ${ms1(run.ms)} ms (first block after ${ms1(run.firstBlockMs)} ms)`);
      }
      await stopNodes(live, [a]);
      const txCount = chain.reduce((n, b) => n + b.txs.length, 0);
      const syncSeconds = median(syncs.map((s) => s.ms)) / 1000;
      const nobleSeconds = txCount / verifyRate;
      const syncNote = `${SYNC_BLOCKS} blocks of ${SYNC_TXS_PER_BLOCK} signed transfers from one peer, fresh node per run, from its start to A's tip; first block after ${ms1(median(syncs.map((s) => s.firstBlockMs)))} ms`;
      metrics.push(
        metric({ key: 'syncSmallBlocksPerSec', label: 'sync of a fresh node from one peer', unit: 'block/s', runs: syncs.map((s) => (SYNC_BLOCKS * 1000) / s.ms), note: syncNote }),
        metric({
          key: 'syncSmallTxPerSec',
          label: 'sync of a fresh node from one peer',
          unit: 'tx/s',
          runs: syncs.map((s) => (txCount * 1000) / s.ms),
          note:
            `every signature checked (node: ${verifier}); noble alone, one core, ${Math.round(verifyRate)}/s here, would need ` +
            `${nobleSeconds.toFixed(1)} s = ${Math.round((100 * nobleSeconds) / syncSeconds)}% of the median sync; A and B share this process`,
        }),
      );

      ctx.log(`network: propagation across ${PROPAGATION_NODES} nodes started as a line`);
      const nodes: TestNode[] = [];
      for (let i = 0; i < PROPAGATION_NODES; i++) {
        nodes.push(await startBenchNode(ctx.tempDir('cairn-bench-propagation-'), params, live, { bootstrap: i === 0 ? [] : [nodes[i - 1]!.addr] }));
      }
      await waitFor(() => nodes.every((t) => t.node.sync.statuses.size > 0), SETUP_TIMEOUT_MS, 'every node to know a peer');
      // Gossipsub forwards to mesh peers only, and builds the mesh on its heartbeat: without it a
      // block would crawl along by IHAVE gossip, once a heartbeat per hop.
      await waitFor(() => nodes.every((t) => meshPeers(t) > 0), SETUP_TIMEOUT_MS, 'every node to have a gossip mesh peer');
      await settled(nodes, SETTLE_MS, SETUP_TIMEOUT_MS);
      const arrivals = new Arrivals(nodes);
      const origin = nodes[0]!;
      for (let i = 0; i < WARMUP_BLOCKS; i++) {
        await propagate(arrivals, nodes, async () => (await mineOn(origin, 1, 97))[0]!);
        await sleep(PAUSE_MS);
      }

      const lightBlocks = BLOCKS_PER_RUN * ctx.runs;
      const light: Propagation[] = [];
      for (let i = 0; i < lightBlocks; i++) {
        light.push(await propagate(arrivals, nodes, async () => (await mineOn(origin, 1, 97))[0]!));
        await sleep(PAUSE_MS);
      }
      const topology = `${links(nodes)}, gossip mesh peers ${nodes.map(meshPeers).join('/')}`;
      ctx.log(`network:   ${lightBlocks} blocks; ${topology}`);

      let next = 0; // the next unused transfer, so every heavy block is valid in turn on this chain too
      const heavyBlocks = Math.min(HEAVY_BLOCKS_PER_RUN * ctx.runs, Math.floor(txs.length / HEAVY_TXS / 2));
      const heavy: Propagation[] = [];
      for (let i = 0; i < heavyBlocks; i++) {
        const slice = txs.slice(next, (next += HEAVY_TXS));
        heavy.push(await propagate(arrivals, nodes, () => mineWith(origin, slice)));
        await sleep(PAUSE_MS);
      }
      // The usual case on a live network: the transactions were gossiped, and checked, before their block.
      const warm: Propagation[] = [];
      for (let i = 0; i < heavyBlocks; i++) {
        const slice = txs.slice(next, (next += HEAVY_TXS));
        for (const tx of slice) await origin.node.submitTransaction(tx);
        await waitFor(() => nodes.every((t) => slice.every((tx) => t.node.mempool.has(tx.id))), PROPAGATION_TIMEOUT_MS, 'every mempool to hold the next block\'s transactions');
        warm.push(
          await propagate(arrivals, nodes, async () => {
            const [block] = await mineOn(origin, 1, 97);
            if (block!.txs.length !== HEAVY_TXS) throw new Error(`mined ${block!.txs.length} transactions from a mempool of ${HEAVY_TXS}`);
            return block!;
          }),
        );
        await sleep(PAUSE_MS);
      }
      await stopNodes(live, [...nodes]);

      const totals = light.map((p) => p.totalMs);
      const receivers = NAMES.slice(1, PROPAGATION_NODES).split('').join('/');
      const hops = (list: readonly Propagation[]) =>
        list[0]!.perNodeMs
          .slice(1)
          .map((_, i) => ms1(median(list.map((p) => p.perNodeMs[i + 1]!))))
          .join(' / ');
      const shape = `a line A–${NAMES[PROPAGATION_NODES - 1]} (each bootstrapping off the one before), then ${topology}; mined on A; all ${PROPAGATION_NODES} nodes in this one process`;
      metrics.push(
        metric({
          key: 'propagationEmptyP50Ms',
          label: `block propagation to all ${PROPAGATION_NODES} nodes, p50`,
          unit: 'ms',
          runs: totals,
          note: `${totals.length} coinbase-only blocks, from A's connect to the last node's (min–max over all); ${shape}; median arrival at ${receivers} ${hops(light)} ms`,
        }),
        metric({
          key: 'propagationEmptyP99Ms',
          label: `block propagation to all ${PROPAGATION_NODES} nodes, p99`,
          unit: 'ms',
          runs: [percentile(totals, 99)],
          note: `nearest-rank p99 of the same ${totals.length} samples: one figure, not a median of runs`,
        }),
      );
      if (heavy.length > 0) {
        metrics.push(
          metric({
            key: 'propagationP50MsWith100Tx',
            label: `block propagation to all ${PROPAGATION_NODES} nodes, ${HEAVY_TXS} new txs a block, p50`,
            unit: 'ms',
            runs: heavy.map((p) => p.totalMs),
            note:
              `${heavy.length} blocks of ${HEAVY_TXS} signed transfers no receiver has seen: each checks ${HEAVY_TXS} signatures (${verifier}; ` +
              `noble on one core: ${Math.round((HEAVY_TXS * 1000) / verifyRate)} ms) before it forwards; median arrival at ${receivers} ${hops(heavy)} ms`,
          }),
          metric({
            key: 'propagationP50MsWith100TxInMempool',
            label: `block propagation to all ${PROPAGATION_NODES} nodes, ${HEAVY_TXS} txs already in mempools, p50`,
            unit: 'ms',
            runs: warm.map((p) => p.totalMs),
            note: `${warm.length} blocks mined with mineOn from ${HEAVY_TXS} transfers gossiped to every mempool first (untimed); median arrival at ${receivers} ${hops(warm)} ms`,
          }),
        );
      }
      return metrics;
    } finally {
      await stopAll(live);
    }
  },
};
