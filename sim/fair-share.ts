import { DEFAULT_REORG_DEPTH, DEFAULT_WINDOW } from '../consensus/chain-index.ts';
/**
 * Measurements of fair serving under simulation, each a small world of its own rather than a
 * seeded scenario: the same world with and without the adversary (or without the budgets), so
 * that the difference is the adversary's doing.
 *
 * - A free rider next to an honest syncing node: a server S with a 150-block chain of full blocks
 *   (150 transfers each, 3.7 MB) and a 10 Mbit/s uplink; a free rider F, synced, re-downloading the
 *   whole chain from S in four loops at once; an honest node H that joins later and syncs from S
 *   alone. How long H's sync takes, and what share of S's upload F got meanwhile.
 * - A sybil: fifty identities from one IP dialling one node.
 */
import type { Block } from '../ledger/block.ts';
import { DEFAULT_SLOT_LIMITS } from '../node/slots.ts';
import { UNLIMITED_SERVING, type ServingLimits } from '../node/serving-limits.ts';
import { Checker } from './invariants.ts';
import { arm, SYBIL_IDENTITIES } from './adversary.ts';
import { catchingRejections } from './run.ts';
import { mineHistory } from './mining.ts';
import { Random } from './random.ts';
import { simParams } from './scenario.ts';
import type { SimNodeSpec } from './sim-node.ts';
import { sign, Wallets } from './wallets.ts';
import { SIM_EPOCH_MS, World, type WorldOptions } from './world.ts';

const HISTORY = 150;
const TXS_PER_BLOCK = 150;
/** 10 Mbit/s: a home uplink, what a node's serving shares out. */
const SERVER_UPLINK_BYTES_PER_MS = 1_250;
const HONEST_JOINS_AT_MS = 30_000;
const WALLETS = new Wallets(24);

/** No budgets at all: what serving was before them (a control). */
export const UNLIMITED = UNLIMITED_SERVING;

let historyCache: { key: string; blocks: readonly Block[] } | undefined;

/** Full blocks: each user pays another, in turn, nonces in order. */
function fullHistory(o: WorldOptions): readonly Block[] {
  const key = `${o.seed}`;
  if (historyCache?.key === key) return historyCache.blocks;
  const nonces = new Map<number, bigint>();
  const keys = WALLETS.keys;
  const blocks = mineHistory(o.params, HISTORY, WALLETS.minerAddress(0), (height) =>
    Array.from({ length: TXS_PER_BLOCK }, (_, i) => {
      const k = (height * TXS_PER_BLOCK + i) % keys.length;
      const nonce = nonces.get(k) ?? 0n;
      nonces.set(k, nonce + 1n);
      return sign({ chainId: o.params.chainId, to: keys[(k + 1) % keys.length]!.address, amount: 1n, fee: 1n, nonce }, keys[k]!);
    }),
  );
  historyCache = { key, blocks };
  return blocks;
}

function world(seed: string, nodes: SimNodeSpec[], durationMs: number): WorldOptions {
  const rng = new Random(`fair-share:${seed}`);
  const params = { ...simParams(rng, HISTORY), asertHalfLife: 365 * 86_400 };
  const o: WorldOptions = {
    seed,
    params,
    nodes,
    durationMs,
    reorgDepth: DEFAULT_REORG_DEPTH,
    window: DEFAULT_WINDOW,
    quietMs: 5_000,
    defaultLink: { latencyMs: 20, jitterMs: 0, drop: 0, duplicate: 0 },
    links: [],
    faults: [],
    txPerMinute: 0,
    mempool: {},
    wallets: WALLETS,
    history: HISTORY,
    discovery: false,
  };
  return { ...o, historyBlocks: () => fullHistory(o) };
}

const node = (id: string, role: SimNodeSpec['role'], joinAtMs: number, extra: Partial<SimNodeSpec> = {}): SimNodeSpec => ({ id, role, hashShare: 0, joinAtMs, skewMs: 0, minerKey: 0, ...extra });

export interface FreeRiderMeasurement {
  /** Simulated ms from H's start to its holding S's tip. */
  readonly honestSyncMs: number;
  /** Bytes S sent H, and F, while H synced. */
  readonly toHonest: number;
  readonly toFreeRider: number;
  /** Whether S had cut F off by the end of the run, and why. */
  readonly freeRiderBanned: string | undefined;
  /** Penalties honest nodes gave honest nodes (must be none). */
  readonly honestPenalised: readonly string[];
}

