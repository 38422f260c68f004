/** The propagation suite of issue #7: a 2,000-transaction block across five nodes. */
import { setTimeout as sleep } from 'node:timers/promises';
import { toHex } from '../ledger/bytes.ts';
import { genesisBlock, type ChainParams } from '../ledger/genesis.ts';
import { type Transaction } from '../ledger/transaction.ts';
import { startBenchNode, stopNodes, untilQuiet, watchImports } from './nodes.ts';
import { ThreadNode, settledThreads, waitForAll } from './threaded-nodes.ts';
import { assemble, decodeCompactBlock, encodeCompactBlock, matchMempool } from '../node/compact.ts';
import { asParent, mineChild } from '../test/helpers/mining.ts';
import { libp2pHost, mineOn, networkParams, stopAll, waitFor, type TestNode } from '../test/helpers/network.ts';
import { type Suite, type SuiteContext } from './report.ts';
import { NAMES, PROP_NODES, PROP_TXS, propagationMetrics, type Arrival } from './propagation-report.ts';
import {
  allocFor,
  benchKey,
  benchKeys,
  ms0,
  profiled,
  s1,
  signedTx,
  signerNote,
  transfers,
} from './perf-common.ts';

// ---------------------------------------------------------------------------------------------
// propagation: a 2,000-transaction block whose transactions every mempool already holds.

const PROP_BLOCKS_PER_RUN = 2;
/**
 * Full-size blocks each network (and the lone hop node) takes before the timed ones, untimed, as
 * every other figure is warmed up: a fresh node's import path runs unoptimised for its first few
 * 2,000-transaction blocks (measured: 40–126 ms of a node thread's CPU a block for the first
 * seven, 26–41 ms after), and a long-running node has long since left that behind.
 */
const PROP_WARMUP_BLOCKS = 4;
const PROP_TIMEOUT_MS = 30_000;
const PROP_SETUP_TIMEOUT_MS = 30_000;
const PROP_SETTLE_MS = 2_000;
const PROP_MINER_KEY = 97;

const meshPeers = (t: TestNode, topic: string): number => libp2pHost(t.node).services.pubsub.getMeshPeers(topic).length;

/** Resolves once no node has opened or closed a connection, or changed a gossip mesh, for `quietMs`. */
function settled(nodes: readonly TestNode[], quietMs: number, timeoutMs: number): Promise<void> {
  const shape = (t: TestNode) =>
    `${libp2pHost(t.node).getConnections().map((c) => c.id).sort().join(',')}:${meshPeers(t, t.node.names.compactBlockTopic)}:${meshPeers(t, t.node.names.txTopic)}`;
  return untilQuiet(() => nodes.map(shape).join('|'), quietMs, timeoutMs);
}


/**
 * Times a receiver's work for each block of `rounds` after the first `warmup` (each round's
 * transactions already in its mempool).
 */
async function hopRuns(ctx: SuiteContext, params: ChainParams, rounds: readonly Transaction[][], warmup: number, live: TestNode[]): Promise<{ times: number[]; forwardTimes: number[] }> {
  const t = await startBenchNode(ctx.tempDir('cairn-bench-hop-'), params, live);
  try {
    const times: number[] = [];
    /** Until the block could be forwarded: what node/gossip.ts checks before it relays a compact block on its tip. */
    const forwardTimes: number[] = [];
    let parent = asParent(genesisBlock(params));
    for (const [round, txs] of rounds.entries()) {
      await t.node.signatures.preverify(txs);
      for (const tx of txs) await t.node.mempool.add(tx, t.node.clock());
      const block = mineChild(params, parent, txs, { miner: benchKey(999_997).address });
      const wire = encodeCompactBlock(block);
      await profiled(`propagation-hop-${times.length + 1}`, async () => {
        const start = performance.now();
        const compact = decodeCompactBlock(wire, params.maxBlockTxs);
        const { txs: found, missing } = matchMempool(compact, t.node.mempool);
        if (missing.length > 0) throw new Error(`${missing.length} of the block's transactions are not in the mempool`);
        const rebuilt = assemble(compact, found as Transaction[], params);
        if (!rebuilt) throw new Error('the block did not rebuild from the mempool');
        if (t.node.chain.judgeHeader(rebuilt.header) !== 'tip') throw new Error('the block is not on the tip');
        const forwardable = performance.now() - start;
        const outcome = await t.node.chain.processSaneBlock(rebuilt);
        if (outcome !== 'connected') throw new Error(`the block was ${outcome}`);
        // Queued behind the mempool's update for the new tip: resolves once that is done.
        await t.node.mempool.expire(t.node.clock());
        if (round >= warmup) {
          times.push(performance.now() - start);
          forwardTimes.push(forwardable);
        }
      });
      if (t.node.mempool.size !== 0) throw new Error(`${t.node.mempool.size} transactions left in the mempool after their block`);
      parent = asParent(block);
    }
    return { times, forwardTimes };
  } finally {
    await stopNodes(live, [t]);
  }
}

