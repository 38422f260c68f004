/**
 * The propagation suite's figures from what it measured (bench/propagation.ts): kept apart from
 * the measuring so that which samples each figure is made of can be checked without a network.
 */
import { median, metric, type Metric } from './report.ts';
import { CORES, TARGETS, ms0, s1 } from './perf-common.ts';

export const PROP_NODES = 5;
export const PROP_TXS = 2_000;
export const NAMES = 'ABCDEFGHIJ';

/** One block across the five nodes of one event loop. */
export interface Arrival {
  /** Each node's connect time minus the moment the origin found the block, in line order (index 0 is the origin). */
  readonly perNodeMs: readonly number[];
  /** Each receiver's time inside Chain.processBlock for this block. */
  readonly importMs: readonly number[];
}

export interface PropagationMeasured {
  /** The five nodes each in a worker thread: per block, each node's connect minus the moment A found it. */
  readonly threaded: { readonly perNodeMs: readonly (readonly number[])[]; readonly reachMs: readonly number[]; readonly cpuShares: readonly number[] };
  /** The same blocks with the five nodes in the bench's event loop. */
  readonly inProcess: { readonly arrivals: readonly Arrival[]; readonly gossipMs: readonly number[]; readonly rebuilt: number; readonly fetched: number };
  /** One node alone importing such blocks, and the part before it could forward each. */
  readonly hop: { readonly times: readonly number[]; readonly forwardTimes: readonly number[] };
}

export function propagationMetrics(measured: PropagationMeasured): Metric[] {
  const { threaded, inProcess, hop } = measured;
  const { arrivals, gossipMs, rebuilt, fetched } = inProcess;
  const { times: hops, forwardTimes } = hop;
  const receivers = Array.from({ length: PROP_NODES - 1 }, (_, i) => i);
  const totals = arrivals.map((a) => Math.max(...a.perNodeMs));
  const perNode = receivers.map((i) => `${NAMES[i + 1]} ${ms0(median(arrivals.map((a) => a.perNodeMs[i + 1]!)))}`).join(', ');
  const importPerNode = receivers.map((i) => `${NAMES[i + 1]} ${ms0(median(arrivals.map((a) => a.importMs[i]!)))}`).join(', ');
  const threadTotals = threaded.perNodeMs.map((a) => Math.max(...a));
  const threadPerNode = receivers.map((i) => `${NAMES[i + 1]} ${ms0(median(threaded.perNodeMs.map((a) => a[i + 1]!)))}`).join(', ');
  return [
    metric({
      key: 'propagationP50Ms',
      label: `${PROP_TXS}-tx block (txs in mempools) to all ${PROP_NODES} nodes, p50`,
      unit: 'ms',
      runs: threadTotals,
      target: TARGETS.propagationP50Ms,
      note:
        `${threadTotals.length} blocks of ${PROP_TXS} transfers, each node a CairnNode in its own worker thread (its own event loop, as in its own process; bench/node-thread.ts), ` +
        `bootstrapped in a line A–E on 127.0.0.1; the transfers submitted to A and gossiped into every mempool (untimed), then the block mined on A; ` +
        `from the moment A found the block (its nonce) to the last node's connect, A's own included (one clock: performance.timeOrigin + now()); median arrival A ${ms0(median(threaded.perNodeMs.map((a) => a[0]!)))}, ${threadPerNode} ms; ` +
        `the five share ${CORES} cores, and the process (every thread, LevelDB's included) was on ${(100 * median(threaded.cpuShares)).toFixed(0)}% CPU (median) from the mining to the last mempool update`,
    }),
    metric({
      key: 'propagationReachP50Ms',
      label: `the same, until the last of the ${PROP_NODES} began its import, p50`,
      unit: 'ms',
      runs: threaded.reachMs,
      note:
        `the same blocks and threads: from the moment A found the block to the last node's start of Chain.processBlock, by which a node has rebuilt the block, ` +
        `checked its proof of work, header and body, and passed it on (node/gossip.ts, BIP 152); how far the block has travelled, not propagationP50Ms's connect at every node, ` +
        `which then waits for ${PROP_NODES} imports on ${CORES} cores`,
    }),
    metric({
      key: 'propagationInProcessP50Ms',
      label: `the same, all ${PROP_NODES} nodes in one event loop, p50`,
      unit: 'ms',
      runs: totals,
      note:
        `${totals.length} blocks of ${PROP_TXS} transfers each first gossiped into every mempool (median ${s1(median(gossipMs))} s, untimed), then mined on A with mineOn; ` +
        `from the moment A found the block to the last node's connect, A's own included; median arrival A ${ms0(median(arrivals.map((a) => a.perNodeMs[0]!)))}, ${perNode} ms; median time inside Chain.processBlock ${importPerNode} ms; ` +
        `compact blocks rebuilt from the mempool ${rebuilt}, with transactions fetched ${fetched}; all ${PROP_NODES} nodes share this process's event loop and ${CORES} cores`,
    }),
    metric({
      key: 'propagationHopMs',
      label: `${PROP_TXS}-tx block (txs in mempool), one node's import alone`,
      unit: 'ms',
      runs: hops,
      note:
        `a fresh node with no peers holding the block's ${PROP_TXS} transactions (signatures checked at admission): decode the compact block, rebuild it from the mempool, ` +
        `Chain.processBlock, and the mempool's update for the new tip; what each node pays for a block, though no longer before it forwards one (propagationForwardMs)`,
    }),
    metric({
      key: 'propagationForwardMs',
      label: `${PROP_TXS}-tx block (txs in mempool), one node's delay before it forwards`,
      unit: 'ms',
      runs: forwardTimes,
      note:
        `the same blocks and node: decode the compact block, rebuild it from the mempool, check its body and its header against the tip (Chain.judgeHeader), ` +
        `after which a compact block on the tip is forwarded and imported behind (BIP 152); what a hop adds where each node has its own machine`,
    }),
    metric({
      key: 'propagationMaxMs',
      label: `${PROP_TXS}-tx block (txs in mempools) to all ${PROP_NODES} nodes, max`,
      unit: 'ms',
      runs: [Math.max(...threadTotals)],
      note: `the slowest of propagationP50Ms's ${threadTotals.length} blocks (each node in its own thread)`,
    }),
  ];
}
