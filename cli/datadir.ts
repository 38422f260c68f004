import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CairnError, StoreError } from '../ledger/errors.ts';
import { readCappedText } from './capped-read.ts';
import { genesisHashHex, parseGenesis, sameGenesis, type ChainParams } from '../ledger/genesis.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { LevelKv } from '../ledger/kv-level.ts';
import { BANS_FILE } from '../node/ban-file.ts';
import { replaceFile } from '../node/durable-file.ts';
import { CHECKPOINT_FILE } from '../node/light/checkpoint.ts';
import { MEMPOOL_FILE } from '../node/mempool-file.ts';
import { PEERS_FILE } from '../node/peer-file.ts';
import { RPC_ENDPOINT_FILE } from '../node/rpc-types.ts';
import { fileReason, isSystemError } from '../node/file-errors.ts';
import { isLightDatadir } from './start-errors.ts';
import { PASSWORD_WAIT_FILE } from './lock-holder.ts';

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

/** The largest genesis file read: V8's longest string (2^29 − 24 characters), at a byte a character. */
export const MAX_GENESIS_BYTES = 2 ** 29 - 24;

/** The text of a genesis file, or a pipe's (readCappedText), up to `maxBytes`. */
export function readGenesisText(file: string, maxBytes = MAX_GENESIS_BYTES): Promise<string> {
  return readCappedText(file, 'a genesis file', maxBytes, (why, tooLarge) =>
    tooLarge ? new DatadirError(`${file} is not a genesis file Cairn can read: ${why} (the longest text this runtime holds)`) : new DatadirError(`${file} is not a genesis file: ${why}`),
  );
}

/**
 * The genesis in `file`. `copy`: the datadir's own copy, which says which network the datadir
 * belongs to; damaged, it is named as such, since the user never gave that path.
 */
export async function readGenesis(file: string, copy = false): Promise<{ text: string; params: ChainParams }> {
  let text: string;
  try {
    text = await readGenesisText(file);
  } catch (err) {
    if (err instanceof DatadirError) throw err;
    throw new DatadirError(`cannot read genesis file ${file}: ${fileReason(err, file)}; ${copy ? "put that network's genesis file back in its place" : "give --genesis the network's genesis file (cairn genesis new writes one for a network of your own)"}`);
  }
  try {
    return { text, params: parseGenesis(text) };
  } catch (err) {
    const why = (err as Error).message.replace(/^genesis: /, '');
    throw new DatadirError(copy
      ? `${file}, the datadir's copy of its network's genesis, is damaged (${why}): put that network's genesis file back in its place`
      : `${file} is not a valid genesis file: ${why}`);
  }
}

/** Why a datadir could not be made, with the path at fault and the flag that names it. */
export function datadirFailure(err: unknown, datadir: string): unknown {
  if (!isSystemError(err)) return err;
  const path = err.path ?? datadir;
  const at = path !== datadir && err.code !== 'ENOTDIR' ? ` (at ${path})` : '';
  // mkdir's ENOENT with every parent there: a file system that takes no new directory (/proc).
  const why = err.code === 'ENOENT' ? `${path} cannot be created there` : `${fileReason(err, datadir)}${at}`;
  return new DatadirError(`cannot create the datadir ${datadir}: ${why}; give --datadir a directory you can write`);
}

/**
 * Makes `dir` and any missing parents, each 0700. Not mkdir's own `recursive`: under /proc it
 * retries for ever (Node 24: mkdir -p /proc/x/y spins at 100% CPU), where this gives up once a
 * parent exists and the folder still cannot be made.
 */
async function makeDirs(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return;
      throw err;
    }
    if (code !== 'ENOENT' || dirname(dir) === dir) throw err;
    await makeDirs(dirname(dir));
    await mkdir(dir, { mode: 0o700 }).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
  }
}

