/**
 * `npm run bench -- --vs-bcoin`: Cairn side by side with bcoin 1.0.2, the JavaScript Bitcoin full
 * node, on the same machine in the same run. The harness (../shared/anchors/bcoin-bench, or
 * $CAIRN_BCOIN_HARNESS) is installed into the OS temp folder with npm under the system Node (it
 * builds native addons for it), once per harness version; nothing is added to Cairn's
 * dependencies. Each figure alternates bcoin and Cairn run by run, so that both meet the same
 * moments of a shared machine, and the result is their ratio (Cairn / bcoin) with its spread.
 *
 * The workloads are shaped alike: a fresh node syncing 200 blocks of 500 one-signature
 * transactions from one peer over 127.0.0.1, and 20,000 transactions submitted over JSON-RPC in
 * batches of 100, one batch in flight, timed until all are in the mempool. So are the windows:
 * bcoin's sync is timed from the connect of the block before its first transaction block (its
 * harness syncs 175 setup blocks first) to the last, so Cairn's is timed from its first block's
 * connect to its last, over the transactions of the blocks after the first (`rateAfterFirstBlock`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { stateDigest } from '../ledger/audit.ts';
import { networkParams, stopAll, type TestNode } from '../test/helpers/network.ts';
import { testParams } from '../test/helpers/fixtures.ts';
import { ThreadNode } from './threaded-nodes.ts';
import { allocFor, benchKeys, signedBytes, transfers } from './perf-common.ts';
import { batchedAdmitRun } from './perf.ts';
import { buildSyncSource, syncRun, type SyncRun } from './sync.ts';
import { metric, type Metric, type Suite, type SuiteContext } from './report.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const SYNC_BLOCKS = 200;
const SYNC_TXS_PER_BLOCK = 500;
const RPC_TXS = 20_000;
const RPC_BATCH = 100;

/** The harness shipped beside the project, where every engineer and CI run has it. */
function harnessSource(): string {
  const dir = process.env['CAIRN_BCOIN_HARNESS'] ?? resolve(REPO, '..', 'shared', 'anchors', 'bcoin-bench');
  if (!existsSync(join(dir, 'package-lock.json'))) throw new Error(`--vs-bcoin needs the bcoin harness at ${dir} (or CAIRN_BCOIN_HARNESS)`);
  return dir;
}

/** The system's `node` and `npm` (Node 20 here): the harness's native addons are built for it, not for our Node 24. */
function systemEnv(): NodeJS.ProcessEnv {
  const path = (process.env['PATH'] ?? '').split(delimiter).filter((p) => !p.includes(`${sep}node_modules${sep}`)).join(delimiter);
  return { ...process.env, PATH: path };
}

function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).slice(-2000)}`);
  return r.stdout;
}

interface Harness {
  readonly root: string;
  readonly node: string;
  readonly chain: string;
  readonly env: NodeJS.ProcessEnv;
}

/** Installs the harness once per version (its lock file's hash) and builds its chain once. */
function install(ctx: SuiteContext): Harness {
  const source = harnessSource();
  const version = createHash('sha256').update(readFileSync(join(source, 'package-lock.json'))).digest('hex').slice(0, 12);
  const root = join(tmpdir(), `cairn-vs-bcoin-${version}`);
  const node = join(root, 'node');
  const env = { ...systemEnv(), BCOIN_BENCH: root };
  if (!existsSync(join(node, 'node_modules', 'bcoin', 'package.json'))) {
    ctx.log(`vs-bcoin: installing bcoin 1.0.2 into ${node} with the system npm (a few minutes, once)`);
    mkdirSync(node, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(source, f), join(node, f));
    cpSync(join(source, 'scripts'), join(node, 'scripts'), { recursive: true });
    run('npm', ['install', '--no-audit', '--no-fund'], node, env, 20 * 60_000);
  }
  const native = run('node', ['-e', "process.stdout.write(String(require('bcrypto/lib/internal/secp256k1')._bcryptoBinding))"], node, env, 60_000);
  if (native !== 'true') throw new Error('bcoin would verify with its JavaScript fallback: its native secp256k1 did not build');
  const chain = join(root, 'data', 'chainA');
  if (!existsSync(join(chain, 'meta.json'))) {
    ctx.log('vs-bcoin: building bcoin\'s chain (175 setup blocks + 200 blocks x 500 txs + 20,000 mempool txs; about a minute, once)');
    mkdirSync(join(root, 'data'), { recursive: true });
    run('node', ['scripts/build-chain.js', chain, String(SYNC_BLOCKS), String(SYNC_TXS_PER_BLOCK), String(RPC_TXS)], node, env, 30 * 60_000);
  }
  return { root, node, chain, env };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Starts bcoin's serving node on a copy of the chain; resolves once it says READY. */
async function serveNode(h: Harness, p2p: number, http: number): Promise<ChildProcess> {
  const child = spawn('node', ['scripts/serve-node.js', h.chain, String(p2p), String(http), '0', '900'], { cwd: h.node, env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`bcoin's serve-node did not start: ${out}`)), 60_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('READY')) {
        clearTimeout(timer);
        ready();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('exit', (code) => fail(new Error(`bcoin's serve-node exited (${code}): ${out}`)));
  });
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

