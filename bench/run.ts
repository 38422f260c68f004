import './node-runtime.ts';
import './threadpool.ts';
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { consensusSuite } from './consensus.ts';
import { ledgerSuite } from './ledger.ts';
import { lightSuite } from './light.ts';
import { scalingSuite } from './scaling.ts';
import { stateSuite } from './state.ts';
import { networkSuite } from './network.ts';
import { longChainSuite } from './long-chain.ts';
import { soakSuite } from './soak.ts';
import { PERF_SUITES } from './perf.ts';
import { vsBcoinSuite } from './vs-bcoin.ts';
import { currentMachineLimit, MACHINE_LIMIT_ENV } from './perf-common.ts';
import { flagName } from '../cli/runtime.ts';
import {
  TempDirs,
  checkMetricKeys,
  formatTable,
  jsonReport,
  machineInfo,
  type MachineInfo,
  type Metric,
  type Suite,
  type SuiteContext,
  type SuiteResult,
} from './report.ts';

/** Every suite, in the order they run. A new suite is one module exporting a `Suite`, added here. */
const SUITES: readonly Suite[] = [...PERF_SUITES, ledgerSuite, consensusSuite, networkSuite, stateSuite, lightSuite, longChainSuite, scalingSuite, soakSuite, vsBcoinSuite];
/** Suites that run only when asked for: they need what a plain clone lacks (the bcoin harness beside it). */
const ON_REQUEST = new Set(['vs-bcoin']);

const DEFAULT_RUNS = 5;

