import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFile } from './durable-file.ts';

export const PEERS_FILE = 'peers.json';

/** A peer this node was connected to, and where it listened then. */
export interface KnownAddress {
  readonly peer: string;
  readonly addrs: readonly string[];
}

/** Where a node keeps the peers it knew across restarts (a file in the datadir; none in the simulator). */
export interface PeerStore {
  load(): Promise<KnownAddress[]>;
  save(peers: readonly KnownAddress[]): Promise<void>;
}

/** The most peers kept, and addresses per peer, in the file: it is read back into a bounded book. */
export const MAX_SAVED_PEERS = 256;
const MAX_SAVED_ADDRS = 8;
const MAX_TEXT = 512;
/** Larger than any file this node writes (256 peers of 8 addresses): an edited or foreign file is not read whole. */
const MAX_FILE_BYTES = 2 * 1024 * 1024;

/**
 * `<datadir>/peers.json`, as Bitcoin Core's peers.dat: the peers a node was connected to, so that a
 * restart finds the network again when its bootstrap peers are gone. Replaced whole (a crash leaves
 * the old file or the new one: node/durable-file.ts). A damaged file, or entries that are not
 * peers, are passed over: it only saves a search, and must never stop a start.
 */
export function peerFile(datadir: string): PeerStore {
  const file = join(datadir, PEERS_FILE);
  return {
    async load() {
      let parsed: unknown;
      try {
        if ((await stat(file)).size > MAX_FILE_BYTES) return [];
        parsed = (JSON.parse(await readFile(file, 'utf8')) as { peers?: unknown }).peers;
      } catch {
        return [];
      }
      return Array.isArray(parsed) ? parsed.filter(isKnownAddress).slice(0, MAX_SAVED_PEERS) : [];
    },
    async save(peers) {
      await replaceFile(file, JSON.stringify({ peers: peers.slice(0, MAX_SAVED_PEERS) }, null, 1) + '\n');
    },
  };
}

function isKnownAddress(x: unknown): x is KnownAddress {
  const k = x as KnownAddress;
  const text = (s: unknown) => typeof s === 'string' && s.length > 0 && s.length <= MAX_TEXT;
  return typeof k === 'object' && k !== null && text(k.peer) && Array.isArray(k.addrs) && k.addrs.length > 0 && k.addrs.length <= MAX_SAVED_ADDRS && k.addrs.every(text);
}
