import { bytesEqual, toHex } from '../ledger/bytes.ts';
import type { Account } from '../ledger/state.ts';
import type { SnapshotInfo } from '../ledger/snapshot-store.ts';
import type { ChunkEntry } from '../ledger/smt-range.ts';
import type { Chain } from '../consensus/chain.ts';
import { nextTurn, type Env } from './env.ts';
import type { NetworkNames } from './protocols.ts';
import type { Serve } from './serving.ts';
import { GET_SNAPSHOT_CHUNK_MAX_BYTES, decodeGetSnapshotChunk, encodeSnapshotChunk } from './snapshot-wire.ts';

/**
 * Snapshot heights are the multiples of this (docs/PROTOCOL.md, "Snapshot sync"): fixed, so every
 * serving node keeps the same ones and a joining node's pivot is no moving target. A network
 * convention like the reorg depth (NodeParts.snapshotInterval; tests use small ones).
 */
export const DEFAULT_SNAPSHOT_INTERVAL = 10_000;
const SERVE_TIMEOUT_MS = 10_000;

/**
 * The pivot a joining node picks when the best header chain it checked ends at `bestHeight`: the
 * highest snapshot height at least the reorg depth below it, so that no reorganisation the node
 * follows reaches below the state it starts from. Undefined when the chain is too short for one.
 */
export function pivotHeight(bestHeight: number, interval: number, reorgDepth: number): number | undefined {
  const pivot = Math.floor((bestHeight - reorgDepth) / interval) * interval;
  return pivot >= interval ? pivot : undefined;
}

/** The snapshot heights a serving node at `tipHeight` keeps: the pivot joining nodes pick now, and those they will pick next. */
export function keptSnapshotHeights(tipHeight: number, interval: number, reorgDepth: number): number[] {
  const lowest = pivotHeight(tipHeight, interval, reorgDepth) ?? interval;
  const out: number[] = [];
  for (let h = lowest; h <= tipHeight; h += interval) out.push(h);
  return out;
}

/**
 * The highest height a node serving snapshots may prune to: below the lowest snapshot it keeps,
 * whose body a joining node picks as its pivot and asks it for. Pruned at the reorg depth it would
 * be gone, and a network of such nodes could take no one in. Infinity while it keeps none.
 */
export function snapshotPruneLimit(tipHeight: number, interval: number, reorgDepth: number): number {
  const pivot = keptSnapshotHeights(tipHeight, interval, reorgDepth)[0];
  return pivot === undefined ? Infinity : pivot - 1;
}

export interface SnapshotKeeperOptions {
  readonly chain: Chain;
  readonly env: Env;
  readonly interval: number;
  /**
   * While this says so (the node is catching up), no copy is made: the tip is about to move far,
   * and a copy costs O(accounts). The owner calls `schedule()` when it is done.
   */
  readonly busy?: () => boolean;
  readonly log: (level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>) => void;
}

/**
 * Keeps copies of the state at the snapshot heights joining nodes may pick (ledger/snapshot-store.ts),
 * in the background, never inside a block's commit: when the tip passes a snapshot height, the
 * import is held only while a LevelDB iterator over the accounts is opened (its implicit snapshot
 * pins the tip's state), then the accounts are read from it at leisure, the undo records of the
 * blocks above the snapshot height put back the values they had there, and the copy is written in
 * batches, its root checked against the snapshot block's state root. Copies no longer kept are dropped.
 */
export class SnapshotKeeper {
  private readonly o: SnapshotKeeperOptions;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** The heights last logged as kept. */
  private told = '';
  private readonly onTip = () => this.schedule();

  constructor(o: SnapshotKeeperOptions) {
    this.o = o;
  }

  start(): void {
    this.o.chain.on('tip', this.onTip);
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.o.chain.off('tip', this.onTip);
    await this.running;
  }

