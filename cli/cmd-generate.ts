import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ChainDB } from '../ledger/chaindb.ts';
import { genesisJson, type ChainParams } from '../ledger/genesis.ts';
import { LevelKv } from '../ledger/kv-level.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { generateChain, generatorGenesis, generatorKey, generatorSenders } from '../consensus/generate.ts';
import { count, parse, required, UsageError } from './args.ts';
import type { Out } from './output.ts';
import { datadirFailure } from './datadir.ts';

export interface GenerateDatadirOptions {
  readonly datadir: string;
  readonly blocks: number;
  readonly txsPerBlock?: number;
  readonly accounts?: number;
  /** Called now and then with the height reached. */
  readonly onProgress?: (height: number) => void;
}

export interface GeneratedDatadir {
  readonly params: ChainParams;
  readonly height: number;
  readonly hash: Uint8Array;
  readonly seconds: number;
}

/**
 * A new datadir holding a generated chain: its own genesis.json (a network made for the chain,
 * consensus/generate.ts) and a store with `blocks` valid blocks on schedule, which `cairn node
 * --datadir` opens like any other. Refuses a directory that is not empty.
 */
export async function generateDatadir(o: GenerateDatadirOptions): Promise<GeneratedDatadir> {
  const existing = await readdir(o.datadir).catch(() => [] as string[]);
  if (existing.length > 0) throw new UsageError(`${o.datadir} is not empty: generate into a new directory`);
  const now = Math.floor(Date.now() / 1000);
  const params = generatorGenesis({ blocks: o.blocks, txsPerBlock: o.txsPerBlock, accounts: o.accounts, now });
  try {
    await mkdir(o.datadir, { recursive: true, mode: 0o700 });
    await writeFile(join(o.datadir, 'genesis.json'), genesisJson(params));
  } catch (err) {
    throw datadirFailure(err, o.datadir);
  }
  // Larger memtables: fewer, larger tables for LevelDB to merge while millions of blocks go in.
  const db = await ChainDB.open(await LevelKv.open(join(o.datadir, 'chain'), { writeBufferSize: 64 << 20 }), params);
  const started = performance.now();
  try {
    const tip = await generateChain(db, {
      blocks: o.blocks,
      txsPerBlock: o.txsPerBlock,
      senders: generatorSenders(o.txsPerBlock ?? 0),
      miner: generatorKey(0).address,
      now,
      onProgress: o.onProgress,
      progressEvery: Math.max(1000, Math.ceil(o.blocks / 20 / 1000) * 1000),
    });
    const seconds = (performance.now() - started) / 1000;
    await db.close();
    // Opened once more with the defaults, LevelDB turns its last log (up to the 64 MiB memtable)
    // into tables: the first node to open the chain does not pay for replaying it.
    await (await LevelKv.open(join(o.datadir, 'chain'))).close();
    return { params, ...tip, seconds };
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}

/**
 * The most accounts a generated genesis may fund: what a node opens with its default heap
 * (cli/runtime.ts, 768 MB), measured. A million did (a 65 MB genesis.json, the node started);
 * four million did not (a 260 MB genesis.json: the node ran out of heap in 27 s, after the
 * generator had taken 23 minutes and 4.8 GB); eight million ran the generator itself out of heap.
 * Ten million, the old cap, wrote a genesis.json longer than V8's longest string (650 MB).
 */
export const MAX_GENERATED_ACCOUNTS = 1_000_000;

export async function generateCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, {
    blocks: { type: 'string' },
    'txs-per-block': { type: 'string' },
    accounts: { type: 'string' },
    datadir: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) return out.help(HELP);
  const blocks = count(values, 'blocks', 1, 100_000_000);
  if (blocks === undefined) throw new UsageError('--blocks is required');
  const datadir = required(values, 'datadir');
  const txsPerBlock = count(values, 'txs-per-block', 0, 5000) ?? 0;
  const accounts = count(values, 'accounts', 0, MAX_GENERATED_ACCOUNTS) ?? 0;
  const started = performance.now();
  const made = await generateDatadir({
    datadir,
    blocks,
    txsPerBlock,
    accounts,
    onProgress: (height) => process.stderr.write(`generated ${height} of ${blocks} blocks (${Math.round(height / ((performance.now() - started) / 1000))}/s)\n`),
  });
  const perSecond = Math.round(blocks / made.seconds);
  out.result(
    { datadir: resolve(datadir), network: made.params.name, height: made.height, hash: Buffer.from(made.hash).toString('hex'), seconds: made.seconds, blocksPerSecond: perSecond, miner: encodeAddress(generatorKey(0).address) },
    `generated ${blocks} blocks in ${made.seconds.toFixed(1)} s (${perSecond} blocks/s) into ${resolve(datadir)}, network ${made.params.name}\nstart a node on it: cairn node --datadir ${datadir}`,
  );
}

const HELP = `Usage: cairn generate --blocks N --datadir DIR [--txs-per-block K] [--accounts M] [--json]

Mines N valid blocks into a new datadir DIR, for tests, benchmarks, or a long regtest-style
chain of your own. The chain gets a network of its own (DIR/genesis.json: the devnet's 5-second
blocks, the easiest target, a genesis timestamp N block times in the past), so its blocks are on
schedule and end a minute ago; \`cairn node --datadir DIR\` opens it and mines on. The keys of the
generated senders and of the miner are public (consensus/generate.ts): never use them for value.

  --txs-per-block K   K transfers in every block, among 64 funded senders (default 0: coinbase only)
  --accounts M        M more funded accounts in the genesis, which nobody holds a key for (state
                      for a snapshot to carry); at most 1000000, the most a node opens with its default heap

Examples:
  cairn generate --blocks 1000000 --datadir /tmp/long
  cairn generate --blocks 20000 --txs-per-block 50 --datadir ./busy`;
