import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '../cli/runtime.ts';

/**
 * One measured figure. `value` is always the median of `runs`: the machines we measure on are
 * shared and noisy, so a single run (or a mean dragged by one slow run) would mislead.
 */
export interface Metric {
  /** camelCase and stable: scripts and CI compare figures across commits by this key. */
  readonly key: string;
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  /** Each timed run's value, in the order run. */
  readonly runs: readonly number[];
  readonly note?: string;
  /** What the issue asks of this figure, if anything: the table says whether the median meets it. */
  readonly target?: Target;
  /**
   * The most this machine could do on this figure, measured in the same run (for transaction
   * rates: libsecp256k1's single-core verify rate × cores ÷ signature checks per transaction).
   */
  readonly limit?: number;
}

/** A figure's goal: at least `atLeast` (rates), or below `below` (latencies, memory). */
export type Target = { readonly atLeast: number } | { readonly below: number };

export const atLeast = (value: number): Target => ({ atLeast: value });
export const below = (value: number): Target => ({ below: value });

export function meets(value: number, target: Target): boolean {
  return 'atLeast' in target ? value >= target.atLeast : value < target.below;
}

function formatTarget(target: Target): string {
  return 'atLeast' in target ? `≥ ${formatNumber(target.atLeast)}` : `< ${formatNumber(target.below)}`;
}

export interface SuiteContext {
  /** How many timed runs each metric takes its median over. */
  readonly runs: number;
  /**
   * `--quick`: suites whose full workload takes minutes (the `perf` suites) shrink it, so the
   * whole bench can be tried in a few minutes. Figures from a quick run are not the issue's.
   */
  readonly quick: boolean;
  /** Progress for the person waiting. Goes to stderr, so `--json` leaves stdout to the report. */
  log(message: string): void;
  /**
   * A fresh temporary directory. The runner removes whatever is left of it when the suite ends,
   * and at exit (Ctrl-C included), so an interrupted run does not litter the disk.
   */
  tempDir(prefix?: string): TempDir;
}

export interface TempDir {
  readonly path: string;
  remove(): void;
}

export interface Suite {
  /** What to type after `npm run bench --` to run only this suite. */
  readonly name: string;
  readonly description: string;
  /** Runs only when named (its first run generates gigabytes of chain): not part of a plain `npm run bench`. */
  readonly onlyWhenNamed?: boolean;
  /** The process settings of what it measures, when not a node's (cli/runtime.ts): its process runs with them. */
  readonly runtime?: Runtime;
  run(ctx: SuiteContext): Promise<Metric[]>;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface RateOptions {
  readonly runs: number;
  /** Each run repeats the batch until at least this long has passed. */
  readonly minMs: number;
  /** Untimed repetitions first, so JIT compilation and lazy tables do not land in run 1. */
  readonly warmupMs?: number;
}

/**
 * Runs `batch` (which does some operations and returns how many) repeatedly for at least
 * `minMs`, `runs` times, and returns each run's operations per second. Batches should take a few
 * milliseconds to tens of milliseconds: the clock is read once per batch.
 */
export async function measureRate(batch: () => number | Promise<number>, options: RateOptions): Promise<number[]> {
  const warmupEnd = performance.now() + (options.warmupMs ?? Math.min(options.minMs, 300));
  while (performance.now() < warmupEnd) await batch();
  const rates: number[] = [];
  for (let r = 0; r < options.runs; r++) {
    let ops = 0;
    const start = performance.now();
    let elapsed = 0;
    do {
      ops += await batch();
      elapsed = performance.now() - start;
    } while (elapsed < options.minMs);
    rates.push((ops * 1000) / elapsed);
  }
  return rates;
}

/** One run's work and the time it took, for workloads whose setup must stay outside the timing. */
export interface TimedRun {
  readonly ops: number;
  readonly ms: number;
}

/** Calls `run` for each run index and turns each result into operations per second. */
export async function measureRuns(runs: number, run: (index: number) => Promise<TimedRun>): Promise<number[]> {
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    const { ops, ms } = await run(r);
    if (!(ms > 0)) throw new RangeError(`run ${r} took ${ms} ms`);
    rates.push((ops * 1000) / ms);
  }
  return rates;
}

/** A metric from its runs; the value is their median. */
export function metric(fields: { key: string; label: string; unit: string; runs: readonly number[]; note?: string; target?: Target; limit?: number }): Metric {
  const { target, limit, ...rest } = fields;
  return { ...rest, value: median(fields.runs), ...(target === undefined ? {} : { target }), ...(limit === undefined ? {} : { limit }) };
}

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly totalMemoryBytes: number;
  readonly freeMemoryBytes: number;
  /** At the start of the run: a busy machine explains slow figures. */
  readonly loadAverage1m: number;
  /** At the end of the run, once its suites are done (the text report's footer says it too). */
  readonly loadAverage1mEnd?: number;
  readonly nodeVersion: string;
  readonly platform: string;
  readonly arch: string;
}

export function machineInfo(): MachineInfo {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    totalMemoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    loadAverage1m: loadavg()[0] ?? 0,
    nodeVersion: process.version,
    platform: process.platform,
    arch: process.arch,
  };
}

export const METRIC_KEY = /^[a-z][a-zA-Z0-9]*$/;

/** Suites are written separately; the report is only useful if their keys stay unique and well-formed. */
export function checkMetricKeys(metrics: readonly Metric[]): void {
  const seen = new Set<string>();
  for (const m of metrics) {
    if (!METRIC_KEY.test(m.key)) throw new Error(`metric key "${m.key}" is not camelCase`);
    if (seen.has(m.key)) throw new Error(`metric key "${m.key}" is reported twice`);
    seen.add(m.key);
    if (m.runs.length === 0 || !m.runs.every(Number.isFinite)) throw new Error(`metric "${m.key}" has no finite runs`);
    if (m.limit !== undefined && !Number.isFinite(m.limit)) throw new Error(`metric "${m.key}" has a limit that is not a number`);
  }
}