function lastJson(out: string): Record<string, unknown> {
  const line = out.split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) throw new Error(`no result in: ${out.slice(-500)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** bcoin: a fresh node syncs the 200 transaction blocks from its serving node; tx/s. */
async function bcoinSync(h: Harness): Promise<number> {
  const [p2p, http] = [await freePort(), await freePort()];
  const serve = await serveNode(h, p2p, http);
  try {
    const out = run('node', ['scripts/sync-node.js', h.chain, String(p2p), String(SYNC_BLOCKS), '0', '300'], h.node, h.env, 400_000);
    const result = lastJson(out);
    // A chain cached in the temp folder by another version of this suite would time other work.
    if (Number(result['tx_blocks']) !== SYNC_BLOCKS || Number(result['txs']) !== SYNC_BLOCKS * SYNC_TXS_PER_BLOCK) {
      throw new Error(`bcoin synced ${String(result['txs'])} transactions in ${String(result['tx_blocks'])} blocks, not ${SYNC_BLOCKS * SYNC_TXS_PER_BLOCK} in ${SYNC_BLOCKS}: remove ${h.chain} to rebuild its chain`);
    }
    return Number(result['tx_per_s']);
  } finally {
    await stopChild(serve);
  }
}

/** bcoin: 20,000 transactions over JSON-RPC in batches of 100, timed until all are in its mempool; tx/s. */
async function bcoinRpc(h: Harness): Promise<number> {
  const [p2p, http] = [await freePort(), await freePort()];
  const serve = await serveNode(h, p2p, http);
  try {
    const out = run('node', ['scripts/rpc-feed.js', h.chain, String(http), String(RPC_TXS), 'batch', String(RPC_BATCH), '0', '120'], h.node, h.env, 300_000);
    const result = lastJson(out);
    if (Number(result['accepted']) !== RPC_TXS) throw new Error(`bcoin admitted ${String(result['accepted'])} of ${RPC_TXS}`);
    return Number(result['accept_tx_per_s']);
  } finally {
    await stopChild(serve);
  }
}

/**
 * A Cairn sync's rate over the window bcoin's harness times (scripts/sync-node.js): from the
 * connect of the block before the counted ones to the connect of the last, over the counted
 * blocks' transactions. Cairn's chain has no setup blocks, so its first block opens the window and
 * is not counted; the node's start, dial, handshake and first batch stay out, as bcoin's do.
 */
export function rateAfterFirstBlock(run: Pick<SyncRun, 'ms' | 'firstBlockMs'>, txs: number, firstBlockTxs: number): number {
  const ms = run.ms - run.firstBlockMs;
  if (!(ms > 0)) throw new RangeError(`the sync's last block connected ${ms} ms after its first`);
  return ((txs - firstBlockTxs) * 1000) / ms;
}

interface Pair {
  readonly bcoin: number[];
  readonly cairn: number[];
}

