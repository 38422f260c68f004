/**
 * A light client's checkpoint (`cairn light --checkpoint HEIGHT:HASH`): a block the user trusts,
 * as Ethereum's light clients start from a weak-subjectivity checkpoint. Without one, a peer met
 * first with a cheap chain longer than the headers kept whole, holding the work it claims, became
 * the chain, and every heavier honest chain forked too far back to follow. With one, no chain is
 * taken until it passes through that block (a cheap chain built after it can only ease its targets
 * for as long as has passed since), and a peer whose chain forks below it is refused.
 *
 * Kept in the datadir (`checkpoint`, the same text as the flag) so that a restart holds it.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { bytesEqual, toHex } from '../../ledger/bytes.ts';
import { CairnError } from '../../ledger/errors.ts';
import { checkpointText, parseCheckpoint, sameCheckpoint, type Checkpoint } from '../../consensus/header-rules.ts';
import { replaceFile } from '../durable-file.ts';
import type { LightHeaders } from './headers.ts';

export type { Checkpoint };
export const CHECKPOINT_FILE = 'checkpoint';
/** Longer than any checkpoint's text (10 digits, a colon, 64 hex digits, a newline). */
const MAX_FILE_BYTES = 128;

/** A checkpoint the client cannot hold: its file does not read as one, or the chain kept contradicts it. */
export class CheckpointError extends CairnError {
  constructor(code: 'LIGHT_CHECKPOINT_FILE' | 'LIGHT_CHECKPOINT_CONTRADICTED', message: string) {
    super(code, message);
  }
}

/** The checkpoint kept in `datadir`, if there is one. */
export function readCheckpoint(datadir: string): Checkpoint | undefined {
  const path = join(datadir, CHECKPOINT_FILE);
  const unreadable = (why: string) =>
    new CheckpointError('LIGHT_CHECKPOINT_FILE', `${path} ${why}: remove it, and give the checkpoint to hold with --checkpoint HEIGHT:HASH`);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > MAX_FILE_BYTES) throw unreadable('is not a checkpoint (HEIGHT:HASH)');
    const bytes = Buffer.alloc(MAX_FILE_BYTES);
    const text = bytes.subarray(0, readSync(fd, bytes, 0, MAX_FILE_BYTES, 0)).toString('utf8').trimEnd();
    const checkpoint = parseCheckpoint(text);
    if (!checkpoint) throw unreadable('is not a checkpoint (HEIGHT:HASH)');
    return checkpoint;
  } finally {
    closeSync(fd);
  }
}

/**
 * The checkpoint a light client on `datadir` holds: `given` (kept in the datadir from now on), else
 * the one kept there. The chain `headers` kept must pass through it, or not reach its height: one
 * that holds another block there is refused, and nothing changes. One below it goes back to
 * genesis, since it is not known to lead there: its next chain must pass through the checkpoint,
 * and would fork from a long one too far back to be followed.
 */
export async function holdCheckpoint(datadir: string, headers: LightHeaders, given: Checkpoint | undefined): Promise<Checkpoint | undefined> {
  const kept = readCheckpoint(datadir);
  const checkpoint = given ?? kept;
  if (!checkpoint) return undefined;
  const renewed = given !== undefined && !(kept && sameCheckpoint(kept, given));
  if (headers.height >= checkpoint.height) {
    const there = headers.hashAt(checkpoint.height)!;
    if (!bytesEqual(there, checkpoint.hash)) {
      const previous = renewed && kept ? ` (it holds the checkpoint ${checkpointText(kept)})` : '';
      throw new CheckpointError(
        'LIGHT_CHECKPOINT_CONTRADICTED',
        `the light client's chain in ${datadir}${previous} has block ${toHex(there)} at height ${checkpoint.height}, not the checkpoint's ${toHex(checkpoint.hash)}: check the checkpoint against a node you trust, or give this one another --datadir`,
      );
    }
  }
  // Kept before the chain starts over: a write that fails (a full disk) then changes nothing.
  if (renewed) await replaceFile(join(datadir, CHECKPOINT_FILE), `${checkpointText(checkpoint)}\n`);
  if (headers.height > 0 && headers.height < checkpoint.height) headers.restart();
  return checkpoint;
}
