/**
 * The soak: the devnet's three `cairn node` processes (devnet-nodes.ts) carrying a steady load for
 * many minutes (signed transfers to each node in turn, and the reads an explorer makes), their
 * memory sampled all along. A node runs for weeks; the devnet suite's half-minute window cannot
 * show whether its memory levels off or creeps. Only when named: `npm run bench -- soak`, for
 * CAIRN_SOAK_MINUTES (default 30; --quick, 5) at CAIRN_SOAK_TX_PER_SEC (default 300).
 *
 * RSS is split as the kernel counts it: anonymous memory (the heap, buffers, LevelDB's caches and
 * memtables, the threads) and file pages mapped (the binary, and LevelDB's table files, which it
 * maps to read: pages the kernel may drop, counted in RSS while resident). A leak is anonymous.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { seededRandom } from '../test/helpers/fixtures.ts';
import { stopProcess } from '../test/helpers/cluster.ts';
import { metric, type Metric, type Suite, type SuiteContext } from './report.ts';
import { benchKey, benchKeys, k, s1, signedBytes, type BenchKey } from './perf-common.ts';
import { DEVNET_CHAIN_ID, RssWatch, call, converged, devnetGenesis, devnetTarget, procStatusMb, startDevnet, type DevnetNode } from './devnet-nodes.ts';

const SENDERS = 1_000;
/** New recipients come from a fixed pool, so that the accounts level off as a real network's do. */
const RECIPIENTS = 5_000;
const SAMPLE_EVERY_MS = 30_000;
const CONVERGE_TIMEOUT_MS = 120_000;

interface Sample {
  readonly minute: number;
  readonly anonMb: number;
  readonly fileMb: number;
  readonly heapUsedMb: number;
  readonly storeMb: number;
}

const mb = (bytes: number) => bytes / 1048576;

/** RssAnon and RssFile of a running process, in MB. */
function rssParts(pid: number): { anonMb: number; fileMb: number } {
  const mb = procStatusMb(pid, ['RssAnon', 'RssFile']);
  return { anonMb: mb?.RssAnon ?? NaN, fileMb: mb?.RssFile ?? NaN };
}

function dirMb(dir: string): number {
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) bytes += statSync(join(e.parentPath, e.name)).size;
  return mb(bytes);
}

/**
 * How much `field` grew over the run: its mean over the last fifth of the samples less its mean
 * over the second fifth (the first is start-up: caches filling, the JIT, the first blocks).
 */
function growth(samples: readonly Sample[], field: keyof Sample): number {
  const fifth = Math.max(1, Math.floor(samples.length / 5));
  const mean = (part: readonly Sample[]) => part.reduce((sum, s) => sum + s[field], 0) / part.length;
  return mean(samples.slice(-fifth)) - mean(samples.slice(fifth, 2 * fifth));
}

/** One second's transfers: each sender in turn, its nonce counted here. */
function transfersFor(count: number, senders: readonly BenchKey[], nonces: Map<BenchKey, bigint>, next: { sender: number }, recipients: readonly Uint8Array[], random: ReturnType<typeof seededRandom>): string[] {
  const hexes: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = senders[next.sender++ % senders.length]!;
    const nonce = nonces.get(key)!;
    const to = random.int(2) === 0 ? senders[random.int(senders.length)]!.address : recipients[random.int(recipients.length)]!;
    hexes.push(toHex(signedBytes(key, { chainId: DEVNET_CHAIN_ID, to, amount: 1n + BigInt(random.int(1000)), fee: 1n + BigInt(random.int(10)), nonce })));
    nonces.set(key, nonce + 1n);
  }
  return hexes;
}

