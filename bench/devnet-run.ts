/**
 * One measured devnet run: the nodes started, transactions submitted over RPC through a warm-up
 * and a window, the blocks of the window counted, and the three nodes checked to agree; and the
 * note that tells such a run in words.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StatusResult } from '../node/rpc-types.ts';
import { waitFor } from '../test/helpers/network.ts';
import { exited, stopProcess } from '../test/helpers/cluster.ts';
import type { SuiteContext } from './report.ts';
import { k, ms0, s1, type BenchKey } from './perf-common.ts';
import { call, converged, DEVNET_BLOCK_TIME, DEVNET_NODES, devnetGenesis, devnetTarget, pollStatuses, RssWatch, startDevnet, type DevnetNode, type StatusAnswer } from './devnet-nodes.ts';

/** Submission starts this long before the measured window: the first block after it is still empty. */
const DEVNET_WARMUP_MS = 8_000;
const DEVNET_BATCH = 1_000;
const DEVNET_CONCURRENCY = 3;
/** The submitter pauses while the node's mempool holds this many: a backlog the miner cannot clear tells nothing more. */
const DEVNET_MEMPOOL_CAP = 10_000;
const DEVNET_SETTLE_TIMEOUT_MS = 60_000;
const DEVNET_CONVERGE_TIMEOUT_MS = 90_000;

export interface DevnetRun {
  readonly submitTo: string;
  /** Transactions in the main-chain blocks after the first connected in the window, up to the last (or in the window's blocks, with fewer than two). */
  readonly confirmed: number;
  readonly blocks: number;
  readonly biggestBlock: number;
  /** From the first to the last of those blocks' connects on the miner (as its own status answers show them, polled every 100 ms). */
  readonly spanMs: number;
  /** Whether the span is block to block (at least two blocks in the window) or the window itself. */
  readonly blockToBlock: boolean;
  readonly admitted: number;
  readonly windowMs: number;
  readonly submitted: number;
  readonly rejections: ReadonlyMap<string, number>;
  readonly ranOut: boolean;
  readonly mempoolPeak: number;
  readonly drainedMs: number | undefined;
  readonly convergedHeight: number;
  /** Per node: its largest RSS from its spawn to its stop, and before the convergence check began. */
  readonly rssMb: ReadonlyArray<{ name: string; mb: number; beforeAuditMb: number; peak?: StatusResult['memory'] }>;
  /** Per node: the slowest `status` answer (ms) and the calls retried after a dropped connection. */
  readonly stalls: ReadonlyArray<{ name: string; maxStatusMs: number; retries: number }>;
}

/**
 * One devnet: three `cairn node` processes, node-0 mining, transactions submitted over RPC to
 * `submitIndex` as fast as it takes them for warm-up + window, then the three must agree on one
 * head and state digest.
 */
