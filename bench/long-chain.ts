/**
 * The long-chain suite of issue #18: nodes on chains of millions of blocks, made by `cairn
 * generate` and cached under the OS temp folder (keyed by the parameters and the code that
 * decides their bytes), so a second run reuses them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { parseGenesis } from '../ledger/genesis.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { generateChain, generatorGenesis, generatorKey, generatorSenders } from '../consensus/generate.ts';
import { RpcClient } from '../cli/rpc-client.ts';
import { createNode } from '../node/launch.ts';
import { historyCheckStatus } from '../node/history-check.ts';
import type { CairnNode } from '../node/node.ts';
import { CAIRN_BIN, exited, stopProcess, track } from '../test/helpers/cluster.ts';
import { atLeast, below, metric, type Metric, type Suite, type SuiteContext } from './report.ts';

const CACHE = join(tmpdir(), 'cairn-bench-chains');
const OPEN_TIMEOUT_MS = 120_000;
const HEADER_SYNC_TIMEOUT_MS = 600_000;

/**
 * What the code in this checkout writes for a chain: the whole store of a small generated chain
 * (fixed clock, transfers included), hashed. A cached chain made by code that writes other
 * bytes (another header, another layout) is made again; one made by code that writes the same
 * is reused, whatever else changed.
 */
async function formatKey(): Promise<string> {
  const now = 1_800_000_000;
  const params = generatorGenesis({ blocks: 30, txsPerBlock: 2, accounts: 3, now });
  const disk = new MemoryDisk();
  const db = await ChainDB.open(disk.open(), params);
  await generateChain(db, { blocks: 30, txsPerBlock: 2, senders: generatorSenders(2), miner: generatorKey(0).address, now });
  await db.close();
  const h = createHash('sha256');
  for (const [key, { value }] of [...disk.entries].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(key).update(value);
  return h.digest('hex').slice(0, 12);
}

/**
 * A generated chain of `blocks` empty blocks (and `accounts` funded accounts in its genesis), from
 * the cache or made now (and the rate it was made at, then).
 */
async function cachedChain(ctx: SuiteContext, blocks: number, accounts = 0): Promise<{ datadir: string; generatedPerSec?: number }> {
  const key = await formatKey();
  const datadir = join(CACHE, `${blocks}-blocks-${accounts > 0 ? `${accounts}-accounts-` : ''}${key}`);
  const done = `${datadir}.complete`;
  if (existsSync(done)) {
    ctx.log(`long-chain: reusing the ${blocks}-block chain in ${datadir}`);
    return { datadir };
  }
  rmSync(datadir, { recursive: true, force: true }); // what an interrupted run left
  ctx.log(`long-chain: generating ${blocks} blocks into ${datadir} with \`cairn generate\` (cached for later runs)`);
  const made = await generateWithCli(ctx, datadir, blocks, accounts);
  writeFileSync(done, JSON.stringify({ blocks, seconds: made.seconds }));
  return { datadir, generatedPerSec: blocks / made.seconds };
}

/**
 * `cairn generate` as a user runs it (the launcher, its memory settings), not in this process:
 * the rate it reports is the one users get. Its progress lines go to the bench's log.
 */
async function generateWithCli(ctx: SuiteContext, datadir: string, blocks: number, accounts: number): Promise<{ seconds: number }> {
  const args = [CAIRN_BIN, 'generate', '--blocks', String(blocks), '--accounts', String(accounts), '--datadir', datadir, '--json'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: userEnv() });
  track(child);
  let stdout = '';
  let lastProgress = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  let told = 0;
  createInterface({ input: child.stderr! }).on('line', (line) => {
    lastProgress = line;
    if (performance.now() - told < 30_000) return;
    told = performance.now();
    ctx.log(`long-chain: ${line}`);
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`cairn generate exited ${code}: ${lastProgress}`);
  return { seconds: (JSON.parse(stdout) as { seconds: number }).seconds };
}

/** The environment a user's `cairn` runs with: the bench's own thread-pool size left out. */
function userEnv(): NodeJS.ProcessEnv {
  const { UV_THREADPOOL_SIZE: _benchOnly, ...env } = process.env;
  return env;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

interface OpenRun {
  readonly ms: number;
  readonly rssMb: number;
  readonly child: ChildProcess;
  readonly client: RpcClient;
}

/**
 * Starts `cairn node` on the chain as a user would (the launcher, the build in dist/, its own
 * memory settings) and times it from spawn to the first `status` answered over RPC; the RSS is
 * read at that moment. The node keeps running for the caller to use or stop.
 */
async function openNode(ctx: SuiteContext, datadir: string, logName: string, onLog?: (entry: Record<string, unknown>) => void): Promise<OpenRun> {
  rmSync(join(datadir, 'rpc.json'), { force: true });
  const args = [CAIRN_BIN, 'node', '--datadir', datadir, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--no-mdns', '--log-level', 'info'];
  const started = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: userEnv() });
  track(child);
  const log = createWriteStream(join(ctx.tempDir('cairn-bench-long-').path, `${logName}.log`));
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  if (onLog) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        onLog(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON line
      }
    });
  }
  for (;;) {
    if (exited(child)) throw new Error(`the node on ${datadir} exited (${child.exitCode ?? child.signalCode})`);
    try {
      const client = await RpcClient.fromDatadir(datadir);
      await client.call('status', {});
      const ms = performance.now() - started;
      return { ms, rssMb: rssMb(child.pid!), child, client };
    } catch {
      if (performance.now() - started > OPEN_TIMEOUT_MS) throw new Error(`the node on ${datadir} did not answer status within ${OPEN_TIMEOUT_MS} ms`);
      await sleep(10);
    }
  }
}

