/** The devnet suite of issue #7: three `cairn node` processes, transactions submitted over RPC. */
import { HEADER_BYTES } from '../ledger/block.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stateDigest } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import { sha256 } from '../ledger/hash.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { MAX_TARGET } from '../consensus/pow.ts';
import { searchNonceWith } from '../consensus/miner.ts';
import { meetsTarget } from '../node/pow-hash.js';
import { RpcClient } from '../cli/rpc-client.ts';
import { RPC_ENDPOINT_FILE, type RpcMethod, type RpcMethods, type StatusResult } from '../node/rpc-types.ts';
import { waitFor } from '../test/helpers/network.ts';
import { CAIRN_BIN, exited, stopProcess, track } from '../test/helpers/cluster.ts';
import { below, metric, type Metric, type Suite, type SuiteContext } from './report.ts';
import {
  SENDER_BALANCE,
  TARGETS,
  benchKey,
  benchKeys,
  k,
  machineLimit,
  ms0,
  s1,
  signedBytes,
  signerNote,
  transfers,
  within,
  type BenchKey,
} from './perf-common.ts';

// ---------------------------------------------------------------------------------------------
// devnet: three `cairn node` processes, one mining, transactions submitted over RPC to one.

const DEVNET_NODES = 3;
const DEVNET_SENDERS = 4_000;
const DEVNET_ROUNDS = 40; // 160,000 pre-signed transfers
const DEVNET_BLOCK_TIME = 2;
/** Short, so that the target follows the hash rate the mining thread really gets on a busy machine. */
const DEVNET_HALF_LIFE = 10;
const DEVNET_MINER_SHARE = 4;
/** Submission starts this long before the measured window: the first block after it is still empty. */
const DEVNET_WARMUP_MS = 8_000;
const DEVNET_WINDOW_MS = 30_000;
const DEVNET_BATCH = 1_000;
const DEVNET_CONCURRENCY = 3;
/** The submitter pauses while the node's mempool holds this many: a backlog the miner cannot clear tells nothing more. */
const DEVNET_MEMPOOL_CAP = 10_000;
const DEVNET_SETTLE_TIMEOUT_MS = 60_000;
const DEVNET_CONVERGE_TIMEOUT_MS = 90_000;
/** Extra flags for the node processes, e.g. CAIRN_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const NODE_FLAGS = (process.env.CAIRN_BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);

interface DevnetNode {
  readonly name: string;
  readonly datadir: string;
  readonly child: ChildProcess;
  client: RpcClient;
  listen: string[];
  /** The largest RSS under the load: from start until the convergence check's first auditState. */
  maxRssMb: number;
  /** The largest RSS including the convergence check (auditState replays the whole chain). */
  maxRssAuditMb: number;
  /** The node's own memory report (status.memory) with the highest rss seen under the load. */
  peakMemory?: StatusResult['memory'];
  /** RPC calls retried after a dropped connection (see `call`). */
  retries: number;
  /** The slowest answer to `status` while sampled: how long the node's event loop was busy at most. */
  maxStatusMs: number;
}

