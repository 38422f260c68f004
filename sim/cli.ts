/**
 * `npm run sim`: one seeded scenario, or a sweep of seeds (USAGE below); a failing seed is printed
 * with the command that replays it. Exit status 1 if any seed fails an invariant, 2 for bad arguments.
 */
import { parseArgs } from 'node:util';
import { simulate, type SimResult } from './run.ts';
import { ALL_ADVERSARIES } from './scenario.ts';
import type { Role } from './sim-node.ts';

const USAGE = `usage: npm run sim -- --seed S [--nodes N] [--minutes M] [--calm] [--adversaries ROLES] [--light-clients N] [--json]
       npm run sim -- --seeds K [--from F] [--nodes N] [--minutes M] [--calm] [--adversaries ROLES] [--light-clients N] [--json]
One seeded scenario, or a sweep of K seeds from F (default 1); exit status 1 if any seed fails.
--adversaries R1,R2 gives the seed's adversaries (at least one) roles drawn from these, among
${ALL_ADVERSARIES.join(', ')}; timewarper, equivocator, withholder,
replayer, eclipser and capturer come only so.
--light-clients N adds N light clients (each bootstrapped off a few full nodes, honest or not; some
join late, some crash or stop and come back), checked at the end against the honest nodes.
--json prints one JSON object: for a seed, its whole result with its trace hash (the same code and
seed give the same hash: compare it before and after a change meant to change nothing); for a
sweep, the failing seeds and the first failure's result with the command that replays it.
`;

function parse() {
  try {
    return parseArgs({
      options: {
        seed: { type: 'string' },
        seeds: { type: 'string' },
        from: { type: 'string' },
        nodes: { type: 'string' },
        minutes: { type: 'string' },
        json: { type: 'boolean' },
        calm: { type: 'boolean' },
        adversaries: { type: 'string' },
        'light-clients': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`sim: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

const values = parse();
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function whole(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    process.stderr.write(`sim: --${name} must be a whole number from ${min} to ${max}\n`);
    process.exit(2);
  }
  return Number(text);
}

// A run whose every promise waits on something that will never come leaves Node with nothing to
// do, and Node would exit quietly with status 0: say so, and fail.
let finished = false;
process.on('exit', (code) => {
  if (finished || code !== 0) return;
  process.stderr.write('sim: the run stopped with work still pending (a deadlock in the code under test)\n');
  process.exitCode = 1;
});

function roles(text: string | undefined): readonly Role[] | undefined {
  if (text === undefined) return undefined;
  const list = text.split(',');
  const unknown = list.filter((r) => !ALL_ADVERSARIES.includes(r as Role));
  if (unknown.length > 0 || list.length === 0) {
    process.stderr.write(`sim: --adversaries takes roles among ${ALL_ADVERSARIES.join(', ')}, separated by commas; not ${JSON.stringify(unknown[0] ?? text)}\n`);
    process.exit(2);
  }
  return list as Role[];
}

const nodes = whole('nodes', values.nodes, 2, 64);
const minutes = whole('minutes', values.minutes, 1, 600);
const adversaries = roles(values.adversaries);
const lightClients = whole('light-clients', values['light-clients'], 1, 32);
const options = { nodes, minutes, calm: values.calm, adversaries, lightClients };
const replay = (seed: string) =>
  `npm run sim -- --seed ${seed}${nodes ? ` --nodes ${nodes}` : ''}${minutes ? ` --minutes ${minutes}` : ''}${values.calm ? ' --calm' : ''}${adversaries ? ` --adversaries ${adversaries.join(',')}` : ''}${lightClients ? ` --light-clients ${lightClients}` : ''}`;

function summary(r: SimResult): string {
  const failed = Object.entries(r.invariants).filter(([, v]) => v === 'fail').map(([k]) => k);
  return `seed ${r.seed}: ${r.ok ? 'ok' : 'FAIL ' + failed.join(', ')}  ${r.nodes} nodes (${Object.entries(r.roles).map(([k, v]) => `${v} ${k}`).join(', ')}), ${r.simulatedSeconds} s simulated in ${r.wallMs} ms, ${r.blocks} blocks, ${r.txs} txs, ${r.reorgs} reorgs (deepest ${r.deepestReorg}), ${r.liveness.judged} arrivals judged (${r.liveness.faulty + r.liveness.lossy} blocks not: ${r.liveness.faulty} in faults, ${r.liveness.lossy} lossy${r.liveness.aheadOfClock > 0 ? `; ${r.liveness.aheadOfClock} arrivals ahead of a clock` : ''}), ${r.liveness.txsJudged} txs judged, ${r.snapshotJoins > 0 ? `${r.snapshotJoins} snapshot joins, ` : ''}${r.treeReads.nodes + r.treeReads.prefetched} tree nodes read (${r.treeReads.prefetched} ahead), faults ${JSON.stringify(r.faults)}, ${Object.keys(r.acts).length > 0 ? `acts ${JSON.stringify(r.acts)}, ` : ''}${r.lightClients ? `light clients ${JSON.stringify(r.lightClients)}, ` : ''}${r.captured ? `captured ${JSON.stringify(r.captured)}, ` : ''}trace ${r.traceHash.slice(0, 16)}`;
}

if (values.seeds !== undefined) {
  const count = whole('seeds', values.seeds, 1, 1_000_000)!;
  const from = whole('from', values.from ?? '1', 0, Number.MAX_SAFE_INTEGER)!;
  const failures: SimResult[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const r = await simulate(String(from + i), options);
    if (!r.ok) failures.push(r);
    if (!values.json) process.stderr.write(`${summary(r)}\n`);
    if (!r.ok && !values.json) for (const [name, list] of Object.entries(r.violations)) for (const v of list ?? []) process.stderr.write(`    ${name}: ${v}\n`);
  }
  const wallMs = Math.round(performance.now() - started);
  const first = failures[0];
  if (values.json) {
    process.stdout.write(JSON.stringify({ seeds: count, from, failed: failures.map((f) => f.seed), wallMs, firstFailure: first ? { ...first, replay: replay(first.seed) } : null }) + '\n');
  } else {
    process.stdout.write(`${count - failures.length} of ${count} seeds passed in ${(wallMs / 1000).toFixed(1)} s\n`);
    if (first) process.stdout.write(`first failing seed: ${first.seed}\nreplay: ${replay(first.seed)}\n`);
  }
  finished = true;
  process.exit(failures.length > 0 ? 1 : 0);
} else {
  const seed = values.seed ?? '1';
  const r = await simulate(seed, options);
  if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
  else {
    process.stdout.write(`${summary(r)}\n`);
    for (const [name, list] of Object.entries(r.violations)) for (const v of list ?? []) process.stdout.write(`  ${name}: ${v}\n`);
    if (!r.ok) process.stdout.write(`replay: ${replay(seed)}\n`);
  }
  finished = true;
  process.exit(r.ok ? 0 : 1);
}
