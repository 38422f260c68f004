import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { writeChart, type Point } from './chart.ts';
import { mempoolBySize, connectBySize } from './scaling-work.ts';
import { propagationByNodes } from './scaling-sim.ts';
import { syncByAccounts, syncByChainLength, type CurvePoint } from './scaling-sync.ts';
import { metric, type Metric, type Suite, type SuiteContext } from './report.ts';

/**
 * How cost grows with the work (issue #19): sync against chain length and against accounts, mempool
 * admission against pool size (and when full), block connect against block size, propagation
 * against node count. Each curve is a set of metrics (medians of runs, with min–max) and a chart.
 * Full scale writes the charts to docs/bench/ for BENCHMARKS.md; `--quick` to the OS temp folder
 * (or wherever CAIRN_BENCH_CHARTS says).
 */
const FULL = {
  lengths: [10_000, 100_000, 1_000_000],
  lengthWindow: 1_000,
  accounts: [1_000, 100_000, 1_000_000],
  pool: [1_000, 10_000, 100_000],
  blockTxs: [100, 300, 1_000, 2_000, 5_000],
  nodes: [5, 10, 20, 40],
  simMinutes: 10,
};
const QUICK = { ...FULL, lengths: [5_000, 20_000, 50_000], lengthWindow: 500, accounts: [1_000, 10_000, 100_000], pool: [1_000, 10_000, 30_000], nodes: [5, 10, 20], simMinutes: 4 };

/**
 * The heap the accounts curve needs per account of its genesis, beyond HEAP_BASE_BYTES: the
 * allocations stay in the chain's parameters (~175 MB for a million), and the genesis is stored and
 * checked in one pass over them (faa6586). A million ran under a node's 768 MB heap (BENCHMARKS.md).
 */
const HEAP_BYTES_PER_ACCOUNT = 450;
const HEAP_BASE_BYTES = 300 * 2 ** 20;

const size = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1_000 ? `${n / 1_000}k` : String(n));
const keyPart = (n: number) => size(n).replace('M', 'm');
const points = (curve: readonly CurvePoint[], scale: (v: number, x: number) => number = (v) => v): Point[] =>
  curve.map((p) => {
    const values = p.runs.map((v) => scale(v, p.x));
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return { x: p.x, y: sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2, min: sorted[0]!, max: sorted.at(-1)! };
  });

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head}+changes` : head;
  } catch {
    return 'unknown';
  }
}

function chartDir(quick: boolean): string {
  const dir = process.env.CAIRN_BENCH_CHARTS ?? (quick ? join(tmpdir(), 'cairn-bench-charts') : fileURLToPath(new URL('../docs/bench/', import.meta.url)));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The sizes whose heap fits under this process's ceiling; the others are left out, and said so. */
function thatFit(ctx: SuiteContext, what: string, sizes: readonly number[], bytesEach: number): number[] {
  const limit = getHeapStatistics().heap_size_limit;
  const fit = sizes.filter((n) => HEAP_BASE_BYTES + n * bytesEach < limit);
  if (fit.length < sizes.length) {
    ctx.log(
      `scaling: LEFT OUT ${what} ${sizes.filter((n) => !fit.includes(n)).map(size).join(', ')}: they need about ${bytesEach.toLocaleString('en')} bytes of heap each ` +
        `and this heap's ceiling is ${Math.round(limit / 2 ** 20)} MB (NODE_OPTIONS=--max-old-space-size=6144 raises it)`,
    );
  }
  return fit;
}

