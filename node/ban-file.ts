import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { jsonParseReason } from '../ledger/json-text.ts';
import type { BanRecord, BanStore } from './peers.ts';
import { replaceFile } from './durable-file.ts';
import { fileReason } from './file-errors.ts';

export const BANS_FILE = 'bans.json';
/**
 * Far above any file this node writes (twice MAX_BANS records of ~200 bytes): a foreign or damaged
 * file of gigabytes is refused by its size, not read whole into the heap at every start.
 */
export const MAX_BANS_FILE_BYTES = 64 * 1024 * 1024;

/**
 * A real node's bans, kept in `<datadir>/bans.json` across restarts: replaced whole (a crash or a
 * power cut leaves the old file or the new one, never half of one: node/durable-file.ts), read at
 * start. A file that cannot be read, or is not a list of bans, is refused with the reason
 * (`load` rejects): bans are a defence, and a damaged file must not stop the node, which starts
 * with none and says so (NetworkGuard.restoreBans), but neither must it lose them in silence.
 * Entries that are not bans are passed over.
 */
export function banFile(datadir: string): BanStore {
  const file = join(datadir, BANS_FILE);
  return {
    async load() {
      let text: string | undefined;
      let size = 0;
      try {
        size = (await stat(file)).size;
        if (size <= MAX_BANS_FILE_BYTES) text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new Error(`cannot read ${file}: ${fileReason(err, file)}`);
      }
      if (text === undefined) throw new Error(`${file} is damaged (${size} bytes: far more than the bans this node keeps)`);
      let list: unknown;
      try {
        list = (JSON.parse(text) as { bans?: unknown } | null)?.bans;
      } catch (err) {
        throw new Error(`${file} is damaged (${jsonParseReason(err, text)})`);
      }
      if (!Array.isArray(list)) throw new Error(`${file} is damaged (no list of bans in it)`);
      return list.filter(isBanRecord);
    },
    async save(bans) {
      await replaceFile(file, JSON.stringify({ bans }, null, 1) + '\n');
    },
  };
}

function isBanRecord(x: unknown): x is BanRecord {
  const r = x as BanRecord;
  return typeof r === 'object' && r !== null && (r.kind === 'peer' || r.kind === 'ip') && typeof r.id === 'string' && typeof r.until === 'number' && typeof r.reason === 'string';
}
