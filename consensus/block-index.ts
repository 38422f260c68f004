import { Reader, Writer, bigIntToBytes, bytesEqual, bytesToBigInt, toHex } from '../ledger/bytes.ts';
import { HEADER_BYTES, decodeHeader, type BlockHeader } from '../ledger/block.ts';
import { blockWork } from './pow.ts';
import { medianOf } from './header-rules.ts';

/** The block's body is in the store. */
export const HAVE_DATA = 1;
/** The block, or an ancestor, broke a rule that is a fact about its header: never try it again. */
export const INVALID = 2;

/**
 * What consensus knows about one block it has accepted: the header, a link to the parent, the
 * chain's total work up to here and a status. Entries live in memory only for the recent window
 * of the chain and the side branches off it (consensus/chain-index.ts); the parent link of the
 * window's lowest entry is cut, so nothing older stays reachable. Fork choice, median time and
 * fork points are walks over these links inside the window, with no database reads.
 */
export class BlockIndexEntry {
  readonly header: BlockHeader;
  readonly hash: Uint8Array;
  readonly hashHex: string;
  private link: BlockIndexEntry | undefined;
  readonly totalWork: bigint;
  /** Arrival order, for "on equal work the first seen stays". */
  readonly seq: number;
  /** Timestamp of block 1 of this chain: the anchor of the difficulty schedule. */
  readonly anchorTimestamp: number | undefined;
  status: number;

  /**
   * A child of `parent` (genesis has none). `stored`: the total work and anchor of an entry
   * read back from its record, for the window's lowest entry, whose parent is not in memory.
   */
  constructor(header: BlockHeader, parent: BlockIndexEntry | undefined, status: number, seq: number, stored?: { totalWork: bigint; anchorTimestamp: number | undefined }) {
    this.header = header;
    this.hash = header.hash;
    this.hashHex = toHex(header.hash);
    this.link = parent;
    this.totalWork = stored?.totalWork ?? (parent?.totalWork ?? 0n) + blockWork(header.target);
    this.status = status;
    this.seq = seq;
    this.anchorTimestamp = header.height === 1 ? header.timestamp : stored ? stored.anchorTimestamp : parent?.anchorTimestamp;
  }

  /** An entry from its stored record; `anchorTimestamp` is needed only when `parent` is not given. */
  static fromRecord(r: IndexRecord, parent: BlockIndexEntry | undefined, anchorTimestamp: number | undefined): BlockIndexEntry {
    return new BlockIndexEntry(r.header, parent, r.status, r.seq, { totalWork: r.totalWork, anchorTimestamp: parent ? parent.anchorTimestamp : anchorTimestamp });
  }

  /** The parent, while it is in memory (undefined for genesis and for the window's lowest entry). */
  get parent(): BlockIndexEntry | undefined {
    return this.link;
  }

  /** Makes this the window's lowest entry: what is below it may be collected. */
  detach(): void {
    this.link = undefined;
  }

  /** Links the window's lowest entry to the parent just loaded below it. */
  attach(parent: BlockIndexEntry): void {
    if (!bytesEqual(parent.hash, this.header.prevHash)) throw new Error(`entry ${parent.hashHex} is not the parent of ${this.hashHex}`);
    this.link = parent;
  }

  get height(): number {
    return this.header.height;
  }

  get isValid(): boolean {
    return (this.status & INVALID) === 0;
  }

  /** The ancestor at `height` (this entry itself when the heights match), if it is in memory. */
  ancestor(height: number): BlockIndexEntry | undefined {
    let e: BlockIndexEntry | undefined = this;
    while (e && e.height > height) e = e.parent;
    return e && e.height === height ? e : undefined;
  }

  /** The index record; `status` for a record written in the same unit as the change it describes. */
  encode(status = this.status): Uint8Array {
    return encodeIndexRecord({ header: this.header, totalWork: this.totalWork, status, seq: this.seq });
  }
}

/** header ‖ total work (32) ‖ status (1) ‖ arrival order (u64): what the store keeps of an entry. */
export function encodeIndexRecord(r: IndexRecord): Uint8Array {
  return new Writer(HEADER_BYTES + 32 + 1 + 8).bytes(r.header.bytes).bytes(bigIntToBytes(r.totalWork, 32)).u8(r.status).u64(BigInt(r.seq)).finish();
}

export interface IndexRecord {
  readonly header: BlockHeader;
  readonly totalWork: bigint;
  readonly status: number;
  readonly seq: number;
}

export function decodeIndexRecord(bytes: Uint8Array): IndexRecord {
  const r = new Reader(bytes);
  const header = decodeHeader(r.bytes(HEADER_BYTES, 'index header'));
  const totalWork = bytesToBigInt(r.bytes(32, 'index work'));
  const status = r.u8('index status');
  const seq = Number(r.u64('index seq'));
  r.end('index record');
  return { header, totalWork, status, seq };
}

/** The last common block of two entries' chains, which must be in memory (the window holds every fork point it allows). */
export function findForkPoint(a: BlockIndexEntry, b: BlockIndexEntry): BlockIndexEntry {
  let x: BlockIndexEntry | undefined = a;
  let y: BlockIndexEntry | undefined = b;
  while (x && y && x.height > y.height) x = x.parent;
  while (x && y && y.height > x.height) y = y.parent;
  while (x && y && x !== y) {
    x = x.parent;
    y = y.parent;
  }
  if (!x || x !== y) throw new Error('entries share no ancestor in memory');
  return x;
}

/**
 * Median of the timestamps of `entry` and up to 10 blocks before it (Bitcoin's median time past).
 * The window keeps the 10 blocks below the lowest fork point it allows, so the walk never runs
 * out early for an entry a block may build on.
 */
export function medianTimePast(entry: BlockIndexEntry): number {
  const times: number[] = [];
  for (let e: BlockIndexEntry | undefined = entry; e && times.length < 11; e = e.parent) times.push(e.header.timestamp);
  return medianOf(times);
}
