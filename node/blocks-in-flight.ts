import { toHex } from '../ledger/bytes.ts';
import type { BlockOutcome } from '../consensus/chain.ts';
import type { SaneBlock } from '../consensus/sanity.ts';

/**
 * Compact blocks between their header's check and the end of their import, by hash: those being
 * rebuilt (transactions fetched from their forwarder), and those forwarded or announced before
 * their import (BIP 152) while it runs. A child that arrives meanwhile waits for its parent here
 * rather than for a sync, transactions such a block lets in wait for it, and peers we forwarded a
 * block to can fetch its transactions from us until it is in.
 */
export class BlocksInFlight {
  /**
   * The rebuilds of each header under way: one per forwarder (another's short ids are another
   * message), all of them one entry, `done` once the block is in or every one of them has ended.
   */
  private readonly rebuilding = new Map<string, { running: number; done: Promise<void>; end: () => void }>();
  private readonly forwarding = new Map<string, { block: SaneBlock; settled: Promise<void> }>();

  /** Whether the block `hash` is being rebuilt or imported after it went out. */
  has(hash: string): boolean {
    return this.rebuilding.has(hash) || this.forwarding.has(hash);
  }

  /** Resolves once the block `hash` is rebuilt, and imported if it went out, however either ended. */
  async settled(hash: string): Promise<void> {
    await this.rebuilding.get(hash)?.done;
    await this.forwarding.get(hash)?.settled;
  }

  /**
   * Runs `rebuild`, the block `hash` counted as being rebuilt until it ends, or until any rebuild
   * of it ends with the block in (`landed`: imported, or forwarded and importing). A second
   * forwarder's rebuild of the same header, still waiting on that forwarder, keeps no child and no
   * transaction waiting once the first brought the block in.
   */
  async rebuild<T>(hash: string, rebuild: () => Promise<T>, landed: () => boolean): Promise<T> {
    let entry = this.rebuilding.get(hash);
    if (!entry) {
      let end!: () => void;
      const done = new Promise<void>((resolve) => (end = resolve));
      entry = { running: 0, done, end };
      this.rebuilding.set(hash, entry);
    }
    entry.running++;
    try {
      return await rebuild();
    } finally {
      entry.running--;
      if (entry.running === 0 || this.forwarding.has(hash) || landed()) {
        if (this.rebuilding.get(hash) === entry) this.rebuilding.delete(hash);
        entry.end();
      }
    }
  }

  /**
   * Runs `announce` (if given: a block gossip already carried has none) and then `connect`, the
   * block kept here until the import ends. It is kept before it is announced, so that a peer's
   * getBlockTxs for it always finds it.
   */
  importAnnounced(block: SaneBlock, connect: () => Promise<BlockOutcome>, announce?: () => Promise<void>): Promise<BlockOutcome> {
    const hash = toHex(block.header.hash);
    let settle!: () => void;
    this.forwarding.set(hash, { block, settled: new Promise<void>((resolve) => (settle = resolve)) });
    return (async () => {
      try {
        void announce?.();
        return await connect();
      } finally {
        this.forwarding.delete(hash);
        settle();
      }
    })();
  }

  /** The bytes of a block announced and still importing, if `hash` is one. */
  forwardedBytes(hash: Uint8Array): Uint8Array | undefined {
    return this.forwarding.get(toHex(hash))?.block.bytes;
  }

  /** Resolves once every block in flight now is in; undefined if none is. */
  all(): Promise<void> | undefined {
    if (this.rebuilding.size === 0 && this.forwarding.size === 0) return undefined;
    const rebuilding = [...this.rebuilding.values()].map((r) => r.done);
    return Promise.all(rebuilding)
      .then(() => Promise.all([...this.forwarding.values()].map((f) => f.settled)))
      .then(() => undefined);
  }
}