export async function devnetRun(ctx: SuiteContext, hexes: readonly string[], senders: readonly BenchKey[], submitIndex: number, windowMs: number): Promise<DevnetRun> {
  const { rate, target } = devnetTarget();
  const dir = ctx.tempDir('cairn-bench-devnet-');
  const genesisFile = join(dir.path, 'genesis.json');
  writeFileSync(genesisFile, devnetGenesis(senders, target));

  const nodes: DevnetNode[] = [];
  // Every node's RSS from its spawn until it is stopped (issue #19: no window excluded). The
  // convergence check's part is marked, not left out: its auditState replays every block from
  // genesis and reads the whole store (measured: +15-40 MB on each node, mostly LevelDB's table
  // files mapped in), which the diagnostic figure without it shows.
  const rss = new RssWatch();
  try {
    await startDevnet(ctx, genesisFile, rss, nodes);
    const submitNode = nodes[submitIndex]!;
    const minerNode = nodes[0]!;
    ctx.log(`devnet: ${DEVNET_NODES} nodes up (pids ${nodes.map((n) => n.child.pid).join(', ')}); hash rate ${k(rate)}/s on one thread here, genesis target for ${DEVNET_BLOCK_TIME} s blocks at that rate`);

    // Settled: everyone has a peer and 4 blocks (blocks 1 and 2 carry the genesis target; ASERT starts at 3).
    await waitFor(
      async () => {
        const st = await Promise.all(nodes.map((n) => call(n, 'status', {})));
        return st.every((s) => s.peers > 0 && s.height >= 4);
      },
      DEVNET_SETTLE_TIMEOUT_MS,
      'every devnet node to have a peer and 4 blocks',
    );
    ctx.log(`devnet: settled; submitting to ${submitNode.name} for ${s1(DEVNET_WARMUP_MS)} s warm-up + ${s1(windowMs)} s window`);

    // The submitter: closed loop, DEVNET_CONCURRENCY batches in flight, paused while the mempool is over the cap.
    let stop = false;
    let failure: Error | undefined;
    let submitted = 0;
    let accepted = 0;
    const rejections = new Map<string, number>();
    let lastMempool = 0;
    let nextTx = 0;
    const submitter = async () => {
      while (!stop && nextTx < hexes.length) {
        if (lastMempool > DEVNET_MEMPOOL_CAP) {
          await sleep(50);
          continue;
        }
        const batch = hexes.slice(nextTx, nextTx + DEVNET_BATCH);
        nextTx += batch.length;
        submitted += batch.length;
        try {
          const result = await call(submitNode, 'sendRawTransactions', { txs: batch }, 2);
          accepted += result.accepted.length;
          for (const r of result.rejected) rejections.set(r.code, (rejections.get(r.code) ?? 0) + 1);
        } catch (err) {
          failure ??= new Error(`sendRawTransactions to ${submitNode.name}: ${(err as Error).message}`);
          stop = true;
        }
      }
    };
    // The sampler: each node's status every 100 ms, each node in a loop of its own.
    let sampling = true;
    const poll = pollStatuses(
      nodes.length,
      async (i) => {
        const n = nodes[i]!;
        const asked = performance.now();
        try {
          const status = await call(n, 'status', {});
          n.maxStatusMs = Math.max(n.maxStatusMs, performance.now() - asked);
          if (status.memory && status.memory.rss > (n.peakMemory?.rss ?? 0)) n.peakMemory = status.memory;
          if (i === submitIndex) lastMempool = status.mempool;
          return status;
        } catch (err) {
          // A node that stops answering ends the run; the error says how long it was given.
          throw new Error(`${n.name}'s status after ${ms0(performance.now() - asked)} ms: ${(err as Error).message}`);
        }
      },
      () => sleep(100),
      () => sampling,
    );
    const sampler = poll.done.catch((err: Error) => {
      failure ??= err;
      stop = true;
      sampling = false;
    });
    const latest = () => poll.answers.map((a) => a.at(-1)!.status);
    const t0 = performance.now();
    const submitters = Array.from({ length: DEVNET_CONCURRENCY }, submitter);
    await sleep(DEVNET_WARMUP_MS);
    const windowStart = performance.now();
    const acceptedAtStart = accepted;
    await sleep(windowMs);
    const windowEnd = performance.now();
    const admitted = accepted - acceptedAtStart;
    stop = true;
    await Promise.all(submitters);
    if (failure) throw failure;

    const { hA, hB, spanMs, blockToBlock } = countedBlocks(poll.answers[0]!, windowStart, windowEnd);

    // Convergence: the same head and state digest on all three, once submissions stop.
    ctx.log(`devnet: window over (blocks ${hA + 1}–${hB} counted); waiting for the nodes to converge and the mempools to drain`);
    const convergeStart = performance.now();
    let agreed: { height: number; head: string } | undefined;
    let drainedMs: number | undefined;
    while (!agreed && performance.now() - convergeStart < 2 * DEVNET_CONVERGE_TIMEOUT_MS) {
      if (failure) throw failure;
      const st = latest();
      if (drainedMs === undefined && st.every((x) => x.mempool === 0)) drainedMs = performance.now() - convergeStart;
      // Agreement is checked once the mempools are empty (or after the first timeout): a backlog
      // that does not drain is a figure, not a failure, but the nodes must still agree.
      const ready = drainedMs !== undefined || performance.now() - convergeStart > DEVNET_CONVERGE_TIMEOUT_MS;
      if (ready && st.every((x) => x.height >= hB)) {
        rss.auditing = true;
        agreed = await converged(nodes);
      }
      if (!agreed) await sleep(200);
    }
    sampling = false;
    await sampler;
    if (!agreed) throw new Error(`the devnet did not converge within ${s1(2 * DEVNET_CONVERGE_TIMEOUT_MS)} s of the window; heads ${latest().map((x) => `${x.height}:${x.head.slice(0, 8)}`).join(' ')}`);

    // The counted blocks, from the miner, each checked to be on the submit node's main chain too.
    let confirmed = 0;
    let biggestBlock = 0;
    for (let h = hA + 1; h <= hB; h++) {
      const [mined, far] = await Promise.all([call(minerNode, 'getBlock', { height: h }), call(nodes[DEVNET_NODES - 1]!, 'getBlock', { height: h })]);
      if (mined.hash !== far.hash) throw new Error(`block ${h} differs between node-0 and node-${DEVNET_NODES - 1} after convergence`);
      confirmed += mined.txs.length;
      biggestBlock = Math.max(biggestBlock, mined.txs.length);
    }
    // The end: RSS is sampled until the nodes have stopped.
    await Promise.all(nodes.map((n) => stopProcess(n.child, 'SIGTERM', 15_000)));
    rss.stop();
    const run: DevnetRun = {
      submitTo: submitNode.name + (submitIndex === 0 ? ' (the miner)' : ''),
      confirmed,
      blocks: hB - hA,
      biggestBlock,
      spanMs,
      blockToBlock,
      admitted,
      windowMs: windowEnd - windowStart,
      submitted,
      rejections,
      ranOut: nextTx >= hexes.length,
      mempoolPeak: Math.max(...poll.answers.flat().map((a) => a.status.mempool)),
      drainedMs,
      convergedHeight: agreed.height,
      rssMb: nodes.map((n) => ({ name: n.name + (n === minerNode ? ' (miner)' : '') + (n === submitNode ? ' (RPC)' : ''), ...rss.peaks(n.child.pid), peak: n.peakMemory })),
      stalls: nodes.map((n) => ({ name: n.name, maxStatusMs: n.maxStatusMs, retries: n.retries })),
    };
    ctx.log(
      `devnet: ${k(confirmed)} txs confirmed in ${run.blocks} blocks over ${s1(spanMs)} s = ${k((confirmed * 1000) / spanMs)} tx/s; ` +
        `admitted ${k((admitted * 1000) / run.windowMs)} tx/s; ${rejectText(run)}; mempool peak ${k(run.mempoolPeak)}; converged at ${agreed.height}` +
        `${drainedMs === undefined ? ', mempools not drained' : `, mempools drained ${s1(drainedMs)} s after the window`}; RSS max ${run.rssMb.map((r) => r.mb.toFixed(0)).join('/')} MB (before the convergence check ${run.rssMb.map((r) => r.beforeAuditMb.toFixed(0)).join('/')} MB)`,
    );
    return run;
  } catch (err) {
    // The node logs are deleted with their datadirs: their last lines go with the error, and
    // the whole logs to a directory that is kept.
    if (nodes.length > 0) {
      const kept = mkdtempSync(join(tmpdir(), 'cairn-bench-devnet-logs-'));
      for (const n of nodes) copyFileSync(join(n.datadir, 'node.log'), join(kept, `${n.name}.log`));
      ctx.log(`devnet: node logs kept in ${kept}`);
      for (const n of nodes) {
        const lines = readFileSync(join(n.datadir, 'node.log'), 'utf8').trimEnd().split('\n');
        ctx.log(`devnet: ${n.name} (pid ${n.child.pid}, ${exited(n.child) ? `exited ${n.child.exitCode ?? n.child.signalCode}` : 'running'}), last log lines:\n  ${lines.slice(-5).join('\n  ')}`);
      }
    }
    throw err;
  } finally {
    await Promise.all(nodes.map((n) => stopProcess(n.child, 'SIGTERM', 15_000)));
    rss.stop();
    dir.remove();
  }
}

