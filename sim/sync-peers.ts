/**
 * A fresh node syncing from several peers, under simulation: does the download spread over them
 * (peers that answer the handshake late included), and is it no slower than from one of them
 * alone (issue #19), even when one of them is far slower than the rest? Worlds of their own, like
 * sim/fair-share.ts's, timed in simulated ms: the servers' uplinks are the bottleneck there
 * (simulated nodes compute for free), so what is measured is how the download uses them.
 *
 * Every server holds the same chain of 640 coinbase-only blocks (20 batches of the download) from
 * its start. H joins later, bootstrapping off every server there by then, and syncs; a server that
 * joins after H dials H itself.
 */
import { DEFAULT_REORG_DEPTH, DEFAULT_WINDOW } from '../consensus/chain-index.ts';
import { Checker } from './invariants.ts';
import { arm } from './adversary.ts';
import { catchingRejections } from './run.ts';
import type { Block } from '../ledger/block.ts';
import { mineHistory } from './mining.ts';
import { Random } from './random.ts';
import { simParams } from './scenario.ts';
import { Wallets } from './wallets.ts';
import { SIM_EPOCH_MS, World, type WorldOptions } from './world.ts';

const HISTORY = 640;
/** 40 kbit/s: a batch of 32 blocks takes about 1.3 s, the chain about 26 s, from one server. */
export const SYNC_UPLINK_BYTES_PER_MS = 20;
const HONEST_JOINS_AT_MS = 60_000;
const RUN_MS = 180_000;
const WALLETS = new Wallets(4);

export interface SyncServer {
  readonly id: string;
  /** Its uplink, bytes per ms (default SYNC_UPLINK_BYTES_PER_MS). */
  readonly uplinkBytesPerMs?: number;
  /** One-way delay of its link to H (default 20 ms). */
  readonly latencyMs?: number;
  /** Simulated ms after H's start when it starts (default: before H). */
  readonly joinsAfterHMs?: number;
}

export interface SyncPeersMeasurement {
  /** Simulated ms from H's start to its holding the servers' tip. */
  readonly syncMs: number;
  /** Of which the bodies: from its download's start (the headers checked) to the tip. */
  readonly downloadMs: number;
  /** Bytes each server sent H while it synced. */
  readonly sent: Readonly<Record<string, number>>;
  /** Penalties honest nodes gave honest nodes (must be none). */
  readonly honestPenalised: readonly string[];
}

let historyCache: { seed: string; blocks: readonly Block[] } | undefined;

/** H syncing the chain from `servers`. */
export async function measureSyncFromPeers(servers: readonly SyncServer[], seed = 'sync-peers'): Promise<SyncPeersMeasurement> {
  const first = servers[0]!.id;
  const rng = new Random(`sync-peers:${seed}`);
  const params = { ...simParams(rng, HISTORY), asertHalfLife: 365 * 86_400 };
  if (historyCache?.seed !== seed) historyCache = { seed, blocks: mineHistory(params, HISTORY, WALLETS.minerAddress(0)) };
  const history = historyCache.blocks;
  const late = (s: SyncServer) => s.joinsAfterHMs !== undefined;
  const nodes = [
    ...servers.map((s, i) => ({
      id: s.id,
      role: 'honest' as const,
      hashShare: 0,
      joinAtMs: late(s) ? HONEST_JOINS_AT_MS + s.joinsAfterHMs! : i * 100,
      skewMs: 0,
      minerKey: 0,
      uplinkBytesPerMs: s.uplinkBytesPerMs ?? SYNC_UPLINK_BYTES_PER_MS,
      bootstrapTo: late(s) ? ['H'] : [],
    })),
    { id: 'H', role: 'honest' as const, hashShare: 0, joinAtMs: HONEST_JOINS_AT_MS, skewMs: 0, minerKey: 0, bootstrapTo: servers.filter((s) => !late(s)).map((s) => s.id) },
  ];
  const defaultLink = { latencyMs: 20, jitterMs: 0, drop: 0, duplicate: 0 };
  const o: WorldOptions = {
    seed,
    params,
    nodes,
    durationMs: RUN_MS,
    reorgDepth: DEFAULT_REORG_DEPTH,
    window: DEFAULT_WINDOW,
    quietMs: 5_000,
    defaultLink,
    links: servers.filter((s) => s.latencyMs !== undefined).map((s) => ({ a: s.id, b: 'H', profile: { ...defaultLink, latencyMs: s.latencyMs! } })),
    faults: [],
    txPerMinute: 0,
    mempool: {},
    wallets: WALLETS,
    history: HISTORY,
    historyBlocks: () => history,
    discovery: false,
  };
  const w = new World(o);
  const checker = new Checker(w);
  arm(w, checker);
  let started = 0;
  let downloading = 0;
  let synced = 0;
  let before: number[] = [];
  let during: number[] = [];
  const sent = () => servers.map((s) => w.net.sent(s.id, 'H'));
  w.observe({
    onStarted: (sim, n) => {
      // The first server is given the chain by the world; the others the same blocks, here.
      if (sim.id !== 'H' && sim.id !== first && sim.lives === 1) void (async () => {
        for (const block of history) await n.chain.processBlock(block);
      })();
      if (sim.id !== 'H') return;
      started = w.scheduler.now;
      n.sync.once('download', () => (downloading = w.scheduler.now));
      before = sent();
      const poll = () => {
        const [s, h] = [w.node(first).node, w.node('H').node];
        if (s && h && h.chain.tip.height === HISTORY && h.chain.tip.hashHex === s.chain.tip.hashHex) {
          synced = w.scheduler.now;
          during = sent().map((n, i) => n - before[i]!);
        } else if (w.scheduler.now < SIM_EPOCH_MS + RUN_MS) {
          w.scheduler.after(50, poll);
        }
      };
      poll();
    },
  });
  let heights: (number | undefined)[] = [];
  await catchingRejections(w, async () => {
    await w.run();
    heights = servers.map((s) => w.node(s.id).node?.chain.tip.height);
  });
  if (w.crashes.length > 0) throw new Error(`a node threw: ${w.crashes.join('\n')}`);
  servers.forEach((s, i) => {
    if (heights[i] !== HISTORY) throw new Error(`server ${s.id} held ${heights[i] ?? 'nothing'} of ${HISTORY} blocks`);
  });
  if (!synced) throw new Error(`H never synced (${HISTORY} blocks)`);
  // Without it every download time would be the whole sync's, and every comparison of them moot.
  if (!downloading) throw new Error("H's sync never said its download began");
  return {
    syncMs: synced - started,
    downloadMs: synced - downloading,
    sent: Object.fromEntries(servers.map((s, i) => [s.id, during[i]!])),
    honestPenalised: checker.violations.get('no-honest-penalised') ?? [],
  };
}