  /** Resolves once every snapshot wanted now is made: for tests. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  schedule(): void {
    if (this.stopped || this.o.busy?.()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const wanted = keptSnapshotHeights(this.o.chain.tip.height, this.o.interval, this.o.chain.reorgDepth);
    if (wanted.length === 0 && this.o.chain.tip.height < this.o.interval) return; // nothing to keep, nothing kept
    this.running = nextTurn(this.o.env)
      .then(() => this.run())
      .catch((err: Error) => {
        if (!this.stopped) this.o.log('warn', `snapshot not made: ${err.message}`);
      })
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.schedule();
        }
      });
  }

  private async run(): Promise<void> {
    const { chain } = this.o;
    const snapshots = chain.db.snapshots;
    const wanted = keptSnapshotHeights(chain.tip.height, this.o.interval, chain.reorgDepth);
    const have = await snapshots.list();
    for (const s of have) if (!wanted.includes(s.height)) await snapshots.drop(s.height);
    for (const height of wanted.reverse()) {
      if (this.stopped) return;
      const existing = have.find((s) => s.height === height);
      const hash = await chain.byHeight.hashAt(height);
      if (!hash) continue;
      if (existing && bytesEqual(existing.hash, hash) && existing.marksCrowded) continue;
      const made = await this.make(height);
      if (made) this.o.log('info', 'snapshot made', { height, accounts: made });
    }
    const kept = (await snapshots.list()).map((s) => s.height);
    if (kept.join() !== this.told) this.o.log('info', 'snapshots kept', { heights: kept });
    this.told = kept.join();
  }

  private async make(height: number): Promise<number | undefined> {
    // Between batches imports go on; a stop ends the copy there (the next open clears what it wrote).
    const pause = () => (this.stopped ? Promise.reject(new Error('the node is stopping')) : nextTurn(this.o.env));
    return (await makeSnapshot(this.o.chain, height, pause))?.accounts;
  }
}

/**
 * Makes the copy of the state at main-chain `height` (ledger/snapshot-store.ts), or undefined
 * when the store no longer has the undo data to reach back there. Imports are held only while
 * the accounts' iterator opens; `pause` runs between batches of the copy.
 */
export async function makeSnapshot(chain: Chain, height: number, pause: () => Promise<void>): Promise<SnapshotInfo | undefined> {
  const db = chain.db;
  // Held still only while the iterator opens: its snapshot is the tip's state.
  const pinned = await chain.withImportsPaused(async () => {
    const tip = chain.tip;
    if (height > tip.height || height < db.history.prunedHeight || height < db.history.stateBase) return undefined;
    const [header] = await chain.byHeight.headers(height, 1);
    const above = await chain.byHeight.hashes(height + 1, tip.height - height);
    return header && { header, above, accounts: await db.pinnedAccounts() };
  });
  if (!pinned) return undefined;
  try {
    // The values at `height` of the accounts the blocks above it changed: the undo record of the
    // lowest block that touched each (absent: the account did not exist yet).
    const back = new Map<string, Account | undefined>();
    for (let i = pinned.above.length - 1; i >= 0; i--) {
      const undo = await db.getUndo(pinned.above[i]!);
      if (!undo) throw new Error(`no undo data for block ${toHex(pinned.above[i]!)} (a reorganisation meanwhile?)`);
      for (const u of undo) back.set(toHex(u.address), u.previous);
    }
    const accounts = async function* (): AsyncGenerator<ChunkEntry> {
      for await (const a of pinned.accounts) {
        const key = toHex(a.address);
        if (!back.has(key)) yield a;
        else if (back.get(key)) yield { address: a.address, account: back.get(key)! };
      }
    };
    return await db.snapshots.make(height, pinned.header.hash, pinned.header.stateRoot, accounts(), pause);
  } finally {
    // A copy that fails (a reorganisation took a block above away, a stop) must not leave the
    // store's snapshot open for the rest of the node's life.
    await pinned.accounts.close();
  }
}

/**
 * Serves getSnapshotChunk (node/snapshot-wire.ts) from the copies the keeper made, within the
 * asker's budgets: `none` for a block of which no complete copy is kept here (the copy's record is
 * read again after the answer is made, and its version compared, so a copy dropped or made again
 * meanwhile is never half served). A crowded position is answered `split` from its mark, nothing
 * else read; any other reads the accounts it sends (and, for a position no split leads to, at most
 * as many again): the asker's byte budget pays for what is read.
 */
export async function serveSnapshots(chain: Chain, serve: Serve, names: NetworkNames, onBadRequest: (peer: string, err: unknown) => void): Promise<void> {
  const snapshots = chain.db.snapshots;
  const none = encodeSnapshotChunk({ kind: 'none' });
  const split = encodeSnapshotChunk({ kind: 'split' });
  await serve(
    'snapshot',
    names.snapshot,
    async (req) => {
      const { height, hash, position } = decodeGetSnapshotChunk(req);
      const version = snapshots.version(height);
      const info = await snapshots.get(height);
      if (!info || !bytesEqual(info.hash, hash) || !info.marksCrowded) return none;
      const chunk = await snapshots.chunk(height, position);
      const answer = chunk === 'split' ? split : encodeSnapshotChunk({ kind: 'chunk', ...chunk });
      return (await snapshots.get(height)) && snapshots.version(height) === version ? answer : none;
    },
    { timeoutMs: SERVE_TIMEOUT_MS, maxBytes: GET_SNAPSHOT_CHUNK_MAX_BYTES, onBadRequest },
  );
}
