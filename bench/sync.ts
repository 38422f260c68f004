/**
 * The sync suite of the performance report (bench/perf.ts): a fresh node downloading a long chain
 * of signed transfers over libp2p, from one peer and from three (issue #19: no slower than from
 * one), and what the serving peer uploads to it, with its budgets (node/serving.ts) and, in
 * alternating runs, without them.
 */
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { stateDigest } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import type { ChainTip } from '../ledger/chaindb-types.ts';
import { genesisBlock, type ChainParams } from '../ledger/genesis.ts';
import { type Transaction } from '../ledger/transaction.ts';
import { Chain } from '../consensus/chain.ts';
import { startBenchNode, stopNodes, watchImports } from './nodes.ts';
import { ThreadNode } from './threaded-nodes.ts';
import { asParent, mineChild } from '../test/helpers/mining.ts';
import { forgetStates } from '../test/helpers/states.ts';
import { uncheckedSignatures } from '../test/helpers/fixtures.ts';
import { verifyPoolOf, networkParams, stopAll, type TestNode } from '../test/helpers/network.ts';
import { atLeast, median, metric, type Suite, type SuiteContext } from './report.ts';
import { TARGETS, allocFor, benchKey, benchKeys, k, machineLimit, ms0, profiled, s1, signedTx, signerNote, transfers, verifierOf, within, type BenchKey } from './perf-common.ts';

// ---------------------------------------------------------------------------------------------
// sync: a fresh node downloading 10,000 blocks of 200,000 transactions from one peer, and from three.

const SYNC_BLOCKS = 10_000;
const SYNC_BLOCKS_QUICK = 1_000;
const SYNC_TXS_PER_BLOCK = 20;
const SYNC_SENDERS = 2_000;
const SYNC_MAX_RUNS = 3;
const SYNC_TIMEOUT_MS = 20 * 60_000;
const SYNC_MINER = benchKey(999_999).address;

/**
 * Mines and connects the chain straight into the store a CairnNode on `datadir` will open, its
 * signatures unchecked there: only the syncing node pays for them. Built block by block, so the
 * 200,000 transactions never sit in memory at once.
 */
export async function buildSyncSource(ctx: SuiteContext, datadir: string, params: ChainParams, senders: readonly BenchKey[], blocks: number, txsPerBlock = SYNC_TXS_PER_BLOCK): Promise<{ txs: number }> {
  const db = await ChainDB.open(join(datadir, 'chain'), params);
  let txCount = 0;
  try {
    const chain = await Chain.open(db, { clock: () => Math.floor(Date.now() / 1000), signatures: uncheckedSignatures });
    const source = transfers(senders, params.chainId, Math.ceil((blocks * txsPerBlock) / senders.length));
    let parent = asParent(genesisBlock(params));
    const start = performance.now();
    for (let b = 0; b < blocks; b++) {
      const txs: Transaction[] = [];
      for (let i = 0; i < txsPerBlock; i++) {
        const next = source.next();
        if (next.done) throw new Error('ran out of transfers');
        txs.push(signedTx(next.value.key, next.value.fields));
      }
      // On schedule (a block time apart), so the target stays where genesis put it.
      const block = mineChild(params, parent, txs, { miner: SYNC_MINER });
      const outcome = await chain.processBlock(block);
      if (outcome !== 'connected') throw new Error(`pre-built block ${block.header.height} was ${outcome}`);
      parent = asParent(block);
      txCount += txs.length;
      if ((b + 1) % 2000 === 0) ctx.log(`sync:   source at ${b + 1} of ${blocks} blocks, ${s1(performance.now() - start)} s`);
    }
  } finally {
    forgetStates();
    await db.close();
  }
  return { txs: txCount };
}

export interface SyncRun {
  readonly ms: number;
  readonly firstBlockMs: number;
  /** Wall time the syncing node spent inside Chain.processBlock (one block at a time: the import queue). */
  readonly importMs: number;
  /** Wall time with at least one signature batch outstanding in its VerifyPool (overlapping the imports). */
  readonly preverifyMs: number;
  readonly eventLoopUtilization: number;
  /**
   * B's main thread's CPU time over the wall time. Below the event loop's busy share, the rest is
   * time the thread was ready to run but the machine's two cores ran other threads (its pool, the
   * serving nodes, LevelDB's, the collector's helpers).
   */
  readonly mainThreadCpu: number;
  /** When the pool had checked every transaction's signature: how far download and verification ran ahead of the import. */
  readonly allVerifiedMs: number;
  /** What B's VerifyPool runs on. */
  readonly verifier: string;
  /** The peers B was connected to when it reached the tip. */
  readonly peers: number;
}

