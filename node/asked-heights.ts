import { DEFAULT_SERVING_LIMITS } from './serving-limits.ts';
import { TransportError } from './transport.ts';

/**
 * The block heights this node asked each peer for on its connection, as that peer counts what it
 * served (node/serving.ts): past its repeat allowance, a block asked for again is a re-download,
 * and an honest server answers a request only once its re-download trickle holds the re-downloads
 * in it, less one block: a batch of them larger than the trickle's burst would be answered busy
 * for ever. So a batch asked again of a peer past the allowance is asked one block a request
 * (node/body-download.ts), which always fits once the trickle is above zero.
 *
 * Counted from above: every height of a batch asked and not answered busy is marked, whether or
 * not the block was sent (a timed-out answer may have been), so that this count of asks again is
 * never below the server's.
 */
export class AskedHeights {
  private readonly byPeer = new Map<string, { marked: Uint8Array; again: number }>();

  /** `request` asks `peer` for heights [from, from + count): recorded once it answers other than busy (which serves nothing). */
  counting<T>(peer: string, from: number, count: number, request: Promise<T>): Promise<T> {
    return request.then(
      (answer) => (this.record(peer, from, count), answer),
      (err: unknown) => {
        if (!(err instanceof TransportError && err.code === 'TRANSPORT_BUSY')) this.record(peer, from, count);
        throw err;
      },
    );
  }

  private record(peer: string, from: number, count: number): void {
    let asked = this.byPeer.get(peer);
    if (!asked) this.byPeer.set(peer, (asked = { marked: new Uint8Array(0), again: 0 }));
    const end = from + count;
    if (end >> 3 >= asked.marked.length) {
      const grown = new Uint8Array(Math.max((end >> 3) + 1, asked.marked.length * 2, 1024));
      grown.set(asked.marked);
      asked.marked = grown;
    }
    for (let h = from; h < end; h++) {
      const bit = 1 << (h & 7);
      if (asked.marked[h >> 3]! & bit) asked.again++;
      else asked.marked[h >> 3]! |= bit;
    }
  }

  /**
   * Whether `peer`'s server may count blocks of heights [from, from + count) as re-downloads: this
   * node asked it for one of them before, and for as many blocks again as its allowance.
   */
  reDownloads(peer: string, from: number, count: number): boolean {
    const asked = this.byPeer.get(peer);
    if (!asked || asked.again < DEFAULT_SERVING_LIMITS.repeatAllowance) return false;
    for (let h = from; h < from + count; h++) if ((asked.marked[h >> 3] ?? 0) & (1 << (h & 7))) return true;
    return false;
  }

  /** The connection ended: the peer's count starts over, as its server's does. */
  forget(peer: string): void {
    this.byPeer.delete(peer);
  }
}