const USAGE = `Usage: npm run bench -- [suite ...] [--json] [--runs N] [--quick]

  suite     run only these suites (default: all): ${SUITES.map((s) => s.name).join(', ')}
  --json    print one JSON object { machine, quick, metrics, targets, met, limits, details } on
            stdout instead of the table
  --runs N  timed runs per metric, each figure being their median (default ${DEFAULT_RUNS})
  --quick   cut the perf suites' workloads down (a 1,000-block sync instead of 10,000, shorter
            devnet window, fewer transactions) to try the bench in a few minutes; the issue's
            targets are about the full scale
  --vs-bcoin  also run bcoin 1.0.2 side by side (the vs-bcoin suite: installs the harness from
            ../shared/anchors/bcoin-bench into the OS temp folder once, then alternates bcoin's
            and Cairn's sync and RPC admission and prints the ratios Cairn/bcoin)
  --list    list the suites and exit

Progress goes to stderr. With npm, add --silent (npm run --silent bench -- --json) so that npm's
own banner does not precede the JSON on stdout.
`;

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        runs: { type: 'string' },
        quick: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        'vs-bcoin': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        child: { type: 'string' },
      },
    });
  } catch (err) {
    fail((err as Error).message);
  }
  const { values, positionals } = args;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.list) {
    for (const s of SUITES) process.stdout.write(`${s.name.padEnd(12)} ${s.description}${s.onlyWhenNamed ? ' (only when named)' : ''}\n`);
    return 0;
  }
  const runs = values.runs === undefined ? DEFAULT_RUNS : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) fail(`--runs must be a positive integer, got "${values.runs}"`);
  if (values.child !== undefined) return runChild(values.child, runs, values.quick);
  const unknown = positionals.filter((name) => !SUITES.some((s) => s.name === name));
  if (unknown.length > 0) fail(`unknown suite ${unknown.map((n) => `"${n}"`).join(', ')}`);
  const selected =
    positionals.length === 0
      ? SUITES.filter((s) => (!s.onlyWhenNamed && !ON_REQUEST.has(s.name)) || (s.name === 'vs-bcoin' && values['vs-bcoin']))
      : SUITES.filter((s) => positionals.includes(s.name) || (s.name === 'vs-bcoin' && values['vs-bcoin']));

  // In JSON mode stdout carries exactly one object: anything a suite (or a library under it)
  // prints with console.log is diverted to stderr.
  if (values.json) console.log = console.error;

  const machine = machineInfo();
  const log = (message: string) => process.stderr.write(`${message}\n`);

  const wallStart = performance.now();
  let cpuMs = 0;
  const results: SuiteResult[] = [];
  const failed: string[] = [];
  // A limit left in the environment (an earlier run's, exported by hand) is not this run's: only a
  // suite of this run may set it for the suites after it.
  delete process.env[MACHINE_LIMIT_ENV];
  for (const suite of selected) {
    const start = performance.now();
    try {
      const child = await runInChild(suite, runs, values.quick);
      cpuMs += child.cpuMs;
      if (child.machineLimit) process.env[MACHINE_LIMIT_ENV] ??= child.machineLimit;
      checkMetricKeys([...results.flatMap((r) => r.metrics), ...child.metrics]);
      results.push({ suite: suite.name, metrics: child.metrics });
      log(`${suite.name}: done in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    } catch (err) {
      // The other suites still run and report; the exit status says something failed.
      failed.push(suite.name);
      log(`${suite.name}: FAILED: ${(err as Error).message}`);
    }
  }

  // On a shared machine the figures are only as good as the CPU the processes got. Mostly
  // single-threaded work near 100% of a core ran uncontended; far below, others were busy.
  const cpuShare = cpuMs / (performance.now() - wallStart);
  const loadEnd = loadavg()[0] ?? 0;
  const ended: MachineInfo = { ...machine, loadAverage1mEnd: loadEnd };
  const footer = [
    `Each suite ran in a process of its own; they were on CPU ${(100 * cpuShare).toFixed(0)}% of the wall time (LevelDB's own threads count too, ` +
      `the devnet's node processes do not); load average ${loadEnd.toFixed(2)} at the end.`,
  ];
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const argv = process.argv.slice(2);
  footer.push(`Command: npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}; ${new Date().toISOString()}; ${wallSeconds.toFixed(0)} s in all.`);
  process.stdout.write(values.json ? JSON.stringify(withVsBcoin(jsonReport(ended, results, values.quick), results)) + '\n' : formatTable(machine, results, runs, footer, values.quick));
  if (failed.length > 0) log(`bench: failed suites: ${failed.join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

/** The Cairn/bcoin ratios under one key too, each with its spread, when the vs-bcoin suite ran. */
function withVsBcoin<T extends object>(report: T, results: readonly SuiteResult[]): T & { vsBcoin?: Record<string, { ratio: number; min: number; max: number }> } {
  const mine = results.find((r) => r.suite === 'vs-bcoin');
  if (!mine) return report;
  const vsBcoin: Record<string, { ratio: number; min: number; max: number }> = {};
  for (const m of mine.metrics) {
    if (m.unit !== '×') continue;
    const name = m.key.replace(/^vsBcoin/, '');
    vsBcoin[name.charAt(0).toLowerCase() + name.slice(1)] = { ratio: m.value, min: Math.min(...m.runs), max: Math.max(...m.runs) };
  }
  return { ...report, vsBcoin };
}

/**
 * Every suite runs in a process of its own, so that no figure depends on the suites before it:
 * run one after another in one process, the propagation suite's node threads took up to half as
 * much CPU again per block once the sync and devnet suites had left their garbage behind.
 */
function runInChild(suite: Suite, runs: number, quick: boolean): Promise<{ metrics: Metric[]; cpuMs: number; machineLimit?: string }> {
  const own = suite.runtime?.v8Flags ?? [];
  const v8Flags = [...process.execArgv.filter((flag) => !own.some((f) => flagName(f) === flagName(flag))), ...own];
  const args = [...v8Flags, fileURLToPath(import.meta.url), '--child', suite.name, '--runs', String(runs), ...(quick ? ['--quick'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...suite.runtime?.env, ...process.env } });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code !== 0) return reject(new Error(`its process exited with ${signal ?? code} (its output above says why)`));
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`its process printed no result: ${out.slice(0, 200)}`));
      }
    });
  });
}

/** In the child: run one suite and print its metrics, CPU time and the machine limit as one JSON object. */
async function runChild(name: string, runs: number, quick: boolean): Promise<number> {
  const suite = SUITES.find((s) => s.name === name);
  if (!suite) fail(`unknown suite "${name}"`);
  console.log = console.error; // stdout carries exactly the result
  const tempDirs = new TempDirs();
  process.on('exit', () => tempDirs.removeAll());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => process.exit(130)); // exit runs the 'exit' handler above; a signal death would not
  }
  const ctx: SuiteContext = { runs, quick, log: (message) => process.stderr.write(`${message}\n`), tempDir: (prefix) => tempDirs.create(prefix) };
  try {
    const metrics = await suite.run(ctx);
    const cpu = process.cpuUsage();
    const limit = await currentMachineLimit();
    process.stdout.write(JSON.stringify({ metrics, cpuMs: (cpu.user + cpu.system) / 1000, machineLimit: limit && JSON.stringify(limit) }) + '\n');
    return 0;
  } catch (err) {
    ctx.log(`${name}: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    tempDirs.removeAll();
  }
}

process.exitCode = await main();