/**
 * Times a fresh node B, bootstrapping off every address in `a.addrs` (the serving nodes, each
 * holding the same chain), from just before its start until its chain connects their tip. Its chain's
 * and signature verifier's methods are wrapped (after start, before the first batch can arrive:
 * the bootstrap dial waits 100 ms) to say where the time goes.
 */
export async function syncRun(ctx: SuiteContext, params: ChainParams, a: { addrs: readonly string[]; tip: ChainTip }, digest: string, txs: number, live: TestNode[]): Promise<SyncRun> {
  const target = toHex(a.tip.hash);
  const dir = ctx.tempDir('cairn-bench-sync-');
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.threadCpuUsage();
  const start = performance.now();
  // With the heap growth `cairn node` has (cli/cmd-node.ts): while B downloads a long chain, V8
  // may let its heap grow to three times what is live (node/heap-growth.ts). The setting is the
  // process's, so the serving nodes' threads share it while B catches up; a real A would not.
  const b = await startBenchNode(dir, params, live, { bootstrap: [...a.addrs], heapGrowth: true });
  try {
    let importMs = 0;
    let preverifyMs = 0;
    const chain = b.node.chain;
    watchImports(chain, (_block, start, end) => (importMs += end - start));
    // The pool's busy time: while at least one of its jobs is outstanding (they overlap).
    const pool = verifyPoolOf(b.node);
    const verify = pool.verify.bind(pool);
    let outstanding = 0;
    let busySince = 0;
    let verified = 0;
    let allVerifiedAt: number | undefined;
    pool.verify = async (items) => {
      if (outstanding++ === 0) busySince = performance.now();
      try {
        return await verify(items);
      } finally {
        if (--outstanding === 0) preverifyMs += performance.now() - busySince;
        verified += items.length;
        if (verified >= txs) allVerifiedAt ??= performance.now();
      }
    };
    let firstBlockAt: number | undefined;
    let doneAt: number | undefined;
    const done = new Promise<void>((resolve) => {
      chain.on('connect', (_block, entry) => {
        firstBlockAt ??= performance.now();
        if (entry.hashHex === target) {
          doneAt = performance.now();
          resolve();
        }
      });
    });
    let lastLog = performance.now();
    const progress = setInterval(() => {
      if (performance.now() - lastLog < 10_000) return;
      lastLog = performance.now();
      ctx.log(`sync:   B at height ${chain.tip.height} after ${s1(lastLog - start)} s`);
    }, 1000);
    try {
      if (chain.tip.hashHex !== target) {
        await within(done, SYNC_TIMEOUT_MS, () => `B at height ${chain.tip.height} of ${a.tip.height}, syncing: ${b.node.sync.syncing}, peers: ${b.node.transport.peers().length}`);
      }
    } finally {
      clearInterval(progress);
    }
    if (doneAt === undefined || firstBlockAt === undefined) throw new Error('B reached the tip before it was watched');
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const cpu = process.threadCpuUsage(cpu0);
    const mainThreadCpu = (cpu.user + cpu.system) / 1000 / (performance.now() - start); // over the interval the event loop's share covers
    // Outside the timing: the same tip must mean the same state.
    if ((await stateDigest(b.node.db)) !== digest) throw new Error("B's state differs from A's at the same tip");
    return { ms: doneAt - start, firstBlockMs: firstBlockAt - start, importMs, preverifyMs, eventLoopUtilization: elu, mainThreadCpu, allVerifiedMs: (allVerifiedAt ?? doneAt) - start, verifier: verifierOf(b.node), peers: b.node.transport.peers().length };
  } finally {
    await stopNodes(live, [b]);
  }
}

/** The serving nodes of the three-peer figure: A and two more on copies of its chain. */
const SYNC_PEERS = 3;

