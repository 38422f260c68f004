import { closeSync, constants, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { Reader, Writer, bigIntToBytes, bytesEqual, bytesToBigInt, toHex } from '../../ledger/bytes.ts';
import { HEADER_BYTES, decodeHeader, type BlockHeader } from '../../ledger/block.ts';
import { sha256 } from '../../ledger/hash.ts';
import { replaceFileSync } from '../durable-file.ts';
import type { HeaderChainStart } from '../../consensus/headers.ts';
import { blockWork } from '../../consensus/pow.ts';

/** Headers kept whole (with their chain's total work): reorganisations and proofs reach this far back. */
export const RECENT_HEADERS = 2048;

interface Recent {
  readonly header: BlockHeader;
  readonly totalWork: bigint;
}

/**
 * What each commit and a clean close leave beside the hashes file (`path.tip`) for the next start to go on from.
 * "CLT1" held block 1's timestamp alone, which nothing could check once block 1 was older than the
 * headers kept whole: a bad disk's flipped bit in it gave every later target wrong, and the client
 * banned every peer whose headers it checked. "CLT2" holds block 1's header, checked against the file.
 * "CLT3" ends in the SHA-256 of what comes before: its headers are written into the hashes file as
 * they are read (a kill may have cut a branch staged over them), so a flipped bit in one no longer
 * shows against the file, and a tip with a wrong state root would have every honest proof refused.
 */
const TIP_FILE_MAGIC = 0x434c5433; // "CLT3"

/** The last headers a commit or a clean close saved, with their chains' total work, checked against the hashes file. */
interface SavedTip {
  readonly recent: readonly Recent[];
  /** Block 1's header (none for a chain at genesis alone). */
  readonly anchor: BlockHeader | undefined;
}

/**
 * A header chain over the hashes file: the last RECENT_HEADERS headers whole in a ring, every
 * hash by height in the file. LightHeaders keeps two: the committed chain, and a sync's staging.
 */
export class HeaderView {
  private readonly fd: number;
  private readonly ring: (Recent | undefined)[];
  /** Height of recent headers by hash (hex), for finding where a peer's chain forks from ours. */
  private readonly heights: Map<string, number>;
  private top: number;
  /** Block 1's header: its timestamp is ASERT's anchor, needed for every target after it. */
  private anchor: BlockHeader | undefined;
  /** The lowest height this view wrote to the file (Infinity: none). */
  lowestWrite = Infinity;
  constructor(fd: number, from?: HeaderView) {
    this.fd = fd;
    this.ring = from ? [...from.ring] : new Array(RECENT_HEADERS);
    this.heights = new Map(from?.heights);
    this.top = from?.top ?? -1;
    this.anchor = from?.anchor;
  }

  get height(): number {
    return this.top;
  }

  get tip(): Recent {
    return this.ring[this.top % RECENT_HEADERS]!;
  }

  get anchorTimestamp(): number | undefined {
    return this.anchor?.timestamp;
  }

  get anchorHeader(): BlockHeader | undefined {
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

  /**
   * Main-chain hashes from the tip back to genesis, dense then doubling, with their heights; and
   * the lowest a branch can be followed from (startAt: the 10 before it kept too). Without it, a
   * fork between that height and the next hash above it was answered from the one below, and
   * taken for one too deep to follow: any fork more than 1,031 below the tip, of 2,048 kept.
   */
  locator(): { hashes: Uint8Array[]; heights: Map<string, number> } {
    const at: number[] = [];
    for (let h = this.top, step = 1; h > 0; h -= step) {
      at.push(h);
      if (at.length >= 10) step *= 2;
    }
    at.push(0);
    const lowest = Math.max(0, this.top - RECENT_HEADERS + 11);
    if (!at.includes(lowest)) at.splice(at.findIndex((h) => h < lowest), 0, lowest);
    const hashes = at.map((h) => this.hashAt(h)!);
    return { hashes, heights: new Map(hashes.map((hash, i) => [toHex(hash), at[i]!])) };
  }

  /** What checking the children of the header at `height` needs, if it is recent enough. */
  startAt(height: number): HeaderChainStart | undefined {
    const at = this.recent(height);
    if (!at || (height >= 10 && !this.recent(height - 10))) return undefined;
    const recentTimes: number[] = [];
    for (let h = Math.max(0, height - 10); h <= height; h++) recentTimes.push(this.recent(h)!.header.timestamp);
    return { header: at.header, totalWork: at.totalWork, anchorTimestamp: height >= 1 ? this.anchor?.timestamp : undefined, recentTimes };
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
      this.lowestWrite = Math.min(this.lowestWrite, header.height);
      if (header.height === 1) this.anchor = header;
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

  /** Takes the headers last saved (by a commit or a clean close; checked against the file already) as the chain's last. */
  restore(recent: readonly Recent[], anchor: BlockHeader | undefined): void {
    for (const r of recent) {
      this.ring[r.header.height % RECENT_HEADERS] = r;
      this.heights.set(toHex(r.header.hash), r.header.height);
    }
    this.top = recent.at(-1)!.header.height;
    this.anchor = anchor;
  }

  /** The kept headers, oldest first. */
  kept(): Recent[] {
    const out: Recent[] = [];
    // Down to the first height not kept: after a branch to a shorter chain, those below the fork
    // kept before it, fewer than the ring holds (the heights above them it dropped).
    for (let h = this.top; h > this.top - RECENT_HEADERS && this.recent(h); h--) out.push(this.recent(h)!);
    return out.reverse();
  }
}

/**
 * A light client's header chain, compact: the hash of every header in a file (32 bytes a height),
 * and only the last RECENT_HEADERS headers in memory, each with its chain's total work. A
 * million-header chain is a 32 MB file and a few hundred kilobytes of memory. Everything here has
 * been checked (consensus/headers.ts HeaderChainCheck) before it is appended: this only keeps it.
 *
 * A sync appends to a staging (`stage()`), not to the chain: a peer's headers become the chain
 * (`commit()`) only once the peer has shown the work its status claimed, else they are dropped
 * (`rollback()`: the file cut back to the chain's top, any hash of it a branch overwrote put back).
 * Otherwise one peer's cheap chain, longer than the headers kept whole, staged as it was fetched
 * and then withheld at the end, stayed ours, and every honest chain forked too far back to follow.
 * The reads here (tip, proofs, status) are of the committed chain only; each commit, and a clean
 * close, saves it beside the file (whole or not at all, the hashes synced first), so the next
 * start goes on from its tip however the last one ended: saved at a clean close only, a kill
 * cost a sync from genesis again.
 */
export class LightHeaders {
  private readonly path: string;
  private readonly fd: number;
  private readonly genesis: BlockHeader;
  private committed: HeaderView;
  private staged: HeaderView | undefined;

  /**
   * Starts a chain at `genesis` in a new (or emptied) file at `path`; or, `from` the headers last
   * saved, goes on with the file cut back to their tip (LightHeaders.open checked the two agree
   * up to it; past it are a staging's hashes, or those of a commit a kill kept from being saved).
   */
  constructor(path: string, genesis: BlockHeader, from?: SavedTip) {
    this.path = path;
    // Saved, the file is kept, or made again (a saved tip of the whole chain needs none of it).
    this.fd = openSync(path, from ? constants.O_RDWR | constants.O_CREAT : 'w+', 0o600);
    this.genesis = genesis;
    this.committed = new HeaderView(this.fd);
    if (!from) this.committed.append([genesis], [blockWork(genesis.target)]);
    else {
      // Their hashes written again: a kill may have cut a branch staged over them.
      for (const r of from.recent) writeSync(this.fd, r.header.hash, 0, 32, r.header.height * 32);
      ftruncateSync(this.fd, (from.recent.at(-1)!.header.height + 1) * 32);
      this.committed.restore(from.recent, from.anchor);
    }
  }

  /** The chain back to genesis alone, the file with it (a chain below a new checkpoint: node/light/checkpoint.ts). */
  restart(): void {
    if (this.staged) throw new Error('a staging is open');
    ftruncateSync(this.fd, 0);
    this.committed = new HeaderView(this.fd);
    this.committed.append([this.genesis], [blockWork(this.genesis.target)]);
    this.save();
  }

  /**
   * The chain last saved at `path` (by a commit or a clean close), or a new one at `genesis` when
   * none holds (never saved, another network's, a kill mid-way through a branch that rewrote the
   * hashes saved): a restart then asks its peers only for the headers that came since, where it
   * asked for every one from genesis again, about a minute at a million headers (and 150 MB its
   * peers uploaded) before it could prove an account.
   */
  static open(path: string, genesis: BlockHeader): LightHeaders {
    let saved: SavedTip | undefined;
    try {
      saved = savedTipMatching(readFileSync(`${path}.tip`), path, genesis);
    } catch {
      saved = undefined; // none, or not one this code wrote for this file: start over
    }
    return new LightHeaders(path, genesis, saved);
  }

  get height(): number {
    return this.committed.height;
  }

  get tip(): Recent {
    return this.committed.tip;
  }

  /** The whole header at `height`, if it is recent enough to be kept. */
  recent(height: number): Recent | undefined {
    return this.committed.recent(height);
  }

  /** The hash of the main-chain header at `height`. */
  hashAt(height: number): Uint8Array | undefined {
    return this.committed.hashAt(height);
  }

  /** A copy of the chain for a sync to extend, reorganise, and then commit or roll back. One at a time. */
  stage(): HeaderView {
    if (this.staged) throw new Error('a staging is open already');
    this.staged = new HeaderView(this.fd, this.committed);
    return this.staged;
  }

  /** The staging becomes the chain; the file ends at its tip (a shorter, heavier branch leaves none of the old above it). */
  commit(): void {
    if (!this.staged) return;
    this.committed = this.staged;
    this.staged = undefined;
    ftruncateSync(this.fd, (this.committed.height + 1) * 32);
    this.save();
  }

  /**
   * The staging dropped: the file cut back to the chain's top, and the chain's hashes a staged
   * branch overwrote put back (a branch forks within the headers kept whole, so they are all at hand).
   */
  rollback(): void {
    const staged = this.staged;
    if (!staged) return;
    this.staged = undefined;
    ftruncateSync(this.fd, (this.committed.height + 1) * 32);
    for (let h = staged.lowestWrite; h <= this.committed.height; h++) writeSync(this.fd, this.committed.recent(h)!.header.hash, 0, 32, h * 32);
  }

  /** Bytes of memory the kept headers take, roughly (for status and the benchmark): the chain's and a staging's. */
  get memoryBytes(): number {
    const kept = (view: HeaderView | undefined) => (view ? Math.min(view.height + 1, RECENT_HEADERS) : 0);
    return (kept(this.committed) + kept(this.staged)) * (152 + 32 + 64 + 200);
  }

  /** Closes the file, with the committed headers saved beside it for the next start; a staging still open is dropped first. */
  async close(): Promise<void> {
    this.rollback();
    this.save();
    closeSync(this.fd);
  }

  /**
   * The committed headers saved beside the file, whole or not at all, once the hashes they name
   * are synced (else a power cut could keep the saved tip and lose hashes below it). Synchronous,
   * as the writes of the hashes are: a save under way while a sync rewrote them could name hashes
   * no longer there. One that fails (a full disk) costs the next start only the headers since the
   * last that held, or a sync from genesis.
   */
  private save(): void {
    const kept = this.committed.kept();
    const anchor = this.committed.anchorHeader;
    const w = new Writer(8 + (kept.length + 1) * (HEADER_BYTES + 32)).u32(TIP_FILE_MAGIC).u32(kept.length);
    for (const r of kept) w.bytes(r.header.bytes).bytes(bigIntToBytes(r.totalWork, 32));
    if (anchor) w.bytes(anchor.bytes);
    const body = w.finish();
    try {
      fsyncSync(this.fd);
      replaceFileSync(`${this.path}.tip`, new Writer(body.length + 32).bytes(body).bytes(sha256(body)).finish());
    } catch {
      // As the comment says: the tip saved before, checked against the file at the next start, or none.
    }
  }
}

/**
 * The headers in a saved tip, if they go on from the hashes file at `path`, on the chain of
 * `genesis`: consecutive, linked, each one's total work its parent's plus its own, the first a
 * child of the file's hash below it (or genesis), and block 1 the file's (its timestamp the
 * anchor). The file below them is as it was when they were saved: a staging forks within the
 * headers kept whole, whose lowest height never falls (restart() empties the file). At their
 * heights and above it may hold a branch staged over them, or a later commit whose save a kill
 * cut: the headers saved are written again, and the rest cut.
 */
function savedTipMatching(bytes: Uint8Array, path: string, genesis: BlockHeader): SavedTip | undefined {
  if (bytes.length < 40 || !bytesEqual(sha256(bytes.subarray(0, -32)), bytes.subarray(-32))) return undefined;
  const r = new Reader(bytes.subarray(0, -32));
  if (r.u32('tip magic') !== TIP_FILE_MAGIC) return undefined;
  const count = r.u32('count');
  if (count < 1 || count > RECENT_HEADERS) return undefined;
  const recent: Recent[] = [];
  for (let i = 0; i < count; i++) {
    const header = decodeHeader(r.bytes(HEADER_BYTES, 'header'));
    const totalWork = bytesToBigInt(r.bytes(32, 'total work'));
    const parent = recent.at(-1);
    if (parent && (header.height !== parent.header.height + 1 || !bytesEqual(header.prevHash, parent.header.hash) || totalWork !== parent.totalWork + blockWork(header.target))) return undefined;
    recent.push({ header, totalWork });
  }
  const first = recent[0]!.header;
  const top = recent.at(-1)!.header.height;
  const anchor = top >= 1 ? decodeHeader(r.bytes(HEADER_BYTES, 'block 1')) : undefined;
  r.end('saved tip');
  // All of them up to the window, or as many as a branch to a shorter chain left (kept()): its fork and the 10 before it at least.
  if (count > Math.min(top + 1, RECENT_HEADERS) || count < Math.min(top + 1, 11)) return undefined;
  if (first.height === 0 && (!bytesEqual(first.hash, genesis.hash) || recent[0]!.totalWork !== blockWork(genesis.target))) return undefined;
  if (anchor && (anchor.height !== 1 || !bytesEqual(anchor.prevHash, genesis.hash))) return undefined;
  if (anchor && first.height <= 1 && !bytesEqual(recent[1 - first.height]!.header.hash, anchor.hash)) return undefined;
  if (first.height === 0) return { recent, anchor }; // the whole chain: nothing of the file's is needed
  const fd = openSync(path, 'r');
  try {
    const below = new Uint8Array(32);
    if (readSync(fd, below, 0, 32, (first.height - 1) * 32) !== 32 || !bytesEqual(below, first.prevHash)) return undefined;
    const start = new Uint8Array(64); // the hashes of genesis and block 1
    if (first.height >= 2 && (readSync(fd, start, 0, 64, 0) !== 64 || !bytesEqual(start.subarray(0, 32), genesis.hash) || !bytesEqual(start.subarray(32), anchor!.hash))) return undefined;
  } finally {
    closeSync(fd);
  }
  return { recent, anchor };
}
