import { LevelKv } from '../ledger/kv-level.ts';
import { STORED_TREE_DEPTH, TopNodes, TreeStore } from '../ledger/tree-store.ts';
import type { KvStore } from '../ledger/kv.ts';
import { EMPTY_HASH, bitAt, innerNode, leafNode, nodeHash, positionId, stateKey, type StateChange, type TreeNodeReader, type TreeWrite } from '../ledger/smt.ts';
import { updateTree } from '../ledger/smt-update.ts';
import { encodeAccountProof, proveKeys } from '../ledger/smt-proof.ts';
import { seededRandom } from '../test/helpers/fixtures.ts';
import { median, metric, type Metric, type Suite, type SuiteContext } from './report.ts';

/**
 * The state tree at scale: a LevelDB store holding the tree of N random accounts (1k, 100k, 1M;
 * built bottom-up in one pass, as a node's would be after N accounts), kept as ChainDB keeps it
 * (the top STORED_TREE_DEPTH levels in memory, the rest by position in the store). On it: the sizes of account
 * proofs, and what updating the root for one block costs — a block of 20 transfers (41 accounts:
 * the sync benchmark's blocks) and one of 500 (1,001 accounts: the ledger benchmark's) — read and
 * hashed, as connecting the block does (the writes are not applied, so every run sees the same tree).
 */
const SIZES = [1_000, 100_000, 1_000_000] as const;
const SAMPLE_PROOFS = 1_000;

interface Stored {
  readonly reader: TreeNodeReader;
  /** Round trips to the store, and the nodes they read. */
  readonly reads: { trips: number; nodes: number };
  readonly keys: Uint8Array;
  readonly count: number;
  close(): Promise<void>;
}

/** Every node of the tree of `count` accounts (keys `keys[i*32…]`, sorted), depth first, with each subtree's hash. */
function* nodesOf(keys: Uint8Array, order: Int32Array, lo: number, hi: number, depth: number): Generator<[string, Uint8Array], Uint8Array> {
  const keyAt = (i: number) => keys.subarray(order[i]! * 32, order[i]! * 32 + 32);
  if (hi - lo === 1) {
    const node = leafNode(keyAt(lo), { balance: BigInt(order[lo]!) + 1n, nonce: 0n });
    yield [positionId(keyAt(lo), depth), node];
    return nodeHash(node);
  }
  let mid = lo;
  while (mid < hi && bitAt(keyAt(mid), depth) === 0) mid++;
  const left = mid > lo ? yield* nodesOf(keys, order, lo, mid, depth + 1) : EMPTY_HASH;
  const right = hi > mid ? yield* nodesOf(keys, order, mid, hi, depth + 1) : EMPTY_HASH;
  const node = innerNode(left, right);
  yield [positionId(keyAt(lo), depth), node];
  return nodeHash(node);
}

