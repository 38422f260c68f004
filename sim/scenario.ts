import type { ChainParams } from '../ledger/genesis.ts';
import { DEFAULT_REORG_DEPTH, DEFAULT_WINDOW } from '../consensus/chain-index.ts';
import type { LinkProfile } from './network.ts';
import { Random } from './random.ts';
import type { Role, SimNodeSpec } from './sim-node.ts';
import { SIM_EPOCH_MS, type WorldOptions } from './world.ts';
import type { Fault } from './faults.ts';
import { Wallets } from './wallets.ts';
import { DEEP_KEY_PAIRS } from './deep-accounts.ts';
import { withCapturers } from './capture.ts';

export interface ScenarioOptions {
  /** Nodes, adversaries included (default: 4 to 10, from the seed). */
  readonly nodes?: number;
  /** Simulated minutes of activity before the quiet period (default: 2 to 5, from the seed). */
  readonly minutes?: number;
  /** No adversaries and no faults: the network as it should be. */
  readonly calm?: boolean;
  /**
   * The roles the seed's adversaries take, one drawn for each (default: ADVERSARIES); with it,
   * a seed that would have none has one. The roles of EXTRA_ADVERSARIES come only so.
   */
  readonly adversaries?: readonly Role[];
  /** Light clients joining the world (sim/light-clients.ts), from a stream of their own (default none). */
  readonly lightClients?: number;
  /** The joiner each capturer is given starts without its checkpoint, to show that the capture bites (sim/capture.ts). */
  readonly withholdCheckpoint?: boolean;
}

/** A quarter of the users' accounts sit below the tree's top, so most blocks change stored nodes. */
const WALLETS = new Wallets(24, undefined, DEEP_KEY_PAIRS);
const ADVERSARIES: readonly Role[] = ['garbage', 'tamperer', 'liar', 'selfish', 'freerider', 'flooder', 'sybil'];
/**
 * Adversaries that break no rule (sim/lawful-adversaries.ts), kept out of the default mix so that
 * every seed's run stays as it was: `npm run sim -- --adversaries ROLE,...` brings them in.
 */
export const EXTRA_ADVERSARIES: readonly Role[] = ['timewarper', 'equivocator', 'withholder', 'replayer', 'eclipser', 'capturer'];
export const ALL_ADVERSARIES: readonly Role[] = [...ADVERSARIES, ...EXTRA_ADVERSARIES];
/** Adversaries that mine, each with this share of the hash power. */
const ADVERSARY_MINERS: readonly Role[] = ['selfish', 'timewarper', 'equivocator', 'withholder'];

/**
 * The network's rules under simulation: 10-second blocks at an easy target (a few hashes each),
 * so mining costs no real time. Most seeds keep the target fixed (a long ASERT half-life), which
 * makes two blocks at one height tie exactly, so the first-seen rule is exercised; some let it move.
 */
/** Snapshot heights in the networks that have them: a history of 40 to 250 blocks crosses several. */
export const SIM_SNAPSHOT_INTERVAL = 20;

export function simParams(rng: Random, history = 0): ChainParams {
  return {
    name: 'cairn-sim',
    unit: 'SIM',
    decimals: 8,
    chainId: 4242,
    // Early enough for `history` blocks on schedule before the run starts.
    timestamp: Math.floor(SIM_EPOCH_MS / 1000) - 10 * (history + 1),
    target: 1n << 252n,
    blockTime: 10,
    asertHalfLife: rng.chance(0.8) ? 365 * 86_400 : 600,
    reward: 5_000n,
    maxBlockBytes: 120_000,
    maxBlockTxs: 400,
    alloc: WALLETS.alloc(),
  };
}

function link(rng: Random, rough: boolean): LinkProfile {
  return {
    latencyMs: rng.range(5, 120),
    jitterMs: rough && rng.chance(0.5) ? rng.range(50, 400) : rng.range(0, 20),
    drop: rough && rng.chance(0.5) ? rng.next() * 0.08 : 0,
    duplicate: rough && rng.chance(0.3) ? rng.next() * 0.05 : 0,
  };
}