function rssMbOf(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Hashes a second with one thread, as a node's hashing thread does (node/pow-hash.js, one header at a time). */
function hashRate(): number {
  const header = new Uint8Array(HEADER_BYTES);
  const never = meetsTarget(new Uint8Array(32)); // only an all-zero hash would meet it
  searchNonceWith(header, 0n, 20_000, never);
  const start = performance.now();
  let hashes = 0;
  while (performance.now() - start < 500) {
    searchNonceWith(header, BigInt(hashes), 20_000, never);
    hashes += 20_000;
  }
  return (hashes * 1000) / (performance.now() - start);
}

const DEVNET_CHAIN_ID = 4207;

function devnetGenesis(senders: readonly BenchKey[], target: bigint): string {
  const alloc: Record<string, string> = {};
  for (const key of senders) alloc[encodeAddress(key.address)] = SENDER_BALANCE.toString();
  return JSON.stringify({
    name: 'cairn-bench-devnet',
    chainId: DEVNET_CHAIN_ID,
    timestamp: Math.floor(Date.now() / 1000) - 60,
    target: `0x${target.toString(16)}`,
    blockTime: DEVNET_BLOCK_TIME,
    asertHalfLife: DEVNET_HALF_LIFE,
    reward: '5000000000',
    unit: 'CRN',
    decimals: 8,
    limits: { maxBlockBytes: 16 * 1024 * 1024, maxBlockTxs: 50_000 },
    alloc,
  });
}

async function startDevnetNode(ctx: SuiteContext, name: string, genesisFile: string, bootstrap: readonly string[], mine: Uint8Array | undefined): Promise<DevnetNode> {
  const datadir = ctx.tempDir(`cairn-bench-devnet-${name}-`).path;
  const args = [...NODE_FLAGS, CAIRN_BIN, 'node', '--datadir', datadir, '--genesis', genesisFile, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--log-level', 'info'];
  for (const b of bootstrap) args.push('--bootstrap', b);
  if (mine) args.push('--mine', '--coinbase', encodeAddress(mine), '--threads', '1');
  // As a user would start it: without the bench's own threadpool size (bench/threadpool.ts).
  const { UV_THREADPOOL_SIZE: _benchOnly, ...env } = process.env;
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: datadir, env });
  track(child); // killed if the bench exits without stopping it
  const log = createWriteStream(join(datadir, 'node.log'));
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const deadline = performance.now() + 60_000;
  for (;;) {
    if (exited(child)) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}); see ${join(datadir, 'node.log')}`);
    try {
      const client = await RpcClient.fromDatadir(datadir);
      const status = await client.call('status', {});
      return { name, datadir, child, client, listen: status.listen, maxRssMb: 0, maxRssAuditMb: 0, retries: 0, maxStatusMs: 0 };
    } catch {
      if (performance.now() > deadline) throw new Error(`${name} did not answer RPC within 60 s (${join(datadir, RPC_ENDPOINT_FILE)})`);
      await sleep(200);
    }
  }
}

/**
 * An RPC call that survives one kind of transient failure: a node whose event loop was blocked
 * for longer than its HTTP keep-alive timeout (5 s) closes the client's idle connection as it
 * wakes, racing the next request on it, which then fails without reaching the node. Such a call
 * is retried (a resubmitted transaction is at worst refused as a duplicate) while the process lives.
 */
async function call<M extends RpcMethod>(n: DevnetNode, method: M, params: RpcMethods[M]['params'], tries = 3): Promise<RpcMethods[M]['result']> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await n.client.call(method, params);
    } catch (err) {
      if (attempt >= tries || exited(n.child) || (err as { code?: string }).code !== 'NODE_NOT_RUNNING') throw err;
      n.retries++;
      await sleep(100);
    }
  }
}

interface Sample {
  readonly at: number;
  readonly statuses: readonly StatusResult[];
}

/** Heads equal, and each node's state digest at that head equal: the devnet agrees. */
async function converged(nodes: readonly DevnetNode[]): Promise<{ height: number; head: string } | undefined> {
  const statuses = await Promise.all(nodes.map((n) => call(n, 'status', {})));
  if (!statuses.every((s) => s.head === statuses[0]!.head)) return undefined;
  const audits = await Promise.all(nodes.map((n) => call(n, 'auditState', {})));
  if (!audits.every((a) => a.head === audits[0]!.head && a.digest === audits[0]!.digest)) return undefined;
  return { height: audits[0]!.height, head: audits[0]!.head };
}

interface DevnetRun {
  readonly submitTo: string;
  /** Transactions in the main-chain blocks between the first and last block connected in the window. */
  readonly confirmed: number;
  readonly blocks: number;
  readonly biggestBlock: number;
  /** From the first to the last of those blocks' connects on the miner (as sampled, ±100 ms). */
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
  readonly rssMb: ReadonlyArray<{ name: string; mb: number; withAuditMb: number; peak?: StatusResult['memory'] }>;
  /** Per node: the slowest `status` answer (ms) and the calls retried after a dropped connection. */
  readonly stalls: ReadonlyArray<{ name: string; maxStatusMs: number; retries: number }>;
}

/**
 * One devnet: three `cairn node` processes, node-0 mining, transactions submitted over RPC to
 * `submitIndex` as fast as it takes them for warm-up + window, then the three must agree on one
 * head and state digest.
 */
async function devnetRun(ctx: SuiteContext, hexes: readonly string[], senders: readonly BenchKey[], submitIndex: number, windowMs: number): Promise<DevnetRun> {
  const rate = hashRate();
  // One block a block time if the mining thread gets a quarter of a core (it shares the machine
  // with three nodes, and often with others); ASERT, with a short half-life, corrects the rest.
  let target = (1n << 256n) / BigInt(Math.max(1, Math.round((rate / DEVNET_MINER_SHARE) * DEVNET_BLOCK_TIME)));
  if (target > MAX_TARGET) target = MAX_TARGET;
  const dir = ctx.tempDir('cairn-bench-devnet-');
  const genesisFile = join(dir.path, 'genesis.json');
  writeFileSync(genesisFile, devnetGenesis(senders, target));
  const miner = benchKey(999_998).address;

  const nodes: DevnetNode[] = [];
  let rssTimer: NodeJS.Timeout | undefined;
  /** Set when the convergence check starts: RSS from then on is not counted as under the load. */
  let auditing = false;
  try {
    for (let i = 0; i < DEVNET_NODES; i++) {
      const bootstrap = i === 0 ? [] : nodes[i - 1]!.listen.filter((a) => a.includes('/127.0.0.1/'));
      nodes.push(await startDevnetNode(ctx, `node-${i}`, genesisFile, bootstrap, i === 0 ? miner : undefined));
    }
    const submitNode = nodes[submitIndex]!;
    const minerNode = nodes[0]!;
    ctx.log(`devnet: ${DEVNET_NODES} nodes up (pids ${nodes.map((n) => n.child.pid).join(', ')}); hash rate ${k(rate)}/s on one thread here, genesis target for ${DEVNET_BLOCK_TIME} s blocks at that rate`);
    // The convergence check is the bench's instrument, not the load: its auditState replays every
    // block from genesis and reads the whole store (measured: +15-40 MB on each node, mostly
    // LevelDB's table files mapped in), so what it costs is kept apart.
    rssTimer = setInterval(() => {
      for (const n of nodes) {
        const mb = (n.child.pid !== undefined && rssMbOf(n.child.pid)) || 0;
        if (!auditing) n.maxRssMb = Math.max(n.maxRssMb, mb);
        n.maxRssAuditMb = Math.max(n.maxRssAuditMb, mb);
      }
    }, 250);

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
    // The sampler: every node's status every 100 ms.
    const samples: Sample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const asked = performance.now();
        try {
          const statuses = await Promise.all(
            nodes.map(async (n) => {
              const t = performance.now();
              const status = await call(n, 'status', {});
              n.maxStatusMs = Math.max(n.maxStatusMs, performance.now() - t);
              if (!auditing && status.memory && status.memory.rss > (n.peakMemory?.rss ?? 0)) n.peakMemory = status.memory;
              return status;
            }),
          );
          samples.push({ at: performance.now(), statuses });
          lastMempool = statuses[submitIndex]!.mempool;
        } catch (err) {
          // A node that stops answering ends the run; the error says how long it was given.
          failure ??= new Error(`status after ${ms0(performance.now() - asked)} ms: ${(err as Error).message}`);
          stop = true;
          sampling = false;
        }
        await sleep(100);
      }
    })();
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

    // The blocks the miner connected inside the window, and when it was first seen at each height.
    const firstSeen = new Map<number, number>();
    for (const sample of samples) {
      const h = sample.statuses[0]!.height;
      if (!firstSeen.has(h)) firstSeen.set(h, sample.at);
    }
    const inWindow = [...firstSeen].filter(([, at]) => at >= windowStart && at <= windowEnd).map(([h]) => h);
    // From the first block connected in the window to the last, so that no block interval is cut
    // in two; with fewer than two blocks in the window, the window itself (its blocks, or none).
    let hA: number;
    let hB: number;
    let spanMs: number;
    if (inWindow.length >= 2) {
      hA = Math.min(...inWindow);
      hB = Math.max(...inWindow);
      spanMs = firstSeen.get(hB)! - firstSeen.get(hA)!;
    } else {
      const heightAt = (t: number) => Math.max(0, ...samples.filter((x) => x.at <= t).map((x) => x.statuses[0]!.height));
      hA = heightAt(windowStart);
      hB = heightAt(windowEnd);
      spanMs = windowEnd - windowStart;
    }

    // Convergence: the same head and state digest on all three, once submissions stop.
    ctx.log(`devnet: window over (blocks ${hA + 1}–${hB} counted); waiting for the nodes to converge and the mempools to drain`);
    const convergeStart = performance.now();
    let agreed: { height: number; head: string } | undefined;
    let drainedMs: number | undefined;
    while (!agreed && performance.now() - convergeStart < 2 * DEVNET_CONVERGE_TIMEOUT_MS) {
      if (failure) throw failure;
      const st = samples.at(-1)!.statuses;
      if (drainedMs === undefined && st.every((x) => x.mempool === 0)) drainedMs = performance.now() - convergeStart;
      // Agreement is checked once the mempools are empty (or after the first timeout): a backlog
      // that does not drain is a figure, not a failure, but the nodes must still agree.
      const ready = drainedMs !== undefined || performance.now() - convergeStart > DEVNET_CONVERGE_TIMEOUT_MS;
      if (ready && st.every((x) => x.height >= hB)) {
        auditing = true;
        agreed = await converged(nodes);
      }
      if (!agreed) await sleep(200);
    }
    sampling = false;
    await sampler;
    if (!agreed) throw new Error(`the devnet did not converge within ${s1(2 * DEVNET_CONVERGE_TIMEOUT_MS)} s of the window; heads ${samples.at(-1)!.statuses.map((x) => `${x.height}:${x.head.slice(0, 8)}`).join(' ')}`);

    // The counted blocks, from the miner, each checked to be on the submit node's main chain too.
    let confirmed = 0;
    let biggestBlock = 0;
    for (let h = hA + 1; h <= hB; h++) {
      const [mined, far] = await Promise.all([call(minerNode, 'getBlock', { height: h }), call(nodes[DEVNET_NODES - 1]!, 'getBlock', { height: h })]);
      if (mined.hash !== far.hash) throw new Error(`block ${h} differs between node-0 and node-${DEVNET_NODES - 1} after convergence`);
      confirmed += mined.txs.length;
      biggestBlock = Math.max(biggestBlock, mined.txs.length);
    }
    const run: DevnetRun = {
      submitTo: submitNode.name + (submitIndex === 0 ? ' (the miner)' : ''),
      confirmed,
      blocks: hB - hA,
      biggestBlock,
      spanMs,
      blockToBlock: inWindow.length >= 2,
      admitted,
      windowMs: windowEnd - windowStart,
      submitted,
      rejections,
      ranOut: nextTx >= hexes.length,
      mempoolPeak: Math.max(...samples.map((x) => Math.max(...x.statuses.map((y) => y.mempool)))),
      drainedMs,
      convergedHeight: agreed.height,
      rssMb: nodes.map((n) => ({ name: n.name + (n === minerNode ? ' (miner)' : '') + (n === submitNode ? ' (RPC)' : ''), mb: n.maxRssMb, withAuditMb: n.maxRssAuditMb, peak: n.peakMemory })),
      stalls: nodes.map((n) => ({ name: n.name, maxStatusMs: n.maxStatusMs, retries: n.retries })),
    };
    ctx.log(
      `devnet: ${k(confirmed)} txs confirmed in ${run.blocks} blocks over ${s1(spanMs)} s = ${k((confirmed * 1000) / spanMs)} tx/s; ` +
        `admitted ${k((admitted * 1000) / run.windowMs)} tx/s; ${rejectText(run)}; mempool peak ${k(run.mempoolPeak)}; converged at ${agreed.height}` +
        `${drainedMs === undefined ? ', mempools not drained' : `, mempools drained ${s1(drainedMs)} s after the window`}; RSS max ${run.rssMb.map((r) => r.mb.toFixed(0)).join('/')} MB (with the convergence check ${run.rssMb.map((r) => r.withAuditMb.toFixed(0)).join('/')} MB)`,
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
    clearInterval(rssTimer);
    await Promise.all(nodes.map((n) => stopProcess(n.child, 'SIGTERM', 15_000)));
    dir.remove();
  }
}

function rejectText(run: DevnetRun): string {
  const rejected = [...run.rejections.values()].reduce((a, b) => a + b, 0);
  return rejected === 0 ? 'none rejected' : `${rejected} rejected (${[...run.rejections].map(([c, n]) => `${c} ${n}`).join(', ')})`;
}

function devnetNote(run: DevnetRun): string {
  return (
    `${k(run.confirmed)} txs in the ${run.blocks} main-chain blocks connected in a ${s1(run.windowMs)} s window (after ${s1(DEVNET_WARMUP_MS)} s of submission), ` +
    `${run.blockToBlock ? `over the ${s1(run.spanMs)} s from the first to the last` : 'over the whole window (fewer than two blocks in it)'} ` +
    `(a block every ${s1(run.spanMs / Math.max(1, run.blocks))} s, largest ${k(run.biggestBlock)} txs); all three nodes then at one head and state digest (height ${run.convergedHeight}); admitted by ${run.submitTo} ${k((run.admitted * 1000) / run.windowMs)} tx/s in the window ` +
    `(${rejectText(run)}; mempool peak ${k(run.mempoolPeak)}; ${run.drainedMs === undefined ? 'mempools not drained after the window' : `mempools drained ${s1(run.drainedMs)} s after the window`})` +
    `; slowest status answer ${run.stalls.map((x) => `${x.name} ${s1(x.maxStatusMs)} s`).join(', ')} (event-loop stalls)` +
    `${run.stalls.some((x) => x.retries > 0) ? `; RPC calls retried after a dropped keep-alive connection ${run.stalls.map((x) => `${x.name} ${x.retries}`).join(', ')}` : ''}` +
    `${run.ranOut ? '; THE PRE-SIGNED TRANSACTIONS RAN OUT' : ''}`
  );
}

export const devnetSuite: Suite = {
  name: 'devnet',
  description: 'three `cairn node` processes (one mining, 1 thread) on 127.0.0.1: confirmed tx/s submitted over RPC, convergence, RSS',
  async run(ctx) {
    const limit = await machineLimit(ctx);
    const windowMs = ctx.quick ? 20_000 : DEVNET_WINDOW_MS;
    const senders = benchKeys(100_000, DEVNET_SENDERS);
    const setup = performance.now();
    const rounds = ctx.quick ? 15 : DEVNET_ROUNDS;
    // New recipients from a fixed pool: the convergence check's auditState hashes every account
    // with one call whose arguments are spread (ledger/audit.ts stateDigest), which overflows the
    // stack beyond ~60,000 accounts.
    const pool = Array.from({ length: DEVNET_SENDERS }, (_, i) => sha256(new TextEncoder().encode(`cairn bench recipient ${i}`)).slice(0, 20));
    const hexes = [...transfers(senders, DEVNET_CHAIN_ID, rounds, { newAddresses: pool })].map(({ key, fields }) => toHex(signedBytes(key, fields)));
    ctx.log(`devnet: ${hexes.length} transfers from ${senders.length} senders ${signerNote()} in ${s1(performance.now() - setup)} s`);
    // Submitted to the far end of the line, every transaction crosses the network to be mined;
    // submitted to the miner, it is mined where it is admitted. Each run is a fresh devnet; the
    // two sides alternate, so that both see the machine's load as it comes and goes.
    const fars: DevnetRun[] = [];
    const nears: DevnetRun[] = [];
    for (let r = 1; r <= ctx.runs; r++) {
      ctx.log(`devnet: run ${r} of ${ctx.runs}, submissions to node-2 (not mining)`);
      fars.push(await devnetRun(ctx, hexes, senders, DEVNET_NODES - 1, windowMs));
      ctx.log(`devnet: run ${r} of ${ctx.runs}, submissions to node-0 (the miner)`);
      nears.push(await devnetRun(ctx, hexes, senders, 0, windowMs));
    }
    const rate = (run: DevnetRun) => (run.confirmed * 1000) / run.spanMs;
    // The notes describe the median run of each side.
    const medianRun = (runs: readonly DevnetRun[]) => [...runs].sort((a, b) => rate(a) - rate(b))[(runs.length - 1) >> 1]!;
    const far = medianRun(fars);
    const near = medianRun(nears);
    const shape = `${DEVNET_NODES} \`cairn node\` processes bootstrapped in a line, node-0 mining (1 thread; ${DEVNET_BLOCK_TIME} s block time, ASERT half-life ${DEVNET_HALF_LIFE} s), ${ctx.runs} run(s) of ${s1(windowMs)} s a side, alternating; the note is the median run's`;
    const perNodeLimit = limit.limit / DEVNET_NODES;
    const metrics: Metric[] = [
      metric({
        key: 'devnetConfirmedTxPerSec',
        label: 'devnet of 3 processes, confirmed, RPC to a non-miner',
        unit: 'tx/s',
        runs: fars.map(rate),
        target: TARGETS.devnetConfirmedTxPerSec,
        // Each node checks each transaction's signature once (at admission; blocks then hit its cache).
        limit: perNodeLimit,
        note: `${shape}; ${devnetNote(far)}; machine limit = 1-core verify rate × cores ÷ 3 (every node checks every signature once)`,
      }),
      metric({
        key: 'devnetConfirmedTxPerSecToMiner',
        label: 'devnet of 3 processes, confirmed, RPC to the miner',
        unit: 'tx/s',
        runs: nears.map(rate),
        limit: perNodeLimit,
        note: `the same with submissions to node-0, the miner: ${devnetNote(near)}`,
      }),
    ];
    if (fars.every((run) => run.rssMb.every((r) => r.mb > 0))) {
      const all = [...far.rssMb, ...near.rssMb];
      // Each run's figure: the most any node reached, at any sample, on either side.
      const pairs = fars.map((f, i) => [...f.rssMb, ...nears[i]!.rssMb]);
      metrics.push(
        metric({
          key: 'rssMb',
          label: 'node RSS under the devnet load, max',
          unit: 'MB',
          runs: pairs.map((pair) => Math.max(...pair.map((r) => r.mb))),
          target: TARGETS.rssMb,
          note:
            `VmRSS of each node process sampled every 250 ms from its start through the warm-up, the window and the mempools' drain, until the convergence check, both sides of a run (a run's figure: the highest sample of any node); in the median runs, max per node ${far.rssMb.map((r) => `${r.name} ${r.mb.toFixed(0)}`).join(', ')} MB ` +
            `(submitting to node-2), ${near.rssMb.map((r) => `${r.name} ${r.mb.toFixed(0)}`).join(', ')} MB (to the miner); ` +
            `at the largest status-reported rss, heap used / heap total / external / array buffers: ${all
              .filter((r) => r.peak)
              .map((r) => `${r.name} ${[r.peak!.heapUsed, r.peak!.heapTotal, r.peak!.external, r.peak!.arrayBuffers].map((x) => (x / 2 ** 20).toFixed(0)).join('/')}`)
              .join(', ')} MB`,
        }),
        metric({
          key: 'rssWithAuditMb',
          label: 'node RSS, the same with the convergence check',
          unit: 'MB',
          runs: pairs.map((pair) => Math.max(...pair.map((r) => r.withAuditMb))),
          note:
            `the same sampling continued through the convergence check, whose auditState on each node replays every block from genesis and reads every account (a diagnostic, run once here): ` +
            `max per node ${far.rssMb.map((r) => `${r.name} ${r.withAuditMb.toFixed(0)}`).join(', ')} MB (submitting to node-2), ${near.rssMb.map((r) => `${r.name} ${r.withAuditMb.toFixed(0)}`).join(', ')} MB (to the miner)`,
        }),
      );
    }
    return metrics;
  },
};
