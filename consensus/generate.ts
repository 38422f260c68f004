import { ChainDB } from '../ledger/chaindb.ts';
import { sha256 } from '../ledger/hash.ts';
import { addressOf, publicKeyOf } from '../ledger/keys.ts';
import { makeBlock, makeHeader, type BlockHeader } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { SignatureChecker } from '../ledger/state.ts';
import { signTransaction, type Transaction } from '../ledger/transaction.ts';
import { HAVE_DATA, decodeIndexRecord, encodeIndexRecord } from './block-index.ts';
import { connectMadeBlock } from './connect.ts';
import { nextTarget } from './difficulty.ts';
import { maxFutureDrift } from './header-rules.ts';
import { searchNonce, targetBytes, templateHeader } from './miner.ts';
import { MAX_TARGET, blockWork, hasValidProofOfWork } from './pow.ts';
import { assembledBlockIsSane } from './sanity.ts';

/** A key of the generator's network: deterministic, so a chain can be generated again alike. */
export interface GeneratorKey {
  readonly privateKey: Uint8Array;
  readonly address: Uint8Array;
}

export function generatorKey(i: number): GeneratorKey {
  const privateKey = sha256(new TextEncoder().encode(`cairn generate: sender ${i} (public, never use for value)`));
  return { privateKey, address: addressOf(publicKeyOf(privateKey)) };
}

/** A funded account nobody holds a key for: state for a snapshot to carry. */
export function generatorAccount(i: number): Uint8Array {
  return sha256(new TextEncoder().encode(`cairn generate: account ${i}`)).subarray(0, 20);
}

/** Senders of the generated transfers: enough that a block's transfers spread over several. */
export function generatorSenders(txsPerBlock: number): GeneratorKey[] {
  return Array.from({ length: txsPerBlock > 0 ? Math.min(64, txsPerBlock) : 0 }, (_, i) => generatorKey(i));
}

export interface GeneratorGenesisOptions {
  readonly blocks: number;
  readonly txsPerBlock?: number;
  /** Funded accounts besides the senders. */
  readonly accounts?: number;
  /** Our clock, in seconds: the chain ends a minute before it, with every block on schedule. */
  readonly now: number;
}

/**
 * A network made for a generated chain: the devnet's rules (5-second blocks), the easiest
 * target (every hash meets it, so a block costs the one hash of its header and total work
 * counts blocks), and a genesis timestamp far enough in the past that `blocks` blocks on
 * schedule end a minute before `now`, so a node can open the chain and mine on it at once.
 */
export function generatorGenesis(o: GeneratorGenesisOptions): ChainParams {
  const blockTime = 5;
  const senders = generatorSenders(o.txsPerBlock ?? 0);
  const alloc = [
    ...senders.map((k) => ({ address: k.address, balance: 1_000_000_000_000_000n })),
    ...Array.from({ length: o.accounts ?? 0 }, (_, i) => ({ address: generatorAccount(i), balance: 100_000_000n })),
  ].sort((a, b) => Buffer.compare(a.address, b.address));
  return {
    name: `cairn-generated-${o.blocks}`,
    chainId: 4040,
    timestamp: o.now - 60 - (o.blocks + 1) * blockTime,
    target: MAX_TARGET,
    blockTime,
    asertHalfLife: 120,
    reward: 5_000_000_000n,
    unit: 'GEN',
    decimals: 8,
    maxBlockBytes: 1 << 20,
    maxBlockTxs: 5000,
    alloc,
  };
}

export interface GenerateOptions {
  /** Blocks to add on the stored tip. */
  readonly blocks: number;
  /** Transfers in each block, from `senders` in turn. */
  readonly txsPerBlock?: number;
  readonly senders?: readonly GeneratorKey[];
  readonly miner: Uint8Array;
  /** Our clock, in seconds: the last block may be no later than the drift rule allows. */
  readonly now: number;
  /** Called every `progressEvery` blocks (default 10,000) with the height reached. */
  readonly onProgress?: (height: number) => void;
  readonly progressEvery?: number;
}

