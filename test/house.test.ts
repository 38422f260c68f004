/**
 * The rules of the house, checked on the source itself: layers import one way, no module takes
 * part in an import cycle, and node logic reaches time and randomness only through an Env, so
 * that the simulator can run every node on simulated time from a seed.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LAYERS = ['ledger', 'consensus', 'node', 'cli', 'sim'] as const;
type Layer = (typeof LAYERS)[number];

/** What each layer may import, besides itself. */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  ledger: [],
  consensus: ['ledger'],
  node: ['ledger', 'consensus'],
  cli: ['ledger', 'consensus', 'node'],
  sim: ['ledger', 'consensus', 'node'],
};

/**
 * Files that ARE the real world's adapters, and may touch its clock, timers and randomness
 * directly. Everything else in node/ takes them from an Env; ledger/ and consensus/ take a clock
 * as a parameter and use no timers at all.
 */
const REAL_ADAPTERS: Record<string, string> = {
  'node/env.ts': 'the real Env itself',
  'node/launch.ts': 'wires a real node: LevelDB, libp2p, threads',
  'node/libp2p/transport.ts': 'the libp2p Transport',
  'node/libp2p/reqresp.ts': 'libp2p streams and their deadlines',
  'node/libp2p/host.ts': 'libp2p configuration',
  'node/rpc.ts': 'the HTTP server and its random token',
  'node/metrics.ts': 'the metrics HTTP server',
  'node/http/server.ts': 'the REST/events HTTP server: rate limits, keep-alives, its run id',
  'node/verify-pool.ts': 'worker threads',
  'node/pool-worker.js': 'a worker thread',
  'node/heap-growth.ts': 'V8 flags of the real process',
};

/** Direct calls only: `env.setTimeout(` is the point, `setTimeout(` is not. */
const FORBIDDEN = [
  /\bDate\.now\(/,
  /\bnew Date\(\)/,
  /(?<![.\w$])setTimeout\(/,
  /(?<![.\w$])setInterval\(/,
  /(?<![.\w$])setImmediate\(/,
  /\bMath\.random\(/,
  /(?<![.\w$])randomBytes\(/,
  /\bcrypto\.randomBytes\(/,
  /\bperformance\.now\(/,
  /\bAbortSignal\.timeout\(/,
];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...sources(path));
    else if (/\.(ts|js|mjs)$/.test(name)) out.push(path);
  }
  return out;
}

/** Code without comments, so that prose mentioning setTimeout is not taken for a call. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

function imports(file: string): string[] {
  const text = code(readFileSync(join(ROOT, file), 'utf8'));
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out.filter((spec) => spec.startsWith('.')).map((spec) => normalize(join(dirname(file), spec)));
}

const layerOf = (file: string): Layer | undefined => LAYERS.find((l) => file.startsWith(`${l}/`));
const files = LAYERS.flatMap((l) => sources(l));

describe('the house', () => {
  it('layers import one way: ledger ← consensus ← node ← cli, and sim over node', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = layerOf(file)!;
      for (const target of imports(file)) {
        const to = layerOf(target);
        if (to === undefined || to === from) continue;
        if (!ALLOWED[from].includes(to)) wrong.push(`${file} imports ${target}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('no module is part of an import cycle (type imports included)', () => {
    const graph = new Map(files.map((f) => [f, imports(f).filter((t) => files.includes(t))]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      stack.push(f);
      for (const next of graph.get(f) ?? []) {
        if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' → '));
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    assert.deepEqual(cycles, []);
  });

  it('node logic takes time, timers and randomness from its Env; ledger and consensus use none', () => {
    const found: string[] = [];
    for (const file of files.filter((f) => /^(ledger|consensus|node)\//.test(f))) {
      if (REAL_ADAPTERS[file]) continue;
      const text = code(readFileSync(join(ROOT, file), 'utf8'));
      for (const pattern of FORBIDDEN) if (pattern.test(text)) found.push(`${file}: ${pattern.source.replace(/\\/g, '')}`);
    }
    assert.deepEqual(found, []);
  });

  it("every test file is one mocha's spec runs (test/**/*.test.ts): a test.spec.ts or a .mts would be left out, silently", () => {
    const spec = JSON.parse(readFileSync(join(ROOT, '.mocharc.json'), 'utf8')) as { spec: string[] };
    assert.deepEqual(spec.spec, ['test/**/*.test.ts']);
    const files = (dir: string): string[] => readdirSync(join(ROOT, dir)).flatMap((name) => (statSync(join(ROOT, dir, name)).isDirectory() ? files(join(dir, name)) : [join(dir, name)]));
    const left = files('test').filter((f) => !/^test\/(helpers|vectors)\//.test(f) && f !== 'test/README.md' && !f.endsWith('.test.ts'));
    assert.deepEqual(left, []);
  });

  it('every real-adapter exception names a file that exists', () => {
    for (const file of Object.keys(REAL_ADAPTERS)) assert.ok(files.includes(file), `${file} is listed as a real adapter but does not exist`);
  });
});
