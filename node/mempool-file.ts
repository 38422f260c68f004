import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { replaceFile } from './durable-file.ts';
import { decodeTxBatch, encodeTxBatch, MAX_TXS_PER_BATCH } from './wire.ts';
import { fileReason } from './file-errors.ts';

export const MEMPOOL_FILE = 'mempool.dat';

/** Opens the file of this version: the one before it had no arrival times, and no magic. */
const MAGIC = new TextEncoder().encode('CAIRNMP2');

/**
 * Pending transactions survive a restart: written on a clean stop (and every so often, so a crash
 * loses only the last minute's), read back and re-admitted against the state at start, each with
 * the time it first arrived (as Bitcoin Core's mempool.dat): expiry counts from then, not from the
 * restart. The file is `CAIRNMP2`, then chunks of: a u32 length, a transaction-push message
 * (docs/PROTOCOL.md) of n transactions, their n arrival times (u64 seconds). A damaged file is
 * read up to the damage; a file of the version before (chunks without times) is read as arriving now.
 */
export async function saveMempool(datadir: string, mempool: Mempool): Promise<number> {
  const entries = [...mempool.entries()].sort((a, b) => (a.tx.nonce < b.tx.nonce ? -1 : a.tx.nonce > b.tx.nonce ? 1 : 0));
  const chunks: Uint8Array[] = [MAGIC];
  for (let i = 0; i < entries.length; i += MAX_TXS_PER_BATCH) {
    const part = entries.slice(i, i + MAX_TXS_PER_BATCH);
    const body = encodeTxBatch(part.map((e) => e.tx));
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, body.length);
    const times = new Uint8Array(8 * part.length);
    part.forEach((e, k) => new DataView(times.buffer).setBigUint64(8 * k, BigInt(Math.max(0, Math.floor(e.addedAt)))));
    chunks.push(head, body, times);
  }
  await replaceFile(join(datadir, MEMPOOL_FILE), Buffer.concat(chunks));
  return entries.length;
}

/** What a start got back from the file; `problem` says why some or all of it was not read (no file is none). */
export interface RestoredMempool {
  readonly admitted: number;
  readonly dropped: number;
  readonly problem?: string;
}

export async function loadMempool(datadir: string, mempool: Mempool, now: number): Promise<RestoredMempool> {
  const file = join(datadir, MEMPOOL_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { admitted: 0, dropped: 0 };
    // Left as it is: the user may want what is in it. The next save replaces it (or says why not).
    return { admitted: 0, dropped: 0, problem: `cannot read ${file} (${fileReason(err, file)}): the mempool starts empty` };
  }
  const kept: { tx: Transaction; addedAt: number }[] = [];
  let problem: string | undefined;
  try {
    readChunks(bytes, now, kept);
  } catch (err) {
    problem = `${file} is damaged (${(err as Error).message}): ${kept.length} transactions read before the damage, the file removed`;
    await rm(file, { force: true });
  }
  // What was confirmed, invalidated or expired while we were down is refused, and dropped.
  const admitted = (await mempool.restore(kept, now)).filter((outcome) => !(outcome instanceof Error)).length;
  return { admitted, dropped: kept.length - admitted, ...(problem === undefined ? {} : { problem }) };
}

function readChunks(bytes: Buffer, now: number, into: { tx: Transaction; addedAt: number }[]): void {
  const timed = bytes.length >= MAGIC.length && Buffer.from(MAGIC).equals(bytes.subarray(0, MAGIC.length));
  for (let offset = timed ? MAGIC.length : 0; offset < bytes.length; ) {
    const length = bytes.readUInt32BE(offset);
    const txs = decodeTxBatch(new Uint8Array(bytes.subarray(offset + 4, offset + 4 + length)));
    offset += 4 + length;
    if (timed && offset + 8 * txs.length > bytes.length) throw new RangeError('a chunk cut short');
    txs.forEach((tx, k) => into.push({ tx, addedAt: timed ? Number(bytes.readBigUInt64BE(offset + 8 * k)) : now }));
    if (timed) offset += 8 * txs.length;
  }
}
