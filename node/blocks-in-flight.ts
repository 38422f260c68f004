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
  private readonly rebuilding = new Map<string, Promise<void>>();
  private readonly forwarding = new Map<string, { block: SaneBlock; settled: Promise<void> }>();

  /** Whether the block `hash` is being rebuilt or imported after it went out. */
  has(hash: string): boolean {
    return this.rebuilding.has(hash) || this.forwarding.has(hash);
  }

  /** Resolves once the block `hash` is rebuilt, and imported if it went out, however either ended. */
  async settled(hash: string): Promise<void> {
    await this.rebuilding.get(hash);
    await this.forwarding.get(hash)?.settled;
  }

  /** Runs `rebuild`, the block `hash` counted as being rebuilt until it ends. */
  async rebuild<T>(hash: string, rebuild: () => Promise<T>): Promise<T> {
    let rebuilt!: () => void;
    const mine = new Promise<void>((resolve) => (rebuilt = resolve));
    this.rebuilding.set(hash, mine);
    try {
      return await rebuild();
    } finally {
      if (this.rebuilding.get(hash) === mine) this.rebuilding.delete(hash);
      rebuilt();
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
    const rebuilding = [...this.rebuilding.values()];
    return Promise.all(rebuilding)
      .then(() => Promise.all([...this.forwarding.values()].map((f) => f.settled)))
      .then(() => undefined);
  }
}
