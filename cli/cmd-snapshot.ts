import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Reader, toHex } from '../ledger/bytes.ts';
import { HEADER_BYTES, decodeHeader } from '../ledger/block.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { StoreError } from '../ledger/errors.ts';
import { Chain } from '../consensus/chain.ts';
import { DEFAULT_REORG_DEPTH } from '../consensus/chain-index.ts';
import { SNAPSHOT_HEAD_BYTES, SnapshotFileError, SnapshotImport, decodeSnapshotHead, snapshotFileParts } from '../consensus/snapshot-file.ts';
import { DEFAULT_SNAPSHOT_INTERVAL, makeSnapshot, pivotHeight } from '../node/snapshots.ts';
import { writeWholeFile } from '../node/durable-file.ts';
import { fileReason, isSystemError } from '../node/file-errors.ts';
import { count, parse, str, UsageError } from './args.ts';
import { DEFAULT_DATADIR, initDatadir, loadDatadirParams } from './datadir.ts';
import type { Out } from './output.ts';

/** `cairn snapshot export|import`: the state at one block in a file, checked on import as snapshot sync checks it. */
export async function snapshotCommand(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { datadir: { type: 'string' }, genesis: { type: 'string' }, height: { type: 'string' }, 'snapshot-interval': { type: 'string' }, 'reorg-depth': { type: 'string' }, json: { type: 'boolean' } },
    2,
  );
  if (values.help) return out.help(HELP);
  const [what, file] = positionals;
  if (what !== 'export' && what !== 'import') throw new UsageError('say what to do: cairn snapshot export FILE, or cairn snapshot import FILE');
  if (!file) throw new UsageError(`give the FILE to ${what === 'export' ? 'write' : 'read'}`);
  // As other commands' `-` is stdin or stdout, a script's `cairn snapshot export - | gzip` had a
  // file named "-" written here, and the line saying so piped on as the snapshot, with status 0.
  if (file === '-') throw new UsageError(`snapshot ${what} takes a FILE's name, not - (${what === 'export' ? 'stdout: the file is written whole, then renamed into place' : 'stdin'}): give one, such as state.snap`);
  const datadir = str(values, 'datadir') ?? DEFAULT_DATADIR;
  if (what === 'export') {
    const made = await exportSnapshot(datadir, file, {
      height: count(values, 'height', 1, 0xffffffff),
      interval: count(values, 'snapshot-interval', 1, 0xffffffff) ?? DEFAULT_SNAPSHOT_INTERVAL,
      reorgDepth: count(values, 'reorg-depth', 1, 0xffffffff) ?? DEFAULT_REORG_DEPTH,
    });
    out.result({ file: resolve(file), height: made.height, hash: made.hash, accounts: made.accounts, bytes: made.bytes }, `wrote the state at height ${made.height} (${made.hash}, ${made.accounts} accounts) to ${resolve(file)} (${made.bytes} bytes)`);
  } else {
    const there = (path: string) => stat(path).then(() => true, () => false);
    const [existed, hadStore] = [await there(datadir), await there(join(datadir, 'chain'))];
    const { params, created } = await initDatadir(datadir, str(values, 'genesis'));
    const done = await importSnapshot(datadir, file, params).catch(async (err: unknown) => {
      // A refused file leaves the datadir as it was: one made here, for the bundled devnet when
      // --genesis was left out, was then refused to the retry with the snapshot's own genesis, as
      // another network's. An install that stopped part way is kept: the next open finishes it.
      if (created && !(err instanceof StoreError)) {
        if (!existed) await rm(datadir, { recursive: true, force: true });
        else await Promise.all([...(hadStore ? [] : ['chain']), 'genesis.json'].map((name) => rm(join(datadir, name), { recursive: true, force: true })));
      }
      if (err instanceof SnapshotFileError && /^the snapshot is of another network/.test(err.message)) {
        throw new SnapshotFileError(`${err.message}: give that network's genesis file with --genesis FILE`);
      }
      throw err;
    });
    out.result({ datadir: resolve(datadir), height: done.height, hash: done.hash }, `imported the state at height ${done.height} (${done.hash}) into ${resolve(datadir)}: start it with cairn node --datadir ${datadir}`);
  }
}

async function openStore(datadir: string, params: Parameters<typeof ChainDB.open>[1]): Promise<ChainDB> {
  try {
    return await ChainDB.open(join(datadir, 'chain'), params);
  } catch (err) {
    if (err instanceof StoreError && err.code === 'STORE_LOCKED') throw new UsageError(`the node on ${datadir} is running: stop it first (cairn stop)`);
    throw err;
  }
}

