/** The devnet suite of issue #7: three `cairn node` processes, transactions submitted over RPC. */
import { toHex } from '../ledger/bytes.ts';
import { sha256 } from '../ledger/hash.ts';
import { metric, type Metric, type Suite } from './report.ts';
import { TARGETS, benchKeys, machineLimit, s1, signedBytes, signerNote, transfers } from './perf-common.ts';
import { DEVNET_BLOCK_TIME, DEVNET_CHAIN_ID, DEVNET_HALF_LIFE, DEVNET_NODES } from './devnet-nodes.ts';
import { devnetNote, devnetRun, type DevnetRun } from './devnet-run.ts';

// ---------------------------------------------------------------------------------------------
// devnet: three `cairn node` processes, one mining, transactions submitted over RPC to one.

const DEVNET_SENDERS = 4_000;
const DEVNET_ROUNDS = 40; // 160,000 pre-signed transfers
const DEVNET_WINDOW_MS = 30_000;

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
    // Linux only (/proc): no figure where a node was never sampled.
    if ([...fars, ...nears].every((run) => run.rssMb.every((r) => r.mb > 0))) {
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
            `VmRSS of each node process sampled every 250 ms from its spawn until it stopped, no window left out (issue #19): start-up, warm-up, window, the mempools' drain and the convergence check, both sides of a run (a run's figure: the highest sample of any node); in the median runs, max per node ${far.rssMb.map((r) => `${r.name} ${r.mb.toFixed(0)}`).join(', ')} MB ` +
            `(submitting to node-2), ${near.rssMb.map((r) => `${r.name} ${r.mb.toFixed(0)}`).join(', ')} MB (to the miner); ` +
            `at the largest status-reported rss, heap used / heap total / external / array buffers: ${all
              .filter((r) => r.peak)
              .map((r) => `${r.name} ${[r.peak!.heapUsed, r.peak!.heapTotal, r.peak!.external, r.peak!.arrayBuffers].map((x) => (x / 2 ** 20).toFixed(0)).join('/')}`)
              .join(', ')} MB`,
        }),
        metric({
          key: 'rssBeforeAuditMb',
          label: 'node RSS, the same until the convergence check',
          unit: 'MB',
          runs: pairs.map((pair) => Math.max(...pair.map((r) => r.beforeAuditMb))),
          note:
            `the same samples until the convergence check began (its auditState on each node replays every block from genesis and reads every account, a diagnostic run once); what rssMb measured until 2026-12-06: ` +
            `max per node ${far.rssMb.map((r) => `${r.name} ${r.beforeAuditMb.toFixed(0)}`).join(', ')} MB (submitting to node-2), ${near.rssMb.map((r) => `${r.name} ${r.beforeAuditMb.toFixed(0)}`).join(', ')} MB (to the miner)`,
        }),
      );
    }
    return metrics;
  },
};
