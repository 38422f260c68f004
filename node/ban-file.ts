import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BanRecord, BanStore } from './peers.ts';
import { replaceFile } from './durable-file.ts';

export const BANS_FILE = 'bans.json';

/**
 * A real node's bans, kept in `<datadir>/bans.json` across restarts: replaced whole (a crash or a
 * power cut leaves the old file or the new one, never half of one: node/durable-file.ts), read at
 * start. A file that is not a list of bans is ignored, as if there were none: bans are a defence,
 * and a damaged file must not stop the node.
 */
export function banFile(datadir: string): BanStore {
  const file = join(datadir, BANS_FILE);
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        return [];
      }
      try {
        const list = (JSON.parse(text) as { bans?: unknown }).bans;
        return Array.isArray(list) ? list.filter(isBanRecord) : [];
      } catch {
        return [];
      }
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