/**
 * What Cairn puts in a datadir, any one of which makes a folder one of its own (a node's, a light
 * client's, `cairn devnet`'s node.log, a keystore made before the first start): a kill before the
 * genesis copy, or a datadir of an older version, is taken up, never refused. `lost+found` is
 * the file system's own, at the top of a volume mounted as the datadir. The peer key's name is
 * node/libp2p/identity.ts's PEER_KEY_FILE, not imported: that would load libp2p's crypto into every
 * command (cmd-proof imports this file).
 */
const CAIRN_ENTRIES = new Set([GENESIS_COPY, 'chain', 'keystore', 'p2p-key', RPC_ENDPOINT_FILE, BANS_FILE, PEERS_FILE, MEMPOOL_FILE, CHECKPOINT_FILE, 'history-check', 'lock', 'headers', 'headers.tip', 'node.log', PASSWORD_WAIT_FILE]);

/**
 * What a folder holds (`lost+found` aside: the file system's), and whether any of it is Cairn's:
 * one that holds things and none of Cairn's is no datadir (a start refuses it; `cairn status` and
 * `cairn stop` say it holds no node's data). A missing or unreadable folder holds nothing.
 */
export async function folderEntries(datadir: string): Promise<{ entries: string[]; cairn: boolean }> {
  const entries = (await readdir(datadir).catch(() => [] as string[])).filter((name) => name !== 'lost+found');
  return { entries, cairn: entries.some((name) => CAIRN_ENTRIES.has(name)) };
}

/**
 * Refuses a folder that holds things and none of Cairn's (`--datadir ~`, or a project's folder):
 * its chain store, key, genesis and files would go in among the user's own.
 */
async function refuseForeignFolder(datadir: string): Promise<void> {
  const { entries, cairn } = await folderEntries(datadir);
  if (entries.length === 0 || cairn) return;
  throw new DatadirError(`${datadir} is not empty and is not a Cairn datadir (it has no ${GENESIS_COPY}, no chain store): Cairn's files would go in among its ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}; give --datadir a new or empty folder (a missing one is made), such as ${join(datadir, 'cairn')}`);
}

/**
 * Creates a datadir for the network `genesisFile` defines: a copy of the genesis file (so the
 * datadir alone says which network it is) and a store holding block 0 (a light client's, `store:
 * false`, has none). Refuses a datadir that
 * belongs to another network and changes nothing then.
 */
export async function initDatadir(datadir: string, genesisFile?: string, options: { store?: boolean } = {}): Promise<{ params: ChainParams; created: boolean }> {
  const copy = join(datadir, GENESIS_COPY);
  // An empty copy never held a genesis: a kill, or a power cut, while an older version wrote it
  // in place. It is written again, of the network the store holds (checked when it is opened
  // below); a light client's datadir has no store to say which, and must be told.
  const emptyCopy = await stat(copy).then((st) => st.isFile() && st.size === 0, () => false);
  if (emptyCopy && genesisFile === undefined && options.store === false) {
    throw new DatadirError(`${copy}, the datadir's copy of its network's genesis, is empty (a kill or a power cut while it was written): give that network's genesis file with --genesis FILE, which is copied back`);
  }
  const kind = await stat(datadir).then((st) => (st.isDirectory() ? 'directory' : 'file'), () => 'none');
  if (kind === 'file') throw new DatadirError(`the datadir ${datadir} is a file, not a directory: give --datadir a directory (a new one is made)`);
  // A store made there turned it into a full node's datadir, which its light client then refuses.
  if (options.store !== false && isLightDatadir(datadir)) throw new DatadirError(`${datadir} is a light client's datadir (its headers, no chain store): give the node a --datadir of its own (default ./data)`);
  // Without --genesis an initialised datadir keeps its own network (the bundled one is only a default).
  if (genesisFile === undefined && !emptyCopy && (await exists(copy))) return { params: (await readGenesis(copy, true)).params, created: false };
  const { text, params } = await readGenesis(genesisFile ?? BUNDLED_GENESIS);
  if (!emptyCopy && (await exists(copy))) {
    const existing = await readGenesis(copy, true);
    if (!sameGenesis(existing.params, params)) {
      // Most often a first start without --genesis made it the devnet's: say how to go on either way.
      throw new DatadirError(`${datadir} already belongs to the network "${existing.params.name}" (genesis ${genesisHashHex(existing.params)}), not "${params.name}": give "${params.name}" a --datadir of its own (a missing one is made), or, if ${datadir} was made for "${existing.params.name}" by mistake (a start without --genesis), move it aside first${options.store === false ? '' : ' (keep any keys in its keystore)'}`);
    }
    return { params: existing.params, created: false };
  }
  if (kind === 'directory') await refuseForeignFolder(datadir);
  await makeDirs(datadir).catch((err: unknown) => {
    throw datadirFailure(err, datadir);
  });
  if (options.store !== false) {
    const db = await ChainDB.open(join(datadir, 'chain'), params).catch((err: unknown) => {
      // A store without its genesis copy (lost, or only chain/ copied here) was opened as the
      // bundled network's: the refusal named a network the user never asked for.
      if (genesisFile === undefined && err instanceof StoreError && err.code === 'STORE_GENESIS_MISMATCH') {
        const copyIs = emptyCopy ? `an empty ${GENESIS_COPY} (its copy of its network's genesis, cut short by a kill or a power cut)` : `no ${GENESIS_COPY} (its copy of its network's genesis)`;
        throw new DatadirError(`${datadir} has a chain store but ${copyIs}, and ${err.message.replace(/^this store/, 'the store')}: give that network's genesis file with --genesis FILE, which is copied back`);
      }
      throw err;
    });
    await db.close();
  }
  // The text checked above, whole and synced: a copy is what every later start reads first.
  await replaceFile(copy, text);
  return { params, created: true };
}