export const scalingSuite: Suite = {
  name: 'scaling',
  onlyWhenNamed: true,
  description: 'how cost grows: sync vs chain length and accounts, mempool vs size, connect vs block size, propagation vs nodes; charts',
  async run(ctx) {
    const scale = ctx.quick ? QUICK : FULL;
    const runs = Math.max(3, ctx.runs);
    const loadStart = loadavg()[0] ?? 0;
    const started = performance.now();
    const metrics: Metric[] = [];
    const add = (curve: readonly CurvePoint[], key: (x: number) => string, label: (x: number) => string, unit: string) => {
      for (const p of curve) metrics.push(metric({ key: key(p.x), label: label(p.x), unit, runs: p.runs, note: p.note }));
    };
    const lap = (what: string) => ctx.log(`scaling: ${what} done at ${((performance.now() - started) / 1000).toFixed(0)} s`);

    const propagation = await propagationByNodes(ctx, scale.nodes, runs, scale.simMinutes);
    add(propagation, (x) => `simPropagationP50MsAt${x}Nodes`, (x) => `block propagation p50, ${x} simulated nodes`, 'ms');
    lap('propagation');
    const pool = await mempoolBySize(ctx, scale.pool, runs);
    add(pool.admit, (x) => `mempoolAdmitPerSecAt${keyPart(x)}Pending`, (x) => `mempool admission, ${size(x)} pending`, 'tx/s');
    add(pool.evict, (x) => `mempoolAdmitEvictingPerSecAt${keyPart(x)}Pending`, (x) => `mempool admission when full (each evicts one), ${size(x)} pending`, 'tx/s');
    lap('mempool');
    const connect = await connectBySize(ctx, scale.blockTxs, runs);
    add(connect, (x) => `blockConnectMsAt${keyPart(x)}Txs`, (x) => `block connect (processBlock), ${x.toLocaleString('en')} transfers`, 'ms');
    lap('block connect');
    const accounts = await syncByAccounts(ctx, thatFit(ctx, 'account counts', scale.accounts, HEAP_BYTES_PER_ACCOUNT), runs);
    add(accounts, (x) => `syncTxPerSecAt${keyPart(x)}Accounts`, (x) => `sync import, ${size(x)} accounts`, 'tx/s');
    lap('sync by accounts');
    // No heap guard for length: the block index keeps a window of recent blocks (consensus/chain-index.ts),
    // and a node's live heap after a million blocks was 11.6 MB, as after a hundred thousand (BENCHMARKS.md).
    const length = await syncByChainLength(ctx, scale.lengths, scale.lengthWindow, runs);
    add(length, (x) => `syncBlocksPerSecAt${keyPart(x)}Blocks`, (x) => `sync import of empty blocks at height ${size(x)}`, 'block/s');
    lap('sync by chain length');

    const dir = chartDir(ctx.quick);
    const footer = [
      `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${commit()}, npm run bench -- scaling${ctx.quick ? ' --quick' : ''} (${runs} runs a point; dot = median, bar = min–max)`,
      `load average ${loadStart.toFixed(2)} at the start, ${(loadavg()[0] ?? 0).toFixed(2)} at the end; Node ${process.version}`,
    ];
    const charts: [string, Parameters<typeof writeChart>[1]][] = [
      ['scaling-sync-length.png', { title: 'Sync import rate against chain length', xLabel: 'chain height (coinbase-only blocks)', yLabel: 'blocks/s', logX: true, footer, series: [{ name: 'import rate', points: points(length) }] }],
      ['scaling-sync-accounts.png', { title: 'Sync import rate against accounts', xLabel: 'accounts in the state', yLabel: 'transfers/s', logX: true, footer, series: [{ name: 'import rate', points: points(accounts) }] }],
      ['scaling-mempool.png', {
        title: 'Mempool admission against pending transactions', xLabel: 'transactions pending', yLabel: 'admissions/s', logX: true, logY: true, footer,
        series: [{ name: 'room to spare', points: points(pool.admit) }, { name: 'full: evicts one', points: points(pool.evict) }],
      }],
      ['scaling-connect.png', { title: 'Block connect time per transfer against block size', xLabel: 'transfers in the block', yLabel: 'µs per transfer', logX: true, footer, series: [{ name: 'processBlock', points: points(connect, (ms, x) => (ms * 1000) / x) }] }],
      ['scaling-propagation.png', { title: 'Block propagation p50 against nodes (simulated)', xLabel: 'nodes (50 ms links)', yLabel: 'ms, miner to last node', footer, series: [{ name: 'p50', points: points(propagation) }] }],
    ];
    for (const [name, spec] of charts) {
      if (spec.series.every((s) => s.points.length === 0)) continue;
      await writeChart(join(dir, name), spec);
    }
    ctx.log(`scaling: charts written to ${dir}`);
    return metrics;
  },
};