/** H syncing from S, beside a free rider (or not), with S's budgets (or none). */
export async function measureFreeRider(o: { freeRider: boolean; serving?: Partial<ServingLimits>; seed?: string }): Promise<FreeRiderMeasurement> {
  const seed = o.seed ?? 'free-rider';
  const nodes = [node('S', 'honest', 0, { uplinkBytesPerMs: SERVER_UPLINK_BYTES_PER_MS, serving: o.serving }), node('H', 'honest', HONEST_JOINS_AT_MS, { bootstrapTo: ['S'] })];
  // F syncs first, and starts re-downloading (five seconds after its start) as H joins: its
  // budgets are full then, the worst moment for H.
  if (o.freeRider) nodes.push(node('F', 'freerider', HONEST_JOINS_AT_MS - 5_000, { bootstrapTo: ['S'] }));
  const w = new World(world(seed, nodes, 150_000));
  const checker = new Checker(w);
  arm(w, checker);
  let banned: string | undefined;
  let started = 0;
  let synced = 0;
  let before = { toHonest: 0, toFreeRider: 0 };
  let during = { toHonest: 0, toFreeRider: 0 };
  const sent = () => ({ toHonest: w.net.sent('S', 'H'), toFreeRider: w.net.sent('S', 'F') });
  w.observe({
    onNode: (sim, n) => {
      if (sim.id === 'S') n.peers.on('ban', (peer, reason) => void (peer === 'F' && (banned ??= reason)));
    },
    onStarted: (sim) => {
      if (sim.id !== 'H') return;
      started = w.scheduler.now;
      before = sent();
      const poll = () => {
        const [s, h] = [w.node('S').node, w.node('H').node];
        if (s && h && h.chain.tip.height === HISTORY && h.chain.tip.hashHex === s.chain.tip.hashHex) {
          synced = w.scheduler.now;
          const now = sent();
          during = { toHonest: now.toHonest - before.toHonest, toFreeRider: now.toFreeRider - before.toFreeRider };
        } else {
          w.scheduler.after(50, poll);
        }
      };
      poll();
    },
  });
  await catchingRejections(w, () => w.run());
  if (w.crashes.length > 0) throw new Error(`a node threw: ${w.crashes.join('\n')}`);
  if (!synced) throw new Error(`H never synced (${w.node('H').node?.chain.tip.height ?? 'down'} of ${HISTORY})`);
  return {
    honestSyncMs: synced - started,
    ...during,
    freeRiderBanned: banned,
    honestPenalised: checker.violations.get('no-honest-penalised') ?? [],
  };
}

export interface SybilMeasurement {
  /** Inbound connections the target holds from the sybil's IP, at most, over the run. */
  readonly slotsTaken: number;
  readonly limit: number;
  readonly identities: number;
  readonly refused: number;
  readonly honestPenalised: readonly string[];
}

/** Fifty identities from one IP dial node T; T also has two honest peers. */
export async function measureSybil(seed = 'sybil'): Promise<SybilMeasurement> {
  const nodes = [node('T', 'honest', 0), node('A', 'honest', 500, { bootstrapTo: ['T'] }), node('B', 'honest', 1_000, { bootstrapTo: ['T'] }), node('X', 'sybil', 5_000, { bootstrapTo: ['T'] })];
  const o = world(seed, nodes, 30_000);
  const w = new World({ ...o, history: 0, historyBlocks: undefined });
  const checker = new Checker(w);
  arm(w, checker);
  checker.schedule(1_000);
  let most = 0;
  let refused = 0;
  const sample = () => {
    const t = w.node('T').node;
    if (t) {
      const fromSybils = t.transport.peers().filter((p) => p.startsWith('X-sybil')).length;
      most = Math.max(most, fromSybils);
      refused = t.guard.stats.refusedInbound;
    }
    if (w.scheduler.now < SIM_EPOCH_MS + 30_000) w.scheduler.after(100, sample);
  };
  w.scheduler.after(0, sample);
  await catchingRejections(w, () => w.run());
  if (w.crashes.length > 0) throw new Error(`a node threw: ${w.crashes.join('\n')}`);
  return { slotsTaken: most, limit: DEFAULT_SLOT_LIMITS.maxInboundPerIp, identities: SYBIL_IDENTITIES, refused, honestPenalised: [...(checker.violations.get('no-honest-penalised') ?? []), ...(checker.violations.get('slots-bounded') ?? [])] };
}
