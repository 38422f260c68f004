import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { toHex } from '../../ledger/bytes.ts';
import type { BlockHeader } from '../../ledger/block.ts';
import type { HeaderChainStart } from '../../consensus/headers.ts';
import { blockWork } from '../../consensus/pow.ts';

/** Headers kept whole (with their chain's total work): reorganisations and proofs reach this far back. */
export const RECENT_HEADERS = 2048;

interface Recent {
  readonly header: BlockHeader;
  readonly totalWork: bigint;
}

/**
 * A light client's header chain, compact: the hash of every header in a file (32 bytes a height),
 * and only the last RECENT_HEADERS headers in memory, each with its chain's total work. A
 * million-header chain is a 32 MB file and a few hundred kilobytes of memory. Everything here has
 * been checked (consensus/headers.ts HeaderChainCheck) before it is appended: this only keeps it.
 */
export class LightHeaders {
  private readonly fd: number;
  private readonly ring: (Recent | undefined)[] = new Array(RECENT_HEADERS);
  /** Height of recent headers by hash (hex), for finding where a peer's chain forks from ours. */
  private readonly heights = new Map<string, number>();
  private top = -1;
  /** Block 1's timestamp: ASERT's anchor, needed for every target after it. */
  private anchor: number | undefined;

  /** Starts a chain at `genesis` in a new (or emptied) file at `path`. */
  constructor(path: string, genesis: BlockHeader) {
    this.fd = openSync(path, 'w+');
    this.append([genesis], [blockWork(genesis.target)]);
  }

  get height(): number {
    return this.top;
  }

  get tip(): Recent {
    return this.ring[this.top % RECENT_HEADERS]!;
  }

  get anchorTimestamp(): number | undefined {
    return this.anchor;
  }

  /** The whole header at `height`, if it is recent enough to be kept. */
  recent(height: number): Recent | undefined {
    if (height < 0 || height > this.top || height <= this.top - RECENT_HEADERS) return undefined;
    return this.ring[height % RECENT_HEADERS];
  }

  /** The hash of the main-chain header at `height`. */
  hashAt(height: number): Uint8Array | undefined {
    if (height < 0 || height > this.top) return undefined;
    const kept = this.recent(height);
    if (kept) return kept.header.hash;
    const out = new Uint8Array(32);
    return readSync(this.fd, out, 0, 32, height * 32) === 32 ? out : undefined;
  }

  /** The height of a recent header by its hash. */
  heightOf(hash: Uint8Array): number | undefined {
    const h = this.heights.get(toHex(hash));
    return h !== undefined && this.recent(h)?.header.hash && toHex(this.recent(h)!.header.hash) === toHex(hash) ? h : undefined;
  }

  /** Main-chain hashes from the tip back to genesis, dense then doubling, with their heights. */
  locator(): { hashes: Uint8Array[]; heights: Map<string, number> } {
    const hashes: Uint8Array[] = [];
    const heights = new Map<string, number>();
    let step = 1;
    for (let h = this.top; ; h -= step) {
      const at = Math.max(h, 0);
      const hash = this.hashAt(at)!;
      hashes.push(hash);
      heights.set(toHex(hash), at);
      if (at === 0) return { hashes, heights };
      if (hashes.length >= 10) step *= 2;
    }
  }

  /** What checking the children of the header at `height` needs, if it is recent enough. */
  startAt(height: number): HeaderChainStart | undefined {
    const at = this.recent(height);
    if (!at || (height >= 10 && !this.recent(height - 10))) return undefined;
    const recentTimes: number[] = [];
    for (let h = Math.max(0, height - 10); h <= height; h++) recentTimes.push(this.recent(h)!.header.timestamp);
    return { header: at.header, totalWork: at.totalWork, anchorTimestamp: height >= 1 ? this.anchor : undefined, recentTimes };
  }

  /** Appends checked headers that follow the tip, with each one's chain total work. */
  append(headers: readonly BlockHeader[], totalWork: readonly bigint[]): void {
    headers.forEach((header, i) => {
      if (header.height !== this.top + 1) throw new RangeError(`header ${header.height} does not follow ${this.top}`);
      const old = this.ring[header.height % RECENT_HEADERS];
      if (old) this.heights.delete(toHex(old.header.hash));
      this.ring[header.height % RECENT_HEADERS] = { header, totalWork: totalWork[i]! };
      this.heights.set(toHex(header.hash), header.height);
      writeSync(this.fd, header.hash, 0, 32, header.height * 32);
      if (header.height === 1) this.anchor = header.timestamp;
      this.top = header.height;
    });
  }

  /** Drops the headers above `height` (a reorganisation); `height` must be recent. */
  truncate(height: number): void {
    if (!this.recent(height)) throw new RangeError(`cannot go back to ${height}: only the last ${RECENT_HEADERS} headers are kept`);
    for (let h = this.top; h > height; h--) {
      const old = this.ring[h % RECENT_HEADERS];
      if (old) this.heights.delete(toHex(old.header.hash));
      this.ring[h % RECENT_HEADERS] = undefined;
    }
    if (height < 1) this.anchor = undefined;
    this.top = height;
  }

  /** Bytes of memory the kept headers take, roughly (for status and the benchmark). */
  get memoryBytes(): number {
    const kept = Math.min(this.top + 1, RECENT_HEADERS);
    return kept * (152 + 32 + 64 + 200);
  }

  close(): void {
    closeSync(this.fd);
  }
}