/** Opens the chain `ctx.runs` times: how long until `status` answers, and the RSS then. */
async function openRuns(ctx: SuiteContext, blocks: number, datadir: string): Promise<{ ms: number[]; rss: number[] }> {
  const ms: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    const run = await openNode(ctx, datadir, `open-${blocks}-${i}`);
    const status = await run.client.call('status', {});
    if (status.height < blocks) throw new Error(`the node opened at height ${status.height}, below the ${blocks} generated`);
    await stopProcess(run.child);
    ms.push(run.ms);
    rss.push(run.rssMb);
    ctx.log(`long-chain: ${blocks} blocks: status after ${run.ms.toFixed(0)} ms at ${run.rssMb.toFixed(0)} MB RSS`);
  }
  return { ms, rss };
}

/**
 * A fresh node (in this process, real libp2p and LevelDB) joins a `cairn node` serving the
 * chain: headers per second from its start until every header is checked (the sync's
 * `download` event), bodies left aside.
 */
async function headerSyncRuns(ctx: SuiteContext, blocks: number, datadir: string, runs: number): Promise<number[]> {
  const params = parseGenesis(readFileSync(join(datadir, 'genesis.json'), 'utf8'));
  const server = await openNode(ctx, datadir, `serve-${blocks}`);
  const rates: number[] = [];
  try {
    const listen = (await server.client.call('status', {})).listen.filter((a) => a.includes('/127.0.0.1/'));
    for (let i = 0; i < runs; i++) {
      const node = createNode({ datadir: ctx.tempDir('cairn-bench-headers-').path, params, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: listen, mdns: false });
      const started = performance.now();
      let checked = 0;
      await node.start();
      // Subscribed once the node has its sync; its first headers are a round trip away still.
      const headersDone = new Promise<number>((resolve) => {
        node.sync.on('headers', (height) => (checked = height));
        node.sync.once('download', (count) => resolve(count));
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`header sync reached ${checked} of ${blocks} in ${HEADER_SYNC_TIMEOUT_MS} ms`)), HEADER_SYNC_TIMEOUT_MS)));
      try {
        const count = await Promise.race([headersDone, timeout]);
        const seconds = (performance.now() - started) / 1000;
        rates.push(count / seconds);
        ctx.log(`long-chain: ${count} headers in ${seconds.toFixed(1)} s: ${(count / seconds).toFixed(0)}/s`);
      } finally {
        clearTimeout(timer);
        await node.stop();
      }
    }
  } finally {
    await stopProcess(server.child);
  }
  return rates;
}

