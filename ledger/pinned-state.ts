import { layout } from './layout.ts';
import type { KvSnapshot } from './kv.ts';
import type { TreeNodeReader } from './smt.ts';
import { decodeUndo, type UndoRecord } from './state.ts';
import { STORED_TREE_DEPTH, type TopPin } from './tree-memory.ts';

/**
 * The state tree and the undo records as they were when pinned (ChainDB.pinState), however many
 * blocks connect after: what a state proof below the tip rolls back from while imports go on. The
 * tree's top is read from its pin, the rest from a snapshot of the store; nothing is cached, since
 * the tip's caches hold the tip's nodes. Close it however the reading ends: an open one keeps every
 * version of what is written after it, in memory and in LevelDB.
 */
export class PinnedState implements TreeNodeReader {
  private readonly store: KvSnapshot;
  private readonly top: TopPin;
  private closed = false;

  constructor(store: KvSnapshot, top: TopPin) {
    this.store = store;
    this.top = top;
  }

  async readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = new Array(ids.length);
    const stored: number[] = [];
    ids.forEach((id, i) => {
      if (id.charCodeAt(0) < STORED_TREE_DEPTH) out[i] = this.top.get(id);
      else stored.push(i);
    });
    if (stored.length === 0) return out;
    const values = await this.store.getMany(stored.map((i) => layout.stateNode(ids[i]!)));
    stored.forEach((i, k) => (out[i] = values[k]));
    return out;
  }

  /** A block's undo data, if the store held it when pinned. */
  async getUndo(hash: Uint8Array): Promise<UndoRecord[] | undefined> {
    const bytes = await this.store.get(layout.undo(hash));
    return bytes && decodeUndo(bytes);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.top.release();
    await this.store.close();
  }
}
