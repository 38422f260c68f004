import { Reader, Writer, bytesEqual, bytesToBigInt, toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { decodeBlock, type BlockHeader } from '../ledger/block.ts';
import type { ChainDB } from '../ledger/chaindb.ts';
import { genesisBlock, type ChainParams } from '../ledger/genesis.ts';
import { CHUNK_ENTRY_BYTES, MAX_CHUNK_ACCOUNTS, childPositions, positionsAt, encodeChunkPosition, encodeChunkProof, positionDepth, positionKey, readChunkPosition, readChunkProof, verifyChunk, type ChunkEntry, type ChunkProof } from '../ledger/smt-range.ts';
import { decodeAccount, encodeAccount } from '../ledger/state.ts';
import { HAVE_DATA, encodeIndexRecord } from './block-index.ts';
import { HeaderChainCheck } from './headers.ts';
import { blockWork } from './pow.ts';
import { checkBlockSanity } from './sanity.ts';
import type { Chain } from './chain.ts';

/**
 * A snapshot file (`cairn snapshot export` / `import`): the state at one main-chain block, with
 * what proves it, so a new datadir can start there without a peer (docs/PROTOCOL.md, "Snapshot
 * files"). Every header from block 1 to the pivot (checked as sync checks them: link, proof of
 * work, target, timestamps), the pivot block, and the state in chunks, each with its range proof
 * against the pivot header's state root, together covering every key exactly once:
 *
 *   "CAIRNSNP" ‖ 01 ‖ genesis hash (32) ‖ pivot height u32
 *   headers of heights 1 … pivot (152 each)
 *   u32 length ‖ the pivot block
 *   chunks in key order, each u32 length ‖ position ‖ u16 accounts ‖ (address ‖ account) × accounts ‖ chunk proof,
 *   then u32 0
 *
 * An import checks everything as it reads and installs only when all of it holds; a file that
 * does not is refused with the first thing that failed, and the datadir is left as it was.
 */
export const SNAPSHOT_MAGIC = new TextEncoder().encode('CAIRNSNP');
export const SNAPSHOT_FILE_VERSION = 1;
export const SNAPSHOT_HEAD_BYTES = 8 + 1 + 32 + 4;
/** The largest chunk a file may hold (the wire's limit). */
export const MAX_FILE_CHUNK_ACCOUNTS = MAX_CHUNK_ACCOUNTS;
/** The number of state keys (256 bits each). */
const ALL_KEYS = 1n << 256n;

export class SnapshotFileError extends CairnError {
  constructor(message: string) {
    super('SNAPSHOT_INVALID', message);
  }
}

const refuse = (message: string) => new SnapshotFileError(message);

export function encodeSnapshotHead(genesis: Uint8Array, height: number): Uint8Array {
  return new Writer(SNAPSHOT_HEAD_BYTES).bytes(SNAPSHOT_MAGIC).u8(SNAPSHOT_FILE_VERSION).bytes(genesis, 32).u32(height).finish();
}

/** The pivot height a file's head names; refused when it is not a snapshot file of this network. */
export function decodeSnapshotHead(bytes: Uint8Array, params: ChainParams): number {
  if (bytes.length < SNAPSHOT_HEAD_BYTES || !bytesEqual(bytes.subarray(0, 8), SNAPSHOT_MAGIC)) throw refuse('not a Cairn snapshot file');
  const r = new Reader(bytes.subarray(8, SNAPSHOT_HEAD_BYTES));
  const version = r.u8();
  if (version !== SNAPSHOT_FILE_VERSION) throw refuse(`snapshot file version ${version}, this cairn reads ${SNAPSHOT_FILE_VERSION}`);
  const genesis = r.bytes(32);
  const ours = genesisBlock(params).header.hash;
  if (!bytesEqual(genesis, ours)) throw refuse(`the snapshot is of another network (genesis ${toHex(genesis).slice(0, 16)}…), not "${params.name}" (genesis ${toHex(ours).slice(0, 16)}…)`);
  const height = r.u32();
  if (height < 1) throw refuse('a snapshot of the genesis block');
  return height;
}

export function encodeFileChunk(position: string, entries: readonly ChunkEntry[], proof: ChunkProof): Uint8Array {
  const p = encodeChunkPosition(position);
  const proofBytes = encodeChunkProof(proof);
  const w = new Writer(p.length + 2 + entries.length * CHUNK_ENTRY_BYTES + proofBytes.length).bytes(p).u8(entries.length >>> 8).u8(entries.length & 0xff);
  for (const e of entries) w.bytes(e.address, 20).bytes(encodeAccount(e.account));
  return w.bytes(proofBytes).finish();
}

export function decodeFileChunk(bytes: Uint8Array): { position: string; entries: ChunkEntry[]; proof: ChunkProof } {
  const r = new Reader(bytes);
  const position = readChunkPosition(r);
  const count = (r.u8('count') << 8) | r.u8('count');
  if (count > MAX_FILE_CHUNK_ACCOUNTS) throw refuse(`a chunk of ${count} accounts, above ${MAX_FILE_CHUNK_ACCOUNTS}`);
  const entries: ChunkEntry[] = [];
  for (let i = 0; i < count; i++) entries.push({ address: r.bytes(20, 'chunk address'), account: decodeAccount(r.bytes(16, 'chunk account')) });
  const proof = readChunkProof(r);
  r.end('snapshot file chunk');
  return { position, entries, proof };
}

/**
 * An import in progress into a store at genesis: fed the file's parts in order, checking each,
 * staging what holds (ledger/snapshot-join.ts), installing at `finish`. On any failure the caller
 * calls `discard`, and the store is as it was, unless the install had begun: then the next open
 * of the store finishes it.
 */
export class SnapshotImport {
  private readonly db: ChainDB;
  private readonly height: number;
  private readonly check: HeaderChainCheck;
  private pivot: { header: BlockHeader; totalWork: bigint } | undefined;
  private blockStored = false;
  /**
   * The first key no chunk covered yet: chunks come in key order, each starting where the last
   * ended (as an export writes them), so one number says what is covered, however deep the chunks
   * (a set of every chunk's ancestors, up to 255 each, grew with a file of deep ones).
   */
  private covered = 0n;

  private constructor(db: ChainDB, height: number, now: number) {
    this.db = db;
    this.height = height;
    const genesis = db.genesis.header;
    this.check = new HeaderChainCheck(db.params, { header: genesis, totalWork: blockWork(genesis.target), anchorTimestamp: undefined, recentTimes: [genesis.timestamp] }, now);
  }

  /** Starts an import of a snapshot at `height` (the file's head) into `db`, which must be at genesis. */
  static async start(db: ChainDB, height: number, now: number): Promise<SnapshotImport> {
    const tip = await db.storedTip();
    if (tip.height !== 0 && db.resumedInstall) {
      // A retry after a kill during the install: its own open just finished it, so the import is done.
      throw refuse(`the datadir holds the chain of a snapshot at height ${tip.height}, whose install a kill cut short and this open finished: start the node on it (cairn node)`);
    }
    if (tip.height !== 0) throw refuse(`the datadir already holds a chain (at height ${tip.height}): import into a new datadir`);
    // At genesis, a join is one a kill cut short before its install (ChainDB.open finished any
    // install already): an import's, or a snapshot sync's, whose node is stopped (it would hold
    // the store). What it staged goes, the pivot block with it, and this import starts over.
    const left = await db.join.state();
    if (left) await db.join.discard(left.hash);
    return new SnapshotImport(db, height, now);
  }

  /** The next headers, in height order from 1. */
  async headers(list: readonly BlockHeader[]): Promise<void> {
    let work = this.check.totalWork;
    try {
      this.check.extend(list);
    } catch (err) {
      throw refuse(`header ${this.check.tipHeight + 1}: ${(err as Error).message}`);
    }
    const staged = list.map((header) => {
      work += blockWork(header.target);
      if (header.height === this.height) this.pivot = { header, totalWork: work };
      return { height: header.height, hash: header.hash, record: encodeIndexRecord({ header, totalWork: work, status: 0, seq: 0 }) };
    });
    if (this.check.tipHeight > this.height) throw refuse('more headers than the pivot height');
    await this.db.join.stageHeaders(staged);
  }

  /** The pivot block, after every header. */
  async block(bytes: Uint8Array): Promise<void> {
    if (!this.pivot || this.check.tipHeight !== this.height) throw refuse(`the headers end at ${this.check.tipHeight}, before the pivot ${this.height}`);
    let block;
    try {
      block = decodeBlock(bytes);
      checkBlockSanity(block, this.db.params);
    } catch (err) {
      throw refuse(`the pivot block: ${(err as Error).message}`);
    }
    if (!bytesEqual(block.header.hash, this.pivot.header.hash)) throw refuse(`the pivot block is ${toHex(block.header.hash)}, not the block of the pivot header ${toHex(this.pivot.header.hash)}`);
    await this.db.join.begin(this.height, block.header.hash);
    await this.db.putBlock(block);
    this.blockStored = true;
  }

  /** One chunk of the state, checked against the pivot header's state root. */
  async chunk(bytes: Uint8Array): Promise<void> {
    if (!this.pivot || !this.blockStored) throw refuse('a chunk before the pivot block');
    let decoded;
    try {
      decoded = decodeFileChunk(bytes);
    } catch (err) {
      throw err instanceof SnapshotFileError ? err : refuse(`a chunk that does not decode: ${(err as Error).message}`);
    }
    const { position, entries, proof } = decoded;
    const start = bytesToBigInt(positionKey(position));
    if (start < this.covered) throw refuse(`chunk ${describe(position)} overlaps another`);
    if (start > this.covered) throw refuse(`chunk ${describe(position)} leaves keys before it that no chunk covers (chunks come in key order)`);
    let leaves;
    try {
      leaves = verifyChunk(this.pivot.header.stateRoot, position, entries, proof);
    } catch (err) {
      throw refuse(`chunk ${describe(position)}: ${(err as Error).message}`);
    }
    this.covered = start + (1n << BigInt(256 - positionDepth(position)));
    await this.db.join.putChunk(position, leaves);
  }

  /** Installs the snapshot once the chunks cover every key. */
  async finish(): Promise<{ height: number; hash: Uint8Array }> {
    if (!this.pivot || !this.blockStored) throw refuse('the file ends before its state');
    if (this.covered !== ALL_KEYS) throw refuse(`the chunks cover ${(Number((this.covered * 100_000n) / ALL_KEYS) / 1000).toFixed(3)}% of the keys, not all`);
    const { header, totalWork } = this.pivot;
    await this.db.flushed();
    await this.db.join.install(encodeIndexRecord({ header, totalWork, status: HAVE_DATA, seq: 0 }));
    return { height: header.height, hash: header.hash };
  }

  /**
   * Leaves the store as it was before the import, and says 'discarded'; or, when the install had
   * begun (the old state may be half replaced already), leaves the install's mark for the next
   * open of the store to finish (ChainDB.open) and says 'install-pending'. Forgetting the mark
   * there would leave a store at genesis with half its state gone and nothing to mend it.
   */
  async discard(): Promise<'discarded' | 'install-pending'> {
    await this.db.flushed().catch(() => {});
    if ((await this.db.join.state())?.phase === 'installing') return 'install-pending';
    await this.db.join.discard(this.blockStored && this.pivot ? this.pivot.header.hash : undefined);
    return 'discarded';
  }
}

/**
 * The parts of the snapshot file of the state at main-chain height `height` (a copy kept in
 * `chain.db.snapshots`, which the caller made), in order: the head, the headers 2,000 at a time,
 * the pivot block, each chunk (split until it holds at most MAX_FILE_CHUNK_ACCOUNTS), the end.
 */
export async function* snapshotFileParts(chain: Chain, height: number): AsyncGenerator<Uint8Array> {
  const db = chain.db;
  const info = await db.snapshots.get(height);
  if (!info) throw refuse(`no snapshot at height ${height} is kept`);
  yield encodeSnapshotHead(db.genesis.header.hash, height);
  for (let from = 1; from <= height; from += 2000) {
    const headers = await chain.byHeight.headerBytes(from, Math.min(2000, height - from + 1));
    if (headers.length !== Math.min(2000, height - from + 1)) throw refuse(`the headers from ${from} are not all stored`);
    for (const h of headers) yield h;
  }
  const [block] = await db.getBlocksBytes([info.hash]);
  if (!block) throw refuse(`the pivot block ${toHex(info.hash)} is not stored`);
  yield new Writer(4).u32(block.length).finish();
  yield block;
  if (!info.marksCrowded) throw refuse(`the snapshot at height ${height} was made by an older version, which cannot prove every chunk`);
  const todo = positionsAt(4);
  while (todo.length > 0) {
    const position = todo.shift()!;
    const chunk = await db.snapshots.chunk(height, position);
    if (chunk === 'split') {
      todo.unshift(...childPositions(position));
      continue;
    }
    const bytes = encodeFileChunk(position, chunk.entries, chunk.proof);
    yield new Writer(4).u32(bytes.length).finish();
    yield bytes;
  }
  yield new Writer(4).u32(0).finish();
}

function describe(position: string): string {
  return `${positionDepth(position)}/${toHex(encodeChunkPosition(position).subarray(1))}`;
}

