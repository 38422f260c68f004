import { MemoryDisk, type MemoryKv } from '../ledger/kv-memory.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { MempoolPolicy } from '../ledger/mempool-rules.ts';
import { CairnNode } from '../node/node.ts';
import type { BanRecord, BanStore } from '../node/peers.ts';
import type { ServingLimits } from '../node/serving-limits.ts';
import { InlineVerifier } from '../node/inline-verifier.ts';
import type { SignatureVerifier } from '../node/tx-signatures.ts';
import { BoundedMap } from '../ledger/bounded.ts';
import { toHex } from '../ledger/bytes.ts';
import { sha256 } from '../ledger/hash.ts';
import type { Checkpoint } from '../consensus/header-rules.ts';
import type { CheckpointStore } from '../node/checkpoint.ts';
import { SimEnv } from './env.ts';
import { SimTransport, type SimNetwork } from './network.ts';
import type { Random } from './random.ts';
import type { Scheduler } from './scheduler.ts';

export type Role = 'honest' | 'garbage' | 'tamperer' | 'liar' | 'selfish' | 'freerider' | 'flooder' | 'sybil' | 'timewarper' | 'equivocator' | 'withholder' | 'replayer' | 'eclipser' | 'capturer';

export interface SimNodeSpec {
  readonly id: string;
  readonly role: Role;
  /** Share of the network's hash power (0: does not mine). */
  readonly hashShare: number;
  /** Simulated ms after the start when the node first starts. */
  readonly joinAtMs: number;
  /** When it leaves for good (undefined: stays). */
  readonly leaveAtMs?: number;
  readonly skewMs: number;
  /** A key index for its coinbase. */
  readonly minerKey: number;
  /** Keeps the bodies of only this many blocks below its tip (node/pruner.ts); undefined keeps all. */
  readonly pruneKeep?: number;
  /** Its uplink (bytes per ms; default the network's). */
  readonly uplinkBytesPerMs?: number;
  /** The nodes it bootstraps off (default: up to two that were there before it). */
  readonly bootstrapTo?: readonly string[];
  /** Its serving budgets (default the node's). */
  readonly serving?: Partial<ServingLimits>;
  /** Joins by snapshot sync when it starts at genesis (node/snapshot-sync.ts). */
  readonly snapshotSync?: boolean;
  /** State tree nodes below the top it keeps in memory (default the node's). */
  readonly cachedTreeNodes?: number;
  /**
   * Starts first with a checkpoint of the honest chain (`cairn node --checkpoint`), as an operator
   * following the README does: World.startNode reads it off a trusted node.
   */
  readonly checkpointed?: boolean;
}

/**
 * One signature checker for every simulated node, with the pool's verdicts. A verdict is a pure
 * function of (signature, key, message), so one computed for a node holds for all of them: ten
 * nodes checking the same transaction pay for one check, as ten machines would each pay for
 * their own in parallel. Bounded, oldest first.
 */
class SharedVerdicts implements SignatureVerifier {
  private readonly inner = new InlineVerifier();
  private readonly verdicts = new BoundedMap<string, boolean>(200_000);

  async verify(items: readonly { signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array }[]): Promise<boolean[]> {
    const out: boolean[] = new Array(items.length);
    const todo: number[] = [];
    const keys = items.map((it) => `${toHex(it.signature)}:${toHex(it.publicKey)}:${toHex(sha256(it.message))}`);
    keys.forEach((k, i) => {
      const known = this.verdicts.get(k);
      if (known === undefined) todo.push(i);
      else out[i] = known;
    });
    const fresh = await this.inner.verify(todo.map((i) => items[i]!));
    todo.forEach((i, k) => {
      out[i] = fresh[k]!;
      this.verdicts.set(keys[i]!, fresh[k]!);
    });
    return out;
  }
}

const verifier = new SharedVerdicts();

/**
 * A node of the simulated network across its lives: its disk survives crashes, everything else
 * (the CairnNode, its Env and transport) is made anew at each start. A crash drops what its
 * store had not yet written and every timer it had set.
 */
export class SimNode {
  readonly spec: SimNodeSpec;
  readonly disk = new MemoryDisk();
  /** Where its check of the history below a snapshot keeps its own chain (node/history-check.ts). */
  readonly historyDisk = new MemoryDisk();
  node: CairnNode | undefined;
  transport: SimTransport | undefined;
  /** Its bans, kept across its lives as a real node keeps them in its datadir. */
  private bans: readonly BanRecord[] = [];
  private readonly banStore: BanStore = {
    load: async () => this.bans,
    save: async (bans) => void (this.bans = [...bans]),
  };
  /** The checkpoint it holds, kept across its lives as a real node keeps it in its datadir. */
  private checkpoint: Checkpoint | undefined;
  private readonly checkpointStore: CheckpointStore;
  private env: SimEnv | undefined;
  private kv: MemoryKv | undefined;
  private historyKv: MemoryKv | undefined;
  /** Starts and crashes, for the trace. */
  lives = 0;
  gone = false;