/** Funded accounts in the genesis of the chain a snapshot-syncing node joins (the issue's figure). */
const SNAPSHOT_ACCOUNTS = 100_000;
const SNAPSHOT_SYNC_TIMEOUT_MS = 600_000;
/** 990,000 blocks from one server took 486 s: its block budget per peer is the bound. */
const HISTORY_CHECK_TIMEOUT_MS = 1_800_000;

/**
 * A fresh node (in this process, real libp2p and LevelDB, `snapshotSync` on) joins a `cairn node`
 * serving the chain with SNAPSHOT_ACCOUNTS accounts, once that node has made its snapshot at the
 * pivot (it makes it when it opens, from its tip and undo records: not timed). Timed from the
 * joiner's start until its tip is the server's: every header checked, the state at the pivot
 * (the highest multiple of 10,000 at least 10,000 below the tip) fetched in chunks and checked
 * against the pivot's state root, installed, and the blocks after the pivot executed. The phases
 * are in the log.
 */
async function snapshotSyncRuns(ctx: SuiteContext, blocks: number, datadir: string, runs: number): Promise<{ ms: number[]; phases: string[]; historyCheckMs?: number }> {
  const params = parseGenesis(readFileSync(join(datadir, 'genesis.json'), 'utf8'));
  const pivot = Math.floor((blocks - 10_000) / 10_000) * 10_000;
  let madeAt: () => void = () => {};
  const made = new Promise<void>((resolve) => (madeAt = resolve));
  const server = await openNode(ctx, datadir, `snapshot-serve-${blocks}`, (e) => e.msg === 'snapshots kept' && (e.heights as number[]).includes(pivot) && madeAt());
  const ms: number[] = [];
  const phases: string[] = [];
  let historyCheckMs: number | undefined;
  try {
    const waited = performance.now();
    await made;
    ctx.log(`long-chain: the server made its snapshot at ${pivot} ${((performance.now() - waited) / 1000).toFixed(1)} s after it answered status`);
    const listen = (await server.client.call('status', {})).listen.filter((a) => a.includes('/127.0.0.1/'));
    for (let i = 0; i < runs; i++) {
      const node = createNode({ datadir: ctx.tempDir('cairn-bench-snapshot-').path, params, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: listen, mdns: false, snapshotSync: true });
      const started = performance.now();
      const marks: string[] = [];
      node.on('log', (_level, message) => {
        if (message === 'snapshot sync' || message === 'snapshot installed') marks.push(`${message} at ${((performance.now() - started) / 1000).toFixed(1)} s`);
      });
      let timer: NodeJS.Timeout | undefined;
      try {
        await node.start();
        const caughtUp = new Promise<void>((resolve) => {
          const check = () => node.chain.tip.height >= blocks && resolve();
          node.chain.on('tip', check);
          check();
        });
        const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`snapshot sync reached ${node.chain.tip.height} of ${blocks} in ${SNAPSHOT_SYNC_TIMEOUT_MS} ms`)), SNAPSHOT_SYNC_TIMEOUT_MS)));
        await Promise.race([caughtUp, timeout]);
        const took = performance.now() - started;
        if (node.db.history.stateBase !== pivot) throw new Error(`the node's state began at ${node.db.history.stateBase}, not the pivot ${pivot}`);
        ms.push(took);
        phases.push(marks.join(', '));
        ctx.log(`long-chain: snapshot sync to ${blocks} in ${(took / 1000).toFixed(1)} s (${marks.join(', ')})`);
        if (i === 0) historyCheckMs = await historyCheckRun(ctx, node, pivot);
      } finally {
        clearTimeout(timer);
        await node.stop();
      }
    }
  } finally {
    await stopProcess(server.child);
  }
  return { ms, phases, historyCheckMs };
}

/**
 * Once caught up, the joiner executes the history below its pivot in the background
 * (node/history-check.ts): how long from then until its verdict, which must be "valid".
 */