/** Integers with separators from 100 up, three significant digits below: precision the noise supports. */
export function formatNumber(value: number): string {
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toLocaleString('en-US', { maximumSignificantDigits: 3 });
}

function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(1) + ' GiB';
}

export interface SuiteResult {
  readonly suite: string;
  readonly metrics: readonly Metric[];
}

/** `footer` lines follow the table: what the runner observed about the run itself. */
export function formatTable(machine: MachineInfo, results: readonly SuiteResult[], runs: number, footer: readonly string[] = [], quick = false): string {
  const header = [
    `Cairn benchmarks on ${machine.cpuModel}, ${machine.cores} cores, ${gib(machine.totalMemoryBytes)} RAM`,
    `Node ${machine.nodeVersion} ${machine.platform}/${machine.arch}, load average ${machine.loadAverage1m.toFixed(2)} at start`,
    runs === 1 ? 'Each figure is from a single run (--runs 1): no median, so expect noise.' : `Each figure is the median of ${runs} runs (fewer where its note says so); min–max is the spread of those runs.`,
    ...(quick ? ['QUICK SCALE (--quick): the perf workloads are cut down; these are not the figures the issue\'s targets are about.'] : []),
    '',
  ];
  const all = results.flatMap((r) => r.metrics);
  const rows: string[][] = [['suite', 'metric', 'median', 'unit', 'min–max', 'target', 'machine limit', 'status', 'note']];
  for (const { suite, metrics } of results) {
    for (const m of metrics) {
      const range = `${formatNumber(Math.min(...m.runs))}–${formatNumber(Math.max(...m.runs))}`;
      const target = m.target ? formatTarget(m.target) : '';
      const limit = m.limit === undefined ? '' : formatNumber(m.limit);
      const status = m.target ? (meets(m.value, m.target) ? 'met' : 'MISSED') : '';
      rows.push([suite, m.label, formatNumber(m.value), m.unit, range, target, limit, status, m.note ?? '']);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  // Numbers align right so their magnitudes line up; the last column is free text.
  const rightAligned = new Set([2, 4, 5, 6]);
  const lines = rows.map((row) =>
    row
      .map((cell, c) => (c === row.length - 1 ? cell : rightAligned.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const targeted = all.filter((m) => m.target);
  const missed = targeted.filter((m) => !meets(m.value, m.target!));
  const verdict =
    targeted.length === 0
      ? []
      : [`Targets: ${targeted.length - missed.length} of ${targeted.length} met${missed.length > 0 ? `; MISSED: ${missed.map((m) => m.key).join(', ')}` : ''}.`];
  return [...header, ...lines, ...(footer.length + verdict.length > 0 ? ['', ...verdict, ...footer] : [])].join('\n') + '\n';
}

export interface JsonReport {
  readonly machine: MachineInfo;
  /** Whether the perf workloads were cut down (`--quick`). */
  readonly quick: boolean;
  /** key → median, for scripts that want one number per figure. */
  readonly metrics: Record<string, number>;
  /** key → target, for the figures that have one. */
  readonly targets: Record<string, Target>;
  /** key → whether its median meets its target, for the same figures. */
  readonly met: Record<string, boolean>;
  /** key → the machine's limit for that figure, measured in the same run, where there is one. */
  readonly limits: Record<string, number>;
  readonly details: ReadonlyArray<Metric & { readonly suite: string }>;
  /** Every figure's median also at the top level (`verifyPerSec`, `syncTxPerSec`, …), as issue #7 names them. */
  readonly [key: string]: unknown;
}

export function jsonReport(machine: MachineInfo, results: readonly SuiteResult[], quick = false): JsonReport {
  const metrics: Record<string, number> = {};
  const targets: Record<string, Target> = {};
  const met: Record<string, boolean> = {};
  const limits: Record<string, number> = {};
  const details: Array<Metric & { suite: string }> = [];
  for (const { suite, metrics: list } of results) {
    for (const m of list) {
      metrics[m.key] = round(m.value);
      if (m.target) {
        targets[m.key] = m.target;
        met[m.key] = meets(m.value, m.target);
      }
      if (m.limit !== undefined) limits[m.key] = round(m.limit);
      details.push({
        suite,
        key: m.key,
        label: m.label,
        value: round(m.value),
        unit: m.unit,
        runs: m.runs.map(round),
        ...(m.note === undefined ? {} : { note: m.note }),
        ...(m.target === undefined ? {} : { target: m.target }),
        ...(m.limit === undefined ? {} : { limit: round(m.limit) }),
      });
    }
  }
  return { ...metrics, machine, quick, metrics, targets, met, limits, details };
}

/** Two decimals: more would be noise, and fewer would flatten figures in milliseconds. */
function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/**
 * Temporary directories handed to suites, remembered until removed so that the runner can
 * sweep them when a suite ends or the process exits.
 */
export class TempDirs {
  private readonly live = new Set<string>();

  create(prefix = 'cairn-bench-'): TempDir {
    const path = mkdtempSync(join(tmpdir(), prefix));
    this.live.add(path);
    return {
      path,
      remove: () => {
        rmSync(path, { recursive: true, force: true });
        this.live.delete(path);
      },
    };
  }

  removeAll(): void {
    for (const path of this.live) rmSync(path, { recursive: true, force: true });
    this.live.clear();
  }
}
