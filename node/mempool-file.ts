import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { decodeTxBatch, encodeTxBatch, MAX_TXS_PER_BATCH } from './wire.ts';

export const MEMPOOL_FILE = 'mempool.dat';

/**
 * Pending transactions survive a restart: written on a clean stop (and every so often, so a crash
 * loses only the last minute's), read back and re-admitted against the state at start. The file
 * is a sequence of transaction-push messages (docs/PROTOCOL.md); a damaged file is ignored.
 */
export async function saveMempool(datadir: string, mempool: Mempool): Promise<number> {
  const txs = [...mempool.entries()].map((e) => e.tx).sort((a, b) => (a.nonce < b.nonce ? -1 : a.nonce > b.nonce ? 1 : 0));
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < txs.length; i += MAX_TXS_PER_BATCH) {
    const body = encodeTxBatch(txs.slice(i, i + MAX_TXS_PER_BATCH));
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, body.length);
    chunks.push(length, body);
  }
  const file = join(datadir, MEMPOOL_FILE);
  await writeFile(file + '.tmp', Buffer.concat(chunks), { mode: 0o600 });
  await rename(file + '.tmp', file);
  return txs.length;
}

export async function loadMempool(datadir: string, mempool: Mempool, now: number): Promise<{ admitted: number; dropped: number }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(datadir, MEMPOOL_FILE));
  } catch {
    return { admitted: 0, dropped: 0 };
  }
  const txs: Transaction[] = [];
  try {
    for (let offset = 0; offset < bytes.length; ) {
      const length = bytes.readUInt32BE(offset);
      txs.push(...decodeTxBatch(new Uint8Array(bytes.subarray(offset + 4, offset + 4 + length))));
      offset += 4 + length;
    }
  } catch {
    await rm(join(datadir, MEMPOOL_FILE), { force: true }); // damaged: start empty rather than fail
  }
  // What was confirmed or invalidated while we were down is refused, and dropped.
  const admitted = (await mempool.addMany(txs, now)).filter((outcome) => !(outcome instanceof Error)).length;
  return { admitted, dropped: txs.length - admitted };
}