/** The generator signed every transfer itself, a moment ago: checking them again proves nothing. */
const signedHere: SignatureChecker = { async checkBlockSignatures() {} };

/**
 * Mines `blocks` valid blocks on the stored tip, on schedule (each `blockTime` after its parent),
 * and stores them exactly as importing them would: each block's sanity is checked and it is
 * connected through consensus/connect.ts (connectMadeBlock: the state root it carries is the one
 * its body leaves, computed once) with its index record, but without the import queue,
 * fork choice or events, so the commit queue gathers thousands of blocks into each batch. For a
 * store nothing else writes to meanwhile (a new datadir); a node opens it afterwards.
 */
export async function generateChain(db: ChainDB, o: GenerateOptions): Promise<{ height: number; hash: Uint8Array }> {
  const params = db.params;
  const stored = await db.storedTip();
  let parent: BlockHeader;
  let totalWork: bigint;
  let seq: number;
  let anchor: number | undefined;
  if (stored.height === 0) {
    parent = db.genesis.header;
    totalWork = blockWork(parent.target);
    seq = 0;
  } else {
    const record = await db.history.record(stored.height, stored.hash);
    const [first] = await db.history.mainRecords(1, 1);
    if (!record || !first) throw new Error('the stored tip has no index record');
    ({ header: parent, totalWork, seq } = decodeIndexRecord(record));
    anchor = decodeIndexRecord(first.record).header.timestamp;
  }
  const last = parent.timestamp + o.blocks * params.blockTime;
  if (last > o.now + maxFutureDrift(params.blockTime)) {
    throw new RangeError(`${o.blocks} blocks on schedule would end at ${last}, in the future: the genesis timestamp is too late for so long a chain`);
  }
  const txsPerBlock = o.txsPerBlock ?? 0;
  const senders = o.senders ?? [];
  if (txsPerBlock > 0 && senders.length === 0) throw new RangeError('transfers need senders');
  const nonces = senders.map(() => 0n);
  let turn = 0;
  const transfers = (): Transaction[] => {
    const txs: Transaction[] = [];
    for (let i = 0; i < txsPerBlock; i++) {
      const k = turn++ % senders.length;
      const to = senders[(k + 1) % senders.length]!.address;
      txs.push(signTransaction({ chainId: params.chainId, to, amount: 1n, fee: 1n, nonce: nonces[k]!++ }, senders[k]!.privateKey));
    }
    return txs;
  };

  let tip = { hash: parent.hash, height: parent.height };
  const every = o.progressEvery ?? 10_000;
  for (let i = 0; i < o.blocks; i++) {
    const height = parent.height + 1;
    const target = nextTarget(params, parent, anchor);
    const txs = transfers();
    const coinbase = { to: o.miner, amount: params.reward + txs.reduce((sum, tx) => sum + tx.fee, 0n) };
    totalWork += blockWork(target);
    seq++;
    const block = await connectMadeBlock(
      db,
      params,
      tip,
      { txs, coinbase },
      (stateRoot) => {
        const base = templateHeader({ height, prevHash: parent.hash, coinbase, txs, stateRoot, timestamp: parent.timestamp + params.blockTime, target });
        const nonce = hasValidProofOfWork(base) ? 0n : searchNonce(base.bytes, targetBytes(target), 1n, 1_000_000, sha256);
        if (nonce === undefined) throw new RangeError(`no nonce for block ${height}: the target is too hard for a generator`);
        return assembledBlockIsSane(makeBlock(nonce === 0n ? base : makeHeader({ ...base, nonce }), coinbase, txs));
      },
      {
        signatures: signedHere,
        extraOps: ({ header }) => [ChainDB.indexRecordOp(height, header.hash, encodeIndexRecord({ header, totalWork, status: HAVE_DATA, seq }))],
      },
    );
    const { header } = block;
    if (height === 1) anchor = header.timestamp;
    tip = { hash: header.hash, height };
    parent = header;
    if (o.onProgress && height % every === 0) o.onProgress(height);
  }
  await db.flushed();
  return tip;
}