/**
 * Why a network other than the bundled devnet should not keep the devnet's chain id: a
 * transaction signed for one is valid on the other (the chain id is what keeps it from being
 * replayed), as happens to a genesis file copied from the devnet's and renamed. Undefined when
 * `params` is the devnet itself or has a chain id of its own.
 */
export async function sharedChainIdWarning(params: ChainParams): Promise<string | undefined> {
  const devnet = (await readGenesis(BUNDLED_GENESIS)).params;
  if (params.chainId !== devnet.chainId || sameGenesis(params, devnet)) return undefined;
  return `the network "${params.name}" has the devnet's chain id ${devnet.chainId}: a transaction signed for one is valid on the other; give it a chain id of its own (cairn genesis new makes one)`;
}

/**
 * Why no block of a network will be mined for a long while: its genesis timestamp is more than a
 * day ahead of `nowSeconds` (no block may be stamped before it), most often a hand-written file
 * given milliseconds (Date.now()), which the genesis rules take as a date millennia away (cairn
 * genesis new refuses that --timestamp; a file is only warned of, as one dated on purpose may be).
 * Undefined for a timestamp within a day, or in the past.
 */
export function futureGenesisWarning(params: ChainParams, nowSeconds: number): string | undefined {
  const { timestamp } = params;
  if (timestamp <= nowSeconds + 86_400) return undefined;
  const when = timestamp > 8_640_000_000_000 ? 'after the year 275760' : `at ${new Date(timestamp * 1000).toISOString().replace(/\.000Z$/, 'Z')}`;
  const inSeconds = Math.floor(timestamp / 1000);
  const why = Math.abs(inSeconds - nowSeconds) <= 366 * 86_400 ? `; its timestamp ${timestamp} is in milliseconds: in seconds it is ${inSeconds}` : '';
  return `the network "${params.name}" starts ${when} (its genesis timestamp): no block can be mined before it${why}`;
}

/** The network of an initialised datadir. */
export async function loadDatadirParams(datadir: string): Promise<ChainParams> {
  const copy = join(datadir, GENESIS_COPY);
  if (!(await exists(copy))) throw new DatadirError(`${datadir} is not a Cairn datadir (no ${GENESIS_COPY}); create one with: cairn init --datadir ${datadir}`);
  return (await readGenesis(copy, true)).params;
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