/**
 * Writes the snapshot file of the state at `height` (default: the height a joining node would pick
 * now, the highest snapshot height at least the reorg depth below the tip), making the copy first
 * when the datadir keeps none there. The node must be stopped (the store is opened here).
 */
export async function exportSnapshot(datadir: string, file: string, o: { height?: number; interval?: number; reorgDepth?: number } = {}): Promise<{ height: number; hash: string; accounts: number; bytes: number }> {
  const params = await loadDatadirParams(datadir);
  const db = await openStore(datadir, params);
  try {
    const chain = await Chain.open(db, { clock: () => Math.floor(Date.now() / 1000) });
    const height = o.height ?? pivotHeight(chain.tip.height, o.interval ?? DEFAULT_SNAPSHOT_INTERVAL, o.reorgDepth ?? DEFAULT_REORG_DEPTH);
    if (height === undefined) throw new UsageError(`the chain (height ${chain.tip.height}) is too short for a snapshot ${o.reorgDepth ?? DEFAULT_REORG_DEPTH} blocks below its tip: give --height`);
    if (height > chain.tip.height) throw new UsageError(`--height ${height} is above the tip (${chain.tip.height})`);
    // A pruned store (--prune-keep) has no body for block H; the default H is always below what a
    // node pruning at the reorg depth keeps.
    const noBodies = db.history.prunedHeight;
    if (height <= noBodies) throw new UsageError(`block ${height} is pruned here (this datadir keeps blocks above ${noBodies} only): give --height from ${noBodies + 1} to ${chain.tip.height}, or export from a node that keeps it`);
    // A copy an older version made cannot prove a chunk below a crowded position: made again.
    const kept = await db.snapshots.get(height);
    const info = kept?.marksCrowded ? kept : await makeSnapshot(chain, height, async () => {});
    if (!info) throw new UsageError(`cannot reach back to height ${height}: this node has no undo data below ${Math.max(db.history.prunedHeight, db.history.stateBase)}`);
    const bytes = await writeWholeFile(file, async (handle) => {
      let written = 0;
      let pending: Uint8Array[] = [];
      let size = 0;
      for await (const part of snapshotFileParts(chain, height)) {
        pending.push(part);
        size += part.length;
        if (size >= 1 << 20) {
          await handle.write(Buffer.concat(pending));
          written += size;
          pending = [];
          size = 0;
        }
      }
      await handle.write(Buffer.concat(pending));
      return written + size;
    }).catch((err: unknown) => {
      if (!isSystemError(err)) throw err;
      // The error names the temporary file beside FILE, which the user never gave.
      const why = err.code === 'ENOENT' ? `the directory ${dirname(file)} does not exist` : fileReason(err, file);
      throw new UsageError(`cannot write ${file}: ${why}; give a FILE in a directory you can write`);
    });
    return { height, hash: toHex(info.hash), accounts: info.accounts, bytes };
  } finally {
    await db.close();
  }
}

/** Reads exactly the bytes asked for from a file, a megabyte at a time. */
class FileReader {
  private readonly handle: Awaited<ReturnType<typeof open>>;
  private buffer = Buffer.alloc(0);
  private ended = false;

  constructor(handle: Awaited<ReturnType<typeof open>>) {
    this.handle = handle;
  }

  async exactly(n: number, what: string): Promise<Uint8Array> {
    while (this.buffer.length < n && !this.ended) {
      const chunk = Buffer.alloc(Math.max(1 << 20, n - this.buffer.length));
      const { bytesRead } = await this.handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) this.ended = true;
      this.buffer = Buffer.concat([this.buffer, chunk.subarray(0, bytesRead)]);
    }
    if (this.buffer.length < n) throw new SnapshotFileError(`the file ends in the middle of ${what}`);
    const out = new Uint8Array(this.buffer.subarray(0, n));
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  async atEnd(): Promise<boolean> {
    if (this.buffer.length > 0) return false;
    const probe = Buffer.alloc(1);
    return (await this.handle.read(probe, 0, 1, null)).bytesRead === 0;
  }
}

const u32 = (bytes: Uint8Array) => new Reader(bytes).u32();

/**
 * Imports a snapshot file into a datadir at genesis, checking it as snapshot sync checks what
 * peers send: every header, the pivot block against its header, every chunk against the pivot
 * header's state root, the chunks together covering every key once. A file that fails is refused
 * with the reason, and the datadir is left as it was. A store that fails during the install
 * itself (a full disk) leaves the install marked, and the next open of the datadir finishes it.
 */