async function buildStore(ctx: SuiteContext, count: number): Promise<Stored> {
  const rng = seededRandom(count);
  const keys = new Uint8Array(count * 32);
  for (let i = 0; i < count; i++) keys.set(stateKey(rng.bytes(20)), i * 32);
  const order = Int32Array.from({ length: count }, (_, i) => i);
  const head = (i: number) => ((keys[i * 32]! << 24) | (keys[i * 32 + 1]! << 16) | (keys[i * 32 + 2]! << 8) | keys[i * 32 + 3]!) >>> 0;
  order.sort((a, b) => head(a) - head(b) || Buffer.compare(keys.subarray(a * 32, a * 32 + 32), keys.subarray(b * 32, b * 32 + 32)));
  const dir = ctx.tempDir('cairn-bench-state-');
  const level = await LevelKv.open(dir.path);
  // ChainDB's own tree store over this store, its reads counted.
  const reads = { trips: 0, nodes: 0 };
  const kv: KvStore = {
    get: (key) => level.get(key),
    getMany: (keys) => {
      reads.trips++;
      reads.nodes += keys.length;
      return level.getMany(keys);
    },
    write: (ops) => level.write(ops),
    iterate: (range, limit) => level.iterate(range, limit),
    keys: (range) => level.keys(range),
    clear: (range) => level.clear(range),
    snapshot: () => level.snapshot(),
    close: () => level.close(),
  };
  const top = new TopNodes();
  let writes: TreeWrite[] = [];
  const started = performance.now();
  const nodes = nodesOf(keys, order, 0, count, 0);
  for (let step = nodes.next(); !step.done; step = nodes.next()) {
    writes.push({ id: step.value[0], node: step.value[1] });
    if (writes.length >= 50_000) {
      await kv.write(TreeStore.ops({ root: EMPTY_HASH, writes }, top));
      writes = [];
    }
  }
  await kv.write(TreeStore.ops({ root: EMPTY_HASH, writes }, top));
  ctx.log(`state: the tree of ${count.toLocaleString('en')} accounts built and stored in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { reader: new TreeStore(kv, top, () => undefined), reads, keys, count, close: () => kv.close() };
}

/** A block's changes: `senders` existing accounts and as many recipients (half new), and a new miner. */
function blockChanges(s: Stored, senders: number, seed: number): StateChange[] {
  const rng = seededRandom(seed);
  const picked = new Map<string, Uint8Array>();
  const existing = () => {
    const i = rng.int(s.count);
    return s.keys.subarray(i * 32, i * 32 + 32);
  };
  for (let i = 0; i < senders; i++) {
    for (const key of [existing(), rng.int(2) === 0 ? existing() : stateKey(rng.bytes(20))]) picked.set(Buffer.from(key).toString('hex'), key);
  }
  const miner = stateKey(rng.bytes(20));
  picked.set(Buffer.from(miner).toString('hex'), miner);
  return [...picked.values()].map((key) => ({ key, account: { balance: 7n, nonce: 1n } }));
}

export const stateSuite: Suite = {
  name: 'state',
  description: 'state tree at 1k / 100k / 1M accounts: proof sizes, and the root update of a block',
  async run(ctx) {
    const metrics: Metric[] = [];
    for (const count of ctx.quick ? SIZES.slice(0, 2) : SIZES) {
      const label = count >= 1_000_000 ? `${count / 1_000_000}M` : `${count / 1000}k`;
      const key = count >= 1_000_000 ? `${count / 1_000_000}m` : `${count / 1000}k`;
      const s = await buildStore(ctx, count);
      try {
        const rng = seededRandom(count + 1);
        const present = Array.from({ length: SAMPLE_PROOFS }, () => rng.int(count)).map((i) => s.keys.subarray(i * 32, i * 32 + 32));
        const absent = Array.from({ length: SAMPLE_PROOFS }, () => stateKey(rng.bytes(20)));
        const sizes = (await proveKeys(s.reader, present)).map((p) => encodeAccountProof(p).length);
        const absentSizes = (await proveKeys(s.reader, absent)).map((p) => encodeAccountProof(p).length);
        const depths = (await proveKeys(s.reader, present)).map((p) => p.siblings.length);
        metrics.push(metric({
          key: `stateProofBytes${key}`,
          label: `account proof, ${label} accounts (median of ${SAMPLE_PROOFS} members)`,
          unit: 'bytes',
          runs: sizes,
          note: `32 + 32·log2(N) = ${Math.round(32 + 32 * Math.log2(count))}; max ${Math.max(...sizes)}; depth median ${median(depths)}, max ${Math.max(...depths)}; proofs of absence: median ${median(absentSizes)}, max ${Math.max(...absentSizes)} bytes`,
        }));
        for (const [senders, what] of [[20, '20 transfers (41 accounts)'], [500, '500 transfers (~1,000 accounts)']] as const) {
          const runs: number[] = [];
          const counts: string[] = [];
          for (let r = 0; r < ctx.runs + 1; r++) {
            const changes = blockChanges(s, senders, count * 7 + r);
            s.reads.trips = 0;
            s.reads.nodes = 0;
            const t = performance.now();
            const update = await updateTree(s.reader, changes);
            const ms = performance.now() - t;
            if (r === 0) continue; // warm-up: the JIT, and LevelDB's first reads of its tables
            runs.push(ms);
            counts.push(`${update.writes.filter((w) => w.node).length} nodes hashed, ${s.reads.nodes} stored nodes read in ${s.reads.trips} round trips`);
          }
          metrics.push(metric({
            key: `stateRootUpdateMs${senders === 20 ? 'Block20' : 'Block500'}At${key[0]!.toUpperCase()}${key.slice(1)}`,
            label: `state root update of a block of ${what}, ${label} accounts`,
            unit: 'ms',
            runs,
            note: `reads and hashes, as a block's connect does them (ledger/smt.ts updateTree, the top ${STORED_TREE_DEPTH} levels in memory); last run: ${counts.at(-1)}`,
          }));
        }
      } finally {
        await s.close();
      }
    }
    return metrics;
  },
};