/**
 * The same blocks across five nodes each in its own worker thread (its own event loop, as in
 * separate processes): submitted to A, gossiped into every mempool (untimed), then mined on A.
 * Returns, per block, each node's connect time minus the moment A found the block.
 */
async function threadedArrivals(ctx: SuiteContext, params: ChainParams, rounds: readonly Transaction[][], warmup: number): Promise<{ perNodeMs: number[][]; reachMs: number[]; cpuShares: number[] }> {
  const nodes: ThreadNode[] = [];
  try {
    for (let i = 0; i < PROP_NODES; i++) {
      nodes.push(await ThreadNode.start(ctx.tempDir('cairn-bench-propagation-thread-'), params, i === 0 ? [] : [nodes[i - 1]!.addr]));
    }
    await waitForAll(nodes, (s) => s.peers > 0 && s.mesh > 0, PROP_SETUP_TIMEOUT_MS, 'every node thread to have gossip mesh peers');
    await settledThreads(nodes, PROP_SETTLE_MS, PROP_SETUP_TIMEOUT_MS);
    const origin = nodes[0]!;
    const warm = await origin.mine(PROP_MINER_KEY);
    await waitForAll(nodes, (s) => s.height >= 1, PROP_TIMEOUT_MS, 'the warm-up block to reach every node thread');
    const perNodeMs: number[][] = [];
    /** Per block, until the last node began its import: it had the block rebuilt, checked and passed on by then. */
    const reachMs: number[] = [];
    /** CPU time of the whole process (every thread) over wall time, from the mining to the last node's mempool update. */
    const cpuShares: number[] = [];
    let height = 1;
    void warm;
    for (const [round, txs] of rounds.entries()) {
      await origin.submit(txs.map((tx) => tx.bytes));
      await waitForAll(nodes, (s) => s.mempool >= txs.length, PROP_TIMEOUT_MS, "every node thread's mempool to hold the block's transactions");
      await sleep(200);
      await Promise.all(nodes.map((n) => n.profileStart()));
      const threadCpu0 = (await Promise.all(nodes.map((n) => n.state()))).map((s) => s.cpuMs);
      const cpu0 = process.cpuUsage();
      const wall0 = performance.now();
      const mined = await origin.mine(PROP_MINER_KEY);
      if (mined.txs !== txs.length) throw new Error(`mined ${mined.txs} transactions from a mempool of ${txs.length}`);
      height++;
      await waitForAll(nodes, (s) => s.height >= height && s.mempool === 0, PROP_TIMEOUT_MS, `block ${perNodeMs.length + 1} to reach every node thread`);
      const times = nodes.map((n) => n.connects.get(mined.hash)!);
      const cpu = process.cpuUsage(cpu0);
      const threadCpu = (await Promise.all(nodes.map((n) => n.state()))).map((s, i) => s.cpuMs - threadCpu0[i]!);
      const label = round < warmup ? `warmup-${round + 1}` : `block-${round - warmup + 1}`;
      await Promise.all(nodes.map((n, i) => n.profileStop(`propagation-thread-${NAMES[i]}-${label}`)));
      if (round < warmup) {
        ctx.log(`propagation:   threads, warm-up block ${round + 1}: last node after ${ms0(Math.max(...times) - mined.found)} ms (untimed); node threads' CPU A–E ${threadCpu.map(ms0).join(', ')} ms`);
        await sleep(100);
        continue;
      }
      cpuShares.push((cpu.user + cpu.system) / 1000 / (performance.now() - wall0));
      perNodeMs.push(times.map((t) => t - mined.found));
      reachMs.push(Math.max(...nodes.map((n) => (n.imports.get(mined.hash)?.start ?? Number.NaN) - mined.found)));
      const spans = nodes.map((n) => n.imports.get(mined.hash)).map((s) => (s ? `${ms0(s.start - mined.found)}–${ms0(s.end - mined.found)}` : '?'));
      ctx.log(`propagation:   threads, block ${perNodeMs.length}: last node after ${ms0(Math.max(...perNodeMs.at(-1)!))} ms (${ms0(Math.max(...times) - times[0]!)} after A's connect); processBlock A–E ${spans.join(', ')} ms after A found it; the process on ${(100 * cpuShares.at(-1)!).toFixed(0)}% CPU meanwhile; node threads' CPU A–E ${threadCpu.map(ms0).join(', ')} ms`);
      await sleep(100);
    }
    return { perNodeMs, reachMs, cpuShares };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

export const propagationSuite: Suite = {
  name: 'propagation',
  description: `a ${PROP_TXS}-transaction block whose transactions are in every mempool, across ${PROP_NODES} nodes on 127.0.0.1 (each in its own worker thread, and all in one event loop)`,
  async run(ctx) {
    const senders = benchKeys(200_000, PROP_TXS);
    const params = networkParams({ name: 'cairn-bench-propagation', maxBlockTxs: 10_000, maxBlockBytes: 4 << 20, alloc: allocFor(senders) });
    const blocks = (ctx.quick ? 1 : PROP_BLOCKS_PER_RUN) * ctx.runs;
    const warmup = ctx.quick ? 1 : PROP_WARMUP_BLOCKS;
    const setup = performance.now();
    // Round r is every sender's nonce r: each block takes exactly one round, the warm-up blocks first.
    const all = [...transfers(senders, params.chainId, warmup + blocks)].map(({ key, fields }) => signedTx(key, fields));
    const rounds = Array.from({ length: warmup + blocks }, (_, b) => all.slice(b * PROP_TXS, (b + 1) * PROP_TXS));
    ctx.log(`propagation: ${all.length} transfers ${signerNote()} in ${s1(performance.now() - setup)} s`);
    const live: TestNode[] = [];
    try {
      const nodes: TestNode[] = [];
      for (let i = 0; i < PROP_NODES; i++) {
        nodes.push(await startBenchNode(ctx.tempDir('cairn-bench-propagation-'), params, live, { bootstrap: i === 0 ? [] : [nodes[i - 1]!.addr] }));
      }
      await waitFor(() => nodes.every((t) => t.node.sync.statuses.size > 0), PROP_SETUP_TIMEOUT_MS, 'every node to know a peer');
      await waitFor(
        () => nodes.every((t) => meshPeers(t, t.node.names.compactBlockTopic) > 0 && meshPeers(t, t.node.names.txTopic) > 0),
        PROP_SETUP_TIMEOUT_MS,
        'every node to have gossip mesh peers',
      );
      await settled(nodes, PROP_SETTLE_MS, PROP_SETUP_TIMEOUT_MS);

      // When each node connected each block, and how long its import took.
      const connects = nodes.map(() => new Map<string, number>());
      const imports = nodes.map(() => new Map<string, number>());
      nodes.forEach((t, i) => {
        t.node.chain.on('connect', (_block, entry) => connects[i]!.set(entry.hashHex, performance.now()));
        watchImports(t.node.chain, (block, start, end) => imports[i]!.set(toHex(block.header.hash), end - start));
      });
      const origin = nodes[0]!;
      // Warm-up: a coinbase-only block through everyone.
      const [warm] = await mineOn(origin, 1, PROP_MINER_KEY);
      await waitFor(() => connects.every((c) => c.has(toHex(warm!.header.hash))), PROP_TIMEOUT_MS, 'the warm-up block to reach every node');

      const arrivals: Arrival[] = [];
      const gossipMs: number[] = [];
      for (const [round, txs] of rounds.entries()) {
        const b = round - warmup; // negative for the warm-up blocks
        const label = b < 0 ? `warmup-${round + 1}` : `${b + 1}`;
        // Untimed: admitted at A (checked on every core first, as RPC batches are) and gossiped into every mempool.
        const g0 = performance.now();
        await profiled(`propagation-txs-${label}`, async () => {
          await origin.node.signatures.preverify(txs);
          for (const tx of txs) await origin.node.submitTransaction(tx);
          await waitFor(() => nodes.every((t) => t.node.mempool.size >= PROP_TXS && txs.every((tx) => t.node.mempool.has(tx.id))), PROP_TIMEOUT_MS, "every mempool to hold the block's transactions");
        });
        if (b >= 0) gossipMs.push(performance.now() - g0);
        await sleep(200); // let the last gossip forwards and IHAVEs settle
        let found = 0;
        const hash = await profiled(`propagation-block-${label}`, async () => {
          const [block] = await mineOn(origin, 1, PROP_MINER_KEY, () => (found = performance.now()));
          if (block!.txs.length !== PROP_TXS) throw new Error(`mined ${block!.txs.length} transactions from a mempool of ${PROP_TXS}`);
          const hex = toHex(block!.header.hash);
          await waitFor(() => connects.every((c) => c.has(hex)), PROP_TIMEOUT_MS, `block ${label} to reach every node`);
          return hex;
        });
        const times = connects.map((c) => c.get(hash)!);
        if (b < 0) {
          ctx.log(`propagation:   warm-up block ${round + 1}: last node after ${ms0(Math.max(...times) - found)} ms (untimed)`);
        } else {
          arrivals.push({ perNodeMs: times.map((t) => t - found), importMs: imports.slice(1).map((m) => m.get(hash) ?? Number.NaN) });
          ctx.log(`propagation:   block ${b + 1}: last node after ${ms0(Math.max(...arrivals.at(-1)!.perNodeMs))} ms (gossiping its txs took ${s1(gossipMs.at(-1)!)} s)`);
        }
        await waitFor(() => nodes.every((t) => t.node.mempool.size === 0), PROP_TIMEOUT_MS, 'every mempool to empty after the block');
        await sleep(100);
      }
      const receiverStats = nodes.slice(1).map((t) => t.node.gossip.compactStats);
      await stopNodes(live, [...nodes]);

      const rebuilt = receiverStats.reduce((s, c) => s + c.rebuilt, 0);
      const fetched = receiverStats.reduce((s, c) => s + c.fetched, 0);
      // One receiver's work for such a block, alone in the process and with no network: rebuild
      // from the mempool, import, mempool update; and how much of it comes before it can forward.
      ctx.log('propagation: one node alone importing the same blocks (no network)');
      const { times: hops, forwardTimes } = await hopRuns(ctx, params, rounds, warmup, live);
      ctx.log(`propagation: the same with each node in its own thread (its own event loop)`);
      // Fresh senders' nonces: the threaded network starts from genesis again, so the same rounds replay.
      const threaded = await threadedArrivals(ctx, params, rounds, warmup);
      return propagationMetrics({ threaded, inProcess: { arrivals, gossipMs, rebuilt, fetched }, hop: { times: hops, forwardTimes } });
    } finally {
      await stopAll(live);
    }
  },
};
