import './node-runtime.ts';
import './threadpool.ts';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { consensusSuite } from './consensus.ts';
import { ledgerSuite } from './ledger.ts';
import { networkSuite } from './network.ts';
import { PERF_SUITES } from './perf.ts';
import {
  TempDirs,
  checkMetricKeys,
  formatTable,
  jsonReport,
  machineInfo,
  type Suite,
  type SuiteContext,
  type SuiteResult,
} from './report.ts';

/** Every suite, in the order they run. A new suite is one module exporting a `Suite`, added here. */
const SUITES: readonly Suite[] = [...PERF_SUITES, ledgerSuite, consensusSuite, networkSuite];

const DEFAULT_RUNS = 5;

const USAGE = `Usage: npm run bench -- [suite ...] [--json] [--runs N] [--quick]

  suite     run only these suites (default: all): ${SUITES.map((s) => s.name).join(', ')}
  --json    print one JSON object { machine, quick, metrics, targets, met, limits, details } on
            stdout instead of the table
  --runs N  timed runs per metric, each figure being their median (default ${DEFAULT_RUNS})
  --quick   cut the perf suites' workloads down (a 1,000-block sync instead of 10,000, shorter
            devnet window, fewer transactions) to try the bench in a few minutes; the issue's
            targets are about the full scale
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
        help: { type: 'boolean', short: 'h', default: false },
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
    for (const s of SUITES) process.stdout.write(`${s.name.padEnd(12)} ${s.description}\n`);
    return 0;
  }
  const runs = values.runs === undefined ? DEFAULT_RUNS : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) fail(`--runs must be a positive integer, got "${values.runs}"`);
  const unknown = positionals.filter((name) => !SUITES.some((s) => s.name === name));
  if (unknown.length > 0) fail(`unknown suite ${unknown.map((n) => `"${n}"`).join(', ')}`);
  const selected = positionals.length === 0 ? SUITES : SUITES.filter((s) => positionals.includes(s.name));

  // In JSON mode stdout carries exactly one object: anything a suite (or a library under it)
  // prints with console.log is diverted to stderr.
  if (values.json) console.log = console.error;

  const machine = machineInfo();
  const tempDirs = new TempDirs();
  process.on('exit', () => tempDirs.removeAll());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => process.exit(130)); // exit runs the 'exit' handler above; a signal death would not
  }
  const ctx: SuiteContext = {
    runs,
    quick: values.quick,
    log: (message) => process.stderr.write(`${message}\n`),
    tempDir: (prefix) => tempDirs.create(prefix),
  };

  const wallStart = performance.now();
  const cpuStart = process.cpuUsage();
  const results: SuiteResult[] = [];
  const failed: string[] = [];
  for (const suite of selected) {
    const start = performance.now();
    try {
      const metrics = await suite.run(ctx);
      checkMetricKeys([...results.flatMap((r) => r.metrics), ...metrics]);
      results.push({ suite: suite.name, metrics });
      ctx.log(`${suite.name}: done in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    } catch (err) {
      // The other suites still run and report; the exit status says something failed.
      failed.push(suite.name);
      ctx.log(`${suite.name}: FAILED: ${(err as Error).stack ?? String(err)}`);
    } finally {
      tempDirs.removeAll();
    }
  }

  // On a shared machine the figures are only as good as the CPU the process got. Mostly
  // single-threaded work near 100% of a core ran uncontended; far below, others were busy.
  const cpu = process.cpuUsage(cpuStart);
  const cpuShare = (cpu.user + cpu.system) / 1000 / (performance.now() - wallStart);
  const footer = [
    `The bench process was on CPU ${(100 * cpuShare).toFixed(0)}% of its wall time (LevelDB's own threads count too); ` +
      `load average ${(loadavg()[0] ?? 0).toFixed(2)} at the end.`,
  ];
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const argv = process.argv.slice(2);
  footer.push(`Command: npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}; ${new Date().toISOString()}; ${wallSeconds.toFixed(0)} s in all.`);
  process.stdout.write(values.json ? JSON.stringify(jsonReport(machine, results, values.quick)) + '\n' : formatTable(machine, results, runs, footer, values.quick));
  if (failed.length > 0) ctx.log(`bench: failed suites: ${failed.join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = await main();