async function soak(ctx: SuiteContext, minutes: number, txPerSec: number): Promise<{ samples: Map<string, Sample[]>; accepted: number; rssMaxMb: number; warnings: number; height: number }> {
  const senders = benchKeys(50_000, SENDERS);
  const recipients = Array.from({ length: RECIPIENTS }, (_, i) => benchKey(200_000 + i).address);
  const dir = ctx.tempDir('cairn-bench-soak-');
  const genesisFile = join(dir.path, 'genesis.json');
  writeFileSync(genesisFile, devnetGenesis(senders, devnetTarget().target));
  const rss = new RssWatch(1000);
  const nodes: DevnetNode[] = [];
  try {
    await startDevnet(ctx, genesisFile, rss, nodes);
    const samples = new Map<string, Sample[]>(nodes.map((n) => [n.name, []]));
    const nonces = new Map<BenchKey, bigint>(senders.map((key) => [key, 0n]));
    const random = seededRandom(5);
    const next = { sender: 0 };
    const start = performance.now();
    let accepted = 0;
    let nextSample = start;
    for (let second = 0; performance.now() - start < minutes * 60_000; second++) {
      const tick = performance.now();
      const node = nodes[second % nodes.length]!;
      const result = await call(node, 'sendRawTransactions', { txs: transfersFor(txPerSec, senders, nonces, next, recipients, random) });
      accepted += result.accepted.length;
      // Nothing here should be refused: a refusal is a finding, not a figure.
      if (result.rejected.length > 0) throw new Error(`${node.name} refused ${result.rejected.length} transfers, the first: ${result.rejected[0]!.code} ${result.rejected[0]!.message}`);
      for (const n of nodes) {
        const status = await call(n, 'status', {});
        await call(n, 'getBlock', { height: random.int(status.height + 1) });
        await call(n, 'getAccount', { address: encodeAddress(senders[random.int(senders.length)]!.address) });
      }
      if (performance.now() >= nextSample) {
        nextSample += SAMPLE_EVERY_MS;
        const minute = (performance.now() - start) / 60_000;
        for (const n of nodes) {
          const { memory } = await call(n, 'status', {});
          samples.get(n.name)!.push({ minute, ...rssParts(n.child.pid!), heapUsedMb: mb(memory.heapUsed), storeMb: dirMb(n.datadir) });
        }
        ctx.log(`soak: ${minute.toFixed(1)} min, ${k(accepted)} transfers; RSS ${nodes.map((n) => (rss.peaks(n.child.pid).mb).toFixed(0)).join('/')} MB at most`);
      }
      const spent = performance.now() - tick;
      if (spent < 1000) await sleep(1000 - spent);
    }
    const convergeStart = performance.now();
    let agreed: { height: number } | undefined;
    while (!(agreed = await converged(nodes)) && performance.now() - convergeStart < CONVERGE_TIMEOUT_MS) await sleep(1000);
    if (!agreed) throw new Error(`the nodes did not converge within ${s1(CONVERGE_TIMEOUT_MS)} s of the load's end`);
    await Promise.all(nodes.map((n) => stopProcess(n.child, 'SIGTERM', 15_000)));
    for (const n of nodes) if (n.child.exitCode !== 0) throw new Error(`${n.name} stopped with ${n.child.exitCode ?? n.child.signalCode}`);
    const warnings = nodes.reduce((sum, n) => sum + readFileSync(join(n.datadir, 'node.log'), 'utf8').split('\n').filter((line) => /\b(warn|error)\b/i.test(line)).length, 0);
    const rssMaxMb = Math.max(...nodes.map((n) => rss.peaks(n.child.pid).mb));
    return { samples, accepted, rssMaxMb, warnings, height: agreed.height };
  } finally {
    await Promise.all(nodes.map((n) => stopProcess(n.child, 'SIGTERM', 15_000)));
    rss.stop();
    dir.remove();
  }
}

export const soakSuite: Suite = {
  name: 'soak',
  description: "the devnet under a steady load for 30 minutes: how each node's memory grows, anonymous and mapped, and its store",
  onlyWhenNamed: true,
  async run(ctx) {
    const minutes = Number(process.env.CAIRN_SOAK_MINUTES ?? (ctx.quick ? 5 : 30));
    const txPerSec = Number(process.env.CAIRN_SOAK_TX_PER_SEC ?? 300);
    if (!(minutes > 0) || !(txPerSec > 0)) throw new Error('CAIRN_SOAK_MINUTES and CAIRN_SOAK_TX_PER_SEC must be positive numbers');
    ctx.log(`soak: ${minutes} min at ${txPerSec} transfers a second, and each node's status, a block and an account every second`);
    const run = await soak(ctx, minutes, txPerSec);
    const worst = (field: keyof Sample) => [Math.max(...[...run.samples.values()].map((s) => growth(s, field)))];
    const note = `${minutes} min, ${k(run.accepted)} transfers, ${run.height} blocks; per node, the last fifth of the samples against the second, the largest`;
    const metrics: Metric[] = [
      metric({ key: 'soakRssMb', label: 'node RSS, every second of the soak, the largest', unit: 'MB', runs: [run.rssMaxMb] }),
      metric({ key: 'soakAnonGrowthMb', label: 'anonymous memory grown over the soak', unit: 'MB', runs: worst('anonMb'), note }),
      metric({ key: 'soakFileGrowthMb', label: 'file pages mapped grown over the soak (the store read)', unit: 'MB', runs: worst('fileMb'), note }),
      metric({ key: 'soakHeapGrowthMb', label: 'V8 heap in use grown over the soak', unit: 'MB', runs: worst('heapUsedMb'), note }),
      metric({ key: 'soakStoreGrowthMb', label: 'datadir grown over the soak', unit: 'MB', runs: worst('storeMb'), note }),
      metric({ key: 'soakLogWarnings', label: 'warn and error lines in the nodes\' logs', unit: 'lines', runs: [run.warnings] }),
    ];
    ctx.log(`soak: samples (minute: anon/file/heap/store MB), node-0: ${run.samples.get('node-0')!.map((s) => `${s.minute.toFixed(1)}: ${s.anonMb.toFixed(0)}/${s.fileMb.toFixed(0)}/${s.heapUsedMb.toFixed(0)}/${s.storeMb.toFixed(0)}`).join(', ')}`);
    return metrics;
  },
};
