import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CairnError } from '../ledger/errors.ts';
import { genesisHashHex, parseGenesis, sameGenesis, type ChainParams } from '../ledger/genesis.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { LevelKv } from '../ledger/kv-level.ts';

export const BUNDLED_GENESIS = fileURLToPath(new URL('../genesis.json', import.meta.url));
export { DEFAULT_DATADIR } from './args.ts';
const GENESIS_COPY = 'genesis.json';

export class DatadirError extends CairnError {
  constructor(message: string) {
    super('DATADIR', message);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function readGenesis(file: string): Promise<{ text: string; params: ChainParams }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new DatadirError(`cannot read genesis file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return { text, params: parseGenesis(text) };
}

/**
 * Creates a datadir for the network `genesisFile` defines: a copy of the genesis file (so the
 * datadir alone says which network it is) and a store holding block 0 (a light client's, `store:
 * false`, has none). Refuses a datadir that
 * belongs to another network and changes nothing then.
 */
export async function initDatadir(datadir: string, genesisFile?: string, options: { store?: boolean } = {}): Promise<{ params: ChainParams; created: boolean }> {
  const copy = join(datadir, GENESIS_COPY);
  // Without --genesis an initialised datadir keeps its own network (the bundled one is only a default).
  if (genesisFile === undefined && (await exists(copy))) return { params: (await readGenesis(copy)).params, created: false };
  const { params } = await readGenesis(genesisFile ?? BUNDLED_GENESIS);
  if (await exists(copy)) {
    const existing = await readGenesis(copy);
    if (!sameGenesis(existing.params, params)) {
      throw new DatadirError(`${datadir} already belongs to the network "${existing.params.name}" (genesis ${genesisHashHex(existing.params)}), not "${params.name}"`);
    }
    return { params: existing.params, created: false };
  }
  await mkdir(datadir, { recursive: true, mode: 0o700 });
  if (options.store !== false) {
    const db = await ChainDB.open(join(datadir, 'chain'), params); // refuses a store of another network
    await db.close();
  }
  await copyFile(genesisFile ?? BUNDLED_GENESIS, copy);
  return { params, created: true };
}

/** The network of an initialised datadir. */
export async function loadDatadirParams(datadir: string): Promise<ChainParams> {
  const copy = join(datadir, GENESIS_COPY);
  if (!(await exists(copy))) throw new DatadirError(`${datadir} is not a Cairn datadir (no ${GENESIS_COPY}); create one with: cairn init --datadir ${datadir}`);
  return (await readGenesis(copy)).params;
}

/**
 * Holds a light client's datadir against a second light client until `release`: the headers file
 * is truncated on start, and rpc.json would name the second. Node has no file lock of its own, so
 * this is the one a full node holds on its store: LevelDB's, here on an empty database in
 * DIR/lock, refused with STORE_LOCKED while another process holds it and released by the system
 * when the process ends, however it ends (no stale lock after a kill -9).
 */
export async function lockLightDatadir(datadir: string): Promise<{ release(): Promise<void> }> {
  // A full node's datadir has its store: a light client there would take over its rpc.json.
  if (await exists(join(datadir, 'chain'))) throw new DatadirError(`${datadir} is a full node's datadir (it holds a chain store): give the light client a --datadir of its own (default ./light)`);
  const lock = await LevelKv.open(join(datadir, 'lock'));
  return { release: () => lock.close() };
}