/**
 * The blocks the confirmed rate counts, from the miner's own status answers: each height taken as
 * reached when an answer first showed it. From the first block connected in the window to the
 * last, so that no block interval is cut in two (the first opens the span and is not counted);
 * with fewer than two blocks in the window, the window itself (its blocks, or none).
 */
export function countedBlocks(miner: readonly StatusAnswer[], windowStart: number, windowEnd: number): { hA: number; hB: number; spanMs: number; blockToBlock: boolean } {
  const firstSeen = new Map<number, number>();
  for (const { at, status } of miner) if (!firstSeen.has(status.height)) firstSeen.set(status.height, at);
  const inWindow = [...firstSeen].filter(([, at]) => at >= windowStart && at <= windowEnd).map(([h]) => h);
  if (inWindow.length >= 2) {
    const hA = Math.min(...inWindow);
    const hB = Math.max(...inWindow);
    return { hA, hB, spanMs: firstSeen.get(hB)! - firstSeen.get(hA)!, blockToBlock: true };
  }
  const heightAt = (t: number) => Math.max(0, ...miner.filter((x) => x.at <= t).map((x) => x.status.height));
  return { hA: heightAt(windowStart), hB: heightAt(windowEnd), spanMs: windowEnd - windowStart, blockToBlock: false };
}