/** Everything a seed decides: the nodes and their roles, the links, the faults, the load. */
export function scenario(seed: string, o: ScenarioOptions = {}): WorldOptions {
  const rng = new Random(`scenario:${seed}`);
  const n = o.nodes ?? rng.range(4, 10);
  const minutes = o.minutes ?? rng.range(2, 5);
  const durationMs = minutes * 60_000;
  const calm = o.calm ?? false;
  // A capturer needs an honest chain longer than the reorg depth to undercut (sim/capture.ts).
  const capturing = !calm && n >= 4 && (o.adversaries?.includes('capturer') ?? false);
  // Some networks have a past: a chain of up to 250 blocks the first node holds at the start.
  const history = !calm && (rng.chance(0.5) || capturing) ? rng.range(40, 250) : 0;
  const drawn = calm || n < 4 ? 0 : rng.pick([0, 0, 1, 1, 2]);
  const adversaries = o.adversaries && !calm && n >= 4 ? Math.max(1, drawn) : drawn;
  // Its own stream, so that the other choices of a seed stay as they are.
  const mix = new Random(`adversaries:${seed}`);
  const ids = Array.from({ length: n }, (_, i) => `n${i}`);
  // Adversaries anywhere but n0, which holds the history and mines first.
  const bad = new Set(rng.shuffle(ids.slice(1)).slice(0, adversaries));
  const nodes: SimNodeSpec[] = ids.map((id, i) => {
    const drawnRole = bad.has(id) ? rng.pick(ADVERSARIES) : 'honest';
    const role: Role = bad.has(id) && o.adversaries ? mix.pick(o.adversaries) : drawnRole;
    // With a history to download, joining late is where sync is put to the test.
    const late = !calm && i >= 2 && rng.chance(history > 0 ? 0.5 : 0.3);
    return {
      id,
      role,
      hashShare: ADVERSARY_MINERS.includes(role) ? 0.3 : role === 'honest' && (i === 0 || rng.chance(0.5)) ? 0.2 + rng.next() : 0,
      joinAtMs: late ? rng.int(Math.floor(durationMs * 0.6)) : i * 200,
      leaveAtMs: !calm && role === 'honest' && i >= 3 && rng.chance(0.1) ? rng.range(Math.floor(durationMs * 0.3), durationMs - 1) : undefined,
      skewMs: calm ? 0 : rng.range(-20_000, 20_000),
      minerKey: i,
    };
  });
  const rough = !calm && rng.chance(0.6);
  const links = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (rng.chance(0.3)) links.push({ a: ids[i]!, b: ids[j]!, profile: link(rng, rough) });
  const faults: Fault[] = [];
  if (!calm) {
    const at = () => rng.range(10_000, Math.max(10_001, durationMs - 20_000));
    for (let k = rng.int(3); k > 0; k--) {
      const cut = 1 + rng.int(n - 1);
      const shuffled = rng.shuffle(ids);
      faults.push({ kind: 'partition', atMs: at(), healMs: rng.range(10_000, 90_000), sides: [shuffled.slice(0, cut), shuffled.slice(cut)] });
    }
    for (let k = rng.int(4); k > 0; k--) {
      const kind = rng.chance(0.7) ? 'crash' : 'restart';
      faults.push({ kind, atMs: at(), node: rng.pick(ids), restartMs: rng.range(1_000, 60_000), duringImport: kind === 'crash' && rng.chance(0.5) });
    }
    for (let k = rng.int(3); k > 0; k--) faults.push({ kind: 'burst', atMs: at(), txs: rng.range(10, 80), style: rng.pick(['valid', 'conflicting', 'replacing'] as const) });
    for (let k = rng.int(3); k > 0; k--) {
      const a = rng.pick(ids);
      const b = rng.pick(ids.filter((x) => x !== a));
      faults.push({ kind: 'link', atMs: at(), a, b, profile: link(rng, true), untilMs: rng.range(10_000, 60_000) });
    }
  }
  // From a stream of its own, so that adding it left every other choice of a seed as it was. The
  // deepest reorganisation 300 seeds produced was 9 blocks; most seeds follow 16 with 4 blocks
  // in memory (so forks load the chain below from the store, and a history of up to 250 crosses
  // the window's edge all the time), some the real defaults.
  const depths = new Random(`reorg-depth:${seed}`);
  const small = depths.chance(0.8) || capturing;
  const reorgDepth = small ? 16 : DEFAULT_REORG_DEPTH;
  const window = small ? 4 : DEFAULT_WINDOW;
  // Some honest nodes prune all they may (n0, which holds the history, never does): the others
  // must learn from their status which bodies they lack and fetch them elsewhere.
  const pruned = nodes.map((spec, i) => (small && i > 0 && spec.role === 'honest' && depths.chance(0.3) ? { ...spec, pruneKeep: reorgDepth } : spec));
  // Snapshot sync, from a stream of its own too: in most networks with a past and the small reorg
  // depth, snapshot heights come every 20 blocks (every node keeps and serves them), and some
  // honest nodes that join late start from one, through the seed's crashes and adversaries.
  const snap = new Random(`snapshot:${seed}`);
  const snapshots = small && history > 0 && snap.chance(0.6);
  const joining = pruned.map((spec, i) => (snapshots && i >= 2 && spec.role === 'honest' && spec.joinAtMs >= 1_000 && snap.chance(0.7) ? { ...spec, snapshotSync: true } : spec));
  // Half the honest nodes keep 16 tree nodes below the top in memory instead of 131,072: their
  // blocks read the deep users' paths from the store, and prefetch them while they sync.
  const trees = new Random(`tree-cache:${seed}`);
  const cached = joining.map((spec) => (spec.role === 'honest' && trees.chance(0.5) ? { ...spec, cachedTreeNodes: 16 } : spec));
  return {
    seed,
    params: simParams(rng, history),
    history,
    reorgDepth,
    window,
    snapshotInterval: snapshots ? SIM_SNAPSHOT_INTERVAL : undefined,
    nodes: withCapturers(seed, cached, o.withholdCheckpoint ?? false),
    durationMs,
    quietMs: 120_000,
    defaultLink: link(rng, rough),
    links,
    faults: faults.sort((a, b) => a.atMs - b.atMs),
    txPerMinute: calm ? 30 : rng.range(10, 60),
    mempool: { maxBytes: rng.chance(0.5) ? 40_000 : 400_000 },
    wallets: WALLETS,
  };
}