  constructor(spec: SimNodeSpec) {
    this.spec = spec;
    this.checkpointStore = {
      datadir: `${spec.id}'s datadir`,
      read: () => this.checkpoint,
      write: async (checkpoint) => void (this.checkpoint = checkpoint),
    };
  }

  get id(): string {
    return this.spec.id;
  }

  get up(): boolean {
    return this.node !== undefined;
  }

  get honest(): boolean {
    return this.spec.role === 'honest';
  }

  async start(o: {
    scheduler: Scheduler;
    net: SimNetwork;
    rng: Random;
    params: ChainParams;
    bootstrap: readonly string[];
    mempool: Partial<MempoolPolicy>;
    reorgDepth: number;
    window: number;
    /** Snapshot heights are its multiples (default the node's). */
    snapshotInterval?: number;
    /** Called once the node has its chain and peers, before its transport carries anything. */
    onNode: (node: CairnNode) => void;
    /** Awaited after onNode, before the transport is made: what the node must hold before any peer reaches it. */
    beforeTransport?: (node: CairnNode) => Promise<void>;
    /** Given to this start (`--checkpoint`): held, and kept for the next lives. */
    checkpoint?: Checkpoint;
  }): Promise<CairnNode> {
    this.lives++;
    const env = new SimEnv(o.scheduler, o.rng.fork(`env-${this.id}-${this.lives}`), this.spec.skewMs);
    // A write reaches the disk 1-3 ms after it is made: a crash can fall in between.
    const diskRng = o.rng.fork(`disk-${this.id}-${this.lives}`);
    const schedule = (complete: () => void) => void env.setTimeout(complete, 1 + diskRng.int(3));
    // A read answers 0-2 ms later, after whatever else runs meanwhile (a write's commit, a message,
    // a prefetch of the next block's tree paths), with the disk as of either end of that time.
    const readRng = o.rng.fork(`reads-${this.id}-${this.lives}`);
    const scheduleRead = (answer: (asOfCall: boolean) => void) => {
      const asOfCall = readRng.chance(0.5);
      env.setTimeout(() => answer(asOfCall), readRng.int(3));
    };
    const kv = this.disk.open(schedule, scheduleRead);
    const node = new CairnNode({
      params: o.params,
      env,
      openStore: async () => kv,
      historyStore: {
        open: async () => (this.historyKv = this.historyDisk.open(schedule, scheduleRead)),
        remove: async () => this.historyDisk.clear(),
      },
      createTransport: async (gate) => {
        o.onNode(node);
        if (o.beforeTransport) await o.beforeTransport(node);
        const t = o.net.attach(this.id, gate);
        this.transport = t;
        return t;
      },
      verifier,
      bootstrap: o.bootstrap,
      mempool: o.mempool,
      reorgDepth: o.reorgDepth,
      window: o.window,
      pruneKeep: this.spec.pruneKeep,
      snapshotSync: this.spec.snapshotSync,
      cachedTreeNodes: this.spec.cachedTreeNodes,
      snapshotInterval: o.snapshotInterval,
      checkpoint: o.checkpoint,
      checkpointStore: this.checkpointStore,
      statusIntervalMs: 15_000,
      banSeconds: 600,
      banStore: this.banStore,
      connectionLimits: { limitLoopback: true },
      serving: this.spec.serving,
      // Off for every third life: the next life then rebuilds the index from scratch in the
      // background, through whatever reorganisations and crashes the seed brings.
      addressIndex: this.lives % 3 !== 2,
    });
    this.env = env;
    this.kv = kv;
    await node.start();
    this.node = node;
    return node;
  }

  /** Tree nodes its lives read from the store below the top, and read ahead (TreeStore.prefetch). */
  readonly treeReads = { nodes: 0, prefetched: 0 };

  private countTreeReads(): void {
    const reads = this.node?.db.treeReads;
    if (!reads) return;
    this.treeReads.nodes += reads.nodes;
    this.treeReads.prefetched += reads.prefetched;
  }

  /** A kill -9: unwritten batches are lost, timers never fire, peers see the connections drop. */
  crash(): void {
    if (!this.env) return;
    this.countTreeReads();
    this.env.kill();
    this.kv?.crash();
    this.historyKv?.crash();
    this.transport?.goDown();
    this.node = undefined;
    this.env = undefined;
    this.kv = undefined;
    this.historyKv = undefined;
    this.transport = undefined;
  }

  /** A clean stop (SIGTERM). */
  async stop(): Promise<void> {
    const node = this.node;
    if (!node) return;
    this.countTreeReads();
    this.node = undefined;
    await node.stop();
    this.env?.kill();
    this.env = undefined;
    this.kv = undefined;
    this.historyKv = undefined;
    this.transport = undefined;
  }
}