export const syncSuite: Suite = {
  name: 'sync',
  description: 'a fresh node syncing 10,000 blocks of 200,000 signed transactions from one peer, and from three (each in a worker thread), over libp2p on 127.0.0.1',
  async run(ctx) {
    const limit = await machineLimit(ctx);
    const blocks = ctx.quick ? SYNC_BLOCKS_QUICK : SYNC_BLOCKS;
    const senders = benchKeys(10_000, SYNC_SENDERS);
    // Dated so that 10,000 blocks a block time apart still end in the past.
    const params = networkParams({ name: 'cairn-bench-sync', maxBlockTxs: 1000, alloc: allocFor(senders) });
    const live: TestNode[] = [];
    const threads: ThreadNode[] = [];
    try {
      const setup = performance.now();
      const aDir = ctx.tempDir('cairn-bench-sync-source-');
      ctx.log(`sync: building the source chain: ${blocks} blocks of ${SYNC_TXS_PER_BLOCK} transfers from ${senders.length} senders (untimed)`);
      const { txs } = await buildSyncSource(ctx, aDir.path, params, senders, blocks);
      ctx.log(`sync: ${txs} transfers ${signerNote()}, mined and stored for node A in ${s1(performance.now() - setup)} s`);
      const { digest, tip } = await (async () => {
        const db = await ChainDB.open(join(aDir.path, 'chain'), params);
        try {
          return { digest: await stateDigest(db), tip: await db.storedTip() };
        } finally {
          await db.close();
        }
      })();
      // Copies of the same chain, made before A first starts so that each gets a peer id of its
      // own: a second A that serves without budgets (as before them), to compare with, and the
      // three serving nodes of the three-peer runs. Those are not A: a B that met all three
      // leaves their addresses in A's DHT, and the next B from A alone would find them there.
      const copyOfA = (prefix: string) => {
        const dir = ctx.tempDir(prefix);
        cpSync(aDir.path, dir.path, { recursive: true });
        return dir;
      };
      const unlimitedDir = copyOfA('cairn-bench-sync-source-unlimited-');
      const peerDirs = Array.from({ length: SYNC_PEERS }, (_, i) => copyOfA(`cairn-bench-sync-source-${i + 2}-`));
      // A in its own thread, as the peer would be its own process: its serving does not take B's event loop.
      const aThread = await ThreadNode.start(aDir, params, []);
      threads.push(aThread);
      const unlimitedThread = await ThreadNode.start(unlimitedDir, params, [], { unlimited: true });
      threads.push(unlimitedThread);
      const servers: ThreadNode[] = [];
      for (const dir of peerDirs) {
        const t = await ThreadNode.start(dir, params, []);
        threads.push(t);
        servers.push(t);
      }
      // The tip is a snapshot height (10,000): each serving node copies its state at start, once,
      // as a real peer did when its tip passed that height. And the source was built without the
      // address index, which each serving node then backfills (10,000 blocks), as a real peer did
      // long before. Neither beside B's syncs: the copies, five at once, took the first ~10 s of
      // the first sync to a third of the later syncs' pace, and the backfills, which outlast the
      // copies, still wrote ~100,000 records a second in the first sync's first seconds.
      const settle = performance.now();
      await Promise.all(threads.map((t) => t.backgroundIdle()));
      ctx.log(`sync: the serving nodes' state snapshots and address indexes made in ${s1(performance.now() - settle)} s (untimed)`);
      const runs: SyncRun[] = [];
      const threePeerRuns: SyncRun[] = [];
      const threePeerShares: number[][] = [];
      const uploads: number[] = [];
      const unlimitedUploads: number[] = [];
      let busyAnswers = 0;
      const count = Math.min(ctx.runs, SYNC_MAX_RUNS);
      const timed = async (name: string, sources: readonly ThreadNode[]) => {
        const before = await Promise.all(sources.map((t) => t.served()));
        const run = await profiled(name, () => syncRun(ctx, params, { addrs: sources.map((t) => t.addr), tip }, digest, txs, live));
        const after = await Promise.all(sources.map((t) => t.served()));
        return { run, bytes: after.map((a, i) => a.bytes - before[i]!.bytes), throttled: after.reduce((sum, a, i) => sum + a.throttled - before[i]!.throttled, 0) };
      };
      const line = (r: number, what: string, run: SyncRun, extra: string) =>
        ctx.log(
          `sync:   run ${r + 1} ${what}: ${s1(run.ms)} s (${k((txs * 1000) / run.ms)} tx/s), ${extra}, B had ${run.peers} peer${run.peers === 1 ? '' : 's'} at the tip, first block after ${ms0(run.firstBlockMs)} ms, every signature checked after ${s1(run.allVerifiedMs)} s, ` +
            `in processBlock ${s1(run.importMs)} s, pool busy ${s1(run.preverifyMs)} s, event loop busy ${(100 * run.eventLoopUtilization).toFixed(0)}%, its thread on CPU ${(100 * run.mainThreadCpu).toFixed(0)}%`,
        );
      // Alternating, so that all see the same machine: a fresh B from A with its budgets and a
      // fresh B from three peers (in turn first), then one from A without budgets.
      for (let r = 0; r < count; r++) {
        const order = r % 2 === 0 ? (['one', 'three'] as const) : (['three', 'one'] as const);
        for (const kind of order) {
          if (kind === 'one') {
            const { run, bytes, throttled } = await timed(`sync-${r + 1}`, [aThread]);
            const upload = bytes[0]! / (run.ms / 1000);
            busyAnswers += throttled;
            uploads.push(upload);
            runs.push(run);
            line(r, 'from A', run, `A uploaded ${(upload / 1e6).toFixed(2)} MB/s`);
          } else {
            const { run, bytes } = await timed(`sync-${r + 1}-three-peers`, servers);
            threePeerRuns.push(run);
            threePeerShares.push(bytes);
            line(r, `from ${SYNC_PEERS} peers`, run, `they uploaded ${bytes.map((b) => (b / 1e6).toFixed(1)).join(' + ')} MB`);
          }
        }
        const { run, bytes } = await timed(`sync-${r + 1}-unlimited`, [unlimitedThread]);
        const upload = bytes[0]! / (run.ms / 1000);
        unlimitedUploads.push(upload);
        line(r, '(A without budgets)', run, `A uploaded ${(upload / 1e6).toFixed(2)} MB/s`);
      }
      const med = (list: readonly SyncRun[], f: (r: SyncRun) => number) => median(list.map(f));
      const phases = (list: readonly SyncRun[]) => {
        const wall = med(list, (r) => r.ms);
        return (
          `median: first block after ${ms0(med(list, (r) => r.firstBlockMs))} ms; every block downloaded and its signatures checked after ${s1(med(list, (r) => r.allVerifiedMs))} s (8 batches of 32 blocks at most ahead of the import), the tip imported after ${s1(wall)} s; inside Chain.processBlock (one block at a time) ${((100 * med(list, (r) => r.importMs)) / wall).toFixed(0)}% of the wall time; ` +
          `its VerifyPool (${list[0]!.verifier}) busy ${((100 * med(list, (r) => r.preverifyMs)) / wall).toFixed(0)}% of it, overlapping; B's event loop busy ${(100 * med(list, (r) => r.eventLoopUtilization)).toFixed(0)}%, its thread on CPU ${(100 * med(list, (r) => r.mainThreadCpu)).toFixed(0)}% of the wall time, waiting for a core the rest of its busy time (the serving nodes serve from worker threads of their own in the same process, as their own processes would: bench/node-thread.ts)`
        );
      };
      const oneBytes = median(uploads.map((u, i) => u * (runs[i]!.ms / 1000)));
      return [
        metric({
          key: 'syncTxPerSec',
          label: `sync of a fresh node, ${k(blocks)} blocks from one peer`,
          unit: 'tx/s',
          runs: runs.map((r) => (txs * 1000) / r.ms),
          target: TARGETS.syncTxPerSec,
          limit: limit.limit,
          note: `${k(txs)} signed transfers, every signature checked by B; ${count} runs, fresh B each; ${phases(runs)}`,
        }),
        metric({
          key: 'syncTxPerSecThreePeers',
          label: `the same from ${SYNC_PEERS} peers`,
          unit: 'tx/s',
          runs: threePeerRuns.map((r) => (txs * 1000) / r.ms),
          target: TARGETS.syncTxPerSecThreePeers,
          limit: limit.limit,
          note: `B bootstraps off three nodes on copies of A's datadir (their own peer ids), each in a worker thread; runs alternating with the one-peer runs (in turn first); what each served, median of the runs: ${servers.map((_, i) => `${(median(threePeerShares.map((b) => b[i]!)) / 1e6).toFixed(1)} MB`).join(', ')} (A alone served ${(oneBytes / 1e6).toFixed(1)} MB); ${phases(threePeerRuns)}`,
        }),
        metric({
          key: 'syncThreePeersVsOnePeer',
          label: `that rate over the one-peer rate of the same run (issue #19: no slower)`,
          unit: '×',
          runs: threePeerRuns.map((r, i) => runs[i]!.ms / r.ms),
          target: atLeast(1),
          note: 'each three-peer run against the one-peer run beside it (their order alternating run by run)',
        }),
        metric({
          key: 'syncBlocksPerSec',
          label: `sync of a fresh node, ${k(blocks)} blocks from one peer`,
          unit: 'block/s',
          runs: runs.map((r) => (blocks * 1000) / r.ms),
          note: `${SYNC_TXS_PER_BLOCK} transfers a block; from B's start to A's tip, B's state digest then checked against A's`,
        }),
        metric({
          key: 'syncUploadBytesPerSec',
          label: 'upload of the serving node to one syncing peer, with its budgets',
          unit: 'B/s',
          runs: uploads,
          note: `bytes A served (headers, blocks, status: its NetworkStats) over B's sync time, the one-peer runs above; without budgets (node/serving.ts UNLIMITED_SERVING) in alternating runs on a copy of A: median ${(median(unlimitedUploads) / 1e6).toFixed(2)} MB/s (${unlimitedUploads.map((u) => (u / 1e6).toFixed(2)).join(', ')})`,
        }),
        metric({
          key: 'syncUploadRatioVsUnlimited',
          label: 'that upload over the same without budgets (issue 15: within 10%)',
          unit: '×',
          runs: uploads.map((u, i) => u / unlimitedUploads[i]!),
          target: atLeast(0.9),
          note: `each run with budgets over the run without that followed it; the budgets must not slow a lone syncing peer (A answered it busy ${busyAnswers} times in all its runs)`,
        }),
      ];
    } finally {
      for (const t of threads) await t.stop();
      await stopAll(live);
    }
  },
};