function ratioMetric(key: string, label: string, pair: Pair, note: string): Metric[] {
  const ratios = pair.cairn.map((c, i) => c / pair.bcoin[i]!);
  return [
    metric({ key, label: `${label}: Cairn / bcoin`, unit: '×', runs: ratios, note: `${note}; each ratio pairs one bcoin run with the Cairn run right after it` }),
    metric({ key: `${key}Bcoin`, label: `${label}: bcoin 1.0.2`, unit: 'tx/s', runs: pair.bcoin, note: 'native secp256k1 (bcrypto), workers off, LevelDB, regtest' }),
    metric({ key: `${key}Cairn`, label: `${label}: Cairn`, unit: 'tx/s', runs: pair.cairn, note: 'the same workload shape' }),
  ];
}

export const vsBcoinSuite: Suite = {
  name: 'vs-bcoin',
  description: 'Cairn and bcoin 1.0.2 side by side, alternating run by run: sync of 200 x 500 transactions, and RPC admission of 20,000 in batches of 100 (ratios)',
  async run(ctx) {
    const h = install(ctx);
    const runs = Math.max(3, ctx.runs);
    const live: TestNode[] = [];
    try {
      // Cairn's sync source: 200 blocks of 500 transfers, as bcoin's chain has.
      const senders = benchKeys(20_000, 5_000);
      const syncParams = networkParams({ name: 'cairn-bench-vs-bcoin', maxBlockTxs: 1000, alloc: allocFor(senders) });
      const aDir = ctx.tempDir('cairn-vs-bcoin-source-');
      const { txs } = await buildSyncSource(ctx, aDir.path, syncParams, senders, SYNC_BLOCKS, SYNC_TXS_PER_BLOCK);
      const db = await ChainDB.open(join(aDir.path, 'chain'), syncParams);
      const [digest, tip] = await Promise.all([stateDigest(db), db.storedTip()]).finally(() => db.close());
      const aThread = await ThreadNode.start(aDir, syncParams, []);
      const sync: Pair = { bcoin: [], cairn: [] };
      try {
        for (let r = 0; r < runs; r++) {
          sync.bcoin.push(await bcoinSync(h));
          const c = await syncRun(ctx, syncParams, { addrs: [aThread.addr], tip }, digest, txs, live);
          sync.cairn.push(rateAfterFirstBlock(c, txs, SYNC_TXS_PER_BLOCK));
          ctx.log(`vs-bcoin: sync run ${r + 1}: bcoin ${Math.round(sync.bcoin.at(-1)!)} tx/s, Cairn ${Math.round(sync.cairn.at(-1)!)} tx/s`);
        }
      } finally {
        await aThread.stop();
      }

      const rpcSenders = benchKeys(40_000, 500);
      const rpcParams = testParams({ name: 'cairn-bench-vs-bcoin-rpc', maxBlockTxs: 50_000, maxBlockBytes: 16 << 20, alloc: allocFor(rpcSenders) });
      const hexes = [...transfers(rpcSenders, rpcParams.chainId, RPC_TXS / rpcSenders.length)].map(({ key, fields }) => toHex(signedBytes(key, fields)));
      const rpc: Pair = { bcoin: [], cairn: [] };
      for (let r = 0; r < runs; r++) {
        rpc.bcoin.push(await bcoinRpc(h));
        const c = await batchedAdmitRun(ctx, rpcParams, hexes, live, RPC_BATCH, 1);
        rpc.cairn.push((c.txs * 1000) / c.ms);
        ctx.log(`vs-bcoin: rpc run ${r + 1}: bcoin ${Math.round(rpc.bcoin.at(-1)!)} tx/s, Cairn ${Math.round(rpc.cairn.at(-1)!)} tx/s`);
      }
      return [
        ...ratioMetric('vsBcoinSync', `sync of ${SYNC_BLOCKS} blocks x ${SYNC_TXS_PER_BLOCK} transactions from one peer over 127.0.0.1`, sync, `a fresh node, every signature checked, timed as bcoin's harness times it: from the connect of the block before the first counted one to the last (bcoin's 175 setup blocks, Cairn's first block, and each node's start-up and handshake before them left out); Cairn's state digest then checked against its source's`),
        ...ratioMetric('vsBcoinRpcAdmit', `${RPC_TXS.toLocaleString('en')} transactions over JSON-RPC, batches of ${RPC_BATCH}, one in flight, until all are in the mempool`, rpc, 'a fresh node per run'),
      ];
    } finally {
      await stopAll(live);
    }
  },
};