export async function importSnapshot(datadir: string, file: string, params: Parameters<typeof ChainDB.open>[1]): Promise<{ height: number; hash: string }> {
  const unreadable = (err: unknown) => new UsageError(`cannot read ${file}: ${fileReason(err, file)}; give the file cairn snapshot export wrote`);
  const handle = await open(file, 'r').catch((err: unknown) => {
    throw unreadable(err);
  });
  // A directory opens; its first read failed, in Node's words. A pipe (<(…)) is read as a file.
  if ((await handle.stat()).isDirectory()) {
    await handle.close();
    throw unreadable(Object.assign(new Error('EISDIR'), { code: 'EISDIR' }));
  }
  try {
    const db = await openStore(datadir, params);
    try {
      return await importSnapshotInto(db, handle, params);
    } finally {
      await db.close();
    }
  } finally {
    await handle.close();
  }
}

/** `importSnapshot` into an open store (the caller closes both). */
export async function importSnapshotInto(db: ChainDB, handle: FileHandle, params: Parameters<typeof ChainDB.open>[1]): Promise<{ height: number; hash: string }> {
  let job: SnapshotImport | undefined;
  try {
    const reader = new FileReader(handle);
    const height = decodeSnapshotHead(await reader.exactly(SNAPSHOT_HEAD_BYTES, 'the head'), params);
    job = await SnapshotImport.start(db, height, Math.floor(Date.now() / 1000));
    for (let from = 1; from <= height; from += 2000) {
      const n = Math.min(2000, height - from + 1);
      const bytes = await reader.exactly(n * HEADER_BYTES, 'the headers');
      const headers = Array.from({ length: n }, (_, i) => decodeHeader(bytes.subarray(i * HEADER_BYTES, (i + 1) * HEADER_BYTES)));
      headers.forEach((h, i) => {
        if (h.height !== from + i) throw new SnapshotFileError(`a header of height ${h.height} where ${from + i} belongs`);
      });
      await job.headers(headers);
    }
    const blockLength = u32(await reader.exactly(4, 'the pivot block'));
    if (blockLength > params.maxBlockBytes) throw new SnapshotFileError(`a pivot block of ${blockLength} bytes, above the network's ${params.maxBlockBytes}`);
    await job.block(await reader.exactly(blockLength, 'the pivot block'));
    for (;;) {
      const length = u32(await reader.exactly(4, 'a chunk'));
      if (length === 0) break;
      if (length > 256 * 1024) throw new SnapshotFileError(`a chunk of ${length} bytes`);
      await job.chunk(await reader.exactly(length, 'a chunk'));
    }
    if (!(await reader.atEnd())) throw new SnapshotFileError('bytes after the end of the snapshot');
    const done = await job.finish();
    return { height: done.height, hash: toHex(done.hash) };
  } catch (err) {
    if ((await job?.discard()) === 'install-pending') {
      throw new StoreError('STORE_WRITE_FAILED', `the install of the snapshot stopped part way (${(err as Error).message}); the datadir finishes it the next time it is opened (cairn node)`);
    }
    throw err;
  }
}

const HELP = `Usage: cairn snapshot export [--datadir DIR] [--height H] [--snapshot-interval N] [--reorg-depth N] [--json] FILE
       cairn snapshot import FILE [--datadir DIR] [--genesis FILE] [--json]

export writes the state at main-chain height H of a stopped node's datadir to FILE: every header
up to H, block H, and the accounts in chunks, each with its range proof against block H's state
root. H defaults to the height a joining node would pick now: the highest multiple of 10,000
(--snapshot-interval) at least 10,000 blocks (--reorg-depth) below the tip. A pruned datadir
(cairn node --prune-keep) has no block below the last N to export: give an --height above them.

import checks FILE as snapshot sync checks what peers send — every header (links, proof of work,
targets, timestamps), block H against its header, every chunk against H's state root, the chunks
covering every account once — and installs it into DIR, which must be new (or at genesis): the node
then starts at height H, with no history below it (as a pruned node), and executes the blocks
after it from its peers. A file that fails any check is refused with the reason; DIR is left as it was.
A disk that fails during the install itself leaves the install for the node's next start to finish.

Examples:
  cairn stop --datadir ./data && cairn snapshot export --datadir ./data state.snap
  cairn snapshot export --datadir ./data --height 20000 state-20000.snap
  cairn snapshot import state.snap --datadir ./fresh && cairn node --datadir ./fresh`;