async function historyCheckRun(ctx: SuiteContext, node: CairnNode, pivot: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const status = historyCheckStatus(node.db.history, node.historyCheck);
    if (status && status.state !== 'checking') {
      if (status.state !== 'valid') throw new Error(`the history check ended ${status.state} at ${status.height}: ${status.reason}`);
      const ms = performance.now() - started;
      ctx.log(`long-chain: the joiner checked the ${pivot} blocks below its pivot in ${(ms / 1000).toFixed(1)} s`);
      return ms;
    }
    if (performance.now() - started > HISTORY_CHECK_TIMEOUT_MS) throw new Error(`the history check reached ${status?.height} of ${pivot} in ${HISTORY_CHECK_TIMEOUT_MS} ms`);
    await sleep(100);
  }
}

export const longChainSuite: Suite = {
  name: 'long-chain',
  description: 'nodes on generated chains of 1M and 10M blocks: open time, RSS, header sync, snapshot sync (issue #18)',
  onlyWhenNamed: true,
  async run(ctx) {
    const sizes = ctx.quick ? [100_000, 1_000_000] : [1_000_000, 10_000_000];
    const metrics: Metric[] = [];
    const syncSize = sizes[sizes.length - 2]!;
    // CAIRN_LONG_CHAIN_PARTS=snapshot: only the snapshot sync (its chain is one of its own);
    // =open: only the open runs.
    const only = process.env.CAIRN_LONG_CHAIN_PARTS;
    for (const blocks of only === 'snapshot' ? [] : sizes) {
      const { datadir, generatedPerSec } = await cachedChain(ctx, blocks);
      const tag = blocks >= 1_000_000 ? `${blocks / 1_000_000}M` : `${blocks / 1000}k`;
      if (generatedPerSec !== undefined) metrics.push(metric({ key: `generatePerSec${tag}`, label: `cairn generate, ${tag} empty blocks`, unit: 'block/s', runs: [generatedPerSec], target: atLeast(20_000), note: 'once, when the chain was not cached yet' }));
      const open = await openRuns(ctx, blocks, datadir);
      const big = blocks === sizes.at(-1);
      metrics.push(metric({ key: `openMs${tag}`, label: `cairn node on ${tag} blocks: start to status over RPC`, unit: 'ms', runs: open.ms, ...(big ? { target: below(3000) } : {}) }));
      metrics.push(metric({ key: `openRssMb${tag}`, label: `cairn node on ${tag} blocks: RSS when status answers`, unit: 'MB', runs: open.rss, ...(big ? { target: below(250) } : {}) }));
    }
    if (only === 'open') return metrics;
    if (only !== 'snapshot') {
      const { datadir } = await cachedChain(ctx, syncSize);
      const rates = await headerSyncRuns(ctx, syncSize, datadir, Math.min(ctx.runs, 3));
      metrics.push(metric({ key: 'headerSyncPerSec', label: `header sync of ${syncSize} headers from one peer over libp2p`, unit: 'header/s', runs: rates, target: atLeast(50_000) }));
    }
    const funded = await cachedChain(ctx, syncSize, SNAPSHOT_ACCOUNTS);
    const snap = await snapshotSyncRuns(ctx, syncSize, funded.datadir, Math.min(ctx.runs, 3));
    metrics.push(
      metric({
        key: 'snapshotSyncMs',
        label: `snapshot sync: a fresh node joins ${syncSize} blocks with ${SNAPSHOT_ACCOUNTS} funded accounts from one peer`,
        unit: 'ms',
        runs: snap.ms,
        target: below(60_000),
        note: snap.phases[0],
      }),
    );
    if (snap.historyCheckMs !== undefined) {
      metrics.push(metric({ key: 'historyCheckMs', label: `the joiner's background check of the history below its pivot (${syncSize - 10_000} blocks), once caught up`, unit: 'ms', runs: [snap.historyCheckMs], note: "the first run; one server's block budget per peer (64 requests of 32 blocks a second) bounds it at 2,048 blocks/s" }));
    }
    return metrics;
  },
};