function rejectText(run: DevnetRun): string {
  const rejected = [...run.rejections.values()].reduce((a, b) => a + b, 0);
  return rejected === 0 ? 'none rejected' : `${rejected} rejected (${[...run.rejections].map(([c, n]) => `${c} ${n}`).join(', ')})`;
}

export function devnetNote(run: DevnetRun): string {
  return (
    (run.blockToBlock
      ? `${k(run.confirmed)} txs in the ${run.blocks} main-chain blocks the miner connected in a ${s1(run.windowMs)} s window (after ${s1(DEVNET_WARMUP_MS)} s of submission) after the first it connected there, over the ${s1(run.spanMs)} s from that first to the last `
      : `${k(run.confirmed)} txs in the ${run.blocks} main-chain blocks the miner connected in a ${s1(run.windowMs)} s window (after ${s1(DEVNET_WARMUP_MS)} s of submission), over the whole window (fewer than two blocks in it) `) +
    `(a block every ${s1(run.spanMs / Math.max(1, run.blocks))} s, largest ${k(run.biggestBlock)} txs); all three nodes then at one head and state digest (height ${run.convergedHeight}); admitted by ${run.submitTo} ${k((run.admitted * 1000) / run.windowMs)} tx/s in the window ` +
    `(${rejectText(run)}; mempool peak ${k(run.mempoolPeak)}; ${run.drainedMs === undefined ? 'mempools not drained after the window' : `mempools drained ${s1(run.drainedMs)} s after the window`})` +
    `; slowest status answer ${run.stalls.map((x) => `${x.name} ${s1(x.maxStatusMs)} s`).join(', ')} (event-loop stalls)` +
    `${run.stalls.some((x) => x.retries > 0) ? `; RPC calls retried after a dropped keep-alive connection ${run.stalls.map((x) => `${x.name} ${x.retries}`).join(', ')}` : ''}` +
    `${run.ranOut ? '; THE PRE-SIGNED TRANSACTIONS RAN OUT' : ''}`
  );
}
